//! Dutchie POS (formerly LeafLogix): HTTP Basic with the location key as user (password empty,
//! or the integrator key), camelCase JSON, errors as `{"message", "propertyErrors"}`, an empty
//! 401, a bare JSON string for a 404. See docs/vendors/dutchie.md for the sources and
//! docs/vendors/dutchie-double.md for what this double models and what it chose where the facts
//! are silent (every such choice is marked "Unverified (chosen)", most of them in [`chosen`]).
//!
//! Routes, at the host's root (`https://api.pos.dutchie.com` in production):
//!
//! | route | op |
//! |---|---|
//! | `GET /whoami` | `WhoAmI` |
//! | `GET /customer/customer-types` | `WhoAmI` |
//! | `GET /customer/customers-paginated?PageNumber=&PageSize=&fromLastModifiedDateUTC=` | `List` |
//! | `GET /customer/customers?fromLastModifiedDateUTC=` (bare array, no paging) | `List` |
//! | `POST /customer/customerLookup` (one customer) | `Search` |
//! | `POST /customer/customer[?bypassDeduplication=true]` without `customerId` (or 0/null) | `Create` |
//! | `POST /customer/customer` with a `customerId` (sparse update) | `Update` |
//!
//! Controls a test can use, on [`DutchieDouble`]: [`set_customer_role`](DutchieDouble::set_customer_role),
//! [`enforce_rate_limits`](DutchieDouble::enforce_rate_limits),
//! [`set_rate_limits`](DutchieDouble::set_rate_limits),
//! [`replayed_creates`](DutchieDouble::replayed_creates),
//! [`deduplicated_creates`](DutchieDouble::deduplicated_creates) and
//! [`customer`](DutchieDouble::customer).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{DoubleOf, Op, SeedCustomer, State, Wire, digits, header, json_object, lock, text};

/// The largest `PageSize` the paginated list accepts (spec); more (or less than 1) gives 400.
pub const MAX_PAGE_SIZE: usize = 100;

/// Requests per minute allowed in general, and to `POST /customer/customer` (spec). Enforced
/// only when a test turns it on ([`DutchieDouble::enforce_rate_limits`]).
pub const GENERAL_LIMIT_PER_MINUTE: u32 = 120;
pub const CUSTOMER_WRITE_LIMIT_PER_MINUTE: u32 = 1500;

/// The customer statuses (spec).
pub const STATUSES: [&str; 4] = ["Active", "Cancelled", "Hold", "Banned"];

/// The store's own address in the double's store config (`default_address`), and where
/// seeded customers live.
pub const STORE_ADDRESS1: &str = "1200 SE Morrison St";
pub const STORE_CITY: &str = "Portland";
pub const STORE_STATE: &str = "OR";
pub const STORE_POSTAL_CODE: &str = "97214";

/// One of the location's customer types, as `GET /customer/customer-types` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CustomerType {
    pub id: i64,
    pub name: &'static str,
    pub is_retail: bool,
    pub is_medical: bool,
}

/// The location's customer types, in the order Dutchie lists them. Unverified (chosen): the
/// names and ids; a medical type comes first, so an adapter that takes the first type blindly
/// (instead of the first retail one) sends `Medical` and is caught.
pub const CUSTOMER_TYPES: [CustomerType; 4] = [
    CustomerType {
        id: 1,
        name: "Medical",
        is_retail: false,
        is_medical: true,
    },
    CustomerType {
        id: 2,
        name: "Recreational",
        is_retail: true,
        is_medical: false,
    },
    CustomerType {
        id: 3,
        name: "Caregiver",
        is_retail: false,
        is_medical: true,
    },
    CustomerType {
        id: 4,
        name: "Out of State",
        is_retail: true,
        is_medical: false,
    },
];

/// The first retail type of [`CUSTOMER_TYPES`]: what an adapter without a configured
/// `customer_type` must send, and what seeded customers are.
pub const FIRST_RETAIL_TYPE: &str = "Recreational";

/// Every behaviour vendors.md leaves open, as this double chose it. Each is listed in
/// docs/vendors/dutchie-double.md; correct it here when a real Dutchie answers otherwise. The
/// field checks in [`check`] and the sparse update in [`apply`] say where they choose too.
pub mod chosen {
    use serde_json::{Map, Value};

    /// The text of a 404 for an unknown `customerId` (a bare JSON string: spec; its words:
    /// Unverified (chosen)). Unverified (chosen): a `customerLookup` that matches nobody answers
    /// the same 404.
    pub const NOT_FOUND: &str = "Customer not found";

    /// Unverified (chosen): the `message` of a 400 with `propertyErrors`.
    pub const VALIDATION_FAILED: &str = "One or more validation errors occurred.";

    /// Unverified (chosen): the `propertyError` of a required field left out or blank.
    pub fn required(property: &str) -> String {
        format!("{property} is required.")
    }

    /// Unverified (chosen): a field that is not in `EcomCustomerEdit`
    /// (`additionalProperties: false`: spec) is refused, named as sent, with the words of
    /// Newtonsoft.Json's missing-member error. Names are matched exactly, so `FirstName` is
    /// refused as unknown.
    pub fn unknown_member(name: &str) -> String {
        format!("Could not find member '{name}' on object of type 'EcomCustomerEdit'.")
    }

    /// Unverified (chosen): a body that is not a JSON object: 400 with this message and
    /// `propertyErrors: null`.
    pub const NOT_JSON: &str = "The request body is not a valid JSON object.";

    /// Unverified (chosen): a `customerLookup` without any search field.
    pub const LOOKUP_NEEDS_A_FIELD: &str = "At least one search field is required.";

    /// Unverified (chosen): a `ConsumerKey` header that is not a GUID (`8-4-4-4-12` hex, any
    /// case, braces allowed) is refused with this plain 400, create or update; an absent or
    /// blank one is no key.
    pub const CONSUMER_KEY_NOT_A_GUID: &str = "The ConsumerKey header must be a GUID.";

    /// Unverified (chosen): a create is protected only when it carries BOTH a `ConsumerKey`
    /// and a non-blank `idempotencyKey`; with one of them alone it is an ordinary create. The
    /// pair (consumer key without case, idempotency key as sent) names the create: a create
    /// repeating it answers 200 with the customer the first one made (as it is now, whatever
    /// the new body says) and makes none. Updates ignore the pair.
    pub fn idempotency_key(
        consumer: Option<String>,
        key: Option<&str>,
    ) -> Option<(String, String)> {
        Some((consumer?.to_lowercase(), key?.trim().to_owned()))
    }

    /// Unverified (chosen): Dutchie's de-duplication of creates (spec: it happens, unless
    /// `?bypassDeduplication=true`; on what: gap). A create is the same person as a customer
    /// already held (whatever its status) when the first and last names match, ignoring case
    /// and surrounding spaces (blank matches blank), and so does at least one of: the phone
    /// digits (`phone` or `cellPhone`, either side), the e-mail ignoring case, or the date of
    /// birth. Such a create answers 200 with the existing customer (its own `creationDate`)
    /// and makes none.
    pub fn same_person(held: &Map<String, Value>, new: &Map<String, Value>) -> bool {
        let name = |c: &Map<String, Value>, key: &str| {
            crate::text(c, key).unwrap_or_default().to_lowercase()
        };
        let names = ["firstName", "lastName"]
            .iter()
            .all(|key| name(held, key) == name(new, key));
        let phones = |c: &Map<String, Value>| -> Vec<String> {
            ["phone", "cellPhone"]
                .iter()
                .filter_map(|key| crate::text(c, key).map(crate::digits))
                .filter(|d| !d.is_empty())
                .collect()
        };
        let held_phones = phones(held);
        let phone = phones(new).iter().any(|p| held_phones.contains(p));
        let email = crate::text(new, "emailAddress").is_some_and(|e| {
            crate::text(held, "emailAddress").is_some_and(|h| h.eq_ignore_ascii_case(e))
        });
        let born = crate::text(new, "dateOfBirth")
            .and_then(super::parse_date_time)
            .is_some_and(|d| {
                crate::text(held, "dateOfBirth").and_then(super::parse_date_time) == Some(d)
            });
        names && (phone || email || born)
    }

