//! BLAZE, partner API (the "BLAZE Developer API" Swagger 2.0): the partner key in the
//! `partner_key` and `x-api-key` headers, the store (shop) key as the raw `Authorization`
//! value (no `Bearer`), camelCase JSON; customers are "members", ids 24-hex strings, errors in
//! the `{"error","message","status"}` envelope or the older `{"field","message","errorType"}`
//! shape. See docs/vendors/blaze.md for the facts and the "Test double" section of docs/vendors/blaze.md for what this
//! double chose where the facts are silent (all of it in [`unverified`]).
//!
//! Routes, relative to `{url}/api/v1/partner` ([`BlazeDouble::base_url`]):
//! `GET members?startDate=&endDate=&skip=&limit=` (list, epoch ms on `modified`, at most 7
//! days), `GET members/{id}`, `GET members/email/{email}` (one member),
//! `GET members/search/phone?phoneNumber=&start=&limit=`, `GET members/search?licenceNumber=`,
//! `GET members/search/dob?dob=`, `POST members` (create, 200), `PUT members/{id}` (update,
//! full replacement).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, FixedOffset, NaiveDate, Offset, TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::{DoubleOf, Op, SeedCustomer, State, Wire, digits, header, json_object, lock, text};

/// Where the adapter's `base_url` points: the double's URL plus this.
pub const BASE_PATH: &str = "/api/v1/partner";

/// The widest `startDate`..`endDate` window the list accepts (vendors.md, spec example).
pub const MAX_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// The message of every refused key, partner or store (vendors.md).
pub const BAD_KEY: &str = "Invalid PARTNER or Developer API Key";

/// A running BLAZE double.
pub type BlazeDouble = DoubleOf<Blaze>;

/// BLAZE, as its double speaks it.
pub struct Blaze;

/// Credentials the double accepts.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The integrator's partner key (`partner_key` and `x-api-key` headers).
    pub partner_key: String,
    /// The shop's key, sent as the raw `Authorization` value.
    pub store_key: String,
}

impl Default for Credentials {
    fn default() -> Self {
        // BLAZE keys are 32 hex characters.
        Self {
            partner_key: "8e1f4c2a9b7d4e3fa05c6d1b2e9f7a40".into(),
            store_key: "3c9a1e7b2d4f605e8a1b4c7d2e5f9a06".into(),
        }
    }
}

const WRONG_STORE_KEY: &str = "wrong-blaze-store-key-must-not-leak";

/// How field validation errors are written: BLAZE has two shapes and an adapter must read both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorShape {
    /// The older Swagger's `{"field","message","errorType"}` (400).
    #[default]
    Field,
    /// The current spec's `{"error":"Invalid argument","message","status":400}`.
    Envelope,
}

/// How BLAZE answers an id or e-mail it does not hold (a gap: the default is in
/// [`unverified`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// 404 in the envelope.
    NotFound,
    /// 400 `Invalid argument` in the envelope, as BLAZE refuses other bad arguments.
    InvalidArgument,
    /// 204 with no body (what a JAX-RS resource answering `null` gives).
    NoContent,
}

/// What BLAZE keeps besides its members: the shop's time zone and the test's switches.
pub struct Shop {
    utc_offset: Mutex<FixedOffset>,
    forbidden: Mutex<HashSet<Op>>,
    field_errors: Mutex<ErrorShape>,
    missing: Mutex<Missing>,
    sex_as_integer: Mutex<bool>,
}

impl Default for Shop {
    fn default() -> Self {
        Self {
            utc_offset: Mutex::new(unverified::default_offset()),
            forbidden: Mutex::new(HashSet::new()),
            field_errors: Mutex::new(ErrorShape::default()),
            missing: Mutex::new(Missing::default()),
            sex_as_integer: Mutex::new(false),
        }
    }
}

impl BlazeDouble {
    /// The adapter's `base_url` for this double.
    pub fn base_url(&self) -> String {
        format!("{}{BASE_PATH}", self.url())
    }

    /// Requests of kind `op` (every request with [`Op::Any`]) get BLAZE's 403, as when the
    /// store key lacks the permission; the keys are still checked first.
    pub fn lack_permission(&self, op: Op) {
        lock(&self.state().extra.forbidden).insert(op);
    }

    /// The store key has every permission again.
    pub fn restore_permissions(&self) {
        lock(&self.state().extra.forbidden).clear();
    }

    /// The shop's time zone as a fixed offset east of UTC, in minutes (-480 for Los Angeles in
    /// winter, 600 for Sydney). Members written from now on get their `dob` at this zone's
    /// midnight; those already held keep theirs, as at BLAZE when a shop moves zones. `false`
    /// (and nothing changed) for an offset of a day or more.
    pub fn set_shop_utc_offset(&self, minutes: i32) -> bool {
        match FixedOffset::east_opt(minutes.saturating_mul(60)) {
            Some(offset) => {
                *lock(&self.state().extra.utc_offset) = offset;
                true
            }
            None => false,
        }
    }

    /// The shop's time zone, in minutes east of UTC.
    pub fn shop_utc_offset(&self) -> i32 {
        lock(&self.state().extra.utc_offset).local_minus_utc() / 60
    }

    /// The `dob` BLAZE holds for a birthday (`YYYY-MM-DD`) at the shop's current zone: epoch
    /// ms of its local midnight.
    pub fn dob_for(&self, birthday: &str) -> Option<i64> {
        let offset = *lock(&self.state().extra.utc_offset);
        parse_date(birthday).and_then(|date| shop_midnight(date, offset))
    }

    /// Like [`VendorDouble::seed_customer`](crate::VendorDouble::seed_customer), but with the
    /// `dob` at the shop's current zone (the neutral seed cannot see the zone: see
    /// [`Wire::seed_fields`] below).
    pub fn seed_member(&self, customer: &SeedCustomer) -> String {
        let offset = *lock(&self.state().extra.utc_offset);
        self.seed(Value::Object(seed_fields_at(customer, offset)))
    }

    /// Seeds `customer` as [`BlazeDouble::seed_member`] does, with `sex` held as the integer
    /// live BLAZE data shows ([`unverified::SEX_CODES`]); its id.
    pub fn seed_integer_sex(&self, customer: &SeedCustomer) -> String {
        let offset = *lock(&self.state().extra.utc_offset);
        let mut fields = seed_fields_at(customer, offset);
        if let Some(code) = fields.get("sex").and_then(unverified::sex_code) {
            fields.insert("sex".into(), json!(code));
        }
        self.seed(Value::Object(fields))
    }

    /// Sets a member's `sex` to exactly this value (an integer, a string, null); whether the
    /// member exists.
    pub fn set_sex(&self, id: &str, sex: Value) -> bool {
        self.state()
            .table()
            .update::<Blaze>(id, |member| {
                member.insert("sex".into(), sex);
            })
            .is_some()
    }

    /// From now on creates and updates hold a `sex` sent as text as its integer code, as live
    /// BLAZE data returns it.
    pub fn store_sex_as_integer(&self, on: bool) {
        *lock(&self.state().extra.sex_as_integer) = on;
    }

    /// Sets a member's `modified` (epoch ms), to spread members over several list windows;
    /// whether the member exists.
    pub fn set_modified(&self, id: &str, epoch_ms: i64) -> bool {
        self.state()
            .table()
            .update::<Blaze>(id, |member| {
                member.insert("modified".into(), json!(epoch_ms));
            })
            .is_some()
    }

    /// The shape of field validation errors from now on.
    pub fn set_field_error_shape(&self, shape: ErrorShape) {
        *lock(&self.state().extra.field_errors) = shape;
    }

    /// How an unknown id or e-mail is answered from now on.
    pub fn set_missing_answer(&self, missing: Missing) {
        *lock(&self.state().extra.missing) = missing;
    }

    /// The member with this id, as BLAZE holds it.
    pub fn member(&self, id: &str) -> Option<Value> {
        self.state().table().get(id).cloned().map(Value::Object)
    }
}

/// Every behaviour vendors.md leaves open, decided here and nowhere else. Each item is the
/// double's choice, not BLAZE's documented behaviour; the "Test double" section of docs/vendors/blaze.md lists them.
pub mod unverified {
    use super::*;

