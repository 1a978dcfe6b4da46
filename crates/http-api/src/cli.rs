//! The `pos-gateway` command line.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, Parser, Subcommand};
use domain::{CatalogId, RepositoryError, StoreId, Vendor};
use persistence::Database;
use serde_json::json;

use crate::admin;
use crate::auth::sign_token;
use crate::config::{Config, JwtKey, Secret, SigningKey};

/// Where `demo` keeps the JWT secret it made, so its tokens survive a restart.
const DEMO_SECRET_SETTING: &str = "demo_jwt_secret";
const DEMO_STORE_NAME: &str = "Demo store";
const DEMO_CATALOG: &str = "demo";
const DEMO_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Parser)]
#[command(
    name = "pos-gateway",
    version,
    about = "One customers API for kiosks over every store's POS"
)]
pub struct Cli {
    /// A TOML file with the same keys as the POS_GATEWAY_* variables (lower case, no prefix).
    #[arg(long = "config", value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API (runs pending migrations first).
    Serve,
    /// Create a `local` demo store with catalog `demo` if absent, print a token, then serve.
    Demo,
    /// Apply database migrations and exit.
    Migrate {
        #[arg(long)]
        json: bool,
    },
    /// Manage stores.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Manage catalogs (kiosks).
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Copy all of the store's POS customers into the mirror, with a progress bar, then mark
    /// deleted in the mirror those the POS no longer has. Resumes where an interrupted sync of
    /// the same store stopped, unless `--restart`. One process at a time syncs a store: while
    /// another does (a `serve` replica's scheduled sync included), this says so and fails.
    /// `--status` prints every vendor store's cursor, last run, outcome and customers copied.
    Sync {
        #[arg(long, required_unless_present = "status", conflicts_with = "status")]
        catalog: Option<String>,
        /// Start from the first page even if an earlier sync was interrupted.
        #[arg(long, conflicts_with = "status")]
        restart: bool,
        /// Print where every vendor store's sync stands instead of syncing one.
        #[arg(long)]
        status: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print a signed token for a catalog (`--catalog '*'` for all).
    Token {
        #[arg(long)]
        catalog: String,
        /// How long the token is valid, e.g. 1h, 30m, 7d.
        #[arg(long, default_value = "1h")]
        ttl: humantime::Duration,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Add a store; prints its id.
    Add {
        #[arg(long)]
        name: String,
        /// `local` or a vendor this build has an adapter for (an unknown one is refused with
        /// the list).
        #[arg(long)]
        vendor: String,
        /// The vendor's config JSON (credentials, base_url); not needed for `local`.
        #[arg(long = "config", value_name = "FILE.json")]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List the stores with their vendor and catalogs (never their configs).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Replace a store's vendor config: checked as `store add` checks it, then sealed again.
    Update {
        /// The store's id (`store list` shows them).
        #[arg(value_name = "ID")]
        id: i64,
        /// The vendor's new config JSON (credentials, base_url).
        #[arg(long = "config", value_name = "FILE.json")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Remove a store with its mirrored customers, its journal of pending vendor creates and
    /// its idempotency records. Refused while catalogs use it, or while a `local` store holds
    /// customers, unless --force.
    Remove {
        #[arg(value_name = "ID")]
        id: i64,
        /// Also remove its catalogs (and a `local` store's customers, kept nowhere else).
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Re-seal every store's vendor credentials under a new credentials key, in one
    /// transaction. Keys are read from environment variables or files, never from the command
    /// line (which other users of the machine can see).
    #[command(group(ArgGroup::new("new_key").required(true).args(["new_key_env", "new_key_file"])))]
    #[command(group(ArgGroup::new("old_key").args(["old_key_env", "old_key_file"])))]
    Rekey {
        /// The variable holding the current key (default: POS_GATEWAY_CREDENTIALS_KEY, or the
        /// config file's credentials_key).
        #[arg(long, value_name = "VAR")]
        old_key_env: Option<String>,
        /// A file holding the current key.
        #[arg(long, value_name = "PATH")]
        old_key_file: Option<PathBuf>,
        /// The variable holding the new key.
        #[arg(long, value_name = "VAR")]
        new_key_env: Option<String>,
        /// A file holding the new key.
        #[arg(long, value_name = "PATH")]
        new_key_file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Add a catalog (kiosk) to a store.
    Add {
        #[arg(long)]
        store: i64,
        #[arg(long)]
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// List the catalogs, of every store or of one.
    List {
        #[arg(long)]
        store: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a catalog (its store stays); tokens naming it stop working at once.
    Remove {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long)]
        json: bool,
    },
}

impl Command {
    fn json(&self) -> bool {
        match self {
            Command::Migrate { json }
            | Command::Token { json, .. }
            | Command::Sync { json, .. }
            | Command::Store(
                StoreCommand::Add { json, .. }
                | StoreCommand::List { json }
                | StoreCommand::Update { json, .. }
                | StoreCommand::Remove { json, .. }
                | StoreCommand::Rekey { json, .. },
            )
            | Command::Catalog(
                CatalogCommand::Add { json, .. }
                | CatalogCommand::List { json, .. }
                | CatalogCommand::Remove { json, .. },
            ) => *json,
            Command::Serve | Command::Demo => false,
        }
    }
}

/// Runs the command; errors go to stderr (as JSON with `--json`) with exit status 1.
pub async fn main(cli: Cli) -> std::process::ExitCode {
    let json = cli.command.json();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if json {
                eprintln!("{}", json!({ "error": format!("{e:#}") }));
            } else {
                eprintln!("error: {e:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            let database = open(&config).await?;
            let state = crate::app::state(&config, database)?;
            serve(&config, state).await
        }
        Command::Demo => demo(config).await,
        Command::Migrate { json } => {
            open(&config).await?;
            print(
                json,
                json!({ "migrated": true }),
                "migrations are up to date",
            );
            Ok(())
        }
        Command::Store(StoreCommand::Add {
            name,
            vendor,
            config: file,
            json,
        }) => {
            let vendor: Vendor = vendor.parse().map_err(anyhow::Error::msg)?;
            let vendor_config = vendor_config(&config, vendor, file.as_deref())?;
            let database = open(&config).await?;
            let store = database
                .stores()
                .add_store(name.trim(), vendor, &vendor_config)
                .await?;
            print(
                json,
                json!({ "id": store.id.0, "name": store.name, "vendor": vendor }),
                &store.id.to_string(),
            );
            Ok(())
        }
        Command::Store(StoreCommand::List { json }) => admin::list_stores(&config, json).await,
        Command::Store(StoreCommand::Update {
            id,
            config: file,
            json,
        }) => admin::update_store(&config, id, &file, json).await,
        Command::Store(StoreCommand::Remove { id, force, json }) => {
            admin::remove_store(&config, id, force, json).await
        }
        Command::Store(StoreCommand::Rekey {
            old_key_env,
            old_key_file,
            new_key_env,
            new_key_file,
            json,
        }) => {
            let old = admin::KeySource::of(old_key_env, old_key_file);
            let new = admin::KeySource::of(new_key_env, new_key_file);
            admin::rekey(&config, old, new, json).await
        }
        Command::Catalog(CatalogCommand::List { store, json }) => {
            admin::list_catalogs(&config, store, json).await
        }
        Command::Catalog(CatalogCommand::Remove { id, json }) => {
            admin::remove_catalog(&config, &id, json).await
        }
        Command::Catalog(CatalogCommand::Add { store, id, json }) => {
            let catalog = CatalogId::parse(&id).ok_or_else(|| {
                anyhow::anyhow!(
                    "catalog id '{id}' must be 1 to 64 letters, digits, '-', '_' or '.'"
                )
            })?;
            let database = open(&config).await?;
            database
                .stores()
                .add_catalog(StoreId(store), &catalog)
                .await?;
            print(
                json,
                json!({ "id": catalog, "store": store }),
                &format!("catalog {catalog} added to store {store}"),
            );
            Ok(())
        }
        Command::Sync {
            status: true, json, ..
        } => {
            let database = open(&config).await?;
            crate::sync::status(&database, json).await
        }
        Command::Sync {
            catalog,
            restart,
            json,
            ..
        } => {
            let catalog = catalog.unwrap_or_default();
            let catalog = CatalogId::parse(&catalog)
                .ok_or_else(|| anyhow::anyhow!("catalog id '{catalog}' is not valid"))?;
            let database = open(&config).await?;
            crate::sync::run(&config, &database, &catalog, restart, json).await
        }
        Command::Token { catalog, ttl, json } => {
            if catalog != "*" && CatalogId::parse(&catalog).is_none() {
                anyhow::bail!(
                    "catalog id '{catalog}' must be 1 to 64 letters, digits, '-', '_' or '.', or '*'"
                );
            }
            let ttl: Duration = ttl.into();
            if ttl > config.jwt_max_ttl {
                anyhow::bail!(
                    "--ttl {} is longer than tokens may live (POS_GATEWAY_JWT_MAX_TTL, {}): \
                     the gateway would refuse the token",
                    humantime::format_duration(ttl),
                    humantime::format_duration(config.jwt_max_ttl)
                );
            }
            let demo_secret;
            let key = match &config.jwt_key {
                Some(JwtKey::PublicKey { .. }) => anyhow::bail!(
                    "tokens are checked with a public key here; sign them where the private key is"
                ),
                Some(key) => key
                    .signing_key()
                    .ok_or_else(|| anyhow::anyhow!("no secret to sign tokens with"))?,
                None => {
                    let database = open(&config).await?;
                    let kept = database.settings().get(DEMO_SECRET_SETTING).await?;
                    demo_secret = Secret::new(kept.ok_or_else(|| {
                        anyhow::anyhow!("POS_GATEWAY_JWT_SECRET is not set (and no demo secret exists: run `pos-gateway demo` first)")
                    })?);
                    SigningKey {
                        kid: None,
                        secret: &demo_secret,
                    }
                }
            };
            let (token, exp) = sign_token(key, &config.jwt_audience, vec![catalog], ttl)?;
            print(json, json!({ "token": token, "expires_at": exp }), &token);
            Ok(())
        }
    }
}

/// A store's vendor config as `store add` and `store update` take it: the JSON file (`{}`
/// without one), refused when it holds credentials and no key is set, and checked by the
/// vendor's adapter (an unknown or unbuilt vendor is refused with the list).
pub(crate) fn vendor_config(
    config: &Config,
    vendor: Vendor,
    file: Option<&std::path::Path>,
) -> anyhow::Result<serde_json::Value> {
    let vendor_config = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?
        }
        None => json!({}),
    };
    let holds_credentials = vendor_config.as_object().is_none_or(|o| !o.is_empty());
    if holds_credentials && config.credentials_key.is_none() {
        anyhow::bail!(
            "POS_GATEWAY_CREDENTIALS_KEY must be set to store vendor credentials: \
             they are encrypted with it ({})",
            persistence::KEY_FORMAT
        );
    }
    if vendor != Vendor::Local {
        pos_adapters::validate_config(vendor, &vendor_config).map_err(|e| match e {
            pos_adapters::AdapterError::NotBuilt(_) => {
                anyhow::anyhow!("{e}; it has: {}", built_vendors())
            }
            other => other.into(),
        })?;
    }
    Ok(vendor_config)
}

pub(crate) fn print(json: bool, value: serde_json::Value, text: &str) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

pub(crate) async fn open(config: &Config) -> anyhow::Result<Database> {
    let database = Database::connect(&config.database_url)
        .await?
        .with_credentials_key(config.credentials_key.clone());
    database.migrate().await?;
    Ok(database)
}

/// The vendors this build can open, as `store add --vendor` takes them.
fn built_vendors() -> String {
    std::iter::once("local".to_owned())
        .chain(pos_adapters::VENDORS.iter().map(|spec| {
            let (name, aliases) = spec.names();
            match aliases {
                [] => name.to_owned(),
                aliases => format!("{name} (or {})", aliases.join(", ")),
            }
        }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Serves until SIGINT/SIGTERM, recovering journaled vendor creates in the background meanwhile
/// (from the start, without holding up the listener), and syncing every vendor store every
/// `sync_interval` when one is set.
async fn serve(config: &Config, state: crate::state::AppState) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let ops = config
        .ops_listen
        .as_deref()
        .map(|address| {
            TcpListener::bind(address)
                .with_context(|| format!("cannot listen on {address} (POS_GATEWAY_OPS_LISTEN)"))
        })
        .transpose()?;
    let service = state.service.clone();
    let database = state.database.clone();
    let servers = crate::app::servers(state, listener, ops)?;
    let recovery = crate::app::Recovery::spawn(service.clone());
    let scheduled = config.sync_interval.map(|interval| {
        let every = crate::schedule::Every {
            interval,
            full_pass: config.sync_full_every,
        };
        crate::schedule::ScheduledSync::spawn(every, service, database)
    });
    match &config.ops_listen {
        Some(ops) => tracing::info!(
            address = %config.listen,
            ops_address = %ops,
            "serving (/metrics and /readyz on the operations address only)"
        ),
        None => tracing::info!(address = %config.listen, "serving"),
    }
    let served = servers.run().await;
    recovery.stop().await;
    if let Some(scheduled) = scheduled {
        scheduled.stop().await;
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Everything a first-time user needs, with no configuration at all.
async fn demo(mut config: Config) -> anyhow::Result<()> {
    let database = open(&config).await?;
    let key = match config.jwt_key.take() {
        Some(key @ (JwtKey::Secret(_) | JwtKey::SecretSet(_))) => key,
        _ => {
            let fresh = hex::encode(rand::random::<[u8; 32]>());
            JwtKey::Secret(Secret::new(
                database
                    .settings()
                    .get_or_insert(DEMO_SECRET_SETTING, &fresh)
                    .await?,
            ))
        }
    };
    let signing = key
        .signing_key()
        .ok_or_else(|| anyhow::anyhow!("the demo signs its tokens with a secret"))?;
    let stores = database.stores();
    let store = match stores.store_by_name(DEMO_STORE_NAME).await? {
        Some(store) => store,
        None => {
            stores
                .add_store(DEMO_STORE_NAME, Vendor::Local, &json!({}))
                .await?
        }
    };
    let catalog =
        CatalogId::parse(DEMO_CATALOG).ok_or_else(|| anyhow::anyhow!("bad demo catalog id"))?;
    match stores.add_catalog(store.id, &catalog).await {
        Ok(()) | Err(RepositoryError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let ttl = DEMO_TOKEN_TTL.min(config.jwt_max_ttl);
    let (token, _) = sign_token(
        signing,
        &config.jwt_audience,
        vec![DEMO_CATALOG.into()],
        ttl,
    )?;
    config.jwt_key = Some(key);
    let base = format!("http://{}", config.listen);
    println!(
        "pos-gateway demo: store \"{DEMO_STORE_NAME}\" (id {}) on the built-in local POS, catalog \"{DEMO_CATALOG}\", database {}\n\
         \n\
         A token for catalog {DEMO_CATALOG}, valid {} h (`pos-gateway token --catalog {DEMO_CATALOG}` makes more):\n\
         \n  export TOKEN={token}\n\
         \nThen try:\n\
         \n  curl -s -X POST {base}/api/v1/{DEMO_CATALOG}/customers -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n    -d '{{\"customer\":{{\"first_name\":\"John\",\"last_name\":\"Doe\",\"email\":\"john.doe@example.com\",\"phone\":\"555-123-4567\"}}}}'\n\
         \n  curl -s '{base}/api/v1/{DEMO_CATALOG}/customers?phone=5551234567' -H \"Authorization: Bearer $TOKEN\"\n\
         \nAPI reference: {base}/docs. Serving on {base}; Ctrl-C stops.",
        store.id,
        persistence::redact_url(&config.database_url),
        ttl.as_secs() / 3600
    );
    if let Some(ops) = &config.ops_listen {
        println!("Metrics and readiness: http://{ops}/metrics, http://{ops}/readyz.");
    }
    let state = crate::app::state(&config, database)?;
    serve(&config, state).await
}
