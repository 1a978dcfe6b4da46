//! The handlers of `/api/v1/{catalog_id}/...`: each turns the request into domain values once,
//! calls one use case and renders its outcome.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::web::{Data, Payload};
use actix_web::{FromRequest, HttpRequest, HttpResponse, HttpResponseBuilder};
use domain::{
    CatalogId, CreateOutcome, CustomerError, CustomerId, CustomerService, IdempotencyKey,
};
use sha2::{Digest, Sha256};

use crate::dto::{
    self, BulkItemResult, BulkResponse, CustomerDto, CustomerEnvelope, CustomerList, PosInfo,
};
use crate::error::{ApiError, ErrorResponse};
use crate::state::AppState;

const DATA_SOURCE: &str = "X-Data-Source";
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A catalog the bearer token grants. The token is checked first (401), then the grant: a
/// catalog the token does not name answers exactly like one that does not exist (404); then
/// the catalog's request budget (429).
pub struct Grant {
    pub catalog: CatalogId,
}

impl FromRequest for Grant {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(grant(req))
    }
}

fn grant(req: &HttpRequest) -> Result<Grant, ApiError> {
    let state = req
        .app_data::<Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("application state is missing".into()))?;
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or(ApiError::Unauthorized)?;
    let claims = state.verifier.verify(token).ok_or(ApiError::Unauthorized)?;
    let catalog = req.match_info().get("catalog_id").unwrap_or_default();
    let catalog = match CatalogId::parse(catalog) {
        Some(catalog) if claims.grants(catalog.as_str()) => catalog,
        _ => return Err(ApiError::CatalogNotFound),
    };
    // Every request of a catalog spends its budget, after the token and grant checks so that
    // nobody can spend another kiosk's.
    state.limits.charge(&catalog, 1)?;
    Ok(Grant { catalog })
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn customer_id(req: &HttpRequest) -> Result<CustomerId, ApiError> {
    req.match_info()
        .get("customer_id")
        .and_then(CustomerId::parse)
        .ok_or(ApiError::CustomerNotFound)
}

/// The request's `Idempotency-Key`, bound to its catalog, operation and exact body.
fn idempotency_key(
    req: &HttpRequest,
    catalog: &CatalogId,
    operation: &str,
    body: &[u8],
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_LEN)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{IDEMPOTENCY_KEY} must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            ))
        })?;
    Ok(Some(IdempotencyKey {
        scope: format!("{catalog}:{operation}"),
        key: key.to_owned(),
        fingerprint: hex::encode(Sha256::digest(body)),
    }))
}

/// Runs a write to completion even if the client goes away mid-request: a POS create that
/// was sent must reach the mirror and the idempotency record, whoever is still listening.
async fn detached<T: 'static>(
    work: impl Future<Output = Result<T, CustomerError>> + 'static,
) -> Result<T, ApiError> {
    actix_web::rt::spawn(work)
        .await
        .map_err(|e| ApiError::Internal(format!("request task failed: {e}")))?
        .map_err(ApiError::from)
}

fn with_source(
    mut response: HttpResponseBuilder,
    source: domain::DataSource,
) -> HttpResponseBuilder {
    response.insert_header((DATA_SOURCE, source.as_str()));
    response
}

fn service(state: &Data<AppState>) -> Arc<CustomerService> {
    state.service.clone()
}

