//! How a store's vendor calls behave: timeouts, retries, bounds, rate limit and breaker.

use std::num::NonZeroU32;
use std::time::Duration;

use super::shared::Shared;
use crate::config::CommonConfig;

/// The default of `POS_GATEWAY_POS_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A store's vendor calls in flight at once, by default: far more than any vendor's published
/// rate lets through (Treez: 10 a second), so it only binds under a burst, where it bounds the
/// connections and buffers one store can hold.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// The knobs of a store's [`VendorHttp`](super::VendorHttp). Vendor modules start from
/// [`Settings::default`] (with the deployment's timeout), set what the vendor publishes (its
/// rate limit), then apply the store's own overrides with [`Settings::with_overrides`].
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The most a kiosk waits for one vendor call, *including* retries, back-off, rate-limit
    /// waits and reading the body; past it the call fails with `PosError::Timeout`. A retry
    /// never starts when it can't finish in time.
    pub timeout: Duration,
    /// The most one TCP/TLS connect may take, so a dead host leaves time for a retry.
    pub connect_timeout: Duration,
    /// A vendor's `Retry-After` is reported (and, for reads, waited out) up to this much, so a
    /// vendor asking for an hour does not make kiosks wait an hour.
    pub max_retry_after: Duration,
    /// Extra attempts for reads (GET, search) after a 5xx, a 429, a timeout or a connection
    /// failure. Writes get none once the request may have reached the vendor.
    pub read_retries: u32,
    /// The first back-off before a retry; each further one doubles, with jitter.
    pub retry_backoff: Duration,
    /// The largest answer body read; a bigger successful answer is `PosError::BadAnswer`.
    pub max_body_bytes: usize,
    /// The vendor's published request limit for one store, if any.
    pub rate_limit_per_minute: Option<u32>,
    /// How many of them may go at once; a tenth of the minute's when `None`, so a bulk
    /// import spreads over the minute. A vendor that counts per second needs fewer (Treez).
    pub rate_limit_burst: Option<u32>,
    /// A budget of their own for writes (creates, updates), where the vendor publishes one
    /// apart from the general limit (Dutchie: 1,500 customer writes a minute against 120).
    pub write_rate_limit_per_minute: Option<u32>,
    pub breaker: BreakerSettings,
    /// The store's vendor calls in flight at once (retries included, rate-limit waits too);
    /// more wait their turn, within the call's timeout, and the client keeps at most this
    /// many idle connections.
    pub max_in_flight: usize,
    /// The store's budgets and token shared with other replicas (PostgreSQL); `None`: kept in
    /// this process (see [`super::shared`]).
    pub shared: Option<Shared>,
}

/// When a store's circuit breaker opens and for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerSettings {
    /// Consecutive failed vendor requests (5xx, timeouts, connection failures; not 4xx) that
    /// open the circuit.
    pub failure_threshold: u32,
    /// How long an open circuit answers "unavailable" without calling the vendor before it
    /// lets one probe through.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(3),
            max_retry_after: Duration::from_secs(30),
            read_retries: 2,
            retry_backoff: Duration::from_millis(100),
            max_body_bytes: 1024 * 1024,
            rate_limit_per_minute: None,
            rate_limit_burst: None,
            write_rate_limit_per_minute: None,
            breaker: BreakerSettings::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            shared: None,
        }
    }
}

impl Settings {
    /// The defaults with the deployment's `POS_GATEWAY_POS_TIMEOUT`, at most an hour.
    pub fn with_timeout(timeout: Duration) -> Self {
        let timeout = timeout.min(crate::MAX_TIMEOUT);
        let defaults = Self::default();
        Self {
            timeout,
            connect_timeout: defaults.connect_timeout.min(timeout),
            ..defaults
        }
    }

    /// The vendor's published request limit, before the store's own overrides.
    pub fn with_rate_limit(self, per_minute: u32) -> Self {
        Self {
            rate_limit_per_minute: Some(per_minute),
            ..self
        }
    }

    /// The same, with at most `burst` at once.
    pub fn with_rate_limit_burst(self, per_minute: u32, burst: u32) -> Self {
        Self {
            rate_limit_burst: Some(burst),
            ..self.with_rate_limit(per_minute)
        }
    }

    /// The vendor's published limit for writes, apart from the general one.
    pub fn with_write_rate_limit(self, per_minute: u32) -> Self {
        Self {
            write_rate_limit_per_minute: Some(per_minute),
            ..self
        }
    }

    /// The store's budgets and token shared through `shared` (one store's settings).
    pub fn with_shared(self, shared: Option<Shared>) -> Self {
        Self { shared, ..self }
    }

    /// Applies a store config's own `timeout` and `rate_limit_per_minute`, so one slow or
    /// tightly limited store can be tuned without touching the others.
    pub fn with_overrides(mut self, common: &CommonConfig) -> Self {
        if let Some(timeout) = common.timeout {
            self.timeout = timeout;
            self.connect_timeout = self.connect_timeout.min(timeout);
        }
        // A store's own budget replaces the vendor's whole: its burst, and a separate write
        // budget, were the vendor's published shape.
        if let Some(limit) = common.rate_limit_per_minute {
            self.rate_limit_per_minute = limit.map(NonZeroU32::get);
            self.rate_limit_burst = None;
            self.write_rate_limit_per_minute = None;
        }
        if let Some(in_flight) = common.max_in_flight {
            self.max_in_flight = in_flight;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_overrides_apply_over_the_vendors_limit() {
        let s = Settings::with_timeout(Duration::from_secs(1));
        assert_eq!(s.connect_timeout, Duration::from_secs(1));
        let vendor = Settings::default().with_rate_limit(120);
        let tuned = vendor.clone().with_overrides(&CommonConfig {
            timeout: Some(Duration::from_millis(1500)),
            rate_limit_per_minute: Some(NonZeroU32::new(60)),
            base_url: None,
            max_in_flight: Some(32),
        });
        assert_eq!(tuned.timeout, Duration::from_millis(1500));
        assert_eq!(tuned.max_in_flight, 32);
        assert_eq!(tuned.rate_limit_per_minute, Some(60));
        let off = vendor.clone().with_overrides(&CommonConfig {
            rate_limit_per_minute: Some(None),
            ..CommonConfig::default()
        });
        assert_eq!(off.rate_limit_per_minute, None);
        let kept = vendor.with_overrides(&CommonConfig::default());
        assert_eq!(kept.rate_limit_per_minute, Some(120));
        assert_eq!(kept.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
    }
}
