//! Dutchie's quirks, against the Dutchie double. What every vendor must do is in the
//! conformance suite (`tests/conformance/`); this file keeps only what is Dutchie's own: its
//! wire body, the licence it keeps as a hash, `cellPhone`, whole-name look-ups, sparse
//! updates, `whoami`, the integrator key, model-state errors and its rate limit.
#![cfg(feature = "dutchie")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::NaiveDate;
use domain::{
    CreateKey, CustomerDirectory, CustomerId, CustomerPatch, CustomerQuery, Email, Gender,
    NewCustomer, OptionalField, PersonName, Phone, PosError, SearchFilter, Vendor,
};
use pos_adapters::dutchie::Dutchie;
use pos_adapters::{AdapterError, Settings, VendorAdapter};
use serde_json::{Value, json};
use vendor_doubles::dutchie::{Credentials, DutchieDouble};
use vendor_doubles::{Fault, Op};

fn double() -> DutchieDouble {
    DutchieDouble::start().unwrap()
}

/// The double's store config with `extra` keys merged over it.
fn config(double: &DutchieDouble, extra: Value) -> Value {
    let mut config = double.store_config();
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

fn connect_with(double: &DutchieDouble, extra: Value) -> Dutchie {
    Dutchie::connect(&config(double, extra), &Settings::default()).unwrap()
}

fn connect(double: &DutchieDouble) -> Dutchie {
    connect_with(double, json!({}))
}

fn john() -> NewCustomer {
    NewCustomer {
        first_name: PersonName::parse("John").unwrap(),
        last_name: PersonName::parse("Doe").unwrap(),
        gender: Some(Gender::Male),
        birthday: NaiveDate::from_ymd_opt(1990, 1, 2),
        email: Some(Email::parse("John.Doe@Example.com").unwrap()),
        phone: Some(Phone::parse("(555) 123-4567").unwrap()),
        drivers_license: Some("D1234567".into()),
        notes: Some("prefers edibles".into()),
    }
}

/// A create key no other create of the run shares (a new kiosk request).
fn new_key() -> CreateKey {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    CreateKey::derive(&[file!(), &n.to_string()])
}

fn bob() -> NewCustomer {
    NewCustomer {
        first_name: PersonName::parse("Bob").unwrap(),
        last_name: PersonName::parse("Ray").unwrap(),
        gender: None,
        birthday: None,
        email: Some(Email::parse("bob@example.com").unwrap()),
        phone: None,
        drivers_license: None,
        notes: None,
    }
}

fn query() -> CustomerQuery {
    CustomerQuery {
        limit: 25,
        ..Default::default()
    }
}

fn by_phone(digits: &str) -> CustomerQuery {
    CustomerQuery {
        phone_digits: Some(digits.into()),
        ..query()
    }
}

fn by_name(name: &str) -> CustomerQuery {
    CustomerQuery {
        name: Some(name.into()),
        ..query()
    }
}

fn id(text: &str) -> CustomerId {
    CustomerId::parse(text).unwrap()
}

// --- capabilities ------------------------------------------------------------------------

#[test]
fn capabilities_say_what_dutchie_offers() {
    let caps = Dutchie::CAPABILITIES;
    assert!(caps.list_customers && caps.search_customers && !caps.get_customer);
    assert!(caps.create_customer && caps.update_customer);
    assert_eq!(
        caps.search_by,
        &[SearchFilter::Email, SearchFilter::Phone, SearchFilter::Name]
    );
    assert_eq!(caps.unreadable_fields, &[OptionalField::DriversLicense]);
    assert!(caps.required_fields.is_empty());
}

#[tokio::test]
async fn create_sends_dutchie_fields_and_returns_the_customer_with_its_licence() {
    let double = double();
    let dutchie = connect(&double);
    let created = dutchie.create(&john(), &new_key()).await.unwrap();
    assert_eq!(created.customer_id.as_str(), "1001");
    assert_eq!(created.status.as_str(), "ACTIVE");
    assert_eq!(created.first_name.as_str(), "John");
    assert_eq!(created.gender, Some(Gender::Male));
    assert_eq!(created.birthday, NaiveDate::from_ymd_opt(1990, 1, 2));
    assert_eq!(created.email.unwrap().as_str(), "John.Doe@Example.com");
    assert_eq!(created.phone.unwrap().as_str(), "555-123-4567");
    assert_eq!(created.notes.as_deref(), Some("prefers edibles"));
    assert_eq!(
        created.drivers_license.as_deref(),
        Some("D1234567"),
        "the licence we sent, for the mirror"
    );

    // The store has no customer_type: Dutchie's first retail type is asked once.
    assert_eq!(double.count(Op::WhoAmI), 1);
    assert!(double.calls()[0].path.ends_with("/customer/customer-types"));
    let create = double
        .calls()
        .into_iter()
        .find(|c| c.op == Op::Create)
        .unwrap();
    let sent: Value = serde_json::from_str(&create.body).unwrap();
    let key = sent["idempotencyKey"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 36, "a GUID, as the ConsumerKey header");
    assert_eq!(
        sent,
        json!({
            "firstName": "John", "lastName": "Doe", "gender": "M",
            "dateOfBirth": "1990-01-02T00:00:00", "emailAddress": "John.Doe@Example.com",
            "phone": "5551234567", "driversLicenseID": "D1234567", "notes": "prefers edibles",
            "address1": "1200 SE Morrison St", "city": "Portland", "state": "OR",
            "postalCode": "97214", "status": "Active", "customerType": "Recreational",
            "idempotencyKey": key,
        })
    );

    let stored = double.customers();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].to_string().contains("D1234567"));
    assert_eq!(stored[0]["driversLicenseHash"].as_str().unwrap().len(), 64);

    let found = dutchie.find(&by_phone("5551234567")).await.unwrap();
    assert_eq!(
        found.customers[0].drivers_license, None,
        "a read never has the licence"
    );
    dutchie.create(&bob(), &new_key()).await.unwrap();
    assert_eq!(
        double.count(Op::WhoAmI),
        1,
        "the type is asked once per store"
    );
}

