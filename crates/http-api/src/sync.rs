//! `pos-gateway sync --catalog ID`: copies every customer of the store's POS into the mirror,
//! a page at a time, with a progress bar; then, the pass being complete, marks deleted
//! (tombstones) the mirror's customers of the store the POS no longer has. `serve`'s scheduled
//! sync (`crate::schedule`) runs the same code, mostly as incremental passes (the customers
//! changed since the last complete pass; no sweep); `sync --status` shows where each store's
//! stands, and where it is synced through.
//!
//! One process at a time: a run takes the store's lease (`sync_leases`, shared by every
//! process on the database), renews it every 20 s while it runs and gives it up at the end; a
//! process that dies leaves it to run out (60 s). A `sync` of a store whose lease another
//! process holds says who holds it and fails (it does not wait: the other run is doing the
//! work). Each run is recorded in `sync_runs`: its start, then its outcome and counts.
//!
//! Resumable: after each page the vendor's cursor is kept in the database (settings key
//! `sync_cursor:<store id>`), so a sync that was stopped (Ctrl-C, a vendor outage, a machine
//! restart) goes on from the page after the last one copied; `--restart` starts over.
//! Rate-limit aware: the store's adapter paces requests to the vendor's published limit, and
//! when the vendor is unavailable (429, 5xx, timeout, circuit open) the sync waits (the vendor's
//! `Retry-After` when it gives one) and asks again, up to a bound, rather than failing at once.
//!
//! Deleted customers: a pass is the walk from the first page to the last, however often it was
//! stopped and resumed; when it starts (at the first page) its time is kept
//! (`sync_pass:<store id>`). Every write of a customer into the mirror stamps it seen, the
//! pass's own and kiosks' reads alike; once the last page is copied, the customers no write has
//! touched since the pass started are looked at a batch at a time
//! (`CustomerService::sweep_unseen`, its position kept in `sync_sweep:<store id>`, so that part
//! resumes too), and those the POS no longer has are tombstoned. A pass that never reaches its
//! last page tombstones nothing; one resumed from a cursor kept by an older version, whose
//! start is unknown, neither.

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use domain::{
    CatalogId, CustomerError, CustomerService, PageToken, PosError, Store, StoreId,
    StoreRegistry as _, Vendor,
};
use indicatif::{ProgressBar, ProgressStyle};
use persistence::{
    CompletedPass, Database, PassKind, Settings, SyncLease, SyncLeases, SyncOutcome, SyncResult,
    SyncRun,
};
use serde_json::json;

use crate::config::Config;

/// Customers asked for per page; adapters lower it to their vendor's maximum.
const PAGE_SIZE: u32 = 100;
/// Unseen customers looked at per step of the sweep.
const SWEEP_BATCH: u32 = 100;
/// Waits in a row for an unavailable vendor before the sync stops (resumable).
const MAX_WAITS: u32 = 10;
/// The wait when the vendor gave no `Retry-After`.
const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// Where a store's sync keeps its state between runs (the `settings` table).
struct Keys {
    /// The vendor's cursor of the next page to copy.
    cursor: String,
    /// When the current pass started (RFC 3339).
    pass: String,
    /// Present once the pass copied its last page: where its sweep goes on (`""`: the start).
    sweep: String,
    /// Present while an incremental pass is part way: the time it lists changes from (RFC 3339),
    /// so a resumed pass asks every page with the same.
    since: String,
}

impl Keys {
    fn of(store: StoreId) -> Self {
        Self {
            cursor: format!("sync_cursor:{store}"),
            pass: format!("sync_pass:{store}"),
            sweep: format!("sync_sweep:{store}"),
            since: format!("sync_since:{store}"),
        }
    }

    async fn clear(&self, settings: &Settings) -> anyhow::Result<()> {
        for key in [&self.cursor, &self.pass, &self.sweep, &self.since] {
            settings.remove(key).await?;
        }
        Ok(())
    }
}

/// Waiting out an unavailable vendor, up to [`MAX_WAITS`] times in a row.
struct Patience {
    waits: u32,
}

