//! The Dutchie adapter against the Dutchie double: every capability, every fault.
#![cfg(feature = "dutchie")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use domain::{
    Capabilities, CustomerDirectory, CustomerId, CustomerPatch, CustomerQuery, Email, Gender,
    NewCustomer, Operation, PageToken, PersonName, Phone, PosError, Store, StoreId, Vendor,
};
use pos_adapters::dutchie::Dutchie;
use pos_adapters::{AdapterError, Settings};
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

fn seed_three(double: &DutchieDouble) {
    for (first, last) in [("Ann", "Ames"), ("Bob", "Burns"), ("Cy", "Cole")] {
        double.seed(json!({"firstName": first, "lastName": last, "phone": "5550001111"}));
    }
}

fn id(text: &str) -> CustomerId {
    CustomerId::parse(text).unwrap()
}

// --- capabilities ------------------------------------------------------------------------

#[test]
fn capabilities_say_what_dutchie_offers() {
    let double = double();
    let dutchie = connect(&double);
    assert_eq!(dutchie.vendor(), Vendor::Dutchie);
    assert!(!dutchie.is_mirror());
    assert_eq!(
        dutchie.capabilities(),
        Capabilities {
            list_customers: true,
            search_customers: true,
            get_customer: false,
            create_customer: true,
            update_customer: true,
            required_fields: &[],
        }
    );
}