#[tokio::test]
async fn names_are_looked_up_whole_one_word_as_last_then_first_name() {
    let double = double();
    let dutchie = connect(&double);
    let created = dutchie.create(&john(), &new_key()).await.unwrap();
    let only = |page: domain::CustomerPage| {
        assert_eq!(page.next, None);
        page.customers
            .into_iter()
            .map(|c| c.customer_id)
            .collect::<Vec<_>>()
    };
    let want = vec![created.customer_id.clone()];
    assert_eq!(
        only(dutchie.find(&by_phone("5551234567")).await.unwrap()),
        want
    );
    let by_email = CustomerQuery {
        email: Some("john.doe@example.com".into()),
        ..query()
    };
    assert_eq!(only(dutchie.find(&by_email).await.unwrap()), want);
    assert_eq!(only(dutchie.find(&by_name("doe")).await.unwrap()), want);
    assert_eq!(
        only(dutchie.find(&by_name("john doe")).await.unwrap()),
        want
    );
    // One word is tried as the last name, then as the first.
    let searches = double.count(Op::Search);
    assert_eq!(only(dutchie.find(&by_name("john")).await.unwrap()), want);
    assert_eq!(double.count(Op::Search), searches + 2);
    // The lookup matches whole names only: a prefix is left to the mirror, which matches
    // prefixes.
    assert_eq!(
        dutchie.find(&by_name("jo")).await.unwrap_err(),
        PosError::Unsupported(domain::Operation::SearchCustomers)
    );
    let both = CustomerQuery {
        email: Some("john.doe@example.com".into()),
        ..by_phone("5551234567")
    };
    assert_eq!(only(dutchie.find(&both).await.unwrap()), want);
}

