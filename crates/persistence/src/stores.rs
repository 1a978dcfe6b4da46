//! Stores, their POS vendor and its configuration, and the catalogs (kiosks) that belong to them.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDateTime;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{
    EscapeExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _,
    Queryable, Selectable, SelectableHelper as _, TextExpressionMethods as _,
};
use diesel_async::scoped_futures::ScopedFutureExt as _;
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
use domain::{CatalogId, RepositoryError, Store, StoreId, StoreRegistry, Vendor};

use crate::credentials::{self, CredentialsKey};
use crate::database::{Database, db_error, now};
use crate::schema::{catalogs, customers, idempotency_keys, pending_creates, stores};

#[derive(Clone, Debug)]
pub struct Stores {
    db: Database,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = stores, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct StoreRow {
    id: i64,
    name: String,
    vendor: String,
    config: String,
}

impl StoreRow {
    fn into_store(self, key: Option<&CredentialsKey>) -> Result<Store, RepositoryError> {
        let id = self.id;
        let corrupt = |what: &str| RepositoryError::Corrupt(format!("store {id}: {what}"));
        let vendor = self.vendor.parse::<Vendor>().map_err(|e| corrupt(&e))?;
        let config = if credentials::is_sealed(&self.config) {
            let key = key.ok_or_else(|| {
                RepositoryError::Other(format!(
                    "store {id}: its config holds encrypted vendor credentials and no \
                     credentials key is set (POS_GATEWAY_CREDENTIALS_KEY)"
                ))
            })?;
            key.open(&self.config, vendor, &self.name)
                .map_err(|e| corrupt(&format!("config {e}")))?
        } else {
            // Never print the text: it is not supposed to hold secrets, but it might.
            let config: serde_json::Value = serde_json::from_str(&self.config)
                .map_err(|_| corrupt("config is neither encrypted nor JSON"))?;
            if !credentials::is_empty_config(&config) {
                // Only `{}` is stored in the clear: anything else was not written by us.
                return Err(corrupt("config holds unencrypted values"));
            }
            config
        };
        Ok(Store {
            id: StoreId(id),
            name: self.name,
            vendor,
            config: Arc::new(config),
        })
    }
}

/// What a store is looked up by.
#[derive(Clone, Copy)]
enum StoreKey<'a> {
    Id(StoreId),
    Name(&'a str),
    Catalog(&'a CatalogId),
}

impl Stores {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }

    /// `RepositoryError::Conflict` when a store has this name already. A config other than `{}`
    /// holds vendor credentials: it is encrypted with the database's credentials key, and
    /// refused (`RepositoryError::Other`) when there is none.
    pub async fn add_store(
        &self,
        name: &str,
        vendor: Vendor,
        config: &serde_json::Value,
    ) -> Result<Store, RepositoryError> {
        let stored = self.sealed(config, vendor, name)?;
        let now = now();
        let id = with_connection!(self.db, |conn| {
            diesel::insert_into(stores::table)
                .values((
                    stores::name.eq(name),
                    stores::vendor.eq(vendor.as_str()),
                    stores::config.eq(&stored),
                    stores::created_at.eq(now),
                    stores::updated_at.eq(now),
                ))
                .returning(stores::id)
                .get_result::<i64>(conn)
                .await
                .map_err(db_error)
        })?;
        Ok(Store {
            id: StoreId(id),
            name: name.to_owned(),
            vendor,
            config: Arc::new(config.clone()),
        })
    }

    /// How `config` is written for the store `vendor`/`name`: `{}` in the clear, anything else
    /// sealed with the database's credentials key (refused without one).
    fn sealed(
        &self,
        config: &serde_json::Value,
        vendor: Vendor,
        name: &str,
    ) -> Result<String, RepositoryError> {
        if credentials::is_empty_config(config) {
            return Ok(String::from("{}"));
        }
        let key = self.db.credentials.as_deref().ok_or_else(|| {
            RepositoryError::Other(
                "POS_GATEWAY_CREDENTIALS_KEY must be set to store vendor credentials".into(),
            )
        })?;
        key.seal(config, vendor, name)
            .map_err(|e| RepositoryError::Other(format!("store config: {e}")))
    }

    pub async fn store_by_name(&self, name: &str) -> Result<Option<Store>, RepositoryError> {
        self.find_store(StoreKey::Name(name)).await
    }

    pub async fn get_store(&self, id: StoreId) -> Result<Option<Store>, RepositoryError> {
        self.find_store(StoreKey::Id(id)).await
    }

    async fn find_store(&self, key: StoreKey<'_>) -> Result<Option<Store>, RepositoryError> {
        let row = with_connection!(self.db, |conn| {
            let select = stores::table.select(StoreRow::as_select()).into_boxed();
            let select = match key {
                StoreKey::Id(id) => select.filter(stores::id.eq(id.0)),
                StoreKey::Name(name) => select.filter(stores::name.eq(name)),
                StoreKey::Catalog(catalog) => select.filter(
                    stores::id.eq_any(
                        catalogs::table
                            .filter(catalogs::id.eq(catalog.as_str()))
                            .select(catalogs::store_id),
                    ),
                ),
            };
            select.first(conn).await.optional().map_err(db_error)
        })?;
        row.map(|row| row.into_store(self.db.credentials.as_deref()))
            .transpose()
    }

    /// `RepositoryError::Conflict` when the catalog id exists already (catalog ids are
    /// globally unique); `RepositoryError::Other("no such store: ..")` when the store does not
    /// exist.
    pub async fn add_catalog(
        &self,
        store: StoreId,
        catalog: &CatalogId,
    ) -> Result<(), RepositoryError> {
        let inserted = with_connection!(self.db, |conn| {
            diesel::insert_into(catalogs::table)
                .values((
                    catalogs::id.eq(catalog.as_str()),
                    catalogs::store_id.eq(store.0),
                    catalogs::created_at.eq(now()),
                ))
                .execute(conn)
                .await
        });
        match inserted {
            Ok(_) => Ok(()),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Err(
                RepositoryError::Conflict(format!("catalog {catalog} exists already")),
            ),
            Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
                Err(RepositoryError::Other(format!("no such store: {store}")))
            }
            Err(other) => Err(db_error(other)),
        }
    }

