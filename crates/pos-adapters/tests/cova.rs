//! Cova's quirks, against the Cova double. What every vendor must do is in the conformance
//! suite (`tests/conformance/`); this file keeps only what is Cova's own: its token's life and
//! the 401 re-send, `DoNotContact`, contact methods, `Version` conflicts, merges, free-text
//! phones, its paging, its announced rate limit and APIM's 429, its field errors, its config.
#![cfg(feature = "cova")]
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
    CreateKey, CustomerDirectory, CustomerForm, CustomerId, CustomerPatch, CustomerQuery, Email,
    Input, NewCustomer, OptionalField, Phone, PosError, SearchFilter, Vendor,
};
use pos_adapters::cova::Cova;
use pos_adapters::{AdapterError, Settings, VendorAdapter};
use serde_json::{Map, Value, json};
use vendor_doubles::cova::{self as double_cova, CovaDouble};
use vendor_doubles::{Fault, Op, SeedCustomer, VendorDouble};

fn cova(config: Value) -> Arc<Cova> {
    Arc::new(Cova::connect(&config, &Settings::default()).unwrap())
}

fn with(double: &CovaDouble, extra: Value) -> Value {
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
        birthday: Input::Text("03/07/1989".into()),
        email: Input::Text(email.into()),
        phone: Input::Text(phone.into()),
        drivers_license: Input::Text("D1234567".into()),
        gender: Input::Text("female".into()),
        notes: Input::Text("likes edibles".into()),
    };
    NewCustomer::parse(&form, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).unwrap()
}

/// A create key no other create of the run shares (a new kiosk request).
fn new_key() -> CreateKey {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    CreateKey::derive(&[file!(), &n.to_string()])
}

fn id(text: &str) -> CustomerId {
    CustomerId::parse(text).unwrap()
}

fn notes(text: &str) -> CustomerPatch {
    CustomerPatch {
        notes: Some(Some(text.into())),
        ..Default::default()
    }
}

fn by_phone(digits: &str) -> CustomerQuery {
    CustomerQuery {
        phone_digits: Some(digits.into()),
        limit: 25,
        ..Default::default()
    }
}

fn by_email(email: &str) -> CustomerQuery {
    CustomerQuery {
        email: Some(email.into()),
        limit: 25,
        ..Default::default()
    }
}

/// A register's customer, with fields no kiosk knows (a middle name, a title, an address,
/// a second phone) and `DoNotContact` as the register left it.
fn register_customer(first: &str, email: &str, do_not_contact: bool) -> Value {
    json!({
        "PrimaryName": first, "MiddleName": "M", "FamilyName": "Scott", "Title": "Dr",
        "AlternateName": "Kat", "CustomerTypeId": 2, "DateOfBirth": "1952-07-23",
        "Notes": "N/A", "DoNotContact": do_not_contact,
        "ContactMethods": [
            {"ContactMethodCategoryId": 1, "ContactMethodTypeId": 3, "Value": "(555) 123-4567", "Default": true},
            {"ContactMethodCategoryId": 1, "ContactMethodTypeId": 4, "Value": "555.987.6543"},
            {"ContactMethodCategoryId": 2, "ContactMethodTypeId": 9, "Value": email, "Default": true},
        ],
        "Addresses": [{"AddressLine1": "1 Main St", "City": "Denver", "StateCode": "CO"}],
        "CustomerExtensions": [{"ExtensionTypeId": double_cova::LICENCE_EXTENSION_TYPE_ID, "Value": "LIC744"}],
    })
}

/// An edit at the register, as Cova records one: the change and a new `Version`.
fn register_edit(double: &CovaDouble, id: &str, edit: impl FnOnce(&mut Map<String, Value>)) {
    double
        .state()
        .table()
        .update::<double_cova::Cova>(id, |customer| {
            edit(customer);
            let version = customer["Version"].as_i64().unwrap();
            customer.insert("Version".into(), json!(version + 1));
        })
        .unwrap();
}

