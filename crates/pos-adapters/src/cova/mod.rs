//! Cova, over its integrator API (an Azure API Management portal in front of what is, in paths
//! and JSON, the iQmetrix CRM): an OAuth2 password grant at the store's `token_url` gives a
//! 12-hour token, sent as `Authorization: Bearer`; every customer path is under
//! `{base_url}/v1/Companies({company_id})/`. Field mapping, search criteria, update plans and
//! error reading are in `wire.rs`; docs/vendors/cova.md has the sources, the quirks and what is
//! unverified.
//!
//! | operation | calls |
//! |---|---|
//! | list | `GET CustomerFull?$filter=LastModifiedDateUtc ge datetime'1900-01-01T00:00:00z'&$skip=&$top=` (from the incremental sync's time instead of 1900) |
//! | search | `POST Search`, by e-mail or else by phone, the rest matched here |
//! | get | `GET CustomerFull({id})`, then the customer it was merged into (one hop) |
//! | create | `POST CustomerFull` with nested `ContactMethods` (and the licence extension) |
//! | update | `GET CustomerFull({id})`, then `PUT Customers({id})` (whole core, current `Version`) and `POST`/`PUT`/`DELETE Customers({id})/ContactMethods(..)` / `CustomerExtensions(..)` |

#[cfg(test)]
mod properties;
mod wire;

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use domain::{
    Capabilities, CreateKey, Customer, CustomerDirectory, CustomerId, CustomerPage, CustomerPatch,
    CustomerQuery, NewCustomer, Operation, OptionalField, PosError, SearchFilter, Vendor,
    VendorResponse,
};
use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use crate::http::VendorRequest;
use crate::http::{Method, Secret, StatusCode, TokenCache, Url, VendorAnswer, VendorHttp};
use crate::paging::{PageCursor, bad_cursor, offset_page, usable};
use crate::{AdapterError, CommonConfig, Settings, VendorAdapter};

use wire::{Carried, Step};

/// Cova's integrator API (customers are under `/crm`).
pub const DEFAULT_BASE_URL: &str = "https://api.covasoft.net/crm";

/// iQmetrix's token endpoint, where Cova's OAuth2 password grant is made.
pub const DEFAULT_TOKEN_URL: &str = "https://accounts.iqmetrix.net/v1/oauth2/token";

/// The largest `$top` Cova takes.
const MAX_PAGE_SIZE: u32 = 100;

/// What Cova offers: every operation; searches by e-mail and phone (`POST Search`; names and
/// licences are left to the mirror); gender it does not keep at all.
const CAPABILITIES: Capabilities = Capabilities {
    search_by: &[SearchFilter::Email, SearchFilter::Phone],
    unreadable_fields: &[OptionalField::Gender],
    ..Capabilities::ALL
};

/// A store without `licence_extension_type_id`: the licence is kept by the mirror only.
const WITHOUT_LICENCE: Capabilities = Capabilities {
    unreadable_fields: &[OptionalField::Gender, OptionalField::DriversLicense],
    ..CAPABILITIES
};

/// The adapter the registry opens for a Cova store.
pub type Adapter = Cova;

/// A store's Cova config (`store add --config`).
#[derive(Clone, Deserialize)]
pub struct CovaConfig {
    /// The company's number at Cova (`Companies({company_id})` in every path).
    #[serde(deserialize_with = "company_id")]
    pub company_id: String,
    #[serde(deserialize_with = "crate::config::secret")]
    pub username: Secret,
    #[serde(deserialize_with = "crate::config::secret")]
    pub password: Secret,
    #[serde(deserialize_with = "crate::config::secret")]
    pub client_id: Secret,
    #[serde(deserialize_with = "crate::config::secret")]
    pub client_secret: Secret,
    /// Where the password grant is made; iQmetrix's endpoint when absent.
    #[serde(default, deserialize_with = "token_url")]
    pub token_url: Option<String>,
    /// The `CustomerExtensions` type that holds the licence; without it the licence is kept
    /// by the mirror only.
    #[serde(default, deserialize_with = "extension_type")]
    pub licence_extension_type_id: Option<i64>,
    #[serde(flatten)]
    pub common: CommonConfig,
}

