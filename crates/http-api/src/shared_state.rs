//! The vendor state every replica shares through PostgreSQL (issue 14), as pos-adapters'
//! ports: the persistence crate's [`VendorBudgets`] as a [`RateBudget`], its [`VendorTokens`]
//! as a [`TokenStore`]. On SQLite there is none, and each store keeps both in memory.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use persistence::{Database, StoredToken, VendorBudgets, VendorTokens};
use pos_adapters::http::{
    FreshToken, RateBudget, RateQuota, Secret, Shared, SharedStateError, TokenFetch, TokenKey,
    TokenStore, TokenStoreError,
};

/// What every store's clients share, before it is scoped to one store.
#[derive(Clone)]
pub struct SharedVendorState {
    budget: Arc<dyn RateBudget>,
    tokens: Arc<dyn TokenStore>,
    replicas: NonZeroU32,
}

impl SharedVendorState {
    /// The PostgreSQL budgets and tokens of `database`; `None` on SQLite. `replicas` is how
    /// many gateways share the database (the budget's fail-safe share).
    pub fn for_database(database: &Database, replicas: NonZeroU32) -> Option<Self> {
        Some(Self {
            budget: Arc::new(PgBudget(database.vendor_budgets()?)),
            tokens: Arc::new(PgTokens(database.vendor_tokens()?)),
            replicas,
        })
    }

    /// The shared state of one store, under its `scope` (its id).
    pub fn for_store(&self, scope: String) -> Shared {
        Shared {
            scope,
            budget: self.budget.clone(),
            tokens: self.tokens.clone(),
            replicas: self.replicas,
        }
    }
}

/// [`VendorBudgets`] as pos-adapters' budget port.
pub struct PgBudget(pub VendorBudgets);

#[async_trait::async_trait]
impl RateBudget for PgBudget {
    async fn take(
        &self,
        key: &str,
        quota: RateQuota,
    ) -> Result<Option<Duration>, SharedStateError> {
        self.0
            .take(key, quota.interval(), quota.burst.get())
            .await
            .map_err(|e| SharedStateError(e.to_string()))
    }
}

/// [`VendorTokens`] as pos-adapters' token port.
pub struct PgTokens(pub VendorTokens);

#[async_trait::async_trait]
impl TokenStore for PgTokens {
    async fn token(
        &self,
        key: &TokenKey,
        within: Duration,
        fetch: TokenFetch<'_>,
    ) -> Result<FreshToken, TokenStoreError> {
        let fetch = async move {
            fetch.await.map(|fresh| {
                StoredToken::new(fresh.token.expose(), fresh.refresh_in, fresh.expires_in)
            })
        };
        match self
            .0
            .token(&key.key, key.credentials.expose(), within, fetch)
            .await
        {
            Ok(Ok(stored)) => Ok(FreshToken {
                token: Secret::new(stored.token.as_str()),
                refresh_in: stored.refresh_in,
                expires_in: stored.expires_in,
            }),
            Ok(Err(vendor)) => Err(TokenStoreError::Vendor(vendor)),
            Err(e) => Err(TokenStoreError::Unavailable(SharedStateError(
                e.to_string(),
            ))),
        }
    }

    async fn invalidate(&self, key: &TokenKey, refused: &Secret) -> Result<(), SharedStateError> {
        self.0
            .invalidate(&key.key, refused.expose())
            .await
            .map_err(|e| SharedStateError(e.to_string()))
    }
}
