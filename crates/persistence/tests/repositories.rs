//! The repositories against real databases: every test in `suite!` runs once on SQLite (a fresh
//! file) and once on PostgreSQL (a fresh database on the server `TEST_DATABASE_URL` names,
//! made and dropped by `testkit::pg::TestDatabase`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use domain::{
    CatalogId, Claim, ClaimToken, CreateKey, CreateLocks, Customer, CustomerDirectory, CustomerId,
    CustomerMirror, CustomerPatch, CustomerQuery, CustomerStatus, DuplicateKeys, Email, Gender,
    IdempotencyKey, IdempotencyStore, NewCustomer, OptionalField, PageToken, PendingCreate,
    PendingCreates, PersonName, Phone, PosError, RepositoryError, SavedOutcome, StoreId,
    StoreRegistry, Vendor,
};
use persistence::{AdminError, Backend, CredentialsKey, Database, IdempotencyRecords, Mirror};
use serde_json::json;
use testkit::pg::TestDatabase;

// ---------------------------------------------------------------------------------------------
// Harness

/// Runs `test` on a migrated SQLite database in a temporary directory; it gets the URL too.
async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Database, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join("nested/dir/test.db").display()
    );
    let db = Database::connect(&url).await.unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    db.migrate().await.unwrap();
    let outcome = tokio::spawn(test(db, url)).await;
    drop(dir);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Runs `test` on a migrated PostgreSQL database of its own, dropped afterwards; it gets the
