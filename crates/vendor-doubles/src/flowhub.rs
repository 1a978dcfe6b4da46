//! Flowhub: headers `clientId` and `key` on every call (no token exchange), camelCase JSON, one
//! full-name `name` per customer, UUID ids, a write-only licence (`stateId`) and list filters
//! that take dates in the store's local time. See docs/vendors/flowhub.md for the sources and
//! the "Test double" section of docs/vendors/flowhub.md for what this double models and what it chose where
//! nothing is known.
//!
//! Routes, at the host's root (`https://api.flowhub.co` in production):
//! `GET /v1/customers/?page=&page_size=&created_after=&created_before=&updated_after=&updated_before=&order_by=`
//! (list, [`Op::List`]), `GET /v1/customers/findByPhoneNumber?phone_number=` (one customer,
//! [`Op::Search`]), `GET /v1/customers/{id}` (optional `store_id`, [`Op::Get`]),
//! `POST /v1/customer?store_id=` (create, [`Op::Create`]) and `PUT /v1/customer/{id}?store_id=`
//! (full replacement, [`Op::Update`]).
//!
//! Controls a test can use, on [`FlowhubDouble`]: [`set_time_zone`](FlowhubDouble::set_time_zone),
//! [`set_list_envelope`](FlowhubDouble::set_list_envelope),
//! [`block_caller_ip`](FlowhubDouble::block_caller_ip),
//! [`set_updated_at`](FlowhubDouble::set_updated_at) and [`licence`](FlowhubDouble::licence).

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{DoubleOf, Op, SeedCustomer, State, Wire, digits, header, json_object, lock, text};

/// A running Flowhub double.
pub type FlowhubDouble = DoubleOf<Flowhub>;

/// Flowhub, as its double speaks it.
pub struct Flowhub;

/// What the double accepts, and the location it stands for.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The `clientId` header.
    pub client_id: String,
    /// The `key` header.
    pub api_key: String,
    /// The one location (`store_id`) this account has.
    pub location_id: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            client_id: "flowhub-client-id-4d2e9b7c".into(),
            api_key: "flowhub-secret-api-key-0123456789abcdef".into(),
            location_id: "7a3c1f2e-5b6d-4e8f-9a0b-1c2d3e4f5a6b".into(),
        }
    }
}

const WRONG_KEY: &str = "wrong-flowhub-api-key-that-must-not-leak";

/// The store's `state` in the double's store config; seeded customers live there too.
pub const STORE_STATE: &str = "CO";

/// How the list wraps its customers: the sources disagree, so a test can try both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListEnvelope {
    /// `{"data": [...]}`.
    #[default]
    Data,
    /// `[...]`.
    BareArray,
}

/// What Flowhub keeps besides its customers: the store's clock and the controls' switches.
pub struct Store {
    time_zone: Mutex<FixedOffset>,
    envelope: Mutex<ListEnvelope>,
    ip_blocked: Mutex<bool>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            time_zone: Mutex::new(default_time_zone()),
            envelope: Mutex::new(ListEnvelope::default()),
            ip_blocked: Mutex::new(false),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Unverified (chosen). The behaviours in this section fill gaps in vendors.md, each chosen here
// and only here; the few that are part of a larger function (`replace_writable`, `check`,
// `seed_fields`, `Flowhub::routes`) say "Unverified (chosen)" where they are. All are listed
// in the "Test double" section of docs/vendors/flowhub.md.
// ---------------------------------------------------------------------------------------------

/// Unverified (chosen): the largest `page_size`. Callers use 500 and stop on a short page (code),
/// so 500 must work; anything larger is cut to 500 without a word, the worst case for a caller
/// that asks for more and then takes a 500-row page for the last one.
pub const MAX_PAGE_SIZE: usize = 500;

/// Unverified (chosen): the `page_size` of a list that sends none.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Unverified (chosen): the store's time zone until a test sets one: Mountain Standard Time
/// (UTC-7, Flowhub's home in Denver), so a UTC date and the store's date differ every evening.
fn default_time_zone() -> FixedOffset {
    FixedOffset::west_opt(7 * 3600).unwrap_or_else(|| chrono::Offset::fix(&Utc))
}

/// Unverified (chosen): `*_after=D` keeps what happened on or after the store's local date D
/// (inclusive); `*_before=D` keeps what happened before it (exclusive), so `after=D&before=E`
/// is the half-open window [D, E).
fn in_window(local_date: NaiveDate, after: Option<NaiveDate>, before: Option<NaiveDate>) -> bool {
    after.is_none_or(|after| local_date >= after) && before.is_none_or(|before| local_date < before)
}

/// Unverified (chosen) beyond the message: a date filter that is not exactly `YYYY-MM-DD`
/// (a timestamp, another format, an impossible date, an empty value) is a 404 with a plain-text
/// body (the status and "must be in format yyyy-mm-dd" are vendors.md's; the rest is ours).
fn date_format_refusal(param: &str) -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body(format!("{param} must be in format yyyy-mm-dd"))
}

/// Unverified (chosen): the list's order, `order_by=asc` (the default) or `desc`, is by
/// creation.
fn descending(order_by: Option<&str>) -> Result<bool, HttpResponse> {
    match order_by {
        None | Some("asc") => Ok(false),
        Some("desc") => Ok(true),
        Some(_) => Err(bad_request("order_by must be one of asc, desc")),
    }
}

/// Unverified (chosen): a field validation failure is 422 `{"errors": [...]}` (the shape an SDK
/// parses), one sentence per field, each starting with the field's name.
fn validation_failure(errors: &[String]) -> HttpResponse {
    HttpResponse::UnprocessableEntity().json(json!({ "errors": errors }))
}

/// Unverified (chosen): a request the double cannot read (a body that is not a JSON object, a
/// paging parameter that is not a positive integer, a missing `phone_number`) is 400
/// `{"message": "..."}`.
fn bad_request(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "message": message }))
}

