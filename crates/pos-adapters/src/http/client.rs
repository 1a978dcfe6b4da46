//! One store's HTTP client to its vendor: timeouts, retries, rate limit, breaker, bounds.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use domain::{PosError, Vendor, VendorResponse};
use rand::Rng as _;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::breaker::CircuitBreaker;
use super::errors::{bad_answer, error_for_status, retry_after};
use super::observe::{self, Outcome, RetryReason};
use super::redact::Redactor;
use super::request::{Body, VendorRequest};
use super::shared::{LocalBudget, RateQuota};
use super::{Secret, Settings};
use crate::AdapterError;

/// The longest back-off between two attempts, however many came before.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The longest the shared budget may take to answer before the store's share is taken
/// locally instead (PostgreSQL is down or overloaded).
const SHARED_BUDGET_ANSWERS_WITHIN: Duration = Duration::from_secs(1);

/// One store's connection to its vendor; vendor modules send every request through it.
///
/// Each store gets its own (its own `reqwest` client and connection pool, rate budget and
/// circuit breaker), so one store's broken credentials or dead vendor tenant never slow or
/// trip another's. The budget is this process's `governor` limiter, or the one every replica
/// shares when [`Settings::shared`] is set. Every call:
/// - is refused at once while the store's circuit is open (`Unavailable`, "circuit open");
/// - waits for the store's rate budget, or answers `Unavailable` with the wait as
///   `Retry-After` when the wait would not fit in the timeout;
/// - finishes within `Settings::timeout` in total or answers `PosError::Timeout`;
/// - reads at most `Settings::max_body_bytes` of the answer;
/// - turns a non-success status into the domain's error in one place
///   ([`error_for_status`](super::error_for_status)), echoing the vendor's body cut to 4 KiB
///   and scrubbed of every secret the store and the request carry.
///
/// [`read`](VendorHttp::read) retries, [`write`](VendorHttp::write) does not: see each.
pub struct VendorHttp {
    vendor: Vendor,
    base_url: Url,
    settings: Settings,
    client: reqwest::Client,
    /// The store's request budget, if the vendor has a limit.
    limit: Option<RateQuota>,
    /// Writes' own budget, when the vendor has one; otherwise writes share `limit`.
    write_limit: Option<RateQuota>,
    /// The budgets kept in this process: all of them, or while the shared one cannot answer,
    /// this replica's share.
    local: LocalBudget,
    breaker: CircuitBreaker,
    redactor: Redactor,
    /// The store's calls in flight ([`Settings::max_in_flight`]): a burst of kiosks queues
    /// here instead of opening a connection each.
    in_flight: Arc<tokio::sync::Semaphore>,
}

/// A vendor's answer: a success, or a status the request accepted.
#[derive(Clone)]
pub struct VendorAnswer {
    vendor: Vendor,
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    redactor: Redactor,
    max_retry_after: Duration,
}

/// Why one attempt failed, and so whether another may follow.
struct Failure {
    error: PosError,
    kind: FailureKind,
    /// The vendor's status, when it answered.
    status: Option<StatusCode>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    /// No connection was made: the request never left, so even a write may go again.
    Connect,
    /// The request may have reached the vendor: a timeout or a connection lost mid-way.
    Transport,
    /// 5xx, with the vendor's `Retry-After` if it sent one.
    ServerError(Option<Duration>),
    /// 429, with the vendor's `Retry-After` if it sent one.
    RateLimited(Option<Duration>),
    /// The vendor answered and meant it (4xx, an unreadable success): no retry helps.
    Final,
}

impl FailureKind {
    /// What the circuit breaker counts against the vendor: it is down or overloaded, not
    /// merely refusing this request.
    fn is_outage(self) -> bool {
        matches!(
            self,
            FailureKind::Connect | FailureKind::Transport | FailureKind::ServerError(_)
        )
    }
}

