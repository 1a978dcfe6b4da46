//! The actix-web application: routes, middleware (request ids, logs with masked query values,
//! metrics with bounded labels), health checks, the servers (public and operations) with
//! graceful shutdown, and the background recovery of vendor creates a crash
//! left out of the mirror.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue, USER_AGENT};
use actix_web::web::{self, Data};
use actix_web::{App, Error, HttpMessage, HttpResponse, HttpServer};
use actix_web_prom::PrometheusMetricsBuilder;
use domain::{CustomerService, ServiceSettings};
use persistence::Database;
use prometheus::{Encoder as _, Registry, TextEncoder};
use serde::Serialize;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder, TracingLogger};
use utoipa::ToSchema;

use crate::auth::TokenVerifier;
use crate::config::{Config, JwtKey};
use crate::error::ApiError;
use crate::limits::Limits;
use crate::openapi;
use crate::routes;
use crate::state::{AppState, CachedStores, Connections, STORE_CACHE_TTL};

const READY_TIMEOUT: Duration = Duration::from_secs(2);
const SHUTDOWN_TIMEOUT_SECS: u64 = 10;
/// Journaled vendor creates one recovery pass looks at, at most.
const RECOVERY_BATCH: u32 = 100;
/// The longest pause between recovery passes.
const RECOVERY_EVERY: Duration = Duration::from_secs(10);

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `unavailable`.
    pub status: String,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "The database answers", body = Health),
              (status = 503, description = "The database does not answer", body = Health)))]
pub async fn readyz(state: Data<AppState>) -> HttpResponse {
    match tokio::time::timeout(READY_TIMEOUT, state.database.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(Health {
            status: "ready".into(),
        }),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            HttpResponse::ServiceUnavailable().json(Health {
                status: "unavailable".into(),
            })
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer within {READY_TIMEOUT:?}");
            HttpResponse::ServiceUnavailable().json(Health {
                status: "unavailable".into(),
            })
        }
    }
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// A resource whose wrong methods get the contract's 405 body.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// `/metrics`: every series of `registry`, in Prometheus' text format, and each store's last
/// sync, read from the database (see `sync::metric_families`).
async fn metrics(
    registry: Data<Registry>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut families = registry.gather();
    if let Some(vendor) = &*crate::telemetry::VENDOR_METRICS {
        families.extend(vendor.gather());
    }
    families.extend(crate::sync::metric_families(&state.database).await);
    families.extend(write_behind_families(&state.database));
    let mut text = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut text)
        .map_err(|e| ApiError::Internal(format!("cannot encode the metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// The mirror's copies of read answers written behind them (`persistence::BehindStats`), as
/// counters: the process's own, read at each scrape.
fn write_behind_families(database: &Database) -> Vec<prometheus::proto::MetricFamily> {
    let stats = database.write_behind_stats();
    let counter = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "pos_gateway_mirror_writes_behind_total",
            "Customers of POS read answers copied into the mirror after the answer, by outcome: written, dropped (the queue was full; the next read or sync copies them) or failed.",
        ),
        &["outcome"],
    );
    let statements = prometheus::IntCounter::new(
        "pos_gateway_mirror_write_behind_statements_total",
        "Statements that wrote those copies: one per store per batch, a batch being what is queued within a few milliseconds.",
    );
    let (Ok(counter), Ok(statements)) = (counter, statements) else {
        return Vec::new();
    };
    for (outcome, n) in [
        ("written", stats.written),
        ("dropped", stats.dropped),
        ("failed", stats.failed),
    ] {
        counter.with_label_values(&[outcome]).inc_by(n);
    }
    statements.inc_by(stats.statements);
    let registry = Registry::new();
    if registry.register(Box::new(counter)).is_err()
        || registry.register(Box::new(statements)).is_err()
    {
        return Vec::new();
    }
    registry.gather()
}

/// The API, the OpenAPI document and `/healthz`: what the public listener always serves.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(healthz)))
        .service(resource("/openapi.json").route(web::get().to(openapi::openapi_json)))
        .service(resource("/docs").route(web::get().to(openapi::docs_redirect)))
        .service(openapi::swagger_ui())
        .service(
            web::scope("/api/v1/{catalog_id}")
                .service(
                    resource("/customers")
                        .route(web::post().to(routes::create_customer))
                        .route(web::get().to(routes::list_customers)),
                )
                // Before `{customer_id}`, so "bulk" is never taken for an id.
                .service(resource("/customers/bulk").route(web::post().to(routes::bulk_create)))
                .service(
                    resource("/customers/{customer_id}")
                        .route(web::get().to(routes::get_customer))
                        .route(web::patch().to(routes::patch_customer))
                        .route(web::put().to(routes::put_customer)),
                )
                .service(resource("/pos").route(web::get().to(routes::pos_capabilities))),
        );
}