/// A positive integer, as a JSON number or a string of digits. Errors name what it must be,
/// never the value.
fn positive_integer<'de, D: Deserializer<'de>>(
    value: Value,
    what: &'static str,
) -> Result<Option<u64>, D::Error> {
    let number = match &value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    let unexpected = match &value {
        Value::Number(_) => Unexpected::Other("a number"),
        Value::String(_) => Unexpected::Other("a text"),
        Value::Bool(_) => Unexpected::Other("a boolean"),
        Value::Array(_) => Unexpected::Seq,
        _ => Unexpected::Map,
    };
    match number.filter(|n| *n > 0) {
        Some(n) => Ok(Some(n)),
        None if matches!(value, Value::Number(_) | Value::String(_)) => {
            Err(D::Error::invalid_value(unexpected, &what))
        }
        None => Err(D::Error::invalid_type(unexpected, &what)),
    }
}

fn company_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    const WHAT: &str = "Cova's company number (a positive integer)";
    positive_integer::<D>(Value::deserialize(deserializer)?, WHAT)?
        .map(|n| n.to_string())
        .ok_or_else(|| D::Error::invalid_type(Unexpected::Unit, &WHAT))
}

fn extension_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    const WHAT: &str =
        "the id of Cova's customer extension type for the licence (a positive integer)";
    let id = positive_integer::<D>(Value::deserialize(deserializer)?, WHAT)?;
    id.map(|n| {
        i64::try_from(n).map_err(|_| D::Error::invalid_value(Unexpected::Other("a number"), &WHAT))
    })
    .transpose()
}

/// Absent, `null` or blank: iQmetrix's endpoint. The URL itself is checked by `open`.
fn token_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    const WHAT: &str = "an https URL (http only on a loopback host)";
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::String(text) if text.trim().is_empty() => Ok(None),
        Value::String(text) if text.chars().any(char::is_control) => Err(D::Error::invalid_value(
            Unexpected::Other("a text with control characters"),
            &WHAT,
        )),
        Value::String(text) => Ok(Some(text.trim().to_owned())),
        Value::Array(_) => Err(D::Error::invalid_type(Unexpected::Seq, &WHAT)),
        _ => Err(D::Error::invalid_type(
            Unexpected::Other("not a text"),
            &WHAT,
        )),
    }
}

/// The token URL carries the password: https, or http on this machine (a test double).
fn checked_token_url(url: &str) -> Result<Url, AdapterError> {
    crate::http::vendor_url(url).ok_or_else(|| AdapterError::Config {
        vendor: Vendor::Cova,
        message: "key \"token_url\" must be an https URL (http only on a loopback host), \
                  without a user or password"
            .to_owned(),
    })
}

type TokenFuture = Pin<Box<dyn Future<Output = Result<(Secret, Duration), PosError>> + Send>>;
type FetchToken = Box<dyn Fn() -> TokenFuture + Send + Sync>;

/// The password grant's credentials.
#[derive(Clone)]
struct Grant {
    username: Secret,
    password: Secret,
    client_id: Secret,
    client_secret: Secret,
}

/// How the store's client is rebuilt when Cova announces its limit (the kit's limiter is sized
/// once, when a client is built); absent when the store's config sets its own limit.
struct Learning {
    base_url: String,
    settings: Settings,
    common: CommonConfig,
    secrets: Vec<Secret>,
    /// The figure in force: the default until Cova says otherwise.
    per_minute: AtomicU32,
}

impl Learning {
    fn settings_for(&self, per_minute: u32) -> Settings {
        self.settings
            .clone()
            .with_rate_limit(per_minute)
            .with_overrides(&self.common)
    }
}

/// One store's Cova company.
pub struct Cova {
    /// The store's client to Cova's API, replaced when Cova announces another limit.
    api: RwLock<Arc<VendorHttp>>,
    learning: Option<Learning>,
    tokens: TokenCache<FetchToken>,
    /// `Companies({company_id})`, the second segment of every path.
    company: String,
    licence: Option<i64>,
}

