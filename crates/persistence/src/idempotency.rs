//! `Idempotency-Key` records: who may process a request, and the saved outcome to replay.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _,
    Queryable, Selectable, SelectableHelper as _,
};
use diesel_async::RunQueryDsl as _;
use domain::{Claim, ClaimToken, IdempotencyKey, IdempotencyStore, RepositoryError, SavedOutcome};

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
    claimed_at: Option<NaiveDateTime>,
}

/// A holder's name for one claim: unique, so a taken-over claim's first holder is told apart.
fn new_token() -> ClaimToken {
    ClaimToken(uuid::Uuid::new_v4().to_string())
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
                let token = new_token();
                let inserted = diesel::insert_into(keys::table)
                    .values((
                        keys::scope.eq(&key.scope),
                        keys::key.eq(&key.key),
                        keys::fingerprint.eq(&key.fingerprint),
                        keys::created_at.eq(now),
                        keys::claimed_at.eq(now),
                        keys::owner.eq(&token.0),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await
                    .map_err(db_error)?;
                if inserted == 1 {
                    return Ok(Claim::Acquired(token));
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
                    return Ok(Claim::Completed(SavedOutcome::from_json(outcome)));
                }
                // Abandoned: its holder stopped renewing it (it died, or lost the database).
                let abandoned = now - self.abandon_after;
                let last_alive = record.claimed_at.unwrap_or(record.created_at);
                if last_alive < abandoned {
                    let taken = diesel::update(
                        this_key
                            .filter(keys::fingerprint.eq(&key.fingerprint))
                            .filter(keys::completed_at.is_null())
                            .filter(
                                keys::claimed_at
                                    .lt(abandoned)
                                    .or(keys::claimed_at.is_null()),
                            ),
                    )
                    .set((keys::claimed_at.eq(now), keys::owner.eq(&token.0)))
                    .execute(conn)
                    .await
                    .map_err(db_error)?;
                    if taken == 1 {
                        return Ok(Claim::Acquired(token));
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

    fn renew_every(&self) -> Duration {
        // A third of the abandon time: two renewals may fail before a claim can be taken over.
        (self.abandon_after / 3)
            .to_std()
            .unwrap_or(Duration::from_secs(1))
    }

    async fn renew(
        &self,
        key: &IdempotencyKey,
        token: &ClaimToken,
    ) -> Result<bool, RepositoryError> {
        let renewed = with_connection!(self.db, |conn| {
            diesel::update(
                keys::table
                    .filter(keys::scope.eq(key.scope.as_str()))
                    .filter(keys::key.eq(key.key.as_str()))
                    .filter(keys::owner.eq(token.0.as_str()))
                    .filter(keys::completed_at.is_null()),
            )
            .set(keys::claimed_at.eq(now()))
            .execute(conn)
            .await
            .map_err(db_error)
        })?;
        Ok(renewed == 1)
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        token: &ClaimToken,
        outcome: &SavedOutcome,
    ) -> Result<bool, RepositoryError> {
        let completed = with_connection!(self.db, |conn| {
            diesel::update(
                keys::table
                    .filter(keys::scope.eq(key.scope.as_str()))
                    .filter(keys::key.eq(key.key.as_str()))
                    .filter(keys::fingerprint.eq(key.fingerprint.as_str()))
                    .filter(keys::owner.eq(token.0.as_str()))
                    .filter(keys::completed_at.is_null()),
            )
            .set((
                keys::outcome.eq(Some(outcome.as_json())),
                keys::completed_at.eq(Some(now())),
            ))
            .execute(conn)
            .await
            .map_err(db_error)
        })?;
        Ok(completed == 1)
    }

    /// Deletes the record unless it has completed (a saved outcome is never given up) or is
    /// no longer this holder's.
    async fn release(
        &self,
        key: &IdempotencyKey,
        token: &ClaimToken,
    ) -> Result<(), RepositoryError> {
        with_connection!(self.db, |conn| {
            diesel::delete(
                keys::table
                    .filter(keys::scope.eq(key.scope.as_str()))
                    .filter(keys::key.eq(key.key.as_str()))
                    .filter(keys::fingerprint.eq(key.fingerprint.as_str()))
                    .filter(keys::owner.eq(token.0.as_str()))
                    .filter(keys::completed_at.is_null()),
            )
            .execute(conn)
            .await
            .map(drop)
            .map_err(db_error)
        })
    }

    /// One bounded batch: the oldest `limit` expired records' keys, then those records (a key
    /// may be named twice across scopes: only expired rows are ever deleted).
    async fn purge_expired(&self, limit: u32) -> Result<u64, RepositoryError> {
        let cutoff = now() - self.expire_after;
        with_connection!(self.db, |conn| {
            let batch: Vec<(String, String)> = keys::table
                .filter(keys::created_at.lt(cutoff))
                .order(keys::created_at.asc())
                .limit(i64::from(limit))
                .select((keys::scope, keys::key))
                .load(conn)
                .await
                .map_err(db_error)?;
            if batch.is_empty() {
                return Ok(0);
            }
            let (scopes, names): (Vec<String>, Vec<String>) = batch.into_iter().unzip();
            let deleted = diesel::delete(
                keys::table
                    .filter(keys::created_at.lt(cutoff))
                    .filter(keys::scope.eq_any(&scopes))
                    .filter(keys::key.eq_any(&names)),
            )
            .execute(conn)
            .await
            .map_err(db_error)?;
            Ok(deleted as u64)
        })
    }
}
