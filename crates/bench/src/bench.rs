//! `cargo xtask bench`: each scenario against the gateway, and beside it, in the same run, the
//! baseline it is judged by.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use testkit::pg::TestDatabase;
use vendor_doubles::VendorDouble as _;
use vendor_doubles::treez::TreezDouble;
use vendor_doubles::{Fault, Op};

use crate::db;
use crate::gateway::{Gateway, Setup, free_address};
use crate::load::{self, Measured, connection, expect};
use crate::profile::Profile;
use crate::report;

pub struct Options {
    pub quick: bool,
    pub gateway_binary: PathBuf,
    /// A PostgreSQL server (any database on it); the bench makes a database of its own.
    pub admin_url: String,
    pub out: PathBuf,
    pub connections: usize,
    /// Run only the scenarios whose key (healthz, lookup, local, vendor, thousand) is listed.
    pub only: Vec<String>,
    /// A `perf` CPU profile of the gateway during each scenario (`<out>/profile-*.txt`).
    pub profile: bool,
    /// The Treez store's `max_in_flight`, when not the gateway's default.
    pub max_in_flight: Option<u16>,
}

/// One line of the table.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    pub name: String,
    pub gateway: Measured,
    pub baseline_name: String,
    pub baseline: Measured,
    /// Gateway throughput over the baseline's (for the wall-time scenarios: baseline time over
    /// the gateway's, so that higher is better everywhere).
    pub ratio: f64,
    /// The gateway's peak RSS once this scenario ended.
    pub peak_rss_mib: Option<f64>,
    /// The gateway process's CPU time per request it served in this scenario, in ms.
    pub gateway_cpu_ms_per_request: Option<f64>,
}

/// A target of the issue, as measured.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub what: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub mode: &'static str,
    pub load_generator: String,
    pub connections: usize,
    pub seeded_customers: u64,
    pub seed_seconds: f64,
    pub startup_ms: f64,
    pub peak_rss_mib: Option<f64>,
    pub scenarios: Vec<Scenario>,
    pub targets: Vec<Target>,
}

const LOCAL: &str = "bench-local";
const TREEZ: &str = "bench-treez";

