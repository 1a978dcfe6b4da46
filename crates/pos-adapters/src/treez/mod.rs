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
use serde_json::Value;

use crate::convert::ten_digits;
use crate::http::{
    Method, Secret, StatusCode, TokenCache, VendorAnswer, VendorHttp, VendorRequest,
};
use crate::paging::{PageCursor, offset_page};
use crate::{AdapterError, CommonConfig, Settings, VendorAdapter};

use wire::Envelope;

/// The production host; the dispensary's slug follows it.
pub const DEFAULT_BASE_URL: &str = "https://api.treez.io/v2.0/dispensary";

/// Documented token lifetime, used when the answer does not say.
const TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// Treez refuses larger pages (`RESPONSE_LIMIT_EXCEEDS`); public clients use 50.
const MAX_PAGE_SIZE: u32 = 50;

/// "Changed since" for a full listing: the epoch, in the format Treez's path wants.
const LIST_FROM: &str = "1970-01-01T00:00:00.000+00:00";

/// The update path is not in any public source we found (docs/vendors/treez.md): kept here
/// so it is one line to correct.
const UPDATE_PATH: [&str; 1] = ["customer"];

/// What Treez offers: every operation; searches by licence, e-mail and phone (name alone is
/// the mirror's); a birthday is required on create (spec).
const CAPABILITIES: Capabilities = Capabilities {
    required_fields: &[OptionalField::Birthday],
    search_by: &[
        SearchFilter::DriversLicense,
        SearchFilter::Email,
        SearchFilter::Phone,
    ],
    ..Capabilities::ALL
};

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

    /// Treez publishes no rate limit, so none is set unless the store config's
    /// `rate_limit_per_minute` asks for one.
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
        let settings = settings.clone().with_overrides(&config.common);
        let base_url = config.common.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
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
        Ok(Self {
            http,
            tokens: TokenCache::new(fetch),
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
                Err(PosError::Unauthorized(_)) if !refreshed => {
                    self.tokens.invalidate(&token).await;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    /// The customers of a successful answer; `None` for Treez's "no such customer".
    fn read_customers(&self, answer: VendorAnswer) -> Result<Option<Vec<Customer>>, PosError> {
        let envelope: Envelope = answer.json()?;
        if answer.status() == StatusCode::NOT_FOUND {
            return if wire::NOT_FOUND_REASONS.contains(&envelope.reason()) {
                Ok(None)
            } else {
                // A 404 of another kind (a wrong dispensary) is not "no customer".
                Err(PosError::Upstream(answer.vendor_response()))
            };
        }
        if answer.status() == StatusCode::BAD_REQUEST || envelope.failed() {
            return Err(rejection(&envelope, answer));
        }
        envelope
            .customers()
            .map(Some)
            .map_err(|message| PosError::BadAnswer {
                vendor: Vendor::Treez,
                message,
                response: Some(answer.vendor_response()),
            })
    }

    async fn list(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        let cursor = PageCursor::read(query.page.as_ref(), query.limit, MAX_PAGE_SIZE)?;
        let (page_text, size_text) = (cursor.page.to_string(), cursor.size.to_string());
        let answer = self
            .send(
                || {
                    self.http.request(
                        Method::GET,
                        [
                            "customer",
                            "lastUpdated",
                            "after",
                            LIST_FROM,
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
        let customers = self.read_customers(answer)?.unwrap_or_default();
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
                .and_then(ten_digits)
                .map(str::to_owned)
            else {
                return Ok(CustomerPage::default());
            };
            ("phone", ten)
        } else {
            // Treez has no search by name: the domain answers it from the mirror.
            return Err(PosError::Unsupported(Operation::SearchCustomers));
        };
        let answer = self
            .send(
                || self.http.request(Method::GET, ["customer", kind, &value]),
                false,
            )
            .await?;
        let found: Vec<Customer> = self
            .read_customers(answer)?
            .unwrap_or_default()
            .into_iter()
            .filter(|c| rest.matches(c))
            .collect();
        offset_page(found, query.page.as_ref(), query.limit)
    }

    /// The one customer a write answers with.
    fn written(&self, answer: VendorAnswer) -> Result<Customer, PosError> {
        let status = answer.status();
        let response = answer.vendor_response();
        match self.read_customers(answer)? {
            Some(mut customers) if customers.len() == 1 => {
                customers.pop().ok_or(PosError::NotFound)
            }
            None => Err(PosError::NotFound),
            Some(_) => Err(PosError::BadAnswer {
                vendor: Vendor::Treez,
                message: format!("a write answered {status} without exactly one customer"),
                response: Some(response),
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

/// A Treez refusal: on our field when it names one, else the vendor's answer as is.
fn rejection(envelope: &Envelope, answer: VendorAnswer) -> PosError {
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

    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, PosError> {
        let answer = self
            .send(
                || self.http.request(Method::GET, ["customer", id.as_str()]),
                false,
            )
            .await?;
        Ok(self
            .read_customers(answer)?
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
        self.written(answer)
    }

    async fn update(&self, id: &CustomerId, patch: &CustomerPatch) -> Result<Customer, PosError> {
        let body = wire::patch(patch)?;
        let answer = self
            .send(
                || {
                    let path = UPDATE_PATH.into_iter().chain([id.as_str()]);
                    self.http.request(Method::PUT, path).json(&body)
                },
                true,
            )
            .await?;
        self.written(answer)
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
