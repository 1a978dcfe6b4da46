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
    Capabilities, Customer, CustomerDirectory, CustomerId, CustomerPage, CustomerPatch,
    CustomerQuery, FieldError, NewCustomer, Operation, PageToken, PosError, ValidationErrors,
    Vendor,
};
use serde_json::Value;

use crate::http::{Method, Secret, StatusCode, VendorAnswer, VendorHttp, VendorRequest};
use crate::{AdapterError, Settings};

pub use wire::Location;

/// Dutchie's production host.
pub const DEFAULT_BASE_URL: &str = "https://api.pos.dutchie.com";

/// Dutchie's customer endpoints allow about this many requests a minute (vendors.md: weak).
pub const RATE_LIMIT_PER_MINUTE: u32 = 120;

/// The largest `PageSize` of `customers-paginated`.
const MAX_PAGE_SIZE: u32 = 100;

/// One store's Dutchie location.
pub struct Dutchie {
    http: VendorHttp,
    location_key: Secret,
    integrator_key: Option<Secret>,
}

/// A config error naming the key, never its value.
fn config_error(message: String) -> AdapterError {
    AdapterError::Config {
        vendor: Vendor::Dutchie,
        message,
    }
}

/// A key of the store config: `None` when absent, null or blank.
fn key(config: &Value, name: &str) -> Result<Option<Secret>, AdapterError> {
    let text = match config.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text.trim(),
        Some(_) => return Err(config_error(format!("key \"{name}\" must be a string"))),
    };
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().any(char::is_control) {
        return Err(config_error(format!(
            "key \"{name}\" contains control characters"
        )));
    }
    Ok(Some(Secret::new(text)))
}

impl Dutchie {
    /// Opens a store's Dutchie location from its config: `location_key` (required),
    /// `integrator_key`, `base_url`, `timeout`, `rate_limit_per_minute` (optional). Nothing is
    /// sent: [`Dutchie::whoami`] checks the key.
    pub fn connect(config: &Value, settings: &Settings) -> Result<Self, AdapterError> {
        // A non-string key is as good as none: the message is the same, and names no value.
        let location_key = match config.get("location_key") {
            Some(Value::String(_)) => key(config, "location_key")?,
            _ => None,
        }
        .ok_or_else(|| config_error("missing key \"location_key\"".to_owned()))?;
        // RFC 7617: the Basic user-id cannot contain a colon; the vendor would read a
        // different key.
        if location_key.expose().contains(':') {
            return Err(config_error(
                "key \"location_key\" must not contain ':'".to_owned(),
            ));
        }
        let integrator_key = key(config, "integrator_key")?;
        let base_url = match config.get("base_url") {
            None | Some(Value::Null) => DEFAULT_BASE_URL,
            Some(Value::String(url)) => url.as_str(),
            Some(_) => return Err(config_error("base_url must be an http(s) URL".to_owned())),
        };
        let settings = Settings {
            rate_limit_per_minute: Some(RATE_LIMIT_PER_MINUTE),
            ..settings.clone()
        }
        .with_store_overrides(Vendor::Dutchie, config)?;
        let secrets: Vec<Secret> = std::iter::once(location_key.clone())
            .chain(integrator_key.clone())
            .collect();
        let http = VendorHttp::new(Vendor::Dutchie, base_url, settings, &secrets)?;
        Ok(Self {
            http,
            location_key,
            integrator_key,
        })
    }

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
        let page = query.page.as_ref().map_or(Ok(1), page_number)?;
        let size = query.limit.clamp(1, MAX_PAGE_SIZE);
        let request = self
            .request(Method::GET, ["customer", "customers-paginated"])
            .query("PageNumber", &page.to_string())
            .query("PageSize", &size.to_string());
        let answer = self.http.read(request).await?;
        let records: Vec<wire::WireCustomer> = answer.json()?;
        // A short page is the last: Dutchie gives no total.
        let full = records.len() >= usize::try_from(size).unwrap_or(usize::MAX);
        let customers = records
            .iter()
            .filter_map(|record| match record.to_customer() {
                Ok(customer) => Some(customer),
                Err(why) => {
                    // One unusable record must not hide the rest of the page.
                    tracing::warn!(vendor = %Vendor::Dutchie, %why, "skipping a customer record");
                    None
                }
            })
            .collect();
        Ok(CustomerPage {
            customers,
            next: full.then(|| PageToken(page.saturating_add(1).to_string())),
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
        Ok(CustomerPage {
            customers,
            next: None,
        })
    }

    /// Sends a create or an update, turning a 400's field errors into `Rejected`.
    async fn write(&self, body: &wire::WireWrite) -> Result<VendorAnswer, PosError> {
        let request = self
            .request(Method::POST, ["customer", "customer"])
            .json(body)
            .accept_status(StatusCode::BAD_REQUEST);
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

/// The page a list cursor names; anything else was not made by us.
fn page_number(token: &PageToken) -> Result<u32, PosError> {
    token
        .0
        .parse::<u32>()
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| PosError::Rejected(ValidationErrors::single("cursor", FieldError::Invalid)))
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
        Capabilities {
            list_customers: true,
            search_customers: true,
            get_customer: false,
            create_customer: true,
            update_customer: true,
            required_fields: &[],
        }
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

    async fn create(&self, customer: &NewCustomer) -> Result<Customer, PosError> {
        let answer = self.write(&wire::WireWrite::create(customer)).await?;
        let mut created = match answer.body() {
            // Unverified: the create may answer the new id alone rather than the customer.
            Value::Number(id) => {
                let id = CustomerId::parse(&id.to_string()).ok_or_else(|| PosError::BadAnswer {
                    vendor: Vendor::Dutchie,
                    message: "the new customer's id is unusable".to_owned(),
                    response: Some(answer.vendor_response()),
                })?;
                customer
                    .clone()
                    .into_customer(id, domain::CustomerStatus::active())
            }
            _ => to_customer(&answer.json()?, &answer)?,
        };
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
        let answer = self.write(&wire::WireWrite::update(id, patch)).await?;
        let mut updated = to_customer(&answer.json()?, &answer)?;
        // As on create: only a licence this patch sets can be known; one it leaves alone stays
        // unknown (null) since Dutchie returns only its hash.
        updated.drivers_license = patch.drivers_license.clone().flatten();
        Ok(updated)
    }
}
