//! `chaos replicas` (issue 14): three `pos-gateway serve` processes on one PostgreSQL database,
//! as replicas behind a load balancer, the load spread over all three. What the replicas share
//! through the database (each store's vendor budget and token, idempotency claims, create
//! locks, the create journal's recovery leases, the sync leases) must hold across processes, as
//! the in-process tests (`crates/http-api/tests/api/replicas.rs` and others) show it does within
//! one.
//!
//! Every Treez store of the step has a double of its own, so each figure is one store's alone;
//! every double must have seen exactly one token fetch, whichever replicas called it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{Value, json};
use testkit::pg::TestDatabase;
use vendor_doubles::treez::TreezDouble;
use vendor_doubles::{Fault, Op, SeedCustomer, VendorDouble as _};

use super::{Count, Options, create_body, mirrored, rand_offset, setup};
use crate::gateway::{Gateway, Setup};
use crate::load::connection;

const REPLICAS: usize = 3;
/// The budget store's limit: low, so that the load outruns it many times over.
const LIMIT_PER_MINUTE: u32 = 120;
/// What the gateway lets go at once under a store's own `rate_limit_per_minute`: a tenth of
/// it (`RateQuota::new`). A store config cannot set the burst itself.
const BURST: u32 = LIMIT_PER_MINUTE.div_ceil(10);
/// Long enough that some window is a whole minute, which is how the vendor counts.
const BUDGET_LOAD: Duration = Duration::from_secs(62);
/// Calls take different times from the budget's grant (by PostgreSQL's clock) to their arrival
/// at the double (a new connection, the gateway's scheduling), so a window measured at the
/// double may be shorter than the one their grants fell in: a run saw 13 calls within 0.499 s
/// at the double, the burst and the next call granted an interval (0.5 s) apart.
const ARRIVAL_SLACK: Duration = Duration::from_millis(100);
const SYNC_INTERVAL: Duration = Duration::from_secs(3);
const SYNC_INTERVALS_WATCHED: u32 = 4;
/// Three pages of the Treez list (50 a page), so a pass is more than one call.
const SYNC_SEEDED: u32 = 120;
/// How long the idempotency and duplicate doubles take to answer anything: every request is in
/// flight while the first is still at the vendor.
const VENDOR_LATENCY: Duration = Duration::from_millis(400);
/// Creates in flight on the replica that is killed.
const KILLED_CREATES: u64 = 40;
/// How long the kill's double holds its answers once it has created the customer: past the
/// gateway's POS timeout, so the victim is still waiting when it dies.
const HELD_ANSWER: Duration = Duration::from_secs(5);

/// A Treez store with a double only it talks to.
struct TreezStore {
    name: &'static str,
    id: i64,
    double: TreezDouble,
}

impl TreezStore {
    /// Adds the store (and its catalog, of the same name) with `rate_limit_per_minute` set to
    /// `limit` (`None`: the limiter off).
    fn add(
        setup: &Setup,
        out: &Path,
        name: &'static str,
        limit: Option<u32>,
    ) -> anyhow::Result<Self> {
        let double = TreezDouble::start()?;
        let mut config = double.store_config();
        config
            .as_object_mut()
            .context("the double's store config is not an object")?
            .insert(
                "rate_limit_per_minute".into(),
                limit.map_or(Value::Null, Value::from),
            );
        let path = out.join(format!("chaos-{name}.json"));
        std::fs::write(&path, config.to_string())?;
        let id = setup.add_store(name, "treez", Some(&path))?;
        Ok(Self { name, id, double })
    }

    fn customers_url(&self, gateway: &Gateway) -> String {
        format!("{}/api/v1/{}/customers", gateway.url(), self.name)
    }

    /// List calls that began a pass over the store's customers: the first page, whatever time
    /// the path asks for changes from.
    fn list_passes(&self) -> Vec<Instant> {
        self.double
            .calls()
            .iter()
            .filter(|c| {
                c.path.contains("/customer/lastUpdated/after/") && c.path.contains("/page/1/")
            })
            .map(|c| c.at)
            .collect()
    }
}

/// One answer of the gateway, as the checks need it.
struct Answer {
    replica: usize,
    status: u16,
    retry_after: Option<String>,
    /// `X-Data-Source`: `pos` for a live answer, `mirror` when the POS could not be asked.
    source: Option<String>,
    body: String,
    /// From sending to the whole answer.
    took: Duration,
}

