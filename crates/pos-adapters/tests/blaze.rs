//! BLAZE's quirks, against the BLAZE double (and, where the exact wire matters, a wiremock
//! server). What every vendor must do is in the conformance suite (`tests/conformance/`); this
//! file keeps only what is BLAZE's own: its two partner headers and raw store key, the 200 of
//! a create, `sex` as an integer, `localDob` against `dob` across time zones, `""` e-mails,
//! the 7-day windows of its list, and a PUT that must carry the whole member.
#![cfg(feature = "blaze")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use chrono::{Duration as Days, NaiveDate, Utc};
use domain::{
    CreateKey, CustomerDirectory, CustomerId, CustomerPatch, CustomerQuery, Email, Gender,
    NewCustomer, PageToken, PersonName, Phone, PosError, SearchFilter, Vendor,
};
use pos_adapters::blaze::{Blaze, DEFAULT_BASE_URL, WINDOW_MS, Walk};
use pos_adapters::http::Url;
use pos_adapters::{AdapterError, Settings, VendorAdapter};
use serde_json::{Value, json};
use vendor_doubles::blaze::{BlazeDouble, ErrorShape, Missing};
use vendor_doubles::{Fault, Op, SeedCustomer, VendorDouble};

fn double() -> BlazeDouble {
    BlazeDouble::start().unwrap()
}

/// The double's store config with `extra` keys merged over it.
fn config(double: &BlazeDouble, extra: Value) -> Value {
    let mut config = double.store_config();
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

fn connect_with(double: &BlazeDouble, extra: Value) -> Blaze {
    Blaze::connect(&config(double, extra), &Settings::default()).unwrap()
}

fn connect(double: &BlazeDouble) -> Blaze {
    connect_with(double, json!({}))
}

/// A create key no other create of the run shares (a new kiosk request).
fn new_key() -> CreateKey {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    CreateKey::derive(&[file!(), &n.to_string()])
}

fn ann() -> NewCustomer {
    NewCustomer {
        first_name: PersonName::parse("Ann").unwrap(),
        last_name: PersonName::parse("Lee").unwrap(),
        gender: Some(Gender::Female),
        birthday: NaiveDate::from_ymd_opt(1989, 3, 7),
        email: Some(Email::parse("Ann.Lee@Example.com").unwrap()),
        phone: Some(Phone::parse("(555) 123-4567").unwrap()),
        drivers_license: Some("D1234567".into()),
        notes: Some("prefers edibles".into()),
    }
}

fn query() -> CustomerQuery {
    CustomerQuery {
        limit: 25,
        ..Default::default()
    }
}

fn by_email(email: &str) -> CustomerQuery {
    CustomerQuery {
        email: Some(email.into()),
        ..query()
    }
}

fn id(text: &str) -> CustomerId {
    CustomerId::parse(text).unwrap()
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

const DAY_MS: i64 = 24 * 3600 * 1000;

// --- capabilities and credentials --------------------------------------------------------

#[test]
fn capabilities_say_what_blaze_offers() {
    let caps = Blaze::CAPABILITIES;
    assert!(caps.list_customers && caps.search_customers && caps.get_customer);
    assert!(caps.create_customer && caps.update_customer);
    assert_eq!(
        caps.search_by,
        &[
            SearchFilter::DriversLicense,
            SearchFilter::Email,
            SearchFilter::Phone
        ]
    );
    assert!(caps.required_fields.is_empty());
    assert!(caps.unreadable_fields.is_empty());
}

/// The exact wire of a create: both partner headers, the raw store key, `POST members`,
/// BLAZE's camelCase member, and its 200 (not 201) taken as the success it is.
#[tokio::test]
async fn a_create_goes_with_both_partner_headers_and_its_200_is_a_success() {
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    let member = json!({
        "id": "65021f000000000000000001", "firstName": "Ann", "lastName": "Lee",
        "email": "Ann.Lee@Example.com", "primaryPhone": "(555) 123-4567", "cpn": "+15551234567",
        "dob": 605_260_800_000_i64 + 8 * 3600 * 1000, "localDob": "1989-03-07", "sex": "FEMALE",
        "status": "Active", "consumerType": "AdultUse",
        "notes": [{"id": "n1", "message": "prefers edibles", "created": 1}],
        "identifications": [{"id": "i1", "licenseNumber": "D1234567"}],
    });
    Mock::given(method("POST"))
        .and(path("/api/v1/partner/members"))
        .and(header("partner_key", "partner-key-123"))
        .and(header("x-api-key", "partner-key-123"))
        .and(header("authorization", "store-key-456"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&member))
        .expect(1)
        .mount(&server)
        .await;
    let blaze = Blaze::connect(
        &json!({"partner_key": "partner-key-123", "store_key": "store-key-456",
                "base_url": format!("{}/api/v1/partner", server.uri())}),
        &Settings::default(),
    )
    .unwrap();
    let created = blaze.create(&ann(), &new_key()).await.unwrap();
    assert_eq!(created.customer_id.as_str(), "65021f000000000000000001");
    assert_eq!(created.status.as_str(), "ACTIVE");
    assert_eq!(created.phone.unwrap().as_str(), "555-123-4567");
    assert_eq!(created.birthday, NaiveDate::from_ymd_opt(1989, 3, 7));
    assert_eq!(created.gender, Some(Gender::Female));
    assert_eq!(created.drivers_license.as_deref(), Some("D1234567"));
    assert_eq!(created.notes.as_deref(), Some("prefers edibles"));

    let requests = server.received_requests().await.unwrap();
    let sent: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"firstName": "Ann", "lastName": "Lee", "email": "Ann.Lee@Example.com",
               "primaryPhone": "(555) 123-4567", "cpn": "+15551234567",
               "localDob": "1989-03-07", "dob": 605_275_200_000_i64, "sex": "FEMALE",
               "identifications": [{"licenseNumber": "D1234567"}],
               "notes": [{"message": "prefers edibles"}], "consumerType": "AdultUse"})
    );
    let authorization = requests[0].headers.get("authorization").unwrap();
    assert!(!authorization.to_str().unwrap().starts_with("Bearer"));
}

