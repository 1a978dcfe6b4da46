//! What `pos-gateway sync` leaves in the mirror, seen by a kiosk: the real binary syncs a
//! vendor store (its double) into the database of a running server, for every vendor of the
//! build, on SQLite and on PostgreSQL. A vendor's control characters are stored cleaned, and
//! customers deleted at the POS stop being served by the mirror.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use domain::{CustomerMirror as _, CustomerQuery, OptionalField, StoreId};
use pos_adapters::VendorSpec;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use testkit::gateway::Gateway;
use vendor_doubles::{Fault, Op, SeedCustomer, VendorDouble};

use crate::helpers::{Db, TestApp, body, spawn_app};

const BIN: &str = env!("CARGO_BIN_EXE_pos-gateway");

on_both_databases!(
    sync_stores_a_vendors_control_characters_cleaned,
    sync_marks_customers_deleted_at_the_pos_and_the_mirror_stops_serving_them,
);

/// A running server over a fresh database with a store on `spec`'s vendor (catalog `kiosk`),
/// its double, and the binary pointed at the same database.
struct Synced {
    spec: &'static VendorSpec,
    app: TestApp,
    store: StoreId,
    double: Box<dyn VendorDouble>,
    gateway: Gateway,
}

impl Synced {
    async fn start(db: Db, spec: &'static VendorSpec) -> Self {
        let double = vendor_doubles::start(spec.vendor.as_str())
            .expect("every vendor has a double")
            .unwrap();
        let app = spawn_app(db).await;
        // The gateway's own limiter off: the test measures the sync, not a vendor's budget.
        let store = app
            .add_vendor_store("kiosk", spec.vendor, double.unthrottled_store_config())
            .await;
        let gateway = Gateway::new(BIN)
            .env("POS_GATEWAY_DATABASE_URL", &app.config.database_url)
            // The key `spawn_app` seals store configs with: 32 bytes of 7.
            .env("POS_GATEWAY_CREDENTIALS_KEY", "07".repeat(32))
            .env("RUST_LOG", "warn");
        Self {
            spec,
            app,
            store,
            double,
            gateway,
        }
    }

    fn vendor(&self) -> &'static str {
        self.spec.vendor.as_str()
    }

    /// `pos-gateway sync --catalog kiosk --json`; its report.
    async fn sync(&self) -> Value {
        let gateway = self.gateway.clone();
        let vendor = self.vendor();
        tokio::task::spawn_blocking(move || {
            gateway
                .admin(&["sync", "--catalog", "kiosk"])
                .unwrap_or_else(|e| panic!("{vendor}: {e}"))
        })
        .await
        .unwrap()
    }

    /// A kiosk's GET: status, body, `X-Data-Source`.
    async fn get(&self, path: &str) -> (StatusCode, Value, Option<String>) {
        let token = self.app.token(&["kiosk"]);
        let response = self
            .app
            .request(Method::GET, &format!("/api/v1/kiosk{path}"), &token)
            .send()
            .await
            .unwrap();
        let source = response
            .headers()
            .get("x-data-source")
            .map(|v| v.to_str().unwrap().to_owned());
        let (status, body) = body(response).await;
        (status, body, source)
    }
}

async fn on_every_vendor<F, Fut>(db: Db, test: F)
where
    F: Fn(Synced) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    assert!(!pos_adapters::VENDORS.is_empty());
    let runs = pos_adapters::VENDORS
        .iter()
        .map(|spec| async { test(Synced::start(db, spec).await).await });
    futures::future::join_all(runs).await;
}

