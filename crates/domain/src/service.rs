//! The use cases: what a kiosk can ask of a store's customers, whatever POS the store runs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::customer::{Customer, CustomerId, CustomerPatch, NewCustomer};
use crate::error::{CustomerError, PosError};
use crate::ports::{
    Capabilities, CatalogId, Claim, CustomerDirectory, CustomerMirror, IdempotencyKey,
    IdempotencyStore, Operation, OptionalField, PosConnections, Store, StoreRegistry, Vendor,
};
use crate::query::{CustomerQuery, PageToken};
use crate::validation::{FieldError, ValidationErrors};

/// Where an answer came from: the POS itself, or the mirror because the POS could not be
/// reached (or cannot do what was asked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataSource {
    Pos,
    Mirror,
}

impl DataSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DataSource::Pos => "pos",
            DataSource::Mirror => "mirror",
        }
    }
}

/// What one step of a sync copied, and where the next starts (`None`: done).
#[derive(Clone, Debug, PartialEq)]
pub struct SyncPage {
    pub copied: usize,
    pub next: Option<PageToken>,
}

/// A page of a list or search, with an opaque cursor for the next.
#[derive(Clone, Debug, PartialEq)]
pub struct Listing {
    pub customers: Vec<Customer>,
    pub next_cursor: Option<String>,
    pub source: DataSource,
}

/// What a create did. A duplicate is an outcome, not an error, because an idempotent replay
/// must give it back exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CreateOutcome {
    Created(Customer),
    AlreadyExists(Customer),
}

/// One bulk item's outcome, in input order.
pub type BulkItem = Result<CreateOutcome, CustomerError>;

#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// Bulk items in flight at once for one request.
    pub bulk_concurrency: usize,
    /// How long a request waits for another with the same `Idempotency-Key` to finish.
    pub idempotency_wait: Duration,
    /// After a create whose outcome is unknown (timeout, cut connection, 5xx, unreadable
    /// answer), how long to let the vendor finish before looking for the customer there.
    pub reconcile_after: Duration,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            bulk_concurrency: 4,
            idempotency_wait: Duration::from_secs(15),
            reconcile_after: Duration::from_secs(1),
        }
    }
}

pub struct CustomerService {
    stores: Arc<dyn StoreRegistry>,
    mirror: Arc<dyn CustomerMirror>,
    idempotency: Arc<dyn IdempotencyStore>,
    connections: Arc<dyn PosConnections>,
    settings: ServiceSettings,
}

/// The cursor a client sees: which source made it, and that source's own token.
enum Cursor {
    Pos(PageToken),
    Mirror(PageToken),
}

impl Cursor {
    fn encode(source: DataSource, token: PageToken) -> String {
        let tag = match source {
            DataSource::Pos => 'p',
            DataSource::Mirror => 'm',
        };
        URL_SAFE_NO_PAD.encode(format!("{tag}:{}", token.0))
    }

    fn decode(text: &str) -> Result<Self, CustomerError> {
        let invalid =
            || CustomerError::Invalid(ValidationErrors::single("cursor", FieldError::Invalid));
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        match text.split_once(':') {
            Some(("p", token)) if !token.is_empty() => Ok(Cursor::Pos(PageToken(token.to_owned()))),
            Some(("m", token)) if !token.is_empty() => {
                Ok(Cursor::Mirror(PageToken(token.to_owned())))
            }
            _ => Err(invalid()),
        }
    }
}

impl CustomerService {
    pub fn new(
        stores: Arc<dyn StoreRegistry>,
        mirror: Arc<dyn CustomerMirror>,
        idempotency: Arc<dyn IdempotencyStore>,
        connections: Arc<dyn PosConnections>,
        settings: ServiceSettings,
    ) -> Self {
        Self {
            stores,
            mirror,
            idempotency,
            connections,
            settings,
        }
    }

    async fn store(&self, catalog: &CatalogId) -> Result<Store, CustomerError> {
        self.stores
            .store_for_catalog(catalog)
            .await?
            .ok_or(CustomerError::CatalogNotFound)
    }

