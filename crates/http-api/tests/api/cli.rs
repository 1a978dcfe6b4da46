//! The `pos-gateway` binary as an operator uses it: the demo from nothing, the admin commands,
//! errors on stderr, and a graceful stop.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::gateway::{Gateway, free_address, terminate};
use testkit::pg::TestDatabase;

use crate::helpers::Db;

const BIN: &str = env!("CARGO_BIN_EXE_pos-gateway");

/// A working directory of its own (where the SQLite default `pos-gateway.db` goes), and the
/// binary with none of the caller's `POS_GATEWAY_*` variables.
struct Env {
    dir: tempfile::TempDir,
    gateway: Gateway,
    /// The database the binary uses.
    database_url: String,
    /// When that is a PostgreSQL database of the test's own: dropped with the `Env`.
    _postgres: Option<TestDatabase>,
}

impl Env {
    /// On SQLite: the default file in the working directory.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let gateway = Gateway::new(BIN)
            .current_dir(dir.path())
            .env("RUST_LOG", "warn");
        let database_url = format!("sqlite://{}", dir.path().join("pos-gateway.db").display());
        Self {
            dir,
            gateway,
            database_url,
            _postgres: None,
        }
    }

    /// On `db`: SQLite as [`Env::new`], or a fresh PostgreSQL database named by
    /// `POS_GATEWAY_DATABASE_URL`.
    fn on(db: Db) -> Self {
        let mut env = Self::new();
        if let Db::Postgres = db {
            let database = tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(TestDatabase::create());
            env.database_url = database.url().to_owned();
            env.gateway = env
                .gateway
                .clone()
                .env("POS_GATEWAY_DATABASE_URL", &env.database_url);
            env._postgres = Some(database);
        }
        env
    }

    fn command(&self) -> Command {
        self.gateway.command::<_, &str>([])
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        self.run_with(&[], args)
    }

    /// Runs with `vars` set too.
    fn run_with(&self, vars: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
        let output = self
            .command()
            .envs(vars.iter().copied())
            .args(args)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// `path` in the working directory, holding `contents`.
    fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    /// The store `id` as the gateway reads it with `key`.
    fn read_store(&self, key: &str, id: i64) -> Result<domain::Store, domain::RepositoryError> {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let database = persistence::Database::connect(&self.database_url)
                .await
                .unwrap()
                .with_credentials_key(Some(persistence::CredentialsKey::parse(key).unwrap()));
            domain::StoreRegistry::store_by_id(&database.stores(), domain::StoreId(id))
                .await
                .map(Option::unwrap)
        })
    }
}

