//! The outbox of vendor creates (`pending_creates`): a row per customer about to be sent to a
//! vendor, deleted once the mirror holds the vendor's answer. What a crash leaves behind is
//! found again by the domain's recovery pass.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, QueryDsl as _, Queryable, Selectable,
    SelectableHelper as _,
};
use diesel_async::RunQueryDsl as _;
use domain::{
    NewCustomer, PendingCreate, PendingCreateId, PendingCreates, RepositoryError, StoreId,
};

use crate::database::{Database, db_error, now};
use crate::schema::pending_creates as pending;

/// The `pending_creates` table, as the domain's [`PendingCreates`] port.
#[derive(Clone, Debug)]
pub struct Outbox {
    db: Database,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = pending, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct PendingRow {
    id: i64,
    store_id: i64,
    customer: String,
    created_at: NaiveDateTime,
    attempts: i32,
}

impl PendingRow {
    /// A customer that no longer reads back is handed over as an error, for the caller to
    /// drop, rather than failing the whole list.
    fn into_entry(self) -> PendingCreate {
        let id = self.id;
        PendingCreate {
            id: PendingCreateId(id),
            store: StoreId(self.store_id),
            customer: serde_json::from_str::<NewCustomer>(&self.customer).map_err(|e| {
                // Not serde's message, which may quote a value: personal data.
                RepositoryError::Corrupt(format!(
                    "pending create {id}: the stored customer does not read back ({:?} error at column {})",
                    e.classify(),
                    e.column()
                ))
            }),
            recorded_at: self.created_at.and_utc(),
            attempts: u32::try_from(self.attempts).unwrap_or(0),
        }
    }
}

impl Outbox {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl PendingCreates for Outbox {
    async fn record(
        &self,
        store: StoreId,
        customer: &NewCustomer,
    ) -> Result<PendingCreateId, RepositoryError> {
        let json = serde_json::to_string(customer)
            .map_err(|e| RepositoryError::Other(format!("customer not serialisable: {e}")))?;
        let relaxed = crate::Relaxed {
            pool: self.db.relaxed(),
        };
        let id = with_connection!(relaxed, |conn| {
            diesel::insert_into(pending::table)
                .values((
                    pending::store_id.eq(store.0),
                    pending::customer.eq(&json),
                    pending::created_at.eq(now()),
                    pending::attempts.eq(0),
                ))
                .returning(pending::id)
                .get_result::<i64>(conn)
                .await
                .map_err(db_error)
        })?;
        Ok(PendingCreateId(id))
    }

    async fn settle(&self, id: PendingCreateId) -> Result<(), RepositoryError> {
        let relaxed = crate::Relaxed {
            pool: self.db.relaxed(),
        };
        with_connection!(relaxed, |conn| {
            diesel::delete(pending::table.find(id.0))
                .execute(conn)
                .await
                .map(drop)
                .map_err(db_error)
        })
    }

    async fn orphans(
        &self,
        older_than: Duration,
        limit: u32,
    ) -> Result<Vec<PendingCreate>, RepositoryError> {
        let cutoff = TimeDelta::from_std(older_than)
            .ok()
            .and_then(|age| now().checked_sub_signed(age))
            .unwrap_or(NaiveDateTime::MIN);
        let rows = with_connection!(self.db, |conn| {
            pending::table
                .filter(pending::created_at.lt(cutoff))
                .filter(
                    pending::attempted_at
                        .is_null()
                        .or(pending::attempted_at.lt(cutoff)),
                )
                .order((pending::created_at.asc(), pending::id.asc()))
                .limit(i64::from(limit))
                .select(PendingRow::as_select())
                .load::<PendingRow>(conn)
                .await
                .map_err(db_error)
        })?;
        Ok(rows.into_iter().map(PendingRow::into_entry).collect())
    }

    async fn note_attempt(&self, entry: &PendingCreate) -> Result<(), RepositoryError> {
        let seen = i32::try_from(entry.attempts).unwrap_or(i32::MAX);
        with_connection!(self.db, |conn| {
            diesel::update(
                pending::table
                    .find(entry.id.0)
                    .filter(pending::attempts.eq(seen)),
            )
            .set((
                pending::attempts.eq(pending::attempts + 1),
                pending::attempted_at.eq(Some(now())),
            ))
            .execute(conn)
            .await
            .map(drop)
            .map_err(db_error)
        })
    }

    async fn postpone(&self, id: PendingCreateId) -> Result<(), RepositoryError> {
        with_connection!(self.db, |conn| {
            diesel::update(pending::table.find(id.0))
                .set(pending::attempted_at.eq(Some(now())))
                .execute(conn)
                .await
                .map(drop)
                .map_err(db_error)
        })
    }
}