    /// Every store, by id, with its catalogs; configs are neither opened nor returned.
    pub async fn list_stores(&self) -> Result<Vec<StoreSummary>, RepositoryError> {
        self.summaries(None).await
    }

    /// One store as [`list_stores`](Self::list_stores) shows it; `None` when there is none.
    pub async fn store_summary(
        &self,
        id: StoreId,
    ) -> Result<Option<StoreSummary>, RepositoryError> {
        Ok(self.summaries(Some(id)).await?.pop())
    }

    async fn summaries(&self, only: Option<StoreId>) -> Result<Vec<StoreSummary>, RepositoryError> {
        let (rows, links) = with_connection!(self.db, |conn| {
            let mut rows = stores::table
                .select(SummaryRow::as_select())
                .order(stores::id.asc())
                .into_boxed();
            let mut links = catalogs::table
                .select((catalogs::store_id, catalogs::id))
                .order((catalogs::store_id.asc(), catalogs::id.asc()))
                .into_boxed();
            if let Some(id) = only {
                rows = rows.filter(stores::id.eq(id.0));
                links = links.filter(catalogs::store_id.eq(id.0));
            }
            let rows = rows.load::<SummaryRow>(conn).await.map_err(db_error)?;
            let links = links.load::<(i64, String)>(conn).await.map_err(db_error)?;
            (rows, links)
        });
        let mut by_store: std::collections::HashMap<i64, Vec<CatalogId>> =
            std::collections::HashMap::new();
        for (store, catalog) in links {
            by_store
                .entry(store)
                .or_default()
                .push(parse_catalog(&catalog)?);
        }
        rows.into_iter()
            .map(|row| {
                let catalogs = by_store.remove(&row.id).unwrap_or_default();
                row.into_summary(catalogs)
            })
            .collect()
    }

    /// Replaces a store's config (validated by the caller, as for [`add_store`](Self::add_store)),
    /// sealed again under the database's credentials key. The old config need not open: this
    /// is also how a store whose key was lost gets its credentials back.
    pub async fn update_config(
        &self,
        id: StoreId,
        config: &serde_json::Value,
    ) -> Result<StoreSummary, AdminError> {
        let current = self
            .store_summary(id)
            .await?
            .ok_or(AdminError::StoreNotFound(id))?;
        let stored = self.sealed(config, current.vendor, &current.name)?;
        let now = now();
        // Sealed for this name and vendor: written only if the row still has them.
        let touched = with_connection!(self.db, |conn| {
            diesel::update(
                stores::table
                    .filter(stores::id.eq(id.0))
                    .filter(stores::name.eq(&current.name))
                    .filter(stores::vendor.eq(current.vendor.as_str())),
            )
            .set((stores::config.eq(&stored), stores::updated_at.eq(now)))
            .execute(conn)
            .await
            .map_err(db_error)?
        });
        if touched == 0 {
            return Err(AdminError::StoreNotFound(id));
        }
        Ok(StoreSummary {
            has_credentials: credentials::is_sealed(&stored),
            updated_at: now,
            ..current
        })
    }

