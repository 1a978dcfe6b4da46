//! The Treez adapter against the Treez double: every capability and every fault.
#![cfg(feature = "treez")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use domain::{
    CustomerDirectory, CustomerForm, CustomerId, CustomerPatch, CustomerQuery, Gender, Input,
    NewCustomer, Operation, OptionalField, PosError, Store, StoreId, Vendor,
};
use pos_adapters::AdapterError;
use serde_json::{Value, json};
use vendor_doubles::treez::TreezDouble;
use vendor_doubles::{Fault, Op};

fn connect(config: Value) -> Arc<dyn CustomerDirectory> {
    pos_adapters::connect(&Store {
        id: StoreId(1),
        name: "Treez store".into(),
        vendor: Vendor::Treez,
        config,
    })
    .unwrap()
}

fn with(double: &TreezDouble, extra: Value) -> Value {
    let mut config = double.store_config();
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

fn new_customer(email: &str, phone: &str) -> NewCustomer {
    let form = CustomerForm {
        first_name: Input::Text("Ann".into()),
        last_name: Input::Text("Lee".into()),
        birthday: Input::Text("1990-02-03".into()),
        email: Input::Text(email.into()),
        phone: Input::Text(phone.into()),
        drivers_license: Input::Text("D1234-567".into()),
        gender: Input::Text("female".into()),
        ..Default::default()
    };
    NewCustomer::parse(&form, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).unwrap()
}

fn query() -> CustomerQuery {
    CustomerQuery {
        limit: 25,
        ..Default::default()
    }
}

#[tokio::test]
async fn capabilities_are_what_treez_offers() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let caps = treez.capabilities();
    assert!(caps.list_customers && caps.search_customers && caps.get_customer);
    assert!(caps.create_customer && caps.update_customer);
    assert_eq!(caps.required_fields, &[OptionalField::Birthday]);
    assert!(!treez.is_mirror());
    assert_eq!(double.count(Op::Any), 0, "connecting calls nothing");
}

#[tokio::test]
async fn a_created_customer_is_found_by_id_email_phone_and_licence() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let created = treez
        .create(&new_customer("ann@example.com", "+1 (555) 123-4567"))
        .await
        .unwrap();
    assert_eq!(created.first_name.as_str(), "Ann");
    assert_eq!(created.phone.as_ref().unwrap().as_str(), "555-123-4567");
    assert_eq!(created.gender, Some(Gender::Female));
    assert_eq!(created.birthday, NaiveDate::from_ymd_opt(1990, 2, 3));
    assert_eq!(created.status.as_str(), "ACTIVE");
    let stored = &double.customers()[0];
    assert_eq!(stored["phone"], "5551234567");
    assert_eq!(stored["gender"], "F");
    assert_eq!(stored["patient_type"], "ADULT");

    let got = treez.get(&created.customer_id).await.unwrap().unwrap();
    assert_eq!(got, created);
    for q in [
        CustomerQuery {
            email: Some("ANN@example.com".into()),
            ..query()
        },
        CustomerQuery {
            phone_digits: Some("5551234567".into()),
            ..query()
        },
        CustomerQuery {
            phone_digits: Some("15551234567".into()),
            ..query()
        },
        CustomerQuery {
            drivers_license: Some("D1234-567".into()),
            ..query()
        },
    ] {
        let page = treez.find(&q).await.unwrap();
        assert_eq!(page.customers, vec![created.clone()], "{q:?}");
    }
    let none = treez
        .find(&CustomerQuery {
            email: Some("nobody@example.com".into()),
            ..query()
        })
        .await
        .unwrap();
    assert!(none.customers.is_empty());
    // Filters combine with AND, even those Treez cannot search by.
    let both = treez
        .find(&CustomerQuery {
            email: Some("ann@example.com".into()),
            name: Some("bob".into()),
            ..query()
        })
        .await
        .unwrap();
    assert!(both.customers.is_empty());
    assert_eq!(
        treez.get(&CustomerId::parse("999").unwrap()).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_name_only_search_is_not_something_treez_can_do() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let error = treez
        .find(&CustomerQuery {
            name: Some("ann".into()),
            ..query()
        })
        .await
        .unwrap_err();
    assert_eq!(error, PosError::Unsupported(Operation::SearchCustomers));
    assert_eq!(double.count(Op::Any), 0);
}

