//! The operator's day-two commands: `store list|update|remove|rekey` and
//! `catalog list|remove`. Each prints text, or one JSON object with `--json` (the field names
//! are stable; see docs/operations.md). No output ever holds a vendor config, sealed or not.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use domain::{CatalogId, StoreId};
use persistence::{AdminError, CatalogSummary, CredentialsKey, StoreSummary};
use serde_json::{Value, json};

use crate::cli::{open, print, vendor_config};
use crate::config::Config;

/// The variable `serve` reads the key from, named in messages.
const KEY_VARIABLE: &str = "POS_GATEWAY_CREDENTIALS_KEY";

/// `store list`.
pub(crate) async fn list_stores(config: &Config, json: bool) -> anyhow::Result<()> {
    let stores = open(config).await?.stores().list_stores().await?;
    let text = if stores.is_empty() {
        "no stores (`pos-gateway store add` adds one)".to_owned()
    } else {
        table(
            &["ID", "NAME", "VENDOR", "CREDENTIALS", "CATALOGS"],
            stores.iter().map(|store| {
                vec![
                    store.id.to_string(),
                    store.name.clone(),
                    store.vendor.to_string(),
                    if store.has_credentials {
                        "sealed"
                    } else {
                        "none"
                    }
                    .to_owned(),
                    catalog_list(&store.catalogs),
                ]
            }),
        )
    };
    let stores: Vec<Value> = stores.iter().map(store_json).collect();
    print(json, json!({ "stores": stores }), &text);
    Ok(())
}

/// `store update ID --config FILE.json`.
pub(crate) async fn update_store(
    config: &Config,
    id: i64,
    file: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let id = StoreId(id);
    let database = open(config).await?;
    let stores = database.stores();
    let current = stores
        .store_summary(id)
        .await?
        .ok_or(AdminError::StoreNotFound(id))?;
    let vendor_config = vendor_config(config, current.vendor, Some(file))?;
    let updated = stores
        .update_config(id, &vendor_config)
        .await
        .map_err(admin_error)?;
    print(
        json,
        store_json(&updated),
        &format!(
            "store {} ({}) has a new {} config{}; running servers use it within seconds",
            updated.id,
            updated.name,
            updated.vendor,
            if updated.has_credentials {
                ", sealed"
            } else {
                ""
            }
        ),
    );
    Ok(())
}

/// `store remove ID [--force]`.
pub(crate) async fn remove_store(
    config: &Config,
    id: i64,
    force: bool,
    json: bool,
) -> anyhow::Result<()> {
    let id = StoreId(id);
    let database = open(config).await?;
    let removed = database
        .stores()
        .remove_store(id, force)
        .await
        .map_err(admin_error)?;
    // A sync interrupted half-way kept its place; nothing is left to resume.
    crate::sync::forget(&database.settings(), id).await?;
    let catalogs = if removed.catalogs.is_empty() {
        String::from("no catalogs")
    } else {
        format!("catalogs {}", catalog_list(&removed.catalogs))
    };
    print(
        json,
        json!({
            "id": removed.id,
            "name": removed.name,
            "vendor": removed.vendor,
            "catalogs": removed.catalogs,
            "customers": removed.customers,
            "pending_creates": removed.pending_creates,
        }),
        &format!(
            "removed store {} ({}) with {catalogs}, {} mirrored customers and {} \
             pending creates",
            removed.id, removed.name, removed.customers, removed.pending_creates
        ),
    );
    Ok(())
}

/// Where `store rekey` reads a key: an environment variable or a file, never the command line.
pub(crate) enum KeySource {
    Env(String),
    File(PathBuf),
}

impl KeySource {
    pub(crate) fn of(variable: Option<String>, file: Option<PathBuf>) -> Option<Self> {
        match (variable, file) {
            (Some(variable), _) => Some(Self::Env(variable)),
            (None, Some(file)) => Some(Self::File(file)),
            (None, None) => None,
        }
    }

    fn read(&self) -> anyhow::Result<CredentialsKey> {
        match self {
            Self::Env(variable) => key_from_env(variable),
            Self::File(path) => key_from_file(path),
        }
    }
}