impl Answer {
    /// Sends `request` to replica `replica` and reads what comes back.
    async fn of(replica: usize, request: reqwest::RequestBuilder) -> Self {
        let sent = Instant::now();
        let response = request.send().await;
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let (retry_after, source) = (header("retry-after"), header("x-data-source"));
                let body = response.text().await.unwrap_or_default();
                Self {
                    replica,
                    status,
                    retry_after,
                    source,
                    body,
                    took: sent.elapsed(),
                }
            }
            Err(e) => Self {
                replica,
                status: 0,
                retry_after: None,
                source: None,
                body: format!("{e:#}"),
                took: sent.elapsed(),
            },
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends every request at once (each from a task of its own) and returns the answers in order.
async fn at_once(requests: Vec<(usize, reqwest::RequestBuilder)>) -> anyhow::Result<Vec<Answer>> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(replica, request)| tokio::spawn(Answer::of(replica, request)))
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await?);
    }
    Ok(answers)
}

/// The quickest and slowest answer's time (`1.21-1.30 s`): the requests overlapped when every
/// one took about as long as the vendor's calls for one create.
fn answered_in(answers: &[Answer]) -> String {
    let times = answers.iter().map(|a| a.took.as_secs_f64());
    let quickest = times.clone().fold(f64::INFINITY, f64::min);
    let slowest = times.fold(0.0, f64::max);
    format!("{quickest:.2}-{slowest:.2} s")
}

/// Three replicas, then each scenario, each asserting and printing its figures; then no
/// replica's log may hold a panic.
pub async fn replicas(options: &Options) -> anyhow::Result<()> {
    let mut logs = Vec::new();
    let outcome = scenarios(options, &mut logs).await;
    println!(
        "logs: {} (chaos-replicas-sync-*.log, chaos-replicas-replica-*.log)",
        options.out.display()
    );
    let panicked: Vec<String> = logs
        .iter()
        .filter(|log| std::fs::read_to_string(log).is_ok_and(|text| text.contains("panicked")))
        .map(|log| log.display().to_string())
        .collect();
    outcome?;
    ensure!(
        panicked.is_empty(),
        "replicas: a replica panicked; see {}",
        panicked.join(", ")
    );
    println!("replicas: every property held across three processes");
    Ok(())
}

