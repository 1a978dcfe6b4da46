//! Cova: its integrator API is an Azure API Management portal in front of what is, in paths and
//! JSON, the iQmetrix CRM. An OAuth2 password grant at the store's `token_url` gives a 12-hour
//! token, sent as `Authorization: Bearer`; customers are PascalCase JSON with GUID ids, a
//! `Version` for optimistic concurrency, and phones and e-mails kept apart as contact methods;
//! errors are ASP.NET Web API's `{"Message"}`. See docs/vendors/cova.md for the facts, and
//! the "Test double" section of docs/vendors/cova.md for what this double chose where the facts are silent (every such
//! choice is marked "Unverified (chosen)" below, most of them in [`chosen`]).
//!
//! The token endpoint is `POST {url}/v1/oauth2/token` (form `grant_type=password`, `username`,
//! `password`, `client_id`, `client_secret`; also `grant_type=refresh_token`). Everything else is
//! under `{url}/crm/v1/Companies({company_id})/` (`/crm` is the store config's `base_url`), and
//! every answer there carries `COVA-APIM-RateLimit-Limit` and `COVA-APIM-RateLimit-Remaining`:
//!
//! | route | op |
//! |---|---|
//! | `POST Search` (`{"Criteria":[{"Field","Operation","Criteria"}]}`, AND-ed) | `Search` |
//! | `GET CustomerSearch?$filter=Criteria eq '<text>'` | `Search` |
//! | `GET CustomerFull?$filter=LastModifiedDateUtc ge datetime'<utc>'&$skip=&$top=` | `List` |
//! | `GET Customers?$skip=&$top=` (HAL with `Accept: application/hal+json`) | `List` |
//! | `GET CustomerFull({id})` | `Get` |
//! | `POST CustomerFull` (nested `ContactMethods`, `Addresses`, `CustomerExtensions`; 201) | `Create` |
//! | `PUT Customers({id})` (whole core object with `Id`, `CustomerTypeId`, `Version`) | `Update` |
//! | `POST Customers({id})/ContactMethods` (201), `PUT`/`DELETE .../ContactMethods({cmid})` | `Update` |
//! | `POST Customers({id})/CustomerExtensions` (201), `PUT`/`DELETE .../CustomerExtensions({extid})` | `Update` |

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use actix_web::dev::Service as _;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{DoubleOf, Op, SeedCustomer, State, Wire, digits, header, json_object, lock, text};

/// Where the adapter's `base_url` points: the double's URL plus this (Cova's is
/// `https://api.covasoft.net/crm`).
pub const BASE_PATH: &str = "/crm";

/// The token endpoint on the double; the store config's `token_url` is the double's URL plus
/// this (Cova's is `https://accounts.iqmetrix.net/v1/oauth2/token`, another host).
pub const TOKEN_PATH: &str = "/v1/oauth2/token";

/// A token's lifetime unless a test sets another: the `expires_in` Cova answers (12 h).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(43_199);

/// The largest `$top` a listing takes.
pub const MAX_TOP: usize = 100;

/// The `licence_extension_type_id` of the store config, under which seeded customers hold their
/// licence (the double stores extensions of any type id).
pub const LICENCE_EXTENSION_TYPE_ID: i64 = 17;

/// `CustomerTypeId` of a person.
pub const PERSON: i64 = 2;
/// `ContactMethodCategoryId` of a phone.
pub const PHONE: i64 = 1;
/// `ContactMethodCategoryId` of an e-mail address.
pub const EMAIL: i64 = 2;
/// `ContactMethodTypeId` of a mobile phone.
pub const MOBILE: i64 = 3;
/// `ContactMethodTypeId` of a home e-mail address.
pub const HOME_EMAIL: i64 = 9;

/// The rate-limit headers of every answer under `/crm`.
pub const LIMIT_HEADER: &str = "COVA-APIM-RateLimit-Limit";
pub const REMAINING_HEADER: &str = "COVA-APIM-RateLimit-Remaining";

/// What Cova answers for an unknown customer, contact method or path (vendors.md, spec).
const NOT_FOUND: &str = "Resource cannot be found";

/// Every behaviour vendors.md leaves open, as this double chose it. Each is listed in
/// the "Test double" section of docs/vendors/cova.md; correct it here when a real Cova answers otherwise.
pub mod chosen {
    use actix_web::http::StatusCode;
    use serde_json::{Value, json};

    /// Unverified (chosen): an unknown, expired or revoked token gets 401 with ASP.NET's
    /// `[Authorize]` refusal, in Cova's `{"Message"}` shape (the 401 body is a gap).
    pub const DENIED: &str = "Authorization has been denied for this request.";

    /// Unverified (chosen): a valid token used with another company's id in the path is refused
    /// with 403 (the caller is known but may not see that company), not a 404 that would read as
    /// "no such customer" and hide a misconfigured `company_id`.
    pub const OTHER_COMPANY: StatusCode = StatusCode::FORBIDDEN;
    pub const OTHER_COMPANY_MESSAGE: &str = "The user does not have access to this company.";

    /// Unverified (chosen): a stale `Version` answers 409 (412 is the other candidate; vendors.md
    /// treats both as a conflict), in Cova's `{"Message"}` shape.
    pub const STALE: StatusCode = StatusCode::CONFLICT;

    pub fn stale_message(current: i64, sent: i64) -> String {
        format!(
            "The resource has been modified since it was read: its Version is {current}, the request's is {sent}."
        )
    }

    /// Unverified (chosen): a write to a customer merged into another is refused with the
    /// conflict status too, naming the survivor, so a client that re-reads finds
    /// `MergedIntoCustomerId` and follows it (accepting the write would lose it on a record
    /// nobody reads).
    pub fn merged_message(into: &str) -> String {
        format!("The customer has been merged into customer {into} and cannot be changed.")
    }

    /// Unverified (chosen): 400 field errors are ASP.NET Web API's model state, PascalCase as the
    /// rest of Cova's JSON: `{"Message": INVALID, "ModelState": {"customer.PrimaryName": [...]}}`,
    /// keyed by the action's parameter (`customer`, `contactMethod`, `customerExtension`,
    /// `search`) and the field.
    pub const INVALID: &str = "The request is invalid.";

    /// Unverified (chosen): a query option the double cannot read (`$filter`, `$skip`, `$top`)
    /// is ASP.NET Web API OData's 400 with this message and the reason after it.
    pub const QUERY_INVALID: &str = "The query specified in the URI is not valid.";

    /// Unverified (chosen): `$top` over `MAX_TOP` is refused with OData's 400 ("The limit of
    /// '100' for Top query has been exceeded"), as `[EnableQuery(MaxTop = 100)]` does; it is
    /// not clamped.
    pub fn top_exceeded(max: usize, asked: usize) -> String {
        format!(
            "The limit of '{max}' for Top query has been exceeded. The value from the incoming request is '{asked}'."
        )
    }

    /// Unverified (chosen): a listing without `$top` answers at most this many (both lists,
    /// and `CustomerSearch`): a client must page until a short page (or a null `next`).
    pub const DEFAULT_TOP: usize = 100;

    /// Unverified (chosen): `POST Search` fields, matched case-insensitively: three names, and
    /// `Phone`/`Email`, which match the `Value` of any contact method of that category.
    pub const SEARCH_FIELDS: [&str; 5] =
        ["PrimaryName", "FamilyName", "MiddleName", "Phone", "Email"];

    /// Unverified (chosen): `POST Search` operations, matched case-insensitively. Every
    /// comparison is of text, ignoring case and surrounding spaces; phone numbers are NOT
    /// reduced to digits, so `5551234567` does not find a phone held as `(555) 123-4567`.
    pub const SEARCH_OPERATIONS: [&str; 3] = ["Equals", "Contains", "StartsWith"];

    /// Unverified (chosen): the figure announced in `COVA-APIM-RateLimit-Limit` per 60 s. The
    /// double counts calls against it but refuses none until a test enforces it (benchmarks
    /// send far more).
    pub const RATE_LIMIT: u32 = 10_000;

    /// Unverified (chosen): over the limit, Azure API Management's rate-limit policy body (the
    /// portal is APIM), without `Retry-After` (vendors.md: not promised).
    pub fn rate_limited(seconds: u64) -> Value {
        json!({
            "statusCode": 429,
            "message": format!("Rate limit is exceeded. Try again in {seconds} seconds."),
        })
    }

    /// Unverified (chosen): a 500 says no more than ASP.NET's default.
    pub const SERVER_ERROR: &str = "An error has occurred.";

    /// Unverified (chosen): token errors follow RFC 6749 5.2 as ASP.NET's OWIN OAuth server
    /// sends them: a wrong client is 401 `invalid_client`, a wrong user name or password 400
    /// `invalid_grant` (so a wrong password is a 400, not a 401).
    pub const BAD_CLIENT: (StatusCode, &str, &str) = (
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "The client_id or client_secret is incorrect.",
    );
    pub const BAD_PASSWORD: (StatusCode, &str, &str) = (
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "The user name or password is incorrect.",
    );
    pub const BAD_REFRESH: (StatusCode, &str, &str) = (
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "The refresh token is invalid or has been revoked.",
    );
    pub const BAD_GRANT_TYPE: (StatusCode, &str, &str) = (
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
        "The grant_type must be password or refresh_token.",
    );

    /// Unverified (chosen): the `CustomerTypeId`s accepted, 2 (person, vendors.md) and 3
    /// (company, the iQmetrix example); required on create and on `PUT`.
    pub const CUSTOMER_TYPES: [i64; 2] = [2, 3];

    /// Unverified (chosen): contact method categories 1 (phone) and 2 (e-mail) from vendors.md,
    /// and 3 for anything else; any positive `ContactMethodTypeId` is taken (only 3 and 9 are
    /// known), with no check that it belongs to the category.
    pub const CONTACT_CATEGORIES: [i64; 3] = [1, 2, 3];

    /// Unverified (chosen): a removed contact method or extension answers 204 with no body.
    pub const REMOVED: StatusCode = StatusCode::NO_CONTENT;

    /// Unverified (chosen): `_links` hrefs are relative to `base_url` (the service root behind
    /// APIM, which does not know its `/crm` prefix): `/v1/Companies(..)/Customers?$skip=..`.
    pub fn customers_link(company: &str, skip: usize, top: usize) -> String {
        format!("/v1/Companies({company})/Customers?$skip={skip}&$top={top}")
    }
}

/// A running Cova double.
pub type CovaDouble = DoubleOf<Cova>;

/// Cova, as its double speaks it.
pub struct Cova;

/// Credentials the double accepts.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub company_id: u64,
    pub username: String,
    pub password: String,
    pub client_id: String,
    pub client_secret: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            company_id: 100_234,
            username: "kiosk-integration@double-dispensary.example".into(),
            password: "cova-double-password-7d1e44".into(),
            client_id: "cova-double-client".into(),
            client_secret: "cova-double-client-secret-3a9f0c".into(),
        }
    }
}

const WRONG_PASSWORD: &str = "wrong-cova-password-that-must-not-leak";

/// What Cova keeps besides its customers: issued tokens and the rate-limit meter.
pub struct Extra {
    tokens: Mutex<Tokens>,
    meter: Mutex<Meter>,
}

