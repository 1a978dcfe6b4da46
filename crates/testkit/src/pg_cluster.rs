//! A throw-away PostgreSQL cluster of a test's own, for what the shared server
//! (`TEST_DATABASE_URL`) must not be changed for: server settings (TLS with a test's own
//! certificate, say) or stopping the server. std only.
//!
//! `initdb` and `pg_ctl` are looked for on `PATH` and in `/usr/lib/postgresql/*/bin` (newest
//! first). As root they run as the `postgres` user (through `runuser`), since initdb refuses to
//! run as root. The cluster listens on 127.0.0.1 on a free port, trusts every local connection,
//! runs without fsync, and is stopped (`pg_ctl stop -m immediate`) and its directory removed
//! when the [`Cluster`] is dropped, or when the test process dies (a watchdog process waits for
//! the end of a pipe only this process holds).

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Why a cluster could not be started.
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

/// What to start: server settings and files to put in the data directory first.
#[derive(Default)]
pub struct ClusterBuilder {
    settings: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
}

impl ClusterBuilder {
    /// A `postgresql.conf` setting, e.g. `("ssl", "on")`; the value is quoted for the file.
    pub fn setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }

    /// A file in the data directory (a relative name, e.g. `server.key`), readable by the
    /// server's user alone (mode 0600), as PostgreSQL wants its TLS key.
    pub fn file(mut self, name: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.into(), contents.into()));
        self
    }

    /// `initdb`, the files and settings, `pg_ctl start`; returns once the server accepts
    /// connections.
    pub fn start(self) -> Result<Cluster, Error> {
        Cluster::start(self)
    }
}

/// A running throw-away cluster; stopped and removed when dropped.
pub struct Cluster {
    base: PathBuf,
    port: u16,
    watchdog: Option<(Child, ChildStdin)>,
}

impl Cluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The data directory (where [`ClusterBuilder::file`] put its files).
    pub fn data_dir(&self) -> PathBuf {
        self.base.join("data")
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.base.join("postgres.log")).unwrap_or_default()
    }

    fn start(builder: ClusterBuilder) -> Result<Self, Error> {
        let bin = server_bin_dir()?;
        let run_as = RunAs::detect()?;
        let base = fresh_base_dir()?;
        let data = base.join("data");
        let log = base.join("postgres.log");
        run_as.give(&base)?;

        let mut initdb = run_as.command(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .current_dir(&base);
        run_quiet("initdb", initdb)?;

        // The watchdog first, so the server is stopped however this process ends.
        let mut stop = run_as.command(&bin.join("pg_ctl"));
        stop.arg("stop")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-s"]);
        let mut watchdog = Command::new("sh");
        watchdog
            .args(["-c", "cat >/dev/null; \"$@\"; exec rm -rf -- \"$BASE\""])
            .arg("testkit-pg-watchdog")
            .arg(stop.get_program())
            .args(stop.get_args())
            .env("BASE", &base)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = watchdog
            .spawn()
            .map_err(|e| Error::new(format!("cannot start the cluster's watchdog: {e}")))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::new("the cluster's watchdog has no stdin"))?;

        let port = crate::gateway::free_address()
            .map_err(|e| Error::new(format!("no free port: {e}")))?
            .port();
        let cluster = Cluster {
            base,
            port,
            watchdog: Some((child, stdin)),
        };

        for (name, contents) in &builder.files {
            let path = data.join(name);
            fs::write(&path, contents)
                .map_err(|e| Error::new(format!("cannot write {}: {e}", path.display())))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::new(format!("cannot chmod {}: {e}", path.display())))?;
            run_as.give(&path)?;
        }
        let mut settings: Vec<(String, String)> = [
            ("listen_addresses", "127.0.0.1".to_owned()),
            ("port", port.to_string()),
            ("unix_socket_directories", String::new()),
            ("fsync", "off".to_owned()),
            ("synchronous_commit", "off".to_owned()),
            ("full_page_writes", "off".to_owned()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        settings.extend(builder.settings);
        let mut conf = String::from("\n# testkit::pg_cluster\n");
        for (key, value) in settings {
            conf.push_str(&format!("{key} = '{}'\n", value.replace('\'', "''")));
        }
        fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut file| file.write_all(conf.as_bytes()))
            .map_err(|e| Error::new(format!("cannot write postgresql.conf: {e}")))?;

        let mut start = run_as.command(&bin.join("pg_ctl"));
        start
            .arg("start")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60"])
            .current_dir(&cluster.base);
        if let Err(e) = run_quiet("pg_ctl start", start) {
            return Err(Error::new(format!("{e}\n{}", cluster.log_text())));
        }
        Ok(cluster)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin); // EOF: the watchdog stops the server and removes the directory
            if let Err(e) = child.wait() {
                eprintln!("testkit: waiting for the cluster to stop: {e}");
            }
        }
    }
}

/// How the PostgreSQL programs are run: as this user, or (as root) as `postgres`.
enum RunAs {
    Me,
    Postgres { uid: u32, gid: u32 },
}

impl RunAs {
    fn detect() -> Result<Self, Error> {
        if id(&["-u"])? != 0 {
            return Ok(Self::Me);
        }
        let uid = id(&["-u", "postgres"]).map_err(|_| {
            Error::new(
                "running as root, and initdb refuses to run as root: create a `postgres` user \
                 (installing PostgreSQL does) or run as another user",
            )
        })?;
        let gid = id(&["-g", "postgres"])?;
        Ok(Self::Postgres { uid, gid })
    }

    fn command(&self, program: &Path) -> Command {
        match self {
            Self::Me => Command::new(program),
            Self::Postgres { .. } => {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(program);
                command
            }
        }
    }

    /// Makes `path` the server user's.
    fn give(&self, path: &Path) -> Result<(), Error> {
        match self {
            Self::Me => Ok(()),
            Self::Postgres { uid, gid } => std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                .map_err(|e| Error::new(format!("cannot chown {}: {e}", path.display()))),
        }
    }
}

fn id(args: &[&str]) -> Result<u32, Error> {
    let output = Command::new("id")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("cannot run id: {e}")))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| Error::new(format!("id {}: no such user", args.join(" "))))
}

/// The first directory with both `initdb` and `pg_ctl`: on PATH, then the newest
/// `/usr/lib/postgresql/*/bin`.
fn server_bin_dir() -> Result<PathBuf, Error> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    let mut versions: Vec<(Vec<u64>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let key = name.split('.').map(|p| p.parse().unwrap_or(0)).collect();
                    (key, entry.path().join("bin"))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    dirs.extend(versions.into_iter().map(|(_, dir)| dir));
    dirs.into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .ok_or_else(|| {
            Error::new(
                "initdb and pg_ctl were found neither on PATH nor in /usr/lib/postgresql/*/bin: \
                 install PostgreSQL's server (Debian: apt-get install postgresql)",
            )
        })
}

fn fresh_base_dir() -> Result<PathBuf, Error> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let base = std::env::temp_dir().join(format!(
        "testkit-pg-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&base)
        .map_err(|e| Error::new(format!("cannot create {}: {e}", base.display())))?;
    Ok(base)
}

fn run_quiet(what: &str, mut command: Command) -> Result<(), Error> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::new(format!("cannot run {what}: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}