/// `/metrics` and `/readyz`: on the operations listener when there is one, else on the public
/// one. (`/healthz` is on both.)
pub fn ops_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/readyz").route(web::get().to(readyz)))
        .service(resource("/metrics").route(web::get().to(metrics)));
}

/// The methods HTTP defines. Any other token is a valid method to actix, so labelling metrics
/// (or logs) by it would let anyone mint a new series per request (`X1`, `X2`, ...).
fn is_standard(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ]
    .contains(method)
}

/// What a request with a non-standard method is seen as, past the outermost middleware: no
/// route has it, so it is the 404 or 405 it would have been, counted and logged as one value.
pub const OTHER_METHOD: &str = "OTHER";

/// The root span of every request's log lines: `tracing-actix-web`'s fields, with the query
/// string's values masked in `http.target` (`?email=***&phone=***`), since a search's values
/// are customer data. Paths (customer ids) are kept.
pub struct MaskedRootSpan;

impl RootSpanBuilder for MaskedRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let target = masked_target(request.path(), request.query_string());
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "default".to_owned());
        let user_agent = request
            .headers()
            .get(USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let connection = request.connection_info();
        let span = tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.flavor = ?request.version(),
            http.scheme = %connection.scheme(),
            http.host = %connection.host(),
            http.client_ip = %connection.realip_remote_addr().unwrap_or(""),
            http.user_agent = %user_agent,
            http.target = %target,
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{} {}", request.method(), route),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            request_id = %request_id,
            store = tracing::field::Empty,
            vendor = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        );
        crate::telemetry::continue_trace(request.headers(), &span);
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// `path?name=***&other=***`: each parameter's name kept, its value masked; a parameter
/// without `=` is masked whole (it may be a bare value).
pub fn masked_target(path: &str, query: &str) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => format!("{name}=***"),
            None if pair.is_empty() => String::new(),
            None => "***".to_owned(),
        })
        .collect();
    format!("{path}?{}", masked.join("&"))
}

/// The use cases over `database` (which must carry the credentials key) and the vendors. How
/// old a journaled vendor create must be before recovery looks for it follows the POS timeout.
pub fn service(config: &Config, database: &Database) -> CustomerService {
    CustomerService::new(
        Arc::new(CachedStores::new(
            Arc::new(database.stores()),
            STORE_CACHE_TTL,
        )),
        Arc::new(database.mirror()),
        Arc::new(database.idempotency()),
        Arc::new(database.outbox()),
        Arc::new(
            Connections::new(
                database.clone(),
                pos_adapters::Settings::with_timeout(config.pos_timeout),
            )
            .among_replicas(config.replicas),
        ),
        Arc::new(database.create_locks()),
        ServiceSettings::for_pos_timeout(config.pos_timeout),
    )
}

/// Expired idempotency records deleted per statement, and statements per pass.
const PURGE_BATCH: u32 = 500;
const PURGE_BATCHES: u32 = 20;

/// The pause between recovery passes: a quarter of the orphan age (so an orphan waits at most
/// that much past it), between 1 and 10 seconds.
pub fn recovery_period(settings: &ServiceSettings) -> Duration {
    (settings.orphan_age / 4).clamp(Duration::from_secs(1), RECOVERY_EVERY)
}

