//! Use-case tests against mockall mocks of every port.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use mockall::predicate::eq;

use super::read::Cursor;
use super::*;
use crate::customer::{
    Customer, CustomerForm, CustomerId, CustomerPatch, CustomerStatus, Input, NewCustomer,
};
use crate::error::{PosError, RepositoryError};
use crate::ports::{
    Capabilities, CatalogId, Claim, ClaimToken, CreateKey, CreateLease, IdempotencyKey, Operation,
    SavedOutcome, Store, Vendor,
};
use crate::ports::{
    MockCreateLocks, MockCustomerDirectory, MockCustomerMirror, MockIdempotencyStore,
    MockPendingCreates, MockPosConnections, MockStoreRegistry, PendingCreate, PendingCreateId,
    StoreId,
};
use crate::query::CustomerPage;
use crate::query::{CustomerQuery, PageToken};
use crate::validation::{FieldError, ValidationErrors};

fn catalog() -> CatalogId {
    CatalogId::parse("kiosk-1").unwrap()
}

fn store(vendor: Vendor) -> Store {
    Store {
        id: StoreId(7),
        name: "Main St".into(),
        vendor,
        config: serde_json::json!({}).into(),
    }
}

fn new_customer(email: &str) -> NewCustomer {
    let form = CustomerForm {
        first_name: Input::Text("John".into()),
        last_name: Input::Text("Doe".into()),
        email: Input::Text(email.into()),
        phone: Input::Text("555-123-4567".into()),
        ..Default::default()
    };
    NewCustomer::parse(&form, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).unwrap()
}

fn customer(id: &str, email: &str) -> Customer {
    new_customer(email).into_customer(CustomerId::parse(id).unwrap(), CustomerStatus::active())
}

fn token() -> ClaimToken {
    ClaimToken("holder-1".into())
}

fn key() -> IdempotencyKey {
    IdempotencyKey {
        scope: "kiosk-1:create".into(),
        key: "k1".into(),
        fingerprint: "f1".into(),
    }
}

/// The ports of one test; each test sets the expectations it cares about, then calls `build`.
struct Ports {
    stores: MockStoreRegistry,
    mirror: MockCustomerMirror,
    idempotency: MockIdempotencyStore,
    pending: MockPendingCreates,
    locks: MockCreateLocks,
    directory: MockCustomerDirectory,
    vendor: Vendor,
}

impl Ports {
    /// A vendor POS (not the mirror) that can do everything.
    fn vendor_pos() -> Self {
        Self::with_vendor(Vendor::Treez, false)
    }

    fn with_vendor(vendor: Vendor, is_mirror: bool) -> Self {
        let mut stores = MockStoreRegistry::new();
        stores
            .expect_store_for_catalog()
            .returning(move |c| Ok((c.as_str() == "kiosk-1").then(|| store(vendor))));
        stores
            .expect_store_by_id()
            .returning(move |id| Ok((id == StoreId(7)).then(|| store(vendor))));
        let mut directory = MockCustomerDirectory::new();
        directory.expect_vendor().return_const(vendor);
        directory.expect_is_mirror().return_const(is_mirror);
        // Every create gets its locks at once unless a test says otherwise.
        let mut locks = MockCreateLocks::new();
        locks.expect_acquire().returning(|store, _, _, _| {
            Ok(Some(CreateLease {
                store,
                owner: "holder-1".into(),
                keys: vec!["k".into()],
            }))
        });
        locks.expect_release_behind().return_const(());
        let mut idempotency = MockIdempotencyStore::new();
        idempotency
            .expect_renew_every()
            .return_const(Duration::from_secs(60));
        Self {
            stores,
            mirror: MockCustomerMirror::new(),
            idempotency,
            pending: MockPendingCreates::new(),
            locks,
            directory,
            vendor,
        }
    }

    /// The create is journaled once, as entry 11 of store 7, and that entry settled `settled`
    /// times (0: left for recovery).
    fn expect_journal(&mut self, settled: usize) {
        self.pending
            .expect_record()
            .withf(|store, c| *store == StoreId(7) && c.first_name.as_str() == "John")
            .times(1)
            .returning(|_, _| Ok(PendingCreateId(11)));
        self.pending
            .expect_settle_behind()
            .with(eq(PendingCreateId(11)))
            .times(settled)
            .return_const(());
    }

    fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.directory
            .expect_capabilities()
            .return_const(capabilities);
        self
    }

    fn build(self) -> CustomerService {
        let directory: Arc<dyn CustomerDirectory> = Arc::new(self.directory);
        let mut connections = MockPosConnections::new();
        let vendor = self.vendor;
        connections.expect_directory_for().returning(move |s| {
            assert_eq!(s.vendor, vendor);
            Ok(directory.clone())
        });
        CustomerService::new(
            Arc::new(self.stores),
            Arc::new(self.mirror),
            Arc::new(self.idempotency),
            Arc::new(self.pending),
            Arc::new(connections),
            Arc::new(self.locks),
            ServiceSettings {
                bulk_concurrency: 2,
                idempotency_wait: Duration::from_millis(10),
                reconcile_after: Duration::from_millis(1),
                orphan_age: ORPHAN_AGE,
                recovery_attempts: 3,
                recovery_lease: RECOVERY_LEASE,
            },
        )
    }
}

/// What the mirror answers when a lost create or a journaled one is looked for by identity
/// (every key at once, a page of candidates).
fn mirror_by_identity(ports: &mut Ports, customers: Vec<Customer>) {
    ports
        .mirror
        .expect_find()
        .withf(|_, q| q.limit == 25)
        .returning(move |_, _| {
            Ok(CustomerPage {
                customers: customers.clone(),
                next: None,
            })
        });
}

const ORPHAN_AGE: Duration = Duration::from_secs(7);
const RECOVERY_LEASE: Duration = Duration::from_secs(5);

fn unavailable() -> PosError {
    PosError::Unavailable {
        vendor: Vendor::Treez,
        message: "503".into(),
        retry_after: None,
        response: None,
    }
}

#[tokio::test]
async fn create_writes_to_the_pos_once_and_copies_to_the_mirror() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports.expect_journal(1);
    ports
        .mirror
        .expect_find_duplicate()
        .times(1)
        .returning(|_, _| Ok(None));
    ports
        .directory
        .expect_find()
        .times(2)
        .returning(|_| Ok(CustomerPage::default()));
    ports.directory.expect_create().times(1).returning(|c, _| {
        Ok(c.clone()
            .into_customer(CustomerId::parse("42").unwrap(), CustomerStatus::active()))
    });
    ports
        .mirror
        .expect_upsert()
        .withf(|store, cs, _| {
            *store == StoreId(7) && cs.len() == 1 && cs[0].customer_id.as_str() == "42"
        })
        .times(1)
        .returning(|_, cs, _| Ok(cs.to_vec()));
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("john@example.com"), None)
        .await;
    match outcome.unwrap() {
        CreateOutcome::Created(c) => assert_eq!(c.customer_id.as_str(), "42"),
        other => panic!("expected Created, got {other:?}"),
    }
}

