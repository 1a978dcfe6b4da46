//! `Idempotency-Key` records: who may process a request, and the saved outcome to replay.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, Queryable, Selectable,
    SelectableHelper as _,
};
use diesel_async::RunQueryDsl as _;
use domain::{Claim, IdempotencyKey, IdempotencyStore, RepositoryError};

use crate::database::{Database, db_error, now};
use crate::schema::idempotency_keys as keys;

/// How long a key is remembered.
const EXPIRE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a request may stay in progress before its process is presumed dead.
const ABANDON_AFTER: Duration = Duration::from_secs(5 * 60);
const POLL_EVERY: Duration = Duration::from_millis(50);
/// A claim retries when the record changes under it (released, expired, taken over); this many
/// changes in a row and it answers `InProgress` rather than spin.
const CLAIM_ATTEMPTS: usize = 5;

/// Idempotency records in the `idempotency_keys` table. Claims are race-free on both backends:
/// every decision is one atomic statement (an `INSERT ... ON CONFLICT DO NOTHING`, or an
/// `UPDATE`/`DELETE` conditioned on the state that was read) whose row count says who won.
#[derive(Clone, Debug)]
pub struct IdempotencyRecords {
    db: Database,
    expire_after: TimeDelta,
    abandon_after: TimeDelta,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = keys, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct Record {
    fingerprint: String,
    outcome: Option<String>,
    created_at: NaiveDateTime,
}

fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

impl IdempotencyRecords {
    pub(crate) fn new(db: Database) -> Self {
        Self {
            db,
            expire_after: delta(EXPIRE_AFTER),
            abandon_after: delta(ABANDON_AFTER),
        }
    }

    /// The same records with other lifetimes than 24 hours (`expire_after`) and 5 minutes
    /// (`abandon_after`, for a request still in progress); for tests.
    pub fn with_lifetimes(self, expire_after: Duration, abandon_after: Duration) -> Self {
        Self {
            expire_after: delta(expire_after),
            abandon_after: delta(abandon_after),
            ..self
        }
    }
}

#[async_trait]
impl IdempotencyStore for IdempotencyRecords {
    async fn claim(&self, key: &IdempotencyKey) -> Result<Claim, RepositoryError> {
        let this_key = keys::table
            .filter(keys::scope.eq(key.scope.as_str()))
            .filter(keys::key.eq(key.key.as_str()));
        with_connection!(self.db, |conn| {
            for _ in 0..CLAIM_ATTEMPTS {
                let now = now();
                let inserted = diesel::insert_into(keys::table)
                    .values((
                        keys::scope.eq(&key.scope),
                        keys::key.eq(&key.key),
                        keys::fingerprint.eq(&key.fingerprint),
                        keys::created_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await
                    .map_err(db_error)?;
                if inserted == 1 {
                    return Ok(Claim::Acquired);
                }
                let Some(record) = this_key
                    .select(Record::as_select())
                    .first(conn)
                    .await
                    .optional()
                    .map_err(db_error)?
                else {
                    continue; // released meanwhile: try again
                };
                let expired = now - self.expire_after;
                if record.created_at < expired {
                    diesel::delete(this_key.filter(keys::created_at.lt(expired)))
                        .execute(conn)
                        .await
                        .map_err(db_error)?;
                    continue;
                }
                if record.fingerprint != key.fingerprint {
                    return Ok(Claim::Mismatch);
                }
                if let Some(outcome) = record.outcome {
                    return serde_json::from_str(&outcome)
                        .map(Claim::Completed)
                        .map_err(|e| {
                            RepositoryError::Corrupt(format!(
                                "idempotency outcome is not JSON: {e}"
                            ))
                        });
                }
                let abandoned = now - self.abandon_after;
                if record.created_at < abandoned {
                    let taken = diesel::update(
                        this_key
                            .filter(keys::fingerprint.eq(&key.fingerprint))
                            .filter(keys::completed_at.is_null())
                            .filter(keys::created_at.lt(abandoned)),
                    )
                    .set(keys::created_at.eq(now))
                    .execute(conn)
                    .await
                    .map_err(db_error)?;
                    if taken == 1 {
                        return Ok(Claim::Acquired);
                    }
                    continue; // someone else took it over, or it finished: look again
                }
                return Ok(Claim::InProgress);
            }
            Ok(Claim::InProgress)
        })
    }

    async fn wait(
        &self,
        key: &IdempotencyKey,
        timeout: Duration,
    ) -> Result<Claim, RepositoryError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let claim = self.claim(key).await?;
            let now = tokio::time::Instant::now();
            if claim != Claim::InProgress || now >= deadline {
                return Ok(claim);
            }
            tokio::time::sleep(POLL_EVERY.min(deadline - now)).await;
        }
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        outcome: &serde_json::Value,
    ) -> Result<(), RepositoryError> {
        let completed = with_connection!(self.db, |conn| {
            diesel::update(
                keys::table
                    .filter(keys::scope.eq(key.scope.as_str()))
                    .filter(keys::key.eq(key.key.as_str()))
                    .filter(keys::fingerprint.eq(key.fingerprint.as_str())),
            )
            .set((
                keys::outcome.eq(Some(outcome.to_string())),
                keys::completed_at.eq(Some(now())),
            ))
            .execute(conn)
            .await
            .map_err(db_error)
        })?;
        if completed == 0 {
            tracing::warn!(scope = %key.scope, "idempotency record vanished before its request completed");
        }
        Ok(())
    }

    /// Deletes the record unless it has completed (a saved outcome is never given up).
    async fn release(&self, key: &IdempotencyKey) -> Result<(), RepositoryError> {
        with_connection!(self.db, |conn| {
            diesel::delete(
                keys::table
                    .filter(keys::scope.eq(key.scope.as_str()))
                    .filter(keys::key.eq(key.key.as_str()))
                    .filter(keys::fingerprint.eq(key.fingerprint.as_str()))
                    .filter(keys::completed_at.is_null()),
            )
            .execute(conn)
            .await
            .map(drop)
            .map_err(db_error)
        })
    }
}