impl VendorAdapter for Cova {
    const VENDOR: Vendor = Vendor::Cova;
    const CAPABILITIES: Capabilities = CAPABILITIES;
    type Config = CovaConfig;

    /// A default limit until Cova's first answer announces its own, unless the store config's
    /// `rate_limit_per_minute` sets one (then Cova's figure is not followed). Sends nothing.
    fn open(config: CovaConfig, settings: &Settings) -> Result<Self, AdapterError> {
        let token_url =
            checked_token_url(config.token_url.as_deref().unwrap_or(DEFAULT_TOKEN_URL))?;
        let grant = Grant {
            username: config.username,
            password: config.password,
            client_id: config.client_id,
            client_secret: config.client_secret,
        };
        let secrets = vec![
            grant.username.clone(),
            grant.password.clone(),
            grant.client_id.clone(),
            grant.client_secret.clone(),
        ];
        let base_url = config
            .common
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let learning = Learning {
            base_url: base_url.clone(),
            settings: settings.clone(),
            common: config.common.clone(),
            secrets: secrets.clone(),
            per_minute: AtomicU32::new(wire::DEFAULT_RATE_LIMIT_PER_MINUTE),
        };
        let api = VendorHttp::new(
            Vendor::Cova,
            &base_url,
            learning.settings_for(wire::DEFAULT_RATE_LIMIT_PER_MINUTE),
            &secrets,
        )?;
        // The token host is another service: the store's timeout, none of the API's limit.
        let token_settings = settings.clone().with_overrides(&CommonConfig {
            rate_limit_per_minute: None,
            ..config.common.clone()
        });
        let token_http = Arc::new(VendorHttp::new(
            Vendor::Cova,
            token_url.as_str(),
            token_settings,
            &secrets,
        )?);
        // The token is granted at this token URL for these credentials.
        let credentials = Secret::new(format!(
            "{token_url}\0{}\0{}\0{}\0{}",
            grant.username.expose(),
            grant.password.expose(),
            grant.client_id.expose(),
            grant.client_secret.expose()
        ));
        let fetch: FetchToken = Box::new(move || {
            let (http, grant) = (token_http.clone(), grant.clone());
            Box::pin(async move { fetch_token(&http, &grant).await })
        });
        Ok(Self {
            api: RwLock::new(Arc::new(api)),
            learning: config
                .common
                .rate_limit_per_minute
                .is_none()
                .then_some(learning),
            tokens: TokenCache::new(fetch).shared_through(settings, "cova-token", credentials),
            company: format!("Companies({})", config.company_id),
            licence: config.licence_extension_type_id,
        })
    }
}

/// The password grant (form body, as Cova documents it). A refusal of our credentials (RFC
/// 6749's `invalid_grant` for a wrong user or password, which comes as a 400,
/// `invalid_client`...) is `Unauthorized`; the answer is shown only scrubbed (the store's
/// credentials, and every token-like key, redacted).
async fn fetch_token(http: &VendorHttp, grant: &Grant) -> Result<(Secret, Duration), PosError> {
    let request = http
        .request(Method::POST, std::iter::empty::<&str>())
        .form_field("grant_type", "password")
        .secret_form_field("username", &grant.username)
        .secret_form_field("password", &grant.password)
        .secret_form_field("client_id", &grant.client_id)
        .secret_form_field("client_secret", &grant.client_secret)
        .accept_status(StatusCode::BAD_REQUEST)
        .accept_status(StatusCode::UNAUTHORIZED);
    // A grant changes nothing: retried like a read.
    let answer = http.read(request).await?;
    if !answer.status().is_success() {
        let response = answer.vendor_response();
        return Err(
            if wire::refused_credentials(response.status, answer.body()) {
                // The contract's "credentials refused", whatever status OAuth2 chose for it.
                PosError::Unauthorized(VendorResponse {
                    status: StatusCode::UNAUTHORIZED.as_u16(),
                    ..response
                })
            } else {
                PosError::Upstream(response)
            },
        );
    }
    let token: wire::TokenAnswer = answer.json()?;
    if token.access_token.trim().is_empty() {
        return Err(PosError::BadAnswer {
            vendor: Vendor::Cova,
            message: "the token answer has no access_token".to_owned(),
            response: Some(answer.vendor_response()),
        });
    }
    let lifetime = token.lifetime();
    Ok((Secret::new(token.access_token), lifetime))
}

