//! What a store's sync shares with every process on the database: its lease (`sync_leases`,
//! so one process at a time syncs a store, and a dead one's lease runs out) and its last run
//! (`sync_runs`, for `pos-gateway sync --status`, the metrics, and the scheduled sync, which
//! skips a store synced less than an interval ago).

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, SubsecRound as _, TimeDelta, Utc};
use diesel::upsert::excluded;
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _,
    Queryable, Selectable, SelectableHelper as _,
};
use diesel_async::RunQueryDsl as _;
use domain::{RepositoryError, StoreId};

use crate::database::{Database, db_error, now};
use crate::schema::{sync_leases as leases, sync_runs as runs};

/// Who holds a store's sync, until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncLease {
    pub store: StoreId,
    /// The holder's name (`SyncLeases::acquire`'s `owner`): which process on which host.
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// The `sync_leases` table: a row per store being synced, held by one process until it runs out.
#[derive(Clone, Debug)]
pub struct SyncLeases {
    db: Database,
}

fn later(at: NaiveDateTime, by: Duration) -> NaiveDateTime {
    TimeDelta::from_std(by)
        .ok()
        .and_then(|by| at.checked_add_signed(by))
        .unwrap_or(NaiveDateTime::MAX)
}

impl SyncLeases {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }

    /// Takes the store's sync for `owner` for `lease`, in one statement: when nobody holds it,
    /// its lease ran out (the holder died or hung), or `owner` holds it already. Whether
    /// `owner` holds it now.
    pub async fn acquire(
        &self,
        store: StoreId,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, RepositoryError> {
        let now = now();
        let until = later(now, lease);
        let taken = with_connection!(self.db, |conn| {
            let upsert = diesel::insert_into(leases::table)
                .values((
                    leases::store_id.eq(store.0),
                    leases::owner.eq(owner),
                    leases::until.eq(until),
                ))
                .on_conflict(leases::store_id)
                .do_update()
                .set((
                    leases::owner.eq(excluded(leases::owner)),
                    leases::until.eq(excluded(leases::until)),
                ));
            // `ON CONFLICT ... DO UPDATE ... WHERE`: a held lease is left alone (0 rows).
            diesel::query_dsl::methods::FilterDsl::filter(
                upsert,
                leases::until.le(now).or(leases::owner.eq(owner)),
            )
            .execute(conn)
            .await
            .map_err(db_error)
        })?;
        Ok(taken == 1)
    }

    /// Extends `owner`'s lease by `lease` from now; `false` when `owner` no longer holds it
    /// (it ran out and another process took it): the caller must stop.
    pub async fn renew(
        &self,
        store: StoreId,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, RepositoryError> {
        let until = later(now(), lease);
        let renewed = with_connection!(self.db, |conn| {
            diesel::update(
                leases::table
                    .filter(leases::store_id.eq(store.0))
                    .filter(leases::owner.eq(owner)),
            )
            .set(leases::until.eq(until))
            .execute(conn)
            .await
            .map_err(db_error)
        })?;
        Ok(renewed == 1)
    }

    /// Gives the store's sync up, if `owner` still holds it.
    pub async fn release(&self, store: StoreId, owner: &str) -> Result<(), RepositoryError> {
        with_connection!(self.db, |conn| {
            diesel::delete(
                leases::table
                    .filter(leases::store_id.eq(store.0))
                    .filter(leases::owner.eq(owner)),
            )
            .execute(conn)
            .await
            .map(drop)
            .map_err(db_error)
        })
    }

    /// The leases that hold now (not run out), by store.
    pub async fn held(&self) -> Result<Vec<SyncLease>, RepositoryError> {
        let now = now();
        let rows = with_connection!(self.db, |conn| {
            leases::table
                .filter(leases::until.gt(now))
                .order(leases::store_id.asc())
                .select((leases::store_id, leases::owner, leases::until))
                .load::<(i64, String, NaiveDateTime)>(conn)
                .await
                .map_err(db_error)
        })?;
        Ok(rows
            .into_iter()
            .map(|(store, owner, until)| SyncLease {
                store: StoreId(store),
                owner,
                until: until.and_utc(),
            })
            .collect())
    }
}

/// How a store's latest finished sync ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Every page copied and the sweep done.
    Ok,
    /// Stopped (the POS refused, stayed unavailable, the database failed, the lease was lost);
    /// the next run resumes where it stopped.
    Failed,
}

impl SyncOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncOutcome::Ok => "ok",
            SyncOutcome::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "ok" => Some(SyncOutcome::Ok),
            "failed" => Some(SyncOutcome::Failed),
            _ => None,
        }
    }
}

/// What a pass walks: every customer (then looks for those gone at the POS), or those changed
/// since the last complete pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassKind {
    Full,
    Incremental,
}

impl PassKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PassKind::Full => "full",
            PassKind::Incremental => "incremental",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "full" => Some(PassKind::Full),
            "incremental" => Some(PassKind::Incremental),
            _ => None,
        }
    }
}

/// A pass that a run completed: its kind and when it started (before its first page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedPass {
    pub kind: PassKind,
    pub started_at: DateTime<Utc>,
}

/// What a finished run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResult {
    pub outcome: SyncOutcome,
    /// Customers copied into the mirror by this run.
    pub copied: u64,
    /// Customers gone at the POS marked deleted by this run.
    pub removed: u64,
    /// Why it failed: the sync's own words, never a customer's data.
    pub error: Option<String>,
    /// The pass this run completed, if it did (a run may also stop part way, or resume a pass
    /// and complete it); its start moves `synced_through` on.
    pub completed: Option<CompletedPass>,
}

