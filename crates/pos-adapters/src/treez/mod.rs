//! Treez, over its v2 API: `client_id` + `apikey` are exchanged for a two-hour token at
//! `config/api/gettokens`, then every call carries `authorization: <token>` and `client_id`.
//! Field mapping and error reading are in `wire.rs`; docs/vendors/treez.md has the sources,
//! the quirks and what is unverified.

#[cfg(test)]
mod properties;
mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::{
    Capabilities, CreateKey, Customer, CustomerDirectory, CustomerId, CustomerPage, CustomerPatch,
    CustomerQuery, NewCustomer, Operation, OptionalField, PosError, SearchFilter, Vendor,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::http::{
    Method, Secret, StatusCode, TokenCache, VendorAnswer, VendorHttp, VendorRequest,
};
use crate::paging::{PageCursor, offset_page};
use crate::{AdapterError, CommonConfig, Settings, VendorAdapter};

use wire::{Envelope, Unique};

/// The production host; the dispensary's slug follows it.
pub const DEFAULT_BASE_URL: &str = "https://api.treez.io/v2.0/dispensary";

/// Documented token lifetime, used when the answer does not say.
const TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// Treez refuses larger pages (`RESPONSE_LIMIT_EXCEEDS`); public clients use 50.
const MAX_PAGE_SIZE: u32 = 50;

/// "Changed since" for a full listing: the epoch.
const LIST_FROM: chrono::DateTime<chrono::Utc> = chrono::DateTime::UNIX_EPOCH;

/// A time as Treez's list path takes it (`yyyy-MM-ddTHH:mm:ss.SSSXXX`, code). Treez lists what
/// changed *after* it (the double, after the public clients): a millisecond earlier makes it
/// "at or after", as [`CustomerQuery::changed_since`] means.
fn list_after(since: chrono::DateTime<chrono::Utc>) -> String {
    let since = since - chrono::TimeDelta::milliseconds(1);
    since
        .max(LIST_FROM)
        .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string()
}

/// What Treez offers: every operation; searches by licence, e-mail, phone and whole names;
/// a birthday is required on create and on every update (spec).
const CAPABILITIES: Capabilities = Capabilities {
    required_fields: &[OptionalField::Birthday],
    search_by: &[
        SearchFilter::DriversLicense,
        SearchFilter::Email,
        SearchFilter::Phone,
        SearchFilter::Name,
    ],
    ..Capabilities::ALL
};

/// Treez allows 10 requests a second per location (spec). As 5 a second with 5 at once, no
/// second ever sees more than 10, however the calls fall.
const RATE_LIMIT_PER_MINUTE: u32 = 300;
const RATE_LIMIT_BURST: u32 = 5;

/// The adapter the registry opens for a Treez store.
pub type Adapter = Treez;

/// A store's Treez config (`store add --config`).
#[derive(Clone, Deserialize)]
pub struct TreezConfig {
    /// The dispensary's short name at Treez (`<slug>.treez.io`).
    #[serde(deserialize_with = "crate::config::plain_text")]
    pub dispensary: String,
    #[serde(deserialize_with = "crate::config::secret")]
    pub client_id: Secret,
    #[serde(deserialize_with = "crate::config::secret")]
    pub api_key: Secret,
    /// Sent on create; Treez requires one.
    #[serde(default)]
    pub patient_type: PatientType,
    #[serde(flatten)]
    pub common: CommonConfig,
}

/// Treez's `patient_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PatientType {
    #[default]
    Adult,
    Medical,
    MedicalMmid,
}

type TokenFuture = Pin<Box<dyn Future<Output = Result<(Secret, Duration), PosError>> + Send>>;
type FetchToken = Box<dyn Fn() -> TokenFuture + Send + Sync>;

/// One store's Treez.
pub struct Treez {
    http: Arc<VendorHttp>,
    tokens: TokenCache<FetchToken>,
    client_id: Secret,
    patient_type: PatientType,
}

impl VendorAdapter for Treez {
    const VENDOR: Vendor = Vendor::Treez;
    const CAPABILITIES: Capabilities = CAPABILITIES;
    type Config = TreezConfig;

