//! `cargo xtask chaos`: the gateway under vendor faults and load, killed mid-create, with its
//! PostgreSQL taken away, and as three replicas on one database; each step fails the run when
//! the gateway does not hold up.

mod replicas;

pub use replicas::replicas;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use testkit::pg::TestDatabase;
use vendor_doubles::VendorDouble as _;
use vendor_doubles::treez::TreezDouble;
use vendor_doubles::{Fault, Op};

use crate::gateway::{Gateway, Setup};
use crate::load::connection;

pub struct Options {
    pub gateway_binary: PathBuf,
    pub database_url: String,
    pub out: PathBuf,
}

/// The vendor timeout the chaos gateway runs with: short, so slow faults finish quickly.
const POS_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a create may take: the vendor timeout for the token and the create, the
/// reconcile pause and its searches (docs/architecture.md), and a second of slack.
const CREATE_BOUND: Duration = Duration::from_secs(2 * 2 + 1 + 2 + 1);
/// The longest a search may take: the vendor timeout (retries included) and slack.
const SEARCH_BOUND: Duration = Duration::from_secs(2 + 2 + 1);

fn setup(options: &Options, url: String, log: &str) -> Setup {
    Setup {
        binary: options.gateway_binary.clone(),
        database_url: url,
        env: vec![
            ("RUST_LOG".into(), "warn".into()),
            // 16 connections on one catalog: the faults' statuses are checked, not the
            // per-kiosk budget's 429.
            ("POS_GATEWAY_CATALOG_RATE".into(), "off".into()),
            (
                "POS_GATEWAY_POS_TIMEOUT".into(),
                format!("{}s", POS_TIMEOUT.as_secs()),
            ),
        ],
        log: options.out.join(log),
    }
}

/// What a request got, for the per-fault table.
#[derive(Default)]
struct Tally {
    /// (operation, status or "error") -> count
    counts: BTreeMap<(String, String), u64>,
    slowest: BTreeMap<String, Duration>,
    violations: Vec<String>,
}

/// A fault's name, where the double applies it, and the statuses allowed for creates and for
/// searches while it lasts.
type FaultCase = (
    &'static str,
    Op,
    Fault,
    &'static [&'static str],
    &'static [&'static str],
);

