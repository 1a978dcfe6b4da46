//! Flowhub's JSON, and every conversion between it and our customer, in one place (see
//! docs/vendors/flowhub.md for the sources and for what is unverified). What the sources leave
//! open is chosen in the "Unverified (chosen)" section at the top, and only there.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use domain::customer::NAME_MAX;
use domain::{Customer, CustomerPatch, FieldError, NewCustomer, Phone, PosError, ValidationErrors};
use serde_json::{Map, Value, json};

use crate::convert::{Incoming, present, ten_digits};

// ---------------------------------------------------------------------------------------------
// Unverified (chosen). vendors.md leaves each of these open (its confidence is in
// docs/vendors/flowhub.md's table); each is decided here and nowhere else.
// ---------------------------------------------------------------------------------------------

/// Unverified (chosen): the last name of a customer whose Flowhub `name` is a single word (a
/// register may keep "Cher"). Flowhub has one `name`, our contract two non-blank names; a read
/// must never fail for it, and inventing a surname (repeating the first name, say) would show
/// the kiosk a name nobody gave. A last name of exactly this is also left out of the `name` we
/// send, so `("Cher", "-")` is written `"Cher"` and reads back the same.
pub const NO_LAST_NAME: &str = "-";

/// Unverified (chosen): the largest `page_size` asked. Callers use 500 and stop on a short page
/// (code); our pages are at most 100 (the contract's `limit`), well inside it.
pub(super) const MAX_PAGE_SIZE: u32 = 500;

/// Unverified (chosen): the list's order. `order_by` takes `asc`|`desc` (spec-derived); by
/// what is a gap. Ascending, so customers added (or, if the order is by update, changed) while
/// a sync walks the pages land after it rather than shifting the pages it has yet to read.
pub(super) const LIST_ORDER: &str = "asc";

/// Integrators saw 429 at about 59 requests a second (code), with no rate-limit headers.
/// Unverified (chosen): 50 a second with 5 at once, so no second ever sees more than 55.
pub(super) const RATE_LIMIT_PER_MINUTE: u32 = 3000;
pub(super) const RATE_LIMIT_BURST: u32 = 5;

/// Unverified (chosen): what we tell the kiosk to wait after Flowhub's 429, which carries no
/// `Retry-After` (code): its limit is counted per second, so one second. Reads have already
/// been retried with the plumbing's jittered back-off by then.
pub(super) const RATE_LIMITED_WAIT: Duration = Duration::from_secs(1);

/// Unverified (chosen): the store's offset when its config sets no `time_zone`: UTC-12, the
/// earliest date anywhere, so a local date we compute is never later than the store's (a sync
/// may overlap more, never start late). Flowhub's stores are in the US, UTC-4 to UTC-10.
pub(super) fn default_time_zone() -> FixedOffset {
    FixedOffset::west_opt(12 * 3600).unwrap_or_else(|| chrono::Offset::fix(&Utc))
}

/// Unverified (chosen): how far back of `since` a changed-since listing goes as a date.
/// `updated_after` takes a `YYYY-MM-DD` in the store's local time (code); whether it includes
/// that day is a gap, as is daylight saving (a store config holds a fixed offset). So we ask
/// from the day *before* `since`'s local date: inclusive or not, an hour off or not, nothing
/// changed after `since` is missed, at the price of a day or two of overlap, which
/// [`Flowhub::changed_since`](super::Flowhub::changed_since) then drops.
pub fn updated_after(since: DateTime<Utc>, zone: FixedOffset) -> NaiveDate {
    let local = since.with_timezone(&zone).date_naive();
    local.pred_opt().unwrap_or(local)
}

