//! The gateway under test: the release `pos-gateway` binary in a process of its own, set up
//! through its own CLI, as an operator would.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

pub const JWT_SECRET: &str = "a-benchmark-secret-that-is-long-enough-0123456789";
/// 32 bytes as hex: vendor stores' credentials are sealed with it.
pub const CREDENTIALS_KEY: &str =
    "0707070707070707070707070707070707070707070707070707070707070707";

/// How to run `pos-gateway`: the binary and the environment every command gets.
#[derive(Clone, Debug)]
pub struct Setup {
    pub binary: PathBuf,
    pub database_url: String,
    /// Extra `POS_GATEWAY_*` variables (e.g. the POS timeout).
    pub env: Vec<(String, String)>,
    /// Where the server's log goes.
    pub log: PathBuf,
}

impl Setup {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env("POS_GATEWAY_DATABASE_URL", &self.database_url)
            .env("POS_GATEWAY_JWT_SECRET", JWT_SECRET)
            .env("POS_GATEWAY_CREDENTIALS_KEY", CREDENTIALS_KEY)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs an admin command with `--json` and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<Value> {
        let output = self
            .command()
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.binary.display()))?;
        if !output.status.success() {
            bail!(
                "pos-gateway {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        serde_json::from_slice(&output.stdout)
            .with_context(|| format!("pos-gateway {} printed no JSON", args.join(" ")))
    }

    /// Adds a store and a catalog of the same name; returns the store id.
    pub fn add_store(
        &self,
        name: &str,
        vendor: &str,
        config: Option<&Path>,
    ) -> anyhow::Result<i64> {
        let mut args = vec!["store", "add", "--name", name, "--vendor", vendor];
        let config_text;
        if let Some(config) = config {
            config_text = config.display().to_string();
            args.extend(["--config", config_text.as_str()]);
        }
        let store = self.cli(&args)?;
        let id = store
            .get("id")
            .and_then(Value::as_i64)
            .context("store add printed no id")?;
        self.cli(&["catalog", "add", "--store", &id.to_string(), "--id", name])?;
        Ok(id)
    }

    /// A token for every catalog.
    pub fn token(&self) -> anyhow::Result<String> {
        let token = self.cli(&["token", "--catalog", "*", "--ttl", "12h"])?;
        token
            .get("token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .context("token printed no token")
    }

    /// Starts `serve` on a free port and waits for `/healthz`.
    pub async fn start(&self) -> anyhow::Result<Gateway> {
        let address = free_address()?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let began = Instant::now();
        let child = self
            .command()
            .arg("serve")
            .env("POS_GATEWAY_LISTEN", address.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let mut gateway = Gateway {
            child,
            address,
            startup: Duration::ZERO,
        };
        let client = reqwest::Client::new();
        let url = format!("{}/healthz", gateway.url());
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                gateway.startup = began.elapsed();
                return Ok(gateway);
            }
            if let Some(status) = gateway.child.try_wait()? {
                bail!(
                    "pos-gateway serve exited ({status}) before answering; see {}",
                    self.log.display()
                );
            }
            if began.elapsed() > Duration::from_secs(60) {
                bail!("pos-gateway serve did not answer /healthz within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A running `pos-gateway serve`; killed when dropped.
pub struct Gateway {
    child: Child,
    pub address: SocketAddr,
    /// From spawning the process to its first `/healthz` 200.
    pub startup: Duration,
}

impl Gateway {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        proc_status_kib(self.pid(), "VmHWM:").map(|kib| kib as f64 / 1024.0)
    }

    /// CPU time the process has used (user + system), in seconds; Linux's clock ticks are
    /// 100 per second on every architecture this runs on.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
    }

    /// Resident set size now (VmRSS), in MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        proc_status_kib(self.pid(), "VmRSS:").map(|kib| kib as f64 / 1024.0)
    }

    /// Open file descriptors (sockets included) of the process.
    pub fn open_fds(&self) -> Option<usize> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .ok()
            .map(Iterator::count)
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

pub fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}
