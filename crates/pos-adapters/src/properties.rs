//! Property tests' shared parts: strategies for valid domain customers and patches and for
//! arbitrary vendor JSON, what every customer read from a vendor must be, and the one
//! harness every vendor's wire mapping plugs into ([`WireModel`] and [`wire_properties!`]):
//! "a customer sent and read back is equal, up to what the vendor cannot carry", "a patch
//! changes exactly the fields it names" and "any answer reads as valid customers or an
//! error".

use chrono::NaiveDate;
use domain::{
    Customer, CustomerForm, CustomerId, CustomerPatch, CustomerStatus, Email, Input, NewCustomer,
    PersonName, Phone, PosError, TextKind,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;

use crate::convert::date_prefix;

pub(crate) fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

/// ASCII names, names with marks and apostrophes, and any non-blank Unicode.
pub(crate) fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z][a-z]{0,15}",
        "[A-Z][a-z]{0,8}( |-|')[A-Z][a-zé]{0,8}",
        vec(
            any::<char>().prop_filter("not blank", |c| !c.is_whitespace()),
            1..=30
        )
        .prop_map(String::from_iter),
    ]
}

pub(crate) fn email() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9_+.-]{0,15}@[a-z0-9]{1,12}\\.[a-z]{2,6}"
}

/// 10 to 15 digits, with separators and maybe a leading `+`; a fifth are North American
/// (`1` then ten digits) so the ten-digit vendors see them often.
pub(crate) fn phone() -> impl Strategy<Value = String> {
    let digits = prop_oneof!["[0-9]{10,15}", "1[0-9]{10}", "[0-9]{10}",];
    (digits, vec("[ .()-]?", 15), any::<bool>()).prop_map(|(digits, seps, plus)| {
        let mut text = if plus { "+".to_owned() } else { String::new() };
        for (digit, sep) in digits.chars().zip(seps.iter().cycle()) {
            text.push(digit);
            text.push_str(sep);
        }
        text
    })
}

/// A past date with a four-digit year, in either input format.
pub(crate) fn birthday() -> impl Strategy<Value = String> {
    let first = NaiveDate::from_ymd_opt(1000, 1, 1).unwrap();
    let span = (today() - first).num_days();
    (0..=span, any::<bool>()).prop_map(move |(days, us)| {
        let date = first + chrono::Duration::days(days);
        let format = if us { "%m/%d/%Y" } else { "%Y-%m-%d" };
        date.format(format).to_string()
    })
}

pub(crate) fn gender() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["male", "Female", "OTHER", "m", "F", "o"]).prop_map(str::to_owned)
}

/// Up to 64 characters, any of them.
pub(crate) fn license() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z0-9]{1,3}[- ]?[A-Z0-9]{1,20}",
        vec(any::<char>(), 1..=64).prop_map(String::from_iter),
    ]
}

pub(crate) fn notes() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[\\PC\n]{0,300}"]
}