/// `store rekey`: `old` defaults to the configured credentials key.
pub(crate) async fn rekey(
    config: &Config,
    old: Option<KeySource>,
    new: Option<KeySource>,
    json: bool,
) -> anyhow::Result<()> {
    let old = match old {
        Some(source) => source.read()?,
        None => config.credentials_key.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "the current key is needed: set {KEY_VARIABLE}, or give --old-key-env \
                 VAR or --old-key-file PATH"
            )
        })?,
    };
    let new = match new {
        Some(source) => source.read()?,
        None => {
            anyhow::bail!("the new key is needed: --new-key-env VAR or --new-key-file PATH")
        }
    };
    let resealed = open(config)
        .await?
        .stores()
        .rekey(&old, &new)
        .await
        .map_err(admin_error)?;
    let ids: Vec<String> = resealed.iter().map(StoreId::to_string).collect();
    print(
        json,
        json!({ "resealed": resealed }),
        &format!(
            "re-sealed the configs of {} store{}{} under the new key; set {KEY_VARIABLE} \
             to it and restart every instance",
            resealed.len(),
            if resealed.len() == 1 { "" } else { "s" },
            if ids.is_empty() {
                String::new()
            } else {
                format!(" ({})", ids.join(", "))
            }
        ),
    );
    Ok(())
}

/// `catalog list [--store ID]`.
pub(crate) async fn list_catalogs(
    config: &Config,
    store: Option<i64>,
    json: bool,
) -> anyhow::Result<()> {
    let catalogs = open(config)
        .await?
        .stores()
        .list_catalogs(store.map(StoreId))
        .await
        .map_err(admin_error)?;
    let text = if catalogs.is_empty() {
        "no catalogs (`pos-gateway catalog add` adds one)".to_owned()
    } else {
        table(
            &["ID", "STORE", "CREATED"],
            catalogs.iter().map(|catalog| {
                vec![
                    catalog.id.to_string(),
                    catalog.store.to_string(),
                    timestamp(catalog.created_at),
                ]
            }),
        )
    };
    let catalogs: Vec<Value> = catalogs.iter().map(catalog_json).collect();
    print(json, json!({ "catalogs": catalogs }), &text);
    Ok(())
}

/// `catalog remove ID`.
pub(crate) async fn remove_catalog(config: &Config, id: &str, json: bool) -> anyhow::Result<()> {
    let catalog =
        CatalogId::parse(id).ok_or_else(|| anyhow::anyhow!("catalog id '{id}' is not valid"))?;
    let removed = open(config)
        .await?
        .stores()
        .remove_catalog(&catalog)
        .await
        .map_err(admin_error)?;
    print(
        json,
        catalog_json(&removed),
        &format!(
            "catalog {} removed from store {}",
            removed.id, removed.store
        ),
    );
    Ok(())
}

/// A store in `store list --json` and `store update --json`.
fn store_json(store: &StoreSummary) -> Value {
    json!({
        "id": store.id,
        "name": store.name,
        "vendor": store.vendor,
        "has_credentials": store.has_credentials,
        "catalogs": store.catalogs,
        "created_at": timestamp(store.created_at),
        "updated_at": timestamp(store.updated_at),
    })
}

fn catalog_json(catalog: &CatalogSummary) -> Value {
    json!({
        "id": catalog.id,
        "store": catalog.store,
        "created_at": timestamp(catalog.created_at),
    })
}

/// RFC 3339 in UTC, e.g. `2026-12-01T09:30:00Z`.
fn timestamp(at: chrono::NaiveDateTime) -> String {
    at.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn catalog_list(catalogs: &[CatalogId]) -> String {
    if catalogs.is_empty() {
        return "-".to_owned();
    }
    catalogs
        .iter()
        .map(CatalogId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the operator can do about a refusal, after what it was.
fn admin_error(error: AdminError) -> anyhow::Error {
    let hint = match &error {
        AdminError::StoreInUse { .. } => {
            ": remove the catalogs first (`pos-gateway catalog remove ID`), or pass --force to remove \
             them with the store"
        }
        AdminError::HoldsCustomers { .. } => ": pass --force to delete them with the store",
        AdminError::DoesNotOpen { .. } => {
            "; is the old key the one the stores were sealed with? (`store update ID --config \
             FILE` gives a store whose key is lost its credentials again)"
        }
        _ => "",
    };
    anyhow::anyhow!("{error}{hint}")
}

/// A credentials key from the environment variable `variable`; errors name the variable,
/// never the value.
fn key_from_env(variable: &str) -> anyhow::Result<CredentialsKey> {
    let text = std::env::var(variable)
        .map_err(|_| anyhow::anyhow!("{variable} is not set (or not UTF-8)"))?;
    CredentialsKey::parse(&text).map_err(|e| anyhow::anyhow!("{variable}: {e}"))
}

/// A credentials key from a file (surrounding whitespace ignored); errors name the file,
/// never the value.
fn key_from_file(path: &Path) -> anyhow::Result<CredentialsKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    CredentialsKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Left-aligned columns, two spaces apart.
fn table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(headers.iter().map(|h| (*h).to_owned()).collect())
        .chain(rows)
        .collect();
    let mut widths = vec![0; headers.len()];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
