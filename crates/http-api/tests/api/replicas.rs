//! Two gateways on one PostgreSQL database, as two replicas behind a load balancer (issue
//! 14): the vendor sees one store's budget and one token, whichever replica a kiosk reaches.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use domain::Vendor;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use vendor_doubles::treez::TreezDouble;
use vendor_doubles::{Op, VendorDouble as _};

use crate::helpers::{Db, TestApp, spawn_app};

/// `n` look-ups of the store's customers by phone, spread over `apps`, all at once: the
/// statuses.
async fn lookups(apps: &[&TestApp], catalog: &str, n: usize) -> Vec<StatusCode> {
    let requests = (0..n).map(|i| {
        let app = apps[i % apps.len()];
        let token = app.token(&[catalog]);
        async move {
            app.request(
                reqwest::Method::GET,
                &format!(
                    "/api/v1/{catalog}/customers?phone=555-010-{:04}",
                    i % 10_000
                ),
                &token,
            )
            .send()
            .await
            .unwrap()
            .status()
        }
    });
    join_all(requests).await
}

fn config_with(double: &TreezDouble, extra: Value) -> Value {
    let mut config = double.store_config();
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_keep_one_stores_vendor_calls_within_its_limit_and_burst() {
    let double = TreezDouble::start().unwrap();
    let first = spawn_app(Db::Postgres).await;
    let second = first.replica().await;
    // 120 a minute (one each 500 ms), so 12 at once.
    let interval = Duration::from_millis(500);
    let burst = 12;
    first
        .add_vendor_store(
            "limited",
            Vendor::Treez,
            config_with(
                &double,
                json!({"rate_limit_per_minute": 120, "timeout": "2s"}),
            ),
        )
        .await;

    let started = Instant::now();
    let statuses = lookups(&[&first, &second], "limited", 60).await;
    let elapsed = started.elapsed();
    assert!(
        statuses
            .iter()
            .all(|s| s.is_success() || s.is_server_error()),
        "{statuses:?}"
    );

    let calls: Vec<Instant> = double.calls().iter().map(|c| c.at).collect();
    assert!(
        calls.len() > burst,
        "the budget was used: {} calls",
        calls.len()
    );
    // GCRA: `burst` at once, then one per interval, whichever replica sends; one more for
    // the clocks' jitter. Apart, each replica's own limiter would have let 24 go at once.
    let bound = |window: Duration| {
        burst + usize::try_from(window.as_millis() / interval.as_millis()).unwrap() + 1
    };
    assert!(
        calls.len() <= bound(elapsed),
        "{} vendor calls in {elapsed:?}",
        calls.len()
    );
    let second_window = Duration::from_secs(1);
    for (i, start) in calls.iter().enumerate() {
        let in_window = calls[i..]
            .iter()
            .take_while(|t| **t < *start + second_window)
            .count();
        assert!(
            in_window <= bound(second_window),
            "{in_window} vendor calls within a second"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_fetch_one_treez_token_and_one_more_after_a_revocation() {
    let double = TreezDouble::start().unwrap();
    let first = spawn_app(Db::Postgres).await;
    let second = first.replica().await;
    first
        .add_vendor_store("tokens", Vendor::Treez, double.unthrottled_store_config())
        .await;

    let statuses = lookups(&[&first, &second], "tokens", 20).await;
    assert!(statuses.iter().all(StatusCode::is_success), "{statuses:?}");
    assert_eq!(
        double.count(Op::Token),
        1,
        "one token for the store across both replicas"
    );

    // Treez revokes it: the replica that meets the 401 fetches a new one for both.
    double.revoke_tokens();
    for app in [&first, &second, &first] {
        let statuses = lookups(&[app], "tokens", 3).await;
        assert!(statuses.iter().all(StatusCode::is_success), "{statuses:?}");
    }
    assert_eq!(
        double.count(Op::Token),
        2,
        "one new token after the revocation, for both replicas"
    );
}