    /// Unverified (chosen): BOTH partner-key headers must carry the partner key. vendors.md
    /// has `partner_key` from the older docs (proven live) and `x-api-key` from the current
    /// ones, and says to send both; requiring both is the strictest reading, so an adapter
    /// that drops either is caught here rather than at one BLAZE deployment.
    pub const PARTNER_KEY_HEADERS: [&str; 2] = ["partner_key", "x-api-key"];

    /// Unverified (chosen): the envelope's `error` is `Invalid argument` for a 400 (the spec's
    /// example) and the HTTP reason phrase for any other status.
    pub fn error_label(status: u16) -> &'static str {
        match status {
            400 => "Invalid argument",
            _ => StatusCode::from_u16(status)
                .ok()
                .and_then(|code| code.canonical_reason())
                .unwrap_or("Error"),
        }
    }

    /// Unverified (chosen): the 403 message (vendors.md gives the status only).
    pub const FORBIDDEN: &str = "Access denied: the store key does not have this permission";

    /// Unverified (chosen): the 429 message; the limit is the partner contract's.
    pub const RATE_LIMITED: &str =
        "Rate limit exceeded: 10000 requests per 5 minutes for this company";

    /// Unverified (chosen): the older shape's `errorType`, the envelope's 400 label.
    pub const FIELD_ERROR_TYPE: &str = "Invalid argument";

    /// Unverified (chosen): required on create and on every update (a full replacement), with
    /// their messages: the names only; everything else is optional.
    pub const REQUIRED: [(&str, &str); 2] = [
        ("firstName", "First name is required."),
        ("lastName", "Last name is required."),
    ];

    /// Unverified (chosen): an unknown (well-formed) id or an e-mail nobody has is a 404 in
    /// the envelope; `BlazeDouble::set_missing_answer` switches to the other plausible
    /// answers so an adapter can be shown to survive them.
    impl Default for Missing {
        fn default() -> Self {
            Self::NotFound
        }
    }

    pub fn missing_answer(missing: Missing) -> HttpResponse {
        match missing {
            Missing::NotFound => envelope(404, "Member not found"),
            Missing::InvalidArgument => envelope(400, "Member does not exist"),
            Missing::NoContent => HttpResponse::NoContent().finish(),
        }
    }

    /// Unverified (chosen): an id that is not 24 hex digits (not a MongoDB ObjectId) is a 400
    /// `Invalid argument`, never a look-up.
    pub const BAD_ID: &str = "Invalid member id";

    /// Unverified (chosen): `limit` when absent or below 1, and the largest one served; a
    /// larger `limit` is cut to it and the answer's `limit` says so, so a client must page by
    /// the answer, not by what it asked.
    pub const DEFAULT_LIMIT: usize = 100;
    pub const MAX_LIMIT: usize = 500;

    pub fn page_limit(asked: Option<i64>) -> usize {
        match asked {
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
            _ => DEFAULT_LIMIT,
        }
    }

    /// Unverified (chosen): `endDate` is required like `startDate` (the worst case for a
    /// client that leaves it out).
    pub const END_DATE_REQUIRED: &str = "endDate is required";

    /// Unverified (chosen): the window includes both ends, so a member modified exactly at a
    /// boundary is listed by both windows that share it (a client must de-duplicate by id).
    pub fn in_window(modified: i64, start: i64, end: i64) -> bool {
        start <= modified && modified <= end
    }

    /// Unverified (chosen): the list is ordered by `modified`, oldest first, ties in creation
    /// order; an update during paging moves a member to the end of its window.
    pub fn list_order(member: &Map<String, Value>) -> i64 {
        modified(member).unwrap_or_default()
    }

    /// Unverified (chosen): phones compare as the ten-digit US number: punctuation dropped, a
    /// leading country code 1 dropped, so `(555) 123-4567`, `5551234567` and `+15551234567`
    /// are one number; `phoneNumber` is matched against `primaryPhone` and `cpn`, whole (no
    /// partial match). A `phoneNumber` that is no such number finds nobody.
    pub fn national_phone(text: &str) -> Option<String> {
        let all = digits(text);
        let national = match all.strip_prefix('1') {
            Some(rest) if all.len() == 11 => rest.to_owned(),
            _ => all,
        };
        (national.len() == 10).then_some(national)
    }

    /// Unverified (chosen): a written `primaryPhone` is held in the display form and `cpn`
    /// is derived from it (E.164, +1); a `cpn` sent by a client is ignored.
    pub fn display_phone(national: &str) -> String {
        format!(
            "({}) {}-{}",
            national.get(..3).unwrap_or_default(),
            national.get(3..6).unwrap_or_default(),
            national.get(6..).unwrap_or_default()
        )
    }

    /// Unverified (chosen): e-mails and licences match whole, ignoring case and outer blanks;
    /// `members/email/{email}` answers the oldest match when several members share one.
    pub fn folded(text: &str) -> String {
        text.trim().to_lowercase()
    }

    /// Unverified (chosen): `dob` in `search/dob` is epoch ms only (a `YYYY-MM-DD` is a 400),
    /// and finds the members whose `dob` falls on the same calendar day in the shop's zone.
    pub const DOB_NOT_A_NUMBER: &str = "dob must be a number (epoch milliseconds)";

    /// Unverified (chosen): on a write, a `dob` (epoch ms) wins over `localDob`: the birthday
    /// is the shop-local day of `dob`, `dob` is moved to that day's shop midnight and
    /// `localDob` rewritten from it; `localDob` counts only when `dob` is absent or null. The
    /// worst case: a client sending UTC midnight gets the day before in any zone west of UTC,
    /// and one changing `localDob` but sending the old `dob` back changes nothing.
    pub fn birthday(
        dob: Option<i64>,
        local: Option<NaiveDate>,
        offset: FixedOffset,
    ) -> Option<NaiveDate> {
        dob.and_then(|ms| shop_date(ms, offset)).or(local)
    }

    /// Unverified (chosen): the sex codes of live data, as the enum's declaration order
    /// (`MALE`, `FEMALE`, `OTHER`). Writes accept a code or the name.
    pub const SEX_CODES: [(i64, &str); 3] = [(0, "MALE"), (1, "FEMALE"), (2, "OTHER")];

    pub fn sex_code(sex: &Value) -> Option<i64> {
        let name = sex.as_str()?;
        SEX_CODES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(code, _)| *code)
    }

    pub fn sex_from_gender(gender: &str) -> &'static str {
        match gender {
            "male" => "MALE",
            "female" => "FEMALE",
            _ => "OTHER",
        }
    }

    /// Unverified (chosen): the statuses and consumer types a write may set (vendors.md's,
    /// plus the consumer types BLAZE's names suggest), compared exactly (a Java enum).
    pub const STATUSES: [&str; 3] = ["Active", "Pending", "Inactive"];
    pub const CONSUMER_TYPES: [&str; 4] =
        ["AdultUse", "MedicinalState", "MedicinalThirdParty", "Other"];

    /// Unverified (chosen): what a member holds for every field a create leaves out, and what
    /// an update (a full replacement) resets a left-out field to: text `""` (as BLAZE's
    /// `email` often is), dates, `sex`, `address` and `importId` null, lists empty, `status`
    /// `Active`, `consumerType` `AdultUse`, `medical` false. A null sent for a field with a
    /// non-null default takes the default.
    pub fn blank_member() -> Map<String, Value> {
        let blank = json!({
            "firstName": "",
            "lastName": "",
            "middleName": "",
            "email": "",
            "primaryPhone": "",
            "cpn": "",
            "dob": null,
            "localDob": null,
            "birthdate": null,
            "sex": null,
            "status": "Active",
            "consumerType": "AdultUse",
            "medical": false,
            "notes": [],
            "identifications": [],
            "address": null,
            "importId": null,
        });
        blank.as_object().cloned().unwrap_or_default()
    }

    /// Unverified (chosen): a note is `{id, message, writerId, writerName, created,
    /// modified}`; an identification `{id, licenseNumber, state, type, localExpirationDate}`.
    /// Missing ids and stamps are added on write; those sent are kept, so a client must send
    /// notes back whole or lose them.
    pub fn stamp_note(note: &mut Map<String, Value>, now: i64) {
        note.entry("id").or_insert_with(|| json!(object_id()));
        note.entry("writerId").or_insert(Value::Null);
        note.entry("writerName").or_insert(Value::Null);
        note.entry("created").or_insert(json!(now));
        note.entry("modified").or_insert(json!(now));
    }

    pub fn stamp_identification(identification: &mut Map<String, Value>) {
        identification
            .entry("id")
            .or_insert_with(|| json!(object_id()));
        for field in ["licenseNumber", "state", "type", "localExpirationDate"] {
            identification.entry(field).or_insert(Value::Null);
        }
    }

    /// Unverified (chosen): a licence seeded from a neutral customer is a California driver's
    /// licence (the default shop is in Los Angeles).
    pub fn seed_identification(license: &str) -> Value {
        json!({"licenseNumber": license, "state": "CA", "type": "Drivers", "localExpirationDate": null})
    }

    /// Unverified (chosen): the shop is in Los Angeles, as the fixed offset of its winter time
    /// (UTC-8): local midnight is 08:00 UTC, the same calendar day.
    pub fn default_offset() -> FixedOffset {
        FixedOffset::west_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
    }
}

