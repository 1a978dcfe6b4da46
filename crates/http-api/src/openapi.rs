//! The OpenAPI document, generated from the handlers' annotations, and `/docs`, Swagger UI
//! over it.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::{app, dto, routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pos-gateway",
        description = "One customers API (find, create, update) for in-store kiosks over the point-of-sale system each store runs."
    ),
    paths(
        routes::create_customer,
        routes::list_customers,
        routes::get_customer,
        routes::patch_customer,
        routes::put_customer,
        routes::bulk_create,
        routes::pos_capabilities,
        app::healthz,
        app::readyz,
    ),
    components(schemas(
        dto::CustomerDto, dto::CustomerEnvelope, dto::CustomerInput, dto::CustomerRequest,
        dto::CustomerPatchInput, dto::CustomerPatchRequest,
        dto::CustomerList, dto::BulkRequest, dto::BulkResponse, dto::BulkItemResult,
        dto::PosInfo, dto::CapabilitiesDto, dto::ErrorBody, dto::ValidationErrorBody,
        dto::DuplicateBody, dto::MethodNotAllowedBody, dto::PosErrorBody, dto::PosAnswer,
        dto::ServiceUnavailableBody, dto::RateLimitedBody, dto::ConflictBody, dto::UnprocessableBody,
        dto::UnavailableBody, app::Health,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "customers", description = "Find, create and update a store's customers"),
        (name = "pos", description = "The store's point-of-sale system"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// How many times the served document was built (once per process: see [`document`]).
static BUILDS: AtomicUsize = AtomicUsize::new(0);
static DOCUMENT: LazyLock<Bytes> = LazyLock::new(build);

fn build() -> Bytes {
    BUILDS.fetch_add(1, Ordering::Relaxed);
    match serde_json::to_vec(&ApiDoc::openapi()) {
        Ok(json) => Bytes::from(json),
        // Not reachable: the document is plain data with string keys.
        Err(e) => {
            tracing::error!(error = %e, "cannot render the OpenAPI document");
            Bytes::from_static(br#"{"error":"internal server error"}"#)
        }
    }
}

/// The OpenAPI document as JSON, built the first time it is asked for and shared afterwards:
/// it depends on nothing but the code.
pub fn document() -> &'static Bytes {
    &DOCUMENT
}

/// How many times the document has been built in this process (at most once).
pub fn builds() -> usize {
    BUILDS.load(Ordering::Relaxed)
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(document().clone())
}

/// Where the API reference page lives; `/docs` redirects here.
pub const DOCS_PATH: &str = "/docs/";

/// `/docs/`: Swagger UI, its assets compiled into the binary (`utoipa-swagger-ui` with the
/// `vendored` feature: no CDN at run time, no download at build time), reading the document
/// from `/openapi.json`. Nothing on the page is loaded from another host: the online validator
/// is off too.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new(format!("{DOCS_PATH}{{_:.*}}"))
        .config(Config::from("/openapi.json").validator_url("none"))
}

/// `/docs`: the page is at `/docs/`, whose assets are relative to it.
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, DOCS_PATH))
        .finish()
}