impl Patience {
    /// Waits and answers `Ok` when `error` is worth asking again for; gives it back otherwise.
    async fn wait(&mut self, error: CustomerError, bar: &ProgressBar) -> Result<(), CustomerError> {
        match &error {
            CustomerError::Pos(pos) if pos.is_unreachable() && self.waits < MAX_WAITS => {
                self.waits += 1;
                let wait = retry_after(pos).unwrap_or(DEFAULT_WAIT);
                bar.set_message(format!(
                    "{pos}; asking again in {}s ({}/{MAX_WAITS})",
                    wait.as_secs_f32(),
                    self.waits
                ));
                tokio::time::sleep(wait).await;
                Ok(())
            }
            _ => Err(error),
        }
    }

    fn answered(&mut self, bar: &ProgressBar) {
        self.waits = 0;
        bar.set_message("");
    }
}

/// How far before the last complete pass's start an incremental pass asks from: for the
/// POS's clock being behind ours, and for changes the POS stamped while that pass read.
const CHANGED_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// What a run is asked to do, when no pass is part way (one that is, is resumed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// Walk every customer (`pos-gateway sync`).
    Full,
    /// What the scheduled sync does: the changes since the last complete pass, or every
    /// customer (then a look for those gone at the POS, which a listing of changes cannot
    /// show) when the store has had no complete full pass for `full_every`
    /// (`POS_GATEWAY_SYNC_FULL_EVERY`).
    Scheduled { full_every: Duration },
}

/// The pass a run works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plan {
    kind: PassKind,
    /// Incremental passes: what changed since when.
    since: Option<DateTime<Utc>>,
    /// A pass part way, resumed.
    resumed: bool,
}

/// The pass for `want`, from what the store's last runs left. `restart` forgets a pass part way.
async fn plan(
    database: &Database,
    store: StoreId,
    want: Want,
    restart: bool,
) -> anyhow::Result<Plan> {
    let settings = database.settings();
    let keys = Keys::of(store);
    if restart {
        keys.clear(&settings).await?;
    }
    let part_way =
        settings.get(&keys.cursor).await?.is_some() || settings.get(&keys.sweep).await?.is_some();
    if part_way {
        let since = settings.get(&keys.since).await?;
        return Ok(match since {
            None => Plan {
                kind: PassKind::Full,
                since: None,
                resumed: true,
            },
            Some(text) => Plan {
                kind: PassKind::Incremental,
                since: Some(
                    DateTime::parse_from_rfc3339(&text)
                        .with_context(|| format!("settings key {} is not a time", keys.since))?
                        .with_timezone(&Utc),
                ),
                resumed: true,
            },
        });
    }
    let full = Plan {
        kind: PassKind::Full,
        since: None,
        resumed: false,
    };
    let Want::Scheduled { full_every } = want else {
        return Ok(full);
    };
    let Some(run) = database.sync_runs().of(store).await? else {
        return Ok(full);
    };
    let full_is_recent = run.full_pass_at.is_some_and(|at| {
        Utc::now()
            .signed_duration_since(at)
            .to_std()
            .map_or(true, |age| age < full_every)
    });
    Ok(match run.synced_through {
        Some(through) if full_is_recent => Plan {
            kind: PassKind::Incremental,
            since: Some(through - CHANGED_OVERLAP),
            resumed: false,
        },
        _ => full,
    })
}

/// How long a sync's lease holds without renewal: a process that died gives the store up
/// this long after its last renewal.
pub const SYNC_LEASE: Duration = Duration::from_secs(60);
/// How often a running sync renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(20);

/// What one run copied and marked deleted, so far.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Progress {
    pub(crate) copied: u64,
    pub(crate) removed: u64,
    pub(crate) resumed: bool,
    /// The kind of pass the run worked on, once known.
    pub(crate) kind: Option<PassKind>,
}

