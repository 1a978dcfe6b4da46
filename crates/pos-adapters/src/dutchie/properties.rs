//! Property tests of the Dutchie conversions: a customer of ours written to Dutchie
//! (`POST /customer/customer`) and read back (`customers-paginated`, `customerLookup`) is the
//! customer we wrote, a sparse update changes exactly the fields it names, and any record
//! Dutchie could send reads without a panic as a valid customer or an error.
//!
//! Dutchie is emulated as the adapter assumes it behaves (docs/vendors/dutchie.md): it stores
//! the camelCase fields it is sent, an empty string clears a field, and it answers with the
//! same names.
//!
//! What Dutchie cannot carry, so what the round trip is allowed to change:
//! - `drivers_license`: write-only. It is sent as `driversLicenseID`, but Dutchie answers only
//!   `driversLicenseHash`, which we do not read: a customer read from Dutchie never has one.
//! - `phone`: sent as digits only. Every digit comes back (a country code too), shown as
//!   `555-123-4567` when there are ten and as bare digits otherwise. A number a register put in
//!   `cellPhone` is read when `phone` is empty, but our updates write `phone` only, so a PATCH
//!   cannot change or clear a `cellPhone` number (not modelled below).
//! - `status`: Dutchie's (`Active` reads as `ACTIVE`).
//!
//! Names, `gender`, `birthday`, `email` and `notes` come back equal.

use domain::{
    Customer, CustomerId, CustomerPatch, CustomerStatus, FieldError, NewCustomer, PosError,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::wire::{self, WireCustomer, WireWrite};
use crate::convert::display_phone;
use crate::properties::{WireModel, json, new_customer, wire_properties};

struct DutchieWire;

/// Dutchie storing a write: the fields sent replace the stored ones, the licence is kept
/// only as a hash, and the record gets its id and status. With `cell`, the register put the
/// phone in `cellPhone` instead.
fn store(previous: Map<String, Value>, sent: Value, id: &Value, cell: bool) -> Value {
    let Value::Object(sent) = sent else {
        panic!("a write is an object");
    };
    let mut record = previous;
    for (key, value) in sent {
        match key.as_str() {
            "customerId" => {}
            "driversLicenseID" => {
                let hash = value
                    .as_str()
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("hash-{}", v.len()));
                record.insert("driversLicenseHash".into(), json!(hash));
            }
            "phone" if cell => {
                record.insert("cellPhone".into(), value);
                record.insert("phone".into(), json!(""));
            }
            _ => {
                record.insert(key, value);
            }
        }
    }
    record.insert("customerId".into(), id.clone());
    record.insert("status".into(), json!("Active"));
    Value::Object(record)
}

fn read(record: &Value) -> Result<Customer, String> {
    serde_json::from_value::<WireCustomer>(record.clone())
        .map_err(|e| e.to_string())?
        .to_customer()
}

impl WireModel for DutchieWire {
    const KEYS: &'static [&'static str] = &[
        "customerId",
        "firstName",
        "lastName",
        "phone",
        "cellPhone",
        "emailAddress",
        "status",
        "gender",
        "dateOfBirth",
        "notes",
        "driversLicenseHash",
    ];

    fn id() -> BoxedStrategy<Value> {
        (1i64..=i64::MAX).prop_map(|id| json!(id)).boxed()
    }

    fn create_body(customer: &NewCustomer) -> Result<Value, PosError> {
        let address = wire::Address {
            address1: "1 Main St".into(),
            city: "Portland".into(),
            state: "OR".into(),
            postal_code: "97214".into(),
        };
        let context = wire::CreateContext {
            address: &address,
            customer_type: "Recreational",
            idempotency_key: "6f1c2a0e-9b7d-4c55-8e3a-51d2c0f47a19".into(),
        };
        Ok(serde_json::to_value(WireWrite::create(customer, context)).unwrap())
    }

    fn created(body: Value, id: &Value) -> Value {
        store(Map::new(), body, id, false)
    }

    fn update_body(current: &Value, patch: &CustomerPatch) -> Result<Value, PosError> {
        let id = current["customerId"].as_i64().unwrap();
        Ok(serde_json::to_value(WireWrite::update(id, patch)).unwrap())
    }

    fn updated(current: Value, body: Value) -> Value {
        let Value::Object(previous) = current else {
            panic!("a record is an object");
        };
        let id = previous["customerId"].clone();
        store(previous, body, &id, false)
    }

    fn read(record: &Value) -> Result<Customer, String> {
        read(record)
    }

    /// A single record, or a page (a list of them) with the unusable ones skipped.
    fn read_answer(answer: &Value) -> Result<Vec<Customer>, String> {
        match answer {
            Value::Array(items) => Ok(items.iter().filter_map(|i| read(i).ok()).collect()),
            one => read(one).map(|c| vec![c]),
        }
    }

    /// No licence (Dutchie keeps only its hash), the phone's digits in our display form.
    fn as_held(mut customer: Customer) -> Customer {
        customer.drivers_license = None;
        customer.phone = customer
            .phone
            .as_ref()
            .and_then(|p| display_phone(p.digits()));
        customer
    }

    fn refused(_customer: &NewCustomer) -> Option<&'static str> {
        None
    }

    fn refused_patch(_patch: &CustomerPatch) -> Option<&'static str> {
        None
    }
}

