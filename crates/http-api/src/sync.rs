//! `pos-gateway sync --catalog ID`: copies every customer of the store's POS into the mirror,
//! a page at a time, with a progress bar.
//!
//! Resumable: after each page the vendor's cursor is kept in the database (settings key
//! `sync_cursor:<store id>`), so a sync that was stopped (Ctrl-C, a vendor outage, a machine
//! restart) goes on from the page after the last one copied; `--restart` starts over.
//! Rate-limit aware: the store's adapter paces requests to the vendor's published limit, and
//! when the vendor is unavailable (429, 5xx, timeout, circuit open) the sync waits (the vendor's
//! `Retry-After` when it gives one) and asks again, up to a bound, rather than failing at once.

use std::time::Duration;

use domain::{CatalogId, CustomerError, PageToken, PosError, StoreRegistry as _};
use indicatif::{ProgressBar, ProgressStyle};
use persistence::Database;
use serde_json::json;

use crate::config::Config;

/// Customers asked for per page; adapters lower it to their vendor's maximum.
const PAGE_SIZE: u32 = 100;
/// Waits in a row for an unavailable vendor before the sync stops (resumable).
const MAX_WAITS: u32 = 10;
/// The wait when the vendor gave no `Retry-After`.
const DEFAULT_WAIT: Duration = Duration::from_secs(5);

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
    let key = cursor_key(store.id);
    if restart {
        settings.remove(&key).await?;
    }
    let mut next = settings.get(&key).await?.map(PageToken);
    let resumed = next.is_some();

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

    let mut copied: u64 = 0;
    let mut waits = 0;
    loop {
        match service.sync_page(catalog, next.clone(), PAGE_SIZE).await {
            Ok(page) => {
                waits = 0;
                copied += page.copied as u64;
                bar.inc(page.copied as u64);
                bar.set_message("");
                match page.next {
                    Some(token) => {
                        settings.set(&key, &token.0).await?;
                        next = Some(token);
                    }
                    None => {
                        settings.remove(&key).await?;
                        break;
                    }
                }
            }
            Err(CustomerError::Pos(error)) if error.is_unreachable() && waits < MAX_WAITS => {
                waits += 1;
                let wait = retry_after(&error).unwrap_or(DEFAULT_WAIT);
                bar.set_message(format!(
                    "{error}; asking again in {}s ({waits}/{MAX_WAITS})",
                    wait.as_secs_f32()
                ));
                tokio::time::sleep(wait).await;
            }
            Err(error) => {
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
    bar.finish_and_clear();
    if json {
        println!(
            "{}",
            json!({"store": store.id, "copied": copied, "resumed": resumed})
        );
    } else {
        println!(
            "copied {copied} customers of store {} ({}) into the mirror",
            store.id, store.name
        );
    }
    Ok(())
}

/// The settings key an interrupted sync of `store` keeps its place under.
pub(crate) fn cursor_key(store: domain::StoreId) -> String {
    format!("sync_cursor:{store}")
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
