//! Treez's quirks, against the Treez double. What every vendor must do is in the conformance
//! suite (`tests/conformance/`); this file keeps only what is Treez's own: its token's life,
//! its wire codes, its ten-digit phones, its field errors, its dispensary.
#![cfg(feature = "treez")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use domain::{
    CreateKey, CustomerDirectory, CustomerForm, CustomerId, CustomerPatch, CustomerQuery, Input,
    NewCustomer, OptionalField, PosError, SearchFilter, Vendor,
};
use pos_adapters::treez::Treez;
use pos_adapters::{AdapterError, Settings, VendorAdapter};
use serde_json::{Value, json};
use vendor_doubles::treez::TreezDouble;
use vendor_doubles::{Fault, Op};

fn connect(config: Value) -> Arc<dyn CustomerDirectory> {
    Arc::new(Treez::connect(&config, &Settings::default()).unwrap())
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

/// A create key no other create of the run shares (a new kiosk request).
fn new_key() -> CreateKey {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    CreateKey::derive(&[file!(), &n.to_string()])
}

fn query() -> CustomerQuery {
    CustomerQuery {
        limit: 25,
        ..Default::default()
    }
}

#[test]
fn capabilities_are_what_treez_offers() {
    let caps = Treez::CAPABILITIES;
    assert!(caps.list_customers && caps.get_customer);
    assert!(caps.create_customer && caps.update_customer);
    assert_eq!(caps.required_fields, &[OptionalField::Birthday]);
    assert_eq!(
        caps.search_by,
        &[
            SearchFilter::DriversLicense,
            SearchFilter::Email,
            SearchFilter::Phone,
            SearchFilter::Name
        ]
    );
    assert!(caps.unreadable_fields.is_empty());
}

#[tokio::test]
async fn treez_holds_ten_digit_phones_and_its_own_codes() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let created = treez
        .create(
            &new_customer("ann@example.com", "+1 (555) 123-4567"),
            &new_key(),
        )
        .await
        .unwrap();
    assert_eq!(created.phone.as_ref().unwrap().as_str(), "555-123-4567");
    let stored = &double.customers()[0];
    assert_eq!(stored["phone"], "5551234567");
    assert_eq!(stored["gender"], "F");
    assert_eq!(stored["patient_type"], "ADULT");
    // An eleven-digit North American number finds the ten Treez keeps.
    let page = treez
        .find(&CustomerQuery {
            phone_digits: Some("15551234567".into()),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(page.customers, vec![created.clone()]);
    // A cleared gender is Treez's "unspecified".
    let patch = CustomerPatch {
        gender: Some(None),
        ..Default::default()
    };
    let updated = treez.update(&created.customer_id, &patch).await.unwrap();
    assert_eq!(updated.gender, None);
    assert_eq!(double.customers()[0]["gender"], "U");
    // A page of 100 asks Treez for its most, 50.
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
async fn a_revoked_token_is_replaced_once_and_no_call_goes_without_one() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let id = CustomerId::parse("1").unwrap();
    assert_eq!(treez.get(&id).await.unwrap(), None);
    double.revoke_tokens();
    assert_eq!(treez.get(&id).await.unwrap(), None);
    assert_eq!(double.count(Op::Token), 2, "a 401 fetches one new token");

    // A 401 that persists: one new token, one re-send, then Unauthorized.
    double.fail(Op::Search, Fault::Unauthorized, 2);
    let error = treez
        .find(&CustomerQuery {
            email: Some("a@b.co".into()),
            ..query()
        })
        .await
        .unwrap_err();
    assert!(matches!(error, PosError::Unauthorized(_)), "{error:?}");
    assert_eq!(double.count(Op::Token), 3);
    assert_eq!(double.count(Op::Search), 2);

    // Refused at the token: nothing else is sent.
    let wrong = TreezDouble::start().unwrap();
    let treez = connect(with(&wrong, json!({"api_key": "wrong-key-1234567890"})));
    assert!(matches!(
        treez.get(&id).await.unwrap_err(),
        PosError::Unauthorized(_)
    ));
    assert_eq!(wrong.count(Op::Get), 0);
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
async fn treez_field_errors_land_on_our_fields() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let mut customer = new_customer("ann@example.com", "5551234567");
    customer.drivers_license = Some("D12*4".into());
    let error = treez.create(&customer, &new_key()).await.unwrap_err();
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
    let error = treez.create(&foreign, &new_key()).await.unwrap_err();
    assert!(matches!(error, PosError::Rejected(e) if e.get("phone").is_some()));
    assert_eq!(double.count(Op::Create), 1);

    // A refusal on no field of ours is Treez's answer, as it gave it.
    double.fail(Op::Create, Fault::Invalid, 1);
    let error = treez
        .create(&new_customer("ann@example.com", "5551234567"), &new_key())
        .await
        .unwrap_err();
    let PosError::Upstream(response) = error else {
        panic!("expected Upstream, got {error:?}");
    };
    assert_eq!(response.body["resultReason"], "MODEL_VALIDATION_FAIL");
}

#[tokio::test]
async fn treez_config_checks_its_own_keys() {
    let base = json!({"dispensary": "shop", "client_id": "id", "api_key": "very-secret-key"});
    let error = |config: Value| pos_adapters::validate_config(Vendor::Treez, &config).unwrap_err();
    let mut bad_kind = base.clone();
    bad_kind["patient_type"] = json!("KID");
    assert_eq!(
        error(bad_kind).to_string(),
        "invalid treez config: key \"patient_type\" must be one of ADULT, MEDICAL, MEDICAL_MMID"
    );
    let mut bad_slug = base.clone();
    bad_slug["dispensary"] = json!("my shop/../x");
    let message = error(bad_slug).to_string();
    assert!(
        message.contains("dispensary") && !message.contains("my shop"),
        "{message}"
    );
    let mut medical = base.clone();
    medical["patient_type"] = json!("MEDICAL");
    assert!(pos_adapters::validate_config(Vendor::Treez, &medical).is_ok());
    assert!(matches!(
        Treez::connect(&json!({}), &Settings::default()),
        Err(AdapterError::Config { .. })
    ));
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

/// A register's customer with fields we never show (middle name, addresses, a medical id).
fn rich_record() -> Value {
    json!({
        "first_name": "Kathleen", "middle_name": "M", "last_name": "Scott",
        "birthday": "1989-03-07", "patient_type": "MEDICAL", "gender": "F",
        "email": "kscott@example.com", "phone": "7777777777", "notes": "N/A",
        "drivers_license": "LIC744", "drivers_license_expiration": "2030-01-31",
        "state_medical_id": "MMJ-1", "permit_expiration": "2027-06-30",
        "addresses": [{"street1": "1 Main St", "city": "Denver", "state": "CO", "zip": "80202"}],
    })
}

#[tokio::test]
async fn an_update_sends_the_whole_record_so_nothing_the_kiosk_did_not_name_is_lost() {
    let double = TreezDouble::start().unwrap();
    let id = double.seed(rich_record());
    let treez = connect(double.store_config());
    let before = double.customer(&id).unwrap();
    let patch = CustomerPatch {
        notes: Some(Some("prefers edibles".into())),
        ..Default::default()
    };
    let updated = treez
        .update(&CustomerId::parse(&id).unwrap(), &patch)
        .await
        .unwrap();
    assert_eq!(updated.notes.as_deref(), Some("prefers edibles"));
    assert_eq!(updated.customer_id.as_str(), id);
    // At Treez, which clears what an update leaves out: only the notes (and its own
    // timestamp) changed.
    let after = double.customer(&id).unwrap();
    for (key, value) in before.as_object().unwrap() {
        if key != "notes" && key != "last_update" {
            assert_eq!(&after[key], value, "{key} was lost");
        }
    }
    let update = double
        .calls()
        .into_iter()
        .find(|c| c.op == Op::Update)
        .unwrap();
    assert_eq!(update.method, "PATCH");
    assert!(
        update.path.ends_with(&format!("/customer/update/{id}")),
        "{}",
        update.path
    );
    let sent: Value = serde_json::from_str(&update.body).unwrap();
    for required in ["first_name", "last_name", "birthday", "patient_type"] {
        assert!(
            sent[required].is_string(),
            "{required} must go on every update"
        );
    }
    assert_eq!(
        sent["patient_type"], "MEDICAL",
        "the customer's own, not the store's"
    );

    // Unknown: Treez's look-up says so, and nothing is written.
    assert_eq!(
        treez
            .update(&CustomerId::parse("999").unwrap(), &patch)
            .await
            .unwrap_err(),
        PosError::NotFound
    );
    assert_eq!(double.count(Op::Update), 1);
}

#[tokio::test]
async fn an_update_of_a_merged_away_customer_goes_to_the_one_it_was_merged_into() {
    let double = TreezDouble::start().unwrap();
    let old = double.seed(rich_record());
    let mut survivor = rich_record();
    survivor["email"] = json!("kathleen@example.com");
    survivor["phone"] = json!("7777777778");
    let new = double.seed(survivor);
    assert!(double.merge(&old, &new));
    let treez = connect(double.store_config());
    let patch = CustomerPatch {
        notes: Some(Some("merged".into())),
        ..Default::default()
    };
    let updated = treez
        .update(&CustomerId::parse(&old).unwrap(), &patch)
        .await
        .unwrap();
    assert_eq!(
        updated.customer_id.as_str(),
        new,
        "the answer names the survivor"
    );
    assert_eq!(updated.status.as_str(), "MERGED");
    assert_eq!(double.customer(&new).unwrap()["notes"], "merged");
    assert_eq!(double.customer(&old).unwrap()["notes"], "N/A");
}

#[tokio::test]
async fn treez_duplicate_refusals_answer_the_customer_it_has() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let first = treez
        .create(&new_customer("ann@example.com", "5551234567"), &new_key())
        .await
        .unwrap();
    // Another till made a customer with the same e-mail since our duplicate check.
    let error = treez
        .create(&new_customer("ANN@example.com", "5559876543"), &new_key())
        .await
        .unwrap_err();
    assert_eq!(error, PosError::Duplicate(Box::new(first.clone())));
    assert_eq!(double.customers().len(), 1);

    // An update to a phone another customer holds: the same.
    let second = treez
        .create(&new_customer("bob@example.com", "5550001111"), &new_key())
        .await
        .unwrap();
    let patch = CustomerPatch {
        phone: Some(Some(domain::Phone::parse("555-123-4567").unwrap())),
        ..Default::default()
    };
    let error = treez.update(&second.customer_id, &patch).await.unwrap_err();
    assert_eq!(error, PosError::Duplicate(Box::new(first)));
}

#[tokio::test]
async fn whole_names_are_looked_up_at_treez_and_prefixes_left_to_the_mirror() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let ann = treez
        .create(&new_customer("ann@example.com", "5551234567"), &new_key())
        .await
        .unwrap();
    let by_name = |name: &str| CustomerQuery {
        name: Some(name.to_lowercase()),
        ..query()
    };
    let page = treez.find(&by_name("Ann Lee")).await.unwrap();
    assert_eq!(page.customers, vec![ann]);
    assert!(
        double
            .calls()
            .iter()
            .any(|c| c.path.ends_with("/customer/firstname/ann/lastname/lee"))
    );
    for prefix in ["an le", "ann"] {
        assert_eq!(
            treez.find(&by_name(prefix)).await.unwrap_err(),
            PosError::Unsupported(domain::Operation::SearchCustomers),
            "{prefix}"
        );
    }
}

#[tokio::test]
async fn an_update_field_error_in_the_update_envelope_lands_on_our_field() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let ann = treez
        .create(&new_customer("ann@example.com", "5551234567"), &new_key())
        .await
        .unwrap();
    // A licence of characters Treez refuses: the refusal comes in the update's envelope,
    // its detail in `message`.
    let patch = CustomerPatch {
        drivers_license: Some(Some("D12*4".into())),
        ..Default::default()
    };
    let PosError::Rejected(errors) = treez.update(&ann.customer_id, &patch).await.unwrap_err()
    else {
        panic!("expected Rejected");
    };
    assert_eq!(
        errors.get("drivers_license"),
        Some(&["is invalid".to_owned()][..])
    );
    let refusal = double
        .calls()
        .into_iter()
        .rfind(|c| c.op == Op::Update)
        .unwrap();
    assert_eq!(refusal.method, "PATCH");
}

