//! Test doubles for the POS vendors: small HTTP servers on loopback that speak each vendor's
//! paths, auth and JSON, keep state (a created customer can be found, an update sticks),
//! enforce the vendor's required fields with the vendor's own error bodies, and can be told to
//! fail (401, 422, 429 with `Retry-After`, 5xx, a slow answer, a body that is not JSON, a huge
//! body, a connection cut mid-body, or a fault *after* a write was done).
//!
//! Used by pos-adapters' contract tests, http-api's end-to-end tests and the benchmarks; never
//! by the gateway itself. Depends on no crate of the workspace, so what a double says about a
//! vendor is written once, independently of the adapter it checks.
//!
//! Each double runs its own actix system on a thread of its own, so tests on any runtime (or
//! none) can use it; dropping the [`Double`] stops the server.

// Handlers return `Result<_, HttpResponse>` to answer early with the vendor's error; the size
// of an error is irrelevant in a test double.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;

pub mod dutchie;
pub mod treez;

/// The kind of request a fault applies to, and that [`Double::calls`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Token,
    List,
    Search,
    Get,
    Create,
    Update,
    /// A credentials check such as Dutchie's `GET /whoami`.
    WhoAmI,
    /// For [`Double::fail`]: every request.
    Any,
}

/// What a double does instead of (or after) answering normally.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answers normally: queued before other faults, it picks which call they hit.
    Pass,
    /// 401 with the vendor's body, whatever credentials came.
    Unauthorized,
    /// The vendor's validation error (status and body as the vendor sends them).
    Invalid,
    /// This status with the vendor's error body.
    Status(u16),
    /// 429 with this `Retry-After` value (seconds or an HTTP date).
    RateLimited { retry_after: String },
    /// Answers normally, this much later: a timeout when longer than the client waits.
    Delay(Duration),
    /// 200 with an HTML page.
    Garbage,
    /// 200 with a JSON body of about this many bytes.
    Huge(usize),
    /// 200, part of a body, then the connection is cut.
    ResetMidBody,
    /// Does the write (the customer exists at the vendor), then answers with this fault, so
    /// the client cannot know it succeeded: the case where a blind retry creates a duplicate.
    AfterCommit(Box<Fault>),
}

/// One request a double received.
#[derive(Clone, Debug)]
pub struct Call {
    pub op: Op,
    pub method: String,
    pub path: String,
    pub body: String,
}

struct Rule {
    op: Op,
    fault: Fault,
    remaining: u32,
}

/// State every double keeps besides its customers: queued faults, calls, a fixed latency.
#[derive(Default)]
pub(crate) struct Shared {
    rules: Mutex<VecDeque<Rule>>,
    calls: Mutex<Vec<Call>>,
    latency: Mutex<Duration>,
}

/// What a vendor's errors look like, so shared faults answer in the vendor's own shape.
pub(crate) trait Style: Send + Sync + 'static {
    /// The body of an error with this status and reason.
    fn error(&self, status: u16, reason: &str) -> Value;
    /// The status and body of a validation failure not tied to our request's content.
    fn invalid(&self) -> (u16, Value);
}

/// What a handler does after [`Shared::gate`].
pub(crate) enum Gate {
    /// Serve the request; if a fault is given, answer with it after doing the work.
    Proceed(Option<Fault>),
    /// Answer with this, without doing anything.
    Respond(HttpResponse),
}

