//! The use cases: what a kiosk can ask of a store's customers, whatever POS the store runs.
//!
//! One module per use case (reads, creates, updates, sync, recovery), with what they share
//! beside them: the duplicate look-up, the idempotency wrapper and the field helpers. Whether a
//! store's POS is the mirror itself (the built-in `local` POS) is decided once, when the store
//! is opened ([`Pos`]); the use cases match on that, never ask the directory again.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::customer::Customer;
use crate::error::CustomerError;
use crate::ports::{
    CatalogId, CreateLocks, CustomerDirectory, CustomerMirror, IdempotencyStore, OptionalField,
    PendingCreates, PosConnections, Store, StoreRegistry,
};
use crate::query::PageToken;

mod create;
mod fields;
mod idempotency;
mod lookup;
mod read;
mod recovery;
mod sync;
mod update;

/// Where an answer came from: the POS itself, or the mirror because the POS could not be
/// reached (or cannot do what was asked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSource {
    Pos,
    Mirror,
}

impl DataSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DataSource::Pos => "pos",
            DataSource::Mirror => "mirror",
        }
    }
}

/// What one step of a sync copied, and where the next starts (`None`: done).
#[derive(Clone, Debug, PartialEq)]
pub struct SyncPage {
    pub copied: usize,
    pub next: Option<PageToken>,
}

/// A page of a list or search, with an opaque cursor for the next.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing {
    pub customers: Vec<Customer>,
    pub next_cursor: Option<String>,
    pub source: DataSource,
}

/// What a create did. A duplicate is an outcome, not an error, because an idempotent replay
/// must give it back exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CreateOutcome {
    Created(Customer),
    AlreadyExists(Customer),
}

/// One bulk item's outcome, in input order.
pub type BulkItem = Result<CreateOutcome, CustomerError>;

/// What one [`CustomerService::recover_pending`] pass did with the journaled creates it found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Found (in the mirror, or at the vendor and then written to the mirror): settled.
    pub recovered: usize,
    /// Not at the vendor: counted, and looked for again on a later pass.
    pub not_found: usize,
    /// Given up: not at the vendor after `recovery_attempts` looks, nothing to look it up by,
    /// an unreadable entry, or its store is gone.
    pub dropped: usize,
    /// Could not be looked for now (vendor unreachable, database error): kept for a later pass.
    pub deferred: usize,
}

impl RecoveryReport {
    /// Entries the pass looked at.
    pub fn examined(&self) -> usize {
        self.recovered + self.not_found + self.dropped + self.deferred
    }
}

#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// Bulk items in flight at once for one request.
    pub bulk_concurrency: usize,
    /// How long a request waits for another with the same `Idempotency-Key` to finish.
    pub idempotency_wait: Duration,
    /// After a create whose outcome is unknown (timeout, cut connection, 5xx, unreadable
    /// answer), how long to let the vendor finish before looking for the customer there.
    pub reconcile_after: Duration,
    /// How old a journaled create must be before recovery looks at it: longer than a request
    /// can still be working on it, in this instance or another sharing the database (see
    /// [`ServiceSettings::orphan_age_for`]).
    pub orphan_age: Duration,
    /// Definitive "not at the vendor" answers after which recovery gives an entry up.
    pub recovery_attempts: u32,
    /// How long recovery holds its claim on one journaled create (a claim of several holds
    /// that many times as long): more than looking for it takes (see
    /// [`ServiceSettings::recovery_lease_for`]). Another instance takes it up after that.
    pub recovery_lease: Duration,
}

/// Added to the orphan age for the database writes around a create and the clocks of several
/// instances not agreeing exactly.
const ORPHAN_MARGIN: Duration = Duration::from_secs(1);
const DEFAULT_POS_TIMEOUT: Duration = Duration::from_secs(10);

impl ServiceSettings {
    /// The defaults, with the orphan age that follows `pos_timeout` (the most one vendor call
    /// may take, retries included).
    pub fn for_pos_timeout(pos_timeout: Duration) -> Self {
        let defaults = Self::default();
        Self {
            orphan_age: Self::orphan_age_for(pos_timeout, defaults.reconcile_after),
            recovery_lease: Self::recovery_lease_for(pos_timeout),
            ..defaults
        }
    }

    /// The longest recovery can take over one journaled create, plus a margin: opening its
    /// store's POS and looking for the customer there (a token and one search per key, each
    /// at most `pos_timeout`: 4 x `pos_timeout`). 5 s with a 1 s POS timeout; 41 s with the
    /// default 10 s.
    pub fn recovery_lease_for(pos_timeout: Duration) -> Duration {
        pos_timeout.saturating_mul(4).saturating_add(ORPHAN_MARGIN)
    }

