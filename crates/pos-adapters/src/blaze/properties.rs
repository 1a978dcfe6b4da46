//! Property tests of the BLAZE conversions, through the shared wire harness
//! ([`crate::properties::WireModel`]): a customer of ours sent to BLAZE (`POST members`) and
//! read back is the customer we sent, a patch changes exactly the fields it names, and any
//! answer BLAZE could send reads without a panic as valid customers or an error.
//!
//! BLAZE is modelled as the WORST case the facts allow (docs/vendors/blaze.md):
//! - `PUT members/{id}` replaces the whole member: every field it is not sent is reset to the
//!   blank member's value (`""`, null, `[]`); only `id` and `created` survive. So the patch
//!   property proves the read-change-PUT keeps every field the kiosk did not name.
//! - `cpn` is derived from `primaryPhone` (a `cpn` we send is ignored) and `primaryPhone` held
//!   in the display form.
//! - `dob` wins over `localDob`: the birthday is the calendar day of `dob` in the shop's zone
//!   (a zone from UTC-10 to UTC+10, varied by member), `dob` moved to that day's midnight and
//!   `localDob` rewritten from it.
//! - `sex` is held as its integer code, as live BLAZE data returns it.
//! - notes without a `created` are stamped later than every note held.
//!
//! What BLAZE cannot carry, so what the round trip is allowed to change:
//! - `phone`: North American numbers only (`primaryPhone` is `(xxx) xxx-xxxx`). One is read
//!   back as `555-123-4567` (a `+1` number loses its `1`); any other is refused before any call
//!   with a 422 on `phone`, never stored mangled.
//! - `status`: BLAZE's (`Active` reads as `ACTIVE`).
//!
//! Names, `gender`, `birthday`, `email`, `drivers_license` and `notes` come back equal.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use domain::{Customer, CustomerPatch, FieldError, NewCustomer, PosError};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::wire::{self, unverified};
use crate::convert::{display_phone, ten_digits};
use crate::properties::{WireModel, json as any_json, patch, wire_properties};

struct BlazeWire;

fn blank() -> Map<String, Value> {
    let blank = json!({
        "firstName": "", "lastName": "", "middleName": "", "email": "", "primaryPhone": "",
        "cpn": "", "dob": null, "localDob": null, "birthdate": null, "sex": null,
        "status": "Active", "consumerType": "AdultUse", "medical": false, "notes": [],
        "identifications": [], "address": null, "importId": null,
    });
    blank.as_object().cloned().unwrap_or_default()
}

/// The shop's zone for this member, in minutes east of UTC (Hawaii to Sydney).
fn shop_offset(id: &Value) -> FixedOffset {
    const ZONES: [i32; 5] = [-600, -480, -300, 0, 600];
    let last = id.as_str().and_then(|s| s.bytes().last()).unwrap_or(0);
    let minutes = ZONES
        .get(usize::from(last) % ZONES.len())
        .copied()
        .unwrap_or(0);
    FixedOffset::east_opt(minutes * 60).unwrap()
}

fn shop_midnight(date: NaiveDate, offset: FixedOffset) -> Option<i64> {
    offset
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .single()
        .map(|at| at.timestamp_millis())
}

