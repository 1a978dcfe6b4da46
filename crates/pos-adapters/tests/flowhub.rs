//! Flowhub's quirks, against the Flowhub double. What every vendor must do is in the
//! conformance suite (`tests/conformance/`); this file keeps only what is Flowhub's own: its one
//! `name`, a search by phone only, the full-replacement `PUT` and the licence it never gives
//! back, list dates in the store's local time, its two list envelopes, its 429 without
//! `Retry-After`, its 404s that are not "not found", and its config.
#![cfg(feature = "flowhub")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chrono::{FixedOffset, NaiveDate, TimeZone, Utc};
use domain::{
    CreateKey, Customer, CustomerDirectory, CustomerId, CustomerPatch, CustomerQuery, Email,
    Gender, NewCustomer, Operation, OptionalField, PersonName, Phone, PosError, SearchFilter,
    Vendor,
};
use pos_adapters::flowhub::{Flowhub, NO_LAST_NAME};
use pos_adapters::{AdapterError, Settings, VendorAdapter};
use serde_json::{Value, json};
use vendor_doubles::flowhub::{FlowhubDouble, ListEnvelope};
use vendor_doubles::{Fault, Op, SeedCustomer, VendorDouble};

fn double() -> FlowhubDouble {
    FlowhubDouble::start().unwrap()
}