#[tokio::test]
async fn the_list_pages_through_every_customer() {
    let double = TreezDouble::start().unwrap();
    for i in 0..3 {
        double.seed(json!({"first_name": format!("C{i}"), "last_name": "X", "birthday": "1980-01-01", "patient_type": "ADULT"}));
    }
    let treez = connect(double.store_config());
    let first = treez
        .find(&CustomerQuery {
            limit: 2,
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(first.customers.len(), 2);
    let second = treez
        .find(&CustomerQuery {
            limit: 2,
            page: first.next.clone(),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(second.customers.len(), 1);
    assert_eq!(second.next, None);
    assert_eq!(second.customers[0].first_name.as_str(), "C2");
    // Treez refuses pages over 50; a limit of 100 asks for 50.
    treez
        .find(&CustomerQuery {
            limit: 100,
            ..query()
        })
        .await
        .unwrap();
    assert!(
        double
            .calls()
            .last()
            .unwrap()
            .path
            .ends_with("/pagesize/50")
    );
}

#[tokio::test]
async fn an_update_changes_and_clears_fields() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let created = treez
        .create(&new_customer("ann@example.com", "5551234567"))
        .await
        .unwrap();
    let patch = CustomerPatch {
        email: Some(None),
        notes: Some(Some("prefers edibles".into())),
        gender: Some(None),
        ..Default::default()
    };
    let updated = treez.update(&created.customer_id, &patch).await.unwrap();
    assert_eq!(updated.email, None);
    assert_eq!(updated.notes.as_deref(), Some("prefers edibles"));
    assert_eq!(updated.gender, None);
    assert_eq!(updated.first_name.as_str(), "Ann");
    assert_eq!(double.customers()[0]["gender"], "U");
    let again = treez.get(&created.customer_id).await.unwrap().unwrap();
    assert_eq!(again, updated);

    let unknown = treez
        .update(&CustomerId::parse("999").unwrap(), &patch)
        .await
        .unwrap_err();
    assert_eq!(unknown, PosError::NotFound);
}

#[tokio::test]
async fn one_token_serves_concurrent_calls_and_a_revoked_one_is_replaced() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let calls = (0..10).map(|i| {
        let treez = treez.clone();
        async move { treez.get(&CustomerId::parse(&i.to_string()).unwrap()).await }
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result.unwrap(), None);
    }
    assert_eq!(double.count(Op::Token), 1);

    double.revoke_tokens();
    assert_eq!(
        treez.get(&CustomerId::parse("1").unwrap()).await.unwrap(),
        None
    );
    assert_eq!(double.count(Op::Token), 2, "a 401 fetches one new token");
}

#[tokio::test]
async fn a_token_near_its_end_is_refreshed_before_use() {
    let double = TreezDouble::start().unwrap();
    double.set_token_lifetime(Duration::from_secs(1));
    let treez = connect(double.store_config());
    let id = CustomerId::parse("1").unwrap();
    treez.get(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(950)).await;
    treez.get(&id).await.unwrap();
    assert_eq!(double.count(Op::Token), 2);
    assert_eq!(
        double.count(Op::Get),
        2,
        "no call went out with a stale token"
    );
}

#[tokio::test]
async fn wrong_credentials_are_unauthorized_and_never_echoed() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(with(
        &double,
        json!({"api_key": "wrong-key-that-must-not-leak-123"}),
    ));
    let error = treez
        .get(&CustomerId::parse("1").unwrap())
        .await
        .unwrap_err();
    let PosError::Unauthorized(response) = &error else {
        panic!("expected Unauthorized, got {error:?}");
    };
    assert_eq!(response.status, 401);
    let shown = format!("{error:?} {}", response.body);
    assert!(!shown.contains("wrong-key-that-must-not-leak-123"));
    assert_eq!(double.count(Op::Get), 0, "no call without a token");
}

#[tokio::test]
async fn a_401_that_persists_is_unauthorized_after_one_new_token() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    double.fail(Op::Search, Fault::Unauthorized, 2);
    let error = treez
        .find(&CustomerQuery {
            email: Some("a@b.co".into()),
            ..query()
        })
        .await
        .unwrap_err();
    assert!(matches!(error, PosError::Unauthorized(_)), "{error:?}");
    assert_eq!(double.count(Op::Token), 2);
    assert_eq!(double.count(Op::Search), 2);
}

