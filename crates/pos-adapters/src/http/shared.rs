//! What a store's vendor clients may share with other replicas of the gateway: the store's
//! request budget ([`RateBudget`]) and its vendor token ([`TokenStore`]).
//!
//! Both are ports: this crate holds the in-process implementations (a store's own `governor`
//! limiter, and [`TokenCache`](super::TokenCache) alone), which are the default and all a single
//! process needs; the persistence crate implements both over PostgreSQL, and the gateway hands
//! them to every store through [`Settings::shared`](super::Settings::shared) when its database
//! is PostgreSQL. When the shared implementation cannot answer (the database is down or slow),
//! a store's clients keep going on their own: the budget falls back to the store's limit
//! divided by [`Shared::replicas`], the token to one fetched by this replica.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use domain::PosError;
use governor::clock::Clock as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::Secret;

/// A budget's shape: requests per minute, and how many may go at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateQuota {
    pub per_minute: NonZeroU32,
    pub burst: NonZeroU32,
}

impl RateQuota {
    /// `per_minute` with `burst` at once, a tenth of the minute's by default: a bulk import
    /// spreads over the minute instead of spending it in the first second.
    pub fn new(per_minute: NonZeroU32, burst: Option<NonZeroU32>) -> Self {
        let burst = burst.unwrap_or_else(|| {
            NonZeroU32::new(per_minute.get().div_ceil(10)).unwrap_or(NonZeroU32::MIN)
        });
        Self { per_minute, burst }
    }

    /// The time between two requests at the steady rate (GCRA's emission interval).
    pub fn interval(&self) -> Duration {
        Duration::from_secs(60) / self.per_minute.get()
    }

    /// Each of `replicas`' share: the rate and the burst divided, each at least one.
    pub fn divided(self, replicas: NonZeroU32) -> Self {
        let share =
            |n: NonZeroU32| NonZeroU32::new(n.get() / replicas.get()).unwrap_or(NonZeroU32::MIN);
        Self {
            per_minute: share(self.per_minute),
            burst: share(self.burst),
        }
    }

    fn governor(self) -> Quota {
        Quota::per_minute(self.per_minute).allow_burst(self.burst)
    }
}

/// The shared state could not answer: the database is down, slow or refused the statement.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the shared vendor state did not answer: {0}")]
pub struct SharedStateError(pub String);

/// A request budget per key (a store's requests, or its writes), in the GCRA's terms: a
/// request may go when it keeps the store within `quota`, otherwise it must wait.
#[async_trait]
pub trait RateBudget: Send + Sync {
    /// Takes one request from `key`'s budget: `None` when it may go now, `Some(wait)` when
    /// the budget is spent and nothing was taken (ask again after `wait`).
    async fn take(&self, key: &str, quota: RateQuota)
    -> Result<Option<Duration>, SharedStateError>;
}

/// The in-process budget: one `governor` limiter per key and quota. A store's client has its
/// own when nothing shared is configured, which is right for one process (SQLite).
#[derive(Default)]
pub struct LocalBudget {
    limiters: Mutex<HashMap<(String, RateQuota), DefaultDirectRateLimiter>>,
}

impl LocalBudget {
    /// [`RateBudget::take`], which never fails in process.
    pub fn take_now(&self, key: &str, quota: RateQuota) -> Option<Duration> {
        let mut limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        let limiter = match limiters.get(&(key.to_owned(), quota)) {
            Some(limiter) => limiter,
            None => limiters
                .entry((key.to_owned(), quota))
                .or_insert_with(|| RateLimiter::direct(quota.governor())),
        };
        match limiter.check() {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(limiter.clock().now())),
        }
    }
}

#[async_trait]
impl RateBudget for LocalBudget {
    async fn take(
        &self,
        key: &str,
        quota: RateQuota,
    ) -> Result<Option<Duration>, SharedStateError> {
        Ok(self.take_now(key, quota))
    }
}