impl VendorHttp {
    /// A store's client for `vendor` at `base_url`, scrubbing `secrets` (every credential of
    /// the store's config) from echoed answers.
    pub fn new(
        vendor: Vendor,
        base_url: &str,
        settings: Settings,
        secrets: &[Secret],
    ) -> Result<Self, AdapterError> {
        let config_error = |message: String| AdapterError::Config { vendor, message };
        let base_url = vendor_url(base_url).ok_or_else(|| {
            config_error(
                "key \"base_url\" must be an https URL (http only on a loopback host), \
                 without a user or password"
                    .to_owned(),
            )
        })?;
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            // A redirect would carry our credentials somewhere we did not choose; a vendor
            // that redirects an API call gets its 3xx reported instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pos-gateway/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(settings.max_in_flight.max(1))
            .build()
            .map_err(|e| config_error(format!("the HTTP client could not be built: {e}")))?;
        let limit = settings
            .rate_limit_per_minute
            .and_then(NonZeroU32::new)
            .map(|per_minute| {
                RateQuota::new(
                    per_minute,
                    settings.rate_limit_burst.and_then(NonZeroU32::new),
                )
            });
        let write_limit = settings
            .write_rate_limit_per_minute
            .and_then(NonZeroU32::new)
            .map(|per_minute| RateQuota::new(per_minute, None));
        Ok(Self {
            vendor,
            base_url,
            breaker: CircuitBreaker::new(vendor, settings.breaker.clone()),
            in_flight: Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight.max(1))),
            settings,
            client,
            limit,
            write_limit,
            local: LocalBudget::default(),
            redactor: Redactor::new(secrets),
        })
    }

    pub fn vendor(&self) -> Vendor {
        self.vendor
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// A request to `base_url` followed by `path`'s segments, each percent-encoded, so a
    /// customer's email or licence can go into a path safely:
    /// `http.request(Method::GET, ["customer", "email", email])`.
    pub fn request<I>(&self, method: Method, path: I) -> VendorRequest
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut url = self.base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        let base = self
            .base_url
            .path_segments()
            .map_or(0, |segments| segments.filter(|s| !s.is_empty()).count());
        let route = super::request::route_template(&url, base);
        VendorRequest::new(method, url).with_route(route)
    }

    /// Sends a request that changes nothing at the vendor (a GET, a search even when it is a
    /// POST). Retried, up to `read_retries` times, after a connection failure, a timeout, a 5xx
    /// or a 429, with jittered exponential back-off or the vendor's `Retry-After` when it is
    /// at most `max_retry_after`; never past the total timeout.
    pub async fn read(&self, request: VendorRequest) -> Result<VendorAnswer, PosError> {
        self.send(request, true).await
    }

    /// Sends a request that changes something (a create, an update). Retried only when the
    /// connection could not be made at all, since then the vendor cannot have seen it; once the
    /// request may have reached the vendor it is never sent again, whatever came back, because
    /// a second create is a duplicate customer.
    pub async fn write(&self, request: VendorRequest) -> Result<VendorAnswer, PosError> {
        self.send(request, false).await
    }

    async fn send(&self, request: VendorRequest, is_read: bool) -> Result<VendorAnswer, PosError> {
        if let Some(problem) = &request.problem {
            return Err(PosError::BadAnswer {
                vendor: self.vendor,
                message: format!("the request could not be built: {problem}"),
                response: None,
            });
        }
        // The call's own bound, and the operation's when it is one of several calls (a token,
        // a read, a write): the whole operation ends within the store's timeout.
        let mut deadline = super::deadline::after(self.settings.timeout);
        if let Some(operation) = super::deadline::current() {
            deadline = deadline.min(operation);
        }
        // A turn among the store's calls in flight, waited for within the call's bound; held
        // through retries, so a retry never queues behind newer calls.
        let _turn =
            match tokio::time::timeout_at(deadline, self.in_flight.clone().acquire_owned()).await {
                Ok(Ok(turn)) => turn,
                _ => {
                    return Err(PosError::Unavailable {
                        vendor: self.vendor,
                        message: format!(
                            "{} calls to the vendor for this store were already in flight",
                            self.settings.max_in_flight
                        ),
                        retry_after: Some(Duration::from_secs(1)),
                        response: None,
                    });
                }
            };
        let redactor = self.redactor.with(&request.secrets);
        let attempts = self.settings.read_retries.saturating_add(1);
        let operation = observe::current_operation();
        let observer = observe::observer();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let admission = self.breaker.admit().map_err(|open_for| {
                if let Some(observer) = observer {
                    observer.circuit_refused(self.vendor);
                }
                PosError::Unavailable {
                    vendor: self.vendor,
                    message: "circuit open".to_owned(),
                    retry_after: Some(open_for),
                    response: None,
                }
            })?;
            let budget = match (self.write_limit, is_read) {
                (Some(writes), false) => Some(("writes", writes)),
                _ => self.limit.map(|limit| ("requests", limit)),
            };
            let waiting = Instant::now();
            let admitted = self.wait_for_rate_limit(budget, deadline).await;
            if let (Some(observer), Some(_)) = (observer, budget) {
                observer.rate_limit(self.vendor, waiting.elapsed(), admitted.is_ok());
            }
            admitted?;
            let span = attempt_span(self.vendor, &request, operation, attempt);
            let started = Instant::now();
            let outcome = tokio::time::timeout_at(deadline, self.attempt(&request, &redactor))
                .instrument(span.clone())
                .await
                .unwrap_or_else(|_elapsed| {
                    Err(Failure {
                        error: self.timeout(),
                        kind: FailureKind::Transport,
                        status: None,
                    })
                });
            let observed = self.observe(&span, &request, operation, attempt, started, &outcome);
            let failure = match outcome {
                Ok(answer) => {
                    admission.settle(false);
                    return Ok(answer);
                }
                Err(failure) => failure,
            };
            admission.settle(failure.kind.is_outage());
            let wait = match (failure.kind, is_read) {
                (FailureKind::Connect, _) => None,
                (FailureKind::Transport, true) => None,
                (FailureKind::ServerError(after) | FailureKind::RateLimited(after), true) => after,
                _ => return Err(failure.error),
            };
            if attempt >= attempts {
                return Err(failure.error);
            }
            let wait = match wait {
                Some(after) if after > self.settings.max_retry_after => return Err(failure.error),
                Some(after) => after,
                None => self.backoff(attempt),
            };
            if super::deadline::after(wait) >= deadline {
                return Err(failure.error);
            }
            tracing::info!(
                vendor = %self.vendor,
                method = %request.method,
                attempt,
                error = %failure.error,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying a vendor request"
            );
            if let Some(observer) = observer {
                observer.retry(self.vendor, operation, retry_reason(observed));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a request from the store's budget `name`, waiting if it fits before the deadline.
    async fn wait_for_rate_limit(
        &self,
        budget: Option<(&str, RateQuota)>,
        deadline: Instant,
    ) -> Result<(), PosError> {
        let Some((name, quota)) = budget else {
            return Ok(());
        };
        loop {
            let Some(wait) = self.take(name, quota).await else {
                return Ok(());
            };
            if super::deadline::after(wait) >= deadline {
                return Err(PosError::Unavailable {
                    vendor: self.vendor,
                    message: "the store's POS rate limit is used up".to_owned(),
                    retry_after: Some(wait),
                    response: None,
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One take from budget `name`: from the budget shared by every replica when there is
    /// one, or from this process's; `None` when the request may go now.
    ///
    /// Fails safe: when the shared budget cannot answer within a second, this replica takes
    /// its share (the quota divided by [`Shared::replicas`](super::Shared::replicas)) locally, so the replicas together
    /// still stay within the vendor's limit while the database is away.
    async fn take(&self, name: &str, quota: RateQuota) -> Option<Duration> {
        let Some(shared) = &self.settings.shared else {
            return self.local.take_now(name, quota);
        };
        let taken = tokio::time::timeout(
            SHARED_BUDGET_ANSWERS_WITHIN,
            shared.budget.take(&shared.key(name), quota),
        )
        .await;
        let error = match taken {
            Ok(Ok(wait)) => return wait,
            Ok(Err(e)) => e.to_string(),
            Err(_elapsed) => "no answer within a second".to_owned(),
        };
        tracing::warn!(
            vendor = %self.vendor,
            store = %shared.scope,
            error = %error,
            "the shared rate budget did not answer; taking this replica's share locally"
        );
        self.local.take_now(name, quota.divided(shared.replicas))
    }

    async fn attempt(
        &self,
        request: &VendorRequest,
        redactor: &Redactor,
    ) -> Result<VendorAnswer, Failure> {
        use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
        // Defaults a vendor module may override (Cova lists want `application/hal+json`).
        let mut headers = request.headers.clone();
        headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("application/json"));
        if let Some(observer) = observe::observer() {
            observer.inject_context(&mut headers);
        }
        let mut builder = self
            .client
            .request(request.method.clone(), request.url.clone());
        builder = match &request.body {
            None => builder,
            Some(Body::Json(bytes)) => {
                headers
                    .entry(CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static("application/json"));
                builder.body(bytes.clone())
            }
            Some(Body::Form(fields)) => {
                let fields: Vec<(&str, &str)> = fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.expose()))
                    .collect();
                builder.form(&fields)
            }
        };
        let response = builder
            .headers(headers)
            .send()
            .await
            .map_err(|e| self.transport_failure(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let (body, complete) = self.read_body(response).await?;
        if status.is_success() || request.accepted.contains(&status) {
            if !complete {
                return Err(Failure {
                    error: bad_answer(
                        self.vendor,
                        format!(
                            "the answer is larger than {} bytes",
                            self.settings.max_body_bytes
                        ),
                        status,
                        Value::Null,
                    ),
                    kind: FailureKind::Final,
                    status: Some(status),
                });
            }
            let body = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&body).map_err(|e| Failure {
                    error: bad_answer(
                        self.vendor,
                        format!("the answer is not JSON: {e}"),
                        status,
                        redactor.echo_bytes(&body),
                    ),
                    kind: FailureKind::Final,
                    status: Some(status),
                })?
            };
            return Ok(VendorAnswer {
                vendor: self.vendor,
                status,
                headers,
                body,
                redactor: redactor.clone(),
                max_retry_after: self.settings.max_retry_after,
            });
        }
        let error = error_for_status(
            self.vendor,
            status,
            &headers,
            redactor.echo_bytes(&body),
            self.settings.max_retry_after,
        );
        let after = retry_after(&headers, std::time::SystemTime::now());
        let kind = match status {
            StatusCode::TOO_MANY_REQUESTS => FailureKind::RateLimited(after),
            s if s.is_server_error() => FailureKind::ServerError(after),
            _ => FailureKind::Final,
        };
        Err(Failure {
            error,
            kind,
            status: Some(status),
        })
    }

    /// Reads at most `max_body_bytes` (plus one chunk): the bytes, and whether that was all.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<(Vec<u8>, bool), Failure> {
        let max = self.settings.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > max))
            && response.status().is_success()
        {
            return Ok((Vec::new(), false));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_failure(e))?
        {
            let room = max.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(chunk.get(..room).unwrap_or_default());
                return Ok((body, false));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, true))
    }

    fn transport_failure(&self, error: reqwest::Error) -> Failure {
        if error.is_timeout() {
            return Failure {
                error: self.timeout(),
                kind: FailureKind::Transport,
                status: None,
            };
        }
        // reqwest's messages name the URL; ours name nothing a kiosk should not see.
        let (message, kind) = if error.is_connect() {
            ("could not connect to the POS", FailureKind::Connect)
        } else if error.is_body() || error.is_decode() {
            (
                "the POS connection broke while answering",
                FailureKind::Transport,
            )
        } else {
            ("the request to the POS failed", FailureKind::Transport)
        };
        tracing::warn!(vendor = %self.vendor, error = ?error.without_url(), "{message}");
        Failure {
            error: PosError::Unavailable {
                vendor: self.vendor,
                message: message.to_owned(),
                retry_after: None,
                response: None,
            },
            kind,
            status: None,
        }
    }

    /// Ends an attempt's span with its status, writes its log line and tells the observer.
    fn observe(
        &self,
        span: &tracing::Span,
        request: &VendorRequest,
        operation: &'static str,
        attempt: u32,
        started: Instant,
        result: &Result<VendorAnswer, Failure>,
    ) -> Outcome {
        let elapsed = started.elapsed();
        let outcome = match result {
            Ok(answer) => Outcome::Status(answer.status),
            Err(Failure {
                status: Some(status),
                ..
            }) => Outcome::Status(*status),
            Err(Failure {
                error: PosError::Timeout { .. },
                ..
            }) => Outcome::Timeout,
            Err(Failure {
                kind: FailureKind::Connect,
                ..
            }) => Outcome::ConnectFailed,
            Err(_) => Outcome::ConnectionLost,
        };
        span.record(
            "otel.status_code",
            if result.is_ok() { "OK" } else { "ERROR" },
        );
        let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        match outcome.status() {
            Some(status) => {
                span.record("status", i64::from(status.as_u16()));
                tracing::info!(parent: span, status = status.as_u16(), outcome = outcome.class(), latency_ms, "vendor call");
            }
            None => {
                tracing::info!(parent: span, outcome = outcome.class(), latency_ms, "vendor call");
            }
        }
        if let Some(observer) = observe::observer() {
            observer.attempt(&observe::Attempt {
                vendor: self.vendor,
                operation,
                method: &request.method,
                route: &request.route,
                attempt,
                outcome,
                elapsed,
            });
        }
        outcome
    }

    fn timeout(&self) -> PosError {
        PosError::Timeout {
            vendor: self.vendor,
            after: self.settings.timeout,
        }
    }

    /// `retry_backoff * 2^(attempt-1)`, capped, then a random point in its upper half, so
    /// kiosks retrying together don't hit the vendor in lock-step.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        let full = self
            .settings
            .retry_backoff
            .saturating_mul(factor)
            .min(MAX_BACKOFF);
        let full_ms = u64::try_from(full.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(full_ms / 2..=full_ms))
    }
}

