//! One kiosk's session through the real HTTP API, run for every vendor this build has
//! (`pos_adapters::VENDORS`) against its test double, on SQLite and on PostgreSQL. What the
//! session expects of each step follows the vendor's capabilities (a search the vendor can't
//! do is answered by the mirror, a field it requires is refused before any call), so a new
//! vendor gets it without a line here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use domain::{OptionalField, SearchFilter, Vendor};
use pos_adapters::VendorSpec;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vendor_doubles::{Fault, Op, VendorDouble};

use crate::helpers::{Db, TestApp, body, spawn_app};

on_both_databases!(a_kiosk_session_on_every_vendor);

async fn a_kiosk_session_on_every_vendor(db: Db) {
    assert!(
        !pos_adapters::VENDORS.is_empty(),
        "this build has no vendor to run a session on"
    );
    let sessions = pos_adapters::VENDORS
        .iter()
        .map(|spec| async move { Session::start(db, spec).await.run().await });
    futures::future::join_all(sessions).await;
}

struct Session {
    spec: &'static VendorSpec,
    app: TestApp,
    double: Box<dyn VendorDouble>,
    /// Every answer's body, for the "no credential" check at the end.
    shown: String,
}

/// An answer: status, body, `X-Data-Source`, `Retry-After`.
struct Answer {
    status: StatusCode,
    body: Value,
    source: Option<String>,
    retry_after: Option<String>,
}

impl Session {
    async fn start(db: Db, spec: &'static VendorSpec) -> Self {
        let double = vendor_doubles::start(spec.vendor.as_str())
            .expect("every vendor has a double")
            .unwrap();
        let app = spawn_app(db).await;
        app.add_vendor_store("kiosk", spec.vendor, double.store_config())
            .await;
        Self {
            spec,
            app,
            double,
            shown: String::new(),
        }
    }

    fn vendor(&self) -> Vendor {
        self.spec.vendor
    }

    async fn send(&mut self, method: Method, path: &str, json: Option<Value>) -> Answer {
        let token = self.app.token(&["kiosk"]);
        let mut request = self
            .app
            .request(method, &format!("/api/v1/kiosk{path}"), &token);
        if let Some(json) = json {
            request = request.json(&json);
        }
        let response = request.send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (source, retry_after) = (header("x-data-source"), header("retry-after"));
        let (status, body) = body(response).await;
        self.shown.push_str(&body.to_string());
        Answer {
            status,
            body,
            source,
            retry_after,
        }
    }

    async fn create(&mut self, customer: Value) -> Answer {
        self.send(
            Method::POST,
            "/customers",
            Some(json!({ "customer": customer })),
        )
        .await
    }

    async fn run(mut self) {
        let vendor = self.vendor();
        let caps = self.spec.capabilities;

        // The capabilities tell the truth.
        let pos = self.send(Method::GET, "/pos", None).await;
        assert_eq!(pos.status, StatusCode::OK, "{vendor}");
        let names =
            |fields: &[OptionalField]| fields.iter().map(|f| f.as_str()).collect::<Vec<_>>();
        assert_eq!(
            pos.body,
            json!({
                "vendor": vendor.as_str(),
                "capabilities": {
                    "list_customers": caps.list_customers,
                    "search_customers": caps.search_customers,
                    "get_customer": caps.get_customer,
                    "create_customer": caps.create_customer,
                    "update_customer": caps.update_customer,
                },
                "required_fields": names(caps.required_fields),
                "search_by": caps.search_by.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
                "unreadable_fields": names(caps.unreadable_fields),
            }),
            "{vendor}"
        );

        let ann = json!({"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com",
                         "phone": "(555) 123-4567", "birthday": "03/07/1989", "gender": "F",
                         "drivers_license": "D1234567", "notes": "likes edibles"});

        // A field the POS requires is refused on the field, before any vendor call.
        if !caps.required_fields.is_empty() {
            let mut without = ann.clone();
            for field in caps.required_fields {
                without[field.as_str()] = Value::Null;
            }
            let refused = self.create(without).await;
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{vendor}");
            for field in caps.required_fields {
                assert_eq!(
                    refused.body["errors"][field.as_str()],
                    json!(["can't be blank"]),
                    "{vendor}"
                );
            }
            assert_eq!(self.double.double().count(Op::Any), 0, "{vendor}");
        }

        // Created at the vendor; the answer says what the kiosk sent, in the contract's forms.
        let created = self.create(ann.clone()).await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{vendor}: {}",
            created.body
        );
        let customer = &created.body["customer"];
        assert_eq!(customer["first_name"], "Ann", "{vendor}");
        assert_eq!(customer["phone"], "555-123-4567", "{vendor}");
        assert_eq!(customer["birthday"], "1989-03-07", "{vendor}");
        assert_eq!(customer["gender"], "Female", "{vendor}");
        assert_eq!(customer["drivers_license"], "D1234567", "{vendor}");
        assert_eq!(customer["notes"], "likes edibles", "{vendor}");
        assert_eq!(customer["status"], "ACTIVE", "{vendor}");
        let id = customer["customer_id"].as_str().unwrap().to_owned();
        assert_eq!(self.double.customers().len(), 1, "{vendor}");
        let creates = self.double.double().count(Op::Create);