/// The double's store config with `extra` keys merged over it.
fn config(double: &FlowhubDouble, extra: Value) -> Value {
    let mut config = double.store_config();
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

fn connect_with(double: &FlowhubDouble, extra: Value) -> Flowhub {
    Flowhub::connect(&config(double, extra), &Settings::default()).unwrap()
}

fn connect(double: &FlowhubDouble) -> Flowhub {
    connect_with(double, json!({}))
}

fn named(first: &str, last: &str) -> NewCustomer {
    NewCustomer {
        first_name: PersonName::parse(first).unwrap(),
        last_name: PersonName::parse(last).unwrap(),
        gender: Some(Gender::Female),
        birthday: NaiveDate::from_ymd_opt(1989, 3, 7),
        email: Some(Email::parse("Ana.Cruz@Example.com").unwrap()),
        phone: Some(Phone::parse("+1 (555) 123-4567").unwrap()),
        drivers_license: Some("D1234567".into()),
        notes: Some("prefers edibles".into()),
    }
}

fn ana() -> NewCustomer {
    named("Ana", "Cruz")
}

/// A create key no other create of the run shares (a new kiosk request).
fn new_key() -> CreateKey {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    CreateKey::derive(&[file!(), &n.to_string()])
}

fn query() -> CustomerQuery {
    CustomerQuery {
        limit: 25,
        ..Default::default()
    }
}

fn by_phone(digits: &str) -> CustomerQuery {
    CustomerQuery {
        phone_digits: Some(digits.into()),
        ..query()
    }
}

fn id(text: &str) -> CustomerId {
    CustomerId::parse(text).unwrap()
}

fn names(customer: &Customer) -> (&str, &str) {
    (customer.first_name.as_str(), customer.last_name.as_str())
}

/// The JSON body of the last call of kind `op`.
fn last_body(double: &FlowhubDouble, op: Op) -> Value {
    let call = double.calls().into_iter().rfind(|c| c.op == op).unwrap();
    serde_json::from_str(&call.body).unwrap()
}

/// A customer as Flowhub's register holds one, in Flowhub's own shape.
fn seed(double: &FlowhubDouble, name: &str, phone: &str) -> String {
    double.seed(json!({
        "name": name, "birthDate": "1980-01-01", "state": "CO", "type": "recCustomer",
        "phone": phone,
    }))
}

// --- capabilities --------------------------------------------------------------------------

#[test]
fn capabilities_say_what_flowhub_offers() {
    let caps = Flowhub::CAPABILITIES;
    assert!(caps.list_customers && caps.search_customers && caps.get_customer);
    assert!(caps.create_customer && caps.update_customer);
    assert_eq!(caps.search_by, &[SearchFilter::Phone]);
    assert_eq!(caps.required_fields, &[OptionalField::Birthday]);
    assert_eq!(
        caps.unreadable_fields,
        &[
            OptionalField::Gender,
            OptionalField::DriversLicense,
            OptionalField::Notes
        ]
    );
}

// --- one name ------------------------------------------------------------------------------

#[tokio::test]
async fn a_create_sends_one_name_and_flowhubs_required_fields() {
    let double = double();
    let flowhub = connect(&double);
    let created = flowhub.create(&ana(), &new_key()).await.unwrap();
    let call = double
        .calls()
        .into_iter()
        .find(|c| c.op == Op::Create)
        .unwrap();
    let location = &double.credentials().location_id;
    assert_eq!(call.path, format!("/v1/customer?store_id={location}"));
    assert_eq!(
        last_body(&double, Op::Create),
        json!({
            "name": "Ana Cruz", "birthDate": "1989-03-07", "state": "CO", "type": "recCustomer",
            "email": "Ana.Cruz@Example.com", "phone": "5551234567", "stateId": "D1234567",
        }),
        "no gender or notes: Flowhub has no field for them"
    );
    // The answer has every field the kiosk sent: what Flowhub keeps from its answer, the rest
    // (gender, notes, licence) from the request.
    assert_eq!(names(&created), ("Ana", "Cruz"));
    assert_eq!(created.phone.as_ref().unwrap().as_str(), "555-123-4567");
    assert_eq!(created.gender, Some(Gender::Female));
    assert_eq!(created.notes.as_deref(), Some("prefers edibles"));
    assert_eq!(created.drivers_license.as_deref(), Some("D1234567"));
    assert_eq!(created.birthday, NaiveDate::from_ymd_opt(1989, 3, 7));
    // A read gives back none of the three.
    let read = flowhub.get(&created.customer_id).await.unwrap().unwrap();
    assert_eq!(
        (read.gender, read.notes, read.drivers_license),
        (None, None, None)
    );
    assert_eq!(double.customers()[0]["phone"], "(555) 123-4567");
}

#[tokio::test]
async fn names_split_at_the_last_space_two_one_and_many_words() {
    let double = double();
    let flowhub = connect(&double);
    let cases = [
        ("Ana Cruz", ("Ana", "Cruz")),
        ("Cher", ("Cher", NO_LAST_NAME)),
        ("Mary Ann de la Cruz", ("Mary Ann de la", "Cruz")),
        ("  José   María\tPérez ", ("José María", "Pérez")),
    ];
    for (n, (name, want)) in cases.iter().enumerate() {
        let held = seed(&double, name, &format!("555000000{n}"));
        let read = flowhub.get(&id(&held)).await.unwrap().unwrap();
        assert_eq!(names(&read), *want, "{name:?}");
    }
    // A list reads them the same way.
    let listed = flowhub.find(&query()).await.unwrap().customers;
    let listed: Vec<(&str, &str)> = listed.iter().map(names).collect();
    assert_eq!(listed, cases.map(|(_, want)| want));
}

#[tokio::test]
async fn names_with_spaces_come_back_as_the_kiosk_sent_them_then_as_flowhub_holds_them() {
    let double = double();
    let flowhub = connect(&double);
    let created = flowhub
        .create(&named("Ana", "de la Cruz"), &new_key())
        .await
        .unwrap();
    assert_eq!(double.customers()[0]["name"], "Ana de la Cruz");
    assert_eq!(
        names(&created),
        ("Ana", "de la Cruz"),
        "the kiosk's own split"
    );
    let read = flowhub.get(&created.customer_id).await.unwrap().unwrap();
    assert_eq!(
        names(&read),
        ("Ana de la", "Cruz"),
        "Flowhub's one name, split"
    );

    // A new first name keeps the last name as the read split it.
    let patch = CustomerPatch {
        first_name: Some(PersonName::parse("Anabel").unwrap()),
        ..Default::default()
    };
    let updated = flowhub.update(&created.customer_id, &patch).await.unwrap();
    assert_eq!(names(&updated), ("Anabel", "Cruz"));
    assert_eq!(double.customers()[0]["name"], "Anabel Cruz");

    // A one-word name is written alone: `-` is our placeholder, never Flowhub's.
    let cher = flowhub
        .create(&named("Cher", NO_LAST_NAME), &new_key())
        .await
        .unwrap();
    let held = double
        .customers()
        .into_iter()
        .find(|c| c["id"] == cher.customer_id.as_str())
        .unwrap();
    assert_eq!(held["name"], "Cher");
    assert_eq!(names(&cher), ("Cher", NO_LAST_NAME));
    let patch = CustomerPatch {
        last_name: Some(PersonName::parse("Sarkisian").unwrap()),
        ..Default::default()
    };
    let updated = flowhub.update(&cher.customer_id, &patch).await.unwrap();
    assert_eq!(names(&updated), ("Cher", "Sarkisian"));
}

// --- search --------------------------------------------------------------------------------

#[tokio::test]
async fn flowhub_searches_by_phone_only_and_leaves_the_rest_to_the_mirror() {
    let double = double();
    let flowhub = connect(&double);
    let created = flowhub.create(&ana(), &new_key()).await.unwrap();
    let calls = double.count(Op::Any);
    for filters in [
        CustomerQuery {
            email: Some("ana.cruz@example.com".into()),
            ..query()
        },
        CustomerQuery {
            name: Some("ana".into()),
            ..query()
        },
        CustomerQuery {
            drivers_license: Some("D1234567".into()),
            ..query()
        },
        // Flowhub never gives a licence back: no answer could be shown to match.
        CustomerQuery {
            drivers_license: Some("D1234567".into()),
            ..by_phone("5551234567")
        },
    ] {
        assert_eq!(
            flowhub.find(&filters).await.unwrap_err(),
            PosError::Unsupported(Operation::SearchCustomers),
            "{filters:?}"
        );
    }
    assert_eq!(double.count(Op::Any), calls, "the mirror's, without a call");

    let found = |page: domain::CustomerPage| -> Vec<CustomerId> {
        page.customers.into_iter().map(|c| c.customer_id).collect()
    };
    let want = vec![created.customer_id.clone()];
    // Phones are compared on digits: Flowhub holds `(555) 123-4567`.
    for digits in ["5551234567", "15551234567"] {
        assert_eq!(found(flowhub.find(&by_phone(digits)).await.unwrap()), want);
    }
    let call = double
        .calls()
        .into_iter()
        .rfind(|c| c.op == Op::Search)
        .unwrap();
    assert!(
        call.path
            .ends_with("/v1/customers/findByPhoneNumber?phone_number=5551234567")
    );
    // The other filters of a phone search are checked on what Flowhub answers.
    let with = |extra: CustomerQuery| CustomerQuery {
        phone_digits: Some("5551234567".into()),
        ..extra
    };
    let email = |e: &str| CustomerQuery {
        email: Some(e.into()),
        ..query()
    };
    let name = |n: &str| CustomerQuery {
        name: Some(n.into()),
        ..query()
    };
    assert_eq!(
        found(
            flowhub
                .find(&with(email("ana.cruz@example.com")))
                .await
                .unwrap()
        ),
        want
    );
    assert_eq!(
        found(flowhub.find(&with(name("an cr"))).await.unwrap()),
        want
    );
    assert!(found(flowhub.find(&with(email("bo@example.com"))).await.unwrap()).is_empty());
    assert!(found(flowhub.find(&with(name("zebedee"))).await.unwrap()).is_empty());
    // Nobody, and a number Flowhub can't hold (no ten-digit form, so no call).
    assert!(found(flowhub.find(&by_phone("5559999999")).await.unwrap()).is_empty());
    let searches = double.count(Op::Search);
    assert!(found(flowhub.find(&by_phone("442079460958")).await.unwrap()).is_empty());
    assert_eq!(double.count(Op::Search), searches);
}

// --- the full-replacement PUT ------------------------------------------------------------

/// A customer as Flowhub holds one a register made: address, consents, loyalty, groups, its
/// own state and type.
fn rich_record() -> Value {
    json!({
        "name": "Ana Cruz", "birthDate": "1989-03-07", "state": "WA", "type": "medCustomer",
        "email": "ana@example.com", "phone": "(555) 123-4567",
        "streetAddress1": "1 Main St", "streetAddress2": "Apt 2", "city": "Spokane",
        "zip": "99201", "country": "US",
        "consentsToPromotionalEmail": true, "consentsToPromotionalSMS": true,
        "isLoyal": true, "loyaltyPoints": 120, "groups": [{"name": "VIP"}],
        "createdAt": "2024-01-01T10:00:00.000Z",
    })
}

#[tokio::test]
async fn an_update_puts_the_whole_record_back_so_nothing_unnamed_is_lost() {
    let double = double();
    let flowhub = connect(&double);
    let held = double.seed(rich_record());
    let patch = CustomerPatch {
        notes: Some(Some("now prefers tinctures".into())),
        email: Some(None),
        ..Default::default()
    };
    let updated = flowhub.update(&id(&held), &patch).await.unwrap();
    assert_eq!(names(&updated), ("Ana", "Cruz"));
    assert_eq!(updated.email, None);
    assert_eq!(updated.notes.as_deref(), Some("now prefers tinctures"));
    assert_eq!(updated.phone.unwrap().as_str(), "555-123-4567");
    assert_eq!(updated.birthday, NaiveDate::from_ymd_opt(1989, 3, 7));

    let call = double
        .calls()
        .into_iter()
        .find(|c| c.op == Op::Update)
        .unwrap();
    let location = &double.credentials().location_id;
    assert_eq!(
        call.path,
        format!("/v1/customer/{held}?store_id={location}")
    );
    assert_eq!(
        last_body(&double, Op::Update),
        json!({
            "name": "Ana Cruz", "birthDate": "1989-03-07", "state": "WA", "type": "medCustomer",
            "email": null, "phone": "5551234567",
            "streetAddress1": "1 Main St", "streetAddress2": "Apt 2", "city": "Spokane",
            "zip": "99201", "country": "US",
            "consentsToPromotionalEmail": true, "consentsToPromotionalSMS": true,
        }),
        "read first, sent back whole: the store's state and type do not replace the customer's"
    );
    let after = &double.customers()[0];
    let mut want = rich_record();
    want["email"] = Value::Null;
    for (key, value) in want.as_object().unwrap() {
        assert_eq!(&after[key], value, "{key}");
    }
    assert_eq!(double.count(Op::Get), 1);
    assert_eq!(double.count(Op::Update), 1);

    // And a live read afterwards says the same.
    let read = flowhub.get(&id(&held)).await.unwrap().unwrap();
    assert_eq!(
        (read.first_name, read.last_name),
        (updated.first_name, updated.last_name)
    );
    assert_eq!((read.email, read.birthday), (None, updated.birthday));
}

#[tokio::test]
async fn an_update_that_does_not_name_the_licence_leaves_flowhub_without_one() {
    let double = double();
    let flowhub = connect(&double);
    let created = flowhub.create(&ana(), &new_key()).await.unwrap();
    let held = created.customer_id.as_str().to_owned();
    assert_eq!(double.licence(&held).as_deref(), Some("D1234567"));

    // No read gives the licence back, so the full PUT cannot carry it: Flowhub loses it, and
    // the answer says so (the mirror follows).
    let notes = CustomerPatch {
        notes: Some(Some("x".into())),
        ..Default::default()
    };
    let updated = flowhub.update(&created.customer_id, &notes).await.unwrap();
    assert!(last_body(&double, Op::Update).get("stateId").is_none());
    assert_eq!(double.licence(&held), None);
    assert_eq!(updated.drivers_license, None);
    assert_eq!(
        updated.gender, None,
        "not in the patch, and Flowhub keeps none"
    );

    // An update that names it writes it, and answers it.
    let licence = CustomerPatch {
        drivers_license: Some(Some("Z999".into())),
        ..Default::default()
    };
    let updated = flowhub
        .update(&created.customer_id, &licence)
        .await
        .unwrap();
    assert_eq!(double.licence(&held).as_deref(), Some("Z999"));
    assert_eq!(updated.drivers_license.as_deref(), Some("Z999"));
}

#[tokio::test]
async fn non_uuid_ids_are_nobody_without_a_call() {
    let double = double();
    let flowhub = connect(&double);
    let patch = CustomerPatch {
        notes: Some(Some("x".into())),
        ..Default::default()
    };
    for other in [
        "424242424242",
        "5f0c0ffee0ddba11c0ffee00",
        "findByPhoneNumber",
    ] {
        assert_eq!(flowhub.get(&id(other)).await.unwrap(), None);
        assert_eq!(
            flowhub.update(&id(other), &patch).await.unwrap_err(),
            PosError::NotFound
        );
    }
    assert_eq!(double.count(Op::Any), 0);
}

// --- listing and sync ----------------------------------------------------------------------

#[tokio::test]
async fn the_list_reads_both_envelopes() {
    let double = double();
    let flowhub = connect(&double);
    let seeded: Vec<String> = (1..=5)
        .map(|n| double.seed_customer(&SeedCustomer::numbered(n)))
        .collect();
    for envelope in [ListEnvelope::BareArray, ListEnvelope::Data] {
        double.set_list_envelope(envelope);
        let mut ids = Vec::new();
        let mut page = None;
        loop {
            let answer = flowhub
                .find(&CustomerQuery {
                    limit: 2,
                    page,
                    ..query()
                })
                .await
                .unwrap();
            ids.extend(
                answer
                    .customers
                    .into_iter()
                    .map(|c| c.customer_id.as_str().to_owned()),
            );
            match answer.next {
                Some(next) => page = Some(next),
                None => break,
            }
        }
        assert_eq!(ids, seeded, "{envelope:?}");
    }
    let call = double
        .calls()
        .into_iter()
        .find(|c| c.op == Op::List)
        .unwrap();
    assert!(
        call.path
            .starts_with("/v1/customers/?page=1&page_size=2&order_by=asc"),
        "{}",
        call.path
    );
}

#[tokio::test]
async fn an_incremental_sync_asks_from_the_day_before_in_local_time_and_drops_the_overlap() {
    let double = double();
    let denver = FixedOffset::west_opt(7 * 3600).unwrap();
    double.set_time_zone(denver);
    let flowhub = connect_with(&double, json!({"time_zone": "-07:00"}));
    // The last sync started at 21:00 on 9 March in Denver: 04:00 on the 10th in UTC.
    let since = Utc.with_ymd_and_hms(2024, 3, 10, 4, 0, 0).unwrap();
    let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2024, 3, d, h, 0, 0).unwrap();
    let mut ids = Vec::new();
    for (n, updated) in [
        (1, at(7, 12)),  // 05:00 local on the 7th: not asked for
        (2, at(9, 20)),  // 13:00 local on the 9th: in the overlap, already synced
        (3, at(10, 3)),  // 20:00 local on the 9th: in the overlap, already synced
        (4, at(10, 5)),  // 22:00 local on the 9th, after `since`: new
        (5, at(10, 20)), // the 10th: new
    ] {
        let held = double.seed_customer(&SeedCustomer::numbered(n));
        assert!(double.set_updated_at(&held, updated));
        ids.push(held);
    }
    let page = flowhub
        .changed_since(
            since,
            &CustomerQuery {
                limit: 100,
                ..query()
            },
        )
        .await
        .unwrap();
    let got: Vec<&str> = page
        .customers
        .iter()
        .map(|c| c.customer_id.as_str())
        .collect();
    assert_eq!(got, [ids[3].as_str(), ids[4].as_str()]);
    assert_eq!(page.next, None);
    // Asked by the store's local date, a day back: the 9th in Denver less a day. (The UTC
    // date, the 10th, would have missed customer 4.)
    let call = double
        .calls()
        .into_iter()
        .rfind(|c| c.op == Op::List)
        .unwrap();
    assert!(
        call.path.ends_with("&updated_after=2024-03-08"),
        "{}",
        call.path
    );

    // Pages go on by what Flowhub sent, not by what was kept.
    let first = flowhub
        .changed_since(
            since,
            &CustomerQuery {
                limit: 2,
                ..query()
            },
        )
        .await
        .unwrap();
    assert!(first.customers.is_empty(), "2 and 3 were synced already");
    let second = flowhub
        .changed_since(
            since,
            &CustomerQuery {
                limit: 2,
                page: first.next,
                ..query()
            },
        )
        .await
        .unwrap();
    assert_eq!(second.customers.len(), 2);

    // Without a configured time zone the date is the earliest anywhere (UTC-12).
    let unzoned = connect(&double);
    unzoned.changed_since(since, &query()).await.unwrap();
    let call = double
        .calls()
        .into_iter()
        .rfind(|c| c.op == Op::List)
        .unwrap();
    assert!(
        call.path.ends_with("&updated_after=2024-03-08"),
        "{}",
        call.path
    );
    assert_eq!(
        unzoned.time_zone(),
        FixedOffset::west_opt(12 * 3600).unwrap()
    );
}