#[tokio::test]
async fn a_lookup_by_cell_phone_finds_the_customer() {
    let double = double();
    let dutchie = connect(&double);
    double.seed(json!({"firstName": "Cel", "lastName": "Only", "cellPhone": "555-777-8888"}));
    let page = dutchie.find(&by_phone("5557778888")).await.unwrap();
    assert_eq!(page.customers.len(), 1);
    assert_eq!(
        page.customers[0].phone.as_ref().unwrap().as_str(),
        "555-777-8888"
    );
}

#[tokio::test]
async fn update_sets_a_field_and_clears_another() {
    let double = double();
    let dutchie = connect(&double);
    let created = dutchie.create(&john(), &new_key()).await.unwrap();
    let patch = CustomerPatch {
        first_name: Some(PersonName::parse("Johnny").unwrap()),
        email: Some(None),
        ..Default::default()
    };
    let updated = dutchie.update(&created.customer_id, &patch).await.unwrap();
    assert_eq!(updated.first_name.as_str(), "Johnny");
    assert_eq!(updated.email, None);
    assert_eq!(updated.phone, created.phone, "absent fields are unchanged");
    assert_eq!(
        updated.drivers_license, None,
        "not in the patch, so unknown"
    );
    let sent: Value = serde_json::from_str(&double.calls().last().unwrap().body).unwrap();
    assert_eq!(
        sent,
        json!({"customerId": 1001, "firstName": "Johnny", "emailAddress": ""})
    );
    assert_eq!(double.count(Op::Update), 1);
    let stored = &double.customers()[0];
    assert_eq!(stored["firstName"], "Johnny");
    assert_eq!(stored["emailAddress"], Value::Null);

    let licence = CustomerPatch {
        drivers_license: Some(Some("Z999".into())),
        ..Default::default()
    };
    let updated = dutchie
        .update(&created.customer_id, &licence)
        .await
        .unwrap();
    assert_eq!(updated.drivers_license.as_deref(), Some("Z999"));
}

#[tokio::test]
async fn update_of_an_unknown_customer_is_not_found() {
    let double = double();
    let dutchie = connect(&double);
    let patch = CustomerPatch {
        notes: Some(Some("x".into())),
        ..Default::default()
    };
    assert_eq!(
        dutchie.update(&id("999999"), &patch).await.unwrap_err(),
        PosError::NotFound
    );
    assert_eq!(double.count(Op::Update), 1);
    // Dutchie's ids are integers: another id can't name a customer there.
    assert_eq!(
        dutchie.update(&id("abc"), &patch).await.unwrap_err(),
        PosError::NotFound
    );
    assert_eq!(double.count(Op::Any), 1);
}

#[tokio::test]
async fn whoami_names_the_location() {
    let double = double();
    let location = connect(&double).whoami().await.unwrap();
    assert_eq!(location.location_id, Some(4242));
    assert!(location.location_name.is_some());
    assert_eq!(double.count(Op::WhoAmI), 1);
}

// --- credentials -------------------------------------------------------------------------

#[tokio::test]
async fn the_integrator_key_goes_as_the_password() {
    let double = DutchieDouble::start_with(Credentials {
        integrator_key: Some("integrator-secret-42".into()),
        ..Credentials::default()
    })
    .unwrap();
    let dutchie = connect(&double);
    assert!(dutchie.whoami().await.is_ok());
    let debug = format!("{dutchie:?}");
    assert!(!debug.contains("integrator-secret-42"), "{debug}");
    assert!(
        !debug.contains(&double.credentials().location_key),
        "{debug}"
    );
    let mut plain = double.store_config();
    plain.as_object_mut().unwrap().remove("integrator_key");
    let without = Dutchie::connect(&plain, &Settings::default()).unwrap();
    assert!(matches!(
        without.whoami().await.unwrap_err(),
        PosError::Unauthorized(_)
    ));
}

// --- vendor errors and faults ------------------------------------------------------------