/// BLAZE storing what it was sent, as the worst case above: on a blank member, with `id`,
/// `created` from `previous` (an update) or new.
fn store(sent: Value, previous: Option<&Map<String, Value>>, id: &Value) -> Value {
    let Value::Object(sent) = sent else {
        return Value::Null;
    };
    let mut member = blank();
    for (key, value) in sent {
        let server_managed = ["id", "created", "modified", "cpn"].contains(&key.as_str());
        let takes_default = value.is_null() && member.get(&key).is_some_and(|v| !v.is_null());
        if !(server_managed || takes_default) {
            member.insert(key, value);
        }
    }
    let national = member
        .get("primaryPhone")
        .and_then(Value::as_str)
        .and_then(|p| domain::Phone::parse(p).ok())
        .and_then(|p| ten_digits(&p).map(str::to_owned));
    let (primary, cpn) = match national {
        Some(n) => (
            format!("({}) {}-{}", &n[..3], &n[3..6], &n[6..]),
            format!("+1{n}"),
        ),
        None => (String::new(), String::new()),
    };
    member.insert("primaryPhone".into(), json!(primary));
    member.insert("cpn".into(), json!(cpn));
    let offset = shop_offset(id);
    let from_dob = member
        .get("dob")
        .and_then(Value::as_i64)
        .and_then(DateTime::from_timestamp_millis)
        .map(|at| at.with_timezone(&offset).date_naive());
    let from_local = member
        .get("localDob")
        .and_then(Value::as_str)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let birthday = from_dob.or(from_local);
    member.insert(
        "dob".into(),
        json!(birthday.and_then(|d| shop_midnight(d, offset))),
    );
    member.insert(
        "localDob".into(),
        json!(birthday.map(|d| d.format("%Y-%m-%d").to_string())),
    );
    if let Some(code) = member
        .get("sex")
        .and_then(wire::gender_from_wire)
        .and_then(|g| {
            unverified::SEX_CODES
                .iter()
                .find(|(_, gender)| *gender == g)
                .map(|(code, _)| *code)
        })
    {
        member.insert("sex".into(), json!(code));
    }
    if let Some(Value::Array(notes)) = member.get_mut("notes") {
        let latest = notes
            .iter()
            .filter_map(|n| n.get("created").and_then(Value::as_i64))
            .max()
            .unwrap_or(0);
        for note in notes.iter_mut().filter_map(Value::as_object_mut) {
            note.entry("created").or_insert(json!(latest + 1));
        }
    }
    member.insert("id".into(), id.clone());
    let created = previous
        .and_then(|p| p.get("created").cloned())
        .unwrap_or(json!(1));
    member.insert("created".into(), created);
    member.insert("modified".into(), json!(2));
    Value::Object(member)
}

fn north_american(phone: Option<&domain::Phone>) -> bool {
    phone.is_none_or(|p| ten_digits(p).is_some())
}

impl WireModel for BlazeWire {
    const KEYS: &'static [&'static str] = &[
        "id",
        "firstName",
        "lastName",
        "middleName",
        "email",
        "primaryPhone",
        "cpn",
        "dob",
        "localDob",
        "birthdate",
        "sex",
        "status",
        "consumerType",
        "notes",
        "identifications",
        "address",
        "importId",
        "created",
        "modified",
    ];

    fn id() -> BoxedStrategy<Value> {
        "[0-9a-f]{24}".prop_map(|id| json!(id)).boxed()
    }

    fn create_body(customer: &NewCustomer) -> Result<Value, PosError> {
        wire::new_member(customer, "AdultUse")
    }

    fn created(body: Value, id: &Value) -> Value {
        store(body, None, id)
    }

    fn update_body(current: &Value, patch: &CustomerPatch) -> Result<Value, PosError> {
        let member = current.as_object().cloned().unwrap_or_default();
        wire::update_body(&member, patch)
    }

    fn updated(current: Value, body: Value) -> Value {
        let previous = current.as_object().cloned().unwrap_or_default();
        let id = previous.get("id").cloned().unwrap_or(Value::Null);
        store(body, Some(&previous), &id)
    }

    fn read(record: &Value) -> Result<Customer, String> {
        wire::customer(record)
    }

    fn read_answer(answer: &Value) -> Result<Vec<Customer>, String> {
        wire::customers(answer)
    }

    fn as_held(mut customer: Customer) -> Customer {
        customer.phone = customer
            .phone
            .as_ref()
            .and_then(ten_digits)
            .and_then(display_phone);
        customer
    }

    fn refused(customer: &NewCustomer) -> Option<&'static str> {
        (!north_american(customer.phone.as_ref())).then_some("phone")
    }

    fn refused_patch(patch: &CustomerPatch) -> Option<&'static str> {
        (!north_american(patch.phone.as_ref().and_then(Option::as_ref))).then_some("phone")
    }

    fn holdable(mut customer: NewCustomer) -> NewCustomer {
        customer.phone = customer.phone.filter(|p| ten_digits(p).is_some());
        customer
    }

    /// Pages (`{"values": [...]}`) as well as single members and anything else.
    fn answers() -> BoxedStrategy<Value> {
        let member = || crate::properties::record(Self::KEYS);
        prop_oneof![
            2 => member(),
            2 => proptest::collection::vec(prop_oneof![3 => member(), 1 => any_json()], 0..5)
                .prop_map(|values| json!({"values": values, "skip": 0, "total": values.len()})),
            1 => any_json(),
        ]
        .boxed()
    }
}