pub async fn run(
    config: &Config,
    database: &Database,
    catalog: &CatalogId,
    restart: bool,
    json: bool,
) -> anyhow::Result<()> {
    let store = database
        .stores()
        .store_for_catalog(catalog)
        .await?
        .ok_or_else(|| anyhow::anyhow!("catalog {catalog} not found"))?;
    let service = crate::app::service(config, database);
    let owner = lease_owner();
    if !database
        .sync_leases()
        .acquire(store.id, &owner, SYNC_LEASE)
        .await?
    {
        let holder = database
            .sync_leases()
            .held()
            .await?
            .into_iter()
            .find(|lease| lease.store == store.id);
        let by = match holder {
            Some(lease) => format!(
                "{} (its lease runs to {})",
                lease.owner,
                lease.until.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            None => "another process".to_owned(),
        };
        anyhow::bail!(
            "store {} ({}) is being synced by {by}; run this again once it is done",
            store.id,
            store.name
        );
    }

    let bar = if json {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {human_pos} customers copied ({per_sec}, {elapsed}) {wide_msg}",
        ) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    };
    let _logs_around_the_bar = crate::progress::show(&bar);
    let (progress, outcome) = leased_pass(
        &service,
        database,
        &store,
        &owner,
        Want::Full,
        restart,
        &bar,
    )
    .await;
    outcome?;
    bar.finish_and_clear();
    let Progress {
        copied,
        removed,
        resumed,
        kind,
    } = progress;
    let kind = kind.unwrap_or(PassKind::Full).as_str();
    if json {
        println!(
            "{}",
            json!({"store": store.id, "pass": kind, "copied": copied, "resumed": resumed, "removed": removed})
        );
    } else if kind == PassKind::Incremental.as_str() {
        println!(
            "copied {copied} customers of store {} ({}) into the mirror (the interrupted \
             incremental pass, resumed: customers changed at the POS since it began)",
            store.id, store.name
        );
    } else {
        println!(
            "copied {copied} customers of store {} ({}) into the mirror; {removed} gone at the \
             POS marked deleted",
            store.id, store.name
        );
    }
    Ok(())
}

/// One run of the store's sync by `owner`, who has just taken its lease: the pass part way
/// resumed, or a new one as `want` says; recorded in `sync_runs` (its start and kind, then its
/// outcome, and the pass it completed), the lease renewed while it runs and given up after. A
/// run whose lease was taken over (this process stalled past it) stops.
pub(crate) async fn leased_pass(
    service: &CustomerService,
    database: &Database,
    store: &Store,
    owner: &str,
    want: Want,
    restart: bool,
    bar: &ProgressBar,
) -> (Progress, anyhow::Result<()>) {
    let runs = database.sync_runs();
    let leases = database.sync_leases();
    let mut progress = Progress::default();
    let mut completed = None;
    let outcome = async {
        let plan = plan(database, store.id, want, restart).await?;
        progress.resumed = plan.resumed;
        progress.kind = Some(plan.kind);
        runs.started(store.id, plan.kind).await?;
        let pass = pass(service, database, store, plan, bar, &mut progress);
        let started = tokio::select! {
            outcome = pass => outcome?,
            lost = keep_lease(&leases, store.id, owner) => return Err(lost),
        };
        completed = started.map(|started_at| CompletedPass {
            kind: plan.kind,
            started_at,
        });
        Ok(())
    }
    .await;
    let result = SyncResult {
        outcome: if outcome.is_ok() {
            SyncOutcome::Ok
        } else {
            SyncOutcome::Failed
        },
        copied: progress.copied,
        removed: progress.removed,
        error: outcome.as_ref().err().map(|e| format!("{e:#}")),
        completed,
    };
    if let Err(e) = runs.finished(store.id, &result).await {
        tracing::warn!(store = %store.id, error = %e, "could not record the end of a sync");
    }
    if let Err(e) = leases.release(store.id, owner).await {
        tracing::warn!(store = %store.id, error = %e, "could not give up a sync's lease; it runs out by itself");
    }
    (progress, outcome)
}

