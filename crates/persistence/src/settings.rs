//! Key-value settings the service keeps for itself (for example a generated signing secret).

use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use domain::RepositoryError;

use crate::database::{Database, db_error};
use crate::schema::settings;

#[derive(Clone, Debug)]
pub struct Settings {
    db: Database,
}

impl Settings {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, RepositoryError> {
        with_connection!(self.db, |conn| {
            settings::table
                .find(key)
                .select(settings::value)
                .first::<String>(conn)
                .await
                .optional()
                .map_err(db_error)
        })
    }

    /// Stores `value` unless the key has one; returns the value that is stored afterwards (so
    /// two racing callers agree).
    pub async fn get_or_insert(&self, key: &str, value: &str) -> Result<String, RepositoryError> {
        with_connection!(self.db, |conn| {
            diesel::insert_into(settings::table)
                .values((settings::key.eq(key), settings::value.eq(value)))
                .on_conflict_do_nothing()
                .execute(conn)
                .await
                .map_err(db_error)?;
            settings::table
                .find(key)
                .select(settings::value)
                .first::<String>(conn)
                .await
                .map_err(db_error)
        })
    }

    /// Stores `value` under `key`, replacing any value it had.
    pub async fn set(&self, key: &str, value: &str) -> Result<(), RepositoryError> {
        with_connection!(self.db, |conn| {
            diesel::insert_into(settings::table)
                .values((settings::key.eq(key), settings::value.eq(value)))
                .on_conflict(settings::key)
                .do_update()
                .set(settings::value.eq(value))
                .execute(conn)
                .await
                .map(drop)
                .map_err(db_error)
        })
    }

    pub async fn remove(&self, key: &str) -> Result<(), RepositoryError> {
        with_connection!(self.db, |conn| {
            diesel::delete(settings::table.find(key))
                .execute(conn)
                .await
                .map(drop)
                .map_err(db_error)
        })
    }
}
