//! Deletes a kiosk's answer does not wait for: journal entries of creates whose customer is in
//! the mirror ([`domain::PendingCreates::settle_behind`]) and create locks given up
//! ([`domain::CreateLocks::release_behind`]). One task per process drains the queue; what is
//! queued within a few milliseconds of a batch's first chore goes in one statement per kind, so
//! a create's two deletes cost a share of two statements, not two of their own, even when
//! creates come one at a time.
//!
//! Nothing is dropped: the queue is unbounded, and bounded in practice by the requests in
//! flight (each queues at most two), since the task keeps draining whether the database
//! answers or not. What a crash or a failed statement leaves behind is what a crash between
//! the mirror write and the settle always left: an entry recovery finds in the mirror, and
//! locks that run out with their lease.

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use tokio::sync::mpsc;

use crate::database::{Database, db_error};
use crate::schema::{create_locks as locks, pending_creates as pending};

/// Chores one batch takes at most.
const BATCH: usize = 256;

pub(crate) enum Chore {
    /// A `pending_creates` id.
    Settle(i64),
    /// A create lease's owner (a UUID: unique across stores).
    Release(String),
}

/// The queue and its task; one per [`Database`] (shared by its clones).
pub(crate) struct Chores {
    queue: mpsc::UnboundedSender<Chore>,
}

impl Chores {
    /// Starts the task on the current Tokio runtime; `None` outside one.
    pub(crate) fn start(db: Database) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (queue, chores) = mpsc::unbounded_channel();
        runtime.spawn(run(db, chores));
        Some(Self { queue })
    }

    /// Whether it was queued (not when the task is gone with its runtime).
    pub(crate) fn send(&self, chore: Chore) -> bool {
        self.queue.send(chore).is_ok()
    }
}

async fn run(db: Database, mut chores: mpsc::UnboundedReceiver<Chore>) {
    let mut batch = Vec::with_capacity(BATCH);
    while chores.recv_many(&mut batch, BATCH).await > 0 {
        crate::behind::gather(&mut batch, BATCH, || chores.try_recv().ok()).await;
        let (mut settled, mut released) = (Vec::new(), Vec::new());
        for chore in batch.drain(..) {
            match chore {
                Chore::Settle(id) => settled.push(id),
                Chore::Release(owner) => released.push(owner),
            }
        }
        if !settled.is_empty()
            && let Err(e) = settle(&db, &settled).await
        {
            tracing::warn!(entries = settled.len(), error = %e, "could not settle journaled creates; recovery will");
        }
        if !released.is_empty()
            && let Err(e) = release(&db, &released).await
        {
            tracing::warn!(leases = released.len(), error = %e, "could not release create locks; their leases run out");
        }
    }
}

async fn settle(db: &Database, ids: &[i64]) -> Result<(), domain::RepositoryError> {
    let relaxed = crate::Relaxed { pool: db.relaxed() };
    with_connection!(relaxed, |conn| {
        diesel::delete(pending::table.filter(pending::id.eq_any(ids)))
            .execute(conn)
            .await
            .map(drop)
            .map_err(db_error)
    })
}

async fn release(db: &Database, owners: &[String]) -> Result<(), domain::RepositoryError> {
    let relaxed = crate::Relaxed { pool: db.relaxed() };
    with_connection!(relaxed, |conn| {
        diesel::delete(locks::table.filter(locks::owner.eq_any(owners)))
            .execute(conn)
            .await
            .map(drop)
            .map_err(db_error)
    })
}