/// Waits until `what` holds (a request reached the double).
async fn until(what: impl Fn() -> bool) {
    for _ in 0..500 {
        if what() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("it never happened");
}

fn sent(double: &CovaDouble, op: Op) -> Vec<(String, String, Value)> {
    double
        .calls()
        .into_iter()
        .filter(|c| c.op == op)
        .map(|c| {
            let body = serde_json::from_str(&c.body).unwrap_or(Value::Null);
            (c.method, c.path, body)
        })
        .collect()
}

#[test]
fn capabilities_are_what_cova_offers_and_the_licence_needs_its_extension_type() {
    let caps = Cova::CAPABILITIES;
    assert!(caps.list_customers && caps.get_customer);
    assert!(caps.create_customer && caps.update_customer);
    assert_eq!(caps.search_by, &[SearchFilter::Email, SearchFilter::Phone]);
    assert_eq!(caps.unreadable_fields, &[OptionalField::Gender]);
    assert!(caps.required_fields.is_empty());
    let double = CovaDouble::start().unwrap();
    let mirror_only = cova(with(&double, json!({"licence_extension_type_id": null})));
    assert_eq!(
        mirror_only.capabilities().unreadable_fields,
        &[OptionalField::Gender, OptionalField::DriversLicense]
    );
}

#[tokio::test]
async fn a_create_nests_its_contact_methods_and_says_do_not_contact_false() {
    let double = CovaDouble::start().unwrap();
    let pos = cova(double.store_config());
    let created = pos
        .create(&new_customer("ann@example.com", "555-123-4567"), &new_key())
        .await
        .unwrap();
    assert_eq!(created.phone.as_ref().unwrap().as_str(), "555-123-4567");
    assert_eq!(created.birthday, NaiveDate::from_ymd_opt(1989, 3, 7));
    assert_eq!(created.drivers_license.as_deref(), Some("D1234567"));
    assert_eq!(
        created.gender,
        Some(domain::Gender::Female),
        "from the request"
    );
    let held = double.customer(created.customer_id.as_str()).unwrap();
    // Cova's default is true: a customer signed up at a kiosk is sent false, explicitly.
    assert_eq!(held["DoNotContact"], false);
    assert_eq!(held["CustomerTypeId"], 2);
    assert_eq!(held["DateOfBirth"], "1989-03-07T12:00:00.000");
    let methods = held["ContactMethods"].as_array().unwrap();
    assert_eq!(
        (
            &methods[0]["ContactMethodCategoryId"],
            &methods[0]["ContactMethodTypeId"]
        ),
        (&json!(1), &json!(3))
    );
    assert_eq!(methods[0]["Value"], "555-123-4567");
    assert_eq!(
        (
            &methods[1]["ContactMethodCategoryId"],
            &methods[1]["ContactMethodTypeId"]
        ),
        (&json!(2), &json!(9))
    );
    assert_eq!(held["CustomerExtensions"][0]["ExtensionTypeId"], 17);
    assert_eq!(held["CustomerExtensions"][0]["Value"], "D1234567");
    assert_eq!(double.count(Op::Create), 1);

    // Without the store's extension type the licence goes nowhere at Cova: the mirror keeps the
    // one the answer carries.
    let pos = cova(with(&double, json!({"licence_extension_type_id": null})));
    let other = pos
        .create(&new_customer("bo@example.com", "555-000-1111"), &new_key())
        .await
        .unwrap();
    assert_eq!(other.drivers_license.as_deref(), Some("D1234567"));
    let held = double.customer(other.customer_id.as_str()).unwrap();
    assert_eq!(held["CustomerExtensions"], json!([]));
    assert_eq!(
        pos.get(&other.customer_id)
            .await
            .unwrap()
            .unwrap()
            .drivers_license,
        None
    );
}

#[tokio::test]
async fn an_update_keeps_do_not_contact_and_every_field_the_kiosk_did_not_name() {
    let double = CovaDouble::start().unwrap();
    let pos = cova(double.store_config());
    for do_not_contact in [true, false] {
        let id_text = double.seed(register_customer(
            "Kathleen",
            "k@example.com",
            do_not_contact,
        ));
        let before = double.customer(&id_text).unwrap();
        let updated = pos
            .update(&id(&id_text), &notes("prefers edibles"))
            .await
            .unwrap();
        assert_eq!(updated.notes.as_deref(), Some("prefers edibles"));
        assert_eq!(updated.phone.unwrap().as_str(), "555-123-4567");
        assert_eq!(updated.birthday, NaiveDate::from_ymd_opt(1952, 7, 23));
        let after = double.customer(&id_text).unwrap();
        // The double's PUT clears what it is not sent (DoNotContact back to true): only the
        // notes, the Version and the time changed.
        for (key, value) in before.as_object().unwrap() {
            if !["Notes", "Version", "LastModifiedDateUtc"].contains(&key.as_str()) {
                assert_eq!(&after[key], value, "{key} was lost");
            }
        }
        assert_eq!(after["Version"], 2);
    }
    let (method, path, put) = sent(&double, Op::Update).pop().unwrap();
    assert_eq!(method, "PUT");
    assert!(path.ends_with(")"), "{path}");
    assert_eq!(put["DoNotContact"], false, "sent as Cova held it");
    assert_eq!(put["Version"], 1);
    assert_eq!(put["DateOfBirth"], "1952-07-23", "sent as Cova takes it");
    assert!(put.get("ContactMethods").is_none());

    // A patch with nothing new for Cova (gender it does not keep) writes nothing.
    let id_text = double.seed(register_customer("Kay", "kay@example.com", true));
    let writes = double.count(Op::Update);
    let patch = CustomerPatch {
        gender: Some(Some(domain::Gender::Other)),
        notes: Some(Some("N/A".into())),
        ..Default::default()
    };
    let same = pos.update(&id(&id_text), &patch).await.unwrap();
    assert_eq!(same.gender, Some(domain::Gender::Other));
    assert_eq!(double.count(Op::Update), writes);
}

#[tokio::test]
async fn phones_and_emails_are_added_changed_with_their_version_and_removed() {
    let double = CovaDouble::start().unwrap();
    let pos = cova(double.store_config());
    let id_text =
        double.seed(json!({"PrimaryName": "Di", "FamilyName": "Ray", "CustomerTypeId": 2}));
    let di = id(&id_text);

    // Added: category 1 type 3, category 2 type 9.
    let patch = CustomerPatch {
        phone: Some(Some(Phone::parse("(555) 222-3333").unwrap())),
        email: Some(Some(Email::parse("di@example.com").unwrap())),
        ..Default::default()
    };
    let updated = pos.update(&di, &patch).await.unwrap();
    assert_eq!(updated.phone.unwrap().as_str(), "555-222-3333");
    assert_eq!(updated.email.unwrap().as_str(), "di@example.com");
    let writes = sent(&double, Op::Update);
    assert_eq!(writes.len(), 2, "no core PUT for contact methods alone");
    for (method, path, _) in &writes {
        assert_eq!(method, "POST");
        assert!(path.ends_with("/ContactMethods"), "{path}");
    }
    assert_eq!(writes[0].2["ContactMethodCategoryId"], 1);
    assert_eq!(writes[0].2["ContactMethodTypeId"], 3);
    assert_eq!(writes[1].2["ContactMethodCategoryId"], 2);
    assert_eq!(writes[1].2["ContactMethodTypeId"], 9);
    let phone_id = double.customer(&id_text).unwrap()["ContactMethods"][0]["Id"].clone();

    // Changed in place, with the method's own Version, keeping its type and Default.
    let patch = CustomerPatch {
        phone: Some(Some(Phone::parse("555.444.5555").unwrap())),
        ..Default::default()
    };
    pos.update(&di, &patch).await.unwrap();
    let (method, path, body) = sent(&double, Op::Update).pop().unwrap();
    assert_eq!(method, "PUT");
    assert!(
        path.ends_with(&format!("/ContactMethods({phone_id})")),
        "{path}"
    );
    assert_eq!(body["Version"], 1);
    assert_eq!(body["Default"], true);
    let held = double.customer(&id_text).unwrap();
    assert_eq!(held["ContactMethods"][0]["Value"], "555.444.5555");
    assert_eq!(held["ContactMethods"][0]["Version"], 2);
    assert_eq!(
        held["Version"], 1,
        "the customer's own Version is untouched"
    );

    // Cleared: removed.
    let patch = CustomerPatch {
        phone: Some(None),
        ..Default::default()
    };
    let cleared = pos.update(&di, &patch).await.unwrap();
    assert_eq!(cleared.phone, None);
    assert_eq!(cleared.email.unwrap().as_str(), "di@example.com");
    let (method, path, _) = sent(&double, Op::Update).pop().unwrap();
    assert_eq!(method, "DELETE");
    assert!(
        path.ends_with(&format!("/ContactMethods({phone_id})")),
        "{path}"
    );
    assert_eq!(pos.get(&di).await.unwrap().unwrap().phone, None);

    // A customer with two phones: we change the one we show; clearing removes both (else the
    // other would show as the phone).
    let kat = double.seed(register_customer("Kat", "kat@example.com", true));
    let patch = CustomerPatch {
        phone: Some(Some(Phone::parse("555-000-0000").unwrap())),
        ..Default::default()
    };
    pos.update(&id(&kat), &patch).await.unwrap();
    let methods = double.customer(&kat).unwrap()["ContactMethods"].clone();
    assert_eq!(methods[0]["Value"], "555-000-0000");
    assert_eq!(methods[1]["Value"], "555.987.6543");
    let patch = CustomerPatch {
        phone: Some(None),
        ..Default::default()
    };
    assert_eq!(pos.update(&id(&kat), &patch).await.unwrap().phone, None);
    let left = double.customer(&kat).unwrap()["ContactMethods"].clone();
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["ContactMethodCategoryId"], 2);

    // The licence, as its extension.
    let patch = CustomerPatch {
        drivers_license: Some(Some("NEW-1".into())),
        ..Default::default()
    };
    let licensed = pos.update(&id(&kat), &patch).await.unwrap();
    assert_eq!(licensed.drivers_license.as_deref(), Some("NEW-1"));
    let (method, path, _) = sent(&double, Op::Update).pop().unwrap();
    assert_eq!(method, "PUT");
    assert!(path.contains("/CustomerExtensions("), "{path}");
}

