//! Adapters from the domain's POS port ([`domain::CustomerDirectory`]) to each point-of-sale
//! vendor's HTTP API, one module and one cargo feature per vendor, so another service can take
//! just the vendors it needs.
//!
//! Depends on `domain` only (plus `reqwest` and friends for the shared plumbing in [`http`]);
//! never on actix, diesel or any other crate of the workspace. The built-in `local` POS is not here: its customers live in
//! pos-gateway's own database, so it belongs to the persistence crate.

use std::sync::Arc;

pub mod http;

use domain::{CustomerDirectory, Store, Vendor};

/// Why a store's POS could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdapterError {
    /// This build has no adapter for the vendor (its cargo feature is off, or it is not written
    /// yet).
    #[error("this build of pos-gateway has no adapter for vendor '{0}'")]
    NotBuilt(Vendor),
    /// The store's config lacks a key or has a bad value; the message names the key, never a
    /// secret value.
    #[error("invalid {vendor} config: {message}")]
    Config { vendor: Vendor, message: String },
}

/// The vendors this build can talk to, besides `local`.
pub fn available_vendors() -> Vec<Vendor> {
    Vec::new()
}

/// Checks a store's vendor config before it is saved, so a bad config is refused at
/// `store add`, not at a kiosk's first request.
pub fn validate_config(vendor: Vendor, config: &serde_json::Value) -> Result<(), AdapterError> {
    if !config.is_object() {
        return Err(AdapterError::Config {
            vendor,
            message: "the config must be a JSON object".to_owned(),
        });
    }
    Err(AdapterError::NotBuilt(vendor))
}

/// Opens the POS port for a store whose vendor is not `local`.
pub fn connect(store: &Store) -> Result<Arc<dyn CustomerDirectory>, AdapterError> {
    Err(AdapterError::NotBuilt(store.vendor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_without_an_adapter_say_so() {
        let store = Store {
            id: domain::StoreId(1),
            name: "s".into(),
            vendor: Vendor::Treez,
            config: serde_json::json!({}),
        };
        assert_eq!(
            connect(&store).err(),
            Some(AdapterError::NotBuilt(Vendor::Treez))
        );
        assert_eq!(
            validate_config(Vendor::Cova, &serde_json::json!({})),
            Err(AdapterError::NotBuilt(Vendor::Cova))
        );
    }
}