#[tokio::test]
async fn a_refused_key_or_permission_is_unauthorized_and_never_retried() {
    let double = double();
    let blaze = connect_with(&double, json!({"store_key": "not-the-shops-key"}));
    let PosError::Unauthorized(response) = blaze.find(&query()).await.unwrap_err() else {
        panic!("expected Unauthorized");
    };
    assert_eq!(response.status, 401);
    assert_eq!(
        response.body["message"],
        "Invalid PARTNER or Developer API Key"
    );
    assert_eq!(double.count(Op::List), 1);

    let blaze = connect(&double);
    double.lack_permission(Op::Search);
    let error = blaze.find(&by_email("ann@example.com")).await.unwrap_err();
    assert!(
        matches!(&error, PosError::Unauthorized(r) if r.status == 403),
        "{error:?}"
    );
    assert_eq!(double.count(Op::Search), 1, "a 403 is not sent again");
    let debug = format!("{blaze:?} {error:?}");
    for secret in [
        &double.credentials().partner_key,
        &double.credentials().store_key,
    ] {
        assert!(!debug.contains(secret.as_str()), "{debug}");
    }
}

// --- fields --------------------------------------------------------------------------------

#[tokio::test]
async fn sex_is_read_as_an_integer_or_a_name_and_written_as_a_name() {
    let double = double();
    let blaze = connect(&double);
    let female = SeedCustomer {
        gender: Some("female".into()),
        ..SeedCustomer::named("Ana", "Diaz")
    };
    let seeded = double.seed_integer_sex(&female);
    assert_eq!(double.member(&seeded).unwrap()["sex"], 1);
    let read = blaze.get(&id(&seeded)).await.unwrap().unwrap();
    assert_eq!(read.gender, Some(Gender::Female));
    for (sex, want) in [
        (json!(0), Some(Gender::Male)),
        (json!(2), Some(Gender::Other)),
        (json!("OTHER"), Some(Gender::Other)),
        (json!(9), None),
        (Value::Null, None),
    ] {
        assert!(double.set_sex(&seeded, sex.clone()));
        let read = blaze.get(&id(&seeded)).await.unwrap().unwrap();
        assert_eq!(read.gender, want, "{sex}");
    }

    // An update that does not name the gender sends the integer back as it came.
    assert!(double.set_sex(&seeded, json!(1)));
    let notes = CustomerPatch {
        notes: Some(Some("likes sativa".into())),
        ..Default::default()
    };
    let updated = blaze.update(&id(&seeded), &notes).await.unwrap();
    assert_eq!(updated.gender, Some(Gender::Female));
    assert_eq!(double.member(&seeded).unwrap()["sex"], 1);
    // One that names it writes the name.
    let male = CustomerPatch {
        gender: Some(Some(Gender::Male)),
        ..Default::default()
    };
    blaze.update(&id(&seeded), &male).await.unwrap();
    assert_eq!(double.member(&seeded).unwrap()["sex"], "MALE");

    // A BLAZE that stores every sex as its code reads the same.
    double.store_sex_as_integer(true);
    let created = blaze.create(&ann(), &new_key()).await.unwrap();
    assert_eq!(created.gender, Some(Gender::Female));
    assert_eq!(
        double.member(created.customer_id.as_str()).unwrap()["sex"],
        1
    );
}