    /// Unverified (chosen): `bypassDeduplication` is read as ASP.NET binds a bool (`true` or
    /// `false`, any case); another value is a plain 400.
    pub fn bad_bypass(value: &str) -> String {
        format!("The value '{value}' is not valid for bypassDeduplication.")
    }

    /// Unverified (chosen): `customerType` is a type's `Name` (the field holds text, as
    /// `status` does), matched ignoring case and held as Dutchie spells it; an `Id` or an
    /// unknown name is refused.
    pub fn unknown_customer_type(sent: &str) -> String {
        format!("'{sent}' is not a customer type of this location.")
    }

    /// Unverified (chosen): `status` must be one of the four statuses exactly as spelled.
    pub fn unknown_status(sent: &str) -> String {
        format!("'{sent}' is not a valid status. Valid values: Active, Cancelled, Hold, Banned.")
    }

    /// Unverified (chosen): the range of `dateOfBirth` (spec: 1800-01-01 to today) is checked
    /// against today's date in UTC, both ends included.
    pub const DATE_OF_BIRTH_RANGE: &str = "DateOfBirth must be between 1800-01-01 and today.";

    /// Unverified (chosen): the over-limit `Message` of a customer write, on the pattern of the
    /// general one (spec).
    pub fn rate_limited(limit: u32) -> String {
        format!("Too many requests - only {limit} per minute allowed")
    }

    /// Unverified (chosen): a `TraceId` in W3C trace-context form, as ASP.NET Core writes it.
    pub fn trace_id() -> String {
        format!(
            "00-{:032x}-{:016x}-00",
            rand::random::<u128>(),
            rand::random::<u64>()
        )
    }
}

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

/// What Dutchie keeps besides its customers: the key's role, the creates it has seen by
/// idempotency key, how often it answered an existing customer, and the rate-limit meters.
pub struct Extra {
    customer_role: Mutex<bool>,
    /// (consumer key, idempotency key) -> the id of the customer that create answered.
    created_by_key: Mutex<HashMap<(String, String), String>>,
    answered: Mutex<Answered>,
    limits: Mutex<Limits>,
}

impl Default for Extra {
    fn default() -> Self {
        Self {
            customer_role: Mutex::new(true),
            created_by_key: Mutex::new(HashMap::new()),
            answered: Mutex::new(Answered::default()),
            limits: Mutex::new(Limits {
                enforced: false,
                general: Meter::new(GENERAL_LIMIT_PER_MINUTE),
                writes: Meter::new(CUSTOMER_WRITE_LIMIT_PER_MINUTE),
            }),
        }
    }
}

/// Creates answered with a customer Dutchie already held.
#[derive(Default)]
struct Answered {
    replayed: usize,
    deduplicated: usize,
}

struct Limits {
    enforced: bool,
    general: Meter,
    writes: Meter,
}

/// Calls counted in the current one-minute window.
struct Meter {
    limit: u32,
    started: Instant,
    used: u32,
}

impl Meter {
    fn new(limit: u32) -> Self {
        Self {
            limit,
            started: Instant::now(),
            used: 0,
        }
    }

    /// Counts a call; whether it is over the limit.
    fn over(&mut self) -> bool {
        if self.started.elapsed() >= Duration::from_secs(60) {
            self.started = Instant::now();
            self.used = 0;
        }
        self.used = self.used.saturating_add(1);
        self.used > self.limit
    }
}

impl DutchieDouble {
    /// The adapter's `base_url` for this double (Dutchie's paths start at the host).
    pub fn base_url(&self) -> String {
        self.url().to_owned()
    }

    /// Whether the key has the "Customer" role: without it every `/customer/...` call gets 403
    /// (with an empty body); `whoami` still answers.
    pub fn set_customer_role(&self, granted: bool) {
        *lock(&self.state().extra.customer_role) = granted;
    }

    /// Whether calls over the limits get Dutchie's 429 (off unless a test turns it on), in
    /// fresh one-minute windows.
    pub fn enforce_rate_limits(&self, enforced: bool) {
        let mut limits = lock(&self.state().extra.limits);
        limits.enforced = enforced;
        limits.general = Meter::new(limits.general.limit);
        limits.writes = Meter::new(limits.writes.limit);
    }

    /// Requests per minute allowed when enforced: in general, and to `POST /customer/customer`
    /// ([`GENERAL_LIMIT_PER_MINUTE`], [`CUSTOMER_WRITE_LIMIT_PER_MINUTE`] unless set).
    pub fn set_rate_limits(&self, general: u32, customer_writes: u32) {
        let mut limits = lock(&self.state().extra.limits);
        limits.general = Meter::new(general);
        limits.writes = Meter::new(customer_writes);
    }

    /// How many creates repeated an idempotency key and were answered with the customer the
    /// first one made (none made).
    pub fn replayed_creates(&self) -> usize {
        lock(&self.state().extra.answered).replayed
    }

    /// How many creates Dutchie de-duplicated into a customer it already held (none made).
    pub fn deduplicated_creates(&self) -> usize {
        lock(&self.state().extra.answered).deduplicated
    }

    /// The customer with this id, as Dutchie holds and answers it.
    pub fn customer(&self, id: &str) -> Option<Value> {
        self.state().table().get(id).cloned().map(Value::Object)
    }
}