// --- errors and limits ---------------------------------------------------------------------

#[tokio::test]
async fn a_429_without_retry_after_is_backed_off_and_answers_a_wait() {
    let double = double();
    let flowhub = connect(&double);
    double.fail(Op::List, Fault::Status(429), 10);
    let error = flowhub.find(&query()).await.unwrap_err();
    let PosError::Unavailable {
        retry_after,
        response: Some(response),
        ..
    } = error
    else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert_eq!(response.status, 429);
    assert_eq!(retry_after, Some(std::time::Duration::from_secs(1)));
    assert_eq!(
        double.count(Op::List),
        3,
        "sent, then retried twice after a back-off"
    );
    double.heal();

    double.fail(Op::Create, Fault::Status(429), 1);
    let error = flowhub.create(&ana(), &new_key()).await.unwrap_err();
    assert!(
        matches!(error, PosError::Unavailable { retry_after: Some(d), .. } if d.as_secs() == 1),
        "{error:?}"
    );
    assert_eq!(double.count(Op::Create), 1, "a create is never sent again");
    let settings = format!("{flowhub:?}");
    assert!(
        settings.contains("rate_limit_per_minute: Some(3000)"),
        "{settings}"
    );
    assert!(settings.contains("rate_limit_burst: Some(5)"), "{settings}");
}