    /// Treez's published limit, unless the store config's `rate_limit_per_minute` sets its own.
    fn open(config: TreezConfig, settings: &Settings) -> Result<Self, AdapterError> {
        if !config
            .dispensary
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        {
            return Err(AdapterError::Config {
                vendor: Vendor::Treez,
                message:
                    "key \"dispensary\" must be the dispensary's short name (letters, digits, - and _)"
                        .to_owned(),
            });
        }
        let settings = settings
            .clone()
            .with_rate_limit_burst(RATE_LIMIT_PER_MINUTE, RATE_LIMIT_BURST)
            .with_overrides(&config.common);
        let base_url = config
            .common
            .base_url
            .as_deref()
            .unwrap_or(DEFAULT_BASE_URL);
        let base = format!("{base_url}/{}", config.dispensary);
        let http = Arc::new(VendorHttp::new(
            Vendor::Treez,
            &base,
            settings,
            &[config.client_id.clone(), config.api_key.clone()],
        )?);
        let fetch: FetchToken = {
            let http = http.clone();
            let (client_id, api_key) = (config.client_id.clone(), config.api_key.clone());
            Box::new(move || {
                let (http, client_id, api_key) = (http.clone(), client_id.clone(), api_key.clone());
                Box::pin(async move { fetch_token(&http, &client_id, &api_key).await })
            })
        };
        // The token is fetched for the dispensary with these credentials.
        let credentials = Secret::new(format!(
            "{}\0{}\0{}",
            config.dispensary,
            config.client_id.expose(),
            config.api_key.expose()
        ));
        let tokens =
            TokenCache::new(fetch).shared_through(http.settings(), "treez-token", credentials);
        Ok(Self {
            http,
            tokens,
            client_id: config.client_id,
            patient_type: config.patient_type,
        })
    }
}

