//! How a store's vendor calls behave: timeouts, retries, bounds, rate limit and breaker.

use std::time::Duration;

use domain::Vendor;

use crate::AdapterError;

/// The default of `POS_GATEWAY_POS_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The knobs of a store's [`VendorHttp`](super::VendorHttp). Vendor modules start from
/// [`Settings::default`] (with the deployment's timeout), set what the vendor publishes (its
/// rate limit), then apply the store's own overrides with [`Settings::with_store_overrides`].
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
    pub breaker: BreakerSettings,
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
            breaker: BreakerSettings::default(),
        }
    }
}

impl Settings {
    /// The defaults with the deployment's `POS_GATEWAY_POS_TIMEOUT`.
    pub fn with_timeout(timeout: Duration) -> Self {
        let defaults = Self::default();
        Self {
            timeout,
            connect_timeout: defaults.connect_timeout.min(timeout),
            ..defaults
        }
    }

    /// Applies a store config's optional `timeout` (`"3s"`, `"1500ms"` or a number of seconds)
    /// and `rate_limit_per_minute` (a positive integer, or `null` for none), so one slow or
    /// tightly limited store can be tuned without touching the others.
    pub fn with_store_overrides(
        mut self,
        vendor: Vendor,
        config: &serde_json::Value,
    ) -> Result<Self, AdapterError> {
        let invalid = |message: &str| AdapterError::Config {
            vendor,
            message: message.to_owned(),
        };
        match config.get("timeout") {
            None | Some(serde_json::Value::Null) => {}
            Some(value) => {
                let timeout = match value {
                    serde_json::Value::String(text) => humantime::parse_duration(text.trim()).ok(),
                    serde_json::Value::Number(n) => n
                        .as_f64()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                        .map(Duration::from_secs_f64),
                    _ => None,
                }
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    invalid("timeout must be a duration such as \"10s\" or a number of seconds")
                })?;
                self.timeout = timeout;
                self.connect_timeout = self.connect_timeout.min(timeout);
            }
        }
        match config.get("rate_limit_per_minute") {
            None => {}
            Some(serde_json::Value::Null) => self.rate_limit_per_minute = None,
            Some(value) => {
                let limit = value
                    .as_u64()
                    .filter(|n| *n > 0)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| invalid("rate_limit_per_minute must be a positive integer"))?;
                self.rate_limit_per_minute = Some(limit);
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn store_overrides_apply_and_bad_ones_name_the_key() {
        let s = Settings::with_timeout(Duration::from_secs(1));
        assert_eq!(s.connect_timeout, Duration::from_secs(1));
        let s = Settings::default()
            .with_store_overrides(
                Vendor::Dutchie,
                &json!({"timeout": "1500ms", "rate_limit_per_minute": 60}),
            )
            .unwrap();
        assert_eq!(s.timeout, Duration::from_millis(1500));
        assert_eq!(s.rate_limit_per_minute, Some(60));
        let n = Settings::default().with_store_overrides(Vendor::Cova, &json!({"timeout": 2}));
        assert_eq!(n.unwrap().timeout, Duration::from_secs(2));
        for bad in [
            json!({"timeout": "soon"}),
            json!({"timeout": 0}),
            json!({"rate_limit_per_minute": 0}),
        ] {
            let err = Settings::default().with_store_overrides(Vendor::Cova, &bad);
            assert!(matches!(err, Err(AdapterError::Config { .. })), "{bad}");
        }
    }
}