#[tokio::test]
async fn refused_keys_and_a_blocked_ip_are_unauthorized_and_not_retried() {
    let double = double();
    let wrong = connect_with(&double, double_wrong(&double));
    let PosError::Unauthorized(response) = wrong.find(&query()).await.unwrap_err() else {
        panic!("expected Unauthorized");
    };
    assert_eq!(response.status, 401);
    assert_eq!(response.body["message"], "Invalid key");
    assert_eq!(double.count(Op::List), 1);

    double.block_caller_ip(true);
    let flowhub = connect(&double);
    let PosError::Unauthorized(response) = flowhub.get(&id(&uuid())).await.unwrap_err() else {
        panic!("expected Unauthorized");
    };
    assert_eq!(response.status, 403);
    assert_eq!(double.count(Op::Get), 1);
}

fn double_wrong(double: &FlowhubDouble) -> Value {
    let wrong = double.wrong_credentials_config();
    json!({"api_key": wrong["api_key"]})
}

fn uuid() -> String {
    "00000000-0000-4000-8000-000000000000".to_owned()
}

#[tokio::test]
async fn flowhub_field_errors_land_on_our_fields_and_bad_values_never_leave() {
    let double = double();
    let flowhub = connect(&double);
    double.fail(Op::Create, Fault::Invalid, 1);
    let PosError::Rejected(errors) = flowhub.create(&ana(), &new_key()).await.unwrap_err() else {
        panic!("expected Rejected");
    };
    assert_eq!(errors.get("first_name").unwrap(), ["can't be blank"]);
    assert_eq!(errors.get("last_name").unwrap(), ["can't be blank"]);

    // Flowhub keeps ten-digit phones and requires a birth date: refused before any call.
    let mut abroad = ana();
    abroad.phone = Some(Phone::parse("+44 20 7946 0958").unwrap());
    abroad.birthday = None;
    let PosError::Rejected(errors) = flowhub.create(&abroad, &new_key()).await.unwrap_err() else {
        panic!("expected Rejected");
    };
    assert_eq!(errors.get("phone").unwrap(), ["is invalid"]);
    assert_eq!(errors.get("birthday").unwrap(), ["can't be blank"]);
    assert_eq!(double.count(Op::Create), 1);

    // A location Flowhub does not know is the store's config, not a missing customer.
    let elsewhere = connect_with(&double, json!({"location_id": "another-location"}));
    let error = elsewhere.create(&ana(), &new_key()).await.unwrap_err();
    assert!(
        matches!(&error, PosError::Upstream(r) if r.status == 404),
        "{error:?}"
    );
    let created = flowhub.create(&ana(), &new_key()).await.unwrap();
    let patch = CustomerPatch {
        notes: Some(None),
        ..Default::default()
    };
    let error = elsewhere
        .update(&created.customer_id, &patch)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PosError::Upstream(r) if r.status == 404),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_404_that_refuses_a_date_format_is_our_bug_not_a_missing_customer() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let refusal = ResponseTemplate::new(404)
        .set_body_string("updated_after must be in format yyyy-mm-dd")
        .insert_header("content-type", "text/plain");
    Mock::given(method("GET"))
        .and(path("/v1/customers/"))
        .respond_with(refusal.clone())
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/customers/{}", uuid())))
        .respond_with(refusal)
        .mount(&server)
        .await;
    let double = double();
    let flowhub = connect_with(&double, json!({"base_url": server.uri()}));
    for error in [
        flowhub.find(&query()).await.unwrap_err(),
        flowhub.get(&id(&uuid())).await.unwrap_err(),
    ] {
        let PosError::Upstream(response) = error else {
            panic!("expected Upstream, got {error:?}");
        };
        assert_eq!(response.status, 404);
        assert_eq!(response.body, "updated_after must be in format yyyy-mm-dd");
    }
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "never retried"
    );
}