        // Found by every filter: live where the vendor searches by it, else from the mirror.
        for (filter, query) in [
            (SearchFilter::Email, "email=ANN@example.com"),
            (SearchFilter::Phone, "phone=555.123.4567"),
            (SearchFilter::DriversLicense, "drivers_license=d1234567"),
            (SearchFilter::Name, "name=ann%20lee"),
        ] {
            let found = self
                .send(Method::GET, &format!("/customers?{query}"), None)
                .await;
            assert_eq!(found.status, StatusCode::OK, "{vendor} {query}");
            let want = if caps.searches_by(filter) {
                "pos"
            } else {
                "mirror"
            };
            assert_eq!(found.source.as_deref(), Some(want), "{vendor} {query}");
            assert_eq!(
                found.body["customers"][0]["customer_id"],
                id.as_str(),
                "{vendor} {query}"
            );
        }

        // Read by id: live where the vendor can, else from the mirror.
        let got = self
            .send(Method::GET, &format!("/customers/{id}"), None)
            .await;
        assert_eq!(got.status, StatusCode::OK, "{vendor}");
        let want = if caps.get_customer { "pos" } else { "mirror" };
        assert_eq!(got.source.as_deref(), Some(want), "{vendor}");
        assert_eq!(got.body["customer"]["email"], "ann@example.com", "{vendor}");

        // A PATCH changes what it names and nothing else, at the vendor too.
        let updated = self
            .send(
                Method::PATCH,
                &format!("/customers/{id}"),
                Some(json!({"customer": {"notes": "prefers tinctures", "email": null}})),
            )
            .await;
        assert_eq!(updated.status, StatusCode::OK, "{vendor}: {}", updated.body);
        let after = &updated.body["customer"];
        assert_eq!(after["email"], Value::Null, "{vendor}");
        assert_eq!(after["notes"], "prefers tinctures", "{vendor}");
        for (field, value) in [
            ("first_name", "Ann"),
            ("last_name", "Lee"),
            ("phone", "555-123-4567"),
            ("birthday", "1989-03-07"),
        ] {
            assert_eq!(after[field], value, "{vendor}: {field} was lost");
        }
        if caps.get_customer {
            let again = self
                .send(Method::GET, &format!("/customers/{id}"), None)
                .await;
            assert_eq!(again.source.as_deref(), Some("pos"), "{vendor}");
            assert_eq!(
                again.body["customer"]["notes"], "prefers tinctures",
                "{vendor}"
            );
            assert_eq!(again.body["customer"]["phone"], "555-123-4567", "{vendor}");
            assert_eq!(again.body["customer"]["birthday"], "1989-03-07", "{vendor}");
            if caps.reads_back(OptionalField::Gender) {
                assert_eq!(again.body["customer"]["gender"], "Female", "{vendor}");
            }
        }

        // A field the POS requires can't be cleared.
        if let Some(field) = caps.required_fields.first() {
            let refused = self
                .send(
                    Method::PATCH,
                    &format!("/customers/{id}"),
                    Some(json!({"customer": { field.as_str(): null }})),
                )
                .await;
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{vendor}");
        }