pub async fn run(options: Options) -> anyhow::Result<()> {
    let seeded: u64 = if options.quick { 100_000 } else { 1_000_000 };
    let (warm_up, duration) = if options.quick {
        (Duration::from_millis(500), Duration::from_secs(2))
    } else {
        (Duration::from_secs(2), Duration::from_secs(10))
    };
    let timing = Timing { warm_up, duration };
    std::fs::create_dir_all(&options.out)?;
    let load_generator = describe_load_generator();
    println!("load generator: {load_generator}");

    // Dropped when the run ends (also on an error), after the gateway is stopped.
    let database = TestDatabase::create_on(&options.admin_url, "pos_gateway_bench").await?;
    let url = database.url().to_owned();
    let setup = Setup {
        binary: options.gateway_binary.clone(),
        // As the baselines reach it (plain TCP on loopback): with libpq's default `prefer`, the
        // gateway would encrypt every statement to a server on the same machine and be judged
        // against baselines that do not.
        database_url: plain_text(&url),
        env: vec![
            ("RUST_LOG".into(), "warn".into()),
            // The load comes from a few catalogs at rates no kiosk reaches: the gateway is
            // measured, not its per-kiosk budget.
            ("POS_GATEWAY_CATALOG_RATE".into(), "off".into()),
        ],
        log: options.out.join("gateway.log"),
    };
    let _ = std::fs::remove_file(&setup.log);
    setup.cli(&["migrate"])?;
    let local_store = setup.add_store(LOCAL, "local", None)?;
    let double = Arc::new(TreezDouble::start()?);
    let config_path = options.out.join("treez-store.json");
    let mut treez_config = double.unthrottled_store_config();
    if let (Some(cap), Some(config)) = (options.max_in_flight, treez_config.as_object_mut()) {
        config.insert("max_in_flight".into(), cap.into());
    }
    std::fs::write(&config_path, treez_config.to_string())?;
    if let Some(cap) = options.max_in_flight {
        println!("the Treez store's max_in_flight: {cap}");
    }
    let treez_store = setup.add_store(TREEZ, "treez", Some(&config_path))?;
    let token = setup.token()?;

    println!(
        "seeding {seeded} customers into the `local` store's mirror and {} into the Treez store's ...",
        seeded / 10
    );
    let began = Instant::now();
    // The Treez store has a history too, as a synced store has: seeded and analysed, so that
    // its duplicate checks are planned for a store of that size, not for an empty one (this
    // machine's server runs without autovacuum, which would re-analyse as the store grows).
    db::seed(&url, treez_store, false, seeded / 10).await?;
    db::seed(&url, local_store, true, seeded).await?;
    let seed_seconds = began.elapsed().as_secs_f64();
    println!("seeded in {seed_seconds:.1} s");

    let gateway = setup.start().await?;
    println!(
        "gateway (pid {}) started in {:.1} ms (process start to first /healthz 200)",
        gateway.pid(),
        gateway.startup.as_secs_f64() * 1000.0
    );
    let mut cpu_mark = gateway.cpu_seconds();
    let wanted = |key: &str| options.only.is_empty() || options.only.iter().any(|o| o == key);
    let profiler = |key: &str| {
        options
            .profile
            .then(|| Profile::start(gateway.pid(), &options.out, key))
            .transpose()
    };
    let floor = Floor::start()?;
    let c = options.connections;
    let mut scenarios = Vec::new();

    println!(
        "running scenarios, {} s each (+{} ms warm-up), {c} connections",
        duration.as_secs(),
        warm_up.as_millis()
    );
    if wanted("healthz") {
        let profile = profiler("healthz")?;
        scenarios.push(healthz(&gateway, &floor, c, &timing).await?);
        print_row(&mut scenarios, &gateway, &mut cpu_mark, profile)?;
    }
    if wanted("lookup") {
        let profile = profiler("lookup")?;
        scenarios.push(lookup(&gateway, &token, &url, local_store, seeded, c, &timing).await?);
        print_row(&mut scenarios, &gateway, &mut cpu_mark, profile)?;
    }
    if wanted("local") {
        let profile = profiler("local")?;
        scenarios.push(local_create(&gateway, &token, &url, local_store, c, &timing).await?);
        print_row(&mut scenarios, &gateway, &mut cpu_mark, profile)?;
    }
    let vendor = VendorTarget::new(&double).await?;
    if wanted("vendor") {
        let profile = profiler("vendor")?;
        scenarios.push(vendor_create(&gateway, &token, &vendor, c, &timing, "").await?);
        print_row(&mut scenarios, &gateway, &mut cpu_mark, profile)?;
    }
    // At one connection there is no queueing: the difference is what the gateway adds.
    if wanted("vendor") {
        let profile = profiler("vendor-1")?;
        scenarios
            .push(vendor_create(&gateway, &token, &vendor, 1, &timing, ", 1 connection").await?);
        print_row(&mut scenarios, &gateway, &mut cpu_mark, profile)?;
    }
    if wanted("get") {
        let profile = profiler("get")?;
        scenarios.push(vendor_get(&gateway, &token, &vendor, &double, &timing).await?);
        print_row(&mut scenarios, &gateway, &mut cpu_mark, profile)?;
    }
    if wanted("thousand") {
        let profile = profiler("thousand-creates")?;
        scenarios.push(thousand_creates(&gateway, &token, &vendor, &double, false).await?);
        print_row(&mut scenarios, &gateway, &mut cpu_mark, profile)?;
    }
    if wanted("thousand") {
        let profile = profiler("thousand-every")?;
        scenarios.push(thousand_creates(&gateway, &token, &vendor, &double, true).await?);
        print_row(&mut scenarios, &gateway, &mut cpu_mark, profile)?;
    }

    let peak_rss_mib = gateway.peak_rss_mib();
    let summary = Summary {
        mode: if options.quick { "quick" } else { "full" },
        load_generator,
        connections: c,
        seeded_customers: seeded,
        seed_seconds,
        startup_ms: gateway.startup.as_secs_f64() * 1000.0,
        peak_rss_mib,
        targets: targets(&scenarios, peak_rss_mib),
        scenarios,
    };
    drop(gateway);
    report::write(&summary, &options.out)?;
    Ok(())
}

/// `url` with `sslmode=disable`.
fn plain_text(url: &str) -> String {
    let join = if url.contains('?') { '&' } else { '?' };
    format!("{url}{join}sslmode=disable")
}

struct Timing {
    warm_up: Duration,
    duration: Duration,
}