impl Wire for Blaze {
    const NAME: &'static str = "blaze";
    const ID_FIELD: &'static str = "id";
    type Credentials = Credentials;
    type Extra = Shop;

    fn routes(cfg: &mut web::ServiceConfig) {
        // The fixed paths go first: `/members/{id}` would take `search` as an id.
        cfg.service(
            web::scope(BASE_PATH)
                .service(web::resource("/members/search/phone").route(web::get().to(by_phone)))
                .service(web::resource("/members/search/dob").route(web::get().to(by_dob)))
                .service(web::resource("/members/search").route(web::get().to(by_licence)))
                .service(web::resource("/members/email/{email}").route(web::get().to(by_email)))
                .service(
                    web::resource("/members/{id}")
                        .route(web::get().to(get))
                        .route(web::put().to(update)),
                )
                .service(
                    web::resource("/members")
                        .route(web::get().to(list))
                        .route(web::post().to(create)),
                ),
        );
    }

    fn authorize(state: &State<Self>, op: Op, request: &HttpRequest) -> Result<(), HttpResponse> {
        let c = &state.credentials;
        let partner = unverified::PARTNER_KEY_HEADERS
            .iter()
            .all(|name| header(request, name) == c.partner_key);
        // The raw key: `Bearer <key>` is another value, so it is refused like a wrong key.
        if !partner || header(request, "authorization") != c.store_key {
            return Err(envelope(401, BAD_KEY));
        }
        let forbidden = lock(&state.extra.forbidden);
        if forbidden.contains(&op) || forbidden.contains(&Op::Any) {
            return Err(envelope(403, unverified::FORBIDDEN));
        }
        Ok(())
    }

    fn error_body(status: u16, reason: &str) -> Value {
        // The kit's reasons are other vendors' words; these statuses have BLAZE's own.
        let message = match status {
            401 => BAD_KEY,
            403 => unverified::FORBIDDEN,
            429 => unverified::RATE_LIMITED,
            _ => reason,
        };
        json!({"error": unverified::error_label(status), "message": message, "status": status})
    }

    fn invalid() -> (u16, Value) {
        (
            400,
            field_body(ErrorShape::Field, "firstName", "First name is required."),
        )
    }

    fn store_config(url: &str, c: &Credentials) -> Value {
        json!({
            "partner_key": c.partner_key,
            "store_key": c.store_key,
            "base_url": format!("{url}{BASE_PATH}"),
        })
    }

    fn wrong_credentials_config(url: &str, c: &Credentials) -> Value {
        let mut config = Self::store_config(url, c);
        if let Some(object) = config.as_object_mut() {
            object.insert("store_key".into(), json!(WRONG_STORE_KEY));
        }
        config
    }

    fn secrets(c: &Credentials) -> Vec<String> {
        vec![
            c.partner_key.clone(),
            c.store_key.clone(),
            WRONG_STORE_KEY.to_owned(),
        ]
    }

    fn id(seq: u64) -> Value {
        // A MongoDB ObjectId's shape: a 4-byte timestamp, then a counter.
        json!(format!("{:08x}{seq:016x}", 0x6502_1f00_u32))
    }

    fn new_record(fields: &Map<String, Value>) -> Map<String, Value> {
        let mut member = unverified::blank_member();
        for (key, value) in fields {
            member.insert(key.clone(), value.clone());
        }
        let now = now_ms();
        member.entry("created").or_insert(json!(now));
        member.entry("modified").or_insert(json!(now));
        fill_birthday(&mut member, unverified::default_offset());
        let derived_cpn = text(&member, "primaryPhone")
            .and_then(unverified::national_phone)
            .map(|national| format!("+1{national}"));
        if text(&member, "cpn").is_none()
            && let Some(cpn) = derived_cpn
        {
            member.insert("cpn".into(), json!(cpn));
        }
        stamp_lists(&mut member, now);
        member
    }

    /// Kit limitation: the neutral seed cannot see the double's state, so its `dob` is at the
    /// DEFAULT zone's midnight whatever `set_shop_utc_offset` says; `seed_member` uses the
    /// current zone.
    fn seed_fields(customer: &SeedCustomer) -> Map<String, Value> {
        seed_fields_at(customer, unverified::default_offset())
    }

    fn unusable_fields() -> Map<String, Value> {
        let json = json!({"firstName": "", "lastName": "", "email": "", "primaryPhone": ""});
        json.as_object().cloned().unwrap_or_default()
    }

    fn stamp_changed(record: &mut Map<String, Value>, at: chrono::DateTime<chrono::Utc>) {
        record.insert("modified".into(), json!(at.timestamp_millis()));
    }

    fn index_keys(member: &Map<String, Value>) -> Vec<String> {
        let mut keys = Vec::new();
        for field in ["primaryPhone", "cpn"] {
            if let Some(national) = text(member, field).and_then(unverified::national_phone) {
                keys.push(format!("phone:{national}"));
            }
        }
        if let Some(email) = text(member, "email") {
            keys.push(format!("email:{}", unverified::folded(email)));
        }
        if let Some(Value::Array(identifications)) = member.get("identifications") {
            for licence in identifications
                .iter()
                .filter_map(|i| i.as_object().and_then(|i| text(i, "licenseNumber")))
            {
                keys.push(format!("licence:{}", unverified::folded(licence)));
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }
}

fn seed_fields_at(c: &SeedCustomer, offset: FixedOffset) -> Map<String, Value> {
    let date = c.birthday.as_deref().and_then(parse_date);
    let phone = c.phone.as_deref().and_then(unverified::national_phone);
    let json = json!({
        "firstName": c.first_name,
        "lastName": c.last_name,
        "email": c.email.clone().unwrap_or_default(),
        "primaryPhone": phone.as_deref().map(unverified::display_phone).unwrap_or_default(),
        "cpn": phone.map(|national| format!("+1{national}")).unwrap_or_default(),
        "dob": date.and_then(|d| shop_midnight(d, offset)),
        "localDob": date.map(format_date),
        "sex": c.gender.as_deref().map(unverified::sex_from_gender),
        "notes": c.notes.iter().map(|n| json!({"message": n})).collect::<Vec<_>>(),
        "identifications": c
            .drivers_license
            .iter()
            .map(|l| unverified::seed_identification(l))
            .collect::<Vec<_>>(),
    });
    json.as_object().cloned().unwrap_or_default()
}

// ---- time

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Epoch ms of `date`'s midnight in the shop's zone.
fn shop_midnight(date: NaiveDate, offset: FixedOffset) -> Option<i64> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    offset
        .from_local_datetime(&midnight)
        .single()
        .map(|at| at.timestamp_millis())
}

/// The shop-local calendar day of an instant.
fn shop_date(epoch_ms: i64, offset: FixedOffset) -> Option<NaiveDate> {
    DateTime::from_timestamp_millis(epoch_ms).map(|at| at.with_timezone(&offset).date_naive())
}

fn modified(member: &Map<String, Value>) -> Option<i64> {
    member.get("modified").and_then(Value::as_i64)
}

/// A seeded member given only one of `dob` and `localDob` gets the other.
fn fill_birthday(member: &mut Map<String, Value>, offset: FixedOffset) {
    let dob = member.get("dob").and_then(Value::as_i64);
    let local = text(member, "localDob").and_then(parse_date);
    match (dob, local) {
        (None, Some(date)) => {
            member.insert("dob".into(), json!(shop_midnight(date, offset)));
        }
        (Some(ms), None) => {
            member.insert(
                "localDob".into(),
                json!(shop_date(ms, offset).map(format_date)),
            );
        }
        _ => {}
    }
}

fn stamp_lists(member: &mut Map<String, Value>, now: i64) {
    if let Some(Value::Array(notes)) = member.get_mut("notes") {
        for note in notes.iter_mut().filter_map(Value::as_object_mut) {
            unverified::stamp_note(note, now);
        }
    }
    if let Some(Value::Array(identifications)) = member.get_mut("identifications") {
        for identification in identifications.iter_mut().filter_map(Value::as_object_mut) {
            unverified::stamp_identification(identification);
        }
    }
}

fn object_id() -> String {
    format!("{:024x}", rand::random::<u128>() >> 32)
}

fn is_object_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

// ---- answers

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST)
}

