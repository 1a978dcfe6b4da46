//! Flowhub: headers `clientId` and `key` on every call (no token), camelCase JSON, one
//! full-name `name` per customer, UUID ids, a write-only licence (`stateId`), and list filters
//! that take dates in the store's local time. Field mapping, error reading and every guess are
//! in `wire.rs`; docs/vendors/flowhub.md has the sources, the quirks and what is unverified.
//!
//! Paths, at the host's root: `GET /v1/customers/?page=&page_size=` (list),
//! `GET /v1/customers/findByPhoneNumber?phone_number=` (one customer), `GET /v1/customers/{id}`,
//! `POST /v1/customer?store_id=` (create), `PUT /v1/customer/{id}?store_id=` (a full
//! replacement: the record is read first and sent back whole with the kiosk's change).

#[cfg(test)]
mod properties;
mod wire;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use domain::{
    Capabilities, CreateKey, Customer, CustomerDirectory, CustomerId, CustomerPage, CustomerPatch,
    CustomerQuery, NewCustomer, Operation, OptionalField, Phone, PosError, SearchFilter, Vendor,
};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::convert::ten_digits;
use crate::http::{Method, Secret, StatusCode, VendorAnswer, VendorHttp, VendorRequest};
use crate::paging::{PageCursor, offset_page, usable};
use crate::{AdapterError, CommonConfig, Settings, VendorAdapter};

pub use wire::{NO_LAST_NAME, full_name, split_name, updated_after};

/// Flowhub's production host; its paths start at the root.
pub const DEFAULT_BASE_URL: &str = "https://api.flowhub.co";

/// What Flowhub offers: every operation; a search by phone only (`findByPhoneNumber`; e-mail,
/// licence and name are the mirror's); a birthday required on create (`birthDate`, spec-derived);
/// gender and notes have no Flowhub field and the licence is written but never read back.
const CAPABILITIES: Capabilities = Capabilities {
    required_fields: &[OptionalField::Birthday],
    search_by: &[SearchFilter::Phone],
    unreadable_fields: &[
        OptionalField::Gender,
        OptionalField::DriversLicense,
        OptionalField::Notes,
    ],
    ..Capabilities::ALL
};

/// The adapter the registry opens for a Flowhub store.
pub type Adapter = Flowhub;

/// Flowhub's customer `type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CustomerType {
    /// `recCustomer`.
    #[default]
    Recreational,
    /// `medCustomer`.
    Medical,
}

/// `recCustomer` or `medCustomer` (any case); blank or `null` is the default. The error names
/// neither: a config error never repeats a value the config may hold.
impl<'de> Deserialize<'de> for CustomerType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "reccustomer" => Ok(CustomerType::Recreational),
            "medcustomer" => Ok(CustomerType::Medical),
            _ => Err(serde::de::Error::invalid_value(
                serde::de::Unexpected::Other("a text"),
                &"Flowhub's recreational or medical customer type",
            )),
        }
    }
}

impl CustomerType {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerType::Recreational => "recCustomer",
            CustomerType::Medical => "medCustomer",
        }
    }
}

/// A store's Flowhub config (`store add --config`).
#[derive(Clone, Debug, Deserialize)]
pub struct FlowhubConfig {
    /// The `clientId` header.
    #[serde(deserialize_with = "crate::config::secret")]
    pub client_id: Secret,
    /// The `key` header.
    #[serde(deserialize_with = "crate::config::secret")]
    pub api_key: Secret,
    /// The store's location at Flowhub: the `store_id` of creates and updates.
    #[serde(deserialize_with = "crate::config::plain_text")]
    pub location_id: String,
    /// The store's state, two letters: Flowhub requires a customer's `state` on every write.
    #[serde(deserialize_with = "state_code")]
    pub state: String,
    /// The `type` of a create; `recCustomer` when absent.
    #[serde(default)]
    pub customer_type: CustomerType,
    /// The store's UTC offset (`"-07:00"`, `"UTC"`), the time zone Flowhub reads the list's
    /// date filters in; UTC-12 when absent (see [`updated_after`]).
    #[serde(default, deserialize_with = "time_zone")]
    pub time_zone: Option<FixedOffset>,
    #[serde(flatten)]
    pub common: CommonConfig,
}