async fn scenarios(options: &Options, logs: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let database =
        TestDatabase::create_on(&options.database_url, "pos_gateway_chaos_replicas").await?;
    let url = database.url().to_owned();
    let admin = setup(options, url.clone(), "chaos-replicas-admin.log");
    admin.cli(&["migrate"])?;
    let token = admin.token()?;

    // The scheduled sync runs in replicas of its own, started with the interval set: in the
    // others it would copy the kill's customers into the mirror before recovery could.
    let sync_store = TreezStore::add(&admin, &options.out, "rep-sync", None)?;
    for n in 1..=SYNC_SEEDED {
        sync_store.double.seed_customer(&SeedCustomer::numbered(n));
    }
    let interval = duration_text(SYNC_INTERVAL);
    let syncing = start(
        options,
        &admin,
        "sync",
        &[("POS_GATEWAY_SYNC_INTERVAL", interval.as_str())],
        logs,
    )
    .await?;
    sync_once_per_interval(&syncing, &sync_store, &url).await?;
    for mut gateway in syncing {
        gateway
            .terminate(Duration::from_secs(15))
            .context("stopping a syncing replica")?;
    }

    let budget = TreezStore::add(&admin, &options.out, "rep-budget", Some(LIMIT_PER_MINUTE))?;
    let idempotent = TreezStore::add(&admin, &options.out, "rep-idempotency", None)?;
    idempotent.double.set_latency(VENDOR_LATENCY);
    let duplicates = TreezStore::add(&admin, &options.out, "rep-duplicates", None)?;
    duplicates.double.set_latency(VENDOR_LATENCY);
    let kill = TreezStore::add(&admin, &options.out, "rep-kill", None)?;
    let gateways = start(options, &admin, "replica", &[], logs).await?;

    let budget_began = ClockMark::now();
    one_token_for_a_cold_store(&gateways, &budget, &token).await?;
    budget_holds(&gateways, &budget, &token, budget_began, &options.out).await?;
    one_key_one_create(&gateways, &idempotent, &token).await?;
    one_person_one_create(&gateways, &duplicates, &token).await?;
    let survivors = kill_one(gateways, &kill, &token, &url).await?;

    let mut failures = Vec::new();
    println!("\ntoken fetches per store, across every replica that called it:");
    for store in [&sync_store, &budget, &idempotent, &duplicates, &kill] {
        let fetches = store.double.count(Op::Token);
        println!("  {:<16} {fetches}", store.name);
        if fetches != 1 {
            failures.push(format!("{}: {fetches} token fetches, not one", store.name));
        }
    }
    println!(
        "memory: {}",
        survivors
            .iter()
            .enumerate()
            .map(|(i, g)| format!(
                "replica-{} peak RSS {:.1} MiB",
                i + 1,
                g.peak_rss_mib().unwrap_or_default()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    drop(survivors);
    if !failures.is_empty() {
        bail!("replicas:\n  {}", failures.join("\n  "));
    }
    Ok(())
}

/// `3s` for 3 seconds, as `POS_GATEWAY_SYNC_INTERVAL` reads it.
fn duration_text(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}

/// Starts `REPLICAS` gateways named `{prefix}-1`... on `admin`'s database, each with a log of
/// its own (its path added to `logs`).
async fn start(
    options: &Options,
    admin: &Setup,
    prefix: &str,
    extra: &[(&str, &str)],
    logs: &mut Vec<PathBuf>,
) -> anyhow::Result<Vec<Gateway>> {
    let mut gateways = Vec::with_capacity(REPLICAS);
    for n in 1..=REPLICAS {
        let name = format!("{prefix}-{n}");
        let mut setup = admin.clone();
        setup.log = options.out.join(format!("chaos-replicas-{name}.log"));
        let _ = std::fs::remove_file(&setup.log);
        // Recovery passes and syncs log at info: the log says which replica did them.
        setup.env.retain(|(key, _)| key != "RUST_LOG");
        setup.env.extend([
            ("RUST_LOG".to_owned(), "warn,http_api=info".to_owned()),
            ("POS_GATEWAY_REPLICA".to_owned(), name.clone()),
            ("POS_GATEWAY_REPLICAS".to_owned(), REPLICAS.to_string()),
        ]);
        setup.env.extend(
            extra
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
        );
        logs.push(setup.log.clone());
        gateways.push(
            setup
                .start()
                .await
                .with_context(|| format!("starting {name}"))?,
        );
    }
    Ok(gateways)
}

/// The scheduled sync: about one pass per interval over the store, whichever replica runs it,
/// never one per replica.
async fn sync_once_per_interval(
    gateways: &[Gateway],
    store: &TreezStore,
    url: &str,
) -> anyhow::Result<()> {
    let watched = SYNC_INTERVAL * SYNC_INTERVALS_WATCHED;
    let from = Instant::now();
    tokio::time::sleep(watched).await;
    let passes = store.list_passes();
    let in_window = passes
        .iter()
        .filter(|at| **at >= from && **at < from + watched)
        .count();
    let gaps: Vec<f64> = passes
        .windows(2)
        .filter_map(|pair| match pair {
            [a, b] => Some(b.duration_since(*a).as_secs_f64()),
            _ => None,
        })
        .collect();
    let ran_by: Vec<String> = gateways
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let runs = g
                .log_text()
                .matches("scheduled sync of the store started")
                .count();
            format!("sync-{} {runs}", i + 1)
        })
        .collect();
    let copied = live_customers(url, store.id).await?;
    let mean = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
    println!(
        "sync: {} replicas, interval {}: {in_window} passes over the store in the {} s after \
         all were up ({} since the first started), gaps between passes {} (mean {mean:.2} s); \
         passes begun by {}; {copied} of {SYNC_SEEDED} customers in the mirror",
        gateways.len(),
        duration_text(SYNC_INTERVAL),
        watched.as_secs(),
        passes.len(),
        gaps.iter()
            .map(|g| format!("{g:.2} s"))
            .collect::<Vec<_>>()
            .join(", "),
        ran_by.join(", ")
    );
    let intervals = usize::try_from(SYNC_INTERVALS_WATCHED)?;
    // A pass is due an interval after the last one began, and found by some replica within a
    // tick (a quarter of the interval; half a second more for the pass's first statements):
    // `intervals - 1` to `intervals + 1` in the window. One per replica would be three times
    // as many, most of them moments apart.
    ensure!(
        (intervals - 1..=intervals + 1).contains(&in_window),
        "sync: {in_window} passes in {intervals} intervals: not one per interval"
    );
    let (shortest, longest) = (
        SYNC_INTERVAL.mul_f64(0.75),
        SYNC_INTERVAL.mul_f64(1.25) + Duration::from_millis(500),
    );
    for gap in &gaps {
        ensure!(
            (shortest.as_secs_f64()..=longest.as_secs_f64()).contains(gap),
            "sync: two passes began {gap:.2} s apart, not about one interval ({} s)",
            SYNC_INTERVAL.as_secs()
        );
    }
    ensure!(
        copied == usize::try_from(SYNC_SEEDED)?,
        "sync: {copied} of {SYNC_SEEDED} customers in the mirror"
    );
    Ok(())
}

async fn live_customers(url: &str, store: i64) -> anyhow::Result<usize> {
    count_of_store(
        url,
        "SELECT count(*) AS n FROM customers WHERE store_id = $1 AND deleted_at IS NULL",
        store,
    )
    .await
}

/// Entries of the store's create journal: none once every create is accounted for.
async fn journaled(url: &str, store: i64) -> anyhow::Result<usize> {
    count_of_store(
        url,
        "SELECT count(*) AS n FROM pending_creates WHERE store_id = $1",
        store,
    )
    .await
}

async fn count_of_store(url: &str, query: &str, store: i64) -> anyhow::Result<usize> {
    // In scope here only: its `load` and `first` would shadow `AtomicBool::load` and
    // `slice::first` everywhere in the module.
    use diesel_async::RunQueryDsl as _;
    let mut conn = AsyncPgConnection::establish(url).await?;
    let count: Count = diesel::sql_query(query)
        .bind::<BigInt, _>(store)
        .get_result(&mut conn)
        .await?;
    Ok(usize::try_from(count.n)?)
}

/// A look-up by a phone nobody has: always a vendor search (the mirror has no answer to give).
fn lookup(client: &reqwest::Client, url: &str, token: &str, n: u64) -> reqwest::RequestBuilder {
    client
        .get(format!("{url}?phone=8{:09}", n % 1_000_000_000))
        .bearer_auth(token)
}

fn create(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: String,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
}

/// Look-ups at once, spread over the replicas, on a store nobody has called yet: each replica
/// needs the token at the same moment, and one fetches it for all.
async fn one_token_for_a_cold_store(
    gateways: &[Gateway],
    store: &TreezStore,
    token: &str,
) -> anyhow::Result<()> {
    const LOOKUPS: usize = 30;
    let client = reqwest::Client::new();
    let base = rand_offset();
    let requests = (0..LOOKUPS)
        .filter_map(|i| {
            let replica = i % gateways.len();
            let gateway = gateways.get(replica)?;
            let n = base + u64::try_from(i).ok()?;
            Some((
                replica,
                lookup(&client, &store.customers_url(gateway), token, n),
            ))
        })
        .collect();
    let answers = at_once(requests).await?;
    let refused: Vec<String> = answers
        .iter()
        .filter(|a| a.status != 200)
        .map(|a| format!("replica-{}: {} {}", a.replica + 1, a.status, a.body))
        .collect();
    let fetches = store.double.count(Op::Token);
    println!(
        "token: {LOOKUPS} look-ups at once over {} replicas on a store without a token: \
         {fetches} token fetch, {} answers 200",
        gateways.len(),
        answers.len() - refused.len()
    );
    ensure!(refused.is_empty(), "token: {}", refused.join("; "));
    ensure!(fetches == 1, "token: {fetches} token fetches for one store");
    Ok(())
}

/// What a request of the budget load got.
struct Outcome {
    replica: usize,
    kind: &'static str,
    status: u16,
    retry_after: bool,
}

/// Look-ups and creates, round robin over the replicas, far more than the store's limit: the
/// double must see no more than GCRA lets through, in any window.
/// The wall clock and the monotonic one read together, to tell how far the wall clock stepped
/// ahead (a paused and resumed VM, an NTP step) while a scenario ran.
#[derive(Clone, Copy)]
struct ClockMark {
    wall: SystemTime,
    mono: Instant,
}

impl ClockMark {
    fn now() -> Self {
        Self {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// How much further the wall clock has moved than the monotonic one since the mark.
    fn wall_ahead(&self) -> Duration {
        let wall = SystemTime::now()
            .duration_since(self.wall)
            .unwrap_or_default();
        wall.saturating_sub(self.mono.elapsed())
    }
}

/// A wall clock ahead of the monotonic one by less than this has not stepped: reading two
/// clocks one after the other differs by microseconds.
const CLOCK_STEP: Duration = Duration::from_millis(100);

async fn budget_holds(
    gateways: &[Gateway],
    store: &TreezStore,
    token: &str,
    began: ClockMark,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    const WORKERS: u64 = 12;
    let stop_at = Instant::now() + BUDGET_LOAD;
    let base = rand_offset() * 100;
    let urls: Arc<Vec<String>> =
        Arc::new(gateways.iter().map(|g| store.customers_url(g)).collect());
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (client, urls, token) = (connection(), urls.clone(), token.to_owned());
        workers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut n = 0u64;
            while Instant::now() < stop_at {
                n += 1;
                let replica = usize::try_from((worker + n) % urls.len() as u64).unwrap_or(0);
                let Some(url) = urls.get(replica) else { break };
                let id = base + worker * 1_000_000 + n;
                let is_create = n.is_multiple_of(4);
                let request = if is_create {
                    create(&client, url, &token, create_body(id))
                } else {
                    lookup(&client, url, &token, id)
                };
                let answer = Answer::of(replica, request).await;
                let kind = match (is_create, answer.source.as_deref()) {
                    (true, _) => "create",
                    (false, Some("mirror")) => "look-up (mirror)",
                    (false, _) => "look-up (live)",
                };
                outcomes.push(Outcome {
                    replica,
                    kind,
                    status: answer.status,
                    retry_after: answer.retry_after.is_some(),
                });
                // A refused take answers at once; without a pause the load would be spent
                // on the gateway's CPU rather than on its budget.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            outcomes
        }));
    }
    let mut outcomes = Vec::new();
    for worker in workers {
        outcomes.extend(worker.await?);
    }

    let mut tally: BTreeMap<(usize, &str, u16), usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for o in &outcomes {
        *tally.entry((o.replica, o.kind, o.status)).or_default() += 1;
        let allowed = if o.kind == "create" {
            matches!(o.status, 201 | 503)
        } else {
            o.status == 200
        };
        if !allowed {
            problems.push(format!(
                "replica-{}: {} answered {}",
                o.replica + 1,
                o.kind,
                o.status
            ));
        } else if o.status == 503 && !o.retry_after {
            problems.push(format!(
                "replica-{}: a 503 without Retry-After",
                o.replica + 1
            ));
        }
    }
    println!(
        "budget: {} requests from {WORKERS} connections for {} s, round robin over {} replicas, \
         on a store limited to {LIMIT_PER_MINUTE}/min (burst {BURST}):",
        outcomes.len(),
        BUDGET_LOAD.as_secs(),
        gateways.len()
    );
    for replica in 0..gateways.len() {
        let line: Vec<String> = tally
            .iter()
            .filter(|((r, _, _), _)| *r == replica)
            .map(|((_, kind, status), n)| format!("{kind} {status} x{n}"))
            .collect();
        println!("  replica-{}: {}", replica + 1, line.join(", "));
    }

    let mut calls: Vec<Instant> = store.double.calls().iter().map(|c| c.at).collect();
    calls.sort();
    if let Some(first) = calls.first().copied() {
        let lines: Vec<String> = store
            .double
            .calls()
            .iter()
            .map(|c| {
                format!(
                    "{:.3} {} {}",
                    c.at.saturating_duration_since(first).as_secs_f64(),
                    c.method,
                    c.path
                )
            })
            .collect();
        // Kept for a look at a failure: each call's time from the first, method and path.
        let _ = std::fs::write(out.join("replicas-budget-calls.txt"), lines.join("\n"));
    }
    let interval = Duration::from_secs(60) / LIMIT_PER_MINUTE;
    // The shared budget runs on PostgreSQL's clock, the wall clock; the double stamps calls
    // with the monotonic one. A wall clock that steps ahead by S lets GCRA grant up to S /
    // interval more in the meantime (at most a burst per step): measured, said, allowed.
    let stepped = began.wall_ahead();
    let stepped_extra = if stepped < CLOCK_STEP {
        0
    } else {
        u64::try_from(stepped.as_nanos().div_ceil(interval.as_nanos())).unwrap_or(u64::MAX)
    };
    println!(
        "  wall clock ahead of the monotonic clock by {:.3} s over the scenario{}",
        stepped.as_secs_f64(),
        if stepped_extra > 0 {
            format!(
                ": it stepped, so the budget (on PostgreSQL's wall clock) may grant up to \
                 {stepped_extra} more calls; they are allowed"
            )
        } else {
            String::new()
        }
    );
    let allowed = |window: Duration| {
        u64::from(BURST)
            + u64::try_from(window.as_nanos() / interval.as_nanos()).unwrap_or(u64::MAX)
            + stepped_extra
    };
    println!(
        "  rule (GCRA): in any window of length W at most burst + W / interval = \
         {BURST} + W / {} ms calls at the double (W taken {} ms longer for the time from the \
         grant to the double)",
        interval.as_millis(),
        ARRIVAL_SLACK.as_millis()
    );
    for window in [1, 10, 60].map(Duration::from_secs) {
        let most = most_within(&calls, window);
        println!(
            "  most vendor calls in any {:>2} s: {most:>3} (allowed {})",
            window.as_secs(),
            allowed(window)
        );
        if u64::try_from(most)? > allowed(window + ARRIVAL_SLACK) {
            problems.push(format!(
                "{most} vendor calls within {} s, over {}",
                window.as_secs(),
                allowed(window)
            ));
        }
    }
    // Every window that begins and ends on a call, not only the lengths printed. The
    // tightest is the one closest to its bound, measured without the slack.
    let mut tightest: Option<(i64, u64, Duration)> = None;
    let mut over = None;
    for (i, first) in calls.iter().enumerate() {
        for (j, last) in calls.iter().enumerate().skip(i) {
            let n = u64::try_from(j - i + 1)?;
            let span = last.duration_since(*first);
            let margin = i64::try_from(n)? - i64::try_from(allowed(span))?;
            if tightest.is_none_or(|(m, _, _)| margin > m) {
                tightest = Some((margin, n, span));
            }
            if n > allowed(span + ARRIVAL_SLACK) && over.is_none() {
                over = Some((n, span));
            }
        }
    }
    if let Some((_, n, span)) = tightest {
        println!(
            "  closest to the bound: {n} calls in {:.3} s at the double; GCRA allows {} in \
             that long, {} with the slack",
            span.as_secs_f64(),
            allowed(span),
            allowed(span + ARRIVAL_SLACK)
        );
    }
    if let Some((n, span)) = over {
        problems.push(format!(
            "{n} vendor calls within {:.3} s, over GCRA's {}",
            span.as_secs_f64(),
            allowed(span)
        ));
    }
    if let (Some(first), Some(last)) = (calls.first(), calls.last()) {
        let span = last.duration_since(*first).as_secs_f64();
        println!(
            "  overall: {} vendor calls (the token fetch included) in {span:.1} s: {:.1} a minute",
            calls.len(),
            calls.len() as f64 * 60.0 / span.max(1e-9)
        );
    }
    // A replica whose shared take failed took its share locally (the fail-safe): say how often,
    // since those takes are outside the shared budget's count.
    let fail_safe: Vec<usize> = gateways
        .iter()
        .map(|g| {
            g.log_text()
                .matches("the shared rate budget did not answer")
                .count()
        })
        .collect();
    println!(
        "  takes from a replica's local share (the shared budget did not answer): {fail_safe:?}"
    );
    ensure!(
        calls.len() > usize::try_from(BURST)? * 2,
        "budget: only {} vendor calls: the load never met the limit",
        calls.len()
    );
    if !problems.is_empty() {
        problems.truncate(8);
        bail!("budget: {}", problems.join("; "));
    }
    Ok(())
}

