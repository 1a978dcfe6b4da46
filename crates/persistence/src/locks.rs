//! Create locks (`create_locks`): a lease per store and duplicate key, so that the duplicate
//! check and the vendor create after it are one step, across every replica sharing the
//! database. A row is a held lock; a lease that ran out is anybody's to take.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::upsert::excluded;
use diesel::{ExpressionMethods as _, Insertable, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use domain::{CreateLease, CreateLocks, DuplicateKeys, RepositoryError, StoreId};
use sha2::{Digest as _, Sha256};

use crate::database::{Database, Pool, checkout, db_error, now};
use crate::schema::create_locks as locks;

/// How often a waiting create looks again.
const POLL_EVERY: Duration = Duration::from_millis(25);

/// The `create_locks` table, as the domain's [`CreateLocks`] port.
#[derive(Clone, Debug)]
pub struct Locks {
    db: Database,
}

impl Locks {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }
}

#[derive(Insertable)]
#[diesel(table_name = locks, treat_none_as_default_value = false)]
struct LockRow {
    store_id: i64,
    lock_key: String,
    owner: String,
    expires_at: NaiveDateTime,
}

/// A key's name in the table: a hash of what kind of key it is and its value, so the table
/// holds no e-mail, phone or licence.
fn lock_keys(keys: &DuplicateKeys) -> Vec<String> {
    let mut named = Vec::with_capacity(3);
    let mut add = |kind: &str, value: &Option<String>| {
        if let Some(value) = value {
            let digest = Sha256::new()
                .chain_update(kind.as_bytes())
                .chain_update([0])
                .chain_update(value.as_bytes())
                .finalize();
            named.push(hex::encode(digest));
        }
    };
    add("email", &keys.email);
    add("phone", &keys.phone_digits);
    add("license", &keys.drivers_license);
    named.sort();
    named
}

impl Locks {
    /// Takes every one of `names` for `owner`, in one statement where the database allows: a
    /// key is taken when nobody holds it or its lease ran out (its holder died or hung; the
    /// `DO UPDATE ... WHERE` takes it over). What could not all be taken is given back, so two
    /// creates never hold half each and wait for ever. Whether all were taken.
    ///
    /// On the relaxed pool (no disk flush per commit on PostgreSQL): a lock matters only while
    /// its holder lives, and a crash of the server that loses one also ends its holder's
    /// request.
    async fn take(
        &self,
        store: StoreId,
        names: &[String],
        owner: &str,
        expires_at: NaiveDateTime,
    ) -> Result<bool, RepositoryError> {
        let now = now();
        let rows: Vec<LockRow> = names
            .iter()
            .map(|name| LockRow {
                store_id: store.0,
                lock_key: name.clone(),
                owner: owner.to_owned(),
                expires_at,
            })
            .collect();
        macro_rules! upsert {
            ($values:expr) => {
                diesel::query_dsl::methods::FilterDsl::filter(
                    diesel::insert_into(locks::table)
                        .values($values)
                        .on_conflict((locks::store_id, locks::lock_key))
                        .do_update()
                        .set((
                            locks::owner.eq(excluded(locks::owner)),
                            locks::expires_at.eq(excluded(locks::expires_at)),
                        )),
                    locks::expires_at.lt(now),
                )
            };
        }
        let give_back = || diesel::delete(locks::table.filter(locks::owner.eq(owner)));
        match &self.db.relaxed() {
            Pool::Postgres(pool) => {
                let mut conn = checkout(pool).await?;
                let taken = upsert!(&rows).execute(&mut *conn).await.map_err(db_error)?;
                if taken == rows.len() {
                    return Ok(true);
                }
                if taken > 0 {
                    give_back().execute(&mut *conn).await.map_err(db_error)?;
                }
                Ok(false)
            }
            // diesel-async cannot batch-insert into SQLite: a row per statement, on a local file.
            Pool::Sqlite(pool) => {
                let mut conn = checkout(pool).await?;
                let mut taken = 0;
                for row in &rows {
                    if upsert!(row).execute(&mut *conn).await.map_err(db_error)? == 0 {
                        break;
                    }
                    taken += 1;
                }
                if taken == rows.len() {
                    return Ok(true);
                }
                if taken > 0 {
                    give_back().execute(&mut *conn).await.map_err(db_error)?;
                }
                Ok(false)
            }
        }
    }
}

#[async_trait]
impl CreateLocks for Locks {
    async fn acquire(
        &self,
        store: StoreId,
        keys: &DuplicateKeys,
        lease: Duration,
        wait: Duration,
    ) -> Result<Option<CreateLease>, RepositoryError> {
        let names = lock_keys(keys);
        let owner = uuid::Uuid::new_v4().to_string();
        let lease_for = TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = now();
            let expires_at = now.checked_add_signed(lease_for).unwrap_or(now);
            if self.take(store, &names, &owner, expires_at).await? {
                return Ok(Some(CreateLease {
                    store,
                    owner,
                    keys: names,
                }));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            tokio::time::sleep(POLL_EVERY.min(left)).await;
        }
    }

    async fn release(&self, lease: &CreateLease) -> Result<(), RepositoryError> {
        let relaxed = crate::Relaxed {
            pool: self.db.relaxed(),
        };
        with_connection!(relaxed, |conn| {
            diesel::delete(
                locks::table
                    .filter(locks::store_id.eq(lease.store.0))
                    .filter(locks::owner.eq(&lease.owner)),
            )
            .execute(conn)
            .await
            .map(drop)
            .map_err(db_error)
        })
    }

    fn release_behind(&self, lease: CreateLease) {
        self.db.chore(crate::chores::Chore::Release(lease.owner));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_name_no_value_and_tell_kinds_apart() {
        let keys = DuplicateKeys {
            email: Some("a@b.co".into()),
            phone_digits: Some("5551234567".into()),
            drivers_license: None,
        };
        let named = lock_keys(&keys);
        assert_eq!(named.len(), 2);
        assert!(named.iter().all(|n| !n.contains("a@b.co") && n.len() == 64));
        let same_text_other_kind = DuplicateKeys {
            email: None,
            phone_digits: Some("a@b.co".into()),
            drivers_license: None,
        };
        assert!(!lock_keys(&same_text_other_kind).contains(&named[0]));
    }
}