impl Default for Extra {
    fn default() -> Self {
        Self {
            tokens: Mutex::new(Tokens {
                lifetime: TOKEN_LIFETIME,
                access: HashMap::new(),
                refresh: HashSet::new(),
            }),
            meter: Mutex::new(Meter {
                limit: chosen::RATE_LIMIT,
                enforced: false,
                started: Instant::now(),
                used: 0,
            }),
        }
    }
}

struct Tokens {
    lifetime: Duration,
    /// Access token -> when it expires.
    access: HashMap<String, Instant>,
    refresh: HashSet<String>,
}

/// APIM's count of calls in the current 60-second window.
struct Meter {
    limit: u32,
    enforced: bool,
    started: Instant,
    used: u32,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Meter {
    /// Counts a call: what the headers say, and whether the call is refused.
    fn count(&mut self) -> Metered {
        if self.started.elapsed() >= WINDOW {
            self.started = Instant::now();
            self.used = 0;
        }
        self.used = self.used.saturating_add(1);
        Metered {
            limit: self.limit,
            remaining: self.limit.saturating_sub(self.used),
            refused: self.enforced && self.used > self.limit,
            wait: WINDOW
                .saturating_sub(self.started.elapsed())
                .as_secs()
                .max(1),
        }
    }
}

/// The meter's count of one call.
#[derive(Clone, Copy)]
struct Metered {
    limit: u32,
    remaining: u32,
    refused: bool,
    /// Seconds until the window resets.
    wait: u64,
}

impl CovaDouble {
    /// The adapter's `base_url` for this double.
    pub fn base_url(&self) -> String {
        format!("{}{BASE_PATH}", self.url())
    }

    /// The adapter's `token_url` for this double.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.url())
    }

    /// `{base_url}/v1/Companies({company_id})`, where every customer path starts.
    pub fn company_url(&self) -> String {
        format!(
            "{}/v1/Companies({})",
            self.base_url(),
            self.credentials().company_id
        )
    }

    /// Tokens issued from now on live this long (`expires_in` says so too); zero makes the
    /// next token dead on arrival.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.state().extra.tokens).lifetime = lifetime;
    }

    /// Revokes every access and refresh token issued so far: the next call with one gets 401.
    pub fn revoke_tokens(&self) {
        let mut tokens = lock(&self.state().extra.tokens);
        tokens.access.clear();
        tokens.refresh.clear();
    }

    /// The figure `COVA-APIM-RateLimit-Limit` announces from now on, in a fresh 60-second window.
    pub fn set_rate_limit(&self, limit: u32) {
        let mut meter = lock(&self.state().extra.meter);
        meter.limit = limit;
        meter.started = Instant::now();
        meter.used = 0;
    }

    /// Whether calls over the announced figure (in the current 60-second window) get APIM's
    /// 429, without `Retry-After`. Off unless a test turns it on.
    pub fn enforce_rate_limit(&self, enforced: bool) {
        lock(&self.state().extra.meter).enforced = enforced;
    }

    /// Merges customer `from` into `into`, as Cova's duplicate merge does; whether both exist.
    ///
    /// Unverified (chosen): `from` stays readable and findable (by its names and contact
    /// values, which it keeps), now `Disabled` with `MergedIntoCustomerId` = `into`, its
    /// `Version` one higher and `LastModifiedDateUtc` now; writes to it get 409. `into` is not
    /// changed (nothing is copied to it).
    pub fn merge(&self, from: &str, into: &str) -> bool {
        let (from, into) = (clean_id(from), clean_id(into));
        if from == into {
            return false;
        }
        let mut table = self.state().table();
        if table.get(&into).is_none() {
            return false;
        }
        table
            .update::<Cova>(&from, |customer| {
                customer.insert("MergedIntoCustomerId".into(), json!(into));
                customer.insert("Disabled".into(), json!(true));
                touch(customer, true);
            })
            .is_some()
    }

    /// A concurrent edit at the register: the customer's `Version` goes up by one (and
    /// `LastModifiedDateUtc` to now), so a client's `PUT` with the `Version` it read gets 409.
    /// The new `Version`, or `None` for an unknown id.
    pub fn bump_version(&self, id: &str) -> Option<i64> {
        let updated = self
            .state()
            .table()
            .update::<Cova>(&clean_id(id), |customer| touch(customer, true))?;
        updated.get("Version").and_then(Value::as_i64)
    }

    /// The customer as `GET CustomerFull({id})` answers it (with `DoNotContact`,
    /// `ContactMethods`, `CustomerExtensions`).
    pub fn customer(&self, id: &str) -> Option<Value> {
        self.state()
            .table()
            .get(&clean_id(id))
            .cloned()
            .map(Value::Object)
    }
}

impl Wire for Cova {
    const NAME: &'static str = "cova";
    const ID_FIELD: &'static str = "Id";
    type Credentials = Credentials;
    type Extra = Extra;

    fn routes(cfg: &mut web::ServiceConfig) {
        let company = web::scope("/v1/Companies({company_id})")
            .service(resource("/Search").route(web::post().to(search)))
            .service(resource("/CustomerSearch").route(web::get().to(customer_search)))
            .service(
                resource("/CustomerFull")
                    .route(web::get().to(list_full))
                    .route(web::post().to(create)),
            )
            .service(resource("/CustomerFull({id})").route(web::get().to(get)))
            .service(resource("/Customers").route(web::get().to(list_customers)))
            .service(resource("/Customers({id})").route(web::put().to(replace)))
            .service(
                resource("/Customers({id})/ContactMethods")
                    .route(web::post().to(add_contact_method)),
            )
            .service(
                resource("/Customers({id})/ContactMethods({item})")
                    .route(web::put().to(change_contact_method))
                    .route(web::delete().to(remove_contact_method)),
            )
            .service(
                resource("/Customers({id})/CustomerExtensions")
                    .route(web::post().to(add_extension)),
            )
            .service(
                resource("/Customers({id})/CustomerExtensions({item})")
                    .route(web::put().to(change_extension))
                    .route(web::delete().to(remove_extension)),
            )
            .default_service(web::to(no_resource));
        cfg.route(TOKEN_PATH, web::post().to(token)).service(
            web::scope(BASE_PATH)
                .service(company)
                .default_service(web::to(no_resource))
                // APIM meters in front of the service, so every answer (a refusal, a fault, a
                // 404) carries the headers, and a call it refuses never reaches a handler
                // (nor `calls()`).
                .wrap_fn(|request, service| {
                    let metered = request
                        .app_data::<Data>()
                        .map(|state| lock(&state.extra.meter).count());
                    let refused = metered.is_some_and(|m| m.refused);
                    let answer = if refused {
                        let wait = metered.map_or(1, |m| m.wait);
                        let response =
                            HttpResponse::TooManyRequests().json(chosen::rate_limited(wait));
                        futures::future::Either::Left(futures::future::ready(Ok(
                            request.into_response(response)
                        )))
                    } else {
                        futures::future::Either::Right(service.call(request))
                    };
                    async move {
                        let mut response = answer.await?;
                        if let Some(metered) = metered {
                            let headers = response.headers_mut();
                            for (name, value) in [
                                (LIMIT_HEADER, metered.limit),
                                (REMAINING_HEADER, metered.remaining),
                            ] {
                                if let Ok(name) = HeaderName::try_from(name) {
                                    headers.insert(name, HeaderValue::from(value));
                                }
                            }
                        }
                        Ok(response)
                    }
                }),
        );
    }

    fn authorize(state: &State<Self>, op: Op, request: &HttpRequest) -> Result<(), HttpResponse> {
        if op == Op::Token {
            return Ok(());
        }
        let authorization = header(request, "authorization");
        let token = authorization
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .unwrap_or_default();
        let valid = lock(&state.extra.tokens)
            .access
            .get(token)
            .is_some_and(|expires| Instant::now() < *expires);
        if !valid {
            return Err(message(StatusCode::UNAUTHORIZED, chosen::DENIED));
        }
        let company = request
            .match_info()
            .get("company_id")
            .map(clean_id)
            .unwrap_or_default();
        if company != state.credentials.company_id.to_string() {
            return Err(message(
                chosen::OTHER_COMPANY,
                chosen::OTHER_COMPANY_MESSAGE,
            ));
        }
        Ok(())
    }

    fn error_body(status: u16, reason: &str) -> Value {
        match status {
            401 => json!({"Message": chosen::DENIED}),
            404 => json!({"Message": NOT_FOUND}),
            429 => chosen::rate_limited(WINDOW.as_secs()),
            500 => json!({"Message": chosen::SERVER_ERROR}),
            _ => json!({"Message": reason}),
        }
    }

    fn invalid() -> (u16, Value) {
        (
            400,
            model_state(&[(
                "customer.PrimaryName".into(),
                "The PrimaryName field is required.".into(),
            )]),
        )
    }

    fn store_config(url: &str, c: &Credentials) -> Value {
        json!({
            "company_id": c.company_id,
            "username": c.username,
            "password": c.password,
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "token_url": format!("{url}{TOKEN_PATH}"),
            "licence_extension_type_id": LICENCE_EXTENSION_TYPE_ID,
            "base_url": format!("{url}{BASE_PATH}"),
        })
    }

    fn wrong_credentials_config(url: &str, c: &Credentials) -> Value {
        // The likeliest real mistake, and the token endpoint's 400 `invalid_grant` (not a
        // 401) is what an adapter must recognise as refused credentials.
        let mut config = Self::store_config(url, c);
        if let Some(object) = config.as_object_mut() {
            object.insert("password".into(), json!(WRONG_PASSWORD));
        }
        config
    }

    fn secrets(c: &Credentials) -> Vec<String> {
        vec![
            c.username.clone(),
            c.password.clone(),
            c.client_id.clone(),
            c.client_secret.clone(),
            WRONG_PASSWORD.to_owned(),
        ]
    }

    fn id(seq: u64) -> Value {
        let digest = Sha256::digest(seq.to_be_bytes());
        let mut bytes = [0_u8; 16];
        for (byte, from) in bytes.iter_mut().zip(digest.iter()) {
            *byte = *from;
        }
        json!(guid(u128::from_be_bytes(bytes)))
    }

