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

const BIN: &str = env!("CARGO_BIN_EXE_pos-gateway");

/// A working directory of its own (where the SQLite default `pos-gateway.db` goes), and the
/// binary with none of the caller's `POS_GATEWAY_*` variables.
struct Env {
    dir: tempfile::TempDir,
    gateway: Gateway,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let gateway = Gateway::new(BIN)
            .current_dir(dir.path())
            .env("RUST_LOG", "warn");
        Self { dir, gateway }
    }

    fn command(&self) -> Command {
        self.gateway.command::<_, &str>([])
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = self.command().args(args).output().unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
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
/// from the page after the last one copied, waiting out a rate limit instead of failing. Run
/// for every vendor of the build, each against its double, with the real binary.
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
    let found = runtime.block_on(async {
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
                None => break ids.len(),
            }
        }
    });
    assert_eq!(found, SYNCED as usize, "{vendor}");

    // A finished sync starts over next time.
    let (ok, out, _) = run(&["sync", "--catalog", "kiosk", "--json"]);
    assert!(ok, "{vendor}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["copied"],
        SYNCED,
        "{vendor}"
    );
}