wire_properties!(BlazeWire);

/// The member keys a patch may change, by what it names (the phone's are also touched to
/// keep a number held only in `cpn`).
fn touched(patch: &CustomerPatch) -> Vec<&'static str> {
    let mut keys = vec!["primaryPhone", "cpn"];
    let named = [
        (patch.first_name.is_some(), &["firstName"][..]),
        (patch.last_name.is_some(), &["lastName"][..]),
        (patch.gender.is_some(), &["sex"][..]),
        (patch.email.is_some(), &["email"][..]),
        (
            patch.birthday.is_some(),
            &["localDob", "dob", "birthdate"][..],
        ),
        (patch.drivers_license.is_some(), &["identifications"][..]),
        (patch.notes.is_some(), &["notes"][..]),
    ];
    for (is_named, names) in named {
        if is_named {
            keys.extend_from_slice(names);
        }
    }
    keys
}

proptest! {
    /// Whatever BLAZE holds, the PUT body carries every field the patch does not name exactly
    /// as it was read (fields unknown to us too).
    #[test]
    fn a_put_keeps_every_field_the_patch_does_not_name(
        member in crate::properties::record(BlazeWire::KEYS),
        patch in patch(),
    ) {
        let Value::Object(member) = member else { return Ok(()); };
        let Ok(Value::Object(body)) = wire::update_body(&member, &patch) else { return Ok(()); };
        let touched = touched(&patch);
        for (key, value) in &member {
            if !touched.contains(&key.as_str()) {
                prop_assert_eq!(body.get(key), Some(value), "{}", key);
            }
        }
        for key in body.keys() {
            prop_assert!(member.contains_key(key) || touched.contains(&key.as_str()), "{}", key);
        }
    }

    #[test]
    fn field_errors_land_on_our_fields_with_contract_messages(
        field in prop_oneof![
            "(member\\.)?(firstName|lastName|email|primaryPhone|cpn|dob|localDob|sex|identifications|notes|consumerType|status)",
            any::<String>(),
        ],
        message in prop_oneof![
            "[A-Za-z ]{0,20} is required\\.",
            "[A-Za-z ]{0,20} is too long \\(maximum [0-9]{1,25}\\)",
            any::<String>(),
        ],
        extra in any_json(),
    ) {
        let body = json!({"field": field, "message": message, "errorType": extra});
        if let Some(errors) = wire::field_errors(&body) {
            let ours = ["first_name", "last_name", "birthday", "email", "phone", "gender", "notes", "drivers_license"];
            let fields: Vec<&str> = errors.fields().collect();
            prop_assert_eq!(fields.len(), 1);
            prop_assert!(ours.contains(&fields[0]), "{:?}", fields);
            for shown in errors.get(fields[0]).unwrap_or_default() {
                let contract = [FieldError::Blank, FieldError::Invalid, FieldError::InvalidDate, FieldError::NotInList]
                    .iter()
                    .any(|e| e.to_string() == *shown)
                    || (shown.starts_with("is too long (maximum is ") && shown.ends_with(" characters)"));
                prop_assert!(contract, "{}", shown);
            }
        }
        let _ = (wire::says_missing(&body), wire::field_errors(&extra), wire::says_missing(&extra));
    }

    #[test]
    fn any_sex_reads_without_a_panic(sex in any_json()) {
        let _ = wire::gender_from_wire(&sex);
    }
}
