//! Each vendor end to end: a kiosk's session through the real HTTP API to a store whose POS is
//! the vendor's test double (the store's `base_url` points at it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::helpers::{Db, TestApp, body, spawn_app};
use domain::Vendor;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vendor_doubles::dutchie::DutchieDouble;
use vendor_doubles::treez::TreezDouble;
use vendor_doubles::{Fault, Op};

on_both_databases!(a_kiosk_session_on_treez, a_kiosk_session_on_dutchie);

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    json: Option<Value>,
) -> (StatusCode, Value, Option<String>) {
    let token = app.token(&["kiosk"]);
    let mut request = app.request(method, path, &token);
    if let Some(json) = json {
        request = request.json(&json);
    }
    let response = request.send().await.unwrap();
    let source = response
        .headers()
        .get("x-data-source")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = body(response).await;
    (status, body, source)
}

async fn a_kiosk_session_on_treez(db: Db) {
    let double = TreezDouble::start().unwrap();
    let app = spawn_app(db).await;
    app.add_vendor_store("kiosk", Vendor::Treez, double.store_config())
        .await;

    // The capabilities tell the truth, and no credential comes back.
    let (status, pos, _) = send(&app, Method::GET, "/api/v1/kiosk/pos", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        pos,
        json!({"vendor": "treez", "capabilities": {"list_customers": true, "search_customers": true,
               "get_customer": true, "create_customer": true, "update_customer": true},
               "required_fields": ["birthday"]})
    );

    // Treez needs a birthday: refused on the field, before any vendor call.
    let ann = json!({"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com",
                     "phone": "(555) 123-4567", "gender": "F"});
    let (status, errors, _) = send(
        &app,
        Method::POST,
        "/api/v1/kiosk/customers",
        Some(json!({"customer": ann})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(errors, json!({"errors": {"birthday": ["can't be blank"]}}));
    assert_eq!(double.count(Op::Any), 0);

    let mut ann = ann;
    ann["birthday"] = json!("03/07/1989");
    let (status, created, _) = send(
        &app,
        Method::POST,
        "/api/v1/kiosk/customers",
        Some(json!({"customer": ann})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let customer = &created["customer"];
    assert_eq!(customer["phone"], "555-123-4567");
    assert_eq!(customer["gender"], "Female");
    assert_eq!(customer["birthday"], "1989-03-07");
    assert_eq!(customer["status"], "ACTIVE");
    let id = customer["customer_id"].as_str().unwrap().to_owned();
    assert_eq!(double.customers()[0]["customer_id"], id.as_str());

    // Found live at Treez by phone, however it is written.
    let (status, found, source) = send(
        &app,
        Method::GET,
        "/api/v1/kiosk/customers?phone=555.123.4567",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(source.as_deref(), Some("pos"));
    assert_eq!(found["customers"][0]["customer_id"], id.as_str());

    let (status, got, source) = send(
        &app,
        Method::GET,
        &format!("/api/v1/kiosk/customers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(source.as_deref(), Some("pos"));
    assert_eq!(got["customer"]["email"], "ann@example.com");

    let (status, updated, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/kiosk/customers/{id}"),
        Some(json!({"customer": {"notes": "prefers edibles"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["customer"]["notes"], "prefers edibles");
    assert_eq!(double.customers()[0]["notes"], "prefers edibles");

    // Treez can't clear a birthday: neither can a kiosk.
    let (status, errors, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/kiosk/customers/{id}"),
        Some(json!({"customer": {"birthday": null}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(errors, json!({"errors": {"birthday": ["can't be blank"]}}));

    // A duplicate is refused with the existing customer and no second create.
    let (status, duplicate, _) = send(
        &app,
        Method::POST,
        "/api/v1/kiosk/customers",
        Some(json!({"customer": ann})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(duplicate["customer"]["customer_id"], id.as_str());
    assert_eq!(double.count(Op::Create), 1);

    // Treez has no name search: the mirror answers, and says so.
    let (status, found, source) =
        send(&app, Method::GET, "/api/v1/kiosk/customers?name=ann", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(source.as_deref(), Some("mirror"));
    assert_eq!(found["customers"][0]["customer_id"], id.as_str());

    // Treez down: searches come from the mirror.
    double.fail(Op::Search, Fault::Status(503), 10);
    let (status, found, source) = send(
        &app,
        Method::GET,
        "/api/v1/kiosk/customers?email=ANN@example.com",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(source.as_deref(), Some("mirror"));
    assert_eq!(found["customers"][0]["customer_id"], id.as_str());
    double.heal();

    // A create whose answer is lost: 503 with the vendor's answer, and never sent twice.
    double.fail(
        Op::Create,
        Fault::AfterCommit(Box::new(Fault::Status(500))),
        1,
    );
    let bob =
        json!({"customer": {"first_name": "Bob", "last_name": "Ray", "birthday": "1980-01-01"}});
    let token = app.token(&["kiosk"]);
    let response = app
        .request(Method::POST, "/api/v1/kiosk/customers", &token)
        .json(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (_, error) = body(response).await;
    assert_eq!(error["error"], "pos_error");
    assert_eq!(error["pos"]["vendor"], "treez");
    assert_eq!(error["pos"]["status"], 500);
    assert_eq!(double.count(Op::Create), 2);

    // No answer carried a credential.
    let everything = format!("{pos}{created}{found}{updated}{error}");
    for secret in [
        &double.credentials().api_key,
        &double.credentials().client_id,
    ] {
        assert!(!everything.contains(secret.as_str()));
    }
}

async fn a_kiosk_session_on_dutchie(db: Db) {
    let double = DutchieDouble::start().unwrap();
    let app = spawn_app(db).await;
    // Stores may name Dutchie by its old name.
    let vendor: Vendor = "leaflogix".parse().unwrap();
    app.add_vendor_store("kiosk", vendor, double.store_config())
        .await;

    let (status, pos, _) = send(&app, Method::GET, "/api/v1/kiosk/pos", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        pos,
        json!({"vendor": "dutchie", "capabilities": {"list_customers": true, "search_customers": true,
               "get_customer": false, "create_customer": true, "update_customer": true},
               "required_fields": []})
    );

    let ann = json!({"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com",
                     "phone": "555-123-4567", "birthday": "1989-03-07", "drivers_license": "D1234567"});
    let (status, created, _) = send(
        &app,
        Method::POST,
        "/api/v1/kiosk/customers",
        Some(json!({"customer": ann})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let customer = &created["customer"];
    assert_eq!(customer["birthday"], "1989-03-07");
    assert_eq!(customer["drivers_license"], "D1234567");
    let id = customer["customer_id"].as_str().unwrap().to_owned();
    // Dutchie keeps only a hash of the licence.
    let stored = &double.customers()[0];
    assert!(stored.get("driversLicenseID").is_none());
    assert!(stored["driversLicenseHash"].is_string());

    // Searched live at Dutchie by email.
    let (status, found, source) = send(
        &app,
        Method::GET,
        "/api/v1/kiosk/customers?email=ann@example.com",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(source.as_deref(), Some("pos"));
    assert_eq!(found["customers"][0]["customer_id"], id.as_str());

    // No get-by-id at Dutchie: the mirror answers, and says so; the same for a licence search.
    let (status, got, source) = send(
        &app,
        Method::GET,
        &format!("/api/v1/kiosk/customers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(source.as_deref(), Some("mirror"));
    assert_eq!(got["customer"]["customer_id"], id.as_str());
    let (status, _, source) = send(
        &app,
        Method::GET,
        "/api/v1/kiosk/customers?drivers_license=d1234567",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(source.as_deref(), Some("mirror"));

    let (status, updated, _) = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/kiosk/customers/{id}"),
        Some(json!({"customer": {"notes": "prefers edibles", "email": null}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["customer"]["notes"], "prefers edibles");
    assert_eq!(updated["customer"]["email"], Value::Null);
    assert_eq!(double.customers()[0]["notes"], "prefers edibles");

    // Dutchie's own field errors come back on our fields.
    double.fail(Op::Create, Fault::Invalid, 1);
    let (status, answer, _) = send(
        &app,
        Method::POST,
        "/api/v1/kiosk/customers",
        Some(json!({"customer": {"first_name": "Bob", "last_name": "Ray"}})),
    )
    .await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"errors": {"first_name": ["can't be blank"]}})
        )
    );

    // Rate limited: 503 with Retry-After, and the create was not sent twice.
    double.heal();
    let creates = double.count(Op::Create);
    double.fail(
        Op::Create,
        Fault::RateLimited {
            retry_after: "7".into(),
        },
        1,
    );
    let token = app.token(&["kiosk"]);
    let response = app
        .request(Method::POST, "/api/v1/kiosk/customers", &token)
        .json(&json!({"customer": {"first_name": "Cy", "last_name": "Doe"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(double.count(Op::Create), creates + 1);

    let everything = format!("{pos}{created}{found}{got}{updated}");
    assert!(!everything.contains(double.credentials().location_key.as_str()));
}