#[test]
fn admin_commands_print_json_and_fail_on_stderr() {
    let env = Env::new();
    let (ok, out, _) = env.run(&["migrate", "--json"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"migrated": true})
    );
    assert!(
        env.dir.path().join("pos-gateway.db").exists(),
        "SQLite is the default"
    );

    let (ok, out, err) = env.run(&[
        "store", "add", "--name", "Main St", "--vendor", "local", "--json",
    ]);
    assert!(ok, "{err}");
    let store: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(store["vendor"], "local");
    let id = store["id"].to_string();

    let (ok, out, err) = env.run(&[
        "catalog", "add", "--store", &id, "--id", "kiosk-1", "--json",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["id"],
        "kiosk-1"
    );

    let (ok, _, err) = env.run(&["catalog", "add", "--store", &id, "--id", "kiosk-1"]);
    assert!(!ok, "a catalog id is taken once");
    assert!(err.starts_with("error: "), "{err}");

    let (ok, _, err) = env.run(&[
        "catalog", "add", "--store", &id, "--id", "bad id!", "--json",
    ]);
    assert!(!ok);
    assert!(
        serde_json::from_str::<Value>(&err).unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("catalog id")
    );

    let (ok, _, err) = env.run(&["store", "add", "--name", "X", "--vendor", "square"]);
    assert!(!ok);
    assert!(err.contains("unknown vendor"), "{err}");

    let (ok, _, err) = env.run(&["token", "--catalog", "kiosk-1"]);
    assert!(!ok, "no secret configured and no demo secret");
    assert!(err.contains("POS_GATEWAY_JWT_SECRET"), "{err}");

    let secret = "AsTUNNxlJYZEbJKyv6Iqs+ROrnHXo4sBwOn7spHoP0s=";
    let output = env
        .command()
        .env("POS_GATEWAY_JWT_SECRET", secret)
        .args(["token", "--catalog", "kiosk-1", "--ttl", "2h", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let token: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["pos-gateway"]);
    let claims = jsonwebtoken::decode::<Value>(
        token["token"].as_str().unwrap(),
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["catalogs"], json!(["kiosk-1"]));
    let ttl = claims["exp"].as_u64().unwrap() - jsonwebtoken::get_current_timestamp();
    assert!((7100..=7200).contains(&ttl), "ttl {ttl}");

    let (ok, _, err) = env.run(&["serve"]);
    assert!(!ok, "serve needs a secret");
    assert!(err.contains("POS_GATEWAY_JWT_SECRET"), "{err}");
}

#[test]
fn vendor_credentials_need_a_well_formed_key_and_never_show() {
    let env = Env::new();
    let secret = "sk_live_CLI_TOPSECRET";
    let file = env.dir.path().join("treez.json");
    std::fs::write(
        &file,
        json!({"dispensary": "main-street", "client_id": "kiosk", "api_key": secret}).to_string(),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let add = [
        "store", "add", "--name", "Main St", "--vendor", "treez", "--config", file,
    ];

    let (ok, _, err) = env.run(&add);
    assert!(!ok, "credentials without a key");
    assert!(
        err.contains("POS_GATEWAY_CREDENTIALS_KEY must be set to store vendor credentials"),
        "{err}"
    );
    assert!(err.contains("openssl rand -hex 32"), "{err}");

    let output = env
        .command()
        .env("POS_GATEWAY_CREDENTIALS_KEY", "my passphrase hunter2")
        .args(add)
        .output()
        .unwrap();
    assert!(!output.status.success(), "a passphrase is not a key");
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("POS_GATEWAY_CREDENTIALS_KEY"), "{err}");
    assert!(err.contains("64 hex digits"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    // With a key, whether this build's treez adapter takes the config or not, the secret is
    // neither printed nor written in the clear.
    let output = env
        .command()
        .env(
            "POS_GATEWAY_CREDENTIALS_KEY",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        )
        .args(add)
        .output()
        .unwrap();
    let printed = [output.stdout, output.stderr].concat();
    assert!(!String::from_utf8_lossy(&printed).contains("TOPSECRET"));
    for stored in ["pos-gateway.db", "pos-gateway.db-wal"] {
        if let Ok(bytes) = std::fs::read(env.dir.path().join(stored)) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains("TOPSECRET"),
                "the secret is readable in {stored}"
            );
        }
    }
}

#[test]
fn the_demo_works_from_nothing_and_stops_gracefully() {
    let env = Env::new();
    let address = free_address().unwrap();
    let mut child = env
        .command()
        .env("POS_GATEWAY_LISTEN", address.to_string())
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut token = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(t) = line.trim().strip_prefix("export TOKEN=") {
            token = Some(t.to_owned());
        }
        if line.contains("Serving on") {
            break;
        }
    }
    let token = token.expect("the demo prints a token");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let base = format!("http://{address}");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(Instant::now() < deadline, "the demo never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let created = client
            .post(format!("{base}/api/v1/demo/customers"))
            .bearer_auth(&token)
            .json(&json!({"customer": {"first_name": "John", "last_name": "Doe", "email": "john.doe@example.com", "phone": "555-123-4567"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
    });

    // The token command finds the secret the demo kept.
    let (ok, kept_token, err) = env.run(&["token", "--catalog", "demo"]);
    assert!(ok, "{err}");
    runtime.block_on(async {
        let found = reqwest::Client::new()
            .get(format!("{base}/api/v1/demo/customers?phone=5551234567"))
            .bearer_auth(kept_token.trim())
            .send()
            .await
            .unwrap();
        assert_eq!(found.status(), 200);
        let found: Value = found.json().await.unwrap();
        assert_eq!(found["customers"][0]["email"], "john.doe@example.com");
    });

    let status = terminate(&mut child, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("the demo did not stop on SIGTERM: {e}"));
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    assert_owner_only(&env.dir.path().join("pos-gateway.db"));

    // A second demo reuses the store, the catalog and the secret.
    let (ok, _, err) = env.run(&["token", "--catalog", "demo"]);
    assert!(ok, "{err}");
}

/// The demo keeps its token secret in the SQLite file: the file, and the `-wal` and `-shm`
/// SQLite makes beside it, are readable by their owner only.
fn assert_owner_only(database: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", database.display());
        if suffix.is_empty() || std::path::Path::new(&file).exists() {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file} has mode {mode:o}");
        }
    }
}

/// The demo on PostgreSQL with a password in the URL: the banner names the database without
/// the password, and no log line has it either.
#[test]
fn the_demo_never_prints_the_database_password() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(testkit::pg::TestDatabase::create());
    let url = database.url().to_owned();
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, place) = rest
        .split_once('@')
        .expect("TEST_DATABASE_URL names a user");
    let (url, password) = match userinfo.split_once(':') {
        Some((_, password)) => (url.clone(), password.to_owned()),
        // The test server trusts local connections: any password will do.
        None => (
            format!("{scheme}://{userinfo}:Hunter2-not-shown@{place}"),
            "Hunter2-not-shown".to_owned(),
        ),
    };
    let env = Env::new();
    let address = free_address().unwrap();
    let mut child = env
        .command()
        .env("POS_GATEWAY_LISTEN", address.to_string())
        .env("POS_GATEWAY_DATABASE_URL", &url)
        .env("RUST_LOG", "info")
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("Serving on") {
            break;
        }
    }
    terminate(&mut child, Duration::from_secs(15)).unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(banner.contains(":***@"), "{banner}");
    assert!(!banner.contains(&password), "{banner}");
    assert!(!log.contains(&password), "{log}");
    drop(database);
}

