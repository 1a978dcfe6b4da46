//! BLAZE, over its partner API (the "BLAZE Developer API"): the partner key in both the
//! `partner_key` (older docs, proven live) and `x-api-key` (current docs) headers, the store
//! (shop) key as the raw `Authorization` value, no `Bearer`. BLAZE calls customers
//! "members"; their ids are 24-hex strings (MongoDB ObjectIds).
//!
//! Paths, relative to `{base_url}` (default [`DEFAULT_BASE_URL`]):
//! `GET members?startDate=&endDate=&skip=&limit=` (list, by `modified`, windows of at most
//! seven days: see [`Walk`]), `GET members/{id}`, `GET members/email/{email}` (one member),
//! `GET members/search/phone?phoneNumber=&start=&limit=`, `GET members/search?licenceNumber=`,
//! `POST members` (create; 200, not 201), `PUT members/{id}` (the WHOLE member: read it,
//! change what the kiosk named, send it back).
//!
//! Field mapping and error reading are in `wire.rs`; docs/vendors/blaze.md has the sources,
//! the quirks and what is unverified.

#[cfg(test)]
mod properties;
mod walk;
mod wire;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use domain::{
    Capabilities, CreateKey, Customer, CustomerDirectory, CustomerId, CustomerPage, CustomerPatch,
    CustomerQuery, NewCustomer, Operation, PageToken, Phone, PosError, SearchFilter, Vendor,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::convert::ten_digits;
use crate::http::{Method, Secret, StatusCode, VendorAnswer, VendorHttp, VendorRequest};
use crate::paging::{offset_page, usable};
use crate::{AdapterError, CommonConfig, Settings, VendorAdapter};

pub use walk::{CLOCK_ALLOWANCE_MS, WINDOW_MS, Walk};

/// BLAZE's partner API in production (vendors.md; the stage host is
/// `https://api.stage.blaze.me/api/v1/partner`).
pub const DEFAULT_BASE_URL: &str = "https://api.partners.blaze.me/api/v1/partner";

/// BLAZE's partner contract allows 10,000 calls per 5 minutes per company: 2,000 a minute,
/// a tenth of it at once (the kit's default burst). A store config's `rate_limit_per_minute`
/// replaces it (a company with several stores gives each its share).
pub const RATE_LIMIT_PER_MINUTE: u32 = 2000;

/// The `consumerType` of a create when the store config names none (vendors.md).
pub const DEFAULT_CONSUMER_TYPE: &str = "AdultUse";

/// Unverified (chosen): the floor of a full list (and so of `pos-gateway sync`) when the store
/// config has no `list_from`: 1 January 2014, the first day of adult-use cannabis retail in the
/// US (Colorado), before BLAZE or any member it holds could exist; a member's `modified` is
/// set by BLAZE, so none is older. A store that knows when it started on BLAZE sets
/// `list_from` and saves the calls of the empty windows before it.
pub const DEFAULT_LIST_FROM: NaiveDate = match NaiveDate::from_ymd_opt(2014, 1, 1) {
    Some(date) => date,
    None => NaiveDate::MIN,
};

/// A kiosk's page is at most this many members (the contract's own maximum).
const MAX_PAGE_SIZE: u32 = 100;

/// One page of a list looks back at most this many windows (13 weeks) for members before it
/// answers, possibly empty, with a cursor to go on from: an unfiltered page costs a bounded
/// number of calls however sparse the years before are.
const MAX_WINDOWS_PER_PAGE: u32 = 13;

/// And at most this many calls in all (pages within windows included).
const MAX_CALLS_PER_PAGE: u32 = 40;

/// Members asked per call of a search, and the most calls one search makes.
const SEARCH_PAGE_SIZE: u64 = 100;
const MAX_SEARCH_PAGES: u32 = 10;

/// What BLAZE offers: every operation; searches by phone, e-mail and licence (its birthday
/// search has no filter of ours, and it has no name search: the mirror answers names).
const CAPABILITIES: Capabilities = Capabilities {
    search_by: &[
        SearchFilter::DriversLicense,
        SearchFilter::Email,
        SearchFilter::Phone,
    ],
    ..Capabilities::ALL
};

/// The adapter the registry opens for a BLAZE store.
pub type Adapter = Blaze;

/// A store's BLAZE config (`store add --config`).
#[derive(Clone, Deserialize)]
pub struct BlazeConfig {
    /// The integrator's partner key, sent as `partner_key` and `x-api-key`.
    #[serde(deserialize_with = "crate::config::secret")]
    pub partner_key: Secret,
    /// The shop's key, sent as the raw `Authorization` value.
    #[serde(deserialize_with = "crate::config::secret")]
    pub store_key: Secret,
    /// The `consumerType` of members a kiosk creates; [`DEFAULT_CONSUMER_TYPE`] when absent.
    #[serde(default, deserialize_with = "crate::config::optional_plain_text")]
    pub consumer_type: Option<String>,
    /// The oldest `modified` date (`YYYY-MM-DD`, UTC) a full list walks back to;
    /// [`DEFAULT_LIST_FROM`] when absent.
    #[serde(default, deserialize_with = "crate::config::optional_plain_text")]
    pub list_from: Option<String>,
    #[serde(flatten)]
    pub common: CommonConfig,
}

/// One store's BLAZE shop.
pub struct Blaze {
    http: VendorHttp,
    partner_key: Secret,
    store_key: Secret,
    consumer_type: String,
    /// The floor of a new walk of the list, epoch ms.
    list_from: i64,
}

fn config_error(message: String) -> AdapterError {
    AdapterError::Config {
        vendor: Vendor::Blaze,
        message,
    }
}

impl VendorAdapter for Blaze {
    const VENDOR: Vendor = Vendor::Blaze;
    const CAPABILITIES: Capabilities = CAPABILITIES;
    type Config = BlazeConfig;

