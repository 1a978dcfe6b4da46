//! Connecting, migrating and pinging; the pools behind every repository, and how their failures
//! become [`RepositoryError`]s.

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection as _, SqliteConnection};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool as DeadPool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, SimpleAsyncConnection as _};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use domain::{Customer, RepositoryError, StoreId};

use crate::behind::BehindStats;
use crate::credentials::CredentialsKey;
use crate::idempotency::IdempotencyRecords;
use crate::locks::Locks;
use crate::mirror::{LocalPos, Mirror};
use crate::outbox::Outbox;
use crate::settings::Settings;
use crate::stores::Stores;
use crate::sync::{SyncLeases, SyncRuns};
use crate::tls::PgTarget;
use crate::vendor_state::{VendorBudgets, VendorTokens};

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Run on every SQLite connection. `busy_timeout` first: switching to WAL may have to wait.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";
const SQLITE_POOL_SIZE: usize = 8;
const POSTGRES_POOL_SIZE: usize = 16;
/// Connections for writes that may skip the wait for the disk (see [`Database::relaxed`]).
const POSTGRES_RELAXED_POOL_SIZE: usize = 8;
/// How long to wait for a pooled connection, or to open one: a dead database gives an error.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Serialises `migrate` across processes sharing one PostgreSQL database.
const MIGRATION_LOCK_ID: i64 = 0x706f_735f_6777; // "pos_gw"

pub(crate) type SqliteAsyncConnection = SyncConnectionWrapper<SqliteConnection>;

/// Which database a [`Database`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "PostgreSQL",
            Backend::Sqlite => "SQLite",
        })
    }
}

/// Why the database could not be opened or migrated. No variant holds the URL, so neither
/// `Display` nor `Debug` can print a password from it.
#[derive(Debug, thiserror::Error)]
pub enum PersistenceError {
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    #[error("could not connect to the {backend} database: {message}")]
    Connect { backend: Backend, message: String },
    #[error("could not migrate the {backend} database: {message}")]
    Migrate { backend: Backend, message: String },
}

/// The pool of whichever backend is in use. Repository code runs on either through
/// `with_connection!` (see lib.rs).
#[derive(Clone)]
pub(crate) enum Pool {
    Postgres(DeadPool<AsyncPgConnection>),
    Sqlite(DeadPool<SqliteAsyncConnection>),
}

/// Where the database is; kept for migrations, which use a connection of their own.
enum Location {
    /// The parsed URL and its TLS set-up (`sslmode`); never printed.
    Postgres(Arc<PgTarget>),
    /// A file path.
    Sqlite(String),
}

