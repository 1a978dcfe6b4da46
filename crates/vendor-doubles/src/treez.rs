//! Treez, API v2: a token from `config/api/gettokens`, then `authorization: <token>` and
//! `client_id` headers on every call; snake_case JSON in a `resultCode`/`resultReason`/
//! `resultDetail`/`data` envelope. See docs/vendors/treez.md for the sources and
//! docs/vendors/treez-double.md for what this double models and what it chose where the facts
//! are silent (every such choice is marked "Unverified (chosen)", most of them in [`chosen`]).
//!
//! Routes, relative to `{url}/v2.0/dispensary/{dispensary}/`:
//!
//! | route | op |
//! |---|---|
//! | `POST config/api/gettokens` (form `client_id`, `apikey`) | `Token` |
//! | `GET customer/lastUpdated/after/{yyyy-MM-ddTHH:mm:ss.SSSXXX}/page/{p}/pagesize/{n}` | `List` |
//! | `GET customer/email/{email}`, `customer/phone/{phone}`, `customer/driverlicense/{dl}` | `Search` |
//! | `GET customer/firstname/{first}/lastname/{last}` | `Search` |
//! | `GET customer/{id}` | `Get` |
//! | `POST customer/detailcustomer` (create; not idempotent) | `Create` |
//! | `PATCH customer/update/{id}` (the create schema, whole record) | `Update` |
//!
//! There is no `PUT customer/{id}`: Treez has none (a PUT there answers 404).
//!
//! Controls a test can use, on [`TreezDouble`]: [`set_token_lifetime`](TreezDouble::set_token_lifetime),
//! [`revoke_tokens`](TreezDouble::revoke_tokens), [`merge`](TreezDouble::merge),
//! [`customer`](TreezDouble::customer), [`enforce_rate_limit`](TreezDouble::enforce_rate_limit)
//! and [`set_rate_limit`](TreezDouble::set_rate_limit).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use crate::{DoubleOf, Op, SeedCustomer, State, Wire, digits, header, json_object, lock, text};

/// The largest page the list accepts; more gives 400 `RESPONSE_LIMIT_EXCEEDS`.
pub const MAX_PAGE_SIZE: usize = 50;

/// Where the adapter's `base_url` should point: the double's URL plus this.
pub const BASE_PATH: &str = "/v2.0/dispensary";

/// Treez's published limit: requests per second per location (spec, v2 docs). Enforced only
/// when a test turns it on ([`TreezDouble::enforce_rate_limit`]): benchmarks send far more.
pub const RATE_LIMIT_PER_SECOND: u32 = 10;

/// Statuses (spec): an active customer; one deleted, or merged into another and closed; one
/// others were merged into (still active).
pub const ACTIVE: &str = "ACTIVE";
pub const DEACTIVATED: &str = "DEACTIVATED";
pub const MERGED: &str = "MERGED";

/// Every behaviour vendors.md leaves open, as this double chose it. Each is listed in
/// docs/vendors/treez-double.md; correct it here when a real Treez answers otherwise. Two
/// choices live where they act and say so: the whole-record update in [`replace_writable`]
/// (fields left out are cleared) and the field checks in [`check`].
pub mod chosen {
    use serde_json::{Value, json};

    /// Unverified (chosen): the field of a merged-away customer that names the customer it was
    /// merged into, as a string id like `customer_id` (vendors.md only names the error
    /// `MERGED_INTO_CUSTOMER_ID`; this is its snake_case field). `null` on every other customer.
    pub const MERGED_INTO_FIELD: &str = "merged_into_customer_id";

    /// Unverified (chosen): what a whole-record update stores for a writable field it leaves
    /// out. vendors.md: the legacy update wipes every field left out and whether the PATCH
    /// keeps them is not stated, so the worst case: cleared (`null`, `addresses` empty), and a
    /// test proves an adapter sends back everything the kiosk did not name.
    pub fn cleared(field: &str) -> Value {
        match field {
            "addresses" => json!([]),
            _ => Value::Null,
        }
    }

    /// Unverified (chosen): the `resultReason` of a required field left blank. Only
    /// `CUSTOMER_FIRST_NAME_BLANK` is the spec's example; the others follow its pattern.
    pub const BLANK_REASONS: [(&str, &str); 4] = [
        ("first_name", "CUSTOMER_FIRST_NAME_BLANK"),
        ("last_name", "CUSTOMER_LAST_NAME_BLANK"),
        ("birthday", "CUSTOMER_BIRTHDAY_BLANK"),
        ("patient_type", "CUSTOMER_PATIENT_TYPE_BLANK"),
    ];

    /// Unverified (chosen): a create or update giving an e-mail another customer has is a 400
    /// with this reason (uniqueness is spec, its error body a gap). E-mails compare without
    /// case; every customer counts, whatever its status (a merged-away customer keeps its
    /// e-mail).
    pub const DUPLICATE_EMAIL: (&str, &str) = (
        "CUSTOMER_EMAIL_ALREADY_EXISTS",
        "Field email must be unique: another customer has this email",
    );

    /// Unverified (chosen): the same for a phone, compared by its digits.
    pub const DUPLICATE_PHONE: (&str, &str) = (
        "CUSTOMER_PHONE_ALREADY_EXISTS",
        "Field phone must be unique: another customer has this phone",
    );

    /// Unverified (chosen): a phone starting with 0 or 1 (refused: spec) gets the generic
    /// `INCORRECT_VALUE` reason, with this detail.
    pub const PHONE_LEADING_DIGIT: &str = "Field phone cannot start with 0 or 1";

    /// Unverified (chosen): an update of an unknown id. No 404 is declared for the update
    /// (spec), so it is a 400 in the update's envelope with the reason vendors.md thinks likely,
    /// not the 404 of `GET customer/{id}`: an adapter must read the reason, not the status.
    pub const UPDATE_UNKNOWN_ID: (&str, &str) =
        ("CUSTOMER_DOESNT_EXIST", "Customer does not exist");

    /// Unverified (chosen): an update of a merged-away customer (refused, naming
    /// `MERGED_INTO_CUSTOMER_ID`: spec; the body a gap) is a 400 in the update's envelope with
    /// that name as `resultReason` and the survivor's id in the message only (an adapter that
    /// wants it reads the customer's `merged_into_customer_id`).
    pub const MERGED_AWAY_REASON: &str = "MERGED_INTO_CUSTOMER_ID";

    pub fn merged_away_message(id: &str, into: &str) -> String {
        format!("Customer {id} has been merged into customer {into} and cannot be updated")
    }

    /// Unverified (chosen): every refusal of the update is in the update's own 400 envelope
    /// (`status`, `statusCode`, `message`, `uuid`, `timestamp`: spec for a body that is not
    /// JSON), carrying the same `resultReason` a create gets and the detail as `message`, with
    /// no `resultDetail` (the spec's example has none).
    pub const UPDATE_BAD_REQUEST: &str = "Bad Request";