    /// BLAZE's published limit, unless the store config's `rate_limit_per_minute` sets its own.
    fn open(config: BlazeConfig, settings: &Settings) -> Result<Self, AdapterError> {
        for (key, value) in [
            ("partner_key", &config.partner_key),
            ("store_key", &config.store_key),
        ] {
            // Header values: anything else could not be sent (and would fail at every call).
            if !value
                .expose()
                .chars()
                .all(|c| c.is_ascii_graphic() || c == ' ')
            {
                return Err(config_error(format!(
                    "key \"{key}\" must be printable ASCII"
                )));
            }
        }
        let list_from = match config.list_from.as_deref() {
            None => DEFAULT_LIST_FROM,
            Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .filter(|date| {
                    *date >= DateTime::UNIX_EPOCH.date_naive() && *date <= Utc::now().date_naive()
                })
                .ok_or_else(|| {
                    config_error(
                        "key \"list_from\" must be a date (YYYY-MM-DD) from 1970-01-01 to today"
                            .to_owned(),
                    )
                })?,
        };
        let settings = settings
            .clone()
            .with_rate_limit(RATE_LIMIT_PER_MINUTE)
            .with_overrides(&config.common);
        let base_url = config
            .common
            .base_url
            .as_deref()
            .unwrap_or(DEFAULT_BASE_URL);
        let http = VendorHttp::new(
            Vendor::Blaze,
            base_url,
            settings,
            &[config.partner_key.clone(), config.store_key.clone()],
        )?;
        Ok(Self {
            http,
            partner_key: config.partner_key,
            store_key: config.store_key,
            consumer_type: config
                .consumer_type
                .unwrap_or_else(|| DEFAULT_CONSUMER_TYPE.to_owned()),
            list_from: list_from
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp_millis(),
        })
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// BLAZE's ids are MongoDB ObjectIds: 24 hex digits. Any other id names no member there.
fn is_member_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn bad_answer(message: impl Into<String>, answer: &VendorAnswer) -> PosError {
    PosError::BadAnswer {
        vendor: Vendor::Blaze,
        message: message.into(),
        response: Some(answer.vendor_response()),
    }
}

/// A member as our customer; one without id or name is a bad answer.
fn to_customer(member: &Value, answer: &VendorAnswer) -> Result<Customer, PosError> {
    wire::customer(member).map_err(|why| bad_answer(why, answer))
}

/// A refused write: on our field when BLAZE names one, else BLAZE's answer as is.
fn refusal(answer: &VendorAnswer) -> PosError {
    match wire::field_errors(answer.body()) {
        Some(errors) => PosError::Rejected(errors),
        None => PosError::Upstream(answer.vendor_response()),
    }
}

fn is_refusal(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
    )
}

impl Blaze {
    /// The first cursor of an incremental walk: the members modified since `since` (until now
    /// and the clock allowance), newest first, as [`CustomerDirectory::find`] pages them with
    /// no filter. A scheduler keeps the time each walk began and starts the next one a few
    /// minutes before it (re-reading a member is harmless: the mirror keeps one per id).
    pub fn modified_since(since: DateTime<Utc>) -> PageToken {
        Walk::since(since.timestamp_millis(), now_ms()).token()
    }

    /// A request with the store's credentials.
    fn request<I>(&self, method: Method, path: I) -> VendorRequest
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.http
            .request(method, path)
            .secret_header("partner_key", &self.partner_key)
            .secret_header("x-api-key", &self.partner_key)
            .secret_header("authorization", &self.store_key)
    }

