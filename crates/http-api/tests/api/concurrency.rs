//! `Idempotency-Key` under concurrency: many identical requests with one key at the same
//! moment make one set of POS writes, and every answer is the first one (or, for a request
//! that waited out the first, the documented `409` with `Retry-After`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use crate::helpers::{Db, TestApp, body, spawn_app};
use domain::Vendor;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vendor_doubles::Op;
use vendor_doubles::VendorDouble as _;
use vendor_doubles::treez::TreezDouble;

on_both_databases!(
    fifty_creates_with_one_key_make_one_treez_create,
    fifty_creates_with_one_key_make_one_local_customer,
    fifty_bulk_requests_with_one_key_make_one_set_of_treez_creates,
    fifty_bulk_requests_with_one_key_make_one_set_of_local_customers,
    one_new_customer_sent_at_once_without_keys_makes_one_treez_create,
    one_new_customer_sent_at_once_without_keys_makes_one_local_customer,
    one_customer_twice_in_a_bulk_is_created_once,
);

const CONCURRENT: usize = 50;
/// How long the Treez double takes to answer anything: long enough that all the requests are
/// in flight while the first one is still at the POS.
const VENDOR_LATENCY: Duration = Duration::from_millis(200);

/// The documented answer to a request whose key is still in flight after the wait.
fn in_progress() -> Value {
    json!({"error": "a request with this Idempotency-Key is still being processed; retry later"})
}

/// A gateway with one Treez store (catalog `kiosk`) whose double answers after
/// `VENDOR_LATENCY`, and a token for it.
async fn slow_treez_kiosk(db: Db) -> (TreezDouble, TestApp, String) {
    let double = TreezDouble::start().unwrap();
    double.set_latency(VENDOR_LATENCY);
    let app = spawn_app(db).await;
    app.add_vendor_store("kiosk", Vendor::Treez, double.unthrottled_store_config())
        .await;
    let token = app.token(&["kiosk"]);
    (double, app, token)
}

fn customer(n: u32) -> Value {
    json!({"first_name": format!("Con{n}"), "last_name": "Current",
           "email": format!("con{n}@example.com"), "phone": format!("555-010-{n:04}"),
           "birthday": "1985-06-07", "gender": "female"})
}

/// Sends `CONCURRENT` copies of one request at once (same key, same body bytes) and returns
/// the answers.
async fn fire(app: &TestApp, path: &str, token: &str, key: &str, payload: &Value) -> Vec<Answer> {
    let bytes = serde_json::to_vec(payload).unwrap();
    let requests = (0..CONCURRENT).map(|_| {
        let request = app
            .request(Method::POST, path, token)
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/json")
            .body(bytes.clone());
        async move {
            let started = Instant::now();
            let response = request.send().await;
            (response, started.elapsed())
        }
    });
    let mut answers = Vec::new();
    for (response, took) in futures::future::join_all(requests).await {
        let response = response.unwrap();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let (status, value) = body(response).await;
        answers.push(Answer {
            status,
            body: value,
            retry_after,
            took,
        });
    }
    answers
}

struct Answer {
    status: StatusCode,
    body: Value,
    retry_after: Option<String>,
    took: Duration,
}

/// The requests really overlapped: none was answered before the one create could have been
/// done at the vendor (so all were in flight together), and they were not served one after
/// another.
fn assert_overlapped(answers: &[Answer]) {
    for answer in answers {
        assert!(
            answer.took >= VENDOR_LATENCY,
            "answered in {:?}, before the vendor could have answered",
            answer.took
        );
    }
    let slowest = answers.iter().map(|a| a.took).max().unwrap();
    assert!(
        slowest < VENDOR_LATENCY * 25,
        "the slowest answer took {slowest:?}: the requests were served one by one"
    );
}