// --- config --------------------------------------------------------------------------------

fn config_error(config: Value) -> String {
    match Flowhub::connect(&config, &Settings::default()) {
        Err(AdapterError::Config { vendor, message }) => {
            assert_eq!(vendor, Vendor::Flowhub);
            message
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn flowhub_config_checks_its_own_keys() {
    let base = json!({"client_id": "c", "api_key": "k", "location_id": "l", "state": "co"});
    let with = |extra: Value| {
        let mut config = base.clone();
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        config
    };
    let flowhub = Flowhub::connect(&base, &Settings::default()).unwrap();
    let debug = format!("{flowhub:?}");
    assert!(debug.contains("https://api.flowhub.co/"), "{debug}");
    assert!(debug.contains("state: \"CO\""), "{debug}");
    assert!(debug.contains("customer_type: Recreational"), "{debug}");
    let mut no_state = base.clone();
    no_state.as_object_mut().unwrap().remove("state");
    assert_eq!(config_error(no_state), "missing key \"state\"");
    assert_eq!(
        config_error(with(json!({"state": "Colorado"}))),
        "key \"state\" must be a two-letter state code"
    );
    let message = config_error(with(json!({"customer_type": "adultUse"})));
    assert!(
        message.starts_with("key \"customer_type\" must be"),
        "{message}"
    );
    assert!(!message.contains("adultUse"), "{message}");
    let medical = Flowhub::connect(
        &with(json!({"customer_type": "medCustomer"})),
        &Settings::default(),
    );
    assert!(format!("{:?}", medical.unwrap()).contains("customer_type: Medical"));

    for (zone, offset) in [
        ("-07:00", -7 * 3600),
        ("UTC", 0),
        ("Z", 0),
        ("+0530", 5 * 3600 + 1800),
        ("UTC-10", -10 * 3600),
        ("", -12 * 3600),
    ] {
        let flowhub = Flowhub::connect(&with(json!({"time_zone": zone})), &Settings::default());
        assert_eq!(
            flowhub.unwrap().time_zone().local_minus_utc(),
            offset,
            "{zone}"
        );
    }
    for bad in ["America/Denver", "-25:00", "+07:99", "soon"] {
        let message = config_error(with(json!({"time_zone": bad})));
        assert!(
            message.starts_with("key \"time_zone\" must be a UTC offset"),
            "{message}"
        );
        assert!(!message.contains(bad), "{message}");
    }
}

#[tokio::test]
async fn a_create_answered_with_only_an_id_is_completed_from_what_was_sent() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let double = double();
    let location = double.credentials().location_id.clone();
    Mock::given(method("POST"))
        .and(path("/v1/customer"))
        .and(query_param("store_id", location.as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": uuid()})))
        .expect(1)
        .mount(&server)
        .await;
    let flowhub = connect_with(&double, json!({"base_url": server.uri()}));
    let created = flowhub.create(&ana(), &new_key()).await.unwrap();
    assert_eq!(created.customer_id.as_str(), uuid());
    assert_eq!(names(&created), ("Ana", "Cruz"));
    assert_eq!(created.phone.unwrap().as_str(), "555-123-4567");
    assert_eq!(created.email.unwrap().as_str(), "Ana.Cruz@Example.com");
    assert_eq!(created.birthday, NaiveDate::from_ymd_opt(1989, 3, 7));
}
