//! The plumbing every HTTP vendor shares, so a vendor module is only its mapping: one
//! [`VendorHttp`] per store (timeouts, retries of reads only, `Retry-After`, rate limit,
//! circuit breaker, bounded bodies, one error mapping, scrubbed echoes), a [`TokenCache`] for
//! vendors with tokens, and [`Secret`] for every credential.

mod breaker;
mod client;
pub mod deadline;
mod errors;
pub mod observe;
mod redact;
mod request;
mod secret;
mod settings;
pub mod shared;
mod token;

pub use client::{VendorAnswer, VendorHttp, vendor_url};
pub use errors::{error_for_status, retry_after};
pub use redact::MAX_ECHOED_BODY_BYTES;
pub use request::VendorRequest;
pub use secret::Secret;
pub use settings::{BreakerSettings, DEFAULT_MAX_IN_FLIGHT, DEFAULT_TIMEOUT, Settings};
pub use shared::{
    FreshToken, LocalBudget, RateBudget, RateQuota, Shared, SharedStateError, TokenFetch, TokenKey,
    TokenStore, TokenStoreError,
};
pub use token::TokenCache;

/// The headers a [`observe::VendorObserver`] may add to (the W3C trace context).
pub use reqwest::header::{self, HeaderMap};
/// Re-exported so vendor modules and their tests name methods and statuses without depending
/// on `reqwest` themselves.
pub use reqwest::{Method, StatusCode, Url};