/// One attempt's span: what a trace shows of a vendor call (the route template, never the URL).
fn attempt_span(
    vendor: Vendor,
    request: &VendorRequest,
    operation: &'static str,
    attempt: u32,
) -> tracing::Span {
    tracing::info_span!(
        "vendor call",
        otel.name = %format!("{} {}", request.method, request.route),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        vendor = %vendor,
        operation,
        method = %request.method,
        route = %request.route,
        attempt = i64::from(attempt),
        status = tracing::field::Empty,
    )
}

fn retry_reason(outcome: Outcome) -> RetryReason {
    match outcome {
        Outcome::Status(StatusCode::TOO_MANY_REQUESTS) => RetryReason::RateLimited,
        Outcome::Status(_) => RetryReason::ServerError,
        Outcome::Timeout => RetryReason::Timeout,
        Outcome::ConnectFailed => RetryReason::ConnectFailed,
        Outcome::ConnectionLost => RetryReason::ConnectionLost,
    }
}

/// What serde says was wrong with an answer, without the value it quotes (`invalid type:
/// string "555-1234", expected u64`): the message is logged, and a value may be a customer's.
fn shape_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.split_once(", expected ") {
        Some((_, expected)) => format!("expected {expected}"),
        None if message.starts_with("missing field") => message,
        None => "a value of another type".to_owned(),
    }
}