/// The key a vendor gets for one create, for each way a kiosk may send it.
async fn create_key_of(idempotency: Option<IdempotencyKey>) -> CreateKey {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports.expect_journal(1);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    ports
        .directory
        .expect_find()
        .returning(|_| Ok(CustomerPage::default()));
    let recorder = seen.clone();
    ports
        .directory
        .expect_create()
        .times(1)
        .returning(move |c, key| {
            *recorder.lock().unwrap() = Some(*key);
            Ok(c.clone()
                .into_customer(CustomerId::parse("42").unwrap(), CustomerStatus::active()))
        });
    ports
        .mirror
        .expect_upsert()
        .returning(|_, cs, _| Ok(cs.to_vec()));
    if idempotency.is_some() {
        ports
            .idempotency
            .expect_claim()
            .returning(|_| Ok(Claim::Acquired(token())));
        ports
            .idempotency
            .expect_complete()
            .returning(|_, _, _| Ok(true));
    }
    ports
        .build()
        .create(
            &catalog(),
            new_customer("john@example.com"),
            idempotency.as_ref(),
        )
        .await
        .unwrap();
    seen.lock().unwrap().expect("the POS got a key")
}

#[tokio::test]
async fn a_kiosk_retry_gives_the_vendor_the_same_create_key() {
    let first = create_key_of(Some(key())).await;
    let retry = create_key_of(Some(key())).await;
    assert_eq!(
        first, retry,
        "the same Idempotency-Key, the same vendor key"
    );
    let other = create_key_of(Some(IdempotencyKey {
        key: "k2".into(),
        ..key()
    }))
    .await;
    assert_ne!(first, other);
    // The same key with another request (reused after its 24 h) is another create.
    let reused = create_key_of(Some(IdempotencyKey {
        fingerprint: "another body".into(),
        ..key()
    }))
    .await;
    assert_ne!(first, reused);
    // Without one, every create is its own.
    assert_ne!(create_key_of(None).await, create_key_of(None).await);
    assert_eq!(first.to_string().len(), 36, "a GUID as vendors want it");
}

#[tokio::test]
async fn a_duplicate_the_pos_refuses_is_a_409_with_its_customer() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports.expect_journal(1);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    ports
        .directory
        .expect_find()
        .returning(|_| Ok(CustomerPage::default()));
    ports.directory.expect_create().times(1).returning(|_, _| {
        Err(PosError::Duplicate(Box::new(customer(
            "9",
            "john@example.com",
        ))))
    });
    ports
        .mirror
        .expect_upsert()
        .withf(|_, cs, _| cs.len() == 1 && cs[0].customer_id.as_str() == "9")
        .times(1)
        .returning(|_, cs, _| Ok(cs.to_vec()));
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("john@example.com"), None)
        .await;
    match outcome.unwrap() {
        CreateOutcome::AlreadyExists(c) => assert_eq!(c.customer_id.as_str(), "9"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

#[tokio::test]
async fn a_duplicate_in_the_mirror_stops_the_create_before_the_pos() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .mirror
        .expect_find_duplicate()
        .withf(|_, keys| {
            keys.email.as_deref() == Some("john@example.com")
                && keys.phone_digits.as_deref() == Some("5551234567")
        })
        .returning(|_, _| Ok(Some(customer("9", "john@example.com"))));
    ports.directory.expect_create().never();
    ports.directory.expect_find().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("JOHN@example.com"), None)
        .await;
    assert_eq!(
        outcome.unwrap(),
        CreateOutcome::AlreadyExists(customer("9", "john@example.com"))
    );
}

#[tokio::test]
async fn a_duplicate_found_by_pos_search_is_reported_and_mirrored() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    // One search per key (e-mail and phone), at once; the e-mail's finds the customer.
    ports.directory.expect_find().times(2).returning(|q| {
        Ok(match q.email.as_deref() {
            Some(email) => {
                assert_eq!(email, "john@example.com");
                CustomerPage {
                    customers: vec![customer("5", "john@example.com")],
                    next: None,
                }
            }
            None => CustomerPage::default(),
        })
    });
    ports
        .mirror
        .expect_upsert()
        .times(1)
        .returning(|_, cs, _| Ok(cs.to_vec()));
    ports.directory.expect_create().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("john@example.com"), None)
        .await;
    assert!(
        matches!(outcome.unwrap(), CreateOutcome::AlreadyExists(c) if c.customer_id.as_str() == "5")
    );
}

#[tokio::test]
async fn the_local_pos_is_not_searched_twice_nor_mirrored() {
    let mut ports = Ports::with_vendor(Vendor::Local, true).capabilities(Capabilities::ALL);
    // The local POS's insert is its own duplicate check: one statement, no look-up first.
    ports.mirror.expect_find_duplicate().never();
    ports.directory.expect_find().never();
    ports.mirror.expect_upsert().never();
    ports.pending.expect_record().never();
    ports.directory.expect_create().times(1).returning(|c, _| {
        Ok(c.clone()
            .into_customer(CustomerId::parse("1").unwrap(), CustomerStatus::active()))
    });
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), None)
        .await;
    assert!(matches!(outcome.unwrap(), CreateOutcome::Created(_)));
}

#[tokio::test]
async fn an_unsupported_create_never_reaches_the_pos() {
    let caps = Capabilities {
        create_customer: false,
        ..Capabilities::ALL
    };
    let mut ports = Ports::vendor_pos().capabilities(caps);
    ports.directory.expect_create().never();
    ports.idempotency.expect_claim().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), Some(&key()))
        .await;
    assert_eq!(
        outcome.unwrap_err(),
        CustomerError::Unsupported(Operation::CreateCustomer)
    );
}

#[tokio::test]
async fn an_unknown_catalog_is_not_found() {
    let ports = Ports::vendor_pos();
    let other = CatalogId::parse("other").unwrap();
    let error = ports
        .build()
        .get(&other, &CustomerId::parse("1").unwrap())
        .await
        .unwrap_err();
    assert_eq!(error, CustomerError::CatalogNotFound);
}

#[tokio::test]
async fn a_completed_key_replays_without_any_pos_call() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    let saved = SavedOutcome::of(&CreateOutcome::Created(customer("42", "a@b.co"))).unwrap();
    ports
        .idempotency
        .expect_claim()
        .with(eq(key()))
        .returning(move |_| Ok(Claim::Completed(saved.clone())));
    ports.directory.expect_create().never();
    ports.mirror.expect_find_duplicate().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), Some(&key()))
        .await;
    assert_eq!(
        outcome.unwrap(),
        CreateOutcome::Created(customer("42", "a@b.co"))
    );
}

#[tokio::test]
async fn a_key_reused_with_another_request_is_refused() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .idempotency
        .expect_claim()
        .returning(|_| Ok(Claim::Mismatch));
    ports.directory.expect_create().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), Some(&key()))
        .await;
    assert_eq!(outcome.unwrap_err(), CustomerError::IdempotencyKeyReused);
}

#[tokio::test]
async fn a_key_in_progress_waits_for_the_first_and_replays_it() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    let saved = SavedOutcome::of(&CreateOutcome::Created(customer("42", "a@b.co"))).unwrap();
    ports
        .idempotency
        .expect_claim()
        .returning(|_| Ok(Claim::InProgress));
    ports
        .idempotency
        .expect_wait()
        .with(eq(key()), eq(Duration::from_millis(10)))
        .returning(move |_, _| Ok(Claim::Completed(saved.clone())));
    ports.directory.expect_create().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), Some(&key()))
        .await;
    assert!(
        matches!(outcome.unwrap(), CreateOutcome::Created(c) if c.customer_id.as_str() == "42")
    );
}

#[tokio::test]
async fn a_key_still_in_progress_after_the_wait_is_an_error() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .idempotency
        .expect_claim()
        .returning(|_| Ok(Claim::InProgress));
    ports
        .idempotency
        .expect_wait()
        .returning(|_, _| Ok(Claim::InProgress));
    ports.directory.expect_create().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), Some(&key()))
        .await;
    assert_eq!(
        outcome.unwrap_err(),
        CustomerError::IdempotencyKeyInProgress
    );
}