/// `dob` is the shop's local midnight in epoch ms: east of UTC its UTC date is the day before
/// the birthday. We read `localDob`, and write `dob` at noon UTC, which is the birthday in
/// every zone from UTC-12 to UTC+11.
#[tokio::test]
async fn the_birthday_is_local_dob_in_every_shop_time_zone() {
    let double = double();
    let blaze = connect(&double);
    let birthday = NaiveDate::from_ymd_opt(1990, 5, 1);
    // Hawaii, Los Angeles, New York, London, Delhi, Sydney.
    for offset in [-600, -480, -300, 0, 330, 600] {
        assert!(double.set_shop_utc_offset(offset));
        let created = blaze
            .create(
                &NewCustomer {
                    birthday,
                    email: None,
                    phone: None,
                    drivers_license: None,
                    ..ann()
                },
                &new_key(),
            )
            .await
            .unwrap();
        assert_eq!(created.birthday, birthday, "created at UTC{offset:+}min");
        let held = double.member(created.customer_id.as_str()).unwrap();
        assert_eq!(held["localDob"], "1990-05-01", "UTC{offset:+}min");
        assert_eq!(held["dob"].as_i64(), double.dob_for("1990-05-01"));

        // A member the register made (dob at the shop's midnight) reads the same.
        let seeded = double.seed_member(&SeedCustomer {
            birthday: Some("1990-05-01".into()),
            ..SeedCustomer::named("Reg", "Ister")
        });
        let read = blaze.get(&id(&seeded)).await.unwrap().unwrap();
        assert_eq!(read.birthday, birthday, "seeded at UTC{offset:+}min");

        // A new birthday is written the same way, and read back.
        let patch = CustomerPatch {
            birthday: Some(NaiveDate::from_ymd_opt(1991, 12, 31)),
            ..Default::default()
        };
        let updated = blaze.update(&id(&seeded), &patch).await.unwrap();
        assert_eq!(updated.birthday, NaiveDate::from_ymd_opt(1991, 12, 31));
        assert_eq!(double.member(&seeded).unwrap()["localDob"], "1991-12-31");
    }
    // In Sydney the dob's UTC date is the day before: it is never read.
    let sydney = double.seed_member(&SeedCustomer {
        birthday: Some("1990-05-01".into()),
        ..SeedCustomer::named("Syd", "Ney")
    });
    let dob = double.member(&sydney).unwrap()["dob"].as_i64().unwrap();
    let utc_date = chrono::DateTime::from_timestamp_millis(dob)
        .unwrap()
        .date_naive();
    assert_eq!(utc_date, NaiveDate::from_ymd_opt(1990, 4, 30).unwrap());
    let read = blaze.get(&id(&sydney)).await.unwrap().unwrap();
    assert_eq!(read.birthday, birthday);
    // Where the two disagree, localDob is the birthday; without one, there is none.
    let odd = double.seed(json!({"firstName": "Odd", "lastName": "Dates",
                                 "dob": 0, "localDob": "1971-07-04"}));
    let read = blaze.get(&id(&odd)).await.unwrap().unwrap();
    assert_eq!(read.birthday, NaiveDate::from_ymd_opt(1971, 7, 4));
    let none = double.seed(json!({"firstName": "No", "lastName": "Birthday"}));
    assert_eq!(blaze.get(&id(&none)).await.unwrap().unwrap().birthday, None);
}