fn optional(value: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Input> {
    prop_oneof![
        1 => Just(Input::Absent),
        1 => Just(Input::Null),
        4 => value.prop_map(Input::Text),
    ]
    .boxed()
}

fn form(names: fn() -> BoxedStrategy<Input>) -> impl Strategy<Value = CustomerForm> {
    (
        names(),
        names(),
        optional(gender()),
        optional(birthday()),
        optional(email()),
        optional(phone()),
        optional(license()),
        optional(notes()),
    )
        .prop_map(
            |(first_name, last_name, gender, birthday, email, phone, drivers_license, notes)| {
                CustomerForm {
                    first_name,
                    last_name,
                    gender,
                    birthday,
                    email,
                    phone,
                    drivers_license,
                    notes,
                }
            },
        )
}

/// A valid customer to create, made the way the API makes one.
pub(crate) fn new_customer() -> impl Strategy<Value = NewCustomer> {
    form(|| name().prop_map(Input::Text).boxed())
        .prop_filter_map("a valid form", |f| NewCustomer::parse(&f, today()).ok())
}

/// A valid PATCH (absent fields untouched, null ones cleared), made the way the API
/// makes one; a PUT is a patch that names every field.
pub(crate) fn patch() -> impl Strategy<Value = CustomerPatch> {
    prop_oneof![
        form(|| prop_oneof![Just(Input::Absent), name().prop_map(Input::Text)].boxed())
            .prop_filter_map("a valid patch", |f| {
                CustomerPatch::parse_partial(&f, today()).ok()
            }),
        form(|| name().prop_map(Input::Text).boxed()).prop_filter_map("a valid put", |f| {
            CustomerPatch::parse_full(&f, today()).ok()
        }),
    ]
}

/// Any JSON value, a few levels deep.
pub(crate) fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[ 0-9()+.-]{0,16}".prop_map(Value::from),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9:]{8})?".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec(("[a-zA-Z_]{1,12}", inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A JSON object with some of `keys` (and maybe others), each any JSON value.
pub(crate) fn record(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    vec(
        (
            prop_oneof![
                4 => prop::sample::select(keys).prop_map(str::to_owned),
                1 => "[a-zA-Z_]{1,12}",
            ],
            prop_oneof![
                3 => any::<String>().prop_map(Value::from),
                1 => json(),
            ],
        ),
        0..=keys.len() + 2,
    )
    .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
}

/// What every customer read from a vendor must be: as valid as a parsed one.
pub(crate) fn assert_valid(c: &Customer) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        CustomerId::parse(c.customer_id.as_str()),
        Some(c.customer_id.clone())
    );
    prop_assert_eq!(
        PersonName::parse(c.first_name.as_str()),
        Ok(c.first_name.clone())
    );
    prop_assert_eq!(
        PersonName::parse(c.last_name.as_str()),
        Ok(c.last_name.clone())
    );
    prop_assert!(!c.status.as_str().is_empty());
    prop_assert_eq!(c.status.as_str(), c.status.as_str().to_ascii_uppercase());
    if let Some(email) = &c.email {
        prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
    }
    if let Some(phone) = &c.phone {
        prop_assert_eq!(Phone::parse(phone.as_str()), Ok(phone.clone()));
    }
    if let Some(date) = c.birthday {
        // The API prints it as `YYYY-MM-DD`.
        let iso = date.format("%Y-%m-%d").to_string();
        prop_assert_eq!(date_prefix(&iso), Some(date), "{}", iso);
    }
    for text in [&c.drivers_license, &c.notes].into_iter().flatten() {
        prop_assert!(!text.is_empty());
        prop_assert_eq!(text.trim(), text.as_str());
    }
    // Storable and showable: no control character (PostgreSQL cannot store NUL), except the
    // line breaks and tabs a kiosk may give a licence or notes too.
    for (text, kind) in [
        (Some(c.status.as_str()), TextKind::SingleLine),
        (c.drivers_license.as_deref(), TextKind::MultiLine),
        (c.notes.as_deref(), TextKind::MultiLine),
    ] {
        if let Some(text) = text {
            prop_assert!(text.chars().all(|ch| kind.allows(ch)), "{:?}", text);
        }
    }
    Ok(())
}

/// A vendor's JSON mapping as the harness drives it: how we write a customer, how the vendor
/// stores what we wrote (an emulation from the vendor's facts, in docs/vendors/), and how we
/// read it back.
pub(crate) trait WireModel {
    /// The keys of the vendor's customer record, to make arbitrary records of its shape.
    const KEYS: &'static [&'static str];

    /// Ids as the vendor writes them.
    fn id() -> BoxedStrategy<Value>;
    /// Our create body, or the refusal we answer before any call.
    fn create_body(customer: &NewCustomer) -> Result<Value, PosError>;
    /// The record the vendor holds after that create (with `id`).
    fn created(body: Value, id: &Value) -> Value;
    /// Our update body for `patch`, knowing the stored record (vendors whose update replaces
    /// the whole record need it), or the refusal we answer before any call.
    fn update_body(current: &Value, patch: &CustomerPatch) -> Result<Value, PosError>;
    /// The record the vendor holds after that update.
    fn updated(current: Value, body: Value) -> Value;
    /// One record as our customer, or why it can't be one.
    fn read(record: &Value) -> Result<Customer, String>;
    /// A whole answer (any JSON the vendor could send) as customers, or an error; it must not
    /// panic, and what it gives must be valid.
    fn read_answer(answer: &Value) -> Result<Vec<Customer>, String>;
    /// A customer as the vendor can hold it: what the round trip may change.
    fn as_held(customer: Customer) -> Customer;
    /// The field we must refuse a create on before any call (a phone the vendor can't hold).
    fn refused(customer: &NewCustomer) -> Option<&'static str>;
    /// The same for a patch.
    fn refused_patch(patch: &CustomerPatch) -> Option<&'static str>;
    /// `customer` with what the vendor can't hold dropped, as a record to patch.
    fn holdable(customer: NewCustomer) -> NewCustomer {
        customer
    }

    /// Answers of the vendor's shape, and any JSON at all.
    fn answers() -> BoxedStrategy<Value> {
        prop_oneof![
            2 => record(Self::KEYS),
            2 => vec(prop_oneof![3 => record(Self::KEYS), 1 => json()], 0..5).prop_map(Value::Array),
            1 => json(),
        ]
        .boxed()
    }
}