/// A connection pool to PostgreSQL or SQLite, and the repositories over it. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    pub(crate) pool: Pool,
    /// PostgreSQL only: connections with `synchronous_commit = off`, for the mirror's copies
    /// and the outbox. Their commits survive a crash of the gateway (the server has them) but
    /// not of the PostgreSQL server itself within its WAL writer delay: fine for a cache that
    /// the POS refills and a journal whose loss means one missed recovery, and it takes the
    /// disk flush (milliseconds here) off every vendor create. Customers of the `local` POS,
    /// idempotency records, stores and settings keep synchronous commits.
    relaxed: Option<DeadPool<AsyncPgConnection>>,
    location: Arc<Location>,
    /// Seals and opens vendor credentials in store configs; `None`: only empty configs.
    pub(crate) credentials: Option<Arc<CredentialsKey>>,
    /// The mirror's copies of read answers, written behind them (started at the first).
    behind: Arc<std::sync::OnceLock<Option<crate::behind::WriteBehind>>>,
    /// Settles and lock releases done behind a create's answer (started at the first).
    chores: Arc<std::sync::OnceLock<Option<crate::chores::Chores>>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend())
            .field("credentials_key", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens a pool and checks that one connection can be made.
    ///
    /// Accepts `sqlite://path/to/file.db` (relative to the working directory),
    /// `sqlite:///abs/path.db`, and `postgres://...` or `postgresql://...`. A SQLite file (and
    /// its directory) is created when missing, readable and writable by its owner only.
    pub async fn connect(url: &str) -> Result<Database, PersistenceError> {
        let location = Location::parse(url)?;
        let mut relaxed = None;
        let pool = match &location {
            Location::Postgres(target) => {
                let mut config = ManagerConfig::<AsyncPgConnection>::default();
                // No `SELECT 1` before each checkout: a round trip on every statement. A
                // connection that died (a restarted server) fails its next statement, is
                // marked broken by it and replaced at its next checkout; that one request
                // answers 503, as it would have while the server was down.
                config.recycling_method = RecyclingMethod::Fast;
                let plain = Arc::clone(target);
                config.custom_setup = Box::new(move |_| {
                    let target = Arc::clone(&plain);
                    Box::pin(async move { target.connect().await })
                });
                // The manager's URL is unused: every connection comes from the parsed target.
                let manager = AsyncDieselConnectionManager::new_with_config("postgres", config);
                let mut config = ManagerConfig::<AsyncPgConnection>::default();
                config.recycling_method = RecyclingMethod::Fast;
                let relaxed_target = Arc::clone(target);
                config.custom_setup =
                    Box::new(move |_| Box::pin(establish_relaxed(Arc::clone(&relaxed_target))));
                let relaxed_manager =
                    AsyncDieselConnectionManager::new_with_config("postgres", config);
                relaxed = Some(build_pool(
                    relaxed_manager,
                    POSTGRES_RELAXED_POOL_SIZE,
                    Backend::Postgres,
                )?);
                Pool::Postgres(build_pool(manager, POSTGRES_POOL_SIZE, Backend::Postgres)?)
            }
            Location::Sqlite(path) => {
                create_parent_directory(path)?;
                create_private_file(path)?;
                let mut config = ManagerConfig::<SqliteAsyncConnection>::default();
                // A local file does not drop connections; skip the `SELECT 1` per checkout.
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(|path| Box::pin(establish_sqlite(path.to_owned())));
                let manager = AsyncDieselConnectionManager::new_with_config(path.clone(), config);
                Pool::Sqlite(build_pool(manager, SQLITE_POOL_SIZE, Backend::Sqlite)?)
            }
        };
        let database = Database {
            pool,
            relaxed,
            location: Arc::new(location),
            credentials: None,
            behind: Arc::default(),
            chores: Arc::default(),
        };
        let backend = database.backend();
        database
            .ping()
            .await
            .map_err(|e| PersistenceError::Connect {
                backend,
                message: e.to_string(),
            })?;
        Ok(database)
    }

    /// The key vendor credentials in store configs are encrypted with. Without one, stores with
    /// an empty config (`local`) work, but adding a store with credentials is refused and
    /// reading one fails.
    pub fn with_credentials_key(mut self, key: Option<CredentialsKey>) -> Self {
        self.credentials = key.map(Arc::new);
        self
    }

    /// Applies the embedded migrations that have not run yet; a no-op when none are pending.
    pub async fn migrate(&self) -> Result<(), PersistenceError> {
        let backend = self.backend();
        let location = Arc::clone(&self.location);
        tokio::task::spawn_blocking(move || location.run_migrations())
            .await
            .map_err(|e| PersistenceError::Migrate {
                backend,
                message: e.to_string(),
            })?
    }

    /// `SELECT 1`, for readiness checks; gives up after 2 seconds.
    pub async fn ping(&self) -> Result<(), RepositoryError> {
        let select_one = async {
            with_connection!(self, |conn| {
                diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), conn)
                    .await
                    .map(drop)
                    .map_err(db_error)
            })
        };
        tokio::time::timeout(PING_TIMEOUT, select_one)
            .await
            .map_err(|_| {
                RepositoryError::Unavailable(format!(
                    "no answer within {} s",
                    PING_TIMEOUT.as_secs()
                ))
            })?
    }

    /// The pool for writes that need not wait for the disk: the relaxed PostgreSQL pool, or
    /// the one pool (SQLite, where `synchronous = NORMAL` already applies).
    pub(crate) fn relaxed(&self) -> Pool {
        match &self.relaxed {
            Some(relaxed) => Pool::Postgres(relaxed.clone()),
            None => self.pool.clone(),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Postgres(_) => Backend::Postgres,
            Pool::Sqlite(_) => Backend::Sqlite,
        }
    }

    pub fn stores(&self) -> Stores {
        Stores::new(self.clone())
    }

    pub fn mirror(&self) -> Mirror {
        Mirror::new(self.clone())
    }

    /// Queues read answers for the mirror (see [`crate::behind`]); the writer starts with
    /// the first, on the runtime of whoever sent it.
    pub(crate) fn write_behind(
        &self,
        store: StoreId,
        customers: Vec<Customer>,
        seen: chrono::NaiveDateTime,
    ) {
        let writer = self
            .behind
            .get_or_init(|| crate::behind::WriteBehind::start(self.mirror()));
        match writer {
            Some(writer) => writer.send(store, customers, seen),
            None => tracing::warn!(
                dropped = customers.len(),
                "no async runtime to copy a read answer into the mirror on"
            ),
        }
    }

    /// Queues a delete that a create's answer does not wait for (see [`crate::chores`]); the
    /// task starts with the first, on the runtime of whoever sent it. Outside a runtime it is
    /// left undone, as a crash would leave it.
    pub(crate) fn chore(&self, chore: crate::chores::Chore) {
        let chores = self
            .chores
            .get_or_init(|| crate::chores::Chores::start(self.clone()));
        if !chores.as_ref().is_some_and(|chores| chores.send(chore)) {
            tracing::warn!(
                "no async runtime for a settle or lock release; left to recovery and the lease"
            );
        }
    }

    /// What the mirror's copies written behind read answers came to, in this process.
    pub fn write_behind_stats(&self) -> BehindStats {
        self.behind
            .get()
            .and_then(Option::as_ref)
            .map(crate::behind::WriteBehind::stats)
            .unwrap_or_default()
    }

    pub fn idempotency(&self) -> IdempotencyRecords {
        IdempotencyRecords::new(self.clone())
    }

    /// Leases per store and duplicate key, serialising creates of the same customer.
    pub fn create_locks(&self) -> Locks {
        Locks::new(self.clone())
    }

    /// The journal of vendor creates not yet accounted for in the mirror.
    pub fn outbox(&self) -> Outbox {
        Outbox::new(self.clone())
    }

    /// Who syncs which store now: a lease per store, shared by every process on the database.
    pub fn sync_leases(&self) -> SyncLeases {
        SyncLeases::new(self.clone())
    }

    /// Each store's last sync.
    pub fn sync_runs(&self) -> SyncRuns {
        SyncRuns::new(self.clone())
    }

    /// The built-in `local` POS of one store.
    pub fn local_pos(&self, store: StoreId) -> LocalPos {
        LocalPos::new(self.mirror(), store)
    }

    pub fn settings(&self) -> Settings {
        Settings::new(self.clone())
    }

    /// Request budgets per store shared by every replica: PostgreSQL only (`None` on SQLite,
    /// one process, where each store's budget stays in memory).
    pub fn vendor_budgets(&self) -> Option<VendorBudgets> {
        match self.relaxed() {
            Pool::Postgres(pool) => Some(VendorBudgets::new(pool)),
            Pool::Sqlite(_) => None,
        }
    }

    /// Vendor tokens per store shared by every replica, sealed with the credentials key:
    /// PostgreSQL only.
    pub fn vendor_tokens(&self) -> Option<VendorTokens> {
        match &self.pool {
            Pool::Postgres(pool) => Some(VendorTokens::new(pool.clone(), self.credentials.clone())),
            Pool::Sqlite(_) => None,
        }
    }
}

