//! Syncs under leases (one process at a time per store, a dead holder's lease runs out), where
//! each store's sync stands (`pos-gateway sync --status`, `/metrics`), and `serve`'s scheduled
//! sync (`POS_GATEWAY_SYNC_INTERVAL`): once per interval per store, however many replicas run
//! it. The real binary against a vendor double, on SQLite and on PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use domain::{StoreId, Vendor};
use reqwest::StatusCode;
use serde_json::Value;
use testkit::gateway::{Error as GatewayError, Gateway};
use vendor_doubles::{Op, SeedCustomer, VendorDouble};

use crate::helpers::{Db, SECRET, TestApp, spawn_app};

const BIN: &str = env!("CARGO_BIN_EXE_pos-gateway");

on_both_databases!(
    a_second_sync_of_a_store_being_synced_says_so_and_fails,
    sync_status_shows_each_vendor_stores_cursor_last_run_and_outcome,
    the_scheduled_sync_runs_each_store_once_per_interval_across_replicas,
    the_scheduled_sync_copies_what_changed_and_walks_everyone_each_full_period,
);

fn treez() -> Box<dyn VendorDouble> {
    vendor_doubles::start("treez")
        .expect("a Treez double")
        .unwrap()
}

/// The binary over `app`'s database.
fn gateway(app: &TestApp) -> Gateway {
    Gateway::new(BIN)
        .env("POS_GATEWAY_DATABASE_URL", &app.config.database_url)
        // The key `spawn_app` seals store configs with: 32 bytes of 7.
        .env("POS_GATEWAY_CREDENTIALS_KEY", "07".repeat(32))
        .env("POS_GATEWAY_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
}

/// `pos-gateway <args> --json`, off the runtime's threads.
async fn admin(gateway: &Gateway, args: &[&str]) -> Result<Value, GatewayError> {
    let (gateway, args) = (
        gateway.clone(),
        args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
    );
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        gateway.admin(&args)
    })
    .await
    .unwrap()
}

/// A failed command's stderr (a success is a test failure).
fn refusal(outcome: Result<Value, GatewayError>) -> String {
    match outcome {
        Err(GatewayError::Failed { stderr, .. }) => stderr,
        other => panic!("expected the command to fail, got {other:?}"),
    }
}

