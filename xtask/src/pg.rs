//! Finding (or starting) a PostgreSQL server for the tests.
//!
//! Rule, first that applies (see [`choose`]):
//! 1. `TEST_DATABASE_URL` set and non-empty: used as is;
//! 2. a server answering on 127.0.0.1:5432: [`LOCAL_URL`];
//! 3. a throw-away cluster in `target/xtask-pg/` ([`Cluster`]);
//! 4. otherwise a failure explaining how to install PostgreSQL.
//!
//! `XTASK_PG=throwaway` skips 1 and 2.

use std::collections::hash_map::DefaultHasher;
use std::env::{self, VarError};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::util::{self, Failure};

/// The URL used when a server answers on 127.0.0.1:5432.
pub const LOCAL_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Value of `XTASK_PG`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Unset, empty or `auto`: the full rule.
    Auto,
    /// `throwaway`: always start a throw-away cluster.
    Throwaway,
}

impl Mode {
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim) {
            None | Some("" | "auto") => Ok(Self::Auto),
            Some("throwaway") => Ok(Self::Throwaway),
            Some(other) => Err(format!(
                "XTASK_PG must be `auto` or `throwaway`, not `{other}`"
            )),
        }
    }
}

/// Which PostgreSQL the tests get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// `TEST_DATABASE_URL` from the environment.
    Env(String),
    /// The server on 127.0.0.1:5432, as [`LOCAL_URL`].
    Local,
    /// A throw-away cluster started by xtask.
    Throwaway,
}

/// The selection rule. `local_answers` is only called when needed.
pub fn choose(mode: Mode, env_url: Option<&str>, local_answers: impl FnOnce() -> bool) -> Choice {
    if mode == Mode::Throwaway {
        return Choice::Throwaway;
    }
    if let Some(url) = env_url.filter(|u| !u.trim().is_empty()) {
        return Choice::Env(url.to_string());
    }
    if local_answers() {
        Choice::Local
    } else {
        Choice::Throwaway
    }
}

/// A database URL for the tests; keeps a throw-away cluster alive until dropped.
pub struct Database {
    pub url: String,
    pub description: String,
    cluster: Option<Cluster>,
}

impl Database {
    /// Stop the throw-away cluster, if any (dropping does the same).
    pub fn stop(mut self) {
        self.cluster.take();
    }
}

/// Apply the rule to this machine and print which PostgreSQL is used.
pub fn provide() -> Result<Database, Failure> {
    let mode = Mode::parse(env::var("XTASK_PG").ok().as_deref())?;
    let env_url = match env::var("TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(VarError::NotPresent) => None,
        Err(VarError::NotUnicode(_)) => {
            return Err(Failure::new("TEST_DATABASE_URL is not valid UTF-8"));
        }
    };
    if mode == Mode::Throwaway {
        eprintln!("XTASK_PG=throwaway: skipping TEST_DATABASE_URL and 127.0.0.1:5432");
    }
    let db = match choose(mode, env_url.as_deref(), probe_local) {
        Choice::Env(url) => Database {
            description: format!("TEST_DATABASE_URL from the environment: {}", redact(&url)),
            url,
            cluster: None,
        },
        Choice::Local => Database {
            url: LOCAL_URL.to_string(),
            description: format!("server on 127.0.0.1:5432: {LOCAL_URL}"),
            cluster: None,
        },
        Choice::Throwaway => {
            let (cluster, url) = Cluster::start()?;
            Database {
                description: format!("throw-away cluster in {}: {url}", cluster.base.display()),
                url,
                cluster: Some(cluster),
            }
        }
    };
    eprintln!("PostgreSQL: using {}", db.description);
    Ok(db)
}

/// Hide the password of a URL, for printing.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_string(),
    }
}

