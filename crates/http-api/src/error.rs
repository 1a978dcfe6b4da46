//! The one place where domain errors become HTTP statuses and the contract's exact bodies.
//! Causes are logged; a kiosk sees only the contract's body.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use domain::{
    Customer, CustomerError, PosError, RepositoryError, ValidationErrors, Vendor, VendorResponse,
};
use serde::Serialize;

use crate::dto::{
    CustomerDto, DuplicateBody, ErrorBody, MethodNotAllowedBody, PosAnswer, PosErrorBody,
    RateLimitedBody, ServiceUnavailableBody, ValidationErrorBody,
};

pub const UNAUTHORIZED: &str = "You need to sign in or sign up before continuing.";
/// What to suggest when the POS or the database is down and said nothing better.
const DEFAULT_RETRY_AFTER_SECS: u64 = 5;

#[derive(thiserror::Error)]
pub enum ApiError {
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("param is missing or the value is empty: {0}")]
    MissingParam(&'static str),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized")]
    Unauthorized,
    #[error("catalog not found")]
    CatalogNotFound,
    #[error("customer not found")]
    CustomerNotFound,
    #[error("no such route")]
    RouteNotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("customer already exists")]
    Duplicate(Box<Customer>),
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyKeyInProgress,
    #[error("a customer with this e-mail, phone or licence is being created by another request")]
    CreateInProgress,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    #[error("rate limited: {message}")]
    RateLimited {
        message: &'static str,
        /// Whole seconds, at least 1.
        retry_after: u64,
    },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("validation failed: {0}")]
    Invalid(ValidationErrors),
    #[error("Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Pos(PosError),
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The request logger prints errors with `Debug`; `Display` says what went wrong without the
/// customer data some variants carry (a duplicate's e-mail and phone stay out of the logs).
impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl From<CustomerError> for ApiError {
    fn from(error: CustomerError) -> Self {
        match error {
            CustomerError::CatalogNotFound => ApiError::CatalogNotFound,
            CustomerError::CustomerNotFound => ApiError::CustomerNotFound,
            CustomerError::Invalid(errors) => ApiError::Invalid(errors),
            CustomerError::Duplicate(customer) => ApiError::Duplicate(customer),
            CustomerError::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
            CustomerError::IdempotencyKeyInProgress => ApiError::IdempotencyKeyInProgress,
            CustomerError::CreateInProgress => ApiError::CreateInProgress,
            CustomerError::Unsupported(_) => ApiError::MethodNotAllowed,
            CustomerError::Pos(e) => ApiError::from_pos(e),
            CustomerError::Repository(e) => e.into(),
        }
    }
}

