//! The steps of `pos-gateway sync`: one page of a vendor's customers copied into the mirror,
//! and, after a full pass, one batch of the customers it did not see looked at (see
//! [`crate::sweep`]).

use chrono::{DateTime, Utc};

use super::fields::ensure;
use super::{CustomerService, Pos, SyncPage};
use crate::error::{CustomerError, PosError};
use crate::ports::{Operation, Store};
use crate::query::{CustomerQuery, PageToken};
use crate::sweep::SweepStep;

impl CustomerService {
    /// Copies one page of the store's POS customers into the mirror, from `page` (the start
    /// when `None`): the step of `pos-gateway sync` (and of the scheduled sync), which keeps
    /// `next` between steps so an interrupted sync resumes where it stopped. The `local` POS
    /// is its own mirror: nothing to copy. With `changed_since`, the pages are those of the
    /// customers changed since then (an incremental pass; see
    /// [`CustomerQuery::changed_since`]): every page of one pass must be asked with the same.
    pub async fn sync_page(
        &self,
        store: &Store,
        page: Option<PageToken>,
        limit: u32,
        changed_since: Option<DateTime<Utc>>,
    ) -> Result<SyncPage, CustomerError> {
        let directory = match Pos::of(self.connections.directory_for(store)?) {
            Pos::Local(_) => {
                return Ok(SyncPage {
                    copied: 0,
                    next: None,
                });
            }
            Pos::Vendor(directory) => directory,
        };
        ensure(directory.capabilities(), Operation::ListCustomers)?;
        let query = CustomerQuery {
            limit,
            page,
            changed_since,
            ..Default::default()
        };
        let found = directory.find(&query).await?;
        // Unlike a kiosk's read, a sync that cannot write the mirror has failed.
        let unknown = directory.capabilities().unreadable_fields;
        self.mirror
            .upsert(store.id, &found.customers, unknown)
            .await?;
        Ok(SyncPage {
            copied: found.customers.len(),
            next: found.next,
        })
    }

