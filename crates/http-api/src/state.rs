//! What every handler shares, and how a store's POS port is opened.

use std::sync::Arc;

use domain::{
    CustomerDirectory, CustomerService, Operation, PosConnections, PosError, Store, Vendor,
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
pub struct Connections {
    database: Database,
}

impl Connections {
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

impl PosConnections for Connections {
    fn directory_for(&self, store: &Store) -> Result<Arc<dyn CustomerDirectory>, PosError> {
        match store.vendor {
            Vendor::Local => Ok(Arc::new(self.database.local_pos(store.id))),
            _ => pos_adapters::connect(store).map_err(|e| {
                tracing::warn!(store = %store.id, error = %e, "store has no usable POS");
                PosError::Unsupported(Operation::ListCustomers)
            }),
        }
    }
}