/// The background task that runs [`CustomerService::recover_pending`] at once and then every
/// [`recovery_period`], until [`Recovery::stop`].
pub struct Recovery {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Recovery {
    /// Starts it on the current Tokio runtime; it does not hold up anything else.
    pub fn spawn(service: Arc<CustomerService>) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(recover_until(service, stopped));
        Self { stop, task }
    }

    /// Stops it and waits until it has. A pass cut short is harmless: every step of recovery
    /// can be repeated, and what it did not reach stays journaled for the next start.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the recovery task ended abnormally");
        }
    }
}

async fn recover_until(
    service: Arc<CustomerService>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let period = recovery_period(service.settings());
    tracing::info!(
        orphan_age_ms =
            u64::try_from(service.settings().orphan_age.as_millis()).unwrap_or(u64::MAX),
        period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
        "recovery of journaled vendor creates started"
    );
    loop {
        let pass = async {
            match service.recover_pending(RECOVERY_BATCH).await {
                Ok(report) if report.examined() > 0 => tracing::info!(
                    recovered = report.recovered,
                    not_found = report.not_found,
                    dropped = report.dropped,
                    deferred = report.deferred,
                    "recovery pass over journaled vendor creates"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "recovery pass failed; trying again later"),
            }
            purge_expired(&service).await;
            tokio::time::sleep(period).await;
        };
        tokio::select! {
            _ = &mut stopped => break,
            () = pass => {}
        }
    }
    tracing::info!("recovery of journaled vendor creates stopped");
}

/// Idempotency records past their 24 hours, in bounded batches (a short statement each, so
/// kiosks' requests are never held up behind one long delete), at most `PURGE_BATCHES` per pass.
async fn purge_expired(service: &CustomerService) {
    let mut purged = 0;
    for _ in 0..PURGE_BATCHES {
        match service.purge_idempotency(PURGE_BATCH).await {
            Ok(n) => {
                purged += n;
                if n < u64::from(PURGE_BATCH) {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not purge expired idempotency records");
                break;
            }
        }
    }
    if purged > 0 {
        tracing::info!(purged, "purged expired idempotency records");
    }
}

/// Builds the application state from the configuration and an open database.
pub fn state(config: &Config, database: Database) -> anyhow::Result<AppState> {
    let key = config.jwt_key.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "POS_GATEWAY_JWT_SECRET is not set: `serve` needs it (or POS_GATEWAY_JWT_SECRETS, \
             or POS_GATEWAY_JWT_PUBLIC_KEY) to check tokens; 32 random bytes: {}. \
             (`pos-gateway demo` makes one for trying things out.)",
            crate::config::MAKE_A_SECRET
        )
    })?;
    state_with_key(config, key, database)
}

pub fn state_with_key(
    config: &Config,
    key: &JwtKey,
    database: Database,
) -> anyhow::Result<AppState> {
    let verifier = TokenVerifier::new(key, &config.jwt_audience, config.jwt_max_ttl)?;
    // Store configs hold vendor credentials, encrypted with this key.
    let database = database.with_credentials_key(config.credentials_key.clone());
    Ok(AppState {
        service: Arc::new(service(config, &database)),
        verifier,
        database,
        limits: Limits::new(config),
        body_timeout: config.body_timeout,
    })
}

/// The HTTP server on `listener`, with `/metrics` and `/readyz` on it too; it stops gracefully
/// on SIGINT/SIGTERM, giving requests in flight up to 10 s.
pub fn server(state: AppState, listener: TcpListener) -> anyhow::Result<Server> {
    Ok(servers(state, listener, None)?.api)
}

/// The public server and, with `ops`, the operations server (`/metrics`, `/readyz`,
/// `/healthz`) on a listener of its own; the public one then serves neither `/metrics` nor
/// `/readyz`. Both count into one set of metrics.
pub struct Servers {
    pub api: Server,
    pub ops: Option<Server>,
}

