//! The outbox of vendor creates (`pending_creates`): a row per customer about to be sent to a
//! vendor, deleted once the mirror holds the vendor's answer. What a crash leaves behind is
//! found again by the domain's recovery pass, which claims entries for a while
//! (`claimed_until`) so that replicas sharing the database never work on the same one.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::sql_types::{BigInt, Timestamp};
use diesel::{ExpressionMethods as _, QueryDsl as _, Queryable, QueryableByName, Selectable};
use diesel_async::RunQueryDsl as _;
use domain::{
    NewCustomer, PendingCreate, PendingCreateId, PendingCreates, RepositoryError, StoreId,
};

use crate::database::{Database, Pool, checkout, db_error, now};
use crate::schema::pending_creates as pending;

/// The `pending_creates` table, as the domain's [`PendingCreates`] port.
#[derive(Clone, Debug)]
pub struct Outbox {
    db: Database,
}

#[derive(Queryable, QueryableByName, Selectable)]
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

    fn settle_behind(&self, id: PendingCreateId) {
        self.db.chore(crate::chores::Chore::Settle(id.0));
    }

    async fn claim_orphans(
        &self,
        older_than: Duration,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PendingCreate>, RepositoryError> {
        let now = now();
        let cutoff = TimeDelta::from_std(older_than)
            .ok()
            .and_then(|age| now.checked_sub_signed(age))
            .unwrap_or(NaiveDateTime::MIN);
        let until = TimeDelta::from_std(lease)
            .ok()
            .and_then(|lease| now.checked_add_signed(lease))
            .unwrap_or(NaiveDateTime::MAX);
        // One statement: the claim is the UPDATE, and what it claimed comes back from it.
        // Claimable: old enough, not looked at lately, and nobody's (a claim that ran out is
        // nobody's: its holder died or hung). Diesel cannot take a subquery of the table it
        // updates as an update target, so the SQL is written out, once per backend.
        let mut rows = match &self.db.pool {
            Pool::Postgres(pool) => {
                let mut conn = checkout(pool).await?;
                // Rows another claim is updating right now are skipped, not waited for: that
                // claim takes them.
                diesel::sql_query(
                    "UPDATE pending_creates SET claimed_until = $1 WHERE id IN ( \
                       SELECT id FROM pending_creates \
                       WHERE created_at < $2 AND (attempted_at IS NULL OR attempted_at < $2) \
                         AND (claimed_until IS NULL OR claimed_until <= $3) \
                       ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                     RETURNING id, store_id, customer, created_at, attempts",
                )
                .bind::<Timestamp, _>(until)
                .bind::<Timestamp, _>(cutoff)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(i64::from(limit))
                .load::<PendingRow>(&mut *conn)
                .await
                .map_err(db_error)?
            }
            // One writer at a time: the statement is atomic as it is.
            Pool::Sqlite(pool) => {
                let mut conn = checkout(pool).await?;
                diesel::sql_query(
                    "UPDATE pending_creates SET claimed_until = ? WHERE id IN ( \
                       SELECT id FROM pending_creates \
                       WHERE created_at < ? AND (attempted_at IS NULL OR attempted_at < ?) \
                         AND (claimed_until IS NULL OR claimed_until <= ?) \
                       ORDER BY created_at, id LIMIT ?) \
                     RETURNING id, store_id, customer, created_at, attempts",
                )
                .bind::<Timestamp, _>(until)
                .bind::<Timestamp, _>(cutoff)
                .bind::<Timestamp, _>(cutoff)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(i64::from(limit))
                .load::<PendingRow>(&mut *conn)
                .await
                .map_err(db_error)?
            }
        };
        rows.sort_by_key(|row| (row.created_at, row.id));
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
                pending::claimed_until.eq(None::<NaiveDateTime>),
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
                .set((
                    pending::attempted_at.eq(Some(now())),
                    pending::claimed_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)
                .await
                .map(drop)
                .map_err(db_error)
        })
    }
}