/// Two letters, held upper case.
fn state_code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = crate::config::plain_text(deserializer)?;
    if text.len() == 2 && text.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(serde::de::Error::invalid_value(
            serde::de::Unexpected::Other("a text"),
            &"a two-letter state code",
        ))
    }
}

/// A fixed UTC offset: `UTC`, `Z`, or `+HH:MM`, `-HH:MM`, `+HHMM`, `-HH` (`UTC` or `GMT` may
/// lead). An IANA name (`America/Denver`) would need a time-zone database this crate does not
/// carry: give the zone's standard-time offset.
fn time_zone<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<FixedOffset>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse_offset(text).map(Some).ok_or_else(|| {
        serde::de::Error::invalid_value(
            serde::de::Unexpected::Other("a text"),
            &"a UTC offset such as \"-07:00\" or \"UTC\" (IANA zone names are not supported: \
              use the zone's standard-time offset)",
        )
    })
}

fn parse_offset(text: &str) -> Option<FixedOffset> {
    let upper = text.to_ascii_uppercase();
    let rest = upper
        .strip_prefix("UTC")
        .or_else(|| upper.strip_prefix("GMT"))
        .unwrap_or(&upper);
    if rest.is_empty() || rest == "Z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, digits) = match rest.split_at_checked(1)? {
        ("+", digits) => (1, digits),
        ("-", digits) => (-1, digits),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 1 | 2 | 4) {
        return None;
    }
    let (hours, minutes) = digits.split_at_checked(digits.len().min(2))?;
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = if minutes.is_empty() {
        0
    } else {
        minutes.parse().ok()?
    };
    if hours > 14 || minutes >= 60 || (hours == 14 && minutes > 0) {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// One store's Flowhub location.
pub struct Flowhub {
    http: VendorHttp,
    client_id: Secret,
    api_key: Secret,
    location_id: String,
    state: String,
    customer_type: CustomerType,
    time_zone: FixedOffset,
}

impl VendorAdapter for Flowhub {
    const VENDOR: Vendor = Vendor::Flowhub;
    const CAPABILITIES: Capabilities = CAPABILITIES;
    type Config = FlowhubConfig;

    /// 50 requests a second (Flowhub answered 429 near 59), unless the store sets its own.
    fn open(config: FlowhubConfig, settings: &Settings) -> Result<Self, AdapterError> {
        let settings = settings
            .clone()
            .with_rate_limit_burst(wire::RATE_LIMIT_PER_MINUTE, wire::RATE_LIMIT_BURST)
            .with_overrides(&config.common);
        let base_url = config
            .common
            .base_url
            .as_deref()
            .unwrap_or(DEFAULT_BASE_URL);
        let http = VendorHttp::new(
            Vendor::Flowhub,
            base_url,
            settings,
            &[config.client_id.clone(), config.api_key.clone()],
        )?;
        Ok(Self {
            http,
            client_id: config.client_id,
            api_key: config.api_key,
            location_id: config.location_id,
            state: config.state,
            customer_type: config.customer_type,
            time_zone: config.time_zone.unwrap_or_else(wire::default_time_zone),
        })
    }
}

impl Flowhub {
    /// The store's offset, the one its list's date filters are read in.
    pub fn time_zone(&self) -> FixedOffset {
        self.time_zone
    }

    /// The customers changed since `since`, a page at a time (`query.limit`, `query.page`; no
    /// filters), for an incremental sync. Flowhub filters by a local date
    /// (`updated_after=YYYY-MM-DD`, in the store's time zone), so the page is asked from the
    /// day before `since`'s local date ([`updated_after`]) and what Flowhub then sends that
    /// was changed before `since` is dropped, as is a second copy of a customer: the overlap
    /// costs some reading, never a change missed. `next` follows the pages Flowhub sends, so
    /// a page may hold fewer customers than `limit` and still have a next.
    pub async fn changed_since(
        &self,
        since: DateTime<Utc>,
        query: &CustomerQuery,
    ) -> Result<CustomerPage, PosError> {
        let from = updated_after(since, self.time_zone);
        let (answer, cursor) = self.page(query, Some(from)).await?;
        let records = self.records(&answer)?;
        let count = records.len();
        let fresh = wire::changed_since(records, since);
        Ok(CustomerPage {
            customers: usable(Vendor::Flowhub, fresh, wire::read),
            next: cursor.next(count),
        })
    }

    fn request<I>(&self, method: Method, path: I) -> VendorRequest
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.http
            .request(method, path)
            .secret_header("clientId", &self.client_id)
            .secret_header("key", &self.api_key)
    }

    async fn read(&self, request: VendorRequest) -> Result<VendorAnswer, PosError> {
        settle(self.http.read(request).await)
    }

    async fn write(&self, request: VendorRequest) -> Result<VendorAnswer, PosError> {
        settle(self.http.write(request).await)
    }

    fn defaults(&self) -> wire::Defaults<'_> {
        wire::Defaults {
            state: &self.state,
            customer_type: self.customer_type.as_str(),
        }
    }

    /// One page of `GET /v1/customers/`, with `updated_after` when given.
    async fn page(
        &self,
        query: &CustomerQuery,
        updated_after: Option<NaiveDate>,
    ) -> Result<(VendorAnswer, PageCursor), PosError> {
        let cursor = PageCursor::read(query.page.as_ref(), query.limit, wire::MAX_PAGE_SIZE)?;
        // The trailing slash is Flowhub's path (vendors.md writes `/v1/customers/`).
        let mut request = self
            .request(Method::GET, ["v1", "customers", ""])
            .query("page", &cursor.page.to_string())
            .query("page_size", &cursor.size.to_string())
            .query("order_by", wire::LIST_ORDER)
            .accept_status(StatusCode::NOT_FOUND);
        if let Some(date) = updated_after {
            request = request.query("updated_after", &date.format("%Y-%m-%d").to_string());
        }
        let answer = self.read(request).await?;
        if answer.status() == StatusCode::NOT_FOUND {
            // A list is never "not found": our path or our query is wrong.
            tracing::error!(
                vendor = %Vendor::Flowhub, status = 404,
                "Flowhub answered 404 to the customer list: check the store's base_url"
            );
            return Err(PosError::Upstream(answer.vendor_response()));
        }
        Ok((answer, cursor))
    }

    fn records<'a>(&self, answer: &'a VendorAnswer) -> Result<Vec<&'a Value>, PosError> {
        wire::records(answer.body()).map_err(|message| bad_answer(message, answer))
    }

    async fn list(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        if let Some(since) = query.changed_since {
            return self.changed_since(since, query).await;
        }
        let (answer, cursor) = self.page(query, None).await?;
        let records = self.records(&answer)?;
        Ok(CustomerPage {
            next: cursor.next(records.len()),
            customers: usable(Vendor::Flowhub, records, wire::read),
        })
    }

    /// Flowhub looks customers up by phone only (`findByPhoneNumber`, one customer); the other
    /// filters of the query are checked on what it answers. A query without a phone, or with a
    /// licence (Flowhub never gives one back, so no answer could be shown to match), is the
    /// mirror's.
    async fn search(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        let Some(digits) = query
            .phone_digits
            .as_deref()
            .filter(|_| query.drivers_license.is_none())
        else {
            return Err(PosError::Unsupported(Operation::SearchCustomers));
        };
        // Flowhub keeps ten digits: a number with no ten-digit form is nobody's there.
        let Some(ten) = Phone::parse(digits)
            .ok()
            .as_ref()
            .and_then(ten_digits)
            .map(str::to_owned)
        else {
            return Ok(CustomerPage::default());
        };
        let request = self
            .request(Method::GET, ["v1", "customers", "findByPhoneNumber"])
            .query("phone_number", &ten)
            .accept_status(StatusCode::NOT_FOUND);
        let answer = self.read(request).await?;
        if answer.status() == StatusCode::NOT_FOUND {
            return Ok(CustomerPage::default());
        }
        let rest = CustomerQuery {
            phone_digits: None,
            name: None,
            ..query.clone()
        };
        let words = query.name_words();
        let found: Vec<Customer> = usable(Vendor::Flowhub, self.records(&answer)?, wire::read)
            .into_iter()
            .filter(|c| {
                c.phone.as_ref().and_then(ten_digits) == Some(ten.as_str())
                    && rest.matches(c)
                    && wire::name_has_words(c.first_name.as_str(), c.last_name.as_str(), &words)
            })
            .collect();
        offset_page(found, query.page.as_ref(), query.limit)
    }

    /// The record Flowhub holds for `id`, as it gave it; `None` when it has no such customer.
    async fn record(&self, id: &str) -> Result<Option<(Value, VendorAnswer)>, PosError> {
        if !wire::is_uuid(id) {
            return Ok(None);
        }
        let request = self
            .request(Method::GET, ["v1", "customers", id])
            .accept_status(StatusCode::NOT_FOUND);
        let answer = self.read(request).await?;
        if answer.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let record = self.one(&answer)?.clone();
        Ok(Some((record, answer)))
    }

    /// The one customer record of an answer.
    fn one<'a>(&self, answer: &'a VendorAnswer) -> Result<&'a Value, PosError> {
        match self.records(answer)?.as_slice() {
            [one] => Ok(one),
            _ => Err(bad_answer("the answer is not one customer", answer)),
        }
    }

    /// A write's refusal: 400 or 422 naming fields of ours is `Rejected`, anything else Flowhub's
    /// own answer (`Upstream`).
    fn refusal(&self, answer: &VendorAnswer) -> PosError {
        let errors = wire::field_errors(answer.body());
        if errors.is_empty() {
            PosError::Upstream(answer.vendor_response())
        } else {
            PosError::Rejected(errors)
        }
    }

    fn write_request(&self, method: Method, path: &[&str]) -> VendorRequest {
        self.request(method, path)
            .query("store_id", &self.location_id)
            .accept_status(StatusCode::NOT_FOUND)
            .accept_status(StatusCode::BAD_REQUEST)
            .accept_status(StatusCode::UNPROCESSABLE_ENTITY)
    }
}