impl From<RepositoryError> for ApiError {
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::Unavailable(m) => ApiError::DatabaseUnavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl ApiError {
    fn from_pos(error: PosError) -> Self {
        match error {
            PosError::Unsupported(_) => ApiError::MethodNotAllowed,
            PosError::NotFound => ApiError::CustomerNotFound,
            PosError::Rejected(errors) => ApiError::Invalid(errors),
            PosError::Storage(e) => e.into(),
            other => ApiError::Pos(other),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::MissingParam(_) | ApiError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::CatalogNotFound | ApiError::CustomerNotFound | ApiError::RouteNotFound => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Duplicate(_)
            | ApiError::IdempotencyKeyInProgress
            | ApiError::CreateInProgress => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) | ApiError::IdempotencyKeyReused => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Pos(PosError::Unavailable { .. }) | ApiError::DatabaseUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Pos(PosError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Pos(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The contract's body for this error: one of the documented body types, so what is sent
    /// is what the OpenAPI document describes.
    pub fn body(&self) -> ErrorResponse {
        let error = |text: &str| {
            ErrorResponse::Error(ErrorBody {
                error: text.to_owned(),
            })
        };
        match self {
            ApiError::MalformedJson(message) | ApiError::BadRequest(message) => error(message),
            ApiError::MissingParam(param) => {
                error(&format!("param is missing or the value is empty: {param}"))
            }
            ApiError::Unauthorized => error(UNAUTHORIZED),
            ApiError::CatalogNotFound => error("catalog not found"),
            ApiError::CustomerNotFound => error("customer not found"),
            ApiError::RouteNotFound => error("not found"),
            ApiError::MethodNotAllowed => ErrorResponse::MethodNotAllowed(MethodNotAllowedBody {
                status: StatusCode::METHOD_NOT_ALLOWED.as_u16(),
                message: "method not allowed".to_owned(),
            }),
            ApiError::Duplicate(customer) => ErrorResponse::Duplicate(DuplicateBody {
                error: "customer already exists".to_owned(),
                customer: CustomerDto::from(customer.as_ref()),
            }),
            ApiError::IdempotencyKeyInProgress => {
                error("a request with this Idempotency-Key is still being processed; retry later")
            }
            ApiError::CreateInProgress => error(
                "a customer with this e-mail, phone or licence is being created by another request; retry later",
            ),
            ApiError::PayloadTooLarge => {
                error("the request body is larger than the limit of 1 MiB")
            }
            ApiError::BodyTimeout(after) => error(&format!(
                "the request body did not arrive within {}",
                humantime::format_duration(*after)
            )),
            ApiError::RateLimited { message, .. } => ErrorResponse::RateLimited(RateLimitedBody {
                error: "rate_limited".to_owned(),
                message: (*message).to_owned(),
            }),
            ApiError::UnsupportedMediaType => error("Content-Type must be application/json"),
            ApiError::Invalid(errors) => ErrorResponse::Validation(ValidationErrorBody {
                errors: errors.clone(),
            }),
            ApiError::IdempotencyKeyReused => {
                error("Idempotency-Key was already used with a different request")
            }
            ApiError::Pos(error) => ErrorResponse::Pos(pos_body(error)),
            ApiError::DatabaseUnavailable(_) => {
                ErrorResponse::ServiceUnavailable(ServiceUnavailableBody {
                    error: "service_unavailable".to_owned(),
                    message: "the gateway's database is unavailable; retry later".to_owned(),
                })
            }
            ApiError::Internal(_) => error("internal server error"),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Pos(PosError::Unavailable { retry_after, .. }) => Some(
                retry_after
                    .map(|d| d.as_secs().max(1))
                    .unwrap_or(DEFAULT_RETRY_AFTER_SECS),
            ),
            ApiError::DatabaseUnavailable(_) => Some(DEFAULT_RETRY_AFTER_SECS),
            ApiError::IdempotencyKeyInProgress | ApiError::CreateInProgress => Some(1),
            ApiError::RateLimited { retry_after, .. } => Some((*retry_after).max(1)),
            _ => None,
        }
    }
}

fn pos_body(error: &PosError) -> PosErrorBody {
    let (vendor, message, response): (Option<Vendor>, &str, Option<&VendorResponse>) = match error {
        PosError::Unauthorized(r) => (
            Some(r.vendor),
            "the POS refused the store's credentials",
            Some(r),
        ),
        PosError::Upstream(r) => (Some(r.vendor), "the POS rejected the request", Some(r)),
        PosError::BadAnswer {
            vendor, response, ..
        } => (
            Some(*vendor),
            "the POS answer could not be read",
            response.as_ref(),
        ),
        PosError::Unavailable {
            vendor, response, ..
        } => (
            Some(*vendor),
            "the POS is unavailable; retry later",
            response.as_ref(),
        ),
        PosError::Timeout { vendor, .. } => (Some(*vendor), "the POS did not answer in time", None),
        PosError::Misconfigured { vendor, .. } => (
            Some(*vendor),
            "the store's POS configuration is unusable; the gateway's operator must fix it",
            None,
        ),
        _ => (None, "the POS failed", None),
    };
    PosErrorBody {
        error: "pos_error".to_owned(),
        message: message.to_owned(),
        pos: PosAnswer {
            vendor,
            status: response.map(|r| r.status),
            body: response.map(|r| r.body.clone()),
        },
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = HttpResponse::build(status);
        if matches!(self, ApiError::BodyTimeout(_)) {
            // The rest of the body may still trickle in: the connection is not reusable.
            response.force_close();
        }
        if let Some(seconds) = self.retry_after() {
            response.insert_header((RETRY_AFTER, HeaderValue::from(seconds)));
        }
        response.json(self.body())
    }
}

/// The body of an error answer: each variant one of the body types the OpenAPI document
/// names (`crate::dto`), serialised as that type alone.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ErrorResponse {
    Error(ErrorBody),
    Validation(ValidationErrorBody),
    Duplicate(DuplicateBody),
    MethodNotAllowed(MethodNotAllowedBody),
    ServiceUnavailable(ServiceUnavailableBody),
    RateLimited(RateLimitedBody),
    Pos(PosErrorBody),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::time::Duration;

    fn body_of(error: &ApiError) -> Value {
        serde_json::to_value(error.body()).unwrap()
    }

    #[test]
    fn pos_unavailability_carries_retry_after_and_the_vendor_answer() {
        let error = ApiError::from(CustomerError::Pos(PosError::Unavailable {
            vendor: Vendor::Treez,
            message: "429".into(),
            retry_after: Some(Duration::from_secs(7)),
            response: Some(VendorResponse {
                vendor: Vendor::Treez,
                status: 429,
                body: json!({"x": 1}),
            }),
        }));
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.retry_after(), Some(7));
        assert_eq!(
            body_of(&error),
            json!({"error": "pos_error", "message": "the POS is unavailable; retry later",
                   "pos": {"vendor": "treez", "status": 429, "body": {"x": 1}}})
        );
    }

    #[test]
    fn a_pos_timeout_is_a_gateway_timeout() {
        let error = ApiError::from(CustomerError::Pos(PosError::Timeout {
            vendor: Vendor::Dutchie,
            after: Duration::from_secs(10),
        }));
        assert_eq!(error.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            body_of(&error)["pos"],
            json!({"vendor": "dutchie", "status": null, "body": null})
        );
    }

    #[test]
    fn logs_of_a_duplicate_do_not_carry_the_customer() {
        let customer = domain::NewCustomer::parse(
            &domain::CustomerForm {
                first_name: domain::Input::Text("Ann".into()),
                last_name: domain::Input::Text("Lee".into()),
                email: domain::Input::Text("ann.lee@example.com".into()),
                ..Default::default()
            },
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        )
        .unwrap()
        .into_customer(
            domain::CustomerId::parse("1").unwrap(),
            domain::CustomerStatus::active(),
        );
        let logged = format!("{:?}", ApiError::Duplicate(Box::new(customer)));
        assert!(!logged.contains("ann.lee"), "{logged}");
    }

    #[test]
    fn internal_causes_are_not_shown() {
        let error = ApiError::from(RepositoryError::Corrupt("row 7 has email 'x'".into()));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body_of(&error), json!({"error": "internal server error"}));
    }
}