impl Location {
    fn parse(url: &str) -> Result<Self, PersistenceError> {
        const ACCEPTED: &str = "expected sqlite://PATH (relative), sqlite:///PATH (absolute), \
             postgres://... or postgresql://...";
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(PersistenceError::BadUrl(format!(
                    "sqlite:// needs a file path; {ACCEPTED}"
                )));
            }
            return Ok(Location::Sqlite(path.to_owned()));
        }
        let scheme = url
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => PgTarget::parse(url)
                .map(|target| Location::Postgres(Arc::new(target)))
                .map_err(PersistenceError::BadUrl),
            // Only a plausible scheme is repeated: the rest of a URL may hold a password.
            Some(scheme)
                if !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
            {
                Err(PersistenceError::BadUrl(format!(
                    "unsupported scheme '{scheme}://'; {ACCEPTED}"
                )))
            }
            _ => Err(PersistenceError::BadUrl(format!(
                "not a database URL; {ACCEPTED}"
            ))),
        }
    }

    /// Blocking: run it on a blocking thread.
    fn run_migrations(&self) -> Result<(), PersistenceError> {
        match self {
            Location::Postgres(target) => {
                let failed = |message: String| PersistenceError::Migrate {
                    backend: Backend::Postgres,
                    message,
                };
                // On a blocking thread of the caller's runtime: the connection is made (and
                // driven) there, and the wrapper blocks on that runtime for each query.
                let established = tokio::runtime::Handle::try_current()
                    .map_err(|e| failed(e.to_string()))?
                    .block_on(target.connect())
                    .map_err(|e| PersistenceError::Connect {
                        backend: Backend::Postgres,
                        message: e.to_string(),
                    })?;
                let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(established);
                // Held until this connection closes, so two instances starting together do not
                // both apply the same migration.
                diesel::connection::SimpleConnection::batch_execute(
                    &mut conn,
                    &format!("SELECT pg_advisory_lock({MIGRATION_LOCK_ID})"),
                )
                .map_err(|e| failed(e.to_string()))?;
                conn.run_pending_migrations(PG_MIGRATIONS)
                    .map(drop)
                    .map_err(|e| failed(e.to_string()))
            }
            Location::Sqlite(path) => {
                let failed = |message: String| PersistenceError::Migrate {
                    backend: Backend::Sqlite,
                    message,
                };
                let mut conn =
                    SqliteConnection::establish(path).map_err(|e| PersistenceError::Connect {
                        backend: Backend::Sqlite,
                        message: e.to_string(),
                    })?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(|e| failed(e.to_string()))?;
                // IMMEDIATE takes the write lock first, so concurrent runs queue up instead of
                // both applying the same migration.
                conn.immediate_transaction(|conn| {
                    conn.run_pending_migrations(SQLITE_MIGRATIONS).map(drop)
                })
                .map_err(|e: Box<dyn std::error::Error + Send + Sync>| failed(e.to_string()))
            }
        }
    }
}

