//! Tenant isolation: a token for one catalog can never read, list, update or bulk-create in
//! another, across every route. The routes are not listed here: the test walks the OpenAPI
//! document the running server publishes, so a route added later is covered without editing
//! this file (and the walk must at least cover the contract's operations, so it cannot pass
//! vacuously).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use crate::helpers::{Db, TestApp, body, spawn_app};
use domain::Vendor;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vendor_doubles::Op;
use vendor_doubles::treez::TreezDouble;

on_both_databases!(
    a_token_for_one_catalog_reaches_no_other_local_store,
    a_token_for_one_catalog_reaches_no_other_treez_store,
    catalog_ids_differing_in_case_or_trailing_junk_do_not_alias,
);

/// The operations of the contract's table that name a catalog: the walk must visit them all.
const CONTRACT_OPERATIONS: &[(&str, &str)] = &[
    ("POST", "/api/v1/{catalog_id}/customers"),
    ("GET", "/api/v1/{catalog_id}/customers"),
    ("GET", "/api/v1/{catalog_id}/customers/{customer_id}"),
    ("PATCH", "/api/v1/{catalog_id}/customers/{customer_id}"),
    ("PUT", "/api/v1/{catalog_id}/customers/{customer_id}"),
    ("POST", "/api/v1/{catalog_id}/customers/bulk"),
    ("GET", "/api/v1/{catalog_id}/pos"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn not_found() -> Value {
    json!({"error": "catalog not found"})
}

/// A customer every vendor accepts (Treez requires a birthday).
fn valid_customer(tag: &str) -> Value {
    json!({"first_name": "Mallory", "last_name": format!("Intruder{tag}"),
           "email": format!("mallory.{tag}@example.com"), "phone": "555-666-7777",
           "birthday": "1980-02-03", "gender": "other", "notes": "should never be written"})
}

/// Follows a local `$ref` (`#/components/schemas/X`) in `document`.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(
                document,
                document
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {reference}")),
            )
        }
        None => schema,
    }
}

/// A valid request body for an operation that takes one: read from its JSON schema (a list
/// property gets one valid customer, an object property a valid customer), falling back on
/// the path (`.../bulk` is a list).
fn body_for(document: &Value, operation: &Value, path: &str) -> Option<Value> {
    let request = operation.get("requestBody")?;
    let schema = request
        .pointer("/content/application~1json/schema")
        .map(|s| resolve(document, s));
    let mut out = serde_json::Map::new();
    if let Some(properties) = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    {
        for (name, property) in properties {
            let property = resolve(document, property);
            let value = match property.get("type").and_then(Value::as_str) {
                Some("array") => json!([valid_customer("1"), valid_customer("2")]),
                _ => valid_customer("0"),
            };
            out.insert(name.clone(), value);
        }
    }
    if out.is_empty() {
        out = if path.ends_with("/bulk") {
            json!({"customers": [valid_customer("1")]})
        } else {
            json!({"customer": valid_customer("0")})
        }
        .as_object()
        .cloned()
        .unwrap();
    }
    Some(Value::Object(out))
}