/// URL too.
async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Database, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let scratch = TestDatabase::create().await;
    let db = Database::connect(scratch.url()).await.unwrap();
    assert_eq!(db.backend(), Backend::Postgres);
    db.migrate().await.unwrap();
    let outcome = tokio::spawn(test(db, scratch.url().to_owned())).await;
    scratch.drop_database().await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Instantiates each listed `async fn(Database)`, and each `async fn(Database, String)` (the
/// database's URL, for plain SQL) listed after `with_url:`, as `sqlite::NAME` and
/// `postgres::NAME`.
macro_rules! suite {
    ($($name:ident),* $(,)?; with_url: $($url_name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::on_sqlite(|db, _| super::$name(db)).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $url_name() {
                    super::on_sqlite(super::$url_name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::on_postgres(|db, _| super::$name(db)).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $url_name() {
                    super::on_postgres(super::$url_name).await;
                }
            )*
        }
    };
}

suite!(
    migrations_are_idempotent_and_ping_answers,
    stores_and_catalogs,
    mirror_upsert_inserts_then_updates,
    mirror_upsert_handles_large_batches_and_repeats,
    mirror_upsert_keeps_what_the_pos_never_gives_back,
    mirror_find_by_each_filter,
    mirror_name_filter_escapes_like_wildcards,
    mirror_pages_do_not_overlap,
    stores_are_isolated,
    find_duplicate_by_each_key,
    mirror_stores_text_without_control_characters,
    mirror_serves_no_customer_a_full_pass_did_not_see,
    mirror_revives_a_tombstoned_customer_on_any_upsert,
    mirror_copies_written_behind_reach_it_and_never_make_it_older,
    local_pos_creates_finds_and_updates,
    local_pos_concurrent_patches_both_apply,
    idempotency_lifecycle,
    idempotency_concurrent_claims_acquire_once,
    idempotency_wait_sees_completion,
    idempotency_expired_records_are_claimed_anew,
    idempotency_abandoned_records_are_taken_over_once,
    idempotency_renewed_claims_are_never_taken_over,
    idempotency_expired_records_are_purged_in_batches,
    local_pos_concurrent_creates_of_one_customer_make_one,
    local_pos_update_to_anothers_email_is_their_duplicate,
    create_locks_are_all_or_none_and_expire,
    settings_keep_the_first_value,
    pending_creates_are_recorded_listed_and_settled,
    settles_and_lock_releases_queued_behind_an_answer_are_all_done,
    pending_create_looks_are_counted_once_and_spaced,
    an_expired_recovery_claim_is_claimable_again,
    sync_leases_are_held_by_one_owner_and_run_out,
    sync_runs_keep_the_latest_start_and_outcome,
    a_removed_store_takes_what_was_kept_for_it;
    with_url:
    credentials_are_encrypted_at_rest,
    credentials_need_the_right_key,
    sealed_configs_do_not_move_between_stores,
    pending_creates_go_with_their_store_and_unreadable_ones_are_reported,
    rekey_reseals_every_store_under_the_new_key,
    rekey_is_all_or_nothing,
    stores_and_catalogs_are_listed_updated_and_removed,
    pending_creates_are_claimed_by_one_replica_at_a_time,
);

// ---------------------------------------------------------------------------------------------
// Values

fn customer(id: &str, first: &str, last: &str) -> Customer {
    Customer {
        status: CustomerStatus::active(),
        customer_id: CustomerId::parse(id).unwrap(),
        first_name: PersonName::parse(first).unwrap(),
        last_name: PersonName::parse(last).unwrap(),
        gender: None,
        birthday: None,
        email: None,
        phone: None,
        drivers_license: None,
        notes: None,
    }
}

fn john() -> Customer {
    Customer {
        gender: Some(Gender::Male),
        birthday: chrono::NaiveDate::from_ymd_opt(1990, 4, 5),
        email: Some(Email::parse("John.Doe@Example.com").unwrap()),
        phone: Some(Phone::parse("(555) 123-4567").unwrap()),
        drivers_license: Some("ab-12 34".to_owned()),
        notes: Some("likes edibles".to_owned()),
        ..customer("c-1", "John", "Doe")
    }
}

fn query() -> CustomerQuery {
    CustomerQuery {
        limit: 25,
        ..Default::default()
    }
}

/// The ids of the first page `query` finds in `store`'s mirror.
async fn found(mirror: &Mirror, store: StoreId, query: &CustomerQuery) -> Vec<String> {
    let page = mirror.find(store, query).await.unwrap();
    page.customers
        .into_iter()
        .map(|c| c.customer_id.as_str().to_owned())
        .collect()
}

fn ids(customers: &[Customer]) -> Vec<&str> {
    customers.iter().map(|c| c.customer_id.as_str()).collect()
}

async fn store(db: &Database, name: &str) -> StoreId {
    db.stores()
        .add_store(name, Vendor::Local, &json!({}))
        .await
        .unwrap()
        .id
}

fn idem(key: &str, fingerprint: &str) -> IdempotencyKey {
    IdempotencyKey {
        scope: "catalog-1:create".to_owned(),
        key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
    }
}

fn saved(outcome: serde_json::Value) -> SavedOutcome {
    SavedOutcome::of(&outcome).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The suite

async fn migrations_are_idempotent_and_ping_answers(db: Database) {
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();
    db.ping().await.unwrap();
    // The tables exist and work after the repeated runs.
    let id = store(&db, "after-migrations").await;
    assert!(db.stores().get_store(id).await.unwrap().is_some());
}

async fn stores_and_catalogs(db: Database) {
    let stores = db.with_credentials_key(Some(credentials_key())).stores();
    let config = json!({"api_key": "secret", "nested": {"n": 1}});
    let store = stores
        .add_store("Main Street", Vendor::Treez, &config)
        .await
        .unwrap();
    assert_eq!(store.name, "Main Street");
    assert_eq!(store.vendor, Vendor::Treez);
    assert_eq!(
        stores.get_store(store.id).await.unwrap(),
        Some(store.clone())
    );
    assert_eq!(
        stores.store_by_name("Main Street").await.unwrap(),
        Some(store.clone())
    );
    assert_eq!(stores.store_by_name("main street").await.unwrap(), None);
    assert_eq!(
        stores.get_store(StoreId(store.id.0 + 1000)).await.unwrap(),
        None
    );
    assert!(matches!(
        stores
            .add_store("Main Street", Vendor::Local, &json!({}))
            .await,
        Err(RepositoryError::Conflict(_))
    ));

    let kiosk = CatalogId::parse("kiosk-1").unwrap();
    stores.add_catalog(store.id, &kiosk).await.unwrap();
    assert_eq!(
        stores.store_for_catalog(&kiosk).await.unwrap(),
        Some(store.clone())
    );
    let unknown = CatalogId::parse("kiosk-2").unwrap();
    assert_eq!(stores.store_for_catalog(&unknown).await.unwrap(), None);

    // Catalog ids are global: not even another store may reuse one.
    let other = stores
        .add_store("Elm Street", Vendor::Local, &json!({}))
        .await
        .unwrap();
    for owner in [store.id, other.id] {
        assert!(matches!(
            stores.add_catalog(owner, &kiosk).await,
            Err(RepositoryError::Conflict(_))
        ));
    }
    match stores.add_catalog(StoreId(987_654), &unknown).await {
        Err(RepositoryError::Other(message)) => assert!(message.contains("no such store")),
        other => panic!("expected an error for an unknown store, got {other:?}"),
    }
    assert_eq!(stores.store_for_catalog(&unknown).await.unwrap(), None);
}

async fn mirror_upsert_inserts_then_updates(db: Database) {
    let mirror = db.mirror();
    let shop = store(&db, "shop").await;
    let jane = customer("c-2", "Jane", "Roe");
    mirror
        .upsert(shop, &[john(), jane.clone()], &[])
        .await
        .unwrap();
    let id = CustomerId::parse("c-1").unwrap();
    assert_eq!(mirror.get(shop, &id).await.unwrap(), Some(john()));

    let changed = Customer {
        status: CustomerStatus::new("inactive"),
        email: Some(Email::parse("new@example.com").unwrap()),
        notes: None,
        gender: None,
        ..john()
    };
    mirror
        .upsert(shop, std::slice::from_ref(&changed), &[])
        .await
        .unwrap();
    assert_eq!(mirror.get(shop, &id).await.unwrap(), Some(changed));
    assert_eq!(
        mirror.get(shop, &jane.customer_id).await.unwrap(),
        Some(jane)
    );
    let page = mirror.find(shop, &query()).await.unwrap();
    assert_eq!(ids(&page.customers), ["c-1", "c-2"], "updated in place");
    // The old e-mail no longer finds anybody.
    let by_old_email = by("email", "john.doe@example.com");
    assert!(found(&mirror, shop, &by_old_email).await.is_empty());
    mirror.upsert(shop, &[], &[]).await.unwrap();
}

/// A vendor that never returns the licence (Dutchie) must not erase the one we gave it: its
/// reads say nothing of it, so the mirror keeps ours, and licence look-ups still find them.
async fn mirror_upsert_keeps_what_the_pos_never_gives_back(db: Database) {
    let mirror = db.mirror();
    let shop = store(&db, "shop").await;
    let id = CustomerId::parse("c-1").unwrap();
    mirror.upsert(shop, &[john()], &[]).await.unwrap();
    let read_back = Customer {
        drivers_license: None,
        notes: None,
        email: Some(Email::parse("john@new.example.com").unwrap()),
        ..john()
    };
    let answered = mirror
        .upsert(
            shop,
            std::slice::from_ref(&read_back),
            &[OptionalField::DriversLicense, OptionalField::Notes],
        )
        .await
        .unwrap();
    let kept = mirror.get(shop, &id).await.unwrap().unwrap();
    assert_eq!(
        answered,
        vec![kept.clone()],
        "the upsert answers the rows as kept"
    );
    assert_eq!(kept.drivers_license, john().drivers_license);
    assert_eq!(kept.notes, john().notes);
    assert_eq!(kept.email, read_back.email, "what the POS said is written");
    let by_license = by("license", john().drivers_license.as_deref().unwrap());
    assert_eq!(found(&mirror, shop, &by_license).await, ["c-1"]);
    // A value the POS does give is written over ours; and an empty one clears where the
    // POS is the one to say (a read of a vendor that returns licences).
    let relicensed = Customer {
        drivers_license: Some("Z999".into()),
        ..read_back.clone()
    };
    mirror
        .upsert(
            shop,
            std::slice::from_ref(&relicensed),
            &[OptionalField::DriversLicense],
        )
        .await
        .unwrap();
    assert_eq!(
        mirror
            .get(shop, &id)
            .await
            .unwrap()
            .unwrap()
            .drivers_license
            .as_deref(),
        Some("Z999")
    );
    mirror
        .upsert(shop, std::slice::from_ref(&read_back), &[])
        .await
        .unwrap();
    assert_eq!(
        mirror
            .get(shop, &id)
            .await
            .unwrap()
            .unwrap()
            .drivers_license,
        None
    );
    assert!(
        found(&mirror, shop, &by("license", "Z999"))
            .await
            .is_empty()
    );
}

async fn mirror_upsert_handles_large_batches_and_repeats(db: Database) {
    let mirror = db.mirror();
    let shop = store(&db, "shop").await;
    let mut batch: Vec<Customer> = (0..1203)
        .map(|i| customer(&format!("id-{i}"), "First", &format!("Last{i}")))
        .collect();
    // The same customer twice in one batch: the last copy wins.
    batch.push(customer("id-7", "Seventh", "Again"));
    mirror.upsert(shop, &batch, &[]).await.unwrap();
    let seventh = mirror
        .get(shop, &CustomerId::parse("id-7").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seventh.first_name.as_str(), "Seventh");
    let last = mirror
        .get(shop, &CustomerId::parse("id-1202").unwrap())
        .await
        .unwrap();
    assert!(last.is_some());
    let mut count = 0;
    let mut q = CustomerQuery {
        limit: 100,
        ..query()
    };
    loop {
        let page = mirror.find(shop, &q).await.unwrap();
        count += page.customers.len();
        match page.next {
            Some(token) => q.page = Some(token),
            None => break,
        }
    }
    assert_eq!(count, 1203);
}

/// A query with one filter: `field` is `phone`, `email`, `license` or `name`.
fn by(field: &str, value: &str) -> CustomerQuery {
    let value = Some(value.to_owned());
    match field {
        "phone" => CustomerQuery {
            phone_digits: value,
            ..query()
        },
        "email" => CustomerQuery {
            email: value,
            ..query()
        },
        "license" => CustomerQuery {
            drivers_license: value,
            ..query()
        },
        "name" => CustomerQuery {
            name: value,
            ..query()
        },
        _ => panic!("no filter {field}"),
    }
}

async fn mirror_find_by_each_filter(db: Database) {
    let mirror = db.mirror();
    let shop = store(&db, "shop").await;
    let jane = Customer {
        email: Some(Email::parse("jane@example.com").unwrap()),
        phone: Some(Phone::parse("555 987 6543").unwrap()),
        drivers_license: Some("ZZ-999".to_owned()),
        ..customer("c-2", "Jane", "Doe")
    };
    let johnny = customer("c-3", "Johnny", "Appleseed");
    let all = [john(), jane, johnny];
    mirror.upsert(shop, &all, &[]).await.unwrap();

    let cases: Vec<(CustomerQuery, Vec<&str>)> = vec![
        (query(), vec!["c-1", "c-2", "c-3"]),
        (by("phone", "5551234567"), vec!["c-1"]),
        (by("phone", "555123456"), vec![]),
        (by("email", "john.doe@example.com"), vec!["c-1"]),
        (by("license", "AB1234"), vec!["c-1"]),
        (by("license", "ab 12-34"), vec!["c-1"]),
        (by("name", "jo"), vec!["c-1", "c-3"]),
        (by("name", "doe"), vec!["c-1", "c-2"]),
        (by("name", "d j"), vec!["c-1", "c-2"]),
        (by("name", "johnny doe"), vec![]),
        (by("name", "ohn"), vec![]),
        (
            CustomerQuery {
                email: Some("jane@example.com".to_owned()),
                ..by("name", "doe")
            },
            vec!["c-2"],
        ),
        (
            CustomerQuery {
                phone_digits: Some("5551234567".to_owned()),
                ..by("name", "jane")
            },
            vec![],
        ),
    ];
    for (q, want) in cases {
        let page = mirror.find(shop, &q).await.unwrap();
        assert_eq!(ids(&page.customers), want, "{q:?}");
        assert_eq!(page.next, None);
        // The domain's own matcher agrees.
        let reference: Vec<&str> = all
            .iter()
            .filter(|c| q.matches(c))
            .map(|c| c.customer_id.as_str())
            .collect();
        assert_eq!(reference, want, "reference for {q:?}");
    }
    // `CustomerQuery::parse` lower-cases the name already; the mirror does not rely on it.
    let page = mirror.find(shop, &by("name", "JOHN")).await.unwrap();
    assert_eq!(ids(&page.customers), ["c-1", "c-3"]);
}

async fn mirror_name_filter_escapes_like_wildcards(db: Database) {
    let mirror = db.mirror();
    let shop = store(&db, "shop").await;
    mirror
        .upsert(
            shop,
            &[
                customer("a", "Ann_Marie", "Smith"),
                customer("b", "Annxmarie", "Smith"),
                customer("c", "100%", "Pure"),
                customer("d", "1000", "Pure"),
                customer("e", "Back\\slash", "Pure"),
                customer("f", "Backxslash", "Pure"),
            ],
            &[],
        )
        .await
        .unwrap();
    for (name, want) in [
        ("ann_", vec!["a"]),
        ("ann", vec!["a", "b"]),
        ("%", vec![]),
        ("100%", vec!["c"]),
        ("_", vec![]),
        ("back\\", vec!["e"]),
    ] {
        let q = CustomerQuery {
            name: Some(name.to_owned()),
            ..query()
        };
        let page = mirror.find(shop, &q).await.unwrap();
        assert_eq!(ids(&page.customers), want, "name {name:?}");
    }
}

async fn mirror_pages_do_not_overlap(db: Database) {
    let mirror = db.mirror();
    let shop = store(&db, "shop").await;
    let other = store(&db, "other").await;
    let five: Vec<Customer> = (1..=5)
        .map(|i| customer(&format!("p-{i}"), "Page", &format!("Person{i}")))
        .collect();
    mirror.upsert(shop, &five, &[]).await.unwrap();
    mirror
        .upsert(other, &[customer("x", "Page", "Other")], &[])
        .await
        .unwrap();

    let mut q = CustomerQuery {
        limit: 2,
        name: Some("page".to_owned()),
        ..query()
    };
    let mut pages = Vec::new();
    loop {
        let page = mirror.find(shop, &q).await.unwrap();
        pages.push(ids(&page.customers).join(","));
        match page.next {
            Some(token) => q.page = Some(token),
            None => break,
        }
        assert!(pages.len() < 10, "pagination does not end");
    }
    assert_eq!(pages, ["p-1,p-2", "p-3,p-4", "p-5"]);

    // Exactly `limit` rows left: no empty extra page.
    let q = CustomerQuery {
        limit: 5,
        ..query()
    };
    assert_eq!(mirror.find(shop, &q).await.unwrap().next, None);

    // A token we never made gives an empty page, not an error.
    let forged = CustomerQuery {
        page: Some(PageToken("not-a-token".to_owned())),
        ..query()
    };
    let page = mirror.find(shop, &forged).await.unwrap();
    assert!(page.customers.is_empty());
    assert_eq!(page.next, None);
}

async fn stores_are_isolated(db: Database) {
    let mirror = db.mirror();
    let a = store(&db, "a").await;
    let b = store(&db, "b").await;
    mirror.upsert(a, &[john()], &[]).await.unwrap();
    let id = john().customer_id;
    assert_eq!(mirror.get(b, &id).await.unwrap(), None);
    assert!(mirror.find(b, &query()).await.unwrap().customers.is_empty());
    let by_email = by("email", "john.doe@example.com");
    assert!(found(&mirror, b, &by_email).await.is_empty());
    assert_eq!(
        mirror
            .find_duplicate(b, &john().duplicate_keys())
            .await
            .unwrap(),
        None
    );
    assert!(db.local_pos(b).get(&id).await.unwrap().is_none());

    // The same POS id in two stores is two customers.
    let other_john = customer("c-1", "Other", "John");
    mirror
        .upsert(b, std::slice::from_ref(&other_john), &[])
        .await
        .unwrap();
    assert_eq!(mirror.get(a, &id).await.unwrap(), Some(john()));
    assert_eq!(mirror.get(b, &id).await.unwrap(), Some(other_john));
}

fn keys(email: Option<&str>, phone_digits: Option<&str>, license: Option<&str>) -> DuplicateKeys {
    DuplicateKeys {
        email: email.map(str::to_owned),
        phone_digits: phone_digits.map(str::to_owned),
        drivers_license: license.map(str::to_owned),
    }
}

async fn find_duplicate_by_each_key(db: Database) {
    let mirror = db.mirror();
    let shop = store(&db, "shop").await;
    let older_twin = Customer {
        email: Some(Email::parse("twin@example.com").unwrap()),
        ..customer("c-0", "Older", "Twin")
    };
    let younger_twin = Customer {
        email: Some(Email::parse("TWIN@example.com").unwrap()),
        ..customer("c-9", "Younger", "Twin")
    };
    mirror
        .upsert(shop, &[older_twin.clone(), john(), younger_twin], &[])
        .await
        .unwrap();
    let nobody = Some("nobody@example.com");
    let cases = [
        (keys(None, None, None), None),
        (keys(Some("john.doe@example.com"), None, None), Some(john())),
        (keys(None, Some("5551234567"), None), Some(john())),
        (keys(None, None, Some("AB1234")), Some(john())),
        // Any one key is enough.
        (
            keys(nobody, Some("0000000000"), Some("AB1234")),
            Some(john()),
        ),
        (keys(nobody, Some("0000000000"), None), None),
        // Several matches: the oldest.
        (keys(Some("twin@example.com"), None, None), Some(older_twin)),
    ];
    for (keys, want) in cases {
        let found = mirror.find_duplicate(shop, &keys).await.unwrap();
        assert_eq!(found, want, "{keys:?}");
    }
}

/// A customer whose licence or notes hold a NUL (which PostgreSQL's text cannot store) or
/// another control character is stored cleaned, not refused: one such customer must not fail
/// the upsert of a whole sync page.
async fn mirror_stores_text_without_control_characters(db: Database) {
    let mirror = db.mirror();
    let shop = store(&db, "shop").await;
    let dirty = Customer {
        drivers_license: Some("AB\u{0}-12\u{7f} 34".to_owned()),
        notes: Some("likes\u{0} edibles\u{7}\r\n\tand tea\u{9b}".to_owned()),
        ..customer("c-1", "John", "Doe")
    };
    let page = [customer("c-0", "Ann", "Lee"), dirty];
    let answered = mirror.upsert(shop, &page, &[]).await.unwrap();
    let stored = mirror
        .get(shop, &page[1].customer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.drivers_license.as_deref(), Some("AB-12 34"));
    assert_eq!(stored.notes.as_deref(), Some("likes edibles\r\n\tand tea"));
    assert_eq!(answered[1], stored, "the answer is what was stored");
    assert_eq!(
        found(&mirror, shop, &by("license", "ab1234")).await,
        ["c-1"]
    );
    assert_eq!(found(&mirror, shop, &query()).await, ["c-0", "c-1"]);
}

/// A moment strictly after every write so far and before every later one.
async fn instant() -> chrono::DateTime<chrono::Utc> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let now = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    now
}

fn with_email(id: &str, email: &str) -> Customer {
    Customer {
        email: Some(Email::parse(email).unwrap()),
        ..customer(id, "Ann", id)
    }
}

async fn all_unseen(
    mirror: &Mirror,
    store: StoreId,
    since: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let batch = mirror.unseen(store, since, after, 1).await.unwrap();
        assert!(batch.ids.len() <= 1);
        ids.extend(batch.ids.iter().map(|id| id.as_str().to_owned()));
        match batch.next {
            Some(next) => after = Some(next),
            None => return ids,
        }
    }
}

/// What a full sync pass did not see (no write since it started) is listed a batch at a time;
/// tombstoned, it is served by no mirror answer (find, search, get, duplicates), and other
/// stores are not touched. A customer written since the pass started (a kiosk's read during
/// the pass) is not tombstoned, whatever the caller asks.
async fn mirror_serves_no_customer_a_full_pass_did_not_see(db: Database) {
    let mirror = db.mirror();
    let shop = store(&db, "shop").await;
    let other = store(&db, "other shop").await;
    let everyone: Vec<Customer> = ["a", "b", "c", "d"]
        .iter()
        .map(|id| with_email(id, &format!("{id}@example.com")))
        .collect();
    mirror.upsert(shop, &everyone, &[]).await.unwrap();
    mirror.upsert(other, &everyone, &[]).await.unwrap();
    let started = instant().await;
    // The pass sees a and c; b and d are gone at the POS.
    mirror
        .upsert(shop, &[everyone[0].clone(), everyone[2].clone()], &[])
        .await
        .unwrap();
    assert_eq!(all_unseen(&mirror, shop, started).await, ["b", "d"]);
    assert_eq!(
        all_unseen(&mirror, shop, chrono::Utc::now()).await,
        ["a", "b", "c", "d"]
    );
    let id = |text: &str| CustomerId::parse(text).unwrap();
    // `a` was seen since the pass started: kept even when named.
    let removed = mirror
        .tombstone(shop, &[id("b"), id("d"), id("a")], started)
        .await
        .unwrap();
    assert_eq!(removed, 2);
    assert_eq!(
        mirror.tombstone(shop, &[id("b")], started).await.unwrap(),
        0,
        "tombstoned once"
    );
    assert_eq!(mirror.get(shop, &id("b")).await.unwrap(), None);
    assert!(mirror.get(shop, &id("a")).await.unwrap().is_some());
    assert_eq!(found(&mirror, shop, &query()).await, ["a", "c"]);
    assert!(
        found(&mirror, shop, &by("email", "b@example.com"))
            .await
            .is_empty()
    );
    assert!(found(&mirror, shop, &by("name", "d")).await.is_empty());
    assert_eq!(
        mirror
            .find_duplicate(shop, &keys(Some("d@example.com"), None, None))
            .await
            .unwrap(),
        None
    );
    assert!(
        all_unseen(&mirror, shop, started).await.is_empty(),
        "tombstones are not unseen"
    );
    // Another store's customers with the same ids are its own.
    assert_eq!(found(&mirror, other, &query()).await, ["a", "b", "c", "d"]);
    assert!(mirror.get(other, &id("b")).await.unwrap().is_some());
}

/// A tombstoned customer written again (a live read, a sync, a duplicate found at the POS)
/// is alive again, with what the POS now says.
/// A read's copy written behind the answer reaches the mirror (and is counted); one written as
/// of a time before a later write, or before the customer was marked deleted, changes nothing.
async fn mirror_copies_written_behind_reach_it_and_never_make_it_older(db: Database) {
    let mirror = db.mirror();
    let shop = store(&db, "shop").await;
    let id = john().customer_id;
    let noted = |notes: &str| Customer {
        notes: Some(notes.to_owned()),
        ..john()
    };
    let notes = |c: Option<Customer>| c.and_then(|c| c.notes);

    mirror.upsert_behind(shop, vec![noted("read"), customer("c-2", "Jane", "Roe")]);
    let began = std::time::Instant::now();
    while db.write_behind_stats().written < 2 {
        assert!(began.elapsed() < Duration::from_secs(10), "never written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        notes(mirror.get(shop, &id).await.unwrap()).as_deref(),
        Some("read")
    );
    assert_eq!(db.write_behind_stats().dropped, 0);

    // Answers of a quiet store, a millisecond apart, share statements: each of its own would
    // be a database round trip per proxied read.
    let before = db.write_behind_stats();
    for n in 0..20 {
        mirror.upsert_behind(shop, vec![customer(&format!("q-{n}"), "Quiet", "Reader")]);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while db.write_behind_stats().written < before.written + 20 {
        assert!(began.elapsed() < Duration::from_secs(10), "never written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let statements = db.write_behind_stats().statements - before.statements;
    assert!(statements <= 10, "20 answers took {statements} statements");

    // Read at `before`, written after an update: the update stays.
    let before = chrono::Utc::now().naive_utc() - chrono::TimeDelta::seconds(5);
    mirror.upsert(shop, &[noted("updated")], &[]).await.unwrap();
    mirror
        .upsert_seen(shop, &[(noted("stale read"), before)])
        .await
        .unwrap();
    assert_eq!(
        notes(mirror.get(shop, &id).await.unwrap()).as_deref(),
        Some("updated")
    );
    // A read newer than the row is written.
    let now = chrono::Utc::now().naive_utc() + chrono::TimeDelta::seconds(1);
    mirror
        .upsert_seen(shop, &[(noted("fresh read"), now)])
        .await
        .unwrap();
    assert_eq!(
        notes(mirror.get(shop, &id).await.unwrap()).as_deref(),
        Some("fresh read")
    );

    // Marked deleted (the POS no longer has it) after the read: it stays deleted.
    let ann = customer("c-3", "Ann", "Lee");
    let long_ago = chrono::Utc::now().naive_utc() - chrono::TimeDelta::seconds(60);
    mirror
        .upsert_seen(shop, &[(ann.clone(), long_ago)])
        .await
        .unwrap();
    let pass = chrono::Utc::now() - chrono::TimeDelta::seconds(30);
    assert_eq!(
        mirror
            .tombstone(shop, std::slice::from_ref(&ann.customer_id), pass)
            .await
            .unwrap(),
        1
    );
    let read_before = chrono::Utc::now().naive_utc() - chrono::TimeDelta::seconds(10);
    mirror
        .upsert_seen(shop, &[(ann.clone(), read_before)])
        .await
        .unwrap();
    assert_eq!(mirror.get(shop, &ann.customer_id).await.unwrap(), None);
}

async fn mirror_revives_a_tombstoned_customer_on_any_upsert(db: Database) {
    let mirror = db.mirror();
    let shop = store(&db, "shop").await;
    mirror.upsert(shop, &[john()], &[]).await.unwrap();
    let started = instant().await;
    let removed = mirror
        .tombstone(shop, std::slice::from_ref(&john().customer_id), started)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(mirror.get(shop, &john().customer_id).await.unwrap(), None);
    let back = Customer {
        notes: Some("back again".to_owned()),
        ..john()
    };
    // Revived by an upsert that keeps what the POS never gives back, too.
    mirror
        .upsert(
            shop,
            std::slice::from_ref(&back),
            &[OptionalField::DriversLicense],
        )
        .await
        .unwrap();
    assert_eq!(
        mirror.get(shop, &john().customer_id).await.unwrap(),
        Some(back.clone())
    );
    assert_eq!(
        found(&mirror, shop, &by("email", "john.doe@example.com")).await,
        ["c-1"]
    );
    assert_eq!(
        mirror
            .find_duplicate(shop, &keys(None, Some("5551234567"), None))
            .await
            .unwrap(),
        Some(back)
    );
    assert!(
        all_unseen(&mirror, shop, started).await.is_empty(),
        "seen again"
    );
}

async fn local_pos_creates_finds_and_updates(db: Database) {
    let shop = store(&db, "local shop").await;
    let pos = db.local_pos(shop);
    assert_eq!(pos.vendor(), Vendor::Local);
    assert_eq!(pos.capabilities(), domain::Capabilities::ALL);
    assert!(pos.is_mirror());

    let new = NewCustomer {
        first_name: PersonName::parse("Ada").unwrap(),
        last_name: PersonName::parse("Lovelace").unwrap(),
        gender: Some(Gender::Female),
        birthday: chrono::NaiveDate::from_ymd_opt(1815, 12, 10),
        email: Some(Email::parse("Ada@Example.com").unwrap()),
        phone: Some(Phone::parse("+44 20 7946 0958").unwrap()),
        drivers_license: Some("LOVE-1815".to_owned()),
        notes: Some("first programmer".to_owned()),
    };
    let created = pos
        .create(&new, &CreateKey::derive(&["test"]))
        .await
        .unwrap();
    assert_eq!(created.status, CustomerStatus::active());
    assert!(uuid::Uuid::parse_str(created.customer_id.as_str()).is_ok());
    assert_eq!(
        created,
        new.clone()
            .into_customer(created.customer_id.clone(), CustomerStatus::active())
    );
    // The same customer again is the first one's duplicate: the insert is the check.
    match pos.create(&new, &CreateKey::derive(&["test"])).await {
        Err(PosError::Duplicate(existing)) => assert_eq!(*existing, created),
        other => panic!("expected a duplicate, got {other:?}"),
    }

    let id = created.customer_id.clone();
    assert_eq!(pos.get(&id).await.unwrap(), Some(created.clone()));
    assert_eq!(
        db.mirror().get(shop, &id).await.unwrap(),
        Some(created.clone())
    );
    let by_email = CustomerQuery {
        email: Some("ada@example.com".to_owned()),
        ..query()
    };
    assert_eq!(pos.find(&by_email).await.unwrap().customers.len(), 1);

    let patch = CustomerPatch {
        first_name: Some(PersonName::parse("Augusta").unwrap()),
        email: Some(None),
        notes: Some(Some("countess".to_owned())),
        ..Default::default()
    };
    let updated = pos.update(&id, &patch).await.unwrap();
    let mut expected = created.clone();
    expected.apply(&patch);
    assert_eq!(updated, expected);
    assert_eq!(updated.email, None);
    assert_eq!(updated.phone, created.phone, "untouched fields stay");
    assert_eq!(pos.get(&id).await.unwrap(), Some(expected));
    // The cleared e-mail and the new name are what searches see.
    assert!(pos.find(&by_email).await.unwrap().customers.is_empty());
    let by_name = CustomerQuery {
        name: Some("augusta".to_owned()),
        ..query()
    };
    assert_eq!(
        ids(&pos.find(&by_name).await.unwrap().customers),
        [id.as_str()]
    );

    let unknown = CustomerId::parse("no-such-customer").unwrap();
    assert_eq!(pos.get(&unknown).await.unwrap(), None);
    assert_eq!(
        pos.update(&unknown, &patch).await.unwrap_err(),
        PosError::NotFound
    );
    // Another store's local POS cannot reach this customer.
    let elsewhere = db.local_pos(store(&db, "elsewhere").await);
    assert_eq!(
        elsewhere.update(&id, &patch).await.unwrap_err(),
        PosError::NotFound
    );
}

async fn local_pos_concurrent_patches_both_apply(db: Database) {
    let shop = store(&db, "shop").await;
    let pos = db.local_pos(shop);
    db.mirror().upsert(shop, &[john()], &[]).await.unwrap();
    let id = john().customer_id;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let pos = pos.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let patch = if i % 2 == 0 {
                CustomerPatch {
                    notes: Some(Some(format!("note {i}"))),
                    ..Default::default()
                }
            } else {
                CustomerPatch {
                    email: Some(None),
                    ..Default::default()
                }
            };
            pos.update(&id, &patch).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let after = pos.get(&id).await.unwrap().unwrap();
    assert_eq!(after.email, None);
    assert!(after.notes.unwrap().starts_with("note "));
}

/// The holder's token of a claim that must have been acquired.
fn acquired(claim: Claim) -> ClaimToken {
    match claim {
        Claim::Acquired(token) => token,
        other => panic!("expected the claim to be acquired, got {other:?}"),
    }
}

async fn idempotency_lifecycle(db: Database) {
    let records = db.idempotency();
    let key = idem("k-1", "body-a");
    let holder = acquired(records.claim(&key).await.unwrap());
    assert_eq!(records.claim(&key).await.unwrap(), Claim::InProgress);
    assert_eq!(
        records.claim(&idem("k-1", "body-b")).await.unwrap(),
        Claim::Mismatch
    );
    // Other scopes and keys are independent.
    acquired(
        records
            .claim(&IdempotencyKey {
                scope: "catalog-2:create".to_owned(),
                ..key.clone()
            })
            .await
            .unwrap(),
    );

    // Only its holder releases it.
    records
        .release(&key, &ClaimToken("someone else".into()))
        .await
        .unwrap();
    assert_eq!(records.claim(&key).await.unwrap(), Claim::InProgress);
    // Released: a retry may go ahead.
    records.release(&key, &holder).await.unwrap();
    let holder = acquired(records.claim(&key).await.unwrap());

    let outcome = saved(json!({"status": 201, "body": {"customer_id": "c-1"}}));
    assert!(records.complete(&key, &holder, &outcome).await.unwrap());
    assert_eq!(
        records.claim(&key).await.unwrap(),
        Claim::Completed(outcome.clone())
    );
    assert_eq!(
        records.claim(&idem("k-1", "body-b")).await.unwrap(),
        Claim::Mismatch
    );
    // A completed outcome is never released, nor completed again.
    records.release(&key, &holder).await.unwrap();
    assert!(
        !records
            .complete(&key, &holder, &saved(json!("other")))
            .await
            .unwrap()
    );
    assert_eq!(
        records.claim(&key).await.unwrap(),
        Claim::Completed(outcome)
    );

    let started = Instant::now();
    let other = idem("k-2", "body");
    acquired(records.claim(&other).await.unwrap());
    assert_eq!(
        records
            .wait(&other, Duration::from_millis(300))
            .await
            .unwrap(),
        Claim::InProgress
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// How many of 20 concurrent claims of `key` got it; the others must see it in progress.
async fn acquired_by_racers(records: &IdempotencyRecords, key: &IdempotencyKey) -> usize {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let records = records.clone();
            let key = key.clone();
            tokio::spawn(async move { records.claim(&key).await })
        })
        .collect();
    let mut acquired = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Claim::Acquired(_) => acquired += 1,
            Claim::InProgress => {}
            other => panic!("unexpected claim {other:?}"),
        }
    }
    acquired
}

async fn idempotency_concurrent_claims_acquire_once(db: Database) {
    let records = db.idempotency();
    for round in 0..3 {
        let key = idem(&format!("race-{round}"), "same body");
        assert_eq!(acquired_by_racers(&records, &key).await, 1, "round {round}");
    }
    // Two claims joined in one task, too.
    let key = idem("joined", "body");
    let (a, b) = tokio::join!(records.claim(&key), records.claim(&key));
    let claims = [a.unwrap(), b.unwrap()];
    assert_eq!(
        claims
            .iter()
            .filter(|c| matches!(c, Claim::Acquired(_)))
            .count(),
        1
    );
    assert!(claims.contains(&Claim::InProgress));
}

async fn idempotency_wait_sees_completion(db: Database) {
    let records = db.idempotency();
    let key = idem("k-wait", "body");
    let holder = acquired(records.claim(&key).await.unwrap());
    let outcome = saved(json!({"done": true}));
    let finisher = {
        let records = records.clone();
        let key = key.clone();
        let outcome = outcome.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            records.complete(&key, &holder, &outcome).await.unwrap();
        })
    };
    let started = Instant::now();
    let claim = records.wait(&key, Duration::from_secs(10)).await.unwrap();
    assert_eq!(claim, Claim::Completed(outcome));
    assert!(started.elapsed() < Duration::from_secs(5));
    finisher.await.unwrap();

    // A released key lets the waiter go ahead.
    let key = idem("k-wait-2", "body");
    let holder = acquired(records.claim(&key).await.unwrap());
    let releaser = {
        let records = records.clone();
        let key = key.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            records.release(&key, &holder).await.unwrap();
        })
    };
    let claim = records.wait(&key, Duration::from_secs(10)).await.unwrap();
    acquired(claim);
    releaser.await.unwrap();
}