/// Unverified (chosen): every other error (403, 404, injected statuses) takes the shape of
/// the one 401 fixture known, `{"error": [<reason phrase>], "message": ..., "status": n}`.
fn error_shape(status: u16, message: &str) -> Value {
    let phrase = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    json!({ "error": [phrase], "message": message, "status": status })
}

/// The 401 fixture, as vendors.md quotes it. Unverified (chosen): the same body for a wrong
/// `clientId` and for missing headers.
fn unauthorized_body() -> Value {
    json!({ "error": ["Unauthorized"], "message": "Invalid key", "status": 401 })
}

/// Unverified (chosen): the body of the 403 a caller whose IP is not allow-listed gets (the
/// 403 itself is weak), checked before the key, as an allow-list at the edge would be.
fn ip_refusal() -> HttpResponse {
    HttpResponse::Forbidden().json(error_shape(403, "IP address is not allow-listed"))
}

/// Unverified (chosen): a `store_id` that is not the account's location is a 404 (on get,
/// create and update alike); a write without one is a 422 naming `store_id`.
fn unknown_store() -> HttpResponse {
    HttpResponse::NotFound().json(error_shape(404, "Location not found"))
}

/// Unverified (chosen): an unknown customer id (get, update) is a 404.
fn customer_not_found() -> HttpResponse {
    HttpResponse::NotFound().json(error_shape(404, "Customer not found"))
}

/// Unverified (chosen): `findByPhoneNumber` with no match answers 404 (not an empty 200); with
/// several, the oldest customer.
fn phone_search_miss() -> HttpResponse {
    customer_not_found()
}

/// Unverified (chosen): a create answers 200 (not 201) with the customer as a read returns it,
/// as do get, search and update: one bare object, no envelope.
fn created(customer: Value) -> HttpResponse {
    HttpResponse::Ok().json(customer)
}

/// Unverified (chosen): a phone is ten digits (an eleventh, leading `1` is dropped); anything
/// else is refused with a 422 on `phone`. Flowhub reads it back formatted whatever was sent.
fn formatted_phone(phone: &str) -> Option<String> {
    let all = digits(phone);
    let ten = match all.len() {
        10 => all.as_str(),
        11 => all.strip_prefix('1')?,
        _ => return None,
    };
    let (area, rest) = ten.split_at_checked(3)?;
    let (exchange, line) = rest.split_at_checked(3)?;
    Some(format!("({area}) {exchange}-{line}"))
}

/// Fields a write sets and a read never returns: the licence (vendors.md) and, unverified
/// (chosen), the medical id, which no read field carries either. Kept on the record, so a
/// full-replacement PUT without them clears them.
const WRITE_ONLY: [&str; 4] = ["stateId", "stateIdExpiration", "medId", "medIdExpiration"];