/// Calls every operation of the served OpenAPI document whose path names `{catalog_id}`, with
/// `token` and `catalog` in the path (and `customer` for `{customer_id}`), and asserts each
/// answers exactly 404 `catalog not found`. Returns the operations visited, as
/// `(METHOD, path template)`.
async fn walk(
    app: &TestApp,
    token: &str,
    catalog: &str,
    customer: &str,
) -> BTreeSet<(String, String)> {
    let document: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    let mut visited = BTreeSet::new();
    for (template, item) in paths {
        if !template.contains("{catalog_id}") {
            continue;
        }
        for method in METHODS {
            let Some(operation) = item.get(*method) else {
                continue;
            };
            let mut path = template
                .replace("{catalog_id}", catalog)
                .replace("{customer_id}", customer);
            // A path parameter added later: any value will do, the catalog is checked first.
            while let (Some(start), Some(end)) = (path.find('{'), path.find('}')) {
                assert!(start < end, "odd path template {template}");
                path.replace_range(start..=end, "1");
            }
            let method_upper = method.to_uppercase();
            let http_method = Method::from_bytes(method_upper.as_bytes()).unwrap();
            let mut request = app
                .request(http_method, &path, token)
                .header("Idempotency-Key", format!("isolation-{method}-{template}"));
            if let Some(payload) = body_for(&document, operation, template) {
                request = request.json(&payload);
            }
            if *method == "get" {
                // Filters must not widen anything either.
                if template.ends_with("/customers") {
                    request = request.query(&[("limit", "100")]);
                }
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            if *method == "head" {
                assert_eq!(status, StatusCode::NOT_FOUND, "{method_upper} {path}");
            } else {
                let (status, answer) = body(response).await;
                assert_eq!(
                    (status, &answer),
                    (StatusCode::NOT_FOUND, &not_found()),
                    "{method_upper} {path} with a token that does not grant it"
                );
            }
            visited.insert((method_upper, template.clone()));
        }
    }
    visited
}

fn assert_covers_the_contract(visited: &BTreeSet<(String, String)>) {
    for (method, path) in CONTRACT_OPERATIONS {
        assert!(
            visited.contains(&((*method).to_owned(), (*path).to_owned())),
            "the walk of /openapi.json missed {method} {path}: visited {visited:?}"
        );
    }
}

/// Every customer of `catalog`, as its own token sees them.
async fn listing(app: &TestApp, catalog: &str) -> Value {
    let token = app.token(&[catalog]);
    let (status, list) = app
        .get_json(&format!("/api/v1/{catalog}/customers?limit=100"), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list
}

async fn create_in(app: &TestApp, catalog: &str, customer: Value) -> String {
    let (status, created) = body(app.create(catalog, customer).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["customer"]["customer_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn person(first: &str, last: &str, email: &str, phone: &str) -> Value {
    json!({"first_name": first, "last_name": last, "email": email, "phone": phone,
           "birthday": "1970-01-01", "notes": "original"})
}

async fn a_token_for_one_catalog_reaches_no_other_local_store(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("kiosk-a", Vendor::Local).await;
    app.add_store("kiosk-b", Vendor::Local).await;
    create_in(
        &app,
        "kiosk-a",
        person("Alice", "Able", "alice@example.com", "555-100-0001"),
    )
    .await;
    let victim = create_in(
        &app,
        "kiosk-b",
        person("Bob", "Baker", "bob@example.com", "555-200-0002"),
    )
    .await;
    create_in(
        &app,
        "kiosk-b",
        person("Beth", "Baker", "beth@example.com", "555-200-0003"),
    )
    .await;
    let before = listing(&app, "kiosk-b").await;
    assert_eq!(before["customers"].as_array().unwrap().len(), 2);

    let token_a = app.token(&["kiosk-a"]);
    let visited = walk(&app, &token_a, "kiosk-b", &victim).await;
    assert_covers_the_contract(&visited);
    // A token for several catalogs, none of them B, is no better.
    let visited = walk(
        &app,
        &app.token(&["kiosk-a", "nowhere"]),
        "kiosk-b",
        &victim,
    )
    .await;
    assert_covers_the_contract(&visited);
    // A catalog that does not exist answers the same as one not granted.
    walk(&app, &token_a, "kiosk-zzz", &victim).await;

    assert_eq!(listing(&app, "kiosk-b").await, before, "B is unchanged");
    // And A gained nothing from the attempts either.
    let a = listing(&app, "kiosk-a").await;
    assert_eq!(a["customers"].as_array().unwrap().len(), 1, "{a}");
    let (status, _) = app
        .get_json(&format!("/api/v1/kiosk-a/customers/{victim}"), &token_a)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "B's customer id is not A's customer"
    );
}

async fn a_token_for_one_catalog_reaches_no_other_treez_store(db: Db) {
    let double = TreezDouble::start().unwrap();
    let app = spawn_app(db).await;
    app.add_store("kiosk-a", Vendor::Local).await;
    app.add_vendor_store("kiosk-t", Vendor::Treez, double.store_config())
        .await;
    // One customer created through the gateway (so also in the mirror), one at the register.
    let victim = create_in(
        &app,
        "kiosk-t",
        person("Tina", "Treez", "tina@example.com", "555-300-0004"),
    )
    .await;
    double.seed(
        json!({"first_name": "Tom", "last_name": "Register", "email": "tom@example.com",
                       "phone": "5553000005", "birthday": "1975-05-05", "gender": "M"}),
    );
    let vendor_before = double.customers();
    assert_eq!(vendor_before.len(), 2);
    let before = listing(&app, "kiosk-t").await;
    assert_eq!(before["customers"].as_array().unwrap().len(), 2, "{before}");
    let calls = double.count(Op::Any);

    let token_a = app.token(&["kiosk-a"]);
    let visited = walk(&app, &token_a, "kiosk-t", &victim).await;
    assert_covers_the_contract(&visited);
    assert_eq!(
        double.count(Op::Any),
        calls,
        "no request of an ungranted token reached B's POS: {:?}",
        &double.calls()[calls..]
    );
    assert_eq!(double.customers(), vendor_before, "B's POS is unchanged");
    assert_eq!(listing(&app, "kiosk-t").await, before, "B is unchanged");
}

/// Catalog ids are compared exactly: one that differs from B's only in case, or B's with
/// something after it, is another catalog (or none), never B.
async fn catalog_ids_differing_in_case_or_trailing_junk_do_not_alias(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("kiosk-b", Vendor::Local).await;
    // A's catalog id is B's in capitals: if catalogs were looked up without case, A's token
    // naming A would land in B's store.
    app.add_store("KIOSK-B", Vendor::Local).await;
    app.add_store("kiosk-b.", Vendor::Local).await;
    let victim = create_in(
        &app,
        "kiosk-b",
        person("Bob", "Baker", "bob@example.com", "555-200-0002"),
    )
    .await;
    let before = listing(&app, "kiosk-b").await;

    // The twins are stores of their own: their tokens see none of B's customers.
    for twin in ["KIOSK-B", "kiosk-b."] {
        let token = app.token(&[twin]);
        let list = listing(&app, twin).await;
        assert_eq!(list["customers"], json!([]), "{twin} sees B's customers");
        let (status, answer) = app
            .get_json(&format!("/api/v1/{twin}/customers/{victim}"), &token)
            .await;
        assert_eq!(
            (status, answer),
            (
                StatusCode::NOT_FOUND,
                json!({"error": "customer not found"})
            ),
            "{twin} reads B's customer"
        );
        // ... and cannot name B.
        let visited = walk(&app, &token, "kiosk-b", &victim).await;
        assert_covers_the_contract(&visited);
    }

    // Tokens granting near misses of B's id: case, trailing junk, a prefix.
    for granted in [
        "KIOSK-B",
        "Kiosk-b",
        "kiosk-b ",
        "kiosk-b\u{0}",
        "kiosk-b.",
        "kiosk-bx",
        "kiosk-b/",
        "kiosk-b/customers",
        "kiosk-",
        "kiosk-b*",
        " kiosk-b",
    ] {
        let token = app.token(&[granted]);
        walk(&app, &token, "kiosk-b", &victim).await;
    }

    // The twin's token naming B's id spelled otherwise (case, encoded junk, a bare `*`, which
    // is a token claim and never a catalog): none of them is granted, so every one is refused
    // with the contract's body.
    let token = app.token(&["KIOSK-B"]);
    for spelled in [
        "Kiosk-B",
        "kiosk-B",
        "kiosk-b%20",
        "kiosk-b%00",
        "kiosk-b%2F",
        "kiosk-b%3B",
        "kiosk-b%0A",
        "kiosk-b..",
        "kiosk-b_",
        "kiosk-b%2E",
        "%20kiosk-b",
        "kiosk-b%2A",
        "*",
        "%2A",
    ] {
        walk(&app, &token, spelled, &victim).await;
    }
    assert_eq!(listing(&app, "kiosk-b").await, before, "B is unchanged");
    for twin in ["KIOSK-B", "kiosk-b."] {
        assert_eq!(listing(&app, twin).await["customers"], json!([]));
    }
}