/// Does a PostgreSQL server accept [`LOCAL_URL`]? Connects for real.
fn probe_local() -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], 5432));
    if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        eprintln!("nothing listens on 127.0.0.1:5432");
        return false;
    }
    if let Some(psql) = find_tool("psql") {
        let out = Command::new(&psql)
            .args(["-X", "-w", "-At", "-c", "select 1", "-d", LOCAL_URL])
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::null())
            .output();
        return match out {
            Ok(out)
                if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1" =>
            {
                true
            }
            Ok(out) => {
                eprintln!(
                    "127.0.0.1:5432 is open but `psql {LOCAL_URL}` failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                false
            }
            Err(e) => {
                eprintln!("could not run {}: {e}", psql.display());
                false
            }
        };
    }
    if let Some(isready) = find_tool("pg_isready") {
        let ok = Command::new(&isready)
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                "5432",
                "-U",
                "postgres",
                "-d",
                "test",
                "-t",
                "5",
            ])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("127.0.0.1:5432 is open but pg_isready says it does not accept connections");
        }
        return ok;
    }
    eprintln!("127.0.0.1:5432 is open (psql/pg_isready not found to check further)");
    true
}

/// Directories that may hold PostgreSQL programs: `PATH`, then
/// `/usr/lib/postgresql/<version>/bin`, newest version first.
fn tool_dirs() -> Vec<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let versions = fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut dirs = util::path_dirs();
    dirs.extend(
        newest_first(versions)
            .into_iter()
            .map(|v| root.join(v).join("bin")),
    );
    dirs
}

/// Sort version directory names (`15`, `9.6`, `16`) newest first.
fn newest_first(mut versions: Vec<String>) -> Vec<String> {
    let key = |v: &String| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    versions.sort_by_key(|v| std::cmp::Reverse(key(v)));
    versions
}

fn find_tool(name: &str) -> Option<PathBuf> {
    tool_dirs()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The first directory holding both `initdb` and `pg_ctl` (same installation).
fn find_server_bin_dir(dirs: &[PathBuf], exists: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    dirs.iter()
        .find(|d| exists(&d.join("initdb")) && exists(&d.join("pg_ctl")))
        .cloned()
}

fn install_help() -> String {
    "no PostgreSQL for the tests: initdb and pg_ctl, needed to start a throw-away \
     cluster, were not found on PATH or in /usr/lib/postgresql/*/bin (and TEST_DATABASE_URL \
     or a server on 127.0.0.1:5432 was not used: see `cargo xtask help`).\n\
     Either:\n  \
     - install PostgreSQL, so xtask can start a throw-away cluster:\n      \
     Debian/Ubuntu: sudo apt-get install postgresql\n      \
     Fedora:        sudo dnf install postgresql-server\n      \
     macOS:         brew install postgresql@16  (then put $(brew --prefix postgresql@16)/bin on PATH)\n  \
     - or point the tests at a server you run:\n      \
     TEST_DATABASE_URL=postgres://user:password@host:5432/db cargo xtask test\n    \
     (the user must be allowed to CREATE DATABASE)"
        .to_string()
}

/// How to run the PostgreSQL programs: initdb refuses to run as root.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RunAs {
    Me,
    Runuser(String),
    Su(String),
}

impl RunAs {
    /// The argv running `program args` as the right user.
    fn argv(&self, program: &Path, args: &[String]) -> Vec<String> {
        let mut plain = vec![program.display().to_string()];
        plain.extend(args.iter().cloned());
        match self {
            Self::Me => plain,
            Self::Runuser(user) => {
                let mut argv = vec!["runuser".into(), "-u".into(), user.clone(), "--".into()];
                argv.extend(plain);
                argv
            }
            Self::Su(user) => {
                let line: Vec<String> = plain.iter().map(|w| util::shell_quote(w)).collect();
                vec![
                    "su".into(),
                    "-s".into(),
                    "/bin/sh".into(),
                    user.clone(),
                    "-c".into(),
                    line.join(" "),
                ]
            }
        }
    }

    fn command(&self, program: &Path, args: &[String]) -> Command {
        let argv = self.argv(program, args);
        let (first, rest) = argv
            .split_first()
            .map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
        let mut cmd = Command::new(first);
        cmd.args(rest);
        cmd
    }

