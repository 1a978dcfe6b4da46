//! Vendor state shared by every replica on one PostgreSQL database (issue 14): a store's
//! request budget ([`VendorBudgets`]) and its vendor token ([`VendorTokens`]). SQLite has
//! neither: it serves one process, which keeps both in memory.
//!
//! The gateway adapts them to pos-adapters' `RateBudget` and `TokenStore` ports (this crate
//! does not know that crate); their tables come with the migration `shared_vendor_state`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::result::Error as DieselError;
use diesel::sql_types::{BigInt, Bool, Integer, Text};
use diesel_async::pooled_connection::deadpool::Pool as DeadPool;
use diesel_async::scoped_futures::ScopedFutureExt as _;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use domain::RepositoryError;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::credentials::CredentialsKey;
use crate::database::{checkout, db_error};

/// One take from a budget, the GCRA in one statement. `$2` is the emission interval (the
/// time between two requests at the steady rate), `$3` the burst tolerance (`burst` of them),
/// both in microseconds; `EXCLUDED.tat_us` is the database's "now" plus one interval. The
/// arrival time advances only when the request fits (`GREATEST(tat, now) + interval <= now +
/// tolerance`); otherwise the row keeps it and says `admitted = false`. Concurrent takers of
/// one key queue on the row lock, so each sees the one before it.
const TAKE: &str = "\
INSERT INTO vendor_budgets AS b (budget_key, tat_us, admitted) \
VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint + $2, true) \
ON CONFLICT (budget_key) DO UPDATE SET \
    admitted = GREATEST(b.tat_us + $2, EXCLUDED.tat_us) <= EXCLUDED.tat_us - $2 + $3, \
    tat_us = CASE WHEN GREATEST(b.tat_us + $2, EXCLUDED.tat_us) <= EXCLUDED.tat_us - $2 + $3 \
        THEN GREATEST(b.tat_us + $2, EXCLUDED.tat_us) ELSE b.tat_us END \
RETURNING admitted, tat_us - (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS ahead_us";

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = Bool)]
    admitted: bool,
    #[diesel(sql_type = BigInt)]
    ahead_us: i64,
}

/// Request budgets per store, shared by every replica (`vendor_budgets`).
#[derive(Clone)]
pub struct VendorBudgets {
    /// The relaxed pool: a take that a PostgreSQL crash loses costs nothing, and a take need
    /// not wait for the disk.
    pool: DeadPool<AsyncPgConnection>,
}

impl VendorBudgets {
    pub(crate) fn new(pool: DeadPool<AsyncPgConnection>) -> Self {
        Self { pool }
    }

    /// Takes one request from `key`'s budget of one request per `interval` with `burst` at
    /// once: `None` when it may go now; `Some(wait)` when the budget is spent, nothing was
    /// taken, and a take after `wait` would fit.
    pub async fn take(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
    ) -> Result<Option<Duration>, RepositoryError> {
        let interval_us = i64::try_from(interval.as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        let tolerance_us = interval_us.saturating_mul(i64::from(burst.max(1)));
        let mut conn = checkout(&self.pool).await?;
        let taken: Taken = diesel::sql_query(TAKE)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(interval_us)
            .bind::<BigInt, _>(tolerance_us)
            .get_result(&mut *conn)
            .await
            .map_err(db_error)?;
        if taken.admitted {
            return Ok(None);
        }
        // Refused: the next take fits once `tat - now` is down to `tolerance - interval`.
        let wait_us = taken
            .ahead_us
            .saturating_sub(tolerance_us)
            .saturating_add(interval_us)
            .max(1);
        Ok(Some(Duration::from_micros(
            u64::try_from(wait_us).unwrap_or(1),
        )))
    }
}

impl std::fmt::Debug for VendorBudgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorBudgets").finish_non_exhaustive()
    }
}

/// A vendor token as stored and handed out: how long from now until it should be refreshed,
/// and until it lapses.
#[derive(Clone)]
pub struct StoredToken {
    pub token: Zeroizing<String>,
    pub refresh_in: Duration,
    pub expires_in: Duration,
}