#[tokio::test]
async fn an_empty_email_is_no_email_and_clearing_one_writes_it() {
    let double = double();
    let blaze = connect(&double);
    let seeded = double.seed_customer(&SeedCustomer::named("No", "Mail"));
    assert_eq!(double.member(&seeded).unwrap()["email"], "");
    let read = blaze.get(&id(&seeded)).await.unwrap().unwrap();
    assert_eq!(read.email, None);

    let created = blaze.create(&ann(), &new_key()).await.unwrap();
    let found = blaze.find(&by_email("ann.lee@example.com")).await.unwrap();
    assert_eq!(found.customers, vec![created.clone()]);
    let patch = CustomerPatch {
        email: Some(None),
        ..Default::default()
    };
    let updated = blaze.update(&created.customer_id, &patch).await.unwrap();
    assert_eq!(updated.email, None);
    assert_eq!(
        double.member(created.customer_id.as_str()).unwrap()["email"],
        ""
    );
    let gone = blaze.find(&by_email("ann.lee@example.com")).await.unwrap();
    assert!(gone.customers.is_empty());
    assert_eq!(gone.next, None);
}

#[tokio::test]
async fn an_email_goes_as_one_percent_encoded_path_segment() {
    let double = double();
    let blaze = connect(&double);
    let odd = "o'neil/x?y#z+tag@example.com";
    let created = blaze
        .create(
            &NewCustomer {
                email: Some(Email::parse(odd).unwrap()),
                ..ann()
            },
            &new_key(),
        )
        .await
        .unwrap();
    let found = blaze.find(&by_email(odd)).await.unwrap();
    assert_eq!(found.customers, vec![created]);
    let call = double
        .calls()
        .into_iter()
        .rfind(|c| c.op == Op::Search)
        .unwrap();
    assert!(
        call.path
            .ends_with("/members/email/o'neil%2Fx%3Fy%23z+tag@example.com"),
        "{}",
        call.path
    );
}

#[tokio::test]
async fn a_phone_blaze_cannot_hold_is_refused_before_any_call() {
    let double = double();
    let blaze = connect(&double);
    let abroad = NewCustomer {
        phone: Some(Phone::parse("+44 20 7946 0958").unwrap()),
        ..ann()
    };
    let PosError::Rejected(errors) = blaze.create(&abroad, &new_key()).await.unwrap_err() else {
        panic!("expected Rejected");
    };
    assert_eq!(errors.get("phone").unwrap(), ["is invalid"]);
    let page = blaze
        .find(&CustomerQuery {
            phone_digits: Some("442079460958".into()),
            ..query()
        })
        .await
        .unwrap();
    assert!(page.customers.is_empty());
    assert_eq!(double.count(Op::Any), 0);

    // A +1 number finds the member whose ten digits BLAZE holds.
    let created = blaze.create(&ann(), &new_key()).await.unwrap();
    let held = double.member(created.customer_id.as_str()).unwrap();
    assert_eq!(
        (&held["primaryPhone"], &held["cpn"]),
        (&json!("(555) 123-4567"), &json!("+15551234567"))
    );
    let page = blaze
        .find(&CustomerQuery {
            phone_digits: Some("15551234567".into()),
            ..query()
        })
        .await
        .unwrap();
    assert_eq!(page.customers, vec![created]);
}

// --- update --------------------------------------------------------------------------------