#[tokio::test]
async fn a_stale_version_is_read_again_and_only_the_patch_applied_again() {
    let double = CovaDouble::start().unwrap();
    let pos = cova(double.store_config());
    let ann = double.seed(register_customer("Ann", "ann@example.com", true));
    pos.get(&id(&ann)).await.unwrap();

    // Our PUT waits at the door while the register changes the family name.
    double.fail(Op::Update, Fault::Delay(Duration::from_millis(500)), 1);
    let update = tokio::spawn({
        let (pos, ann) = (pos.clone(), id(&ann));
        async move { pos.update(&ann, &notes("prefers edibles")).await }
    });
    until(|| double.count(Op::Update) == 1).await;
    register_edit(&double, &ann, |c| {
        c.insert("FamilyName".into(), json!("Register"));
    });
    let updated = update.await.unwrap().unwrap();
    assert_eq!(updated.notes.as_deref(), Some("prefers edibles"));
    assert_eq!(
        updated.last_name.as_str(),
        "Register",
        "the register's edit is kept"
    );
    let held = double.customer(&ann).unwrap();
    assert_eq!(held["FamilyName"], "Register");
    assert_eq!(held["Notes"], "prefers edibles");
    let puts = sent(&double, Op::Update);
    assert_eq!(puts.len(), 2, "refused once, sent again after a new read");
    assert_eq!(puts[0].2["Version"], 1);
    assert_eq!(puts[1].2["Version"], 2);
    assert_eq!(puts[1].2["FamilyName"], "Register");

    // The same for a contact method the register changed meanwhile: the kiosk named the
    // phone, so its number wins, written over the method's new Version.
    double.fail(Op::Update, Fault::Delay(Duration::from_millis(500)), 1);
    let update = tokio::spawn({
        let (pos, ann) = (pos.clone(), id(&ann));
        let patch = CustomerPatch {
            phone: Some(Some(Phone::parse("555-777-8888").unwrap())),
            ..Default::default()
        };
        async move { pos.update(&ann, &patch).await }
    });
    until(|| double.count(Op::Update) == 3).await;
    double
        .state()
        .table()
        .update::<double_cova::Cova>(&ann, |c| {
            let phone = &mut c["ContactMethods"][0];
            phone["Value"] = json!("(555) 999-0000");
            phone["Version"] = json!(2);
        })
        .unwrap();
    let updated = update.await.unwrap().unwrap();
    assert_eq!(updated.phone.unwrap().as_str(), "555-777-8888");
    let phone = &double.customer(&ann).unwrap()["ContactMethods"][0];
    assert_eq!(phone["Value"], "555-777-8888");
    assert_eq!(phone["Version"], 3);

    // Stale twice: Cova's refusal, as it gave it.
    double.fail(Op::Update, Fault::Status(409), 2);
    let error = pos.update(&id(&ann), &notes("again")).await.unwrap_err();
    let PosError::Upstream(response) = error else {
        panic!("expected Upstream, got {error:?}");
    };
    assert_eq!(response.status, 409);
    assert_eq!(double.customer(&ann).unwrap()["Notes"], "prefers edibles");
}