impl Wire for Dutchie {
    const NAME: &'static str = "dutchie";
    const ID_FIELD: &'static str = "customerId";
    type Credentials = Credentials;
    type Extra = Extra;

    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route("/whoami", web::get().to(whoami))
            .route("/customer/customer-types", web::get().to(customer_types))
            .route("/customer/customers-paginated", web::get().to(list))
            .route("/customer/customers", web::get().to(list_all))
            .route("/customer/customerLookup", web::post().to(lookup))
            .route("/customer/customer", web::post().to(upsert));
    }

    fn authorize(state: &State<Self>, _op: Op, request: &HttpRequest) -> Result<(), HttpResponse> {
        if !authorized(&state.credentials, request) {
            // Spec: a 401 has an empty body.
            return Err(HttpResponse::Unauthorized().finish());
        }
        // Spec: 403 when the key lacks the "Customer" role. Unverified (chosen): its body is
        // empty too, and `whoami`, no customer call, still answers.
        if !*lock(&state.extra.customer_role) && request.path().starts_with("/customer/") {
            return Err(HttpResponse::Forbidden().finish());
        }
        // Unverified (chosen): limits count authenticated calls; a customer write counts
        // against its own 1500 a minute only, every other call against the 120.
        let mut limits = lock(&state.extra.limits);
        if limits.enforced {
            let write = request.method() == actix_web::http::Method::POST
                && request.path() == "/customer/customer";
            let meter = if write {
                &mut limits.writes
            } else {
                &mut limits.general
            };
            if meter.over() {
                return Err(rate_limited(meter.limit));
            }
        }
        Ok(())
    }

    fn error_body(status: u16, reason: &str) -> Value {
        match status {
            401 | 403 => Value::Null,
            404 => json!(chosen::NOT_FOUND),
            429 => rate_limited_body(GENERAL_LIMIT_PER_MINUTE),
            // Unverified (chosen): every other error in the documented 400 shape.
            _ => json!({"message": reason, "propertyErrors": null}),
        }
    }

    fn invalid() -> (u16, Value) {
        (
            400,
            property_errors_body(&[("FirstName".into(), chosen::required("FirstName"))]),
        )
    }

    fn store_config(url: &str, c: &Credentials) -> Value {
        // No `customer_type`: the adapter must ask `customer-types` for the first retail one.
        let mut config = json!({
            "location_key": c.location_key,
            "default_address": {
                "address1": STORE_ADDRESS1,
                "city": STORE_CITY,
                "state": STORE_STATE,
                "postalCode": STORE_POSTAL_CODE,
            },
            "base_url": url,
        });
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

    /// A customer as Dutchie holds one: every read field (absent ones `null`), the writable
    /// fields of `fields`, and what Dutchie or its register sets: `status` `Active` and the
    /// first retail `customerType` when not given (a vendor-shaped seed), `optedIntoMarketing`
    /// `false`, `creationDate` and `lastModifiedDateUTC` (a seed may give them, and
    /// `mergedIntoCustomerId` or a `driversLicenseHash`; a create over HTTP cannot).
    fn new_record(fields: &Map<String, Value>) -> Map<String, Value> {
        let mut customer = Map::new();
        for field in READ_FIELDS {
            customer.insert(field.to_owned(), Value::Null);
        }
        apply(&mut customer, fields);
        for (field, default) in [("status", "Active"), ("customerType", FIRST_RETAIL_TYPE)] {
            if customer.get(field).is_none_or(Value::is_null) {
                customer.insert(field.into(), json!(default));
            }
        }
        if customer
            .get("optedIntoMarketing")
            .is_none_or(Value::is_null)
        {
            customer.insert("optedIntoMarketing".into(), json!(false));
        }
        let given = |key: &str| fields.get(key).filter(|v| !v.is_null()).cloned();
        let created = given("creationDate").unwrap_or_else(|| json!(now()));
        customer.insert(
            "lastModifiedDateUTC".into(),
            given("lastModifiedDateUTC").unwrap_or_else(|| created.clone()),
        );
        customer.insert("creationDate".into(), created);
        for kept in ["mergedIntoCustomerId", "driversLicenseHash"] {
            if let Some(value) = given(kept) {
                customer.insert(kept.into(), value);
            }
        }
        customer
    }

    /// The neutral customer as Dutchie's register holds one: with the store's address (Dutchie
    /// requires one), `Active`, of the first retail type.
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
            "address1": STORE_ADDRESS1,
            "city": STORE_CITY,
            "state": STORE_STATE,
            "postalCode": STORE_POSTAL_CODE,
            "status": "Active",
            "customerType": FIRST_RETAIL_TYPE,
        });
        json.as_object().cloned().unwrap_or_default()
    }

    fn unusable_fields() -> Map<String, Value> {
        let json = json!({
            "firstName": "",
            "lastName": "Nameless",
            "address1": STORE_ADDRESS1,
            "city": STORE_CITY,
            "state": STORE_STATE,
            "postalCode": STORE_POSTAL_CODE,
        });
        json.as_object().cloned().unwrap_or_default()
    }

    fn stamp_changed(record: &mut Map<String, Value>, at: chrono::DateTime<chrono::Utc>) {
        record.insert(
            "lastModifiedDateUTC".into(),
            json!(at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()),
        );
    }

    fn index_keys(record: &Map<String, Value>) -> Vec<String> {
        vec![name_key(record)]
    }
}

/// The index key of a customer's names, for de-duplication.
fn name_key(record: &Map<String, Value>) -> String {
    let name = |key: &str| text(record, key).unwrap_or_default().to_lowercase();
    format!("name:{}|{}", name("firstName"), name("lastName"))
}

/// Every field of a customer as Dutchie answers it (spec's field list, with the address a
/// create requires).
const READ_FIELDS: [&str; 22] = [
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
    "address1",
    "city",
    "state",
    "postalCode",
    "optedIntoMarketing",
    "driversLicenseHash",
    "mergedIntoCustomerId",
    "creationDate",
    "lastModifiedDateUTC",
];

/// The text fields of `EcomCustomerEdit` that a customer holds as written.
const STORED_TEXT: [&str; 17] = [
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
    "address1",
    "city",
    "state",
    "postalCode",
];

/// The text fields of `EcomCustomerEdit` that are not held as written: the licence (held as
/// its hash) and the create's idempotency key (held apart).
const OTHER_TEXT: [&str; 2] = ["driversLicenseID", "idempotencyKey"];

/// `EcomCustomerEdit`'s other fields: the update's id, and a yes/no.
const CUSTOMER_ID: &str = "customerId";
const OPTED_IN: &str = "optedIntoMarketing";

/// Required, non-empty, on create (spec).
const REQUIRED: [&str; 7] = [
    "firstName",
    "address1",
    "city",
    "state",
    "postalCode",
    "status",
    "customerType",
];

/// Whether `name` is a field of `EcomCustomerEdit`. Unverified (chosen) beyond vendors.md's
/// list: only the fields it names as written are in the schema (no `address2`, which it
/// never mentions); read-only fields (`creationDate`, `lastModifiedDateUTC`,
/// `driversLicenseHash`, `mergedIntoCustomerId`) are not.
fn in_schema(name: &str) -> bool {
    STORED_TEXT.contains(&name)
        || OTHER_TEXT.contains(&name)
        || [CUSTOMER_ID, OPTED_IN].contains(&name)
}

/// A field name as Dutchie writes it in `propertyName` (spec example: `FirstName`).
fn property(field: &str) -> String {
    let mut chars = field.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn property_errors_body(errors: &[(String, String)]) -> Value {
    let list: Vec<Value> = errors
        .iter()
        .map(|(name, error)| json!({"propertyName": name, "propertyError": error}))
        .collect();
    json!({"message": chosen::VALIDATION_FAILED, "propertyErrors": list})
}

/// 400 with `propertyErrors` (spec).
fn property_errors(errors: &[(String, String)]) -> HttpResponse {
    HttpResponse::BadRequest().json(property_errors_body(errors))
}

/// 400 with a plain message: `propertyErrors` is `null` (spec).
fn plain(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({"message": message, "propertyErrors": null}))
}

/// 404 with a bare JSON string (spec).
fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(chosen::NOT_FOUND)
}

fn rate_limited_body(limit: u32) -> Value {
    json!({"Message": chosen::rate_limited(limit), "TraceId": chosen::trace_id()})
}