/// Every vendor fault in turn, under load: each answer must be one the contract gives for it,
/// within the bound; afterwards the gateway's sockets and memory must be back where they were.
pub async fn faults(options: &Options) -> anyhow::Result<()> {
    let database = TestDatabase::create_on(&options.database_url, "pos_gateway_chaos").await?;
    let url = database.url().to_owned();
    let setup = setup(options, url, "chaos-faults.log");
    let _ = std::fs::remove_file(&setup.log);
    setup.cli(&["migrate"])?;
    let double = Arc::new(TreezDouble::start()?);
    let config = options.out.join("chaos-treez.json");
    std::fs::write(&config, double.unthrottled_store_config().to_string())?;
    setup.add_store("chaos-treez", "treez", Some(&config))?;
    let token = setup.token()?;
    let gateway = setup.start().await?;

    // Warm up with healthy traffic (connections, pools, token), then take the resting level.
    let healthy = storm(&gateway, &token, "healthy", Duration::from_secs(2)).await?;
    check(&healthy, &[("create", &["201"]), ("search", &["200"])])?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (fds_before, rss_before) = (gateway.open_fds(), gateway.rss_mib());
    println!(
        "resting: {} open descriptors, RSS {:.1} MiB",
        fds_before.unwrap_or_default(),
        rss_before.unwrap_or_default()
    );

    // Statuses the contract allows under each fault. 503 is always allowed once the circuit
    // breaker has opened (5 failures), searches may be answered from the mirror (200).
    let cases: Vec<FaultCase> = vec![
        (
            "401 from the vendor",
            Op::Any,
            Fault::Unauthorized,
            &["502", "503"],
            &["502", "503"],
        ),
        (
            "422 on creates",
            Op::Create,
            Fault::Invalid,
            &["422", "502", "503"],
            &["200"],
        ),
        (
            "429 + Retry-After",
            Op::Any,
            Fault::RateLimited {
                retry_after: "1".into(),
            },
            &["503"],
            &["200"],
        ),
        ("500", Op::Any, Fault::Status(500), &["503"], &["200"]),
        ("503", Op::Any, Fault::Status(503), &["503"], &["200"]),
        (
            "timeout (3 s)",
            Op::Any,
            Fault::Delay(Duration::from_secs(3)),
            &["503", "504"],
            &["200"],
        ),
        (
            "garbage body",
            Op::Any,
            Fault::Garbage,
            &["502", "503"],
            &["200", "502", "503"],
        ),
        (
            "8 MiB body",
            Op::Any,
            Fault::Huge(8 << 20),
            &["502", "503"],
            &["200", "502", "503"],
        ),
        (
            "reset mid-body",
            Op::Any,
            Fault::ResetMidBody,
            &["502", "503", "504"],
            &["200", "502", "503"],
        ),
    ];
    let mut failures = Vec::new();
    println!(
        "\n{:<22} {:<8} statuses (count)                          slowest",
        "fault", "request"
    );
    for (name, op, fault, create_ok, search_ok) in cases {
        double.fail(op, fault, u32::MAX);
        let tally = storm(&gateway, &token, name, Duration::from_secs(4)).await?;
        double.heal();
        print_tally(name, &tally);
        if let Err(e) = check(&tally, &[("create", create_ok), ("search", search_ok)]) {
            failures.push(format!("{name}: {e:#}"));
        }
        // Let the circuit breaker close again (30 s open, then a half-open probe) so that each
        // fault meets a closed circuit.
        recover(&gateway, &token).await?;
    }

    // Idle keep-alive connections from the load are gone once our clients are dropped; give
    // the gateway a moment to see them close.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (fds_after, rss_after) = (gateway.open_fds(), gateway.rss_mib());
    println!(
        "\nafter every fault: {} open descriptors (resting: {}), RSS {:.1} MiB (resting: {:.1} MiB)",
        fds_after.unwrap_or_default(),
        fds_before.unwrap_or_default(),
        rss_after.unwrap_or_default(),
        rss_before.unwrap_or_default()
    );
    if let (Some(before), Some(after)) = (fds_before, fds_after)
        && after > before + 8
    {
        failures.push(format!(
            "descriptors leaked: {before} before, {after} after"
        ));
    }
    if let (Some(before), Some(after)) = (rss_before, rss_after)
        && after > before + 32.0
    {
        failures.push(format!(
            "memory grew: {before:.1} MiB before, {after:.1} MiB after"
        ));
    }
    let log = std::fs::read_to_string(&setup.log).unwrap_or_default();
    if log.contains("panicked") {
        failures.push(format!("the gateway panicked; see {}", setup.log.display()));
    }
    for secret in [
        &double.credentials().api_key,
        &double.credentials().client_id,
    ] {
        if log.contains(secret.as_str()) {
            failures.push("the gateway's log holds a vendor credential".into());
        }
    }
    if failures.is_empty() {
        println!("faults: every answer was the contract's, in time; nothing leaked");
        Ok(())
    } else {
        bail!("faults:\n  {}", failures.join("\n  "))
    }
}

