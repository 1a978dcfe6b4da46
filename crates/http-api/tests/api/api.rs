//! The customers API end to end: a real server on a random port, real HTTP, SQLite and
//! PostgreSQL. Each test reads like a kiosk's session.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::helpers::{Db, body, john, spawn_app};
use domain::Vendor;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_databases!(
    create_find_get_and_update_a_customer,
    validation_reports_every_bad_field_at_once,
    duplicates_are_refused_with_the_existing_customer,
    patch_and_put_follow_their_semantics,
    idempotent_creates_replay_and_refuse_a_changed_body,
    concurrent_creates_with_one_key_write_once,
    bulk_create_reports_each_item_in_order,
    search_pages_with_opaque_cursors,
    a_token_for_one_catalog_cannot_touch_another,
);

async fn create_find_get_and_update_a_customer(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("kiosk-1", Vendor::Local).await;
    let token = app.token(&["kiosk-1"]);

    let (status, created) = body(app.create("kiosk-1", john()).await).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["customer"]["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        created,
        json!({"customer": {"status": "ACTIVE", "customer_id": id, "first_name": "John", "last_name": "Doe",
            "gender": null, "birthday": null, "email": "john.doe@example.com", "phone": "555-123-4567",
            "drivers_license": null, "notes": null}})
    );

    let response = app
        .request(
            Method::GET,
            "/api/v1/kiosk-1/customers?phone=(555)%20123.4567",
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-data-source"], "pos");
    let (status, found) = body(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["customers"][0], created["customer"]);
    assert_eq!(found["next_cursor"], Value::Null);

    for query in [
        "email=JOHN.DOE@example.COM",
        "name=jo%20do",
        "name=doe&email=john.doe@example.com",
    ] {
        let (_, found) = app
            .get_json(&format!("/api/v1/kiosk-1/customers?{query}"), &token)
            .await;
        assert_eq!(
            found["customers"].as_array().unwrap().len(),
            1,
            "query {query}"
        );
    }
    let (_, none) = app
        .get_json("/api/v1/kiosk-1/customers?name=jane", &token)
        .await;
    assert_eq!(none["customers"], json!([]));

    let (status, one) = app
        .get_json(&format!("/api/v1/kiosk-1/customers/{id}"), &token)
        .await;
    assert_eq!((status, &one), (StatusCode::OK, &created));

    let (status, updated) = body(
        app.request(
            Method::PATCH,
            &format!("/api/v1/kiosk-1/customers/{id}"),
            &token,
        )
        .json(&json!({"customer": {"gender": "f", "birthday": "04/05/1990", "notes": "VIP"}}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["customer"]["gender"], "Female");
    assert_eq!(updated["customer"]["birthday"], "1990-04-05");
    assert_eq!(updated["customer"]["notes"], "VIP");
    assert_eq!(updated["customer"]["email"], "john.doe@example.com");
    let (_, again) = app
        .get_json(&format!("/api/v1/kiosk-1/customers/{id}"), &token)
        .await;
    assert_eq!(again, updated);

    let (status, missing) = app.get_json("/api/v1/kiosk-1/customers/nope", &token).await;
    assert_eq!(
        (status, missing),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "customer not found"})
        )
    );

    let (status, pos) = app.get_json("/api/v1/kiosk-1/pos", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        pos,
        json!({"vendor": "local", "capabilities": {"list_customers": true, "search_customers": true,
            "get_customer": true, "create_customer": true, "update_customer": true},
            "required_fields": [], "search_by": ["email", "phone", "drivers_license", "name"],
            "unreadable_fields": []})
    );
}