/// BLAZE's PUT replaces the member: what the kiosk did not name must go back as it was, down
/// to the fields we do not know.
#[tokio::test]
async fn a_put_keeps_every_field_the_kiosk_did_not_name() {
    let double = double();
    let blaze = connect(&double);
    let seeded = double.seed(json!({
        "firstName": "Rosa", "lastName": "Diaz", "middleName": "Q",
        "email": "rosa@example.com", "primaryPhone": "(555) 234-5678", "cpn": "+15552345678",
        "localDob": "1985-06-15", "sex": 1, "status": "Active",
        "consumerType": "MedicinalState", "medical": true, "importId": "legacy-42",
        "address": {"address": "1 Main St", "city": "Los Angeles", "state": "CA", "zipCode": "90001"},
        "identifications": [
            {"licenseNumber": "D7654321", "state": "CA", "type": "Drivers", "localExpirationDate": "2030-01-01"},
            {"licenseNumber": "P123", "type": "Passport"},
        ],
        "notes": [{"message": "first visit", "created": 1000}, {"message": "likes sativa", "created": 2000}],
        "loyaltyPoints": 120, "textOptIn": true,
    }));
    let before = double.member(&seeded).unwrap();
    let rosa = id(&seeded);
    let same_but = |after: &Value, changed: &[&str]| {
        for (key, value) in before.as_object().unwrap() {
            if key != "modified" && !changed.contains(&key.as_str()) {
                assert_eq!(&after[key], value, "{key} was not named");
            }
        }
    };

    // The e-mail only.
    let patch = CustomerPatch {
        email: Some(Email::parse("rosa.d@example.com").ok()),
        ..Default::default()
    };
    let updated = blaze.update(&rosa, &patch).await.unwrap();
    assert_eq!(updated.email.unwrap().as_str(), "rosa.d@example.com");
    assert_eq!(updated.notes.as_deref(), Some("likes sativa"));
    assert_eq!(updated.drivers_license.as_deref(), Some("D7654321"));
    let after = double.member(&seeded).unwrap();
    same_but(&after, &["email"]);
    let put = double
        .calls()
        .into_iter()
        .rfind(|c| c.op == Op::Update)
        .unwrap();
    let sent: Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(sent["loyaltyPoints"], 120, "the whole member went");
    assert_eq!(double.count(Op::Get), 1, "read first");

    // A note is added; the older ones stay.
    let patch = CustomerPatch {
        notes: Some(Some("now prefers tinctures".into())),
        ..Default::default()
    };
    let updated = blaze.update(&rosa, &patch).await.unwrap();
    assert_eq!(updated.notes.as_deref(), Some("now prefers tinctures"));
    let after = double.member(&seeded).unwrap();
    let messages: Vec<&str> = after["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["first visit", "likes sativa", "now prefers tinctures"]
    );
    assert_eq!(after["notes"][0], before["notes"][0]);

    // The licence: the one it was read from changes, its state, type and expiry stay.
    let patch = CustomerPatch {
        drivers_license: Some(Some("D1111111".into())),
        ..Default::default()
    };
    blaze.update(&rosa, &patch).await.unwrap();
    let after = double.member(&seeded).unwrap();
    let mut want = before["identifications"].clone();
    want[0]["licenseNumber"] = json!("D1111111");
    assert_eq!(after["identifications"], want);
    same_but(&after, &["email", "notes", "identifications"]);

    // Clearing the notes and the licence, as the contract's null asks.
    let patch = CustomerPatch {
        notes: Some(None),
        drivers_license: Some(None),
        ..Default::default()
    };
    let updated = blaze.update(&rosa, &patch).await.unwrap();
    assert_eq!((updated.notes, updated.drivers_license), (None, None));
    let after = double.member(&seeded).unwrap();
    assert_eq!(after["notes"], json!([]));
    assert_eq!(
        after["identifications"],
        json!([before["identifications"][1].clone()]),
        "the passport is the member's, not the licence"
    );
    same_but(&after, &["email", "notes", "identifications"]);
    assert_eq!(double.customers().len(), 1);
}

#[tokio::test]
async fn ids_that_are_not_blazes_name_nobody_without_a_call() {
    let double = double();
    let blaze = connect(&double);
    let patch = CustomerPatch {
        notes: Some(Some("x".into())),
        ..Default::default()
    };
    for other in [
        "424242424242",
        "00000000-0000-4000-8000-000000000000",
        "65021F00000000000000000",
    ] {
        assert_eq!(blaze.get(&id(other)).await.unwrap(), None);
        assert_eq!(
            blaze.update(&id(other), &patch).await.unwrap_err(),
            PosError::NotFound
        );
    }
    assert_eq!(double.count(Op::Any), 0);
}