#[tokio::test]
async fn a_merged_customer_answers_and_is_updated_as_the_one_it_was_merged_into() {
    let double = CovaDouble::start().unwrap();
    let pos = cova(double.store_config());
    let old = double.seed(register_customer("Kathleen", "kathleen@example.com", true));
    let new = double.seed(register_customer("Kathleen", "kscott@example.com", true));
    assert!(double.merge(&old, &new));

    let got = pos.get(&id(&old)).await.unwrap().unwrap();
    assert_eq!(
        got.customer_id.as_str(),
        new,
        "the answer names the survivor"
    );
    assert_eq!(got.status.as_str(), "ACTIVE");
    let updated = pos.update(&id(&old), &notes("merged")).await.unwrap();
    assert_eq!(updated.customer_id.as_str(), new);
    assert_eq!(double.customer(&new).unwrap()["Notes"], "merged");
    assert_eq!(double.customer(&old).unwrap()["Notes"], "N/A");

    // Found by the e-mail only the merged-away record has: shown as MERGED, with its id (a get
    // of it answers the survivor). By what both have: the survivor alone.
    let page = pos.find(&by_email("kathleen@example.com")).await.unwrap();
    assert_eq!(page.customers.len(), 1);
    assert_eq!(page.customers[0].customer_id.as_str(), old);
    assert_eq!(page.customers[0].status.as_str(), "MERGED");
    let page = pos.find(&by_phone("5551234567")).await.unwrap();
    let ids: Vec<&str> = page
        .customers
        .iter()
        .map(|c| c.customer_id.as_str())
        .collect();
    assert_eq!(ids, [new.as_str()]);

    // Merged while our write was on its way: Cova refuses it, and the survivor is updated.
    let late = double.seed(register_customer("Lou", "lou@example.com", true));
    let survivor = double.seed(register_customer("Lou", "louis@example.com", true));
    pos.get(&id(&late)).await.unwrap();
    let before = double.count(Op::Update);
    double.fail(Op::Update, Fault::Delay(Duration::from_millis(500)), 1);
    let update = tokio::spawn({
        let (pos, late) = (pos.clone(), id(&late));
        async move { pos.update(&late, &notes("late")).await }
    });
    until(|| double.count(Op::Update) == before + 1).await;
    assert!(double.merge(&late, &survivor));
    let updated = update.await.unwrap().unwrap();
    assert_eq!(updated.customer_id.as_str(), survivor);
    assert_eq!(double.customer(&survivor).unwrap()["Notes"], "late");

    // Merged twice: followed one hop only.
    let third = double.seed(register_customer("Kathleen", "k3@example.com", true));
    assert!(double.merge(&new, &third));
    let got = pos.get(&id(&old)).await.unwrap().unwrap();
    assert_eq!(got.customer_id.as_str(), new);
    assert_eq!(got.status.as_str(), "MERGED");
    assert_eq!(
        pos.update(&id(&old), &notes("x")).await.unwrap_err(),
        PosError::NotFound
    );
}