/// A URL credentials may be sent to: https, or http on a loopback host (a test double, a local
/// proxy), never with a user or password in it (they would print with the URL).
pub fn vendor_url(text: &str) -> Option<Url> {
    let url = Url::parse(text.trim()).ok()?;
    let loopback = || {
        url.host_str().is_some_and(|host| {
            host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
    };
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => loopback(),
        _ => false,
    };
    let plain = url.username().is_empty() && url.password().is_none();
    (scheme_ok && plain && !url.cannot_be_a_base() && url.host_str().is_some()).then_some(url)
}

impl std::fmt::Debug for VendorHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorHttp")
            .field("vendor", &self.vendor)
            .field("base_url", &self.base_url.as_str())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl VendorAnswer {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The answer's JSON as the vendor sent it (`null` for an empty body). Not scrubbed: for
    /// the vendor module to read, not to show.
    pub fn body(&self) -> &Value {
        &self.body
    }

    pub fn into_body(self) -> Value {
        self.body
    }

    /// The body as `T`; a body of another shape is `PosError::BadAnswer`, echoing it scrubbed.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PosError> {
        T::deserialize(&self.body).map_err(|e| {
            bad_answer(
                self.vendor,
                format!("the answer has an unexpected shape: {}", shape_error(&e)),
                self.status,
                self.redactor.echo(&self.body),
            )
        })
    }

    /// The answer as it may be shown: scrubbed and cut. For vendor modules building
    /// `PosError::Rejected`/`Upstream` from an envelope that says "failed" under a 200.
    pub fn vendor_response(&self) -> VendorResponse {
        VendorResponse {
            vendor: self.vendor,
            status: self.status.as_u16(),
            body: self.redactor.echo(&self.body),
        }
    }

    /// The error the status maps to after all, for an accepted status the vendor module decided
    /// is a failure.
    pub fn into_error(self) -> PosError {
        error_for_status(
            self.vendor,
            self.status,
            &self.headers,
            self.redactor.echo(&self.body),
            self.max_retry_after,
        )
    }
}

/// Status only: the body may hold customers' details.
impl std::fmt::Debug for VendorAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorAnswer")
            .field("vendor", &self.vendor)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}