/// Unverified (chosen): how much earlier than `since` a record's `updatedAt` may be and still
/// be kept by [`changed_since`], for the clocks of Flowhub and the gateway disagreeing.
pub(super) const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Unverified (chosen): `updatedAt` is RFC 3339 (`2024-03-10T05:00:00.000Z`); a record whose
/// `updatedAt` can't be read is kept (a second copy costs an idempotent upsert; a lost change
/// costs a stale mirror).
fn updated_at(record: &Value) -> Option<DateTime<Utc>> {
    let text = record.get("updatedAt")?.as_str()?;
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// Unverified (chosen): one customer comes as a bare object (the double), or wrapped in
/// `{"data": {...}}` like the list may be; a list as `{"data": [...]}` or a bare array
/// (vendors.md: "accept both"); a search may answer one customer or a list of them.
pub(super) fn records(body: &Value) -> Result<Vec<&Value>, String> {
    match body {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => Ok(items.iter().collect()),
        Value::Object(object) => match object.get("data") {
            Some(Value::Array(items)) => Ok(items.iter().collect()),
            Some(one @ Value::Object(_)) => Ok(vec![one]),
            Some(Value::Null) if !object.contains_key("id") => Ok(Vec::new()),
            Some(_) if !object.contains_key("id") => {
                Err("data is neither a customer nor a list".to_owned())
            }
            _ => Ok(vec![body]),
        },
        _ => Err("the answer is neither a customer nor a list".to_owned()),
    }
}

/// Unverified (chosen) beyond vendors.md's "a full ISO timestamp is refused: 404 '...must be in
/// format yyyy-mm-dd'": a 404 whose text says "must be in format" is Flowhub refusing a date of
/// ours, a bug in our request, not a missing customer.
pub(super) fn is_date_format_refusal(body: &Value) -> bool {
    messages(body)
        .iter()
        .any(|m| m.to_ascii_lowercase().contains("must be in format"))
}

/// Unverified (chosen): a 404 to a write that speaks of the location (`store_id`) refuses our
/// config's `location_id`, not the customer.
pub(super) fn names_the_location(body: &Value) -> bool {
    messages(body).iter().any(|m| {
        let lower = m.to_ascii_lowercase();
        lower.contains("location") || lower.contains("store")
    })
}

/// Unverified (chosen): Flowhub keeps ten-digit phones (it reads them back as
/// `(555) 123-4567`, vendors.md), so we send ten digits (a North American `1` dropped) and
/// refuse any other number before a call, on `phone`, rather than have it mangled.
fn phone_to_wire(phone: &Phone, errors: &mut ValidationErrors) -> Option<String> {
    let ten = ten_digits(phone).map(str::to_owned);
    if ten.is_none() {
        errors.add("phone", FieldError::Invalid);
    }
    ten
}

/// Unverified (chosen): error bodies are a gap. Their text is read from `{"message": "..."}`,
/// `{"error": [...]}` (the 401 fixture) and `{"errors": [...]}` (an SDK parses it), each a
/// string or a list of them, or `{"errors": {"field": [...]}}`; a message names a field when it
/// starts with Flowhub's field name (`"birthDate must be in format yyyy-mm-dd"`).
fn messages(body: &Value) -> Vec<String> {
    fn texts(value: &Value, prefix: Option<&str>, out: &mut Vec<String>) {
        match value {
            Value::String(text) => out.push(match prefix {
                Some(field) => format!("{field} {text}"),
                None => text.clone(),
            }),
            Value::Array(items) => items.iter().for_each(|i| texts(i, prefix, out)),
            Value::Object(fields) => {
                for (field, v) in fields {
                    texts(v, Some(field), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    match body {
        Value::Object(object) => {
            for key in ["errors", "error", "message"] {
                if let Some(value) = object.get(key) {
                    texts(value, None, &mut out);
                }
            }
        }
        Value::String(text) => out.push(text.clone()),
        _ => {}
    }
    out
}

/// Unverified (chosen): a write answers the customer as a read would (the double), but the
/// create is spec-derived only: a field the answer leaves out (or `null`) is taken from what we
/// sent, so an answer of only `{"id": ...}` still gives the kiosk its customer. An answer
/// without an id is not one.
pub(super) fn answered(sent: &Value, record: &Value) -> Value {
    let (Some(sent), Some(answer)) = (sent.as_object(), record.as_object()) else {
        return record.clone();
    };
    let mut merged = sent.clone();
    for (key, value) in answer {
        if !value.is_null() || !merged.contains_key(key) {
            merged.insert(key.clone(), value.clone());
        }
    }
    Value::Object(merged)
}

// ---------------------------------------------------------------------------------------------

/// Fields of Flowhub's write body (spec-derived): an update sends each back as the read gave
/// it, so nothing the kiosk did not name is lost to the full replacement. `id`, `isLoyal`,
/// `loyaltyPoints`, `groups`, `createdAt` and `updatedAt` are Flowhub's own.
const WRITABLE: [&str; 17] = [
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
    "consentsToPromotionalEmail",
    "consentsToPromotionalSMS",
    "stateId",
    "stateIdExpiration",
    "medId",
    "medIdExpiration",
];

/// Flowhub's field names that are ours too, with ours (`name` holds both of our names).
const FIELDS: [(&str, &[&str]); 5] = [
    ("name", &["first_name", "last_name"]),
    ("birthdate", &["birthday"]),
    ("email", &["email"]),
    ("phone", &["phone"]),
    ("stateid", &["drivers_license"]),
];

/// What a create needs besides the customer: the store's, from its config.
#[derive(Clone, Copy, Debug)]
pub(super) struct Defaults<'a> {
    /// Two letters.
    pub state: &'a str,
    /// `recCustomer` or `medCustomer`.
    pub customer_type: &'a str,
}

/// The words of a name, split at any whitespace or control character.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
}

/// Our two names as Flowhub's one: `"First Last"`, words joined by single spaces; a last name
/// that is [`NO_LAST_NAME`] is left out (`"Cher"`).
pub fn full_name(first: &str, last: &str) -> String {
    let last = if last.trim() == NO_LAST_NAME {
        ""
    } else {
        last
    };
    words(first)
        .chain(words(last))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Flowhub's one name as our two: split at the last space (the first name is everything
/// before it, `"Mary Ann Smith"` -> `Mary Ann` + `Smith`); a single word is the first name,
/// with [`NO_LAST_NAME`]. When that split makes a name longer than the contract's 100
/// characters, the split moves left to the last space where both fit; a name with no such
/// space is cut. `None` for a blank name only: any other name reads.
pub fn split_name(name: &str) -> Option<(String, String)> {
    let words: Vec<&str> = words(name).collect();
    let length = |part: &[&str]| -> usize {
        part.iter().map(|w| w.chars().count()).sum::<usize>() + part.len().saturating_sub(1)
    };
    for at in (1..words.len()).rev() {
        let (first, last) = words.split_at(at);
        if length(first) <= NAME_MAX && length(last) <= NAME_MAX {
            return Some((first.join(" "), last.join(" ")));
        }
    }
    let cut = |text: String| -> String {
        text.chars()
            .take(NAME_MAX)
            .collect::<String>()
            .trim_end()
            .to_owned()
    };
    match words.split_last() {
        None => None,
        Some((only, [])) => Some((cut((*only).to_owned()), NO_LAST_NAME.to_owned())),
        Some((last, first)) => Some((cut(first.join(" ")), cut((*last).to_owned()))),
    }
}

/// Whether every word (lower case) starts the first or the last name of `name` under some
/// split of it: the start of the name, or of any word in it. Our name filter asks "starts the
/// first or the last name", and where Flowhub's one name splits is only our guess.
pub(super) fn name_has_words(first: &str, last: &str, words: &[&str]) -> bool {
    let name = full_name(first, last).to_lowercase();
    words.iter().all(|word| {
        name.starts_with(word)
            || name.match_indices(' ').any(|(at, _)| {
                name.get(at + 1..)
                    .is_some_and(|rest| rest.starts_with(word))
            })
    })
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// A record's id as text (a UUID string; a number is taken as its digits).
fn id_of(object: &Map<String, Value>) -> Option<String> {
    match object.get("id") {
        Some(Value::String(id)) => Some(id.trim().to_owned()),
        Some(Value::Number(id)) => Some(id.to_string()),
        _ => None,
    }
}

/// One Flowhub customer as ours, or why it can't be one (no id, a blank name). Flowhub
/// gives back no gender, notes or licence: those are `None`.
pub(super) fn read(record: &Value) -> Result<Customer, String> {
    let object = record.as_object().ok_or("a customer is not an object")?;
    // Cleaned before the split, like every vendor text (`Incoming`): a NUL inside a word is
    // not a space between two.
    let names = text(object, "name")
        .map(|name| domain::plain_text(name, domain::TextKind::SingleLine))
        .and_then(|name| split_name(&name));
    Incoming {
        customer_id: id_of(object),
        status: None,
        first_name: names.as_ref().map(|(first, _)| first.as_str()),
        last_name: names.as_ref().map(|(_, last)| last.as_str()),
        gender: None,
        birthday: text(object, "birthDate"),
        email: text(object, "email"),
        phone: text(object, "phone"),
        drivers_license: None,
        notes: None,
    }
    .into_customer()
}

/// The records of a changed-since page that a listing from `since` has not had yet:
/// `updatedAt` at or after `since` (less [`CLOCK_SKEW`]), or unreadable; each id once.
pub(super) fn changed_since(records: Vec<&Value>, since: DateTime<Utc>) -> Vec<&Value> {
    let mut seen = std::collections::HashSet::new();
    records
        .into_iter()
        .filter(|r| updated_at(r).is_none_or(|at| at >= since - CLOCK_SKEW))
        .filter(|r| {
            r.get("id")
                .map(Value::to_string)
                .is_none_or(|id| seen.insert(id))
        })
        .collect()
}

fn date(date: NaiveDate) -> Value {
    json!(date.format("%Y-%m-%d").to_string())
}

/// The body of `POST /v1/customer`: `name`, `birthDate`, `state` and `type` (required), and
/// the customer's e-mail, phone and licence (`stateId`) when given. Gender and notes have no
/// Flowhub field. A customer without a birthday, or with a phone Flowhub can't hold, is
/// refused before any call (the domain already refuses the first: `required_fields`).
pub(super) fn create_body(
    customer: &NewCustomer,
    defaults: Defaults<'_>,
) -> Result<Value, PosError> {
    let mut errors = ValidationErrors::new();
    let mut body = Map::new();
    body.insert(
        "name".into(),
        json!(full_name(
            customer.first_name.as_str(),
            customer.last_name.as_str()
        )),
    );
    match customer.birthday {
        Some(birthday) => {
            body.insert("birthDate".into(), date(birthday));
        }
        None => errors.add("birthday", FieldError::Blank),
    }
    body.insert("state".into(), json!(defaults.state));
    body.insert("type".into(), json!(defaults.customer_type));
    if let Some(email) = &customer.email {
        body.insert("email".into(), json!(email.as_str()));
    }
    if let Some(phone) = &customer.phone
        && let Some(ten) = phone_to_wire(phone, &mut errors)
    {
        body.insert("phone".into(), json!(ten));
    }
    if let Some(license) = &customer.drivers_license {
        body.insert("stateId".into(), json!(license));
    }
    errors
        .into_result(|| Value::Object(body))
        .map_err(PosError::Rejected)
}

/// A full-replacement update: the body to `PUT`, and the names the kiosk should see when
/// Flowhub keeps the `name` we sent.
#[derive(Debug)]
pub(super) struct Replacement {
    pub body: Value,
    pub names: Option<(String, String)>,
}

/// The body of `PUT /v1/customer/{id}`, from the record a read gave: every writable field it
/// holds, sent back as it came, then the patch's fields over them, with the four Flowhub
/// requires. Flowhub never reads back the licence, so `stateId` is sent only when the patch
/// names it (or, against the facts, a read gave it): an update that does not name the licence
/// leaves Flowhub without one (docs/vendors/flowhub.md).
///
/// Names: a patch naming neither sends the record's `name` untouched; one naming one of them
/// keeps the other as our read split it (`"Ana de la Cruz"` reads as `Ana de la` + `Cruz`, so
/// a new first name gives `"<new> Cruz"`).
pub(super) fn update_body(
    record: &Map<String, Value>,
    patch: &CustomerPatch,
    defaults: Defaults<'_>,
) -> Result<Replacement, PosError> {
    let mut errors = ValidationErrors::new();
    let mut body: Map<String, Value> = WRITABLE
        .into_iter()
        .filter_map(|key| Some((key.to_owned(), record.get(key)?.clone())))
        .collect();
    let current = text(record, "name").and_then(split_name);
    let names = match (&patch.first_name, &patch.last_name, &current) {
        (None, None, current) => current.clone(),
        (first, last, current) => {
            let (now_first, now_last) = current
                .as_ref()
                .map_or(("", NO_LAST_NAME), |(f, l)| (f.as_str(), l.as_str()));
            let first = first.as_ref().map_or(now_first, |n| n.as_str());
            let last = last.as_ref().map_or(now_last, |n| n.as_str());
            body.insert("name".into(), json!(full_name(first, last)));
            Some((first.to_owned(), last.to_owned()))
        }
    };
    match patch.birthday {
        Some(Some(birthday)) => {
            body.insert("birthDate".into(), date(birthday));
        }
        Some(None) => errors.add("birthday", FieldError::Blank),
        None => {}
    }
    if let Some(email) = &patch.email {
        body.insert(
            "email".into(),
            email.as_ref().map_or(Value::Null, |e| json!(e.as_str())),
        );
    }
    match &patch.phone {
        Some(Some(phone)) => {
            if let Some(ten) = phone_to_wire(phone, &mut errors) {
                body.insert("phone".into(), json!(ten));
            }
        }
        Some(None) => {
            body.insert("phone".into(), Value::Null);
        }
        // Flowhub's own formatting, sent back as the ten digits it was made of.
        None => {
            if let Some(ten) = text(record, "phone")
                .and_then(|p| Phone::parse(p).ok())
                .as_ref()
                .and_then(ten_digits)
            {
                body.insert("phone".into(), json!(ten));
            }
        }
    }
    if let Some(license) = &patch.drivers_license {
        body.insert(
            "stateId".into(),
            license.as_ref().map_or(Value::Null, |l| json!(l)),
        );
        // An expiration of a licence no longer held is not this one's.
        body.remove("stateIdExpiration");
    }
    if present(text(record, "state")).is_none() {
        body.insert("state".into(), json!(defaults.state));
    }
    if present(text(record, "type")).is_none() {
        body.insert("type".into(), json!(defaults.customer_type));
    }
    errors
        .into_result(|| Replacement {
            body: Value::Object(body),
            names,
        })
        .map_err(PosError::Rejected)
}

/// `customer` with the names the kiosk gave (`first`, `last`) when Flowhub holds the `name`
/// they were sent as: its answer's split at the last space would otherwise turn
/// `("Ana", "de la Cruz")` into `("Ana de la", "Cruz")`.
pub(super) fn with_names(
    mut customer: Customer,
    record: &Value,
    first: &str,
    last: &str,
) -> Customer {
    let held = record
        .get("name")
        .and_then(Value::as_str)
        .map(|n| full_name(n, ""));
    if held.as_deref() == Some(full_name(first, last).as_str())
        && let (Ok(first), Ok(last)) = (
            domain::PersonName::parse(first),
            domain::PersonName::parse(last),
        )
    {
        customer.first_name = first;
        customer.last_name = last;
    }
    customer
}

/// The licence a write sent (`stateId`), which is what Flowhub holds after it: its reads never
/// say.
pub(super) fn licence_sent(body: &Value) -> Option<String> {
    present(body.get("stateId").and_then(Value::as_str)).map(str::to_owned)
}

/// Whether `id` is a UUID (`8-4-4-4-12` hex digits, any case): Flowhub's ids are, so any other
/// id names no customer there and needs no call.
pub(super) fn is_uuid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Our message for one of Flowhub's about `field` (ours): the contract's wording, never the
/// vendor's text, which may quote the customer's value.
fn message_from_wire(field: &str, text: &str) -> FieldError {
    let lower = text.to_ascii_lowercase();
    if lower.contains("required") || lower.contains("blank") || lower.contains("empty") {
        return FieldError::Blank;
    }
    if field == "birthday" {
        return FieldError::InvalidDate;
    }
    if field == "drivers_license"
        && let Some(max) = lower
            .split(|c: char| !c.is_ascii_digit())
            .find_map(|n| n.parse::<usize>().ok().filter(|n| *n > 0))
        && (lower.contains("long") || lower.contains("most") || lower.contains("maximum"))
    {
        return FieldError::TooLong(max);
    }
    FieldError::Invalid
}

/// The field errors of a Flowhub refusal, on our field names; empty when none names a field of
/// ours (`state`, `type`, `store_id` are the store's config, not the kiosk's input).
pub(super) fn field_errors(body: &Value) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    for message in messages(body) {
        let head: String = message
            .trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        let Some((_, ours)) = FIELDS.iter().find(|(theirs, _)| *theirs == head) else {
            continue;
        };
        for field in *ours {
            errors.add(field, message_from_wire(field, &message));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_split_at_the_last_space() {
        let split = split_name;
        let pair = |f: &str, l: &str| Some((f.to_owned(), l.to_owned()));
        assert_eq!(split("Ana Cruz"), pair("Ana", "Cruz"));
        assert_eq!(split("Mary Ann  Smith "), pair("Mary Ann", "Smith"));
        assert_eq!(split("Ana de la Cruz"), pair("Ana de la", "Cruz"));
        assert_eq!(split("Cher"), pair("Cher", NO_LAST_NAME));
        assert_eq!(split("Ana\tCruz\n"), pair("Ana", "Cruz"));
        assert_eq!(split("  "), None);
        let long = format!("{} {}", "a".repeat(100), "b c");
        assert_eq!(split(&long), pair(&"a".repeat(100), "b c"));
        let one = "x".repeat(150);
        assert_eq!(split(&one), pair(&"x".repeat(100), NO_LAST_NAME));
        assert_eq!(full_name("Cher", "-"), "Cher");
        assert_eq!(full_name("Mary  Ann", "de la Cruz"), "Mary Ann de la Cruz");
    }

    #[test]
    fn a_read_never_fails_for_its_name_unless_it_is_blank() {
        let c = read(
            &json!({"id": "a", "name": "Cher", "phone": "(555) 123-4567",
                             "birthDate": "1990-02-03", "stateId": "D1"}),
        )
        .unwrap();
        assert_eq!(c.first_name.as_str(), "Cher");
        assert_eq!(c.last_name.as_str(), NO_LAST_NAME);
        assert_eq!(c.phone.unwrap().as_str(), "555-123-4567");
        assert_eq!(c.drivers_license, None);
        assert!(read(&json!({"id": "a", "name": null})).is_err());
        assert!(read(&json!({"name": "A B"})).is_err());
    }

    #[test]
    fn local_dates_step_back_a_day() {
        let since = Utc.with_ymd_and_hms(2024, 3, 10, 4, 0, 0).unwrap();
        let denver = FixedOffset::west_opt(7 * 3600).unwrap();
        assert_eq!(
            updated_after(since, denver),
            NaiveDate::from_ymd_opt(2024, 3, 8).unwrap()
        );
        let utc = FixedOffset::east_opt(0).unwrap();
        assert_eq!(
            updated_after(since, utc),
            NaiveDate::from_ymd_opt(2024, 3, 9).unwrap()
        );
        assert_eq!(
            updated_after(since, default_time_zone()),
            NaiveDate::from_ymd_opt(2024, 3, 8).unwrap()
        );
    }

    #[test]
    fn errors_land_on_our_fields_in_our_words() {
        let errors = field_errors(&json!({"errors": [
            "name is required", "birthDate must be in format yyyy-mm-dd",
            "phone must be a 10-digit phone number", "state must be a 2-letter state code",
            "stateId is too long (at most 20)"
        ]}));
        let json = serde_json::to_value(&errors).unwrap();
        assert_eq!(
            json,
            json!({
                "first_name": ["can't be blank"], "last_name": ["can't be blank"],
                "birthday": ["is not a valid date"], "phone": ["is invalid"],
                "drivers_license": ["is too long (maximum is 20 characters)"],
            })
        );
        assert!(
            field_errors(&json!({"error": ["Unauthorized"], "message": "Invalid key"})).is_empty()
        );
        assert!(
            !field_errors(&json!({"message": "email must be a valid email address"})).is_empty()
        );
        assert!(!field_errors(&json!({"errors": {"email": ["is invalid"]}})).is_empty());
        assert!(is_date_format_refusal(&json!(
            "updated_after must be in format yyyy-mm-dd"
        )));
        assert!(!is_date_format_refusal(
            &json!({"message": "Customer not found"})
        ));
    }

    #[test]
    fn ids_are_uuids() {
        assert!(is_uuid("00000000-0000-4000-8000-000000000000"));
        assert!(is_uuid("7A3C1F2E-5B6D-4E8F-9A0B-1C2D3E4F5A6B"));
        for other in [
            "424242424242",
            "5f0c0ffee0ddba11c0ffee00",
            "findByPhoneNumber",
            "",
        ] {
            assert!(!is_uuid(other), "{other}");
        }
    }
}