/// Renews `owner`'s lease on the store's sync every [`RENEW_EVERY`]; ends (with why) once it
/// is lost: taken over, or not renewed for a whole lease (the database is unreachable).
async fn keep_lease(leases: &SyncLeases, store: StoreId, owner: &str) -> anyhow::Error {
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        match leases.renew(store, owner, SYNC_LEASE).await {
            Ok(true) => renewed = tokio::time::Instant::now(),
            Ok(false) => {
                return anyhow::anyhow!(
                    "the sync of store {store} stopped: another process took it over (this one \
                     stalled past its lease)"
                );
            }
            Err(e) if renewed.elapsed() >= SYNC_LEASE => {
                return anyhow::anyhow!(
                    "the sync of store {store} stopped: its lease could not be renewed: {e}"
                );
            }
            Err(e) => {
                tracing::warn!(store = %store, error = %e, "could not renew a sync's lease; trying again");
            }
        }
    }
}

/// The pass itself: pages from where the last run stopped (or the first), then, for a full
/// pass, the sweep. `progress` says what it did, also when it fails. When it completes: its
/// start, if known (a pass resumed from a cursor kept by an older version has none).
async fn pass(
    service: &CustomerService,
    database: &Database,
    store: &Store,
    plan: Plan,
    bar: &ProgressBar,
    progress: &mut Progress,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    let settings = database.settings();
    let keys = Keys::of(store.id);
    let mut next = settings.get(&keys.cursor).await?.map(PageToken);
    let mut sweep = settings.get(&keys.sweep).await?;
    let pass_started: Option<DateTime<Utc>> = if plan.resumed {
        settings
            .get(&keys.pass)
            .await?
            .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
            .map(|time| time.with_timezone(&Utc))
    } else {
        // Before the first page is asked for: everything the pass copies is seen after it, and
        // every change made at the POS before it is copied by it.
        let now = Utc::now();
        if let Some(since) = plan.since {
            settings.set(&keys.since, &since.to_rfc3339()).await?;
        }
        settings.set(&keys.pass, &now.to_rfc3339()).await?;
        Some(now)
    };

    if plan.resumed {
        bar.println(format!(
            "resuming the interrupted {} sync of store {} ({}); --restart starts over",
            plan.kind.as_str(),
            store.id,
            store.name
        ));
    }
    if pass_started.is_none() {
        bar.println(
            "this pass started before its start was kept: customers gone at the POS are \
             marked deleted by the next full sync",
        );
    }

    let mut patience = Patience { waits: 0 };
    while sweep.is_none() {
        match service
            .sync_page(store, next.clone(), PAGE_SIZE, plan.since)
            .await
        {
            Ok(page) => {
                patience.answered(bar);
                progress.copied += page.copied as u64;
                bar.inc(page.copied as u64);
                match page.next {
                    Some(token) => {
                        settings.set(&keys.cursor, &token.0).await?;
                        next = Some(token);
                    }
                    None => {
                        // Every page is copied. A full pass's sweep is due (kept before the
                        // cursor goes, so a stop in between resumes with the sweep, not a new
                        // pass); an incremental pass has none: what did not change is not in
                        // its listing, gone or not.
                        if pass_started.is_some() && plan.kind == PassKind::Full {
                            settings.set(&keys.sweep, "").await?;
                        }
                        settings.remove(&keys.cursor).await?;
                        sweep = Some(String::new());
                    }
                }
            }
            Err(error) => {
                if let Err(error) = patience.wait(error, bar).await {
                    bar.abandon();
                    let resume = if next.is_some() || progress.copied > 0 {
                        "; run the same command to resume from there"
                    } else {
                        ""
                    };
                    return Err(anyhow::anyhow!(
                        "sync of store {} stopped after {} customers{resume}: {}",
                        store.id,
                        progress.copied,
                        describe(&error)
                    ));
                }
            }
        }
    }

    if let (Some(pass_started), PassKind::Full) = (pass_started, plan.kind) {
        bar.set_message("looking for customers gone at the POS");
        let mut after = sweep.filter(|position| !position.is_empty()).map(PageToken);
        loop {
            match service
                .sweep_unseen(store, pass_started, after.clone(), SWEEP_BATCH)
                .await
            {
                Ok(step) => {
                    patience.answered(bar);
                    progress.removed += step.removed as u64;
                    match step.next {
                        Some(token) => {
                            settings.set(&keys.sweep, &token.0).await?;
                            after = Some(token);
                        }
                        None => break,
                    }
                }
                Err(error) => {
                    if let Err(error) = patience.wait(error, bar).await {
                        bar.abandon();
                        return Err(anyhow::anyhow!(
                            "sync of store {} stopped after {} customers, while looking for \
                             customers gone at the POS ({} marked deleted so far); run \
                             the same command to resume from there: {}",
                            store.id,
                            progress.copied,
                            progress.removed,
                            describe(&error)
                        ));
                    }
                }
            }
        }
    }
    keys.clear(&settings).await?;
    Ok(pass_started)
}

