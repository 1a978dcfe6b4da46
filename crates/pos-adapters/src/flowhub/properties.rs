//! Property tests of the Flowhub conversions, through the shared wire harness
//! ([`crate::properties::WireModel`]): a customer of ours sent to Flowhub (`POST /v1/customer`)
//! and read back is the customer we sent, up to what Flowhub cannot carry; an update changes
//! exactly the fields it names; any answer Flowhub could send reads without a panic as valid
//! customers or an error.
//!
//! Flowhub is emulated at its worst the facts allow (docs/vendors/flowhub.md): the `PUT` is a
//! full replacement, every writable field it is not sent cleared (the licence too); the read
//! the update starts from never shows the licence; phones are held as `(555) 123-4567`.
//!
//! What Flowhub cannot carry, so what the round trip is allowed to change:
//! - names: Flowhub has one `name`, sent as `"First Last"` (words joined by single spaces, a
//!   last name of `-` left out) and read back split at the last space, so `("Ana",
//!   "de la Cruz")` comes back as `("Ana de la", "Cruz")` and a single word as `(word, "-")`;
//! - `phone`: ten digits (a North American `1` dropped), shown `555-123-4567`; any other number
//!   is refused on `phone` before a call;
//! - `gender`, `notes`: no Flowhub field; `drivers_license`: written, never read back;
//! - `birthday`: required (a create without one, or a patch clearing it, is refused on
//!   `birthday`); `status`: none at Flowhub, so `ACTIVE`.
//!
//! E-mail and birthday come back equal.

use chrono::NaiveDate;
use domain::{Customer, CustomerPatch, NewCustomer, PersonName, PosError};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::wire;
use crate::convert::{display_phone, ten_digits};
use crate::properties::{WireModel, name, wire_properties};

struct FlowhubWire;

const DEFAULTS: wire::Defaults<'static> = wire::Defaults {
    state: "CO",
    customer_type: "recCustomer",
};

/// Fields a read never shows.
const WRITE_ONLY: [&str; 4] = ["stateId", "stateIdExpiration", "medId", "medIdExpiration"];

/// Flowhub's writable fields; the rest of a record (`id`, loyalty, timestamps) is its own.
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

