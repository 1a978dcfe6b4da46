//! Stores, their POS vendor and its configuration, and the catalogs (kiosks) that belong to them.

use async_trait::async_trait;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, Queryable, Selectable,
    SelectableHelper as _,
};
use diesel_async::RunQueryDsl as _;
use domain::{CatalogId, RepositoryError, Store, StoreId, StoreRegistry, Vendor};

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
    fn into_store(self) -> Result<Store, RepositoryError> {
        let corrupt = |what: &str| RepositoryError::Corrupt(format!("store {}: {what}", self.id));
        let vendor = self.vendor.parse::<Vendor>().map_err(|e| corrupt(&e))?;
        let config = serde_json::from_str(&self.config)
            .map_err(|e| corrupt(&format!("config is not JSON: {e}")))?;
        Ok(Store {
            id: StoreId(self.id),
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

    /// `RepositoryError::Conflict` when a store has this name already.
    pub async fn add_store(
        &self,
        name: &str,
        vendor: Vendor,
        config: &serde_json::Value,
    ) -> Result<Store, RepositoryError> {
        let now = now();
        let id = with_connection!(self.db, |conn| {
            diesel::insert_into(stores::table)
                .values((
                    stores::name.eq(name),
                    stores::vendor.eq(vendor.as_str()),
                    stores::config.eq(config.to_string()),
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
        row.map(StoreRow::into_store).transpose()
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
}