/// Why a write of an update did not go through.
enum Refusal {
    /// A stale `Version` (or a customer merged away, or an item gone, since it was read): read
    /// again and apply what is left.
    Conflict(VendorAnswer),
    Failed(PosError),
}

impl Cova {
    /// The store's current client.
    fn api(&self) -> Arc<VendorHttp> {
        self.api
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A request to `v1/Companies({company_id})/` followed by `rest`.
    fn at(&self, http: &VendorHttp, method: Method, rest: &[&str]) -> VendorRequest {
        let segments = ["v1", self.company.as_str()]
            .into_iter()
            .chain(rest.iter().copied());
        http.request(method, segments)
    }

    /// Sends a request with the store's token. After a 401 the token is dropped and the request
    /// sent once more with a new one, a write too: a 401 is APIM's or the service's refusal of
    /// the token, before anything is done (a 403, the company refused, is not re-sent). Every
    /// answer tells the limiter Cova's figure; a 429 without `Retry-After` gets APIM's wait.
    async fn send(
        &self,
        build: impl Fn(&VendorHttp) -> VendorRequest,
        write: bool,
    ) -> Result<VendorAnswer, PosError> {
        let mut resent = false;
        loop {
            let token = self.tokens.token().await?;
            let http = self.api();
            let request = build(&http).bearer(&token);
            let outcome = if write {
                http.write(request).await
            } else {
                http.read(request).await
            };
            match outcome {
                Ok(answer) => {
                    self.learn(&answer);
                    return Ok(answer);
                }
                Err(PosError::Unauthorized(response)) if response.status == 401 && !resent => {
                    tracing::info!(vendor = %Vendor::Cova, "the token was refused: fetching a new one and sending again");
                    self.tokens.invalidate(&token).await;
                    resent = true;
                }
                Err(error) => {
                    return Err(wire::with_apim_wait(error, http.settings().max_retry_after));
                }
            }
        }
    }

    /// Follows Cova's `COVA-APIM-RateLimit-Limit`: a figure other than the one in force
    /// rebuilds the store's client with it (the kit's limiter cannot be re-sized).
    fn learn(&self, answer: &VendorAnswer) {
        let Some(learning) = &self.learning else {
            return;
        };
        let Some(per_minute) = answer
            .headers()
            .get(wire::LIMIT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|n| *n > 0)
        else {
            return;
        };
        if learning.per_minute.swap(per_minute, Ordering::Relaxed) == per_minute {
            return;
        }
        let settings = learning.settings_for(per_minute);
        match VendorHttp::new(
            Vendor::Cova,
            &learning.base_url,
            settings,
            &learning.secrets,
        ) {
            Ok(http) => {
                *self.api.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(http);
                tracing::info!(vendor = %Vendor::Cova, per_minute, "the store's limiter follows the rate limit Cova announced");
            }
            Err(error) => {
                tracing::warn!(vendor = %Vendor::Cova, %error, "could not follow the rate limit Cova announced");
            }
        }
    }

    /// The `CustomerFull` Cova holds for `id`, as it holds it; `None` for an unknown id.
    async fn record(&self, id: &str) -> Result<Option<Map<String, Value>>, PosError> {
        let segment = format!("CustomerFull({id})");
        let answer = self
            .send(
                |http| {
                    self.at(http, Method::GET, &[&segment])
                        .accept_status(StatusCode::NOT_FOUND)
                },
                false,
            )
            .await?;
        if answer.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        match answer.body() {
            Value::Object(record) => Ok(Some(record.clone())),
            _ => Err(bad_answer(&answer, "a customer is not a JSON object")),
        }
    }

    /// One customer as ours.
    fn read(&self, record: &Map<String, Value>) -> Result<Customer, PosError> {
        wire::customer(&Value::Object(record.clone()), self.licence).map_err(|message| {
            PosError::BadAnswer {
                vendor: Vendor::Cova,
                message,
                response: None,
            }
        })
    }

    async fn list(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        let cursor = PageCursor::read(query.page.as_ref(), query.limit, MAX_PAGE_SIZE)?;
        let skip = u64::from(cursor.page.saturating_sub(1)) * u64::from(cursor.size);
        let (skip, top) = (skip.to_string(), cursor.size.to_string());
        // Whole seconds, rounded down: "ge" then takes in the same second's earlier changes,
        // more than asked for, never less.
        let filter = wire::list_filter(query.changed_since);
        let answer = self
            .send(
                |http| {
                    self.at(http, Method::GET, &["CustomerFull"])
                        .header("accept", wire::LIST_ACCEPT)
                        .query("$filter", &filter)
                        .query("$skip", &skip)
                        .query("$top", &top)
                },
                false,
            )
            .await?;
        let records = wire::records(answer.body()).map_err(|m| bad_answer(&answer, &m))?;
        let customers = usable(Vendor::Cova, records, |r| wire::customer(r, self.licence));
        let full = usize::try_from(cursor.size).unwrap_or(usize::MAX);
        let next = match wire::links_next(answer.body()) {
            Some(false) => None,
            Some(true) => cursor.next(full),
            None => cursor.next(records.len()),
        };
        Ok(CustomerPage { customers, next })
    }

    /// One `POST Search` by the query's e-mail, else its phone (Cova ANDs criteria and keeps
    /// phones as free text, so one key is asked and the whole query is checked here, on every
    /// contact method of each result). A customer merged into another that is also found is
    /// left out; one whose survivor is not found is shown with status `MERGED`.
    async fn search(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        if query.drivers_license.is_some() && self.licence.is_none() {
            // No licence at Cova: no result could be shown to match one.
            return Err(PosError::Unsupported(Operation::SearchCustomers));
        }
        if let Some(token) = &query.page {
            token.0.parse::<usize>().map_err(|_| bad_cursor())?;
        }
        let criteria = if let Some(email) = &query.email {
            wire::email_criteria(email)
        } else if let Some(digits) = &query.phone_digits {
            match wire::phone_criteria(digits) {
                Some(criteria) => criteria,
                None => return Ok(CustomerPage::default()),
            }
        } else {
            // Names and licences alone: Cova's search is not asked (docs/vendors/cova.md).
            return Err(PosError::Unsupported(Operation::SearchCustomers));
        };
        let body = json!({ "Criteria": criteria });
        let answer = self
            .send(
                |http| self.at(http, Method::POST, &["Search"]).json(&body),
                false,
            )
            .await?;
        let records = wire::records(answer.body()).map_err(|m| bad_answer(&answer, &m))?;
        let mut found: Vec<(Option<String>, Customer)> = Vec::new();
        for record in records.iter().filter_map(Value::as_object) {
            let customer = match wire::customer(&Value::Object(record.clone()), self.licence) {
                Ok(customer) => customer,
                Err(why) => {
                    tracing::warn!(vendor = %Vendor::Cova, %why, "skipped a customer record");
                    continue;
                }
            };
            let seen = found
                .iter()
                .any(|(_, c)| c.customer_id == customer.customer_id);
            if !seen && wire::satisfies(record, &customer, query) {
                found.push((wire::merged_into(record), customer));
            }
        }
        let ids: HashSet<String> = found
            .iter()
            .map(|(_, c)| c.customer_id.as_str().to_lowercase())
            .collect();
        let customers = found
            .into_iter()
            .filter(|(into, _)| {
                into.as_ref()
                    .is_none_or(|s| !ids.contains(&s.to_lowercase()))
            })
            .map(|(_, customer)| customer)
            .collect();
        offset_page(customers, query.page.as_ref(), query.limit)
    }

    /// The writes of an update, in order, keeping `record` as Cova holds it after each.
    async fn apply(
        &self,
        id: &str,
        record: &mut Map<String, Value>,
        steps: &[Step],
    ) -> Result<(), Refusal> {
        let customer = format!("Customers({id})");
        for step in steps {
            let (method, item, body, carried) = match step {
                Step::Core(core) => (
                    Method::PUT,
                    None,
                    Some(Value::Object(core.clone())),
                    Carried::default(),
                ),
                Step::Add { list, field, body } => (
                    Method::POST,
                    Some((*list).to_owned()),
                    Some(body.clone()),
                    Carried {
                        item: Some(field),
                        ..Carried::default()
                    },
                ),
                Step::Change {
                    list,
                    field,
                    item,
                    body,
                } => (
                    Method::PUT,
                    Some(format!("{list}({item})")),
                    Some(body.clone()),
                    Carried {
                        item: Some(field),
                        ..Carried::default()
                    },
                ),
                Step::Remove { list, item } => (
                    Method::DELETE,
                    Some(format!("{list}({item})")),
                    None,
                    Carried::default(),
                ),
            };
            let mut path = vec![customer.as_str()];
            path.extend(item.as_deref());
            let answer = self
                .send(
                    |http| {
                        let mut request = self
                            .at(http, method.clone(), &path)
                            .accept_status(StatusCode::BAD_REQUEST)
                            .accept_status(StatusCode::NOT_FOUND);
                        for status in wire::CONFLICTS {
                            if let Ok(status) = StatusCode::from_u16(status) {
                                request = request.accept_status(status);
                            }
                        }
                        match &body {
                            Some(body) => request.json(body),
                            None => request,
                        }
                    },
                    true,
                )
                .await
                .map_err(Refusal::Failed)?;
            let status = answer.status();
            if wire::CONFLICTS.contains(&status.as_u16()) {
                return Err(Refusal::Conflict(answer));
            }
            if status == StatusCode::NOT_FOUND {
                // The customer is gone; an item gone since it was read is a conflict.
                return Err(match step {
                    Step::Core(_) => Refusal::Failed(PosError::NotFound),
                    _ => Refusal::Conflict(answer),
                });
            }
            if status == StatusCode::BAD_REQUEST {
                return Err(Refusal::Failed(rejection(&answer, &carried)));
            }
            wire::apply(record, step, answer.body());
        }
        Ok(())
    }
}

fn bad_answer(answer: &VendorAnswer, message: &str) -> PosError {
    PosError::BadAnswer {
        vendor: Vendor::Cova,
        message: message.to_owned(),
        response: Some(answer.vendor_response()),
    }
}

/// A 400: on our fields when Cova names them, else Cova's answer as it gave it (scrubbed).
fn rejection(answer: &VendorAnswer, carried: &Carried) -> PosError {
    let errors = wire::field_errors(answer.body(), carried);
    if errors.is_empty() {
        PosError::Upstream(answer.vendor_response())
    } else {
        PosError::Rejected(errors)
    }
}

#[async_trait]
impl CustomerDirectory for Cova {
    fn vendor(&self) -> Vendor {
        Vendor::Cova
    }

