//! The mirror's copies of POS read answers, written behind the answers
//! ([`domain::CustomerMirror::upsert_behind`]): a bounded queue, one task per process that
//! drains it in batches (one statement per store per batch), and counters of what was written
//! and what was dropped because the queue was full.
//!
//! A copy waits in memory for milliseconds, so a crash loses at most the queue: a cache the next
//! read or sync fills again. Each copy carries the time the POS answered; the statement skips a
//! row that a later write (a create, an update, a sync page, another read) or a deletion has
//! touched since, so a copy that was queued a while never makes the mirror older.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDateTime;
use domain::{Customer, StoreId};
use tokio::sync::mpsc;

use crate::mirror::Mirror;

/// Read answers waiting at most (each a page of up to 100 customers, or one). Beyond this the
/// database is behind by seconds; a new answer is dropped rather than memory grown.
pub const QUEUE: usize = 1024;
/// Queued answers one batch takes at most.
const BATCH: usize = 64;
/// How long the task waits for more after the first answer of a batch that is not full.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// What [`WriteBehind`] has done since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BehindStats {
    /// Customers written.
    pub written: u64,
    /// Customers dropped: the queue was full (or no runtime to write them on).
    pub dropped: u64,
    /// Customers whose write failed (the database refused or was unreachable).
    pub failed: u64,
    /// Statements sent to write them (one per store per batch).
    pub statements: u64,
}

struct Item {
    store: StoreId,
    customers: Vec<Customer>,
    seen: NaiveDateTime,
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    statements: AtomicU64,
}

/// The queue and its writer; one per [`crate::Database`] (shared by its clones).
pub(crate) struct WriteBehind {
    queue: mpsc::Sender<Item>,
    counters: Arc<Counters>,
}

impl WriteBehind {
    /// Starts the writer on the current Tokio runtime; `None` outside one.
    pub(crate) fn start(mirror: Mirror) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (queue, items) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        runtime.spawn(write(mirror, items, counters.clone()));
        Some(Self { queue, counters })
    }

    pub(crate) fn send(&self, store: StoreId, customers: Vec<Customer>, seen: NaiveDateTime) {
        let count = customers.len() as u64;
        let item = Item {
            store,
            customers,
            seen,
        };
        if self.queue.try_send(item).is_err() {
            self.counters.dropped.fetch_add(count, Ordering::Relaxed);
        }
    }

    pub(crate) fn stats(&self) -> BehindStats {
        // Statements first: the rows of every statement counted are counted by then.
        let statements = self.counters.statements.load(Ordering::Acquire);
        BehindStats {
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            statements,
        }
    }
}

/// Drains the queue until every sender is gone: what is queued within [`LINGER`] of a batch's
/// first answer goes in that batch, one statement per store, each row with the time of its own
/// answer.
async fn write(mirror: Mirror, mut items: mpsc::Receiver<Item>, counters: Arc<Counters>) {
    let mut batch: Vec<Item> = Vec::with_capacity(BATCH);
    while items.recv_many(&mut batch, BATCH).await > 0 {
        gather(&mut batch, BATCH, || items.try_recv().ok()).await;
        let mut by_store: BTreeMap<StoreId, HashMap<String, (Customer, NaiveDateTime)>> =
            BTreeMap::new();
        for item in batch.drain(..) {
            let rows = by_store.entry(item.store).or_default();
            for customer in item.customers {
                // One statement may not touch a row twice: a customer's newest answer wins.
                let id = customer.customer_id.as_str().to_owned();
                match rows.get(&id) {
                    Some((_, seen)) if *seen > item.seen => {}
                    _ => {
                        rows.insert(id, (customer, item.seen));
                    }
                }
            }
        }
        for (store, rows) in by_store {
            let rows: Vec<(Customer, NaiveDateTime)> = rows.into_values().collect();
            let count = rows.len() as u64;
            match mirror.upsert_seen(store, &rows).await {
                Ok(()) => counters.written.fetch_add(count, Ordering::Relaxed),
                Err(e) => {
                    tracing::warn!(store = %store, error = %e, "could not copy a read answer into the mirror; the next read or sync does");
                    counters.failed.fetch_add(count, Ordering::Relaxed)
                }
            };
            // After its rows are counted, so a reader never sees more statements than rows.
            counters.statements.fetch_add(1, Ordering::Release);
        }
    }
}

/// Fills a batch that is not full with what arrives within [`LINGER`]. Reads of a quiet store
/// come one at a time: without the wait each was a statement of its own (a database round trip
/// per proxied read), and sleeping rather than waiting on the queue means the answers that
/// follow do not wake the task one by one.
pub(crate) async fn gather<T>(
    batch: &mut Vec<T>,
    limit: usize,
    mut queued: impl FnMut() -> Option<T>,
) {
    if batch.len() >= limit {
        return;
    }
    tokio::time::sleep(LINGER).await;
    while batch.len() < limit {
        match queued() {
            Some(item) => batch.push(item),
            None => break,
        }
    }
}