/// BLAZE's answer to an id or e-mail it does not hold is a gap: a 404, its 400 argument error
/// or an empty 204 all mean "nobody".
#[tokio::test]
async fn every_way_blaze_may_say_nobody_is_nobody() {
    let double = double();
    let blaze = connect(&double);
    let unknown = id("65021f00000000000000ffff");
    let patch = CustomerPatch {
        notes: Some(Some("x".into())),
        ..Default::default()
    };
    for missing in [
        Missing::NotFound,
        Missing::InvalidArgument,
        Missing::NoContent,
    ] {
        double.set_missing_answer(missing);
        assert_eq!(blaze.get(&unknown).await.unwrap(), None, "{missing:?}");
        let page = blaze.find(&by_email("nobody@example.com")).await.unwrap();
        assert!(page.customers.is_empty(), "{missing:?}");
        assert_eq!(
            blaze.update(&unknown, &patch).await.unwrap_err(),
            PosError::NotFound,
            "{missing:?}"
        );
    }
    assert_eq!(double.count(Op::Update), 0);
}

// --- errors --------------------------------------------------------------------------------

#[tokio::test]
async fn field_errors_in_either_shape() {
    let double = double();
    let blaze = connect(&double);
    // The older shape names the field: our 422 on it, in the contract's words.
    double.fail(Op::Create, Fault::Invalid, 1);
    let PosError::Rejected(errors) = blaze.create(&ann(), &new_key()).await.unwrap_err() else {
        panic!("expected Rejected");
    };
    assert_eq!(
        serde_json::to_value(&errors).unwrap(),
        json!({"first_name": ["can't be blank"]})
    );
    // A field that is the store's (its consumer type), or the envelope naming none: the
    // operator's to fix, BLAZE's answer as is.
    let wrong_type = connect_with(&double, json!({"consumer_type": "Recreational"}));
    for shape in [ErrorShape::Field, ErrorShape::Envelope] {
        double.set_field_error_shape(shape);
        let error = wrong_type.create(&ann(), &new_key()).await.unwrap_err();
        let PosError::Upstream(response) = &error else {
            panic!("expected Upstream, got {error:?}");
        };
        assert_eq!(response.status, 400);
        assert_eq!(response.body["message"], "Invalid consumer type.");
    }
    assert!(double.customers().is_empty());
    // A configured consumer type BLAZE knows is what a create sends.
    let medical = connect_with(&double, json!({"consumer_type": "MedicinalState"}));
    let created = medical.create(&ann(), &new_key()).await.unwrap();
    assert_eq!(
        double.member(created.customer_id.as_str()).unwrap()["consumerType"],
        "MedicinalState"
    );
}

// --- the list: 7-day windows ----------------------------------------------------------------

/// The query parameters of every list call so far.
fn list_windows(double: &BlazeDouble) -> Vec<(i64, i64, u64)> {
    double
        .calls()
        .into_iter()
        .filter(|c| c.op == Op::List)
        .map(|c| {
            let url = Url::parse(&format!("http://double{}", c.path)).unwrap();
            let param = |name: &str| {
                url.query_pairs()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_else(|| panic!("{name} missing in {}", c.path))
            };
            (
                param("startDate").parse().unwrap(),
                param("endDate").parse().unwrap(),
                param("skip").parse().unwrap(),
            )
        })
        .collect()
}

/// Every id a walk finds from `page`, restarting the adapter (a new process) before each
/// page with only the cursor's text kept, as `pos-gateway sync` does.
async fn walk_restarting(
    double: &BlazeDouble,
    extra: &Value,
    mut page: Option<PageToken>,
    limit: u32,
) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 500, "the walk never ended");
        let saved = page.map(|t| t.0);
        let blaze = connect_with(double, extra.clone());
        let answer = blaze
            .find(&CustomerQuery {
                limit,
                page: saved.map(PageToken),
                ..Default::default()
            })
            .await
            .unwrap();
        ids.extend(
            answer
                .customers
                .iter()
                .map(|c| c.customer_id.as_str().to_owned()),
        );
        match answer.next {
            Some(next) => page = Some(next),
            None => return (ids, pages),
        }
    }
}