#[utoipa::path(
    post, path = "/api/v1/{catalog_id}/customers", tag = "customers",
    params(("catalog_id" = String, Path, description = "The kiosk's catalog: 1 to 64 letters, digits, `-`, `_` or `.`", min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._-]+$"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for 24 h; 1 to 255 visible ASCII characters", min_length = 1, max_length = 255)),
    request_body = dto::CustomerRequest,
    responses(
        (status = 201, description = "Created at the POS", body = CustomerEnvelope),
        (status = 400, description = "Malformed JSON, no `customer`, or a bad Idempotency-Key", body = dto::ErrorBody),
        (status = 401, description = "No, bad or expired token", body = dto::ErrorBody),
        (status = 404, description = "Unknown or ungranted catalog", body = dto::ErrorBody),
        (status = 405, description = "The POS cannot create customers", body = dto::MethodNotAllowedBody),
        (status = 409, description = "A customer with this email, phone or licence exists (the body names them); or a request with this Idempotency-Key, or another create of a customer with one of these keys, is still in progress (`Retry-After`)", body = dto::ConflictBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 413, description = "Body over 1 MiB", body = dto::ErrorBody),
        (status = 415, description = "Not JSON", body = dto::ErrorBody),
        (status = 422, description = "Invalid fields, or a reused Idempotency-Key", body = dto::UnprocessableBody),
        (status = 502, description = "The POS refused or answered garbage, or the store's POS configuration is unusable", body = dto::PosErrorBody),
        (status = 503, description = "The POS or the database is unavailable", body = dto::UnavailableBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 504, description = "The POS did not answer in time", body = dto::PosErrorBody),
        (status = 408, description = "The body did not arrive within the deadline (`POS_GATEWAY_BODY_TIMEOUT`); the connection is closed", body = dto::ErrorBody),
        (status = 429, description = "This kiosk (catalog) is over its request budget", body = dto::RateLimitedBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = []))
)]
pub async fn create_customer(
    grant: Grant,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = dto::read_json_body(&req, payload, state.body_timeout).await?;
    let customer = dto::parse_create_body(&body, today())?;
    let key = idempotency_key(&req, &grant.catalog, "create", &body)?;
    let service = service(&state);
    let catalog = grant.catalog;
    let outcome =
        detached(async move { service.create(&catalog, customer, key.as_ref()).await }).await?;
    match outcome {
        CreateOutcome::Created(c) => Ok(HttpResponse::Created().json(CustomerEnvelope::from(&c))),
        CreateOutcome::AlreadyExists(c) => Err(ApiError::Duplicate(Box::new(c))),
    }
}

#[utoipa::path(
    post, path = "/api/v1/{catalog_id}/customers/bulk", tag = "customers",
    params(("catalog_id" = String, Path, description = "The kiosk's catalog: 1 to 64 letters, digits, `-`, `_` or `.`", min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._-]+$"),
           ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for 24 h; 1 to 255 visible ASCII characters", min_length = 1, max_length = 255)),
    request_body = dto::BulkRequest,
    responses(
        (status = 200, description = "One result per item, in input order", body = BulkResponse),
        (status = 400, description = "Malformed JSON, no `customers`, or a bad Idempotency-Key", body = dto::ErrorBody),
        (status = 401, description = "No, bad or expired token", body = dto::ErrorBody),
        (status = 404, description = "Unknown or ungranted catalog", body = dto::ErrorBody),
        (status = 405, description = "The POS cannot create customers", body = dto::MethodNotAllowedBody),
        (status = 409, description = "A request with this Idempotency-Key is still in progress", body = dto::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 413, description = "Body over 1 MiB", body = dto::ErrorBody),
        (status = 415, description = "Not JSON", body = dto::ErrorBody),
        (status = 422, description = "No items or more than 100, or a reused Idempotency-Key", body = dto::UnprocessableBody),
        (status = 502, description = "The store's POS configuration is unusable", body = dto::PosErrorBody),
        (status = 503, description = "The database is unavailable", body = dto::UnavailableBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 408, description = "The body did not arrive within the deadline (`POS_GATEWAY_BODY_TIMEOUT`); the connection is closed", body = dto::ErrorBody),
        (status = 429, description = "This kiosk (catalog) is over its request budget (a bulk counts one per item), or too many bulk requests are in flight", body = dto::RateLimitedBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = []))
)]
pub async fn bulk_create(
    grant: Grant,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = dto::read_json_body(&req, payload, state.body_timeout).await?;
    let parsed = dto::parse_bulk_body(&body, today())?;
    let key = idempotency_key(&req, &grant.catalog, "bulk", &body)?;
    // Held until the bulk's work is done, even if its client leaves.
    let in_flight = state.limits.start_bulk()?;
    // Each item is a create: the request paid for one, the others are paid for here.
    let items = u32::try_from(parsed.len()).unwrap_or(u32::MAX);
    state
        .limits
        .charge(&grant.catalog, items.saturating_sub(1))?;
    let service = service(&state);
    let catalog = grant.catalog;
    let outcomes = detached(async move {
        let _in_flight = in_flight;
        service.bulk_create(&catalog, parsed, key.as_ref()).await
    })
    .await?;
    let results = outcomes.into_iter().map(bulk_item).collect();
    Ok(HttpResponse::Ok().json(BulkResponse { results }))
}