/// A new name for a holder of sync leases (a `sync` command, or one `serve`'s scheduled sync):
/// its host (`HOSTNAME`, which Docker and Kubernetes set to the container's or pod's name, or
/// `/etc/hostname`), its pid, and a random suffix of its own (a pid is reused across restarts
/// of a container, and two holders may share a process).
pub fn lease_owner() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let host = HOST.get_or_init(|| {
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|host| host.trim().to_owned())
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| "unknown-host".to_owned())
    });
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{host} pid {} {}",
        std::process::id(),
        suffix.get(..8).unwrap_or_default()
    )
}

/// Forgets where an interrupted sync of `store` was (its cursor, pass and sweep), for a store
/// that is removed.
pub(crate) async fn forget(settings: &Settings, store: StoreId) -> anyhow::Result<()> {
    Keys::of(store).clear(settings).await
}

fn retry_after(error: &PosError) -> Option<Duration> {
    match error {
        PosError::Unavailable { retry_after, .. } => *retry_after,
        _ => None,
    }
}

fn describe(error: &CustomerError) -> String {
    match error {
        CustomerError::Unsupported(_) => {
            "the store's POS cannot list its customers (or this build has no adapter for it)"
                .to_owned()
        }
        CustomerError::Pos(PosError::Unauthorized(_)) => {
            "the POS refused the store's credentials".to_owned()
        }
        other => other.to_string(),
    }
}

/// Where a store's sync stands, as `sync --status` and `/metrics` show it.
#[derive(Clone, Debug, serde::Serialize)]
struct StoreSyncStatus {
    store: i64,
    name: String,
    vendor: String,
    /// The vendor's cursor of the next page, when a pass is part way (resumes from there).
    cursor: Option<String>,
    /// A pass copied its last page and its sweep for deleted customers is part way.
    sweeping: bool,
    /// An incremental pass is part way: the time it lists changes from.
    changed_since: Option<String>,
    /// When the last complete pass started: every change at the POS before then is in the
    /// mirror (the next incremental pass asks from a little before it).
    #[serde(serialize_with = "rfc3339_or_null")]
    synced_through: Option<DateTime<Utc>>,
    /// When the last complete full pass started (the next is due a day later).
    #[serde(serialize_with = "rfc3339_or_null")]
    last_full_pass: Option<DateTime<Utc>>,
    /// Who syncs it now (a lease that holds), if anybody.
    running_by: Option<String>,
    last_run: Option<LastRun>,
}

#[derive(Clone, Debug, serde::Serialize)]
struct LastRun {
    #[serde(serialize_with = "rfc3339")]
    started_at: DateTime<Utc>,
    /// The latest finished run's end and what it did.
    #[serde(serialize_with = "rfc3339_or_null")]
    finished_at: Option<DateTime<Utc>>,
    /// `ok` or `failed` (of the latest finished run); `running` while the latest is, and
    /// `interrupted` when the latest never finished and nobody holds its lease (its process
    /// died: the next run resumes it).
    outcome: &'static str,
    /// `full` or `incremental`: the pass the latest run worked on.
    pass: Option<&'static str>,
    copied: Option<u64>,
    removed: Option<u64>,
    error: Option<String>,
    /// Whether the latest finished run went through (`None`: none finished).
    #[serde(skip)]
    finished_ok: Option<bool>,
}

