//! Property tests of the Treez conversions, through the shared wire harness
//! ([`crate::properties::WireModel`]): a customer of ours sent to Treez and read back (what
//! `POST customer/detailcustomer` stores and a look-up returns) is the customer we sent, a
//! patch changes exactly the fields it names, and any answer Treez could send reads without a
//! panic as valid customers or an error. The update is modelled as the worst case the facts
//! allow (the whole record replaced, anything not sent cleared), so the patch property proves
//! the read-merge-write keeps every field the kiosk did not name.
//!
//! What Treez cannot carry, so what the round trip is allowed to change:
//! - `phone`: Treez keeps exactly ten digits. A North American number (`+1 (555) 123-4567`)
//!   loses its `1` and its formatting and comes back as `555-123-4567`; any other number
//!   (fewer or more digits, another country code, ten digits starting with 0 or 1) is refused
//!   before any call with a 422 on `phone`, never stored mangled.
//! - `gender`: none (absent or cleared) is sent as `U`, "unspecified", and read back as none.
//! - `status`: not ours to send; a record without one reads as `ACTIVE`.
//!
//! Names, `birthday`, `email`, `drivers_license` and `notes` come back equal.

use domain::{Customer, CustomerPatch, NewCustomer, PosError};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{PatientType, wire};
use crate::convert::{display_phone, ten_digits};
use crate::properties::{WireModel, wire_properties};

struct TreezWire;

fn fits(phone: Option<&domain::Phone>) -> bool {
    phone.is_none_or(|p| wire::treez_phone(p).is_some())
}

impl WireModel for TreezWire {
    const KEYS: &'static [&'static str] = &[
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

    /// Treez's ids are numbers in some answers and strings in others.
    fn id() -> BoxedStrategy<Value> {
        prop_oneof![
            any::<u32>().prop_map(|n| json!(n)),
            "[0-9A-Za-z-]{1,20}".prop_map(|s| json!(s)),
        ]
        .boxed()
    }

    fn create_body(customer: &NewCustomer) -> Result<Value, PosError> {
        let body = wire::new_customer(customer, PatientType::Adult)?;
        serde_json::to_value(body).map_err(|e| PosError::BadAnswer {
            vendor: domain::Vendor::Treez,
            message: e.to_string(),
            response: None,
        })
    }

    fn created(mut body: Value, id: &Value) -> Value {
        if let Some(object) = body.as_object_mut() {
            object.insert("customer_id".into(), id.clone());
        }
        body
    }

    fn update_body(current: &Value, patch: &CustomerPatch) -> Result<Value, PosError> {
        let record = current.as_object().cloned().unwrap_or_default();
        wire::update_body(&record, patch, PatientType::Adult)
    }

    /// The worst case the facts allow (docs/vendors/treez.md): the update replaces the whole
    /// record, every field it is not sent cleared; only Treez's own fields stay.
    fn updated(current: Value, body: Value) -> Value {
        let mut record = body.as_object().cloned().unwrap_or_default();
        for own in ["customer_id", "status", "signup_date", "last_update"] {
            if let Some(value) = current.get(own) {
                record.insert(own.to_owned(), value.clone());
            }
        }
        Value::Object(record)
    }

    fn read(record: &Value) -> Result<Customer, String> {
        wire::customer(record)
    }

    fn read_answer(data: &Value) -> Result<Vec<Customer>, String> {
        let answer = json!({"resultCode": "SUCCESS", "resultReason": null, "data": data});
        let envelope = wire::Envelope::read(&answer).map_err(|e| e.to_string())?;
        let _ = (envelope.failed(), envelope.reason(), envelope.detail());
        envelope.customers()
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
        (!fits(customer.phone.as_ref())).then_some("phone")
    }

    fn refused_patch(patch: &CustomerPatch) -> Option<&'static str> {
        (!fits(patch.phone.as_ref().and_then(Option::as_ref))).then_some("phone")
    }

    fn holdable(mut customer: NewCustomer) -> NewCustomer {
        customer.phone = customer.phone.filter(|p| wire::treez_phone(p).is_some());
        customer
    }
}

wire_properties!(TreezWire);

proptest! {
    #[test]
    fn any_envelope_reads_without_a_panic(
        code in prop_oneof![Just(Value::Null), Just(json!("SUCCESS")), Just(json!("FAIL")), crate::properties::json()],
        reason in crate::properties::json(),
        data in TreezWire::answers(),
    ) {
        let answer = json!({"resultCode": code, "resultReason": reason, "resultDetail": "x", "data": data});
        if let Ok(envelope) = wire::Envelope::read(&answer) {
            let _ = (envelope.failed(), envelope.reason(), envelope.detail(), envelope.customers());
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
            prop_assert!(TreezWire::KEYS.contains(&fields[0]), "{:?}", fields);
            prop_assert_eq!(errors.get(fields[0]).map(<[String]>::len), Some(1));
        }
    }
}