fn bulk_item(outcome: domain::BulkItem) -> BulkItemResult {
    let error = match outcome {
        Ok(CreateOutcome::Created(c)) => {
            return BulkItemResult {
                status: StatusCode::CREATED.as_u16(),
                customer: Some(CustomerDto::from(&c)),
                error: None,
                errors: None,
                message: None,
                pos: None,
            };
        }
        Ok(CreateOutcome::AlreadyExists(c)) => ApiError::Duplicate(Box::new(c)),
        Err(e) => ApiError::from(e),
    };
    let mut item = BulkItemResult {
        status: error.status().as_u16(),
        customer: None,
        error: None,
        errors: None,
        message: None,
        pos: None,
    };
    match error.body() {
        ErrorResponse::Error(body) => item.error = Some(body.error),
        ErrorResponse::Validation(body) => item.errors = Some(body.errors),
        ErrorResponse::Duplicate(body) => {
            item.error = Some(body.error);
            item.customer = Some(body.customer);
        }
        ErrorResponse::MethodNotAllowed(body) => item.message = Some(body.message),
        ErrorResponse::ServiceUnavailable(body) => {
            item.error = Some(body.error);
            item.message = Some(body.message);
        }
        ErrorResponse::RateLimited(body) => {
            item.error = Some(body.error);
            item.message = Some(body.message);
        }
        ErrorResponse::Pos(body) => {
            item.error = Some(body.error);
            item.message = Some(body.message);
            item.pos = Some(body.pos);
        }
    }
    item
}

#[utoipa::path(
    get, path = "/api/v1/{catalog_id}/customers", tag = "customers",
    params(
        ("catalog_id" = String, Path, description = "The kiosk's catalog: 1 to 64 letters, digits, `-`, `_` or `.`", min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._-]+$"),
        ("phone" = Option<String>, Query, description = "Matched on digits only"),
        ("email" = Option<String>, Query, description = "Matched case-insensitively"),
        ("drivers_license" = Option<String>, Query, description = "Matched without case, spaces or dashes"),
        ("name" = Option<String>, Query, description = "Each word starts the first or last name"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 25", minimum = 1, maximum = 100),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of customers", body = CustomerList, headers(("X-Data-Source" = String, description = "`pos` (asked live) or `mirror` (the POS could not be asked)"))),
        (status = 400, description = "A malformed query string (e.g. a parameter given twice)", body = dto::ErrorBody),
        (status = 401, description = "No, bad or expired token", body = dto::ErrorBody),
        (status = 404, description = "Unknown or ungranted catalog", body = dto::ErrorBody),
        (status = 422, description = "Invalid filter, limit or cursor", body = dto::ValidationErrorBody),
        (status = 502, description = "The POS refused or answered garbage, or the store's POS configuration is unusable", body = dto::PosErrorBody),
        (status = 503, description = "The database is unavailable", body = dto::UnavailableBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 429, description = "This kiosk (catalog) is over its request budget", body = dto::RateLimitedBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = []))
)]
pub async fn list_customers(
    grant: Grant,
    req: HttpRequest,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (query, cursor) = dto::parse_list_query(req.query_string())?;
    let listing = state
        .service
        .list(&grant.catalog, query, cursor.as_deref())
        .await?;
    let body = CustomerList {
        customers: listing.customers.iter().map(CustomerDto::from).collect(),
        next_cursor: listing.next_cursor,
    };
    Ok(with_source(HttpResponse::Ok(), listing.source).json(body))
}

