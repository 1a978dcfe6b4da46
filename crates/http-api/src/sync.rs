//! `pos-gateway sync --catalog ID`: copies every customer of the store's POS into the mirror,
//! a page at a time, with a progress bar; then, the pass being complete, marks deleted
//! (tombstones) the mirror's customers of the store the POS no longer has.
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

use chrono::{DateTime, Utc};
use domain::{CatalogId, CustomerError, PageToken, PosError, StoreId, StoreRegistry as _};
use indicatif::{ProgressBar, ProgressStyle};
use persistence::{Database, Settings};
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
}

impl Keys {
    fn of(store: StoreId) -> Self {
        Self {
            cursor: format!("sync_cursor:{store}"),
            pass: format!("sync_pass:{store}"),
            sweep: format!("sync_sweep:{store}"),
        }
    }

    async fn clear(&self, settings: &Settings) -> anyhow::Result<()> {
        for key in [&self.cursor, &self.pass, &self.sweep] {
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
    let settings = database.settings();
    let keys = Keys::of(store.id);
    if restart {
        keys.clear(&settings).await?;
    }
    let mut next = settings.get(&keys.cursor).await?.map(PageToken);
    let mut sweep = settings.get(&keys.sweep).await?;
    let resumed = next.is_some() || sweep.is_some();
    let pass_started: Option<DateTime<Utc>> = if resumed {
        settings
            .get(&keys.pass)
            .await?
            .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
            .map(|time| time.with_timezone(&Utc))
    } else {
        // Before the first page is asked for: everything the pass copies is seen after it.
        let now = Utc::now();
        settings.set(&keys.pass, &now.to_rfc3339()).await?;
        Some(now)
    };

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
    if resumed {
        bar.println(format!(
            "resuming the interrupted sync of store {} ({}); --restart starts over",
            store.id, store.name
        ));
    }
    if pass_started.is_none() {
        bar.println(
            "this pass started before its start was kept: customers gone at the POS are \
             marked deleted by the next full sync",
        );
    }

    let mut copied: u64 = 0;
    let mut patience = Patience { waits: 0 };
    while sweep.is_none() {
        match service.sync_page(catalog, next.clone(), PAGE_SIZE).await {
            Ok(page) => {
                patience.answered(&bar);
                copied += page.copied as u64;
                bar.inc(page.copied as u64);
                match page.next {
                    Some(token) => {
                        settings.set(&keys.cursor, &token.0).await?;
                        next = Some(token);
                    }
                    None => {
                        // The pass is complete: its sweep is due (kept before the cursor goes,
                        // so a stop in between resumes with the sweep, not a new pass).
                        if pass_started.is_some() {
                            settings.set(&keys.sweep, "").await?;
                        }
                        settings.remove(&keys.cursor).await?;
                        sweep = Some(String::new());
                    }
                }
            }
            Err(error) => {
                if let Err(error) = patience.wait(error, &bar).await {
                    bar.abandon();
                    let resume = if next.is_some() || copied > 0 {
                        "; run the same command to resume from there"
                    } else {
                        ""
                    };
                    return Err(anyhow::anyhow!(
                        "sync of store {} stopped after {copied} customers{resume}: {}",
                        store.id,
                        describe(&error)
                    ));
                }
            }
        }
    }

    let mut removed: u64 = 0;
    if let Some(pass_started) = pass_started {
        bar.set_message("looking for customers gone at the POS");
        let mut after = sweep.filter(|position| !position.is_empty()).map(PageToken);
        loop {
            match service
                .sweep_unseen(catalog, pass_started, after.clone(), SWEEP_BATCH)
                .await
            {
                Ok(step) => {
                    patience.answered(&bar);
                    removed += step.removed as u64;
                    match step.next {
                        Some(token) => {
                            settings.set(&keys.sweep, &token.0).await?;
                            after = Some(token);
                        }
                        None => break,
                    }
                }
                Err(error) => {
                    if let Err(error) = patience.wait(error, &bar).await {
                        bar.abandon();
                        return Err(anyhow::anyhow!(
                            "sync of store {} stopped after {copied} customers, while looking for \
                             customers gone at the POS ({removed} marked deleted so far); run \
                             the same command to resume from there: {}",
                            store.id,
                            describe(&error)
                        ));
                    }
                }
            }
        }
    }
    keys.clear(&settings).await?;
    bar.finish_and_clear();
    if json {
        println!(
            "{}",
            json!({"store": store.id, "copied": copied, "resumed": resumed, "removed": removed})
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
