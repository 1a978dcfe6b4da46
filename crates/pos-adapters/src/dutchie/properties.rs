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

use domain::{Customer, CustomerId, CustomerStatus, FieldError};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::wire::{self, WireCustomer, WireWrite};
use crate::convert::display_phone;
use crate::convert::properties::{assert_valid, json, new_customer, patch, record};

const KEYS: &[&str] = &[
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

/// A customer as Dutchie gives it back: no licence, the phone's digits in our display form.
fn as_dutchie_holds_it(mut customer: Customer) -> Customer {
    customer.drivers_license = None;
    customer.phone = customer
        .phone
        .as_ref()
        .and_then(|p| display_phone(p.digits()));
    customer
}

/// Dutchie storing a write: the fields sent replace the stored ones, the licence is kept
/// only as a hash, and the record gets its id and status. With `cell`, the register put the
/// phone in `cellPhone` instead.
fn store(previous: Map<String, Value>, write: &WireWrite, id: i64, cell: bool) -> Value {
    let Value::Object(sent) = serde_json::to_value(write).unwrap() else {
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
    record.insert("customerId".into(), json!(id));
    record.insert("status".into(), json!("Active"));
    Value::Object(record)
}

fn read(record: &Value) -> Result<Customer, String> {
    serde_json::from_value::<WireCustomer>(record.clone())
        .map_err(|e| e.to_string())?
        .to_customer()
}

proptest! {
    #[test]
    fn a_new_customer_comes_back_as_it_went(new in new_customer(), id in 1i64..=i64::MAX, cell in any::<bool>()) {
        let stored = store(Map::new(), &WireWrite::create(&new), id, cell);
        let back = read(&stored).unwrap();
        let want = new.into_customer(CustomerId::parse(&id.to_string()).unwrap(), CustomerStatus::active());
        prop_assert_eq!(back, as_dutchie_holds_it(want));
    }

    #[test]
    fn a_sparse_update_changes_exactly_what_it_names(base in new_customer(), patch in patch(), id in 1i64..=i64::MAX) {
        let Value::Object(stored) = store(Map::new(), &WireWrite::create(&base), id, false) else {
            panic!("a record is an object");
        };
        let before = read(&Value::Object(stored.clone())).unwrap();
        let updated = store(stored, &WireWrite::update(id, &patch), id, false);
        let after = read(&updated).unwrap();
        let mut want = before;
        want.apply(&patch);
        prop_assert_eq!(after, as_dutchie_holds_it(want));
    }

    #[test]
    fn any_dutchie_record_reads_as_a_valid_customer_or_an_error(
        record in prop_oneof![3 => record(KEYS), 1 => json()],
        digits in "[0-9]{10,15}",
        first in prop_oneof![Just(None), any::<String>().prop_map(Some)],
    ) {
        let Ok(wire) = serde_json::from_value::<WireCustomer>(record) else {
            return Ok(());
        };
        let _ = (wire.id(), wire.has_phone_digits(&digits), wire.has_names(first.as_deref(), None));
        if let Ok(customer) = wire.to_customer() {
            assert_valid(&customer)?;
            prop_assert_eq!(customer.drivers_license, None);
        }
    }

    #[test]
    fn model_state_errors_land_on_our_fields_with_our_messages(
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
        key in prop_oneof![Just("modelState"), Just("ModelState"), Just("errors")],
    ) {
        let body = json!({"message": "The request is invalid.", key: Value::Object(state.into_iter().collect())});
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