#[tokio::test]
async fn treez_field_errors_land_on_our_fields() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let mut customer = new_customer("ann@example.com", "5551234567");
    customer.drivers_license = Some("D12*4".into());
    let error = treez.create(&customer).await.unwrap_err();
    let PosError::Rejected(errors) = error else {
        panic!("expected Rejected, got {error:?}");
    };
    assert_eq!(
        errors.get("drivers_license"),
        Some(&["is invalid".to_owned()][..])
    );
    assert!(double.customers().is_empty());

    // A phone Treez cannot hold (it keeps ten digits) is refused before any call.
    let foreign = new_customer("ann@example.com", "+44 20 7946 0958");
    let error = treez.create(&foreign).await.unwrap_err();
    assert!(matches!(error, PosError::Rejected(e) if e.get("phone").is_some()));
    assert_eq!(double.count(Op::Create), 1);
}

#[tokio::test]
async fn a_rejection_on_no_field_of_ours_is_the_vendors_answer() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    double.fail(Op::Create, Fault::Invalid, 1);
    let error = treez
        .create(&new_customer("ann@example.com", "5551234567"))
        .await
        .unwrap_err();
    let PosError::Upstream(response) = error else {
        panic!("expected Upstream, got {error:?}");
    };
    assert_eq!(response.status, 400);
    assert_eq!(response.body["resultReason"], "MODEL_VALIDATION_FAIL");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_unavailable_with_retry_after() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(with(&double, json!({"timeout": "1s"})));
    let id = CustomerId::parse("1").unwrap();
    double.fail(
        Op::Get,
        Fault::RateLimited {
            retry_after: "2".into(),
        },
        5,
    );
    let error = treez.get(&id).await.unwrap_err();
    assert!(
        matches!(error, PosError::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(2)),
        "{error:?}"
    );
    double.heal();
    double.fail(Op::Get, Fault::Status(503), 5);
    let error = treez.get(&id).await.unwrap_err();
    assert!(error.is_unreachable(), "{error:?}");
    assert_eq!(double.count(Op::Get), 1 + 3, "reads are retried twice");
}

#[tokio::test]
async fn a_read_that_fails_once_is_retried() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let id = double.seed(json!({"first_name": "A", "last_name": "B", "birthday": "1980-01-01", "patient_type": "ADULT"}));
    double.fail(Op::Get, Fault::Status(500), 1);
    let got = treez.get(&CustomerId::parse(&id).unwrap()).await.unwrap();
    assert!(got.is_some());
    assert_eq!(double.count(Op::Get), 2);
}

#[tokio::test]
async fn a_slow_treez_is_a_timeout_within_the_bound() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(with(&double, json!({"timeout": "300ms"})));
    // The token comes quickly; the look-up does not.
    treez.get(&CustomerId::parse("1").unwrap()).await.unwrap();
    double.fail(Op::Get, Fault::Delay(Duration::from_secs(3)), 5);
    let started = Instant::now();
    let error = treez
        .get(&CustomerId::parse("1").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, PosError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn unreadable_answers_are_bad_answers_and_a_cut_connection_is_unavailable() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let id = CustomerId::parse("1").unwrap();
    for (fault, check) in [
        (
            Fault::Garbage,
            (|e: &PosError| matches!(e, PosError::BadAnswer { .. })) as fn(&PosError) -> bool,
        ),
        (
            Fault::Huge(2 * 1024 * 1024),
            |e| matches!(e, PosError::BadAnswer { message, .. } if message.contains("larger")),
        ),
        (Fault::ResetMidBody, |e| e.is_unreachable()),
    ] {
        double.heal();
        double.fail(Op::Get, fault.clone(), 5);
        let error = treez.get(&id).await.unwrap_err();
        assert!(check(&error), "{fault:?} gave {error:?}");
    }
}