#[utoipa::path(
    get, path = "/api/v1/{catalog_id}/customers/{customer_id}", tag = "customers",
    params(("catalog_id" = String, Path, description = "The kiosk's catalog: 1 to 64 letters, digits, `-`, `_` or `.`", min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._-]+$"),
           ("customer_id" = String, Path, description = "The POS's customer id", min_length = 1, max_length = 128)),
    responses(
        (status = 200, description = "The customer", body = CustomerEnvelope, headers(("X-Data-Source" = String, description = "`pos` (asked live) or `mirror` (the POS could not be asked)"))),
        (status = 401, description = "No, bad or expired token", body = dto::ErrorBody),
        (status = 404, description = "Unknown catalog or customer", body = dto::ErrorBody),
        (status = 502, description = "The POS refused or answered garbage, or the store's POS configuration is unusable", body = dto::PosErrorBody),
        (status = 503, description = "The POS or the database is unavailable", body = dto::UnavailableBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 504, description = "The POS did not answer in time", body = dto::PosErrorBody),
        (status = 429, description = "This kiosk (catalog) is over its request budget", body = dto::RateLimitedBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = []))
)]
pub async fn get_customer(
    grant: Grant,
    req: HttpRequest,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = customer_id(&req)?;
    let (customer, source) = state.service.get(&grant.catalog, &id).await?;
    Ok(with_source(HttpResponse::Ok(), source).json(CustomerEnvelope::from(&customer)))
}

#[utoipa::path(
    patch, path = "/api/v1/{catalog_id}/customers/{customer_id}", tag = "customers",
    params(("catalog_id" = String, Path, description = "The kiosk's catalog: 1 to 64 letters, digits, `-`, `_` or `.`", min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._-]+$"),
           ("customer_id" = String, Path, description = "The POS's customer id", min_length = 1, max_length = 128)),
    request_body = dto::CustomerPatchRequest,
    responses(
        (status = 200, description = "The updated customer", body = CustomerEnvelope),
        (status = 400, description = "Malformed JSON or no `customer`", body = dto::ErrorBody),
        (status = 401, description = "No, bad or expired token", body = dto::ErrorBody),
        (status = 404, description = "Unknown catalog or customer", body = dto::ErrorBody),
        (status = 405, description = "The POS cannot update customers", body = dto::MethodNotAllowedBody),
        (status = 409, description = "The POS refused the change: another of its customers has this e-mail or phone (Treez, and the local POS, which keeps e-mail, phone and licence unique); the body names that customer", body = dto::DuplicateBody),
        (status = 413, description = "Body over 1 MiB", body = dto::ErrorBody),
        (status = 415, description = "Not JSON", body = dto::ErrorBody),
        (status = 422, description = "Invalid fields", body = dto::ValidationErrorBody),
        (status = 502, description = "The POS refused or answered garbage, or the store's POS configuration is unusable", body = dto::PosErrorBody),
        (status = 503, description = "The POS or the database is unavailable", body = dto::UnavailableBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 504, description = "The POS did not answer in time", body = dto::PosErrorBody),
        (status = 408, description = "The body did not arrive within the deadline (`POS_GATEWAY_BODY_TIMEOUT`); the connection is closed", body = dto::ErrorBody),
        (status = 429, description = "This kiosk (catalog) is over its request budget", body = dto::RateLimitedBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = []))
)]
pub async fn patch_customer(
    grant: Grant,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    update(grant, req, payload, state, dto::UpdateKind::Patch).await
}

