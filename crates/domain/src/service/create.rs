//! Creates, one or a bulk of up to 100: a duplicate check, then the POS's create, journaled
//! for a vendor so that a crash between its create and the mirror write loses nothing.

use futures::StreamExt;

use super::fields::{ensure, has, reject_blank, with_unreadable};
use super::lookup::PosLookup;
use super::{BulkItem, CreateOutcome, CustomerService, Opened, Pos};
use crate::customer::{Customer, NewCustomer};
use crate::error::{CustomerError, PosError};
use crate::ports::{
    CatalogId, CreateKey, CustomerDirectory, IdempotencyKey, Operation, OptionalField,
    PendingCreateId, Store,
};
use crate::validation::ValidationErrors;

impl CustomerService {
    /// Creates a customer unless one with the same email, phone or licence exists; with a key,
    /// at most once per key.
    pub async fn create(
        &self,
        catalog: &CatalogId,
        customer: NewCustomer,
        key: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, CustomerError> {
        let Opened { store, pos } = self.open(catalog).await?;
        ensure(pos.directory().capabilities(), Operation::CreateCustomer)?;
        let create_key = key.map(|k| CreateKey::derive(&[&k.scope, &k.key, &k.fingerprint]));
        // Boxed: the idempotency wrapper's states each hold the work, which would otherwise make
        // every create in flight several times the create's own size (12.8 KB against 2.7 KB).
        self.idempotent(
            key,
            Box::pin(async { self.create_one(&store, &pos, customer, create_key).await }),
        )
        .await
    }

    /// Creates up to 100 customers; each item gets its own outcome, in input order. Items that
    /// failed validation are passed in as their errors so that order is kept.
    pub async fn bulk_create(
        &self,
        catalog: &CatalogId,
        items: Vec<Result<NewCustomer, ValidationErrors>>,
        key: Option<&IdempotencyKey>,
    ) -> Result<Vec<BulkItem>, CustomerError> {
        let Opened { store, pos } = self.open(catalog).await?;
        ensure(pos.directory().capabilities(), Operation::CreateCustomer)?;
        let work = async {
            let outcomes = futures::stream::iter(items.into_iter().enumerate())
                .map(|(index, item)| {
                    let (store, pos) = (&store, &pos);
                    let create_key = key.map(|k| {
                        CreateKey::derive(&[&k.scope, &k.key, &k.fingerprint, &index.to_string()])
                    });
                    async move {
                        match item {
                            Ok(customer) => self.create_one(store, pos, customer, create_key).await,
                            Err(errors) => Err(CustomerError::Invalid(errors)),
                        }
                    }
                })
                .buffered(self.settings.bulk_concurrency.max(1))
                .collect::<Vec<_>>()
                .await;
            Ok(outcomes)
        };
        self.idempotent(key, Box::pin(work)).await
    }

    /// Creates one customer at the store's POS. `key` identifies the kiosk's request across its
    /// retries (its `Idempotency-Key` and the request's fingerprint, so a key reused for another
    /// request after 24 h is another create); `None` without an `Idempotency-Key`.
    async fn create_one(
        &self,
        store: &Store,
        pos: &Pos,
        customer: NewCustomer,
        key: Option<CreateKey>,
    ) -> Result<CreateOutcome, CustomerError> {
        let missing = pos
            .directory()
            .capabilities()
            .required_fields
            .iter()
            .filter(|field| !has(&customer, **field));
        reject_blank(missing)?;
        let directory = match pos {
            Pos::Local(directory) => {
                // The `local` POS writes the mirror itself, in one statement whose unique keys
                // per store make the duplicate check and the insert one step: nothing to lock,
                // nothing to journal.
                let key = key.unwrap_or_else(|| CreateKey::derive(&[&uuid_v4()]));
                return match directory.create(&customer, &key).await {
                    Ok(created) => Ok(CreateOutcome::Created(created)),
                    Err(PosError::Duplicate(existing)) => {
                        Ok(CreateOutcome::AlreadyExists(*existing))
                    }
                    Err(e) => Err(e.into()),
                };
            }
            Pos::Vendor(directory) => directory.as_ref(),
        };
        // The duplicate check and the vendor's create, one request at a time per duplicate key
        // of this store (across replicas too), so that two requests for one new customer make
        // one customer and one 409. Without keys there is nothing to be a duplicate of.
        let keys = customer.duplicate_keys();
        if keys.is_empty() {
            return self.vendor_create(store, directory, customer, key).await;
        }
        let lease = self
            .locks
            .acquire(
                store.id,
                &keys,
                self.settings.orphan_age,
                self.settings.idempotency_wait,
            )
            .await?
            .ok_or(CustomerError::CreateInProgress)?;
        let outcome = match self.find_duplicate(store, pos, &customer, &keys).await {
            Ok(Some(existing)) => Ok(CreateOutcome::AlreadyExists(existing)),
            Ok(None) => self.vendor_create(store, directory, customer, key).await,
            Err(e) => Err(e),
        };
        // The customer is in the mirror by now (or the create failed): the next holder's
        // duplicate check finds it there, so the kiosk need not wait for the release. Should it
        // fail, the lease runs out on its own: others wait a little longer, nothing worse.
        self.locks.release_behind(lease);
        outcome
    }

    /// The vendor's create, journaled, with the mirror written after; the caller has checked
    /// for a duplicate and holds the customer's keys.
    async fn vendor_create(
        &self,
        store: &Store,
        directory: &dyn CustomerDirectory,
        customer: NewCustomer,
        key: Option<CreateKey>,
    ) -> Result<CreateOutcome, CustomerError> {
        // Journaled before the vendor can see it, so a crash between the vendor's create and
        // the mirror write leaves an entry for `recover_pending`. Nothing was sent if this
        // fails, so the create fails with it rather than go unjournaled.
        let entry = self.pending.record(store.id, &customer).await?;
        // Without an Idempotency-Key no retry can be told from a new request, so the key is
        // this create's alone (not the journal's id: ids repeat when a database is restored,
        // and a vendor would then answer someone else's customer).
        let key = key.unwrap_or_else(|| CreateKey::derive(&[&uuid_v4()]));
        let created = match directory.create(&customer, &key).await {
            Ok(created) => created,
            // The POS had them already (a race with another till, or its own de-duplication):
            // the contract's 409 with that customer, as if our own check had found them.
            Err(PosError::Duplicate(existing)) => {
                if let Err(e) = self
                    .mirror
                    .upsert(
                        store.id,
                        std::slice::from_ref(existing.as_ref()),
                        directory.capabilities().unreadable_fields,
                    )
                    .await
                {
                    tracing::warn!(store = %store.id, error = %e, "could not copy a duplicate to the mirror");
                }
                self.settle(entry);
                return Ok(CreateOutcome::AlreadyExists(*existing));
            }
            Err(error) if outcome_unknown(&error) => {
                match self.reconcile(store, directory, &customer).await {
                    // The look-up's copy lacks what the POS never gives back: the kiosk's.
                    Some(found) => with_unreadable(found, &customer, directory.capabilities()),
                    None => {
                        // The vendor may still have it: recovery will look again later.
                        tracing::warn!(store = %store.id, pending = %entry, "create outcome unknown; left for recovery");
                        return Err(error.into());
                    }
                }
            }
            Err(error) => {
                // A definitive answer: the vendor refused it, or it was never sent.
                self.settle(entry);
                return Err(error.into());
            }
        };
        // What the kiosk gave, the POS's answer carries; the rest it may not know.
        let unknown: Vec<OptionalField> = directory
            .capabilities()
            .unreadable_fields
            .iter()
            .copied()
            .filter(|field| !has(&customer, *field))
            .collect();
        match self
            .mirror
            .upsert(store.id, std::slice::from_ref(&created), &unknown)
            .await
        {
            Ok(_) => self.settle(entry),
            // The mirror is a cache: the create succeeded. The entry stays, so recovery
            // writes the customer to the mirror later.
            Err(e) => {
                tracing::warn!(store = %store.id, pending = %entry, error = %e, "could not update the mirror; left for recovery");
            }
        }
        Ok(CreateOutcome::Created(created))
    }

    /// Forgets a journaled create whose outcome is known, behind the answer. A failure only
    /// means recovery will find the customer in the mirror (or not at the vendor) later.
    fn settle(&self, entry: PendingCreateId) {
        self.pending.settle_behind(entry);
    }

    /// A create that may have happened though its answer was lost: gives the vendor a moment,
    /// then looks for the customer by its e-mail, phone and licence. Found, it is this
    /// request's customer (so the kiosk gets its 201, and a retry does not make a second);
    /// not found (or nothing to look by), the error stands.
    async fn reconcile(
        &self,
        store: &Store,
        directory: &dyn CustomerDirectory,
        customer: &NewCustomer,
    ) -> Option<Customer> {
        if customer.duplicate_keys().is_empty() {
            return None;
        }
        // A timer only, no I/O: the domain stays runtime-agnostic in all but this wait.
        tokio::time::sleep(self.settings.reconcile_after).await;
        // By identity: someone else sharing a key (a household's phone) is not this create.
        match self.find_same(store, directory, customer).await {
            Ok(PosLookup::Found(found) | PosLookup::Mirrored(found)) => {
                tracing::warn!(store = %store.id, "reconciled a create whose answer was lost");
                Some(*found)
            }
            Ok(PosLookup::Absent | PosLookup::Unsearchable) => {
                tracing::warn!(store = %store.id, "a create whose answer was lost is not at the vendor (yet)");
                None
            }
            Err(error) => {
                tracing::warn!(store = %store.id, %error, "could not reconcile a create whose answer was lost");
                None
            }
        }
    }
}

/// A key no retry will share, for a `local` create without an `Idempotency-Key`.
fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether a failed create may have been done by the vendor all the same: it timed out, the
/// connection broke after sending, the vendor answered 5xx or something unreadable. Not when
/// it was refused (4xx), rate limited, or never sent (circuit open, our own rate limit: those
/// carry a `Retry-After` and no vendor answer).
fn outcome_unknown(error: &PosError) -> bool {
    match error {
        PosError::Timeout { .. } | PosError::BadAnswer { .. } => true,
        PosError::Unavailable {
            response: Some(response),
            ..
        } => response.status >= 500,
        PosError::Unavailable {
            response: None,
            retry_after,
            ..
        } => retry_after.is_none(),
        _ => false,
    }
}