impl StoredToken {
    pub fn new(token: &str, refresh_in: Duration, expires_in: Duration) -> Self {
        Self {
            token: Zeroizing::new(token.to_owned()),
            refresh_in,
            expires_in,
        }
    }
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("refresh_in", &self.refresh_in)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A stored token that need not be refreshed yet, with its remaining times by the database's
/// clock.
const FRESH: &str = "\
SELECT sealed, \
    (extract(epoch FROM refresh_at - clock_timestamp()) * 1000)::bigint AS refresh_in_ms, \
    (extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint AS expires_in_ms \
FROM vendor_tokens WHERE token_key = $1 AND refresh_at > clock_timestamp()";

const STORE: &str = "\
INSERT INTO vendor_tokens (token_key, sealed, refresh_at, expires_at) \
VALUES ($1, $2, clock_timestamp() + $3::double precision * interval '1 millisecond', \
    clock_timestamp() + $4::double precision * interval '1 millisecond') \
ON CONFLICT (token_key) DO UPDATE SET sealed = EXCLUDED.sealed, \
    refresh_at = EXCLUDED.refresh_at, expires_at = EXCLUDED.expires_at";

/// The advisory lock class of token fetches (the key's hash is the other half), apart from
/// the single-key locks migrations take.
const TOKEN_LOCK_CLASS: i32 = 0x746f_6b6e; // "tokn"

#[derive(QueryableByName)]
struct TokenRow {
    #[diesel(sql_type = Text)]
    sealed: String,
    #[diesel(sql_type = BigInt)]
    refresh_in_ms: i64,
    #[diesel(sql_type = BigInt)]
    expires_in_ms: i64,
}

/// Vendor tokens per store, shared by every replica (`vendor_tokens`), sealed with the
/// credentials key like store configs.
#[derive(Clone)]
pub struct VendorTokens {
    pool: DeadPool<AsyncPgConnection>,
    credentials: Option<Arc<CredentialsKey>>,
}

impl VendorTokens {
    pub(crate) fn new(
        pool: DeadPool<AsyncPgConnection>,
        credentials: Option<Arc<CredentialsKey>>,
    ) -> Self {
        Self { pool, credentials }
    }

    /// A token for `key`, fetched with `credentials`, that need not be refreshed yet: the one
    /// stored, or the one `fetch` gets, which is then stored. One caller fetches at a time per
    /// key, across every replica (a transaction-scoped advisory lock); the others wait for it,
    /// at most `within`, and take the token it stored.
    ///
    /// `Err` only when `fetch` was not polled (the caller may fetch by itself); once it ran,
    /// its result is returned even if storing the token failed.
    pub async fn token<E, F>(
        &self,
        key: &str,
        credentials: &str,
        within: Duration,
        fetch: F,
    ) -> Result<Result<StoredToken, E>, RepositoryError>
    where
        F: Future<Output = Result<StoredToken, E>> + Send,
        E: Send,
    {
        let cipher = self.credentials.as_deref().ok_or_else(|| {
            RepositoryError::Unavailable("no credentials key to seal vendor tokens with".into())
        })?;
        let fingerprint = fingerprint(credentials);
        let mut conn = checkout(&self.pool).await?;
        if let Some(token) = fresh(&mut conn, cipher, key, &fingerprint)
            .await
            .map_err(db_error)?
        {
            return Ok(Ok(token));
        }
        let lock_ms = within.as_millis().clamp(1, u128::from(u32::MAX >> 1));
        let mut fetched: Option<Result<StoredToken, E>> = None;
        let slot = &mut fetched;
        let fingerprint = &fingerprint;
        let stored = conn
            .transaction::<Option<StoredToken>, DieselError, _>(|conn| {
                async move {
                    diesel::sql_query(format!("SET LOCAL lock_timeout = {lock_ms}"))
                        .execute(conn)
                        .await?;
                    diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                        .bind::<Integer, _>(TOKEN_LOCK_CLASS)
                        .bind::<Text, _>(key)
                        .execute(conn)
                        .await?;
                    // Another replica may have fetched while this one waited.
                    if let Some(token) = fresh(conn, cipher, key, fingerprint).await? {
                        return Ok(Some(token));
                    }
                    let result = fetch.await;
                    let to_store = result.as_ref().ok().map(|token| {
                        let plain =
                            Zeroizing::new(format!("{fingerprint}:{}", token.token.as_str()));
                        (
                            cipher.seal_bytes(plain.as_bytes(), &associated_data(key)),
                            millis(token.refresh_in),
                            millis(token.expires_in),
                        )
                    });
                    *slot = Some(result);
                    if let Some((Ok(sealed), refresh_in, expires_in)) = to_store {
                        diesel::sql_query(STORE)
                            .bind::<Text, _>(key)
                            .bind::<Text, _>(sealed)
                            .bind::<BigInt, _>(refresh_in)
                            .bind::<BigInt, _>(expires_in)
                            .execute(conn)
                            .await?;
                    }
                    Ok(None)
                }
                .scope_boxed()
            })
            .await;
        match (stored, fetched) {
            (stored, Some(result)) => {
                if let Err(e) = stored {
                    tracing::warn!(error = %db_error(e), "a fetched vendor token could not be stored for the other replicas");
                }
                Ok(result)
            }
            (Ok(Some(token)), None) => Ok(Ok(token)),
            (Ok(None), None) => Err(RepositoryError::Other(
                "the token fetch neither ran nor found a token".into(),
            )),
            (Err(e), None) => Err(db_error(e)),
        }
    }

