//! What every handler shares, and how a store's POS port is opened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use domain::{
    CustomerDirectory, CustomerService, Operation, PosConnections, PosError, Store, StoreId, Vendor,
};
use persistence::Database;

use crate::auth::TokenVerifier;

pub struct AppState {
    pub service: Arc<CustomerService>,
    pub verifier: TokenVerifier,
    pub database: Database,
}

/// Opens a store's POS: the built-in `local` POS lives in our database; every other vendor
/// comes from the pos-adapters crate.
///
/// A vendor's adapter is opened once per store and kept, since it holds what must outlive a
/// request: the store's connection pool, token, rate limiter and circuit breaker. It is opened
/// again when the store's vendor or config changes.
pub struct Connections {
    database: Database,
    settings: pos_adapters::Settings,
    open: Mutex<HashMap<StoreId, Opened>>,
}

struct Opened {
    vendor: Vendor,
    config: serde_json::Value,
    directory: Arc<dyn CustomerDirectory>,
}

impl Connections {
    /// `settings` are the deployment's (`POS_GATEWAY_POS_TIMEOUT`), for every vendor store.
    pub fn new(database: Database, settings: pos_adapters::Settings) -> Self {
        Self {
            database,
            settings,
            open: Mutex::new(HashMap::new()),
        }
    }
}

impl PosConnections for Connections {
    fn directory_for(&self, store: &Store) -> Result<Arc<dyn CustomerDirectory>, PosError> {
        if store.vendor == Vendor::Local {
            return Ok(Arc::new(self.database.local_pos(store.id)));
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(opened) = open.get(&store.id)
            && opened.vendor == store.vendor
            && opened.config == store.config
        {
            return Ok(opened.directory.clone());
        }
        let directory = pos_adapters::connect_with(store, &self.settings).map_err(|e| {
            tracing::warn!(store = %store.id, error = %e, "store has no usable POS");
            PosError::Unsupported(Operation::ListCustomers)
        })?;
        open.insert(
            store.id,
            Opened {
                vendor: store.vendor,
                config: store.config.clone(),
                directory: directory.clone(),
            },
        );
        Ok(directory)
    }
}