    /// After a full pass (every page read, the last included) that started at
    /// `pass_started`, before its first page: looks at up to `limit` customers of the mirror,
    /// from `after` (the start when `None`), that nothing has written since, and tombstones
    /// those the POS no longer has. Each is asked for at the POS by id where it can be: one it
    /// still has (its listing skipped it, e.g. a page moved during the pass) is written again,
    /// so it is seen; one it answers as another customer (merged into it) is gone as itself;
    /// one it cannot answer for (an unreadable record, a refusal of that id) is kept. A POS
    /// that cannot read one customer (Dutchie) is not asked: its pass's word is final.
    ///
    /// Stops at the first answer that says the POS cannot be asked now (unreachable,
    /// credentials, config): run the same step again later. Calling it for a pass that did not
    /// reach its last page would tombstone what it had not read yet: the caller must not.
    pub async fn sweep_unseen(
        &self,
        store: &Store,
        pass_started: DateTime<Utc>,
        after: Option<PageToken>,
        limit: u32,
    ) -> Result<SweepStep, CustomerError> {
        let directory = match Pos::of(self.connections.directory_for(store)?) {
            // The local POS's storage is the mirror: nothing there is ever gone unseen.
            Pos::Local(_) => return Ok(SweepStep::default()),
            Pos::Vendor(directory) => directory,
        };
        let capabilities = directory.capabilities();
        let unseen = self
            .mirror
            .unseen(store.id, pass_started, after, limit)
            .await?;
        let mut gone = Vec::new();
        for id in &unseen.ids {
            if !capabilities.get_customer {
                gone.push(id.clone());
                continue;
            }
            match directory.get(id).await {
                Ok(Some(customer)) => {
                    if customer.customer_id != *id {
                        tracing::info!(store = %store.id, customer = %id, survivor = %customer.customer_id, "the POS answers a customer the sync did not see as another (merged): tombstoned");
                        gone.push(id.clone());
                    }
                    self.mirror
                        .upsert(store.id, &[customer], capabilities.unreadable_fields)
                        .await?;
                }
                Ok(None) | Err(PosError::NotFound) => gone.push(id.clone()),
                Err(
                    e @ (PosError::Unavailable { .. }
                    | PosError::Timeout { .. }
                    | PosError::Unauthorized(_)
                    | PosError::Misconfigured { .. }
                    | PosError::Unsupported(_)
                    | PosError::Storage(_)),
                ) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(store = %store.id, customer = %id, error = %e, "the POS could not say whether it still has a customer the sync did not see: kept");
                }
            }
        }
        let removed = self.mirror.tombstone(store.id, &gone, pass_started).await?;
        if removed > 0 {
            tracing::info!(store = %store.id, removed, "customers gone at the POS tombstoned in the mirror");
        }
        Ok(SweepStep {
            examined: unseen.ids.len(),
            removed,
            next: unseen.next,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone as _;

    use super::*;
    use crate::customer::{Customer, CustomerId, CustomerStatus, PersonName};
    use crate::ports::{
        Capabilities, CustomerDirectory, MockCustomerDirectory, MockCustomerMirror,
        MockIdempotencyStore, MockPendingCreates, MockPosConnections, MockStoreRegistry, Store,
        StoreId, Unseen, Vendor,
    };
    use crate::service::ServiceSettings;

    fn started() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
    }

    fn id(text: &str) -> CustomerId {
        CustomerId::parse(text).unwrap()
    }

    fn customer(text: &str) -> Customer {
        Customer {
            status: CustomerStatus::active(),
            customer_id: id(text),
            first_name: PersonName::parse("Ann").unwrap(),
            last_name: PersonName::parse("Lee").unwrap(),
            gender: None,
            birthday: None,
            email: None,
            phone: None,
            drivers_license: None,
            notes: None,
        }
    }

    /// Store 7, on Treez.
    fn store() -> Store {
        Store {
            id: StoreId(7),
            name: "Main St".into(),
            vendor: Vendor::Treez,
            config: serde_json::json!({}).into(),
        }
    }

    /// A service over store 7 whose POS is `directory`.
    fn service(mirror: MockCustomerMirror, directory: MockCustomerDirectory) -> CustomerService {
        let stores = MockStoreRegistry::new();
        let directory: Arc<dyn CustomerDirectory> = Arc::new(directory);
        let mut connections = MockPosConnections::new();
        connections
            .expect_directory_for()
            .returning(move |_| Ok(directory.clone()));
        CustomerService::new(
            Arc::new(stores),
            Arc::new(mirror),
            Arc::new(MockIdempotencyStore::new()),
            Arc::new(MockPendingCreates::new()),
            Arc::new(connections),
            Arc::new(crate::ports::MockCreateLocks::new()),
            ServiceSettings::default(),
        )
    }

    fn vendor(capabilities: Capabilities) -> MockCustomerDirectory {
        let mut directory = MockCustomerDirectory::new();
        directory.expect_is_mirror().return_const(false);
        directory.expect_capabilities().return_const(capabilities);
        directory
    }

    fn unseen(ids: &[&str], next: Option<&str>) -> MockCustomerMirror {
        let ids: Vec<CustomerId> = ids.iter().map(|i| id(i)).collect();
        let next = next.map(|n| PageToken(n.to_owned()));
        let mut mirror = MockCustomerMirror::new();
        mirror
            .expect_unseen()
            .withf(|store, since, after, limit| {
                *store == StoreId(7)
                    && *since == started()
                    && *after == Some(PageToken("40".into()))
                    && *limit == 100
            })
            .times(1)
            .returning(move |_, _, _, _| {
                Ok(Unseen {
                    ids: ids.clone(),
                    next: next.clone(),
                })
            });
        mirror
    }

    async fn sweep(service: &CustomerService) -> Result<SweepStep, CustomerError> {
        service
            .sweep_unseen(&store(), started(), Some(PageToken("40".into())), 100)
            .await
    }

    #[tokio::test]
    async fn an_incremental_page_asks_the_pos_for_what_changed_and_mirrors_it() {
        let since = started();
        let mut directory = vendor(Capabilities::ALL);
        directory
            .expect_find()
            .withf(move |query| {
                query.changed_since == Some(since)
                    && !query.has_filters()
                    && query.page == Some(PageToken("2:50".into()))
                    && query.limit == 50
            })
            .times(1)
            .returning(|_| {
                Ok(crate::query::CustomerPage {
                    customers: vec![customer("changed")],
                    next: Some(PageToken("3:50".into())),
                })
            });
        let mut mirror = MockCustomerMirror::new();
        mirror
            .expect_upsert()
            .withf(|store, customers, _| *store == StoreId(7) && customers.len() == 1)
            .times(1)
            .returning(|_, customers, _| Ok(customers.to_vec()));
        let page = service(mirror, directory)
            .sync_page(&store(), Some(PageToken("2:50".into())), 50, Some(since))
            .await
            .unwrap();
        assert_eq!(page.copied, 1);
        assert_eq!(page.next, Some(PageToken("3:50".into())));
    }

    #[tokio::test]
    async fn the_sweep_tombstones_only_what_the_pos_no_longer_has() {
        let mut mirror = unseen(&["gone", "alive", "unreadable", "merged"], Some("77"));
        // What the POS still has is written again (seen), the survivor of a merge too.
        mirror
            .expect_upsert()
            .withf(|store, customers, _| {
                *store == StoreId(7)
                    && customers.len() == 1
                    && ["alive", "survivor"].contains(&customers[0].customer_id.as_str())
            })
            .times(2)
            .returning(|_, customers, _| Ok(customers.to_vec()));
        mirror
            .expect_tombstone()
            .withf(|store, ids, since| {
                *store == StoreId(7) && ids == [id("gone"), id("merged")] && *since == started()
            })
            .times(1)
            .returning(|_, ids, _| Ok(ids.len()));
        let mut directory = vendor(Capabilities::ALL);
        directory
            .expect_get()
            .times(4)
            .returning(|asked| match asked.as_str() {
                "gone" => Ok(None),
                "alive" => Ok(Some(customer("alive"))),
                "merged" => Ok(Some(customer("survivor"))),
                _ => Err(PosError::BadAnswer {
                    vendor: Vendor::Treez,
                    message: "no name".into(),
                    response: None,
                }),
            });
        let step = sweep(&service(mirror, directory)).await.unwrap();
        assert_eq!(
            step,
            SweepStep {
                examined: 4,
                removed: 2,
                next: Some(PageToken("77".into())),
            }
        );
    }

    #[tokio::test]
    async fn a_pos_that_cannot_read_one_customer_is_not_asked() {
        let mut mirror = unseen(&["a", "b"], None);
        mirror
            .expect_tombstone()
            .withf(|_, ids, _| ids == [id("a"), id("b")])
            .times(1)
            .returning(|_, ids, _| Ok(ids.len()));
        let mut directory = vendor(Capabilities {
            get_customer: false,
            ..Capabilities::ALL
        });
        directory.expect_get().never();
        let step = sweep(&service(mirror, directory)).await.unwrap();
        assert_eq!((step.examined, step.removed, step.next), (2, 2, None));
    }

    #[tokio::test]
    async fn an_unreachable_pos_stops_the_sweep_before_any_tombstone() {
        let mut mirror = unseen(&["gone", "unknown"], None);
        mirror.expect_tombstone().never();
        let mut directory = vendor(Capabilities::ALL);
        directory
            .expect_get()
            .returning(|asked| match asked.as_str() {
                "gone" => Ok(None),
                _ => Err(PosError::Timeout {
                    vendor: Vendor::Treez,
                    after: std::time::Duration::from_secs(1),
                }),
            });
        let error = sweep(&service(mirror, directory)).await.unwrap_err();
        assert!(matches!(
            error,
            CustomerError::Pos(PosError::Timeout { .. })
        ));
    }

    #[tokio::test]
    async fn the_local_pos_is_never_swept() {
        let mut mirror = MockCustomerMirror::new();
        mirror.expect_unseen().never();
        mirror.expect_tombstone().never();
        let mut directory = MockCustomerDirectory::new();
        directory.expect_is_mirror().return_const(true);
        let step = sweep(&service(mirror, directory)).await.unwrap();
        assert_eq!(step, SweepStep::default());
    }
}
