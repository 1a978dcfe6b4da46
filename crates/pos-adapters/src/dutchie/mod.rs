//! Dutchie POS (formerly LeafLogix): HTTP Basic with the location key as user and an empty
//! password (or the integrator key), camelCase JSON. See docs/vendors/dutchie.md for the
//! sources, the field mapping and what is unverified.
//!
//! Paths: `GET /customer/customers-paginated?PageNumber=&PageSize=` (list),
//! `POST /customer/customerLookup` (search; one customer or 404),
//! `POST /customer/customer` (create without `customerId`, sparse update with it),
//! `GET /whoami` (credentials check). There is no get-by-id: the domain answers `get` from
//! its mirror.

#[cfg(test)]
mod properties;
mod wire;

use async_trait::async_trait;
use domain::{
    Capabilities, CreateKey, Customer, CustomerDirectory, CustomerId, CustomerPage, CustomerPatch,
    CustomerQuery, NewCustomer, Operation, OptionalField, PosError, SearchFilter, Vendor,
};
use serde::Deserialize;

use crate::http::{Method, Secret, StatusCode, VendorAnswer, VendorHttp, VendorRequest};
use crate::paging::{PageCursor, usable};
use crate::{AdapterError, CommonConfig, Settings, VendorAdapter};
use tokio::sync::OnceCell;

pub use wire::{Address, Location};

/// Dutchie's production host.
pub const DEFAULT_BASE_URL: &str = "https://api.pos.dutchie.com";

/// Dutchie allows 120 requests a minute in general (spec)...
pub const RATE_LIMIT_PER_MINUTE: u32 = 120;
/// ...and 1,500 customer writes (`POST /customer/customer`) a minute (spec).
pub const WRITE_RATE_LIMIT_PER_MINUTE: u32 = 1500;

/// The largest `PageSize` of `customers-paginated`.
const MAX_PAGE_SIZE: u32 = 100;

/// What Dutchie offers: no get by id (the mirror answers), and no licence search (Dutchie
/// keeps only a hash of the licence, which it never gives back).
const CAPABILITIES: Capabilities = Capabilities {
    get_customer: false,
    search_by: &[SearchFilter::Email, SearchFilter::Phone, SearchFilter::Name],
    unreadable_fields: &[OptionalField::DriversLicense],
    ..Capabilities::ALL
};

/// The adapter the registry opens for a Dutchie store.
pub type Adapter = Dutchie;

/// A store's Dutchie config (`store add --config`).
#[derive(Clone, Deserialize)]
pub struct DutchieConfig {
    /// The location's API key, the Basic user name.
    #[serde(deserialize_with = "crate::config::secret")]
    pub location_key: Secret,
    /// The integrator's key, the Basic password, when Dutchie gave one.
    #[serde(default, deserialize_with = "crate::config::optional_secret")]
    pub integrator_key: Option<Secret>,
    /// The store's own address: Dutchie requires one on every create (spec) and kiosks rarely
    /// ask for it.
    pub default_address: Address,
    /// The customer type of a create; Dutchie's first retail type when absent.
    #[serde(default, deserialize_with = "crate::config::optional_plain_text")]
    pub customer_type: Option<String>,
    #[serde(flatten)]
    pub common: CommonConfig,
}

/// One store's Dutchie location.
pub struct Dutchie {
    http: VendorHttp,
    location_key: Secret,
    integrator_key: Option<Secret>,
    address: Address,
    /// The config's type, or the first retail one Dutchie lists (asked once).
    customer_type: OnceCell<String>,
}

impl VendorAdapter for Dutchie {
    const VENDOR: Vendor = Vendor::Dutchie;
    const CAPABILITIES: Capabilities = CAPABILITIES;
    type Config = DutchieConfig;

    /// Nothing is sent: [`Dutchie::whoami`] checks the key.
    fn open(config: DutchieConfig, settings: &Settings) -> Result<Self, AdapterError> {
        // RFC 7617: the Basic user-id cannot contain a colon; the vendor would read a
        // different key.
        if config.location_key.expose().contains(':') {
            return Err(AdapterError::Config {
                vendor: Vendor::Dutchie,
                message: "key \"location_key\" must not contain ':'".to_owned(),
            });
        }
        let settings = settings
            .clone()
            .with_rate_limit(RATE_LIMIT_PER_MINUTE)
            .with_write_rate_limit(WRITE_RATE_LIMIT_PER_MINUTE)
            .with_overrides(&config.common);
        let secrets: Vec<Secret> = std::iter::once(config.location_key.clone())
            .chain(config.integrator_key.clone())
            .collect();
        let base_url = config
            .common
            .base_url
            .as_deref()
            .unwrap_or(DEFAULT_BASE_URL);
        let http = VendorHttp::new(Vendor::Dutchie, base_url, settings, &secrets)?;
        Ok(Self {
            http,
            location_key: config.location_key,
            integrator_key: config.integrator_key,
            address: config.default_address,
            customer_type: OnceCell::new_with(config.customer_type),
        })
    }
}

