//! Adapters from the domain's POS port ([`domain::CustomerDirectory`]) to each point-of-sale
//! vendor's HTTP API, one module and one cargo feature per vendor, so another service can take
//! just the vendors it needs.
//!
//! Depends on `domain` only (plus `reqwest` and friends for the shared plumbing in [`http`]);
//! never on actix, diesel or any other crate of the workspace. The built-in `local` POS is not here: its customers live in
//! pos-gateway's own database, so it belongs to the persistence crate.

use std::sync::Arc;

#[cfg(any(feature = "treez", feature = "dutchie"))]
mod convert;
pub mod http;

#[cfg(feature = "dutchie")]
pub mod dutchie;
#[cfg(feature = "treez")]
pub mod treez;

use domain::{CustomerDirectory, Store, Vendor};

pub use http::Settings;

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
    [
        cfg!(feature = "treez").then_some(Vendor::Treez),
        cfg!(feature = "dutchie").then_some(Vendor::Dutchie),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Checks a store's vendor config before it is saved, so a bad config is refused at
/// `store add`, not at a kiosk's first request. Opening a client checks the same things.
pub fn validate_config(vendor: Vendor, config: &serde_json::Value) -> Result<(), AdapterError> {
    connect_with(
        &Store {
            id: domain::StoreId(0),
            name: String::new(),
            vendor,
            config: config.clone(),
        },
        &Settings::default(),
    )
    .map(drop)
}

/// Opens the POS port for a store whose vendor is not `local`, with default settings.
pub fn connect(store: &Store) -> Result<Arc<dyn CustomerDirectory>, AdapterError> {
    connect_with(store, &Settings::default())
}

/// Opens the POS port for a store whose vendor is not `local`. `settings` are the
/// deployment's (`POS_GATEWAY_POS_TIMEOUT`); the vendor's published limits and the store
/// config's own overrides are applied on top.
#[cfg_attr(
    not(any(feature = "treez", feature = "dutchie")),
    allow(unused_variables)
)]
pub fn connect_with(
    store: &Store,
    settings: &Settings,
) -> Result<Arc<dyn CustomerDirectory>, AdapterError> {
    if !store.config.is_object() {
        return Err(AdapterError::Config {
            vendor: store.vendor,
            message: "the config must be a JSON object".to_owned(),
        });
    }
    match store.vendor {
        #[cfg(feature = "treez")]
        Vendor::Treez => Ok(Arc::new(treez::Treez::connect(&store.config, settings)?)),
        #[cfg(feature = "dutchie")]
        Vendor::Dutchie => Ok(Arc::new(dutchie::Dutchie::connect(
            &store.config,
            settings,
        )?)),
        other => Err(AdapterError::NotBuilt(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_without_an_adapter_say_so() {
        let store = Store {
            id: domain::StoreId(1),
            name: "s".into(),
            vendor: Vendor::Cova,
            config: serde_json::json!({}),
        };
        assert_eq!(
            connect(&store).err(),
            Some(AdapterError::NotBuilt(Vendor::Cova))
        );
        assert_eq!(
            validate_config(Vendor::Cova, &serde_json::json!({})),
            Err(AdapterError::NotBuilt(Vendor::Cova))
        );
    }
}