    fn new_record(fields: &Map<String, Value>) -> Map<String, Value> {
        let mut customer = core_from(fields);
        // A seed may say these; a create never does (the handler drops them).
        let version = fields.get("Version").and_then(Value::as_i64).unwrap_or(1);
        customer.insert("Version".into(), json!(version));
        let modified = text(fields, "LastModifiedDateUtc").map_or_else(now, str::to_owned);
        customer.insert("LastModifiedDateUtc".into(), json!(modified));
        let merged = fields
            .get("MergedIntoCustomerId")
            .cloned()
            .unwrap_or(Value::Null);
        customer.insert("MergedIntoCustomerId".into(), merged);
        for kind in [&CONTACT_METHODS, &EXTENSIONS, &ADDRESSES] {
            let items: Vec<Value> = fields
                .get(kind.list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .map(|item| Value::Object((kind.build)(item, next_item_id(kind), 1)))
                .collect();
            customer.insert(kind.list.into(), Value::Array(items));
        }
        customer
    }

    fn seed_fields(c: &SeedCustomer) -> Map<String, Value> {
        let mut contact_methods = Vec::new();
        if let Some(phone) = &c.phone {
            contact_methods.push(json!({
                "ContactMethodCategoryId": PHONE,
                "ContactMethodTypeId": MOBILE,
                "Value": register_phone(phone),
                "Default": true,
            }));
        }
        if let Some(email) = &c.email {
            contact_methods.push(json!({
                "ContactMethodCategoryId": EMAIL,
                "ContactMethodTypeId": HOME_EMAIL,
                "Value": email,
                "Default": true,
            }));
        }
        let extensions: Vec<Value> = c
            .drivers_license
            .iter()
            .map(|licence| json!({"ExtensionTypeId": LICENCE_EXTENSION_TYPE_ID, "Value": licence}))
            .collect();
        // Cova has no gender (vendors.md: gap): the register keeps none.
        let json = json!({
            "PrimaryName": c.first_name,
            "FamilyName": c.last_name,
            "CustomerTypeId": PERSON,
            "DateOfBirth": c.birthday,
            "Notes": c.notes,
            "ContactMethods": contact_methods,
            "CustomerExtensions": extensions,
        });
        json.as_object().cloned().unwrap_or_default()
    }

    fn unusable_fields() -> Map<String, Value> {
        let json = json!({"PrimaryName": "", "FamilyName": null, "CustomerTypeId": PERSON});
        json.as_object().cloned().unwrap_or_default()
    }

    fn stamp_changed(record: &mut Map<String, Value>, at: chrono::DateTime<chrono::Utc>) {
        record.insert(
            "LastModifiedDateUtc".into(),
            json!(at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        );
    }

    fn index_keys(customer: &Map<String, Value>) -> Vec<String> {
        let mut keys: Vec<String> = ["PrimaryName", "FamilyName", "MiddleName"]
            .into_iter()
            .filter_map(|field| Some(index_key(field, customer.get(field)?.as_str()?)))
            .collect();
        for (field, category) in [("Phone", PHONE), ("Email", EMAIL)] {
            keys.extend(
                contact_values(customer, category)
                    .into_iter()
                    .map(|value| index_key(field, value)),
            );
        }
        keys
    }
}

type Data = web::Data<State<Cova>>;

/// A resource that answers ASP.NET's 405 to a method it has no route for.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(not_allowed))
}

async fn not_allowed(request: HttpRequest) -> HttpResponse {
    message(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "The requested resource does not support http method '{}'.",
            request.method()
        ),
    )
}

async fn no_resource() -> HttpResponse {
    not_found()
}

fn message(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"Message": text}))
}

fn not_found() -> HttpResponse {
    message(StatusCode::NOT_FOUND, NOT_FOUND)
}

/// Field errors, by model-state key.
type Errors = Vec<(String, String)>;

fn model_state(errors: &[(String, String)]) -> Value {
    let mut state = Map::new();
    for (key, text) in errors {
        if let Value::Array(list) = state.entry(key.clone()).or_insert_with(|| json!([])) {
            list.push(json!(text));
        }
    }
    json!({"Message": chosen::INVALID, "ModelState": state})
}

fn invalid(errors: &[(String, String)]) -> HttpResponse {
    HttpResponse::BadRequest().json(model_state(errors))
}

fn query_invalid(reason: &str) -> HttpResponse {
    message(
        StatusCode::BAD_REQUEST,
        &format!("{} {reason}", chosen::QUERY_INVALID),
    )
}

fn guid(n: u128) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        n >> 96,
        (n >> 80) & 0xffff,
        (n >> 64) & 0x0fff,
        ((n >> 48) & 0x3fff) | 0x8000,
        n & 0xffff_ffff_ffff
    )
}

/// An id from a path or a client: without OData quotes or braces, lower-case as the double
/// writes GUIDs.
fn clean_id(id: &str) -> String {
    id.trim()
        .trim_matches(|c| c == '\'' || c == '{' || c == '}')
        .to_ascii_lowercase()
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A UTC time as OData's `datetime'...'` or the double's `LastModifiedDateUtc` writes it.
fn utc_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    let text = text.strip_suffix(['z', 'Z']).unwrap_or(text);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.naive_utc())
        })
}

/// A birthday as Cova gives it back (`1952-07-23T12:00:00.000`), from the `YYYY-MM-DD` a
/// client sends or the date-time it read.
fn birth_date(text: &str) -> Option<String> {
    let text = text.trim();
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| utc_time(text).map(|t| t.date()))?;
    Some(format!("{}T12:00:00.000", date.format("%Y-%m-%d")))
}

/// A ten-digit phone as a register shows and stores it; anything else as given.
fn register_phone(phone: &str) -> String {
    let d = digits(phone);
    match (d.len(), d.get(0..3), d.get(3..6), d.get(6..10)) {
        (10, Some(area), Some(exchange), Some(line)) => format!("({area}) {exchange}-{line}"),
        _ => phone.to_owned(),
    }
}

/// The core text fields of a customer (`PUT Customers({id})` replaces them all).
const TEXT_FIELDS: [&str; 6] = [
    "PrimaryName",
    "MiddleName",
    "FamilyName",
    "AlternateName",
    "Title",
    "Notes",
];

/// The nested lists of a `CustomerFull`, left out of the core `Customers` shape.
const NESTED: [&str; 3] = ["ContactMethods", "Addresses", "CustomerExtensions"];

fn string_or_null(object: &Map<String, Value>, key: &str) -> Value {
    object
        .get(key)
        .and_then(Value::as_str)
        .map_or(Value::Null, |s| json!(s))
}

fn bool_or(object: &Map<String, Value>, key: &str, default: bool) -> Value {
    json!(object.get(key).and_then(Value::as_bool).unwrap_or(default))
}

/// The core fields as a write of `body` leaves them. Unverified (chosen): this is a full
/// replacement: a text field or `DateOfBirth` left out is cleared, `Disabled` left out goes back
/// to false and `DoNotContact` left out goes back to true (its default, vendors.md), exactly as
/// on create.
fn core_from(body: &Map<String, Value>) -> Map<String, Value> {
    let mut core = Map::new();
    for field in TEXT_FIELDS {
        core.insert(field.into(), string_or_null(body, field));
    }
    let born = body
        .get("DateOfBirth")
        .and_then(Value::as_str)
        .and_then(birth_date);
    core.insert("DateOfBirth".into(), born.map_or(Value::Null, |d| json!(d)));
    let kind = body
        .get("CustomerTypeId")
        .and_then(Value::as_i64)
        .unwrap_or(PERSON);
    core.insert("CustomerTypeId".into(), json!(kind));
    core.insert("Disabled".into(), bool_or(body, "Disabled", false));
    core.insert("DoNotContact".into(), bool_or(body, "DoNotContact", true));
    core
}

/// The customer as the core `Customers` resource shows it.
fn core_view(customer: &Map<String, Value>) -> Value {
    let mut core = customer.clone();
    for list in NESTED {
        core.remove(list);
    }
    Value::Object(core)
}

/// A change was made: `LastModifiedDateUtc` is now and, for the customer's own fields, its
/// `Version` goes up. Unverified (chosen): a change to a contact method or extension touches
/// the customer's `LastModifiedDateUtc` (so the modified-since list shows it) but not its
/// `Version` (each has its own).
fn touch(customer: &mut Map<String, Value>, core: bool) {
    if core {
        let version = customer.get("Version").and_then(Value::as_i64).unwrap_or(0);
        customer.insert("Version".into(), json!(version.saturating_add(1)));
    }
    customer.insert("LastModifiedDateUtc".into(), json!(now()));
}

fn index_key(field: &str, value: &str) -> String {
    format!("{field}:{}", value.trim().to_lowercase())
}

fn contact_values(customer: &Map<String, Value>, category: i64) -> Vec<&str> {
    customer
        .get("ContactMethods")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m.get("ContactMethodCategoryId").and_then(Value::as_i64) == Some(category))
        .filter_map(|m| m.get("Value").and_then(Value::as_str))
        .collect()
}

/// Builds a stored item from a write of it, with this id and version.
type Build = fn(&Map<String, Value>, Value, i64) -> Map<String, Value>;

/// A customer's sub-resource: contact methods, extensions, addresses.
struct Kind {
    /// The customer's list, and the path segment.
    list: &'static str,
    /// The action parameter naming it in model-state keys.
    param: &'static str,
    /// Field errors of a write of it (`Version` required or not).
    check: fn(&Map<String, Value>, &str, bool, &mut Errors),
    /// The stored item from a write of it, with this id and version.
    build: Build,
}

const CONTACT_METHODS: Kind = Kind {
    list: "ContactMethods",
    param: "contactMethod",
    check: check_contact_method,
    build: contact_method_from,
};

const EXTENSIONS: Kind = Kind {
    list: "CustomerExtensions",
    param: "customerExtension",
    check: check_extension,
    build: extension_from,
};

const ADDRESSES: Kind = Kind {
    list: "Addresses",
    param: "address",
    check: check_nothing,
    build: address_from,
};

