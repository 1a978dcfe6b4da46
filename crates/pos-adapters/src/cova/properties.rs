//! Property tests of the Cova conversions, through the shared wire harness
//! ([`crate::properties::WireModel`]): a customer of ours sent to Cova (`POST CustomerFull`)
//! and read back (`GET CustomerFull`, a search, the list) is the customer we sent, an update
//! changes exactly the fields it names, and any answer Cova could send reads without a panic as
//! valid customers or an error. Run twice: with the store's licence extension type, and
//! without it (the licence kept by the mirror only).
//!
//! Cova is emulated as the worst case the facts allow (docs/vendors/cova.md): `PUT
//! Customers({id})` replaces the whole core customer (a text field or `DateOfBirth` not sent is
//! cleared, `DoNotContact` not sent goes back to true) and refuses a stale `Version`; a contact
//! method or extension `PUT` replaces the whole item and refuses a stale `Version`;
//! `DateOfBirth` comes back as `YYYY-MM-DDT12:00:00.000`; `Default` not sent is false. An update
//! is modelled as the whole plan of writes the adapter sends.
//!
//! What Cova cannot carry, so what the round trip is allowed to change:
//! - `gender`: Cova has no place for it; a customer read from Cova never has one.
//! - `drivers_license`, without the store's `licence_extension_type_id`: never sent, never read.
//! - `phone`: kept as the kiosk wrote it (free text), read back in our display form (ten digits
//!   as `555-123-4567`, any other number as written).
//! - `status`: Cova's flags (`ACTIVE` here).
//!
//! Names, `birthday`, `email`, `notes` and, with the extension, `drivers_license` come back equal.

use domain::{Customer, CustomerPatch, NewCustomer, PosError};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::wire::{self, Step};
use crate::properties::{WireModel, new_customer, patch, wire_properties};

/// The licence extension type of the stores modelled with one.
const LICENCE: i64 = 17;

/// Cova, for a store with the licence extension type (`true`) or without it.
struct CovaWire<const LICENCE_EXTENSION: bool>;

impl<const L: bool> CovaWire<L> {
    fn licence() -> Option<i64> {
        L.then_some(LICENCE)
    }
}

const TEXT_FIELDS: [&str; 6] = [
    "PrimaryName",
    "MiddleName",
    "FamilyName",
    "AlternateName",
    "Title",
    "Notes",
];

/// The core customer as Cova keeps a write of `body`: only what was sent, the rest cleared.
fn core_from(body: &Map<String, Value>) -> Map<String, Value> {
    let mut core = Map::new();
    for field in TEXT_FIELDS {
        let value = body.get(field).filter(|v| v.is_string()).cloned();
        core.insert(field.into(), value.unwrap_or(Value::Null));
    }
    let born = body
        .get("DateOfBirth")
        .and_then(Value::as_str)
        .and_then(crate::convert::date_prefix)
        .map(|d| json!(format!("{}T12:00:00.000", d.format("%Y-%m-%d"))));
    core.insert("DateOfBirth".into(), born.unwrap_or(Value::Null));
    let kind = body.get("CustomerTypeId").cloned().unwrap_or(json!(2));
    core.insert("CustomerTypeId".into(), kind);
    let flag =
        |key: &str, default: bool| json!(body.get(key).and_then(Value::as_bool).unwrap_or(default));
    core.insert("Disabled".into(), flag("Disabled", false));
    core.insert("DoNotContact".into(), flag("DoNotContact", true));
    core
}

fn next_item_id(record: &Map<String, Value>) -> i64 {
    [wire::CONTACT_METHODS, wire::EXTENSIONS]
        .into_iter()
        .flat_map(|list| {
            record
                .get(list)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|item| item.get("Id").and_then(Value::as_i64))
        .max()
        .unwrap_or(40)
        + 1
}

/// An item as Cova keeps a write of it: what was sent, with its id and version.
fn stored_item(list: &str, body: &Value, id: i64, version: i64) -> Value {
    let mut item = body.as_object().cloned().unwrap_or_default();
    item.insert("Id".into(), json!(id));
    item.insert("Version".into(), json!(version));
    if list == wire::CONTACT_METHODS && !item.get("Default").is_some_and(Value::is_boolean) {
        item.insert("Default".into(), json!(false));
    }
    Value::Object(item)
}

fn list_mut<'a>(record: &'a mut Map<String, Value>, list: &str) -> &'a mut Vec<Value> {
    let slot = record.entry(list.to_owned()).or_insert_with(|| json!([]));
    if !slot.is_array() {
        *slot = json!([]);
    }
    slot.as_array_mut().unwrap()
}

