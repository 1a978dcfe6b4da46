//! What the gateway adds to a vendor call: the same requests through pos-gateway (a real HTTP
//! server on loopback, SQLite mirror, JWT checked on every call) and straight to the Treez
//! double, interleaved in one run so that the machine's noise falls on both alike.
//!
//! Run: `cargo run --release -p pos-gateway --example vendor_overhead [-- ROUNDS]`
//! (default 2000 rounds; each round makes one request of each kind both ways).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use domain::{CatalogId, Vendor};
use http_api::config::{Config, JwtKey, Secret};
use persistence::{CredentialsKey, Database};
use serde_json::{Value, json};
use vendor_doubles::VendorDouble as _;
use vendor_doubles::treez::TreezDouble;

const JWT_SECRET: &str = "fek22NJn02NGX+BWxE/OWqHtnDOEJnQFUt1ur4+lWLw=";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let double = TreezDouble::start().unwrap();
    let id = double.seed(
        json!({"first_name": "Ann", "last_name": "Lee", "birthday": "1989-03-07",
        "patient_type": "ADULT", "phone": "5551234567", "email": "ann@example.com"}),
    );

    // The gateway, as `serve` runs it, on a fresh SQLite file.
    let dir = tempfile::tempdir().unwrap();
    let key = CredentialsKey::from_bytes(&[9; 32]);
    let config = Config {
        database_url: format!("sqlite://{}", dir.path().join("gw.db").display()),
        jwt_key: Some(JwtKey::Secret(Secret::new(JWT_SECRET))),
        credentials_key: Some(key.clone()),
        // The gateway's own overhead is measured, not the per-kiosk budget.
        catalog_rate: None,
        ..Config::default()
    };
    let database = Database::connect(&config.database_url).await.unwrap();
    database.migrate().await.unwrap();
    let stores = database.clone().with_credentials_key(Some(key)).stores();
    let store = stores
        .add_store(
            "Treez store",
            Vendor::Treez,
            &double.unthrottled_store_config(),
        )
        .await
        .unwrap();
    stores
        .add_catalog(store.id, &CatalogId::parse("kiosk").unwrap())
        .await
        .unwrap();
    let state = http_api::app::state(&config, database).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway = format!("http://{}/api/v1/kiosk", listener.local_addr().unwrap());
    tokio::spawn(http_api::app::server(state, listener).unwrap());
    let (jwt, _) = http_api::auth::issue_token(
        &Secret::new(JWT_SECRET),
        "pos-gateway",
        vec!["kiosk".into()],
        Duration::from_secs(3600),
    )
    .unwrap();

    // Straight to the double, with a token of its own, as the adapter sends it.
    let client = reqwest::Client::new();
    let vendor = format!("{}/{}", double.base_url(), double.credentials().dispensary);
    let token: Value = client
        .post(format!("{vendor}/config/api/gettokens"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id={}&apikey={}",
            double.credentials().client_id,
            double.credentials().api_key
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vendor_token = token["access_token"].as_str().unwrap().to_owned();
    let direct = |path: String| {
        client
            .get(format!("{vendor}/{path}"))
            .header("authorization", &vendor_token)
            .header("client_id", &double.credentials().client_id)
    };
    let through = |path: String| client.get(format!("{gateway}/{path}")).bearer_auth(&jwt);

    let kinds: [(&str, String, String); 2] = [
        (
            "get by id",
            format!("customers/{id}"),
            format!("customer/{id}"),
        ),
        (
            "search by phone",
            "customers?phone=555-123-4567".to_owned(),
            "customer/phone/5551234567".to_owned(),
        ),
    ];
    let mut samples: Vec<(Vec<Duration>, Vec<Duration>)> = vec![Default::default(); kinds.len()];
    let warm_up = rounds / 10;
    for round in 0..warm_up + rounds {
        for (i, (_, ours, theirs)) in kinds.iter().enumerate() {
            // Alternate which goes first, so neither always finds the other's warm caches.
            let (a, b) = if round % 2 == 0 {
                (
                    time(through(ours.clone())).await,
                    time(direct(theirs.clone())).await,
                )
            } else {
                let b = time(direct(theirs.clone())).await;
                (time(through(ours.clone())).await, b)
            };
            if round >= warm_up {
                samples[i].0.push(a);
                samples[i].1.push(b);
            }
        }
    }

    println!(
        "{rounds} rounds, sequential, keep-alive; gateway = pos-gateway (SQLite mirror) -> Treez double\n"
    );
    println!(
        "{:<16} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "request",
        "direct p50",
        "gateway p50",
        "added p50",
        "direct p99",
        "gateway p99",
        "added p99"
    );
    for ((name, _, _), (gateway, direct)) in kinds.iter().zip(samples.iter_mut()) {
        let (g50, g99) = percentiles(gateway);
        let (d50, d99) = percentiles(direct);
        println!(
            "{name:<16} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
            ms(d50),
            ms(g50),
            ms(g50.saturating_sub(d50)),
            ms(d99),
            ms(g99),
            ms(g99.saturating_sub(d99)),
        );
    }
}

async fn time(request: reqwest::RequestBuilder) -> Duration {
    let started = Instant::now();
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.bytes().await.unwrap();
    assert!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    started.elapsed()
}

fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