/// 429 without `Retry-After` (spec).
fn rate_limited(limit: u32) -> HttpResponse {
    HttpResponse::TooManyRequests().json(rate_limited_body(limit))
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

async fn customer_types(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::WhoAmI, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let types: Vec<Value> = CUSTOMER_TYPES
        .iter()
        .map(|t| json!({"Id": t.id, "Name": t.name, "IsRetail": t.is_retail, "IsMedical": t.is_medical}))
        .collect();
    state
        .finish(after, HttpResponse::Ok().json(Value::Array(types)))
        .await
}

/// The query's parameters by name, matched without case as ASP.NET binds them.
fn params(request: &HttpRequest) -> BTreeMap<String, String> {
    web::Query::<BTreeMap<String, String>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

fn param<'a>(params: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// `fromLastModifiedDateUTC`, when given.
fn modified_since(
    params: &BTreeMap<String, String>,
) -> Result<Option<NaiveDateTime>, HttpResponse> {
    match param(params, "fromLastModifiedDateUTC") {
        None | Some("") => Ok(None),
        Some(text) => parse_date_time(text).map(Some).ok_or_else(|| {
            property_errors(&[(
                "FromLastModifiedDateUTC".into(),
                format!("The value '{text}' is not valid for fromLastModifiedDateUTC."),
            )])
        }),
    }
}

fn modified_after(customer: &Map<String, Value>, since: Option<NaiveDateTime>) -> bool {
    since.is_none_or(|since| {
        text(customer, "lastModifiedDateUTC")
            .and_then(parse_date_time)
            .is_none_or(|modified| modified >= since)
    })
}

async fn list(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::List, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let params = params(&request);
    let page = param(&params, "PageNumber").and_then(|p| p.parse::<usize>().ok());
    let size = param(&params, "PageSize").and_then(|p| p.parse::<usize>().ok());
    let (Some(page), Some(size)) = (page, size) else {
        return property_errors(&[(
            "PageNumber".into(),
            "PageNumber and PageSize are required.".into(),
        )]);
    };
    if page < 1 {
        return property_errors(&[("PageNumber".into(), "PageNumber must be at least 1.".into())]);
    }
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return property_errors(&[(
            "PageSize".into(),
            format!("PageSize must be between 1 and {MAX_PAGE_SIZE}."),
        )]);
    }
    let since = match modified_since(&params) {
        Ok(since) => since,
        Err(response) => return response,
    };
    let customers: Vec<Value> = state
        .table()
        .records()
        .filter(|c| modified_after(c, since))
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .cloned()
        .map(Value::Object)
        .collect();
    state
        .finish(after, HttpResponse::Ok().json(Value::Array(customers)))
        .await
}

/// `GET /customer/customers`: every customer (modified since the date, when given) in one bare
/// array. Unverified (chosen): `fromLastModifiedDateUTC` is optional.
async fn list_all(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::List, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let since = match modified_since(&params(&request)) {
        Ok(since) => since,
        Err(response) => return response,
    };
    let customers: Vec<Value> = state
        .table()
        .records()
        .filter(|c| modified_after(c, since))
        .cloned()
        .map(Value::Object)
        .collect();
    state
        .finish(after, HttpResponse::Ok().json(Value::Array(customers)))
        .await
}

/// The fields `customerLookup` matches on, combined with AND (spec: any of them).
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
    let Some(object) = json_object(&body) else {
        return plain(chosen::NOT_JSON);
    };
    let wanted: Vec<(&str, &str)> = LOOKUP_FIELDS
        .iter()
        .filter_map(|field| text(&object, field).map(|value| (*field, value)))
        .collect();
    if wanted.is_empty() {
        return plain(chosen::LOOKUP_NEEDS_A_FIELD);
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

/// The location's type of this name, ignoring case.
fn customer_type(name: &str) -> Option<&'static CustomerType> {
    CUSTOMER_TYPES
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name.trim()))
}

/// Dutchie's checks of an `EcomCustomerEdit`, every problem as a `propertyErrors` entry.
///
/// Spec: the schema's fields only, the seven required fields on create, `dateOfBirth`
/// between 1800-01-01 and today, the four statuses. Unverified (chosen): text fields must be
/// strings or `null` and `optedIntoMarketing` a boolean or `null`; on a sparse update a
/// required field may be left out (or `null`: kept) but not sent blank; `dateOfBirth` must be
/// an ISO date or date-time; an e-mail needs an `@`; `customerType` is a listed type's name.
fn check(object: &Map<String, Value>, creating: bool) -> Vec<(String, String)> {
    let mut errors: Vec<(String, String)> = Vec::new();
    for name in object.keys().filter(|name| !in_schema(name)) {
        errors.push((name.clone(), chosen::unknown_member(name)));
    }
    for field in STORED_TEXT.iter().chain(&OTHER_TEXT) {
        if object
            .get(*field)
            .is_some_and(|v| !(v.is_string() || v.is_null()))
        {
            let name = property(field);
            errors.push((name.clone(), format!("The value is not valid for {name}.")));
        }
    }
    if object
        .get(OPTED_IN)
        .is_some_and(|v| !(v.is_boolean() || v.is_null()))
    {
        let name = property(OPTED_IN);
        errors.push((name.clone(), format!("The value is not valid for {name}.")));
    }
    for field in REQUIRED {
        let blank = match object.get(field) {
            None | Some(Value::Null) => creating,
            Some(Value::String(_)) => text(object, field).is_none(),
            Some(_) => false,
        };
        if blank {
            errors.push((property(field), chosen::required(&property(field))));
        }
    }
    if let Some(status) = text(object, "status")
        && !STATUSES.contains(&status)
    {
        errors.push(("Status".into(), chosen::unknown_status(status)));
    }
    if let Some(kind) = text(object, "customerType")
        && customer_type(kind).is_none()
    {
        errors.push(("CustomerType".into(), chosen::unknown_customer_type(kind)));
    }
    if let Some(date) = text(object, "dateOfBirth") {
        let earliest = NaiveDate::from_ymd_opt(1800, 1, 1);
        let today = chrono::Utc::now().date_naive();
        match parse_date_time(date).map(|d| d.date()) {
            None => errors.push((
                "DateOfBirth".into(),
                format!("The value '{date}' is not valid for DateOfBirth."),
            )),
            Some(day) if Some(day) < earliest || day > today => {
                errors.push(("DateOfBirth".into(), chosen::DATE_OF_BIRTH_RANGE.into()));
            }
            Some(_) => {}
        }
    }
    if let Some(email) = text(object, "emailAddress")
        && !email.contains('@')
    {
        errors.push((
            "EmailAddress".into(),
            "The EmailAddress field is not a valid e-mail address.".into(),
        ));
    }
    errors
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

/// Sets the fields `changes` gives on `customer`: Dutchie's sparse write (spec: omitted fields
/// keep their values). Unverified (chosen): a `null` is taken as omitted (kept), as .NET
/// binding cannot tell them apart; a blank string clears (held as `null`).
fn apply(customer: &mut Map<String, Value>, changes: &Map<String, Value>) {
    for field in STORED_TEXT {
        let Some(Value::String(value)) = changes.get(field) else {
            continue;
        };
        let value = match value.trim() {
            "" => Value::Null,
            text if field == "dateOfBirth" => parse_date_time(text)
                .map(|d| json!(d.format("%Y-%m-%dT%H:%M:%S").to_string()))
                .unwrap_or(Value::Null),
            text if field == "customerType" => {
                json!(customer_type(text).map_or(text, |t| t.name))
            }
            text => json!(text),
        };
        customer.insert(field.to_owned(), value);
    }
    if let Some(Value::Bool(opted)) = changes.get(OPTED_IN) {
        customer.insert(OPTED_IN.into(), json!(opted));
    }
    if let Some(Value::String(license)) = changes.get("driversLicenseID") {
        let hash = match license.trim() {
            "" => Value::Null,
            text => json!(license_hash(text)),
        };
        customer.insert("driversLicenseHash".into(), hash);
    }
    customer.insert("lastModifiedDateUTC".into(), json!(now()));
}

/// `customerId` as sent: absent, null or 0 for a create (spec), an integer for an update.
fn customer_id(object: &Map<String, Value>) -> Result<Option<i64>, Vec<(String, String)>> {
    match object.get(CUSTOMER_ID) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_i64() {
            Some(0) => Ok(None),
            Some(id) => Ok(Some(id)),
            None => Err(vec![(
                "CustomerId".into(),
                "The value is not valid for CustomerId.".into(),
            )]),
        },
    }
}

