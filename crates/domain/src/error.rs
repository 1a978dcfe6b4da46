//! The domain's errors: what a POS or a repository can fail with, and what a use case can.
//! No HTTP status lives here; http-api alone chooses them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::customer::Customer;
use crate::ports::{Operation, Vendor};
use crate::validation::ValidationErrors;

/// What a vendor answered, for the caller to see: its status and its body, cut to a bound and
/// free of credentials (adapters guarantee both before building one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VendorResponse {
    pub vendor: Vendor,
    pub status: u16,
    pub body: serde_json::Value,
}

/// A failure of the POS port.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum PosError {
    #[error("the POS cannot {0}")]
    Unsupported(Operation),
    #[error("the POS has no such customer")]
    NotFound,
    /// The POS refused a create as a duplicate (or answered an existing customer instead of
    /// making one): the customer it already has.
    #[error("the POS already has this customer")]
    Duplicate(Box<Customer>),
    #[error("the POS refused fields: {0}")]
    Rejected(ValidationErrors),
    #[error("the POS refused our credentials (status {})", .0.status)]
    Unauthorized(VendorResponse),
    #[error("the POS rejected the request (status {})", .0.status)]
    Upstream(VendorResponse),
    #[error("the POS answer could not be read: {message}")]
    BadAnswer {
        vendor: Vendor,
        message: String,
        response: Option<VendorResponse>,
    },
    #[error("the POS is unavailable: {message}")]
    Unavailable {
        vendor: Vendor,
        message: String,
        retry_after: Option<Duration>,
        response: Option<VendorResponse>,
    },
    #[error("the POS did not answer within {after:?}")]
    Timeout { vendor: Vendor, after: Duration },
    /// The built-in `local` POS keeps customers in our own database.
    #[error("the local POS failed: {0}")]
    Storage(RepositoryError),
    /// The store's POS cannot be opened: its stored config is unusable (changed by hand, or
    /// from an older version). `message` names the key, never a value; it is the operator's to
    /// fix, so kiosks get a generic answer and the log gets this.
    #[error("the store's {vendor} configuration is unusable: {message}")]
    Misconfigured { vendor: Vendor, message: String },
}

impl PosError {
    /// Whether the mirror may answer instead: the POS could not be reached, as opposed to a
    /// POS that answered "no".
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            PosError::Unavailable { .. } | PosError::Timeout { .. }
        )
    }
}

/// A failure of a repository (mirror, stores, idempotency records).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RepositoryError {
    /// The database could not be reached or did not answer in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored row no longer parses into domain values.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Other(String),
}

/// What a use case can fail with.
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum CustomerError {
    #[error("catalog not found")]
    CatalogNotFound,
    #[error("customer not found")]
    CustomerNotFound,
    #[error("invalid customer: {0}")]
    Invalid(ValidationErrors),
    #[error("customer already exists")]
    Duplicate(Box<Customer>),
    #[error("Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyKeyInProgress,
    /// Another request is creating a customer with the same e-mail, phone or licence in this
    /// store, and did not finish within the wait: a retry will get its customer as a 409.
    #[error("a customer with this e-mail, phone or licence is being created by another request")]
    CreateInProgress,
    #[error("the store's POS does not support {0}")]
    Unsupported(Operation),
    #[error(transparent)]
    Pos(PosError),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl CustomerError {
    /// Whether the same request may succeed if sent again unchanged: the POS or the database
    /// could not be reached, or another request was still at work. An outcome holding one is
    /// not kept for replay.
    pub fn is_transient(&self) -> bool {
        match self {
            CustomerError::Pos(e) => e.is_unreachable() || matches!(e, PosError::BadAnswer { .. }),
            CustomerError::Repository(RepositoryError::Unavailable(_))
            | CustomerError::IdempotencyKeyInProgress
            | CustomerError::CreateInProgress => true,
            _ => false,
        }
    }
}

impl From<PosError> for CustomerError {
    fn from(error: PosError) -> Self {
        match error {
            PosError::Unsupported(op) => CustomerError::Unsupported(op),
            PosError::NotFound => CustomerError::CustomerNotFound,
            PosError::Duplicate(customer) => CustomerError::Duplicate(customer),
            PosError::Rejected(errors) => CustomerError::Invalid(errors),
            PosError::Storage(e) => CustomerError::Repository(e),
            other => CustomerError::Pos(other),
        }
    }
}