fn print_row(
    scenarios: &mut [Scenario],
    gateway: &Gateway,
    cpu_mark: &mut Option<f64>,
    profile: Option<Profile>,
) -> anyhow::Result<()> {
    let cpu_now = gateway.cpu_seconds();
    if let Some(s) = scenarios.last_mut() {
        s.peak_rss_mib = gateway.peak_rss_mib();
        // The baseline runs while the gateway idles, so the scenario's CPU is the gateway's part.
        if let (Some(before), Some(after)) = (*cpu_mark, cpu_now) {
            s.gateway_cpu_ms_per_request =
                Some((after - before) * 1000.0 / (s.gateway.calls.max(1) as f64));
        }
        println!(
            "  {:<44} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms | {:<34} {:>9.0} req/s  p50 {:>7.2} ms  ratio {:.2}  rss {:.0} MiB  cpu {:.3} ms/req{}",
            s.name,
            s.gateway.rps,
            s.gateway.p50_ms,
            s.gateway.p99_ms,
            s.baseline_name,
            s.baseline.rps,
            s.baseline.p50_ms,
            s.ratio,
            s.peak_rss_mib.unwrap_or_default(),
            s.gateway_cpu_ms_per_request.unwrap_or_default(),
            if s.gateway.errors + s.baseline.errors > 0 {
                format!(
                    "  ERRORS {} / {}: {}",
                    s.gateway.errors,
                    s.baseline.errors,
                    s.gateway
                        .first_error
                        .as_deref()
                        .or(s.baseline.first_error.as_deref())
                        .unwrap_or_default()
                )
            } else {
                String::new()
            }
        );
    }
    *cpu_mark = cpu_now;
    if let Some(profile) = profile {
        println!("    profile: {}", profile.finish()?.display());
    }
    Ok(())
}

/// Which load generator is used, and why the others are not.
fn describe_load_generator() -> String {
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
    };
    let installed: Vec<&str> = ["wrk", "oha"].into_iter().filter(|t| on_path(t)).collect();
    let why = if installed.is_empty() {
        "wrk and oha are not installed".to_owned()
    } else {
        format!(
            "{} installed but not used: the SQL and vendor baselines cannot run under it, and \
             a scenario and its baseline must share one measuring tool",
            installed.join(" and ")
        )
    };
    format!(
        "built-in (reqwest on tokio, one keep-alive connection per worker, HDR histogram); {why}"
    )
}

/// The bare actix-web handler, in a child process.
struct Floor {
    child: Child,
    url: String,
}