/// The plumbing's answer, with what Flowhub means by it: 401/403 logged as the operator's to
/// fix (a 403 may be the gateway's IP missing from Flowhub's allow-list), a 429 without
/// `Retry-After` given ours, a 404 that is not JSON (Flowhub's refusal of a date format, or
/// not Flowhub at all) a refusal of our request, not a missing customer.
fn settle(outcome: Result<VendorAnswer, PosError>) -> Result<VendorAnswer, PosError> {
    let vendor = Vendor::Flowhub;
    match outcome {
        Err(PosError::Unauthorized(response)) => {
            if response.status == 403 {
                tracing::error!(
                    %vendor, status = 403,
                    "Flowhub refused the store's call (403): this gateway's IP address may not be on \
                     Flowhub's allow-list (ask Flowhub to allow-list it), or the key lacks \
                     access to customers"
                );
            } else {
                tracing::error!(
                    %vendor, status = response.status,
                    "Flowhub refused the store's clientId/key: check client_id and api_key in its \
                     config"
                );
            }
            Err(PosError::Unauthorized(response))
        }
        Err(PosError::Unavailable {
            vendor,
            message,
            retry_after: None,
            response: Some(response),
        }) if response.status == 429 => Err(PosError::Unavailable {
            vendor,
            message,
            retry_after: Some(wire::RATE_LIMITED_WAIT),
            response: Some(response),
        }),
        Err(PosError::BadAnswer {
            response: Some(response),
            ..
        }) if response.status == 404 => {
            if wire::is_date_format_refusal(&response.body) {
                tracing::error!(
                    %vendor, status = 404,
                    "Flowhub refused a date in our request's format: a bug in pos-gateway's Flowhub \
                     adapter"
                );
            } else {
                tracing::error!(
                    %vendor, status = 404,
                    "Flowhub answered 404 without JSON: check the store's base_url"
                );
            }
            Err(PosError::Upstream(response))
        }
        other => other,
    }
}