async fn idempotency_expired_records_are_claimed_anew(db: Database) {
    let key = idem("old", "body-a");
    let fresh = db.idempotency();
    let expired = db
        .idempotency()
        .with_lifetimes(Duration::ZERO, Duration::from_secs(300));
    let holder = acquired(fresh.claim(&key).await.unwrap());
    fresh
        .complete(&key, &holder, &saved(json!({"n": 1})))
        .await
        .unwrap();
    assert_eq!(
        fresh.claim(&key).await.unwrap(),
        Claim::Completed(saved(json!({"n": 1})))
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Expired: forgotten, even with another body.
    acquired(expired.claim(&idem("old", "body-b")).await.unwrap());
    assert_eq!(fresh.claim(&key).await.unwrap(), Claim::Mismatch);
    assert_eq!(
        fresh.claim(&idem("old", "body-b")).await.unwrap(),
        Claim::InProgress
    );
}

async fn idempotency_abandoned_records_are_taken_over_once(db: Database) {
    let key = idem("stuck", "body");
    let records = db
        .idempotency()
        .with_lifetimes(Duration::from_secs(24 * 3600), Duration::from_secs(1));
    let first = acquired(records.claim(&key).await.unwrap());
    assert_eq!(records.claim(&key).await.unwrap(), Claim::InProgress);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Its process died: exactly one of many takes it over; the rest see it in progress again.
    assert_eq!(acquired_by_racers(&records, &key).await, 1);
    assert_eq!(
        records.claim(&idem("stuck", "other body")).await.unwrap(),
        Claim::Mismatch,
        "a take-over keeps the fingerprint"
    );
    // The first holder, back from the dead, can neither renew nor complete what it lost.
    assert!(!records.renew(&key, &first).await.unwrap());
    assert!(
        !records
            .complete(&key, &first, &saved(json!("stale")))
            .await
            .unwrap()
    );
    assert_eq!(records.claim(&key).await.unwrap(), Claim::InProgress);
}

/// A long request renews its claim: nobody takes it over however long it runs, and only it
/// completes it (issue 13: a slow bulk ran twice).
async fn idempotency_renewed_claims_are_never_taken_over(db: Database) {
    let key = idem("long-bulk", "body");
    let records = db
        .idempotency()
        .with_lifetimes(Duration::from_secs(24 * 3600), Duration::from_millis(600));
    assert_eq!(records.renew_every(), Duration::from_millis(200));
    let holder = acquired(records.claim(&key).await.unwrap());
    for _ in 0..6 {
        tokio::time::sleep(records.renew_every()).await;
        assert!(records.renew(&key, &holder).await.unwrap());
        assert_eq!(
            records.claim(&key).await.unwrap(),
            Claim::InProgress,
            "still its holder's after {} ms",
            600
        );
    }
    assert!(
        records
            .complete(&key, &holder, &saved(json!("done")))
            .await
            .unwrap()
    );
    assert_eq!(
        records.claim(&key).await.unwrap(),
        Claim::Completed(saved(json!("done")))
    );
}

/// Expired records go in bounded batches; live ones stay.
async fn idempotency_expired_records_are_purged_in_batches(db: Database) {
    let live = db.idempotency();
    for n in 0..5 {
        let key = idem(&format!("purge-{n}"), "body");
        let holder = acquired(live.claim(&key).await.unwrap());
        live.complete(&key, &holder, &saved(json!(n)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh_key = idem("kept", "body");
    acquired(live.claim(&fresh_key).await.unwrap());
    let expiring = db
        .idempotency()
        .with_lifetimes(Duration::from_millis(1), Duration::from_secs(300));
    assert_eq!(expiring.purge_expired(2).await.unwrap(), 2);
    assert_eq!(expiring.purge_expired(2).await.unwrap(), 2);
    tokio::time::sleep(Duration::from_millis(5)).await;
    // The last old one and, now past 1 ms, the new one too.
    assert_eq!(expiring.purge_expired(10).await.unwrap(), 2);
    assert_eq!(expiring.purge_expired(10).await.unwrap(), 0);
    // With the real 24 hours nothing is old enough.
    let key = idem("recent", "body");
    acquired(live.claim(&key).await.unwrap());
    assert_eq!(live.purge_expired(10).await.unwrap(), 0);
    assert_eq!(live.claim(&key).await.unwrap(), Claim::InProgress);
}

fn with_phone(email: &str, phone: &str) -> NewCustomer {
    NewCustomer {
        phone: Some(Phone::parse(phone).unwrap()),
        drivers_license: None,
        ..new_customer(email)
    }
}

/// Two kiosks (or two bulk items) creating the same new customer at once make one customer; the
/// others get that one as a duplicate (issue 13: both got 201).
async fn local_pos_concurrent_creates_of_one_customer_make_one(db: Database) {
    let shop = store(&db, "shop").await;
    let pos = db.local_pos(shop);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let pos = pos.clone();
            // The same e-mail, written differently; each its own phone.
            let customer = with_phone(
                if i % 2 == 0 { "same@b.co" } else { "SAME@b.co" },
                &format!("555-010-{:04}", 1000 + i),
            );
            tokio::spawn(async move { pos.create(&customer, &CreateKey::derive(&["k"])).await })
        })
        .collect();
    let (mut created, mut duplicates) = (Vec::new(), Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            Ok(customer) => created.push(customer),
            Err(PosError::Duplicate(existing)) => duplicates.push(*existing),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created.len(), 1, "one customer made");
    assert_eq!(duplicates.len(), 7);
    assert!(
        duplicates
            .iter()
            .all(|d| d.customer_id == created[0].customer_id)
    );
    // By phone or licence alike.
    let by_phone = with_phone("other@b.co", "555-010-1000");
    let other = pos.create(&by_phone, &CreateKey::derive(&["k"])).await;
    assert!(matches!(other, Err(PosError::Duplicate(_))) == (created[0].phone == by_phone.phone));
    // Another store may have the same customer.
    let other_shop = store(&db, "other shop").await;
    db.local_pos(other_shop)
        .create(
            &with_phone("same@b.co", "555-010-1000"),
            &CreateKey::derive(&["k"]),
        )
        .await
        .unwrap();
}

async fn local_pos_update_to_anothers_email_is_their_duplicate(db: Database) {
    let shop = store(&db, "shop").await;
    let pos = db.local_pos(shop);
    let key = CreateKey::derive(&["k"]);
    let first = pos
        .create(&with_phone("first@b.co", "555-010-0001"), &key)
        .await
        .unwrap();
    let second = pos
        .create(&with_phone("second@b.co", "555-010-0002"), &key)
        .await
        .unwrap();
    let patch = CustomerPatch {
        email: Some(Some(Email::parse("FIRST@b.co").unwrap())),
        ..Default::default()
    };
    match pos.update(&second.customer_id, &patch).await {
        Err(PosError::Duplicate(existing)) => assert_eq!(existing.customer_id, first.customer_id),
        other => panic!("expected the first customer as a duplicate, got {other:?}"),
    }
    // Nothing changed; its own e-mail may be written again.
    let own = CustomerPatch {
        email: Some(Some(Email::parse("second@b.co").unwrap())),
        notes: Some(Some("kept".into())),
        ..Default::default()
    };
    let updated = pos.update(&second.customer_id, &own).await.unwrap();
    assert_eq!(updated.notes.as_deref(), Some("kept"));
}

async fn create_locks_are_all_or_none_and_expire(db: Database) {
    let shop = store(&db, "shop").await;
    let locks = db.create_locks();
    let keys = |email: &str, phone: &str| DuplicateKeys {
        email: Some(email.into()),
        phone_digits: Some(phone.into()),
        drivers_license: None,
    };
    let hour = Duration::from_secs(3600);
    let first = locks
        .acquire(shop, &keys("a@b.co", "5550100001"), hour, Duration::ZERO)
        .await
        .unwrap()
        .expect("free keys are taken");
    // One shared key is enough to wait; the other key is not left half-taken.
    let started = Instant::now();
    let blocked = locks
        .acquire(
            shop,
            &keys("b@b.co", "5550100001"),
            hour,
            Duration::from_millis(200),
        )
        .await
        .unwrap();
    assert!(blocked.is_none());
    assert!(started.elapsed() >= Duration::from_millis(200));
    locks
        .acquire(shop, &keys("b@b.co", "5550100002"), hour, Duration::ZERO)
        .await
        .unwrap()
        .expect("b@b.co was given back");
    // Released: a waiter gets them.
    let waiter = {
        let locks = locks.clone();
        tokio::spawn(async move {
            locks
                .acquire(
                    shop,
                    &keys("a@b.co", "5550100009"),
                    hour,
                    Duration::from_secs(10),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    locks.release(&first).await.unwrap();
    assert!(waiter.await.unwrap().unwrap().is_some());
    // A lease that ran out (its holder died) is anybody's.
    locks
        .acquire(
            shop,
            &keys("c@b.co", "5550100003"),
            Duration::ZERO,
            Duration::ZERO,
        )
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        locks
            .acquire(shop, &keys("c@b.co", "5550100004"), hour, Duration::ZERO)
            .await
            .unwrap()
            .is_some()
    );
    // Other stores are independent.
    let other = store(&db, "other").await;
    assert!(
        locks
            .acquire(other, &keys("b@b.co", "5550100002"), hour, Duration::ZERO)
            .await
            .unwrap()
            .is_some()
    );
}

async fn settings_keep_the_first_value(db: Database) {
    let settings = db.settings();
    assert_eq!(settings.get("secret").await.unwrap(), None);
    assert_eq!(
        settings.get_or_insert("secret", "first").await.unwrap(),
        "first"
    );
    assert_eq!(
        settings.get_or_insert("secret", "second").await.unwrap(),
        "first"
    );
    assert_eq!(
        settings.get("secret").await.unwrap().as_deref(),
        Some("first")
    );

    // Racing callers agree on one value.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let settings = db.settings();
            tokio::spawn(async move { settings.get_or_insert("raced", &format!("v{i}")).await })
        })
        .collect();
    let mut values = HashSet::new();
    for task in tasks {
        values.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(values.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Credentials at rest

const TOP_SECRET: &str = "sk_live_TOPSECRET";

fn credentials_key() -> CredentialsKey {
    CredentialsKey::parse("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
        .unwrap()
}

fn secret_config() -> serde_json::Value {
    json!({"dispensary": "main-street", "client_id": "kiosk-client", "api_key": TOP_SECRET})
}

#[derive(diesel::QueryableByName)]
struct RawConfig {
    #[diesel(sql_type = diesel::sql_types::Text)]
    config: String,
}

/// Runs plain SQL on a connection of its own to the database at `url`; returns the `config`
/// column of the rows a `SELECT config ...` answers (nothing for other statements).
async fn raw_sql(url: &str, sql: &str) -> Vec<String> {
    let query = diesel::sql_query(sql);
    let rows: Vec<RawConfig> = match url.strip_prefix("sqlite://") {
        Some(path) => {
            let mut conn = diesel_async::sync_connection_wrapper::SyncConnectionWrapper::<
                diesel::SqliteConnection,
            >::establish(path)
            .await
            .unwrap();
            if sql.starts_with("SELECT") {
                query.load(&mut conn).await.unwrap()
            } else {
                query.execute(&mut conn).await.unwrap();
                Vec::new()
            }
        }
        None => {
            let mut conn = AsyncPgConnection::establish(url).await.unwrap();
            if sql.starts_with("SELECT") {
                query.load(&mut conn).await.unwrap()
            } else {
                query.execute(&mut conn).await.unwrap();
                Vec::new()
            }
        }
    };
    rows.into_iter().map(|row| row.config).collect()
}

async fn raw_config(url: &str, store: StoreId) -> String {
    let rows = raw_sql(
        url,
        &format!("SELECT config FROM stores WHERE id = {store}"),
    )
    .await;
    assert_eq!(rows.len(), 1, "store {store}");
    rows.into_iter().next().unwrap()
}

async fn credentials_are_encrypted_at_rest(db: Database, url: String) {
    let stores = db.with_credentials_key(Some(credentials_key())).stores();
    let store = stores
        .add_store("Main Street", Vendor::Treez, &secret_config())
        .await
        .unwrap();
    assert_eq!(*store.config, secret_config());
    let kiosk = CatalogId::parse("kiosk-1").unwrap();
    stores.add_catalog(store.id, &kiosk).await.unwrap();

    let raw = raw_config(&url, store.id).await;
    assert!(raw.starts_with("v1:"), "{raw}");
    for plain in [
        TOP_SECRET,
        "TOPSECRET",
        "kiosk-client",
        "main-street",
        "api_key",
    ] {
        assert!(
            !raw.contains(plain),
            "{plain} is readable in the database: {raw}"
        );
    }

    let found = stores.store_for_catalog(&kiosk).await.unwrap().unwrap();
    assert_eq!(*found.config, secret_config());
    assert_eq!(found, store);
    assert_eq!(
        stores.get_store(store.id).await.unwrap(),
        Some(store.clone())
    );
    assert!(!format!("{found:?}").contains("TOPSECRET"));

    // A store without credentials is stored as plain `{}`.
    let local = stores
        .add_store("Elm Street", Vendor::Local, &json!({}))
        .await
        .unwrap();
    assert_eq!(raw_config(&url, local.id).await, "{}");
}

async fn credentials_need_the_right_key(db: Database, url: String) {
    // No key: stores without credentials work; credentials are refused, and nothing is written.
    let keyless = db.clone().with_credentials_key(None).stores();
    let local = keyless
        .add_store("Local", Vendor::Local, &json!({}))
        .await
        .unwrap();
    assert_eq!(keyless.get_store(local.id).await.unwrap(), Some(local));
    match keyless
        .add_store("Main Street", Vendor::Treez, &secret_config())
        .await
    {
        Err(RepositoryError::Other(message)) => {
            assert!(
                message.contains("POS_GATEWAY_CREDENTIALS_KEY must be set"),
                "{message}"
            );
        }
        other => panic!("a config without a key was not refused: {other:?}"),
    }
    assert_eq!(keyless.store_by_name("Main Street").await.unwrap(), None);
    assert_eq!(raw_sql(&url, "SELECT config FROM stores").await, ["{}"]);

    // Stored with one key: read without a key, or with another, it is an error, not a panic.
    let stores = db
        .clone()
        .with_credentials_key(Some(credentials_key()))
        .stores();
    let store = stores
        .add_store("Main Street", Vendor::Treez, &secret_config())
        .await
        .unwrap();
    let kiosk = CatalogId::parse("kiosk-1").unwrap();
    stores.add_catalog(store.id, &kiosk).await.unwrap();
    match keyless.store_for_catalog(&kiosk).await {
        Err(RepositoryError::Other(message)) => {
            assert!(message.contains("POS_GATEWAY_CREDENTIALS_KEY"), "{message}");
            assert!(!message.contains("TOPSECRET"), "{message}");
        }
        other => panic!("read without a key: {other:?}"),
    }
    let wrong = db
        .clone()
        .with_credentials_key(Some(CredentialsKey::from_bytes(&[42; 32])))
        .stores();
    for read in [
        wrong.store_for_catalog(&kiosk).await,
        wrong.get_store(store.id).await,
        wrong.store_by_name("Main Street").await,
    ] {
        match read {
            Err(RepositoryError::Corrupt(message)) => {
                assert!(message.contains("cannot be decrypted"), "{message}");
                assert!(!message.contains("TOPSECRET"), "{message}");
            }
            other => panic!("read with the wrong key: {other:?}"),
        }
    }
    // The right key still reads it.
    assert_eq!(
        stores
            .store_for_catalog(&kiosk)
            .await
            .unwrap()
            .unwrap()
            .config,
        secret_config().into()
    );
}

async fn sealed_configs_do_not_move_between_stores(db: Database, url: String) {
    let stores = db.with_credentials_key(Some(credentials_key())).stores();
    let a = stores
        .add_store("A", Vendor::Treez, &secret_config())
        .await
        .unwrap();
    let b = stores
        .add_store(
            "B",
            Vendor::Treez,
            &json!({"dispensary": "b", "client_id": "b", "api_key": "b"}),
        )
        .await
        .unwrap();
    raw_sql(
        &url,
        &format!(
            "UPDATE stores SET config = (SELECT config FROM stores WHERE id = {}) WHERE id = {}",
            a.id, b.id
        ),
    )
    .await;
    assert!(matches!(
        stores.get_store(b.id).await,
        Err(RepositoryError::Corrupt(_))
    ));
    assert_eq!(stores.get_store(a.id).await.unwrap(), Some(a));

    // Nor may anyone with write access put credentials in the clear in place of sealed ones.
    raw_sql(
        &url,
        &format!(
            "UPDATE stores SET config = '{{\"base_url\": \"https://attacker.example\"}}' WHERE id = {}",
            b.id
        ),
    )
    .await;
    match stores.get_store(b.id).await {
        Err(RepositoryError::Corrupt(message)) => {
            assert!(!message.contains("attacker"), "{message}");
        }
        other => panic!("a plain config was accepted: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Connecting

#[tokio::test]
async fn unknown_schemes_are_refused_by_name() {
    let error = Database::connect("mysql://root:hunter2@localhost/pos")
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("sqlite://"), "{message}");
    assert!(message.contains("postgres://"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{error:?}").contains("hunter2"));
}

#[tokio::test]
async fn a_relative_sqlite_path_is_created() {
    let dir = tempfile::tempdir().unwrap();
    // Relative to the working directory: use a path relative to the current one.
    let cwd = std::env::current_dir().unwrap();
    let relative = pathdiff(dir.path(), &cwd).join("sub/rel.db");
    let db = Database::connect(&format!("sqlite://{}", relative.display()))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    db.ping().await.unwrap();
    db.settings().get_or_insert("k", "v").await.unwrap();
    assert!(dir.path().join("sub/rel.db").exists());
    // Every connection is in WAL mode.
    assert!(dir.path().join("sub/rel.db-wal").exists());
}

/// `path` relative to `base` (both absolute), with `..` where needed.
fn pathdiff(path: &std::path::Path, base: &std::path::Path) -> std::path::PathBuf {
    let path: Vec<_> = path.components().collect();
    let base: Vec<_> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut relative = std::path::PathBuf::new();
    for _ in common..base.len() {
        relative.push("..");
    }
    for part in &path[common..] {
        relative.push(part);
    }
    relative
}

#[tokio::test]
async fn an_unreachable_postgres_fails_fast_without_its_password() {
    for url in [
        // Nothing listens on port 1.
        "postgres://pos:hunter2@127.0.0.1:1/pos",
        // A non-routable address: nobody answers at all.
        "postgresql://pos:hunter2@10.255.255.1:5432/pos?connect_timeout=30",
    ] {
        let started = Instant::now();
        let error = Database::connect(url).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{url} took {:?}",
            started.elapsed()
        );
        let text = format!("{error} {error:?}");
        assert!(text.contains("PostgreSQL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ping_fails_fast_once_the_database_is_gone() {
    let scratch = TestDatabase::create().await;
    let db = Database::connect(scratch.url()).await.unwrap();
    db.ping().await.unwrap();
    scratch.drop_database().await.unwrap();
    let started = Instant::now();
    let error = db.ping().await.unwrap_err();
    assert!(
        matches!(error, RepositoryError::Unavailable(_)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

// ---------------------------------------------------------------------------------------------
// The outbox of vendor creates

fn new_customer(email: &str) -> NewCustomer {
    NewCustomer {
        first_name: PersonName::parse("Jane").unwrap(),
        last_name: PersonName::parse("Roe").unwrap(),
        gender: Some(Gender::Female),
        birthday: chrono::NaiveDate::from_ymd_opt(1985, 2, 3),
        email: Some(Email::parse(email).unwrap()),
        phone: Some(Phone::parse("+1 (555) 010-0001").unwrap()),
        drivers_license: Some("D123-456".to_owned()),
        notes: Some("prefers \"quotes\" and ünïcödé".to_owned()),
    }
}

/// A moment for entries to age past a short `older_than`. `YOUNG` must outlast the few
/// statements between a look and the next (a loaded machine took more than 20 ms).
const AGED: Duration = Duration::from_millis(700);
const YOUNG: Duration = Duration::from_millis(300);
/// A claim that holds nothing: the entries are claimable again at once.
const NO_LEASE: Duration = Duration::ZERO;

fn emails(entries: &[PendingCreate]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            e.customer
                .as_ref()
                .unwrap()
                .email
                .as_ref()
                .unwrap()
                .as_str()
                .to_owned()
        })
        .collect()
}

/// A create's settle and lock release are queued behind its answer; many at once (a burst of
/// creates) are all done, none dropped.
async fn settles_and_lock_releases_queued_behind_an_answer_are_all_done(db: Database) {
    let shop = store(&db, "shop").await;
    let (outbox, locks) = (db.outbox(), db.create_locks());
    let hour = Duration::from_secs(3600);
    let keys = |n: usize| DuplicateKeys {
        email: Some(format!("c{n}@b.co")),
        phone_digits: Some(format!("55501{n:05}")),
        drivers_license: None,
    };
    const BURST: usize = 600;
    let mut leases = Vec::new();
    for n in 0..BURST {
        outbox
            .record(shop, &new_customer(&format!("c{n}@b.co")))
            .await
            .unwrap();
        leases.push(
            locks
                .acquire(shop, &keys(n), hour, Duration::ZERO)
                .await
                .unwrap()
                .expect("free keys"),
        );
    }
    tokio::time::sleep(AGED).await;
    let entries = outbox.claim_orphans(YOUNG, NO_LEASE, 1000).await.unwrap();
    assert_eq!(entries.len(), BURST);
    for (entry, lease) in entries.iter().zip(leases) {
        outbox.settle_behind(entry.id);
        locks.release_behind(lease);
    }
    // Every key is free again: each waiter gets its keys within the wait.
    for n in [0, BURST / 2, BURST - 1] {
        assert!(
            locks
                .acquire(shop, &keys(n), hour, Duration::from_secs(10))
                .await
                .unwrap()
                .is_some(),
            "key {n} released"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = outbox
            .claim_orphans(Duration::ZERO, NO_LEASE, 1000)
            .await
            .unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} entries still journaled after 10 s",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn pending_creates_are_recorded_listed_and_settled(db: Database) {
    let outbox = db.outbox();
    let (a, b) = (store(&db, "A").await, store(&db, "B").await);
    let before = chrono::Utc::now();
    let first = outbox
        .record(a, &new_customer("one@example.com"))
        .await
        .unwrap();
    let second = outbox
        .record(b, &new_customer("two@example.com"))
        .await
        .unwrap();
    let third = outbox
        .record(a, &new_customer("three@example.com"))
        .await
        .unwrap();
    assert!(first < second && second < third, "ids grow");

    // Young entries are a request still at work: not orphans yet.
    assert!(
        outbox
            .claim_orphans(Duration::from_secs(3600), NO_LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(AGED).await;
    let orphans = outbox.claim_orphans(YOUNG, NO_LEASE, 10).await.unwrap();
    assert_eq!(
        emails(&orphans),
        ["one@example.com", "two@example.com", "three@example.com"],
        "oldest first"
    );
    let one = &orphans[0];
    assert_eq!((one.id, one.store, one.attempts), (first, a, 0));
    assert_eq!(
        one.customer,
        Ok(new_customer("one@example.com")),
        "every field reads back"
    );
    assert_eq!(orphans[1].store, b);
    assert!(one.recorded_at >= before - chrono::TimeDelta::seconds(1));
    assert!(one.recorded_at <= chrono::Utc::now());
    assert_eq!(
        emails(&outbox.claim_orphans(YOUNG, NO_LEASE, 2).await.unwrap()).len(),
        2,
        "limit"
    );

    outbox.settle(first).await.unwrap();
    outbox.settle(first).await.unwrap(); // already gone: fine
    assert_eq!(
        emails(&outbox.claim_orphans(YOUNG, NO_LEASE, 10).await.unwrap()),
        ["two@example.com", "three@example.com"]
    );
    outbox.settle(second).await.unwrap();
    outbox.settle(third).await.unwrap();
    assert!(
        outbox
            .claim_orphans(Duration::ZERO, NO_LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // The store registry finds stores by id too, for recovery.
    let stores = db.stores();
    assert_eq!(stores.store_by_id(a).await.unwrap().unwrap().name, "A");
    assert!(
        stores
            .store_by_id(StoreId(a.0 + 1000))
            .await
            .unwrap()
            .is_none()
    );
}

async fn pending_create_looks_are_counted_once_and_spaced(db: Database) {
    let outbox = db.outbox();
    let a = store(&db, "A").await;
    let looked = outbox
        .record(a, &new_customer("looked@example.com"))
        .await
        .unwrap();
    let postponed = outbox
        .record(a, &new_customer("later@example.com"))
        .await
        .unwrap();
    tokio::time::sleep(AGED).await;
    let orphans = outbox.claim_orphans(YOUNG, NO_LEASE, 10).await.unwrap();
    assert_eq!(orphans.len(), 2);
    let entry = orphans.into_iter().find(|e| e.id == looked).unwrap();

    // Two instances that looked at the same entry count one attempt.
    outbox.note_attempt(&entry).await.unwrap();
    outbox.note_attempt(&entry).await.unwrap();
    outbox.postpone(postponed).await.unwrap();
    assert!(
        outbox
            .claim_orphans(YOUNG, NO_LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "just looked at: not again before `older_than`"
    );
    tokio::time::sleep(AGED).await;
    let orphans = outbox.claim_orphans(YOUNG, NO_LEASE, 10).await.unwrap();
    assert_eq!(orphans.len(), 2);
    let again = orphans.iter().find(|e| e.id == looked).unwrap();
    assert_eq!(again.attempts, 1);
    let later = orphans.iter().find(|e| e.id == postponed).unwrap();
    assert_eq!(later.attempts, 0, "a postponed look is not an attempt");

    outbox.note_attempt(again).await.unwrap();
    tokio::time::sleep(AGED).await;
    let orphans = outbox.claim_orphans(YOUNG, NO_LEASE, 10).await.unwrap();
    assert_eq!(orphans.iter().find(|e| e.id == looked).unwrap().attempts, 2);
}

/// Two replicas (a pool each on one database), each with two recovery tasks claiming three
/// entries at a time until there are none: every entry is claimed once, by one of them.
async fn pending_creates_are_claimed_by_one_replica_at_a_time(db: Database, url: String) {
    let a = store(&db, "A").await;
    let mut recorded = HashSet::new();
    for n in 0..60 {
        let email = format!("c{n}@example.com");
        recorded.insert(db.outbox().record(a, &new_customer(&email)).await.unwrap());
    }
    let other_replica = Database::connect(&url).await.unwrap();
    tokio::time::sleep(AGED).await;
    let claimers = [
        db.outbox(),
        db.outbox(),
        other_replica.outbox(),
        other_replica.outbox(),
    ];
    let tasks = claimers.map(|outbox| {
        tokio::spawn(async move {
            let mut claimed = Vec::new();
            // Bounded: without claims, the same entries would come back for ever.
            for _ in 0..40 {
                let batch = outbox
                    .claim_orphans(YOUNG, Duration::from_secs(60), 3)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break;
                }
                claimed.extend(batch.into_iter().map(|entry| entry.id));
                tokio::task::yield_now().await;
            }
            claimed
        })
    });
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut per_claimer = Vec::new();
    for task in tasks {
        let claimed = task.await.unwrap();
        total += claimed.len();
        per_claimer.push(claimed.len());
        seen.extend(claimed);
    }
    assert_eq!(
        total,
        seen.len(),
        "an entry was claimed twice: {per_claimer:?}"
    );
    assert_eq!(seen, recorded, "every entry claimed");
    assert!(
        db.outbox()
            .claim_orphans(YOUNG, Duration::from_secs(60), 100)
            .await
            .unwrap()
            .is_empty(),
        "all claimed for a minute"
    );
}

/// A replica that claimed entries and died leaves them to the others once its claim ran out.
async fn an_expired_recovery_claim_is_claimable_again(db: Database) {
    let outbox = db.outbox();
    let a = store(&db, "A").await;
    let one = outbox
        .record(a, &new_customer("one@example.com"))
        .await
        .unwrap();
    let two = outbox
        .record(a, &new_customer("two@example.com"))
        .await
        .unwrap();
    tokio::time::sleep(AGED).await;
    const LEASE: Duration = Duration::from_millis(400);
    let claimed: Vec<_> = outbox
        .claim_orphans(YOUNG, LEASE, 10)
        .await
        .unwrap()
        .iter()
        .map(|entry| entry.id)
        .collect();
    assert_eq!(claimed, [one, two], "oldest first");
    assert!(
        outbox
            .claim_orphans(YOUNG, LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "held while the claim lasts"
    );
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    let again = outbox.claim_orphans(YOUNG, LEASE, 1).await.unwrap();
    assert_eq!(
        (again.len(), again[0].id, again[0].attempts),
        (1, one, 0),
        "the claim ran out: claimable again, nothing counted"
    );
    let rest = outbox.claim_orphans(YOUNG, LEASE, 10).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), [two]);
}

/// A store's sync lease: one owner at a time (the same owner may take it again), renewed only
/// by its owner, anybody's once it ran out, given up by its owner only; two owners racing for
/// a free lease, one gets it. Each store has its own.
async fn sync_leases_are_held_by_one_owner_and_run_out(db: Database) {
    let leases = db.sync_leases();
    let (a, b) = (store(&db, "A").await, store(&db, "B").await);
    const LEASE: Duration = Duration::from_millis(400);
    assert!(leases.acquire(a, "one", LEASE).await.unwrap());
    assert!(!leases.acquire(a, "two", LEASE).await.unwrap(), "held");
    assert!(
        leases.acquire(a, "one", LEASE).await.unwrap(),
        "its owner's"
    );
    assert!(
        leases.acquire(b, "two", LEASE).await.unwrap(),
        "a lease per store"
    );
    let held = leases.held().await.unwrap();
    assert_eq!(
        held.iter()
            .map(|l| (l.store, l.owner.as_str()))
            .collect::<Vec<_>>(),
        [(a, "one"), (b, "two")]
    );
    assert!(held[0].until > chrono::Utc::now());
    assert!(
        !leases.renew(a, "two", LEASE).await.unwrap(),
        "not its owner"
    );
    assert!(
        leases
            .renew(a, "one", Duration::from_secs(60))
            .await
            .unwrap()
    );
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    assert!(!leases.acquire(a, "two", LEASE).await.unwrap(), "renewed");
    // B's owner died: its lease ran out and is anybody's, and its old owner can't renew it.
    assert_eq!(leases.held().await.unwrap().len(), 1);
    assert!(leases.acquire(b, "three", LEASE).await.unwrap(), "ran out");
    assert!(!leases.renew(b, "two", LEASE).await.unwrap(), "taken over");
    leases.release(a, "two").await.unwrap();
    assert!(
        !leases.acquire(a, "two", LEASE).await.unwrap(),
        "only its owner gives it up"
    );
    leases.release(a, "one").await.unwrap();
    assert!(leases.acquire(a, "two", LEASE).await.unwrap(), "given up");

    // Racing for a free lease, from two pools: one wins.
    let c = store(&db, "C").await;
    let racers: Vec<_> = (0..8)
        .map(|n| {
            let leases = db.sync_leases();
            tokio::spawn(async move {
                leases
                    .acquire(c, &format!("racer {n}"), Duration::from_secs(60))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        won += usize::from(racer.await.unwrap());
    }
    assert_eq!(won, 1);
}

/// A store's last run: its start (kept when the run fails to finish), the kind of pass it
/// works on, what the latest finished run did, and where the store is synced through (moved on
/// by a completed pass only, a full one also moving the last full pass); one row per store,
/// gone with the store.
async fn sync_runs_keep_the_latest_start_and_outcome(db: Database) {
    use persistence::{CompletedPass, PassKind, SyncOutcome, SyncResult};
    let runs = db.sync_runs();
    let (a, b) = (store(&db, "A").await, store(&db, "B").await);
    assert_eq!(runs.of(a).await.unwrap(), None);
    let first = runs.started(a, PassKind::Full).await.unwrap();
    let run = runs.of(a).await.unwrap().unwrap();
    assert_eq!(
        (run.started_at, run.finished_at, run.result.clone()),
        (first, None, None)
    );
    assert_eq!(
        (run.kind, run.synced_through, run.full_pass_at),
        (Some(PassKind::Full), None, None)
    );
    assert!(run.unfinished());
    let ok = SyncResult {
        outcome: SyncOutcome::Ok,
        copied: 230,
        removed: 2,
        error: None,
        completed: Some(CompletedPass {
            kind: PassKind::Full,
            started_at: first,
        }),
    };
    runs.finished(a, &ok).await.unwrap();
    let run = runs.of(a).await.unwrap().unwrap();
    assert!(!run.unfinished());
    assert_eq!(
        run.result
            .as_ref()
            .map(|r| (r.outcome, r.copied, r.removed)),
        Some((SyncOutcome::Ok, 230, 2))
    );
    assert_eq!(
        (run.synced_through, run.full_pass_at),
        (Some(first), Some(first))
    );
    assert!(run.finished_at.unwrap() >= first);

    // A second run starts: the first's outcome stays until it finishes.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = runs.started(a, PassKind::Incremental).await.unwrap();
    let run = runs.of(a).await.unwrap().unwrap();
    assert!(run.started_at == second && second > first && run.unfinished());
    assert_eq!(run.kind, Some(PassKind::Incremental));
    assert_eq!(
        run.result.as_ref().map(|r| r.outcome),
        Some(SyncOutcome::Ok)
    );
    let failed = SyncResult {
        outcome: SyncOutcome::Failed,
        copied: 100,
        removed: 0,
        error: Some("the POS refused the store's credentials".into()),
        completed: None,
    };
    runs.finished(a, &failed).await.unwrap();
    let run = runs.of(a).await.unwrap().unwrap();
    assert_eq!(
        (run.synced_through, run.full_pass_at),
        (Some(first), Some(first)),
        "a run that completed no pass moves nothing on"
    );

    // An incremental pass completed: synced through its start; the last full pass stays.
    let third = runs.started(a, PassKind::Incremental).await.unwrap();
    let incremental = SyncResult {
        outcome: SyncOutcome::Ok,
        copied: 3,
        removed: 0,
        error: None,
        completed: Some(CompletedPass {
            kind: PassKind::Incremental,
            started_at: third,
        }),
    };
    runs.finished(a, &incremental).await.unwrap();
    let run = runs.of(a).await.unwrap().unwrap();
    assert_eq!(
        (run.synced_through, run.full_pass_at),
        (Some(third), Some(first))
    );

    runs.started(b, PassKind::Full).await.unwrap();
    let all = runs.all().await.unwrap();
    assert_eq!(all.iter().map(|r| r.store).collect::<Vec<_>>(), [a, b]);
    assert_eq!(all[0].result.as_ref().map(|r| r.copied), Some(3));

    db.stores().remove_store(b, true).await.unwrap();
    assert_eq!(runs.all().await.unwrap().len(), 1, "gone with its store");
}

async fn pending_creates_go_with_their_store_and_unreadable_ones_are_reported(
    db: Database,
    url: String,
) {
    let outbox = db.outbox();
    let (a, b) = (store(&db, "A").await, store(&db, "B").await);
    outbox
        .record(a, &new_customer("a@example.com"))
        .await
        .unwrap();
    let kept = outbox
        .record(b, &new_customer("b@example.com"))
        .await
        .unwrap();
    let broken = outbox
        .record(b, &new_customer("c@example.com"))
        .await
        .unwrap();
    raw_sql(&url, &format!("DELETE FROM stores WHERE id = {a}")).await;
    raw_sql(
        &url,
        &format!(
            "UPDATE pending_creates SET customer = '{{\"first_name\": \"\"}}' WHERE id = {broken}"
        ),
    )
    .await;
    tokio::time::sleep(AGED).await;
    let orphans = outbox.claim_orphans(YOUNG, NO_LEASE, 10).await.unwrap();
    assert_eq!(
        orphans.iter().map(|e| e.id).collect::<Vec<_>>(),
        [kept, broken],
        "store A's entry went with it"
    );
    assert!(orphans[0].customer.is_ok());
    match &orphans[1].customer {
        Err(RepositoryError::Corrupt(message)) => {
            assert!(message.contains(&broken.to_string()), "{message}")
        }
        other => panic!("expected a corrupt entry, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The operator's day two: rekey, and the store and catalog lifecycle

async fn all_configs(url: &str) -> Vec<String> {
    raw_sql(url, "SELECT config FROM stores ORDER BY id").await
}

async fn rekey_reseals_every_store_under_the_new_key(db: Database, url: String) {
    let (old, new) = (credentials_key(), CredentialsKey::from_bytes(&[9; 32]));
    let under_old = db.clone().with_credentials_key(Some(old.clone())).stores();
    let a = under_old
        .add_store("A", Vendor::Treez, &secret_config())
        .await
        .unwrap();
    let local = under_old
        .add_store("Local", Vendor::Local, &json!({}))
        .await
        .unwrap();
    let b = under_old
        .add_store("B", Vendor::Cova, &json!({"api_key": "cova-secret"}))
        .await
        .unwrap();
    let before = all_configs(&url).await;

    assert_eq!(under_old.rekey(&old, &new).await.unwrap(), [a.id, b.id]);

    let under_new = db.clone().with_credentials_key(Some(new.clone())).stores();
    assert_eq!(under_new.get_store(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(under_new.get_store(b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(under_new.get_store(local.id).await.unwrap(), Some(local));
    assert!(matches!(
        under_old.get_store(a.id).await,
        Err(RepositoryError::Corrupt(_))
    ));
    let after = all_configs(&url).await;
    assert_ne!(after[0], before[0]);
    assert_eq!(
        after[1], "{}",
        "a config without credentials stays as it is"
    );
    assert!(after.iter().all(|raw| !raw.contains("TOPSECRET")));

    // Run again by mistake: refused, naming the first store, and saying why.
    match under_old.rekey(&old, &new).await {
        Err(error @ AdminError::DoesNotOpen { store, .. }) => {
            assert_eq!(store, a.id);
            let message = error.to_string();
            assert!(
                message.contains("sealed under the new key already"),
                "{message}"
            );
        }
        other => panic!("a second rekey: {other:?}"),
    }
    assert_eq!(all_configs(&url).await, after);
}

async fn rekey_is_all_or_nothing(db: Database, url: String) {
    let (old, new) = (credentials_key(), CredentialsKey::from_bytes(&[9; 32]));
    let stray = CredentialsKey::from_bytes(&[3; 32]);
    let under_old = db.clone().with_credentials_key(Some(old.clone())).stores();
    let first = under_old
        .add_store("First", Vendor::Treez, &secret_config())
        .await
        .unwrap();
    // Sealed under a key that is neither: say, added by an instance with another key.
    let odd = db
        .clone()
        .with_credentials_key(Some(stray))
        .stores()
        .add_store("Odd", Vendor::Treez, &secret_config())
        .await
        .unwrap();
    let last = under_old
        .add_store("Last", Vendor::Flowhub, &json!({"key": "flowhub-secret"}))
        .await
        .unwrap();
    let before = all_configs(&url).await;

    match under_old.rekey(&old, &new).await {
        Err(error @ AdminError::DoesNotOpen { store, .. }) => {
            assert_eq!(store, odd.id);
            let message = error.to_string();
            assert!(
                message.contains(&format!("store {} (\"Odd\")", odd.id)),
                "{message}"
            );
            assert!(
                message.contains("does not open with the old key"),
                "{message}"
            );
            assert!(message.contains("nothing was changed"), "{message}");
            assert!(!message.contains("TOPSECRET"), "{message}");
        }
        other => panic!("a store that does not open must stop the rekey: {other:?}"),
    }
    // Not even the store before it was re-sealed.
    assert_eq!(all_configs(&url).await, before);
    assert_eq!(under_old.get_store(first.id).await.unwrap(), Some(first));
    assert_eq!(under_old.get_store(last.id).await.unwrap(), Some(last));
}

async fn stores_and_catalogs_are_listed_updated_and_removed(db: Database, url: String) {
    let stores = db
        .clone()
        .with_credentials_key(Some(credentials_key()))
        .stores();
    let main = stores
        .add_store("Main Street", Vendor::Treez, &secret_config())
        .await
        .unwrap();
    let local = stores
        .add_store("Elm Street", Vendor::Local, &json!({}))
        .await
        .unwrap();
    let kiosk = |id: &str| CatalogId::parse(id).unwrap();
    for (store, catalog) in [
        (main.id, "kiosk-2"),
        (main.id, "kiosk-1"),
        (local.id, "elm"),
    ] {
        stores.add_catalog(store, &kiosk(catalog)).await.unwrap();
    }

    let listed = stores.list_stores().await.unwrap();
    let shown: Vec<_> = listed
        .iter()
        .map(|s| {
            (
                s.id,
                s.name.as_str(),
                s.vendor,
                s.has_credentials,
                s.catalogs.clone(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                main.id,
                "Main Street",
                Vendor::Treez,
                true,
                vec![kiosk("kiosk-1"), kiosk("kiosk-2")]
            ),
            (
                local.id,
                "Elm Street",
                Vendor::Local,
                false,
                vec![kiosk("elm")]
            ),
        ]
    );
    assert!(!format!("{listed:?}").contains("TOPSECRET"));
    // Listing needs no key: it opens no config.
    let keyless = db.clone().with_credentials_key(None).stores();
    assert_eq!(keyless.list_stores().await.unwrap(), listed);

    // A new config, sealed again; the old one need not open (a lost key is recovered so).
    let rotated = json!({"dispensary": "main-street", "client_id": "kiosk-client", "api_key": "sk_live_ROTATED"});
    let updated = stores.update_config(main.id, &rotated).await.unwrap();
    assert_eq!(updated.id, main.id);
    assert!(updated.has_credentials);
    assert!(updated.updated_at >= listed[0].updated_at);
    assert_eq!(
        stores.get_store(main.id).await.unwrap().unwrap().config,
        rotated.clone().into()
    );
    let raw = raw_config(&url, main.id).await;
    assert!(raw.starts_with("v1:") && !raw.contains("ROTATED"), "{raw}");
    assert!(matches!(
        keyless.update_config(main.id, &secret_config()).await,
        Err(AdminError::Repository(RepositoryError::Other(m))) if m.contains("POS_GATEWAY_CREDENTIALS_KEY")
    ));
    assert!(matches!(
        stores.update_config(StoreId(987_654), &rotated).await,
        Err(AdminError::StoreNotFound(StoreId(987_654)))
    ));

    let catalog_ids = |list: Vec<persistence::CatalogSummary>| {
        list.into_iter()
            .map(|c| (c.id.as_str().to_owned(), c.store))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        catalog_ids(stores.list_catalogs(None).await.unwrap()),
        [
            ("elm".to_owned(), local.id),
            ("kiosk-1".to_owned(), main.id),
            ("kiosk-2".to_owned(), main.id),
        ]
    );
    assert_eq!(
        catalog_ids(stores.list_catalogs(Some(local.id)).await.unwrap()),
        [("elm".to_owned(), local.id)]
    );
    assert!(matches!(
        stores.list_catalogs(Some(StoreId(987_654))).await,
        Err(AdminError::StoreNotFound(_))
    ));

    let removed = stores.remove_catalog(&kiosk("kiosk-2")).await.unwrap();
    assert_eq!((removed.id, removed.store), (kiosk("kiosk-2"), main.id));
    assert_eq!(
        stores.store_for_catalog(&kiosk("kiosk-2")).await.unwrap(),
        None
    );
    assert!(matches!(
        stores.remove_catalog(&kiosk("kiosk-2")).await,
        Err(AdminError::CatalogNotFound(_))
    ));

    // Refused while a catalog uses it: nothing goes.
    match stores.remove_store(main.id, false).await {
        Err(error @ AdminError::StoreInUse { .. }) => {
            assert_eq!(
                error.to_string(),
                format!("store {} is used by catalog kiosk-1", main.id)
            );
        }
        other => panic!("a store in use was removed: {other:?}"),
    }
    assert!(stores.get_store(main.id).await.unwrap().is_some());
    assert!(
        stores
            .store_for_catalog(&kiosk("kiosk-1"))
            .await
            .unwrap()
            .is_some()
    );

    let removed = stores.remove_store(main.id, true).await.unwrap();
    assert_eq!(removed.catalogs, [kiosk("kiosk-1")]);
    assert_eq!(
        (removed.name.as_str(), removed.vendor),
        ("Main Street", Vendor::Treez)
    );
    assert_eq!(stores.get_store(main.id).await.unwrap(), None);
    assert_eq!(
        stores.store_for_catalog(&kiosk("kiosk-1")).await.unwrap(),
        None
    );
    assert!(matches!(
        stores.remove_store(main.id, true).await,
        Err(AdminError::StoreNotFound(_))
    ));
    // The catalog id is free again.
    stores
        .add_catalog(local.id, &kiosk("kiosk-1"))
        .await
        .unwrap();
}

async fn a_removed_store_takes_what_was_kept_for_it(db: Database) {
    let stores = db.stores();
    let (gone, kept) = (store(&db, "Gone").await, store(&db, "Kept").await);
    // `_` is a LIKE wildcard: kiosk_1's records must not take kioskX1's with them.
    let (gone_kiosk, kept_kiosk) = (
        CatalogId::parse("kiosk_1").unwrap(),
        CatalogId::parse("kioskX1").unwrap(),
    );
    stores.add_catalog(gone, &gone_kiosk).await.unwrap();
    stores.add_catalog(kept, &kept_kiosk).await.unwrap();
    let mirror = db.mirror();
    for store in [gone, kept] {
        mirror.upsert(store, &[john()], &[]).await.unwrap();
        db.outbox()
            .record(store, &new_customer("journaled@example.com"))
            .await
            .unwrap();
    }
    let records = db.idempotency();
    let key_of = |catalog: &CatalogId| IdempotencyKey {
        scope: format!("{catalog}:create"),
        key: "k-1".to_owned(),
        fingerprint: "body".to_owned(),
    };
    for catalog in [&gone_kiosk, &kept_kiosk] {
        acquired(records.claim(&key_of(catalog)).await.unwrap());
    }

    // A `local` store's customers exist nowhere else: that needs --force too.
    match stores.remove_store(gone, false).await {
        Err(AdminError::StoreInUse { catalogs, .. }) => {
            assert_eq!(catalogs, std::slice::from_ref(&gone_kiosk))
        }
        other => panic!("{other:?}"),
    }
    stores.remove_catalog(&gone_kiosk).await.unwrap();
    match stores.remove_store(gone, false).await {
        Err(error @ AdminError::HoldsCustomers { customers: 1, .. }) => {
            assert!(error.to_string().contains("exist nowhere else"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    stores.add_catalog(gone, &gone_kiosk).await.unwrap();
    acquired(records.claim(&key_of(&gone_kiosk)).await.unwrap());

    let removed = stores.remove_store(gone, true).await.unwrap();
    assert_eq!(
        (
            removed.catalogs.clone(),
            removed.customers,
            removed.pending_creates
        ),
        (vec![gone_kiosk.clone()], 1, 1)
    );

    // Its mirror, journal and idempotency records went with it; the other store's stayed.
    assert!(found(&mirror, gone, &query()).await.is_empty());
    assert_eq!(found(&mirror, kept, &query()).await, ["c-1"]);
    tokio::time::sleep(AGED).await;
    let journal: Vec<StoreId> = db
        .outbox()
        .claim_orphans(YOUNG, NO_LEASE, 10)
        .await
        .unwrap()
        .iter()
        .map(|entry| entry.store)
        .collect();
    assert_eq!(journal, [kept]);
    assert!(
        matches!(
            records.claim(&key_of(&gone_kiosk)).await.unwrap(),
            Claim::Acquired(_)
        ),
        "the removed catalog's record is gone"
    );
    assert_eq!(
        records.claim(&key_of(&kept_kiosk)).await.unwrap(),
        Claim::InProgress,
        "the other catalog's record stays"
    );
}
