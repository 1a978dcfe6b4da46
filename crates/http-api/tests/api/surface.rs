//! The HTTP surface itself: error bodies as the contract writes them, the OpenAPI document
//! built once, metrics whose series a client cannot multiply, the operations listener, and a
//! deadline on request bodies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use crate::helpers::{Db, TestApp, body, john, spawn_app, spawn_app_with};
use domain::Vendor;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn raw(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Error bodies are the documented body types, serialised in the order the contract writes
/// their keys (`{"status": 405, "message": ...}`, not `{"message": ..., "status": 405}`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_are_sent_as_the_contract_writes_them() {
    let app = spawn_app(Db::Sqlite).await;
    app.add_store("k", Vendor::Local).await;
    app.add_store("broken", Vendor::Cova).await;
    let token = app.token(&["k", "broken"]);

    let (status, text) = raw(app
        .request(Method::DELETE, "/api/v1/k/customers/1", &token)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(text, r#"{"status":405,"message":"method not allowed"}"#);

    let (status, text) = raw(app
        .client
        .get(app.url("/api/v1/k/customers"))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        text,
        r#"{"error":"You need to sign in or sign up before continuing."}"#
    );

    let (status, created) = raw(app.create("k", john()).await).await;
    assert_eq!(status, StatusCode::CREATED);
    let customer = created
        .strip_prefix(r#"{"customer":"#)
        .and_then(|c| c.strip_suffix('}'))
        .unwrap();
    assert!(customer.starts_with(r#"{"status":"ACTIVE","customer_id":"#));
    let (status, text) = raw(app.create("k", john()).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        text,
        format!(r#"{{"error":"customer already exists","customer":{customer}}}"#)
    );

    let (status, text) = raw(app
        .request(Method::GET, "/api/v1/broken/customers/1", &token)
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        text.starts_with(r#"{"error":"pos_error","message":""#)
            && text.ends_with(r#"","pos":{"vendor":"cova","status":null,"body":null}}"#),
        "{text}"
    );
}

/// `/openapi.json` answers the same bytes every time, built once per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_built_once_and_served_as_built() {
    let app = spawn_app(Db::Sqlite).await;
    let mut documents = Vec::new();
    for _ in 0..3 {
        let response = app
            .client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        documents.push(response.bytes().await.unwrap());
    }
    assert!(documents.iter().all(|d| d == &documents[0]));
    let expected =
        serde_json::to_vec(&<http_api::openapi::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
    assert_eq!(documents[0], expected);
    assert_eq!(
        http_api::openapi::builds(),
        1,
        "built once for every request of every test in this process"
    );
    assert!(std::ptr::eq(
        http_api::openapi::document(),
        http_api::openapi::document()
    ));
}

async fn metrics_text(app: &TestApp, base: &str) -> String {
    let response = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The samples of `/metrics`, one a series (each histogram bucket counts as one).
fn series(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            line.rsplit_once(' ')
                .map_or(line, |(name, _)| name)
                .to_owned()
        })
        .collect()
}

/// Requests with made-up methods, or naming ids in their paths, do not add series: methods
/// outside HTTP's own are one label value, `OTHER`, and paths are labelled by their route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_series_do_not_grow_with_made_up_methods_or_raw_paths() {
    let app = spawn_app(Db::Sqlite).await;
    app.add_store("kiosk-raw", Vendor::Local).await;
    let token = app.token(&["kiosk-raw"]);
    let send = |method: String, path: String| {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let request = app.request(method, &path, &token);
        async move { request.send().await.unwrap().status() }
    };
    let paths = |n: u32| {
        [
            format!("/api/v1/kiosk-raw/customers/cust-{n}"),
            "/api/v1/kiosk-raw/customers".to_owned(),
            format!("/nowhere-{n}"),
        ]
    };
    // Once each (a made-up method, a real one), so every series the loop could touch exists.
    for path in paths(0) {
        send("XBASE".into(), path.clone()).await;
        send("GET".into(), path).await;
    }
    metrics_text(&app, &app.address).await;
    let before = series(&metrics_text(&app, &app.address).await);

    for n in 1..=50u32 {
        let method = format!("X{}", rand::random::<u32>());
        for path in paths(n) {
            let status = send(method.clone(), path.clone()).await;
            assert!(
                status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::NOT_FOUND,
                "{method} {path}: {status}"
            );
            let status = send("GET".into(), path.clone()).await;
            assert!(status.is_client_error() || status.is_success(), "{status}");
        }
    }
    let metrics = metrics_text(&app, &app.address).await;
    let after = series(&metrics);
    assert_eq!(
        before.len(),
        after.len(),
        "new series: {:?}",
        after
            .iter()
            .filter(|s| !before.contains(s))
            .collect::<Vec<_>>()
    );
    assert!(metrics.contains(r#"method="OTHER""#), "{metrics}");
    assert!(
        metrics.contains(r#"endpoint="/api/v1/{catalog_id}/customers/{customer_id}""#),
        "{metrics}"
    );
    for raw in ["kiosk-raw", "cust-", "nowhere", "method=\"X"] {
        assert!(!metrics.contains(raw), "{raw} is in the metrics: {metrics}");
    }
}

/// With an operations listener, `/metrics` and `/readyz` are served there only; `/healthz` is
/// on both; the metrics count the public listener's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operations_listener_takes_metrics_and_readiness_off_the_public_one() {
    let app = spawn_app_with(Db::Sqlite, |config| {
        config.ops_listen = Some("127.0.0.1:0".into());
    })
    .await;
    app.add_store("k", Vendor::Local).await;
    let ops = app.ops_address.clone().unwrap();
    let get = |url: String| {
        let request = app.client.get(url);
        async move { body(request.send().await.unwrap()).await }
    };

    let (status, _) = body(
        app.request(Method::GET, "/api/v1/k/customers", &app.token(&["k"]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/metrics", "/readyz"] {
        assert_eq!(
            get(app.url(path)).await,
            (StatusCode::NOT_FOUND, json!({"error": "not found"})),
            "{path} on the public listener"
        );
    }
    for base in [&app.address, &ops] {
        assert_eq!(
            get(format!("{base}/healthz")).await,
            (StatusCode::OK, json!({"status": "ok"})),
            "{base}"
        );
    }
    assert_eq!(
        get(format!("{ops}/readyz")).await,
        (StatusCode::OK, json!({"status": "ready"}))
    );
    let metrics = metrics_text(&app, &ops).await;
    assert!(
        metrics.contains(r#"endpoint="/api/v1/{catalog_id}/customers",method="GET",status="200""#),
        "{metrics}"
    );
    assert_eq!(
        get(format!("{ops}/api/v1/k/customers")).await,
        (StatusCode::NOT_FOUND, json!({"error": "not found"})),
        "the API is not on the operations listener"
    );
}

/// A client that sends a head and then trickles (here: stops sending) its body gets a 408 and
/// a closed connection once the body deadline has passed, instead of holding a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_gets_408_and_the_connection_closed() {
    let app = spawn_app_with(Db::Sqlite, |config| {
        config.body_timeout = Duration::from_secs(1);
    })
    .await;
    app.add_store("k", Vendor::Local).await;
    let token = app.token(&["k"]);
    let address = app.address.trim_start_matches("http://").to_owned();

    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/k/customers HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"customer\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(8), stream.read_to_end(&mut answer))
        .await
        .expect("the server ended the request within the deadline (and closed the connection)")
        .unwrap();
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "answered after {took:?}: {answer}"
    );
    assert!(
        answer.ends_with(r#"{"error":"the request body did not arrive within 1s"}"#),
        "{answer}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );

    // A chunked body that stops arriving gets its 408 at the deadline too. (The connection
    // then stays open while the client keeps it: actix-http drains a chunked body it was
    // not asked for until the client ends it; see docs/operations.md.)
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/k/customers/bulk HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"cus"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).ends_with("1s\"}") {
        let n = tokio::time::timeout(Duration::from_secs(8), stream.read(&mut chunk))
            .await
            .expect("the server answered within the deadline")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&chunk[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // A body that does arrive in time is read as before.
    let (status, _) = body(app.create("k", john()).await).await;
    assert_eq!(status, StatusCode::CREATED);
}