    /// The one member of a look-up (by id or e-mail), as BLAZE holds it; `None` when BLAZE
    /// has none: a 404, an empty answer (204), or a 400 saying so.
    fn one_member(answer: &VendorAnswer) -> Result<Option<Map<String, Value>>, PosError> {
        match answer.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::BAD_REQUEST if wire::says_missing(answer.body()) => Ok(None),
            StatusCode::BAD_REQUEST => Err(answer.clone().into_error()),
            _ => match answer.body() {
                Value::Null => Ok(None),
                Value::Object(member) => Ok(Some(member.clone())),
                _ => Err(bad_answer(
                    "a look-up answered something other than a member",
                    answer,
                )),
            },
        }
    }

    /// The member with this id, as BLAZE holds it (every field, ours or not).
    async fn member(&self, id: &str) -> Result<Option<Map<String, Value>>, PosError> {
        if !is_member_id(id) {
            return Ok(None);
        }
        let request = self
            .request(Method::GET, ["members", id])
            .accept_status(StatusCode::NOT_FOUND)
            .accept_status(StatusCode::BAD_REQUEST);
        let answer = self.http.read(request).await?;
        Self::one_member(&answer)
    }

    /// Every member a paged search finds (`start`/`limit`, up to its `total`).
    async fn search_pages(
        &self,
        path: &[&str],
        parameter: &str,
        value: &str,
    ) -> Result<Vec<Customer>, PosError> {
        let mut found: Vec<Customer> = Vec::new();
        let mut start: u64 = 0;
        for _ in 0..MAX_SEARCH_PAGES {
            let request = self
                .request(Method::GET, path)
                .query(parameter, value)
                .query("start", &start.to_string())
                .query("limit", &SEARCH_PAGE_SIZE.to_string());
            let answer = self.http.read(request).await?;
            let page = wire::page(answer.body()).map_err(|why| bad_answer(why, &answer))?;
            let received = page.values.len() as u64;
            for customer in usable(Vendor::Blaze, &page.values, wire::customer) {
                if !found.iter().any(|c| c.customer_id == customer.customer_id) {
                    found.push(customer);
                }
            }
            start += received;
            if page.is_last(start, received, SEARCH_PAGE_SIZE) {
                break;
            }
        }
        Ok(found)
    }

    async fn search(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        // One look-up at BLAZE by the most selective filter; every filter is then checked on
        // what came back (the phone by its ten digits, as BLAZE holds it), so they combine
        // with AND and a looser match at BLAZE can't slip someone else through.
        let found: Vec<Customer> = if let Some(licence) = &query.drivers_license {
            self.search_pages(&["members", "search"], "licenceNumber", licence.trim())
                .await?
                .into_iter()
                .filter(|c| query.matches(c))
                .collect()
        } else if let Some(email) = &query.email {
            let request = self
                .request(Method::GET, ["members", "email", email.as_str()])
                .accept_status(StatusCode::NOT_FOUND)
                .accept_status(StatusCode::BAD_REQUEST);
            let answer = self.http.read(request).await?;
            let member = Self::one_member(&answer)?.map(Value::Object);
            usable(Vendor::Blaze, member.iter(), wire::customer)
                .into_iter()
                .filter(|c| query.matches(c))
                .collect()
        } else if let Some(digits) = &query.phone_digits {
            // BLAZE holds North American numbers: one without ten digits is nobody's there.
            let Some(ten) = Phone::parse(digits)
                .ok()
                .as_ref()
                .and_then(ten_digits)
                .map(str::to_owned)
            else {
                return Ok(CustomerPage::default());
            };
            let rest = CustomerQuery {
                phone_digits: None,
                ..query.clone()
            };
            self.search_pages(&["members", "search", "phone"], "phoneNumber", &ten)
                .await?
                .into_iter()
                .filter(|c| c.phone.as_ref().and_then(ten_digits) == Some(ten.as_str()))
                .filter(|c| rest.matches(c))
                .collect()
        } else {
            // A name alone: BLAZE has no name search, the mirror answers.
            return Err(PosError::Unsupported(Operation::SearchCustomers));
        };
        offset_page(found, query.page.as_ref(), query.limit)
    }

