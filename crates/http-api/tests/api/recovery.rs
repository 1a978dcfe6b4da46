//! A gateway killed (SIGKILL) while vendor creates are in flight loses nothing: every customer
//! the vendor created is in the mirror soon after `serve` starts again, found by the recovery
//! of journaled creates. The real binary, a Treez double, SQLite and PostgreSQL.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::helpers::{Db, SECRET, fresh_database};
use domain::{CustomerMirror, CustomerQuery, StoreId};
use http_api::config::Secret;
use persistence::Database;
use serde_json::{Value, json};
use testkit::gateway::Serving;
use testkit::pg::TestDatabase;
use vendor_doubles::VendorDouble as _;
use vendor_doubles::treez::TreezDouble;
use vendor_doubles::{Fault, Op};

const BIN: &str = env!("CARGO_BIN_EXE_pos-gateway");
const CREDENTIALS_KEY: &str = "5e1f0a7d3c2b4e6f8a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7";
const CATALOG: &str = "kiosk-crash";
const CUSTOMERS: usize = 30;
/// Creates the double answers at once, before the others hang.
const ANSWERED: u32 = 5;
/// How long the double sits on a create it has already done: far past the gateway's 1 s POS
/// timeout, so only the in-request reconcile (1 s later still) could find these customers.
const HANG_AFTER_COMMIT: Duration = Duration::from_secs(4);
const RECOVERY_DEADLINE: Duration = Duration::from_secs(20);

/// The `pos-gateway` binary over one database, as an operator runs it.
struct Gateway {
    dir: tempfile::TempDir,
    database_url: String,
    binary: testkit::gateway::Gateway,
    /// Dropped last: the PostgreSQL database goes once the test is done with it.
    _postgres: Option<TestDatabase>,
}

impl Gateway {
    async fn new(db: Db) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, postgres) = fresh_database(db, &dir).await;
        let binary = testkit::gateway::Gateway::new(BIN)
            .current_dir(dir.path())
            .env("POS_GATEWAY_DATABASE_URL", &database_url)
            .env("POS_GATEWAY_CREDENTIALS_KEY", CREDENTIALS_KEY)
            .env("POS_GATEWAY_JWT_SECRET", SECRET)
            .env("POS_GATEWAY_POS_TIMEOUT", "1s")
            .env("RUST_LOG", "info")
            .log(dir.path().join("serve.log"))
            .startup_timeout(Duration::from_secs(30));
        Self {
            dir,
            database_url,
            binary,
            _postgres: postgres,
        }
    }

    /// Runs an admin command; its JSON answer.
    fn admin(&self, args: &[&str]) -> Value {
        self.binary
            .admin(args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// A Treez store reaching `double`, with catalog `CATALOG`.
    fn add_store(&self, double: &TreezDouble) -> StoreId {
        let config = self.dir.path().join("treez.json");
        std::fs::write(&config, double.unthrottled_store_config().to_string()).unwrap();
        let store = self.admin(&[
            "store",
            "add",
            "--name",
            "Crash St",
            "--vendor",
            "treez",
            "--config",
            config.to_str().unwrap(),
        ]);
        let id = store["id"].as_i64().unwrap();
        self.admin(&[
            "catalog",
            "add",
            "--store",
            &id.to_string(),
            "--id",
            CATALOG,
        ]);
        StoreId(id)
    }

    /// `serve` on a free port, once `/healthz` answers; its log goes on after the previous
    /// run's.
    async fn serve(&self) -> Serving {
        let binary = self.binary.clone();
        tokio::task::spawn_blocking(move || binary.serve())
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("serve never answered: {e}"))
    }

    fn log_text(&self) -> String {
        self.binary.log_text()
    }

    /// The ids of the store's customers in the mirror, read from the database itself.
    async fn mirrored(&self, store: StoreId) -> BTreeSet<String> {
        let database = Database::connect(&self.database_url).await.unwrap();
        let query = CustomerQuery {
            limit: 100,
            ..Default::default()
        };
        let page = database.mirror().find(store, &query).await.unwrap();
        assert!(page.next.is_none());
        page.customers
            .into_iter()
            .map(|c| c.customer_id.as_str().to_owned())
            .collect()
    }
}

/// The ids of the customers the vendor holds.
fn at_vendor(double: &TreezDouble) -> BTreeSet<String> {
    double
        .customers()
        .iter()
        .map(|c| c["customer_id"].as_str().unwrap().to_owned())
        .collect()
}