        // A duplicate is refused with the existing customer, and no second create.
        let again = self.create(ann.clone()).await;
        assert_eq!(
            again.status,
            StatusCode::CONFLICT,
            "{vendor}: {}",
            again.body
        );
        assert_eq!(
            again.body["customer"]["customer_id"],
            id.as_str(),
            "{vendor}"
        );
        assert_eq!(self.double.double().count(Op::Create), creates, "{vendor}");

        // The vendor down: a search it could answer comes from the mirror (not by e-mail: the
        // PATCH above cleared it).
        let live = caps.search_by.iter().find(|f| **f != SearchFilter::Email);
        if let Some(filter) = live {
            let query = match filter {
                SearchFilter::Email => "email=ann@example.com",
                SearchFilter::Phone => "phone=5551234567",
                SearchFilter::DriversLicense => "drivers_license=D1234567",
                SearchFilter::Name => "name=ann",
            };
            // One search and its two retries: below the circuit breaker's threshold.
            self.double.double().fail(Op::Search, Fault::Status(503), 3);
            let found = self
                .send(Method::GET, &format!("/customers?{query}"), None)
                .await;
            assert_eq!(found.status, StatusCode::OK, "{vendor}");
            assert_eq!(found.source.as_deref(), Some("mirror"), "{vendor}");
            assert_eq!(
                found.body["customers"][0]["customer_id"],
                id.as_str(),
                "{vendor}"
            );
            self.double.double().heal();
        }

        // The vendor's own refusal: on our field when it names one, else the vendor's answer.
        self.double.double().fail(Op::Create, Fault::Invalid, 1);
        let refused = self
            .create(json!({"first_name": "Bob", "last_name": "Ray", "birthday": "1980-01-01"}))
            .await;
        match refused.status {
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert!(refused.body["errors"].is_object(), "{vendor}")
            }
            StatusCode::BAD_GATEWAY => {
                assert_eq!(refused.body["error"], "pos_error", "{vendor}");
                assert_eq!(refused.body["pos"]["vendor"], vendor.as_str(), "{vendor}");
            }
            other => panic!(
                "{vendor}: a vendor refusal answered {other}: {}",
                refused.body
            ),
        }
        assert_eq!(self.double.customers().len(), 1, "{vendor}");

        // Rate limited: 503 with the vendor's Retry-After, and the create sent once.
        let creates = self.double.double().count(Op::Create);
        self.double.double().fail(
            Op::Create,
            Fault::RateLimited {
                retry_after: "7".into(),
            },
            1,
        );
        let limited = self
            .create(json!({"first_name": "Cy", "last_name": "Doe", "birthday": "1980-01-01"}))
            .await;
        assert_eq!(limited.status, StatusCode::SERVICE_UNAVAILABLE, "{vendor}");
        assert_eq!(limited.retry_after.as_deref(), Some("7"), "{vendor}");
        assert_eq!(
            self.double.double().count(Op::Create),
            creates + 1,
            "{vendor}"
        );

        // A create whose answer is lost (and that nothing can find again): 503 with the
        // vendor's answer, never sent twice.
        self.double.double().fail(
            Op::Create,
            Fault::AfterCommit(Box::new(Fault::Status(500))),
            1,
        );
        let lost = self
            .create(json!({"first_name": "Di", "last_name": "Ray", "birthday": "1980-01-01"}))
            .await;
        assert_eq!(
            lost.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{vendor}: {}",
            lost.body
        );
        assert_eq!(lost.body["error"], "pos_error", "{vendor}");
        assert_eq!(lost.body["pos"]["vendor"], vendor.as_str(), "{vendor}");
        assert_eq!(lost.body["pos"]["status"], 500, "{vendor}");
        assert_eq!(
            self.double.double().count(Op::Create),
            creates + 2,
            "{vendor}"
        );

        // No answer carried a credential.
        for secret in self.double.secrets() {
            assert!(
                !self.shown.contains(&secret),
                "{vendor}: a credential was shown"
            );
        }
    }
}