impl Dutchie {
    /// The location the key opens (`GET /whoami`): a cheap check of the credentials.
    pub async fn whoami(&self) -> Result<Location, PosError> {
        let answer = self
            .http
            .read(self.request(Method::GET, ["whoami"]))
            .await?;
        answer.json()
    }

    fn request<const N: usize>(&self, method: Method, path: [&str; N]) -> VendorRequest {
        self.http
            .request(method, path)
            .basic_auth(&self.location_key, self.integrator_key.as_ref())
    }

    async fn list(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        let cursor = PageCursor::read(query.page.as_ref(), query.limit, MAX_PAGE_SIZE)?;
        let mut request = self
            .request(Method::GET, ["customer", "customers-paginated"])
            .query("PageNumber", &cursor.page.to_string())
            .query("PageSize", &cursor.size.to_string());
        if let Some(since) = query.changed_since {
            // "For increments" (spec); a UTC date-time without offset, as Dutchie writes its
            // own `lastModifiedDateUTC`.
            request = request.query(
                "fromLastModifiedDateUTC",
                &since.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
            );
        }
        let answer = self.http.read(request).await?;
        let records: Vec<wire::WireCustomer> = answer.json()?;
        Ok(CustomerPage {
            customers: usable(Vendor::Dutchie, &records, wire::WireCustomer::to_customer),
            next: cursor.next(records.len()),
        })
    }

    async fn search(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        // The lookup matches names exactly (first, last); our name filter is "each word starts
        // the first or the last name". One word: try it as the last name, then as the first.
        // More: the first word is the first name, the rest the last ("Ana de la Cruz").
        let words = query.name_words();
        let names: Vec<(Option<String>, Option<String>)> = match words.split_first() {
            None => vec![(None, None)],
            Some((only, [])) => vec![
                (None, Some((*only).to_owned())),
                (Some((*only).to_owned()), None),
            ],
            Some((first, rest)) => vec![(Some((*first).to_owned()), Some(rest.join(" ")))],
        };
        // Phone and names are checked on Dutchie's record (its `cellPhone` too, the names as
        // sent), where our customer's form differs; the rest (email) by the query's own rule.
        // Either way a lookup that ignored a field can't slip a non-match through.
        let rest_of_query = CustomerQuery {
            phone_digits: None,
            name: None,
            ..query.clone()
        };
        let limit = usize::try_from(query.limit.max(1)).unwrap_or(usize::MAX);
        let mut customers: Vec<Customer> = Vec::new();
        for (first_name, last_name) in names {
            if customers.len() >= limit {
                break;
            }
            let lookup = wire::WireLookup {
                phone: query.phone_digits.clone(),
                email_address: query.email.clone(),
                first_name,
                last_name,
            };
            let request = self
                .request(Method::POST, ["customer", "customerLookup"])
                .json(&lookup)
                .accept_status(StatusCode::NOT_FOUND);
            let answer = self.http.read(request).await?;
            if answer.status() == StatusCode::NOT_FOUND {
                continue;
            }
            let record: wire::WireCustomer = answer.json()?;
            let vendor_matched = query
                .phone_digits
                .as_deref()
                .is_none_or(|digits| record.has_phone_digits(digits))
                && record.has_names(lookup.first_name.as_deref(), lookup.last_name.as_deref());
            let customer = to_customer(&record, &answer)?;
            if vendor_matched
                && rest_of_query.matches(&customer)
                && !customers
                    .iter()
                    .any(|c| c.customer_id == customer.customer_id)
            {
                customers.push(customer);
            }
        }
        // Whole names only: a prefix ("jo" for John) finds nobody at Dutchie; the mirror, which
        // matches prefixes, answers a name search Dutchie could not.
        if customers.is_empty() && query.name.is_some() {
            return Err(PosError::Unsupported(Operation::SearchCustomers));
        }
        Ok(CustomerPage {
            customers,
            next: None,
        })
    }