/// Waits until a search and a create go through again (the breaker closed).
async fn recover(gateway: &Gateway, token: &str) -> anyhow::Result<()> {
    let client = connection();
    let began = Instant::now();
    let mut n = 0u64;
    loop {
        n += 1;
        let response = client
            .post(format!("{}/api/v1/chaos-treez/customers", gateway.url()))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(create_body(8_000_000 + n + rand_offset()))
            .send()
            .await?;
        if response.status().as_u16() == 201 {
            return Ok(());
        }
        ensure!(
            began.elapsed() < Duration::from_secs(90),
            "the gateway did not recover within 90 s of the fault ending"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn rand_offset() -> u64 {
    u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
            % 1_000_000,
    ) * 10
}

fn create_body(n: u64) -> String {
    json!({"customer": {"first_name": "Ann", "last_name": "Lee", "birthday": "1989-03-07",
        "email": format!("chaos{n}@example.com"), "phone": format!("7{:09}", n % 1_000_000_000)}})
    .to_string()
}

/// 16 connections for `duration`, half creating, half searching by phone.
async fn storm(
    gateway: &Gateway,
    token: &str,
    _name: &str,
    duration: Duration,
) -> anyhow::Result<Tally> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop_at = Instant::now() + duration;
    let base = rand_offset() * 100;
    let mut workers = Vec::new();
    for worker in 0..16u64 {
        let (client, url, token, tally) =
            (connection(), gateway.url(), token.to_owned(), tally.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < stop_at {
                n += 1;
                let id = base + worker * 1_000_000 + n;
                let (kind, request, bound) = if worker % 2 == 0 {
                    (
                        "create",
                        client
                            .post(format!("{url}/api/v1/chaos-treez/customers"))
                            .bearer_auth(&token)
                            .header("content-type", "application/json")
                            .body(create_body(id)),
                        CREATE_BOUND,
                    )
                } else {
                    (
                        "search",
                        client
                            .get(format!(
                                "{url}/api/v1/chaos-treez/customers?phone=7{:09}",
                                id % 1_000_000_000
                            ))
                            .bearer_auth(&token),
                        SEARCH_BOUND,
                    )
                };
                let began = Instant::now();
                let outcome = request.send().await;
                let (status, problem) = match outcome {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let retry_after = response.headers().contains_key("retry-after");
                        let body: Result<Value, _> = response.json().await;
                        let problem = match body {
                            Err(e) => Some(format!("{kind} {status}: body is not JSON: {e}")),
                            Ok(_) if status == 503 && !retry_after => {
                                Some(format!("{kind} 503 without Retry-After"))
                            }
                            Ok(_) => None,
                        };
                        (status.to_string(), problem)
                    }
                    Err(e) => ("error".to_owned(), Some(format!("{kind}: {e:#}"))),
                };
                let took = began.elapsed();
                let mut t = tally
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *t.counts.entry((kind.to_owned(), status)).or_default() += 1;
                let slowest = t.slowest.entry(kind.to_owned()).or_default();
                *slowest = (*slowest).max(took);
                if took > bound {
                    t.violations
                        .push(format!("{kind} took {took:?} (bound {bound:?})"));
                }
                if let Some(problem) = problem {
                    t.violations.push(problem);
                }
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let tally = Arc::try_unwrap(tally)
        .map_err(|_| anyhow::anyhow!("workers still hold the tally"))?
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(tally)
}

fn print_tally(name: &str, tally: &Tally) {
    for kind in ["create", "search"] {
        let statuses: Vec<String> = tally
            .counts
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((_, status), n)| format!("{status} ({n})"))
            .collect();
        println!(
            "{:<22} {:<8} {:<40} {:>7.0} ms",
            if kind == "create" { name } else { "" },
            kind,
            statuses.join(", "),
            tally
                .slowest
                .get(kind)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        );
    }
}

fn check(tally: &Tally, allowed: &[(&str, &[&str])]) -> anyhow::Result<()> {
    let mut problems: Vec<String> = tally.violations.iter().take(5).cloned().collect();
    for ((kind, status), n) in &tally.counts {
        let ok = allowed
            .iter()
            .find(|(k, _)| k == kind)
            .is_some_and(|(_, statuses)| statuses.contains(&status.as_str()));
        if !ok {
            problems.push(format!("{n} {kind} answered {status}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("; "))
    }
}

/// SIGKILL while creates are in flight, restart: every customer the vendor created must reach
/// the mirror (the outbox's recovery), and none twice.
pub async fn kill(options: &Options) -> anyhow::Result<()> {
    let database = TestDatabase::create_on(&options.database_url, "pos_gateway_chaos_kill").await?;
    let url = database.url().to_owned();
    let setup = setup(options, url.clone(), "chaos-kill.log");
    let _ = std::fs::remove_file(&setup.log);
    setup.cli(&["migrate"])?;
    let double = Arc::new(TreezDouble::start()?);
    let config = options.out.join("chaos-treez.json");
    std::fs::write(&config, double.unthrottled_store_config().to_string())?;
    let store = setup.add_store("chaos-kill", "treez", Some(&config))?;
    let token = setup.token()?;
    let gateway = setup.start().await?;

    // The double creates at once but holds every answer for 5 s: the gateway dies between the
    // vendor's create and its own mirror write.
    double.fail(
        Op::Create,
        Fault::AfterCommit(Box::new(Fault::Delay(Duration::from_secs(5)))),
        u32::MAX,
    );
    const N: u64 = 200;
    let client = reqwest::Client::new();
    let mut requests = Vec::new();
    for n in 0..N {
        let request = client
            .post(format!("{}/api/v1/chaos-kill/customers", gateway.url()))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(create_body(5_000_000 + n));
        requests.push(tokio::spawn(async move {
            request.send().await.map(|r| r.status().as_u16())
        }));
    }
    let began = Instant::now();
    while (double.count(Op::Create) as u64) < N && began.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.kill9();
    for request in requests {
        let _ = request.await;
    }
    double.heal();
    let at_vendor = customer_ids(&double);
    let mirrored_before = mirrored(&url, store, &at_vendor).await?;
    println!(
        "killed with {} creates at the vendor, {} of them in the mirror",
        at_vendor.len(),
        mirrored_before
    );
    ensure!(
        mirrored_before < at_vendor.len(),
        "every create was mirrored before the kill: the step proves nothing"
    );
    let restarted = Instant::now();
    let gateway = setup.start().await?;
    loop {
        let now_mirrored = mirrored(&url, store, &at_vendor).await?;
        if now_mirrored == at_vendor.len() {
            println!(
                "restarted: all {} in the mirror {:.1} s after the restart",
                at_vendor.len(),
                restarted.elapsed().as_secs_f64()
            );
            break;
        }
        ensure!(
            restarted.elapsed() < Duration::from_secs(60),
            "only {now_mirrored} of {} customers in the mirror 60 s after the restart",
            at_vendor.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ensure!(
        double.customers().len() == at_vendor.len(),
        "the restarted gateway created customers at the vendor"
    );
    drop(gateway);
    Ok(())
}

/// The ids of the customers a Treez double holds.
pub(crate) fn customer_ids(double: &TreezDouble) -> Vec<String> {
    double
        .customers()
        .iter()
        .filter_map(|c| {
            c.get("customer_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn mirrored(url: &str, store: i64, ids: &[String]) -> anyhow::Result<usize> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM customers WHERE store_id = $1 AND pos_customer_id = ANY(string_to_array($2, ','))",
    )
    .bind::<BigInt, _>(store)
    .bind::<Text, _>(ids.join(","))
    .get_result(&mut conn)
    .await?;
    Ok(usize::try_from(count.n)?)
}

/// PostgreSQL stopped under load: `/readyz` and the API must answer 503 in time (no hang), and
/// the gateway must recover once it is back, without a restart.
pub async fn pg_outage(options: &Options, stop: &str, start: &str) -> anyhow::Result<()> {
    let database = TestDatabase::create_on(&options.database_url, "pos_gateway_chaos_pg").await?;
    let url = database.url().to_owned();
    let setup = setup(options, url, "chaos-pg.log");
    let _ = std::fs::remove_file(&setup.log);
    setup.cli(&["migrate"])?;
    setup.add_store("chaos-local", "local", None)?;
    let token = setup.token()?;
    let gateway = setup.start().await?;
    let client = connection();
    let api = format!("{}/api/v1/chaos-local/customers", gateway.url());
    let ready = format!("{}/readyz", gateway.url());
    let created = client
        .post(&api)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(create_body(1))
        .send()
        .await?;
    ensure!(
        created.status().as_u16() == 201,
        "create before the outage: {}",
        created.status()
    );

    shell(stop).context("stopping PostgreSQL")?;
    let stopped = Instant::now();
    println!("PostgreSQL stopped");
    // Every request during the outage: answered (no hang) within the pool's wait (5 s) and slack.
    let bound = Duration::from_secs(7);
    let (mut ready_503, mut api_503) = (None, None);
    while stopped.elapsed() < Duration::from_secs(12) {
        for (what, request) in [
            ("readyz", client.get(&ready)),
            (
                "api",
                client
                    .get(format!("{api}?phone=7000000001"))
                    .bearer_auth(&token),
            ),
        ] {
            let began = Instant::now();
            let response = tokio::time::timeout(Duration::from_secs(30), request.send())
                .await
                .map_err(|_| anyhow::anyhow!("{what} hung for 30 s with PostgreSQL down"))??;
            let took = began.elapsed();
            let status = response.status().as_u16();
            ensure!(
                took <= bound,
                "{what} took {took:?} with PostgreSQL down (bound {bound:?})"
            );
            ensure!(
                matches!(status, 503 | 200),
                "{what} answered {status} with PostgreSQL down"
            );
            if status == 503 {
                let first = if what == "readyz" {
                    &mut ready_503
                } else {
                    &mut api_503
                };
                first.get_or_insert(stopped.elapsed());
            }
        }
    }
    let ready_503 = ready_503.context("/readyz never answered 503 with PostgreSQL down")?;
    let api_503 = api_503.context("the API never answered 503 with PostgreSQL down")?;
    println!(
        "down: /readyz 503 after {:.1} s, API 503 after {:.1} s, every answer within {bound:?}",
        ready_503.as_secs_f64(),
        api_503.as_secs_f64()
    );

    shell(start).context("starting PostgreSQL")?;
    let started = Instant::now();
    let mut last;
    loop {
        let ready_now = describe(client.get(&ready).send().await).await;
        let api_now = describe(
            client
                .get(format!("{api}?phone=7000000001"))
                .bearer_auth(&token)
                .send()
                .await,
        )
        .await;
        let (ready_ok, api_ok) = (ready_now.starts_with("200"), api_now.starts_with("200"));
        last = format!("/readyz: {ready_now}; API: {api_now}");
        if ready_ok && api_ok {
            println!(
                "PostgreSQL back: ready and answering {:.1} s later, same gateway process",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "the gateway did not recover within 30 s of PostgreSQL's return: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(gateway);
    Ok(())
}

async fn describe(response: Result<reqwest::Response, reqwest::Error>) -> String {
    match response {
        Ok(r) => format!(
            "{} {}",
            r.status().as_u16(),
            r.text().await.unwrap_or_default()
        ),
        Err(e) => format!("{e:#}"),
    }
}

fn shell(line: &str) -> anyhow::Result<()> {
    let output = std::process::Command::new("sh")
        .args(["-c", line])
        .output()?;
    ensure!(
        output.status.success(),
        "`{line}`: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}
