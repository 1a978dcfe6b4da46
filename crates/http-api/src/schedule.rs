//! The scheduled sync of `serve` (`POS_GATEWAY_SYNC_INTERVAL`): every vendor store synced
//! every interval, by one replica per store per interval, however many replicas share the
//! database.
//!
//! Each replica looks every [`tick`] (a quarter of the interval, 250 ms to 1 min) at every
//! store's last run (`sync_runs`, one query). A store whose latest run started less than an
//! interval ago is skipped. For one that is due, the replica takes the store's sync lease
//! (`sync_leases`, the lease `pos-gateway sync` takes too): if another replica holds it, the
//! store is skipped; if taken, the last run is read again (another replica may have run it
//! between the look and the lease) and the store synced only if still due. A run records its
//! start before its first page, so a replica that takes the lease after it finds it recent.
//! The run is the pass `pos-gateway sync` makes, without a progress bar, and incremental: it
//! resumes a pass an interrupted run left; otherwise it asks the POS for the customers changed
//! since the last complete pass began (less a few minutes, for clocks), by each vendor's
//! modified-since listing ([`domain::CustomerQuery::changed_since`]); and once a day
//! (`POS_GATEWAY_SYNC_FULL_EVERY`), or when the store never had a complete full pass, it
//! walks every customer and then looks for those gone at the POS, which a listing of changes
//! cannot show.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::{CustomerService, StoreId, StoreRegistry as _, Vendor};
use futures::StreamExt as _;
use indicatif::ProgressBar;
use persistence::Database;

use crate::sync::{SYNC_LEASE, Want, lease_owner, leased_pass};

/// Stores one replica syncs at once.
const STORES_AT_ONCE: usize = 4;

/// How often a replica looks for stores due: a quarter of the interval, between 250 ms and a
/// minute (a store is synced at most a tick late).
pub fn tick(interval: Duration) -> Duration {
    (interval / 4).clamp(Duration::from_millis(250), Duration::from_secs(60))
}

/// How often the scheduled sync runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Every {
    /// A pass per store this often (`POS_GATEWAY_SYNC_INTERVAL`).
    pub interval: Duration,
    /// A full pass per store this often (`POS_GATEWAY_SYNC_FULL_EVERY`); incremental ones
    /// in between.
    pub full_pass: Duration,
}

/// The background task of the scheduled sync, until [`ScheduledSync::stop`].
pub struct ScheduledSync {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ScheduledSync {
    /// Starts it on the current Tokio runtime.
    pub fn spawn(every: Every, service: Arc<CustomerService>, database: Database) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(sync_until(every, service, database, stopped));
        Self { stop, task }
    }

    /// Stops it and waits until it has. A run cut short keeps its cursor (the next run, here
    /// or on another replica, resumes it once its lease has run out) and shows as
    /// `interrupted` in `sync --status` meanwhile.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the scheduled sync task ended abnormally");
        }
    }
}

async fn sync_until(
    every: Every,
    service: Arc<CustomerService>,
    database: Database,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let owner = lease_owner();
    tracing::info!(
        interval_s = every.interval.as_secs_f64(),
        full_pass_every_s = every.full_pass.as_secs_f64(),
        replica = %owner,
        "scheduled sync of every vendor store started"
    );
    loop {
        let round = async {
            if let Err(e) = sync_due(every, &service, &database, &owner).await {
                tracing::warn!(error = %format!("{e:#}"), "scheduled sync: cannot list the stores due; trying again");
            }
            tokio::time::sleep(tick(every.interval)).await;
        };
        tokio::select! {
            _ = &mut stopped => break,
            () = round => {}
        }
    }
    tracing::info!("scheduled sync stopped");
}

/// Whether a run that started `started_at` is recent enough to skip the store this interval.
fn ran_within(interval: Duration, started_at: chrono::DateTime<Utc>) -> bool {
    let age = Utc::now().signed_duration_since(started_at);
    // A start in the future (another replica's clock ahead) counts as recent.
    age.to_std().map_or(true, |age| age < interval)
}

/// Syncs, a few at once, the vendor stores due.
async fn sync_due(
    every: Every,
    service: &CustomerService,
    database: &Database,
    owner: &str,
) -> anyhow::Result<()> {
    let runs = database.sync_runs().all().await?;
    let recent: std::collections::HashSet<StoreId> = runs
        .iter()
        .filter(|run| ran_within(every.interval, run.started_at))
        .map(|run| run.store)
        .collect();
    let due: Vec<StoreId> = database
        .stores()
        .list_stores()
        .await?
        .into_iter()
        .filter(|store| store.vendor != Vendor::Local && !recent.contains(&store.id))
        .map(|store| store.id)
        .collect();
    futures::stream::iter(due)
        .for_each_concurrent(STORES_AT_ONCE, |store| {
            sync_if_due(every, service, database, owner, store)
        })
        .await;
    Ok(())
}

/// Takes the store's lease and syncs it, unless another replica holds it or ran it lately.
async fn sync_if_due(
    every: Every,
    service: &CustomerService,
    database: &Database,
    owner: &str,
    id: StoreId,
) {
    let leases = database.sync_leases();
    match leases.acquire(id, owner, SYNC_LEASE).await {
        Ok(true) => {}
        Ok(false) => return, // another replica (or a `pos-gateway sync`) is at it
        Err(e) => {
            tracing::warn!(store = %id, error = %e, "scheduled sync: cannot take the store's lease");
            return;
        }
    }
    let store = match database.sync_runs().of(id).await {
        Ok(Some(run)) if ran_within(every.interval, run.started_at) => None,
        Ok(_) => match database.stores().store_by_id(id).await {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(store = %id, error = %e, "scheduled sync: cannot read the store");
                None
            }
        },
        Err(e) => {
            tracing::warn!(store = %id, error = %e, "scheduled sync: cannot read the store's last run");
            None
        }
    };
    let Some(store) = store else {
        if let Err(e) = leases.release(id, owner).await {
            tracing::warn!(store = %id, error = %e, "scheduled sync: could not give up a lease; it runs out by itself");
        }
        return;
    };
    tracing::info!(store = %id, "scheduled sync of the store started");
    let (progress, outcome) = leased_pass(
        service,
        database,
        &store,
        owner,
        Want::Scheduled {
            full_every: every.full_pass,
        },
        false,
        &ProgressBar::hidden(),
    )
    .await;
    match outcome {
        Ok(()) => tracing::info!(
            store = %id,
            pass = progress.kind.map_or("", |kind| kind.as_str()),
            copied = progress.copied,
            removed = progress.removed,
            "scheduled sync of the store done"
        ),
        Err(e) => tracing::warn!(
            store = %id,
            copied = progress.copied,
            error = %format!("{e:#}"),
            "scheduled sync of the store stopped; the next interval resumes it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_looks_four_times_an_interval_within_bounds() {
        assert_eq!(tick(Duration::from_secs(3600)), Duration::from_secs(60));
        assert_eq!(tick(Duration::from_secs(2)), Duration::from_millis(500));
        assert_eq!(tick(Duration::from_millis(100)), Duration::from_millis(250));
    }

    #[test]
    fn a_run_is_recent_for_one_interval() {
        let hour = Duration::from_secs(3600);
        let now = Utc::now();
        assert!(ran_within(hour, now - chrono::TimeDelta::minutes(59)));
        assert!(!ran_within(hour, now - chrono::TimeDelta::minutes(61)));
        assert!(ran_within(hour, now + chrono::TimeDelta::seconds(5)));
    }
}