fn create_parent_directory(path: &str) -> Result<(), PersistenceError> {
    match std::path::Path::new(path).parent() {
        Some(parent) if !parent.as_os_str().is_empty() && !parent.exists() => {
            std::fs::create_dir_all(parent).map_err(|e| PersistenceError::Connect {
                backend: Backend::Sqlite,
                message: format!("cannot create directory {}: {e}", parent.display()),
            })
        }
        _ => Ok(()),
    }
}

/// A new SQLite file is made readable by its owner only (0600) before SQLite opens it: it
/// holds customers, sealed vendor credentials and the demo's token secret. SQLite gives the
/// `-wal` and `-shm` files it makes beside it the database file's mode. A file that is there
/// already is left as it is.
fn create_private_file(path: &str) -> Result<(), PersistenceError> {
    if path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(PersistenceError::Connect {
            backend: Backend::Sqlite,
            message: format!("cannot create {path}: {e}"),
        }),
    }
}

async fn establish_relaxed(target: Arc<PgTarget>) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut conn = target.connect().await?;
    conn.batch_execute("SET synchronous_commit = off")
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

async fn establish_sqlite(path: String) -> diesel::ConnectionResult<SqliteAsyncConnection> {
    let mut conn = SqliteAsyncConnection::establish(&path).await?;
    conn.batch_execute(SQLITE_PRAGMAS)
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

fn build_pool<C>(
    manager: AsyncDieselConnectionManager<C>,
    size: usize,
    backend: Backend,
) -> Result<DeadPool<C>, PersistenceError>
where
    AsyncDieselConnectionManager<C>: deadpool::managed::Manager,
{
    DeadPool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .recycle_timeout(Some(POOL_TIMEOUT))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| PersistenceError::Connect {
            backend,
            message: e.to_string(),
        })
}

/// A pooled connection, or `Unavailable` when none comes in time.
pub(crate) async fn checkout<C>(pool: &DeadPool<C>) -> Result<Object<C>, RepositoryError>
where
    AsyncDieselConnectionManager<C>:
        deadpool::managed::Manager<Type = C, Error = diesel_async::pooled_connection::PoolError>,
{
    pool.get().await.map_err(pool_error)
}

fn pool_error(error: PoolError) -> RepositoryError {
    match error {
        PoolError::NoRuntimeSpecified => RepositoryError::Other(error.to_string()),
        // Why the connection could not be made, without deadpool's preamble.
        PoolError::Backend(cause) => RepositoryError::Unavailable(cause.to_string()),
        other => RepositoryError::Unavailable(other.to_string()),
    }
}