fn bad_answer(message: impl Into<String>, answer: &VendorAnswer) -> PosError {
    PosError::BadAnswer {
        vendor: Vendor::Flowhub,
        message: message.into(),
        response: Some(answer.vendor_response()),
    }
}

/// A single-customer answer as our customer; a record without id or name is a bad answer.
fn customer(record: &Value, answer: &VendorAnswer) -> Result<Customer, PosError> {
    wire::read(record).map_err(|why| bad_answer(why, answer))
}

/// Keys stay out: `Secret` prints `[redacted]`, and `VendorHttp` prints no credential.
impl std::fmt::Debug for Flowhub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flowhub")
            .field("http", &self.http)
            .field("location_id", &self.location_id)
            .field("state", &self.state)
            .field("customer_type", &self.customer_type)
            .field("time_zone", &self.time_zone)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CustomerDirectory for Flowhub {
    fn vendor(&self) -> Vendor {
        Vendor::Flowhub
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    fn is_mirror(&self) -> bool {
        false
    }

    async fn find(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        if query.has_filters() {
            self.search(query).await
        } else {
            self.list(query).await
        }
    }

    /// Flowhub's ids are UUIDs: any other id is nobody there, without a call.
    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, PosError> {
        match self.record(id.as_str()).await? {
            Some((record, answer)) => customer(&record, &answer).map(Some),
            None => Ok(None),
        }
    }

    /// Sent with the store's `state` and `type`. Flowhub takes no client key and de-duplicates
    /// nothing we know of: a lost answer is reconciled by the domain. Its answer says nothing of
    /// gender, notes or licence, so those are the ones sent.
    async fn create(&self, customer: &NewCustomer, _key: &CreateKey) -> Result<Customer, PosError> {
        let body = wire::create_body(customer, self.defaults())?;
        let answer = self
            .write(
                self.write_request(Method::POST, &["v1", "customer"])
                    .json(&body),
            )
            .await?;
        match answer.status() {
            StatusCode::NOT_FOUND => {
                tracing::error!(
                    vendor = %Vendor::Flowhub, status = 404,
                    "Flowhub refused a create with 404: check the store's location_id"
                );
                return Err(PosError::Upstream(answer.vendor_response()));
            }
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                return Err(self.refusal(&answer));
            }
            _ => {}
        }
        let record = wire::answered(&body, self.one(&answer)?);
        let created = self::customer(&record, &answer)?;
        let mut created = wire::with_names(
            created,
            &record,
            customer.first_name.as_str(),
            customer.last_name.as_str(),
        );
        created.gender = customer.gender;
        created.notes = customer.notes.clone();
        created.drivers_license = customer.drivers_license.clone();
        Ok(created)
    }

    /// Flowhub's update is a full replacement (`PUT`, every required field again), so the
    /// record is read first and sent back whole with the kiosk's change: nothing it did not
    /// name is lost, except the licence, which no read gives back (docs/vendors/flowhub.md).
    async fn update(&self, id: &CustomerId, patch: &CustomerPatch) -> Result<Customer, PosError> {
        let (record, _) = self.record(id.as_str()).await?.ok_or(PosError::NotFound)?;
        let current = record.as_object().cloned().unwrap_or_default();
        let replacement = wire::update_body(&current, patch, self.defaults())?;
        let answer = self
            .write(
                self.write_request(Method::PUT, &["v1", "customer", id.as_str()])
                    .json(&replacement.body),
            )
            .await?;
        match answer.status() {
            StatusCode::NOT_FOUND if wire::names_the_location(answer.body()) => {
                tracing::error!(
                    vendor = %Vendor::Flowhub, status = 404,
                    "Flowhub refused an update with 404 for its location: check the store's \
                     location_id"
                );
                return Err(PosError::Upstream(answer.vendor_response()));
            }
            StatusCode::NOT_FOUND => return Err(PosError::NotFound),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                return Err(self.refusal(&answer));
            }
            _ => {}
        }
        let record = wire::answered(&replacement.body, self.one(&answer)?);
        let mut updated = customer(&record, &answer)?;
        if let Some((first, last)) = &replacement.names {
            updated = wire::with_names(updated, &record, first, last);
        }
        // Flowhub keeps no gender or notes: only what this patch says of them is known.
        updated.gender = patch.gender.flatten();
        updated.notes = patch.notes.clone().flatten();
        updated.drivers_license = wire::licence_sent(&replacement.body);
        Ok(updated)
    }
}
