//! The `pos-gateway` binary as a process, set up through its own CLI as an operator would:
//! admin commands with `--json`, and `serve` (or `demo`) on a free port of 127.0.0.1 once
//! `/healthz` answers. Blocking std code (no async runtime), so xtask can use it; async callers
//! run [`Gateway::serve`] on a blocking thread.

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{self, Request};
use crate::procfs;

/// How long [`Gateway::serve`] waits for `/healthz` unless told otherwise.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often `/healthz` is asked while the gateway starts: often, since the bench reports the
/// start-up time, and a refused connection costs microseconds.
const HEALTH_POLL: Duration = Duration::from_millis(2);
/// Lines of the log an error quotes.
const LOG_TAIL_LINES: usize = 40;

/// How to run `pos-gateway`: the binary, its working directory, the environment every command
/// gets, and where `serve` logs.
///
/// Commands never see the caller's `POS_GATEWAY_*` variables: a developer's shell must not
/// point a test at a real database or secret.
#[derive(Clone, Debug)]
pub struct Gateway {
    binary: PathBuf,
    dir: Option<PathBuf>,
    env: Vec<(String, String)>,
    log: PathBuf,
    startup_timeout: Duration,
}

impl Gateway {
    /// `binary` with no extra environment, logging `serve` to a file of its own in the system's
    /// temporary directory until [`Gateway::log`] says where.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        static LOGS: AtomicU64 = AtomicU64::new(0);
        let log = std::env::temp_dir().join(format!(
            "pos-gateway-serve-{}-{}.log",
            std::process::id(),
            LOGS.fetch_add(1, Ordering::Relaxed)
        ));
        Self {
            binary: binary.into(),
            dir: None,
            env: Vec::new(),
            log,
            startup_timeout: STARTUP_TIMEOUT,
        }
    }

    /// Runs every command in `dir` (where the SQLite default `pos-gateway.db` goes).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Sets `key` for every command (replacing an earlier value).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Where `serve` writes its stdout and stderr; appended to, so a restart's log follows the
    /// previous run's (remove the file first for a fresh one).
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = path.into();
        self
    }

    /// How long `serve` may take to answer `/healthz` ([`STARTUP_TIMEOUT`] by default).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log so far (empty when there is none yet).
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `pos-gateway <args>` with this environment and working directory, stdin closed; for what
    /// [`Gateway::admin`] and [`Gateway::serve`] do not cover (plain output, the demo).
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(&self.binary);
        command.args(args).stdin(Stdio::null());
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        remove_gateway_variables(&mut command, std::env::vars_os().map(|(name, _)| name));
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `pos-gateway <args> --json`; what it printed, parsed. A failure carries its
    /// stderr.
    pub fn admin(&self, args: &[&str]) -> Result<Value, Error> {
        let shown = format!("pos-gateway {} --json", args.join(" "));
        let output = self
            .command(args)
            .arg("--json")
            .output()
            .map_err(|source| Error::Spawn {
                what: shown.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(Error::Failed {
                command: shown,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        serde_json::from_slice(&output.stdout).map_err(|source| Error::NotJson {
            command: shown,
            stdout: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            source,
        })
    }

    /// Starts `pos-gateway serve` on a free port of 127.0.0.1 and returns once `/healthz`
    /// answers 200. Fails with the end of the log when the process exits first or does not
    /// answer within the start-up timeout (and is then killed).
    pub fn serve(&self) -> Result<Serving, Error> {
        self.start("serve")
    }

    /// Starts `pos-gateway demo` (a `local` store with catalog `demo`, then serve) as
    /// [`Gateway::serve`] starts `serve`; what it prints goes to the log.
    pub fn demo(&self) -> Result<Serving, Error> {
        self.start("demo")
    }

    fn start(&self, subcommand: &str) -> Result<Serving, Error> {
        let address = free_address().map_err(|source| Error::Io {
            what: "finding a free port on 127.0.0.1".into(),
            source,
        })?;
        let io_error = |what: &str| {
            let what = format!("{what} {}", self.log.display());
            move |source| Error::Io { what, source }
        };
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io_error("opening"))?;
        let log_err = log.try_clone().map_err(io_error("sharing"))?;
        let began = Instant::now();
        let child = self
            .command([subcommand])
            .env("POS_GATEWAY_LISTEN", address.to_string())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| Error::Spawn {
                what: format!("{} {subcommand}", self.binary.display()),
                source,
            })?;
        // From here on, dropping `serving` kills the process, on every error path too.
        let mut serving = Serving {
            child,
            address,
            startup: Duration::ZERO,
            log: self.log.clone(),
        };
        loop {
            if answers_healthz(address) {
                serving.startup = began.elapsed();
                return Ok(serving);
            }
            if let Ok(Some(status)) = serving.child.try_wait() {
                return Err(Error::Exited {
                    status,
                    log: self.log.clone(),
                    log_tail: log_tail(&self.log),
                });
            }
            if began.elapsed() > self.startup_timeout {
                serving.kill();
                return Err(Error::NoAnswer {
                    address,
                    waited: self.startup_timeout,
                    log: self.log.clone(),
                    log_tail: log_tail(&self.log),
                });
            }
            std::thread::sleep(HEALTH_POLL);
        }
    }
}

/// A running `pos-gateway serve`; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Serving {
    child: Child,
    /// Where it listens.
    pub address: SocketAddr,
    /// From spawning the process to its first `/healthz` 200.
    pub startup: Duration,
    log: PathBuf,
}