    async fn open(
        &self,
        catalog: &CatalogId,
    ) -> Result<(Store, Arc<dyn CustomerDirectory>), CustomerError> {
        let store = self.store(catalog).await?;
        let directory = self.connections.directory_for(&store)?;
        Ok((store, directory))
    }

    /// The store's vendor and what its POS supports; a store whose vendor this build has no
    /// adapter for supports nothing.
    pub async fn capabilities(
        &self,
        catalog: &CatalogId,
    ) -> Result<(Vendor, Capabilities), CustomerError> {
        let store = self.store(catalog).await?;
        let capabilities = match self.connections.directory_for(&store) {
            Ok(directory) => directory.capabilities(),
            Err(_) => Capabilities::default(),
        };
        Ok((store.vendor, capabilities))
    }

    /// Lists or searches live at the POS, copying what it answers into the mirror; the mirror
    /// answers when the POS cannot be reached or cannot do it.
    pub async fn list(
        &self,
        catalog: &CatalogId,
        mut query: CustomerQuery,
        cursor: Option<&str>,
    ) -> Result<Listing, CustomerError> {
        let cursor = cursor.map(Cursor::decode).transpose()?;
        let (store, directory) = self.open(catalog).await?;
        let operation = if query.has_filters() {
            Operation::SearchCustomers
        } else {
            Operation::ListCustomers
        };
        let pos_can = directory.capabilities().supports(operation);

        let from_pos = match cursor {
            Some(Cursor::Mirror(token)) => {
                query.page = Some(token);
                false
            }
            Some(Cursor::Pos(token)) => {
                query.page = Some(token);
                pos_can
            }
            None => pos_can,
        };

        if from_pos {
            match directory.find(&query).await {
                Ok(page) => {
                    if !directory.is_mirror() {
                        self.copy_to_mirror(&store, &page.customers).await;
                    }
                    return Ok(Listing {
                        customers: page.customers,
                        next_cursor: page.next.map(|t| Cursor::encode(DataSource::Pos, t)),
                        source: DataSource::Pos,
                    });
                }
                Err(e) if e.is_unreachable() && !directory.is_mirror() => {
                    tracing::warn!(store = %store.id, error = %e, "POS unreachable; answering from the mirror");
                    // A POS cursor means nothing to the mirror: start from its first page.
                    query.page = None;
                }
                // The POS searches, but not by these filters (Dutchie has no licence search,
                // Treez no name search): the mirror can.
                Err(PosError::Unsupported(_)) if !directory.is_mirror() => {
                    query.page = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let page = self.mirror.find(store.id, &query).await?;
        Ok(Listing {
            customers: page.customers,
            next_cursor: page.next.map(|t| Cursor::encode(DataSource::Mirror, t)),
            source: DataSource::Mirror,
        })
    }

    pub async fn get(
        &self,
        catalog: &CatalogId,
        id: &CustomerId,
    ) -> Result<(Customer, DataSource), CustomerError> {
        let (store, directory) = self.open(catalog).await?;
        if directory.capabilities().get_customer {
            match directory.get(id).await {
                Ok(Some(customer)) => {
                    if !directory.is_mirror() {
                        self.copy_to_mirror(&store, std::slice::from_ref(&customer))
                            .await;
                    }
                    return Ok((customer, DataSource::Pos));
                }
                Ok(None) => return Err(CustomerError::CustomerNotFound),
                Err(e) if e.is_unreachable() && !directory.is_mirror() => {
                    // Not in the mirror either: say the POS is down, not that there is no such
                    // customer, which we do not know.
                    return match self.mirror.get(store.id, id).await? {
                        Some(customer) => Ok((customer, DataSource::Mirror)),
                        None => Err(e.into()),
                    };
                }
                Err(e) => return Err(e.into()),
            }
        }
        match self.mirror.get(store.id, id).await? {
            Some(customer) => Ok((customer, DataSource::Mirror)),
            None => Err(CustomerError::CustomerNotFound),
        }
    }

    /// Creates a customer unless one with the same email, phone or licence exists; with a key,
    /// at most once per key.
    pub async fn create(
        &self,
        catalog: &CatalogId,
        customer: NewCustomer,
        key: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, CustomerError> {
        let (store, directory) = self.open(catalog).await?;
        ensure(directory.capabilities(), Operation::CreateCustomer)?;
        self.idempotent(key, async {
            self.create_one(&store, directory.as_ref(), customer).await
        })
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
        let (store, directory) = self.open(catalog).await?;
        ensure(directory.capabilities(), Operation::CreateCustomer)?;
        let work = async {
            let outcomes = futures::stream::iter(items)
                .map(|item| {
                    let (store, directory) = (&store, directory.as_ref());
                    async move {
                        match item {
                            Ok(customer) => self.create_one(store, directory, customer).await,
                            Err(errors) => Err(CustomerError::Invalid(errors)),
                        }
                    }
                })
                .buffered(self.settings.bulk_concurrency.max(1))
                .collect::<Vec<_>>()
                .await;
            Ok(outcomes)
        };
        self.idempotent(key, work).await
    }

    pub async fn update(
        &self,
        catalog: &CatalogId,
        id: &CustomerId,
        patch: &CustomerPatch,
    ) -> Result<Customer, CustomerError> {
        let (store, directory) = self.open(catalog).await?;
        ensure(directory.capabilities(), Operation::UpdateCustomer)?;
        let cleared = directory
            .capabilities()
            .required_fields
            .iter()
            .filter(|field| clears(patch, **field));
        reject_blank(cleared)?;
        let updated = directory.update(id, patch).await?;
        if !directory.is_mirror() {
            self.copy_to_mirror(&store, std::slice::from_ref(&updated))
                .await;
        }
        Ok(updated)
    }

    /// Copies one page of the store's POS customers into the mirror, from `page` (the start
    /// when `None`): the step of `pos-gateway sync`, which keeps `next` between steps so an
    /// interrupted sync resumes where it stopped. The `local` POS is its own mirror: nothing
    /// to copy.
    pub async fn sync_page(
        &self,
        catalog: &CatalogId,
        page: Option<PageToken>,
        limit: u32,
    ) -> Result<SyncPage, CustomerError> {
        let (store, directory) = self.open(catalog).await?;
        if directory.is_mirror() {
            return Ok(SyncPage {
                copied: 0,
                next: None,
            });
        }
        ensure(directory.capabilities(), Operation::ListCustomers)?;
        let query = CustomerQuery {
            limit,
            page,
            ..Default::default()
        };
        let found = directory.find(&query).await?;
        // Unlike a kiosk's read, a sync that cannot write the mirror has failed.
        self.mirror.upsert(store.id, &found.customers).await?;
        Ok(SyncPage {
            copied: found.customers.len(),
            next: found.next,
        })
    }

    async fn create_one(
        &self,
        store: &Store,
        directory: &dyn CustomerDirectory,
        customer: NewCustomer,
    ) -> Result<CreateOutcome, CustomerError> {
        let missing = directory
            .capabilities()
            .required_fields
            .iter()
            .filter(|field| !has(&customer, **field));
        reject_blank(missing)?;
        if let Some(existing) = self.find_duplicate(store, directory, &customer).await? {
            return Ok(CreateOutcome::AlreadyExists(existing));
        }
        let created = match directory.create(&customer).await {
            Ok(created) => created,
            Err(error) if !directory.is_mirror() && outcome_unknown(&error) => {
                match self.reconcile(store, directory, &customer).await {
                    Some(found) => found,
                    None => return Err(error.into()),
                }
            }
            Err(error) => return Err(error.into()),
        };
        if !directory.is_mirror() {
            self.copy_to_mirror(store, std::slice::from_ref(&created))
                .await;
        }
        Ok(CreateOutcome::Created(created))
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
        match self.find_duplicate(store, directory, customer).await {
            Ok(found) => {
                tracing::warn!(store = %store.id, found = found.is_some(), "reconciled a create whose answer was lost");
                found
            }
            Err(error) => {
                tracing::warn!(store = %store.id, %error, "could not reconcile a create whose answer was lost");
                None
            }
        }
    }

    /// The mirror first (cheap, and it has every customer we ever saw), then the POS, one
    /// search per key, since POS searches combine filters with AND.
    async fn find_duplicate(
        &self,
        store: &Store,
        directory: &dyn CustomerDirectory,
        customer: &NewCustomer,
    ) -> Result<Option<Customer>, CustomerError> {
        let keys = customer.duplicate_keys();
        if keys.is_empty() {
            return Ok(None);
        }
        if let Some(found) = self.mirror.find_duplicate(store.id, &keys).await? {
            return Ok(Some(found));
        }
        if directory.is_mirror() || !directory.capabilities().search_customers {
            return Ok(None);
        }
        let base = CustomerQuery {
            limit: 1,
            ..Default::default()
        };
        let mut queries = Vec::new();
        if let Some(email) = keys.email {
            queries.push(CustomerQuery {
                email: Some(email),
                ..base.clone()
            });
        }
        if let Some(phone_digits) = keys.phone_digits {
            queries.push(CustomerQuery {
                phone_digits: Some(phone_digits),
                ..base.clone()
            });
        }
        if let Some(license) = customer.drivers_license.clone() {
            queries.push(CustomerQuery {
                drivers_license: Some(license),
                ..base
            });
        }
        for query in queries {
            let page = match directory.find(&query).await {
                Ok(page) => page,
                // This POS cannot search by this key; the mirror was asked already.
                Err(PosError::Unsupported(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            if let Some(found) = page.customers.into_iter().find(|c| query.matches(c)) {
                self.copy_to_mirror(store, std::slice::from_ref(&found))
                    .await;
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The mirror is a cache of the POS: failing to write it must not fail a request whose POS
    /// part succeeded, so it is logged and the next read repairs it.
    async fn copy_to_mirror(&self, store: &Store, customers: &[Customer]) {
        if customers.is_empty() {
            return;
        }
        if let Err(e) = self.mirror.upsert(store.id, customers).await {
            tracing::warn!(store = %store.id, error = %e, "could not update the mirror");
        }
    }

    /// Runs `work` at most once per key: a replay returns the saved outcome, a concurrent
    /// request waits for the first. Outcomes are saved only on success, so a retry after a
    /// failure (POS down, say) gets another chance.
    async fn idempotent<T: Serialize + DeserializeOwned>(
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

fn has(customer: &NewCustomer, field: OptionalField) -> bool {
    match field {
        OptionalField::Gender => customer.gender.is_some(),
        OptionalField::Birthday => customer.birthday.is_some(),
        OptionalField::Email => customer.email.is_some(),
        OptionalField::Phone => customer.phone.is_some(),
        OptionalField::DriversLicense => customer.drivers_license.is_some(),
        OptionalField::Notes => customer.notes.is_some(),
    }
}

fn clears(patch: &CustomerPatch, field: OptionalField) -> bool {
    match field {
        OptionalField::Gender => matches!(patch.gender, Some(None)),
        OptionalField::Birthday => matches!(patch.birthday, Some(None)),
        OptionalField::Email => matches!(patch.email, Some(None)),
        OptionalField::Phone => matches!(patch.phone, Some(None)),
        OptionalField::DriversLicense => matches!(patch.drivers_license, Some(None)),
        OptionalField::Notes => matches!(patch.notes, Some(None)),
    }
}

/// A 422 with "can't be blank" on each field, if there are any.
fn reject_blank<'a>(fields: impl Iterator<Item = &'a OptionalField>) -> Result<(), CustomerError> {
    let mut errors = ValidationErrors::new();
    for field in fields {
        errors.add(field.as_str(), FieldError::Blank);
    }
    errors.into_result(|| ()).map_err(CustomerError::Invalid)
}

fn ensure(capabilities: Capabilities, operation: Operation) -> Result<(), CustomerError> {
    if capabilities.supports(operation) {
        Ok(())
    } else {
        Err(CustomerError::Unsupported(operation))
    }
}

#[cfg(test)]
mod tests;