/// Flowhub storing a write over `previous`: every writable field replaced by the body's, the
/// ones it leaves out cleared (the worst case), phones held formatted.
fn store(previous: &Map<String, Value>, body: &Value) -> Value {
    let mut record: Map<String, Value> = previous
        .iter()
        .filter(|(key, _)| !WRITABLE.contains(&key.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for key in WRITABLE {
        let value = body.get(key).cloned().unwrap_or(Value::Null);
        let value = match (key, value.as_str()) {
            ("phone", Some(digits)) => {
                let d: Vec<char> = digits.chars().collect();
                json!(format!(
                    "({}) {}-{}",
                    d[..3].iter().collect::<String>(),
                    d[3..6].iter().collect::<String>(),
                    d[6..].iter().collect::<String>()
                ))
            }
            _ => value,
        };
        if !(WRITE_ONLY.contains(&key) && value.is_null()) {
            record.insert(key.to_owned(), value);
        }
    }
    Value::Object(record)
}

/// What a read of the record shows (no write-only field).
fn read_view(record: &Value) -> Map<String, Value> {
    let mut view = record.as_object().cloned().unwrap_or_default();
    for key in WRITE_ONLY {
        view.remove(key);
    }
    view
}

/// Our names as Flowhub holds and reads them.
fn held_names(first: &PersonName, last: &PersonName) -> (PersonName, PersonName) {
    let (f, l) = wire::split_name(&wire::full_name(first.as_str(), last.as_str())).unwrap();
    (
        PersonName::parse(&f).unwrap(),
        PersonName::parse(&l).unwrap(),
    )
}

fn ten(phone: Option<&domain::Phone>) -> bool {
    phone.is_none_or(|p| ten_digits(p).is_some())
}

impl WireModel for FlowhubWire {
    const KEYS: &'static [&'static str] = &[
        "id",
        "name",
        "email",
        "phone",
        "birthDate",
        "state",
        "type",
        "streetAddress1",
        "city",
        "zip",
        "isLoyal",
        "loyaltyPoints",
        "groups",
        "createdAt",
        "updatedAt",
        "data",
    ];

    fn id() -> BoxedStrategy<Value> {
        "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
            .prop_map(|id| json!(id))
            .boxed()
    }

    fn create_body(customer: &NewCustomer) -> Result<Value, PosError> {
        wire::create_body(customer, DEFAULTS)
    }

    fn created(body: Value, id: &Value) -> Value {
        let mut record = Map::new();
        record.insert("id".into(), id.clone());
        record.insert("isLoyal".into(), json!(true));
        record.insert("loyaltyPoints".into(), json!(12));
        record.insert("createdAt".into(), json!("2024-03-10T05:00:00.000Z"));
        // A register-set address and consent the kiosk never sees: an update must keep them.
        let mut body = body;
        if let Some(object) = body.as_object_mut() {
            object.insert("city".into(), json!("Denver"));
            object.insert("consentsToPromotionalSMS".into(), json!(true));
        }
        store(&record, &body)
    }

    /// From what a read of the record shows, as the adapter does.
    fn update_body(current: &Value, patch: &CustomerPatch) -> Result<Value, PosError> {
        wire::update_body(&read_view(current), patch, DEFAULTS).map(|r| r.body)
    }

    fn updated(current: Value, body: Value) -> Value {
        let previous = current.as_object().cloned().unwrap_or_default();
        let after = store(&previous, &body);
        // The register's own fields survive because they were sent back, not by luck.
        assert_eq!(after["city"], "Denver");
        assert_eq!(after["consentsToPromotionalSMS"], true);
        after
    }

    fn read(record: &Value) -> Result<Customer, String> {
        wire::read(record)
    }

    fn read_answer(answer: &Value) -> Result<Vec<Customer>, String> {
        let records = wire::records(answer)?;
        let _ = wire::is_date_format_refusal(answer);
        let _ = wire::field_errors(answer);
        Ok(records
            .into_iter()
            .filter_map(|r| wire::read(r).ok())
            .collect())
    }

    fn as_held(mut customer: Customer) -> Customer {
        (customer.first_name, customer.last_name) =
            held_names(&customer.first_name, &customer.last_name);
        customer.phone = customer
            .phone
            .as_ref()
            .and_then(ten_digits)
            .and_then(display_phone);
        customer.gender = None;
        customer.notes = None;
        customer.drivers_license = None;
        customer
    }

    fn refused(customer: &NewCustomer) -> Option<&'static str> {
        if customer.birthday.is_none() {
            Some("birthday")
        } else if !ten(customer.phone.as_ref()) {
            Some("phone")
        } else {
            None
        }
    }

    fn refused_patch(patch: &CustomerPatch) -> Option<&'static str> {
        if patch.birthday == Some(None) {
            Some("birthday")
        } else if !ten(patch.phone.as_ref().and_then(Option::as_ref)) {
            Some("phone")
        } else {
            None
        }
    }

    fn holdable(mut customer: NewCustomer) -> NewCustomer {
        customer.phone = customer.phone.filter(|p| ten_digits(p).is_some());
        customer.birthday = customer
            .birthday
            .or_else(|| NaiveDate::from_ymd_opt(1980, 1, 1));
        customer
    }
}

wire_properties!(FlowhubWire);

proptest! {
    /// Any name reads as two valid names, and the names we write read back as written when the
    /// last name is one word.
    #[test]
    fn every_name_splits_into_two_valid_names(text in prop_oneof![any::<String>(), "[A-Za-z -]{0,300}"], first in name(), last in "[A-Z][a-z]{0,20}") {
        if let Some((f, l)) = wire::split_name(&text) {
            prop_assert!(PersonName::parse(&f).is_ok(), "{:?}", f);
            prop_assert!(PersonName::parse(&l).is_ok(), "{:?}", l);
            // Written back as read, it reads the same (but for a "-" after several words,
            // which is written as the first name alone).
            if l != wire::NO_LAST_NAME || !f.contains(' ') {
                prop_assert_eq!(wire::split_name(&wire::full_name(&f, &l)), Some((f, l)));
            }
        } else {
            prop_assert!(text.split(|c: char| c.is_whitespace() || c.is_control()).all(str::is_empty));
        }
        let Ok(first) = PersonName::parse(&first) else {
            return Ok(());
        };
        let written = wire::full_name(first.as_str(), &last);
        let (f, l) = wire::split_name(&written).unwrap();
        prop_assert_eq!(l, last);
        prop_assert_eq!(f, wire::full_name(first.as_str(), ""));
    }

    /// A name filter's words that start the first or last name of a customer are found in the
    /// one name Flowhub holds.
    #[test]
    fn name_words_of_our_names_are_found(first in "[A-Z][a-z]{1,8}( [A-Z][a-z]{1,8})?", last in "[A-Z][a-z]{1,8}( [A-Z][a-z]{1,8})?", cut in 1usize..4) {
        let prefix = |s: &str| s.chars().take(cut).collect::<String>().to_lowercase();
        let words = [prefix(&first), prefix(&last)];
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let (f, l) = wire::split_name(&wire::full_name(&first, &last)).unwrap();
        prop_assert!(wire::name_has_words(&f, &l, &words));
        let nobody = ["9"];
        prop_assert!(!wire::name_has_words(&f, &l, &nobody));
    }
}