    fn user(&self) -> Option<&str> {
        match self {
            Self::Me => None,
            Self::Runuser(user) | Self::Su(user) => Some(user),
        }
    }
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_quiet(what: &str, mut cmd: Command) -> Result<(), Failure> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::new(format!("could not run {what}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "{what} failed ({}):\n{}",
            out.status,
            output_text(&out).trim_end()
        )))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn user_exists(user: &str) -> bool {
    Command::new("id")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A throw-away PostgreSQL cluster, stopped (`pg_ctl stop -m fast`) when dropped.
///
/// Stopping is done by a watchdog process (`sh`, in its own process group so
/// Ctrl-C does not reach it) that waits for EOF on a pipe from xtask: the pipe
/// closes when the cluster is dropped, and also when xtask dies for any reason
/// (Ctrl-C, kill), so the server never outlives the run.
/// A throw-away cluster, whatever the environment says (for tests that stop the server).
pub fn throwaway() -> Result<(Cluster, String), Failure> {
    Cluster::start()
}

pub struct Cluster {
    base: PathBuf,
    watchdog: Option<(Child, ChildStdin)>,
    /// Shell lines that stop the server (`-m fast`: it disconnects every client; `immediate` would lose
    /// recent commits, since this cluster runs without fsync) and start
    /// it again on the same port: `cargo xtask chaos` takes PostgreSQL away mid-run.
    pub stop_line: String,
    pub start_line: String,
}

impl Cluster {
    fn start() -> Result<(Self, String), Failure> {
        let dirs = tool_dirs();
        let bin = find_server_bin_dir(&dirs, Path::is_file).ok_or_else(install_help)?;
        let (initdb, pg_ctl) = (bin.join("initdb"), bin.join("pg_ctl"));
        eprintln!("starting a throw-away cluster with {}", initdb.display());

        let run_as = if is_root() {
            let user = "postgres".to_string();
            if !user_exists(&user) {
                return Err(Failure::new(
                    "running as root, and initdb refuses to run as root: create a `postgres` \
                     user (installing the postgresql package does), run as a normal user, \
                     or set TEST_DATABASE_URL",
                ));
            }
            let runuser = util::path_dirs()
                .iter()
                .any(|d| d.join("runuser").is_file());
            let via = if runuser { "runuser" } else { "su" };
            eprintln!("running as root: initdb/pg_ctl run as user `{user}` (via {via})");
            if runuser {
                RunAs::Runuser(user)
            } else {
                RunAs::Su(user)
            }
        } else {
            RunAs::Me
        };

        let base = prepare_base_dir(&run_as, &pg_ctl)?;
        let data = base.join("data");
        let log = base.join("postgres.log");
        let s = |p: &Path| p.display().to_string();

        let mut initdb_cmd = run_as.command(
            &initdb,
            &[
                "-D".into(),
                s(&data),
                "-U".into(),
                "postgres".into(),
                "-A".into(),
                "trust".into(),
                "-E".into(),
                "UTF8".into(),
                "--locale=C".into(),
                "--no-sync".into(),
            ],
        );
        initdb_cmd.current_dir(&base);
        run_quiet("initdb", initdb_cmd)?;

        // Watchdog first, so that the server is stopped however xtask ends.
        let stop_argv = run_as.argv(
            &pg_ctl,
            &[
                "stop".into(),
                "-D".into(),
                s(&data),
                "-m".into(),
                "fast".into(),
                "-s".into(),
            ],
        );
        let mut watchdog = Command::new("sh");
        watchdog
            .args(["-c", "cat >/dev/null; exec \"$@\"", "xtask-pg-watchdog"])
            .args(&stop_argv)
            .current_dir(&base)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0);
        let mut child = watchdog
            .spawn()
            .map_err(|e| Failure::new(format!("could not start the cluster watchdog: {e}")))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| Failure::new("watchdog has no stdin"))?;
        let mut cluster = Self {
            base: base.clone(),
            watchdog: Some((child, stdin)),
            stop_line: String::new(),
            start_line: String::new(),
        };

        let port = free_port()?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=200"
        );
        let start_args = [
            "start".into(),
            "-D".into(),
            s(&data),
            "-l".into(),
            s(&log),
            "-w".into(),
            "-t".into(),
            "60".into(),
            "-o".into(),
            options,
        ];
        let shell_line = |argv: Vec<String>| {
            argv.iter()
                .map(|w| util::shell_quote(w))
                .collect::<Vec<_>>()
                .join(" ")
        };
        cluster.start_line = shell_line(run_as.argv(&pg_ctl, &start_args));
        cluster.stop_line = shell_line(run_as.argv(
            &pg_ctl,
            &[
                "stop".into(),
                "-D".into(),
                s(&data),
                "-m".into(),
                "fast".into(),
                "-w".into(),
            ],
        ));
        let mut start_cmd = run_as.command(&pg_ctl, &start_args);
        start_cmd.current_dir(&base);
        if let Err(mut failure) = run_quiet("pg_ctl start", start_cmd) {
            let log_text = fs::read_to_string(&log).unwrap_or_default();
            failure
                .message
                .push_str(&format!("\n{}:\n{log_text}", log.display()));
            return Err(failure);
        }
        eprintln!(
            "throw-away cluster up on 127.0.0.1:{port} (log: {})",
            log.display()
        );
        Ok((
            cluster,
            format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.watchdog.take() {
            eprintln!("\n==> stopping the throw-away PostgreSQL cluster");
            drop(stdin); // EOF: the watchdog runs `pg_ctl stop -m fast`
            match child.wait() {
                Ok(status) if status.success() => eprintln!("stopped"),
                Ok(status) => eprintln!("pg_ctl stop: {status}"),
                Err(e) => eprintln!("waiting for pg_ctl stop: {e}"),
            }
        }
    }
}