impl Serving {
    /// `http://<address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident set size so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        procfs::peak_rss_kib(self.pid()).map(|kib| kib as f64 / 1024.0)
    }

    /// Resident set size now (VmRSS), in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        procfs::rss_kib(self.pid()).map(|kib| kib as f64 / 1024.0)
    }

    /// CPU time the process has used (user + system), in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        procfs::cpu_seconds(self.pid())
    }

    /// Open file descriptors (sockets included).
    pub fn open_fds(&self) -> Option<usize> {
        procfs::open_fds(self.pid())
    }

    /// SIGKILL, as a crash would: no shutdown, no last writes.
    pub fn kill9(mut self) {
        self.kill();
    }

    /// SIGTERM, then waits up to `timeout` for the process to exit; its exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, Error> {
        terminate(&mut self.child, timeout)
    }

    /// Kills the gateway and returns its whole log.
    pub fn stop(mut self) -> String {
        self.kill();
        self.log_text()
    }

    fn kill(&mut self) {
        // Both fail only when the process was already reaped, which is what we want anyway.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends SIGTERM to `child` (with `kill(1)`: std has no signals but SIGKILL, and unsafe code
/// is forbidden) and waits up to `timeout` for it to exit.
pub fn terminate(child: &mut Child, timeout: Duration) -> Result<ExitStatus, Error> {
    let pid = child.id();
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map_err(|source| Error::Spawn {
            what: format!("kill -TERM {pid}"),
            source,
        })?;
    if !sent.success() {
        return Err(Error::Io {
            what: format!("kill -TERM {pid} ({sent})"),
            source: io::Error::other("the signal was not sent"),
        });
    }
    let deadline = Instant::now() + timeout;
    loop {
        let exited = child.try_wait().map_err(|source| Error::Io {
            what: format!("waiting for process {pid}"),
            source,
        })?;
        if let Some(status) = exited {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Err(Error::StillRunning { pid, timeout });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes from `command`'s environment each of `names` (the caller's variables) that starts
/// with `POS_GATEWAY_`.
fn remove_gateway_variables(
    command: &mut Command,
    names: impl IntoIterator<Item = std::ffi::OsString>,
) {
    for name in names {
        if name.to_string_lossy().starts_with("POS_GATEWAY_") {
            command.env_remove(name);
        }
    }
}

/// An address on 127.0.0.1 nothing listens on (as of now).
pub fn free_address() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Does `GET /healthz` answer 200?
fn answers_healthz(address: SocketAddr) -> bool {
    let request = Request::get("/healthz").timeout(Duration::from_secs(2));
    matches!(http::send(address, &request), Ok(response) if response.status == 200)
}

/// The last lines of `path`, for an error message.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines.get(from..).unwrap_or_default().join("\n")
}

/// Why a gateway command or process failed.
#[derive(Debug)]
pub enum Error {
    /// The process could not be started.
    Spawn { what: String, source: io::Error },
    /// An admin command exited with a failure; what it wrote to stderr.
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    /// An admin command succeeded but printed something that is not JSON.
    NotJson {
        command: String,
        stdout: String,
        source: serde_json::Error,
    },
    /// `serve` exited before `/healthz` answered.
    Exited {
        status: ExitStatus,
        log: PathBuf,
        log_tail: String,
    },
    /// `serve` did not answer `/healthz` in time (it was killed).
    NoAnswer {
        address: SocketAddr,
        waited: Duration,
        log: PathBuf,
        log_tail: String,
    },
    /// A process did not exit in time after SIGTERM.
    StillRunning { pid: u32, timeout: Duration },
    /// Files, ports, waiting.
    Io { what: String, source: io::Error },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spawn { what, source } => write!(f, "could not run {what}: {source}"),
            Self::Failed {
                command,
                status,
                stderr,
            } => write!(f, "{command} failed ({status}): {stderr}"),
            Self::NotJson {
                command,
                stdout,
                source,
            } => write!(f, "{command} printed no JSON ({source}): {stdout}"),
            Self::Exited {
                status,
                log,
                log_tail,
            } => write!(
                f,
                "pos-gateway serve exited ({status}) before answering /healthz; the end of its \
                 log ({}):\n{log_tail}",
                log.display()
            ),
            Self::NoAnswer {
                address,
                waited,
                log,
                log_tail,
            } => write!(
                f,
                "pos-gateway serve did not answer /healthz on {address} within {waited:?}; the \
                 end of its log ({}):\n{log_tail}",
                log.display()
            ),
            Self::StillRunning { pid, timeout } => {
                write!(f, "process {pid} still runs {timeout:?} after SIGTERM")
            }
            Self::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Spawn { source, .. } | Self::Io { source, .. } => Some(source),
            Self::NotJson { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// A stand-in for the binary: a shell script, so these tests need no build of the gateway.
    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("fake-gateway");
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        // A child another test forks while the file is open for writing holds that descriptor
        // until its exec, and running the script meanwhile fails with ETXTBSY: let them exec.
        std::thread::sleep(Duration::from_millis(50));
        path
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "testkit-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn admin_commands_get_json_and_only_the_given_environment() {
        let dir = scratch_dir("admin");
        let bin = script(
            &dir,
            r#"printf '{"args":"%s","db":"%s","pwd":"%s"}' "$*" "$POS_GATEWAY_DATABASE_URL" "$(pwd)""#,
        );
        let gateway = Gateway::new(&bin)
            .current_dir(&dir)
            .env("POS_GATEWAY_DATABASE_URL", "sqlite://first.db")
            .env("POS_GATEWAY_DATABASE_URL", "sqlite://x.db");
        let answer = gateway.admin(&["store", "list"]).unwrap();
        assert_eq!(answer["args"], "store list --json");
        assert_eq!(answer["db"], "sqlite://x.db");
        assert_eq!(
            fs::canonicalize(answer["pwd"].as_str().unwrap()).unwrap(),
            fs::canonicalize(&dir).unwrap()
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_callers_gateway_variables_are_removed() {
        let mut command = Command::new("true");
        remove_gateway_variables(
            &mut command,
            ["POS_GATEWAY_JWT_SECRET".into(), "PATH".into()],
        );
        let removed: Vec<_> = command.get_envs().collect();
        assert_eq!(
            removed,
            [(std::ffi::OsStr::new("POS_GATEWAY_JWT_SECRET"), None)]
        );
    }

    #[test]
    fn a_failed_admin_command_carries_its_stderr() {
        let dir = scratch_dir("failed");
        let bin = script(&dir, "echo 'error: no such store' >&2; exit 3");
        let error = Gateway::new(&bin).admin(&["store", "show"]).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::Failed { .. }), "{error:?}");
        assert!(
            text.contains("pos-gateway store show --json failed"),
            "{text}"
        );
        assert!(text.contains("error: no such store"), "{text}");

        let bin = script(&dir, "echo not json");
        let error = Gateway::new(&bin).admin(&["migrate"]).unwrap_err();
        assert!(matches!(error, Error::NotJson { .. }), "{error:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_server_that_exits_fails_with_the_end_of_its_log() {
        let dir = scratch_dir("exits");
        let bin = script(
            &dir,
            "echo \"listening on $POS_GATEWAY_LISTEN\"; echo 'boom' >&2; exit 1",
        );
        let gateway = Gateway::new(&bin).log(dir.join("serve.log"));
        let error = gateway.serve().unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::Exited { .. }), "{text}");
        assert!(text.contains("boom"), "{text}");
        assert!(text.contains("listening on 127.0.0.1:"), "{text}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_demo_is_started_as_serve_is() {
        let dir = scratch_dir("demo");
        let bin = script(&dir, "echo \"ran $1 on $POS_GATEWAY_LISTEN\"; exit 1");
        let gateway = Gateway::new(&bin).log(dir.join("demo.log"));
        let error = gateway.demo().unwrap_err();
        assert!(matches!(error, Error::Exited { .. }), "{error}");
        assert!(
            error.to_string().contains("ran demo on 127.0.0.1:"),
            "{error}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_server_that_never_answers_is_killed_after_the_timeout() {
        let dir = scratch_dir("silent");
        let bin = script(&dir, "echo started; exec sleep 30");
        let gateway = Gateway::new(&bin)
            .log(dir.join("serve.log"))
            .startup_timeout(Duration::from_millis(300));
        let began = Instant::now();
        let error = gateway.serve().unwrap_err();
        assert!(began.elapsed() < Duration::from_secs(10));
        assert!(matches!(error, Error::NoAnswer { .. }), "{error}");
        assert!(error.to_string().contains("started"), "{error}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn terminate_waits_for_the_exit() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let status = terminate(&mut child, Duration::from_secs(10)).unwrap();
        assert!(!status.success());
    }

    #[test]
    fn log_tails_keep_the_last_lines() {
        let dir = scratch_dir("tail");
        let log = dir.join("serve.log");
        let text: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        fs::write(&log, text.join("\n")).unwrap();
        let tail = log_tail(&log);
        assert!(tail.starts_with("line 60\n"), "{tail}");
        assert!(tail.ends_with("line 99"), "{tail}");
        assert_eq!(log_tail(&dir.join("missing.log")), "");
        fs::remove_dir_all(&dir).unwrap();
    }
}