/// Maps a query failure: lost connections and a locked SQLite file are `Unavailable`, unique
/// violations `Conflict`.
pub(crate) fn db_error(error: DieselError) -> RepositoryError {
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            RepositoryError::Conflict(info.message().to_owned())
        }
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => RepositoryError::Unavailable(error.to_string()),
        DieselError::DatabaseError(_, info) if means_unavailable(info.message()) => {
            RepositoryError::Unavailable(error.to_string())
        }
        _ => RepositoryError::Other(error.to_string()),
    }
}

/// Messages of a database that is busy, going away or not there: the caller should retry
/// later (503), not report a bug (500). PostgreSQL's shutdown and administrator kills
/// (SQLSTATE 57P01..57P03) reach diesel as unknown errors, so their text is the only clue.
fn means_unavailable(message: &str) -> bool {
    const SIGNS: [&str; 7] = [
        "database is locked",
        "database is busy",
        "terminating connection",
        "the database system is",
        "connection closed",
        "connection refused",
        "does not exist",
    ];
    SIGNS.iter().any(|sign| message.contains(sign))
}

/// Now, in UTC, as every timestamp column holds it.
pub(crate) fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

#[cfg(test)]
mod tests {
    /// diesel keys migrations by the version before the name: two with one version on a
    /// backend and only the first runs (two branches each added `2026-12-10-000000_...`).
    #[test]
    fn every_migration_has_its_own_version() {
        for backend in ["postgres", "sqlite"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(backend);
            let mut versions = Vec::new();
            for entry in std::fs::read_dir(&dir).expect("the migrations folder") {
                let name = entry.expect("an entry").file_name();
                let name = name.to_string_lossy().into_owned();
                let version = name.split('_').next().unwrap_or_default().to_owned();
                assert!(!versions.contains(&version), "{backend}: {version} twice");
                versions.push(version);
            }
        }
    }

    use super::*;

    fn bad_url(url: &str) -> String {
        match Location::parse(url) {
            Err(e) => e.to_string(),
            Ok(_) => String::from("accepted"),
        }
    }

    #[test]
    fn urls_name_their_backend() {
        assert!(matches!(
            Location::parse("sqlite://data/pos.db"),
            Ok(Location::Sqlite(p)) if p == "data/pos.db"
        ));
        assert!(matches!(
            Location::parse("sqlite:///var/lib/pos.db"),
            Ok(Location::Sqlite(p)) if p == "/var/lib/pos.db"
        ));
        for url in [
            "postgres://u:p@h/db",
            "postgresql://h/db",
            "POSTGRES://h/db",
        ] {
            assert!(
                matches!(Location::parse(url), Ok(Location::Postgres(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_urls_name_the_accepted_schemes_and_never_the_password() {
        let message = bad_url("mysql://root:hunter2@db/pos");
        assert!(message.contains("'mysql://'"), "{message}");
        assert!(message.contains("postgres://"), "{message}");
        assert!(message.contains("sqlite://"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        let message = bad_url("root:hunter2@db/pos");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(bad_url("sqlite://").contains("needs a file path"));
        assert!(bad_url("sqlite:pos.db").contains("not a database URL"));
    }

    /// The file holds the demo's token secret: other users of the machine must not read it.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_sqlite_file_is_its_owners_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let database = Database::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        database.migrate().await.unwrap();
        database.settings().get_or_insert("k", "v").await.unwrap();
        let mut seen = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            if let Ok(metadata) = std::fs::metadata(&file) {
                seen.push(suffix);
                assert_eq!(
                    metadata.permissions().mode() & 0o777,
                    0o600,
                    "{file} is readable by others"
                );
            }
        }
        assert_eq!(seen, ["", "-wal", "-shm"], "WAL mode makes all three");
    }

    /// The PostgreSQL client's errors name neither the URL nor its password; a guard, should a
    /// new connection path start quoting them.
    #[tokio::test]
    async fn connection_errors_never_show_the_password() {
        for url in [
            "postgres://pos:hunter2pw@127.0.0.1:1/pos_gateway",
            "postgres://pos:hunter2pw@[::1/pos_gateway",
            "postgres://pos@127.0.0.1:1/pos_gateway?password=hunter2pw",
        ] {
            let message = match Database::connect(url).await {
                Ok(_) => String::from("connected"),
                Err(e) => format!("{e} / {e:?}"),
            };
            assert!(
                message.contains("could not connect") || message.contains("invalid database URL"),
                "{message}"
            );
            assert!(!message.contains("hunter2pw"), "{message}");
        }
    }
}
