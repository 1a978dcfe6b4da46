//! The actix-web application: routes, middleware (request ids, logs, metrics), health checks,
//! the server with graceful shutdown, and the background recovery of vendor creates a crash
//! left out of the mirror.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::{self, Data};
use actix_web::{App, HttpMessage, HttpResponse, HttpServer};
use actix_web_prom::PrometheusMetricsBuilder;
use domain::{CustomerService, ServiceSettings};
use persistence::Database;
use serde::Serialize;
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa::ToSchema;

use crate::auth::TokenVerifier;
use crate::config::{Config, JwtKey};
use crate::error::ApiError;
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

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz").route(web::get().to(healthz)))
        .service(resource("/readyz").route(web::get().to(readyz)))
        .service(resource("/openapi.json").route(web::get().to(openapi::openapi_json)))
        .service(resource("/docs").route(web::get().to(openapi::docs_page)))
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
        Arc::new(Connections::new(
            database.clone(),
            pos_adapters::Settings::with_timeout(config.pos_timeout),
        )),
        ServiceSettings::for_pos_timeout(config.pos_timeout),
    )
}

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
            tokio::time::sleep(period).await;
        };
        tokio::select! {
            _ = &mut stopped => break,
            () = pass => {}
        }
    }
    tracing::info!("recovery of journaled vendor creates stopped");
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
    })
}

/// The HTTP server on `listener`; it stops gracefully on SIGINT/SIGTERM, giving requests in
/// flight up to 10 s.
pub fn server(state: AppState, listener: TcpListener) -> anyhow::Result<Server> {
    let state = Data::new(state);
    let metrics = PrometheusMetricsBuilder::new("pos_gateway")
        .endpoint("/metrics")
        // Scanners probing random paths must not mint a time series each.
        .mask_unmatched_patterns("UNKNOWN")
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up metrics: {e}"))?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(routes)
            .default_service(web::to(not_found))
            .wrap_fn(|req, srv| {
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
            })
            .wrap(TracingLogger::default())
            .wrap(metrics.clone())
    })
    .listen(listener)?
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
    .run();
    Ok(server)
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