const OLD_SECRET: &str = "Pg7p+FTk9PbjX893MUs54GYqQ5KupT2B8xBAz1d54Vo=";
const NEW_SECRET: &str = "8V+mQFGoy3ipLXy5CliZjncV8hEBebKX0wjQeTvu7tw=";

/// A long secret is not a strong one: `serve` and `token` refuse it at start-up, say how to
/// make a good one, and never echo it.
#[test]
fn a_weak_jwt_secret_is_refused_at_start_up() {
    let env = Env::new();
    for secret in ["a".repeat(64), "password".repeat(8)] {
        for command in [&["serve"][..], &["token", "--catalog", "k"][..]] {
            let mut child = env
                .command()
                .env("POS_GATEWAY_JWT_SECRET", &secret)
                .env("POS_GATEWAY_LISTEN", free_address().unwrap().to_string())
                .args(command)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // A `serve` that accepted the secret would run until stopped.
            let deadline = Instant::now() + Duration::from_secs(30);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() > deadline {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    panic!("{command:?} accepted the weak secret and kept running");
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            assert!(!status.success(), "{command:?}: {err}");
            assert!(err.contains("POS_GATEWAY_JWT_SECRET"), "{err}");
            assert!(err.contains("too weak"), "{err}");
            assert!(err.contains("openssl rand -base64 32"), "{err}");
            assert!(!err.contains(&secret[..16]), "{err}");
        }
    }
}

fn decode(token: &str, secret: &str) -> (Option<String>, Value) {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["pos-gateway"]);
    let data = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .unwrap();
    (data.header.kid, data.claims)
}

