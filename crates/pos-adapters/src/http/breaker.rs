//! A per-store circuit breaker, so a vendor that is down costs kiosks nothing but a fast 503.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use domain::Vendor;
use tokio::time::Instant;

use super::BreakerSettings;
use super::observe;

/// How long callers are told to wait while another caller's probe is deciding.
const PROBE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Counts consecutive failed vendor requests (5xx, timeouts, connection failures) of one store.
/// At the threshold it opens: requests are refused without calling the vendor until
/// `open_for` has passed; then one probe goes through (half-open), and its outcome closes the
/// circuit or opens it again. An answer that is not a failure (2xx, 4xx, 429) resets the count:
/// the vendor is up, even if it said no.
#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    vendor: Vendor,
    settings: BreakerSettings,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

impl CircuitBreaker {
    pub(crate) fn new(vendor: Vendor, settings: BreakerSettings) -> Self {
        Self {
            vendor,
            settings,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still holds a valid state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets a request through, or answers how long the circuit stays open.
    pub(crate) fn admit(&self) -> Result<Admission<'_>, Duration> {
        let mut state = self.state();
        let now = Instant::now();
        match *state {
            State::Closed { .. } => Ok(Admission::new(self, false)),
            State::Open { until } if now < until => Err(until - now),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                Ok(Admission::new(self, true))
            }
            State::HalfOpen { probing: true } => Err(PROBE_RETRY_AFTER),
        }
    }

    fn settle(&self, probe: bool, failed: bool) {
        let mut state = self.state();
        let opened = State::Open {
            until: super::deadline::after(self.settings.open_for),
        };
        match (&mut *state, probe, failed) {
            (State::HalfOpen { .. }, true, true) => *state = opened,
            (State::HalfOpen { .. }, true, false) => {
                *state = State::Closed { failures: 0 };
                self.changed(false);
            }
            (State::Closed { failures }, false, true) => {
                *failures = failures.saturating_add(1);
                if *failures >= self.settings.failure_threshold.max(1) {
                    tracing::warn!(vendor = %self.vendor, failures = *failures, "vendor circuit opened");
                    *state = opened;
                    self.changed(true);
                }
            }
            (State::Closed { failures }, false, false) => *failures = 0,
            // Requests admitted before the circuit opened don't move it.
            _ => {}
        }
    }

    /// Tells the observer the circuit opened (it was closed) or closed (it was not).
    fn changed(&self, opened: bool) {
        if let Some(observer) = observe::observer() {
            observer.circuit_changed(self.vendor, opened);
        }
    }

    fn release_probe(&self) {
        let mut state = self.state();
        if let State::HalfOpen { probing: true } = *state {
            *state = State::HalfOpen { probing: false };
        }
    }
}

/// A store's client dropped with its circuit not closed (its config changed, say) no longer
/// counts as an open circuit.
impl Drop for CircuitBreaker {
    fn drop(&mut self) {
        if !matches!(*self.state(), State::Closed { .. }) {
            self.changed(false);
        }
    }
}

/// One admitted request. Settle it with its outcome; dropping it unsettled (the caller gave up)
/// frees the probe slot so the circuit can't stay half-open forever.
pub(crate) struct Admission<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    settled: bool,
}

impl<'a> Admission<'a> {
    fn new(breaker: &'a CircuitBreaker, probe: bool) -> Self {
        Self {
            breaker,
            probe,
            settled: false,
        }
    }

    pub(crate) fn settle(mut self, failed: bool) {
        self.settled = true;
        self.breaker.settle(self.probe, failed);
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.breaker.release_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(
            Vendor::Treez,
            BreakerSettings {
                failure_threshold: 2,
                open_for: Duration::from_secs(10),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_and_a_probe_closes_it() {
        let b = breaker();
        b.admit().unwrap().settle(true);
        b.admit().unwrap().settle(false); // a success resets the count
        b.admit().unwrap().settle(true);
        b.admit().unwrap().settle(true);
        assert_eq!(b.admit().err(), Some(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(b.admit().err(), Some(Duration::from_secs(6)));
        tokio::time::advance(Duration::from_secs(6)).await;
        let probe = b.admit().unwrap();
        assert_eq!(b.admit().err(), Some(PROBE_RETRY_AFTER));
        probe.settle(false);
        b.admit().unwrap().settle(false);
        assert!(b.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_and_an_abandoned_one_frees_the_slot() {
        let b = breaker();
        b.admit().unwrap().settle(true);
        b.admit().unwrap().settle(true);
        tokio::time::advance(Duration::from_secs(10)).await;
        b.admit().unwrap().settle(true);
        assert_eq!(b.admit().err(), Some(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(b.admit().unwrap());
        b.admit().unwrap().settle(false);
        assert!(matches!(*b.state(), State::Closed { failures: 0 }));
    }
}