#[tokio::test]
async fn a_token_lives_its_expires_in_and_a_refused_one_is_replaced_once() {
    let double = CovaDouble::start().unwrap();
    double.set_token_lifetime(Duration::from_secs(1));
    let pos = cova(double.store_config());
    let nobody = id("00000000-0000-4000-8000-000000000000");
    assert_eq!(pos.get(&nobody).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(950)).await;
    assert_eq!(pos.get(&nobody).await.unwrap(), None);
    assert_eq!(double.count(Op::Token), 2, "renewed ahead of its end");
    assert_eq!(double.count(Op::Get), 2, "no call went with a stale token");
    let grant = double
        .calls()
        .into_iter()
        .find(|c| c.op == Op::Token)
        .unwrap();
    assert!(grant.body.contains("grant_type=password"), "{}", grant.body);

    // Revoked: a read is sent again once with a new token...
    double.set_token_lifetime(double_cova::TOKEN_LIFETIME);
    double.revoke_tokens();
    assert_eq!(pos.get(&nobody).await.unwrap(), None);
    assert_eq!(double.count(Op::Token), 3);
    assert_eq!(double.count(Op::Get), 4);
    // ...and a write too: a 401 is a refusal before anything is done.
    double.revoke_tokens();
    let created = pos
        .create(&new_customer("ann@example.com", "5551234567"), &new_key())
        .await
        .unwrap();
    assert_eq!(double.count(Op::Create), 2);
    assert_eq!(double.customers().len(), 1);
    assert_eq!(double.count(Op::Token), 4);

    // A 401 that persists: one new token, one re-send, then Unauthorized; nothing made.
    double.fail(Op::Create, Fault::Unauthorized, 2);
    let error = pos
        .create(&new_customer("bo@example.com", "5550001111"), &new_key())
        .await
        .unwrap_err();
    assert!(matches!(error, PosError::Unauthorized(_)), "{error:?}");
    assert_eq!(double.count(Op::Create), 4);
    assert_eq!(double.count(Op::Token), 5);
    assert_eq!(double.customers().len(), 1);

    // A 403 (the company is not the token's) is not a token problem: not sent again.
    let other = cova(with(&double, json!({"company_id": 999})));
    let error = other.get(&created.customer_id).await.unwrap_err();
    assert!(
        matches!(&error, PosError::Unauthorized(r) if r.status == 403),
        "{error:?}"
    );
    assert_eq!(double.count(Op::Get), 5);
}

