//! At most once per `Idempotency-Key`: a replay answers the saved outcome.

use std::future::Future;
use std::pin::pin;

use futures::future::{Either, select};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{BulkItem, CreateOutcome, CustomerService};
use crate::error::{CustomerError, RepositoryError};
use crate::ports::{Claim, ClaimToken, IdempotencyKey, SavedOutcome};

/// An outcome that may be saved for replay.
pub(super) trait Replayable: Serialize + DeserializeOwned {
    /// Whether a retry should get this outcome again rather than another try: not when part
    /// of it failed for a passing reason (a vendor's 503), which a retry may well get past.
    fn worth_keeping(&self) -> bool;
}

impl Replayable for CreateOutcome {
    fn worth_keeping(&self) -> bool {
        true
    }
}

impl Replayable for Vec<BulkItem> {
    fn worth_keeping(&self) -> bool {
        !self
            .iter()
            .any(|item| matches!(item, Err(e) if e.is_transient()))
    }
}

impl CustomerService {
    /// Runs `work` at most once per key: a replay returns the saved outcome, a concurrent
    /// request waits for the first. The claim is renewed while `work` runs, so a long bulk is
    /// never taken over and run twice; only its holder completes it. Outcomes are saved only
    /// when worth keeping, so a retry after a failure (POS down, say) gets another chance.
    pub(super) async fn idempotent<T: Replayable>(
        &self,
        key: Option<&IdempotencyKey>,
        work: impl Future<Output = Result<T, CustomerError>>,
    ) -> Result<T, CustomerError> {
        let Some(key) = key else {
            return work.await;
        };
        let mut claim = self.idempotency.claim(key).await?;
        if claim == Claim::InProgress {
            claim = self
                .idempotency
                .wait(key, self.settings.idempotency_wait)
                .await?;
        }
        match claim {
            Claim::Acquired(token) => {
                let result = self.renewing(key, &token, work).await;
                match &result {
                    Ok(outcome) if outcome.worth_keeping() => {
                        self.save(key, &token, outcome).await;
                    }
                    _ => {
                        if let Err(e) = self.idempotency.release(key, &token).await {
                            tracing::error!(error = %e, "could not release an idempotency key");
                        }
                    }
                }
                result
            }
            Claim::Completed(saved) => saved.read().map_err(|e| {
                CustomerError::Repository(RepositoryError::Corrupt(format!(
                    "saved idempotent outcome: {e}"
                )))
            }),
            Claim::Mismatch => Err(CustomerError::IdempotencyKeyReused),
            Claim::InProgress => Err(CustomerError::IdempotencyKeyInProgress),
        }
    }

    /// `work`, with the claim renewed every `renew_every` until it is done. A renewal that
    /// fails is logged and the work goes on: stopping half-way through a bulk would lose more.
    async fn renewing<T>(
        &self,
        key: &IdempotencyKey,
        token: &ClaimToken,
        work: impl Future<Output = Result<T, CustomerError>>,
    ) -> Result<T, CustomerError> {
        let every = self.idempotency.renew_every();
        let mut work = pin!(work);
        loop {
            // A timer only, no I/O: the domain stays runtime-agnostic in all but this wait.
            let tick = pin!(tokio::time::sleep(every));
            match select(work.as_mut(), tick).await {
                Either::Left((result, _)) => return result,
                Either::Right(((), _)) => match self.idempotency.renew(key, token).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(scope = %key.scope, "an idempotency claim was taken over while its request ran; its outcome will not be saved");
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew an idempotency claim"),
                },
            }
        }
    }

    async fn save<T: Serialize>(&self, key: &IdempotencyKey, token: &ClaimToken, outcome: &T) {
        let saved = match SavedOutcome::of(outcome) {
            Ok(saved) => saved,
            Err(e) => {
                tracing::error!(error = %e, "could not save an idempotent outcome: not serialisable");
                return;
            }
        };
        match self.idempotency.complete(key, token, &saved).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(scope = %key.scope, "an idempotent outcome was not saved: the claim is no longer this request's");
            }
            Err(e) => tracing::error!(error = %e, "could not save an idempotent outcome"),
        }
    }

    /// Deletes up to `limit` idempotency records past their life; how many went.
    pub async fn purge_idempotency(&self, limit: u32) -> Result<u64, CustomerError> {
        Ok(self.idempotency.purge_expired(limit).await?)
    }
}
