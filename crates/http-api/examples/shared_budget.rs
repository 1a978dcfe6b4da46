//! What the shared vendor budget adds per vendor call (issue 14): N takes from one store's
//! budget in PostgreSQL (`vendor_budgets`, the statement every vendor call runs on PostgreSQL)
//! against N takes from the in-process `governor` limiter (SQLite, one process), in one run,
//! sequential and then from 16 tasks at once. The quota is large enough that no take is
//! refused: this is the cost of asking, not of waiting.
//!
//! Run: `TEST_DATABASE_URL=postgres://... cargo run --release -p pos-gateway --example
//! shared_budget [-- TAKES]` (default 5000; a database of its own is made and dropped).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_api::shared_state::PgBudget;
use persistence::Database;
use pos_adapters::http::{LocalBudget, RateBudget, RateQuota};
use testkit::pg::TestDatabase;

const TASKS: usize = 16;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let takes: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    let scratch = TestDatabase::create().await;
    let database = Database::connect(scratch.url()).await.unwrap();
    database.migrate().await.unwrap();
    let shared: Arc<dyn RateBudget> = Arc::new(PgBudget(database.vendor_budgets().unwrap()));
    let local: Arc<dyn RateBudget> = Arc::new(LocalBudget::default());
    let quota = RateQuota::new(NonZeroU32::MAX, NonZeroU32::new(1_000_000));
    // Warm up the pool and the statement.
    for _ in 0..100 {
        assert_eq!(shared.take("1/requests", quota).await.unwrap(), None);
    }

    println!("{takes} takes of one store's budget, 2-core machine");
    println!(
        "| takers | in-process mean | PostgreSQL mean | PostgreSQL p50 | PostgreSQL p99 | ratio of means |"
    );
    println!("|---|---|---|---|---|---|");
    for tasks in [1, TASKS] {
        let (local_mean, _) = run(&local, quota, takes, tasks).await;
        let (shared_mean, mut each) = run(&shared, quota, takes, tasks).await;
        each.sort();
        let at = |q: f64| each[((each.len() as f64 * q) as usize).min(each.len() - 1)];
        println!(
            "| {tasks} | {:.2} µs | {:.3} ms | {:.3} ms | {:.3} ms | {:.0}x |",
            local_mean.as_secs_f64() * 1e6,
            shared_mean.as_secs_f64() * 1e3,
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            shared_mean.as_secs_f64() / local_mean.as_secs_f64().max(1e-9),
        );
    }
    drop(shared);
    drop(database);
    scratch.drop_database().await.unwrap();
}

/// `takes` takes over `tasks` concurrent takers: the mean time of one take as a caller sees
/// it, and each take's time.
async fn run(
    budget: &Arc<dyn RateBudget>,
    quota: RateQuota,
    takes: usize,
    tasks: usize,
) -> (Duration, Vec<Duration>) {
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let budget = budget.clone();
        handles.push(tokio::spawn(async move {
            let mut each = Vec::with_capacity(takes / tasks);
            for _ in 0..takes / tasks {
                let started = Instant::now();
                assert_eq!(budget.take("1/requests", quota).await.unwrap(), None);
                each.push(started.elapsed());
            }
            each
        }));
    }
    let mut each = Vec::new();
    for handle in handles {
        each.extend(handle.await.unwrap());
    }
    let total: Duration = each.iter().sum();
    (total / u32::try_from(each.len()).unwrap().max(1), each)
}