    /// Re-seals every sealed store config, opened with `old`, under `new`, in one transaction:
    /// a config that does not open with `old` rolls everything back
    /// ([`AdminError::DoesNotOpen`], naming the store). Stores with no credentials (`{}`) are
    /// left alone. Returns the stores re-sealed, by id.
    pub async fn rekey(
        &self,
        old: &CredentialsKey,
        new: &CredentialsKey,
    ) -> Result<Vec<StoreId>, AdminError> {
        let now = now();
        let sealed = || stores::table.filter(stores::config.like(credentials::SEALED_LIKE));
        let rekeyed = with_connection!(self.db, |conn| {
            conn.transaction::<_, Tx, _>(|conn| {
                async move {
                    // A write first: it takes SQLite's write lock at once and locks the rows on
                    // PostgreSQL, so no store changes under the rekey.
                    diesel::update(sealed())
                        .set(stores::updated_at.eq(now))
                        .execute(conn)
                        .await?;
                    let rows = sealed()
                        .select((stores::id, stores::name, stores::vendor, stores::config))
                        .order(stores::id.asc())
                        .load::<(i64, String, String, String)>(conn)
                        .await?;
                    let mut resealed = Vec::with_capacity(rows.len());
                    for (id, name, vendor, config) in rows {
                        let store = StoreId(id);
                        let vendor = parse_vendor(id, &vendor)?;
                        let plain = old.open(&config, vendor, &name).map_err(|e| {
                            let reason = if new.open(&config, vendor, &name).is_ok() {
                                "is sealed under the new key already (was this rekey run before?)"
                                    .to_owned()
                            } else {
                                format!("does not open with the old key: it {e}")
                            };
                            AdminError::DoesNotOpen {
                                store,
                                name: name.clone(),
                                reason,
                            }
                        })?;
                        let resealed_config = new.seal(&plain, vendor, &name).map_err(|e| {
                            RepositoryError::Other(format!("store {id}: config {e}"))
                        })?;
                        diesel::update(stores::table.filter(stores::id.eq(id)))
                            .set(stores::config.eq(&resealed_config))
                            .execute(conn)
                            .await?;
                        resealed.push(store);
                    }
                    Ok(resealed)
                }
                .scope_boxed()
            })
            .await
        });
        rekeyed.map_err(Tx::into_admin)
    }