    /// The customer type of a create: the store's, or the first retail type Dutchie lists
    /// (`GET /customer/customer-types`), asked once per store.
    async fn customer_type(&self) -> Result<&str, PosError> {
        self.customer_type
            .get_or_try_init(|| async {
                let answer = self
                    .http
                    .read(self.request(Method::GET, ["customer", "customer-types"]))
                    .await?;
                let types: Vec<wire::CustomerType> = answer.json()?;
                types
                    .into_iter()
                    .find(|t| t.is_retail == Some(true))
                    .and_then(|t| t.name)
                    .filter(|name| !name.trim().is_empty())
                    .ok_or_else(|| PosError::BadAnswer {
                        vendor: Vendor::Dutchie,
                        message: "Dutchie lists no retail customer type; set the store's \
                                  customer_type"
                            .to_owned(),
                        response: Some(answer.vendor_response()),
                    })
            })
            .await
            .map(String::as_str)
    }

    /// Sends a create or an update, turning a 400's field errors into `Rejected`. A create
    /// carries its key as Dutchie's `ConsumerKey` (with the body's `idempotencyKey`), so a
    /// create sent again after a lost answer makes no second customer.
    async fn write(
        &self,
        body: &wire::WireWrite,
        consumer_key: Option<&CreateKey>,
    ) -> Result<VendorAnswer, PosError> {
        let mut request = self
            .request(Method::POST, ["customer", "customer"])
            .json(body)
            .accept_status(StatusCode::BAD_REQUEST);
        if let Some(key) = consumer_key {
            request = request.header("ConsumerKey", &key.to_string());
        }
        let answer = self.http.write(request).await?;
        if answer.status() == StatusCode::BAD_REQUEST {
            let errors = wire::field_errors(answer.body());
            return Err(if errors.is_empty() {
                PosError::Upstream(answer.vendor_response())
            } else {
                PosError::Rejected(errors)
            });
        }
        Ok(answer)
    }
}

/// A single-customer answer as our customer; a record without id or name is a bad answer.
fn to_customer(record: &wire::WireCustomer, answer: &VendorAnswer) -> Result<Customer, PosError> {
    record.to_customer().map_err(|why| PosError::BadAnswer {
        vendor: Vendor::Dutchie,
        message: why,
        response: Some(answer.vendor_response()),
    })
}

/// Keys stay out: `Secret` prints `[redacted]`, and `VendorHttp` prints no credential.
impl std::fmt::Debug for Dutchie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dutchie")
            .field("http", &self.http)
            .field("location_key", &self.location_key)
            .field("integrator_key", &self.integrator_key)
            .finish()
    }
}

#[async_trait]
impl CustomerDirectory for Dutchie {
    fn vendor(&self) -> Vendor {
        Vendor::Dutchie
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn is_mirror(&self) -> bool {
        false
    }

    async fn find(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        // Dutchie keeps only a hash of the licence and can't be searched by it, so a result
        // could never be shown to satisfy a licence filter: the mirror answers those.
        if query.drivers_license.is_some() {
            return Err(PosError::Unsupported(Operation::SearchCustomers));
        }
        if query.has_filters() {
            self.search(query).await
        } else {
            self.list(query).await
        }
    }

    async fn get(&self, _id: &CustomerId) -> Result<Option<Customer>, PosError> {
        Err(PosError::Unsupported(Operation::GetCustomer))
    }

    /// Sent with the store's address, `Active`, its customer type and the create's key.
    /// Dutchie may answer a customer it already had instead of making one (its own
    /// de-duplication): that is our 409 with that customer.
    async fn create(&self, customer: &NewCustomer, key: &CreateKey) -> Result<Customer, PosError> {
        let context = wire::CreateContext {
            address: &self.address,
            customer_type: self.customer_type().await?,
            idempotency_key: key.to_string(),
        };
        let answer = self
            .write(&wire::WireWrite::create(customer, context), Some(key))
            .await?;
        let mut created = to_customer(&answer.json()?, &answer)?;
        if wire::is_someone_else(&created, customer) {
            return Err(PosError::Duplicate(Box::new(created)));
        }
        // Dutchie never returns the licence; the one we just sent is what the mirror keeps.
        created.drivers_license = customer.drivers_license.clone();
        Ok(created)
    }

    async fn update(&self, id: &CustomerId, patch: &CustomerPatch) -> Result<Customer, PosError> {
        // Dutchie's ids are integers: any other id names no customer there.
        let id = id
            .as_str()
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or(PosError::NotFound)?;
        let answer = self
            .write(&wire::WireWrite::update(id, patch), None)
            .await?;
        let mut updated = to_customer(&answer.json()?, &answer)?;
        // As on create: only a licence this patch sets can be known; one it leaves alone stays
        // unknown (null) since Dutchie returns only its hash.
        updated.drivers_license = patch.drivers_license.clone().flatten();
        Ok(updated)
    }
}