#[tokio::test]
async fn a_failed_create_releases_its_key_and_saves_nothing() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .idempotency
        .expect_claim()
        .returning(|_| Ok(Claim::Acquired(token())));
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    mirror_by_identity(&mut ports, vec![]);
    ports
        .directory
        .expect_find()
        .returning(|_| Ok(CustomerPage::default()));
    ports
        .directory
        .expect_create()
        .times(1)
        .returning(|_, _| Err(unavailable()));
    // A 503 may have been done all the same: left for recovery.
    ports.expect_journal(0);
    ports
        .idempotency
        .expect_release()
        .times(1)
        .returning(|_, _| Ok(()));
    ports.idempotency.expect_complete().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), Some(&key()))
        .await;
    assert!(matches!(
        outcome.unwrap_err(),
        CustomerError::Pos(PosError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn a_successful_create_saves_its_outcome_under_the_key() {
    let mut ports = Ports::with_vendor(Vendor::Local, true).capabilities(Capabilities::ALL);
    ports
        .idempotency
        .expect_claim()
        .returning(|_| Ok(Claim::Acquired(token())));
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    ports.directory.expect_create().returning(|c, _| {
        Ok(c.clone()
            .into_customer(CustomerId::parse("3").unwrap(), CustomerStatus::active()))
    });
    ports
        .idempotency
        .expect_complete()
        .withf(|k, t, saved| {
            k == &key()
                && t == &token()
                && saved.read::<CreateOutcome>().is_ok_and(
                    |o| matches!(o, CreateOutcome::Created(c) if c.customer_id.as_str() == "3"),
                )
        })
        .times(1)
        .returning(|_, _, _| Ok(true));
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), Some(&key()))
        .await;
    assert!(outcome.is_ok());
}

#[tokio::test]
async fn search_falls_back_to_the_mirror_when_the_pos_is_unreachable() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports.directory.expect_find().returning(|_| {
        Err(PosError::Timeout {
            vendor: Vendor::Treez,
            after: Duration::from_secs(10),
        })
    });
    ports.mirror.expect_find().times(1).returning(|_, q| {
        assert_eq!(q.phone_digits.as_deref(), Some("5551234567"));
        Ok(CustomerPage {
            customers: vec![customer("1", "a@b.co")],
            next: Some(PageToken("x".into())),
        })
    });
    let query = CustomerQuery {
        phone_digits: Some("5551234567".into()),
        limit: 25,
        ..Default::default()
    };
    let listing = ports.build().list(&catalog(), query, None).await.unwrap();
    assert_eq!(listing.source, DataSource::Mirror);
    assert_eq!(listing.customers.len(), 1);
    let cursor = listing.next_cursor.unwrap();
    assert!(matches!(Cursor::decode(&cursor), Ok(Cursor::Mirror(PageToken(t))) if t == "x"));
}

#[tokio::test]
async fn a_pos_that_answers_no_is_not_hidden_by_the_mirror() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    let refusal = PosError::Upstream(crate::error::VendorResponse {
        vendor: Vendor::Treez,
        status: 400,
        body: serde_json::json!({"resultCode": "FAIL"}),
    });
    let returned = refusal.clone();
    ports
        .directory
        .expect_find()
        .returning(move |_| Err(returned.clone()));
    ports.mirror.expect_find().never();
    let error = ports
        .build()
        .list(
            &catalog(),
            CustomerQuery {
                limit: 5,
                ..Default::default()
            },
            None,
        )
        .await;
    assert_eq!(error.unwrap_err(), CustomerError::Pos(refusal));
}

#[tokio::test]
async fn live_search_results_are_copied_to_the_mirror() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports.directory.expect_find().returning(|_| {
        Ok(CustomerPage {
            customers: vec![customer("1", "a@b.co")],
            next: Some(PageToken("p2".into())),
        })
    });
    // The POS gives every field back: the answer needs nothing from the mirror, so its copy
    // is written behind it, not waited for.
    ports.mirror.expect_upsert().never();
    ports
        .mirror
        .expect_upsert_behind()
        .withf(|store, cs| {
            *store == StoreId(7) && cs.len() == 1 && cs[0].customer_id.as_str() == "1"
        })
        .times(1)
        .return_const(());
    let service = ports.build();
    let listing = service
        .list(
            &catalog(),
            CustomerQuery {
                limit: 5,
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(listing.source, DataSource::Pos);
    assert!(
        matches!(Cursor::decode(&listing.next_cursor.unwrap()), Ok(Cursor::Pos(PageToken(t))) if t == "p2")
    );
}

/// A POS that never gives the licence back: the answer is the mirror's copy, with the licence
/// the mirror keeps, so that copy is waited for, not written behind.
#[tokio::test]
async fn a_live_read_of_a_pos_that_leaves_fields_out_answers_the_mirrors_copy() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities {
        unreadable_fields: &[crate::ports::OptionalField::DriversLicense],
        ..Capabilities::ALL
    });
    ports
        .directory
        .expect_get()
        .returning(|_| Ok(Some(customer("1", "a@b.co"))));
    ports.mirror.expect_upsert_behind().never();
    ports.mirror.expect_upsert().times(1).returning(|_, cs, _| {
        let mut kept = cs[0].clone();
        kept.drivers_license = Some("D1".into());
        Ok(vec![kept])
    });
    let (found, source) = ports
        .build()
        .get(&catalog(), &CustomerId::parse("1").unwrap())
        .await
        .unwrap();
    assert_eq!(source, DataSource::Pos);
    assert_eq!(found.drivers_license.as_deref(), Some("D1"));
}

#[tokio::test]
async fn a_vendor_that_cannot_search_is_answered_by_the_mirror() {
    let caps = Capabilities {
        search_customers: false,
        ..Capabilities::ALL
    };
    let mut ports = Ports::vendor_pos().capabilities(caps);
    ports.directory.expect_find().never();
    ports
        .mirror
        .expect_find()
        .times(1)
        .returning(|_, _| Ok(CustomerPage::default()));
    let query = CustomerQuery {
        email: Some("a@b.co".into()),
        limit: 5,
        ..Default::default()
    };
    let listing = ports.build().list(&catalog(), query, None).await.unwrap();
    assert_eq!(listing.source, DataSource::Mirror);
}