/// Wipe and recreate the cluster's base directory, stopping a server left
/// behind by an earlier run that was killed. Uses `target/xtask-pg`, or a
/// directory under the temp dir when the postgres user cannot write there
/// (e.g. a checkout under /root).
fn prepare_base_dir(run_as: &RunAs, pg_ctl: &Path) -> Result<PathBuf, Failure> {
    let preferred = util::target_dir().join("xtask-pg");
    let base = fresh_dir(&preferred, run_as, pg_ctl)?;
    if usable_by(run_as, &base) {
        return Ok(base);
    }
    let mut hasher = DefaultHasher::new();
    util::workspace_root().hash(&mut hasher);
    let fallback = env::temp_dir().join(format!("xtask-pg-{:016x}", hasher.finish()));
    eprintln!(
        "user `{}` cannot write {}; using {} instead",
        run_as.user().unwrap_or("?"),
        base.display(),
        fallback.display()
    );
    let base = fresh_dir(&fallback, run_as, pg_ctl)?;
    if usable_by(run_as, &base) {
        Ok(base)
    } else {
        Err(Failure::new(format!(
            "user `{}` cannot write {} either; set TEST_DATABASE_URL",
            run_as.user().unwrap_or("?"),
            base.display()
        )))
    }
}

fn fresh_dir(dir: &Path, run_as: &RunAs, pg_ctl: &Path) -> Result<PathBuf, Failure> {
    let data = dir.join("data");
    if data.join("postmaster.pid").exists() {
        eprintln!(
            "stopping a server left by an earlier run in {}",
            data.display()
        );
        let mut cmd = run_as.command(
            pg_ctl,
            &[
                "stop".into(),
                "-D".into(),
                data.display().to_string(),
                "-m".into(),
                "immediate".into(),
            ],
        );
        // Best effort: the server may already be gone.
        let _ = cmd
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Failure::new(format!(
                "could not remove {}: {e}",
                dir.display()
            )));
        }
    }
    fs::create_dir_all(dir)
        .map_err(|e| Failure::new(format!("could not create {}: {e}", dir.display())))?;
    if let Some(user) = run_as.user() {
        let mut chown = Command::new("chown");
        chown.arg(user).arg(dir);
        run_quiet("chown", chown)?;
    }
    Ok(dir.to_path_buf())
}