#[tokio::test]
async fn create_sends_dutchie_fields_and_returns_the_customer_with_its_licence() {
    let double = double();
    let dutchie = connect(&double);
    let created = dutchie.create(&john()).await.unwrap();
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

    let sent: Value = serde_json::from_str(&double.calls()[0].body).unwrap();
    assert_eq!(
        sent,
        json!({
            "firstName": "John", "lastName": "Doe", "gender": "M",
            "dateOfBirth": "1990-01-02T00:00:00", "emailAddress": "John.Doe@Example.com",
            "phone": "5551234567", "driversLicenseID": "D1234567", "notes": "prefers edibles",
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
}

#[tokio::test]
async fn a_created_customer_is_found_by_phone_email_and_name() {
    let double = double();
    let dutchie = connect(&double);
    let created = dutchie.create(&john()).await.unwrap();
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
    let both = CustomerQuery {
        email: Some("john.doe@example.com".into()),
        ..by_phone("5551234567")
    };
    assert_eq!(only(dutchie.find(&both).await.unwrap()), want);
}

#[tokio::test]
async fn searches_that_match_nobody_are_empty_pages() {
    let double = double();
    let dutchie = connect(&double);
    dutchie.create(&john()).await.unwrap();
    for query in [
        by_phone("5559999999"),
        CustomerQuery {
            email: Some("other@example.com".into()),
            ..by_phone("5551234567")
        },
        // The lookup matches whole names only.
        by_name("jo"),
    ] {
        let page = dutchie.find(&query).await.unwrap();
        assert!(page.customers.is_empty(), "{query:?}");
        assert_eq!(page.next, None);
    }
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
async fn a_licence_search_is_left_to_the_mirror() {
    let double = double();
    let dutchie = connect(&double);
    let query = CustomerQuery {
        drivers_license: Some("D1234567".into()),
        ..query()
    };
    assert_eq!(
        dutchie.find(&query).await.unwrap_err(),
        PosError::Unsupported(Operation::SearchCustomers)
    );
    assert_eq!(
        dutchie.get(&id("1001")).await.unwrap_err(),
        PosError::Unsupported(Operation::GetCustomer)
    );
    assert_eq!(double.count(Op::Any), 0);
}

#[tokio::test]
async fn the_list_pages_through_every_customer() {
    let double = double();
    let dutchie = connect(&double);
    seed_three(&double);
    let first = dutchie
        .find(&CustomerQuery {
            limit: 2,
            ..query()
        })
        .await
        .unwrap();
    let names = |page: &domain::CustomerPage| {
        page.customers
            .iter()
            .map(|c| c.first_name.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["Ann", "Bob"]);
    assert_eq!(first.next, Some(PageToken("2".into())));
    let second = dutchie
        .find(&CustomerQuery {
            limit: 2,
            page: first.next.clone(),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(names(&second), ["Cy"]);
    assert_eq!(second.next, None);
    let paths: Vec<String> = double.calls().into_iter().map(|c| c.path).collect();
    assert_eq!(
        paths,
        [
            "/customer/customers-paginated?PageNumber=1&PageSize=2",
            "/customer/customers-paginated?PageNumber=2&PageSize=2",
        ]
    );
}

#[tokio::test]
async fn a_forged_list_cursor_is_rejected_without_a_call() {
    let double = double();
    let dutchie = connect(&double);
    let error = dutchie
        .find(&CustomerQuery {
            page: Some(PageToken("zero".into())),
            ..query()
        })
        .await
        .unwrap_err();
    assert!(matches!(error, PosError::Rejected(e) if e.get("cursor").is_some()));
    assert_eq!(double.count(Op::Any), 0);
}

#[tokio::test]
async fn an_unusable_record_is_skipped_not_the_page() {
    let double = double();
    let dutchie = connect(&double);
    seed_three(&double);
    double.seed(json!({"firstName": "", "lastName": "Nameless"}));
    let page = dutchie.find(&query()).await.unwrap();
    assert_eq!(page.customers.len(), 3);
}

#[tokio::test]
async fn update_sets_a_field_and_clears_another() {
    let double = double();
    let dutchie = connect(&double);
    let created = dutchie.create(&john()).await.unwrap();
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
async fn a_wrong_key_is_unauthorized_and_the_key_is_not_echoed() {
    let double = double();
    let wrong = "wrong-location-key-1234567890";
    let dutchie = connect_with(&double, json!({"location_key": wrong}));
    let PosError::Unauthorized(response) = dutchie.find(&query()).await.unwrap_err() else {
        panic!("expected Unauthorized");
    };
    assert_eq!(response.status, 401);
    assert_eq!(
        response.body["message"],
        "Authorization has been denied for this request."
    );
    let text = response.body.to_string();
    assert!(!text.contains(wrong), "{text}");
    assert!(!text.contains(&double.credentials().location_key), "{text}");

    let dutchie = connect(&double);
    double.fail(Op::Search, Fault::Unauthorized, 1);
    assert!(matches!(
        dutchie.find(&by_phone("5551234567")).await.unwrap_err(),
        PosError::Unauthorized(r) if r.status == 401
    ));
}

#[tokio::test]
async fn the_integrator_key_goes_as_the_password() {
    let double = DutchieDouble::start_with(Credentials {
        integrator_key: Some("integrator-secret-42".into()),
        ..Credentials::default()
    })
    .unwrap();
    let dutchie = connect(&double);
    assert!(dutchie.whoami().await.is_ok());
    let without = Dutchie::connect(
        &json!({"location_key": double.credentials().location_key, "base_url": double.base_url()}),
        &Settings::default(),
    )
    .unwrap();
    assert!(matches!(
        without.whoami().await.unwrap_err(),
        PosError::Unauthorized(_)
    ));
}

// --- vendor errors and faults ------------------------------------------------------------

#[tokio::test]
async fn a_model_state_400_is_rejected_on_our_field() {
    let double = double();
    let dutchie = connect(&double);
    double.fail(Op::Create, Fault::Invalid, 1);
    let PosError::Rejected(errors) = dutchie.create(&john()).await.unwrap_err() else {
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
        dutchie.create(&john()).await.unwrap_err(),
        PosError::Upstream(r) if r.status == 400 && r.body["message"].is_string()
    ));
}

#[tokio::test]
async fn a_rate_limit_is_unavailable_with_retry_after() {
    let double = double();
    let dutchie = connect_with(&double, json!({"timeout": "3s"}));
    double.fail(
        Op::Search,
        Fault::RateLimited {
            retry_after: "2".into(),
        },
        10,
    );
    let error = dutchie.find(&by_phone("5551234567")).await.unwrap_err();
    assert!(
        matches!(
            &error,
            PosError::Unavailable { retry_after: Some(d), .. } if *d == Duration::from_secs(2)
        ),
        "{error:?}"
    );
    assert!(error.is_unreachable());
}

#[tokio::test]
async fn a_5xx_is_unavailable_after_the_read_retries() {
    let double = double();
    let dutchie = connect(&double);
    double.fail(Op::List, Fault::Status(500), 10);
    assert!(matches!(
        dutchie.find(&query()).await.unwrap_err(),
        PosError::Unavailable { response: Some(r), .. } if r.status == 500
    ));
    assert_eq!(double.count(Op::List), 3, "one call and two retries");
}

#[tokio::test]
async fn a_search_is_retried_after_a_5xx() {
    let double = double();
    let dutchie = connect(&double);
    dutchie.create(&john()).await.unwrap();
    double.fail(Op::Search, Fault::Status(500), 1);
    let page = dutchie.find(&by_phone("5551234567")).await.unwrap();
    assert_eq!(page.customers.len(), 1);
    assert_eq!(double.count(Op::Search), 2);
}

#[tokio::test]
async fn a_slow_vendor_is_a_timeout_within_the_store_timeout() {
    let double = double();
    let dutchie = connect_with(&double, json!({"timeout": "300ms"}));
    double.fail(Op::List, Fault::Delay(Duration::from_secs(3)), 10);
    let started = Instant::now();
    assert_eq!(
        dutchie.find(&query()).await.unwrap_err(),
        PosError::Timeout {
            vendor: Vendor::Dutchie,
            after: Duration::from_millis(300)
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn unreadable_answers_are_bad_answers() {
    for fault in [Fault::Garbage, Fault::Huge(2 * 1024 * 1024)] {
        let double = double();
        let dutchie = connect(&double);
        double.fail(Op::List, fault.clone(), 10);
        assert!(
            matches!(
                dutchie.find(&query()).await.unwrap_err(),
                PosError::BadAnswer { .. }
            ),
            "{fault:?}"
        );
        assert_eq!(double.count(Op::List), 1, "{fault:?}: no retry helps");
    }
}

#[tokio::test]
async fn a_success_of_the_wrong_shape_is_a_bad_answer() {
    let double = double();
    let dutchie = connect(&double);
    // The huge fault's body is a JSON object where the list wants an array.
    double.fail(Op::List, Fault::Huge(10), 1);
    assert!(matches!(
        dutchie.find(&query()).await.unwrap_err(),
        PosError::BadAnswer { .. }
    ));
    double.fail(Op::Create, Fault::AfterCommit(Box::new(Fault::Huge(10))), 1);
    assert!(matches!(
        dutchie.create(&john()).await.unwrap_err(),
        PosError::BadAnswer { .. }
    ));
}

#[tokio::test]
async fn a_connection_cut_mid_body_is_unavailable() {
    let double = double();
    let dutchie = connect(&double);
    double.fail(Op::List, Fault::ResetMidBody, 10);
    let error = dutchie.find(&query()).await.unwrap_err();
    assert!(matches!(error, PosError::Unavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn a_create_that_fails_after_commit_is_never_sent_twice() {
    let double = double();
    let dutchie = connect(&double);
    double.fail(
        Op::Create,
        Fault::AfterCommit(Box::new(Fault::Status(500))),
        1,
    );
    let error = dutchie.create(&john()).await.unwrap_err();
    assert!(matches!(error, PosError::Unavailable { .. }), "{error:?}");
    assert_eq!(double.count(Op::Create), 1);
    assert_eq!(double.customers().len(), 1);
}

#[tokio::test]
async fn a_create_that_times_out_after_commit_is_never_sent_twice() {
    let double = double();
    let dutchie = connect_with(&double, json!({"timeout": "300ms"}));
    double.fail(
        Op::Create,
        Fault::AfterCommit(Box::new(Fault::Delay(Duration::from_secs(2)))),
        1,
    );
    let started = Instant::now();
    let error = dutchie.create(&john()).await.unwrap_err();
    assert!(matches!(error, PosError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(double.count(Op::Create), 1);
    assert_eq!(double.customers().len(), 1);
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

#[test]
fn a_missing_location_key_is_named() {
    for config in [
        json!({}),
        json!({"location_key": "  "}),
        json!({"location_key": null}),
        json!({"location_key": 12345}),
    ] {
        assert_eq!(config_error(config), "missing key \"location_key\"");
    }
    let message = config_error(json!({"location_key": "abc\ndef"}));
    assert!(
        message.contains("location_key") && !message.contains("abc"),
        "{message}"
    );
    let message = config_error(json!({"location_key": "k", "integrator_key": "x\u{7}y"}));
    assert!(
        message.contains("integrator_key") && !message.contains("x\u{7}y"),
        "{message}"
    );
    let message = config_error(json!({"location_key": "ab:cd"}));
    assert!(
        message.contains("':'") && !message.contains("ab:cd"),
        "{message}"
    );
}

#[test]
fn a_bad_base_url_or_override_is_refused() {
    for base_url in [json!("not a url"), json!("ftp://example.com"), json!(42)] {
        let message = config_error(json!({"location_key": "k", "base_url": base_url}));
        assert!(message.contains("base_url"), "{message}");
    }
    let message = config_error(json!({"location_key": "k", "timeout": "soon"}));
    assert!(message.contains("timeout"), "{message}");
}

#[test]
fn the_defaults_are_dutchie_production_and_its_rate_limit() {
    let dutchie = Dutchie::connect(&json!({"location_key": "k"}), &Settings::default()).unwrap();
    let debug = format!("{dutchie:?}");
    assert!(debug.contains("https://api.pos.dutchie.com/"), "{debug}");
    assert!(
        debug.contains("rate_limit_per_minute: Some(120)"),
        "{debug}"
    );
    let tuned = Dutchie::connect(
        &json!({"location_key": "k", "rate_limit_per_minute": 30}),
        &Settings::default(),
    )
    .unwrap();
    assert!(format!("{tuned:?}").contains("rate_limit_per_minute: Some(30)"));
}

#[test]
fn debug_prints_no_key() {
    let double = DutchieDouble::start_with(Credentials {
        integrator_key: Some("integrator-secret-42".into()),
        ..Credentials::default()
    })
    .unwrap();
    let dutchie = connect(&double);
    let debug = format!("{dutchie:?}");
    assert!(
        !debug.contains(&double.credentials().location_key),
        "{debug}"
    );
    assert!(!debug.contains("integrator-secret-42"), "{debug}");
}

#[tokio::test]
async fn the_registry_opens_a_dutchie_store() {
    let double = double();
    let store = Store {
        id: StoreId(1),
        name: "main st".into(),
        vendor: "leaflogix".parse().unwrap(),
        config: double.store_config(),
    };
    assert_eq!(
        pos_adapters::validate_config(Vendor::Dutchie, &store.config),
        Ok(())
    );
    let directory = pos_adapters::connect(&store).unwrap();
    assert_eq!(directory.vendor(), Vendor::Dutchie);
    assert!(directory.find(&query()).await.unwrap().customers.is_empty());
    assert_eq!(
        pos_adapters::validate_config(Vendor::Dutchie, &json!({})),
        Err(AdapterError::Config {
            vendor: Vendor::Dutchie,
            message: "missing key \"location_key\"".into()
        })
    );
}