/// A vendor's customer whose first name and notes carry a NUL and a BEL (such a name lost the
/// customer), and another with a NUL in the notes only (PostgreSQL's text cannot hold NUL:
/// the page's upsert failed, and sync was stuck on that page for ever): the sync completes,
/// and the mirror holds both, with the cleaned text.
async fn sync_stores_a_vendors_control_characters_cleaned(db: Db) {
    on_every_vendor(db, |s| async move {
        let vendor = s.vendor();
        s.double.seed_customer(&SeedCustomer::numbered(1));
        let dirty = s.double.seed_customer(&SeedCustomer {
            first_name: "An\u{0}n\u{7}a".into(),
            last_name: "Lee".into(),
            email: Some("anna.lee@example.com".into()),
            notes: Some("likes\u{0} edibles\u{7}".into()),
            ..SeedCustomer::default()
        });
        // A usable name and a NUL in the notes only: the case that failed the whole page.
        let noted = s.double.seed_customer(&SeedCustomer {
            notes: Some("allergic\u{0} to\u{7} nuts".into()),
            ..SeedCustomer::named("Bob", "Noted")
        });
        s.double.seed_customer(&SeedCustomer::numbered(2));
        let report = s.sync().await;
        assert_eq!(report["copied"], 4, "{vendor}: {report}");

        let page = s
            .app
            .database
            .mirror()
            .find(
                s.store,
                &CustomerQuery {
                    name: Some("anna".into()),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.customers.len(), 1, "{vendor}: {page:?}");
        let anna = &page.customers[0];
        assert_eq!(anna.customer_id.as_str(), dirty, "{vendor}");
        assert_eq!(anna.first_name.as_str(), "Anna", "{vendor}");
        let bob = s
            .app
            .database
            .mirror()
            .get(s.store, &domain::CustomerId::parse(&noted).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{vendor}: Bob is in the mirror"));
        if s.spec.capabilities.reads_back(OptionalField::Notes) {
            assert_eq!(anna.notes.as_deref(), Some("likes edibles"), "{vendor}");
            assert_eq!(bob.notes.as_deref(), Some("allergic to nuts"), "{vendor}");
        }
    })
    .await;
}

/// Three customers synced; one deleted at the POS; a second sync marks it deleted in the
/// mirror. With the vendor down, the mirror serves the other two and not that one, by id or
/// by its e-mail. Seen again at the POS (the same id back), it would be served again: that is
/// the persistence suite's `mirror_revives_a_tombstoned_customer_on_any_upsert`.
async fn sync_marks_customers_deleted_at_the_pos_and_the_mirror_stops_serving_them(db: Db) {
    on_every_vendor(db, |s| async move {
        let vendor = s.vendor();
        let ids: Vec<String> = (1..=3)
            .map(|n| s.double.seed_customer(&SeedCustomer::numbered(n)))
            .collect();
        let report = s.sync().await;
        assert_eq!(
            (&report["copied"], &report["removed"]),
            (&Value::from(3), &Value::from(0)),
            "{vendor}: {report}"
        );
        assert!(s.double.delete_customer(&ids[1]), "{vendor}");
        let report = s.sync().await;
        assert_eq!(
            (&report["copied"], &report["removed"]),
            (&Value::from(2), &Value::from(1)),
            "{vendor}: {report}"
        );
        // A sync with nothing gone removes nothing more.
        assert_eq!(s.sync().await["removed"], 0, "{vendor}");

        // The vendor down: every answer comes from the mirror.
        s.double.double().fail(Op::Any, Fault::Status(503), 10_000);
        for alive in [&ids[0], &ids[2]] {
            let (status, body, source) = s.get(&format!("/customers/{alive}")).await;
            assert_eq!(status, StatusCode::OK, "{vendor}: {body}");
            assert_eq!(body["customer"]["customer_id"], alive.as_str(), "{vendor}");
            assert_eq!(source.as_deref(), Some("mirror"), "{vendor}");
        }
        // The POS can't be asked (or, Dutchie's, has no reads by id) and the mirror knows it
        // was deleted: not found, as it is.
        let (status, body, _) = s.get(&format!("/customers/{}", ids[1])).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{vendor}: {body}");
        assert_eq!(body["error"], "customer not found", "{vendor}");
        let (status, body, source) = s.get("/customers?email=customer2@example.com").await;
        assert_eq!(status, StatusCode::OK, "{vendor}: {body}");
        assert_eq!(body["customers"], Value::Array(vec![]), "{vendor}: {body}");
        assert_eq!(source.as_deref(), Some("mirror"), "{vendor}");
        let (_, body, _) = s.get("/customers?email=customer3@example.com").await;
        assert_eq!(
            body["customers"][0]["customer_id"],
            ids[2].as_str(),
            "{vendor}"
        );
        let (_, body, _) = s.get("/customers?limit=100").await;
        let listed: Vec<&str> = body["customers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["customer_id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, [ids[0].as_str(), ids[2].as_str()], "{vendor}");
    })
    .await;
}