/// Every answer is the same `success` answer, or the documented 409 with `Retry-After`; at
/// least one is the success. Returns the success body.
fn one_answer(answers: &[Answer], success: StatusCode) -> Value {
    let mut first: Option<&Value> = None;
    let mut waited_out = 0;
    for answer in answers {
        if answer.status == StatusCode::CONFLICT && answer.body == in_progress() {
            assert_eq!(
                answer.retry_after.as_deref(),
                Some("1"),
                "a 409 in progress says when to retry"
            );
            waited_out += 1;
            continue;
        }
        assert_eq!(answer.status, success, "{}", answer.body);
        match first {
            None => first = Some(&answer.body),
            Some(first) => assert_eq!(&answer.body, first, "every answer is the first one"),
        }
    }
    let first = first.unwrap_or_else(|| panic!("all {waited_out} answers were 409 in progress"));
    assert!(
        waited_out < answers.len(),
        "at least one request got the answer"
    );
    first.clone()
}

async fn fifty_creates_with_one_key_make_one_treez_create(db: Db) {
    let (double, app, token) = slow_treez_kiosk(db).await;

    let answers = fire(
        &app,
        "/api/v1/kiosk/customers",
        &token,
        "treez-create-1",
        &json!({"customer": customer(1)}),
    )
    .await;
    assert_overlapped(&answers);
    let created = one_answer(&answers, StatusCode::CREATED);
    assert_eq!(created["customer"]["first_name"], "Con1");
    let id = created["customer"]["customer_id"].as_str().unwrap();

    assert_eq!(double.count(Op::Create), 1, "one create reached Treez");
    let at_vendor = double.customers();
    assert_eq!(at_vendor.len(), 1);
    assert_eq!(at_vendor[0]["customer_id"], id);

    // Treez cannot search by name: the mirror answers, and it holds the one customer.
    let response = app
        .request(Method::GET, "/api/v1/kiosk/customers?name=con1", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-data-source"], "mirror");
    let (_, found) = body(response).await;
    assert_eq!(found["customers"], json!([created["customer"]]), "{found}");

    // Later, the same key replays without another vendor call.
    let again = fire(
        &app,
        "/api/v1/kiosk/customers",
        &token,
        "treez-create-1",
        &json!({"customer": customer(1)}),
    )
    .await;
    assert_eq!(one_answer(&again, StatusCode::CREATED), created);
    assert_eq!(double.count(Op::Create), 1);
}

async fn fifty_creates_with_one_key_make_one_local_customer(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("kiosk", Vendor::Local).await;
    let token = app.token(&["kiosk"]);

    let answers = fire(
        &app,
        "/api/v1/kiosk/customers",
        &token,
        "local-create-1",
        &json!({"customer": customer(1)}),
    )
    .await;
    let created = one_answer(&answers, StatusCode::CREATED);
    let (status, list) = app
        .get_json("/api/v1/kiosk/customers?limit=100", &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["customers"], json!([created["customer"]]), "{list}");
}

fn bulk_payload() -> Value {
    json!({"customers": [customer(1), customer(2), customer(3)]})
}

fn assert_three_created(result: &Value) {
    let statuses: Vec<u64> = result["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 201, 201], "{result}");
}

async fn fifty_bulk_requests_with_one_key_make_one_set_of_treez_creates(db: Db) {
    let (double, app, token) = slow_treez_kiosk(db).await;

    let answers = fire(
        &app,
        "/api/v1/kiosk/customers/bulk",
        &token,
        "treez-bulk-1",
        &bulk_payload(),
    )
    .await;
    assert_overlapped(&answers);
    let result = one_answer(&answers, StatusCode::OK);
    assert_three_created(&result);
    assert_eq!(
        double.count(Op::Create),
        3,
        "one create per item reached Treez"
    );
    let mut at_vendor: Vec<String> = double
        .customers()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap().to_owned())
        .collect();
    let mut answered: Vec<String> = result["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["customer"]["customer_id"].as_str().unwrap().to_owned())
        .collect();
    at_vendor.sort();
    answered.sort();
    assert_eq!(at_vendor, answered);

    let response = app
        .request(Method::GET, "/api/v1/kiosk/customers?name=current", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-data-source"], "mirror");
    let (_, found) = body(response).await;
    assert_eq!(
        found["customers"].as_array().unwrap().len(),
        3,
        "the mirror holds the three: {found}"
    );
}

async fn fifty_bulk_requests_with_one_key_make_one_set_of_local_customers(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("kiosk", Vendor::Local).await;
    let token = app.token(&["kiosk"]);

    let answers = fire(
        &app,
        "/api/v1/kiosk/customers/bulk",
        &token,
        "local-bulk-1",
        &bulk_payload(),
    )
    .await;
    let result = one_answer(&answers, StatusCode::OK);
    assert_three_created(&result);
    let (_, list) = app
        .get_json("/api/v1/kiosk/customers?limit=100", &token)
        .await;
    assert_eq!(
        list["customers"].as_array().unwrap().len(),
        3,
        "three customers, not 150: {list}"
    );
}

/// The same new customer sent by many kiosks at once, each with its own (or no) key: one
/// customer is made, and every other request gets it as the contract's 409 (issue 13: the
/// duplicate check and the create were two steps, so several got 201).
async fn same_customer_at_once(app: &TestApp, token: &str) -> (Value, usize) {
    let payload = json!({"customer": customer(7)});
    let requests = (0..20).map(|n| {
        let mut request = app
            .request(Method::POST, "/api/v1/kiosk/customers", token)
            .json(&payload);
        if n % 2 == 0 {
            request = request.header("Idempotency-Key", format!("kiosk-{n}"));
        }
        async move { body(request.send().await.unwrap()).await }
    });
    let answers = futures::future::join_all(requests).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(created.len(), 1, "one 201: {answers:?}");
    let made = created[0]["customer"].clone();
    let mut conflicts = 0;
    for (status, answer) in &answers {
        if *status == StatusCode::CONFLICT {
            assert_eq!(answer["error"], "customer already exists", "{answer}");
            assert_eq!(answer["customer"], made, "the 409 carries the one customer");
            conflicts += 1;
        }
    }
    assert_eq!(conflicts, 19);
    (made, conflicts)
}

async fn one_new_customer_sent_at_once_without_keys_makes_one_treez_create(db: Db) {
    let (double, app, token) = slow_treez_kiosk(db).await;
    let (made, _) = same_customer_at_once(&app, &token).await;
    assert_eq!(double.count(Op::Create), 1, "one create reached Treez");
    assert_eq!(double.customers().len(), 1);
    assert_eq!(double.customers()[0]["customer_id"], made["customer_id"]);
}

async fn one_new_customer_sent_at_once_without_keys_makes_one_local_customer(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("kiosk", Vendor::Local).await;
    let token = app.token(&["kiosk"]);
    let (made, _) = same_customer_at_once(&app, &token).await;
    let (_, list) = app
        .get_json("/api/v1/kiosk/customers?limit=100", &token)
        .await;
    assert_eq!(list["customers"], json!([made]), "{list}");
}

/// Two items of one bulk for the same person (the e-mail written differently) make one
/// customer, on the local POS and at a vendor alike.
async fn one_customer_twice_in_a_bulk_is_created_once(db: Db) {
    let double = TreezDouble::start().unwrap();
    double.set_latency(Duration::from_millis(50));
    let app = spawn_app(db).await;
    app.add_store("local", Vendor::Local).await;
    app.add_vendor_store("treez", Vendor::Treez, double.unthrottled_store_config())
        .await;
    let token = app.token(&["local", "treez"]);
    let mut twin = customer(8);
    twin["email"] = json!("CON8@Example.com");
    twin["phone"] = json!("555-010-9999");
    let payload = json!({"customers": [customer(8), twin]});
    for catalog in ["local", "treez"] {
        let response = app
            .request(
                Method::POST,
                &format!("/api/v1/{catalog}/customers/bulk"),
                &token,
            )
            .json(&payload)
            .send()
            .await
            .unwrap();
        let (status, result) = body(response).await;
        assert_eq!(status, StatusCode::OK, "{result}");
        let statuses: Vec<_> = result["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect();
        let mut sorted = statuses.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [201, 409], "{catalog}: {result}");
    }
    assert_eq!(double.count(Op::Create), 1);
}
