//! Dutchie POS (formerly LeafLogix): HTTP Basic with the location key as user (password empty,
//! or the integrator key), camelCase JSON, ASP.NET Web API error bodies. See
//! docs/vendors/dutchie.md for what is known and what this double chose where nothing is.
//!
//! Routes: `GET /whoami`, `GET /customer/customers-paginated?PageNumber=&PageSize=`
//! (bare array; optional `fromLastModifiedDateUTC`), `POST /customer/customerLookup` (one
//! customer, or 404), `POST /customer/customer` (create without `customerId`, sparse update
//! with it).

use std::collections::BTreeMap;

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{DoubleOf, Op, SeedCustomer, State, Wire, digits, header, json_object, text};

/// The largest `PageSize` the paginated list accepts; more (or less than 1) gives 400.
pub const MAX_PAGE_SIZE: usize = 100;

/// The body of every refused credential, as ASP.NET's `[Authorize]` writes it.
const DENIED: &str = "Authorization has been denied for this request.";

/// A running Dutchie POS double.
pub type DutchieDouble = DoubleOf<Dutchie>;

/// Dutchie POS, as its double speaks it.
pub struct Dutchie;

/// Credentials the double accepts.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The Basic user name.
    pub location_key: String,
    /// The Basic password when set; otherwise the password must be empty.
    pub integrator_key: Option<String>,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            location_key: "dutchie-location-key-5f3c9a1e7b2d4f60".into(),
            integrator_key: None,
        }
    }
}

const WRONG_KEY: &str = "wrong-dutchie-location-key-must-not-leak";

impl DutchieDouble {
    /// The adapter's `base_url` for this double (Dutchie's paths start at the host).
    pub fn base_url(&self) -> String {
        self.url().to_owned()
    }
}

impl Wire for Dutchie {
    const NAME: &'static str = "dutchie";
    const ID_FIELD: &'static str = "customerId";
    type Credentials = Credentials;
    type Extra = ();

    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route("/whoami", web::get().to(whoami))
            .route("/customer/customers-paginated", web::get().to(list))
            .route("/customer/customerLookup", web::post().to(lookup))
            .route("/customer/customer", web::post().to(upsert));
    }

    fn authorize(state: &State<Self>, _op: Op, request: &HttpRequest) -> Result<(), HttpResponse> {
        if authorized(&state.credentials, request) {
            Ok(())
        } else {
            Err(message(401, DENIED))
        }
    }

    fn error_body(status: u16, reason: &str) -> Value {
        match status {
            401 => json!({"message": DENIED}),
            _ => json!({"message": reason}),
        }
    }

    fn invalid() -> (u16, Value) {
        (
            400,
            model_state(&[("customer.FirstName", "The FirstName field is required.")]),
        )
    }

    fn store_config(url: &str, c: &Credentials) -> Value {
        let mut config = json!({"location_key": c.location_key, "base_url": url});
        if let (Some(key), Some(object)) = (&c.integrator_key, config.as_object_mut()) {
            object.insert("integrator_key".into(), json!(key));
        }
        config
    }

    fn wrong_credentials_config(url: &str, c: &Credentials) -> Value {
        let mut config = Self::store_config(url, c);
        if let Some(object) = config.as_object_mut() {
            object.insert("location_key".into(), json!(WRONG_KEY));
        }
        config
    }

    fn secrets(c: &Credentials) -> Vec<String> {
        let mut secrets = vec![c.location_key.clone(), WRONG_KEY.to_owned()];
        secrets.extend(c.integrator_key.clone());
        secrets
    }

    fn id(seq: u64) -> Value {
        json!(1000 + seq)
    }

    fn new_record(fields: &Map<String, Value>) -> Map<String, Value> {
        let mut customer = Map::new();
        for field in WRITABLE
            .iter()
            .chain(&["driversLicenseHash", "creationDate"])
        {
            customer.insert((*field).to_owned(), Value::Null);
        }
        apply(&mut customer, fields);
        for (field, default) in [("status", "Active"), ("customerType", "Recreational")] {
            if customer.get(field).is_none_or(Value::is_null) {
                customer.insert(field.into(), json!(default));
            }
        }
        customer.insert("creationDate".into(), json!(now()));
        customer
    }

    fn seed_fields(c: &SeedCustomer) -> Map<String, Value> {
        let gender = c.gender.as_deref().map(|g| match g {
            "male" => "M",
            "female" => "F",
            _ => "O",
        });
        let json = json!({
            "firstName": c.first_name,
            "lastName": c.last_name,
            "emailAddress": c.email,
            "phone": c.phone,
            "dateOfBirth": c.birthday.as_ref().map(|d| format!("{d}T00:00:00")),
            "driversLicenseID": c.drivers_license,
            "gender": gender,
            "notes": c.notes,
        });
        json.as_object().cloned().unwrap_or_default()
    }

    fn unusable_fields() -> Map<String, Value> {
        let json = json!({"firstName": "", "lastName": "Nameless"});
        json.as_object().cloned().unwrap_or_default()
    }
}

fn message(status: u16, text: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status).json(json!({"message": text}))
}