    /// The spec's message for an update body that is not JSON. Unverified (chosen): a JSON
    /// body that is not an object gets it too.
    pub const NOT_JSON: &str = "Input is not valid JSON.";

    /// Unverified (chosen): the name search matches whole first and last names, ignoring case
    /// and surrounding spaces (no prefixes, no middle names), and answers like the other
    /// look-ups: every match in `data` as an array, or 404 `CUSTOMER_DOESNT_EXIST`.
    pub fn name_key(first: &str, last: &str) -> String {
        format!(
            "name:{}|{}",
            first.trim().to_lowercase(),
            last.trim().to_lowercase()
        )
    }

    /// Unverified (chosen): over the rate limit (when a test enforces it), a 429 in Treez's
    /// envelope with this reason and no `Retry-After` (none is documented). Counted per
    /// location in fixed one-second windows, every call included (token requests too).
    pub const RATE_LIMITED: (&str, &str) = (
        "TOO_MANY_REQUESTS",
        "Rate limit exceeded: 10 requests per second per location",
    );
}

/// A running Treez double.
pub type TreezDouble = DoubleOf<Treez>;

/// Treez, as its double speaks it.
pub struct Treez;

/// Credentials the double accepts.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub dispensary: String,
    pub client_id: String,
    pub api_key: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            dispensary: "partnersandbox2".into(),
            client_id: "client-abc".into(),
            api_key: "treez-secret-api-key-0123456789".into(),
        }
    }
}

/// What Treez keeps besides its customers: the tokens it issued and the rate-limit meter.
pub struct Extra {
    lifetime: Mutex<Duration>,
    issued: Mutex<HashMap<String, Instant>>,
    meter: Mutex<Meter>,
}

impl Default for Extra {
    fn default() -> Self {
        Self {
            lifetime: Mutex::new(Duration::from_secs(2 * 3600)),
            issued: Mutex::new(HashMap::new()),
            meter: Mutex::new(Meter {
                limit: RATE_LIMIT_PER_SECOND,
                enforced: false,
                started: Instant::now(),
                used: 0,
            }),
        }
    }
}

/// Calls counted in the current one-second window.
struct Meter {
    limit: u32,
    enforced: bool,
    started: Instant,
    used: u32,
}

impl Meter {
    /// Counts a call; whether it is over the limit.
    fn refuses(&mut self) -> bool {
        if self.started.elapsed() >= Duration::from_secs(1) {
            self.started = Instant::now();
            self.used = 0;
        }
        self.used = self.used.saturating_add(1);
        self.enforced && self.used > self.limit
    }
}

impl TreezDouble {
    /// The adapter's `base_url` for this double.
    pub fn base_url(&self) -> String {
        format!("{}{BASE_PATH}", self.url())
    }

    /// Tokens issued from now on live this long (`expires_in` says so too).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.state().extra.lifetime) = lifetime;
    }

    /// Forgets every issued token, as if they had been revoked: the next call gets a 401.
    pub fn revoke_tokens(&self) {
        lock(&self.state().extra.issued).clear();
    }

    /// Merges customer `from` into `into`, as Treez does: `from` becomes `DEACTIVATED` with
    /// [`chosen::MERGED_INTO_FIELD`] = `into`, `into` becomes `MERGED`; both get a new
    /// `last_update`. Whether both exist (and differ).
    ///
    /// Unverified (chosen): nothing is copied between them; `from` keeps its fields (so its
    /// e-mail and phone stay taken) and stays readable and findable; updating it is refused.
    pub fn merge(&self, from: &str, into: &str) -> bool {
        let (from, into) = (from.trim(), into.trim());
        let mut table = self.state().table();
        if from == into || table.get(from).is_none() || table.get(into).is_none() {
            return false;
        }
        let stamp = now();
        table.update::<Treez>(from, |customer| {
            customer.insert("status".into(), json!(DEACTIVATED));
            customer.insert(chosen::MERGED_INTO_FIELD.into(), json!(into));
            customer.insert("last_update".into(), json!(stamp));
        });
        table.update::<Treez>(into, |customer| {
            customer.insert("status".into(), json!(MERGED));
            customer.insert("last_update".into(), json!(stamp));
        });
        true
    }

    /// The customer with this id, as `GET customer/{id}` answers it in `data`.
    pub fn customer(&self, id: &str) -> Option<Value> {
        self.state().table().get(id).cloned().map(Value::Object)
    }

    /// Whether calls over the limit get Treez's 429 (off unless a test turns it on).
    pub fn enforce_rate_limit(&self, enforced: bool) {
        let mut meter = lock(&self.state().extra.meter);
        meter.enforced = enforced;
        meter.started = Instant::now();
        meter.used = 0;
    }

    /// Requests per second allowed when enforced ([`RATE_LIMIT_PER_SECOND`] unless set).
    pub fn set_rate_limit(&self, per_second: u32) {
        lock(&self.state().extra.meter).limit = per_second;
    }
}

impl Wire for Treez {
    const NAME: &'static str = "treez";
    const ID_FIELD: &'static str = "customer_id";
    type Credentials = Credentials;
    type Extra = Extra;

    fn routes(cfg: &mut web::ServiceConfig) {
        // The fixed segments (`email`, `firstname`, `update`...) come before `{id}`, which would
        // otherwise take them for an id.
        cfg.service(
            web::scope("/v2.0/dispensary/{dispensary}")
                .route("/config/api/gettokens", web::post().to(token))
                .route(
                    "/customer/lastUpdated/after/{after}/page/{page}/pagesize/{size}",
                    web::get().to(list),
                )
                .route("/customer/email/{value}", web::get().to(by_email))
                .route("/customer/phone/{value}", web::get().to(by_phone))
                .route("/customer/driverlicense/{value}", web::get().to(by_license))
                .route(
                    "/customer/firstname/{first}/lastname/{last}",
                    web::get().to(by_name),
                )
                .route("/customer/detailcustomer", web::post().to(create))
                .route("/customer/update/{id}", web::patch().to(update))
                .route("/customer/{id}", web::get().to(get)),
        );
    }

    fn authorize(state: &State<Self>, op: Op, request: &HttpRequest) -> Result<(), HttpResponse> {
        if request.match_info().get("dispensary") != Some(state.credentials.dispensary.as_str()) {
            return Err(fail(
                404,
                "INVALID_DISPENSARY",
                Some("Unknown dispensary".into()),
            ));
        }
        // The limit is per location, so it is counted once the dispensary is known.
        if lock(&state.extra.meter).refuses() {
            let (reason, detail) = chosen::RATE_LIMITED;
            return Err(fail(429, reason, Some(detail.into())));
        }
        if op == Op::Token {
            return Ok(());
        }
        let token = header(request, "authorization");
        let valid = lock(&state.extra.issued)
            .get(token)
            .is_some_and(|expires| Instant::now() < *expires);
        if !valid || header(request, "client_id") != state.credentials.client_id {
            return Err(HttpResponse::Unauthorized().json(json!({
                "resultCode": "FAIL",
                "resultReason": "Full authentication is required to access this resource"
            })));
        }
        Ok(())
    }