#[tokio::test]
async fn a_forged_cursor_is_invalid() {
    let ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    let error = ports
        .build()
        .list(
            &catalog(),
            CustomerQuery {
                limit: 5,
                ..Default::default()
            },
            Some("not-a-cursor!"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CustomerError::Invalid(ValidationErrors::single("cursor", FieldError::Invalid))
    );
}

#[tokio::test]
async fn get_when_the_pos_is_down_and_the_mirror_lacks_it_reports_the_outage() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .directory
        .expect_get()
        .returning(|_| Err(unavailable()));
    ports.mirror.expect_get().returning(|_, _| Ok(None));
    ports
        .mirror
        .expect_is_tombstoned()
        .returning(|_, _| Ok(false));
    let error = ports
        .build()
        .get(&catalog(), &CustomerId::parse("1").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        CustomerError::Pos(PosError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn get_when_the_pos_is_down_of_a_customer_it_deleted_is_not_found() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .directory
        .expect_get()
        .returning(|_| Err(unavailable()));
    ports.mirror.expect_get().returning(|_, _| Ok(None));
    ports
        .mirror
        .expect_is_tombstoned()
        .returning(|_, _| Ok(true));
    let error = ports
        .build()
        .get(&catalog(), &CustomerId::parse("1").unwrap())
        .await
        .unwrap_err();
    assert_eq!(error, CustomerError::CustomerNotFound);
}

#[tokio::test]
async fn a_customer_the_pos_no_longer_has_is_tombstoned_in_the_mirror() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports.directory.expect_get().returning(|_| Ok(None));
    ports
        .mirror
        .expect_tombstone()
        .withf(|store, ids, _| *store == StoreId(7) && ids == [CustomerId::parse("1").unwrap()])
        .times(1)
        .returning(|_, _, _| Ok(1));
    let error = ports
        .build()
        .get(&catalog(), &CustomerId::parse("1").unwrap())
        .await
        .unwrap_err();
    assert_eq!(error, CustomerError::CustomerNotFound);
}

#[tokio::test]
async fn get_when_the_pos_is_down_answers_from_the_mirror() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .directory
        .expect_get()
        .returning(|_| Err(unavailable()));
    ports
        .mirror
        .expect_get()
        .returning(|_, _| Ok(Some(customer("1", "a@b.co"))));
    let (found, source) = ports
        .build()
        .get(&catalog(), &CustomerId::parse("1").unwrap())
        .await
        .unwrap();
    assert_eq!(
        (found.customer_id.as_str(), source),
        ("1", DataSource::Mirror)
    );
}

#[tokio::test]
async fn update_of_an_unknown_customer_is_not_found() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .directory
        .expect_update()
        .returning(|_, _| Err(PosError::NotFound));
    ports.mirror.expect_upsert().never();
    let error = ports
        .build()
        .update(
            &catalog(),
            &CustomerId::parse("404").unwrap(),
            &CustomerPatch::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error, CustomerError::CustomerNotFound);
}

#[tokio::test]
async fn update_copies_the_pos_answer_to_the_mirror() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .directory
        .expect_update()
        .returning(|_, _| Ok(customer("1", "new@b.co")));
    ports
        .mirror
        .expect_upsert()
        .withf(|_, cs, _| cs[0].email.as_ref().map(|e| e.as_str()) == Some("new@b.co"))
        .times(1)
        .returning(|_, cs, _| Ok(cs.to_vec()));
    let updated = ports
        .build()
        .update(
            &catalog(),
            &CustomerId::parse("1").unwrap(),
            &CustomerPatch::default(),
        )
        .await
        .unwrap();
    assert_eq!(updated.customer_id.as_str(), "1");
}

/// What a POS never gives back goes with every update (from the mirror, since the adapter
/// can't read it: a whole-record update would erase it), and the mirror keeps it when neither
/// the kiosk nor the mirror knew it.
#[tokio::test]
async fn an_update_sends_back_what_the_pos_never_gives_back_and_the_mirror_keeps_it() {
    const WRITE_ONLY_LICENCE: Capabilities = Capabilities {
        unreadable_fields: &[crate::ports::OptionalField::DriversLicense],
        ..Capabilities::ALL
    };
    for (mirrored, sent, unknown) in [
        (Some("D1"), Some(Some("D1".to_owned())), vec![]),
        (
            None,
            None,
            vec![crate::ports::OptionalField::DriversLicense],
        ),
    ] {
        let mut ports = Ports::vendor_pos().capabilities(WRITE_ONLY_LICENCE);
        ports.mirror.expect_get().returning(move |_, _| {
            let mut known = customer("1", "a@b.co");
            known.drivers_license = mirrored.map(str::to_owned);
            Ok(Some(known))
        });
        let want = sent.clone();
        ports
            .directory
            .expect_update()
            .withf(move |_, patch| patch.drivers_license == want && patch.notes.is_some())
            .returning(|_, _| Ok(customer("1", "a@b.co")));
        ports
            .mirror
            .expect_upsert()
            .withf(move |_, _, kept| kept == unknown.as_slice())
            .times(1)
            .returning(|_, cs, _| Ok(cs.to_vec()));
        let patch = CustomerPatch {
            notes: Some(Some("hi".into())),
            ..Default::default()
        };
        ports
            .build()
            .update(&catalog(), &CustomerId::parse("1").unwrap(), &patch)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_mirror_write_failure_does_not_fail_a_successful_update() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .directory
        .expect_update()
        .returning(|_, _| Ok(customer("1", "a@b.co")));
    ports
        .mirror
        .expect_upsert()
        .returning(|_, _, _| Err(RepositoryError::Unavailable("down".into())));
    let result = ports
        .build()
        .update(
            &catalog(),
            &CustomerId::parse("1").unwrap(),
            &CustomerPatch::default(),
        )
        .await;
    assert!(result.is_ok());
}

#[tokio::test]
async fn bulk_keeps_input_order_and_reports_each_item() {
    let mut ports = Ports::with_vendor(Vendor::Local, true).capabilities(Capabilities::ALL);
    ports.directory.expect_create().times(3).returning(|c, _| {
        if c.email.as_ref().unwrap().as_str() == "dup@b.co" {
            return Err(PosError::Duplicate(Box::new(customer("9", "dup@b.co"))));
        }
        let id = c
            .email
            .as_ref()
            .unwrap()
            .as_str()
            .split('@')
            .next()
            .unwrap()
            .to_owned();
        Ok(c.clone()
            .into_customer(CustomerId::parse(&id).unwrap(), CustomerStatus::active()))
    });
    let items = vec![
        Ok(new_customer("one@b.co")),
        Err(ValidationErrors::single("first_name", FieldError::Blank)),
        Ok(new_customer("dup@b.co")),
        Ok(new_customer("four@b.co")),
    ];
    let results = ports
        .build()
        .bulk_create(&catalog(), items, None)
        .await
        .unwrap();
    assert!(
        matches!(&results[0], Ok(CreateOutcome::Created(c)) if c.customer_id.as_str() == "one")
    );
    assert!(matches!(&results[1], Err(CustomerError::Invalid(_))));
    assert!(
        matches!(&results[2], Ok(CreateOutcome::AlreadyExists(c)) if c.customer_id.as_str() == "9")
    );
    assert!(
        matches!(&results[3], Ok(CreateOutcome::Created(c)) if c.customer_id.as_str() == "four")
    );
}

#[tokio::test]
async fn capabilities_of_a_vendor_without_an_adapter_are_all_false() {
    let mut stores = MockStoreRegistry::new();
    stores
        .expect_store_for_catalog()
        .returning(|_| Ok(Some(store(Vendor::Cova))));
    let mut connections = MockPosConnections::new();
    connections
        .expect_directory_for()
        .returning(|_| Err(PosError::Unsupported(Operation::ListCustomers)));
    let service = CustomerService::new(
        Arc::new(stores),
        Arc::new(MockCustomerMirror::new()),
        Arc::new(MockIdempotencyStore::new()),
        Arc::new(MockPendingCreates::new()),
        Arc::new(connections),
        Arc::new(MockCreateLocks::new()),
        ServiceSettings::default(),
    );
    let (vendor, caps) = service.capabilities(&catalog()).await.unwrap();
    assert_eq!((vendor, caps), (Vendor::Cova, Capabilities::default()));
}

#[tokio::test]
async fn a_store_whose_config_is_unusable_says_so_instead_of_supporting_nothing() {
    let mut stores = MockStoreRegistry::new();
    stores
        .expect_store_for_catalog()
        .returning(|_| Ok(Some(store(Vendor::Treez))));
    let mut connections = MockPosConnections::new();
    connections.expect_directory_for().returning(|_| {
        Err(PosError::Misconfigured {
            vendor: Vendor::Treez,
            message: "missing key \"api_key\"".into(),
        })
    });
    let service = CustomerService::new(
        Arc::new(stores),
        Arc::new(MockCustomerMirror::new()),
        Arc::new(MockIdempotencyStore::new()),
        Arc::new(MockPendingCreates::new()),
        Arc::new(connections),
        Arc::new(MockCreateLocks::new()),
        ServiceSettings::default(),
    );
    let error = service.capabilities(&catalog()).await.unwrap_err();
    assert!(
        matches!(
            error,
            CustomerError::Pos(PosError::Misconfigured {
                vendor: Vendor::Treez,
                ..
            })
        ),
        "{error:?}"
    );
}

const NEEDS_BIRTHDAY: Capabilities = Capabilities {
    required_fields: &[crate::ports::OptionalField::Birthday],
    ..Capabilities::ALL
};

#[tokio::test]
async fn a_field_the_pos_requires_is_refused_before_any_call() {
    let mut ports = Ports::vendor_pos().capabilities(NEEDS_BIRTHDAY);
    ports.directory.expect_create().never();
    ports.directory.expect_find().never();
    ports.mirror.expect_find_duplicate().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), None)
        .await;
    let CustomerError::Invalid(errors) = outcome.unwrap_err() else {
        panic!("expected a validation error");
    };
    assert_eq!(
        errors.get("birthday"),
        Some(&["can't be blank".to_owned()][..])
    );
}

