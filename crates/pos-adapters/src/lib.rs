//! Adapters from the domain's POS port ([`domain::CustomerDirectory`]) to each point-of-sale
//! vendor's HTTP API, one module and one cargo feature per vendor, so another service can take
//! just the vendors it needs.
//!
//! Depends on `domain` only (plus `reqwest` and friends for the shared plumbing in [`http`]);
//! never on actix, diesel or any other crate of the workspace. The built-in `local` POS is not
//! here: its customers live in pos-gateway's own database, so it belongs to the persistence
//! crate.
//!
//! # Using one vendor from another service
//! Take the crate without its default features and name the vendor you need:
//!
//! ```toml
//! [dependencies]
//! pos-adapters = { package = "pos-gateway-pos-adapters", git = "...", default-features = false, features = ["treez"] }
//! ```
//!
//! Then open a store's POS from its config (the JSON `pos-gateway store add --config` takes;
//! keys per vendor in docs/vendors/) and call the port:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use domain::{CustomerDirectory, CustomerQuery, Store, StoreId, Vendor};
//!
//! let store = Store {
//!     id: StoreId(1),
//!     name: "Main St".into(),
//!     vendor: Vendor::Treez,
//!     config: serde_json::json!({
//!         "dispensary": "my-shop", "client_id": "...", "api_key": "...",
//!     })
//!     .into(),
//! };
//! let treez = pos_adapters::connect(&store)?;
//! let query = CustomerQuery { phone_digits: Some("5551234567".into()), limit: 10, ..Default::default() };
//! for customer in treez.find(&query).await?.customers {
//!     println!("{} {}", customer.first_name.as_str(), customer.last_name.as_str());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! `examples/one_vendor.rs` does the same against the Treez test double. Every call is bounded
//! by a timeout, retried only when that is safe, rate limited per store and behind a circuit
//! breaker ([`http::VendorHttp`]); errors are the domain's [`domain::PosError`], and no
//! credential ever reaches an error, a log line or `Debug` output.
//!
//! # Adding a vendor
//! A vendor is a module implementing [`VendorAdapter`], its `mod` line and its line in the
//! `vendors!` list below, and one cargo feature; docs/adding-a-vendor.md has the whole recipe.

use std::sync::Arc;

use domain::{Capabilities, CustomerDirectory, Store, Vendor};
use serde::de::DeserializeOwned;

pub mod config;
pub mod convert;
pub mod http;
pub mod paging;
#[cfg(test)]
mod properties;

pub use config::{CommonConfig, MAX_TIMEOUT, parse_config};
pub use http::Settings;

// Each vendor: its module behind the cargo feature of the same name (declared here, outside
// any macro, so rustfmt and clippy reach it), and its line in `vendors!` below.
#[cfg(feature = "blaze")]
pub mod blaze;
#[cfg(feature = "cova")]
pub mod cova;
#[cfg(feature = "dutchie")]
pub mod dutchie;
#[cfg(feature = "flowhub")]
pub mod flowhub;
#[cfg(feature = "treez")]
pub mod treez;

/// Lists the vendors of this build in [`VENDORS`], each under its cargo feature.
macro_rules! vendors {
    ($($feature:literal => $module:ident),* $(,)?) => {
        /// Every vendor this build has an adapter for (its cargo feature is on), besides the
        /// built-in `local` POS: the one list the rest of the gateway reads.
        pub static VENDORS: &[VendorSpec] = &[
            $(
                #[cfg(feature = $feature)]
                VendorSpec::of::<$module::Adapter>(),
            )*
        ];
    };
}

vendors! {
    "treez" => treez,
    "dutchie" => dutchie,
    "cova" => cova,
    "flowhub" => flowhub,
    "blaze" => blaze,
}

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

/// What a vendor module gives the registry: its config type and how to open a store's
/// adapter from it. [`VendorSpec::of`] turns it into the vendor's entry in [`VENDORS`].
pub trait VendorAdapter: CustomerDirectory + Sized + 'static {
    const VENDOR: Vendor;
    /// What the vendor offers. A store's adapter may offer less when its config says so (its
    /// [`CustomerDirectory::capabilities`] is the store's truth).
    const CAPABILITIES: Capabilities;
    /// The store config (`store add --config`), with [`CommonConfig`] flattened in, read by
    /// [`parse_config`].
    type Config: DeserializeOwned;

    /// Opens a store's adapter: the vendor's own checks of the config (their errors name the
    /// key, never the value), its published limits, then the store's overrides. Sends nothing.
    fn open(config: Self::Config, settings: &Settings) -> Result<Self, AdapterError>;

    /// Reads a store's config and opens its adapter: [`parse_config`] then [`open`], for a
    /// caller that wants the vendor's own type (Dutchie's `whoami`) rather than the port.
    ///
    /// [`open`]: VendorAdapter::open
    fn connect(config: &serde_json::Value, settings: &Settings) -> Result<Self, AdapterError> {
        Self::open(parse_config(Self::VENDOR, config)?, settings)
    }
}

/// One vendor of this build: everything the rest of the gateway needs to know of it.
#[derive(Clone, Copy)]
pub struct VendorSpec {
    pub vendor: Vendor,
    /// What the vendor offers (a store's adapter may offer less).
    pub capabilities: Capabilities,
    connect: Connect,
}

type Connect =
    fn(&serde_json::Value, &Settings) -> Result<Arc<dyn CustomerDirectory>, AdapterError>;

impl VendorSpec {
    /// The entry of vendor module `A`.
    pub const fn of<A: VendorAdapter>() -> Self {
        Self {
            vendor: A::VENDOR,
            capabilities: A::CAPABILITIES,
            connect: connect_as::<A>,
        }
    }