/// `token` signs with the newest secret of a key set and names its kid; it does not make a
/// token the gateway would refuse as too long-lived.
#[test]
fn token_signs_with_the_newest_kid_and_within_the_longest_lifetime() {
    let env = Env::new();
    let secrets = format!("2025-06:{NEW_SECRET},2025-01:{OLD_SECRET}");
    let token = |extra: &[(&str, &str)], ttl: &str| {
        let mut command = env.command();
        command.env("POS_GATEWAY_JWT_SECRETS", &secrets);
        for (key, value) in extra {
            command.env(key, value);
        }
        let output = command
            .args(["token", "--catalog", "k", "--ttl", ttl, "--json"])
            .output()
            .unwrap();
        let err = String::from_utf8(output.stderr).unwrap();
        match output.status.success() {
            true => Ok(
                serde_json::from_slice::<Value>(&output.stdout).unwrap()["token"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            false => Err(err),
        }
    };

    let newest = token(&[], "400days").unwrap();
    let (kid, claims) = decode(&newest, NEW_SECRET);
    assert_eq!(kid.as_deref(), Some("2025-06"));
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        400 * 24 * 3600
    );
    let chosen = token(&[("POS_GATEWAY_JWT_KID", "2025-01")], "1h").unwrap();
    assert_eq!(decode(&chosen, OLD_SECRET).0.as_deref(), Some("2025-01"));

    let err = token(&[], "401days").unwrap_err();
    assert!(err.contains("POS_GATEWAY_JWT_MAX_TTL"), "{err}");
    let err = token(&[("POS_GATEWAY_JWT_MAX_TTL", "1h")], "2h").unwrap_err();
    assert!(err.contains("--ttl 2h is longer"), "{err}");
    assert!(token(&[("POS_GATEWAY_JWT_MAX_TTL", "1h")], "1h").is_ok());
}

/// `sync` copies every customer of a vendor store into the mirror, page after page; stopped
/// half-way (the vendor refusing the store's credentials), it says how to resume and resumes
/// from the page after the last one copied, waiting out a rate limit instead of failing.
/// Customers deleted at the POS are marked deleted by a full pass, resumed or not, never by a
/// partial one. Run for every vendor of the build, each against its double, with the real
/// binary.
#[test]
fn sync_copies_every_vendor_store_into_the_mirror_and_resumes() {
    std::thread::scope(|scope| {
        for spec in pos_adapters::VENDORS {
            scope.spawn(move || sync_a_vendor_store(spec));
        }
    });
}

const SYNCED: u32 = 230;

fn sync_a_vendor_store(spec: &pos_adapters::VendorSpec) {
    use vendor_doubles::{Fault, Op, SeedCustomer};

    let vendor = spec.vendor.as_str();
    let double = vendor_doubles::start(vendor).unwrap().unwrap();
    for n in 1..=SYNCED {
        double.seed_customer(&SeedCustomer::numbered(n));
    }
    let env = Env::new();
    let key = "ab".repeat(32);
    let run = |args: &[&str]| {
        let output = env
            .command()
            .env("POS_GATEWAY_CREDENTIALS_KEY", &key)
            .args(args)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let config = env.dir.path().join("vendor.json");
    // The gateway's own limiter off: a sync of a few hundred customers in a test should
    // not wait for a vendor's per-minute budget (the adapters' tests check the limiter).
    std::fs::write(&config, double.unthrottled_store_config().to_string()).unwrap();
    let (ok, out, err) = run(&[
        "store",
        "add",
        "--name",
        "Synced store",
        "--vendor",
        vendor,
        "--config",
        config.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{vendor}: {err}");
    let store = serde_json::from_str::<Value>(&out).unwrap()["id"].clone();
    let (ok, _, err) = run(&[
        "catalog",
        "add",
        "--store",
        &store.to_string(),
        "--id",
        "kiosk",
    ]);
    assert!(ok, "{vendor}: {err}");

    // The first list call goes through, then the vendor refuses (a re-sent call too).
    double.double().fail(Op::List, Fault::Pass, 1);
    double.double().fail(Op::List, Fault::Unauthorized, 2);
    let (ok, _, err) = run(&["sync", "--catalog", "kiosk"]);
    assert!(!ok, "{vendor}");
    assert!(
        err.contains("run the same command to resume"),
        "{vendor}: {err}"
    );
    assert!(
        err.contains("refused the store's credentials"),
        "{vendor}: {err}"
    );
    let first: u32 = err
        .split("stopped after ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{vendor}: {err}"));
    // Vendors with tokens re-send once after a 401; the others leave the second refusal.
    double.double().heal();
    assert!(first < SYNCED, "{vendor}: stopped after {first}");

    // Again: from where it stopped, through a rate limit the vendor asks us to wait out.
    double.double().fail(
        Op::List,
        Fault::RateLimited {
            retry_after: "1".into(),
        },
        3,
    );
    let (ok, out, err) = run(&["sync", "--catalog", "kiosk", "--json"]);
    assert!(ok, "{vendor}: {err}");
    let report = serde_json::from_str::<Value>(&out).unwrap();
    assert_eq!(report["resumed"], true, "{vendor}: {report}");
    assert_eq!(
        report["copied"].as_u64().unwrap() + u64::from(first),
        u64::from(SYNCED),
        "{vendor}: each customer copied once across the two runs: {report}"
    );

    // Everything is in the mirror: all of them by name, which every vendor's sync wrote.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = format!(
        "sqlite://{}",
        env.dir.path().join("pos-gateway.db").display()
    );
    let mirrored = || {
        runtime.block_on(async {
            let database = persistence::Database::connect(&url).await.unwrap();
            let mirror = database.mirror();
            let mut ids = std::collections::BTreeSet::new();
            let mut query = domain::CustomerQuery {
                name: Some("last".into()),
                limit: 100,
                ..Default::default()
            };
            loop {
                let page = domain::CustomerMirror::find(
                    &mirror,
                    domain::StoreId(store.as_i64().unwrap()),
                    &query,
                )
                .await
                .unwrap();
                ids.extend(page.customers.into_iter().map(|c| c.customer_id));
                match page.next {
                    Some(next) => query.page = Some(next),
                    None => break ids,
                }
            }
        })
    };
    let all = mirrored();
    assert_eq!(all.len(), SYNCED as usize, "{vendor}");

    // A finished sync starts over next time.
    let (ok, out, _) = run(&["sync", "--catalog", "kiosk", "--json"]);
    assert!(ok, "{vendor}");
    let report = serde_json::from_str::<Value>(&out).unwrap();
    assert_eq!(report["copied"], SYNCED, "{vendor}");
    assert_eq!(report["removed"], 0, "{vendor}: nothing is gone");

    // Two customers deleted at the register, one early and one late in the list; a pass
    // stopped half-way marks nothing deleted, and its resumption (the same pass) does.
    let gone: Vec<domain::CustomerId> = all.iter().step_by(200).cloned().collect();
    assert_eq!(gone.len(), 2, "{vendor}");
    for id in &gone {
        assert!(double.delete_customer(id.as_str()), "{vendor}");
    }
    double.double().fail(Op::List, Fault::Pass, 1);
    double.double().fail(Op::List, Fault::Unauthorized, 2);
    let (ok, _, err) = run(&["sync", "--catalog", "kiosk"]);
    assert!(!ok, "{vendor}: {err}");
    double.double().heal();
    assert_eq!(
        mirrored(),
        all,
        "{vendor}: a partial pass tombstones nothing"
    );
    let (ok, out, err) = run(&["sync", "--catalog", "kiosk", "--json"]);
    assert!(ok, "{vendor}: {err}");
    let report = serde_json::from_str::<Value>(&out).unwrap();
    assert_eq!(report["resumed"], true, "{vendor}: {report}");
    assert_eq!(report["removed"], 2, "{vendor}: {report}");
    let left: std::collections::BTreeSet<_> = all
        .iter()
        .filter(|id| !gone.contains(id))
        .cloned()
        .collect();
    assert_eq!(mirrored(), left, "{vendor}");
}

/// A gateway with a `local` store (catalog `local-kiosk`) and a Treez store on `double`
/// (catalog `treez-kiosk`), configured by `gateway`'s environment; a token for both.
fn two_stores(
    gateway: &Gateway,
    dir: &std::path::Path,
    double: &dyn vendor_doubles::VendorDouble,
) -> String {
    let config = dir.join("treez.json");
    std::fs::write(&config, double.unthrottled_store_config().to_string()).unwrap();
    for (vendor, catalog) in [("local", "local-kiosk"), ("treez", "treez-kiosk")] {
        let mut args = vec!["store", "add", "--name", catalog, "--vendor", vendor];
        if vendor == "treez" {
            args.extend(["--config", config.to_str().unwrap()]);
        }
        let store = gateway.admin(&args).unwrap()["id"].to_string();
        gateway
            .admin(&["catalog", "add", "--store", &store, "--id", catalog])
            .unwrap();
    }
    gateway.admin(&["token", "--catalog", "*"]).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn served_gateway(dir: &std::path::Path) -> Gateway {
    Gateway::new(BIN)
        .current_dir(dir)
        .env(
            "POS_GATEWAY_JWT_SECRET",
            "z33ZVWv+sApO6IHw6h1hbFAAhjEXMfuYs7dAAemz7UU=",
        )
        .env("POS_GATEWAY_CREDENTIALS_KEY", "ab".repeat(32))
        .log(dir.join("gateway.log"))
}

/// Searches by e-mail and phone put customer data in the query string; no line of the log
/// (debug level, a vendor failing so that warnings are written inside the request) shows
/// them: the request's `http.target` keeps the parameter names only.
#[test]
fn the_log_never_shows_search_values() {
    use vendor_doubles::{Fault, Op};

    let double = vendor_doubles::start("treez").unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gateway = served_gateway(dir.path()).env("RUST_LOG", "debug");
    let token = two_stores(&gateway, dir.path(), double.as_ref());
    let serving = gateway.serve().unwrap();
    double.double().fail(Op::Search, Fault::Status(500), 100);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for catalog in ["local-kiosk", "treez-kiosk"] {
            for query in [
                "email=Ann.Searched%40example.org&phone=(555)%20019-8765",
                "phone=5550198765&drivers_license=QX-44-Searched&name=Searchedname",
                "email=bad@@example.org&limit=1",
            ] {
                let response = client
                    .get(format!(
                        "{}/api/v1/{catalog}/customers?{query}",
                        serving.url()
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    response.status().is_success() || response.status() == 422,
                    "{catalog} {query}: {}",
                    response.status()
                );
            }
        }
    });
    let log = serving.stop();
    assert!(
        log.contains("/api/v1/treez-kiosk/customers?email=***&phone=***"),
        "the request line is logged, masked: {log}"
    );
    assert!(
        log.contains("POS unreachable"),
        "a warning was written inside a request: {log}"
    );
    for value in [
        "Searched",
        "searched",
        "example.org",
        "8765",
        "Searchedname",
        "QX-44",
    ] {
        assert!(!log.contains(value), "{value} is in the log:\n{log}");
    }
}

/// `serve` with `POS_GATEWAY_OPS_LISTEN`: `/metrics` and `/readyz` there, not on the public
/// address; `/healthz` on both.
#[test]
fn serve_puts_metrics_and_readiness_on_the_operations_address() {
    let dir = tempfile::tempdir().unwrap();
    let ops = free_address().unwrap();
    let gateway = served_gateway(dir.path())
        .env("RUST_LOG", "warn")
        .env("POS_GATEWAY_OPS_LISTEN", ops.to_string());
    let serving = gateway.serve().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let get = |url: String| {
            let request = client.get(url);
            async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            }
        };
        let public = serving.url();
        let ops = format!("http://{ops}");
        assert_eq!(get(format!("{public}/healthz")).await.0, 200);
        for path in ["/metrics", "/readyz"] {
            assert_eq!(
                get(format!("{public}{path}")).await,
                (404, r#"{"error":"not found"}"#.to_owned()),
                "{path}"
            );
        }
        assert_eq!(get(format!("{ops}/healthz")).await.0, 200);
        assert_eq!(
            get(format!("{ops}/readyz")).await,
            (200, r#"{"status":"ready"}"#.to_owned())
        );
        let (status, metrics) = get(format!("{ops}/metrics")).await;
        assert_eq!(status, 200);
        assert!(
            metrics.contains(
                r#"pos_gateway_http_requests_total{endpoint="/healthz",method="GET",status="200"}"#
            ),
            "{metrics}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// The operator's day two: the store and catalog lifecycle, and rekeying, on both databases

/// Instantiates each `fn(Db)` as `sqlite::NAME` and `postgres::NAME`.
macro_rules! cli_on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() { super::$name(crate::helpers::Db::Sqlite) })*
        }
        mod postgres {
            $(#[test]
            fn $name() { super::$name(crate::helpers::Db::Postgres) })*
        }
    };
}

cli_on_both_databases!(
    stores_and_catalogs_are_listed_updated_and_removed,
    rekey_reseals_every_store_and_changes_nothing_when_one_does_not_open,
);

const KEY_A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const KEY_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const KEY_C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
const KEY_STRAY: &str = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

fn treez_config(api_key: &str) -> String {
    json!({"dispensary": "main-street", "client_id": "kiosk", "api_key": api_key}).to_string()
}

fn parsed(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn stores_and_catalogs_are_listed_updated_and_removed(db: Db) {
    let env = Env::on(db);
    let key = [("POS_GATEWAY_CREDENTIALS_KEY", KEY_A)];
    let run = |args: &[&str]| env.run_with(&key, args);
    let first_config = env.file("treez.json", &treez_config("sk_live_FIRST_SECRET"));
    let (ok, out, err) = run(&[
        "store",
        "add",
        "--name",
        "Main St",
        "--vendor",
        "treez",
        "--config",
        &first_config,
        "--json",
    ]);
    assert!(ok, "{err}");
    let main = parsed(&out)["id"].as_i64().unwrap();
    let main_id = main.to_string();
    let (ok, out, err) = run(&[
        "store", "add", "--name", "Elm St", "--vendor", "local", "--json",
    ]);
    assert!(ok, "{err}");
    let elm = parsed(&out)["id"].as_i64().unwrap();
    for (store, catalog) in [(main, "kiosk-2"), (main, "kiosk-1"), (elm, "elm")] {
        let (ok, _, err) = run(&[
            "catalog",
            "add",
            "--store",
            &store.to_string(),
            "--id",
            catalog,
        ]);
        assert!(ok, "{err}");
    }

    // Listed with stable fields, and never a config (sealed or not).
    let (ok, out, err) = run(&["store", "list", "--json"]);
    assert!(ok, "{err}");
    let listed = parsed(&out);
    let stores = listed["stores"].as_array().unwrap();
    assert_eq!(stores.len(), 2, "{listed}");
    let first = stores[0].as_object().unwrap();
    assert_eq!(
        first.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "catalogs",
            "created_at",
            "has_credentials",
            "id",
            "name",
            "updated_at",
            "vendor"
        ]
    );
    assert_eq!(
        (
            &first["id"],
            &first["name"],
            &first["vendor"],
            &first["has_credentials"],
            &first["catalogs"]
        ),
        (
            &json!(main),
            &json!("Main St"),
            &json!("treez"),
            &json!(true),
            &json!(["kiosk-1", "kiosk-2"])
        )
    );
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(stores[1]["has_credentials"], false);
    assert_eq!(stores[1]["catalogs"], json!(["elm"]));
    let (ok, text, _) = run(&["store", "list"]);
    assert!(ok);
    assert!(text.starts_with("ID  NAME"), "{text}");
    assert!(
        text.contains("sealed") && text.contains("kiosk-1, kiosk-2"),
        "{text}"
    );
    for shown in [&out, &text] {
        assert!(
            !shown.contains("SECRET") && !shown.contains("v1:"),
            "{shown}"
        );
    }

    // Updated: checked exactly as `store add` checks a config, then sealed again.
    let insecure = env.file(
        "insecure.json",
        &json!({"dispensary": "main-street", "client_id": "kiosk", "api_key": "k", "base_url": "http://pos.example.com"}).to_string(),
    );
    let (ok, _, add_refusal) = run(&[
        "store", "add", "--name", "Other", "--vendor", "treez", "--config", &insecure,
    ]);
    assert!(!ok);
    let (ok, _, update_refusal) = run(&["store", "update", &main_id, "--config", &insecure]);
    assert!(!ok, "an insecure base_url is refused");
    assert!(update_refusal.contains("base_url"), "{update_refusal}");
    assert_eq!(update_refusal, add_refusal, "the same check as store add");
    let (ok, _, err) = env.run(&["store", "update", &main_id, "--config", &first_config]);
    assert!(!ok, "credentials need the key");
    assert!(
        err.contains("POS_GATEWAY_CREDENTIALS_KEY must be set"),
        "{err}"
    );
    assert_eq!(
        env.read_store(KEY_A, main).unwrap().config,
        parsed(&treez_config("sk_live_FIRST_SECRET")).into()
    );

    let rotated = env.file("rotated.json", &treez_config("sk_live_ROTATED_SECRET"));
    let (ok, out, err) = run(&["store", "update", &main_id, "--config", &rotated, "--json"]);
    assert!(ok, "{err}");
    let updated = parsed(&out);
    assert_eq!(
        (&updated["id"], &updated["has_credentials"]),
        (&json!(main), &json!(true))
    );
    assert!(
        !out.contains("SECRET") && !err.contains("SECRET"),
        "{out}{err}"
    );
    assert_eq!(
        env.read_store(KEY_A, main).unwrap().config,
        parsed(&treez_config("sk_live_ROTATED_SECRET")).into()
    );
    if let Db::Sqlite = db {
        let file = std::fs::read(env.dir.path().join("pos-gateway.db")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&file).contains("ROTATED"),
            "sealed at rest"
        );
    }
    let (ok, _, err) = run(&["store", "update", "987654", "--config", &rotated, "--json"]);
    assert!(!ok);
    assert_eq!(parsed(&err), json!({"error": "store 987654 not found"}));

    // Catalogs.
    let (ok, out, err) = run(&["catalog", "list", "--json"]);
    assert!(ok, "{err}");
    let catalogs = parsed(&out)["catalogs"].as_array().unwrap().clone();
    let ids: Vec<_> = catalogs
        .iter()
        .map(|c| (c["id"].clone(), c["store"].clone()))
        .collect();
    assert_eq!(
        ids,
        [
            (json!("elm"), json!(elm)),
            (json!("kiosk-1"), json!(main)),
            (json!("kiosk-2"), json!(main))
        ]
    );
    assert_eq!(
        catalogs[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["created_at", "id", "store"]
    );
    let (ok, out, _) = run(&["catalog", "list", "--store", &elm.to_string(), "--json"]);
    assert!(ok);
    assert_eq!(parsed(&out)["catalogs"].as_array().unwrap().len(), 1);
    let (ok, _, err) = run(&["catalog", "list", "--store", "987654"]);
    assert!(!ok);
    assert_eq!(err.trim(), "error: store 987654 not found");

    let (ok, out, err) = run(&["catalog", "remove", "kiosk-2", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(
        (&parsed(&out)["id"], &parsed(&out)["store"]),
        (&json!("kiosk-2"), &json!(main))
    );
    let (ok, _, err) = run(&["catalog", "remove", "kiosk-2"]);
    assert!(!ok);
    assert_eq!(err.trim(), "error: catalog kiosk-2 not found");

    // Removal is refused while a catalog uses the store, and changes nothing.
    let (ok, out, err) = run(&["store", "remove", &main_id]);
    assert!(!ok && out.is_empty());
    assert!(
        err.contains(&format!("store {main} is used by catalog kiosk-1")),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    let (_, out, _) = run(&["store", "list", "--json"]);
    assert_eq!(parsed(&out)["stores"].as_array().unwrap().len(), 2);

    let (ok, out, err) = run(&["store", "remove", &main_id, "--force", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(
        parsed(&out),
        json!({"id": main, "name": "Main St", "vendor": "treez", "catalogs": ["kiosk-1"], "customers": 0, "pending_creates": 0})
    );
    let (_, out, _) = run(&["store", "list", "--json"]);
    assert_eq!(parsed(&out)["stores"].as_array().unwrap().len(), 1);
    let (_, out, _) = run(&["catalog", "list", "--json"]);
    assert_eq!(parsed(&out)["catalogs"], json!([catalogs[0].clone()]));
    let (ok, _, err) = run(&["store", "remove", &main_id, "--json"]);
    assert!(!ok);
    assert_eq!(
        parsed(&err),
        json!({"error": format!("store {main} not found")})
    );
}

fn rekey_reseals_every_store_and_changes_nothing_when_one_does_not_open(db: Db) {
    let env = Env::on(db);
    let with_key = |key: &str, args: &[&str]| {
        env.run_with(
            &[("POS_GATEWAY_CREDENTIALS_KEY", key), ("NEW_KEY", KEY_B)],
            args,
        )
    };
    let mut stores = Vec::new();
    for (name, secret) in [("North", "sk_NORTH_SECRET"), ("South", "sk_SOUTH_SECRET")] {
        let file = env.file(&format!("{name}.json"), &treez_config(secret));
        let (ok, out, err) = with_key(
            KEY_A,
            &[
                "store", "add", "--name", name, "--vendor", "treez", "--config", &file, "--json",
            ],
        );
        assert!(ok, "{err}");
        stores.push(parsed(&out)["id"].as_i64().unwrap());
    }
    let (ok, _, err) = with_key(
        KEY_A,
        &["store", "add", "--name", "Local", "--vendor", "local"],
    );
    assert!(ok, "{err}");

    // The new key is read from a variable, never from the command line; a bad one is named,
    // not shown.
    let (ok, _, err) = env.run_with(
        &[
            ("POS_GATEWAY_CREDENTIALS_KEY", KEY_A),
            ("NEW_KEY", "hunter2 hunter2"),
        ],
        &["store", "rekey", "--new-key-env", "NEW_KEY"],
    );
    assert!(!ok);
    assert!(
        err.contains("NEW_KEY") && err.contains("64 hex digits"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let (ok, _, err) = with_key(KEY_A, &["store", "rekey"]);
    assert!(!ok, "a new key is required");
    assert!(
        err.contains("--new-key-env") && err.contains("--new-key-file"),
        "{err}"
    );
    let (ok, _, err) = with_key(
        KEY_A,
        &["store", "rekey", "--new-key-env", "NO_SUCH_VARIABLE"],
    );
    assert!(!ok);
    assert!(err.contains("NO_SUCH_VARIABLE is not set"), "{err}");

    // A to B: the old key from POS_GATEWAY_CREDENTIALS_KEY, the new one from a variable.
    let (ok, out, err) = with_key(
        KEY_A,
        &["store", "rekey", "--new-key-env", "NEW_KEY", "--json"],
    );
    assert!(ok, "{err}");
    assert_eq!(parsed(&out), json!({"resealed": stores}));
    for (&id, secret) in stores.iter().zip(["sk_NORTH_SECRET", "sk_SOUTH_SECRET"]) {
        assert_eq!(
            env.read_store(KEY_B, id).unwrap().config,
            parsed(&treez_config(secret)).into()
        );
        assert!(
            env.read_store(KEY_A, id).is_err(),
            "the old key no longer opens store {id}"
        );
    }
    // Again by mistake: refused, naming the store, nothing changed.
    let (ok, _, err) = with_key(KEY_A, &["store", "rekey", "--new-key-env", "NEW_KEY"]);
    assert!(!ok);
    assert!(
        err.contains(&format!("store {} (\"North\")", stores[0])),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");

    // B to C from files; with a store sealed under a stray key, nothing is re-sealed.
    let stray = env.file("stray.json", &treez_config("sk_STRAY_SECRET"));
    let (ok, out, err) = with_key(
        KEY_STRAY,
        &[
            "store", "add", "--name", "Stray", "--vendor", "treez", "--config", &stray, "--json",
        ],
    );
    assert!(ok, "{err}");
    let stray_id = parsed(&out)["id"].as_i64().unwrap();
    let old_file = env.file("old.key", &format!("{KEY_B}\n"));
    let new_file = env.file("new.key", KEY_C);
    let rekey_b_to_c = [
        "store",
        "rekey",
        "--old-key-file",
        &old_file,
        "--new-key-file",
        &new_file,
    ];
    let (ok, out, err) = env.run(&rekey_b_to_c);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains(&format!(
            "store {stray_id} (\"Stray\"): its config does not open with the old key"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    for secret in ["SECRET", KEY_B, KEY_C] {
        assert!(!err.contains(secret), "{err}");
    }
    for &id in &stores {
        assert!(
            env.read_store(KEY_B, id).is_ok(),
            "store {id} is still under B"
        );
    }

    // The stray store given its credentials again (no need to open the old config), and then
    // B to C goes through.
    let (ok, _, err) = with_key(
        KEY_B,
        &["store", "update", &stray_id.to_string(), "--config", &stray],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = env.run(&rekey_b_to_c);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("re-sealed the configs of 3 stores"),
        "{out}"
    );
    for id in stores.iter().copied().chain([stray_id]) {
        assert!(env.read_store(KEY_C, id).is_ok(), "store {id} is under C");
    }
}

/// What a kiosk sees: a running server stops answering for a removed catalog within its store
/// cache's few seconds, with the contract's 404, and never serves it again.
#[test]
fn a_running_server_stops_serving_a_removed_catalog() {
    let secret = "z33ZVWv+sApO6IHw6h1hbFAAhjEXMfuYs7dAAemz7UU=";
    let mut env = Env::new();
    env.gateway = env.gateway.clone().env("POS_GATEWAY_JWT_SECRET", secret);
    let (ok, out, err) = env.run(&[
        "store", "add", "--name", "Elm", "--vendor", "local", "--json",
    ]);
    assert!(ok, "{err}");
    let store = parsed(&out)["id"].to_string();
    let (ok, _, err) = env.run(&["catalog", "add", "--store", &store, "--id", "kiosk-1"]);
    assert!(ok, "{err}");
    let (ok, token, err) = env.run(&["token", "--catalog", "kiosk-1"]);
    assert!(ok, "{err}");
    let serving = env.gateway.serve().unwrap();
    let url = format!("{}/api/v1/kiosk-1/customers", serving.url());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let get = || {
        runtime.block_on(async {
            let response = reqwest::Client::new()
                .get(&url)
                .bearer_auth(token.trim())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        })
    };
    assert_eq!(get().0, 200);

    let (ok, _, err) = env.run(&["catalog", "remove", "kiosk-1"]);
    assert!(ok, "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let answer = get();
        if answer.0 != 200 || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(answer, (404, json!({"error": "catalog not found"})));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(get().0, 404, "not served again once the cache is refreshed");
    drop(serving);
}