    fn error_body(_status: u16, reason: &str) -> Value {
        json!({"resultCode": "FAIL", "resultReason": reason, "resultDetail": null})
    }

    fn invalid() -> (u16, Value) {
        (
            400,
            json!({"resultCode": "FAIL", "resultReason": "MODEL_VALIDATION_FAIL", "resultDetail": "Request could not be validated"}),
        )
    }

    fn store_config(url: &str, c: &Credentials) -> Value {
        json!({
            "dispensary": c.dispensary,
            "client_id": c.client_id,
            "api_key": c.api_key,
            "base_url": format!("{url}{BASE_PATH}"),
        })
    }

    fn wrong_credentials_config(url: &str, c: &Credentials) -> Value {
        let mut config = Self::store_config(url, c);
        if let Some(object) = config.as_object_mut() {
            object.insert(
                "api_key".into(),
                json!("wrong-treez-api-key-that-must-not-leak"),
            );
        }
        config
    }

    fn secrets(c: &Credentials) -> Vec<String> {
        vec![
            c.client_id.clone(),
            c.api_key.clone(),
            "wrong-treez-api-key-that-must-not-leak".into(),
        ]
    }

    fn id(seq: u64) -> Value {
        json!(seq.to_string())
    }

    /// Every writable field (absent ones `null`), and what Treez keeps itself: taken from a
    /// vendor-shaped seed when given, never from a create over HTTP (its handler passes the
    /// writable fields only).
    fn new_record(fields: &Map<String, Value>) -> Map<String, Value> {
        let mut record = Map::new();
        replace_writable(&mut record, fields);
        let kept = |key: &str, default: Value| {
            fields
                .get(key)
                .filter(|v| v.is_string())
                .cloned()
                .unwrap_or(default)
        };
        let stamp = now();
        record.insert("status".into(), kept("status", json!(ACTIVE)));
        record.insert("signup_date".into(), kept("signup_date", json!(stamp)));
        record.insert("last_update".into(), kept("last_update", json!(stamp)));
        record.insert(
            chosen::MERGED_INTO_FIELD.into(),
            kept(chosen::MERGED_INTO_FIELD, Value::Null),
        );
        record
    }

    fn seed_fields(c: &SeedCustomer) -> Map<String, Value> {
        let gender = match c.gender.as_deref() {
            Some("male") => "M",
            Some("female") => "F",
            Some("other") => "N",
            _ => "U",
        };
        let json = json!({
            "first_name": c.first_name,
            "last_name": c.last_name,
            "birthday": c.birthday.as_deref().unwrap_or("1980-01-01"),
            "patient_type": "ADULT",
            "gender": gender,
            "email": c.email,
            "phone": c.phone,
            "drivers_license": c.drivers_license,
            "notes": c.notes,
        });
        json.as_object().cloned().unwrap_or_default()
    }

    fn unusable_fields() -> Map<String, Value> {
        let json = json!({"first_name": "", "last_name": "", "birthday": "1980-01-01", "patient_type": "ADULT"});
        json.as_object().cloned().unwrap_or_default()
    }

    fn stamp_changed(record: &mut Map<String, Value>, at: chrono::DateTime<chrono::Utc>) {
        record.insert(
            "last_update".into(),
            json!(at.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()),
        );
    }

    fn index_keys(record: &Map<String, Value>) -> Vec<String> {
        let mut keys: Vec<String> = ["email", "phone", "drivers_license"]
            .into_iter()
            .filter_map(|kind| Some(index_key(kind, text(record, kind)?)))
            .collect();
        if let (Some(first), Some(last)) = (text(record, "first_name"), text(record, "last_name")) {
            keys.push(chosen::name_key(first, last));
        }
        keys
    }
}

/// The create schema's text fields (spec), which the update takes too.
const TEXT_FIELDS: [&str; 13] = [
    "first_name",
    "middle_name",
    "last_name",
    "birthday",
    "drivers_license",
    "drivers_license_expiration",
    "email",
    "phone",
    "gender",
    "patient_type",
    "notes",
    "state_medical_id",
    "permit_expiration",
];

/// The create schema's list field.
const ADDRESSES: &str = "addresses";

/// Fields holding a `YYYY-MM-DD` date.
const DATE_FIELDS: [&str; 3] = [
    "birthday",
    "drivers_license_expiration",
    "permit_expiration",
];

/// Sets every writable field from `body`, clearing those it leaves out (see
/// [`chosen::cleared`]): what Treez's whole-record update does, and what a create starts from.
/// Fields Treez keeps itself (`customer_id`, `status`, `signup_date`, `last_update`, the merge
/// pointer) and unknown fields are not touched, so the body of a read can be sent back.
fn replace_writable(customer: &mut Map<String, Value>, body: &Map<String, Value>) {
    for field in TEXT_FIELDS {
        let value = match body.get(field) {
            Some(Value::String(value)) => json!(value),
            _ => chosen::cleared(field),
        };
        customer.insert(field.to_owned(), value);
    }
    let addresses = body
        .get(ADDRESSES)
        .filter(|a| a.is_array())
        .cloned()
        .unwrap_or_else(|| chosen::cleared(ADDRESSES));
    customer.insert(ADDRESSES.to_owned(), addresses);
}

fn success(data: Value) -> HttpResponse {
    HttpResponse::Ok().json(
        json!({"resultCode": "SUCCESS", "resultReason": null, "resultDetail": null, "data": data}),
    )
}

fn fail(status: u16, reason: &str, detail: Option<String>) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status)
        .json(json!({"resultCode": "FAIL", "resultReason": reason, "resultDetail": detail}))
}

/// The update's own 400 envelope (spec), with `reason` as `resultReason` and `message`.
fn update_fail(reason: &str, message: &str) -> HttpResponse {
    let uuid = format!("{:032x}", rand::random::<u128>());
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        uuid.get(..8).unwrap_or_default(),
        uuid.get(8..12).unwrap_or_default(),
        uuid.get(12..16).unwrap_or_default(),
        uuid.get(16..20).unwrap_or_default(),
        uuid.get(20..).unwrap_or_default()
    );
    HttpResponse::BadRequest().json(json!({
        "resultCode": "FAIL",
        "resultReason": reason,
        "status": "BAD_REQUEST",
        "statusCode": 400,
        "message": message,
        "uuid": uuid,
        "timestamp": chrono::Utc::now().timestamp_millis(),
    }))
}