    /// Forgets `key`'s token if it is `refused` (the vendor answered 401 to it), so every
    /// replica fetches anew; a token another replica stored since is kept.
    pub async fn invalidate(&self, key: &str, refused: &str) -> Result<(), RepositoryError> {
        let Some(cipher) = self.credentials.as_deref() else {
            return Ok(());
        };
        let mut conn = checkout(&self.pool).await?;
        let rows: Vec<SealedRow> =
            diesel::sql_query("SELECT sealed FROM vendor_tokens WHERE token_key = $1")
                .bind::<Text, _>(key)
                .load(&mut *conn)
                .await
                .map_err(db_error)?;
        for row in rows {
            let is_refused =
                open(cipher, key, &row.sealed).is_some_and(|(_, token)| token.as_str() == refused);
            if is_refused {
                diesel::sql_query("DELETE FROM vendor_tokens WHERE token_key = $1 AND sealed = $2")
                    .bind::<Text, _>(key)
                    .bind::<Text, _>(&row.sealed)
                    .execute(&mut *conn)
                    .await
                    .map_err(db_error)?;
            }
        }
        Ok(())
    }
}

#[derive(QueryableByName)]
struct SealedRow {
    #[diesel(sql_type = Text)]
    sealed: String,
}

async fn fresh(
    conn: &mut AsyncPgConnection,
    cipher: &CredentialsKey,
    key: &str,
    fingerprint: &str,
) -> Result<Option<StoredToken>, DieselError> {
    let rows: Vec<TokenRow> = diesel::sql_query(FRESH)
        .bind::<Text, _>(key)
        .load(conn)
        .await?;
    Ok(rows.into_iter().find_map(|row| {
        let (fetched_with, token) = open(cipher, key, &row.sealed)?;
        (fetched_with == fingerprint).then(|| StoredToken {
            token,
            refresh_in: from_millis(row.refresh_in_ms),
            expires_in: from_millis(row.expires_in_ms),
        })
    }))
}

/// The credentials' fingerprint and the token, if `sealed` opens for `key`.
fn open(cipher: &CredentialsKey, key: &str, sealed: &str) -> Option<(String, Zeroizing<String>)> {
    let plain = cipher.open_bytes(sealed, &associated_data(key)).ok()?;
    let text = std::str::from_utf8(&plain).ok()?;
    let (fingerprint, token) = text.split_once(':')?;
    Some((fingerprint.to_owned(), Zeroizing::new(token.to_owned())))
}

/// Which credentials a token was fetched with; kept inside the sealed value, so the table
/// holds no hash of a password.
fn fingerprint(credentials: &str) -> String {
    hex::encode(Sha256::digest(credentials.as_bytes()))
}

/// Binds a sealed token to its key: copied onto another store's row, it does not open.
fn associated_data(key: &str) -> Vec<u8> {
    format!("pos-gateway vendor token\0{key}").into_bytes()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl std::fmt::Debug for VendorTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorTokens")
            .field("credentials_key", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}