#[test]
fn treez_default_limit_is_its_published_ten_a_second() {
    let treez = Treez::connect(
        &json!({"dispensary": "shop", "client_id": "id", "api_key": "k"}),
        &Settings::default(),
    )
    .unwrap();
    let debug = format!("{treez:?}");
    assert!(
        debug.contains("rate_limit_per_minute: Some(300)"),
        "{debug}"
    );
    assert!(debug.contains("rate_limit_burst: Some(5)"), "{debug}");
}

#[tokio::test]
async fn a_merge_between_our_read_and_our_write_is_followed_too() {
    let double = std::sync::Arc::new(TreezDouble::start().unwrap());
    let old = double.seed(rich_record());
    let mut survivor = rich_record();
    survivor["email"] = json!("kathleen@example.com");
    survivor["phone"] = json!("7777777778");
    let new = double.seed(survivor);
    let treez = connect(double.store_config());
    // The PATCH waits at Treez's door while the register merges the customer away.
    double.fail(Op::Update, Fault::Delay(Duration::from_millis(300)), 1);
    let merger = {
        let (double, old, new) = (double.clone(), old.clone(), new.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(double.merge(&old, &new));
        })
    };
    let patch = CustomerPatch {
        notes: Some(Some("merged mid-write".into())),
        ..Default::default()
    };
    let updated = treez
        .update(&CustomerId::parse(&old).unwrap(), &patch)
        .await
        .unwrap();
    merger.await.unwrap();
    assert_eq!(updated.customer_id.as_str(), new);
    assert_eq!(double.customer(&new).unwrap()["notes"], "merged mid-write");
}

#[tokio::test]
async fn ids_that_are_not_digits_and_phones_treez_refuses_never_reach_treez() {
    let double = TreezDouble::start().unwrap();
    let treez = connect(double.store_config());
    let guid = CustomerId::parse("00000000-0000-4000-8000-000000000000").unwrap();
    assert_eq!(treez.get(&guid).await.unwrap(), None);
    let patch = CustomerPatch {
        notes: Some(Some("x".into())),
        ..Default::default()
    };
    assert_eq!(
        treez.update(&guid, &patch).await.unwrap_err(),
        PosError::NotFound
    );
    // Ten digits, but starting with 1: Treez refuses it (spec), so we do, on the field.
    let error = treez
        .create(&new_customer("ann@example.com", "155-123-4567"), &new_key())
        .await
        .unwrap_err();
    assert!(matches!(error, PosError::Rejected(e) if e.get("phone").is_some()));
    assert_eq!(double.count(Op::Any), 0);
}