fn not_found() -> HttpResponse {
    fail(
        404,
        "CUSTOMER_DOESNT_EXIST",
        Some("Customer does not exist".into()),
    )
}

/// A refused write, before it is put in the create's or the update's envelope.
struct Refusal {
    reason: &'static str,
    detail: String,
}

impl Refusal {
    fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }

    fn for_create(&self) -> HttpResponse {
        fail(400, self.reason, Some(self.detail.clone()))
    }

    fn for_update(&self) -> HttpResponse {
        update_fail(self.reason, &self.detail)
    }
}

type Data = web::Data<State<Treez>>;

async fn token(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Token, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let form: HashMap<String, String> = web::Query::<HashMap<String, String>>::from_query(
        std::str::from_utf8(&body).unwrap_or_default(),
    )
    .map(web::Query::into_inner)
    .unwrap_or_default();
    let c = &state.credentials;
    if form.get("client_id") != Some(&c.client_id) || form.get("apikey") != Some(&c.api_key) {
        return HttpResponse::Unauthorized().json(json!({
            "resultCode": "FAIL",
            "resultReason": "INVALID_CREDENTIALS",
            "resultDetail": "client_id or apikey is not valid"
        }));
    }
    let lifetime = *lock(&state.extra.lifetime);
    let token = format!("tz-{:032x}", rand::random::<u128>());
    lock(&state.extra.issued).insert(token.clone(), Instant::now() + lifetime);
    let normal = HttpResponse::Ok().json(json!({
        "resultCode": "SUCCESS",
        "resultReason": null,
        "access_token": token,
        "expires_in": lifetime.as_secs(),
        "token_type": "access_token"
    }));
    state.finish(after, normal).await
}

async fn get(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::Get, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let id = request.match_info().get("id").unwrap_or_default();
    let found = state.table().get(id).cloned();
    let normal = match found {
        Some(customer) => success(Value::Object(customer)),
        None => not_found(),
    };
    state.finish(after, normal).await
}

/// A look-up by an index key: every match (whatever its status) as an array in `data`, or
/// 404 `CUSTOMER_DOESNT_EXIST`.
async fn search_by(
    state: &State<Treez>,
    request: &HttpRequest,
    key: impl FnOnce(&HttpRequest) -> String,
    matches: impl Fn(&Map<String, Value>) -> bool,
) -> HttpResponse {
    let after = match state.enter(Op::Search, request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let found: Vec<Value> = state
        .table()
        .indexed(&key(request))
        .into_iter()
        .filter(|c| matches(c))
        .cloned()
        .map(Value::Object)
        .collect();
    let normal = if found.is_empty() {
        not_found()
    } else {
        success(Value::Array(found))
    };
    state.finish(after, normal).await
}

fn segment<'a>(request: &'a HttpRequest, name: &str) -> &'a str {
    request.match_info().get(name).unwrap_or_default()
}

async fn by_email(state: Data, request: HttpRequest) -> HttpResponse {
    let value = segment(&request, "value").to_owned();
    search_by(
        &state,
        &request,
        |r| index_key("email", segment(r, "value")),
        |c| text(c, "email").is_some_and(|e| e.eq_ignore_ascii_case(value.trim())),
    )
    .await
}

async fn by_phone(state: Data, request: HttpRequest) -> HttpResponse {
    let value = digits(segment(&request, "value"));
    search_by(
        &state,
        &request,
        |r| index_key("phone", segment(r, "value")),
        |c| text(c, "phone").is_some_and(|p| digits(p) == value),
    )
    .await
}

async fn by_license(state: Data, request: HttpRequest) -> HttpResponse {
    let value = segment(&request, "value").to_owned();
    search_by(
        &state,
        &request,
        |r| index_key("drivers_license", segment(r, "value")),
        |c| text(c, "drivers_license").is_some_and(|l| l.eq_ignore_ascii_case(value.trim())),
    )
    .await
}

async fn by_name(state: Data, request: HttpRequest) -> HttpResponse {
    // The index key is the whole match (see `chosen::name_key`).
    search_by(
        &state,
        &request,
        |r| chosen::name_key(segment(r, "first"), segment(r, "last")),
        |_| true,
    )
    .await
}