fn refused_on(error: &PosError, field: &str) -> bool {
    matches!(error, PosError::Rejected(errors) if errors.get(field).is_some())
}

fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A customer of ours written to the vendor and read back is the one we wrote, up to what the
/// vendor cannot carry; one it cannot hold at all is refused on the field, never mangled.
pub(crate) fn round_trip<M: WireModel>(new: NewCustomer, id: Value) -> Result<(), TestCaseError> {
    match (M::create_body(&new), M::refused(&new)) {
        (Err(error), Some(field)) => prop_assert!(refused_on(&error, field), "{:?}", error),
        (Err(error), None) => {
            prop_assert!(false, "refused a customer the vendor can hold: {error:?}")
        }
        (Ok(_), Some(field)) => {
            prop_assert!(false, "sent a customer whose {field} the vendor can't hold")
        }
        (Ok(body), None) => {
            let back = M::read(&M::created(body, &id)).map_err(TestCaseError::fail)?;
            let customer_id =
                CustomerId::parse(&id_text(&id)).ok_or_else(|| TestCaseError::fail("id"))?;
            let want = new.into_customer(customer_id, CustomerStatus::active());
            prop_assert_eq!(back, M::as_held(want));
        }
    }
    Ok(())
}

/// A patch changes exactly the fields it names, as the vendor holds them afterwards (a PUT is
/// a patch naming every field).
pub(crate) fn patch_exactly<M: WireModel>(
    base: NewCustomer,
    patch: CustomerPatch,
    id: Value,
) -> Result<(), TestCaseError> {
    let body = M::create_body(&M::holdable(base))
        .map_err(|e| TestCaseError::fail(format!("a holdable customer was refused: {e:?}")))?;
    let stored = M::created(body, &id);
    let before = M::read(&stored).map_err(TestCaseError::fail)?;
    match (M::update_body(&stored, &patch), M::refused_patch(&patch)) {
        (Err(error), Some(field)) => prop_assert!(refused_on(&error, field), "{:?}", error),
        (Err(error), None) => prop_assert!(false, "refused a patch the vendor can hold: {error:?}"),
        (Ok(_), Some(field)) => {
            prop_assert!(false, "sent a patch whose {field} the vendor can't hold")
        }
        (Ok(body), None) => {
            let after = M::read(&M::updated(stored, body)).map_err(TestCaseError::fail)?;
            let mut want = before;
            want.apply(&patch);
            prop_assert_eq!(after, M::as_held(want));
        }
    }
    Ok(())
}

/// Anything the vendor could answer reads, without a panic, as valid customers or an error.
pub(crate) fn any_answer<M: WireModel>(answer: Value) -> Result<(), TestCaseError> {
    if let Ok(customers) = M::read_answer(&answer) {
        for customer in &customers {
            assert_valid(customer)?;
        }
    }
    Ok(())
}

/// The three wire properties for one vendor's [`WireModel`], as proptest tests.
macro_rules! wire_properties {
    ($model:ty) => {
        proptest::proptest! {
            #[test]
            fn a_new_customer_comes_back_as_it_went(
                new in $crate::properties::new_customer(),
                id in <$model as $crate::properties::WireModel>::id(),
            ) {
                $crate::properties::round_trip::<$model>(new, id)?;
            }

            #[test]
            fn a_patch_changes_exactly_what_it_names(
                base in $crate::properties::new_customer(),
                patch in $crate::properties::patch(),
                id in <$model as $crate::properties::WireModel>::id(),
            ) {
                $crate::properties::patch_exactly::<$model>(base, patch, id)?;
            }

            #[test]
            fn any_answer_reads_as_valid_customers_or_an_error(
                answer in <$model as $crate::properties::WireModel>::answers(),
            ) {
                $crate::properties::any_answer::<$model>(answer)?;
            }
        }
    };
}
pub(crate) use wire_properties;

