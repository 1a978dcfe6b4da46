//! Treez, API v2: a token from `config/api/gettokens`, then `authorization: <token>` and
//! `client_id` headers on every call; snake_case JSON in a `resultCode`/`resultReason`/
//! `resultDetail`/`data` envelope. See docs/vendors/treez.md for the sources.
//!
//! Paths, relative to `{url}/v2.0/dispensary/{dispensary}/`:
//! `POST config/api/gettokens` (form `client_id`, `apikey`), `GET customer/{id}`,
//! `GET customer/email/{email}`, `GET customer/phone/{phone}`,
//! `GET customer/driverlicense/{licence}`,
//! `GET customer/lastUpdated/after/{timestamp}/page/{page}/pagesize/{size}`,
//! `POST customer/detailcustomer` (create), `PUT customer/{id}` (update, sparse).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value, json};

use crate::{Double, Fault, Gate, Op, Shared, Style, digits, lock, respond_with, text};

/// The largest page the list accepts; more gives 400 `RESPONSE_LIMIT_EXCEEDS`.
pub const MAX_PAGE_SIZE: usize = 50;

/// Where the adapter's `base_url` should point: the double's URL plus this.
pub const BASE_PATH: &str = "/v2.0/dispensary";

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

struct State {
    credentials: Credentials,
    token_lifetime: Mutex<Duration>,
    tokens: Mutex<HashMap<String, Instant>>,
    customers: Mutex<BTreeMap<u64, Map<String, Value>>>,
    /// Search keys ([`search_keys`]) to customer ids, as a vendor's indexes: the benchmarks
    /// create tens of thousands of customers, and a scan per search would measure the double.
    index: Mutex<HashMap<String, BTreeSet<u64>>>,
    next_id: AtomicU64,
    shared: Arc<Shared>,
}

struct TreezStyle;

impl Style for TreezStyle {
    fn error(&self, _status: u16, reason: &str) -> Value {
        json!({"resultCode": "FAIL", "resultReason": reason, "resultDetail": null})
    }

    fn invalid(&self) -> (u16, Value) {
        (
            400,
            json!({"resultCode": "FAIL", "resultReason": "MODEL_VALIDATION_FAIL", "resultDetail": "Request could not be validated"}),
        )
    }
}

/// A running Treez double.
pub struct TreezDouble {
    double: Double,
    state: web::Data<State>,
}

impl std::ops::Deref for TreezDouble {
    type Target = Double;
    fn deref(&self) -> &Double {
        &self.double
    }
}

impl TreezDouble {
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(Credentials::default())
    }

    pub fn start_with(credentials: Credentials) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let state = web::Data::new(State {
            credentials,
            token_lifetime: Mutex::new(Duration::from_secs(2 * 3600)),
            tokens: Mutex::new(HashMap::new()),
            customers: Mutex::new(BTreeMap::new()),
            index: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            shared: shared.clone(),
        });
        let data = state.clone();
        let double = Double::start(shared, move |cfg| routes(cfg, data.clone()))?;
        Ok(Self { double, state })
    }

    pub fn credentials(&self) -> &Credentials {
        &self.state.credentials
    }

    /// The adapter's `base_url` for this double.
    pub fn base_url(&self) -> String {
        format!("{}{BASE_PATH}", self.url())
    }

    /// A store config (`store add --config`) that reaches this double.
    pub fn store_config(&self) -> Value {
        let c = &self.state.credentials;
        json!({
            "dispensary": c.dispensary,
            "client_id": c.client_id,
            "api_key": c.api_key,
            "base_url": self.base_url(),
        })
    }

    /// Tokens issued from now on live this long (`expires_in` says so too).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *lock(&self.state.token_lifetime) = lifetime;
    }

    /// Forgets every issued token, as if they had been revoked: the next call gets a 401.
    pub fn revoke_tokens(&self) {
        lock(&self.state.tokens).clear();
    }

    /// Adds a customer directly, as if created at the store's register; returns its id.
    pub fn seed(&self, customer: Value) -> String {
        let mut object = customer.as_object().cloned().unwrap_or_default();
        insert_new(&self.state, &mut object)
    }

    /// The customers the vendor holds, as it would return them.
    pub fn customers(&self) -> Vec<Value> {
        lock(&self.state.customers)
            .values()
            .cloned()
            .map(Value::Object)
            .collect()
    }
}