fn step_json(step: &Step) -> Value {
    match step {
        Step::Core(body) => json!({"op": "core", "body": body}),
        Step::Add { list, body, .. } => json!({"op": "add", "list": list, "body": body}),
        Step::Change {
            list, item, body, ..
        } => json!({"op": "change", "list": list, "item": item, "body": body}),
        Step::Remove { list, item } => json!({"op": "remove", "list": list, "item": item}),
    }
}

/// Cova after one write of ours, or why it refused it (a stale `Version`).
fn store(record: &mut Map<String, Value>, step: &Value) -> Result<(), String> {
    let list = step["list"].as_str().unwrap_or_default();
    let item_id = step["item"].as_str().and_then(|i| i.parse::<i64>().ok());
    match step["op"].as_str() {
        Some("core") => {
            let body = step["body"].as_object().cloned().unwrap_or_default();
            if body.get("Version") != record.get("Version") {
                return Err("409: a stale Version".into());
            }
            let version = record["Version"].as_i64().unwrap() + 1;
            let mut core = core_from(&body);
            for kept in [
                "Id",
                "MergedIntoCustomerId",
                wire::CONTACT_METHODS,
                wire::EXTENSIONS,
            ] {
                if let Some(value) = record.get(kept) {
                    core.insert(kept.into(), value.clone());
                }
            }
            core.insert("Version".into(), json!(version));
            *record = core;
        }
        Some("add") => {
            let id = next_item_id(record);
            let item = stored_item(list, &step["body"], id, 1);
            list_mut(record, list).push(item);
        }
        Some("change") => {
            let items = list_mut(record, list);
            let slot = items
                .iter_mut()
                .find(|i| i["Id"].as_i64() == item_id)
                .ok_or("404: no such item")?;
            if step["body"]["Version"] != slot["Version"] {
                return Err("409: a stale item Version".into());
            }
            let version = slot["Version"].as_i64().unwrap() + 1;
            *slot = stored_item(list, &step["body"], item_id.unwrap(), version);
        }
        Some("remove") => list_mut(record, list).retain(|i| i["Id"].as_i64() != item_id),
        other => return Err(format!("unknown step {other:?}")),
    }
    Ok(())
}

impl<const L: bool> WireModel for CovaWire<L> {
    const KEYS: &'static [&'static str] = &[
        "Id",
        "PrimaryName",
        "FamilyName",
        "MiddleName",
        "DateOfBirth",
        "Notes",
        "Disabled",
        "DoNotContact",
        "Version",
        "MergedIntoCustomerId",
        "ContactMethods",
        "CustomerExtensions",
    ];

    fn id() -> BoxedStrategy<Value> {
        "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
            .prop_map(|id| json!(id))
            .boxed()
    }

    fn create_body(customer: &NewCustomer) -> Result<Value, PosError> {
        Ok(wire::create_body(customer, Self::licence()).0)
    }

    fn created(body: Value, id: &Value) -> Value {
        let body = body.as_object().cloned().unwrap_or_default();
        let mut record = core_from(&body);
        record.insert("Id".into(), id.clone());
        record.insert("Version".into(), json!(1));
        record.insert("MergedIntoCustomerId".into(), Value::Null);
        for list in [wire::CONTACT_METHODS, wire::EXTENSIONS] {
            let mut items = Vec::new();
            for sent in body
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let mut so_far = record.clone();
                so_far.insert(list.into(), Value::Array(items.clone()));
                items.push(stored_item(list, sent, next_item_id(&so_far), 1));
            }
            record.insert(list.into(), Value::Array(items));
        }
        Value::Object(record)
    }

    fn update_body(current: &Value, patch: &CustomerPatch) -> Result<Value, PosError> {
        let record = current.as_object().cloned().unwrap_or_default();
        let steps: Vec<Value> = wire::plan(&record, patch, Self::licence())
            .iter()
            .map(step_json)
            .collect();
        Ok(json!({ "steps": steps }))
    }

    fn updated(current: Value, plan: Value) -> Value {
        let mut record = current.as_object().cloned().unwrap_or_default();
        for step in plan["steps"].as_array().into_iter().flatten() {
            if let Err(refusal) = store(&mut record, step) {
                panic!("Cova would refuse a write of the plan: {refusal}");
            }
        }
        Value::Object(record)
    }

    fn read(record: &Value) -> Result<Customer, String> {
        wire::customer(record, Self::licence())
    }

    /// A list (bare, HAL or a search's `Results`) with the unusable records skipped, or one
    /// customer.
    fn read_answer(answer: &Value) -> Result<Vec<Customer>, String> {
        let _ = wire::links_next(answer);
        match wire::records(answer) {
            Ok(items) => Ok(items
                .iter()
                .filter_map(|i| wire::customer(i, Self::licence()).ok())
                .collect()),
            Err(_) => wire::customer(answer, Self::licence()).map(|c| vec![c]),
        }
    }

    fn as_held(mut customer: Customer) -> Customer {
        customer.gender = None;
        if !L {
            customer.drivers_license = None;
        }
        customer.phone = customer
            .phone
            .as_ref()
            .and_then(|p| crate::convert::display_phone(p.as_str()));
        customer
    }

    fn refused(_customer: &NewCustomer) -> Option<&'static str> {
        None
    }

    fn refused_patch(_patch: &CustomerPatch) -> Option<&'static str> {
        None
    }
}