/// Unverified (chosen): `createdAt`/`updatedAt` are UTC ISO-8601 with milliseconds and `Z`.
fn now() -> String {
    timestamp(Utc::now())
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

// ---------------------------------------------------------------------------------------------

/// Text fields a write sets; every one absent from a write is cleared (full replacement).
const TEXT_FIELDS: [&str; 15] = [
    "name",
    "email",
    "phone",
    "birthDate",
    "state",
    "type",
    "streetAddress1",
    "streetAddress2",
    "city",
    "zip",
    "country",
    "stateId",
    "stateIdExpiration",
    "medId",
    "medIdExpiration",
];

/// Yes/no fields a write sets; absent is `false`.
const CONSENTS: [&str; 2] = ["consentsToPromotionalEmail", "consentsToPromotionalSMS"];

const REQUIRED: [&str; 4] = ["name", "birthDate", "state", "type"];

const CUSTOMER_TYPES: [&str; 2] = ["recCustomer", "medCustomer"];

impl FlowhubDouble {
    /// The adapter's `base_url` for this double (Flowhub's paths start at the host).
    pub fn base_url(&self) -> String {
        self.url().to_owned()
    }

    /// The store's time zone, which the list's date filters read dates in.
    pub fn set_time_zone(&self, offset: FixedOffset) {
        *lock(&self.state().extra.time_zone) = offset;
    }

    /// How the list wraps its customers from now on.
    pub fn set_list_envelope(&self, envelope: ListEnvelope) {
        *lock(&self.state().extra.envelope) = envelope;
    }

    /// Whether the caller's IP is refused (403 on every call, whatever the credentials).
    pub fn block_caller_ip(&self, blocked: bool) {
        *lock(&self.state().extra.ip_blocked) = blocked;
    }

    /// Sets a customer's `updatedAt`, as if it was last changed then; whether it exists.
    pub fn set_updated_at<Tz: TimeZone>(&self, id: &str, at: DateTime<Tz>) -> bool {
        let stamp = timestamp(at.with_timezone(&Utc));
        self.state()
            .table()
            .update::<Flowhub>(&customer_key(id), |customer| {
                customer.insert("updatedAt".into(), json!(stamp));
            })
            .is_some()
    }

    /// The licence (`stateId`) Flowhub holds for this customer, which no read returns.
    pub fn licence(&self, id: &str) -> Option<String> {
        self.write_only(id)
            .get("stateId")?
            .as_str()
            .map(str::to_owned)
    }

    /// Every write-only field Flowhub holds for this customer (`stateId`,
    /// `stateIdExpiration`, `medId`, `medIdExpiration`), those it holds only.
    pub fn write_only(&self, id: &str) -> Map<String, Value> {
        let table = self.state().table();
        let Some(customer) = table.get(&customer_key(id)) else {
            return Map::new();
        };
        WRITE_ONLY
            .iter()
            .filter_map(|field| Some(((*field).to_owned(), customer.get(*field)?.clone())))
            .collect()
    }
}

impl Wire for Flowhub {
    const NAME: &'static str = "flowhub";
    const ID_FIELD: &'static str = "id";
    type Credentials = Credentials;
    type Extra = Store;

    fn routes(cfg: &mut web::ServiceConfig) {
        // Unverified (chosen): the list answers only at `/v1/customers/`, with the trailing
        // slash vendors.md writes, so an adapter is proven to call the documented path.
        // `findByPhoneNumber` comes before `{id}`, which would otherwise take it for an id.
        cfg.route("/v1/customers/", web::get().to(list))
            .route("/v1/customers/findByPhoneNumber", web::get().to(by_phone))
            .route("/v1/customers/{id}", web::get().to(get))
            .route("/v1/customer", web::post().to(create))
            .route("/v1/customer/{id}", web::put().to(update));
    }

    fn authorize(state: &State<Self>, _op: Op, request: &HttpRequest) -> Result<(), HttpResponse> {
        if *lock(&state.extra.ip_blocked) {
            return Err(ip_refusal());
        }
        let c = &state.credentials;
        if header(request, "clientid") != c.client_id || header(request, "key") != c.api_key {
            return Err(HttpResponse::Unauthorized().json(unauthorized_body()));
        }
        Ok(())
    }

    fn error_body(status: u16, reason: &str) -> Value {
        match status {
            401 => unauthorized_body(),
            _ => error_shape(status, reason),
        }
    }

    fn invalid() -> (u16, Value) {
        (422, json!({ "errors": ["name is required"] }))
    }

    fn store_config(url: &str, c: &Credentials) -> Value {
        json!({
            "client_id": c.client_id,
            "api_key": c.api_key,
            "location_id": c.location_id,
            "state": STORE_STATE,
            "customer_type": "recCustomer",
            "base_url": url,
        })
    }

    fn wrong_credentials_config(url: &str, c: &Credentials) -> Value {
        let mut config = Self::store_config(url, c);
        if let Some(keys) = config.as_object_mut() {
            keys.insert("api_key".into(), json!(WRONG_KEY));
        }
        config
    }

    fn secrets(c: &Credentials) -> Vec<String> {
        vec![c.client_id.clone(), c.api_key.clone(), WRONG_KEY.to_owned()]
    }

    /// A UUID (version 4 in form), derived from `seq` so runs are repeatable.
    fn id(seq: u64) -> Value {
        let hash = Sha256::digest(format!("flowhub-double-customer-{seq}").as_bytes());
        let mut bytes = [0_u8; 16];
        for (byte, from) in bytes.iter_mut().zip(hash.iter()) {
            *byte = *from;
        }
        let mut n = u128::from_be_bytes(bytes);
        n = (n & !(0xF_u128 << 76)) | (0x4_u128 << 76);
        n = (n & !(0x3_u128 << 62)) | (0x2_u128 << 62);
        json!(format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            n >> 96,
            (n >> 80) & 0xFFFF,
            (n >> 64) & 0xFFFF,
            (n >> 48) & 0xFFFF,
            n & 0xFFFF_FFFF_FFFF
        ))
    }

    fn new_record(fields: &Map<String, Value>) -> Map<String, Value> {
        let mut customer = Map::new();
        replace_writable(&mut customer, fields);
        // What the register or Flowhub itself keeps: taken from a vendor-shaped seed, never
        // from a create over HTTP (the handler passes writable fields only).
        let kept = |key: &str, check: fn(&Value) -> bool, default: Value| {
            fields
                .get(key)
                .filter(|v| check(v))
                .cloned()
                .unwrap_or(default)
        };
        customer.insert(
            "isLoyal".into(),
            kept("isLoyal", Value::is_boolean, json!(false)),
        );
        customer.insert(
            "loyaltyPoints".into(),
            kept("loyaltyPoints", Value::is_number, json!(0)),
        );
        customer.insert("groups".into(), kept("groups", Value::is_array, json!([])));
        let created_at = kept("createdAt", Value::is_string, json!(now()));
        customer.insert(
            "updatedAt".into(),
            kept("updatedAt", Value::is_string, created_at.clone()),
        );
        customer.insert("createdAt".into(), created_at);
        customer
    }

    fn seed_fields(c: &SeedCustomer) -> Map<String, Value> {
        // No gender and no notes at Flowhub: they are not stored. Unverified (chosen): the
        // register requires a birth date as the API does, so a seed without one gets
        // 1980-01-01; its state is the store's and its type `recCustomer`.
        let json = json!({
            "name": format!("{} {}", c.first_name.trim(), c.last_name.trim()).trim(),
            "email": c.email,
            "phone": c.phone,
            "birthDate": c.birthday.as_deref().unwrap_or("1980-01-01"),
            "state": STORE_STATE,
            "type": "recCustomer",
            "stateId": c.drivers_license,
        });
        json.as_object().cloned().unwrap_or_default()
    }

    fn unusable_fields() -> Map<String, Value> {
        let json = json!({
            "name": "",
            "birthDate": "1980-01-01",
            "state": STORE_STATE,
            "type": "recCustomer",
        });
        json.as_object().cloned().unwrap_or_default()
    }

    fn stamp_changed(record: &mut Map<String, Value>, at: chrono::DateTime<chrono::Utc>) {
        record.insert("updatedAt".into(), json!(timestamp(at)));
    }

    fn index_keys(record: &Map<String, Value>) -> Vec<String> {
        text(record, "phone")
            .and_then(phone_key)
            .into_iter()
            .collect()
    }
}

/// The index key of a phone: its ten digits.
fn phone_key(phone: &str) -> Option<String> {
    let formatted = formatted_phone(phone)?;
    Some(format!("phone:{}", digits(&formatted)))
}