async fn list(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::List, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let info = request.match_info();
    let page = info.get("page").and_then(|p| p.parse::<usize>().ok());
    let size = info.get("size").and_then(|p| p.parse::<usize>().ok());
    let since = info
        .get("after")
        .and_then(|t| chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.3f%:z").ok());
    let (Some(page), Some(size), Some(since)) = (page, size, since) else {
        return fail(
            400,
            "INVALID_REQUEST",
            Some("page, pagesize and the date must be valid".into()),
        );
    };
    if size > MAX_PAGE_SIZE {
        return fail(
            400,
            "RESPONSE_LIMIT_EXCEEDS",
            Some(format!("pagesize must be at most {MAX_PAGE_SIZE}")),
        );
    }
    let customers: Vec<Value> = state
        .table()
        .records()
        .filter(|c| {
            text(c, "last_update")
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_none_or(|updated| updated > since)
        })
        .skip(page.saturating_sub(1).saturating_mul(size))
        .take(size)
        .cloned()
        .map(Value::Object)
        .collect();
    state.finish(after, success(Value::Array(customers))).await
}

/// Treez's checks of a create or update body (both take the create schema with its four
/// required fields), first problem only.
///
/// Beyond the required fields (spec), the phone's ten digits and leading digit (spec), the
/// gender and patient type codes (spec) and the date format (`INVALID_DATE_FORMAT`: spec's
/// reason), Unverified (chosen): text fields must be strings or `null` and `addresses` a list
/// or `null`; an e-mail needs an `@`; a licence is letters, digits, spaces and dashes (the
/// double's invention, to have a field error to test); each an `INCORRECT_VALUE`.
fn check(object: &Map<String, Value>) -> Result<(), Refusal> {
    let incorrect = |field: &str| {
        Err(Refusal::new(
            "INCORRECT_VALUE",
            format!("Field {field} has an incorrect value"),
        ))
    };
    for field in TEXT_FIELDS {
        if object
            .get(field)
            .is_some_and(|v| !(v.is_string() || v.is_null()))
        {
            return incorrect(field);
        }
    }
    if object
        .get(ADDRESSES)
        .is_some_and(|v| !(v.is_array() || v.is_null()))
    {
        return incorrect(ADDRESSES);
    }
    for (field, reason) in chosen::BLANK_REASONS {
        if text(object, field).is_none() {
            return Err(Refusal::new(
                reason,
                format!("Field {field} cannot be blank"),
            ));
        }
    }
    for field in DATE_FIELDS {
        if let Some(date) = text(object, field)
            && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_err()
        {
            return Err(Refusal::new(
                "INVALID_DATE_FORMAT",
                format!("Field {field} has an invalid date format, expected yyyy-MM-dd"),
            ));
        }
    }
    if let Some(phone) = text(object, "phone") {
        if phone.len() != 10 || digits(phone) != phone {
            return incorrect("phone");
        }
        if phone.starts_with(['0', '1']) {
            return Err(Refusal::new("INCORRECT_VALUE", chosen::PHONE_LEADING_DIGIT));
        }
    }
    if let Some(gender) = text(object, "gender")
        && !matches!(gender, "M" | "F" | "U" | "N")
    {
        return incorrect("gender");
    }
    if let Some(kind) = text(object, "patient_type")
        && !matches!(kind, "ADULT" | "MEDICAL" | "MEDICAL_MMID")
    {
        return incorrect("patient_type");
    }
    if let Some(email) = text(object, "email")
        && !email.contains('@')
    {
        return incorrect("email");
    }
    if let Some(license) = text(object, "drivers_license")
        && !license
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
    {
        return incorrect("drivers_license");
    }
    Ok(())
}

/// Treez's uniqueness of e-mails and phones (spec): refused when another customer than `own`
/// holds the e-mail or phone `object` gives.
fn check_unique(
    table: &crate::Table,
    object: &Map<String, Value>,
    own: Option<&str>,
) -> Result<(), Refusal> {
    let taken = |kind: &str| {
        text(object, kind).is_some_and(|value| {
            table
                .indexed(&index_key(kind, value))
                .iter()
                .any(|other| text(other, "customer_id") != own)
        })
    };
    for (kind, (reason, detail)) in [
        ("email", chosen::DUPLICATE_EMAIL),
        ("phone", chosen::DUPLICATE_PHONE),
    ] {
        if taken(kind) {
            return Err(Refusal::new(reason, detail));
        }
    }
    Ok(())
}

fn now() -> String {
    chrono::Local::now()
        .fixed_offset()
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// The index key of a search: e-mails and licences without case, phones by digits.
fn index_key(kind: &str, value: &str) -> String {
    let normal = match kind {
        "phone" => digits(value),
        _ => value.trim().to_lowercase(),
    };
    format!("{kind}:{normal}")
}

/// The create schema's fields of a body: what a write may set.
fn writable(body: &Map<String, Value>) -> Map<String, Value> {
    body.iter()
        .filter(|(key, _)| TEXT_FIELDS.contains(&key.as_str()) || key.as_str() == ADDRESSES)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

async fn create(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Create, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let Some(object) = json_object(&body) else {
        return fail(
            400,
            "INVALID_REQUEST",
            Some("Request body is not a JSON object".into()),
        );
    };
    if let Err(refusal) = check(&object) {
        return refusal.for_create();
    }
    // One lock for the check and the insert, so two concurrent creates can't both take an
    // e-mail.
    let created = {
        let mut table = state.table();
        if let Err(refusal) = check_unique(&table, &object, None) {
            return refusal.for_create();
        }
        table.insert::<Treez>(Treez::new_record(&writable(&object)))
    };
    state.finish(after, success(Value::Object(created))).await
}

/// The id a merged-away customer was merged into.
fn merged_into(customer: &Map<String, Value>) -> Option<String> {
    if text(customer, "status") != Some(DEACTIVATED) {
        return None;
    }
    match customer.get(chosen::MERGED_INTO_FIELD)? {
        Value::String(id) if !id.trim().is_empty() => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

async fn update(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Update, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let Some(object) = json_object(&body) else {
        return update_fail(chosen::UPDATE_BAD_REQUEST, chosen::NOT_JSON);
    };
    if let Err(refusal) = check(&object) {
        return refusal.for_update();
    }
    let id = segment(&request, "id").trim().to_owned();
    let updated = {
        let mut table = state.table();
        let Some(current) = table.get(&id) else {
            let (reason, message) = chosen::UPDATE_UNKNOWN_ID;
            return update_fail(reason, message);
        };
        if let Some(into) = merged_into(current) {
            return update_fail(
                chosen::MERGED_AWAY_REASON,
                &chosen::merged_away_message(&id, &into),
            );
        }
        if let Err(refusal) = check_unique(&table, &object, Some(&id)) {
            return refusal.for_update();
        }
        table.update::<Treez>(&id, |customer| {
            replace_writable(customer, &object);
            customer.insert("last_update".into(), json!(now()));
        })
    };
    let normal = match updated {
        Some(customer) => success(Value::Object(customer)),
        None => not_found(),
    };
    state.finish(after, normal).await
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use crate::{Fault, VendorDouble};
    use reqwest::Method;

    fn start() -> TreezDouble {
        TreezDouble::start().unwrap()
    }

    /// `{base_url}/{dispensary}/{path}`.
    fn url(double: &TreezDouble, path: &str) -> String {
        format!(
            "{}/{}/{path}",
            double.base_url(),
            double.credentials().dispensary
        )
    }

    async fn token(double: &TreezDouble) -> String {
        let c = double.credentials();
        let response = reqwest::Client::new()
            .post(url(double, "config/api/gettokens"))
            .form(&[("client_id", &c.client_id), ("apikey", &c.api_key)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Sends a request with a fresh token; the status and the JSON body (`null` if none).
    async fn send(
        double: &TreezDouble,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = token(double).await;
        let mut request = reqwest::Client::new()
            .request(method, url(double, path))
            .header("authorization", token)
            .header("client_id", &double.credentials().client_id);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get_json(double: &TreezDouble, path: &str) -> (u16, Value) {
        send(double, Method::GET, path, None).await
    }

    async fn create(double: &TreezDouble, body: Value) -> (u16, Value) {
        send(double, Method::POST, "customer/detailcustomer", Some(body)).await
    }

    async fn patch(double: &TreezDouble, id: &str, body: Value) -> (u16, Value) {
        send(
            double,
            Method::PATCH,
            &format!("customer/update/{id}"),
            Some(body),
        )
        .await
    }

    fn required_only() -> Value {
        json!({"first_name": "Ann", "last_name": "Lee", "birthday": "1989-03-07", "patient_type": "ADULT"})
    }

    fn full_body() -> Value {
        json!({
            "first_name": "Ann", "middle_name": "Marie", "last_name": "Lee",
            "birthday": "1989-03-07", "patient_type": "MEDICAL", "gender": "F",
            "email": "ann@example.com", "phone": "5551234567",
            "drivers_license": "D1234567", "drivers_license_expiration": "2030-01-31",
            "notes": "likes edibles", "state_medical_id": "MED-1",
            "permit_expiration": "2026-06-30",
            "addresses": [{"street1": "1 Main St", "city": "Denver", "state": "CO", "zip": "80202"}],
        })
    }

    /// The update's own 400 envelope, with this reason.
    fn assert_update_envelope(body: &Value, reason: &str) {
        assert_eq!(body["resultCode"], "FAIL", "{body}");
        assert_eq!(body["resultReason"], reason, "{body}");
        assert_eq!(body["status"], "BAD_REQUEST");
        assert_eq!(body["statusCode"], 400);
        assert!(body["message"].is_string());
        assert_eq!(body["uuid"].as_str().unwrap().len(), 36);
        assert!(body["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
        assert!(body.get("resultDetail").is_none(), "{body}");
    }

    #[tokio::test]
    async fn calls_need_a_live_token_the_client_id_and_the_dispensary() {
        let double = start();
        let client = reqwest::Client::new();
        let refused = client
            .post(url(&double, "config/api/gettokens"))
            .form(&[("client_id", "client-abc"), ("apikey", "wrong")])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 401);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["resultReason"], "INVALID_CREDENTIALS");

        let anonymous = client.get(url(&double, "customer/1")).send().await.unwrap();
        assert_eq!(anonymous.status().as_u16(), 401);
        let body: Value = anonymous.json().await.unwrap();
        assert_eq!(
            body,
            json!({"resultCode": "FAIL", "resultReason": "Full authentication is required to access this resource"})
        );

        let token = token(&double).await;
        let wrong_client = client
            .get(url(&double, "customer/1"))
            .header("authorization", &token)
            .header("client_id", "someone-else")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_client.status().as_u16(), 401);
        let other_dispensary = client
            .get(format!("{}/elsewhere/customer/1", double.base_url()))
            .header("authorization", &token)
            .header("client_id", &double.credentials().client_id)
            .send()
            .await
            .unwrap();
        assert_eq!(other_dispensary.status().as_u16(), 404);

        double.revoke_tokens();
        let revoked = client
            .get(url(&double, "customer/1"))
            .header("authorization", &token)
            .header("client_id", &double.credentials().client_id)
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status().as_u16(), 401);
        assert_eq!(double.count(Op::Token), 2);
    }

    #[tokio::test]
    async fn a_create_is_found_by_id_email_phone_licence_name_and_list() {
        let double = start();
        let (status, created) = create(&double, full_body()).await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["resultCode"], "SUCCESS");
        let customer = &created["data"];
        let id = customer["customer_id"].as_str().unwrap().to_owned();
        assert_eq!(customer["status"], ACTIVE);
        assert_eq!(customer[chosen::MERGED_INTO_FIELD], Value::Null);
        assert_eq!(customer["addresses"][0]["city"], "Denver");
        assert!(customer["signup_date"].is_string());

        let (status, got) = get_json(&double, &format!("customer/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(got["data"], *customer);
        for path in [
            "customer/email/ANN@example.com",
            "customer/phone/5551234567",
            "customer/driverlicense/d1234567",
            "customer/firstname/ann/lastname/LEE",
        ] {
            let (status, found) = get_json(&double, path).await;
            assert_eq!(status, 200, "{path}");
            assert_eq!(found["data"], json!([customer]), "{path}");
        }
        let (status, listed) = get_json(
            &double,
            "customer/lastUpdated/after/2000-01-01T00:00:00.000+00:00/page/1/pagesize/50",
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(listed["data"], json!([customer]));
        let (status, body) = get_json(
            &double,
            "customer/lastUpdated/after/2000-01-01T00:00:00.000+00:00/page/1/pagesize/51",
        )
        .await;
        assert_eq!(
            (status, &body["resultReason"]),
            (400, &json!("RESPONSE_LIMIT_EXCEEDS"))
        );

        let (status, body) = get_json(&double, "customer/999").await;
        assert_eq!(status, 404);
        assert_eq!(body["resultReason"], "CUSTOMER_DOESNT_EXIST");
        assert_eq!(double.count(Op::Search), 4);
        assert_eq!(double.count(Op::Create), 1);
    }

    #[tokio::test]
    async fn creates_refuse_blank_required_fields_and_bad_values_with_treez_reasons() {
        let double = start();
        for (field, reason) in chosen::BLANK_REASONS {
            for blank in [Value::Null, json!(" ")] {
                let mut body = required_only();
                body[field] = blank.clone();
                let (status, refused) = create(&double, body).await;
                assert_eq!(status, 400);
                assert_eq!(
                    refused,
                    json!({"resultCode": "FAIL", "resultReason": reason,
                           "resultDetail": format!("Field {field} cannot be blank")})
                );
            }
            let mut body = required_only();
            body.as_object_mut().unwrap().remove(field);
            assert_eq!(create(&double, body).await.1["resultReason"], reason);
        }
        let bad = [
            (
                "phone",
                json!("0551234567"),
                "INCORRECT_VALUE",
                Some(chosen::PHONE_LEADING_DIGIT),
            ),
            (
                "phone",
                json!("1551234567"),
                "INCORRECT_VALUE",
                Some(chosen::PHONE_LEADING_DIGIT),
            ),
            ("phone", json!("555-123-4567"), "INCORRECT_VALUE", None),
            ("phone", json!("555123456"), "INCORRECT_VALUE", None),
            ("birthday", json!("03/07/1989"), "INVALID_DATE_FORMAT", None),
            (
                "permit_expiration",
                json!("2026-13-01"),
                "INVALID_DATE_FORMAT",
                None,
            ),
            ("gender", json!("X"), "INCORRECT_VALUE", None),
            (
                "patient_type",
                json!("RECREATIONAL"),
                "INCORRECT_VALUE",
                None,
            ),
            ("email", json!("not-an-address"), "INCORRECT_VALUE", None),
            ("first_name", json!(7), "INCORRECT_VALUE", None),
            ("addresses", json!("1 Main St"), "INCORRECT_VALUE", None),
        ];
        for (field, value, reason, detail) in bad {
            let mut body = required_only();
            body[field] = value.clone();
            let (status, refused) = create(&double, body).await;
            assert_eq!(status, 400, "{field} {value}");
            assert_eq!(refused["resultReason"], reason, "{field} {value}");
            if let Some(detail) = detail {
                assert_eq!(refused["resultDetail"], detail);
            }
        }
        let response = reqwest::Client::new()
            .post(url(&double, "customer/detailcustomer"))
            .header("authorization", token(&double).await)
            .header("client_id", &double.credentials().client_id)
            .body("not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["resultReason"], "INVALID_REQUEST");
        assert!(double.customers().is_empty());
    }

    #[tokio::test]
    async fn e_mails_and_phones_are_unique_on_create_and_update() {
        let double = start();
        let (_, first) = create(&double, full_body()).await;
        let first_id = first["data"]["customer_id"].as_str().unwrap().to_owned();

        let mut same_email = required_only();
        same_email["email"] = json!("ANN@Example.com");
        let (status, refused) = create(&double, same_email).await;
        assert_eq!(status, 400);
        assert_eq!(
            refused,
            json!({"resultCode": "FAIL", "resultReason": chosen::DUPLICATE_EMAIL.0,
                   "resultDetail": chosen::DUPLICATE_EMAIL.1})
        );
        let mut same_phone = required_only();
        same_phone["phone"] = json!("5551234567");
        let (status, refused) = create(&double, same_phone).await;
        assert_eq!(status, 400);
        assert_eq!(refused["resultReason"], chosen::DUPLICATE_PHONE.0);
        assert_eq!(double.customers().len(), 1);

        let mut other = required_only();
        other["first_name"] = json!("Bob");
        other["email"] = json!("bob@example.com");
        other["phone"] = json!("5559876543");
        let (status, second) = create(&double, other.clone()).await;
        assert_eq!(status, 200);
        let second_id = second["data"]["customer_id"].as_str().unwrap().to_owned();

        // A customer may keep its own e-mail and phone, but not take another's.
        let (status, _) = patch(&double, &first_id, full_body()).await;
        assert_eq!(status, 200);
        other["phone"] = json!("5551234567");
        let (status, refused) = patch(&double, &second_id, other).await;
        assert_eq!(status, 400);
        assert_update_envelope(&refused, chosen::DUPLICATE_PHONE.0);
        assert_eq!(refused["message"], chosen::DUPLICATE_PHONE.1);
        assert_eq!(double.customer(&second_id).unwrap()["phone"], "5559876543");
    }

    #[tokio::test]
    async fn the_update_replaces_the_whole_record_and_clears_what_it_leaves_out() {
        let double = start();
        let id = double.seed(json!({
            "first_name": "Ann", "middle_name": "Marie", "last_name": "Lee",
            "birthday": "1989-03-07", "patient_type": "MEDICAL", "gender": "F",
            "email": "ann@example.com", "phone": "5551234567", "drivers_license": "D1234567",
            "notes": "old note", "addresses": [{"city": "Denver"}],
            "signup_date": "2020-01-01T10:00:00.000-07:00",
            "last_update": "2020-01-01T10:00:00.000-07:00",
        }));
        let mut body = required_only();
        body["notes"] = json!("prefers edibles");
        body["status"] = json!("DEACTIVATED");
        body["customer_id"] = json!("999");
        body["signup_date"] = json!("1999-01-01T00:00:00.000+00:00");
        let (status, updated) = patch(&double, &id, body).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["resultCode"], "SUCCESS");
        let customer = &updated["data"];
        assert_eq!(customer["customer_id"], id.as_str());
        assert_eq!(customer["notes"], "prefers edibles");
        assert_eq!(customer["patient_type"], "ADULT");
        for cleared in [
            "middle_name",
            "gender",
            "email",
            "phone",
            "drivers_license",
            "drivers_license_expiration",
            "state_medical_id",
            "permit_expiration",
        ] {
            assert_eq!(customer[cleared], Value::Null, "{cleared}");
        }
        assert_eq!(customer["addresses"], json!([]));
        // What Treez keeps itself is not the body's to set.
        assert_eq!(customer["status"], ACTIVE);
        assert_eq!(customer["signup_date"], "2020-01-01T10:00:00.000-07:00");
        assert_ne!(customer["last_update"], "2020-01-01T10:00:00.000-07:00");
        assert_eq!(double.customer(&id).unwrap(), *customer);

        // The body of a read can be sent back whole.
        let (status, again) = patch(&double, &id, customer.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(again["data"]["notes"], "prefers edibles");
        // The freed e-mail can be taken by another customer.
        let mut other = required_only();
        other["email"] = json!("ann@example.com");
        assert_eq!(create(&double, other).await.0, 200);
        assert_eq!(double.count(Op::Update), 2);
    }

    #[tokio::test]
    async fn the_update_needs_the_four_fields_every_time_and_answers_in_its_own_envelope() {
        let double = start();
        let (_, created) = create(&double, full_body()).await;
        let id = created["data"]["customer_id"].as_str().unwrap().to_owned();
        let (status, refused) = patch(&double, &id, json!({"notes": "sparse"})).await;
        assert_eq!(status, 400);
        assert_update_envelope(&refused, "CUSTOMER_FIRST_NAME_BLANK");
        assert_eq!(refused["message"], "Field first_name cannot be blank");
        for (field, reason) in chosen::BLANK_REASONS {
            let mut body = required_only();
            body.as_object_mut().unwrap().remove(field);
            let (status, refused) = patch(&double, &id, body).await;
            assert_eq!(status, 400);
            assert_update_envelope(&refused, reason);
        }
        let mut body = required_only();
        body["phone"] = json!("1234567890");
        let (_, refused) = patch(&double, &id, body).await;
        assert_update_envelope(&refused, "INCORRECT_VALUE");
        assert_eq!(double.customer(&id).unwrap()["notes"], "likes edibles");

        for not_json in ["not json", "[1, 2]"] {
            let response = reqwest::Client::new()
                .patch(url(&double, &format!("customer/update/{id}")))
                .header("authorization", token(&double).await)
                .header("client_id", &double.credentials().client_id)
                .header("content-type", "application/json")
                .body(not_json)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 400);
            let mut body: Value = response.json().await.unwrap();
            assert_update_envelope(&body, "Bad Request");
            let keys = body.as_object_mut().unwrap();
            keys.remove("uuid");
            keys.remove("timestamp");
            assert_eq!(
                body,
                json!({"resultCode": "FAIL", "resultReason": "Bad Request", "status": "BAD_REQUEST",
                       "statusCode": 400, "message": "Input is not valid JSON."})
            );
        }

        let (status, refused) = patch(&double, "999", required_only()).await;
        assert_eq!(status, 400);
        assert_update_envelope(&refused, "CUSTOMER_DOESNT_EXIST");
        assert_eq!(double.count(Op::Update), 9);
    }

    #[tokio::test]
    async fn there_is_no_put_update() {
        let double = start();
        let (_, created) = create(&double, full_body()).await;
        let id = created["data"]["customer_id"].as_str().unwrap().to_owned();
        for path in [format!("customer/{id}"), format!("customer/update/{id}")] {
            let (status, _) = send(&double, Method::PUT, &path, Some(json!({"notes": "x"}))).await;
            assert_eq!(status, 404, "{path}");
        }
        let (status, _) = send(
            &double,
            Method::POST,
            &format!("customer/update/{id}"),
            Some(required_only()),
        )
        .await;
        assert_eq!(status, 404);
        assert_eq!(double.customer(&id).unwrap()["notes"], "likes edibles");
        assert_eq!(double.count(Op::Update), 0);
    }

    #[tokio::test]
    async fn a_merge_deactivates_the_merged_away_customer_and_refuses_its_updates() {
        let double = start();
        let from = double.seed_customer(&SeedCustomer::numbered(1));
        let into = double.seed_customer(&SeedCustomer::numbered(2));
        assert!(!double.merge(&from, "999"));
        assert!(!double.merge(&from, &from));
        assert!(double.merge(&from, &into));

        let (_, merged_away) = get_json(&double, &format!("customer/{from}")).await;
        assert_eq!(merged_away["data"]["status"], DEACTIVATED);
        assert_eq!(
            merged_away["data"][chosen::MERGED_INTO_FIELD],
            into.as_str()
        );
        let (_, survivor) = get_json(&double, &format!("customer/{into}")).await;
        assert_eq!(survivor["data"]["status"], MERGED);
        assert_eq!(survivor["data"][chosen::MERGED_INTO_FIELD], Value::Null);
        // Still found by its e-mail, and still holding it.
        let (status, found) = get_json(&double, "customer/email/customer1@example.com").await;
        assert_eq!(status, 200);
        assert_eq!(found["data"][0]["status"], DEACTIVATED);

        let (status, refused) = patch(&double, &from, required_only()).await;
        assert_eq!(status, 400);
        assert_update_envelope(&refused, "MERGED_INTO_CUSTOMER_ID");
        assert!(refused["message"].as_str().unwrap().contains(&into));
        let mut taken = required_only();
        taken["email"] = json!("customer1@example.com");
        let (status, refused) = patch(&double, &into, taken).await;
        assert_eq!(status, 400);
        assert_eq!(refused["resultReason"], chosen::DUPLICATE_EMAIL.0);

        let (status, updated) = patch(&double, &into, required_only()).await;
        assert_eq!(status, 200);
        assert_eq!(updated["data"]["status"], MERGED);
    }

    #[tokio::test]
    async fn the_name_search_matches_whole_names_ignoring_case() {
        let double = start();
        let ann = double.seed_customer(&SeedCustomer::named("Ann", "Lee"));
        let shouting = double.seed_customer(&SeedCustomer::named("ANN", "LEE"));
        double.seed_customer(&SeedCustomer::named("Ann", "Leeds"));
        let cruz = double.seed_customer(&SeedCustomer::named("Mary Ann", "De La Cruz"));
        let (status, found) = get_json(&double, "customer/firstname/ann/lastname/lee").await;
        assert_eq!(status, 200);
        let ids: Vec<&str> = found["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["customer_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [ann.as_str(), shouting.as_str()]);
        let (status, found) = get_json(
            &double,
            "customer/firstname/mary%20ann/lastname/de%20la%20cruz",
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(found["data"][0]["customer_id"], cruz.as_str());
        for miss in [
            "customer/firstname/an/lastname/lee",
            "customer/firstname/lee/lastname/ann",
        ] {
            let (status, body) = get_json(&double, miss).await;
            assert_eq!(status, 404, "{miss}");
            assert_eq!(body["resultReason"], "CUSTOMER_DOESNT_EXIST");
        }
    }

    #[tokio::test]
    async fn the_rate_limit_is_off_until_a_test_enforces_it() {
        let double = start();
        for _ in 0..15 {
            assert_eq!(get_json(&double, "customer/1").await.0, 404);
        }
        double.set_rate_limit(2);
        double.enforce_rate_limit(true);
        let client = reqwest::Client::new();
        let mut refused = Vec::new();
        for _ in 0..6 {
            let response = client.get(url(&double, "customer/1")).send().await.unwrap();
            if response.status().as_u16() == 429 {
                assert!(response.headers().get("retry-after").is_none());
                refused.push(response.json::<Value>().await.unwrap());
            }
        }
        assert!(!refused.is_empty());
        assert_eq!(
            refused[0],
            json!({"resultCode": "FAIL", "resultReason": chosen::RATE_LIMITED.0,
                   "resultDetail": chosen::RATE_LIMITED.1})
        );
        double.enforce_rate_limit(false);
        assert_eq!(get_json(&double, "customer/1").await.0, 404);
    }

    #[tokio::test]
    async fn seeds_are_held_in_treez_shape() {
        let double = start();
        let id = double.seed_customer(&SeedCustomer::numbered(7));
        let customer = double.customer(&id).unwrap();
        assert_eq!(customer["first_name"], "First7");
        assert_eq!(customer["phone"], "5550000007");
        assert_eq!(customer["gender"], "F");
        assert_eq!(customer["patient_type"], "ADULT");
        assert_eq!(customer["status"], ACTIVE);
        assert_eq!(customer["addresses"], json!([]));
        let plain = double.seed_customer(&SeedCustomer::named("Only", "Names"));
        assert_eq!(double.customer(&plain).unwrap()["birthday"], "1980-01-01");
        let unusable = double.seed_unusable();
        assert_eq!(double.customer(&unusable).unwrap()["first_name"], "");
        let merged = double.seed(json!({"first_name": "Old", "last_name": "Record",
            "birthday": "1970-01-01", "patient_type": "ADULT", "status": "MERGED"}));
        assert_eq!(double.customer(&merged).unwrap()["status"], MERGED);
        assert_eq!(double.customers().len(), 4);
    }

    #[tokio::test]
    async fn the_store_config_reaches_the_double_and_the_wrong_one_is_refused() {
        let double: Box<dyn VendorDouble> = crate::start("treez").unwrap().unwrap();
        let ask = |config: &Value| {
            let config = config.clone();
            async move {
                reqwest::Client::new()
                    .post(format!(
                        "{}/{}/config/api/gettokens",
                        config["base_url"].as_str().unwrap(),
                        config["dispensary"].as_str().unwrap()
                    ))
                    .form(&[
                        ("client_id", config["client_id"].as_str().unwrap()),
                        ("apikey", config["api_key"].as_str().unwrap()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(ask(&double.store_config()).await, 200);
        let wrong = double.wrong_credentials_config();
        assert_eq!(ask(&wrong).await, 401);
        let secrets = double.secrets();
        assert!(secrets.contains(&wrong["api_key"].as_str().unwrap().to_owned()));
        assert!(
            secrets.contains(
                &double.store_config()["api_key"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            )
        );
    }

    #[tokio::test]
    async fn shared_faults_answer_in_treez_shapes_and_after_commit_keeps_the_write() {
        let double = start();
        let (_, created) = create(&double, full_body()).await;
        let id = created["data"]["customer_id"].as_str().unwrap().to_owned();
        double.fail(Op::Get, Fault::Status(429), 1);
        let (status, body) = get_json(&double, &format!("customer/{id}")).await;
        assert_eq!(status, 429);
        assert_eq!(body["resultCode"], "FAIL");
        double.fail(Op::Update, Fault::Invalid, 1);
        let (status, body) = patch(&double, &id, required_only()).await;
        assert_eq!(
            (status, &body["resultReason"]),
            (400, &json!("MODEL_VALIDATION_FAIL"))
        );
        double.fail(
            Op::Update,
            Fault::AfterCommit(Box::new(Fault::Status(502))),
            1,
        );
        let (status, _) = patch(&double, &id, required_only()).await;
        assert_eq!(status, 502);
        assert_eq!(double.customer(&id).unwrap()["email"], Value::Null);
    }
}