#[utoipa::path(
    put, path = "/api/v1/{catalog_id}/customers/{customer_id}", tag = "customers",
    params(("catalog_id" = String, Path, description = "The kiosk's catalog: 1 to 64 letters, digits, `-`, `_` or `.`", min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._-]+$"),
           ("customer_id" = String, Path, description = "The POS's customer id", min_length = 1, max_length = 128)),
    request_body = dto::CustomerRequest,
    responses(
        (status = 200, description = "The replaced customer; absent optional fields are cleared", body = CustomerEnvelope),
        (status = 400, description = "Malformed JSON or no `customer`", body = dto::ErrorBody),
        (status = 401, description = "No, bad or expired token", body = dto::ErrorBody),
        (status = 404, description = "Unknown catalog or customer", body = dto::ErrorBody),
        (status = 405, description = "The POS cannot update customers", body = dto::MethodNotAllowedBody),
        (status = 409, description = "The POS refused the change: another of its customers has this e-mail or phone (Treez, and the local POS, which keeps e-mail, phone and licence unique); the body names that customer", body = dto::DuplicateBody),
        (status = 413, description = "Body over 1 MiB", body = dto::ErrorBody),
        (status = 415, description = "Not JSON", body = dto::ErrorBody),
        (status = 422, description = "Invalid fields; first and last name are required", body = dto::ValidationErrorBody),
        (status = 502, description = "The POS refused or answered garbage, or the store's POS configuration is unusable", body = dto::PosErrorBody),
        (status = 503, description = "The POS or the database is unavailable", body = dto::UnavailableBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 504, description = "The POS did not answer in time", body = dto::PosErrorBody),
        (status = 408, description = "The body did not arrive within the deadline (`POS_GATEWAY_BODY_TIMEOUT`); the connection is closed", body = dto::ErrorBody),
        (status = 429, description = "This kiosk (catalog) is over its request budget", body = dto::RateLimitedBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = []))
)]
pub async fn put_customer(
    grant: Grant,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    update(grant, req, payload, state, dto::UpdateKind::Put).await
}

async fn update(
    grant: Grant,
    req: HttpRequest,
    payload: Payload,
    state: Data<AppState>,
    kind: dto::UpdateKind,
) -> Result<HttpResponse, ApiError> {
    let id = customer_id(&req)?;
    let body = dto::read_json_body(&req, payload, state.body_timeout).await?;
    let patch = dto::parse_update_body(&body, kind, today())?;
    let service = service(&state);
    let catalog = grant.catalog;
    let updated = detached(async move { service.update(&catalog, &id, &patch).await }).await?;
    Ok(HttpResponse::Ok().json(CustomerEnvelope::from(&updated)))
}

#[utoipa::path(
    get, path = "/api/v1/{catalog_id}/pos", tag = "pos",
    params(("catalog_id" = String, Path, description = "The kiosk's catalog: 1 to 64 letters, digits, `-`, `_` or `.`", min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._-]+$")),
    responses(
        (status = 200, description = "The store's POS vendor and what it supports", body = PosInfo),
        (status = 401, description = "No, bad or expired token", body = dto::ErrorBody),
        (status = 404, description = "Unknown or ungranted catalog", body = dto::ErrorBody),
        (status = 502, description = "The store's POS configuration is unusable", body = dto::PosErrorBody),
        (status = 503, description = "The database is unavailable", body = dto::ServiceUnavailableBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 429, description = "This kiosk (catalog) is over its request budget", body = dto::RateLimitedBody, headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = []))
)]
pub async fn pos_capabilities(
    grant: Grant,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (vendor, capabilities) = state.service.capabilities(&grant.catalog).await?;
    Ok(HttpResponse::Ok().json(PosInfo::new(vendor, capabilities)))
}