#[tokio::test]
async fn an_update_may_not_clear_a_field_the_pos_requires() {
    let mut ports = Ports::vendor_pos().capabilities(NEEDS_BIRTHDAY);
    ports.directory.expect_update().never();
    let patch = CustomerPatch {
        birthday: Some(None),
        ..Default::default()
    };
    let error = ports
        .build()
        .update(&catalog(), &CustomerId::parse("1").unwrap(), &patch)
        .await
        .unwrap_err();
    assert!(matches!(error, CustomerError::Invalid(e) if e.get("birthday").is_some()));
}

#[tokio::test]
async fn a_search_the_pos_cannot_do_is_answered_by_the_mirror() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .directory
        .expect_find()
        .returning(|_| Err(PosError::Unsupported(Operation::SearchCustomers)));
    ports.mirror.expect_find().returning(|_, _| {
        Ok(CustomerPage {
            customers: vec![customer("9", "a@b.co")],
            next: None,
        })
    });
    let query = CustomerQuery {
        name: Some("john".into()),
        limit: 25,
        ..Default::default()
    };
    let listing = ports.build().list(&catalog(), query, None).await.unwrap();
    assert_eq!(listing.source, DataSource::Mirror);
    assert_eq!(listing.customers.len(), 1);
}

#[tokio::test]
async fn the_duplicate_check_skips_keys_the_pos_cannot_search_by() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    ports
        .directory
        .expect_find()
        .returning(|_| Err(PosError::Unsupported(Operation::SearchCustomers)));
    ports
        .directory
        .expect_create()
        .times(1)
        .returning(|_, _| Ok(customer("5", "a@b.co")));
    ports
        .mirror
        .expect_upsert()
        .returning(|_, cs, _| Ok(cs.to_vec()));
    ports.expect_journal(1);
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), None)
        .await;
    assert!(matches!(outcome.unwrap(), CreateOutcome::Created(_)));
}

/// A reconciled create's look-up lacks what the POS never gives back: the kiosk's is kept.
#[tokio::test]
async fn a_reconciled_create_keeps_what_the_kiosk_gave_that_the_pos_never_gives_back() {
    const WRITE_ONLY_LICENCE: Capabilities = Capabilities {
        unreadable_fields: &[crate::ports::OptionalField::DriversLicense],
        ..Capabilities::ALL
    };
    let mut ports = Ports::vendor_pos().capabilities(WRITE_ONLY_LICENCE);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    mirror_by_identity(&mut ports, vec![]);
    let mut seq = mockall::Sequence::new();
    ports
        .directory
        .expect_find()
        .times(3)
        .in_sequence(&mut seq)
        .returning(|_| Ok(CustomerPage::default()));
    ports
        .directory
        .expect_create()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| {
            Err(PosError::Timeout {
                vendor: Vendor::Dutchie,
                after: Duration::from_secs(10),
            })
        });
    ports
        .directory
        .expect_find()
        .times(3)
        .in_sequence(&mut seq)
        .returning(|q| {
            Ok(match q.email {
                Some(_) => CustomerPage {
                    customers: vec![customer("77", "a@b.co")],
                    next: None,
                },
                None => CustomerPage::default(),
            })
        });
    let written = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = written.clone();
    ports.mirror.expect_upsert().returning(move |_, cs, _| {
        recorder.lock().unwrap().extend(cs.iter().cloned());
        Ok(cs.to_vec())
    });
    ports.expect_journal(1);
    let mut with_licence = new_customer("a@b.co");
    with_licence.drivers_license = Some("D123".into());
    let outcome = ports
        .build()
        .create(&catalog(), with_licence, None)
        .await
        .unwrap();
    let CreateOutcome::Created(created) = outcome else {
        panic!("expected Created");
    };
    assert_eq!(created.drivers_license.as_deref(), Some("D123"));
    let last = written.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        last.drivers_license.as_deref(),
        Some("D123"),
        "the mirror has it"
    );
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_at_the_pos_and_not_repeated() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    mirror_by_identity(&mut ports, vec![]);
    // Before the create: nobody. After it timed out: the vendor has the customer after all.
    let mut seq = mockall::Sequence::new();
    ports
        .directory
        .expect_find()
        .times(2)
        .in_sequence(&mut seq)
        .returning(|_| Ok(CustomerPage::default()));
    ports
        .directory
        .expect_create()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| {
            Err(PosError::Timeout {
                vendor: Vendor::Treez,
                after: Duration::from_secs(10),
            })
        });
    ports
        .directory
        .expect_find()
        .times(2)
        .in_sequence(&mut seq)
        .returning(|q| {
            Ok(match q.email {
                Some(_) => CustomerPage {
                    customers: vec![customer("77", "a@b.co")],
                    next: None,
                },
                None => CustomerPage::default(),
            })
        });
    ports
        .mirror
        .expect_upsert()
        .returning(|_, cs, _| Ok(cs.to_vec()));
    ports.expect_journal(1);
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), None)
        .await;
    assert_eq!(
        outcome.unwrap(),
        CreateOutcome::Created(customer("77", "a@b.co"))
    );
}

#[tokio::test]
async fn a_create_refused_or_never_sent_is_not_looked_for() {
    for error in [
        PosError::Upstream(crate::error::VendorResponse {
            vendor: Vendor::Treez,
            status: 400,
            body: serde_json::json!({}),
        }),
        PosError::Unavailable {
            vendor: Vendor::Treez,
            message: "circuit open".into(),
            retry_after: Some(Duration::from_secs(30)),
            response: None,
        },
        PosError::Rejected(ValidationErrors::single("email", FieldError::Invalid)),
    ] {
        let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
        ports
            .mirror
            .expect_find_duplicate()
            .times(1)
            .returning(|_, _| Ok(None));
        ports
            .directory
            .expect_find()
            .times(2)
            .returning(|_| Ok(CustomerPage::default()));
        let failure = error.clone();
        ports
            .directory
            .expect_create()
            .times(1)
            .returning(move |_, _| Err(failure.clone()));
        // The vendor said no (or was never asked): nothing for recovery to look for.
        ports.expect_journal(1);
        let outcome = ports
            .build()
            .create(&catalog(), new_customer("a@b.co"), None)
            .await;
        assert_eq!(outcome.unwrap_err(), CustomerError::from(error));
    }
}

