//! The actix-web application: routes, middleware (request ids, logs, metrics), health checks
//! and the server with graceful shutdown.

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
use crate::state::{AppState, Connections};

const READY_TIMEOUT: Duration = Duration::from_secs(2);
const SHUTDOWN_TIMEOUT_SECS: u64 = 10;

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

/// The use cases over `database` (which must carry the credentials key) and the vendors.
pub fn service(config: &Config, database: &Database) -> CustomerService {
    CustomerService::new(
        Arc::new(database.stores()),
        Arc::new(database.mirror()),
        Arc::new(database.idempotency()),
        Arc::new(Connections::new(
            database.clone(),
            pos_adapters::Settings::with_timeout(config.pos_timeout),
        )),
        ServiceSettings::default(),
    )
}

/// Builds the application state from the configuration and an open database.
pub fn state(config: &Config, database: Database) -> anyhow::Result<AppState> {
    let key = config.jwt_key.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "POS_GATEWAY_JWT_SECRET is not set: `serve` needs it to check tokens \
             (at least 32 characters; `pos-gateway demo` makes one for trying things out)"
        )
    })?;
    state_with_key(config, key, database)
}

pub fn state_with_key(
    config: &Config,
    key: &JwtKey,
    database: Database,
) -> anyhow::Result<AppState> {
    let verifier = TokenVerifier::new(key, &config.jwt_audience)?;
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