/// A store's last sync: when the latest run started, and how the latest finished one ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRun {
    pub store: StoreId,
    pub started_at: DateTime<Utc>,
    /// `None` before any run finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Of the latest finished run; `None` before any finished (or from a newer version).
    pub result: Option<SyncResult>,
    /// The kind of pass the latest run worked on (`None` before incremental syncs).
    pub kind: Option<PassKind>,
    /// When the last complete pass started: the POS's changes before then are in the mirror.
    pub synced_through: Option<DateTime<Utc>>,
    /// When the last complete full pass started.
    pub full_pass_at: Option<DateTime<Utc>>,
}

impl SyncRun {
    /// Whether the latest run has not finished (it is running, or its process died).
    pub fn unfinished(&self) -> bool {
        self.finished_at.is_none_or(|end| end < self.started_at)
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = runs, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct RunRow {
    store_id: i64,
    started_at: NaiveDateTime,
    finished_at: Option<NaiveDateTime>,
    outcome: Option<String>,
    copied: i64,
    removed: i64,
    error: Option<String>,
    kind: Option<String>,
    synced_through: Option<NaiveDateTime>,
    full_pass_at: Option<NaiveDateTime>,
}

impl From<RunRow> for SyncRun {
    fn from(row: RunRow) -> Self {
        let result = row
            .outcome
            .as_deref()
            .and_then(SyncOutcome::parse)
            .map(|outcome| SyncResult {
                outcome,
                copied: u64::try_from(row.copied).unwrap_or(0),
                removed: u64::try_from(row.removed).unwrap_or(0),
                error: row.error,
                // What a run completed lives on in `synced_through` and `full_pass_at`.
                completed: None,
            });
        SyncRun {
            store: StoreId(row.store_id),
            started_at: row.started_at.and_utc(),
            finished_at: row.finished_at.map(|at| at.and_utc()),
            result,
            kind: row.kind.as_deref().and_then(PassKind::parse),
            synced_through: row.synced_through.map(|at| at.and_utc()),
            full_pass_at: row.full_pass_at.map(|at| at.and_utc()),
        }
    }
}

/// The `sync_runs` table: a row per store that was ever synced.
#[derive(Clone, Debug)]
pub struct SyncRuns {
    db: Database,
}

impl SyncRuns {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }

    /// A run of the store's sync starts now, on a pass of `kind` (the latest finished run's
    /// result is kept); when.
    pub async fn started(
        &self,
        store: StoreId,
        kind: PassKind,
    ) -> Result<DateTime<Utc>, RepositoryError> {
        // As stored: PostgreSQL keeps microseconds.
        let now = now().trunc_subsecs(6);
        with_connection!(self.db, |conn| {
            diesel::insert_into(runs::table)
                .values((
                    runs::store_id.eq(store.0),
                    runs::started_at.eq(now),
                    runs::kind.eq(Some(kind.as_str())),
                ))
                .on_conflict(runs::store_id)
                .do_update()
                .set((runs::started_at.eq(now), runs::kind.eq(Some(kind.as_str()))))
                .execute(conn)
                .await
                .map(drop)
                .map_err(db_error)
        })?;
        Ok(now.and_utc())
    }

    /// The run that started last has finished, with `result`.
    pub async fn finished(
        &self,
        store: StoreId,
        result: &SyncResult,
    ) -> Result<(), RepositoryError> {
        let now = now();
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let through = result.completed.map(|pass| pass.started_at.naive_utc());
        let full = result
            .completed
            .filter(|pass| pass.kind == PassKind::Full)
            .map(|pass| pass.started_at.naive_utc());
        with_connection!(self.db, |conn| {
            let row = runs::table.filter(runs::store_id.eq(store.0));
            let ended = (
                runs::finished_at.eq(Some(now)),
                runs::outcome.eq(Some(result.outcome.as_str())),
                runs::copied.eq(count(result.copied)),
                runs::removed.eq(count(result.removed)),
                runs::error.eq(result.error.as_deref()),
            );
            // A run that completed no pass leaves where the store is synced through alone.
            match (through, full) {
                (None, _) => diesel::update(row).set(ended).execute(conn).await,
                (Some(through), None) => {
                    diesel::update(row)
                        .set((ended, runs::synced_through.eq(Some(through))))
                        .execute(conn)
                        .await
                }
                (Some(through), Some(full)) => {
                    diesel::update(row)
                        .set((
                            ended,
                            runs::synced_through.eq(Some(through)),
                            runs::full_pass_at.eq(Some(full)),
                        ))
                        .execute(conn)
                        .await
                }
            }
            .map(drop)
            .map_err(db_error)
        })
    }

    /// The store's last run; `None` if it was never synced.
    pub async fn of(&self, store: StoreId) -> Result<Option<SyncRun>, RepositoryError> {
        let row = with_connection!(self.db, |conn| {
            runs::table
                .find(store.0)
                .select(RunRow::as_select())
                .first::<RunRow>(conn)
                .await
                .optional()
                .map_err(db_error)
        })?;
        Ok(row.map(SyncRun::from))
    }

    /// Every store's last run, by store.
    pub async fn all(&self) -> Result<Vec<SyncRun>, RepositoryError> {
        let rows = with_connection!(self.db, |conn| {
            runs::table
                .order(runs::store_id.asc())
                .select(RunRow::as_select())
                .load::<RunRow>(conn)
                .await
                .map_err(db_error)
        })?;
        Ok(rows.into_iter().map(SyncRun::from).collect())
    }
}
