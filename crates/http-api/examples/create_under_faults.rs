//! A create is never sent twice: kiosks create customers through pos-gateway while the Treez
//! double fails at random, before and *after* doing the write (so the answer is lost and
//! only a blind retry would duplicate). Kiosks retry failed requests with the same
//! `Idempotency-Key`, as they should. Counts, at the end, how many creates reached the vendor,
//! and how many customers the vendor holds per e-mail (the invariant: at most one).
//!
//! Run: `cargo run --release -p pos-gateway --example create_under_faults [-- CUSTOMERS]`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::{CatalogId, Vendor};
use futures::StreamExt as _;
use http_api::config::{Config, JwtKey, Secret};
use persistence::{CredentialsKey, Database};
use rand::Rng as _;
use serde_json::json;
use vendor_doubles::VendorDouble as _;
use vendor_doubles::treez::TreezDouble;
use vendor_doubles::{Fault, Op};

const JWT_SECRET: &str = "Y8kigwgfEReL3e4szHNUJvpFKeOreJpbDghkvnrneNM=";
const KIOSK_ATTEMPTS: usize = 6;
const CONCURRENCY: usize = 16;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let customers: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let double = Arc::new(TreezDouble::start().unwrap());

    // Every create at the vendor draws a fault; half of them strike after the write.
    let mut rng = rand::rng();
    let mut injected: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..customers * KIOSK_ATTEMPTS {
        let (name, fault) = match rng.random_range(0..10) {
            0 => ("500 before the write", Fault::Status(500)),
            1 => (
                "429 before the write",
                Fault::RateLimited {
                    retry_after: "1".into(),
                },
            ),
            2 => ("connection cut before the write", Fault::ResetMidBody),
            3 => (
                "500 after the write",
                Fault::AfterCommit(Box::new(Fault::Status(500))),
            ),
            4 => (
                "timeout after the write",
                Fault::Delay(Duration::from_millis(800)),
            ),
            5 => (
                "connection cut after the write",
                Fault::AfterCommit(Box::new(Fault::ResetMidBody)),
            ),
            6 => (
                "HTML after the write",
                Fault::AfterCommit(Box::new(Fault::Garbage)),
            ),
            _ => ("none", Fault::Pass),
        };
        *injected.entry(name).or_default() += 1;
        double.fail(Op::Create, fault, 1);
    }

    let dir = tempfile::tempdir().unwrap();
    let key = CredentialsKey::from_bytes(&[3; 32]);
    let config = Config {
        database_url: format!("sqlite://{}", dir.path().join("gw.db").display()),
        jwt_key: Some(JwtKey::Secret(Secret::new(JWT_SECRET))),
        credentials_key: Some(key.clone()),
        pos_timeout: Duration::from_millis(500),
        // 300 creates from one catalog: the measurement is of the vendor faults, not of the
        // per-kiosk budget.
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
    let url = format!(
        "http://{}/api/v1/kiosk/customers",
        listener.local_addr().unwrap()
    );
    tokio::spawn(http_api::app::server(state, listener).unwrap());
    let (jwt, _) = http_api::auth::issue_token(
        &Secret::new(JWT_SECRET),
        "pos-gateway",
        vec!["kiosk".into()],
        Duration::from_secs(3600),
    )
    .unwrap();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let started = Instant::now();
    let outcomes: Vec<(u16, usize)> = futures::stream::iter(0..customers)
        .map(|i| {
            let (client, url, jwt) = (client.clone(), url.clone(), jwt.clone());
            async move {
                let body = json!({"customer": {"first_name": "Kiosk", "last_name": format!("Customer{i}"),
                    "birthday": "1990-01-01", "email": format!("c{i}@example.com"),
                    "phone": format!("555{i:07}")}});
                let mut status = 0;
                for attempt in 1..=KIOSK_ATTEMPTS {
                    let response = client
                        .post(&url)
                        .bearer_auth(&jwt)
                        .header("Idempotency-Key", format!("create-{i}"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    status = response.status().as_u16();
                    let wait = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .map_or(Duration::from_millis(100), Duration::from_secs);
                    if status < 500 {
                        return (status, attempt);
                    }
                    tokio::time::sleep(wait.min(Duration::from_secs(2))).await;
                }
                (status, KIOSK_ATTEMPTS)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let mut finals: BTreeMap<u16, usize> = BTreeMap::new();
    for (status, _) in &outcomes {
        *finals.entry(*status).or_default() += 1;
    }
    let kiosk_requests: usize = outcomes.iter().map(|(_, attempts)| attempts).sum();
    let mut per_email: HashMap<String, usize> = HashMap::new();
    for customer in double.customers() {
        *per_email
            .entry(customer["email"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let duplicated = per_email.values().filter(|n| **n > 1).count();
    let creates_sent = double.count(Op::Create);

    println!(
        "{customers} customers, {CONCURRENCY} kiosks at a time, up to {KIOSK_ATTEMPTS} attempts each with one Idempotency-Key, in {elapsed:.1?}"
    );
    println!(
        "faults queued on the vendor's create, in random order (the first {creates_sent} were drawn):"
    );
    for (name, n) in &injected {
        println!("  {name:<32} {n}");
    }
    println!("kiosk requests sent:                 {kiosk_requests}");
    println!("kiosk final statuses:                {finals:?}");
    println!("creates that reached the vendor:     {creates_sent}");
    println!("customers at the vendor:             {}", per_email.len());
    println!("e-mails held by more than one:       {duplicated}");
    assert!(
        creates_sent <= kiosk_requests,
        "the gateway sent a create twice"
    );
    assert_eq!(duplicated, 0, "a customer was created twice");
}