mod with_licence_extension {
    super::wire_properties!(super::CovaWire<true>);
}

mod without_licence_extension {
    super::wire_properties!(super::CovaWire<false>);
}

/// How a register may write a North American number: the groups every writing keeps whole.
fn written(area: &str, exchange: &str, line: &str, form: u8) -> String {
    match form {
        0 => format!("{area}{exchange}{line}"),
        1 => format!("({area}) {exchange}-{line}"),
        2 => format!("{area}-{exchange}-{line}"),
        3 => format!("{area}.{exchange}.{line}"),
        4 => format!("+1 {area} {exchange} {line}"),
        5 => format!("1-{area}-{exchange}-{line}"),
        _ => format!("+1{area}{exchange}{line}"),
    }
}

proptest! {
    /// The phone search finds a number however the register wrote it: each criterion is a
    /// part of the written value (Cova's `Contains`), and the digits then match in our code.
    #[test]
    fn a_phone_is_found_however_a_register_wrote_it(
        area in "[2-9][0-9]{2}", exchange in "[0-9]{3}", line in "[0-9]{4}",
        form in 0..7u8, asked_with_one in any::<bool>(),
    ) {
        let value = written(&area, &exchange, &line, form);
        let digits = format!("{}{area}{exchange}{line}", if asked_with_one { "1" } else { "" });
        for criterion in wire::phone_criteria(&digits).unwrap() {
            let part = criterion["Criteria"].as_str().unwrap();
            prop_assert!(value.contains(part), "{} in {}", part, value);
        }
        let record = json!({"ContactMethods": [{"ContactMethodCategoryId": 1, "Value": value}]});
        prop_assert!(wire::has_phone(record.as_object().unwrap(), &digits));
        let other = format!("{area}{exchange}{:04}", (line.parse::<u32>().unwrap() + 1) % 10_000);
        prop_assert!(!wire::has_phone(record.as_object().unwrap(), &other));
    }

    /// An update is planned once: after its writes, the same patch plans nothing (so a plan
    /// made again after a stale `Version` does only what is left).
    #[test]
    fn a_patch_applied_plans_nothing_more(base in new_customer(), patch in patch(), with in any::<bool>()) {
        let licence = with.then_some(LICENCE);
        let (body, _) = wire::create_body(&base, licence);
        let created = CovaWire::<true>::created(body, &json!("0b1c2d3e-0000-4000-8000-000000000001"));
        let record = created.as_object().cloned().unwrap();
        let steps: Vec<Value> = wire::plan(&record, &patch, licence).iter().map(step_json).collect();
        let after = CovaWire::<true>::updated(created, json!({ "steps": steps }));
        let again = wire::plan(after.as_object().unwrap(), &patch, licence);
        prop_assert!(again.is_empty(), "{:?}", again);
    }

    /// Whatever Cova's 400 holds, errors land only on our fields, with the contract's words.
    #[test]
    fn model_state_names_only_our_fields(
        keys in proptest::collection::vec(prop_oneof![
            "(customer\\.)?(PrimaryName|FamilyName|DateOfBirth|Notes|CustomerTypeId|Version)",
            "customer\\.(ContactMethods|CustomerExtensions)\\[[0-9]\\]\\.(Value|Version)",
            "(contactMethod|customerExtension)\\.(Value|Version)",
            any::<String>(),
        ], 0..6),
        message in prop_oneof![any::<String>(), Just("The field is required.".to_owned()), Just("maximum length of 12".to_owned())],
    ) {
        let state: Map<String, Value> = keys.into_iter().map(|k| (k, json!([message.clone()]))).collect();
        let carried = wire::Carried { contact_methods: vec!["phone"], extensions: vec!["drivers_license"], item: Some("email") };
        for body in [json!({"ModelState": state}), json!({"Message": message})] {
            let errors = wire::field_errors(&body, &carried);
            for field in errors.fields() {
                prop_assert!(["first_name", "last_name", "birthday", "notes", "phone", "email", "drivers_license"].contains(&field), "{}", field);
                for text in errors.get(field).unwrap() {
                    prop_assert!(
                        ["can't be blank", "is invalid", "is not a valid date"].contains(&text.as_str())
                            || (text.starts_with("is too long (maximum is ") && text.ends_with(" characters)")),
                        "{}", text
                    );
                }
            }
        }
    }
}