#[tokio::test]
async fn a_create_is_never_sent_twice_whatever_happens_after_it_left() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(with(&double, json!({"timeout": "500ms"})));
    let faults = [
        Fault::Status(500),
        Fault::Status(503),
        Fault::RateLimited {
            retry_after: "1".into(),
        },
        Fault::Delay(Duration::from_secs(2)),
        Fault::ResetMidBody,
        Fault::Garbage,
    ];
    for (i, fault) in faults.iter().enumerate() {
        double.fail(Op::Create, Fault::AfterCommit(Box::new(fault.clone())), 1);
        let email = format!("c{i}@example.com");
        let error = treez
            .create(&new_customer(&email, "5551234567"))
            .await
            .unwrap_err();
        assert_eq!(double.count(Op::Create), i + 1, "{fault:?} gave {error:?}");
        assert_eq!(double.customers().len(), i + 1);
    }
}

#[tokio::test]
async fn config_errors_name_the_key_and_never_a_value() {
    let base = json!({"dispensary": "shop", "client_id": "id", "api_key": "very-secret-key"});
    let error = |config: Value| pos_adapters::validate_config(Vendor::Treez, &config).unwrap_err();
    for key in ["dispensary", "client_id", "api_key"] {
        let mut config = base.clone();
        config.as_object_mut().unwrap().remove(key);
        let message = error(config).to_string();
        assert!(message.contains(&format!("\"{key}\"")), "{message}");
    }
    let mut blank = base.clone();
    blank["api_key"] = json!("  ");
    assert!(error(blank).to_string().contains("\"api_key\" is blank"));
    let mut bad_url = base.clone();
    bad_url["base_url"] = json!("ftp://nope");
    assert!(matches!(error(bad_url), AdapterError::Config { .. }));
    let mut bad_kind = base.clone();
    bad_kind["patient_type"] = json!("KID");
    assert!(error(bad_kind).to_string().contains("patient_type"));
    assert!(pos_adapters::validate_config(Vendor::Treez, &base).is_ok());

    let double = TreezDouble::start().unwrap();
    let treez = pos_adapters::treez::Treez::connect(
        &double.store_config(),
        &pos_adapters::Settings::default(),
    )
    .unwrap();
    let debug = format!("{treez:?}");
    assert!(!debug.contains(&double.credentials().api_key), "{debug}");
    assert!(!debug.contains(&double.credentials().client_id), "{debug}");
}

#[tokio::test]
async fn a_wrong_dispensary_is_the_vendors_error_not_a_missing_customer() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(with(&double, json!({"dispensary": "no-such-shop"})));
    let error = treez
        .get(&CustomerId::parse("1").unwrap())
        .await
        .unwrap_err();
    let PosError::Upstream(response) = &error else {
        panic!("expected Upstream, got {error:?}");
    };
    assert_eq!(response.status, 404);
}

#[tokio::test]
async fn one_unusable_record_does_not_hide_a_page() {
    let double = TreezDouble::start().unwrap();
    double.seed(json!({"first_name": "A", "last_name": "B", "birthday": "1980-01-01", "patient_type": "ADULT"}));
    double.seed(json!({"first_name": "", "last_name": "", "birthday": "1980-01-01", "patient_type": "ADULT"}));
    double.seed(json!({"first_name": "C", "last_name": "D", "birthday": "1980-01-01", "patient_type": "ADULT"}));
    let treez = connect(double.store_config());
    let page = treez.find(&query()).await.unwrap();
    assert_eq!(page.customers.len(), 2);
    // A full page with a skipped record is still full: the next page is asked for.
    let first = treez
        .find(&CustomerQuery {
            limit: 3,
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(first.customers.len(), 2);
    assert!(first.next.is_some());
}