/// Unverified (chosen): contact method and extension ids are integers, unique in the process;
/// address ids are GUIDs (iQmetrix's Address resource).
fn next_item_id(kind: &Kind) -> Value {
    static NEXT: AtomicI64 = AtomicI64::new(40);
    if kind.list == ADDRESSES.list {
        return json!(guid(rand::random::<u128>()));
    }
    json!(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Unverified (chosen): addresses are stored as sent, unchecked (vendors.md says nothing of them).
fn check_nothing(_: &Map<String, Value>, _: &str, _: bool, _: &mut Errors) {}

fn contact_method_from(body: &Map<String, Value>, id: Value, version: i64) -> Map<String, Value> {
    let json = json!({
        "Id": id,
        "ContactMethodCategoryId": body.get("ContactMethodCategoryId").and_then(Value::as_i64),
        "ContactMethodTypeId": body.get("ContactMethodTypeId").and_then(Value::as_i64),
        // Free text: kept exactly as sent (vendors.md).
        "Value": string_or_null(body, "Value"),
        "Default": bool_or(body, "Default", false),
        "Version": version,
    });
    json.as_object().cloned().unwrap_or_default()
}

/// Unverified (chosen): an extension is `{Id, ExtensionTypeId, Value, Version}` (vendors.md
/// names only `CustomerExtensions`).
fn extension_from(body: &Map<String, Value>, id: Value, version: i64) -> Map<String, Value> {
    let json = json!({
        "Id": id,
        "ExtensionTypeId": body.get("ExtensionTypeId").and_then(Value::as_i64),
        "Value": string_or_null(body, "Value"),
        "Version": version,
    });
    json.as_object().cloned().unwrap_or_default()
}

fn address_from(body: &Map<String, Value>, id: Value, version: i64) -> Map<String, Value> {
    let mut address = body.clone();
    address.insert("Id".into(), id);
    address.insert("Version".into(), json!(version));
    address
}

fn push(errors: &mut Errors, key: String, text: impl Into<String>) {
    errors.push((key, text.into()));
}

fn check_string(object: &Map<String, Value>, prefix: &str, field: &str, errors: &mut Errors) {
    if let Some(value) = object.get(field)
        && !(value.is_string() || value.is_null())
    {
        push(
            errors,
            format!("{prefix}.{field}"),
            format!("Error converting value {value} to type 'System.String'."),
        );
    }
}

fn check_bool(object: &Map<String, Value>, prefix: &str, field: &str, errors: &mut Errors) {
    if let Some(value) = object.get(field)
        && !(value.is_boolean() || value.is_null())
    {
        push(
            errors,
            format!("{prefix}.{field}"),
            format!("Error converting value {value} to type 'System.Boolean'."),
        );
    }
}

fn check_required_text(
    object: &Map<String, Value>,
    prefix: &str,
    field: &str,
    errors: &mut Errors,
) {
    // A value of the wrong type is reported by `check_string`.
    let mistyped = object
        .get(field)
        .is_some_and(|v| !(v.is_string() || v.is_null()));
    if !mistyped && text(object, field).is_none() {
        push(
            errors,
            format!("{prefix}.{field}"),
            format!("The {field} field is required."),
        );
    }
}

/// An integer field that must be present and pass `valid`.
fn check_id_field(
    object: &Map<String, Value>,
    prefix: &str,
    field: &str,
    valid: impl Fn(i64) -> bool,
    errors: &mut Errors,
) {
    match object.get(field) {
        None | Some(Value::Null) => push(
            errors,
            format!("{prefix}.{field}"),
            format!("The {field} field is required."),
        ),
        Some(value) if value.as_i64().is_some_and(&valid) => {}
        Some(value) => push(
            errors,
            format!("{prefix}.{field}"),
            format!("The value {value} is not valid for {field}."),
        ),
    }
}

fn check_version(object: &Map<String, Value>, prefix: &str, errors: &mut Errors) {
    check_id_field(object, prefix, "Version", |_| true, errors);
}

/// Unverified (chosen): a customer write requires a non-blank `PrimaryName` (first name, or a
/// company's name) and a known `CustomerTypeId`; `FamilyName` and the rest are optional.
fn check_customer(object: &Map<String, Value>, errors: &mut Errors) {
    let prefix = "customer";
    for field in TEXT_FIELDS {
        check_string(object, prefix, field, errors);
    }
    check_required_text(object, prefix, "PrimaryName", errors);
    check_id_field(
        object,
        prefix,
        "CustomerTypeId",
        |t| chosen::CUSTOMER_TYPES.contains(&t),
        errors,
    );
    match object.get("DateOfBirth") {
        None | Some(Value::Null) => {}
        Some(Value::String(date)) if birth_date(date).is_some() => {}
        Some(value) => push(
            errors,
            format!("{prefix}.DateOfBirth"),
            format!("The value {value} is not valid for DateOfBirth."),
        ),
    }
    for field in ["Disabled", "DoNotContact"] {
        check_bool(object, prefix, field, errors);
    }
}

fn check_contact_method(
    object: &Map<String, Value>,
    prefix: &str,
    versioned: bool,
    errors: &mut Errors,
) {
    check_id_field(
        object,
        prefix,
        "ContactMethodCategoryId",
        |c| chosen::CONTACT_CATEGORIES.contains(&c),
        errors,
    );
    check_id_field(object, prefix, "ContactMethodTypeId", |t| t > 0, errors);
    check_string(object, prefix, "Value", errors);
    check_required_text(object, prefix, "Value", errors);
    check_bool(object, prefix, "Default", errors);
    if versioned {
        check_version(object, prefix, errors);
    }
}

/// Unverified (chosen): an extension needs a positive `ExtensionTypeId` and a non-blank
/// `Value`; any type id is taken (the store's `licence_extension_type_id` is not known here).
fn check_extension(
    object: &Map<String, Value>,
    prefix: &str,
    versioned: bool,
    errors: &mut Errors,
) {
    check_id_field(object, prefix, "ExtensionTypeId", |t| t > 0, errors);
    check_string(object, prefix, "Value", errors);
    check_required_text(object, prefix, "Value", errors);
    if versioned {
        check_version(object, prefix, errors);
    }
}

/// The nested lists of a `POST CustomerFull`.
fn check_nested(object: &Map<String, Value>, errors: &mut Errors) {
    for kind in [&CONTACT_METHODS, &EXTENSIONS, &ADDRESSES] {
        let key = format!("customer.{}", kind.list);
        match object.get(kind.list) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_object() {
                        Some(item) => (kind.check)(item, &format!("{key}[{i}]"), false, errors),
                        None => push(errors, format!("{key}[{i}]"), "An object is expected."),
                    }
                }
            }
            Some(_) => push(errors, key, "An array is expected."),
        }
    }
}

fn parse_object(body: &[u8], param: &str) -> Result<Map<String, Value>, HttpResponse> {
    json_object(body).ok_or_else(|| {
        invalid(&[(
            param.to_owned(),
            "The request body is not a JSON object.".to_owned(),
        )])
    })
}

/// The query string as pairs, percent- and `+`-decoded.
fn query(request: &HttpRequest) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// `$skip` and `$top`, as OData reads them.
fn window(params: &[(String, String)]) -> Result<(usize, usize), HttpResponse> {
    let number = |name: &str| match param(params, name) {
        None => Ok(None),
        Some(text) => text.trim().parse::<usize>().map(Some).map_err(|_| {
            query_invalid(&format!(
                "Invalid value '{text}' for {name} query option found."
            ))
        }),
    };
    let skip = number("$skip")?.unwrap_or(0);
    let top = number("$top")?.unwrap_or(chosen::DEFAULT_TOP);
    if top > MAX_TOP {
        return Err(query_invalid(&chosen::top_exceeded(MAX_TOP, top)));
    }
    Ok((skip, top))
}

async fn token(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Token, &request, &body).await {
        Ok(after) => after,
        Err(response) => return oauth_shaped(response),
    };
    let form: HashMap<String, String> = web::Query::<HashMap<String, String>>::from_query(
        std::str::from_utf8(&body).unwrap_or_default(),
    )
    .map(web::Query::into_inner)
    .unwrap_or_default();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let c = &state.credentials;
    if field("client_id") != c.client_id || field("client_secret") != c.client_secret {
        return oauth_error(chosen::BAD_CLIENT);
    }
    let refused = match field("grant_type") {
        "password" if field("username") == c.username && field("password") == c.password => None,
        "password" => Some(chosen::BAD_PASSWORD),
        "refresh_token"
            if lock(&state.extra.tokens)
                .refresh
                .contains(field("refresh_token")) =>
        {
            None
        }
        "refresh_token" => Some(chosen::BAD_REFRESH),
        _ => Some(chosen::BAD_GRANT_TYPE),
    };
    if let Some(refusal) = refused {
        return oauth_error(refusal);
    }
    let fresh = || format!("{:032x}", rand::random::<u128>());
    let (access, refresh) = (fresh(), fresh());
    let lifetime = {
        let mut tokens = lock(&state.extra.tokens);
        let lifetime = tokens.lifetime;
        tokens
            .access
            .insert(access.clone(), Instant::now() + lifetime);
        tokens.refresh.insert(refresh.clone());
        lifetime
    };
    let normal = HttpResponse::Ok().json(json!({
        "access_token": access,
        "expires_in": lifetime.as_secs(),
        "refresh_token": refresh,
    }));
    oauth_shaped(state.finish(after, normal).await)
}

fn oauth_error((status, error, description): (StatusCode, &str, &str)) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": error, "error_description": description}))
}

/// A shared fault's JSON answer from the token endpoint, in the OAuth2 shape that endpoint
/// speaks (the kit writes faults in the API's `{"Message"}` shape). Status and headers such as
/// `Retry-After` are kept; non-JSON faults (garbage, a cut body) pass as they are.
fn oauth_shaped(response: HttpResponse) -> HttpResponse {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (error, description) = match status.as_u16() {
        400 => ("invalid_request", "The request is invalid."),
        401 => ("invalid_client", "Client authentication failed."),
        429 | 503 => (
            "temporarily_unavailable",
            "The server is temporarily unavailable.",
        ),
        _ => ("server_error", "The server encountered an error."),
    };
    let mut shaped = HttpResponse::build(status);
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped.append_header((name.clone(), value.clone()));
        }
    }
    shaped.json(json!({"error": error, "error_description": description}))
}

fn path_id(request: &HttpRequest, name: &str) -> String {
    request
        .match_info()
        .get(name)
        .map(clean_id)
        .unwrap_or_default()
}

async fn get(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::Get, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let found = state.table().get(&path_id(&request, "id")).cloned();
    let normal = match found {
        Some(customer) => HttpResponse::Ok().json(Value::Object(customer)),
        None => not_found(),
    };
    state.finish(after, normal).await
}

/// `LastModifiedDateUtc ge datetime'2019-01-01T00:00:00z'` (or `gt`): whether the bound is
/// inclusive, and the time.
fn modified_since(filter: &str) -> Option<(bool, NaiveDateTime)> {
    let rest = filter
        .trim()
        .strip_prefix("LastModifiedDateUtc")?
        .trim_start();
    let (inclusive, rest) = match (rest.strip_prefix("ge "), rest.strip_prefix("gt ")) {
        (Some(rest), _) => (true, rest),
        (_, Some(rest)) => (false, rest),
        _ => return None,
    };
    let stamp = rest.trim().strip_prefix("datetime'")?.strip_suffix('\'')?;
    Some((inclusive, utc_time(stamp)?))
}

async fn list_full(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::List, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let params = query(&request);
    let (skip, top) = match window(&params) {
        Ok(window) => window,
        Err(response) => return response,
    };
    // Unverified (chosen): only `LastModifiedDateUtc ge|gt datetime'...'` is understood; any
    // other `$filter` is a 400.
    let since = match param(&params, "$filter") {
        None => None,
        Some(filter) => match modified_since(filter) {
            Some(since) => Some(since),
            None => {
                return query_invalid(&format!(
                    "The $filter '{filter}' is not supported: use LastModifiedDateUtc ge datetime'yyyy-MM-ddTHH:mm:ssZ'."
                ));
            }
        },
    };
    let customers: Vec<Value> = state
        .table()
        .records()
        .filter(|c| {
            since.is_none_or(|(inclusive, since)| {
                text(c, "LastModifiedDateUtc")
                    .and_then(utc_time)
                    .is_some_and(|modified| modified > since || (inclusive && modified == since))
            })
        })
        .skip(skip)
        .take(top)
        .cloned()
        .map(Value::Object)
        .collect();
    state
        .finish(after, HttpResponse::Ok().json(Value::Array(customers)))
        .await
}

async fn list_customers(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::List, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let (skip, top) = match window(&query(&request)) {
        Ok(window) => window,
        Err(response) => return response,
    };
    let (total, customers) = {
        let table = state.table();
        let page: Vec<Value> = table
            .records()
            .skip(skip)
            .take(top)
            .map(core_view)
            .collect();
        (table.len(), page)
    };
    let hal = header(&request, "accept").contains("application/hal+json");
    let normal = if hal {
        let company = request
            .match_info()
            .get("company_id")
            .unwrap_or_default()
            .to_owned();
        let end = skip.saturating_add(customers.len());
        let next = if top > 0 && end < total {
            json!({"href": chosen::customers_link(&company, end, top)})
        } else {
            Value::Null
        };
        HttpResponse::Ok()
            .content_type("application/hal+json; charset=utf-8")
            .body(
                json!({
                    "_links": {
                        "self": {"href": chosen::customers_link(&company, skip, top)},
                        "next": next,
                    },
                    "_embedded": {"self": customers},
                })
                .to_string(),
            )
    } else {
        HttpResponse::Ok().json(Value::Array(customers))
    };
    state.finish(after, normal).await
}