/// A lock that survives a panicking test thread: doubles keep serving other tests.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Records the call, waits the configured latency, and decides whether a fault applies.
    pub(crate) async fn gate(
        &self,
        op: Op,
        request: &HttpRequest,
        body: &[u8],
        style: &dyn Style,
    ) -> Gate {
        lock(&self.calls).push(Call {
            op,
            method: request.method().to_string(),
            path: request.uri().to_string(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
        let latency = *lock(&self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let fault = {
            let mut rules = lock(&self.rules);
            let found = rules.iter_mut().position(|r| r.op == op || r.op == Op::Any);
            found.and_then(|i| {
                let rule = rules.get_mut(i)?;
                rule.remaining = rule.remaining.saturating_sub(1);
                let fault = rule.fault.clone();
                if rule.remaining == 0 {
                    rules.remove(i);
                }
                Some(fault)
            })
        };
        match fault {
            None | Some(Fault::Pass) => Gate::Proceed(None),
            Some(Fault::Delay(wait)) => {
                tokio::time::sleep(wait).await;
                Gate::Proceed(None)
            }
            Some(Fault::AfterCommit(fault)) => Gate::Proceed(Some(*fault)),
            Some(fault) => Gate::Respond(respond_with(&fault, style).await),
        }
    }
}

/// The answer a fault gives.
pub(crate) async fn respond_with(fault: &Fault, style: &dyn Style) -> HttpResponse {
    let status = |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
    match fault {
        Fault::Unauthorized => HttpResponse::Unauthorized().json(style.error(
            401,
            "Full authentication is required to access this resource",
        )),
        Fault::Invalid => {
            let (code, body) = style.invalid();
            HttpResponse::build(status(code)).json(body)
        }
        Fault::Status(code) => {
            HttpResponse::build(status(*code)).json(style.error(*code, "INJECTED_FAULT"))
        }
        Fault::RateLimited { retry_after } => HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", retry_after.as_str()))
            .json(style.error(429, "Too many requests")),
        Fault::Delay(wait) => {
            tokio::time::sleep(*wait).await;
            HttpResponse::GatewayTimeout().finish()
        }
        Fault::Garbage => HttpResponse::Ok()
            .content_type("text/html")
            .body("<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"),
        Fault::Huge(bytes) => {
            let filler = "x".repeat(*bytes);
            HttpResponse::Ok()
                .content_type("application/json")
                .body(format!("{{\"data\":\"{filler}\"}}"))
        }
        Fault::ResetMidBody => {
            let chunks: Vec<Result<Bytes, actix_web::Error>> = vec![
                Ok(Bytes::from_static(
                    b"{\"resultCode\":\"SUCCESS\",\"data\":[",
                )),
                Err(actix_web::error::ErrorInternalServerError(
                    "connection cut by the test double",
                )),
            ];
            HttpResponse::Ok()
                .content_type("application/json")
                .streaming(futures::stream::iter(chunks))
        }
        Fault::AfterCommit(inner) => Box::pin(respond_with(inner, style)).await,
        Fault::Pass => HttpResponse::Ok().json(Value::Null),
    }
}

/// A running double. Cheap to query from tests; dropping it stops the server.
pub struct Double {
    base_url: String,
    shared: Arc<Shared>,
    server: ServerHandle,
}

impl Double {
    /// Starts a server on a random loopback port with the vendor's routes.
    pub(crate) fn start<F>(shared: Arc<Shared>, routes: F) -> std::io::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("vendor-double-{}", address.port()))
            .spawn(move || {
                let system = actix_web::rt::System::new();
                let started = HttpServer::new(move || {
                    App::new()
                        .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                        .configure(routes.clone())
                })
                .workers(2)
                .backlog(4096)
                .max_connections(100_000)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener)
                .map(HttpServer::run);
                match started {
                    Ok(server) => {
                        let _ = sender.send(Ok(server.handle()));
                        let _ = system.block_on(server);
                    }
                    Err(error) => {
                        let _ = sender.send(Err(error));
                    }
                }
            })?;
        let server = receiver
            .recv()
            .map_err(|_| std::io::Error::other("the double's thread ended before starting"))??;
        Ok(Self {
            base_url: format!("http://{address}"),
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// The next `times` requests of kind `op` (or any, with [`Op::Any`]) get `fault`. Rules
    /// apply in the order they were added.
    pub fn fail(&self, op: Op, fault: Fault, times: u32) -> &Self {
        lock(&self.shared.rules).push_back(Rule {
            op,
            fault,
            remaining: times.max(1),
        });
        self
    }

    /// Drops every queued fault.
    pub fn heal(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Every request answers this much later (the benchmarks' slow vendor).
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    /// The requests received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.calls).clone()
    }

    /// How many requests of kind `op` were received.
    pub fn count(&self, op: Op) -> usize {
        lock(&self.shared.calls)
            .iter()
            .filter(|c| op == Op::Any || c.op == op)
            .count()
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        // `stop` sends its command at once; the returned future only waits for completion.
        drop(self.server.stop(false));
    }
}

impl std::fmt::Debug for Double {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Double")
            .field("url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Digits only, for phone matching.
pub(crate) fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// A JSON string field, trimmed, or `None` when absent, null or blank.
pub(crate) fn text<'a>(object: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}
