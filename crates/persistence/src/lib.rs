//! pos-gateway's storage: Diesel + diesel-async repositories implementing the domain's ports
//! (store registry, customer mirror, idempotency records, the outbox of pending vendor creates),
//! the built-in `local` POS, a small settings table, and (PostgreSQL only) the vendor budgets and
//! tokens every replica shares. Vendor credentials in store configs are encrypted at rest (see
//! [`CredentialsKey`]). PostgreSQL serves deployments; SQLite is the embedded default. Migrations for
//! both are embedded in the binary.
//!
//! This crate must not depend on actix, reqwest, pos-adapters or http-api: it knows the domain
//! and the database, nothing else.

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend `$db` (anything
/// with a `pool` field, or a [`Database`]) uses. The body is expanded once per backend, so it
/// must be Diesel code both PostgreSQL and SQLite accept; it may use `.await`, `?` (on a
/// `RepositoryError`) and `return`, as the enclosing async fn's own code.
macro_rules! with_connection {
    ($db:expr, |$conn:ident| $body:expr) => {
        match &$db.pool {
            $crate::database::Pool::Postgres(pool) => {
                let mut pooled = $crate::database::checkout(pool).await?;
                let $conn = &mut *pooled;
                $body
            }
            $crate::database::Pool::Sqlite(pool) => {
                let mut pooled = $crate::database::checkout(pool).await?;
                let $conn = &mut *pooled;
                $body
            }
        }
    };
}

/// A pool to run [`with_connection!`] on instead of the database's main one.
pub(crate) struct Relaxed {
    pub(crate) pool: database::Pool,
}

mod behind;
mod chores;
mod credentials;
mod database;
mod idempotency;
mod locks;
mod mirror;
mod outbox;
mod redact;
mod schema;
mod settings;
mod stores;
mod sync;
mod tls;
mod vendor_state;

pub use behind::BehindStats;
pub use credentials::{CredentialsError, CredentialsKey, InvalidCredentialsKey, KEY_FORMAT};
pub use database::{Backend, Database, PersistenceError};
pub use idempotency::IdempotencyRecords;
pub use locks::Locks;
pub use mirror::{LocalPos, Mirror};
pub use outbox::Outbox;
pub use redact::redact_url;
pub use settings::Settings;
pub use stores::{AdminError, CatalogSummary, RemovedStore, StoreSummary, Stores};
pub use sync::{
    CompletedPass, PassKind, SyncLease, SyncLeases, SyncOutcome, SyncResult, SyncRun, SyncRuns,
};
pub use vendor_state::{StoredToken, VendorBudgets, VendorTokens};
