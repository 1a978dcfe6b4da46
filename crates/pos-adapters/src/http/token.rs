//! Access tokens fetched once and shared by a store's concurrent calls.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use domain::PosError;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::shared::{FreshToken, TokenKey, TokenStore, TokenStoreError};
use super::{Secret, Settings};

/// A token is refreshed this long before it expires at most...
const REFRESH_AHEAD_MAX: Duration = Duration::from_secs(60);
/// ...and at most this fraction of its lifetime ahead, so short-lived tokens stay usable.
const REFRESH_AHEAD_DIVISOR: u32 = 10;
/// The longest a token is kept, whatever its answer says: an absurd `expires_in` must neither
/// overflow the clock nor keep a revoked token alive for days.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The token of one store's credentials (Treez v2 `gettokens`, Cova's OAuth2 grant).
///
/// `fetch` asks the vendor for a token and says how long it lives. One fetch runs at a time:
/// callers that arrive during it wait and share its result, so twenty kiosks waking up cost
/// the vendor one token request, not twenty. A token is refreshed ahead of its expiry (60 s
/// or a tenth of its lifetime, whichever is less), so no request leaves with a token about to
/// lapse; if that early refresh fails, the old token is used while it is still valid. A fetch
/// that fails is shared with everyone who was waiting for it, rather than each waiter trying
/// again in turn.
///
/// With a [`TokenStore`] ([`TokenCache::shared_through`], when the store's settings carry
/// one), a token is fetched once for every replica: a replica without a fresh token asks the
/// store, which hands out the one another replica stored or lets this one fetch while the
/// others wait; a 401 forgets it in the store too. The token is then kept here as well, so a
/// call costs the database nothing while the token is fresh. When the store cannot answer,
/// this replica fetches its own, as it would alone.
pub struct TokenCache<F> {
    fetch: F,
    state: Mutex<State>,
    shared: Option<(Arc<dyn TokenStore>, TokenKey)>,
}

#[derive(Default)]
struct State {
    current: Option<Cached>,
    last_failure: Option<(Instant, PosError)>,
}

struct Cached {
    token: Secret,
    refresh_at: Instant,
    expires_at: Instant,
}

impl<F, Fut> TokenCache<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<(Secret, Duration), PosError>> + Send,
{
    pub fn new(fetch: F) -> Self {
        Self {
            fetch,
            state: Mutex::new(State::default()),
            shared: None,
        }
    }

    /// Shares the token with every replica through `settings`' token store, if it has one,
    /// under the store's key `name` (`treez-token`). `credentials` are those the token is
    /// fetched with: a stored token fetched with others is not used.
    pub fn shared_through(self, settings: &Settings, name: &str, credentials: Secret) -> Self {
        let shared = settings.shared.as_ref().map(|shared| {
            let key = TokenKey {
                key: shared.key(name),
                credentials,
            };
            (shared.tokens.clone(), key)
        });
        Self { shared, ..self }
    }

    /// A token to send now: the cached one, or a fresh one.
    pub async fn token(&self) -> Result<Secret, PosError> {
        let asked_at = Instant::now();
        let mut state = self.state.lock().await;
        let now = Instant::now();
        if let Some(cached) = state.current.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(cached.token.clone());
        }
        // A fetch failed while we waited for it: share its answer instead of asking again.
        let shared_failure = state
            .last_failure
            .as_ref()
            .filter(|(failed_at, _)| *failed_at >= asked_at)
            .map(|(_, error)| error.clone());
        if let Some(error) = shared_failure {
            return still_valid(&state, now).ok_or(error);
        }
        match self.fetch_fresh().await {
            Ok(fresh) => {
                let now = Instant::now();
                state.current = Some(Cached {
                    token: fresh.token.clone(),
                    refresh_at: now + fresh.refresh_in,
                    expires_at: now + fresh.expires_in,
                });
                state.last_failure = None;
                Ok(fresh.token)
            }
            Err(error) => {
                let now = Instant::now();
                state.last_failure = Some((now, error.clone()));
                if let Some(token) = still_valid(&state, now) {
                    tracing::warn!(%error, "token refresh failed; using the current token until it expires");
                    return Ok(token);
                }
                Err(error)
            }
        }
    }

    /// A fresh token: from the shared store when there is one (which fetches only if no
    /// replica has), otherwise (or when it cannot answer) from the vendor.
    async fn fetch_fresh(&self) -> Result<FreshToken, PosError> {
        let Some((store, key)) = &self.shared else {
            return self.fetch_now().await;
        };
        let within = super::deadline::current().map_or(super::DEFAULT_TIMEOUT, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        });
        match store.token(key, within, Box::pin(self.fetch_now())).await {
            Ok(fresh) => Ok(fresh),
            Err(TokenStoreError::Vendor(error)) => Err(error),
            Err(TokenStoreError::Unavailable(error)) => {
                tracing::warn!(%error, "the shared token store did not answer; this replica fetches its own");
                self.fetch_now().await
            }
        }
    }

    /// Asks the vendor: the token, with when to refresh it and when it lapses, from now.
    async fn fetch_now(&self) -> Result<FreshToken, PosError> {
        let started = Instant::now();
        let (token, lifetime) = (self.fetch)().await?;
        let lifetime = lifetime.min(MAX_LIFETIME);
        let ahead = REFRESH_AHEAD_MAX.min(lifetime / REFRESH_AHEAD_DIVISOR);
        let elapsed = started.elapsed();
        Ok(FreshToken {
            token,
            refresh_in: lifetime.saturating_sub(ahead).saturating_sub(elapsed),
            expires_in: lifetime.saturating_sub(elapsed),
        })
    }

    /// Forgets `refused` after the vendor answered 401 to it, so the next [`token`] fetches a
    /// new one. Naming the refused token keeps a concurrent caller's 401 on an old token from
    /// throwing away the fresh token another caller just fetched.
    ///
    /// [`token`]: TokenCache::token
    pub async fn invalidate(&self, refused: &Secret) {
        let mut state = self.state.lock().await;
        if state.current.as_ref().is_some_and(|c| &c.token == refused) {
            state.current = None;
        }
        if let Some((store, key)) = &self.shared
            && let Err(error) = store.invalidate(key, refused).await
        {
            tracing::warn!(%error, "the refused token could not be forgotten for the other replicas");
        }
    }
}

fn still_valid(state: &State, now: Instant) -> Option<Secret> {
    state
        .current
        .as_ref()
        .filter(|c| now < c.expires_at)
        .map(|c| c.token.clone())
}

impl<F> std::fmt::Debug for TokenCache<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}
