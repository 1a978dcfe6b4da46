//! Bearer tokens over real HTTP: `nbf`, the longest lifetime, and secrets named by `kid` so
//! that one can be replaced without signing every kiosk out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use domain::Vendor;
use http_api::config::{JwtKey, Secret, SecretSet};
use jsonwebtoken::{EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Db, SECRET, TestApp, body, spawn_app, spawn_app_with_key};

const UNAUTHORIZED: &str = "You need to sign in or sign up before continuing.";
const DAY: u64 = 24 * 3600;
const OLD: &str = "Pg7p+FTk9PbjX893MUs54GYqQ5KupT2B8xBAz1d54Vo=";
const NEW: &str = "8V+mQFGoy3ipLXy5CliZjncV8hEBebKX0wjQeTvu7tw=";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn sign(kid: Option<&str>, claims: &Value, secret: &str) -> String {
    let header = Header {
        kid: kid.map(str::to_owned),
        ..Header::default()
    };
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims(extra: Value) -> Value {
    let mut claims = json!({"exp": now() + 600, "aud": "pos-gateway", "catalogs": ["k"]});
    for (key, value) in extra.as_object().unwrap() {
        claims[key] = value.clone();
    }
    claims
}

/// The status of a listing with `token`, and the exact 401 body when it is refused.
async fn status_with(app: &TestApp, token: &str) -> StatusCode {
    let (status, answer) = body(
        app.client
            .get(app.url("/api/v1/k/customers"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(answer, json!({"error": UNAUTHORIZED}));
    }
    status
}

#[test]
fn the_tests_secret_passes_the_strength_check() {
    for secret in [SECRET, OLD, NEW] {
        assert!(http_api::secret_strength::check(secret).is_ok(), "{secret}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_before_its_nbf_is_refused() {
    let app = spawn_app(Db::Sqlite).await;
    app.add_store("k", Vendor::Local).await;
    for (nbf, expected) in [
        (now() + 3600, StatusCode::UNAUTHORIZED),
        (now() + 120, StatusCode::UNAUTHORIZED),
        // Within the 30 s of clock leeway, and in the past.
        (now() + 10, StatusCode::OK),
        (now() - 60, StatusCode::OK),
    ] {
        let token = sign(None, &claims(json!({ "nbf": nbf })), SECRET);
        assert_eq!(status_with(&app, &token).await, expected, "nbf {nbf}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_living_over_400_days_is_refused() {
    let app = spawn_app(Db::Sqlite).await;
    app.add_store("k", Vendor::Local).await;
    let now = now();
    for (what, extra, expected) in [
        (
            "exp - iat is 400 days",
            json!({"iat": now, "exp": now + 400 * DAY}),
            StatusCode::OK,
        ),
        (
            "exp - iat is 400 days and a second",
            json!({"iat": now, "exp": now + 400 * DAY + 1}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "issued 30 days ago for 401 days",
            json!({"iat": now - 30 * DAY, "exp": now + 371 * DAY}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no iat, 399 days left",
            json!({"exp": now + 399 * DAY}),
            StatusCode::OK,
        ),
        (
            "no iat, ten years left",
            json!({"exp": now + 3650 * DAY}),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let token = sign(None, &claims(extra), SECRET);
        assert_eq!(status_with(&app, &token).await, expected, "{what}");
    }
}

fn key_set(named: &[(&str, &str)], unnamed: Option<&str>) -> JwtKey {
    JwtKey::SecretSet(
        SecretSet::new(
            named
                .iter()
                .map(|(kid, secret)| ((*kid).to_owned(), Secret::new(*secret)))
                .collect(),
            None,
            unnamed.map(Secret::new),
        )
        .unwrap(),
    )
}

/// A rotation: kiosks hold tokens of the old secret while new ones are signed with the new;
/// both work while both are configured, and once the old secret is removed its tokens are
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_named_by_kid_rotate_without_signing_everyone_out() {
    let both = key_set(&[("2025-06", NEW), ("2025-01", OLD)], Some(OLD));
    let app = spawn_app_with_key(Db::Sqlite, both.clone()).await;
    app.add_store("k", Vendor::Local).await;
    let good = claims(json!({}));
    let old = sign(Some("2025-01"), &good, OLD);
    let new = sign(Some("2025-06"), &good, NEW);
    let unnamed = sign(None, &good, OLD);
    // What `pos-gateway token` makes: the newest kid.
    let (issued, _) = http_api::auth::sign_token(
        both.signing_key().unwrap(),
        "pos-gateway",
        vec!["k".into()],
        Duration::from_secs(600),
    )
    .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&issued).unwrap().kid.as_deref(),
        Some("2025-06")
    );
    for (what, token, expected) in [
        ("the old kid", &old, StatusCode::OK),
        ("the new kid", &new, StatusCode::OK),
        ("issued by the gateway", &issued, StatusCode::OK),
        (
            "no kid: POS_GATEWAY_JWT_SECRET's token",
            &unnamed,
            StatusCode::OK,
        ),
        (
            "a kid is checked against its own secret only",
            &sign(Some("2025-01"), &good, NEW),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "an unknown kid",
            &sign(Some("2024-12"), &good, NEW),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no kid, signed with a named secret",
            &sign(None, &good, NEW),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        assert_eq!(status_with(&app, token).await, expected, "{what}");
    }

    // The old secret removed (and POS_GATEWAY_JWT_SECRET with it).
    let app = spawn_app_with_key(Db::Sqlite, key_set(&[("2025-06", NEW)], None)).await;
    app.add_store("k", Vendor::Local).await;
    assert_eq!(status_with(&app, &new).await, StatusCode::OK);
    assert_eq!(status_with(&app, &issued).await, StatusCode::OK);
    assert_eq!(status_with(&app, &old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status_with(&app, &unnamed).await,
        StatusCode::UNAUTHORIZED,
        "no kid and no unnamed secret"
    );
}

/// One secret alone (`POS_GATEWAY_JWT_SECRET`) does not look at `kid`, as before key sets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_secret_ignores_the_kid() {
    let app = spawn_app(Db::Sqlite).await;
    app.add_store("k", Vendor::Local).await;
    let token = sign(Some("anything"), &claims(json!({})), SECRET);
    assert_eq!(status_with(&app, &token).await, StatusCode::OK);
}