    /// Removes a store, in one transaction, with everything kept for it: its mirrored
    /// customers (for a `local` store, the customers themselves), its journal of pending
    /// vendor creates, and its catalogs with their `Idempotency-Key` records. Refused while
    /// catalogs use it ([`AdminError::StoreInUse`]) and, for a `local` store, while it holds
    /// customers ([`AdminError::HoldsCustomers`]), unless `force`.
    pub async fn remove_store(&self, id: StoreId, force: bool) -> Result<RemovedStore, AdminError> {
        let now = now();
        let the_store = stores::table.filter(stores::id.eq(id.0));
        let removed = with_connection!(self.db, |conn| {
            conn.transaction::<_, Tx, _>(|conn| {
                async move {
                    // A write first (see `rekey`): the store cannot change meanwhile.
                    let touched = diesel::update(the_store)
                        .set(stores::updated_at.eq(now))
                        .execute(conn)
                        .await?;
                    if touched == 0 {
                        return Err(AdminError::StoreNotFound(id).into());
                    }
                    let (name, vendor) = the_store
                        .select((stores::name, stores::vendor))
                        .first::<(String, String)>(conn)
                        .await?;
                    let vendor = parse_vendor(id.0, &vendor)?;
                    let catalog_ids = catalogs::table
                        .filter(catalogs::store_id.eq(id.0))
                        .select(catalogs::id)
                        .order(catalogs::id.asc())
                        .load::<String>(conn)
                        .await?
                        .iter()
                        .map(|catalog| parse_catalog(catalog))
                        .collect::<Result<Vec<_>, _>>()?;
                    if !force && !catalog_ids.is_empty() {
                        return Err(AdminError::StoreInUse {
                            store: id,
                            catalogs: catalog_ids,
                        }
                        .into());
                    }
                    let mirrored = customers::table
                        .filter(customers::store_id.eq(id.0))
                        .count()
                        .get_result::<i64>(conn)
                        .await?;
                    let mirrored = u64::try_from(mirrored).unwrap_or_default();
                    if !force && vendor == Vendor::Local && mirrored > 0 {
                        return Err(AdminError::HoldsCustomers {
                            store: id,
                            customers: mirrored,
                        }
                        .into());
                    }
                    for catalog in &catalog_ids {
                        diesel::delete(
                            idempotency_keys::table.filter(
                                idempotency_keys::scope
                                    .like(idempotency_scopes_of(catalog))
                                    .escape('\\'),
                            ),
                        )
                        .execute(conn)
                        .await?;
                    }
                    let pending = diesel::delete(
                        pending_creates::table.filter(pending_creates::store_id.eq(id.0)),
                    )
                    .execute(conn)
                    .await?;
                    // Also removed by the foreign keys' cascade; said here so it does not
                    // depend on SQLite's foreign_keys pragma.
                    diesel::delete(customers::table.filter(customers::store_id.eq(id.0)))
                        .execute(conn)
                        .await?;
                    diesel::delete(catalogs::table.filter(catalogs::store_id.eq(id.0)))
                        .execute(conn)
                        .await?;
                    diesel::delete(the_store).execute(conn).await?;
                    Ok(RemovedStore {
                        id,
                        name,
                        vendor,
                        catalogs: catalog_ids,
                        customers: mirrored,
                        pending_creates: pending as u64,
                    })
                }
                .scope_boxed()
            })
            .await
        });
        removed.map_err(Tx::into_admin)
    }

    /// Catalogs by id, all of them or those of one store (which must exist).
    pub async fn list_catalogs(
        &self,
        store: Option<StoreId>,
    ) -> Result<Vec<CatalogSummary>, AdminError> {
        if let Some(store) = store
            && self.store_summary(store).await?.is_none()
        {
            return Err(AdminError::StoreNotFound(store));
        }
        let rows = with_connection!(self.db, |conn| {
            let mut select = catalogs::table
                .select((catalogs::id, catalogs::store_id, catalogs::created_at))
                .order(catalogs::id.asc())
                .into_boxed();
            if let Some(store) = store {
                select = select.filter(catalogs::store_id.eq(store.0));
            }
            select
                .load::<(String, i64, NaiveDateTime)>(conn)
                .await
                .map_err(db_error)?
        });
        rows.into_iter()
            .map(|(id, store, created_at)| {
                Ok(CatalogSummary {
                    id: parse_catalog(&id)?,
                    store: StoreId(store),
                    created_at,
                })
            })
            .collect()
    }

    /// Removes a catalog and its `Idempotency-Key` records (so a catalog added again under
    /// the same id, perhaps to another store, never replays this one's answers). Its store and
    /// the store's customers stay.
    pub async fn remove_catalog(&self, catalog: &CatalogId) -> Result<CatalogSummary, AdminError> {
        let the_catalog = catalogs::table.filter(catalogs::id.eq(catalog.as_str()));
        let removed = with_connection!(self.db, |conn| {
            conn.transaction::<_, Tx, _>(|conn| {
                async move {
                    let found = the_catalog
                        .select((catalogs::store_id, catalogs::created_at))
                        .first::<(i64, NaiveDateTime)>(conn)
                        .await
                        .optional()?;
                    let Some((store, created_at)) = found else {
                        return Err(AdminError::CatalogNotFound(catalog.clone()).into());
                    };
                    if diesel::delete(the_catalog).execute(conn).await? == 0 {
                        return Err(AdminError::CatalogNotFound(catalog.clone()).into());
                    }
                    diesel::delete(
                        idempotency_keys::table.filter(
                            idempotency_keys::scope
                                .like(idempotency_scopes_of(catalog))
                                .escape('\\'),
                        ),
                    )
                    .execute(conn)
                    .await?;
                    Ok(CatalogSummary {
                        id: catalog.clone(),
                        store: StoreId(store),
                        created_at,
                    })
                }
                .scope_boxed()
            })
            .await
        });
        removed.map_err(Tx::into_admin)
    }
}