/// ASP.NET Web API's 400 for a model that failed validation.
fn model_state(errors: &[(&str, &str)]) -> Value {
    let mut state = Map::new();
    for (key, text) in errors {
        if let Value::Array(list) = state.entry(*key).or_insert_with(|| json!([])) {
            list.push(json!(text));
        }
    }
    json!({"message": "The request is invalid.", "modelState": state})
}

fn invalid(errors: &[(&str, &str)]) -> HttpResponse {
    HttpResponse::BadRequest().json(model_state(errors))
}

/// A 400 not yet built into a response: small enough for the `Err` side of a `Result`.
struct Refusal(Value);

impl From<Refusal> for HttpResponse {
    fn from(refusal: Refusal) -> Self {
        HttpResponse::BadRequest().json(refusal.0)
    }
}

fn not_found() -> HttpResponse {
    message(404, "Customer not found")
}

type Data = web::Data<State<Dutchie>>;

fn authorized(credentials: &Credentials, request: &HttpRequest) -> bool {
    use base64::Engine as _;
    let Some(encoded) = header(request, "authorization").strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let pair = String::from_utf8_lossy(&decoded);
    let Some((user, password)) = pair.split_once(':') else {
        return false;
    };
    user == credentials.location_key
        && password == credentials.integrator_key.as_deref().unwrap_or_default()
}

async fn whoami(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::WhoAmI, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let normal = HttpResponse::Ok().json(json!({
        "LocationName": "Double Dispensary - Main St",
        "LocationId": 4242,
        "CompanyName": "Double Cannabis Co",
        "CompanyId": 77,
    }));
    state.finish(after, normal).await
}

async fn list(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::List, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let params = web::Query::<BTreeMap<String, String>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    // ASP.NET binds query names case-insensitively.
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let page = param("PageNumber").and_then(|p| p.parse::<usize>().ok());
    let size = param("PageSize").and_then(|p| p.parse::<usize>().ok());
    let (Some(page), Some(size)) = (page, size) else {
        return invalid(&[("PageNumber", "PageNumber and PageSize are required.")]);
    };
    if page < 1 {
        return invalid(&[("PageNumber", "PageNumber must be at least 1.")]);
    }
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return invalid(&[("PageSize", "PageSize must be between 1 and 100.")]);
    }
    let since = match param("fromLastModifiedDateUTC") {
        None | Some("") => None,
        Some(text) => match parse_date_time(text) {
            Some(since) => Some(since),
            None => {
                return invalid(&[(
                    "fromLastModifiedDateUTC",
                    "The value is not valid for fromLastModifiedDateUTC.",
                )]);
            }
        },
    };
    let customers: Vec<Value> = state
        .table()
        .records()
        .filter(|c| {
            since.is_none_or(|since| {
                text(c, "lastModifiedDateUTC")
                    .and_then(parse_date_time)
                    .is_none_or(|modified| modified >= since)
            })
        })
        .skip(page.saturating_sub(1).saturating_mul(size))
        .take(size)
        .cloned()
        .map(Value::Object)
        .collect();
    state
        .finish(after, HttpResponse::Ok().json(Value::Array(customers)))
        .await
}

/// The fields `customerLookup` matches on, combined with AND.
const LOOKUP_FIELDS: [&str; 6] = [
    "phone",
    "emailAddress",
    "firstName",
    "lastName",
    "dateOfBirth",
    "mmjidNumber",
];

fn lookup_matches(customer: &Map<String, Value>, field: &str, wanted: &str) -> bool {
    match field {
        "phone" => {
            let wanted = digits(wanted);
            ["phone", "cellPhone"]
                .iter()
                .any(|k| text(customer, k).is_some_and(|p| digits(p) == wanted))
        }
        "dateOfBirth" => {
            let wanted = parse_date_time(wanted);
            wanted.is_some() && text(customer, field).and_then(parse_date_time) == wanted
        }
        _ => text(customer, field).is_some_and(|v| v.to_lowercase() == wanted.to_lowercase()),
    }
}

async fn lookup(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Search, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let object = match parse_object(&body) {
        Ok(object) => object,
        Err(refusal) => return refusal.into(),
    };
    let wanted: Vec<(&str, &str)> = LOOKUP_FIELDS
        .iter()
        .filter_map(|field| text(&object, field).map(|value| (*field, value)))
        .collect();
    if wanted.is_empty() {
        return invalid(&[("request", "At least one search field is required.")]);
    }
    // The oldest match: the lookup answers one customer, whoever else matches.
    let found = state
        .table()
        .records()
        .find(|c| wanted.iter().all(|(f, v)| lookup_matches(c, f, v)))
        .cloned();
    let normal = match found {
        Some(customer) => HttpResponse::Ok().json(Value::Object(customer)),
        None => not_found(),
    };
    state.finish(after, normal).await
}

/// The fields a write may set, besides `driversLicenseID`.
const WRITABLE: [&str; 13] = [
    "firstName",
    "lastName",
    "middleName",
    "phone",
    "cellPhone",
    "emailAddress",
    "status",
    "customerType",
    "gender",
    "dateOfBirth",
    "mmjidNumber",
    "notes",
    "externalCustomerId",
];

