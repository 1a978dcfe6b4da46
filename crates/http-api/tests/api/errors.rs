//! Every row of the contract's error table that applies to the `local` POS, and the operational
//! endpoints.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::helpers::{Db, SECRET, body, spawn_app, spawn_app_with_key};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::Vendor;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const UNAUTHORIZED: &str = "You need to sign in or sign up before continuing.";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn sign(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_token_gets_the_same_401() {
    let app = spawn_app(Db::Sqlite).await;
    app.add_store("k", Vendor::Local).await;
    let good = json!({"exp": now() + 600, "aud": "pos-gateway", "catalogs": ["k"]});
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("not a JWT", Some("Bearer garbage".into())),
        (
            "not bearer",
            Some(format!("Basic {}", sign(good.clone(), SECRET))),
        ),
        ("alg none", Some(format!("Bearer {unsigned}"))),
        (
            "wrong key",
            Some(format!(
                "Bearer {}",
                sign(good.clone(), "another-secret-0123456789abcdef0123")
            )),
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                sign(
                    json!({"exp": now() - 3600, "aud": "pos-gateway", "catalogs": ["k"]}),
                    SECRET
                )
            )),
        ),
        (
            "wrong audience",
            Some(format!(
                "Bearer {}",
                sign(
                    json!({"exp": now() + 600, "aud": "someone-else", "catalogs": ["k"]}),
                    SECRET
                )
            )),
        ),
        (
            "missing exp",
            Some(format!(
                "Bearer {}",
                sign(json!({"aud": "pos-gateway", "catalogs": ["k"]}), SECRET)
            )),
        ),
        (
            "missing aud",
            Some(format!(
                "Bearer {}",
                sign(json!({"exp": now() + 600, "catalogs": ["k"]}), SECRET)
            )),
        ),
        (
            "missing catalogs",
            Some(format!(
                "Bearer {}",
                sign(json!({"exp": now() + 600, "aud": "pos-gateway"}), SECRET)
            )),
        ),
    ];
    for (what, header) in cases {
        let mut request = app.client.get(app.url("/api/v1/k/customers"));
        if let Some(header) = header {
            request = request.header("Authorization", header);
        }
        let (status, answer) = body(request.send().await.unwrap()).await;
        assert_eq!(
            (status, answer),
            (StatusCode::UNAUTHORIZED, json!({"error": UNAUTHORIZED})),
            "{what}"
        );
    }
    let (status, _) = body(
        app.client
            .get(app.url("/api/v1/k/customers"))
            .bearer_auth(sign(good, SECRET))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the well-formed token is accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_usable_json_get_the_contracts_4xx() {
    let app = spawn_app(Db::Sqlite).await;
    app.add_store("k", Vendor::Local).await;
    let token = app.token(&["k"]);
    let post = |content_type: &'static str, payload: Vec<u8>| {
        app.request(Method::POST, "/api/v1/k/customers", &token)
            .header("Content-Type", content_type)
            .body(payload)
            .send()
    };
    let (status, answer) = body(
        post("application/json", b"{\"customer\": {".to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON"),
        "{answer}"
    );

    let (status, answer) = body(
        post(
            "application/json",
            br#"{"client": {"first_name": "A"}}"#.to_vec(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "param is missing or the value is empty: customer"})
        )
    );

    let (status, answer) = body(
        post("text/plain", br#"{"customer": {}}"#.to_vec())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(answer["error"].is_string());

    let mut huge = br#"{"customer": {"first_name": "A", "last_name": "B", "notes": ""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    huge.extend(br#""}}"#);
    let (status, answer) = body(post("application/json", huge).await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(answer["error"].is_string());

    let (status, answer) = body(
        app.request(Method::POST, "/api/v1/k/customers", &token)
            .header("Idempotency-Key", "")
            .json(&json!({"customer": {"first_name": "A", "last_name": "B"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

/// The server was started without the key the store's credentials were encrypted with: that is
/// the operator's mistake, so a 500, and neither the answer nor the log shows the credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_credentials_cannot_be_decrypted_is_a_server_error() {
    let app = spawn_app(Db::Sqlite).await;
    let key = persistence::CredentialsKey::from_bytes(&[9; 32]);
    let stores = app
        .database
        .clone()
        .with_credentials_key(Some(key))
        .stores();
    let store = stores
        .add_store(
            "sealed",
            Vendor::Treez,
            &json!({"dispensary": "d", "client_id": "c", "api_key": "sk_live_HTTP_TOPSECRET"}),
        )
        .await
        .unwrap();
    stores
        .add_catalog(store.id, &domain::CatalogId::parse("sealed").unwrap())
        .await
        .unwrap();

    let token = app.token(&["sealed"]);
    for path in ["/api/v1/sealed/customers", "/api/v1/sealed/pos"] {
        let response = app.request(Method::GET, path, &token).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}"
        );
        let text = response.text().await.unwrap();
        assert!(!text.contains("TOPSECRET"), "{text}");
        assert!(!text.contains("decrypt"), "internals are not shown: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_route_does_not_have_is_405() {
    let app = spawn_app(Db::Sqlite).await;
    app.add_store("k", Vendor::Local).await;
    let (status, answer) = body(
        app.request(Method::DELETE, "/api/v1/k/customers/1", &app.token(&["k"]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, answer),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"status": 405, "message": "method not allowed"})
        )
    );
}

/// A store whose stored config no longer opens (edited by hand, or from before a key became
/// required) answers what the OpenAPI document says for it, 502 `pos_error` naming the
/// vendor, on every operation and `/pos`; the log says which key, the kiosk does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_config_no_longer_opens_is_502_everywhere() {
    let app = spawn_app(Db::Sqlite).await;
    // Inserted as the database holds it, past `store add`'s checks.
    app.add_store("broken", Vendor::Cova).await;
    let token = app.token(&["broken"]);
    let customer = json!({"customer": {"first_name": "A", "last_name": "B"}});
    for (method, path, json) in [
        (Method::GET, "/api/v1/broken/pos", None),
        (Method::GET, "/api/v1/broken/customers", None),
        (
            Method::GET,
            "/api/v1/broken/customers?phone=5551234567",
            None,
        ),
        (Method::GET, "/api/v1/broken/customers/1", None),
        (
            Method::POST,
            "/api/v1/broken/customers",
            Some(customer.clone()),
        ),
        (
            Method::PATCH,
            "/api/v1/broken/customers/1",
            Some(customer.clone()),
        ),
        (
            Method::PUT,
            "/api/v1/broken/customers/1",
            Some(customer.clone()),
        ),
        (
            Method::POST,
            "/api/v1/broken/customers/bulk",
            Some(json!({"customers": [customer["customer"].clone()]})),
        ),
    ] {
        let mut request = app.request(method.clone(), path, &token);
        if let Some(json) = json {
            request = request.json(&json);
        }
        let (status, answer) = body(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{method} {path}: {answer}");
        assert_eq!(answer["error"], "pos_error", "{method} {path}: {answer}");
        assert_eq!(answer["pos"]["vendor"], "cova", "{method} {path}");
        assert!(
            !answer.to_string().contains("company_id"),
            "the key is the operator's to read, in the log: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_endpoints_answer() {
    let app = spawn_app(Db::Sqlite).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(
        health.headers().contains_key("x-request-id"),
        "every answer names its request"
    );
    assert_eq!(
        body(health).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let (status, ready) = body(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (status, ready),
        (StatusCode::OK, json!({"status": "ready"}))
    );

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("pos_gateway_http_requests_total"),
        "{metrics}"
    );

    let (status, openapi) = body(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    let paths: Vec<&str> = openapi["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for path in [
        "/api/v1/{catalog_id}/customers",
        "/api/v1/{catalog_id}/customers/{customer_id}",
        "/api/v1/{catalog_id}/customers/bulk",
        "/api/v1/{catalog_id}/pos",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains(&path), "{path} is documented");
    }
    let (status, answer) = body(
        app.client
            .get(app.url("/no/such/route"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, answer),
        (StatusCode::NOT_FOUND, json!({"error": "not found"}))
    );
}

/// `src` and `href` values of an HTML page.
fn links(html: &str) -> Vec<&str> {
    let mut links = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            let end = rest.find('"').unwrap();
            links.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    links
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_swagger_ui_served_by_the_gateway_itself() {
    // What a browser does is checked by `cargo xtask browser`; this checks what it is sent.
    let app = spawn_app(Db::Sqlite).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let docs = client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(docs.headers()["location"], "/docs/");

    let page = client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>Swagger UI</title>"), "{html}");
    let assets = links(&html);
    for expected in [
        "./swagger-ui.css",
        "./swagger-ui-bundle.js",
        "./swagger-ui-standalone-preset.js",
        "./swagger-initializer.js",
    ] {
        assert!(assets.contains(&expected), "{expected} in {assets:?}");
    }
    // No CDN: every asset is relative, so it comes from the gateway, and is there.
    for asset in assets {
        assert!(
            !asset.contains(':') && !asset.starts_with('/'),
            "{asset} is served by the gateway, beside the page"
        );
        let answer = client
            .get(app.url(&format!("/docs/{}", asset.trim_start_matches("./"))))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{asset}");
        assert!(!answer.bytes().await.unwrap().is_empty(), "{asset}");
    }

    let initializer = client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains(r#""url": "/openapi.json""#),
        "the page reads the gateway's document: {initializer}"
    );
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "the page calls no online validator: {initializer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_snapshot() {
    // A changed API changes this file: review the diff, then run with UPDATE_SNAPSHOTS=1.
    let document =
        serde_json::to_string_pretty(&<http_api::openapi::ApiDoc as utoipa::OpenApi>::openapi())
            .unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() || !path.exists() {
        std::fs::write(&path, format!("{document}\n")).unwrap();
    }
    let saved = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        saved.trim_end(),
        document,
        "docs/openapi.json is out of date: run with UPDATE_SNAPSHOTS=1"
    );
}

/// Test-only keys, made with `openssl ecparam -name prime256v1 -genkey`.
const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgcOH8NQCQQSbiUnx1
wAWjQtq3628Tag19mOsCmLXgL/+hRANCAARCNLg1f+0LcY/dbwbLbFs1iKLvBcEG
JPsCnN/2TESZ/2ktNRHCeMf3u1q6OdS5TWNp56PJZIoP9YIZg6n0hQYC
-----END PRIVATE KEY-----
";
const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQjS4NX/tC3GP3W8Gy2xbNYii7wXB
BiT7Apzf9kxEmf9pLTURwnjH97taujnUuU1jaeejyWSKD/WCGYOp9IUGAg==
-----END PUBLIC KEY-----
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_key_checks_es256_tokens_and_refuses_algorithm_confusion() {
    let key = http_api::config::JwtKey::PublicKey {
        algorithm: jsonwebtoken::Algorithm::ES256,
        pem: EC_PUBLIC.to_owned(),
    };
    let app = spawn_app_with_key(Db::Sqlite, key).await;
    app.add_store("k", Vendor::Local).await;
    let claims = json!({"exp": now() + 600, "aud": "pos-gateway", "catalogs": ["k"]});
    let es256 = jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    let get = |token: String| {
        app.client
            .get(app.url("/api/v1/k/customers"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(get(es256).await.unwrap().status(), StatusCode::OK);

    // The classic confusion: an HS256 token whose "secret" is the public key everyone has.
    let confused = sign(claims.clone(), EC_PUBLIC);
    let (status, answer) = body(get(confused).await.unwrap()).await;
    assert_eq!(
        (status, answer),
        (StatusCode::UNAUTHORIZED, json!({"error": UNAUTHORIZED}))
    );
    let (status, _) = body(get(sign(claims, SECRET)).await.unwrap()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "HS256 is off when a public key is configured"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_gives_503_not_a_hang() {
    let mut app = spawn_app(Db::Postgres).await;
    app.add_store("k", Vendor::Local).await;
    let token = app.token(&["k"]);
    let (status, _) = app.get_json("/api/v1/k/customers", &token).await;
    assert_eq!(status, StatusCode::OK);

    app.drop_postgres_database().await;

    let started = std::time::Instant::now();
    let response = app
        .request(Method::GET, "/api/v1/k/customers", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let (_, answer) = body(response).await;
    assert_eq!(answer["error"], "service_unavailable");
    let (status, ready) = body(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (status, ready),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable"})
        )
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "answered in {:?}",
        started.elapsed()
    );
}

/// Sends `GET {path}` exactly as written (a URL library would resolve dot segments first) and
/// answers the status and body.
async fn raw_get(address: &str, path: &str, token: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status = answer[9..12].parse().unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    // A chunked body: the JSON is the line that starts with '{'.
    let json = body.lines().find(|l| l.starts_with('{')).unwrap_or("null");
    (status, serde_json::from_str(json).unwrap())
}

/// `.` and `..` (however encoded) are not customer ids: a URL builder resolves them away and
/// reaches the vendor's collection path (issue 13). They, and anything outside the ids'
/// character set, are the contract's 404 without a vendor call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segment_and_odd_customer_ids_never_reach_the_vendor() {
    use vendor_doubles::VendorDouble as _;
    let double = vendor_doubles::treez::TreezDouble::start().unwrap();
    let app = spawn_app(Db::Sqlite).await;
    app.add_vendor_store("k", Vendor::Treez, double.unthrottled_store_config())
        .await;
    let token = app.token(&["k"]);
    for id in [
        "%2e%2e", "%2E", ".%2e", "..%2f..", "a%20b", "%c3%a9", "a%3Fb", "a%2Fb",
    ] {
        let path = format!("/api/v1/k/customers/{id}");
        let answer = raw_get(&app.address, &path, &token).await;
        assert_eq!(
            answer,
            (404, json!({"error": "customer not found"})),
            "GET {path}"
        );
        let (status, answer) = body(
            app.request(Method::PATCH, &path, &token)
                .json(&json!({"customer": {"notes": "x"}}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "PATCH {path}: {answer}");
    }
    assert_eq!(
        double.count(vendor_doubles::Op::Any),
        0,
        "no request reached Treez: {:?}",
        double.calls()
    );
}

/// A client cursor is an offset into a vendor's whole answer for some searches: a forged one at
/// the top of the range is the contract's 422 on `cursor`, not an overflow (a panic in debug
/// builds, a wrap in release ones).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_at_the_end_of_the_range_is_422_not_an_overflow() {
    use vendor_doubles::VendorDouble as _;
    let double = vendor_doubles::cova::CovaDouble::start().unwrap();
    let app = spawn_app(Db::Sqlite).await;
    app.add_vendor_store("k", Vendor::Cova, double.unthrottled_store_config())
        .await;
    let token = app.token(&["k"]);
    for offset in [
        u64::MAX.to_string(),
        usize::MAX.to_string(),
        "4294967296:100".into(),
    ] {
        let cursor = URL_SAFE_NO_PAD.encode(format!("p:{offset}"));
        for filter in ["", "phone=555-010-0001&"] {
            let (status, answer) = body(
                app.request(
                    Method::GET,
                    &format!("/api/v1/k/customers?{filter}limit=100&cursor={cursor}"),
                    &token,
                )
                .send()
                .await
                .unwrap(),
            )
            .await;
            assert_eq!(
                (status, answer),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"errors": {"cursor": ["is invalid"]}})
                ),
                "{filter} {offset}"
            );
        }
    }
}