/// Waits until somebody holds `store`'s sync lease; its owner.
async fn holder(app: &TestApp, store: StoreId) -> String {
    let began = Instant::now();
    loop {
        let held = app.database.sync_leases().held().await.unwrap();
        if let Some(lease) = held.into_iter().find(|lease| lease.store == store) {
            return lease.owner;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "nobody took the lease"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// While one `sync` of a store runs (a slow vendor, three pages), a second says who holds the
/// store and fails; the first completes. A lease whose holder
/// died (never renewed) holds the store until it runs out, then the store syncs.
async fn a_second_sync_of_a_store_being_synced_says_so_and_fails(db: Db) {
    let app = spawn_app(db).await;
    let double = treez();
    for n in 1..=250 {
        double.seed_customer(&SeedCustomer::numbered(n));
    }
    let store = app
        .add_vendor_store("kiosk", Vendor::Treez, double.unthrottled_store_config())
        .await;
    double.double().set_latency(Duration::from_millis(400));
    let gateway = gateway(&app);

    let first = tokio::spawn({
        let gateway = gateway.clone();
        async move { admin(&gateway, &["sync", "--catalog", "kiosk"]).await }
    });
    let owner = holder(&app, store).await;
    let stderr = refusal(admin(&gateway, &["sync", "--catalog", "kiosk"]).await);
    let error: Value = serde_json::from_str(&stderr).unwrap();
    let message = error["error"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "store {store} (store of kiosk) is being synced by {owner} (its lease runs to "
        )) && message.ends_with("; run this again once it is done"),
        "{message}"
    );
    assert!(owner.contains(" pid "), "{owner}");
    let report = first.await.unwrap().unwrap();
    assert_eq!(report["copied"], 250, "{report}");
    assert!(
        app.database.sync_leases().held().await.unwrap().is_empty(),
        "the lease is given up at the end"
    );

    // A holder that died: its lease holds until it runs out, then anybody may sync.
    assert!(
        app.database
            .sync_leases()
            .acquire(store, "a replica that died", Duration::from_secs(2))
            .await
            .unwrap()
    );
    double.double().set_latency(Duration::ZERO);
    let stderr = refusal(admin(&gateway, &["sync", "--catalog", "kiosk"]).await);
    assert!(
        stderr.contains("is being synced by a replica that died"),
        "{stderr}"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = admin(&gateway, &["sync", "--catalog", "kiosk"])
        .await
        .unwrap();
    assert_eq!(report["copied"], 250, "{report}");
}

/// Three vendor stores (one synced, one whose vendor refuses its credentials, one never
/// synced) and a `local` one: `sync --status` shows the three vendor stores with their last
/// run, outcome, customers copied and cursor, as JSON and as text; `/metrics` has each synced
/// store's last run time and outcome.
async fn sync_status_shows_each_vendor_stores_cursor_last_run_and_outcome(db: Db) {
    let app = spawn_app(db).await;
    let double = treez();
    for n in 1..=3 {
        double.seed_customer(&SeedCustomer::numbered(n));
    }
    let synced = app
        .add_vendor_store("synced", Vendor::Treez, double.unthrottled_store_config())
        .await;
    let refused = app
        .add_vendor_store("refused", Vendor::Treez, double.wrong_credentials_config())
        .await;
    let never = app
        .add_vendor_store("never", Vendor::Treez, double.unthrottled_store_config())
        .await;
    app.add_store("local", Vendor::Local).await;
    let gateway = gateway(&app);
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    admin(&gateway, &["sync", "--catalog", "synced"])
        .await
        .unwrap();
    let stderr = refusal(admin(&gateway, &["sync", "--catalog", "refused"]).await);
    assert!(stderr.contains("credentials"), "{stderr}");

    let status = admin(&gateway, &["sync", "--status"]).await.unwrap();
    let stores = status["stores"].as_array().unwrap();
    let ids: Vec<i64> = stores
        .iter()
        .map(|s| s["store"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [synced.0, refused.0, never.0],
        "vendor stores only: {status}"
    );
    let ok = &stores[0];
    assert_eq!(
        (&ok["name"], &ok["vendor"], &ok["cursor"], &ok["running_by"]),
        (
            &Value::from("store of synced"),
            &Value::from("treez"),
            &Value::Null,
            &Value::Null
        ),
        "{ok}"
    );
    let run = &ok["last_run"];
    assert_eq!(
        (
            &run["outcome"],
            &run["copied"],
            &run["removed"],
            &run["error"]
        ),
        (
            &Value::from("ok"),
            &Value::from(3),
            &Value::from(0),
            &Value::Null
        ),
        "{run}"
    );
    let started: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(run["started_at"].clone()).unwrap();
    let finished: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(run["finished_at"].clone()).unwrap();
    assert!(before < started && started <= finished, "{run}");
    let failed = &stores[1]["last_run"];
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert_eq!(failed["copied"], 0, "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("the POS refused the store's credentials"),
        "{failed}"
    );
    assert_eq!(stores[2]["last_run"], Value::Null, "{status}");

    let output = gateway.command(["sync", "--status"]).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for line in [
        format!("store {synced} (store of synced, treez)"),
        "copied:    3 customers, 0 gone at the POS marked deleted".to_owned(),
        format!("store {refused} (store of refused, treez)"),
        "error:     sync of store".to_owned(),
        format!("store {never} (store of never, treez)\n  last run:  never"),
        "cursor:    none (the next run starts a new pass)".to_owned(),
    ] {
        assert!(text.contains(&line), "no {line:?} in:\n{text}");
    }
    assert!(
        text.contains(": ok\n") && text.contains(": failed\n"),
        "{text}"
    );
    assert!(!text.contains("store of local"), "{text}");

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        format!("pos_gateway_sync_last_run_ok{{store=\"{synced}\"}} 1"),
        format!("pos_gateway_sync_last_run_ok{{store=\"{refused}\"}} 0"),
        format!("pos_gateway_sync_last_run_copied{{store=\"{synced}\"}} 3"),
        format!(
            "pos_gateway_sync_last_run_started_seconds{{store=\"{synced}\"}} {}",
            started.timestamp()
        ),
        format!(
            "pos_gateway_sync_last_run_finished_seconds{{store=\"{synced}\"}} {}",
            finished.timestamp()
        ),
        format!("pos_gateway_sync_running{{store=\"{never}\"}} 0"),
    ] {
        assert!(metrics.contains(&series), "no {series} in:\n{metrics}");
    }
    assert!(
        !metrics.contains(&format!(
            "pos_gateway_sync_last_run_ok{{store=\"{never}\"}}"
        )),
        "a store never synced has no last run"
    );
}

/// `serve` with `POS_GATEWAY_SYNC_INTERVAL=1s`: two replicas on PostgreSQL (one process on
/// SQLite) with one vendor store. The double sees the store's list call (one page: one call
/// per pass) about once a second, never twice within one interval; without the leases and
/// the last-run record, each replica would sync it each time it looks.
async fn the_scheduled_sync_runs_each_store_once_per_interval_across_replicas(db: Db) {
    const INTERVAL: Duration = Duration::from_secs(1);
    const WATCH: Duration = Duration::from_secs(6);
    let app = spawn_app(db).await;
    let double = treez();
    for n in 1..=3 {
        double.seed_customer(&SeedCustomer::numbered(n));
    }
    let store = app
        .add_vendor_store("kiosk", Vendor::Treez, double.unthrottled_store_config())
        .await;
    app.add_store("local", Vendor::Local).await;
    let dir = tempfile::tempdir().unwrap();
    let replicas = match db {
        Db::Postgres => 2,
        Db::Sqlite => 1,
    };
    let gateways: Vec<Gateway> = (0..replicas)
        .map(|n| {
            gateway(&app)
                .env("POS_GATEWAY_SYNC_INTERVAL", "1s")
                .env("RUST_LOG", "info")
                .log(dir.path().join(format!("replica-{n}.log")))
        })
        .collect();
    let serving: Vec<_> = {
        let gateways = gateways.clone();
        tokio::task::spawn_blocking(move || {
            gateways
                .iter()
                .map(|g| g.serve().unwrap())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap()
    };

    // When the double saw each list call, to 20 ms.
    let began = Instant::now();
    let mut seen = 0;
    let mut passes: Vec<Duration> = Vec::new();
    while began.elapsed() < WATCH {
        let now = double.double().count(Op::List);
        for _ in seen..now {
            passes.push(began.elapsed());
        }
        seen = now;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs: Vec<String> = gateways.iter().map(Gateway::log_text).collect();
    assert!(
        passes.len() >= 3,
        "the scheduled sync ran {} times in {WATCH:?}: {passes:?}\n{logs:#?}",
        passes.len()
    );
    assert!(
        passes.len() <= 7,
        "more than once per interval: {passes:?}\n{logs:#?}"
    );
    for gap in passes.windows(2) {
        assert!(
            gap[1] - gap[0] >= INTERVAL * 3 / 4,
            "two passes within one interval: {passes:?}\n{logs:#?}"
        );
    }

    // Its last run is shown by the command and by each replica's /metrics.
    let status = admin(&gateways[0], &["sync", "--status"]).await.unwrap();
    let run = &status["stores"][0]["last_run"];
    assert_eq!(status["stores"][0]["store"], store.0, "{status}");
    assert!(
        ["ok", "running"].contains(&run["outcome"].as_str().unwrap()),
        "{status}"
    );
    assert_eq!(run["copied"], 3, "{status}");
    for replica in &serving {
        let response = app
            .client
            .get(format!("{}/metrics", replica.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let metrics = response.text().await.unwrap();
        let series = format!("pos_gateway_sync_last_run_ok{{store=\"{store}\"}} 1");
        assert!(metrics.contains(&series), "no {series} in:\n{metrics}");
    }
    drop(serving);
}

/// After a full `pos-gateway sync`, `serve`'s scheduled sync (`POS_GATEWAY_SYNC_INTERVAL=1s`,
/// `POS_GATEWAY_SYNC_FULL_EVERY=5s`) asks Treez only for what changed since the last complete
/// pass began (less five minutes, for clocks: not the 1970 of a full listing), so it copies the
/// customer created and the one edited at the register, and not the two untouched; it cannot
/// see the one deleted at the register. Its next full pass walks everyone and marks that one
/// deleted. `sync --status` and `/metrics` say where the store is synced through.
async fn the_scheduled_sync_copies_what_changed_and_walks_everyone_each_full_period(db: Db) {
    let app = spawn_app(db).await;
    let double = treez();
    let old: Vec<String> = (1..=4)
        .map(|n| double.seed_customer(&SeedCustomer::numbered(n)))
        .collect();
    let weeks_ago = chrono::Utc::now() - chrono::TimeDelta::days(60);
    for id in &old {
        assert!(double.set_last_changed(id, weeks_ago));
    }
    let store = app
        .add_vendor_store("kiosk", Vendor::Treez, double.unthrottled_store_config())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = gateway(&app)
        .env("POS_GATEWAY_SYNC_INTERVAL", "1s")
        .env("POS_GATEWAY_SYNC_FULL_EVERY", "5s")
        .log(dir.path().join("serve.log"));
    let report = admin(&gateway, &["sync", "--catalog", "kiosk"])
        .await
        .unwrap();
    assert_eq!(
        (&report["pass"], &report["copied"]),
        (&Value::from("full"), &Value::from(4))
    );
    let first = app.database.sync_runs().of(store).await.unwrap().unwrap();
    let through = first.synced_through.expect("a complete pass");
    assert_eq!(first.full_pass_at, Some(through));

    // At the register: a new customer, an old one edited, another deleted.
    double.seed_customer(&SeedCustomer::numbered(5));
    assert!(double.set_last_changed(&old[1], chrono::Utc::now()));
    assert!(double.delete_customer(&old[2]));
    let lists_before = double.double().calls().len();
    let serving = {
        let gateway = gateway.clone();
        tokio::task::spawn_blocking(move || gateway.serve().unwrap())
            .await
            .unwrap()
    };

    // Each run the store's row shows, once finished: its kind, copied and removed.
    let mut runs: Vec<(String, u64, u64)> = Vec::new();
    let mut last_finished = first.finished_at;
    let began = Instant::now();
    while !runs.iter().any(|(kind, _, _)| kind == "full") {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "no full pass in 20 s: {runs:?}\n{}",
            gateway.log_text()
        );
        let run = app.database.sync_runs().of(store).await.unwrap().unwrap();
        if !run.unfinished() && run.finished_at != last_finished {
            last_finished = run.finished_at;
            let result = run.result.unwrap();
            assert_eq!(result.outcome, persistence::SyncOutcome::Ok, "{result:?}");
            runs.push((
                run.kind.unwrap().as_str().to_owned(),
                result.copied,
                result.removed,
            ));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let (first_kind, copied, removed) = &runs[0];
    assert_eq!(
        (first_kind.as_str(), *copied, *removed),
        ("incremental", 2, 0),
        "the new and the edited customer: {runs:?}"
    );
    let full = runs.iter().find(|(kind, _, _)| kind == "full").unwrap();
    assert_eq!(
        (full.1, full.2),
        (4, 1),
        "everyone left, and the deleted one: {runs:?}"
    );

    // The incremental pass's list call: from the first pass's start, less five minutes.
    let since = (through - chrono::TimeDelta::minutes(5) - chrono::TimeDelta::milliseconds(1))
        .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string();
    let lists: Vec<String> = double.double().calls()[lists_before..]
        .iter()
        .filter(|call| call.op == Op::List)
        .map(|call| call.path.clone())
        .collect();
    assert!(
        lists.first().is_some_and(
            |path| path.contains(&format!("/customer/lastUpdated/after/{since}/page/1/"))
        ),
        "{lists:?}"
    );
    assert!(
        lists
            .iter()
            .any(|path| path.contains("/after/1970-01-01T00:00:00.000+00:00/")),
        "the full pass lists from 1970: {lists:?}"
    );

    let status = admin(&gateway, &["sync", "--status"]).await.unwrap();
    let shown = &status["stores"][0];
    let synced: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(shown["synced_through"].clone()).unwrap();
    assert!(synced > through, "{status}");
    assert!(shown["last_full_pass"].is_string(), "{status}");
    let metrics = app
        .client
        .get(format!("{}/metrics", serving.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("pos_gateway_sync_synced_through_seconds{{store=\"{store}\"}} ");
    assert!(metrics.contains(&series), "no {series} in:\n{metrics}");
    drop(serving);
}