fn routes(cfg: &mut web::ServiceConfig, state: web::Data<State>) {
    cfg.app_data(state).service(
        web::scope("/v2.0/dispensary/{dispensary}")
            .route("/config/api/gettokens", web::post().to(token))
            .route(
                "/customer/lastUpdated/after/{after}/page/{page}/pagesize/{size}",
                web::get().to(list),
            )
            .route("/customer/email/{value}", web::get().to(by_email))
            .route("/customer/phone/{value}", web::get().to(by_phone))
            .route("/customer/driverlicense/{value}", web::get().to(by_license))
            .route("/customer/detailcustomer", web::post().to(create))
            .route("/customer/{id}", web::get().to(get))
            .route("/customer/{id}", web::put().to(update)),
    );
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

fn not_found() -> HttpResponse {
    fail(
        404,
        "CUSTOMER_DOESNT_EXIST",
        Some("Customer does not exist".into()),
    )
}

/// The gate every customer route passes: faults, then the tenant and the token.
async fn enter(
    state: &State,
    op: Op,
    request: &HttpRequest,
    body: &[u8],
) -> Result<Option<Fault>, HttpResponse> {
    let after = match state.shared.gate(op, request, body, &TreezStyle).await {
        Gate::Respond(response) => return Err(response),
        Gate::Proceed(after) => after,
    };
    if request.match_info().get("dispensary") != Some(state.credentials.dispensary.as_str()) {
        return Err(fail(
            404,
            "INVALID_DISPENSARY",
            Some("Unknown dispensary".into()),
        ));
    }
    if op == Op::Token {
        return Ok(after);
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let token = header("authorization");
    let valid = lock(&state.tokens)
        .get(&token)
        .is_some_and(|expires| Instant::now() < *expires);
    if !valid || header("client_id") != state.credentials.client_id {
        return Err(HttpResponse::Unauthorized().json(json!({
            "resultCode": "FAIL",
            "resultReason": "Full authentication is required to access this resource"
        })));
    }
    Ok(after)
}

/// The answer after the work is done: the normal one, or the fault queued "after commit".
async fn finish(after: Option<Fault>, normal: HttpResponse) -> HttpResponse {
    match after {
        Some(fault) => respond_with(&fault, &TreezStyle).await,
        None => normal,
    }
}

async fn token(state: web::Data<State>, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match enter(&state, Op::Token, &request, &body).await {
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
    let lifetime = *lock(&state.token_lifetime);
    let token = format!("tz-{:032x}", rand::random::<u128>());
    lock(&state.tokens).insert(token.clone(), Instant::now() + lifetime);
    finish(
        after,
        HttpResponse::Ok().json(json!({
            "resultCode": "SUCCESS",
            "resultReason": null,
            "access_token": token,
            "expires_in": lifetime.as_secs(),
            "token_type": "access_token"
        })),
    )
    .await
}

async fn get(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    let after = match enter(&state, Op::Get, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let id = request.match_info().get("id").unwrap_or_default();
    let found = id
        .parse::<u64>()
        .ok()
        .and_then(|id| lock(&state.customers).get(&id).cloned());
    let normal = match found {
        Some(customer) => success(Value::Object(customer)),
        None => not_found(),
    };
    finish(after, normal).await
}

async fn search_by(
    state: &State,
    request: &HttpRequest,
    kind: &str,
    matches: impl Fn(&Map<String, Value>, &str) -> bool,
) -> HttpResponse {
    let after = match enter(state, Op::Search, request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let value = request.match_info().get("value").unwrap_or_default();
    let ids: Vec<u64> = lock(&state.index)
        .get(&format!("{kind}:{}", normal(kind, value)))
        .map(|ids| ids.iter().copied().collect())
        .unwrap_or_default();
    let found: Vec<Value> = {
        let customers = lock(&state.customers);
        ids.iter()
            .filter_map(|id| customers.get(id))
            .filter(|c| matches(c, value))
            .cloned()
            .map(Value::Object)
            .collect()
    };
    let normal = if found.is_empty() {
        not_found()
    } else {
        success(Value::Array(found))
    };
    finish(after, normal).await
}

async fn by_email(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    search_by(&state, &request, "email", |c, v| {
        text(c, "email").is_some_and(|e| e.eq_ignore_ascii_case(v))
    })
    .await
}

async fn by_phone(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    search_by(&state, &request, "phone", |c, v| {
        text(c, "phone").is_some_and(|p| digits(p) == digits(v))
    })
    .await
}

async fn by_license(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    search_by(&state, &request, "drivers_license", |c, v| {
        text(c, "drivers_license").is_some_and(|l| l.eq_ignore_ascii_case(v))
    })
    .await
}

async fn list(state: web::Data<State>, request: HttpRequest) -> HttpResponse {
    let after = match enter(&state, Op::List, &request, &[]).await {
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
    let customers: Vec<Value> = lock(&state.customers)
        .values()
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
    finish(after, success(Value::Array(customers))).await
}

const REQUIRED: [(&str, &str); 4] = [
    ("first_name", "CUSTOMER_FIRST_NAME_BLANK"),
    ("last_name", "CUSTOMER_LAST_NAME_BLANK"),
    ("birthday", "CUSTOMER_BIRTHDAY_BLANK"),
    ("patient_type", "CUSTOMER_PATIENT_TYPE_BLANK"),
];

/// Treez's checks of the fields present in `object`, as its 400 answer.
fn check(object: &Map<String, Value>, creating: bool) -> Result<(), HttpResponse> {
    for (field, reason) in REQUIRED {
        let present = object.contains_key(field);
        if (creating || present) && text(object, field).is_none() {
            return Err(fail(
                400,
                reason,
                Some(format!("Field {field} cannot be blank")),
            ));
        }
    }
    let incorrect = |field: &str| {
        Err(fail(
            400,
            "INCORRECT_VALUE",
            Some(format!("Field {field} has an incorrect value")),
        ))
    };
    if let Some(birthday) = text(object, "birthday")
        && chrono::NaiveDate::parse_from_str(birthday, "%Y-%m-%d").is_err()
    {
        return Err(fail(
            400,
            "INVALID_DATE_FORMAT",
            Some("Field birthday has an invalid date format, expected yyyy-MM-dd".into()),
        ));
    }
    if let Some(phone) = text(object, "phone")
        && (phone.len() != 10 || digits(phone) != phone)
    {
        return incorrect("phone");
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
    // Licence numbers are letters, digits, spaces and dashes in every US state.
    if let Some(license) = text(object, "drivers_license")
        && !license
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
    {
        return incorrect("drivers_license");
    }
    Ok(())
}

fn now() -> String {
    chrono::Local::now()
        .fixed_offset()
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

fn insert_new(state: &State, object: &mut Map<String, Value>) -> String {
    let id = state.next_id.fetch_add(1, Ordering::SeqCst);
    let stamp = now();
    object.insert("customer_id".into(), json!(id.to_string()));
    object.entry("status").or_insert(json!("ACTIVE"));
    object.entry("signup_date").or_insert(json!(stamp));
    object.insert("last_update".into(), json!(stamp));
    for field in [
        "middle_name",
        "email",
        "phone",
        "drivers_license",
        "notes",
        "gender",
    ] {
        object.entry(field).or_insert(Value::Null);
    }
    let mut customers = lock(&state.customers);
    let mut index = lock(&state.index);
    for key in search_keys(object) {
        index.entry(key).or_default().insert(id);
    }
    customers.insert(id, object.clone());
    id.to_string()
}

/// How each search compares its value: e-mails and licences without case, phones by digits.
fn normal(kind: &str, value: &str) -> String {
    match kind {
        "phone" => digits(value),
        _ => value.trim().to_lowercase(),
    }
}

/// The index keys of a customer: `kind:normal value` for each searchable field it has.
fn search_keys(customer: &Map<String, Value>) -> Vec<String> {
    ["email", "phone", "drivers_license"]
        .into_iter()
        .filter_map(|kind| Some(format!("{kind}:{}", normal(kind, text(customer, kind)?))))
        .collect()
}

fn unindex(index: &mut HashMap<String, BTreeSet<u64>>, id: u64, customer: &Map<String, Value>) {
    for key in search_keys(customer) {
        if let Some(ids) = index.get_mut(&key) {
            ids.remove(&id);
        }
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, HttpResponse> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(fail(
            400,
            "INVALID_REQUEST",
            Some("Request body is not a JSON object".into()),
        )),
    }
}

async fn create(state: web::Data<State>, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match enter(&state, Op::Create, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let mut object = match parse_object(&body) {
        Ok(object) => object,
        Err(response) => return response,
    };
    if let Err(response) = check(&object, true) {
        return response;
    }
    insert_new(&state, &mut object);
    finish(after, success(Value::Object(object))).await
}

async fn update(state: web::Data<State>, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match enter(&state, Op::Update, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let changes = match parse_object(&body) {
        Ok(object) => object,
        Err(response) => return response,
    };
    if let Err(response) = check(&changes, false) {
        return response;
    }
    let id = request
        .match_info()
        .get("id")
        .and_then(|id| id.parse::<u64>().ok());
    let updated = {
        let mut customers = lock(&state.customers);
        id.and_then(|id| Some((id, customers.get_mut(&id)?)))
            .map(|(id, customer)| {
                let mut index = lock(&state.index);
                unindex(&mut index, id, customer);
                for (key, value) in changes {
                    if key != "customer_id" {
                        customer.insert(key, value);
                    }
                }
                customer.insert("last_update".into(), json!(now()));
                for key in search_keys(customer) {
                    index.entry(key).or_default().insert(id);
                }
                customer.clone()
            })
    };
    let normal = match updated {
        Some(customer) => success(Value::Object(customer)),
        None => not_found(),
    };
    finish(after, normal).await
}
