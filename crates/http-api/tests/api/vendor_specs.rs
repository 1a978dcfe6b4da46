//! What issue 16 settled from Treez's and Dutchie's own API documents, through the real HTTP
//! API on both databases: Treez's whole-record update keeps every field the kiosk did not name
//! (ours or not), and Dutchie's creates take the store's address, put Dutchie's field errors on
//! our fields, and never make two customers for one kiosk request.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use domain::Vendor;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vendor_doubles::dutchie::DutchieDouble;
use vendor_doubles::treez::TreezDouble;
use vendor_doubles::{Fault, Op};

use crate::helpers::{Db, TestApp, body, spawn_app};

on_both_databases!(
    a_treez_patch_leaves_every_other_field_at_treez_as_it_was,
    a_dutchie_create_takes_the_stores_address_and_lands_dutchies_field_errors_on_ours,
    a_dutchie_create_whose_answer_was_lost_and_is_sent_again_makes_one_customer,
);

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    json: Value,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let token = app.token(&["kiosk"]);
    let mut request = app.request(method, path, &token).json(&json);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    body(request.send().await.unwrap()).await
}

async fn a_treez_patch_leaves_every_other_field_at_treez_as_it_was(db: Db) {
    let double = TreezDouble::start().unwrap();
    // A register's customer, with fields the gateway never shows.
    let id = double.seed(json!({
        "first_name": "Kathleen", "middle_name": "M", "last_name": "Scott",
        "birthday": "1989-03-07", "patient_type": "MEDICAL_MMID", "gender": "F",
        "email": "kscott@example.com", "phone": "7777777777", "notes": "N/A",
        "drivers_license": "LIC744", "drivers_license_expiration": "2030-01-31",
        "state_medical_id": "MMJ-1", "permit_expiration": "2027-06-30",
        "addresses": [{"street1": "1 Main St", "city": "Denver", "state": "CO", "zip": "80202"}],
    }));
    let app = spawn_app(db).await;
    app.add_vendor_store("kiosk", Vendor::Treez, double.store_config())
        .await;
    let before = double.customer(&id).unwrap();
    let (status, updated) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/kiosk/customers/{id}"),
        json!({"customer": {"notes": "prefers edibles"}}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["customer"]["notes"], "prefers edibles");
    let after = double.customer(&id).unwrap();
    for (key, value) in before.as_object().unwrap() {
        if key != "notes" && key != "last_update" {
            assert_eq!(&after[key], value, "{key} changed at Treez");
        }
    }
    assert_eq!(after["notes"], "prefers edibles");

    // Phones are unique at Treez: a PATCH giving another customer's is the contract's 409
    // with that customer, and nothing changes.
    let other = double.seed(json!({
        "first_name": "Omar", "last_name": "Lee", "birthday": "1990-01-01",
        "patient_type": "ADULT", "phone": "5550001111",
    }));
    let (status, conflict) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/kiosk/customers/{other}"),
        json!({"customer": {"phone": "777-777-7777"}}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(conflict["customer"]["customer_id"], id.as_str());
    assert_eq!(double.customer(&other).unwrap()["phone"], "5550001111");
    let update = double
        .calls()
        .into_iter()
        .find(|c| c.op == Op::Update)
        .unwrap();
    assert_eq!(update.method, "PATCH");
}

async fn a_dutchie_create_takes_the_stores_address_and_lands_dutchies_field_errors_on_ours(db: Db) {
    let double = DutchieDouble::start().unwrap();
    let app = spawn_app(db).await;
    app.add_vendor_store("kiosk", Vendor::Dutchie, double.store_config())
        .await;
    // The kiosk gives no address (kiosks rarely ask for one): the store's is used.
    let (status, created) = send(
        &app,
        Method::POST,
        "/api/v1/kiosk/customers",
        json!({"customer": {"first_name": "Ann", "last_name": "Lee", "phone": "555-123-4567"}}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let held = &double.customers()[0];
    let address = &double.store_config()["default_address"];
    for key in ["address1", "city", "state", "postalCode"] {
        assert_eq!(held[key], address[key], "{key}");
    }
    assert_eq!(held["status"], "Active");
    assert_eq!(
        held["customerType"], "Recreational",
        "the first retail type"
    );

    // Dutchie's own refusal of a field: our 422 on that field, in the contract's words.
    double.fail(Op::Create, Fault::Invalid, 1);
    let (status, refused) = send(
        &app,
        Method::POST,
        "/api/v1/kiosk/customers",
        json!({"customer": {"first_name": "Bob", "last_name": "Ray"}}),
        None,
    )
    .await;
    assert_eq!(
        (status, refused),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"errors": {"first_name": ["can't be blank"]}})
        )
    );
    assert_eq!(double.customers().len(), 1);
}

async fn a_dutchie_create_whose_answer_was_lost_and_is_sent_again_makes_one_customer(db: Db) {
    let double = DutchieDouble::start().unwrap();
    let app = spawn_app(db).await;
    app.add_vendor_store("kiosk", Vendor::Dutchie, double.store_config())
        .await;
    // No e-mail, phone or licence: nothing the gateway could look the customer up by after a
    // lost answer, so only Dutchie's own idempotency can keep the retry from a second create.
    let cy =
        json!({"customer": {"first_name": "Cy", "last_name": "Doe", "birthday": "1970-05-06"}});
    double.fail(
        Op::Create,
        Fault::AfterCommit(Box::new(Fault::Status(500))),
        1,
    );
    let (status, lost) = send(
        &app,
        Method::POST,
        "/api/v1/kiosk/customers",
        cy.clone(),
        Some("kiosk-7-order-42"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{lost}");
    assert_eq!(double.customers().len(), 1, "Dutchie made it");

    let (status, created) = send(
        &app,
        Method::POST,
        "/api/v1/kiosk/customers",
        cy,
        Some("kiosk-7-order-42"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        double.count(Op::Create),
        2,
        "sent again, as the kiosk asked"
    );
    assert_eq!(double.customers().len(), 1, "but one customer");
    assert_eq!(double.replayed_creates(), 1);
    assert_eq!(
        created["customer"]["customer_id"],
        double.customers()[0]["customerId"].to_string()
    );
}