#[tokio::test]
async fn a_property_error_400_is_rejected_on_our_field() {
    let double = double();
    let dutchie = connect(&double);
    double.fail(Op::Create, Fault::Invalid, 1);
    let PosError::Rejected(errors) = dutchie.create(&john(), &new_key()).await.unwrap_err() else {
        panic!("expected Rejected");
    };
    assert_eq!(errors.get("first_name").unwrap(), ["can't be blank"]);
    assert!(double.customers().is_empty());
}

#[tokio::test]
async fn a_400_without_field_errors_is_an_upstream_error() {
    let double = double();
    let dutchie = connect(&double);
    double.fail(Op::Create, Fault::Status(400), 1);
    assert!(matches!(
        dutchie.create(&john(), &new_key()).await.unwrap_err(),
        PosError::Upstream(r) if r.status == 400 && r.body["message"].is_string()
    ));
}

// --- config ------------------------------------------------------------------------------

fn config_error(config: Value) -> String {
    match Dutchie::connect(&config, &Settings::default()) {
        Err(AdapterError::Config { vendor, message }) => {
            assert_eq!(vendor, Vendor::Dutchie);
            message
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

fn address() -> Value {
    json!({"address1": "1 Main St", "city": "Portland", "state": "OR", "postalCode": "97214"})
}

#[test]
fn dutchie_config_errors_name_the_key() {
    let ok = |extra: Value| {
        let mut config = json!({"location_key": "k", "default_address": address()});
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        config
    };
    assert_eq!(config_error(json!({})), "missing key \"location_key\"");
    assert_eq!(
        config_error(json!({"location_key": "k"})),
        "missing key \"default_address\""
    );
    let mut no_city = address();
    no_city.as_object_mut().unwrap().remove("city");
    assert_eq!(
        config_error(ok(json!({"default_address": no_city}))),
        "missing key \"default_address.city\""
    );
    assert_eq!(
        config_error(ok(json!({"location_key": "  "}))),
        "key \"location_key\" is blank"
    );
    assert_eq!(
        config_error(ok(json!({"location_key": 12345}))),
        "key \"location_key\" must be a string, not a number"
    );
    // A blank integrator key or customer type is none.
    assert!(
        Dutchie::connect(
            &ok(json!({"integrator_key": "", "customer_type": " "})),
            &Settings::default()
        )
        .is_ok()
    );
    let message = config_error(ok(json!({"location_key": "abc\ndef"})));
    assert!(
        message.contains("location_key") && !message.contains("abc"),
        "{message}"
    );
    let message = config_error(ok(json!({"integrator_key": "x\u{7}y"})));
    assert!(
        message.contains("integrator_key") && !message.contains("x\u{7}y"),
        "{message}"
    );
    let message = config_error(ok(json!({"location_key": "ab:cd"})));
    assert!(
        message.contains("':'") && !message.contains("ab:cd"),
        "{message}"
    );
}

#[test]
fn the_defaults_are_dutchie_production_and_its_rate_limits() {
    let config = json!({"location_key": "k", "default_address": address()});
    let dutchie = Dutchie::connect(&config, &Settings::default()).unwrap();
    let debug = format!("{dutchie:?}");
    assert!(debug.contains("https://api.pos.dutchie.com/"), "{debug}");
    assert!(
        debug.contains("rate_limit_per_minute: Some(120)"),
        "{debug}"
    );
    assert!(
        debug.contains("write_rate_limit_per_minute: Some(1500)"),
        "{debug}"
    );
    let mut tuned = config.clone();
    tuned["rate_limit_per_minute"] = json!(30);
    let tuned = Dutchie::connect(&tuned, &Settings::default()).unwrap();
    assert!(format!("{tuned:?}").contains("rate_limit_per_minute: Some(30)"));
}

// --- issue 16: Dutchie's own spec -----------------------------------------------------------

#[tokio::test]
async fn a_configured_customer_type_is_sent_without_asking_dutchie() {
    let double = double();
    let dutchie = connect_with(&double, json!({"customer_type": "Out of State"}));
    dutchie.create(&john(), &new_key()).await.unwrap();
    assert_eq!(double.count(Op::WhoAmI), 0);
    assert_eq!(double.customers()[0]["customerType"], "Out of State");
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_and_is_sent_again_makes_one_customer() {
    let double = double();
    let dutchie = connect(&double);
    let key = new_key();
    double.fail(
        Op::Create,
        Fault::AfterCommit(Box::new(Fault::Status(500))),
        1,
    );
    let error = dutchie.create(&john(), &key).await.unwrap_err();
    assert!(error.is_unreachable(), "{error:?}");
    // The kiosk retries with the same Idempotency-Key, so the same ConsumerKey.
    let created = dutchie.create(&john(), &key).await.unwrap();
    assert_eq!(double.customers().len(), 1);
    assert_eq!(double.replayed_creates(), 1);
    assert_eq!(created.customer_id.as_str(), "1001");
    let creates: Vec<_> = double
        .calls()
        .into_iter()
        .filter(|c| c.op == Op::Create)
        .collect();
    assert_eq!(creates.len(), 2);
    assert_eq!(
        creates[0].body, creates[1].body,
        "the same body and key both times"
    );
}

#[tokio::test]
async fn a_create_dutchie_de_duplicated_is_our_409_with_its_customer() {
    let double = double();
    let existing = double.seed(json!({
        "firstName": "John", "lastName": "Doe", "phone": "5551234567",
        "emailAddress": "jd@old-mail.com",
        "address1": "1 Main St", "city": "Portland", "state": "OR", "postalCode": "97214",
    }));
    let dutchie = connect(&double);
    let error = dutchie.create(&john(), &new_key()).await.unwrap_err();
    let PosError::Duplicate(customer) = error else {
        panic!("expected Duplicate, got {error:?}");
    };
    assert_eq!(customer.customer_id.as_str(), existing);
    assert_eq!(double.deduplicated_creates(), 1);
    assert_eq!(double.customers().len(), 1);
}

#[tokio::test]
async fn dutchie_refusals_and_limits_in_its_own_shapes() {
    let double = double();
    let dutchie = connect(&double);
    // 401 with an empty body.
    let wrong = connect_with(&double, json!({"location_key": "wrong-key-1234567890"}));
    let PosError::Unauthorized(response) = wrong.find(&query()).await.unwrap_err() else {
        panic!("expected Unauthorized");
    };
    assert_eq!((response.status, response.body), (401, Value::Null));
    // 403 without the Customer role: the operator's to fix, like a 401.
    double.set_customer_role(false);
    assert!(matches!(
        dutchie.find(&query()).await.unwrap_err(),
        PosError::Unauthorized(r) if r.status == 403
    ));
    double.set_customer_role(true);
    // 429 without a Retry-After: unavailable, and the gateway picks the wait.
    double.fail(Op::List, Fault::Status(429), 10);
    let error = dutchie.find(&query()).await.unwrap_err();
    let PosError::Unavailable {
        retry_after,
        response: Some(response),
        ..
    } = error
    else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert_eq!(retry_after, None);
    assert!(
        response.body["Message"]
            .as_str()
            .unwrap()
            .contains("120 per minute")
    );
    double.heal();
    // A 400 naming only what the store configures (its address) is not the kiosk's to fix.
    let bad_address = connect_with(
        &double,
        json!({"default_address": {"address1": "1 Main", "city": "X", "state": "OR", "postalCode": "9"}, "customer_type": "No Such Type"}),
    );
    let error = bad_address.create(&john(), &new_key()).await.unwrap_err();
    assert!(
        matches!(&error, PosError::Upstream(r) if r.status == 400 && r.body["propertyErrors"].is_array()),
        "{error:?}"
    );
}