/// Dutchie's checks of the fields present in `object`, as ASP.NET model-state errors.
fn check(object: &Map<String, Value>, creating: bool) -> Result<(), Refusal> {
    let mut errors: Vec<(&str, String)> = Vec::new();
    for (field, key) in [
        ("firstName", "customer.FirstName"),
        ("lastName", "customer.LastName"),
    ] {
        if (creating || object.contains_key(field)) && text(object, field).is_none() {
            let name = key.trim_start_matches("customer.");
            errors.push((key, format!("The {name} field is required.")));
        }
    }
    for field in WRITABLE.iter().chain(&["driversLicenseID"]) {
        if let Some(value) = object.get(*field)
            && !(value.is_string() || value.is_null())
        {
            errors.push(("customer", format!("Error converting value for '{field}'.")));
        }
    }
    if let Some(date) = text(object, "dateOfBirth")
        && parse_date_time(date).is_none()
    {
        errors.push((
            "customer.DateOfBirth",
            format!("The value '{date}' is not valid for DateOfBirth."),
        ));
    }
    if let Some(email) = text(object, "emailAddress")
        && !email.contains('@')
    {
        errors.push((
            "customer.EmailAddress",
            "The EmailAddress field is not a valid e-mail address.".to_owned(),
        ));
    }
    if errors.is_empty() {
        return Ok(());
    }
    let pairs: Vec<(&str, &str)> = errors.iter().map(|(k, m)| (*k, m.as_str())).collect();
    Err(Refusal(model_state(&pairs)))
}

/// An ISO date or date-time, with or without an offset or a `Z`.
fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date.and_hms_opt(0, 0, 0);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|d| d.naive_utc())
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok())
}

fn now() -> String {
    chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

/// The upper-cased licence's SHA-256, in hex: what Dutchie keeps instead of the licence.
fn license_hash(license: &str) -> String {
    hex::encode(Sha256::digest(license.trim().to_uppercase().as_bytes()))
}

/// Sets the writable fields present in `changes` on `customer`; a blank string clears.
fn apply(customer: &mut Map<String, Value>, changes: &Map<String, Value>) {
    for field in WRITABLE {
        let Some(value) = changes.get(field) else {
            continue;
        };
        let value = match value.as_str().map(str::trim) {
            None | Some("") => Value::Null,
            Some(text) if field == "dateOfBirth" => parse_date_time(text)
                .map(|d| json!(d.format("%Y-%m-%dT%H:%M:%S").to_string()))
                .unwrap_or(Value::Null),
            Some(text) => json!(text),
        };
        customer.insert(field.to_owned(), value);
    }
    if let Some(license) = changes.get("driversLicenseID") {
        let hash = match license.as_str().map(str::trim) {
            None | Some("") => Value::Null,
            Some(text) => json!(license_hash(text)),
        };
        customer.insert("driversLicenseHash".into(), hash);
    }
    customer.insert("lastModifiedDateUTC".into(), json!(now()));
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    json_object(body).ok_or_else(|| Refusal(json!({"message": "The request is invalid."})))
}

/// `customerId` as sent: absent (or null) for a create, an integer for an update.
fn customer_id(object: &Map<String, Value>) -> Result<Option<i64>, Refusal> {
    match object.get("customerId") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or_else(|| {
            Refusal(model_state(&[(
                "customer.CustomerId",
                "Error converting value to type 'System.Nullable`1[System.Int32]'.",
            )]))
        }),
    }
}

async fn upsert(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let parsed = parse_object(&body).and_then(|o| customer_id(&o).map(|id| (o, id)));
    // The op is known only from the body; a body that can't say is counted as a create.
    let op = match &parsed {
        Ok((_, Some(_))) => Op::Update,
        _ => Op::Create,
    };
    let after = match state.enter(op, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let (object, id) = match parsed {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.into(),
    };
    if let Err(refusal) = check(&object, id.is_none()) {
        return refusal.into();
    }
    let normal = match id {
        None => HttpResponse::Ok().json(Value::Object(state.insert(&object))),
        Some(id) => {
            let updated = state
                .table()
                .update::<Dutchie>(&id.to_string(), |customer| apply(customer, &object));
            match updated {
                Some(customer) => HttpResponse::Ok().json(Value::Object(customer)),
                None => not_found(),
            }
        }
    };
    state.finish(after, normal).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licences_are_hashed_upper_case_and_dates_read_both_forms() {
        assert_eq!(license_hash("d1234567"), license_hash(" D1234567 "));
        assert_eq!(license_hash("x").len(), 64);
        assert_eq!(
            parse_date_time("1990-01-02"),
            parse_date_time("1990-01-02T00:00:00")
        );
        assert!(parse_date_time("1990-01-02T00:00:00Z").is_some());
        assert!(parse_date_time("02/01/1990").is_none());
    }

    #[test]
    fn model_state_groups_messages_by_key() {
        let body = model_state(&[("a", "x"), ("a", "y"), ("b", "z")]);
        assert_eq!(body["modelState"]["a"], json!(["x", "y"]));
        assert_eq!(body["modelState"]["b"], json!(["z"]));
    }
}