#[tokio::test]
async fn refused_grants_are_unauthorized_and_never_show_a_credential() {
    let double = CovaDouble::start().unwrap();
    let secrets = double.secrets();
    // A wrong password: OAuth2's 400 invalid_grant, which is our refused credentials.
    let pos = cova(double.wrong_credentials_config());
    let error = pos.find(&by_email("a@b.co")).await.unwrap_err();
    let PosError::Unauthorized(response) = &error else {
        panic!("expected Unauthorized, got {error:?}");
    };
    assert_eq!(response.body["error"], "invalid_grant");
    // A wrong client: 401 invalid_client.
    let pos = cova(with(
        &double,
        json!({"client_secret": "not-the-secret-at-all"}),
    ));
    let other = pos
        .get(&id("00000000-0000-4000-8000-000000000000"))
        .await
        .unwrap_err();
    assert!(matches!(&other, PosError::Unauthorized(r) if r.body["error"] == "invalid_client"));
    assert_eq!(
        double.count(Op::Search) + double.count(Op::Get),
        0,
        "nothing but grants"
    );
    let shown = format!("{error:?} {error} {other:?} {pos:?}");
    for secret in secrets {
        assert!(!shown.contains(&secret), "{shown}");
    }

    // The token endpoint down: the mirror may answer.
    let double = CovaDouble::start().unwrap();
    double.fail(Op::Token, Fault::Status(503), 3);
    let pos = cova(double.store_config());
    let error = pos.find(&by_email("a@b.co")).await.unwrap_err();
    assert!(error.is_unreachable(), "{error:?}");
}