    /// The name stores and the CLI use (`treez`), and the other names it answers to.
    pub fn names(&self) -> (&'static str, &'static [&'static str]) {
        (self.vendor.as_str(), self.vendor.aliases())
    }

    /// Opens a store's POS from its config with the deployment's `settings`.
    pub fn connect(
        &self,
        config: &serde_json::Value,
        settings: &Settings,
    ) -> Result<Arc<dyn CustomerDirectory>, AdapterError> {
        (self.connect)(config, settings)
    }

    /// Checks a store's config as [`VendorSpec::connect`] would, sending nothing.
    pub fn validate(&self, config: &serde_json::Value) -> Result<(), AdapterError> {
        self.connect(config, &Settings::default()).map(drop)
    }
}

impl std::fmt::Debug for VendorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorSpec")
            .field("vendor", &self.vendor)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

fn connect_as<A: VendorAdapter>(
    config: &serde_json::Value,
    settings: &Settings,
) -> Result<Arc<dyn CustomerDirectory>, AdapterError> {
    let common: CommonConfig = parse_config(A::VENDOR, config)?;
    let timeout = settings.clone().with_overrides(&common).timeout;
    Ok(Arc::new(Bounded {
        inner: A::connect(config, settings)?,
        timeout,
    }))
}

/// A store's adapter with every operation under one deadline, the store's timeout: the calls
/// it makes (a token, a read, a write, the pages of a walk) share it, so a kiosk never waits
/// the timeout once per call (see [`http::deadline`]).
struct Bounded<A> {
    inner: A,
    timeout: std::time::Duration,
}

impl<A> Bounded<A> {
    fn deadline(&self) -> tokio::time::Instant {
        http::deadline::after(self.timeout)
    }
}

impl<A: std::fmt::Debug> std::fmt::Debug for Bounded<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait::async_trait]
impl<A: CustomerDirectory> CustomerDirectory for Bounded<A> {
    fn vendor(&self) -> Vendor {
        self.inner.vendor()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn is_mirror(&self) -> bool {
        self.inner.is_mirror()
    }

    async fn find(
        &self,
        query: &domain::CustomerQuery,
    ) -> Result<domain::CustomerPage, domain::PosError> {
        http::observe::operation(
            "find",
            http::deadline::within(self.deadline(), self.inner.find(query)),
        )
        .await
    }

    async fn get(
        &self,
        id: &domain::CustomerId,
    ) -> Result<Option<domain::Customer>, domain::PosError> {
        http::observe::operation(
            "get",
            http::deadline::within(self.deadline(), self.inner.get(id)),
        )
        .await
    }

    async fn create(
        &self,
        customer: &domain::NewCustomer,
        key: &domain::CreateKey,
    ) -> Result<domain::Customer, domain::PosError> {
        http::observe::operation(
            "create",
            http::deadline::within(self.deadline(), self.inner.create(customer, key)),
        )
        .await
    }

    async fn update(
        &self,
        id: &domain::CustomerId,
        patch: &domain::CustomerPatch,
    ) -> Result<domain::Customer, domain::PosError> {
        http::observe::operation(
            "update",
            http::deadline::within(self.deadline(), self.inner.update(id, patch)),
        )
        .await
    }
}

/// The entry of `vendor` in [`VENDORS`]: `None` when this build has no adapter for it.
pub fn spec(vendor: Vendor) -> Option<&'static VendorSpec> {
    VENDORS.iter().find(|spec| spec.vendor == vendor)
}

/// Checks a store's vendor config before it is saved, so a bad config is refused at
/// `store add`, not at a kiosk's first request. Opening a client checks the same things.
pub fn validate_config(vendor: Vendor, config: &serde_json::Value) -> Result<(), AdapterError> {
    spec(vendor)
        .ok_or(AdapterError::NotBuilt(vendor))?
        .validate(config)
}

/// Opens the POS port for a store whose vendor is not `local`, with default settings.
pub fn connect(store: &Store) -> Result<Arc<dyn CustomerDirectory>, AdapterError> {
    connect_with(store, &Settings::default())
}

/// Opens the POS port for a store whose vendor is not `local`. `settings` are the
/// deployment's (`POS_GATEWAY_POS_TIMEOUT`); the vendor's published limits and the store
/// config's own overrides are applied on top.
pub fn connect_with(
    store: &Store,
    settings: &Settings,
) -> Result<Arc<dyn CustomerDirectory>, AdapterError> {
    spec(store.vendor)
        .ok_or(AdapterError::NotBuilt(store.vendor))?
        .connect(&store.config, settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_without_an_adapter_say_so() {
        assert!(spec(Vendor::Local).is_none(), "local is not an adapter");
        // A vendor this build has no adapter for (none once every vendor is built).
        let Some(unbuilt) = Vendor::ALL
            .into_iter()
            .find(|v| *v != Vendor::Local && spec(*v).is_none())
        else {
            return;
        };
        let store = Store {
            id: domain::StoreId(1),
            name: "s".into(),
            vendor: unbuilt,
            config: serde_json::json!({}).into(),
        };
        assert_eq!(connect(&store).err(), Some(AdapterError::NotBuilt(unbuilt)));
        assert_eq!(
            validate_config(unbuilt, &serde_json::json!({})),
            Err(AdapterError::NotBuilt(unbuilt))
        );
    }

    #[test]
    fn each_vendor_is_listed_once_with_its_features_name() {
        for spec in VENDORS {
            let same = VENDORS.iter().filter(|s| s.vendor == spec.vendor).count();
            assert_eq!(same, 1, "{:?}", spec.vendor);
        }
    }
}