// ---------------------------------------------------------------------------------------------
// The outbox of vendor creates: journaling in `create`, and `recover_pending`.

fn timeout() -> PosError {
    PosError::Timeout {
        vendor: Vendor::Treez,
        after: Duration::from_secs(10),
    }
}

/// A vendor POS with nobody in the mirror nor at the vendor before the create.
fn vendor_pos_with_no_duplicate() -> Ports {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    mirror_by_identity(&mut ports, vec![]);
    ports
        .directory
        .expect_find()
        .returning(|_| Ok(CustomerPage::default()));
    ports
}

#[tokio::test]
async fn a_vendor_create_is_journaled_before_the_call_and_settled_after_the_mirror_write() {
    let mut ports = vendor_pos_with_no_duplicate();
    let mut seq = mockall::Sequence::new();
    ports
        .pending
        .expect_record()
        .withf(|store, c| *store == StoreId(7) && c == &new_customer("a@b.co"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(PendingCreateId(11)));
    ports
        .directory
        .expect_create()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(customer("42", "a@b.co")));
    ports
        .mirror
        .expect_upsert()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, cs, _| Ok(cs.to_vec()));
    ports
        .pending
        .expect_settle_behind()
        .with(eq(PendingCreateId(11)))
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), None)
        .await;
    assert_eq!(
        outcome.unwrap(),
        CreateOutcome::Created(customer("42", "a@b.co"))
    );
}

#[tokio::test]
async fn a_journal_that_cannot_be_written_stops_the_create_before_the_vendor() {
    let mut ports = vendor_pos_with_no_duplicate();
    ports
        .pending
        .expect_record()
        .times(1)
        .returning(|_, _| Err(RepositoryError::Unavailable("down".into())));
    ports.directory.expect_create().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), None)
        .await;
    assert_eq!(
        outcome.unwrap_err(),
        CustomerError::Repository(RepositoryError::Unavailable("down".into()))
    );
}

#[tokio::test]
async fn a_lost_answer_the_request_cannot_find_stays_journaled_for_recovery() {
    let mut ports = vendor_pos_with_no_duplicate();
    ports.expect_journal(0);
    ports
        .directory
        .expect_create()
        .times(1)
        .returning(|_, _| Err(timeout()));
    ports.mirror.expect_upsert().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), None)
        .await;
    assert_eq!(outcome.unwrap_err(), CustomerError::Pos(timeout()));
}

#[tokio::test]
async fn a_mirror_write_failure_after_a_create_leaves_it_for_recovery() {
    let mut ports = vendor_pos_with_no_duplicate();
    ports.expect_journal(0);
    ports
        .directory
        .expect_create()
        .times(1)
        .returning(|_, _| Ok(customer("42", "a@b.co")));
    ports
        .mirror
        .expect_upsert()
        .times(1)
        .returning(|_, _, _| Err(RepositoryError::Unavailable("down".into())));
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), None)
        .await;
    assert_eq!(
        outcome.unwrap(),
        CreateOutcome::Created(customer("42", "a@b.co")),
        "the vendor created it: the kiosk gets its 201"
    );
}

#[tokio::test]
async fn every_bulk_item_sent_to_the_vendor_is_journaled() {
    let mut ports = vendor_pos_with_no_duplicate();
    ports.pending.expect_record().times(2).returning(|_, c| {
        let id = if c.email.as_ref().unwrap().as_str() == "one@b.co" {
            1
        } else {
            2
        };
        Ok(PendingCreateId(id))
    });
    ports
        .pending
        .expect_settle_behind()
        .withf(|id| *id == PendingCreateId(1) || *id == PendingCreateId(2))
        .times(2)
        .return_const(());
    ports
        .directory
        .expect_create()
        .times(2)
        .returning(|c, _| Ok(customer("5", c.email.as_ref().unwrap().as_str())));
    ports
        .mirror
        .expect_upsert()
        .returning(|_, cs, _| Ok(cs.to_vec()));
    let items = vec![Ok(new_customer("one@b.co")), Ok(new_customer("two@b.co"))];
    let results = ports
        .build()
        .bulk_create(&catalog(), items, None)
        .await
        .unwrap();
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(CreateOutcome::Created(_))))
    );
}

fn entry(id: i64, attempts: u32) -> PendingCreate {
    PendingCreate {
        id: PendingCreateId(id),
        store: StoreId(7),
        customer: Ok(new_customer(&format!("c{id}@b.co"))),
        recorded_at: chrono::Utc::now(),
        attempts,
    }
}

/// Recovery claims `entries` (fewer than a batch of ten), and checks it asks for orphans
/// older than the orphan age, ten at most, for ten entries' lease.
fn orphans(ports: &mut Ports, entries: Vec<PendingCreate>) {
    assert!(entries.len() < 10);
    ports
        .pending
        .expect_claim_orphans()
        .with(eq(ORPHAN_AGE), eq(RECOVERY_LEASE * 10), eq(10))
        .times(1)
        .returning(move |_, _, _| Ok(entries.clone()));
}

fn report(recovered: usize, not_found: usize, dropped: usize, deferred: usize) -> RecoveryReport {
    RecoveryReport {
        recovered,
        not_found,
        dropped,
        deferred,
    }
}

#[test]
fn the_orphan_age_outlasts_the_longest_request() {
    assert_eq!(
        ServiceSettings::orphan_age_for(Duration::from_secs(1), Duration::from_secs(1)),
        Duration::from_secs(7)
    );
    let settings = ServiceSettings::for_pos_timeout(Duration::from_secs(10));
    assert_eq!(settings.orphan_age, Duration::from_secs(52));
    assert_eq!(ServiceSettings::default().orphan_age, settings.orphan_age);
    // Longer than a create, the pause before looking for a lost answer and that look.
    let timeout = Duration::from_millis(1500);
    let age = ServiceSettings::for_pos_timeout(timeout).orphan_age;
    assert!(age > timeout * 5 + settings.reconcile_after);
}

#[tokio::test]
async fn recovery_with_nothing_pending_asks_nobody() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    orphans(&mut ports, Vec::new());
    ports.directory.expect_find().never();
    ports.mirror.expect_find_duplicate().never();
    let done = ports.build().recover_pending(50).await.unwrap();
    assert_eq!(done, RecoveryReport::default());
    assert_eq!(done.examined(), 0);
}

#[tokio::test]
async fn recovery_finds_a_customer_the_vendor_created_and_mirrors_it() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    orphans(&mut ports, vec![entry(1, 0)]);
    ports
        .mirror
        .expect_find()
        .withf(|store, q| *store == StoreId(7) && q.email.as_deref() == Some("c1@b.co"))
        .times(1)
        .returning(|_, _| Ok(CustomerPage::default()));
    ports.directory.expect_find().times(2).returning(|q| {
        Ok(match q.email.as_deref() {
            Some(email) => {
                assert_eq!(email, "c1@b.co");
                CustomerPage {
                    customers: vec![customer("77", "c1@b.co")],
                    next: None,
                }
            }
            None => CustomerPage::default(),
        })
    });
    let mut seq = mockall::Sequence::new();
    ports
        .mirror
        .expect_upsert()
        .withf(|store, cs, _| *store == StoreId(7) && cs == [customer("77", "c1@b.co")])
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, cs, _| Ok(cs.to_vec()));
    ports
        .pending
        .expect_settle()
        .with(eq(PendingCreateId(1)))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    ports.directory.expect_create().never();
    let done = ports.build().recover_pending(50).await.unwrap();
    assert_eq!(done, report(1, 0, 0, 0));
}