    fn capabilities(&self) -> Capabilities {
        if self.licence.is_some() {
            CAPABILITIES
        } else {
            WITHOUT_LICENCE
        }
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

    /// A customer Cova merged into another answers as that one (one hop): its id in the
    /// answer is the survivor's. Cova's ids are GUIDs; any other id is nobody's there.
    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, PosError> {
        let Some(id) = wire::guid(id.as_str()) else {
            return Ok(None);
        };
        let Some(mut record) = self.record(id).await? else {
            return Ok(None);
        };
        if let Some(survivor) = wire::merged_into(&record) {
            tracing::info!(vendor = %Vendor::Cova, customer = %id, %survivor, "the customer was merged into another: answering the survivor");
            if let Some(merged_into) = self.record(&survivor).await? {
                record = merged_into;
            }
        }
        self.read(&record).map(Some)
    }

    /// Cova takes no client key for a create: a lost answer is reconciled by the domain.
    /// Gender (which Cova does not keep) and, without the store's extension type, the licence
    /// come back as the kiosk sent them.
    async fn create(&self, customer: &NewCustomer, _key: &CreateKey) -> Result<Customer, PosError> {
        let (body, carried) = wire::create_body(customer, self.licence);
        let answer = self
            .send(
                |http| {
                    self.at(http, Method::POST, &["CustomerFull"])
                        .json(&body)
                        .accept_status(StatusCode::BAD_REQUEST)
                },
                true,
            )
            .await?;
        if answer.status() == StatusCode::BAD_REQUEST {
            return Err(rejection(&answer, &carried));
        }
        let mut created = wire::customer(answer.body(), self.licence)
            .map_err(|message| bad_answer(&answer, &message))?;
        created.gender = customer.gender;
        // Unverified: an answer without the nested lists (the core customer only) says
        // nothing of them; what was just sent is what Cova holds.
        if answer.body().get(wire::CONTACT_METHODS).is_none() {
            created.phone = customer.phone.clone();
            created.email = customer.email.clone();
        }
        if self.licence.is_none() || answer.body().get(wire::EXTENSIONS).is_none() {
            created.drivers_license = customer.drivers_license.clone();
        }
        Ok(created)
    }

    /// Reads the customer (following a merge, one hop), then writes only what the patch
    /// changes: the core fields with one `PUT Customers({id})` carrying everything Cova gave
    /// and the current `Version` (the PUT replaces the whole core), phones and e-mails through
    /// their contact methods, the licence through its extension. A stale `Version` (409/412)
    /// reads the customer again once and applies what is left of the patch; a field the patch
    /// does not name is never written.
    async fn update(&self, id: &CustomerId, patch: &CustomerPatch) -> Result<Customer, PosError> {
        let Some(id) = wire::guid(id.as_str()) else {
            return Err(PosError::NotFound);
        };
        let mut target = id.to_owned();
        let (mut hopped, mut retried) = (false, false);
        loop {
            let mut record = self.record(&target).await?.ok_or(PosError::NotFound)?;
            if let Some(survivor) = wire::merged_into(&record) {
                if hopped {
                    tracing::warn!(vendor = %Vendor::Cova, customer = %target, %survivor, "the customer was merged twice: not followed");
                    return Err(PosError::NotFound);
                }
                tracing::info!(vendor = %Vendor::Cova, customer = %target, %survivor, "the customer was merged into another: updating the survivor");
                hopped = true;
                target = survivor;
                continue;
            }
            let steps = wire::plan(&record, patch, self.licence);
            match self.apply(&target, &mut record, &steps).await {
                Ok(()) => {
                    let mut updated = self.read(&record)?;
                    updated.gender = patch.gender.flatten();
                    if self.licence.is_none() {
                        updated.drivers_license = patch.drivers_license.clone().flatten();
                    }
                    return Ok(updated);
                }
                Err(Refusal::Conflict(_)) if !retried => {
                    tracing::info!(vendor = %Vendor::Cova, customer = %target, "Cova refused a stale Version: reading the customer again");
                    retried = true;
                }
                Err(Refusal::Conflict(answer)) => {
                    return Err(PosError::Upstream(answer.vendor_response()));
                }
                Err(Refusal::Failed(error)) => return Err(error),
            }
        }
    }
}

/// No credential, nor the token.
impl std::fmt::Debug for Cova {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cova")
            .field("http", &*self.api())
            .field("company", &self.company)
            .field("licence_extension_type_id", &self.licence)
            .field("follows_announced_limit", &self.learning.is_some())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CovaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CovaConfig")
            .field("company_id", &self.company_id)
            .field("token_url", &self.token_url)
            .field("licence_extension_type_id", &self.licence_extension_type_id)
            .field("common", &self.common)
            .finish_non_exhaustive()
    }
}