wire_properties!(DutchieWire);

proptest! {
    /// A register that keeps the number in `cellPhone` (ours go to `phone`) reads the same.
    #[test]
    fn a_phone_in_cell_phone_reads_as_the_phone(new in new_customer(), id in 1i64..=i64::MAX) {
        let body = DutchieWire::create_body(&new).unwrap();
        let stored = store(Map::new(), body, &json!(id), true);
        let back = read(&stored).unwrap();
        let want = new.into_customer(CustomerId::parse(&id.to_string()).unwrap(), CustomerStatus::active());
        prop_assert_eq!(back, DutchieWire::as_held(want));
    }

    #[test]
    fn any_dutchie_record_reads_as_a_valid_customer_or_an_error(
        record in DutchieWire::answers(),
        digits in "[0-9]{10,15}",
        first in prop_oneof![Just(None), any::<String>().prop_map(Some)],
    ) {
        let Ok(wire) = serde_json::from_value::<WireCustomer>(record) else {
            return Ok(());
        };
        let _ = (wire.id(), wire.has_phone_digits(&digits), wire.has_names(first.as_deref(), None));
        if let Ok(customer) = wire.to_customer() {
            prop_assert_eq!(customer.drivers_license, None);
        }
    }

    #[test]
    fn property_errors_land_on_our_fields_with_our_messages(
        state in proptest::collection::vec(
            (
                prop_oneof![
                    "(request\\.)?(customer\\.)?(FirstName|lastName|DateOfBirth|EmailAddress|Email|Phone|CellPhone|Gender|Notes|DriversLicenseID|Loyalty)",
                    any::<String>(),
                ],
                prop_oneof![
                    "The [A-Za-z]{1,12} field is required\\.".prop_map(|s| json!([s])),
                    "The field [A-Za-z]{1,12} must be a string with a maximum length of [0-9]{1,25}\\.".prop_map(|s| json!([s])),
                    json(),
                ],
            ),
            0..6,
        ),
        key in prop_oneof![Just("propertyErrors"), Just("PropertyErrors"), Just("errors")],
    ) {
        let items: Vec<Value> = state
            .into_iter()
            .map(|(name, error)| json!({"propertyName": name, "propertyError": error.get(0).cloned().unwrap_or(error)}))
            .collect();
        let body = json!({"message": "One or more validation errors occurred.", key: items});
        let errors = wire::field_errors(&body);
        let ours = ["first_name", "last_name", "birthday", "email", "phone", "gender", "notes", "drivers_license"];
        for field in errors.fields() {
            prop_assert!(ours.contains(&field), "{}", field);
            for message in errors.get(field).unwrap() {
                let contract = [FieldError::Blank, FieldError::Invalid, FieldError::InvalidDate, FieldError::NotInList]
                    .iter()
                    .any(|e| e.to_string() == *message)
                    || (message.starts_with("is too long (maximum is ") && message.ends_with(" characters)"));
                prop_assert!(contract, "{}: {}", field, message);
            }
        }
    }
}
