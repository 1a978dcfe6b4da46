//! Stores, their POS vendor and its configuration, and the catalogs (kiosks) that belong to them.

use async_trait::async_trait;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, Queryable, Selectable,
    SelectableHelper as _,
};
use diesel_async::RunQueryDsl as _;
use domain::{CatalogId, RepositoryError, Store, StoreId, StoreRegistry, Vendor};

use crate::credentials::{self, CredentialsKey};
use crate::database::{Database, db_error, now};
use crate::schema::{catalogs, stores};

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
            config,
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
        let stored = if credentials::is_empty_config(config) {
            String::from("{}")
        } else {
            let key = self.db.credentials.as_deref().ok_or_else(|| {
                RepositoryError::Other(
                    "POS_GATEWAY_CREDENTIALS_KEY must be set to store vendor credentials".into(),
                )
            })?;
            key.seal(config, vendor, name)
                .map_err(|e| RepositoryError::Other(format!("store config: {e}")))?
        };
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
            config: config.clone(),
        })
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