async fn validation_reports_every_bad_field_at_once(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("k", Vendor::Local).await;
    let (status, errors) = body(
        app.create(
            "k",
            json!({"first_name": " ", "email": "nope", "birthday": "2999-01-01", "phone": "12"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        errors,
        json!({"errors": {"first_name": ["can't be blank"], "last_name": ["can't be blank"],
            "email": ["is invalid"], "birthday": ["is invalid"], "phone": ["is invalid"]}})
    );
    let (_, list) = app
        .get_json("/api/v1/k/customers", &app.token(&["k"]))
        .await;
    assert_eq!(list["customers"], json!([]), "nothing was written");
}

async fn duplicates_are_refused_with_the_existing_customer(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("k", Vendor::Local).await;
    let mut first = john();
    first["drivers_license"] = json!("D123-456");
    let (_, created) = body(app.create("k", first).await).await;
    for duplicate in [
        json!({"first_name": "Jim", "last_name": "Doe", "email": "JOHN.DOE@EXAMPLE.COM"}),
        json!({"first_name": "Jim", "last_name": "Doe", "phone": "+1 555 123 4567"}),
        json!({"first_name": "Jim", "last_name": "Doe", "phone": "5551234567"}),
        json!({"first_name": "Jim", "last_name": "Doe", "drivers_license": "d123456"}),
    ] {
        let (status, answer) = body(app.create("k", duplicate.clone()).await).await;
        if duplicate["phone"] == "+1 555 123 4567" {
            // 11 digits are not the 10 stored: a different number, so it is created.
            assert_eq!(status, StatusCode::CREATED);
            continue;
        }
        assert_eq!(status, StatusCode::CONFLICT, "{duplicate}");
        assert_eq!(
            answer,
            json!({"error": "customer already exists", "customer": created["customer"]})
        );
    }
    let (_, list) = app
        .get_json("/api/v1/k/customers", &app.token(&["k"]))
        .await;
    assert_eq!(list["customers"].as_array().unwrap().len(), 2);
}

async fn patch_and_put_follow_their_semantics(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("k", Vendor::Local).await;
    let token = app.token(&["k"]);
    let mut customer = john();
    customer["notes"] = json!("likes edibles");
    let (_, created) = body(app.create("k", customer).await).await;
    let path = format!(
        "/api/v1/k/customers/{}",
        created["customer"]["customer_id"].as_str().unwrap()
    );

    let patch = |value: Value| {
        app.request(Method::PATCH, &path, &token)
            .json(&value)
            .send()
    };
    let (status, cleared) = body(patch(json!({"customer": {"notes": null}})).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cleared["customer"]["notes"], Value::Null);
    assert_eq!(
        cleared["customer"]["email"], "john.doe@example.com",
        "absent fields stay"
    );

    let (status, errors) = body(
        patch(json!({"customer": {"first_name": null, "email": "x"}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        errors,
        json!({"errors": {"first_name": ["can't be blank"], "email": ["is invalid"]}})
    );

    let put = |value: Value| app.request(Method::PUT, &path, &token).json(&value).send();
    let (status, errors) = body(
        put(json!({"customer": {"first_name": "Jane"}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, errors),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"errors": {"last_name": ["can't be blank"]}})
        )
    );
    let (status, replaced) = body(
        put(json!({"customer": {"first_name": "Jane", "last_name": "Roe"}}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replaced["customer"]["first_name"], "Jane");
    assert_eq!(
        replaced["customer"]["email"],
        Value::Null,
        "PUT clears what it does not name"
    );
    assert_eq!(replaced["customer"]["phone"], Value::Null);

    let (status, missing) = body(
        app.request(Method::PATCH, "/api/v1/k/customers/404404", &token)
            .json(&json!({"customer": {"notes": "x"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, missing),
        (
            StatusCode::NOT_FOUND,
            json!({"error": "customer not found"})
        )
    );
}

async fn idempotent_creates_replay_and_refuse_a_changed_body(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("k", Vendor::Local).await;
    let token = app.token(&["k"]);
    let send = |customer: Value| {
        app.request(Method::POST, "/api/v1/k/customers", &token)
            .header("Idempotency-Key", "order-77")
            .json(&json!({"customer": customer}))
            .send()
    };
    let (first_status, first) = body(send(john()).await.unwrap()).await;
    let (second_status, second) = body(send(john()).await.unwrap()).await;
    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!(
        (second_status, &second),
        (first_status, &first),
        "the replay is the first answer"
    );

    let mut changed = john();
    changed["first_name"] = json!("Johnny");
    let (status, error) = body(send(changed).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error,
        json!({"error": "Idempotency-Key was already used with a different request"})
    );

    // Without the key, the same body is a duplicate, not a replay.
    let (status, _) = body(app.create("k", john()).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, list) = app.get_json("/api/v1/k/customers", &token).await;
    assert_eq!(list["customers"].as_array().unwrap().len(), 1);
}

async fn concurrent_creates_with_one_key_write_once(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("k", Vendor::Local).await;
    let token = app.token(&["k"]);
    // Different e-mails per attempt would be refused as a changed body, so the same body goes
    // out many times at once: without the key, all but one would be 409s; with it, every
    // answer is the one 201.
    let requests = (0..8).map(|_| {
        app.request(Method::POST, "/api/v1/k/customers", &token)
            .header("Idempotency-Key", "same-key")
            .json(&json!({"customer": john()}))
            .send()
    });
    let answers = futures::future::join_all(requests).await;
    let mut bodies = Vec::new();
    for answer in answers {
        let (status, value) = body(answer.unwrap()).await;
        assert_eq!(status, StatusCode::CREATED, "{value}");
        bodies.push(value);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every answer is the first one"
    );
    let (_, list) = app.get_json("/api/v1/k/customers", &token).await;
    assert_eq!(
        list["customers"].as_array().unwrap().len(),
        1,
        "one write reached the POS"
    );
}

async fn bulk_create_reports_each_item_in_order(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("k", Vendor::Local).await;
    let token = app.token(&["k"]);
    app.create(
        "k",
        json!({"first_name": "Old", "last_name": "Timer", "email": "old@example.com"}),
    )
    .await;
    let items = json!({"customers": [
        {"first_name": "A", "last_name": "One", "email": "a@example.com"},
        {"first_name": "", "last_name": "Two"},
        {"first_name": "C", "last_name": "Three", "email": "OLD@example.com"},
        "not an object",
        {"first_name": "E", "last_name": "Five", "phone": "555 000 1111"},
    ]});
    let (status, answer) = body(
        app.request(Method::POST, "/api/v1/k/customers/bulk", &token)
            .json(&items)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let results = answer["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 422, 409, 422, 201]);
    assert_eq!(results[0]["customer"]["last_name"], "One");
    assert_eq!(
        results[1]["errors"],
        json!({"first_name": ["can't be blank"]})
    );
    assert_eq!(results[2]["error"], "customer already exists");
    assert_eq!(results[2]["customer"]["email"], "old@example.com");
    assert_eq!(results[4]["customer"]["phone"], "555 000 1111");

    let too_many = json!({"customers": vec![json!({"first_name": "X", "last_name": "Y"}); 101]});
    let (status, error) = body(
        app.request(Method::POST, "/api/v1/k/customers/bulk", &token)
            .json(&too_many)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error["errors"]["customers"].is_array());
    let (status, error) = body(
        app.request(Method::POST, "/api/v1/k/customers/bulk", &token)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "param is missing or the value is empty: customers"})
        )
    );
}

async fn search_pages_with_opaque_cursors(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("k", Vendor::Local).await;
    let token = app.token(&["k"]);
    for i in 0..5 {
        let (status, _) = body(
            app.create(
                "k",
                json!({"first_name": format!("P{i}"), "last_name": "Smith"}),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/k/customers?name=smith&limit=2".to_owned();
    for page in 0.. {
        let (status, answer) = app.get_json(&path, &token).await;
        assert_eq!(status, StatusCode::OK);
        for c in answer["customers"].as_array().unwrap() {
            seen.push(c["first_name"].as_str().unwrap().to_owned());
        }
        match answer["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/k/customers?name=smith&limit=2&cursor={cursor}")
            }
            None => {
                assert_eq!(page, 2, "5 customers, 2 a page: 3 pages");
                break;
            }
        }
    }
    seen.sort();
    assert_eq!(seen, ["P0", "P1", "P2", "P3", "P4"]);

    let (status, error) = app
        .get_json("/api/v1/k/customers?cursor=forged", &token)
        .await;
    assert_eq!(
        (status, error),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"errors": {"cursor": ["is invalid"]}})
        )
    );
    let (status, error) = app.get_json("/api/v1/k/customers?limit=500", &token).await;
    assert_eq!(
        (status, error),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"errors": {"limit": ["is not included in the list"]}})
        )
    );
}

async fn a_token_for_one_catalog_cannot_touch_another(db: Db) {
    let app = spawn_app(db).await;
    app.add_store("a", Vendor::Local).await;
    app.add_store("b", Vendor::Local).await;
    let (_, b_customer) = body(app.create("b", john()).await).await;
    let b_id = b_customer["customer"]["customer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token_a = app.token(&["a"]);
    let not_found = json!({"error": "catalog not found"});
    let attempts = [
        (Method::GET, "/api/v1/b/customers".to_owned(), None),
        (Method::GET, format!("/api/v1/b/customers/{b_id}"), None),
        (Method::GET, "/api/v1/b/pos".to_owned(), None),
        (
            Method::POST,
            "/api/v1/b/customers".to_owned(),
            Some(json!({"customer": {"first_name": "X", "last_name": "Y"}})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/b/customers/{b_id}"),
            Some(json!({"customer": {"notes": "pwned"}})),
        ),
        (
            Method::PUT,
            format!("/api/v1/b/customers/{b_id}"),
            Some(json!({"customer": {"first_name": "X", "last_name": "Y"}})),
        ),
        (
            Method::POST,
            "/api/v1/b/customers/bulk".to_owned(),
            Some(json!({"customers": [{"first_name": "X", "last_name": "Y"}]})),
        ),
        (Method::GET, "/api/v1/nowhere/customers".to_owned(), None),
    ];
    for (method, path, payload) in attempts {
        let mut request = app.request(method.clone(), &path, &token_a);
        if let Some(payload) = payload {
            request = request.json(&payload);
        }
        let (status, answer) = body(request.send().await.unwrap()).await;
        assert_eq!(
            (status, &answer),
            (StatusCode::NOT_FOUND, &not_found),
            "{method} {path}"
        );
    }
    // A's own view of B's customer id: not found in A's store either.
    let (status, _) = app
        .get_json(&format!("/api/v1/a/customers/{b_id}"), &token_a)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, untouched) = app
        .get_json(&format!("/api/v1/b/customers/{b_id}"), &app.token(&["*"]))
        .await;
    assert_eq!(untouched, b_customer, "nothing of B changed");
}
