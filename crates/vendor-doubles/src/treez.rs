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

/// The tokens Treez has issued, and how long new ones live.
pub struct Tokens {
    lifetime: Mutex<Duration>,
    issued: Mutex<HashMap<String, Instant>>,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            lifetime: Mutex::new(Duration::from_secs(2 * 3600)),
            issued: Mutex::new(HashMap::new()),
        }
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
}

impl Wire for Treez {
    const NAME: &'static str = "treez";
    const ID_FIELD: &'static str = "customer_id";
    type Credentials = Credentials;
    type Extra = Tokens;

    fn routes(cfg: &mut web::ServiceConfig) {
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
                .route("/customer/detailcustomer", web::post().to(create))
                .route("/customer/{id}", web::get().to(get))
                .route("/customer/{id}", web::put().to(update)),
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

    fn new_record(fields: &Map<String, Value>) -> Map<String, Value> {
        let mut record = fields.clone();
        let stamp = now();
        record.entry("status").or_insert(json!("ACTIVE"));
        record.entry("signup_date").or_insert(json!(stamp));
        record.insert("last_update".into(), json!(stamp));
        for field in [
            "middle_name",
            "email",
            "phone",
            "drivers_license",
            "notes",
            "gender",
        ] {
            record.entry(field).or_insert(Value::Null);
        }
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

    fn index_keys(record: &Map<String, Value>) -> Vec<String> {
        ["email", "phone", "drivers_license"]
            .into_iter()
            .filter_map(|kind| Some(index_key(kind, text(record, kind)?)))
            .collect()
    }
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

async fn search_by(
    state: &State<Treez>,
    request: &HttpRequest,
    kind: &str,
    matches: impl Fn(&Map<String, Value>, &str) -> bool,
) -> HttpResponse {
    let after = match state.enter(Op::Search, request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let value = request.match_info().get("value").unwrap_or_default();
    let found: Vec<Value> = state
        .table()
        .indexed(&index_key(kind, value))
        .into_iter()
        .filter(|c| matches(c, value))
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

async fn by_email(state: Data, request: HttpRequest) -> HttpResponse {
    search_by(&state, &request, "email", |c, v| {
        text(c, "email").is_some_and(|e| e.eq_ignore_ascii_case(v))
    })
    .await
}

async fn by_phone(state: Data, request: HttpRequest) -> HttpResponse {
    search_by(&state, &request, "phone", |c, v| {
        text(c, "phone").is_some_and(|p| digits(p) == digits(v))
    })
    .await
}

async fn by_license(state: Data, request: HttpRequest) -> HttpResponse {
    search_by(&state, &request, "drivers_license", |c, v| {
        text(c, "drivers_license").is_some_and(|l| l.eq_ignore_ascii_case(v))
    })
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

/// The index key of a search: e-mails and licences without case, phones by digits.
fn index_key(kind: &str, value: &str) -> String {
    let normal = match kind {
        "phone" => digits(value),
        _ => value.trim().to_lowercase(),
    };
    format!("{kind}:{normal}")
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, HttpResponse> {
    json_object(body).ok_or_else(|| {
        fail(
            400,
            "INVALID_REQUEST",
            Some("Request body is not a JSON object".into()),
        )
    })
}

async fn create(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Create, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let object = match parse_object(&body) {
        Ok(object) => object,
        Err(response) => return response,
    };
    if let Err(response) = check(&object, true) {
        return response;
    }
    let created = state.insert(&object);
    state.finish(after, success(Value::Object(created))).await
}

async fn update(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Update, &request, &body).await {
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
    let id = request.match_info().get("id").unwrap_or_default();
    let updated = state.table().update::<Treez>(id, |customer| {
        for (key, value) in changes {
            if key != "customer_id" {
                customer.insert(key, value);
            }
        }
        customer.insert("last_update".into(), json!(now()));
    });
    let normal = match updated {
        Some(customer) => success(Value::Object(customer)),
        None => not_found(),
    };
    state.finish(after, normal).await
}