impl std::fmt::Debug for LocalBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBudget").finish_non_exhaustive()
    }
}

/// A token as it is handed out: how long from now it should be refreshed, and when it lapses.
#[derive(Clone, Debug)]
pub struct FreshToken {
    pub token: Secret,
    pub refresh_in: Duration,
    pub expires_in: Duration,
}

/// Which token: its key (the store and the vendor's token), and the credentials it is fetched
/// with, so a stored token fetched with other credentials (the store's config changed) is not
/// handed out.
#[derive(Clone, Debug)]
pub struct TokenKey {
    pub key: String,
    pub credentials: Secret,
}

/// A token fetch not started yet: a [`TokenStore`] polls it only when it has no fresh token.
pub type TokenFetch<'a> = Pin<Box<dyn Future<Output = Result<FreshToken, PosError>> + Send + 'a>>;

/// Why [`TokenStore::token`] gave no token.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TokenStoreError {
    /// The fetch ran and the vendor refused or failed.
    #[error(transparent)]
    Vendor(PosError),
    /// The store could not answer and did not start the fetch: the caller may fetch itself.
    #[error(transparent)]
    Unavailable(SharedStateError),
}

/// Vendor tokens kept where every replica sees them.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// A token for `key` that need not be refreshed yet: the stored one, or the one `fetch`
    /// gets, stored for the others. While one caller fetches, the others wait (at most
    /// `within`) and take its token. `Unavailable` only when `fetch` was never polled.
    async fn token(
        &self,
        key: &TokenKey,
        within: Duration,
        fetch: TokenFetch<'_>,
    ) -> Result<FreshToken, TokenStoreError>;

    /// Forgets `refused` (the vendor answered 401 to it) for everyone, unless another token
    /// has replaced it already.
    async fn invalidate(&self, key: &TokenKey, refused: &Secret) -> Result<(), SharedStateError>;
}

/// What a store's clients share with the other replicas (see the module's documentation).
#[derive(Clone)]
pub struct Shared {
    /// Names the store's budgets and tokens (the gateway uses the store's id).
    pub scope: String,
    pub budget: Arc<dyn RateBudget>,
    pub tokens: Arc<dyn TokenStore>,
    /// How many replicas share each vendor limit: while `budget` cannot answer, each takes
    /// `limit / replicas` (and as much of the burst) on its own, so together they stay within
    /// it.
    pub replicas: NonZeroU32,
}

impl Shared {
    /// The key of one of the store's budgets or tokens: `{scope}/{name}`.
    pub fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.scope)
    }
}

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        self.scope == other.scope
            && self.replicas == other.replicas
            && std::ptr::addr_eq(Arc::as_ptr(&self.budget), Arc::as_ptr(&other.budget))
            && std::ptr::addr_eq(Arc::as_ptr(&self.tokens), Arc::as_ptr(&other.tokens))
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("scope", &self.scope)
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(per_minute: u32, burst: u32) -> RateQuota {
        RateQuota::new(
            NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN),
            NonZeroU32::new(burst),
        )
    }

    #[test]
    fn a_quota_divides_among_replicas_and_keeps_at_least_one() {
        let three = NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN);
        assert_eq!(quota(600, 30).divided(three), quota(200, 10));
        assert_eq!(quota(2, 1).divided(three), quota(1, 1));
        assert_eq!(quota(600, 0).burst.get(), 60, "a tenth by default");
        assert_eq!(quota(600, 6).interval(), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn the_local_budget_lets_the_burst_through_then_answers_the_wait() {
        let budget = LocalBudget::default();
        let q = quota(60, 3);
        for _ in 0..3 {
            assert_eq!(budget.take("s/requests", q).await, Ok(None));
        }
        let wait = budget.take("s/requests", q).await.ok().flatten();
        assert!(
            wait.is_some_and(|w| w > Duration::from_millis(900)),
            "{wait:?}"
        );
        assert_eq!(budget.take("s/writes", q).await, Ok(None), "keys apart");
    }
}
