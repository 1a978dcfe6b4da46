//! The gateway under test: the release `pos-gateway` binary in a process of its own (testkit's
//! launcher), set up through its own CLI, as an operator would.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// A running `pos-gateway serve` (killed when dropped), with the `/proc` readings the tables
/// use; the scenarios call it what it is to them, the gateway.
pub use testkit::gateway::Serving as Gateway;
pub use testkit::gateway::free_address;

/// As `openssl rand -base64 32` makes: the gateway refuses weaker HS256 secrets.
pub const JWT_SECRET: &str = "wZ8ahtb2e5gkHZPABkwKOI6TXyudD5vihKEY7B5FOV0=";
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
    fn launcher(&self) -> testkit::gateway::Gateway {
        let gateway = testkit::gateway::Gateway::new(&self.binary)
            .env("POS_GATEWAY_DATABASE_URL", &self.database_url)
            .env("POS_GATEWAY_JWT_SECRET", JWT_SECRET)
            .env("POS_GATEWAY_CREDENTIALS_KEY", CREDENTIALS_KEY)
            .log(&self.log);
        self.env
            .iter()
            .fold(gateway, |gateway, (key, value)| gateway.env(key, value))
    }

    /// Runs an admin command with `--json` and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<Value> {
        Ok(self.launcher().admin(args)?)
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
        let launcher = self.launcher();
        // The launcher blocks while it polls; the runtime's other tasks go on meanwhile.
        Ok(tokio::task::spawn_blocking(move || launcher.serve()).await??)
    }
}