impl Floor {
    fn start() -> anyhow::Result<Self> {
        let address = free_address()?;
        let child = Command::new(std::env::current_exe()?)
            .args(["floor", "--listen", &address.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        let began = Instant::now();
        while std::net::TcpStream::connect(address).is_err() {
            anyhow::ensure!(
                began.elapsed() < Duration::from_secs(10),
                "the floor server did not start"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Self {
            child,
            url: format!("http://{address}"),
        })
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scenario(name: &str, gateway: Measured, baseline_name: &str, baseline: Measured) -> Scenario {
    Scenario {
        name: name.to_owned(),
        ratio: gateway.rps / baseline.rps.max(1e-9),
        gateway,
        baseline_name: baseline_name.to_owned(),
        baseline,
        peak_rss_mib: None,
        gateway_cpu_ms_per_request: None,
    }
}

async fn healthz(
    gateway: &Gateway,
    floor: &Floor,
    c: usize,
    t: &Timing,
) -> anyhow::Result<Scenario> {
    let get = |url: String| {
        load::run(
            c,
            t.warm_up,
            t.duration,
            move |_| (connection(), url.clone()),
            |(client, url), _| expect(client.get(url.as_str()), 200),
        )
    };
    let ours = get(format!("{}/healthz", gateway.url())).await?;
    let floor = get(format!("{}/healthz", floor.url)).await?;
    Ok(scenario(
        "/healthz",
        ours,
        "bare actix-web JSON handler",
        floor,
    ))
}

/// Spreads look-ups over the seeded customers (a multiplicative hash, so consecutive requests
/// hit distant rows).
fn seeded_index(n: u64, seeded: u64) -> u64 {
    (n.wrapping_mul(2_654_435_761) % seeded) + 1
}

async fn lookup(
    gateway: &Gateway,
    token: &str,
    url: &str,
    store: i64,
    seeded: u64,
    c: usize,
    t: &Timing,
) -> anyhow::Result<Scenario> {
    let base = format!("{}/api/v1/{LOCAL}/customers?phone=", gateway.url());
    let token = token.to_owned();
    let ours = load::run(
        c,
        t.warm_up,
        t.duration,
        move |_| (connection(), base.clone(), token.clone()),
        move |(client, base, token), n| {
            let phone = db::seeded_phone(seeded_index(n, seeded));
            expect(client.get(format!("{base}{phone}")).bearer_auth(token), 200)
        },
    )
    .await?;
    let pool = db::pool(url, db::GATEWAY_POOL_SIZE)?;
    let direct = load::run(
        c,
        t.warm_up,
        t.duration,
        move |_| pool.clone(),
        move |pool, n| {
            let pool = pool.clone();
            async move {
                db::lookup_by_phone(&pool, store, &db::seeded_phone(seeded_index(n, seeded))).await
            }
        },
    )
    .await?;
    Ok(scenario(
        "look-up by phone, local, seeded mirror",
        ours,
        "same SELECT on PostgreSQL (16 conns)",
        direct,
    ))
}

fn new_customer(tag: &str, n: u64) -> String {
    json!({"customer": {
        "first_name": "Ann", "last_name": "Lee", "birthday": "1989-03-07",
        "email": format!("{tag}{n}@example.com"), "phone": format!("{}{n:09}", phone_prefix(tag)),
    }})
    .to_string()
}

/// A first digit per kind of create, so no two scenarios make the same phone.
fn phone_prefix(tag: &str) -> char {
    match tag {
        "local" => '3',
        "vendor" => '5',
        "direct" => '6',
        "slow" => '7',
        _ => '8',
    }
}

async fn local_create(
    gateway: &Gateway,
    token: &str,
    url: &str,
    store: i64,
    c: usize,
    t: &Timing,
) -> anyhow::Result<Scenario> {
    let endpoint = format!("{}/api/v1/{LOCAL}/customers", gateway.url());
    let token = token.to_owned();
    let ours = load::run(
        c,
        t.warm_up,
        t.duration,
        move |_| (connection(), endpoint.clone(), token.clone()),
        |(client, endpoint, token), n| {
            expect(
                client
                    .post(endpoint.as_str())
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(new_customer("local", n)),
                201,
            )
        },
    )
    .await?;
    let pool = db::pool(url, db::GATEWAY_POOL_SIZE)?;
    let direct = load::run(
        c,
        t.warm_up,
        t.duration,
        move |_| pool.clone(),
        move |pool, n| {
            let pool = pool.clone();
            async move { db::insert_customer(&pool, store, n).await }
        },
    )
    .await?;
    Ok(scenario(
        "create, local",
        ours,
        "same INSERT on PostgreSQL (16 conns)",
        direct,
    ))
}

/// The Treez double's create endpoint and a token for it, as the adapter would send them.
#[derive(Clone)]
struct VendorTarget {
    create_url: String,
    token: String,
    client_id: String,
}

impl VendorTarget {
    async fn new(double: &TreezDouble) -> anyhow::Result<Self> {
        let vendor = format!("{}/{}", double.base_url(), double.credentials().dispensary);
        let answer: Value = reqwest::Client::new()
            .post(format!("{vendor}/config/api/gettokens"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "client_id={}&apikey={}",
                double.credentials().client_id,
                double.credentials().api_key
            ))
            .send()
            .await?
            .json()
            .await?;
        Ok(Self {
            create_url: format!("{vendor}/customer/detailcustomer"),
            token: answer
                .get("access_token")
                .and_then(Value::as_str)
                .context("the double gave no token")?
                .to_owned(),
            client_id: double.credentials().client_id.clone(),
        })
    }

    /// What the adapter sends for [`new_customer`].
    fn body(tag: &str, n: u64) -> String {
        json!({
            "first_name": "Ann", "last_name": "Lee", "birthday": "1989-03-07",
            "patient_type": "ADULT", "email": format!("{tag}{n}@example.com"),
            "phone": format!("{}{n:09}", phone_prefix(tag)),
        })
        .to_string()
    }

    fn request(&self, client: &reqwest::Client, tag: &str, n: u64) -> reqwest::RequestBuilder {
        client
            .post(&self.create_url)
            .header("authorization", &self.token)
            .header("client_id", &self.client_id)
            .header("content-type", "application/json")
            .body(Self::body(tag, n))
    }
}

fn gateway_create(
    client: &reqwest::Client,
    gateway: &str,
    token: &str,
    tag: &str,
    n: u64,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{gateway}/api/v1/{TREEZ}/customers"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(new_customer(tag, n))
}

async fn vendor_create(
    gateway: &Gateway,
    token: &str,
    vendor: &VendorTarget,
    c: usize,
    t: &Timing,
    suffix: &str,
) -> anyhow::Result<Scenario> {
    let (url, token) = (gateway.url(), token.to_owned());
    // Distinct customers per run: the sequence restarts at 0 in every run.
    let offset = if c == 1 { 500_000_000 } else { 0 };
    let ours = load::run(
        c,
        t.warm_up,
        t.duration,
        move |_| (connection(), url.clone(), token.clone()),
        move |(client, url, token), n| {
            expect(
                gateway_create(client, url, token, "vendor", offset + n),
                201,
            )
        },
    )
    .await?;
    let vendor = vendor.clone();
    let direct = load::run(
        c,
        t.warm_up,
        t.duration,
        move |_| (connection(), vendor.clone()),
        move |(client, vendor), n| expect(vendor.request(client, "direct", offset + n), 200),
    )
    .await?;
    Ok(scenario(
        &format!("create via Treez adapter to its double{suffix}"),
        ours,
        "same create straight to the double",
        direct,
    ))
}

/// The pure proxy path, one connection: a customer by id through the gateway (token, store,
/// adapter, mirror copy) and straight from the double.
async fn vendor_get(
    gateway: &Gateway,
    token: &str,
    vendor: &VendorTarget,
    double: &TreezDouble,
    t: &Timing,
) -> anyhow::Result<Scenario> {
    let id = double.seed(
        json!({"first_name": "Ann", "last_name": "Lee", "birthday": "1989-03-07",
        "patient_type": "ADULT", "phone": "5551234567", "email": "ann@example.com"}),
    );
    let ours_url = format!("{}/api/v1/{TREEZ}/customers/{id}", gateway.url());
    let token = token.to_owned();
    let ours = load::run(
        1,
        t.warm_up,
        t.duration,
        move |_| (connection(), ours_url.clone(), token.clone()),
        |(client, url, token), _| expect(client.get(url.as_str()).bearer_auth(token), 200),
    )
    .await?;
    let direct_url = vendor.create_url.replace("detailcustomer", &id);
    let (vendor_token, client_id) = (vendor.token.clone(), vendor.client_id.clone());
    let direct = load::run(
        1,
        t.warm_up,
        t.duration,
        move |_| {
            (
                connection(),
                direct_url.clone(),
                vendor_token.clone(),
                client_id.clone(),
            )
        },
        |(client, url, token, client_id), _| {
            expect(
                client
                    .get(url.as_str())
                    .header("authorization", token)
                    .header("client_id", client_id),
                200,
            )
        },
    )
    .await?;
    Ok(scenario(
        "get by id via Treez adapter, 1 connection",
        ours,
        "same get straight to the double",
        direct,
    ))
}

/// 1,000 creates sent at once while the double takes 200 ms: to its creates only, or (`every`)
/// to every call, the duplicate searches included. The baseline is the 200 ms itself; the
/// table's "baseline" column shows the same 1,000 creates sent straight to the double.
async fn thousand_creates(
    gateway: &Gateway,
    token: &str,
    vendor: &VendorTarget,
    double: &TreezDouble,
    every: bool,
) -> anyhow::Result<Scenario> {
    const N: u64 = 1000;
    const WAIT: Duration = Duration::from_millis(200);
    let tag = if every { "slow" } else { "other" };
    let client = reqwest::Client::builder()
        .http1_only()
        .timeout(Duration::from_secs(120))
        .build()?;
    let slow = |double: &TreezDouble| {
        if every {
            double.set_latency(WAIT);
        } else {
            double.fail(Op::Create, Fault::Delay(WAIT), 100_000);
        }
    };
    let all_at_once = |requests: Vec<reqwest::RequestBuilder>, status: u16| async move {
        let began = Instant::now();
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|request| {
                tokio::spawn(async move {
                    let sent = Instant::now();
                    (expect(request, status).await, sent.elapsed())
                })
            })
            .collect();
        let mut histogram = load::histogram()?;
        let (mut errors, mut first_error) = (0, None);
        for task in tasks {
            let (result, took) = task.await?;
            let _ = histogram.record(u64::try_from(took.as_micros().max(1)).unwrap_or(u64::MAX));
            if let Err(e) = result {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
        anyhow::Ok(Measured::from_histogram(
            &histogram,
            errors,
            began.elapsed(),
            first_error,
        ))
    };
    slow(double);
    let url = gateway.url();
    let ours = all_at_once(
        (0..N)
            .map(|n| gateway_create(&client, &url, token, tag, 900_000_000 + n))
            .collect(),
        201,
    )
    .await?;
    let direct = all_at_once(
        (0..N)
            .map(|n| {
                vendor.request(
                    &client,
                    "direct",
                    900_000_000 + n + if every { N } else { 0 },
                )
            })
            .collect(),
        200,
    )
    .await?;
    double.heal();
    double.set_latency(Duration::ZERO);
    let name = if every {
        "1,000 creates at once, every double call 200 ms"
    } else {
        "1,000 creates at once, double creates take 200 ms"
    };
    Ok(Scenario {
        name: name.to_owned(),
        ratio: WAIT.as_secs_f64() / ours.seconds.max(1e-9),
        gateway: ours,
        baseline_name: "the same 1,000 straight to the double".to_owned(),
        baseline: direct,
        peak_rss_mib: None,
        gateway_cpu_ms_per_request: None,
    })
}

fn targets(scenarios: &[Scenario], peak_rss_mib: Option<f64>) -> Vec<Target> {
    let find = |prefix: &str| scenarios.iter().find(|s| s.name.starts_with(prefix));
    let mut targets = Vec::new();
    let mut ratio = |what: &str, prefix: &str, at_least: f64| {
        if let Some(s) = find(prefix) {
            targets.push(Target {
                what: what.to_owned(),
                target: format!(">= {at_least} of baseline req/s"),
                measured: format!("{:.2}", s.ratio),
                met: s.ratio >= at_least,
            });
        }
    };
    // Issue 15's targets.
    ratio("look-up by phone", "look-up", 0.8);
    ratio("create on local", "create, local", 0.6);
    if let Some(cpu) = scenarios
        .iter()
        .find(|s| s.name == "create via Treez adapter to its double")
        .and_then(|s| s.gateway_cpu_ms_per_request)
    {
        targets.push(Target {
            what: "Treez create, gateway CPU per request (64 connections)".into(),
            target: "<= 0.35 ms".into(),
            measured: format!("{cpu:.3} ms"),
            met: cpu <= 0.35,
        });
    }
    if let Some(s) = find("get by id via Treez adapter, 1 connection") {
        let p50 = s.gateway.p50_ms - s.baseline.p50_ms;
        let p99 = s.gateway.p99_ms - s.baseline.p99_ms;
        targets.push(Target {
            what: "vendor proxy overhead p50 (get by id, 1 connection)".into(),
            target: "<= 0.3 ms".into(),
            measured: format!("{p50:.3} ms"),
            met: p50 <= 0.3,
        });
        targets.push(Target {
            what: "vendor proxy overhead p99 (get by id, 1 connection)".into(),
            target: "<= 1 ms".into(),
            measured: format!("{p99:.3} ms"),
            met: p99 <= 1.0,
        });
    }
    for s in scenarios.iter().filter(|s| s.name.starts_with("1,000")) {
        let (wall_ms, direct_ms) = (s.gateway.seconds * 1000.0, s.baseline.seconds * 1000.0);
        let times = wall_ms / direct_ms.max(f64::EPSILON);
        targets.push(Target {
            what: format!("wall time: {}", s.name),
            target: "<= 1.5 x the same sent straight to the double".into(),
            measured: format!("{wall_ms:.0} ms against {direct_ms:.0} ms ({times:.2} x)"),
            met: times <= 1.5,
        });
    }
    if let Some(rss) = peak_rss_mib {
        targets.push(Target {
            what: "gateway peak RSS".into(),
            target: "< 64 MiB".into(),
            measured: format!("{rss:.1} MiB"),
            met: rss < 64.0,
        });
    }
    targets
}