/// Times as every command prints them: UTC, RFC 3339, whole seconds.
fn rfc3339<S: serde::Serializer>(at: &DateTime<Utc>, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn rfc3339_or_null<S: serde::Serializer>(
    at: &Option<DateTime<Utc>>,
    to: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, to),
        None => to.serialize_none(),
    }
}

/// Every vendor store's sync: its last run, whether one runs now and, `with_cursors`, its
/// cursor (two reads per store; without: four queries in all).
async fn statuses(database: &Database, with_cursors: bool) -> anyhow::Result<Vec<StoreSyncStatus>> {
    let stores = database.stores().list_stores().await?;
    let runs: std::collections::HashMap<StoreId, SyncRun> = database
        .sync_runs()
        .all()
        .await?
        .into_iter()
        .map(|run| (run.store, run))
        .collect();
    let leases: std::collections::HashMap<StoreId, SyncLease> = database
        .sync_leases()
        .held()
        .await?
        .into_iter()
        .map(|lease| (lease.store, lease))
        .collect();
    let settings = database.settings();
    let mut statuses = Vec::new();
    for store in stores.into_iter().filter(|s| s.vendor != Vendor::Local) {
        let keys = Keys::of(store.id);
        let running_by = leases.get(&store.id).map(|lease| lease.owner.clone());
        let last_run = runs.get(&store.id).map(|run| {
            let result = run.result.as_ref();
            let outcome = match (run.unfinished(), &running_by, result) {
                (true, Some(_), _) => "running",
                (true, None, _) => "interrupted",
                (false, _, Some(result)) => result.outcome.as_str(),
                (false, _, None) => "unknown",
            };
            LastRun {
                started_at: run.started_at,
                finished_at: run.finished_at,
                outcome,
                pass: run.kind.map(PassKind::as_str),
                copied: result.map(|r| r.copied),
                removed: result.map(|r| r.removed),
                error: result.and_then(|r| r.error.clone()),
                finished_ok: result.map(|r| r.outcome == SyncOutcome::Ok),
            }
        });
        statuses.push(StoreSyncStatus {
            store: store.id.0,
            name: store.name,
            vendor: store.vendor.to_string(),
            cursor: if with_cursors {
                settings.get(&keys.cursor).await?
            } else {
                None
            },
            sweeping: with_cursors && settings.get(&keys.sweep).await?.is_some(),
            changed_since: if with_cursors {
                settings.get(&keys.since).await?
            } else {
                None
            },
            synced_through: runs.get(&store.id).and_then(|run| run.synced_through),
            last_full_pass: runs.get(&store.id).and_then(|run| run.full_pass_at),
            running_by,
            last_run,
        });
    }
    Ok(statuses)
}

/// `pos-gateway sync --status`: each vendor store's cursor, last run, outcome and customers
/// copied, as text or one JSON document (`{"stores": [...]}`).
pub async fn status(database: &Database, json: bool) -> anyhow::Result<()> {
    let statuses = statuses(database, true).await?;
    if json {
        println!("{}", json!({ "stores": statuses }));
        return Ok(());
    }
    if statuses.is_empty() {
        println!("no vendor stores (a `local` store is its own mirror: nothing to sync)");
        return Ok(());
    }
    let time = |at: &DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
    for status in &statuses {
        println!(
            "store {} ({}, {})",
            status.store, status.name, status.vendor
        );
        match &status.last_run {
            None => println!("  last run:  never"),
            Some(run) => {
                let ended = match &run.finished_at {
                    Some(end) if run.outcome != "running" && run.outcome != "interrupted" => {
                        format!(", finished {}", time(end))
                    }
                    _ => String::new(),
                };
                println!(
                    "  last run:  {}started {}{ended}: {}",
                    run.pass.map(|p| format!("{p} pass, ")).unwrap_or_default(),
                    time(&run.started_at),
                    run.outcome
                );
                if let (Some(copied), Some(removed)) = (run.copied, run.removed) {
                    println!(
                        "  copied:    {copied} customers, {removed} gone at the POS marked deleted{}",
                        if run.outcome == "ok" || run.outcome == "failed" {
                            ""
                        } else {
                            " (by the latest finished run)"
                        }
                    );
                }
                if let Some(error) = &run.error {
                    println!("  error:     {error}");
                }
            }
        }
        if let Some(owner) = &status.running_by {
            println!("  running:   by {owner}");
        }
        if let Some(through) = &status.synced_through {
            let full = status
                .last_full_pass
                .as_ref()
                .map(|at| format!(" (last full pass {})", time(at)))
                .unwrap_or_default();
            println!("  synced:    through {}{full}", time(through));
        }
        if let Some(since) = &status.changed_since {
            println!("  changes:   the pass part way lists those since {since}");
        }
        match (&status.cursor, status.sweeping) {
            (Some(cursor), _) => println!("  cursor:    {cursor} (the next run resumes there)"),
            (None, true) => {
                println!("  cursor:    every page copied; looking for customers gone at the POS")
            }
            (None, false) => println!("  cursor:    none (the next run starts a new pass)"),
        }
    }
    Ok(())
}