#[tokio::test]
async fn recovery_settles_a_customer_already_in_the_mirror_without_asking_the_vendor() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    orphans(&mut ports, vec![entry(1, 0)]);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(Some(customer("77", "c1@b.co"))));
    mirror_by_identity(&mut ports, vec![customer("77", "c1@b.co")]);
    ports.directory.expect_find().never();
    ports.mirror.expect_upsert().never();
    ports
        .pending
        .expect_settle()
        .with(eq(PendingCreateId(1)))
        .times(1)
        .returning(|_| Ok(()));
    let done = ports.build().recover_pending(50).await.unwrap();
    assert_eq!(done, report(1, 0, 0, 0));
}

#[tokio::test]
async fn recovery_counts_a_customer_not_at_the_vendor_and_drops_it_after_the_last_look() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    // Entry 1 has not been looked for yet; entry 2 was not at the vendor twice already.
    orphans(&mut ports, vec![entry(1, 0), entry(2, 2)]);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    mirror_by_identity(&mut ports, vec![]);
    // Every key is searched: e-mail and phone, for each entry.
    ports
        .directory
        .expect_find()
        .times(4)
        .returning(|_| Ok(CustomerPage::default()));
    ports
        .pending
        .expect_note_attempt()
        .withf(|e| e.id == PendingCreateId(1) && e.attempts == 0)
        .times(1)
        .returning(|_| Ok(()));
    ports
        .pending
        .expect_settle()
        .with(eq(PendingCreateId(2)))
        .times(1)
        .returning(|_| Ok(()));
    ports.mirror.expect_upsert().never();
    ports.directory.expect_create().never();
    let done = ports.build().recover_pending(50).await.unwrap();
    assert_eq!(done, report(0, 1, 1, 0));
}

#[tokio::test]
async fn recovery_keeps_entries_while_the_vendor_is_unreachable_and_asks_it_once_per_pass() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    orphans(&mut ports, vec![entry(1, 0), entry(2, 1)]);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    mirror_by_identity(&mut ports, vec![]);
    // One look-up for the store (its two key searches at once), none for the second entry.
    ports
        .directory
        .expect_find()
        .times(2)
        .returning(|_| Err(timeout()));
    ports
        .pending
        .expect_postpone()
        .withf(|id| *id == PendingCreateId(1) || *id == PendingCreateId(2))
        .times(2)
        .returning(|_| Ok(()));
    ports.pending.expect_settle().never();
    ports.pending.expect_note_attempt().never();
    let done = ports.build().recover_pending(50).await.unwrap();
    assert_eq!(done, report(0, 0, 0, 2));
}

#[tokio::test]
async fn recovery_keeps_a_found_customer_it_cannot_write_to_the_mirror() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    orphans(&mut ports, vec![entry(1, 0)]);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    mirror_by_identity(&mut ports, vec![]);
    ports.directory.expect_find().returning(|_| {
        Ok(CustomerPage {
            customers: vec![customer("77", "c1@b.co")],
            next: None,
        })
    });
    ports
        .mirror
        .expect_upsert()
        .times(1)
        .returning(|_, _, _| Err(RepositoryError::Unavailable("down".into())));
    ports.pending.expect_settle().never();
    let done = ports.build().recover_pending(50).await.unwrap();
    assert_eq!(done, report(0, 0, 0, 1));
}

#[tokio::test]
async fn recovery_drops_what_cannot_be_looked_for() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    let no_keys = NewCustomer {
        email: None,
        phone: None,
        drivers_license: None,
        ..new_customer("x@b.co")
    };
    let entries = vec![
        PendingCreate {
            customer: Ok(no_keys),
            ..entry(1, 0)
        },
        PendingCreate {
            customer: Err(RepositoryError::Corrupt("not JSON".into())),
            ..entry(2, 0)
        },
        // Its store was deleted.
        PendingCreate {
            store: StoreId(8),
            ..entry(3, 0)
        },
    ];
    orphans(&mut ports, entries);
    ports.mirror.expect_find_duplicate().never();
    ports.directory.expect_find().never();
    ports
        .pending
        .expect_settle()
        .withf(|id| (1..=3).contains(&id.0))
        .times(3)
        .returning(|_| Ok(()));
    let done = ports.build().recover_pending(50).await.unwrap();
    assert_eq!(done, report(0, 0, 3, 0));
}

#[tokio::test]
async fn recovery_drops_a_customer_the_pos_cannot_search_for() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    orphans(&mut ports, vec![entry(1, 0)]);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    mirror_by_identity(&mut ports, vec![]);
    ports
        .directory
        .expect_find()
        .times(2)
        .returning(|_| Err(PosError::Unsupported(Operation::SearchCustomers)));
    ports
        .pending
        .expect_settle()
        .with(eq(PendingCreateId(1)))
        .times(1)
        .returning(|_| Ok(()));
    ports.pending.expect_note_attempt().never();
    let done = ports.build().recover_pending(50).await.unwrap();
    assert_eq!(done, report(0, 0, 1, 0));
}

/// `n` entries that no longer read back (dropped at once, asking nobody), ids from `first`.
fn unreadable(first: i64, n: i64) -> Vec<PendingCreate> {
    (first..first + n)
        .map(|id| PendingCreate {
            customer: Err(RepositoryError::Corrupt(format!("entry {id}"))),
            ..entry(id, 0)
        })
        .collect()
}

#[tokio::test]
async fn recovery_claims_ten_at_a_time_each_for_its_entries_lease() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    let mut sequence = mockall::Sequence::new();
    // 25 at most: 10, 10, then the 5 left, each claim held for as many entries as it asks for.
    for (first, batch) in [(1, 10u32), (11, 10), (21, 5)] {
        ports
            .pending
            .expect_claim_orphans()
            .with(eq(ORPHAN_AGE), eq(RECOVERY_LEASE * batch), eq(batch))
            .times(1)
            .in_sequence(&mut sequence)
            .returning(move |_, _, _| Ok(unreadable(first, i64::from(batch))));
    }
    ports
        .pending
        .expect_settle()
        .times(25)
        .returning(|_| Ok(()));
    let done = ports.build().recover_pending(25).await.unwrap();
    assert_eq!(done, report(0, 0, 25, 0));

    // A claim that gets fewer than it asked for was the last of the journal: no more asked.
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    let mut sequence = mockall::Sequence::new();
    for (first, got) in [(1, 10), (11, 3)] {
        ports
            .pending
            .expect_claim_orphans()
            .with(eq(ORPHAN_AGE), eq(RECOVERY_LEASE * 10), eq(10))
            .times(1)
            .in_sequence(&mut sequence)
            .returning(move |_, _, _| Ok(unreadable(first, got)));
    }
    ports
        .pending
        .expect_settle()
        .times(13)
        .returning(|_| Ok(()));
    let done = ports.build().recover_pending(50).await.unwrap();
    assert_eq!(done, report(0, 0, 13, 0));
}

#[test]
fn a_recovery_claim_outlasts_looking_for_its_entry() {
    assert_eq!(
        ServiceSettings::recovery_lease_for(Duration::from_secs(1)),
        Duration::from_secs(5)
    );
    assert_eq!(
        ServiceSettings::default().recovery_lease,
        Duration::from_secs(41)
    );
}

