//! What a service may watch of vendor calls, without this crate depending on a metrics or
//! tracing backend: a [`VendorObserver`] installed once per process is told of each attempt,
//! retry, rate-limit wait and circuit change, and may add headers to every request (the W3C
//! `traceparent` of the call's span). pos-gateway's http-api installs one that feeds
//! Prometheus and OpenTelemetry; without one, nothing is observed and nothing is added.
//!
//! Every call also has a `tracing` span (`vendor call`, one per attempt) and a log line, with
//! the vendor, the operation, the method and the [route template](super::VendorRequest::route)
//! (never the URL: it may hold a customer's id, e-mail or name).

use std::sync::OnceLock;
use std::time::Duration;

use domain::Vendor;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

/// Told of what the adapters' HTTP plumbing does. Every method has a default that does
/// nothing. Called on the request's task: keep them quick and never blocking.
pub trait VendorObserver: Send + Sync + 'static {
    /// Adds headers to a request about to be sent (inside the attempt's span), such as the
    /// trace context. Never a credential: the adapters do not scrub these from echoes.
    fn inject_context(&self, _headers: &mut HeaderMap) {}

    /// One attempt ended (answered, or failed to be answered).
    fn attempt(&self, _attempt: &Attempt<'_>) {}

    /// A read is sent again after `reason`.
    fn retry(&self, _vendor: Vendor, _operation: &'static str, _reason: RetryReason) {}

    /// The store's rate limiter was asked for a permit: how long it took, and whether one was
    /// given (`false`: the wait would not fit in the deadline and the call was refused).
    fn rate_limit(&self, _vendor: Vendor, _waited: Duration, _admitted: bool) {}

    /// A call was refused without reaching the vendor because the store's circuit is open.
    fn circuit_refused(&self, _vendor: Vendor) {}

    /// A store's circuit opened (`true`: it was closed) or closed again (`false`).
    fn circuit_changed(&self, _vendor: Vendor, _opened: bool) {}
}

/// One attempt of a vendor call, as an observer sees it.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    pub vendor: Vendor,
    /// The port's operation the call is part of: `find`, `get`, `create`, `update`, or
    /// `other` outside one (see [`operation`]).
    pub operation: &'static str,
    pub method: &'a Method,
    /// The path template (`customer/{}`), never the URL.
    pub route: &'a str,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub outcome: Outcome,
    /// From the request's start to its answer's end (or failure).
    pub elapsed: Duration,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The vendor answered with this status (its body may still have been refused).
    Status(StatusCode),
    /// No answer within the deadline.
    Timeout,
    /// No connection could be made.
    ConnectFailed,
    /// The connection broke before the answer was read.
    ConnectionLost,
}

impl Outcome {
    /// A small, fixed set of values for a metric label: `2xx`, `3xx`, `4xx`, `429`, `5xx`,
    /// `timeout`, `connect_error`, `connection_lost`.
    pub fn class(&self) -> &'static str {
        match self {
            Outcome::Status(StatusCode::TOO_MANY_REQUESTS) => "429",
            Outcome::Status(s) if s.is_success() => "2xx",
            Outcome::Status(s) if s.is_redirection() => "3xx",
            Outcome::Status(s) if s.is_client_error() => "4xx",
            Outcome::Status(_) => "5xx",
            Outcome::Timeout => "timeout",
            Outcome::ConnectFailed => "connect_error",
            Outcome::ConnectionLost => "connection_lost",
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Outcome::Status(status) => Some(*status),
            _ => None,
        }
    }
}

/// Why a read was sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryReason {
    Timeout,
    ConnectFailed,
    ConnectionLost,
    ServerError,
    RateLimited,
}

impl RetryReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            RetryReason::Timeout => "timeout",
            RetryReason::ConnectFailed => "connect_error",
            RetryReason::ConnectionLost => "connection_lost",
            RetryReason::ServerError => "5xx",
            RetryReason::RateLimited => "429",
        }
    }
}

static OBSERVER: OnceLock<Box<dyn VendorObserver>> = OnceLock::new();

/// Installs the process's observer; `false` (and `observer` dropped) when one already is.
pub fn install(observer: impl VendorObserver) -> bool {
    OBSERVER.set(Box::new(observer)).is_ok()
}

pub(crate) fn observer() -> Option<&'static dyn VendorObserver> {
    OBSERVER.get().map(|observer| &**observer)
}

tokio::task_local! {
    static OPERATION: &'static str;
}

/// Runs `future` with every vendor call in it counted as part of `name` (the registry's
/// wrapper names each port operation: `find`, `get`, `create`, `update`).
pub async fn operation<F: Future>(name: &'static str, future: F) -> F::Output {
    OPERATION.scope(name, future).await
}

/// The operation this task runs, `other` outside one.
pub fn current_operation() -> &'static str {
    OPERATION.try_with(|name| *name).unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_fall_in_a_few_classes() {
        let class = |status: u16| Outcome::Status(StatusCode::from_u16(status).unwrap()).class();
        assert_eq!(
            [
                class(200),
                class(201),
                class(304),
                class(404),
                class(429),
                class(503)
            ],
            ["2xx", "2xx", "3xx", "4xx", "429", "5xx"]
        );
        assert_eq!(Outcome::Timeout.class(), "timeout");
    }

    #[tokio::test]
    async fn the_operation_holds_inside_its_scope_only() {
        assert_eq!(current_operation(), "other");
        assert_eq!(
            operation("find", async { current_operation() }).await,
            "find"
        );
        assert_eq!(current_operation(), "other");
    }
}