#[tokio::test]
async fn the_list_walks_seven_day_windows_back_to_list_from_and_resumes() {
    let double = double();
    let now = now_ms();
    let from = Utc::now().date_naive() - Days::days(3 * 365);
    let floor = from
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    let extra = json!({"list_from": from.format("%Y-%m-%d").to_string()});
    // Five members changed today, one three weeks ago, one twenty weeks ago (beyond what one
    // page looks back), one two years ago, and one before the store's list_from.
    let mut want = BTreeSet::new();
    for n in 1..=5 {
        want.insert(double.seed_customer(&SeedCustomer::numbered(n)));
    }
    for (n, ago) in [(6, 21 * DAY_MS), (7, 140 * DAY_MS), (8, 730 * DAY_MS)] {
        let id = double.seed_customer(&SeedCustomer::numbered(n));
        assert!(double.set_modified(&id, now - ago));
        want.insert(id);
    }
    let too_old = double.seed_customer(&SeedCustomer::numbered(9));
    assert!(double.set_modified(&too_old, floor - DAY_MS));

    let (ids, pages) = walk_restarting(&double, &extra, None, 2).await;
    let found: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(found.len(), ids.len(), "a member came twice: {ids:?}");
    assert_eq!(found, want);
    assert!(pages > 3, "several pages");

    // Every call asked at most seven days, the windows meet without gaps or overlaps from
    // the anchor down to list_from, and BLAZE never refused one.
    let calls = list_windows(&double);
    let mut windows: Vec<(i64, i64)> = calls.iter().map(|(s, e, _)| (*s, *e)).collect();
    windows.dedup();
    for (start, end) in &windows {
        assert!(end - start <= WINDOW_MS && start < end, "{start}..{end}");
    }
    for pair in windows.windows(2) {
        assert_eq!(
            pair[1].1, pair[0].0,
            "the next window ends where one starts"
        );
    }
    assert_eq!(windows.last().unwrap().0, floor);
    assert!(windows[0].1 > now, "the first window reaches now");
    let expected = (windows[0].1 - floor + WINDOW_MS - 1) / WINDOW_MS;
    assert_eq!(windows.len() as i64, expected);
    // The five of today came in pages of two: skip 0, 2, 4.
    let today: Vec<u64> = calls
        .iter()
        .filter(|(_, e, _)| *e == windows[0].1)
        .map(|(_, _, skip)| *skip)
        .collect();
    assert_eq!(today, [0, 2, 4]);
}

#[tokio::test]
async fn a_member_on_a_window_boundary_is_listed_once() {
    let double = double();
    let walk = Walk::since(now_ms() - 3 * WINDOW_MS, now_ms());
    let (boundary, _) = walk.window();
    let on_it = double.seed_customer(&SeedCustomer::numbered(1));
    assert!(double.set_modified(&on_it, boundary));
    let before = double.seed_customer(&SeedCustomer::numbered(2));
    assert!(double.set_modified(&before, boundary - 1));
    let (ids, _) = walk_restarting(&double, &json!({}), Some(walk.token()), 25).await;
    assert_eq!(ids.iter().filter(|id| **id == on_it).count(), 1);
    assert_eq!(ids.iter().filter(|id| **id == before).count(), 1);
    assert_eq!(ids.len(), 2);
}

/// An incremental sync is the same walk with a later floor: what changed since.
#[tokio::test]
async fn a_modified_since_cursor_walks_only_the_recent_windows() {
    let double = double();
    let now = now_ms();
    let recent = double.seed_customer(&SeedCustomer::numbered(1));
    let old = double.seed_customer(&SeedCustomer::numbered(2));
    assert!(double.set_modified(&old, now - 60 * DAY_MS));
    let since = Utc::now() - Days::days(28);
    let (ids, _) =
        walk_restarting(&double, &json!({}), Some(Blaze::modified_since(since)), 25).await;
    assert_eq!(ids, [recent]);
    assert_eq!(
        list_windows(&double).len(),
        5,
        "four weeks (and the clock allowance) are five windows"
    );
}