/// Whether `s` is a GUID (`8-4-4-4-12` hex digits, optionally in braces).
fn is_guid(s: &str) -> bool {
    let s = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(s);
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The `ConsumerKey` header: `None` when absent or blank, refused when not a GUID.
fn consumer_key(request: &HttpRequest) -> Result<Option<String>, HttpResponse> {
    let key = header(request, "ConsumerKey").trim();
    if key.is_empty() {
        Ok(None)
    } else if is_guid(key) {
        Ok(Some(key.trim_matches(['{', '}']).to_owned()))
    } else {
        Err(plain(chosen::CONSUMER_KEY_NOT_A_GUID))
    }
}

/// `?bypassDeduplication=`, false when absent.
fn bypass_deduplication(request: &HttpRequest) -> Result<bool, HttpResponse> {
    match param(&params(request), "bypassDeduplication") {
        None | Some("") => Ok(false),
        Some(value) if value.eq_ignore_ascii_case("true") => Ok(true),
        Some(value) if value.eq_ignore_ascii_case("false") => Ok(false),
        Some(value) => Err(plain(&chosen::bad_bypass(value))),
    }
}

/// The fields a customer is made of: the body without the update's id and the idempotency key.
fn customer_fields(object: &Map<String, Value>) -> Map<String, Value> {
    object
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), CUSTOMER_ID | "idempotencyKey"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

async fn upsert(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let object = json_object(&body);
    let id = object.as_ref().map(customer_id);
    // The op is known only from the body; a body that can't say is counted as a create.
    let op = match &id {
        Some(Ok(Some(_))) => Op::Update,
        _ => Op::Create,
    };
    let after = match state.enter(op, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let (Some(object), Some(id)) = (object, id) else {
        return plain(chosen::NOT_JSON);
    };
    let id = match id {
        Ok(id) => id,
        Err(errors) => return property_errors(&errors),
    };
    let errors = check(&object, id.is_none());
    if !errors.is_empty() {
        return property_errors(&errors);
    }
    let consumer = match consumer_key(&request) {
        Ok(consumer) => consumer,
        Err(response) => return response,
    };
    let normal = match id {
        None => {
            let bypass = match bypass_deduplication(&request) {
                Ok(bypass) => bypass,
                Err(response) => return response,
            };
            let key = chosen::idempotency_key(consumer, text(&object, "idempotencyKey"));
            create(&state, &object, key, bypass)
        }
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

/// A checked create: the customer an earlier create with the same idempotency key made, else
/// the customer Dutchie de-duplicates it into, else a new one.
fn create(
    state: &State<Dutchie>,
    object: &Map<String, Value>,
    key: Option<(String, String)>,
    bypass: bool,
) -> HttpResponse {
    // Locks in this order only (keys, table, counters), so concurrent creates with one key or
    // for one person make one customer.
    let mut by_key = lock(&state.extra.created_by_key);
    let mut table = state.table();
    if let Some(earlier) = key
        .as_ref()
        .and_then(|key| by_key.get(key))
        .and_then(|id| table.get(id))
    {
        let earlier = earlier.clone();
        lock(&state.extra.answered).replayed += 1;
        return HttpResponse::Ok().json(Value::Object(earlier));
    }
    let fields = customer_fields(object);
    let candidate = Dutchie::new_record(&fields);
    let existing = (!bypass)
        .then(|| {
            table
                .indexed(&name_key(&candidate))
                .into_iter()
                .find(|held| chosen::same_person(held, &candidate))
                .cloned()
        })
        .flatten();
    let customer = match existing {
        Some(existing) => {
            lock(&state.extra.answered).deduplicated += 1;
            existing
        }
        None => table.insert::<Dutchie>(candidate),
    };
    if let (Some(key), Some(id)) = (key, customer.get(CUSTOMER_ID)) {
        by_key.insert(key, id.to_string());
    }
    HttpResponse::Ok().json(Value::Object(customer))
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

    const CONSUMER: &str = "6F9619FF-8B86-D011-B42D-00C04FC964FF";

    fn start() -> DutchieDouble {
        DutchieDouble::start().unwrap()
    }

    fn call(double: &DutchieDouble, method: Method, path: &str) -> reqwest::RequestBuilder {
        let c = double.credentials();
        reqwest::Client::new()
            .request(method, format!("{}{path}", double.base_url()))
            .basic_auth(&c.location_key, c.integrator_key.as_deref())
    }

    async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Status and raw body text.
    async fn raw(request: reqwest::RequestBuilder) -> (u16, String) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn post(double: &DutchieDouble, body: Value) -> (u16, Value) {
        answer(call(double, Method::POST, "/customer/customer").json(&body)).await
    }

    async fn get_json(double: &DutchieDouble, path: &str) -> (u16, Value) {
        answer(call(double, Method::GET, path)).await
    }

    /// A create with every required field, as an adapter sends it with the store's defaults.
    fn required_body() -> Value {
        json!({
            "firstName": "Ann", "lastName": "Lee",
            "address1": STORE_ADDRESS1, "city": STORE_CITY, "state": STORE_STATE,
            "postalCode": STORE_POSTAL_CODE, "status": "Active", "customerType": FIRST_RETAIL_TYPE,
        })
    }

    fn full_body() -> Value {
        let mut body = required_body();
        let extra = json!({
            "middleName": "Marie", "phone": "5551234567", "cellPhone": "5559990000",
            "emailAddress": "ann@example.com", "gender": "F", "dateOfBirth": "1989-03-07",
            "mmjidNumber": "MMJ-1", "notes": "likes edibles", "externalCustomerId": "kiosk-1",
            "optedIntoMarketing": true, "driversLicenseID": "d1234567",
        });
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    }

    fn property_names(body: &Value) -> Vec<String> {
        body["propertyErrors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["propertyName"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn refused_credentials_get_a_401_with_an_empty_body() {
        let double = start();
        let url = format!("{}/whoami", double.url());
        let client = reqwest::Client::new();
        let attempts = [
            client.get(&url),
            client.get(&url).basic_auth(WRONG_KEY, None::<&str>),
            client
                .get(&url)
                .basic_auth(&double.credentials().location_key, Some("unexpected")),
            client.get(&url).header("authorization", "Bearer something"),
        ];
        for attempt in attempts {
            let (status, body) = raw(attempt).await;
            assert_eq!((status, body.as_str()), (401, ""));
        }
        let (status, who) = get_json(&double, "/whoami").await;
        assert_eq!(status, 200);
        assert_eq!(who["LocationId"], 4242);

        let with_integrator = DutchieDouble::start_with(Credentials {
            location_key: "location".into(),
            integrator_key: Some("integrator".into()),
        })
        .unwrap();
        assert_eq!(get_json(&with_integrator, "/whoami").await.0, 200);
        assert_eq!(
            with_integrator.store_config()["integrator_key"],
            "integrator"
        );
        let no_password = client
            .get(format!("{}/whoami", with_integrator.url()))
            .basic_auth("location", None::<&str>);
        assert_eq!(raw(no_password).await.0, 401);
    }

    #[tokio::test]
    async fn without_the_customer_role_customer_calls_get_an_empty_403() {
        let double = start();
        double.set_customer_role(false);
        for request in [
            call(&double, Method::GET, "/customer/customer-types"),
            call(
                &double,
                Method::GET,
                "/customer/customers-paginated?PageNumber=1&PageSize=10",
            ),
            call(&double, Method::POST, "/customer/customer").json(&required_body()),
            call(&double, Method::POST, "/customer/customerLookup")
                .json(&json!({"firstName": "Ann"})),
        ] {
            assert_eq!(raw(request).await, (403, String::new()));
        }
        assert_eq!(get_json(&double, "/whoami").await.0, 200);
        assert!(double.customers().is_empty());
        double.set_customer_role(true);
        assert_eq!(post(&double, required_body()).await.0, 200);
    }

    #[tokio::test]
    async fn customer_types_list_a_medical_type_before_the_first_retail_one() {
        let double = start();
        let (status, types) = get_json(&double, "/customer/customer-types").await;
        assert_eq!(status, 200);
        let types = types.as_array().unwrap();
        assert_eq!(
            types[0],
            json!({"Id": 1, "Name": "Medical", "IsRetail": false, "IsMedical": true})
        );
        let first_retail = types.iter().find(|t| t["IsRetail"] == true).unwrap();
        assert_eq!(first_retail["Name"], FIRST_RETAIL_TYPE);
        assert_eq!(double.count(Op::WhoAmI), 1);
    }

    #[tokio::test]
    async fn a_create_needs_the_seven_required_fields_and_answers_the_customer() {
        let double = start();
        let (status, refused) = post(&double, json!({})).await;
        assert_eq!(status, 400);
        assert_eq!(refused["message"], chosen::VALIDATION_FAILED);
        assert_eq!(
            property_names(&refused),
            [
                "FirstName",
                "Address1",
                "City",
                "State",
                "PostalCode",
                "Status",
                "CustomerType"
            ]
        );
        assert_eq!(
            refused["propertyErrors"][0],
            json!({"propertyName": "FirstName", "propertyError": "FirstName is required."})
        );
        for field in REQUIRED {
            for blank in [Value::Null, json!(""), json!("  ")] {
                let mut body = required_body();
                body[field] = blank.clone();
                let (status, refused) = post(&double, body).await;
                assert_eq!(status, 400, "{field}");
                assert_eq!(property_names(&refused), [property(field)]);
            }
        }
        assert!(double.customers().is_empty());

        // No last name needed; customerType in any case is held as Dutchie spells it.
        let mut body = required_body();
        body.as_object_mut().unwrap().remove("lastName");
        body["customerType"] = json!("recreational");
        let (status, created) = post(&double, body).await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["customerType"], FIRST_RETAIL_TYPE);
        assert_eq!(created["lastName"], Value::Null);

        let (status, created) = post(&double, full_body()).await;
        assert_eq!(status, 200, "{created}");
        assert!(created["customerId"].is_i64());
        assert_eq!(created["address1"], STORE_ADDRESS1);
        assert_eq!(created["postalCode"], STORE_POSTAL_CODE);
        assert_eq!(created["status"], "Active");
        assert_eq!(created["dateOfBirth"], "1989-03-07T00:00:00");
        assert_eq!(created["optedIntoMarketing"], true);
        assert_eq!(created["driversLicenseHash"], license_hash("D1234567"));
        assert!(created.get("driversLicenseID").is_none());
        assert!(created.get("idempotencyKey").is_none());
        assert!(created["creationDate"].is_string());
        assert_eq!(created["mergedIntoCustomerId"], Value::Null);
        assert_eq!(double.count(Op::Create), 24);

        for zero in [json!(0), Value::Null] {
            let mut body = required_body();
            body["firstName"] = json!("Zero");
            body["customerId"] = zero;
            let (status, created) = post(&double, body).await;
            assert_eq!(status, 200);
            assert_eq!(created["firstName"], "Zero");
        }
        assert_eq!(double.customers().len(), 4);
    }

    #[tokio::test]
    async fn writes_refuse_fields_outside_the_schema_and_bad_values() {
        let double = start();
        for unknown in [
            "FirstName",
            "address2",
            "creationDate",
            "driversLicenseHash",
            "email",
        ] {
            let mut body = required_body();
            body[unknown] = json!("x");
            let (status, refused) = post(&double, body).await;
            assert_eq!(status, 400, "{unknown}");
            assert_eq!(
                refused["propertyErrors"],
                json!([{"propertyName": unknown, "propertyError": chosen::unknown_member(unknown)}])
            );
        }
        let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string();
        let bad = [
            ("status", json!("active"), "Status"),
            ("status", json!("Deleted"), "Status"),
            ("customerType", json!("2"), "CustomerType"),
            ("customerType", json!("Adult"), "CustomerType"),
            ("dateOfBirth", json!("1799-12-31"), "DateOfBirth"),
            ("dateOfBirth", json!(tomorrow), "DateOfBirth"),
            ("dateOfBirth", json!("03/07/1989"), "DateOfBirth"),
            ("emailAddress", json!("not-an-address"), "EmailAddress"),
            ("optedIntoMarketing", json!("yes"), "OptedIntoMarketing"),
            ("phone", json!(5551234567_u64), "Phone"),
            ("customerId", json!("abc"), "CustomerId"),
        ];
        for (field, value, name) in bad {
            let mut body = required_body();
            body[field] = value.clone();
            let (status, refused) = post(&double, body).await;
            assert_eq!(status, 400, "{field} {value}");
            assert_eq!(property_names(&refused), [name], "{field} {value}");
        }
        for edge in ["1800-01-01", &chrono::Utc::now().date_naive().to_string()] {
            let mut body = required_body();
            body["firstName"] = json!(edge);
            body["dateOfBirth"] = json!(edge);
            assert_eq!(post(&double, body).await.0, 200, "{edge}");
        }
        let (status, body) = answer(
            call(&double, Method::POST, "/customer/customer")
                .header("content-type", "application/json")
                .body("not json"),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"message": chosen::NOT_JSON, "propertyErrors": null})
        );
        assert_eq!(double.customers().len(), 2);
    }

    #[tokio::test]
    async fn the_update_is_sparse_and_an_unknown_id_is_a_bare_string_404() {
        let double = start();
        let (_, created) = post(&double, full_body()).await;
        let id = created["customerId"].clone();
        let (status, updated) = post(
            &double,
            json!({"customerId": id, "notes": "prefers edibles", "emailAddress": null,
                   "phone": "", "city": "Salem"}),
        )
        .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["notes"], "prefers edibles");
        assert_eq!(updated["city"], "Salem");
        // Left out or null: kept. Blank: cleared.
        assert_eq!(updated["emailAddress"], "ann@example.com");
        assert_eq!(updated["phone"], Value::Null);
        for kept in [
            "firstName",
            "lastName",
            "address1",
            "status",
            "customerType",
            "dateOfBirth",
        ] {
            assert_eq!(updated[kept], created[kept], "{kept}");
        }
        assert_eq!(updated["driversLicenseHash"], created["driversLicenseHash"]);
        assert_eq!(updated["creationDate"], created["creationDate"]);
        assert_eq!(double.count(Op::Update), 1);

        let (status, refused) = post(&double, json!({"customerId": id, "address1": " "})).await;
        assert_eq!(status, 400);
        assert_eq!(property_names(&refused), ["Address1"]);
        let (status, refused) = post(&double, json!({"customerId": id, "creationDate": "x"})).await;
        assert_eq!(status, 400);
        assert_eq!(property_names(&refused), ["creationDate"]);

        let (status, body) = raw(call(&double, Method::POST, "/customer/customer")
            .json(&json!({"customerId": 999_999, "notes": "x"})))
        .await;
        assert_eq!((status, body.as_str()), (404, "\"Customer not found\""));
        assert_eq!(double.customers().len(), 1);
    }

    #[tokio::test]
    async fn a_create_repeating_its_idempotency_key_answers_the_first_customer() {
        let double = start();
        let path = "/customer/customer?bypassDeduplication=true";
        let keyed = |consumer: &str, key: Option<&str>, body: Value| {
            let mut body = body;
            if let Some(key) = key {
                body["idempotencyKey"] = json!(key);
            }
            let request = call(&double, Method::POST, path).json(&body);
            if consumer.is_empty() {
                request
            } else {
                request.header("ConsumerKey", consumer)
            }
        };
        // The answer is lost after the create was done; the re-sent create makes nothing.
        double.fail(
            Op::Create,
            Fault::AfterCommit(Box::new(Fault::Status(502))),
            1,
        );
        let (status, _) = answer(keyed(CONSUMER, Some("journal-1"), required_body())).await;
        assert_eq!(status, 502);
        assert_eq!(double.customers().len(), 1);
        let mut changed = required_body();
        changed["firstName"] = json!("Someone Else");
        let (status, again) =
            answer(keyed(&CONSUMER.to_lowercase(), Some("journal-1"), changed)).await;
        assert_eq!(status, 200);
        assert_eq!(again["firstName"], "Ann");
        assert_eq!(again["customerId"], double.customers()[0]["customerId"]);
        assert_eq!(double.customers().len(), 1);
        assert_eq!(double.replayed_creates(), 1);

        // Another key, another consumer, or only one of the two: a new customer each time.
        let other_consumer = "0f8fad5b-d9cb-469f-a165-70867728950e";
        for (consumer, key) in [
            (CONSUMER, Some("journal-2")),
            (other_consumer, Some("journal-1")),
            (CONSUMER, None),
            ("", Some("journal-3")),
            ("", Some("journal-3")),
        ] {
            let (status, _) = answer(keyed(consumer, key, required_body())).await;
            assert_eq!(status, 200);
        }
        assert_eq!(double.customers().len(), 6);
        assert_eq!(double.replayed_creates(), 1);

        let (status, body) = answer(keyed("not-a-guid", Some("journal-4"), required_body())).await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"message": chosen::CONSUMER_KEY_NOT_A_GUID, "propertyErrors": null})
        );
        let (status, body) = answer(keyed(CONSUMER, None, json!({"idempotencyKey": 7}))).await;
        assert_eq!(status, 400);
        assert!(property_names(&body).contains(&"IdempotencyKey".to_owned()));
        assert_eq!(double.customers().len(), 6);
    }

    #[tokio::test]
    async fn a_create_of_a_known_person_is_deduplicated_unless_bypassed() {
        let double = start();
        let mut held = full_body();
        held["creationDate"] = json!("2020-05-01T10:00:00");
        let held_id = double.seed(held);

        let mut same = required_body();
        same["firstName"] = json!("ANN ");
        same["phone"] = json!("555-123-4567");
        let (status, answered) = post(&double, same.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(answered["customerId"].to_string(), held_id);
        assert_eq!(answered["creationDate"], "2020-05-01T10:00:00");
        for (field, value) in [
            ("cellPhone", json!("5551234567")),
            ("emailAddress", json!("Ann@Example.com")),
            ("dateOfBirth", json!("1989-03-07T00:00:00Z")),
        ] {
            let mut body = required_body();
            body[field] = value;
            assert_eq!(
                post(&double, body).await.1["customerId"].to_string(),
                held_id
            );
        }
        assert_eq!(double.deduplicated_creates(), 4);
        assert_eq!(double.customers().len(), 1);
        // Dutchie does not answer the kiosk's other fields: the held customer is unchanged.
        assert_eq!(double.customer(&held_id).unwrap()["phone"], "5551234567");

        // Names alone, or another person with the same phone, are new customers.
        let (_, new) = post(&double, required_body()).await;
        assert_ne!(new["customerId"].to_string(), held_id);
        let mut sibling = required_body();
        sibling["firstName"] = json!("Bea");
        sibling["phone"] = json!("5551234567");
        assert_ne!(
            post(&double, sibling).await.1["customerId"].to_string(),
            held_id
        );

        for bypass in ["true", "True"] {
            let (status, bypassed) = answer(
                call(
                    &double,
                    Method::POST,
                    &format!("/customer/customer?bypassDeduplication={bypass}"),
                )
                .json(&same),
            )
            .await;
            assert_eq!(status, 200);
            assert_ne!(bypassed["customerId"].to_string(), held_id);
        }
        let (status, deduplicated) = answer(
            call(
                &double,
                Method::POST,
                "/customer/customer?bypassDeduplication=false",
            )
            .json(&same),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(deduplicated["customerId"].to_string(), held_id);
        let (status, refused) = answer(
            call(
                &double,
                Method::POST,
                "/customer/customer?bypassDeduplication=yes",
            )
            .json(&same),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(refused["message"], chosen::bad_bypass("yes"));
        assert_eq!(double.customers().len(), 5);
        assert_eq!(double.deduplicated_creates(), 5);
    }

    #[tokio::test]
    async fn a_deduplicated_create_with_a_key_replays_the_customer_it_answered() {
        let double = start();
        let held_id = double.seed_customer(&SeedCustomer::numbered(3));
        let mut body = required_body();
        body["firstName"] = json!("First3");
        body["lastName"] = json!("Last3");
        body["emailAddress"] = json!("customer3@example.com");
        body["idempotencyKey"] = json!("journal-9");
        for _ in 0..2 {
            let (status, answered) = answer(
                call(&double, Method::POST, "/customer/customer")
                    .header("ConsumerKey", CONSUMER)
                    .json(&body),
            )
            .await;
            assert_eq!(status, 200);
            assert_eq!(answered["customerId"].to_string(), held_id);
        }
        assert_eq!(double.deduplicated_creates(), 1);
        assert_eq!(double.replayed_creates(), 1);
        assert_eq!(double.customers().len(), 1);
    }

    #[tokio::test]
    async fn over_the_limits_answers_429_with_message_and_trace_id_and_no_retry_after() {
        let double = start();
        for _ in 0..5 {
            assert_eq!(get_json(&double, "/whoami").await.0, 200);
        }
        double.set_rate_limits(2, 1);
        double.enforce_rate_limits(true);
        assert_eq!(get_json(&double, "/whoami").await.0, 200);
        assert_eq!(get_json(&double, "/customer/customer-types").await.0, 200);
        let response = call(&double, Method::GET, "/whoami").send().await.unwrap();
        assert_eq!(response.status().as_u16(), 429);
        assert!(response.headers().get("retry-after").is_none());
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["Message"],
            "Too many requests - only 2 per minute allowed"
        );
        assert!(body["TraceId"].as_str().unwrap().starts_with("00-"));
        // Customer writes have their own allowance.
        assert_eq!(post(&double, required_body()).await.0, 200);
        let (status, body) = post(&double, required_body()).await;
        assert_eq!(status, 429);
        assert_eq!(
            body["Message"],
            "Too many requests - only 1 per minute allowed"
        );
        assert_eq!(double.customers().len(), 1);
        double.enforce_rate_limits(false);
        assert_eq!(get_json(&double, "/whoami").await.0, 200);

        double.fail(Op::Search, Fault::Status(429), 1);
        let response = call(&double, Method::POST, "/customer/customerLookup")
            .json(&json!({"firstName": "Ann"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 429);
        assert!(response.headers().get("retry-after").is_none());
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["Message"],
            "Too many requests - only 120 per minute allowed"
        );
    }

    #[tokio::test]
    async fn the_lookup_answers_one_customer_or_a_bare_string_404() {
        let double = start();
        let first = double.seed_customer(&SeedCustomer::numbered(1));
        double.seed_customer(&SeedCustomer::numbered(2));
        for query in [
            json!({"phone": "(555) 000-0001"}),
            json!({"emailAddress": "CUSTOMER1@example.com"}),
            json!({"firstName": "first1", "lastName": "LAST1"}),
            json!({"dateOfBirth": "1951-02-11"}),
        ] {
            let (status, found) =
                answer(call(&double, Method::POST, "/customer/customerLookup").json(&query)).await;
            assert_eq!(status, 200, "{query}");
            assert_eq!(found["customerId"].to_string(), first, "{query}");
        }
        let (status, body) = raw(call(&double, Method::POST, "/customer/customerLookup")
            .json(&json!({"firstName": "First1", "lastName": "Last2"})))
        .await;
        assert_eq!((status, body.as_str()), (404, "\"Customer not found\""));
        let (status, body) =
            answer(call(&double, Method::POST, "/customer/customerLookup").json(&json!({}))).await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"message": chosen::LOOKUP_NEEDS_A_FIELD, "propertyErrors": null})
        );
        assert_eq!(double.count(Op::Search), 6);
    }

    #[tokio::test]
    async fn both_lists_answer_bare_arrays() {
        let double = start();
        let ids: Vec<String> = (1..=5)
            .map(|n| double.seed_customer(&SeedCustomer::numbered(n)))
            .collect();
        let page = |query: &'static str| {
            let double = &double;
            async move {
                let (status, body) =
                    get_json(double, &format!("/customer/customers-paginated?{query}")).await;
                (status, body)
            }
        };
        let (status, body) = page("PageNumber=2&PageSize=2").await;
        assert_eq!(status, 200);
        let listed: Vec<String> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["customerId"].to_string())
            .collect();
        assert_eq!(listed, ids[2..4]);
        assert_eq!(
            page("pagenumber=3&pagesize=2")
                .await
                .1
                .as_array()
                .unwrap()
                .len(),
            1
        );
        for bad in [
            "PageNumber=1",
            "PageNumber=0&PageSize=2",
            "PageNumber=1&PageSize=101",
        ] {
            let (status, body) = page(bad).await;
            assert_eq!(status, 400, "{bad}");
            assert!(body["propertyErrors"].is_array(), "{bad}");
        }
        let (status, all) = get_json(&double, "/customer/customers").await;
        assert_eq!(status, 200);
        assert_eq!(all.as_array().unwrap().len(), 5);
        let (_, none) = get_json(
            &double,
            "/customer/customers?fromLastModifiedDateUTC=2999-01-01T00:00:00",
        )
        .await;
        assert_eq!(none, json!([]));
        let (status, _) = get_json(
            &double,
            "/customer/customers?fromLastModifiedDateUTC=yesterday",
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(double.count(Op::List), 8);
    }

    #[tokio::test]
    async fn seeds_are_held_as_dutchies_register_holds_them() {
        let double = start();
        let id = double.seed_customer(&SeedCustomer::numbered(7));
        let customer = double.customer(&id).unwrap();
        assert_eq!(customer["firstName"], "First7");
        assert_eq!(customer["address1"], STORE_ADDRESS1);
        assert_eq!(customer["city"], STORE_CITY);
        assert_eq!(customer["state"], STORE_STATE);
        assert_eq!(customer["postalCode"], STORE_POSTAL_CODE);
        assert_eq!(customer["status"], "Active");
        assert_eq!(customer["customerType"], FIRST_RETAIL_TYPE);
        assert_eq!(customer["dateOfBirth"], "1957-08-17T00:00:00");
        assert_eq!(customer["driversLicenseHash"], license_hash("D0000007"));
        assert!(customer.get("driversLicenseID").is_none());
        for field in READ_FIELDS {
            assert!(customer.get(field).is_some(), "{field}");
        }
        let unusable = double.seed_unusable();
        assert_eq!(
            double.customer(&unusable).unwrap()["firstName"],
            Value::Null
        );
        let shaped = double.seed(json!({"firstName": "Reg", "status": "Banned",
            "mergedIntoCustomerId": 1001, "creationDate": "2019-01-01T00:00:00"}));
        let shaped = double.customer(&shaped).unwrap();
        assert_eq!(shaped["status"], "Banned");
        assert_eq!(shaped["customerType"], FIRST_RETAIL_TYPE);
        assert_eq!(shaped["mergedIntoCustomerId"], 1001);
        assert_eq!(shaped["lastModifiedDateUTC"], "2019-01-01T00:00:00");
    }

    #[tokio::test]
    async fn the_store_config_has_the_default_address_and_no_customer_type() {
        let double: Box<dyn VendorDouble> = crate::start("dutchie").unwrap().unwrap();
        let config = double.store_config();
        assert_eq!(
            config["default_address"],
            json!({"address1": STORE_ADDRESS1, "city": STORE_CITY, "state": STORE_STATE,
                   "postalCode": STORE_POSTAL_CODE})
        );
        assert!(config.get("customer_type").is_none());
        let ask = |config: &Value| {
            reqwest::Client::new()
                .get(format!("{}/whoami", config["base_url"].as_str().unwrap()))
                .basic_auth(config["location_key"].as_str().unwrap(), None::<&str>)
                .send()
        };
        assert_eq!(ask(&config).await.unwrap().status().as_u16(), 200);
        let wrong = double.wrong_credentials_config();
        assert_eq!(ask(&wrong).await.unwrap().status().as_u16(), 401);
        let secrets = double.secrets();
        for config in [&config, &wrong] {
            assert!(secrets.contains(&config["location_key"].as_str().unwrap().to_owned()));
        }
    }

    #[tokio::test]
    async fn shared_faults_answer_in_dutchies_shapes() {
        let double = start();
        double.fail(Op::WhoAmI, Fault::Unauthorized, 1);
        assert_eq!(
            raw(call(&double, Method::GET, "/whoami")).await,
            (401, String::new())
        );
        double.fail(Op::Create, Fault::Invalid, 1);
        let (status, body) = post(&double, required_body()).await;
        assert_eq!(status, 400);
        assert_eq!(property_names(&body), ["FirstName"]);
        double.fail(Op::Update, Fault::Status(404), 1);
        let (status, body) = raw(call(&double, Method::POST, "/customer/customer")
            .json(&json!({"customerId": 1001, "notes": "x"})))
        .await;
        assert_eq!((status, body.as_str()), (404, "\"Customer not found\""));
        double.fail(
            Op::Create,
            Fault::AfterCommit(Box::new(Fault::Status(500))),
            1,
        );
        let (status, body) = post(&double, required_body()).await;
        assert_eq!(status, 500);
        assert_eq!(body["propertyErrors"], Value::Null);
        assert_eq!(double.customers().len(), 1);
    }

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
    fn guids_and_property_names() {
        assert!(is_guid(CONSUMER));
        assert!(is_guid("{0f8fad5b-d9cb-469f-a165-70867728950e}"));
        assert!(!is_guid("0f8fad5bd9cb469fa16570867728950e"));
        assert!(!is_guid("0f8fad5b-d9cb-469f-a165-70867728950g"));
        assert_eq!(property("postalCode"), "PostalCode");
        assert_eq!(property("driversLicenseID"), "DriversLicenseID");
        assert_eq!(property(""), "");
    }
}