/// A `LIKE` pattern (escaped with `\\`) for the `Idempotency-Key` records of `catalog`: their
/// scope is `<catalog>:<operation>`, and catalog ids have no `:`.
fn idempotency_scopes_of(catalog: &CatalogId) -> String {
    let escaped = catalog
        .as_str()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("{escaped}:%")
}

fn parse_vendor(store: i64, vendor: &str) -> Result<Vendor, RepositoryError> {
    vendor
        .parse::<Vendor>()
        .map_err(|e| RepositoryError::Corrupt(format!("store {store}: {e}")))
}

fn parse_catalog(catalog: &str) -> Result<CatalogId, RepositoryError> {
    CatalogId::parse(catalog)
        .ok_or_else(|| RepositoryError::Corrupt(format!("catalog id {catalog:?} is not valid")))
}

/// A store as the admin commands show it. It has no config, sealed or not: only whether one
/// with credentials is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSummary {
    pub id: StoreId,
    pub name: String,
    pub vendor: Vendor,
    /// Whether its config holds (sealed) vendor credentials, as opposed to `{}`.
    pub has_credentials: bool,
    pub catalogs: Vec<CatalogId>,
    /// UTC.
    pub created_at: NaiveDateTime,
    /// UTC: the last change of its config (or rekey).
    pub updated_at: NaiveDateTime,
}

/// A catalog (kiosk) and its store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogSummary {
    pub id: CatalogId,
    pub store: StoreId,
    /// UTC.
    pub created_at: NaiveDateTime,
}

/// What [`Stores::remove_store`] removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedStore {
    pub id: StoreId,
    pub name: String,
    pub vendor: Vendor,
    pub catalogs: Vec<CatalogId>,
    /// Mirrored customers (for a `local` store, its customers).
    pub customers: u64,
    /// Journaled vendor creates not yet accounted for.
    pub pending_creates: u64,
}

/// Why an operator's change to stores and catalogs was refused or failed. No variant holds
/// anything of a config.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("store {0} not found")]
    StoreNotFound(StoreId),
    #[error("catalog {0} not found")]
    CatalogNotFound(CatalogId),
    #[error("store {store} is used by catalog{} {}", plural(catalogs.len()), join(catalogs))]
    StoreInUse {
        store: StoreId,
        catalogs: Vec<CatalogId>,
    },
    #[error(
        "store {store} is a `local` store holding {customers} customer{}, which exist nowhere else",
        plural(*customers as usize)
    )]
    HoldsCustomers { store: StoreId, customers: u64 },
    #[error("store {store} ({name:?}): its config {reason}; nothing was changed")]
    DoesNotOpen {
        store: StoreId,
        name: String,
        reason: String,
    },
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn join(catalogs: &[CatalogId]) -> String {
    catalogs
        .iter()
        .map(CatalogId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why an admin transaction rolled back.
enum Tx {
    Admin(AdminError),
    Database(DieselError),
}

impl Tx {
    fn into_admin(self) -> AdminError {
        match self {
            Tx::Admin(e) => e,
            Tx::Database(e) => AdminError::Repository(db_error(e)),
        }
    }
}

impl From<DieselError> for Tx {
    fn from(error: DieselError) -> Self {
        Tx::Database(error)
    }
}

impl From<AdminError> for Tx {
    fn from(error: AdminError) -> Self {
        Tx::Admin(error)
    }
}

impl From<RepositoryError> for Tx {
    fn from(error: RepositoryError) -> Self {
        Tx::Admin(AdminError::Repository(error))
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = stores, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct SummaryRow {
    id: i64,
    name: String,
    vendor: String,
    config: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl SummaryRow {
    fn into_summary(self, catalogs: Vec<CatalogId>) -> Result<StoreSummary, RepositoryError> {
        Ok(StoreSummary {
            id: StoreId(self.id),
            vendor: parse_vendor(self.id, &self.vendor)?,
            has_credentials: credentials::is_sealed(&self.config),
            name: self.name,
            catalogs,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[async_trait]
impl StoreRegistry for Stores {
    async fn store_for_catalog(
        &self,
        catalog: &CatalogId,
    ) -> Result<Option<Store>, RepositoryError> {
        self.find_store(StoreKey::Catalog(catalog)).await
    }

    async fn store_by_id(&self, id: StoreId) -> Result<Option<Store>, RepositoryError> {
        self.find_store(StoreKey::Id(id)).await
    }
}