/// The most of `sorted` times within any closed window of length `window`.
fn most_within(sorted: &[Instant], window: Duration) -> usize {
    sorted
        .iter()
        .enumerate()
        .map(|(i, start)| {
            sorted
                .iter()
                .skip(i)
                .take_while(|t| t.duration_since(*start) <= window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// One create body with one `Idempotency-Key`, sent to every replica at once (two each): one
/// vendor create, and every answer the first one replayed (API.md), or the documented `409`
/// of a key still in flight after the wait (docs/api.md), with `Retry-After: 1`.
async fn one_key_one_create(
    gateways: &[Gateway],
    store: &TreezStore,
    token: &str,
) -> anyhow::Result<()> {
    const ROUNDS: u64 = 3;
    const PER_REPLICA: usize = 2;
    let in_progress = json!({"error": "a request with this Idempotency-Key is still being processed; retry later"});
    let client = reqwest::Client::new();
    let base = rand_offset() * 100;
    for round in 1..=ROUNDS {
        let key = format!("chaos-replicas-{base}-{round}");
        let body = create_body(base + round);
        let before = store.double.count(Op::Create);
        let requests = (0..gateways.len() * PER_REPLICA)
            .filter_map(|i| {
                let replica = i % gateways.len();
                let gateway = gateways.get(replica)?;
                let request = create(&client, &store.customers_url(gateway), token, body.clone())
                    .header("Idempotency-Key", &key);
                Some((replica, request))
            })
            .collect();
        let answers = at_once(requests).await?;
        let creates = store.double.count(Op::Create) - before;
        let (mut replayed, mut waited) = (Vec::new(), 0);
        for answer in &answers {
            if answer.status == 409 && answer.json() == in_progress {
                ensure!(
                    answer.retry_after.as_deref() == Some("1"),
                    "idempotency: a 409 in progress without Retry-After: 1"
                );
                waited += 1;
            } else {
                ensure!(
                    answer.status == 201,
                    "idempotency: replica-{} answered {} {}",
                    answer.replica + 1,
                    answer.status,
                    answer.body
                );
                replayed.push(answer);
            }
        }
        let first = replayed
            .first()
            .context("idempotency: no request got the create's answer")?;
        ensure!(
            replayed.iter().all(|a| a.body == first.body),
            "idempotency: the 201s differ: {:?}",
            replayed.iter().map(|a| a.body.as_str()).collect::<Vec<_>>()
        );
        let id = first
            .json()
            .pointer("/customer/customer_id")
            .cloned()
            .context("idempotency: the 201 names no customer")?;
        println!(
            "idempotency round {round}: {} requests with one key at once over {} replicas, \
             answered in {}: {} x 201 with the same body (customer {id}), {waited} x 409 in \
             progress; {creates} vendor create",
            answers.len(),
            gateways.len(),
            answered_in(&answers),
            replayed.len()
        );
        ensure!(
            creates == 1,
            "idempotency: {creates} vendor creates for one Idempotency-Key"
        );
    }
    Ok(())
}

/// The same new customer sent to every replica at once, each with a key of its own: one vendor
/// create, one `201`, and two `409`s carrying that customer (API.md).
async fn one_person_one_create(
    gateways: &[Gateway],
    store: &TreezStore,
    token: &str,
) -> anyhow::Result<()> {
    const ROUNDS: u64 = 5;
    let client = reqwest::Client::new();
    let base = rand_offset() * 100;
    for round in 1..=ROUNDS {
        let body = create_body(base + round);
        let before = store.double.count(Op::Create);
        let requests = gateways
            .iter()
            .enumerate()
            .map(|(replica, gateway)| {
                let request = create(&client, &store.customers_url(gateway), token, body.clone())
                    .header(
                        "Idempotency-Key",
                        format!("chaos-replicas-{base}-{round}-{replica}"),
                    );
                (replica, request)
            })
            .collect();
        let answers = at_once(requests).await?;
        let creates = store.double.count(Op::Create) - before;
        let statuses: Vec<String> = answers
            .iter()
            .map(|a| format!("replica-{} {}", a.replica + 1, a.status))
            .collect();
        let created: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
        let [made] = created.as_slice() else {
            bail!(
                "duplicates: {} answers 201: {}",
                created.len(),
                statuses.join(", ")
            );
        };
        let customer = made
            .json()
            .get("customer")
            .cloned()
            .context("duplicates: the 201 carries no customer")?;
        let id = customer.get("customer_id").cloned().unwrap_or_default();
        for answer in answers.iter().filter(|a| a.status != 201) {
            let got = answer.json();
            ensure!(
                answer.status == 409
                    && got.get("error").and_then(Value::as_str) == Some("customer already exists")
                    && got.get("customer") == Some(&customer),
                "duplicates: replica-{} answered {} {}, not the 409 with customer {}",
                answer.replica + 1,
                answer.status,
                answer.body,
                id
            );
        }
        println!(
            "duplicates round {round}: one new customer at once on {} replicas, three keys, \
             answered in {}: {}; \
             each 409 carries customer {}; {creates} vendor create",
            gateways.len(),
            answered_in(&answers),
            statuses.join(", "),
            id
        );
        ensure!(
            creates == 1,
            "duplicates: {creates} vendor creates for one customer"
        );
    }
    Ok(())
}

/// SIGKILL of one replica while the vendor has created its customers but not yet answered,
/// with look-ups going on at the others: without a restart, the survivors' recovery brings
/// every customer the vendor created into the mirror, and creates none again. Returns the
/// survivors.
async fn kill_one(
    mut gateways: Vec<Gateway>,
    store: &TreezStore,
    token: &str,
    url: &str,
) -> anyhow::Result<Vec<Gateway>> {
    let victim = gateways.pop().context("no replica to kill")?;
    let victim_name = format!("replica-{}", gateways.len() + 1);
    let survivors: Vec<String> = gateways.iter().map(|g| store.customers_url(g)).collect();

    // Look-ups at the survivors all along: the kill must not disturb them.
    let stop = Arc::new(AtomicBool::new(false));
    let mut lookups = Vec::new();
    for worker in 0..4u64 {
        let (client, urls, token, stop) = (
            connection(),
            survivors.clone(),
            token.to_owned(),
            stop.clone(),
        );
        lookups.push(tokio::spawn(async move {
            let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let replica = usize::try_from((worker + n) % urls.len() as u64).unwrap_or(0);
                let Some(url) = urls.get(replica) else { break };
                let request = lookup(&client, url, &token, worker * 1_000_000 + n);
                let answer = Answer::of(replica, request).await;
                *statuses.entry(answer.status).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            statuses
        }));
    }

    store.double.fail(
        Op::Create,
        Fault::AfterCommit(Box::new(Fault::Delay(HELD_ANSWER))),
        u32::try_from(KILLED_CREATES)?,
    );
    let client = reqwest::Client::new();
    let victim_url = store.customers_url(&victim);
    let base = rand_offset() * 100;
    let creates: Vec<_> = (0..KILLED_CREATES)
        .map(|n| create(&client, &victim_url, token, create_body(base + n)).send())
        .map(tokio::spawn)
        .collect();
    let began = Instant::now();
    while (store.double.count(Op::Create) as u64) < KILLED_CREATES
        && began.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    victim.kill9();
    let killed = Instant::now();
    for request in creates {
        let _ = request.await;
    }
    store.double.heal();
    let at_vendor = super::customer_ids(&store.double);
    let mirrored_at_kill = mirrored(url, store.id, &at_vendor).await?;
    println!(
        "kill: SIGKILL of {victim_name} with {} creates at the vendor, {mirrored_at_kill} of them \
         in the mirror",
        at_vendor.len()
    );
    ensure!(
        mirrored_at_kill < at_vendor.len(),
        "kill: every create was mirrored before the kill: the scenario proves nothing"
    );

    loop {
        let now_mirrored = mirrored(url, store.id, &at_vendor).await?;
        let pending = journaled(url, store.id).await?;
        if now_mirrored == at_vendor.len() && pending == 0 {
            println!(
                "kill: all {} in the mirror and the journal empty {:.1} s after the kill, \
                 {victim_name} still dead",
                at_vendor.len(),
                killed.elapsed().as_secs_f64()
            );
            break;
        }
        ensure!(
            killed.elapsed() < Duration::from_secs(90),
            "kill: only {now_mirrored} of {} customers in the mirror ({pending} still journaled) \
             90 s after the kill",
            at_vendor.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for worker in lookups {
        for (status, n) in worker.await? {
            *statuses.entry(status).or_default() += n;
        }
    }
    let recovered: Vec<String> = gateways
        .iter()
        .enumerate()
        .map(|(i, g)| format!("replica-{} {}", i + 1, recovered_in(&g.log_text())))
        .collect();
    let vendor_creates = store.double.count(Op::Create);
    let customers = store.double.customers();
    let emails: HashSet<String> = customers
        .iter()
        .filter_map(|c| {
            c.get("email")
                .and_then(Value::as_str)
                .map(str::to_lowercase)
        })
        .collect();
    println!(
        "kill: recovered by the survivors: {}; look-ups at the survivors meanwhile: {}; the \
         vendor saw {vendor_creates} creates and holds {} customers, {} distinct e-mails",
        recovered.join(", "),
        statuses
            .iter()
            .map(|(status, n)| format!("{status} x{n}"))
            .collect::<Vec<_>>()
            .join(", "),
        customers.len(),
        emails.len()
    );
    ensure!(
        statuses.keys().all(|s| *s == 200),
        "kill: look-ups at the survivors answered {statuses:?}"
    );
    ensure!(
        vendor_creates == at_vendor.len() && customers.len() == at_vendor.len(),
        "kill: the survivors created customers at the vendor ({vendor_creates} creates, {} \
         customers, {} at the kill)",
        customers.len(),
        at_vendor.len()
    );
    ensure!(
        emails.len() == customers.len(),
        "kill: {} customers at the vendor share an e-mail",
        customers.len() - emails.len()
    );
    Ok(gateways)
}

/// The customers a replica's recovery passes say they mirrored (`recovered=N` on each pass's
/// line at info).
fn recovered_in(log: &str) -> usize {
    log.lines()
        .filter(|line| line.contains("recovery pass over journaled vendor creates"))
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix("recovered="))
                .and_then(|n| n.parse::<usize>().ok())
        })
        .sum()
}
