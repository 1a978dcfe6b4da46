//! Fairness between kiosks: a catalog over its own request budget, or a bulk over the cap on
//! bulks in flight, gets the contract's 429 with `Retry-After`, and nobody else does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use crate::helpers::{Db, TestApp, body, spawn_app_with};
use domain::Vendor;
use http_api::config::RequestRate;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use vendor_doubles::VendorDouble as _;
use vendor_doubles::treez::TreezDouble;

on_both_databases!(
    a_catalog_over_its_budget_gets_429_while_another_of_its_store_does_not,
    bulks_over_the_cap_in_flight_get_429_at_once,
);

/// The 429's `Retry-After` in seconds, and its body.
async fn rate_limited(response: Response) -> (u64, Value) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse::<u64>()
        .expect("Retry-After is a whole number of seconds");
    assert!(retry_after >= 1);
    let (_, value) = body(response).await;
    assert_eq!(value["error"], "rate_limited", "{value}");
    assert!(value["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        value.as_object().unwrap().len(),
        2,
        "only error and message: {value}"
    );
    (retry_after, value)
}

async fn add_catalog(app: &TestApp, store: domain::StoreId, catalog: &str) {
    app.database
        .clone()
        .with_credentials_key(app.config.credentials_key.clone())
        .stores()
        .add_catalog(store, &domain::CatalogId::parse(catalog).unwrap())
        .await
        .unwrap();
}

async fn a_catalog_over_its_budget_gets_429_while_another_of_its_store_does_not(db: Db) {
    let app = spawn_app_with(db, |config| {
        config.catalog_rate = Some(RequestRate {
            requests: 6,
            per: Duration::from_secs(60),
        });
        config.catalog_burst = 3;
    })
    .await;
    let store = app.add_store("kiosk-a", Vendor::Local).await;
    add_catalog(&app, store, "kiosk-b").await;
    add_catalog(&app, store, "kiosk-c").await;
    let get = |catalog: &str, token: &str| {
        app.request(Method::GET, &format!("/api/v1/{catalog}/customers"), token)
            .send()
    };
    let a = app.token(&["kiosk-a"]);
    for _ in 0..3 {
        assert_eq!(get("kiosk-a", &a).await.unwrap().status(), StatusCode::OK);
    }
    let (retry_after, _) = rate_limited(get("kiosk-a", &a).await.unwrap()).await;
    assert!(
        (1..=10).contains(&retry_after),
        "one request comes back every 10 s: {retry_after}"
    );
    // Every operation of the catalog, not only this one.
    rate_limited(
        app.request(Method::GET, "/api/v1/kiosk-a/pos", &a)
            .send()
            .await
            .unwrap(),
    )
    .await;

    // The same store's other kiosk has its own budget.
    let b = app.token(&["kiosk-b"]);
    assert_eq!(get("kiosk-b", &b).await.unwrap().status(), StatusCode::OK);
    // A bad token or another kiosk's catalog is refused before any budget is looked at.
    assert_eq!(
        get("kiosk-a", "garbage").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, answer) = body(get("kiosk-a", &b).await.unwrap()).await;
    assert_eq!(
        (status, answer),
        (StatusCode::NOT_FOUND, json!({"error": "catalog not found"}))
    );

    // A bulk costs one per item: three items spend kiosk-c's whole burst.
    let c = app.token(&["kiosk-c"]);
    let items: Vec<Value> = (0..3)
        .map(|n| json!({"first_name": format!("Bulk{n}"), "last_name": "Budget"}))
        .collect();
    let (status, result) = body(
        app.request(Method::POST, "/api/v1/kiosk-c/customers/bulk", &c)
            .json(&json!({"customers": items}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    rate_limited(get("kiosk-c", &c).await.unwrap()).await;
}

async fn bulks_over_the_cap_in_flight_get_429_at_once(db: Db) {
    let double = TreezDouble::start().unwrap();
    double.set_latency(Duration::from_millis(700));
    let app = spawn_app_with(db, |config| {
        config.max_bulks_in_flight = 1;
    })
    .await;
    app.add_vendor_store("slow", Vendor::Treez, double.unthrottled_store_config())
        .await;
    app.add_store("other", Vendor::Local).await;
    let token = app.token(&["slow", "other"]);
    let bulk = |catalog: &str, n: u32| {
        app.request(
            Method::POST,
            &format!("/api/v1/{catalog}/customers/bulk"),
            &token,
        )
        .json(
            &json!({"customers": [{"first_name": format!("Cap{n}"), "last_name": "Bulk",
            "birthday": "1980-01-02", "phone": format!("555-020-{n:04}")}]}),
        )
        .send()
    };

    let first = tokio::spawn(bulk("slow", 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let (retry_after, refused) = rate_limited(bulk("other", 2).await.unwrap()).await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "refused at once, not queued: {:?}",
        started.elapsed()
    );
    assert_eq!(retry_after, 1);
    assert!(
        refused["message"].as_str().unwrap().contains("bulk"),
        "{refused}"
    );
    // Single requests are not bulks.
    let (status, _) = body(
        app.create(
            "other",
            json!({"first_name": "Single", "last_name": "Create"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, result) = body(first.await.unwrap().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["results"][0]["status"], 201, "{result}");
    let (status, result) = body(bulk("other", 3).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "the place is free again: {result}");
}