/// An answer in the spec's `{"error","message","status"}` envelope.
fn envelope(status: u16, message: &str) -> HttpResponse {
    HttpResponse::build(status_code(status)).json(Blaze::error_body(status, message))
}

fn field_body(shape: ErrorShape, field: &str, message: &str) -> Value {
    match shape {
        ErrorShape::Field => {
            json!({"field": field, "message": message, "errorType": unverified::FIELD_ERROR_TYPE})
        }
        ErrorShape::Envelope => Blaze::error_body(400, message),
    }
}

fn search_result(values: Vec<Value>, skip: usize, limit: usize, total: usize) -> HttpResponse {
    HttpResponse::Ok().json(json!({"values": values, "skip": skip, "limit": limit, "total": total}))
}

fn missing(state: &State<Blaze>) -> HttpResponse {
    unverified::missing_answer(*lock(&state.extra.missing))
}

// ---- requests

type Data = web::Data<State<Blaze>>;

fn query(request: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

fn param<'a>(query: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn number(query: &HashMap<String, String>, name: &str) -> Result<Option<i64>, HttpResponse> {
    match param(query, name) {
        None => Ok(None),
        Some(value) => value
            .parse::<i64>()
            .map(Some)
            .map_err(|_| envelope(400, &format!("{name} must be a number"))),
    }
}

/// `skip` (or the phone search's `start`) and `limit`.
fn paging(query: &HashMap<String, String>, skip: &str) -> Result<(usize, usize), HttpResponse> {
    let from = number(query, skip)?.unwrap_or_default();
    let from = usize::try_from(from)
        .map_err(|_| envelope(400, &format!("{skip} must not be negative")))?;
    Ok((from, unverified::page_limit(number(query, "limit")?)))
}