#[tokio::test]
async fn a_phone_is_found_however_the_register_wrote_it() {
    let double = CovaDouble::start().unwrap();
    let pos = cova(double.store_config());
    let mut seed = SeedCustomer::numbered(1);
    seed.phone = Some("5551234567".into());
    let ann = double.seed_customer(&seed);
    assert_eq!(
        double.customer(&ann).unwrap()["ContactMethods"][0]["Value"],
        "(555) 123-4567"
    );
    let mut near = SeedCustomer::numbered(2);
    near.phone = Some("5551234568".into());
    double.seed_customer(&near);
    for digits in ["5551234567", "15551234567"] {
        let page = pos.find(&by_phone(digits)).await.unwrap();
        let ids: Vec<&str> = page
            .customers
            .iter()
            .map(|c| c.customer_id.as_str())
            .collect();
        assert_eq!(ids, [ann.as_str()], "{digits}");
        assert_eq!(
            page.customers[0].phone.as_ref().unwrap().as_str(),
            "555-123-4567"
        );
    }
    let (_, _, search) = sent(&double, Op::Search).pop().unwrap();
    assert_eq!(
        search,
        json!({"Criteria": [
            {"Field": "Phone", "Operation": "Contains", "Criteria": "555"},
            {"Field": "Phone", "Operation": "Contains", "Criteria": "123"},
            {"Field": "Phone", "Operation": "Contains", "Criteria": "4567"},
        ]})
    );
    // A second phone finds the customer too; the one shown is the register's default.
    let two = double.seed(register_customer("Kat", "kat@example.com", true));
    let page = pos.find(&by_phone("5559876543")).await.unwrap();
    assert_eq!(page.customers[0].customer_id.as_str(), two);
    assert_eq!(
        page.customers[0].phone.as_ref().unwrap().as_str(),
        "555-123-4567"
    );
    // E-mail and phone together: one search, by the e-mail; the phone checked here.
    let searches = double.count(Op::Search);
    let query = CustomerQuery {
        email: Some("kat@example.com".into()),
        phone_digits: Some("5550000000".into()),
        limit: 25,
        ..Default::default()
    };
    assert!(pos.find(&query).await.unwrap().customers.is_empty());
    assert_eq!(double.count(Op::Search), searches + 1);
    // A name or a licence alone is the mirror's.
    let by_name = CustomerQuery {
        name: Some("kat".into()),
        limit: 25,
        ..Default::default()
    };
    assert_eq!(
        pos.find(&by_name).await.unwrap_err(),
        PosError::Unsupported(domain::Operation::SearchCustomers)
    );
}