    /// The longest a request can still be working on a create it journaled, plus a margin:
    /// the token and the create calls (2 x `pos_timeout`), the pause before looking for a lost
    /// answer (`reconcile_after`), and that look, one search per key (3 x `pos_timeout`).
    /// 7 s with a 1 s POS timeout; 52 s with the default 10 s.
    pub fn orphan_age_for(pos_timeout: Duration, reconcile_after: Duration) -> Duration {
        pos_timeout
            .saturating_mul(5)
            .saturating_add(reconcile_after)
            .saturating_add(ORPHAN_MARGIN)
    }
}

impl Default for ServiceSettings {
    fn default() -> Self {
        let reconcile_after = Duration::from_secs(1);
        Self {
            bulk_concurrency: 4,
            idempotency_wait: Duration::from_secs(15),
            reconcile_after,
            orphan_age: Self::orphan_age_for(DEFAULT_POS_TIMEOUT, reconcile_after),
            recovery_attempts: 3,
            recovery_lease: Self::recovery_lease_for(DEFAULT_POS_TIMEOUT),
        }
    }
}

pub struct CustomerService {
    stores: Arc<dyn StoreRegistry>,
    mirror: Arc<dyn CustomerMirror>,
    idempotency: Arc<dyn IdempotencyStore>,
    pending: Arc<dyn PendingCreates>,
    connections: Arc<dyn PosConnections>,
    locks: Arc<dyn CreateLocks>,
    settings: ServiceSettings,
}

/// A store's POS as the use cases see it, decided once when the store is opened.
#[derive(Clone)]
enum Pos {
    /// The built-in `local` POS: its storage *is* the mirror. Nothing is copied to the mirror,
    /// nothing journaled, and there is no other source to fall back on.
    Local(Arc<dyn CustomerDirectory>),
    /// A vendor's POS, of which the mirror is a copy.
    Vendor(Arc<dyn CustomerDirectory>),
}

impl Pos {
    fn of(directory: Arc<dyn CustomerDirectory>) -> Self {
        if directory.is_mirror() {
            Pos::Local(directory)
        } else {
            Pos::Vendor(directory)
        }
    }

    fn directory(&self) -> &dyn CustomerDirectory {
        match self {
            Pos::Local(directory) | Pos::Vendor(directory) => directory.as_ref(),
        }
    }
}

/// A store and its POS, opened for one use case.
struct Opened {
    store: Store,
    pos: Pos,
}

impl CustomerService {
    pub fn new(
        stores: Arc<dyn StoreRegistry>,
        mirror: Arc<dyn CustomerMirror>,
        idempotency: Arc<dyn IdempotencyStore>,
        pending: Arc<dyn PendingCreates>,
        connections: Arc<dyn PosConnections>,
        locks: Arc<dyn CreateLocks>,
        settings: ServiceSettings,
    ) -> Self {
        Self {
            stores,
            mirror,
            idempotency,
            pending,
            connections,
            locks,
            settings,
        }
    }

    /// What this service was built with (the recovery loop paces itself on the orphan age).
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    async fn store(&self, catalog: &CatalogId) -> Result<Store, CustomerError> {
        self.stores
            .store_for_catalog(catalog)
            .await?
            .ok_or(CustomerError::CatalogNotFound)
    }

    async fn open(&self, catalog: &CatalogId) -> Result<Opened, CustomerError> {
        let store = self.store(catalog).await?;
        let pos = Pos::of(self.connections.directory_for(&store)?);
        Ok(Opened { store, pos })
    }

    /// The mirror is a cache of the POS: failing to write it must not fail a request whose POS
    /// part succeeded, so it is logged and the next read repairs it.
    ///
    /// Answers the customers as the mirror now holds them: what the POS never gives back
    /// (`unknown`) filled in from the mirror, so a kiosk sees it on live reads too; the POS's
    /// own answer when the mirror could not be written.
    /// A read's copy: [`Self::copy_to_mirror`] when the answer needs what only the mirror
    /// knows; otherwise the answer goes back at once and its copy is written behind it
    /// ([`CustomerMirror::upsert_behind`]), off the kiosk's wait.
    async fn copy_read_to_mirror(
        &self,
        store: &Store,
        customers: Vec<Customer>,
        unknown: &[OptionalField],
    ) -> Vec<Customer> {
        if !unknown.is_empty() {
            return self.copy_to_mirror(store, customers, unknown).await;
        }
        if !customers.is_empty() {
            self.mirror.upsert_behind(store.id, customers.clone());
        }
        customers
    }

    async fn copy_to_mirror(
        &self,
        store: &Store,
        customers: Vec<Customer>,
        unknown: &[OptionalField],
    ) -> Vec<Customer> {
        if customers.is_empty() {
            return customers;
        }
        match self.mirror.upsert(store.id, &customers, unknown).await {
            Ok(stored) if stored.len() == customers.len() => stored,
            Ok(_) => customers,
            Err(e) => {
                tracing::warn!(store = %store.id, error = %e, "could not update the mirror");
                customers
            }
        }
    }
}

#[cfg(test)]
mod tests;