/// The sync's series for `/metrics`, read from the database at each scrape (four queries) so
/// every replica shows every store's last run, whichever replica ran it. One series per vendor
/// store and gauge: bounded by the stores the operator added, never by requests.
pub async fn metric_families(database: &Database) -> Vec<prometheus::proto::MetricFamily> {
    match sync_metrics(database).await {
        Ok(families) => families,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "cannot read the syncs' state for /metrics");
            Vec::new()
        }
    }
}

async fn sync_metrics(database: &Database) -> anyhow::Result<Vec<prometheus::proto::MetricFamily>> {
    use prometheus::{IntGaugeVec, Opts, Registry};
    let gauge = |name: &str, help: &str| {
        IntGaugeVec::new(Opts::new(name, help), &["store"]).map_err(anyhow::Error::from)
    };
    let started = gauge(
        "pos_gateway_sync_last_run_started_seconds",
        "When the store's latest sync run started (Unix time).",
    )?;
    let finished = gauge(
        "pos_gateway_sync_last_run_finished_seconds",
        "When the store's latest finished sync run ended (Unix time).",
    )?;
    let ok = gauge(
        "pos_gateway_sync_last_run_ok",
        "1 when the store's latest finished sync run copied every page and swept, 0 when it failed.",
    )?;
    let copied = gauge(
        "pos_gateway_sync_last_run_copied",
        "Customers the store's latest finished sync run copied into the mirror.",
    )?;
    let running = gauge(
        "pos_gateway_sync_running",
        "1 while a process holds the store's sync lease.",
    )?;
    let through = gauge(
        "pos_gateway_sync_synced_through_seconds",
        "When the store's last complete sync pass started (Unix time): the POS's changes before then are in the mirror.",
    )?;
    let full = gauge(
        "pos_gateway_sync_last_full_pass_seconds",
        "When the store's last complete full sync pass started (Unix time).",
    )?;
    let registry = Registry::new();
    for collector in [&started, &finished, &ok, &copied, &running, &through, &full] {
        registry.register(Box::new(collector.clone()))?;
    }
    for status in statuses(database, false).await? {
        let store = status.store.to_string();
        let labels = [store.as_str()];
        running
            .with_label_values(&labels)
            .set(i64::from(status.running_by.is_some()));
        if let Some(at) = status.synced_through {
            through.with_label_values(&labels).set(at.timestamp());
        }
        if let Some(at) = status.last_full_pass {
            full.with_label_values(&labels).set(at.timestamp());
        }
        let Some(run) = status.last_run else {
            continue;
        };
        started
            .with_label_values(&labels)
            .set(run.started_at.timestamp());
        if let Some(end) = run.finished_at {
            finished.with_label_values(&labels).set(end.timestamp());
        }
        if let Some(went_through) = run.finished_ok {
            ok.with_label_values(&labels).set(i64::from(went_through));
        }
        if let Some(n) = run.copied {
            copied
                .with_label_values(&labels)
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
    Ok(registry.gather())
}