fn customer(i: usize) -> Value {
    json!({
        "first_name": "Crash",
        "last_name": format!("Tester{i}"),
        "birthday": "1980-01-01",
        "email": format!("crash.{i}@example.com"),
        "phone": format!("555-010-{i:04}"),
    })
}

async fn a_gateway_killed_mid_create_recovers_every_vendor_customer(db: Db) {
    let double = TreezDouble::start().unwrap();
    // The first creates answer at once; the rest are done at the vendor, then their answer
    // hangs: the gateway is killed while it waits.
    double.fail(Op::Create, Fault::Pass, ANSWERED);
    double.fail(
        Op::Create,
        Fault::AfterCommit(Box::new(Fault::Delay(HANG_AFTER_COMMIT))),
        1000,
    );
    let gateway = Gateway::new(db).await;
    let store = gateway.add_store(&double);
    let serving = gateway.serve().await;

    let token = http_api::auth::issue_token(
        &Secret::new(SECRET),
        "pos-gateway",
        vec![CATALOG.to_owned()],
        Duration::from_secs(600),
    )
    .unwrap()
    .0;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let creates: Vec<_> = (0..CUSTOMERS)
        .map(|i| {
            let request = client
                .post(format!("{}/api/v1/{CATALOG}/customers", serving.url()))
                .bearer_auth(&token)
                .json(&json!({ "customer": customer(i) }));
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();

    // Kill -9 once most creates are done at the vendor, well before any hung one times out.
    let deadline = Instant::now() + Duration::from_secs(10);
    while double.count(Op::Create) < CUSTOMERS * 2 / 3 {
        assert!(
            Instant::now() < deadline,
            "only {} creates reached the vendor: {}",
            double.count(Op::Create),
            gateway.log_text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    serving.kill9(); // no shutdown, no last writes
    let killed = Instant::now();
    let mut answered = 0;
    for create in creates {
        if matches!(create.await.unwrap(), Ok(201)) {
            answered += 1;
        }
    }
    // A create the gateway sent just before it died may still be on its way into the double.
    let mut reached = double.count(Op::Create);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = double.count(Op::Create);
        if now == reached {
            break;
        }
        reached = now;
    }

    let vendor = at_vendor(&double);
    let before = gateway.mirrored(store).await;
    let lost: BTreeSet<_> = vendor.difference(&before).cloned().collect();
    eprintln!(
        "{db:?}: {} creates reached the vendor, {} customers there, {answered} answered 201, \
         {} in the mirror, {} lost from it by the kill",
        double.count(Op::Create),
        vendor.len(),
        before.len(),
        lost.len()
    );
    assert!(
        !lost.is_empty(),
        "the kill came too late to lose anything: the test proves nothing"
    );
    assert!(before.is_subset(&vendor));

    // Nothing else will hang; the vendor answers searches as usual.
    double.heal();
    let creates_before_restart = double.count(Op::Create);
    let restarted = Instant::now();
    let mut serving = gateway.serve().await;
    let healthy_after = restarted.elapsed();
    let recovered_after = loop {
        let mirrored = gateway.mirrored(store).await;
        if vendor.is_subset(&mirrored) {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < RECOVERY_DEADLINE,
            "{} of the vendor's customers still missing from the mirror {:?} after the restart: {}",
            vendor.difference(&mirrored).count(),
            RECOVERY_DEADLINE,
            gateway.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "{db:?}: /healthz answered {healthy_after:?} after the restart; every customer in the \
         mirror {recovered_after:?} after it ({:?} after the kill)",
        killed.elapsed()
    );
    assert!(
        healthy_after < Duration::from_secs(5),
        "start-up waited for recovery"
    );
    assert_eq!(
        double.count(Op::Create),
        creates_before_restart,
        "recovery only looks: it never creates"
    );
    assert_eq!(at_vendor(&double), vendor, "no duplicate at the vendor");
    let log = gateway.log_text();
    assert!(
        log.contains("recovery: found at the vendor and written to the mirror"),
        "{log}"
    );
    if let Some(pass) = log.lines().find(|l| l.contains("recovery pass over")) {
        eprintln!("{db:?}: {pass}");
    }
    for secret in [
        "crash.",
        "555-010",
        "5550100",
        double.credentials().api_key.as_str(),
    ] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }

    // A clean stop ends the recovery task too.
    let status = serving
        .terminate(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("serve did not stop on SIGTERM: {e}"));
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    assert!(
        gateway
            .log_text()
            .contains("recovery of journaled vendor creates stopped")
    );
}

on_both_databases!(a_gateway_killed_mid_create_recovers_every_vendor_customer);