/// One `POST Search` criterion, with its field and operation in their canonical spelling.
struct Criterion {
    field: &'static str,
    operation: &'static str,
    value: String,
}

fn canonical(known: &[&'static str], name: &str) -> Option<&'static str> {
    known
        .iter()
        .copied()
        .find(|k| k.eq_ignore_ascii_case(name.trim()))
}

fn criteria(object: &Map<String, Value>) -> Result<Vec<Criterion>, Errors> {
    let mut errors = Errors::new();
    let items = match object.get("Criteria") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            push(
                &mut errors,
                "search.Criteria".into(),
                "At least one criterion is required.",
            );
            return Err(errors);
        }
    };
    let mut found = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = |field: &str| format!("search.Criteria[{i}].{field}");
        let item = item.as_object().cloned().unwrap_or_default();
        let field = text(&item, "Field").and_then(|f| canonical(&chosen::SEARCH_FIELDS, f));
        let operation =
            text(&item, "Operation").and_then(|o| canonical(&chosen::SEARCH_OPERATIONS, o));
        let value = item.get("Criteria").and_then(Value::as_str);
        if field.is_none() {
            push(
                &mut errors,
                key("Field"),
                format!(
                    "The Field must be one of {}.",
                    chosen::SEARCH_FIELDS.join(", ")
                ),
            );
        }
        if operation.is_none() {
            push(
                &mut errors,
                key("Operation"),
                format!(
                    "The Operation must be one of {}.",
                    chosen::SEARCH_OPERATIONS.join(", ")
                ),
            );
        }
        if value.is_none_or(|v| v.trim().is_empty()) {
            push(
                &mut errors,
                key("Criteria"),
                "The Criteria field is required.",
            );
        }
        if let (Some(field), Some(operation), Some(value)) = (field, operation, value) {
            found.push(Criterion {
                field,
                operation,
                value: value.to_owned(),
            });
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

fn compare(operation: &str, have: &str, want: &str) -> bool {
    let (have, want) = (have.trim().to_lowercase(), want.trim().to_lowercase());
    match operation {
        "Equals" => have == want,
        "Contains" => have.contains(&want),
        "StartsWith" => have.starts_with(&want),
        _ => false,
    }
}

fn satisfies(customer: &Map<String, Value>, criterion: &Criterion) -> bool {
    let values = match criterion.field {
        "Phone" => contact_values(customer, PHONE),
        "Email" => contact_values(customer, EMAIL),
        name => customer
            .get(name)
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
    };
    values
        .into_iter()
        .any(|have| compare(criterion.operation, have, &criterion.value))
}

async fn search(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Search, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let object = match parse_object(&body, "search") {
        Ok(object) => object,
        Err(response) => return response,
    };
    let wanted = match criteria(&object) {
        Ok(wanted) => wanted,
        Err(errors) => return invalid(&errors),
    };
    let results: Vec<Value> = {
        let table = state.table();
        // An `Equals` on an indexed field narrows the scan; every criterion is still checked.
        let narrowed = wanted
            .iter()
            .find(|c| c.operation == "Equals")
            .map(|c| table.indexed(&index_key(c.field, &c.value)));
        let candidates: Box<dyn Iterator<Item = &Map<String, Value>>> = match narrowed {
            Some(found) => Box::new(found.into_iter()),
            None => Box::new(table.records()),
        };
        candidates
            .filter(|customer| wanted.iter().all(|c| satisfies(customer, c)))
            .cloned()
            .map(Value::Object)
            .collect()
    };
    let normal = HttpResponse::Ok().json(json!({
        "Id": guid(rand::random::<u128>()),
        "Criteria": object.get("Criteria").cloned().unwrap_or(Value::Null),
        "Results": results,
    }));
    state.finish(after, normal).await
}

/// The text of `Criteria eq '<text>'`, OData-unquoted (`''` is one quote).
fn criteria_text(filter: &str) -> Option<String> {
    let rest = filter.trim().strip_prefix("Criteria")?.trim_start();
    let quoted = rest
        .strip_prefix("eq")?
        .trim_start()
        .strip_prefix('\'')?
        .strip_suffix('\'')?;
    if quoted.replace("''", "").contains('\'') {
        return None;
    }
    Some(quoted.replace("''", "'"))
}

/// Whether `text` is part of one of the customer's names (or "first last"), or of one of its
/// contact values, ignoring case.
fn mentions(customer: &Map<String, Value>, text: &str) -> bool {
    let want = text.trim().to_lowercase();
    let name = |field: &str| customer.get(field).and_then(Value::as_str);
    let full = format!(
        "{} {}",
        name("PrimaryName").unwrap_or_default(),
        name("FamilyName").unwrap_or_default()
    );
    let contacts = customer
        .get("ContactMethods")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("Value").and_then(Value::as_str));
    ["PrimaryName", "MiddleName", "FamilyName", "AlternateName"]
        .into_iter()
        .filter_map(name)
        .chain(std::iter::once(full.as_str()))
        .chain(contacts)
        .any(|have| have.to_lowercase().contains(&want))
}

/// Unverified (chosen): the fallback search answers a bare array of `CustomerFull`, paged like
/// the lists; its text matches as a case-insensitive substring (no digit normalisation).
async fn customer_search(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::Search, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let params = query(&request);
    let (skip, top) = match window(&params) {
        Ok(window) => window,
        Err(response) => return response,
    };
    let Some(wanted) = param(&params, "$filter").and_then(criteria_text) else {
        return query_invalid("CustomerSearch needs $filter=Criteria eq '<text>'.");
    };
    let results: Vec<Value> = state
        .table()
        .records()
        .filter(|customer| mentions(customer, &wanted))
        .skip(skip)
        .take(top)
        .cloned()
        .map(Value::Object)
        .collect();
    state
        .finish(after, HttpResponse::Ok().json(Value::Array(results)))
        .await
}

/// Fields only Cova sets: a create ignores them.
const READ_ONLY: [&str; 4] = [
    "Id",
    "Version",
    "LastModifiedDateUtc",
    "MergedIntoCustomerId",
];

async fn create(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Create, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let mut object = match parse_object(&body, "customer") {
        Ok(object) => object,
        Err(response) => return response,
    };
    let mut errors = Errors::new();
    check_customer(&object, &mut errors);
    check_nested(&object, &mut errors);
    if !errors.is_empty() {
        return invalid(&errors);
    }
    for field in READ_ONLY {
        object.remove(field);
    }
    let created = state.insert(&object);
    state
        .finish(after, HttpResponse::Created().json(Value::Object(created)))
        .await
}

/// Why a write to an existing customer is refused before any change: unknown, merged away.
fn writable(customer: Option<&Map<String, Value>>) -> Result<&Map<String, Value>, HttpResponse> {
    let customer = customer.ok_or_else(not_found)?;
    match text(customer, "MergedIntoCustomerId") {
        Some(into) => Err(message(chosen::STALE, &chosen::merged_message(into))),
        None => Ok(customer),
    }
}

fn version_of(object: &Map<String, Value>) -> i64 {
    object.get("Version").and_then(Value::as_i64).unwrap_or(0)
}

async fn replace(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Update, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let object = match parse_object(&body, "customer") {
        Ok(object) => object,
        Err(response) => return response,
    };
    let id = path_id(&request, "id");
    let mut errors = Errors::new();
    check_customer(&object, &mut errors);
    check_version(&object, "customer", &mut errors);
    match object.get("Id").and_then(Value::as_str).map(clean_id) {
        None => push(
            &mut errors,
            "customer.Id".into(),
            "The Id field is required.",
        ),
        Some(sent) if sent != id => push(
            &mut errors,
            "customer.Id".into(),
            "The Id in the body does not match the Id in the URI.",
        ),
        Some(_) => {}
    }
    if !errors.is_empty() {
        return invalid(&errors);
    }
    let sent = version_of(&object);
    let normal = {
        let mut table = state.table();
        match writable(table.get(&id)).map(version_of) {
            Err(response) => response,
            Ok(current) if current != sent => {
                message(chosen::STALE, &chosen::stale_message(current, sent))
            }
            Ok(_) => {
                // The nested lists and `MergedIntoCustomerId` are not part of this resource:
                // they stay as they are, whatever the body says.
                let replaced = table.update::<Cova>(&id, |customer| {
                    customer.extend(core_from(&object));
                    touch(customer, true);
                });
                match replaced {
                    Some(customer) => HttpResponse::Ok().json(core_view(&customer)),
                    None => not_found(),
                }
            }
        }
    };
    state.finish(after, normal).await
}

/// Where an item is in the customer's list, by its id in the path.
fn position(customer: &Map<String, Value>, kind: &Kind, item: &str) -> Option<usize> {
    let item: i64 = item.parse().ok()?;
    customer
        .get(kind.list)?
        .as_array()?
        .iter()
        .position(|i| i.get("Id").and_then(Value::as_i64) == Some(item))
}

async fn add_item(kind: &Kind, state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Update, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let object = match parse_object(&body, kind.param) {
        Ok(object) => object,
        Err(response) => return response,
    };
    let mut errors = Errors::new();
    (kind.check)(&object, kind.param, false, &mut errors);
    if !errors.is_empty() {
        return invalid(&errors);
    }
    let id = path_id(&request, "id");
    let normal = {
        let mut table = state.table();
        match writable(table.get(&id)) {
            Err(response) => response,
            Ok(_) => {
                let item = (kind.build)(&object, next_item_id(kind), 1);
                let added = item.clone();
                table.update::<Cova>(&id, |customer| {
                    if let Some(Value::Array(items)) = customer.get_mut(kind.list) {
                        items.push(Value::Object(added));
                    }
                    touch(customer, false);
                });
                HttpResponse::Created().json(Value::Object(item))
            }
        }
    };
    state.finish(after, normal).await
}

async fn change_item(kind: &Kind, state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Update, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let object = match parse_object(&body, kind.param) {
        Ok(object) => object,
        Err(response) => return response,
    };
    let mut errors = Errors::new();
    (kind.check)(&object, kind.param, true, &mut errors);
    if !errors.is_empty() {
        return invalid(&errors);
    }
    let (id, item_id) = (path_id(&request, "id"), path_id(&request, "item"));
    let normal = {
        let mut table = state.table();
        let current = writable(table.get(&id)).and_then(|customer| {
            let at = position(customer, kind, &item_id).ok_or_else(not_found)?;
            let item = customer
                .get(kind.list)
                .and_then(|list| list.get(at))
                .and_then(Value::as_object)
                .ok_or_else(not_found)?;
            Ok((
                at,
                item.get("Id").cloned().unwrap_or(Value::Null),
                version_of(item),
            ))
        });
        match current {
            Err(response) => response,
            Ok((_, _, version)) if version != version_of(&object) => message(
                chosen::STALE,
                &chosen::stale_message(version, version_of(&object)),
            ),
            Ok((at, item_id, version)) => {
                // A full replacement of the item, as for the customer.
                let item = (kind.build)(&object, item_id, version.saturating_add(1));
                let changed = item.clone();
                table.update::<Cova>(&id, |customer| {
                    if let Some(slot) = customer
                        .get_mut(kind.list)
                        .and_then(|list| list.get_mut(at))
                    {
                        *slot = Value::Object(changed);
                    }
                    touch(customer, false);
                });
                HttpResponse::Ok().json(Value::Object(item))
            }
        }
    };
    state.finish(after, normal).await
}

async fn remove_item(kind: &Kind, state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::Update, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let (id, item_id) = (path_id(&request, "id"), path_id(&request, "item"));
    let normal = {
        let mut table = state.table();
        let found = writable(table.get(&id))
            .and_then(|customer| position(customer, kind, &item_id).ok_or_else(not_found));
        match found {
            Err(response) => response,
            Ok(at) => {
                table.update::<Cova>(&id, |customer| {
                    if let Some(Value::Array(items)) = customer.get_mut(kind.list)
                        && at < items.len()
                    {
                        items.remove(at);
                    }
                    touch(customer, false);
                });
                HttpResponse::build(chosen::REMOVED).finish()
            }
        }
    };
    state.finish(after, normal).await
}

async fn add_contact_method(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    add_item(&CONTACT_METHODS, state, request, body).await
}

async fn change_contact_method(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    change_item(&CONTACT_METHODS, state, request, body).await
}

async fn remove_contact_method(state: Data, request: HttpRequest) -> HttpResponse {
    remove_item(&CONTACT_METHODS, state, request).await
}

async fn add_extension(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    add_item(&EXTENSIONS, state, request, body).await
}

async fn change_extension(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    change_item(&EXTENSIONS, state, request, body).await
}

async fn remove_extension(state: Data, request: HttpRequest) -> HttpResponse {
    remove_item(&EXTENSIONS, state, request).await
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use reqwest::{Client, Response};

    use super::*;
    use crate::{Fault, VendorDouble};

    /// A double and a client holding a token from it.
    struct Session {
        double: CovaDouble,
        http: Client,
        token: String,
    }

    async fn token_for(double: &CovaDouble, http: &Client) -> Response {
        let c = double.credentials();
        http.post(double.token_url())
            .form(&[
                ("grant_type", "password"),
                ("username", c.username.as_str()),
                ("password", c.password.as_str()),
                ("client_id", c.client_id.as_str()),
                ("client_secret", c.client_secret.as_str()),
            ])
            .send()
            .await
            .unwrap()
    }

    async fn session() -> Session {
        let double = CovaDouble::start().unwrap();
        let http = Client::new();
        let answer: Value = token_for(&double, &http).await.json().await.unwrap();
        let token = answer["access_token"].as_str().unwrap().to_owned();
        Session {
            double,
            http,
            token,
        }
    }

    impl Session {
        fn url(&self, path: &str) -> String {
            format!("{}/{path}", self.double.company_url())
        }

        async fn get(&self, path: &str) -> Response {
            self.http
                .get(self.url(path))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap()
        }

        async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Response {
            self.http
                .request(method, self.url(path))
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }

        async fn post(&self, path: &str, body: Value) -> Response {
            self.send(reqwest::Method::POST, path, body).await
        }

        async fn put(&self, path: &str, body: Value) -> Response {
            self.send(reqwest::Method::PUT, path, body).await
        }

        async fn create(&self, body: Value) -> Value {
            let response = self.post("CustomerFull", body).await;
            assert_eq!(response.status(), 201);
            response.json().await.unwrap()
        }

        async fn search(&self, criteria: Value) -> Vec<Value> {
            let response = self.post("Search", json!({"Criteria": criteria})).await;
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            body["Results"].as_array().unwrap().clone()
        }
    }

    fn ann() -> Value {
        json!({
            "PrimaryName": "Ann",
            "FamilyName": "Lee",
            "CustomerTypeId": 2,
            "DateOfBirth": "1952-07-23",
            "Notes": "likes edibles",
            "ContactMethods": [
                {"ContactMethodCategoryId": 1, "ContactMethodTypeId": 3, "Value": "(555) 123-4567", "Default": true},
                {"ContactMethodCategoryId": 2, "ContactMethodTypeId": 9, "Value": "ann@example.com"},
            ],
            "CustomerExtensions": [{"ExtensionTypeId": LICENCE_EXTENSION_TYPE_ID, "Value": "D1234567"}],
        })
    }

    fn id_of(customer: &Value) -> String {
        customer["Id"].as_str().unwrap().to_owned()
    }

    fn ids(customers: &[Value]) -> Vec<String> {
        customers.iter().map(id_of).collect()
    }

    #[tokio::test]
    async fn the_password_grant_gives_a_12_hour_bearer_token_and_a_refresh_token() {
        let double = CovaDouble::start().unwrap();
        let http = Client::new();
        let response = token_for(&double, &http).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["expires_in"], 43_199);
        assert!(
            body["refresh_token"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        let token = body["access_token"].as_str().unwrap();
        let list = format!("{}/Customers", double.company_url());
        let answer = http.get(&list).bearer_auth(token).send().await.unwrap();
        assert_eq!(answer.status(), 200);

        let refreshed = http
            .post(double.token_url())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
                ("client_id", double.credentials().client_id.as_str()),
                ("client_secret", double.credentials().client_secret.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(refreshed.status(), 200);
        assert_eq!(double.count(Op::Token), 2);
    }

    #[tokio::test]
    async fn token_failures_are_oauth2_errors_a_wrong_password_400_a_wrong_client_401() {
        let double = CovaDouble::start().unwrap();
        let http = Client::new();
        let c = double.credentials().clone();
        let ask = |pairs: Vec<(&'static str, String)>| {
            let http = http.clone();
            let url = double.token_url();
            async move {
                let response = http.post(url).form(&pairs).send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            }
        };
        let wrong = double.wrong_credentials_config();
        let (status, body) = ask(vec![
            ("grant_type", "password".into()),
            ("username", c.username.clone()),
            ("password", wrong["password"].as_str().unwrap().into()),
            ("client_id", c.client_id.clone()),
            ("client_secret", c.client_secret.clone()),
        ])
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"error": "invalid_grant", "error_description": "The user name or password is incorrect."})
        );
        let (status, body) = ask(vec![
            ("grant_type", "password".into()),
            ("username", c.username.clone()),
            ("password", c.password.clone()),
            ("client_id", c.client_id.clone()),
            ("client_secret", "nope".into()),
        ])
        .await;
        assert_eq!(status, 401);
        assert_eq!(body["error"], "invalid_client");
        let (status, body) = ask(vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", c.client_id.clone()),
            ("client_secret", c.client_secret.clone()),
        ])
        .await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "unsupported_grant_type");

        // A shared fault on the token endpoint speaks OAuth2 too.
        double.fail(Op::Token, Fault::Unauthorized, 1);
        let (status, body) = ask(vec![("grant_type", "password".into())]).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"], "invalid_client");
    }

    #[tokio::test]
    async fn calls_without_a_valid_token_are_401_and_another_company_403() {
        let s = session().await;
        let bare = s.http.get(s.url("Customers")).send().await.unwrap();
        assert_eq!(bare.status(), 401);
        assert_eq!(
            bare.json::<Value>().await.unwrap(),
            json!({"Message": "Authorization has been denied for this request."})
        );
        let forged = s
            .http
            .get(s.url("Customers"))
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401);

        let other = format!("{}/v1/Companies(999)/Customers", s.double.base_url());
        let answer = s
            .http
            .get(other)
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403);
        assert!(answer.json::<Value>().await.unwrap()["Message"].is_string());
    }

    #[tokio::test]
    async fn revoked_and_expired_tokens_are_refused() {
        let s = session().await;
        s.double.revoke_tokens();
        assert_eq!(s.get("Customers").await.status(), 401);

        s.double.set_token_lifetime(Duration::from_millis(50));
        let body: Value = token_for(&s.double, &s.http).await.json().await.unwrap();
        assert_eq!(body["expires_in"], 0);
        let token = body["access_token"].as_str().unwrap();
        let url = s.url("Customers");
        let fresh = s.http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(fresh.status(), 200);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let stale = s.http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(stale.status(), 401);
    }

    #[tokio::test]
    async fn a_created_customer_is_found_by_get_search_fallback_search_and_both_lists() {
        let s = session().await;
        let created = s.create(ann()).await;
        let id = id_of(&created);
        assert_eq!(id.len(), 36);
        assert_eq!(created["Version"], 1);
        assert_eq!(created["DateOfBirth"], "1952-07-23T12:00:00.000");
        assert_eq!(created["DoNotContact"], true);
        assert_eq!(created["Disabled"], false);
        assert_eq!(created["MergedIntoCustomerId"], Value::Null);
        assert!(created["ContactMethods"][0]["Id"].is_i64());
        assert_eq!(created["ContactMethods"][0]["Value"], "(555) 123-4567");
        assert_eq!(created["ContactMethods"][1]["Default"], false);
        assert_eq!(created["CustomerExtensions"][0]["Value"], "D1234567");

        let got = s.get(&format!("CustomerFull({id})")).await;
        assert_eq!(got.status(), 200);
        assert_eq!(got.json::<Value>().await.unwrap(), created);
        let upper = s.get(&format!("CustomerFull({})", id.to_uppercase())).await;
        assert_eq!(upper.status(), 200);

        let found = s
            .search(
                json!([{"Field": "Email", "Operation": "Equals", "Criteria": "ANN@example.com"}]),
            )
            .await;
        assert_eq!(ids(&found), [id.as_str()]);
        assert_eq!(found[0]["ContactMethods"], created["ContactMethods"]);

        let fallback = s.get("CustomerSearch?$filter=Criteria eq 'ann lee'").await;
        assert_eq!(fallback.status(), 200);
        assert_eq!(
            ids(&fallback.json::<Vec<Value>>().await.unwrap()),
            [id.as_str()]
        );
        let by_phone = s
            .get("CustomerSearch?$filter=Criteria%20eq%20'123-45'")
            .await;
        assert_eq!(
            ids(&by_phone.json::<Vec<Value>>().await.unwrap()),
            [id.as_str()]
        );

        let listed: Vec<Value> = s.get("Customers").await.json().await.unwrap();
        assert_eq!(ids(&listed), [id.as_str()]);
        assert!(listed[0].get("ContactMethods").is_none());
        let full: Vec<Value> = s
            .get("CustomerFull?$filter=LastModifiedDateUtc ge datetime'2019-01-01T00:00:00z'")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(full, [created]);
        assert_eq!(s.double.count(Op::Create), 1);
        assert_eq!(s.double.count(Op::Search), 3);
        assert_eq!(s.double.count(Op::List), 2);
    }

    #[tokio::test]
    async fn a_create_without_required_fields_is_refused_with_model_state() {
        let s = session().await;
        let response = s
            .post(
                "CustomerFull",
                json!({
                    "FamilyName": "Lee",
                    "DateOfBirth": "23/07/1952",
                    "DoNotContact": "no",
                    "ContactMethods": [{"ContactMethodCategoryId": 7, "ContactMethodTypeId": 3, "Value": " "}],
                }),
            )
            .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["Message"], "The request is invalid.");
        let state = body["ModelState"].as_object().unwrap();
        for key in [
            "customer.PrimaryName",
            "customer.CustomerTypeId",
            "customer.DateOfBirth",
            "customer.DoNotContact",
            "customer.ContactMethods[0].ContactMethodCategoryId",
            "customer.ContactMethods[0].Value",
        ] {
            assert!(state.contains_key(key), "{key} missing from {body}");
        }
        assert_eq!(
            state["customer.PrimaryName"],
            json!(["The PrimaryName field is required."])
        );
        assert!(s.double.customers().is_empty());

        let garbage = s
            .http
            .post(s.url("CustomerFull"))
            .bearer_auth(&s.token)
            .body("not json")
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), 400);
    }

    #[tokio::test]
    async fn do_not_contact_defaults_to_true_and_false_is_kept_when_sent() {
        let s = session().await;
        let quiet = s
            .create(json!({"PrimaryName": "Bo", "CustomerTypeId": 2}))
            .await;
        let consenting = s
            .create(json!({"PrimaryName": "Cy", "CustomerTypeId": 2, "DoNotContact": false}))
            .await;
        let quiet = s.double.customer(&id_of(&quiet)).unwrap();
        let consenting = s.double.customer(&id_of(&consenting)).unwrap();
        assert_eq!(quiet["DoNotContact"], true);
        assert_eq!(consenting["DoNotContact"], false);
    }

    #[tokio::test]
    async fn search_ands_every_criterion_and_compares_text_not_digits() {
        let s = session().await;
        let ann = id_of(&s.create(ann()).await);
        let mut twin = ann_with("Bea", "(555) 123-4567", "bea@example.com");
        twin["FamilyName"] = json!("Lee");
        let bea = id_of(&s.create(twin).await);

        let both = s
            .search(
                json!([{"Field": "Phone", "Operation": "Equals", "Criteria": "(555) 123-4567"}]),
            )
            .await;
        assert_eq!(ids(&both), [ann.clone(), bea.clone()]);
        let one = s
            .search(json!([
                {"Field": "Phone", "Operation": "Equals", "Criteria": "(555) 123-4567"},
                {"Field": "PrimaryName", "Operation": "StartsWith", "Criteria": "be"},
            ]))
            .await;
        assert_eq!(ids(&one), [bea]);
        let digits_only = s
            .search(json!([{"Field": "Phone", "Operation": "Equals", "Criteria": "5551234567"}]))
            .await;
        assert!(digits_only.is_empty());
        let contains = s
            .search(json!([{"Field": "familyname", "Operation": "contains", "Criteria": "EE"}]))
            .await;
        assert_eq!(contains.len(), 2);

        let refused = s
            .post(
                "Search",
                json!({"Criteria": [{"Field": "Licence", "Operation": "Like", "Criteria": "x"}]}),
            )
            .await;
        assert_eq!(refused.status(), 400);
        let body: Value = refused.json().await.unwrap();
        assert!(body["ModelState"]["search.Criteria[0].Field"].is_array());
        assert!(body["ModelState"]["search.Criteria[0].Operation"].is_array());
        let empty = s.post("Search", json!({"Criteria": []})).await;
        assert_eq!(empty.status(), 400);
    }

    fn ann_with(first: &str, phone: &str, email: &str) -> Value {
        let mut customer = ann();
        customer["PrimaryName"] = json!(first);
        customer["ContactMethods"][0]["Value"] = json!(phone);
        customer["ContactMethods"][1]["Value"] = json!(email);
        customer
    }

    #[tokio::test]
    async fn customers_page_with_skip_and_top_in_hal_with_a_relative_next_link() {
        let s = session().await;
        for n in 0..205 {
            s.double.seed_customer(&SeedCustomer::numbered(n));
        }
        let hal = |path: &str| {
            s.http
                .get(s.url(path))
                .bearer_auth(&s.token)
                .header("Accept", "application/hal+json")
                .send()
        };
        let company = s.double.credentials().company_id;
        let first: Value = hal("Customers?$skip=0&$top=100")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(first["_embedded"]["self"].as_array().unwrap().len(), 100);
        assert_eq!(
            first["_links"]["next"]["href"],
            format!("/v1/Companies({company})/Customers?$skip=100&$top=100")
        );
        // `next` is relative to base_url.
        let next = first["_links"]["next"]["href"].as_str().unwrap();
        let second: Value = s
            .http
            .get(format!("{}{next}", s.double.base_url()))
            .bearer_auth(&s.token)
            .header("Accept", "application/hal+json")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(second["_embedded"]["self"][0]["PrimaryName"], "First100");
        let last: Value = hal("Customers?$skip=200&$top=100")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(last["_embedded"]["self"].as_array().unwrap().len(), 5);
        assert_eq!(last["_links"]["next"], Value::Null);
        let exact: Value = hal("Customers?$skip=105&$top=100")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(exact["_links"]["next"], Value::Null);

        // Without `$top`, at most 100; a plain Accept gets a bare array.
        let plain: Vec<Value> = s.get("Customers").await.json().await.unwrap();
        assert_eq!(plain.len(), 100);
        let over = s.get("Customers?$top=101").await;
        assert_eq!(over.status(), 400);
        assert!(
            over.json::<Value>().await.unwrap()["Message"]
                .as_str()
                .unwrap()
                .contains("The limit of '100' for Top query has been exceeded")
        );
        assert_eq!(s.get("Customers?$skip=-1").await.status(), 400);
    }

    #[tokio::test]
    async fn customer_full_lists_what_was_modified_since_a_time() {
        let s = session().await;
        s.double.seed(json!({
            "PrimaryName": "Old", "CustomerTypeId": 2,
            "LastModifiedDateUtc": "2018-05-01T10:00:00.000Z",
        }));
        let new = s.double.seed_customer(&SeedCustomer::named("New", "One"));
        let since =
            |stamp: &str| format!("CustomerFull?$filter=LastModifiedDateUtc ge datetime'{stamp}'");
        let recent: Vec<Value> = s
            .get(&since("2019-01-01T00:00:00z"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(ids(&recent), [new]);
        let all: Vec<Value> = s
            .get(&since("2018-05-01T10:00:00Z"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        let bad = s.get("CustomerFull?$filter=PrimaryName eq 'Old'").await;
        assert_eq!(bad.status(), 400);
    }

    #[tokio::test]
    async fn put_replaces_the_whole_core_customer_and_leaves_contact_methods_alone() {
        let s = session().await;
        let mut seeded = ann();
        seeded["LastModifiedDateUtc"] = json!("2020-01-01T00:00:00.000Z");
        seeded["Title"] = json!("Dr");
        seeded["DoNotContact"] = json!(false);
        let id = s.double.seed(seeded);
        let before = s.double.customer(&id).unwrap();

        let response = s
            .put(
                &format!("Customers({id})"),
                json!({"Id": id, "CustomerTypeId": 2, "Version": 1, "PrimaryName": "Annie"}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let core: Value = response.json().await.unwrap();
        assert_eq!(core["Version"], 2);
        assert!(core.get("ContactMethods").is_none());
        let after = s.double.customer(&id).unwrap();
        assert_eq!(after["PrimaryName"], "Annie");
        for cleared in ["FamilyName", "Notes", "DateOfBirth", "Title"] {
            assert_eq!(after[cleared], Value::Null, "{cleared}");
        }
        assert_eq!(after["DoNotContact"], true);
        assert_eq!(after["ContactMethods"], before["ContactMethods"]);
        assert_eq!(after["CustomerExtensions"], before["CustomerExtensions"]);
        assert_ne!(after["LastModifiedDateUtc"], before["LastModifiedDateUtc"]);
    }

    #[tokio::test]
    async fn a_stale_or_missing_version_is_refused() {
        let s = session().await;
        let id = s.double.seed(ann());
        let body = |version: Value| json!({"Id": id, "CustomerTypeId": 2, "Version": version, "PrimaryName": "Ann"});
        let path = format!("Customers({id})");
        assert_eq!(s.double.bump_version(&id), Some(2));
        let stale = s.put(&path, body(json!(1))).await;
        assert_eq!(stale.status(), 409);
        assert!(stale.json::<Value>().await.unwrap()["Message"].is_string());
        assert_eq!(s.double.customer(&id).unwrap()["PrimaryName"], "Ann");
        assert_eq!(s.put(&path, body(json!(2))).await.status(), 200);

        let missing = s
            .put(
                &path,
                json!({"Id": id, "CustomerTypeId": 2, "PrimaryName": "Ann"}),
            )
            .await;
        assert_eq!(missing.status(), 400);
        let state: Value = missing.json().await.unwrap();
        assert!(state["ModelState"]["customer.Version"].is_array());
        let other = s
            .put(
                &path,
                json!({"Id": "x", "CustomerTypeId": 2, "Version": 3, "PrimaryName": "A"}),
            )
            .await;
        assert_eq!(other.status(), 400);
        let unknown = Cova::id(999).as_str().unwrap().to_owned();
        let gone = s
            .put(
                &format!("Customers({unknown})"),
                json!({"Id": unknown, "CustomerTypeId": 2, "Version": 1, "PrimaryName": "A"}),
            )
            .await;
        assert_eq!(gone.status(), 404);
        assert_eq!(
            gone.json::<Value>().await.unwrap(),
            json!({"Message": "Resource cannot be found"})
        );
    }

    #[tokio::test]
    async fn contact_methods_are_added_changed_with_their_version_and_removed() {
        let s = session().await;
        let id = s
            .double
            .seed(json!({"PrimaryName": "Di", "CustomerTypeId": 2}));
        let base = format!("Customers({id})/ContactMethods");
        let added = s
            .post(
                &base,
                json!({"ContactMethodCategoryId": 1, "ContactMethodTypeId": 3, "Value": "555.123.0000", "Default": true}),
            )
            .await;
        assert_eq!(added.status(), 201);
        let added: Value = added.json().await.unwrap();
        assert_eq!(added["Version"], 1);
        let cm = added["Id"].as_i64().unwrap();
        assert_eq!(
            s.double.customer(&id).unwrap()["ContactMethods"],
            json!([added])
        );

        let change = |version: i64| json!({"ContactMethodCategoryId": 1, "ContactMethodTypeId": 3, "Value": "(555) 123-9999", "Version": version});
        let path = format!("{base}({cm})");
        let changed = s.put(&path, change(1)).await;
        assert_eq!(changed.status(), 200);
        let changed: Value = changed.json().await.unwrap();
        assert_eq!(changed["Version"], 2);
        assert_eq!(changed["Default"], false);
        assert_eq!(s.put(&path, change(1)).await.status(), 409);
        let unversioned = s
            .put(
                &path,
                json!({"ContactMethodCategoryId": 1, "ContactMethodTypeId": 3, "Value": "x"}),
            )
            .await;
        assert_eq!(unversioned.status(), 400);
        assert_eq!(s.put(&format!("{base}(1)"), change(1)).await.status(), 404);
        // The customer's own Version is not the contact method's.
        assert_eq!(s.double.customer(&id).unwrap()["Version"], 1);

        let removed = s
            .http
            .delete(s.url(&path))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), 204);
        assert_eq!(s.double.customer(&id).unwrap()["ContactMethods"], json!([]));
        let again = s
            .http
            .delete(s.url(&path))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 404);
        assert_eq!(s.double.count(Op::Update), 7);
    }

    #[tokio::test]
    async fn the_licence_is_an_extension_of_any_type_id() {
        let s = session().await;
        let id = s
            .double
            .seed(json!({"PrimaryName": "Ed", "CustomerTypeId": 2}));
        let base = format!("Customers({id})/CustomerExtensions");
        let added = s
            .post(&base, json!({"ExtensionTypeId": 4242, "Value": "L-1"}))
            .await;
        assert_eq!(added.status(), 201);
        let ext: Value = added.json().await.unwrap();
        let path = format!("{base}({})", ext["Id"]);
        let changed = s
            .put(
                &path,
                json!({"ExtensionTypeId": 4242, "Value": "L-2", "Version": 1}),
            )
            .await;
        assert_eq!(changed.status(), 200);
        let stored = &s.double.customer(&id).unwrap()["CustomerExtensions"];
        assert_eq!(stored[0]["Value"], "L-2");
        assert_eq!(stored[0]["ExtensionTypeId"], 4242);
        let blank = s.post(&base, json!({"ExtensionTypeId": 4242})).await;
        assert_eq!(blank.status(), 400);
    }

    #[tokio::test]
    async fn a_merged_customer_points_at_the_survivor_and_refuses_writes() {
        let s = session().await;
        let from = s.double.seed(ann());
        let into = s
            .double
            .seed(ann_with("Ann", "(555) 000-0000", "ann2@example.com"));
        assert!(!s.double.merge(&from, Cova::id(999).as_str().unwrap()));
        assert!(s.double.merge(&from, &into));

        let merged: Value = s
            .get(&format!("CustomerFull({from})"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(merged["MergedIntoCustomerId"], into.as_str());
        assert_eq!(merged["Disabled"], true);
        assert_eq!(merged["Version"], 2);
        // Still found by its old e-mail: the client must follow the pointer.
        let found = s
            .search(
                json!([{"Field": "Email", "Operation": "Equals", "Criteria": "ann@example.com"}]),
            )
            .await;
        assert_eq!(ids(&found), [from.as_str()]);

        let put = s
            .put(
                &format!("Customers({from})"),
                json!({"Id": from, "CustomerTypeId": 2, "Version": 2, "PrimaryName": "Ann"}),
            )
            .await;
        assert_eq!(put.status(), 409);
        assert!(
            put.json::<Value>().await.unwrap()["Message"]
                .as_str()
                .unwrap()
                .contains(&into)
        );
        let add = s
            .post(
                &format!("Customers({from})/ContactMethods"),
                json!({"ContactMethodCategoryId": 2, "ContactMethodTypeId": 9, "Value": "x@y.z"}),
            )
            .await;
        assert_eq!(add.status(), 409);
    }

    #[tokio::test]
    async fn every_answer_announces_the_rate_limit_and_an_enforced_limit_is_a_429() {
        let s = session().await;
        let limit = |r: &Response, name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u32>().ok())
        };
        let ok = s.get("Customers").await;
        assert_eq!(limit(&ok, LIMIT_HEADER), Some(chosen::RATE_LIMIT));
        assert!(limit(&ok, REMAINING_HEADER).is_some());
        let missing = s.get(&format!("CustomerFull({})", Cova::id(5))).await;
        assert_eq!(missing.status(), 404);
        assert!(limit(&missing, LIMIT_HEADER).is_some());
        let refused = s.http.get(s.url("Customers")).send().await.unwrap();
        assert!(limit(&refused, LIMIT_HEADER).is_some());
        s.double.fail(Op::List, Fault::Status(500), 1);
        let fault = s.get("Customers").await;
        assert_eq!(fault.status(), 500);
        assert!(limit(&fault, LIMIT_HEADER).is_some());

        s.double.set_rate_limit(2);
        s.double.enforce_rate_limit(true);
        let first = s.get("Customers").await;
        assert_eq!(limit(&first, LIMIT_HEADER), Some(2));
        assert_eq!(limit(&first, REMAINING_HEADER), Some(1));
        assert_eq!(s.get("Customers").await.status(), 200);
        let over = s.get("Customers").await;
        assert_eq!(over.status(), 429);
        assert!(over.headers().get("retry-after").is_none());
        assert_eq!(limit(&over, REMAINING_HEADER), Some(0));
        assert_eq!(over.json::<Value>().await.unwrap()["statusCode"], 429);
    }

    #[tokio::test]
    async fn shared_faults_answer_in_covas_shapes_and_after_commit_keeps_the_write() {
        let s = session().await;
        s.double.fail(Op::Search, Fault::Status(429), 1);
        let limited = s.post("Search", json!({"Criteria": []})).await;
        assert_eq!(limited.status(), 429);
        assert!(limited.headers().get("retry-after").is_none());

        s.double.fail(Op::Get, Fault::Status(500), 1);
        let broken = s.get(&format!("CustomerFull({})", Cova::id(1))).await;
        assert_eq!(
            broken.json::<Value>().await.unwrap(),
            json!({"Message": "An error has occurred."})
        );

        s.double.fail(Op::Create, Fault::Invalid, 1);
        let invalid = s.post("CustomerFull", ann()).await;
        assert_eq!(invalid.status(), 400);
        assert!(invalid.json::<Value>().await.unwrap()["ModelState"].is_object());
        assert!(s.double.customers().is_empty());

        s.double.fail(
            Op::Create,
            Fault::AfterCommit(Box::new(Fault::Status(500))),
            1,
        );
        let lost = s.post("CustomerFull", ann()).await;
        assert_eq!(lost.status(), 500);
        assert_eq!(s.double.customers().len(), 1);
    }

    #[tokio::test]
    async fn unknown_paths_are_404_and_unsupported_methods_405() {
        let s = session().await;
        let nothing = s.get("Nothing").await;
        assert_eq!(nothing.status(), 404);
        assert_eq!(
            nothing.json::<Value>().await.unwrap(),
            json!({"Message": "Resource cannot be found"})
        );
        let id = s.double.seed(ann());
        let patch = s
            .send(
                reqwest::Method::PATCH,
                &format!("Customers({id})"),
                json!({}),
            )
            .await;
        assert_eq!(patch.status(), 405);
        assert!(patch.json::<Value>().await.unwrap()["Message"].is_string());
    }

    #[tokio::test]
    async fn seeds_are_in_covas_shape_and_the_config_reaches_the_double() {
        let double = crate::start("cova").unwrap().unwrap();
        let mut customer = SeedCustomer::numbered(7);
        customer.phone = Some("5551234567".into());
        let id = double.seed_customer(&customer);
        let unusable = double.seed_unusable();
        let held = double.customers();
        let seeded = held.iter().find(|c| c["Id"] == id.as_str()).unwrap();
        assert_eq!(seeded["PrimaryName"], "First7");
        assert_eq!(seeded["FamilyName"], "Last7");
        assert_eq!(seeded["CustomerTypeId"], PERSON);
        assert_eq!(seeded["DoNotContact"], true);
        assert_eq!(seeded["Notes"], "note 7");
        let birthday = customer.birthday.clone().unwrap();
        assert_eq!(seeded["DateOfBirth"], format!("{birthday}T12:00:00.000"));
        let methods = seeded["ContactMethods"].as_array().unwrap();
        assert_eq!(methods[0]["ContactMethodCategoryId"], PHONE);
        assert_eq!(methods[0]["ContactMethodTypeId"], MOBILE);
        assert_eq!(methods[0]["Value"], "(555) 123-4567");
        assert_eq!(methods[1]["ContactMethodCategoryId"], EMAIL);
        assert_eq!(methods[1]["Value"], "customer7@example.com");
        assert_eq!(
            seeded["CustomerExtensions"][0]["ExtensionTypeId"],
            LICENCE_EXTENSION_TYPE_ID
        );
        assert_eq!(seeded["CustomerExtensions"][0]["Value"], "D0000007");
        assert!(seeded.get("Gender").is_none());
        let nameless = held.iter().find(|c| c["Id"] == unusable.as_str()).unwrap();
        assert_eq!(nameless["PrimaryName"], "");
        assert_eq!(nameless["FamilyName"], Value::Null);

        let config = double.store_config();
        for key in [
            "company_id",
            "username",
            "password",
            "client_id",
            "client_secret",
            "token_url",
            "licence_extension_type_id",
            "base_url",
        ] {
            assert!(config.get(key).is_some(), "{key}");
        }
        assert_eq!(config["base_url"], format!("{}/crm", double.double().url()));
        let secrets = double.secrets();
        let wrong = double.wrong_credentials_config();
        assert_ne!(wrong["password"], config["password"]);
        for key in ["username", "password", "client_id", "client_secret"] {
            assert!(secrets.contains(&config[key].as_str().unwrap().to_owned()));
        }
        assert!(secrets.contains(&wrong["password"].as_str().unwrap().to_owned()));

        // The config alone is enough to get a token and reach the customers.
        let http = Client::new();
        let token: Value = http
            .post(config["token_url"].as_str().unwrap())
            .form(&[
                ("grant_type", "password"),
                ("username", config["username"].as_str().unwrap()),
                ("password", config["password"].as_str().unwrap()),
                ("client_id", config["client_id"].as_str().unwrap()),
                ("client_secret", config["client_secret"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = format!(
            "{}/v1/Companies({})/CustomerFull({id})",
            config["base_url"].as_str().unwrap(),
            config["company_id"]
        );
        let got = http
            .get(url)
            .bearer_auth(token["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200);
    }

    #[test]
    fn dates_filters_and_ids_read_as_cova_writes_them() {
        assert_eq!(
            birth_date("1952-07-23").as_deref(),
            Some("1952-07-23T12:00:00.000")
        );
        assert_eq!(
            birth_date("1952-07-23T12:00:00.000").as_deref(),
            Some("1952-07-23T12:00:00.000")
        );
        assert_eq!(birth_date("23/07/1952"), None);
        assert!(modified_since("LastModifiedDateUtc ge datetime'2019-01-01T00:00:00z'").is_some());
        assert!(
            modified_since("LastModifiedDateUtc gt datetime'2019-01-01T00:00:00.123Z'").is_some()
        );
        assert!(modified_since("LastModifiedDateUtc eq datetime'2019-01-01T00:00:00z'").is_none());
        assert_eq!(
            criteria_text("Criteria eq 'O''Brien'").as_deref(),
            Some("O'Brien")
        );
        assert_eq!(criteria_text("Criteria eq 'O'Brien'"), None);
        assert_ne!(Cova::id(1), Cova::id(2));
        assert_eq!(Cova::id(1), Cova::id(1));
        assert_eq!(register_phone("5551234567"), "(555) 123-4567");
        assert_eq!(register_phone("+44 20 7946 0958"), "+44 20 7946 0958");
    }
}
