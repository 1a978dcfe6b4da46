//! Property tests of the Treez conversions: a customer of ours sent to Treez and read back
//! (what `POST customer/detailcustomer` stores and a look-up returns) is the customer we sent,
//! a patch changes exactly the fields it names, and any answer Treez could send reads without
//! a panic as valid customers or an error.
//!
//! What Treez cannot carry, so what the round trip is allowed to change:
//! - `phone`: Treez keeps exactly ten digits. A North American number (`+1 (555) 123-4567`)
//!   loses its `1` and its formatting and comes back as `555-123-4567`; any other number
//!   (fewer or more digits, another country code) is refused before any call with a 422 on
//!   `phone`, never stored mangled.
//! - `gender`: none (absent or cleared) is sent as `U`, "unspecified", and read back as none.
//! - `status`: not ours to send; a record without one reads as `ACTIVE`.
//!
//! Names, `birthday`, `email`, `drivers_license` and `notes` come back equal.

use domain::{Customer, CustomerId, CustomerPatch, CustomerStatus, PosError};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::wire;
use crate::convert::properties::{assert_valid, json, new_customer, patch, record};
use crate::convert::{display_phone, ten_digits};

const KEYS: &[&str] = &[
    "customer_id",
    "status",
    "first_name",
    "last_name",
    "gender",
    "birthday",
    "email",
    "phone",
    "drivers_license",
    "notes",
];

/// A customer as Treez can hold it: its phone as the ten digits Treez keeps, shown dashed.
fn as_treez_holds_it(mut customer: Customer) -> Customer {
    customer.phone = customer
        .phone
        .as_ref()
        .and_then(ten_digits)
        .and_then(display_phone);
    customer
}

fn fits_treez(phone: Option<&domain::Phone>) -> bool {
    phone.is_none_or(|p| ten_digits(p).is_some())
}

fn with_id(mut body: Value, id: &Value) -> Value {
    if let Some(object) = body.as_object_mut() {
        object.insert("customer_id".into(), id.clone());
    }
    body
}

fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Treez's ids are numbers in some answers and strings in others.
fn treez_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u32>().prop_map(|n| json!(n)),
        "[0-9A-Za-z-]{1,20}".prop_map(|s| json!(s)),
    ]
}

fn phone_refused(error: &PosError) -> bool {
    matches!(error, PosError::Rejected(errors) if errors.get("phone") == Some(&["is invalid".to_owned()][..]))
}

proptest! {
    #[test]
    fn a_new_customer_comes_back_as_it_went(new in new_customer(), id in treez_id()) {
        match wire::new_customer(&new, "ADULT") {
            Err(error) => {
                prop_assert!(!fits_treez(new.phone.as_ref()));
                prop_assert!(phone_refused(&error), "{:?}", error);
            }
            Ok(body) => {
                prop_assert!(fits_treez(new.phone.as_ref()));
                let back = wire::customer(&with_id(body, &id)).unwrap();
                let customer_id = CustomerId::parse(&id_text(&id)).unwrap();
                let want = new.into_customer(customer_id, CustomerStatus::active());
                prop_assert_eq!(back, as_treez_holds_it(want));
            }
        }
    }

    #[test]
    fn a_patch_changes_exactly_what_it_names(mut base in new_customer(), patch in patch(), id in treez_id()) {
        base.phone = base.phone.filter(|p| ten_digits(p).is_some());
        let mut stored = with_id(wire::new_customer(&base, "ADULT").unwrap(), &id);
        let before = wire::customer(&stored).unwrap();
        match wire::patch(&patch) {
            Err(error) => {
                prop_assert!(!fits_treez(patch.phone.as_ref().and_then(Option::as_ref)));
                prop_assert!(phone_refused(&error), "{:?}", error);
            }
            Ok(body) => {
                prop_assert!(fits_treez(patch.phone.as_ref().and_then(Option::as_ref)));
                // Treez's update stores every field it is sent, `null` clearing one.
                let (Some(record), Value::Object(changes)) = (stored.as_object_mut(), body) else {
                    panic!("bodies are objects");
                };
                record.extend(changes);
                let after = wire::customer(&stored).unwrap();
                let mut want = before;
                want.apply(&patch);
                prop_assert_eq!(after, as_treez_holds_it(want));
            }
        }
    }

    #[test]
    fn a_put_clears_what_it_does_not_name(base in new_customer(), id in treez_id()) {
        let full = CustomerPatch {
            first_name: Some(base.first_name.clone()),
            last_name: Some(base.last_name.clone()),
            gender: Some(None),
            birthday: Some(None),
            email: Some(None),
            phone: Some(None),
            drivers_license: Some(None),
            notes: Some(None),
        };
        let body = wire::patch(&full).unwrap();
        let object = body.as_object().unwrap();
        prop_assert_eq!(object.get("gender"), Some(&json!("U")));
        for field in ["birthday", "email", "phone", "drivers_license", "notes"] {
            prop_assert_eq!(object.get(field), Some(&Value::Null), "{}", field);
        }
        let mut stored = with_id(json!({"first_name": "X", "last_name": "Y"}), &id);
        if let Some(record) = stored.as_object_mut() {
            record.extend(object.clone());
        }
        let back = wire::customer(&stored).unwrap();
        prop_assert_eq!((back.gender, back.birthday, back.email, back.phone), (None, None, None, None));
        prop_assert_eq!((back.drivers_license, back.notes), (None, None));
    }

    #[test]
    fn any_treez_answer_reads_as_valid_customers_or_an_error(
        data in prop_oneof![
            json(),
            record(KEYS),
            vec(prop_oneof![record(KEYS), json()], 0..5).prop_map(Value::Array),
        ],
        code in prop_oneof![Just(Value::Null), Just(json!("SUCCESS")), Just(json!("FAIL")), json()],
        reason in json(),
    ) {
        let answer = json!({"resultCode": code, "resultReason": reason, "resultDetail": "x", "data": data});
        let Ok(envelope) = serde_json::from_value::<wire::Envelope>(answer) else {
            return Ok(());
        };
        let _ = (envelope.failed(), envelope.reason(), envelope.detail());
        if let Ok(customers) = envelope.customers() {
            for customer in &customers {
                assert_valid(customer)?;
            }
        }
    }

    #[test]
    fn rejections_name_at_most_one_of_our_fields(
        reason in prop_oneof![any::<String>(), "CUSTOMER_[A-Z_]{0,20}(_BLANK)?", Just("INVALID_DATE_FORMAT".to_owned())],
        detail in prop_oneof![any::<String>(), "Field [a-z_]{0,16}( cannot be blank)?"],
    ) {
        if let Some(errors) = wire::field_errors(&reason, &detail) {
            let fields: Vec<&str> = errors.fields().collect();
            prop_assert_eq!(fields.len(), 1);
            prop_assert!(KEYS.contains(&fields[0]), "{:?}", fields);
            prop_assert_eq!(errors.get(fields[0]).map(<[String]>::len), Some(1));
        }
    }
}