impl Servers {
    /// Runs until both have stopped (a signal stops both; one that ends stops the other).
    pub async fn run(self) -> std::io::Result<()> {
        let Some(ops) = self.ops else {
            return self.api.await;
        };
        let (api_handle, ops_handle) = (self.api.handle(), ops.handle());
        let api = async {
            let ended = self.api.await;
            ops_handle.stop(true).await;
            ended
        };
        let ops = async {
            let ended = ops.await;
            api_handle.stop(true).await;
            ended
        };
        let (api, ops) = futures::future::join(api, ops).await;
        api.and(ops)
    }
}

pub fn servers(
    state: AppState,
    listener: TcpListener,
    ops: Option<TcpListener>,
) -> anyhow::Result<Servers> {
    let state = Data::new(state);
    let metrics = PrometheusMetricsBuilder::new("pos_gateway")
        // Scanners probing random paths must not mint a time series each.
        .mask_unmatched_patterns("UNKNOWN")
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up metrics: {e}"))?;
    let registry = Data::new(metrics.registry.clone());
    crate::telemetry::VendorMetrics::install();
    let separate_ops = ops.is_some();
    let api = {
        let (state, metrics, registry) = (state.clone(), metrics.clone(), registry.clone());
        HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(registry.clone())
                .configure(routes)
                .configure(|cfg| {
                    if !separate_ops {
                        ops_routes(cfg);
                    }
                })
                .default_service(web::to(not_found))
                .wrap_fn(add_request_id)
                .wrap_fn(log_request)
                .wrap(TracingLogger::<MaskedRootSpan>::new())
                .wrap(metrics.clone())
                .wrap_fn(collapse_methods)
        })
        .listen(listener)?
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        .run()
    };
    let ops = match ops {
        None => None,
        Some(listener) => Some(
            HttpServer::new(move || {
                App::new()
                    .app_data(state.clone())
                    .app_data(registry.clone())
                    .service(resource("/healthz").route(web::get().to(healthz)))
                    .configure(ops_routes)
                    .default_service(web::to(not_found))
                    .wrap_fn(add_request_id)
                    .wrap(TracingLogger::<MaskedRootSpan>::new())
                    .wrap(metrics.clone())
                    .wrap_fn(collapse_methods)
            })
            .listen(listener)?
            .workers(1)
            .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
            .run(),
        ),
    };
    Ok(Servers { api, ops })
}

/// The outermost middleware: a non-standard method becomes [`OTHER_METHOD`] before metrics,
/// logs or routing see it.
fn collapse_methods<S>(mut req: ServiceRequest, srv: &S) -> S::Future
where
    S: Service<ServiceRequest>,
{
    if !is_standard(req.method())
        && let Ok(other) = Method::from_bytes(OTHER_METHOD.as_bytes())
    {
        req.head_mut().method = other;
    }
    srv.call(req)
}

/// One line per request, in its span (request id, route, store, vendor), once answered: its
/// status and how long it took.
fn log_request<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    let started = std::time::Instant::now();
    let call = srv.call(req);
    async move {
        let answered = call.await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let status = match &answered {
            Ok(response) => response.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        tracing::info!(status = status.as_u16(), latency_ms, "request finished");
        answered
    }
}

/// `X-Request-Id` on every answer: the id `tracing-actix-web` gave the request's log lines.
fn add_request_id<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let call = srv.call(req);
    async move {
        let mut response = call.await?;
        if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-request-id"), value);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_passes_follow_the_orphan_age_within_bounds() {
        let period = |timeout_ms| {
            recovery_period(&ServiceSettings::for_pos_timeout(Duration::from_millis(
                timeout_ms,
            )))
        };
        // 1 s POS timeout: orphans after 7 s, looked for every 1.75 s.
        assert_eq!(period(1000), Duration::from_millis(1750));
        assert_eq!(period(10), Duration::from_secs(1));
        assert_eq!(period(10_000), Duration::from_secs(10));
    }
}
