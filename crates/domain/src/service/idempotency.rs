//! At most once per `Idempotency-Key`: a replay answers the saved outcome.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::CustomerService;
use crate::error::CustomerError;
use crate::ports::{Claim, IdempotencyKey};

impl CustomerService {
    /// Runs `work` at most once per key: a replay returns the saved outcome, a concurrent
    /// request waits for the first. Outcomes are saved only on success, so a retry after a
    /// failure (POS down, say) gets another chance.
    pub(super) async fn idempotent<T: Serialize + DeserializeOwned>(
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
            Claim::Acquired => {
                let result = work.await;
                match &result {
                    Ok(outcome) => {
                        let saved = serde_json::to_value(outcome).map_err(|e| {
                            crate::error::RepositoryError::Other(format!(
                                "outcome not serialisable: {e}"
                            ))
                        });
                        match saved {
                            Ok(saved) => {
                                if let Err(e) = self.idempotency.complete(key, &saved).await {
                                    tracing::error!(error = %e, "could not save an idempotent outcome");
                                }
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "could not save an idempotent outcome")
                            }
                        }
                    }
                    Err(_) => {
                        if let Err(e) = self.idempotency.release(key).await {
                            tracing::error!(error = %e, "could not release an idempotency key");
                        }
                    }
                }
                result
            }
            Claim::Completed(saved) => serde_json::from_value(saved).map_err(|e| {
                CustomerError::Repository(crate::error::RepositoryError::Corrupt(format!(
                    "saved idempotent outcome: {e}"
                )))
            }),
            Claim::Mismatch => Err(CustomerError::IdempotencyKeyReused),
            Claim::InProgress => Err(CustomerError::IdempotencyKeyInProgress),
        }
    }
}