/// The harness run on a vendor that holds our customer as is (snake_case JSON, read through
/// [`crate::convert::Incoming`]; its first run caught that ten-digit phones come back dashed),
/// so the harness itself is known to hold before any vendor plugs into it, and is built with
/// no vendor feature on.
mod plain {
    use super::*;
    use crate::convert::Incoming;
    use serde_json::{Map, json};

    struct PlainWire;

    fn text(value: Option<&str>) -> Value {
        value.map_or(Value::Null, |v| json!(v))
    }

    fn fields(
        first: &str,
        last: &str,
        c: (Option<String>, Option<String>, Option<String>),
    ) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("first_name".into(), json!(first));
        map.insert("last_name".into(), json!(last));
        map.insert("email".into(), text(c.0.as_deref()));
        map.insert("phone".into(), text(c.1.as_deref()));
        map.insert("birthday".into(), text(c.2.as_deref()));
        map
    }

    impl WireModel for PlainWire {
        const KEYS: &'static [&'static str] = &[
            "id",
            "first_name",
            "last_name",
            "gender",
            "birthday",
            "email",
            "phone",
            "drivers_license",
            "notes",
        ];

        fn id() -> BoxedStrategy<Value> {
            "[0-9a-f]{1,12}".prop_map(|s| json!(s)).boxed()
        }

        fn create_body(c: &NewCustomer) -> Result<Value, PosError> {
            let mut map = fields(
                c.first_name.as_str(),
                c.last_name.as_str(),
                (
                    c.email.as_ref().map(|e| e.as_str().to_owned()),
                    c.phone.as_ref().map(|p| p.as_str().to_owned()),
                    c.birthday.map(|d| d.format("%Y-%m-%d").to_string()),
                ),
            );
            map.insert("gender".into(), text(c.gender.map(|g| g.as_str())));
            map.insert("drivers_license".into(), text(c.drivers_license.as_deref()));
            map.insert("notes".into(), text(c.notes.as_deref()));
            Ok(Value::Object(map))
        }

        fn created(mut body: Value, id: &Value) -> Value {
            body["id"] = id.clone();
            body
        }

        /// A whole-record update: the patch applied to what is held, sent back entire.
        fn update_body(current: &Value, patch: &CustomerPatch) -> Result<Value, PosError> {
            let mut customer = Self::read(current).map_err(|message| PosError::BadAnswer {
                vendor: domain::Vendor::Local,
                message,
                response: None,
            })?;
            customer.apply(patch);
            let new = NewCustomer {
                first_name: customer.first_name,
                last_name: customer.last_name,
                gender: customer.gender,
                birthday: customer.birthday,
                email: customer.email,
                phone: customer.phone,
                drivers_license: customer.drivers_license,
                notes: customer.notes,
            };
            Self::create_body(&new)
        }

        fn updated(current: Value, mut body: Value) -> Value {
            body["id"] = current["id"].clone();
            body
        }

        fn read(record: &Value) -> Result<Customer, String> {
            let field = |key: &str| record.get(key).and_then(Value::as_str);
            Incoming {
                customer_id: field("id").map(str::to_owned),
                first_name: field("first_name"),
                last_name: field("last_name"),
                gender: field("gender").and_then(|g| domain::Gender::parse(g).ok()),
                birthday: field("birthday"),
                email: field("email"),
                phone: field("phone"),
                drivers_license: field("drivers_license"),
                notes: field("notes"),
                status: None,
            }
            .into_customer()
        }

        fn read_answer(answer: &Value) -> Result<Vec<Customer>, String> {
            match answer {
                Value::Array(items) => {
                    Ok(items.iter().filter_map(|i| Self::read(i).ok()).collect())
                }
                one => Self::read(one).map(|c| vec![c]),
            }
        }

        /// Ten-digit phones show dashed, as every vendor's are.
        fn as_held(mut customer: Customer) -> Customer {
            customer.phone = customer
                .phone
                .and_then(|p| crate::convert::display_phone(p.as_str()));
            customer
        }

        fn refused(_: &NewCustomer) -> Option<&'static str> {
            None
        }

        fn refused_patch(_: &CustomerPatch) -> Option<&'static str> {
            None
        }
    }

    crate::properties::wire_properties!(PlainWire);
}
