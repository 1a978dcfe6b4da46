//! Fairness between kiosks: each catalog's own request budget (a GCRA rate limiter keyed by
//! catalog, from the `governor` crate) and a cap on bulk requests in flight over all catalogs
//! (a semaphore, never waited on). Over either, the kiosk gets the contract's 429 with
//! `Retry-After`, before anything reaches the store's POS.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use domain::CatalogId;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::error::ApiError;

/// Catalogs a limiter tracks before it forgets those back at a full budget. Only catalogs a
/// valid token grants get this far, but a token for every catalog (`*`) may name any id.
const MAX_TRACKED_CATALOGS: usize = 10_000;

pub const CATALOG_OVER_BUDGET: &str =
    "this kiosk (catalog) is over its request budget; retry after the time in Retry-After";
pub const TOO_MANY_BULKS: &str =
    "too many bulk requests are in flight; retry after the time in Retry-After";

type CatalogLimiter<C> =
    RateLimiter<CatalogId, HashMapStateStore<CatalogId>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The limits of one running gateway, shared by its handlers.
pub struct Limits<C: Clock = DefaultClock> {
    catalogs: Option<CatalogBudget<C>>,
    bulks: Arc<Semaphore>,
}

struct CatalogBudget<C: Clock> {
    limiter: CatalogLimiter<C>,
    clock: C,
    burst: NonZeroU32,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Limits<C> {
    /// The same, on `clock` (a fake one in tests).
    pub fn with_clock(config: &Config, clock: C) -> Self {
        let burst = NonZeroU32::new(config.catalog_burst).unwrap_or(NonZeroU32::MIN);
        let catalogs = config.catalog_rate.and_then(|rate| {
            let quota = Quota::with_period(rate.interval())?.allow_burst(burst);
            Some(CatalogBudget {
                limiter: RateLimiter::hashmap_with_clock(quota, clock.clone()),
                clock,
                burst,
            })
        });
        Self {
            catalogs,
            bulks: Arc::new(Semaphore::new(
                config.max_bulks_in_flight.clamp(1, Semaphore::MAX_PERMITS),
            )),
        }
    }

    /// Spends `cost` of `catalog`'s budget (a request is 1, a bulk one per item), or says how
    /// long until it could. A cost over the burst is charged as the burst, so a bulk the
    /// configuration cannot fit waits for a full budget instead of failing for ever.
    pub fn charge(&self, catalog: &CatalogId, cost: u32) -> Result<(), ApiError> {
        let Some(budget) = &self.catalogs else {
            return Ok(());
        };
        let Some(cost) = NonZeroU32::new(cost.min(budget.burst.get())) else {
            return Ok(());
        };
        if budget.limiter.len() > MAX_TRACKED_CATALOGS {
            budget.limiter.retain_recent();
            budget.limiter.shrink_to_fit();
        }
        match budget.limiter.check_key_n(catalog, cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(rate_limited(
                CATALOG_OVER_BUDGET,
                not_until.wait_time_from(budget.clock.now()),
            )),
            // Not reached: the cost is at most the burst.
            Err(_) => Err(rate_limited(CATALOG_OVER_BUDGET, Duration::from_secs(1))),
        }
    }

    /// A place among the bulks in flight, held until the returned permit is dropped (when the
    /// bulk's work is done, not when its client leaves); 429 at once when there is none.
    pub fn start_bulk(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.bulks
            .clone()
            .try_acquire_owned()
            .map_err(|_| rate_limited(TOO_MANY_BULKS, Duration::from_secs(1)))
    }
}

/// Whole seconds, rounded up, at least 1: `Retry-After: 0` would invite an immediate retry
/// that fails again.
fn rate_limited(message: &'static str, wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::RateLimited {
        message,
        retry_after: seconds.max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RequestRate;
    use governor::clock::FakeRelativeClock;

    fn config(rate: &str, burst: u32, bulks: usize) -> Config {
        Config {
            catalog_rate: RequestRate::parse(rate).unwrap(),
            catalog_burst: burst,
            max_bulks_in_flight: bulks,
            ..Config::default()
        }
    }

    fn retry_after(result: Result<(), ApiError>) -> Option<u64> {
        match result {
            Err(ApiError::RateLimited { retry_after, .. }) => Some(retry_after),
            Ok(()) => None,
            Err(other) => panic!("not a rate limit: {other}"),
        }
    }

    #[test]
    fn each_catalog_has_its_own_budget_and_gets_it_back_over_time() {
        let clock = FakeRelativeClock::default();
        let limits = Limits::with_clock(&config("60/min", 3, 16), clock.clone());
        let a = CatalogId::parse("a").unwrap();
        let b = CatalogId::parse("b").unwrap();
        for _ in 0..3 {
            assert_eq!(retry_after(limits.charge(&a, 1)), None);
        }
        assert_eq!(retry_after(limits.charge(&a, 1)), Some(1));
        assert_eq!(retry_after(limits.charge(&b, 1)), None, "b is not a's");
        clock.advance(Duration::from_millis(1000));
        assert_eq!(retry_after(limits.charge(&a, 1)), None);
        assert_eq!(retry_after(limits.charge(&a, 1)), Some(1));
    }

    #[test]
    fn a_bulk_costs_one_per_item_up_to_the_burst_and_retry_after_rounds_up() {
        let clock = FakeRelativeClock::default();
        let limits = Limits::with_clock(&config("6/min", 10, 16), clock.clone());
        let a = CatalogId::parse("a").unwrap();
        assert_eq!(retry_after(limits.charge(&a, 100)), None, "charged as 10");
        // 10 s per request: 10 s until one more, more for a bulk of 3.
        assert_eq!(retry_after(limits.charge(&a, 1)), Some(10));
        assert_eq!(retry_after(limits.charge(&a, 3)), Some(30));
        clock.advance(Duration::from_millis(9_500));
        assert_eq!(retry_after(limits.charge(&a, 1)), Some(1), "0.5 s is 1");
    }

    #[test]
    fn off_means_no_budget() {
        let limits = Limits::new(&config("off", 1, 16));
        let a = CatalogId::parse("a").unwrap();
        for _ in 0..1000 {
            assert_eq!(retry_after(limits.charge(&a, 100)), None);
        }
    }

    #[test]
    fn bulks_over_the_cap_are_refused_at_once_until_one_ends() {
        let limits = Limits::new(&config("off", 1, 2));
        let first = limits.start_bulk().unwrap();
        let _second = limits.start_bulk().unwrap();
        match limits.start_bulk() {
            Err(ApiError::RateLimited {
                retry_after,
                message,
            }) => assert_eq!((retry_after, message), (1, TOO_MANY_BULKS)),
            other => panic!("{:?}", other.err()),
        }
        drop(first);
        assert!(limits.start_bulk().is_ok());
    }
}