/// A customer id as the table knows it: UUIDs are compared without case.
fn customer_key(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

/// Sets every writable field from `body`, clearing those it leaves out: Flowhub's PUT replaces
/// the customer. Blank text is cleared too; write-only fields are dropped rather than nulled,
/// so a record holds them only when set.
///
/// Unverified (chosen): vendors.md says to treat the PUT as a full replacement; that Flowhub
/// really clears what is left out (text to `null`, consents to `false`, the licence dropped) is
/// the worst case, modelled so tests prove an adapter sends everything back. Fields a read
/// carries but a write does not (`id`, `isLoyal`, `loyaltyPoints`, `groups`, `createdAt`,
/// `updatedAt`) and unknown fields are ignored, so a PUT of a read's body is accepted.
fn replace_writable(customer: &mut Map<String, Value>, body: &Map<String, Value>) {
    for field in TEXT_FIELDS {
        let value = text(body, field).map(|value| match field {
            "phone" => formatted_phone(value).unwrap_or_else(|| value.to_owned()),
            "state" => value.to_ascii_uppercase(),
            _ => value.to_owned(),
        });
        match value {
            Some(value) => {
                customer.insert(field.to_owned(), json!(value));
            }
            None if WRITE_ONLY.contains(&field) => {
                customer.remove(field);
            }
            None => {
                customer.insert(field.to_owned(), Value::Null);
            }
        }
    }
    for field in CONSENTS {
        let consent = body.get(field).and_then(Value::as_bool).unwrap_or(false);
        customer.insert(field.to_owned(), json!(consent));
    }
}

/// The writable fields of a request body, so a create cannot set `createdAt` or loyalty.
fn writable(body: &Map<String, Value>) -> Map<String, Value> {
    body.iter()
        .filter(|(key, _)| TEXT_FIELDS.contains(&key.as_str()) || CONSENTS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// A customer as a read returns it: without the write-only fields.
fn read_view(customer: &Map<String, Value>) -> Value {
    let mut view = customer.clone();
    for field in WRITE_ONLY {
        view.remove(field);
    }
    Value::Object(view)
}

/// Exactly `YYYY-MM-DD`, and a real date.
fn strict_date(value: &str) -> Option<NaiveDate> {
    let shaped = value.len() == 10
        && value.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            _ => c.is_ascii_digit(),
        });
    shaped
        .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
        .flatten()
}

/// Flowhub's checks of a create or update body: every problem, one sentence each.
///
/// Unverified (chosen) beyond the four required fields (vendors.md): each text field must be
/// a string or `null`, each consent a boolean or `null`; `birthDate` and the expirations exactly
/// `YYYY-MM-DD`; `state` two letters (either case, held upper-case); `type` `recCustomer` or
/// `medCustomer`; an e-mail has an `@`; a phone has ten digits (see `formatted_phone`).
fn check(body: &Map<String, Value>) -> Vec<String> {
    let mut errors = Vec::new();
    for field in TEXT_FIELDS {
        if let Some(value) = body.get(field)
            && !(value.is_string() || value.is_null())
        {
            errors.push(format!("{field} must be a string"));
        }
    }
    for field in CONSENTS {
        if let Some(value) = body.get(field)
            && !(value.is_boolean() || value.is_null())
        {
            errors.push(format!("{field} must be a boolean"));
        }
    }
    for field in REQUIRED {
        if body.get(field).is_none_or(Value::is_null)
            || body.get(field).and_then(Value::as_str).map(str::trim) == Some("")
        {
            errors.push(format!("{field} is required"));
        }
    }
    for field in ["birthDate", "stateIdExpiration", "medIdExpiration"] {
        if let Some(date) = text(body, field)
            && strict_date(date).is_none()
        {
            errors.push(format!("{field} must be in format yyyy-mm-dd"));
        }
    }
    if let Some(state) = text(body, "state")
        && !(state.len() == 2 && state.chars().all(|c| c.is_ascii_alphabetic()))
    {
        errors.push("state must be a 2-letter state code".to_owned());
    }
    if let Some(kind) = text(body, "type")
        && !CUSTOMER_TYPES.contains(&kind)
    {
        errors.push("type must be one of recCustomer, medCustomer".to_owned());
    }
    if let Some(email) = text(body, "email")
        && !email.contains('@')
    {
        errors.push("email must be a valid email address".to_owned());
    }
    if let Some(phone) = text(body, "phone")
        && formatted_phone(phone).is_none()
    {
        errors.push("phone must be a 10-digit phone number".to_owned());
    }
    errors
}

type Data = web::Data<State<Flowhub>>;

fn query(request: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

/// The `store_id` check of a write (required) or a get (optional).
fn check_store(
    state: &State<Flowhub>,
    params: &HashMap<String, String>,
    required: bool,
) -> Result<(), HttpResponse> {
    match params.get("store_id").map(|s| s.trim()) {
        None | Some("") if required => Err(validation_failure(&["store_id is required".into()])),
        None | Some("") => Ok(()),
        Some(id) if id == state.credentials.location_id => Ok(()),
        Some(_) => Err(unknown_store()),
    }
}

async fn get(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::Get, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    if let Err(response) = check_store(&state, &query(&request), false) {
        return response;
    }
    let id = customer_key(request.match_info().get("id").unwrap_or_default());
    let found = state.table().get(&id).map(read_view);
    let normal = match found {
        Some(customer) => HttpResponse::Ok().json(customer),
        None => customer_not_found(),
    };
    state.finish(after, normal).await
}

async fn by_phone(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::Search, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let params = query(&request);
    let Some(phone) = params
        .get("phone_number")
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
    else {
        return bad_request("phone_number is required");
    };
    let found = phone_key(phone).and_then(|key| {
        state
            .table()
            .indexed(&key)
            .first()
            .map(|customer| read_view(customer))
    });
    let normal = match found {
        Some(customer) => HttpResponse::Ok().json(customer),
        None => phone_search_miss(),
    };
    state.finish(after, normal).await
}

/// A list's date filter: `None` when absent, the 404 when not a `YYYY-MM-DD` date.
fn date_filter(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Option<NaiveDate>, HttpResponse> {
    match params.get(name) {
        None => Ok(None),
        Some(value) => strict_date(value.trim())
            .map(Some)
            .ok_or_else(|| date_format_refusal(name)),
    }
}

/// A paging parameter: its default when absent, a positive integer otherwise.
fn positive(
    params: &HashMap<String, String>,
    name: &str,
    default: usize,
) -> Result<usize, HttpResponse> {
    match params.get(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad_request(&format!("{name} must be a positive integer"))),
    }
}

/// The list's parameters, read and checked.
struct ListQuery {
    page: usize,
    page_size: usize,
    descending: bool,
    created: (Option<NaiveDate>, Option<NaiveDate>),
    updated: (Option<NaiveDate>, Option<NaiveDate>),
}

impl ListQuery {
    fn parse(params: &HashMap<String, String>) -> Result<Self, HttpResponse> {
        Ok(Self {
            page: positive(params, "page", 1)?,
            page_size: positive(params, "page_size", DEFAULT_PAGE_SIZE)?.min(MAX_PAGE_SIZE),
            descending: descending(params.get("order_by").map(|o| o.trim()))?,
            created: (
                date_filter(params, "created_after")?,
                date_filter(params, "created_before")?,
            ),
            updated: (
                date_filter(params, "updated_after")?,
                date_filter(params, "updated_before")?,
            ),
        })
    }

    /// Whether `customer` passes the date filters, its dates read in the store's `zone`.
    fn keeps(&self, customer: &Map<String, Value>, zone: FixedOffset) -> bool {
        let passes = |field: &str, (after, before): (Option<NaiveDate>, Option<NaiveDate>)| {
            if after.is_none() && before.is_none() {
                return true;
            }
            text(customer, field)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|at| in_window(at.with_timezone(&zone).date_naive(), after, before))
        };
        passes("createdAt", self.created) && passes("updatedAt", self.updated)
    }
}

async fn list(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::List, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let wanted = match ListQuery::parse(&query(&request)) {
        Ok(wanted) => wanted,
        Err(response) => return response,
    };
    let zone = *lock(&state.extra.time_zone);
    let page: Vec<Value> = {
        let table = state.table();
        let mut matching: Vec<&Map<String, Value>> =
            table.records().filter(|c| wanted.keeps(c, zone)).collect();
        if wanted.descending {
            matching.reverse();
        }
        matching
            .into_iter()
            .skip((wanted.page - 1).saturating_mul(wanted.page_size))
            .take(wanted.page_size)
            .map(read_view)
            .collect()
    };
    let body = match *lock(&state.extra.envelope) {
        ListEnvelope::Data => json!({ "data": page }),
        ListEnvelope::BareArray => Value::Array(page),
    };
    state.finish(after, HttpResponse::Ok().json(body)).await
}

/// The checks every write makes before touching a customer: the store, then the body.
fn accept_write(
    state: &State<Flowhub>,
    request: &HttpRequest,
    body: &[u8],
) -> Result<Map<String, Value>, HttpResponse> {
    check_store(state, &query(request), true)?;
    let object = json_object(body).ok_or_else(|| bad_request("body must be a JSON object"))?;
    let errors = check(&object);
    if errors.is_empty() {
        Ok(writable(&object))
    } else {
        Err(validation_failure(&errors))
    }
}

async fn create(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Create, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let fields = match accept_write(&state, &request, &body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let customer = state.insert(&fields);
    state.finish(after, created(read_view(&customer))).await
}

async fn update(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Update, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let fields = match accept_write(&state, &request, &body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let id = customer_key(request.match_info().get("id").unwrap_or_default());
    let updated = state.table().update::<Flowhub>(&id, |customer| {
        replace_writable(customer, &fields);
        customer.insert("updatedAt".into(), json!(now()));
    });
    let normal = match updated {
        Some(customer) => HttpResponse::Ok().json(read_view(&customer)),
        None => customer_not_found(),
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

    fn start() -> FlowhubDouble {
        FlowhubDouble::start().unwrap()
    }

    /// A request with the double's credentials.
    fn call(
        double: &FlowhubDouble,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let c = double.credentials();
        reqwest::Client::new()
            .request(method, format!("{}{path}", double.url()))
            .header("clientId", &c.client_id)
            .header("key", &c.api_key)
    }

    async fn get_json(double: &FlowhubDouble, path: &str) -> (u16, Value) {
        let response = call(double, reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn store(double: &FlowhubDouble) -> String {
        double.credentials().location_id.clone()
    }

    async fn create(double: &FlowhubDouble, body: Value) -> (u16, Value) {
        let path = format!("/v1/customer?store_id={}", store(double));
        let response = call(double, reqwest::Method::POST, &path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn put(double: &FlowhubDouble, id: &str, body: Value) -> (u16, Value) {
        let path = format!("/v1/customer/{id}?store_id={}", store(double));
        let response = call(double, reqwest::Method::PUT, &path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The ids a list with this query answers, in order.
    async fn listed(double: &FlowhubDouble, query: &str) -> Vec<String> {
        let (status, body) = get_json(double, &format!("/v1/customers/?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn full_body() -> Value {
        json!({
            "name": "Ana Maria Cruz",
            "birthDate": "1990-02-03",
            "state": "co",
            "type": "medCustomer",
            "email": "ana@example.com",
            "phone": "555-123-4567",
            "streetAddress1": "1 Main St",
            "streetAddress2": "Apt 2",
            "city": "Denver",
            "zip": "80202",
            "country": "US",
            "consentsToPromotionalEmail": true,
            "consentsToPromotionalSMS": true,
            "stateId": "D1234567",
            "stateIdExpiration": "2030-01-01",
            "medId": "MED-9",
            "medIdExpiration": "2026-06-30",
        })
    }

    fn required_only() -> Value {
        json!({"name": "Ana Cruz", "birthDate": "1990-02-03", "state": "CO", "type": "recCustomer"})
    }

    #[tokio::test]
    async fn both_headers_are_required_and_refusals_carry_the_fixture_body() {
        let double = start();
        let url = format!("{}/v1/customers/?page=1&page_size=500", double.url());
        let client = reqwest::Client::new();
        let c = double.credentials().clone();
        let attempts = [
            client.get(&url),
            client.get(&url).header("clientId", &c.client_id),
            client.get(&url).header("key", &c.api_key),
            client
                .get(&url)
                .header("clientId", &c.client_id)
                .header("key", WRONG_KEY),
            client
                .get(&url)
                .header("clientId", "someone-else")
                .header("key", &c.api_key),
        ];
        for attempt in attempts {
            let response = attempt.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 401);
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body,
                json!({"error": ["Unauthorized"], "message": "Invalid key", "status": 401})
            );
        }
        let (status, body) = get_json(&double, "/v1/customers/?page=1&page_size=500").await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"data": []}));
    }

    #[tokio::test]
    async fn a_blocked_ip_gets_403_whatever_the_credentials_until_unblocked() {
        let double = start();
        double.block_caller_ip(true);
        let (status, body) = get_json(&double, "/v1/customers/").await;
        assert_eq!(status, 403);
        assert_eq!(body["status"], 403);
        assert_eq!(body["error"], json!(["Forbidden"]));
        let anonymous = reqwest::get(format!("{}/v1/customers/", double.url()))
            .await
            .unwrap();
        assert_eq!(anonymous.status().as_u16(), 403);
        double.block_caller_ip(false);
        assert_eq!(get_json(&double, "/v1/customers/").await.0, 200);
    }

    #[tokio::test]
    async fn a_create_is_found_by_get_phone_search_and_list_in_the_read_shape() {
        let double = start();
        let (status, created) = create(&double, full_body()).await;
        assert_eq!(status, 200, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 36);
        assert_eq!(created["name"], "Ana Maria Cruz");
        assert_eq!(created["phone"], "(555) 123-4567");
        assert_eq!(created["state"], "CO");
        assert_eq!(created["type"], "medCustomer");
        assert_eq!(created["isLoyal"], false);
        assert_eq!(created["loyaltyPoints"], 0);
        assert_eq!(created["groups"], json!([]));
        assert_eq!(created["consentsToPromotionalSMS"], true);
        assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
        for hidden in WRITE_ONLY {
            assert!(created.get(hidden).is_none(), "{hidden} must not be read");
        }

        let (status, got) = get_json(&double, &format!("/v1/customers/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(got, created);
        let upper = get_json(&double, &format!("/v1/customers/{}", id.to_uppercase())).await;
        assert_eq!(upper.1["id"], json!(id));
        let with_store = format!("/v1/customers/{id}?store_id={}", store(&double));
        assert_eq!(get_json(&double, &with_store).await.0, 200);

        for phone in ["5551234567", "15551234567"] {
            let path = format!("/v1/customers/findByPhoneNumber?phone_number={phone}");
            let (status, found) = get_json(&double, &path).await;
            assert_eq!(status, 200);
            assert_eq!(found["id"], json!(id));
            assert!(found.get("stateId").is_none());
        }

        let (status, listed) = get_json(&double, "/v1/customers/?page=1&page_size=500").await;
        assert_eq!(status, 200);
        assert_eq!(listed["data"], json!([created]));
        assert_eq!(double.licence(&id).as_deref(), Some("D1234567"));
        assert_eq!(double.write_only(&id)["medId"], "MED-9");
        assert_eq!(double.count(Op::Create), 1);
        assert_eq!(double.count(Op::Search), 2);
    }

    #[tokio::test]
    async fn unknown_ids_and_phone_misses_are_404() {
        let double = start();
        let (status, body) = get_json(
            &double,
            "/v1/customers/00000000-0000-4000-8000-000000000000",
        )
        .await;
        assert_eq!(status, 404);
        assert_eq!(
            body,
            json!({"error": ["Not Found"], "message": "Customer not found", "status": 404})
        );
        let (status, _) = get_json(
            &double,
            "/v1/customers/findByPhoneNumber?phone_number=5550000000",
        )
        .await;
        assert_eq!(status, 404);
        let (status, body) = get_json(&double, "/v1/customers/findByPhoneNumber").await;
        assert_eq!(status, 400);
        assert_eq!(body, json!({"message": "phone_number is required"}));
        let (status, _) = put(&double, "nobody", required_only()).await;
        assert_eq!(status, 404);
        // Only the documented list path, with its trailing slash.
        assert_eq!(get_json(&double, "/v1/customers").await.0, 404);
    }

    #[tokio::test]
    async fn writes_refuse_missing_and_malformed_fields_with_422_errors() {
        let double = start();
        let (status, body) = create(&double, json!({})).await;
        assert_eq!(status, 422);
        assert_eq!(
            body,
            json!({"errors": [
                "name is required",
                "birthDate is required",
                "state is required",
                "type is required"
            ]})
        );
        let (status, body) = create(
            &double,
            json!({
                "name": "  ",
                "birthDate": "1990-02-03T00:00:00Z",
                "state": "Colorado",
                "type": "adult",
                "email": "not-an-address",
                "phone": "12345",
                "consentsToPromotionalEmail": "yes",
            }),
        )
        .await;
        assert_eq!(status, 422);
        let errors: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for field in [
            "consentsToPromotionalEmail",
            "name",
            "birthDate",
            "state",
            "type",
            "email",
            "phone",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(field)),
                "{field} in {errors:?}"
            );
        }
        assert!(double.customers().is_empty());

        let response = call(
            &double,
            reqwest::Method::POST,
            &format!("/v1/customer?store_id={}", store(&double)),
        )
        .body("not json")
        .send()
        .await
        .unwrap();
        assert_eq!(response.status().as_u16(), 400);

        let (_, created) = create(&double, required_only()).await;
        let id = created["id"].as_str().unwrap();
        let (status, body) = put(&double, id, json!({"name": "Ana Cruz"})).await;
        assert_eq!(status, 422);
        assert_eq!(body["errors"].as_array().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn writes_need_the_accounts_location_as_store_id() {
        let double = start();
        let response = call(&double, reqwest::Method::POST, "/v1/customer")
            .json(&required_only())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 422);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"errors": ["store_id is required"]}));

        let response = call(
            &double,
            reqwest::Method::POST,
            "/v1/customer?store_id=other",
        )
        .json(&required_only())
        .send()
        .await
        .unwrap();
        assert_eq!(response.status().as_u16(), 404);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["message"], "Location not found");
        assert!(double.customers().is_empty());

        let (_, created) = create(&double, required_only()).await;
        let id = created["id"].as_str().unwrap();
        let response = call(
            &double,
            reqwest::Method::PUT,
            &format!("/v1/customer/{id}?store_id=other"),
        )
        .json(&required_only())
        .send()
        .await
        .unwrap();
        assert_eq!(response.status().as_u16(), 404);
        let (status, _) = get_json(&double, &format!("/v1/customers/{id}?store_id=other")).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn an_update_replaces_the_customer_and_clears_what_it_leaves_out() {
        let double = start();
        let seeded = double.seed(json!({
            "name": "Ana Cruz", "birthDate": "1990-02-03", "state": "CO", "type": "recCustomer",
            "isLoyal": true, "loyaltyPoints": 120, "groups": [{"name": "VIP"}],
            "createdAt": "2024-01-01T10:00:00.000Z",
        }));
        let (status, _) = put(&double, &seeded, full_body()).await;
        assert_eq!(status, 200);
        assert_eq!(double.licence(&seeded).as_deref(), Some("D1234567"));

        let mut changed = required_only();
        changed["name"] = json!("Ana Cruz-Lopez");
        let (status, updated) = put(&double, &seeded, changed).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["name"], "Ana Cruz-Lopez");
        for cleared in [
            "email",
            "phone",
            "streetAddress1",
            "streetAddress2",
            "city",
            "zip",
            "country",
        ] {
            assert_eq!(updated[cleared], Value::Null, "{cleared}");
        }
        assert_eq!(updated["consentsToPromotionalEmail"], false);
        assert_eq!(updated["consentsToPromotionalSMS"], false);
        assert_eq!(double.licence(&seeded), None);
        assert!(double.write_only(&seeded).is_empty());
        // What Flowhub keeps itself survives a PUT, and a PUT of a read's body is accepted.
        assert_eq!(updated["isLoyal"], true);
        assert_eq!(updated["loyaltyPoints"], 120);
        assert_eq!(updated["groups"], json!([{"name": "VIP"}]));
        assert_eq!(updated["createdAt"], "2024-01-01T10:00:00.000Z");
        assert_ne!(updated["updatedAt"], updated["createdAt"]);
        let (status, again) = put(&double, &seeded, updated.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(again["isLoyal"], true);
        assert_eq!(again["name"], "Ana Cruz-Lopez");
        let (_, got) = get_json(&double, &format!("/v1/customers/{seeded}")).await;
        assert_eq!(got["name"], "Ana Cruz-Lopez");
        assert_eq!(double.count(Op::Update), 3);
    }

    #[tokio::test]
    async fn pages_are_one_based_cut_at_500_and_ordered_by_creation() {
        let double = start();
        let ids: Vec<String> = (1..=502)
            .map(|n| double.seed_customer(&SeedCustomer::numbered(n)))
            .collect();
        let page = |query: &'static str| listed(&double, query);
        assert_eq!(page("page=1&page_size=2").await, ids[..2]);
        assert_eq!(page("page=2&page_size=2").await, ids[2..4]);
        assert_eq!(
            page("page=1&page_size=2&order_by=desc").await,
            [ids[501].clone(), ids[500].clone()]
        );
        assert_eq!(page("page=1&page_size=2&order_by=asc").await, ids[..2]);
        assert_eq!(page("page=1&page_size=1000").await.len(), MAX_PAGE_SIZE);
        assert_eq!(page("page=2&page_size=500").await, ids[500..]);
        assert!(page("page=3&page_size=500").await.is_empty());
        assert_eq!(page("").await.len(), DEFAULT_PAGE_SIZE);
        for bad in ["page=0", "page=x", "page_size=0", "order_by=newest"] {
            let (status, body) = get_json(&double, &format!("/v1/customers/?{bad}")).await;
            assert_eq!(status, 400, "{bad}");
            assert!(body["message"].is_string());
        }
    }

    #[tokio::test]
    async fn date_filters_take_store_local_dates_and_refuse_timestamps() {
        let double = start();
        let id = double.seed_customer(&SeedCustomer::named("Late", "Evening"));
        // 22:00 on 9 March in Denver (UTC-7) is already 10 March in UTC.
        let at = Utc.with_ymd_and_hms(2024, 3, 10, 5, 0, 0).unwrap();
        assert!(double.set_updated_at(&id, at));
        assert!(!double.set_updated_at("nobody", at));
        let held = &double;
        let count = move |query: &'static str| async move { listed(held, query).await.len() };
        assert_eq!(count("updated_after=2024-03-09").await, 1);
        assert_eq!(count("updated_after=2024-03-10").await, 0);
        assert_eq!(count("updated_before=2024-03-10").await, 1);
        assert_eq!(count("updated_before=2024-03-09").await, 0);
        assert_eq!(
            count("updated_after=2024-03-09&updated_before=2024-03-10").await,
            1
        );

        double.set_time_zone(FixedOffset::east_opt(0).unwrap());
        assert_eq!(count("updated_after=2024-03-10").await, 1);
        assert_eq!(count("updated_before=2024-03-10").await, 0);

        // The record was created today: created filters read `createdAt`.
        let created = double.customers()[0]["createdAt"]
            .as_str()
            .unwrap()
            .to_owned();
        let today = DateTime::parse_from_rfc3339(&created).unwrap().date_naive();
        let tomorrow = today.succ_opt().unwrap();
        let created_after = listed(&double, &format!("created_after={today}")).await;
        assert_eq!(created_after, std::slice::from_ref(&id));
        let created_after = listed(&double, &format!("created_after={tomorrow}")).await;
        assert!(created_after.is_empty());

        for bad in [
            "updated_after=2024-03-10T00:00:00Z",
            "updated_after=2024-03-10T00:00:00.000-07:00",
            "created_before=03/10/2024",
            "updated_before=2024-3-9",
            "created_after=2024-02-30",
        ] {
            let response = call(
                &double,
                reqwest::Method::GET,
                &format!("/v1/customers/?{bad}"),
            )
            .send()
            .await
            .unwrap();
            assert_eq!(response.status().as_u16(), 404, "{bad}");
            let param = bad.split('=').next().unwrap();
            assert_eq!(
                response.text().await.unwrap(),
                format!("{param} must be in format yyyy-mm-dd")
            );
        }
    }

    #[tokio::test]
    async fn the_list_envelope_can_be_a_bare_array() {
        let double = start();
        let id = double.seed_customer(&SeedCustomer::named("Bare", "Array"));
        double.set_list_envelope(ListEnvelope::BareArray);
        let (status, body) = get_json(&double, "/v1/customers/").await;
        assert_eq!(status, 200);
        assert_eq!(body.as_array().unwrap().len(), 1);
        assert_eq!(body[0]["id"], json!(id));
        double.set_list_envelope(ListEnvelope::Data);
        let (_, body) = get_json(&double, "/v1/customers/").await;
        assert_eq!(body["data"][0]["id"], json!(id));
    }

    #[tokio::test]
    async fn seeds_are_held_in_flowhubs_shape() {
        let double = start();
        let id = double.seed_customer(&SeedCustomer::numbered(7));
        let (status, customer) = get_json(&double, &format!("/v1/customers/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(customer["name"], "First7 Last7");
        assert_eq!(customer["email"], "customer7@example.com");
        assert_eq!(customer["phone"], "(555) 000-0007");
        assert_eq!(customer["birthDate"], "1957-08-17");
        assert_eq!(customer["state"], STORE_STATE);
        assert_eq!(customer["type"], "recCustomer");
        for absent in ["gender", "notes", "first_name", "firstName", "stateId"] {
            assert!(customer.get(absent).is_none(), "{absent}");
        }
        assert_eq!(double.licence(&id).as_deref(), Some("D0000007"));

        let plain = double.seed_customer(&SeedCustomer::named("Only", "Names"));
        let (_, customer) = get_json(&double, &format!("/v1/customers/{plain}")).await;
        assert_eq!(customer["name"], "Only Names");
        assert_eq!(customer["email"], Value::Null);
        assert_eq!(double.licence(&plain), None);

        let unusable = double.seed_unusable();
        let (_, customer) = get_json(&double, &format!("/v1/customers/{unusable}")).await;
        assert_eq!(customer["name"], Value::Null);
        assert_eq!(double.customers().len(), 3);
    }

    #[tokio::test]
    async fn the_store_config_reaches_the_double_and_the_wrong_one_is_refused() {
        let double: Box<dyn VendorDouble> = crate::start("flowhub").unwrap().unwrap();
        assert_eq!(double.vendor(), "flowhub");
        let config = double.store_config();
        for key in [
            "client_id",
            "api_key",
            "location_id",
            "state",
            "customer_type",
            "base_url",
        ] {
            assert!(config[key].is_string(), "{key}");
        }
        let secrets = double.secrets();
        let ask = |config: &Value| {
            reqwest::Client::new()
                .get(format!(
                    "{}/v1/customers/?page=1&page_size=500",
                    config["base_url"].as_str().unwrap()
                ))
                .header("clientId", config["client_id"].as_str().unwrap())
                .header("key", config["api_key"].as_str().unwrap())
                .send()
        };
        assert_eq!(ask(&config).await.unwrap().status().as_u16(), 200);
        let wrong = double.wrong_credentials_config();
        let refused = ask(&wrong).await.unwrap();
        assert_eq!(refused.status().as_u16(), 401);
        for config in [&config, &wrong] {
            for key in ["client_id", "api_key"] {
                assert!(secrets.contains(&config[key].as_str().unwrap().to_owned()));
            }
        }
        let path = format!(
            "{}/v1/customer?store_id={}",
            config["base_url"].as_str().unwrap(),
            config["location_id"].as_str().unwrap()
        );
        let mut body = required_only();
        body["state"] = config["state"].clone();
        body["type"] = config["customer_type"].clone();
        let created = reqwest::Client::new()
            .post(path)
            .header("clientId", config["client_id"].as_str().unwrap())
            .header("key", config["api_key"].as_str().unwrap())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 200);
        assert_eq!(double.customers().len(), 1);
    }

    #[tokio::test]
    async fn shared_faults_answer_in_flowhubs_shapes() {
        let double = start();
        double.fail(Op::List, Fault::Unauthorized, 1);
        let (status, body) = get_json(&double, "/v1/customers/").await;
        assert_eq!((status, body), (401, unauthorized_body()));

        double.fail(Op::Create, Fault::Invalid, 1);
        let (status, body) = create(&double, required_only()).await;
        assert_eq!(status, 422);
        assert!(body["errors"].is_array());

        double.fail(Op::Search, Fault::Status(429), 1);
        let response = call(
            &double,
            reqwest::Method::GET,
            "/v1/customers/findByPhoneNumber?phone_number=5551234567",
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status().as_u16(), 429);
        assert!(response.headers().get("retry-after").is_none());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 429);

        double.fail(
            Op::Create,
            Fault::AfterCommit(Box::new(Fault::Status(502))),
            1,
        );
        let (status, _) = create(&double, required_only()).await;
        assert_eq!(status, 502);
        assert_eq!(double.customers().len(), 1);
    }

    #[test]
    fn ids_are_distinct_version_4_uuids() {
        let first = Flowhub::id(1);
        let first = first.as_str().unwrap();
        assert_eq!(first.len(), 36);
        assert_eq!(first.chars().nth(14), Some('4'));
        assert!(matches!(first.chars().nth(19), Some('8' | '9' | 'a' | 'b')));
        assert_eq!(first.chars().filter(|c| *c == '-').count(), 4, "{first}");
        assert_ne!(Flowhub::id(1), Flowhub::id(2));
        assert_eq!(Flowhub::id(1), Flowhub::id(1));
    }

    #[test]
    fn phones_are_read_back_formatted() {
        assert_eq!(
            formatted_phone("5551234567").as_deref(),
            Some("(555) 123-4567")
        );
        assert_eq!(
            formatted_phone("+1 (555) 123-4567").as_deref(),
            Some("(555) 123-4567")
        );
        assert_eq!(formatted_phone("25551234567"), None);
        assert_eq!(formatted_phone("123-4567"), None);
    }
}