fn usable_by(run_as: &RunAs, dir: &Path) -> bool {
    if run_as.user().is_none() {
        return true;
    }
    run_as
        .command(Path::new("test"), &["-w".into(), dir.display().to_string()])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> Result<u16, Failure> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Failure::new(format!("could not find a free port: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn mode_parsing() {
        assert_eq!(Mode::parse(None), Ok(Mode::Auto));
        assert_eq!(Mode::parse(Some("")), Ok(Mode::Auto));
        assert_eq!(Mode::parse(Some("auto")), Ok(Mode::Auto));
        assert_eq!(Mode::parse(Some("throwaway")), Ok(Mode::Throwaway));
        assert!(Mode::parse(Some("local")).is_err());
    }

    #[test]
    fn env_url_wins_without_probing() {
        let probed = Cell::new(false);
        let choice = choose(Mode::Auto, Some("postgres://u:p@db/x"), || {
            probed.set(true);
            true
        });
        assert_eq!(choice, Choice::Env("postgres://u:p@db/x".into()));
        assert!(!probed.get());
    }

    #[test]
    fn empty_env_url_counts_as_unset() {
        assert_eq!(choose(Mode::Auto, Some(""), || true), Choice::Local);
        assert_eq!(choose(Mode::Auto, Some("  "), || false), Choice::Throwaway);
    }

    #[test]
    fn local_server_then_throwaway() {
        assert_eq!(choose(Mode::Auto, None, || true), Choice::Local);
        assert_eq!(choose(Mode::Auto, None, || false), Choice::Throwaway);
    }

    #[test]
    fn throwaway_mode_skips_env_and_probe() {
        let probed = Cell::new(false);
        let choice = choose(Mode::Throwaway, Some("postgres://db/x"), || {
            probed.set(true);
            true
        });
        assert_eq!(choice, Choice::Throwaway);
        assert!(!probed.get());
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db?x=a@b"), "postgres://h/db?x=a@b");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn versions_sort_newest_first() {
        let sorted = newest_first(vec!["9.6".into(), "15".into(), "16".into(), "10".into()]);
        assert_eq!(sorted, ["16", "15", "10", "9.6"]);
    }

    #[test]
    fn server_bin_dir_needs_initdb_and_pg_ctl_together() {
        let dirs = [
            PathBuf::from("/usr/bin"),
            PathBuf::from("/usr/local/bin"),
            PathBuf::from("/usr/lib/postgresql/16/bin"),
        ];
        let present = [
            "/usr/bin/pg_ctl",
            "/usr/lib/postgresql/16/bin/initdb",
            "/usr/lib/postgresql/16/bin/pg_ctl",
        ];
        let found = find_server_bin_dir(&dirs, |p| present.iter().any(|x| Path::new(x) == p));
        assert_eq!(found, Some(PathBuf::from("/usr/lib/postgresql/16/bin")));
        assert_eq!(find_server_bin_dir(&dirs, |_| false), None);
    }

    #[test]
    fn run_as_argv() {
        let pg_ctl = Path::new("/pg/pg_ctl");
        let args = ["stop".to_string(), "-o".to_string(), "-p 1".to_string()];
        assert_eq!(
            RunAs::Me.argv(pg_ctl, &args),
            ["/pg/pg_ctl", "stop", "-o", "-p 1"]
        );
        assert_eq!(
            RunAs::Runuser("postgres".into()).argv(pg_ctl, &args),
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                "/pg/pg_ctl",
                "stop",
                "-o",
                "-p 1"
            ]
        );
        assert_eq!(
            RunAs::Su("postgres".into()).argv(pg_ctl, &args),
            [
                "su",
                "-s",
                "/bin/sh",
                "postgres",
                "-c",
                "/pg/pg_ctl stop -o '-p 1'"
            ]
        );
    }

    #[test]
    fn install_help_says_how_to_get_postgres() {
        let text = install_help();
        assert!(text.contains("apt-get install postgresql"));
        assert!(text.contains("brew install postgresql"));
        assert!(text.contains("TEST_DATABASE_URL"));
    }
}