/// A path segment with its `%XX` escapes decoded (the router leaves some, such as `%2B`).
fn percent_decode(segment: &str) -> String {
    let mut out = Vec::with_capacity(segment.len());
    let mut rest = segment.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        let escaped = (first == b'%')
            .then(|| tail.get(..2))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                rest = tail.get(2..).unwrap_or_default();
            }
            None => {
                out.push(first);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn list(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::List, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let query = query(&request);
    let window = window(&query).and_then(|w| paging(&query, "skip").map(|p| (w, p)));
    let ((start, end), (skip, limit)) = match window {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let mut members: Vec<Map<String, Value>> = state
        .table()
        .records()
        .filter(|m| modified(m).is_some_and(|t| unverified::in_window(t, start, end)))
        .cloned()
        .collect();
    members.sort_by_key(unverified::list_order);
    let total = members.len();
    let values = members
        .into_iter()
        .skip(skip)
        .take(limit)
        .map(Value::Object)
        .collect();
    state
        .finish(after, search_result(values, skip, limit, total))
        .await
}

/// The list's `startDate`..`endDate`, checked as BLAZE does.
fn window(query: &HashMap<String, String>) -> Result<(i64, i64), HttpResponse> {
    let start =
        number(query, "startDate")?.ok_or_else(|| envelope(400, "startDate is required"))?;
    let end =
        number(query, "endDate")?.ok_or_else(|| envelope(400, unverified::END_DATE_REQUIRED))?;
    if end < start {
        return Err(envelope(400, "endDate must not be before startDate"));
    }
    if end.saturating_sub(start) > MAX_WINDOW_MS {
        return Err(envelope(400, "Date range cannot exceed 7 days"));
    }
    Ok((start, end))
}

async fn get(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::Get, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let id = request.match_info().get("id").unwrap_or_default();
    if !is_object_id(id) {
        return envelope(400, unverified::BAD_ID);
    }
    let found = state.table().get(id).cloned();
    let normal = match found {
        Some(member) => HttpResponse::Ok().json(Value::Object(member)),
        None => missing(&state),
    };
    state.finish(after, normal).await
}

async fn by_email(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::Search, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let email = percent_decode(request.match_info().get("email").unwrap_or_default());
    let key = format!("email:{}", unverified::folded(&email));
    let found = state.table().indexed(&key).first().map(|m| (*m).clone());
    let normal = match found {
        Some(member) => HttpResponse::Ok().json(Value::Object(member)),
        None => missing(&state),
    };
    state.finish(after, normal).await
}

/// Members under one index key, a page of them in the search's envelope.
async fn search_indexed(
    state: &State<Blaze>,
    request: &HttpRequest,
    parameter: &str,
    key: impl Fn(&str) -> Option<String>,
) -> HttpResponse {
    let after = match state.enter(Op::Search, request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let query = query(request);
    let Some(wanted) = param(&query, parameter) else {
        return envelope(400, &format!("{parameter} is required"));
    };
    let (start, limit) = match paging(&query, "start") {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let found: Vec<Value> = key(wanted)
        .map(|key| {
            state
                .table()
                .indexed(&key)
                .into_iter()
                .cloned()
                .map(Value::Object)
                .collect()
        })
        .unwrap_or_default();
    let total = found.len();
    let page = found.into_iter().skip(start).take(limit).collect();
    state
        .finish(after, search_result(page, start, limit, total))
        .await
}

async fn by_phone(state: Data, request: HttpRequest) -> HttpResponse {
    search_indexed(&state, &request, "phoneNumber", |wanted| {
        unverified::national_phone(wanted).map(|national| format!("phone:{national}"))
    })
    .await
}

async fn by_licence(state: Data, request: HttpRequest) -> HttpResponse {
    search_indexed(&state, &request, "licenceNumber", |wanted| {
        Some(format!("licence:{}", unverified::folded(wanted)))
    })
    .await
}

async fn by_dob(state: Data, request: HttpRequest) -> HttpResponse {
    let after = match state.enter(Op::Search, &request, &[]).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let query = query(&request);
    let Some(wanted) = param(&query, "dob") else {
        return envelope(400, "dob is required");
    };
    let Ok(wanted) = wanted.parse::<i64>() else {
        return envelope(400, unverified::DOB_NOT_A_NUMBER);
    };
    let (start, limit) = match paging(&query, "start") {
        Ok(paging) => paging,
        Err(response) => return response,
    };
    let offset = *lock(&state.extra.utc_offset);
    let day = shop_date(wanted, offset);
    let found: Vec<Value> = state
        .table()
        .records()
        .filter(|m| {
            day.is_some()
                && m.get("dob")
                    .and_then(Value::as_i64)
                    .and_then(|dob| shop_date(dob, offset))
                    == day
        })
        .cloned()
        .map(Value::Object)
        .collect();
    let total = found.len();
    let page = found.into_iter().skip(start).take(limit).collect();
    state
        .finish(after, search_result(page, start, limit, total))
        .await
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, HttpResponse> {
    json_object(body).ok_or_else(|| envelope(400, "Request body must be a JSON object"))
}

/// The fields a client may send as text (or null).
const TEXT_FIELDS: [&str; 10] = [
    "firstName",
    "lastName",
    "middleName",
    "email",
    "primaryPhone",
    "cpn",
    "localDob",
    "status",
    "consumerType",
    "importId",
];

/// BLAZE's checks of a member sent on create or update, as its field error.
fn check(member: &Map<String, Value>, shape: ErrorShape) -> Result<(), HttpResponse> {
    let refuse = |field: &str, message: &str| -> Result<(), HttpResponse> {
        Err(HttpResponse::BadRequest().json(field_body(shape, field, message)))
    };
    for field in TEXT_FIELDS {
        if member
            .get(field)
            .is_some_and(|v| !(v.is_string() || v.is_null()))
        {
            return refuse(field, &format!("{field} must be a string."));
        }
    }
    for (field, message) in unverified::REQUIRED {
        if text(member, field).is_none() {
            return refuse(field, message);
        }
    }
    if let Some(email) = text(member, "email")
        && !email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty() && domain.contains('.') && !domain.contains('@')
        })
    {
        return refuse("email", "Invalid email address.");
    }
    if let Some(phone) = text(member, "primaryPhone")
        && unverified::national_phone(phone).is_none()
    {
        return refuse("primaryPhone", "Invalid phone number.");
    }
    match member.get("dob") {
        None | Some(Value::Null) => {}
        Some(dob) => match dob.as_i64() {
            None => return refuse("dob", "dob must be a number (epoch milliseconds)."),
            Some(ms) if ms > now_ms() => return refuse("dob", "dob cannot be in the future."),
            Some(_) => {}
        },
    }
    if let Some(local) = text(member, "localDob")
        && parse_date(local).is_none()
    {
        return refuse("localDob", "localDob must be yyyy-MM-dd.");
    }
    if let Some(sex) = member.get("sex").filter(|s| !s.is_null()) {
        let known = unverified::SEX_CODES
            .iter()
            .any(|(code, name)| sex.as_i64() == Some(*code) || sex.as_str() == Some(name));
        if !known {
            return refuse("sex", "Invalid sex.");
        }
    }
    if let Some(status) = text(member, "status")
        && !unverified::STATUSES.contains(&status)
    {
        return refuse("status", "Invalid status.");
    }
    if let Some(kind) = text(member, "consumerType")
        && !unverified::CONSUMER_TYPES.contains(&kind)
    {
        return refuse("consumerType", "Invalid consumer type.");
    }
    if member
        .get("medical")
        .is_some_and(|m| !(m.is_boolean() || m.is_null()))
    {
        return refuse("medical", "medical must be true or false.");
    }
    if !list_of(member, "notes", |note| {
        note.get("message").is_some_and(Value::is_string)
    }) {
        return refuse("notes", "Each note needs a message.");
    }
    if !list_of(member, "identifications", |id| {
        id.get("licenseNumber")
            .is_none_or(|l| l.is_string() || l.is_null())
            && text(id, "localExpirationDate").is_none_or(|d| parse_date(d).is_some())
    }) {
        return refuse("identifications", "Invalid identification.");
    }
    if member
        .get("address")
        .is_some_and(|a| !(a.is_object() || a.is_null()))
    {
        return refuse("address", "address must be an object.");
    }
    Ok(())
}

/// Whether `field` is absent, null, or a list of objects each passing `valid`.
fn list_of(
    member: &Map<String, Value>,
    field: &str,
    valid: impl Fn(&Map<String, Value>) -> bool,
) -> bool {
    match member.get(field) {
        None | Some(Value::Null) => true,
        Some(Value::Array(items)) => items
            .iter()
            .all(|item| item.as_object().is_some_and(&valid)),
        Some(_) => false,
    }
}

/// The fields BLAZE sets itself, whatever a client sends.
const SERVER_MANAGED: [&str; 4] = ["id", "created", "modified", "cpn"];

/// A member as BLAZE holds what a client sent (checked): every field not sent is blank, the
/// birthday, phone, sex and lists normalised; without id and timestamps.
fn member_from(sent: &Map<String, Value>, shop: &Shop) -> Map<String, Value> {
    let offset = *lock(&shop.utc_offset);
    let mut member = unverified::blank_member();
    for (key, value) in sent {
        if SERVER_MANAGED.contains(&key.as_str())
            || (value.is_null() && member.get(key).is_some_and(|v| !v.is_null()))
        {
            continue;
        }
        member.insert(key.clone(), value.clone());
    }
    let national = text(&member, "primaryPhone").and_then(unverified::national_phone);
    member.insert(
        "primaryPhone".into(),
        json!(
            national
                .as_deref()
                .map(unverified::display_phone)
                .unwrap_or_default()
        ),
    );
    member.insert(
        "cpn".into(),
        json!(national.map(|n| format!("+1{n}")).unwrap_or_default()),
    );
    let birthday = unverified::birthday(
        member.get("dob").and_then(Value::as_i64),
        text(&member, "localDob").and_then(parse_date),
        offset,
    );
    member.insert(
        "dob".into(),
        json!(birthday.and_then(|d| shop_midnight(d, offset))),
    );
    member.insert("localDob".into(), json!(birthday.map(format_date)));
    if *lock(&shop.sex_as_integer)
        && let Some(code) = member.get("sex").and_then(unverified::sex_code)
    {
        member.insert("sex".into(), json!(code));
    }
    stamp_lists(&mut member, now_ms());
    member
}

async fn create(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Create, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let sent = match parse_object(&body) {
        Ok(sent) => sent,
        Err(response) => return response,
    };
    let shape = *lock(&state.extra.field_errors);
    if let Err(response) = check(&sent, shape) {
        return response;
    }
    let created = state.insert(&member_from(&sent, &state.extra));
    // 200, not 201 (vendors.md).
    state
        .finish(after, HttpResponse::Ok().json(Value::Object(created)))
        .await
}

async fn update(state: Data, request: HttpRequest, body: Bytes) -> HttpResponse {
    let after = match state.enter(Op::Update, &request, &body).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let id = request.match_info().get("id").unwrap_or_default();
    if !is_object_id(id) {
        return envelope(400, unverified::BAD_ID);
    }
    let sent = match parse_object(&body) {
        Ok(sent) => sent,
        Err(response) => return response,
    };
    let shape = *lock(&state.extra.field_errors);
    if let Err(response) = check(&sent, shape) {
        return response;
    }
    let mut replacement = member_from(&sent, &state.extra);
    // The whole member is replaced: what was held and not sent is gone.
    let updated = state.table().update::<Blaze>(id, |member| {
        replacement.insert("id".into(), json!(id));
        let created = member.get("created").cloned().unwrap_or(Value::Null);
        replacement.insert("created".into(), created);
        replacement.insert("modified".into(), json!(now_ms()));
        *member = replacement;
    });
    let normal = match updated {
        Some(member) => HttpResponse::Ok().json(Value::Object(member)),
        None => missing(&state),
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

    const DAY_MS: i64 = 24 * 3600 * 1000;

    /// A BLAZE client as the facts describe it: both partner headers, the raw store key.
    struct Client {
        http: reqwest::Client,
        base: String,
        headers: Vec<(&'static str, String)>,
    }

    impl Client {
        fn new(double: &BlazeDouble) -> Self {
            let c = double.credentials();
            Self::with(
                double,
                vec![
                    ("partner_key", c.partner_key.clone()),
                    ("x-api-key", c.partner_key.clone()),
                    ("authorization", c.store_key.clone()),
                ],
            )
        }

        fn with(double: &BlazeDouble, headers: Vec<(&'static str, String)>) -> Self {
            Self {
                http: reqwest::Client::new(),
                base: double.base_url(),
                headers,
            }
        }

        async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
            let mut request = self.http.request(method, format!("{}/{path}", self.base));
            for (name, value) in &self.headers {
                request = request.header(*name, value);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }

        async fn get(&self, path: &str) -> (u16, Value) {
            self.send(Method::GET, path, None).await
        }

        async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
            self.send(Method::POST, path, Some(body)).await
        }

        async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
            self.send(Method::PUT, path, Some(body)).await
        }
    }

    fn ids(answer: &Value) -> Vec<String> {
        answer["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn bad_key() -> Value {
        json!({"error": "Unauthorized", "message": BAD_KEY, "status": 401})
    }

    #[tokio::test]
    async fn both_partner_headers_and_the_raw_store_key_are_required() {
        let double = BlazeDouble::start().unwrap();
        let c = double.credentials().clone();
        let (status, body) = Client::new(&double)
            .get("members?startDate=0&endDate=1")
            .await;
        assert_eq!(status, 200, "{body}");

        let refused = [
            // Only the older header, only the current one.
            vec![
                ("partner_key", c.partner_key.clone()),
                ("authorization", c.store_key.clone()),
            ],
            vec![
                ("x-api-key", c.partner_key.clone()),
                ("authorization", c.store_key.clone()),
            ],
            // A wrong partner key in one of them.
            vec![
                ("partner_key", c.partner_key.clone()),
                ("x-api-key", "wrong".into()),
                ("authorization", c.store_key.clone()),
            ],
            // No store key, a wrong one, and the right one as a Bearer token.
            vec![
                ("partner_key", c.partner_key.clone()),
                ("x-api-key", c.partner_key.clone()),
            ],
            vec![
                ("partner_key", c.partner_key.clone()),
                ("x-api-key", c.partner_key.clone()),
                ("authorization", "wrong".into()),
            ],
            vec![
                ("partner_key", c.partner_key.clone()),
                ("x-api-key", c.partner_key.clone()),
                ("authorization", format!("Bearer {}", c.store_key)),
            ],
        ];
        for headers in refused {
            let (status, body) = Client::with(&double, headers.clone())
                .get("members?startDate=0&endDate=1")
                .await;
            assert_eq!((status, body), (401, bad_key()), "{headers:?}");
        }
        assert_eq!(double.count(Op::List), 7);
    }

    #[tokio::test]
    async fn the_store_config_reaches_the_double_and_the_wrong_one_is_refused() {
        let double = BlazeDouble::start().unwrap();
        let config = VendorDouble::store_config(&double);
        let keys: Vec<&str> = config
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["base_url", "partner_key", "store_key"]);
        assert_eq!(config["base_url"], json!(double.base_url()));

        let configured = |config: &Value| {
            let partner = config["partner_key"].as_str().unwrap().to_owned();
            Client::with(
                &double,
                vec![
                    ("partner_key", partner.clone()),
                    ("x-api-key", partner),
                    (
                        "authorization",
                        config["store_key"].as_str().unwrap().to_owned(),
                    ),
                ],
            )
        };
        let (status, _) = configured(&config)
            .get("members?startDate=0&endDate=1")
            .await;
        assert_eq!(status, 200);
        let wrong = double.wrong_credentials_config();
        let (status, body) = configured(&wrong)
            .get("members?startDate=0&endDate=1")
            .await;
        assert_eq!((status, body), (401, bad_key()));

        let secrets = double.secrets();
        for key in ["partner_key", "store_key"] {
            for config in [&config, &wrong] {
                assert!(secrets.contains(&config[key].as_str().unwrap().to_owned()));
            }
        }
        assert!(crate::start("blaze").is_some());
    }

    #[tokio::test]
    async fn a_store_key_without_the_permission_gets_403() {
        let double = BlazeDouble::start().unwrap();
        let client = Client::new(&double);
        double.lack_permission(Op::Create);
        let (status, body) = client
            .post("members", &json!({"firstName": "Ana", "lastName": "Diaz"}))
            .await;
        assert_eq!(status, 403);
        assert_eq!(body["error"], "Forbidden");
        assert_eq!(body["status"], 403);
        assert_eq!(body["message"], unverified::FORBIDDEN);
        assert!(double.customers().is_empty());
        // Reads still allowed, until every route is denied.
        let (status, _) = client.get("members?startDate=0&endDate=1").await;
        assert_eq!(status, 200);
        double.lack_permission(Op::Any);
        let (status, _) = client.get("members?startDate=0&endDate=1").await;
        assert_eq!(status, 403);
        // Keys are checked before permissions.
        let (status, _) = Client::with(&double, vec![])
            .get("members?startDate=0&endDate=1")
            .await;
        assert_eq!(status, 401);
        double.restore_permissions();
        let (status, _) = client
            .post("members", &json!({"firstName": "Ana", "lastName": "Diaz"}))
            .await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn a_created_member_is_found_by_id_email_phone_licence_dob_and_list() {
        let double = BlazeDouble::start().unwrap();
        let client = Client::new(&double);
        let sent = json!({
            "firstName": "Ana",
            "lastName": "Diaz",
            "email": "Ana.Diaz+kiosk@Example.com",
            "primaryPhone": "555-123-4567",
            "localDob": "1990-05-01",
            "sex": "FEMALE",
            "notes": [{"message": "prefers edibles"}],
            "identifications": [{"licenseNumber": "D1234567", "state": "CA", "type": "Drivers", "localExpirationDate": "2030-01-01"}],
            "address": {"address": "1 Main St", "city": "Los Angeles", "state": "CA", "zipCode": "90001"},
            "importId": "kiosk-42",
        });
        let (status, created) = client.post("members", &sent).await;
        assert_eq!(status, 200, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(is_object_id(&id), "{id}");
        assert_eq!(created["primaryPhone"], "(555) 123-4567");
        assert_eq!(created["cpn"], "+15551234567");
        assert_eq!(created["localDob"], "1990-05-01");
        assert_eq!(created["status"], "Active");
        assert_eq!(created["consumerType"], "AdultUse");
        assert_eq!(created["importId"], "kiosk-42");
        assert!(created["created"].is_i64() && created["modified"].is_i64());
        let note = &created["notes"][0];
        assert_eq!(note["message"], "prefers edibles");
        assert!(is_object_id(note["id"].as_str().unwrap()));

        let (status, got) = client.get(&format!("members/{id}")).await;
        assert_eq!((status, &got), (200, &created));

        let (status, by_email) = client
            .get("members/email/ana.diaz%2Bkiosk%40example.com")
            .await;
        assert_eq!((status, &by_email["id"]), (200, &json!(id)));

        for phone in ["5551234567", "%2B15551234567", "(555)%20123-4567"] {
            let (status, found) = client
                .get(&format!("members/search/phone?phoneNumber={phone}"))
                .await;
            assert_eq!(status, 200);
            assert_eq!(ids(&found), std::slice::from_ref(&id), "{phone}");
        }
        let (_, none) = client.get("members/search/phone?phoneNumber=555123").await;
        assert_eq!(none["values"], json!([]));

        let (status, found) = client.get("members/search?licenceNumber=d1234567").await;
        assert_eq!((status, ids(&found)), (200, vec![id.clone()]));

        // Noon UTC of the day is the same day in the shop's zone.
        let noon = shop_midnight(
            parse_date("1990-05-01").unwrap(),
            FixedOffset::east_opt(0).unwrap(),
        )
        .unwrap()
            + DAY_MS / 2;
        let (status, found) = client.get(&format!("members/search/dob?dob={noon}")).await;
        assert_eq!((status, ids(&found)), (200, vec![id.clone()]));
        let (status, body) = client.get("members/search/dob?dob=1990-05-01").await;
        assert_eq!(status, 400);
        assert_eq!(body["message"], unverified::DOB_NOT_A_NUMBER);

        let now = now_ms();
        let (status, listed) = client
            .get(&format!(
                "members?startDate={}&endDate={}",
                now - DAY_MS,
                now + DAY_MS
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(ids(&listed), std::slice::from_ref(&id));
        assert_eq!(listed["total"], 1);
        assert_eq!(double.customers(), vec![created]);
    }

    #[tokio::test]
    async fn the_list_needs_a_window_of_at_most_seven_days() {
        let double = BlazeDouble::start().unwrap();
        let client = Client::new(&double);
        let (status, body) = client.get("members?endDate=1&skip=0&limit=5").await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"error": "Invalid argument", "message": "startDate is required", "status": 400})
        );
        let (status, body) = client.get("members?startDate=1").await;
        assert_eq!(
            (status, &body["message"]),
            (400, &json!("endDate is required"))
        );
        let (status, body) = client
            .get(&format!(
                "members?startDate=0&endDate={}",
                MAX_WINDOW_MS + 1
            ))
            .await;
        assert_eq!(status, 400);
        assert_eq!(body["message"], "Date range cannot exceed 7 days");
        assert_eq!(body["error"], "Invalid argument");
        let (status, _) = client
            .get(&format!("members?startDate=0&endDate={MAX_WINDOW_MS}"))
            .await;
        assert_eq!(status, 200);
        let (status, _) = client.get("members?startDate=5&endDate=1").await;
        assert_eq!(status, 400);
        let (status, _) = client.get("members?startDate=yesterday&endDate=1").await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn the_list_pages_by_skip_and_limit_to_total_within_each_window() {
        let double = BlazeDouble::start().unwrap();
        let client = Client::new(&double);
        let week = MAX_WINDOW_MS;
        let base = 1_700_000_000_000_i64;
        // Seven members in the first week, three in the second, one on the shared boundary.
        let mut first = Vec::new();
        for n in 0..7 {
            let id = double.seed_customer(&SeedCustomer::numbered(n));
            double.set_modified(&id, base + 1000 * (7 - i64::from(n)));
            first.push((base + 1000 * (7 - i64::from(n)), id));
        }
        let mut second = Vec::new();
        for n in 7..10 {
            let id = double.seed_customer(&SeedCustomer::numbered(n));
            double.set_modified(&id, base + week + 1000 * i64::from(n));
            second.push(id);
        }
        let boundary = double.seed_customer(&SeedCustomer::numbered(10));
        double.set_modified(&boundary, base + week);
        first.sort();
        let mut expected: Vec<String> = first.into_iter().map(|(_, id)| id).collect();
        expected.push(boundary.clone());

        let mut seen = Vec::new();
        let mut skip = 0;
        loop {
            let (status, page) = client
                .get(&format!(
                    "members?startDate={base}&endDate={}&skip={skip}&limit=3",
                    base + week
                ))
                .await;
            assert_eq!(status, 200, "{page}");
            assert_eq!(page["total"], 8);
            assert_eq!(page["skip"], skip);
            assert_eq!(page["limit"], 3);
            seen.extend(ids(&page));
            skip += 3;
            if skip >= 8 {
                break;
            }
        }
        assert_eq!(seen, expected, "ordered by modified, boundary included");

        let (_, next) = client
            .get(&format!(
                "members?startDate={}&endDate={}&skip=0&limit=1000",
                base + week,
                base + 2 * week
            ))
            .await;
        assert_eq!(next["limit"], unverified::MAX_LIMIT);
        let mut want = vec![boundary];
        want.extend(second);
        assert_eq!(ids(&next), want);
        assert_eq!(double.calls().last().unwrap().op, Op::List);
    }

    #[tokio::test]
    async fn the_phone_search_pages_by_start_not_skip() {
        let double = BlazeDouble::start().unwrap();
        let client = Client::new(&double);
        let mut all = Vec::new();
        for n in 0..3 {
            let mut customer = SeedCustomer::numbered(n);
            customer.phone = Some("5550001111".into());
            all.push(double.seed_customer(&customer));
        }
        let (_, page) = client
            .get("members/search/phone?phoneNumber=5550001111&start=1&limit=1")
            .await;
        assert_eq!(ids(&page), [all[1].clone()]);
        assert_eq!(page["total"], 3);
        let (_, page) = client
            .get("members/search/phone?phoneNumber=5550001111&skip=1&limit=1")
            .await;
        assert_eq!(ids(&page), [all[0].clone()], "skip is not a parameter here");
        let (status, body) = client.get("members/search/phone").await;
        assert_eq!(
            (status, &body["message"]),
            (400, &json!("phoneNumber is required"))
        );
        assert_eq!(double.count(Op::Search), 3);
    }

    #[tokio::test]
    async fn create_refuses_missing_names_in_either_error_shape() {
        let double = BlazeDouble::start().unwrap();
        let client = Client::new(&double);
        let (status, body) = client.post("members", &json!({"firstName": "Ana"})).await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"field": "lastName", "message": "Last name is required.", "errorType": "Invalid argument"})
        );
        let (status, body) = client
            .post(
                "members",
                &json!({"firstName": "Ana", "lastName": "D", "primaryPhone": "123"}),
            )
            .await;
        assert_eq!((status, &body["field"]), (400, &json!("primaryPhone")));
        let (status, body) = client
            .post(
                "members",
                &json!({"firstName": "Ana", "lastName": "D", "sex": "female"}),
            )
            .await;
        assert_eq!((status, &body["field"]), (400, &json!("sex")));

        double.set_field_error_shape(ErrorShape::Envelope);
        let (status, body) = client.post("members", &json!({"lastName": "Diaz"})).await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"error": "Invalid argument", "message": "First name is required.", "status": 400})
        );
        let (status, body) = client.send(Method::POST, "members", None).await;
        assert_eq!((status, &body["error"]), (400, &json!("Invalid argument")));
        assert!(double.customers().is_empty());
    }

    #[tokio::test]
    async fn update_replaces_the_whole_member() {
        let double = BlazeDouble::start().unwrap();
        let client = Client::new(&double);
        let (_, created) = client
            .post(
                "members",
                &json!({
                    "firstName": "Ana", "lastName": "Diaz", "middleName": "M",
                    "email": "ana@example.com", "primaryPhone": "5551234567",
                    "localDob": "1990-05-01", "sex": "FEMALE", "consumerType": "MedicinalState",
                    "medical": true, "notes": [{"message": "hello"}], "importId": "x1",
                    "identifications": [{"licenseNumber": "D1"}],
                }),
            )
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        double.set_modified(&id, 1);

        // Read, change, send everything back: only the change differs.
        let mut whole = created.clone();
        whole["lastName"] = json!("Diaz-Lopez");
        let (status, updated) = client.put(&format!("members/{id}"), &whole).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["lastName"], "Diaz-Lopez");
        for field in [
            "email",
            "cpn",
            "dob",
            "localDob",
            "notes",
            "identifications",
            "created",
            "importId",
            "consumerType",
            "medical",
        ] {
            assert_eq!(updated[field], created[field], "{field}");
        }
        assert!(updated["modified"].as_i64().unwrap() > 1);

        // A sparse body clears what it leaves out.
        let (status, cleared) = client
            .put(
                &format!("members/{id}"),
                &json!({"firstName": "Ana", "lastName": "Diaz"}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(cleared["email"], "");
        assert_eq!(cleared["primaryPhone"], "");
        assert_eq!(cleared["cpn"], "");
        assert_eq!(cleared["dob"], Value::Null);
        assert_eq!(cleared["localDob"], Value::Null);
        assert_eq!(cleared["notes"], json!([]));
        assert_eq!(cleared["identifications"], json!([]));
        assert_eq!(cleared["importId"], Value::Null);
        assert_eq!(cleared["consumerType"], "AdultUse");
        assert_eq!(cleared["medical"], false);
        assert_eq!(cleared["created"], created["created"]);
        assert_eq!(double.member(&id).unwrap(), cleared);
        // The old e-mail no longer finds the member.
        let (status, _) = client.get("members/email/ana@example.com").await;
        assert_eq!(status, 404);

        // Names are required again; the member is unchanged.
        let (status, body) = client
            .put(&format!("members/{id}"), &json!({"firstName": "Ana"}))
            .await;
        assert_eq!((status, &body["field"]), (400, &json!("lastName")));
        assert_eq!(double.member(&id).unwrap(), cleared);
        assert_eq!(double.count(Op::Update), 3);
    }

    #[tokio::test]
    async fn unknown_and_malformed_ids_and_emails() {
        let double = BlazeDouble::start().unwrap();
        let client = Client::new(&double);
        let unknown = Blaze::id(999);
        let unknown = unknown.as_str().unwrap();
        let not_found = json!({"error": "Not Found", "message": "Member not found", "status": 404});
        assert_eq!(
            client.get(&format!("members/{unknown}")).await,
            (404, not_found.clone())
        );
        assert_eq!(
            client.get("members/email/nobody%40example.com").await,
            (404, not_found.clone())
        );
        let whole = json!({"firstName": "A", "lastName": "B"});
        assert_eq!(
            client.put(&format!("members/{unknown}"), &whole).await,
            (404, not_found)
        );
        let (status, body) = client.get("members/42").await;
        assert_eq!(
            (status, &body["message"]),
            (400, &json!(unverified::BAD_ID))
        );

        double.set_missing_answer(Missing::InvalidArgument);
        let (status, body) = client.get(&format!("members/{unknown}")).await;
        assert_eq!((status, &body["error"]), (400, &json!("Invalid argument")));
        double.set_missing_answer(Missing::NoContent);
        let (status, body) = client.get("members/email/nobody%40example.com").await;
        assert_eq!((status, body), (204, Value::Null));
    }

    #[tokio::test]
    async fn dob_is_the_shops_midnight_and_local_dob_the_birthday() {
        let double = BlazeDouble::start().unwrap();
        let client = Client::new(&double);
        let day = parse_date("1990-05-01").unwrap();
        let utc_midnight = shop_midnight(day, FixedOffset::east_opt(0).unwrap()).unwrap();

        // Default zone: Los Angeles winter time, local midnight is 08:00 UTC.
        assert_eq!(double.shop_utc_offset(), -480);
        let (_, la) = client
            .post(
                "members",
                &json!({"firstName": "A", "lastName": "B", "localDob": "1990-05-01"}),
            )
            .await;
        assert_eq!(la["dob"], json!(utc_midnight + 8 * 3600 * 1000));
        assert_eq!(double.dob_for("1990-05-01"), la["dob"].as_i64());

        // A dob sent as UTC midnight is the day before in Los Angeles, and wins.
        let (_, shifted) = client
            .post(
                "members",
                &json!({"firstName": "A", "lastName": "B", "dob": utc_midnight, "localDob": "1990-05-01"}),
            )
            .await;
        assert_eq!(shifted["localDob"], "1990-04-30");
        assert_eq!(shifted["dob"], json!(utc_midnight - 16 * 3600 * 1000));

        // East of UTC, local midnight is the previous UTC day: the date is not in dob.
        assert!(double.set_shop_utc_offset(600));
        let (_, sydney) = client
            .post(
                "members",
                &json!({"firstName": "C", "lastName": "D", "localDob": "1990-05-01"}),
            )
            .await;
        assert_eq!(sydney["dob"], json!(utc_midnight - 10 * 3600 * 1000));
        assert_eq!(sydney["localDob"], "1990-05-01");
        let seeded = double.seed_member(&SeedCustomer {
            birthday: Some("1990-05-01".into()),
            ..SeedCustomer::named("E", "F")
        });
        assert_eq!(double.member(&seeded).unwrap()["dob"], sydney["dob"]);
        // Members already held keep their dob.
        let la_id = la["id"].as_str().unwrap();
        assert_eq!(double.member(la_id).unwrap()["dob"], la["dob"]);
        assert!(!double.set_shop_utc_offset(24 * 60));
        assert_eq!(double.shop_utc_offset(), 600);
    }

    #[tokio::test]
    async fn sex_can_be_held_as_an_integer() {
        let double = BlazeDouble::start().unwrap();
        let client = Client::new(&double);
        let customer = SeedCustomer {
            gender: Some("female".into()),
            ..SeedCustomer::named("Ana", "Diaz")
        };
        let id = double.seed_integer_sex(&customer);
        let (_, member) = client.get(&format!("members/{id}")).await;
        assert_eq!(member["sex"], 1);
        assert_eq!(member["firstName"], "Ana");

        let plain = double.seed_customer(&customer);
        assert!(double.set_sex(&plain, json!(2)));
        assert_eq!(double.member(&plain).unwrap()["sex"], 2);
        assert!(!double.set_sex(unknown_id().as_str(), json!(0)));

        // An integer sent back is accepted and kept.
        let (status, updated) = client.put(&format!("members/{id}"), &member).await;
        assert_eq!((status, &updated["sex"]), (200, &json!(1)));

        double.store_sex_as_integer(true);
        let (_, created) = client
            .post(
                "members",
                &json!({"firstName": "Bo", "lastName": "Lee", "sex": "MALE"}),
            )
            .await;
        assert_eq!(created["sex"], 0);
    }

    fn unknown_id() -> String {
        Blaze::id(424_242).as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn seeds_are_in_blazes_shape() {
        let double = BlazeDouble::start().unwrap();
        let id = double.seed_customer(&SeedCustomer::numbered(3));
        let member = double.member(&id).unwrap();
        assert!(is_object_id(&id));
        assert_eq!(member["id"], json!(id));
        assert_eq!(member["firstName"], "First3");
        assert_eq!(member["lastName"], "Last3");
        assert_eq!(member["email"], "customer3@example.com");
        assert_eq!(member["primaryPhone"], "(555) 000-0003");
        assert_eq!(member["cpn"], "+15550000003");
        assert_eq!(member["localDob"], "1953-04-13");
        assert_eq!(member["dob"], json!(double.dob_for("1953-04-13").unwrap()));
        assert_eq!(member["sex"], "MALE");
        assert_eq!(member["status"], "Active");
        assert_eq!(member["consumerType"], "AdultUse");
        assert_eq!(member["notes"][0]["message"], "note 3");
        assert_eq!(member["identifications"][0]["licenseNumber"], "D0000003");
        assert!(member["created"].is_i64() && member["modified"].is_i64());

        let named = double.seed_customer(&SeedCustomer::named("Ana", "Diaz"));
        let named = double.member(&named).unwrap();
        assert_eq!(
            (&named["email"], &named["primaryPhone"]),
            (&json!(""), &json!(""))
        );
        assert_eq!((&named["dob"], &named["sex"]), (&Value::Null, &Value::Null));

        let unusable = double.seed_unusable();
        let unusable = double.member(&unusable).unwrap();
        assert_eq!(
            (&unusable["firstName"], &unusable["lastName"]),
            (&json!(""), &json!(""))
        );

        // Vendor-shaped seeding keeps what it is given (an integer sex here).
        let raw = double.seed(json!({"firstName": "Raw", "lastName": "Seed", "sex": 2, "dob": 0}));
        let raw = double.member(&raw).unwrap();
        assert_eq!(raw["sex"], 2);
        assert_eq!(raw["localDob"], "1969-12-31");
        assert_eq!(double.customers().len(), 4);
    }

    #[tokio::test]
    async fn shared_faults_answer_in_blazes_shapes() {
        let double = BlazeDouble::start().unwrap();
        let client = Client::new(&double);
        double.fail(Op::List, Fault::Unauthorized, 1);
        assert_eq!(
            client.get("members?startDate=0&endDate=1").await,
            (401, bad_key())
        );

        double.fail(Op::Create, Fault::Invalid, 1);
        let whole = json!({"firstName": "Ana", "lastName": "Diaz"});
        let (status, body) = client.post("members", &whole).await;
        assert_eq!((status, &body["field"]), (400, &json!("firstName")));

        double.fail(
            Op::Search,
            Fault::RateLimited {
                retry_after: "30".into(),
            },
            1,
        );
        let response = reqwest::Client::new()
            .get(format!(
                "{}/members/search/phone?phoneNumber=1",
                double.base_url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()["retry-after"], "30");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": "Too Many Requests", "message": unverified::RATE_LIMITED, "status": 429})
        );

        double.fail(Op::Get, Fault::Status(503), 1);
        let (status, body) = client.get(&format!("members/{}", unknown_id())).await;
        assert_eq!((status, &body["status"]), (503, &json!(503)));

        // After commit: the member exists though the client saw a 500.
        double.fail(
            Op::Create,
            Fault::AfterCommit(Box::new(Fault::Status(500))),
            1,
        );
        let (status, _) = client.post("members", &whole).await;
        assert_eq!(status, 500);
        assert_eq!(double.customers().len(), 1);
    }

    #[test]
    fn helpers() {
        assert_eq!(percent_decode("a%2Bb%40x.com"), "a+b@x.com");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(
            unverified::national_phone("+1 (555) 123-4567").as_deref(),
            Some("5551234567")
        );
        assert_eq!(unverified::national_phone("25551234567"), None);
        assert_eq!(unverified::display_phone("5551234567"), "(555) 123-4567");
        assert_eq!(unverified::page_limit(Some(0)), unverified::DEFAULT_LIMIT);
        assert_eq!(unverified::page_limit(Some(10_000)), unverified::MAX_LIMIT);
        assert!(is_object_id(Blaze::id(1).as_str().unwrap()));
    }
}
