//! The load generator: N workers, each with a keep-alive connection of its own, calling one
//! request after another for a fixed time; latencies go to an HDR histogram (microseconds).
//!
//! The same runner drives HTTP requests and the baselines' database queries, so a scenario
//! and its baseline are measured by one piece of code.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// What one run of a scenario (or of its baseline) measured.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    pub requests: u64,
    /// Calls made, warm-up included (what the process under test served).
    pub calls: u64,
    pub errors: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The first failure, to say why `errors` is not zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Measured {
    pub fn from_histogram(
        histogram: &Histogram<u64>,
        errors: u64,
        elapsed: Duration,
        first_error: Option<String>,
    ) -> Self {
        let requests = histogram.len();
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            requests,
            calls: requests,
            errors,
            seconds: elapsed.as_secs_f64(),
            rps: requests as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
            first_error,
        }
    }
}

/// 1 µs .. 10 min at 3 significant digits.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// Calls `call(worker, sequence)` from `connections` workers for `warm_up` (not recorded) then
/// `duration`. Every call's latency is recorded, failures too (counted in `errors`).
pub async fn run<S, F, Fut>(
    connections: usize,
    warm_up: Duration,
    duration: Duration,
    setup: impl Fn(usize) -> S,
    call: F,
) -> anyhow::Result<Measured>
where
    S: Send + 'static,
    F: Fn(&S, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let call = Arc::new(call);
    let sequence = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let record_from = start + warm_up;
    let stop_at = record_from + duration;
    let mut workers = Vec::with_capacity(connections);
    for worker in 0..connections {
        let state = setup(worker);
        let call = call.clone();
        let sequence = sequence.clone();
        let mut histogram = histogram()?;
        workers.push(tokio::spawn(async move {
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let began = Instant::now();
                if began >= stop_at {
                    break;
                }
                let n = sequence.fetch_add(1, Ordering::Relaxed);
                let result = call(&state, n).await;
                let ended = Instant::now();
                if began < record_from {
                    continue;
                }
                let micros = (ended - began).as_micros().max(1);
                let _ = histogram.record(u64::try_from(micros).unwrap_or(u64::MAX));
                if let Err(e) = result {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
            (histogram, errors, first_error)
        }));
    }
    let mut all = histogram()?;
    let mut errors = 0;
    let mut first_error = None;
    for worker in workers {
        if let Ok((histogram, e, first)) = worker.await {
            let _ = all.add(&histogram);
            errors += e;
            if first_error.is_none() {
                first_error = first;
            }
        }
    }
    let elapsed = Instant::now().saturating_duration_since(record_from);
    let mut measured = Measured::from_histogram(&all, errors, elapsed, first_error);
    measured.calls = sequence.load(Ordering::Relaxed);
    Ok(measured)
}

/// An HTTP client holding one keep-alive connection: one per worker, like wrk's connections.
pub fn connection() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .http1_only()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Sends `request` and checks the status.
pub async fn expect(request: reqwest::RequestBuilder, status: u16) -> Result<(), String> {
    let response = request.send().await.map_err(|e| format!("{e:#}"))?;
    let got = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| format!("{e:#}"))?;
    if got == status {
        Ok(())
    } else {
        Err(format!(
            "status {got} (expected {status}): {}",
            String::from_utf8_lossy(body.get(..body.len().min(300)).unwrap_or_default())
        ))
    }
}