#[tokio::test]
async fn recovery_fails_only_when_the_journal_cannot_be_read() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .pending
        .expect_claim_orphans()
        .returning(|_, _, _| Err(RepositoryError::Unavailable("down".into())));
    let error = ports.build().recover_pending(50).await.unwrap_err();
    assert_eq!(
        error,
        CustomerError::Repository(RepositoryError::Unavailable("down".into()))
    );
}

/// Someone of the same household: another name and e-mail, the same phone.
fn household_member() -> Customer {
    let form = CustomerForm {
        first_name: Input::Text("Jane".into()),
        last_name: Input::Text("Doe".into()),
        email: Input::Text("jane@b.co".into()),
        phone: Input::Text("555-123-4567".into()),
        ..Default::default()
    };
    NewCustomer::parse(&form, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap())
        .unwrap()
        .into_customer(CustomerId::parse("55").unwrap(), CustomerStatus::active())
}

#[tokio::test]
async fn recovery_does_not_settle_on_someone_sharing_a_phone() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    orphans(&mut ports, vec![entry(1, 0)]);
    // The mirror and the vendor know the household's other member by the shared phone only.
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(Some(household_member())));
    mirror_by_identity(&mut ports, vec![household_member()]);
    ports.directory.expect_find().returning(|q| {
        Ok(CustomerPage {
            customers: if q.phone_digits.is_some() {
                vec![household_member()]
            } else {
                vec![]
            },
            next: None,
        })
    });
    ports.mirror.expect_upsert().never();
    ports.pending.expect_settle().never();
    ports
        .pending
        .expect_note_attempt()
        .times(1)
        .returning(|_| Ok(()));
    let done = ports.build().recover_pending(50).await.unwrap();
    assert_eq!(
        done,
        report(0, 1, 0, 0),
        "not found: the entry stays for the next look"
    );
}

#[tokio::test]
async fn a_lost_create_is_not_reconciled_to_someone_sharing_a_phone() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports
        .mirror
        .expect_find_duplicate()
        .returning(|_, _| Ok(None));
    mirror_by_identity(&mut ports, vec![]);
    let mut seq = mockall::Sequence::new();
    ports
        .directory
        .expect_find()
        .times(2)
        .in_sequence(&mut seq)
        .returning(|_| Ok(CustomerPage::default()));
    ports
        .directory
        .expect_create()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Err(timeout()));
    // The household's other member, created meanwhile by another till, shares the phone.
    ports.directory.expect_find().returning(|q| {
        Ok(CustomerPage {
            customers: if q.phone_digits.is_some() {
                vec![household_member()]
            } else {
                vec![]
            },
            next: None,
        })
    });
    ports.expect_journal(0);
    ports.mirror.expect_upsert().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), None)
        .await;
    assert_eq!(outcome.unwrap_err(), CustomerError::Pos(timeout()));
}

#[tokio::test]
async fn a_vendor_create_checks_and_creates_under_its_keys_locks() {
    let mut ports = vendor_pos_with_no_duplicate();
    ports.locks = MockCreateLocks::new();
    let mut seq = mockall::Sequence::new();
    ports
        .locks
        .expect_acquire()
        .withf(|store, keys, lease, _| {
            *store == StoreId(7)
                && keys.email.as_deref() == Some("a@b.co")
                && keys.phone_digits.as_deref() == Some("5551234567")
                && *lease == ORPHAN_AGE
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|store, _, _, _| {
            Ok(Some(CreateLease {
                store,
                owner: "me".into(),
                keys: vec![],
            }))
        });
    ports
        .directory
        .expect_create()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(customer("42", "a@b.co")));
    ports
        .locks
        .expect_release_behind()
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    ports.expect_journal(1);
    ports
        .mirror
        .expect_upsert()
        .returning(|_, cs, _| Ok(cs.to_vec()));
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), None)
        .await;
    assert!(matches!(outcome.unwrap(), CreateOutcome::Created(_)));
}

#[tokio::test]
async fn a_create_whose_keys_stay_locked_is_in_progress_and_sends_nothing() {
    let mut ports = Ports::vendor_pos().capabilities(Capabilities::ALL);
    ports.locks = MockCreateLocks::new();
    ports
        .locks
        .expect_acquire()
        .returning(|_, _, _, _| Ok(None));
    ports.mirror.expect_find_duplicate().never();
    ports.directory.expect_create().never();
    ports.pending.expect_record().never();
    let outcome = ports
        .build()
        .create(&catalog(), new_customer("a@b.co"), None)
        .await;
    assert_eq!(outcome.unwrap_err(), CustomerError::CreateInProgress);
}

#[tokio::test]
async fn a_bulk_with_an_item_failed_for_a_passing_reason_is_not_kept_for_replay() {
    let mut ports = vendor_pos_with_no_duplicate();
    ports
        .idempotency
        .expect_claim()
        .returning(|_| Ok(Claim::Acquired(token())));
    ports
        .pending
        .expect_record()
        .returning(|_, _| Ok(PendingCreateId(1)));
    ports.pending.expect_settle_behind().return_const(());
    ports.directory.expect_create().returning(|c, _| {
        if c.email.as_ref().unwrap().as_str() == "two@b.co" {
            // Refused before it was made: a definitive 503 with a Retry-After.
            Err(PosError::Unavailable {
                vendor: Vendor::Treez,
                message: "429".into(),
                retry_after: Some(Duration::from_secs(1)),
                response: None,
            })
        } else {
            Ok(customer("1", "one@b.co"))
        }
    });
    ports
        .mirror
        .expect_upsert()
        .returning(|_, cs, _| Ok(cs.to_vec()));
    ports.idempotency.expect_complete().never();
    ports
        .idempotency
        .expect_release()
        .withf(|k, t| k == &key() && t == &token())
        .times(1)
        .returning(|_, _| Ok(()));
    let results = ports
        .build()
        .bulk_create(
            &catalog(),
            vec![Ok(new_customer("one@b.co")), Ok(new_customer("two@b.co"))],
            Some(&key()),
        )
        .await
        .unwrap();
    assert!(matches!(results[0], Ok(CreateOutcome::Created(_))));
    assert!(matches!(results[1], Err(CustomerError::Pos(_))));
}

#[tokio::test]
async fn a_long_request_renews_its_claim_and_only_its_holder_completes_it() {
    let mut ports = Ports::with_vendor(Vendor::Local, true).capabilities(Capabilities::ALL);
    ports.idempotency = MockIdempotencyStore::new();
    ports
        .idempotency
        .expect_claim()
        .returning(|_| Ok(Claim::Acquired(token())));
    ports
        .idempotency
        .expect_renew_every()
        .return_const(Duration::from_millis(10));
    ports
        .idempotency
        .expect_renew()
        .withf(|k, t| k == &key() && t == &token())
        .times(2..)
        .returning(|_, _| Ok(true));
    ports.directory.expect_create().returning(|c, _| {
        // A slow POS: the request outlives several renewal periods.
        std::thread::sleep(Duration::from_millis(1));
        Ok(c.clone()
            .into_customer(CustomerId::parse("3").unwrap(), CustomerStatus::active()))
    });
    ports
        .idempotency
        .expect_complete()
        .withf(|_, t, _| t == &token())
        .times(1)
        .returning(|_, _, _| Ok(true));
    let service = ports.build();
    let slow = async {
        tokio::time::sleep(Duration::from_millis(60)).await;
        Ok::<_, CustomerError>(CreateOutcome::Created(customer("3", "a@b.co")))
    };
    let outcome = service.idempotent(Some(&key()), slow).await;
    assert!(outcome.is_ok());
}
