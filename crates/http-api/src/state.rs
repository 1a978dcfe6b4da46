//! What every handler shares, and how a store's POS port is opened.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use domain::{
    CatalogId, CustomerDirectory, CustomerService, Operation, PosConnections, PosError,
    RepositoryError, Store, StoreId, StoreRegistry, Vendor,
};
use persistence::Database;

use crate::auth::TokenVerifier;
use crate::limits::Limits;
use crate::shared_state::SharedVendorState;

pub struct AppState {
    pub service: Arc<CustomerService>,
    pub verifier: TokenVerifier,
    pub database: Database,
    /// Each catalog's request budget and the cap on bulks in flight.
    pub limits: Limits,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
}

/// Opens a store's POS: the built-in `local` POS lives in our database; every other vendor
/// comes from the pos-adapters crate.
///
/// A vendor's adapter is opened once per store and kept, since it holds what must outlive a
/// request: the store's connection pool, token, rate limiter and circuit breaker. It is opened
/// again when the store's vendor or config changes.
///
/// On PostgreSQL, the store's rate budget and token are shared with every replica on the
/// database ([`SharedVendorState`]); the breaker stays per replica (docs/deployment.md).
pub struct Connections {
    database: Database,
    settings: pos_adapters::Settings,
    shared: Option<SharedVendorState>,
    open: quick_cache::sync::Cache<StoreId, Arc<Opened>>,
    opening: Mutex<()>,
}

/// More stores than any deployment has: past it, the least used adapters are dropped (and
/// opened again when next asked for).
const OPEN_STORES_MAX: usize = 10_000;

struct Opened {
    vendor: Vendor,
    config: Arc<serde_json::Value>,
    directory: Arc<dyn CustomerDirectory>,
}

impl Connections {
    /// `settings` are the deployment's (`POS_GATEWAY_POS_TIMEOUT`), for every vendor store.
    pub fn new(database: Database, settings: pos_adapters::Settings) -> Self {
        Self {
            shared: SharedVendorState::for_database(&database, NonZeroU32::MIN),
            database,
            settings,
            open: quick_cache::sync::Cache::new(OPEN_STORES_MAX),
            opening: Mutex::new(()),
        }
    }

    /// `replicas` gateways share the database: while PostgreSQL cannot answer the shared
    /// budget, each takes that share of a store's vendor limit on its own.
    pub fn among_replicas(self, replicas: NonZeroU32) -> Self {
        Self {
            shared: SharedVendorState::for_database(&self.database, replicas),
            ..self
        }
    }
}

impl PosConnections for Connections {
    fn directory_for(&self, store: &Store) -> Result<Arc<dyn CustomerDirectory>, PosError> {
        if store.vendor == Vendor::Local {
            return Ok(Arc::new(self.database.local_pos(store.id)));
        }
        // The way every request takes: a sharded map, and the config told apart by pointer
        // (the store cache hands out one `Arc` per config); the JSON is compared only when the
        // store was read some other way.
        let same = |opened: &Opened| {
            opened.vendor == store.vendor
                && (Arc::ptr_eq(&opened.config, &store.config) || opened.config == store.config)
        };
        if let Some(opened) = self.open.get(&store.id)
            && same(&opened)
        {
            return Ok(opened.directory.clone());
        }
        // Opening is rare (a store's first request, a changed config) and done once.
        let _opening = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(opened) = self.open.get(&store.id)
            && same(&opened)
        {
            return Ok(opened.directory.clone());
        }
        let settings = self.settings.clone().with_shared(
            self.shared
                .as_ref()
                .map(|shared| shared.for_store(store.id.to_string())),
        );
        let directory = pos_adapters::connect_with(store, &settings).map_err(|e| {
            tracing::warn!(store = %store.id, error = %e, "store has no usable POS");
            match e {
                // The contract's 405: this build's gateway has no such POS.
                pos_adapters::AdapterError::NotBuilt(_) => {
                    PosError::Unsupported(Operation::ListCustomers)
                }
                pos_adapters::AdapterError::Config { vendor, message } => {
                    PosError::Misconfigured { vendor, message }
                }
            }
        })?;
        self.open.insert(
            store.id,
            Arc::new(Opened {
                vendor: store.vendor,
                config: store.config.clone(),
                directory: directory.clone(),
            }),
        );
        Ok(directory)
    }
}

/// How long a catalog's store is reused before it is read again.
pub const STORE_CACHE_TTL: Duration = Duration::from_secs(2);
/// More catalogs than any deployment has; past it, the least used are read again.
const STORE_CACHE_MAX: usize = 10_000;

/// Store look-ups kept for [`STORE_CACHE_TTL`]: every request needs its catalog's store, and
/// reading (and decrypting) it each time doubled the database work of a mirror look-up (see
/// docs/performance.md). A store changed with the CLI, in another process, is seen within the
/// TTL. Misses and errors are not kept, so a new catalog works at once.
pub struct CachedStores {
    inner: Arc<dyn StoreRegistry>,
    ttl: Duration,
    /// Sharded, so that requests of different catalogs do not queue on one lock.
    entries: quick_cache::sync::Cache<CatalogId, (Instant, Store)>,
    /// Each store's config as last read, shared by all its catalogs' entries: one `Arc` per
    /// config, by which the open adapter knows it.
    configs: quick_cache::sync::Cache<StoreId, Arc<serde_json::Value>>,
}

impl CachedStores {
    pub fn new(inner: Arc<dyn StoreRegistry>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: quick_cache::sync::Cache::new(STORE_CACHE_MAX),
            configs: quick_cache::sync::Cache::new(STORE_CACHE_MAX),
        }
    }
}

/// Names the store and its vendor in the request's span (its log lines, its trace).
fn in_span(store: Store) -> Store {
    tracing::Span::current()
        .record("store", store.id.0)
        .record("vendor", store.vendor.as_str());
    store
}

#[async_trait::async_trait]
impl StoreRegistry for CachedStores {
    async fn store_for_catalog(
        &self,
        catalog: &CatalogId,
    ) -> Result<Option<Store>, RepositoryError> {
        let kept = self.entries.get(catalog);
        if let Some((read_at, store)) = &kept
            && read_at.elapsed() < self.ttl
        {
            return Ok(Some(in_span(store.clone())));
        }
        let mut store = self.inner.store_for_catalog(catalog).await?;
        match &mut store {
            Some(store) => {
                // An unchanged config keeps its `Arc`, by which the open adapter knows it
                // (one JSON comparison per catalog and TTL, not one per request), and a
                // store's catalogs share one.
                match self.configs.get(&store.id) {
                    Some(before) if before == store.config => store.config = before,
                    _ => self.configs.insert(store.id, store.config.clone()),
                }
                self.entries
                    .insert(catalog.clone(), (Instant::now(), store.clone()));
            }
            None => {
                self.entries.remove(catalog);
            }
        }
        Ok(store.map(in_span))
    }

    async fn store_by_id(&self, id: StoreId) -> Result<Option<Store>, RepositoryError> {
        self.inner.store_by_id(id).await
    }
}