impl Treez {
    /// Sends a request with the store's token; after a 401 the token is dropped and the
    /// request sent once more with a new one. That is safe even for a create: a 401 means Treez
    /// refused the request before doing anything.
    async fn send(
        &self,
        build: impl Fn() -> VendorRequest,
        write: bool,
    ) -> Result<VendorAnswer, PosError> {
        let mut refreshed = false;
        loop {
            let token = self.tokens.token().await?;
            let request = build()
                .secret_header("authorization", &token)
                .secret_header("client_id", &self.client_id)
                .accept_status(StatusCode::NOT_FOUND)
                .accept_status(StatusCode::BAD_REQUEST);
            let answer = if write {
                self.http.write(request).await
            } else {
                self.http.read(request).await
            };
            match answer {
                // Only a 401 says the token was refused; a 403 would be refused again.
                Err(PosError::Unauthorized(refusal)) if !refreshed && refusal.status == 401 => {
                    self.tokens.invalidate(&token).await;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    /// The `data` of a successful answer; `None` for Treez's "no such customer" (a 404, or an
    /// update's 400 with that reason).
    fn data<'a>(&self, answer: &'a VendorAnswer) -> Result<Option<Envelope<'a>>, PosError> {
        let envelope = Envelope::of(answer)?;
        if wire::NOT_FOUND_REASONS.contains(&envelope.reason())
            && matches!(
                answer.status(),
                StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST
            )
        {
            return Ok(None);
        }
        if answer.status() == StatusCode::NOT_FOUND {
            // A 404 of another kind (a wrong dispensary) is not "no customer".
            return Err(PosError::Upstream(answer.vendor_response()));
        }
        if answer.status() == StatusCode::BAD_REQUEST || envelope.failed() {
            return Err(rejection(&envelope, answer.clone()));
        }
        Ok(Some(envelope))
    }

    /// The customers of a successful answer; `None` for Treez's "no such customer".
    fn read_customers(&self, answer: &VendorAnswer) -> Result<Option<Vec<Customer>>, PosError> {
        let Some(envelope) = self.data(answer)? else {
            return Ok(None);
        };
        envelope
            .customers()
            .map(Some)
            .map_err(|message| PosError::BadAnswer {
                vendor: Vendor::Treez,
                message,
                response: Some(answer.vendor_response()),
            })
    }

    /// The record Treez holds for `id`, as it holds it (every field, ours or not), for an
    /// update that must send it back whole; `None` when Treez has no such customer.
    async fn record(&self, id: &str) -> Result<Option<Map<String, Value>>, PosError> {
        if !is_treez_id(id) {
            return Ok(None);
        }
        let answer = self
            .send(|| self.http.request(Method::GET, ["customer", id]), false)
            .await?;
        let Some(envelope) = self.data(&answer)? else {
            return Ok(None);
        };
        let record = match envelope.data {
            Value::Array(records) if records.len() == 1 => records.first(),
            one => Some(one),
        };
        match record {
            Some(Value::Object(record)) => Ok(Some(record.clone())),
            _ => Err(bad_record(&answer)),
        }
    }

    /// After Treez refused a write because `key` belongs to another customer: that customer,
    /// as our 409, when a look-up finds them; Treez's refusal otherwise.
    async fn duplicate(&self, key: Unique, value: &str, refusal: VendorAnswer) -> PosError {
        let query = CustomerQuery {
            email: (key == Unique::Email).then(|| value.to_lowercase()),
            phone_digits: (key == Unique::Phone).then(|| value.to_owned()),
            limit: 1,
            ..CustomerQuery::default()
        };
        match self.search(&query).await {
            Ok(page) => match page.customers.into_iter().next() {
                Some(existing) => PosError::Duplicate(Box::new(existing)),
                None => PosError::Upstream(refusal.vendor_response()),
            },
            Err(error) => {
                tracing::warn!(vendor = %Vendor::Treez, %error, "could not look up the customer Treez says exists");
                PosError::Upstream(refusal.vendor_response())
            }
        }
    }

    async fn list(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        let cursor = PageCursor::read(query.page.as_ref(), query.limit, MAX_PAGE_SIZE)?;
        let (page_text, size_text) = (cursor.page.to_string(), cursor.size.to_string());
        let after = list_after(query.changed_since.unwrap_or(LIST_FROM));
        let answer = self
            .send(
                || {
                    self.http.request(
                        Method::GET,
                        [
                            "customer",
                            "lastUpdated",
                            "after",
                            &after,
                            "page",
                            &page_text,
                            "pagesize",
                            &size_text,
                        ],
                    )
                },
                false,
            )
            .await?;
        let records = answer
            .body()
            .get("data")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let customers = self.read_customers(&answer)?.unwrap_or_default();
        Ok(CustomerPage {
            customers,
            next: cursor.next(records),
        })
    }

    async fn search(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        // One look-up at Treez by its most selective key; the other filters are checked here.
        let mut rest = query.clone();
        let (kind, value) = if let Some(license) = rest.drivers_license.take() {
            ("driverlicense", license)
        } else if let Some(email) = rest.email.take() {
            ("email", email)
        } else if let Some(digits) = rest.phone_digits.take() {
            // Treez keeps ten digits; a number with no ten-digit form is nobody's there.
            let Some(ten) = domain::Phone::parse(&digits)
                .ok()
                .as_ref()
                .and_then(wire::treez_phone)
                .map(str::to_owned)
            else {
                return Ok(CustomerPage::default());
            };
            ("phone", ten)
        } else {
            return self.search_by_name(query).await;
        };
        let answer = self
            .send(
                || self.http.request(Method::GET, ["customer", kind, &value]),
                false,
            )
            .await?;
        let found: Vec<Customer> = self
            .read_customers(&answer)?
            .unwrap_or_default()
            .into_iter()
            .filter(|c| rest.matches(c))
            .collect();
        offset_page(found, query.page.as_ref(), query.limit)
    }

    /// Treez's name look-up takes a whole first and last name
    /// (`customer/firstname/{f}/lastname/{l}`); ours matches the start of either. A name of
    /// two words or more is asked as first word and the rest; a single word, or whole names
    /// Treez does not know, are left to the mirror, which matches prefixes.
    async fn search_by_name(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        let words = query.name_words();
        let Some((first, rest)) = words.split_first().filter(|(_, rest)| !rest.is_empty()) else {
            return Err(PosError::Unsupported(Operation::SearchCustomers));
        };
        let last = rest.join(" ");
        let answer = self
            .send(
                || {
                    self.http.request(
                        Method::GET,
                        ["customer", "firstname", first, "lastname", &last],
                    )
                },
                false,
            )
            .await?;
        let found: Vec<Customer> = self
            .read_customers(&answer)?
            .unwrap_or_default()
            .into_iter()
            .filter(|c| query.matches(c))
            .collect();
        if found.is_empty() {
            return Err(PosError::Unsupported(Operation::SearchCustomers));
        }
        offset_page(found, query.page.as_ref(), query.limit)
    }

    /// The one customer a write answers with.
    fn written(&self, answer: VendorAnswer) -> Result<Customer, PosError> {
        match self.read_customers(&answer)? {
            Some(mut customers) if customers.len() == 1 => {
                customers.pop().ok_or(PosError::NotFound)
            }
            None => Err(PosError::NotFound),
            Some(_) => Err(PosError::BadAnswer {
                vendor: Vendor::Treez,
                message: format!(
                    "a write answered {} without exactly one customer",
                    answer.status()
                ),
                response: Some(answer.vendor_response()),
            }),
        }
    }
}

async fn fetch_token(
    http: &VendorHttp,
    client_id: &Secret,
    api_key: &Secret,
) -> Result<(Secret, Duration), PosError> {
    let request = http
        .request(Method::POST, ["config", "api", "gettokens"])
        .secret_form_field("client_id", client_id)
        .secret_form_field("apikey", api_key)
        .accept_status(StatusCode::NOT_FOUND);
    // A token grant changes nothing at Treez, so it may be retried like a read.
    let answer = http.read(request).await?;
    if answer.status() == StatusCode::NOT_FOUND {
        // No such dispensary: the store's config is wrong, not "no such customer".
        return Err(PosError::Upstream(answer.vendor_response()));
    }
    let token: wire::TokenAnswer = answer.json()?;
    let lifetime = token
        .expires_in
        .filter(|s| *s > 0)
        .map_or(TOKEN_LIFETIME, Duration::from_secs);
    Ok((Secret::new(token.access_token), lifetime))
}

/// Treez's customer ids are digits (spec).
fn is_treez_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

fn bad_record(answer: &VendorAnswer) -> PosError {
    PosError::BadAnswer {
        vendor: Vendor::Treez,
        message: "a look-up by id did not answer one customer".to_owned(),
        response: Some(answer.vendor_response()),
    }
}

/// A Treez refusal: on our field when it names one, else the vendor's answer as is.
fn rejection(envelope: &Envelope<'_>, answer: VendorAnswer) -> PosError {
    match wire::field_errors(envelope.reason(), envelope.detail()) {
        Some(errors) => PosError::Rejected(errors),
        None if answer.status().is_success() => PosError::Upstream(answer.vendor_response()),
        None => answer.into_error(),
    }
}

#[async_trait]
impl CustomerDirectory for Treez {
    fn vendor(&self) -> Vendor {
        Vendor::Treez
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

    /// Treez's ids are digits: any other id is nobody there, without a call.
    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, PosError> {
        if !is_treez_id(id.as_str()) {
            return Ok(None);
        }
        let answer = self
            .send(
                || self.http.request(Method::GET, ["customer", id.as_str()]),
                false,
            )
            .await?;
        Ok(self
            .read_customers(&answer)?
            .and_then(|mut customers| customers.pop()))
    }

    /// Treez takes no client key for a create: a lost answer is reconciled by the domain.
    async fn create(&self, customer: &NewCustomer, _key: &CreateKey) -> Result<Customer, PosError> {
        let body = wire::new_customer(customer, self.patient_type)?;
        let answer = self
            .send(
                || {
                    self.http
                        .request(Method::POST, ["customer", "detailcustomer"])
                        .json(&body)
                },
                true,
            )
            .await?;
        if let Some(error) = self
            .refused_as_duplicate(&answer, body.email, body.phone)
            .await
        {
            return Err(error);
        }
        self.written(answer)
    }

    /// Treez's update takes the whole record (`PATCH customer/update/{id}`, spec), so the
    /// record is read first and the kiosk's change applied to it: nothing it did not name is
    /// lost, whatever Treez does with fields left out. A customer Treez merged into another is
    /// updated there instead (one hop), and the answer carries the survivor's id.
    async fn update(&self, id: &CustomerId, patch: &CustomerPatch) -> Result<Customer, PosError> {
        let mut target = id.as_str().to_owned();
        let mut followed = false;
        // At most: the first read, the survivor's read, and one more after a merge that
        // happened between our read and our write.
        for attempt in 0..3 {
            let record = self.record(&target).await?.ok_or(PosError::NotFound)?;
            if let Some(survivor) = wire::merged_into(&record) {
                if followed {
                    // Merged twice: one hop is what we follow.
                    return Err(PosError::NotFound);
                }
                tracing::info!(vendor = %Vendor::Treez, customer = %target, %survivor, "the customer was merged into another: updating the survivor");
                target = survivor;
                followed = true;
                continue;
            }
            let body = wire::update_body(&record, patch, self.patient_type)?;
            let answer = self
                .send(
                    || {
                        self.http
                            .request(Method::PATCH, ["customer", "update", &target])
                            .json(&body)
                    },
                    true,
                )
                .await?;
            // Merged away since we read it: read again, which finds the survivor.
            if attempt < 2
                && !followed
                && answer.status() == StatusCode::BAD_REQUEST
                && Envelope::of(&answer).is_ok_and(|e| e.merged_away())
            {
                continue;
            }
            let sent = |field: &str| body.get(field).and_then(Value::as_str);
            if let Some(error) = self
                .refused_as_duplicate(&answer, sent("email"), sent("phone"))
                .await
            {
                return Err(error);
            }
            return self.written(answer);
        }
        Err(PosError::NotFound)
    }
}

impl Treez {
    /// A write Treez refused because an e-mail or phone it sent belongs to another customer:
    /// that customer (our 409), or the refusal as Treez gave it.
    async fn refused_as_duplicate(
        &self,
        answer: &VendorAnswer,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Option<PosError> {
        if answer.status().is_success() {
            return None;
        }
        let key = Envelope::of(answer).ok()?.duplicate_of()?;
        let value = match key {
            Unique::Email => email,
            Unique::Phone => phone,
        }?;
        Some(self.duplicate(key, value, answer.clone()).await)
    }
}

/// Neither credential, nor the token.
impl std::fmt::Debug for Treez {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Treez")
            .field("http", &self.http)
            .field("patient_type", &self.patient_type)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TreezConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreezConfig")
            .field("dispensary", &self.dispensary)
            .field("patient_type", &self.patient_type)
            .field("common", &self.common)
            .finish_non_exhaustive()
    }
}