// --- config ----------------------------------------------------------------------------------

fn config_error(config: Value) -> String {
    match Blaze::connect(&config, &Settings::default()) {
        Err(AdapterError::Config { vendor, message }) => {
            assert_eq!(vendor, Vendor::Blaze);
            message
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn blaze_config_errors_name_the_key_and_never_the_value() {
    let ok = |extra: Value| {
        let mut config = json!({"partner_key": "p-key", "store_key": "s-key"});
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        config
    };
    assert_eq!(
        config_error(json!({"store_key": "s"})),
        "missing key \"partner_key\""
    );
    assert_eq!(
        config_error(json!({"partner_key": "p"})),
        "missing key \"store_key\""
    );
    let message = config_error(ok(json!({"store_key": "clé-secrète"})));
    assert_eq!(message, "key \"store_key\" must be printable ASCII");
    for bad in ["2014/01/01", "1969-12-31", "tomorrow", "2999-01-01"] {
        let message = config_error(ok(json!({"list_from": bad})));
        assert_eq!(
            message, "key \"list_from\" must be a date (YYYY-MM-DD) from 1970-01-01 to today",
            "{bad}"
        );
    }
    assert!(
        Blaze::connect(
            &ok(json!({"list_from": "2019-04-20", "consumer_type": " "})),
            &Settings::default()
        )
        .is_ok()
    );
}

#[test]
fn the_defaults_are_blazes_production_host_and_its_rate_limit() {
    let config = json!({"partner_key": "p-key", "store_key": "s-key"});
    let blaze = Blaze::connect(&config, &Settings::default()).unwrap();
    let debug = format!("{blaze:?}");
    assert!(debug.contains(DEFAULT_BASE_URL), "{debug}");
    assert!(
        debug.contains("rate_limit_per_minute: Some(2000)"),
        "{debug}"
    );
    assert!(debug.contains("consumer_type: \"AdultUse\""), "{debug}");
    assert!(
        !debug.contains("p-key") && !debug.contains("s-key"),
        "{debug}"
    );
    let mut tuned = config.clone();
    tuned["rate_limit_per_minute"] = json!(400);
    let tuned = Blaze::connect(&tuned, &Settings::default()).unwrap();
    assert!(format!("{tuned:?}").contains("rate_limit_per_minute: Some(400)"));
}

/// A BLAZE that answers more members than the page asked never overfills a kiosk's page: what
/// is not taken is read again from the cursor, each member once.
#[tokio::test]
async fn a_page_never_holds_more_than_asked_whatever_blaze_sends() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    let now = now_ms();
    let members: Vec<Value> = (1..=5)
        .map(|n| {
            json!({"id": format!("65021f00000000000000000{n}"), "firstName": format!("M{n}"),
                   "lastName": "Many", "modified": now - 1000})
        })
        .collect();
    for skip in 0..5 {
        // Everything from `skip` on, whatever `limit` said.
        Mock::given(method("GET"))
            .and(path("/api/v1/partner/members"))
            .and(query_param("skip", skip.to_string()))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"values": members[skip..], "skip": skip, "limit": 500, "total": 5}),
            ))
            .mount(&server)
            .await;
    }
    let from = (Utc::now() - Days::days(10)).date_naive();
    let config = json!({"partner_key": "p-key", "store_key": "s-key",
                        "base_url": format!("{}/api/v1/partner", server.uri()),
                        "list_from": from.format("%Y-%m-%d").to_string()});
    let blaze = Blaze::connect(&config, &Settings::default()).unwrap();
    let mut page = None;
    let mut seen = Vec::new();
    loop {
        let answer = blaze
            .find(&CustomerQuery {
                limit: 2,
                page,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(answer.customers.len() <= 2);
        seen.extend(
            answer
                .customers
                .into_iter()
                .map(|c| c.first_name.as_str().to_owned()),
        );
        match answer.next {
            Some(next) => page = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["M1", "M2", "M3", "M4", "M5"]);
}
