//! PostgreSQL for tests and measurements: a database of their own on the server that
//! `TEST_DATABASE_URL` names (`cargo xtask test` sets it), made fresh and dropped again.
//!
//! [`TestDatabase`] needs the `postgres` feature; the URL helpers do not.

use std::fmt;

/// The variable naming a PostgreSQL URL whose user may `CREATE DATABASE`.
pub const ADMIN_URL_VARIABLE: &str = "TEST_DATABASE_URL";

/// The server tests make their databases on: `TEST_DATABASE_URL`, or an error saying how to set
/// it.
pub fn admin_url() -> Result<String, Error> {
    match std::env::var(ADMIN_URL_VARIABLE) {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        _ => Err(Error::new(format!(
            "{ADMIN_URL_VARIABLE} is not set: run `cargo xtask test` (it finds or starts a \
             PostgreSQL server and sets it), or set it to a PostgreSQL URL whose user may CREATE \
             DATABASE, e.g. postgres://postgres@127.0.0.1:5432/test"
        ))),
    }
}

/// `url` with its database name replaced by `name`; the query (`?sslmode=...`) is kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base
        .get(authority_start..)
        .and_then(|rest| rest.find('/'))
        .map_or(base.len(), |i| authority_start + i);
    let mut new = format!("{}/{name}", base.get(..authority_end).unwrap_or(base));
    if let Some(query) = query {
        new.push('?');
        new.push_str(query);
    }
    new
}

/// Why a database could not be made, reached or dropped.
pub struct Error {
    message: String,
}

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

// The message alone, also for `Debug`: it is what `unwrap()` in a test prints.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(feature = "postgres")]
pub use database::TestDatabase;

#[cfg(feature = "postgres")]
mod database {
    use std::time::Duration;

    use super::{Error, admin_url, with_database};

    /// The longest a guard's drop waits for the server: a test must not hang on its clean-up.
    const DROP_TIMEOUT: Duration = Duration::from_secs(20);
    /// The prefix of [`TestDatabase::create`]'s databases.
    const TEST_PREFIX: &str = "pos_gateway_test";

    /// A fresh PostgreSQL database, dropped (`DROP DATABASE .. WITH (FORCE)`, so connections
    /// still open to it do not keep it) when this guard is dropped, also when a test panics.
    pub struct TestDatabase {
        admin_url: String,
        name: String,
        url: String,
        dropped: bool,
    }

    impl TestDatabase {
        /// A database on the `TEST_DATABASE_URL` server, for a test: panics, saying what to
        /// do, when that is not set or the server refuses.
        #[allow(clippy::panic)] // A test helper: no server is that test's failure, told plainly.
        pub async fn create() -> Self {
            let made = match admin_url() {
                Ok(admin) => Self::create_on(&admin, TEST_PREFIX).await,
                Err(e) => Err(e),
            };
            match made {
                Ok(database) => database,
                Err(e) => panic!("{e}"),
            }
        }

        /// A database named `<name_prefix>_<random>` on the server `admin_url` points at.
        /// `name_prefix`: lower-case letters, digits and `_`, starting with a letter, at most
        /// 30 bytes (PostgreSQL names end at 63).
        pub async fn create_on(admin_url: &str, name_prefix: &str) -> Result<Self, Error> {
            check_prefix(name_prefix)?;
            let name = format!("{name_prefix}_{}", uuid::Uuid::new_v4().simple());
            let admin = connect(admin_url).await?;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .map_err(|e| Error::new(format!("CREATE DATABASE {name}: {e}")))?;
            Ok(Self {
                admin_url: admin_url.to_owned(),
                url: with_database(admin_url, &name),
                name,
                dropped: false,
            })
        }

        /// Its URL: the admin URL with the database name replaced.
        pub fn url(&self) -> &str {
            &self.url
        }

        pub fn name(&self) -> &str {
            &self.name
        }

        /// Drops it now (closing any connection still open to it), from async code, instead
        /// of when the guard goes.
        pub async fn drop_database(mut self) -> Result<(), Error> {
            self.dropped = true;
            drop_named(&self.admin_url, &self.name).await
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            if self.dropped {
                return;
            }
            self.dropped = true;
            // Drop cannot await, and blocking on the caller's runtime (a test's) would panic;
            // a short-lived thread with a runtime of its own works inside a runtime or not.
            let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
            let dropper = std::thread::Builder::new()
                .name("drop-test-database".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| Error::new(format!("no runtime to drop it on: {e}")))?;
                    runtime.block_on(async {
                        tokio::time::timeout(DROP_TIMEOUT, drop_named(&admin_url, &name))
                            .await
                            .unwrap_or_else(|_| {
                                Err(Error::new(format!("no answer within {DROP_TIMEOUT:?}")))
                            })
                    })
                });
            let outcome = match dropper {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|_| Err(Error::new("the dropping thread panicked"))),
                Err(e) => Err(Error::new(format!("no thread to drop it on: {e}"))),
            };
            // Never panic in Drop (it may run while a test unwinds): say it and go on.
            if let Err(e) = outcome {
                eprintln!("testkit: test database {} was not dropped: {e}", self.name);
            }
        }
    }

    fn check_prefix(prefix: &str) -> Result<(), Error> {
        let well_formed = prefix.len() <= 30
            && prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if well_formed {
            Ok(())
        } else {
            Err(Error::new(format!(
                "database name prefix {prefix:?}: use at most 30 lower-case letters, digits and \
                 `_`, starting with a letter"
            )))
        }
    }

    /// A connection to `admin_url`, driven on the current runtime.
    async fn connect(admin_url: &str) -> Result<tokio_postgres::Client, Error> {
        let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
            .await
            .map_err(|e| {
                Error::new(format!(
                    "cannot connect to the PostgreSQL server ({}): {e}",
                    redact(admin_url)
                ))
            })?;
        tokio::spawn(async move {
            // Its end (or error) shows in the client's next call.
            let _ = connection.await;
        });
        Ok(client)
    }

    async fn drop_named(admin_url: &str, name: &str) -> Result<(), Error> {
        connect(admin_url)
            .await?
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .map_err(|e| Error::new(format!("DROP DATABASE {name}: {e}")))
    }

    /// `url` without its password, for messages.
    fn redact(url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_owned();
        };
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn prefixes_must_make_plain_postgres_names() {
            assert!(check_prefix("pos_gateway_bench").is_ok());
            for bad in [
                "",
                "Bench",
                "1bench",
                "bench-x",
                "bench;drop",
                &"x".repeat(31),
            ] {
                assert!(check_prefix(bad).is_err(), "{bad:?}");
            }
        }

        #[test]
        fn passwords_are_not_shown() {
            assert_eq!(
                redact("postgres://u:secret@h:5432/db?sslmode=disable"),
                "postgres://u:***@h:5432/db?sslmode=disable"
            );
            assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
        assert_eq!(
            with_database("postgres://h:5432?sslmode=disable", "x"),
            "postgres://h:5432/x?sslmode=disable"
        );
    }
}