    /// A page of the walk of every member (see [`Walk`]): newest windows first, each paged by
    /// `skip` to its `total`, filling the kiosk's `limit` across windows.
    async fn list(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        // An incremental sync's walk stops at its "since" rather than at `list_from`.
        let floor = query.changed_since.map_or(self.list_from, |since| {
            since.timestamp_millis().max(self.list_from)
        });
        let mut walk = Walk::read(query.page.as_ref(), floor, now_ms())?;
        let limit = usize::try_from(query.limit.clamp(1, MAX_PAGE_SIZE)).unwrap_or(1);
        let mut customers: Vec<Customer> = Vec::new();
        let mut windows = 0;
        let mut slowest = std::time::Duration::ZERO;
        for call in 0..MAX_CALLS_PER_PAGE {
            // A walk over many windows must fit the operation's deadline: with too little
            // time left for another call, the page ends here and the cursor goes on from it.
            if call > 0 && crate::http::deadline::time_left().is_some_and(|left| left < slowest * 2)
            {
                break;
            }
            let started = std::time::Instant::now();
            let (start, end) = walk.window();
            let want = limit.saturating_sub(customers.len()).max(1);
            let request = self
                .request(Method::GET, ["members"])
                .query("startDate", &start.to_string())
                .query("endDate", &end.to_string())
                .query("skip", &walk.skip.to_string())
                .query("limit", &want.to_string());
            let answer = self.http.read(request).await?;
            slowest = slowest.max(started.elapsed());
            let page = wire::page(answer.body()).map_err(|why| bad_answer(why, &answer))?;
            let received = page.values.len() as u64;
            // One member at a time, so a BLAZE that sends more than asked never overfills the
            // kiosk's page: what is not taken is read again from the cursor.
            let mut taken: u64 = 0;
            for member in &page.values {
                if customers.len() >= limit {
                    break;
                }
                taken += 1;
                if walk.holds(wire::modified(member)) {
                    customers.extend(usable(Vendor::Blaze, [member], wire::customer));
                }
            }
            walk.skip = walk.skip.saturating_add(taken);
            if taken == received && page.is_last(walk.skip, received, want as u64) {
                windows += 1;
                match walk.older() {
                    Some(older) => walk = older,
                    None => {
                        return Ok(CustomerPage {
                            customers,
                            next: None,
                        });
                    }
                }
                if windows >= MAX_WINDOWS_PER_PAGE {
                    break;
                }
            }
            if customers.len() >= limit {
                break;
            }
        }
        Ok(CustomerPage {
            customers,
            next: Some(walk.token()),
        })
    }

    /// Sends a create or an update; a 400 (or 422) is BLAZE's refusal.
    async fn write(&self, request: VendorRequest) -> Result<VendorAnswer, PosError> {
        let request = request
            .accept_status(StatusCode::BAD_REQUEST)
            .accept_status(StatusCode::UNPROCESSABLE_ENTITY);
        self.http.write(request).await
    }
}

/// Neither key.
impl std::fmt::Debug for Blaze {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blaze")
            .field("http", &self.http)
            .field("consumer_type", &self.consumer_type)
            .field("list_from", &self.list_from)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for BlazeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlazeConfig")
            .field("consumer_type", &self.consumer_type)
            .field("list_from", &self.list_from)
            .field("common", &self.common)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CustomerDirectory for Blaze {
    fn vendor(&self) -> Vendor {
        Vendor::Blaze
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

    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, PosError> {
        let answer_to_customer = |member: Map<String, Value>| {
            wire::customer(&Value::Object(member)).map_err(|why| PosError::BadAnswer {
                vendor: Vendor::Blaze,
                message: why,
                response: None,
            })
        };
        self.member(id.as_str())
            .await?
            .map(answer_to_customer)
            .transpose()
    }

    /// `POST members` answers 200 (not 201) with the member. BLAZE takes no client key and
    /// de-duplicates nothing we know of: a lost answer is reconciled by the domain (its
    /// duplicate check searches by e-mail, phone and licence).
    async fn create(&self, customer: &NewCustomer, _key: &CreateKey) -> Result<Customer, PosError> {
        let body = wire::new_member(customer, &self.consumer_type)?;
        let answer = self
            .write(self.request(Method::POST, ["members"]).json(&body))
            .await?;
        if is_refusal(answer.status()) {
            return Err(refusal(&answer));
        }
        to_customer(answer.body(), &answer)
    }

    /// BLAZE's `PUT members/{id}` replaces the whole member, so the member is read first and
    /// sent back with only the kiosk's change (see `wire::update_body`): nothing it did not
    /// name is lost. Not atomic: a change made at the register between the read and the PUT
    /// is overwritten (BLAZE offers no version to guard it).
    async fn update(&self, id: &CustomerId, patch: &CustomerPatch) -> Result<Customer, PosError> {
        let member = self.member(id.as_str()).await?.ok_or(PosError::NotFound)?;
        let body = wire::update_body(&member, patch)?;
        let answer = self
            .write(
                self.request(Method::PUT, ["members", id.as_str()])
                    .json(&body),
            )
            .await?;
        if answer.status() == StatusCode::BAD_REQUEST && wire::says_missing(answer.body()) {
            return Err(PosError::NotFound);
        }
        if is_refusal(answer.status()) {
            return Err(refusal(&answer));
        }
        if answer.body().is_null() {
            // Answered without the member: read it back.
            return self.get(id).await?.ok_or(PosError::NotFound);
        }
        to_customer(answer.body(), &answer)
    }
}