#[tokio::test]
async fn the_list_pages_customer_full_by_skip_and_top() {
    let double = CovaDouble::start().unwrap();
    let pos = cova(double.store_config());
    for n in 1..=205 {
        double.seed_customer(&SeedCustomer::numbered(n));
    }
    let mut page = None;
    let mut seen = Vec::new();
    loop {
        let answer = pos
            .find(&CustomerQuery {
                limit: 100,
                page,
                ..Default::default()
            })
            .await
            .unwrap();
        // Full records: the mirror gets phones and e-mails from a sync.
        assert!(
            answer
                .customers
                .iter()
                .all(|c| c.phone.is_some() && c.email.is_some())
        );
        seen.extend(answer.customers);
        match answer.next {
            Some(next) => page = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 205);
    let paths: Vec<String> = double
        .calls()
        .into_iter()
        .filter(|c| c.op == Op::List)
        .map(|c| c.path)
        .collect();
    assert_eq!(paths.len(), 3);
    assert!(
        paths[2].contains("CustomerFull?%24filter=LastModifiedDateUtc+ge+datetime"),
        "{}",
        paths[2]
    );
    assert!(paths[2].ends_with("%24skip=200&%24top=100"), "{}", paths[2]);
}

#[tokio::test]
async fn the_limiter_follows_the_limit_cova_announces_unless_the_store_sets_one() {
    let double = CovaDouble::start().unwrap();
    let pos = cova(double.store_config());
    let nobody = id("00000000-0000-4000-8000-000000000000");
    let limit = |pos: &Cova| {
        let debug = format!("{pos:?}");
        let start = debug.find("rate_limit_per_minute: ").unwrap();
        debug[start..].split(',').next().unwrap().to_owned()
    };
    assert_eq!(limit(&pos), "rate_limit_per_minute: Some(120)");
    pos.get(&nobody).await.unwrap();
    assert_eq!(
        limit(&pos),
        format!(
            "rate_limit_per_minute: Some({})",
            double_cova::chosen::RATE_LIMIT
        )
    );
    double.set_rate_limit(600);
    pos.get(&nobody).await.unwrap();
    assert_eq!(limit(&pos), "rate_limit_per_minute: Some(600)");

    let own = cova(with(&double, json!({"rate_limit_per_minute": 30})));
    own.get(&nobody).await.unwrap();
    assert_eq!(limit(&own), "rate_limit_per_minute: Some(30)");

    // Over Cova's limit: APIM's 429 names the wait in its body, not in Retry-After.
    double.set_rate_limit(1);
    double.enforce_rate_limit(true);
    pos.get(&nobody).await.ok();
    let error = pos
        .create(&new_customer("ann@example.com", "5551234567"), &new_key())
        .await
        .unwrap_err();
    let PosError::Unavailable {
        retry_after: Some(wait),
        response: Some(response),
        ..
    } = &error
    else {
        panic!("expected Unavailable with a wait, got {error:?}");
    };
    assert_eq!(response.status, 429);
    assert!(
        *wait > Duration::ZERO && *wait <= Duration::from_secs(30),
        "{wait:?}"
    );
    assert!(double.customers().is_empty());
}

#[tokio::test]
async fn cova_field_errors_land_on_our_fields() {
    let double = CovaDouble::start().unwrap();
    let pos = cova(double.store_config());
    double.fail(Op::Create, Fault::Invalid, 1);
    let error = pos
        .create(&new_customer("ann@example.com", "5551234567"), &new_key())
        .await
        .unwrap_err();
    let PosError::Rejected(errors) = error else {
        panic!("expected Rejected, got {error:?}");
    };
    assert_eq!(
        serde_json::to_value(&errors).unwrap(),
        json!({"first_name": ["can't be blank"]})
    );
    // A refusal on no field of ours is Cova's answer, as it gave it.
    double.fail(Op::Create, Fault::Status(400), 1);
    let error = pos
        .create(&new_customer("ann@example.com", "5551234567"), &new_key())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PosError::Upstream(r) if r.status == 400),
        "{error:?}"
    );
    // A 500 on a write is not sent again; on a read it is.
    double.fail(Op::Update, Fault::Status(500), 1);
    let ann = double.seed(register_customer("Ann", "ann@example.com", true));
    let error = pos.update(&id(&ann), &notes("x")).await.unwrap_err();
    assert!(error.is_unreachable(), "{error:?}");
    assert_eq!(double.count(Op::Update), 1);
    double.fail(Op::Get, Fault::Status(500), 1);
    assert!(pos.get(&id(&ann)).await.unwrap().is_some());
    assert!(double.customers().len() == 1);
}

#[test]
fn cova_config_checks_its_own_keys() {
    let base = json!({"company_id": "100234", "username": "u@example.com", "password": "p4ssword-value",
                      "client_id": "client", "client_secret": "client-secret-value"});
    assert_eq!(pos_adapters::validate_config(Vendor::Cova, &base), Ok(()));
    let error = |key: &str, value: Value| {
        let mut config = base.clone();
        config[key] = value;
        match pos_adapters::validate_config(Vendor::Cova, &config) {
            Err(AdapterError::Config { message, .. }) => message,
            other => panic!("{key}: {other:?}"),
        }
    };
    for (key, value) in [
        ("company_id", json!("acme")),
        ("company_id", json!(0)),
        ("company_id", json!(true)),
        ("licence_extension_type_id", json!("seventeen")),
        ("licence_extension_type_id", json!(-3)),
        ("token_url", json!("ftp://accounts.example.com/token")),
        ("token_url", json!("http://accounts.example.com/token")),
    ] {
        let message = error(key, value.clone());
        assert!(message.contains(key), "{key}: {message}");
        if let Some(text) = value.as_str() {
            assert!(!message.contains(text), "{message}");
        }
    }
    let mut local = base.clone();
    local["token_url"] = json!("http://127.0.0.1:9/v1/oauth2/token");
    local["licence_extension_type_id"] = json!("17");
    local["company_id"] = json!(100_234);
    assert_eq!(pos_adapters::validate_config(Vendor::Cova, &local), Ok(()));
    assert!(matches!(
        Cova::connect(&json!({}), &Settings::default()),
        Err(AdapterError::Config { .. })
    ));
}
