//! The use cases: what a kiosk can ask of a store's customers, whatever POS the store runs.

use std::collections::{HashMap, HashSet};
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
    Capabilities, CatalogId, Claim, CreateKey, CustomerDirectory, CustomerMirror, IdempotencyKey,
    IdempotencyStore, Operation, OptionalField, PendingCreate, PendingCreateId, PendingCreates,
    PosConnections, Store, StoreId, StoreRegistry, Vendor,
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

/// What one [`CustomerService::recover_pending`] pass did with the journaled creates it found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Found (in the mirror, or at the vendor and then written to the mirror): settled.
    pub recovered: usize,
    /// Not at the vendor: counted, and looked for again on a later pass.
    pub not_found: usize,
    /// Given up: not at the vendor after `recovery_attempts` looks, nothing to look it up by,
    /// an unreadable entry, or its store is gone.
    pub dropped: usize,
    /// Could not be looked for now (vendor unreachable, database error): kept for a later pass.
    pub deferred: usize,
}

impl RecoveryReport {
    /// Entries the pass looked at.
    pub fn examined(&self) -> usize {
        self.recovered + self.not_found + self.dropped + self.deferred
    }
}

#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// Bulk items in flight at once for one request.
    pub bulk_concurrency: usize,
    /// How long a request waits for another with the same `Idempotency-Key` to finish.
    pub idempotency_wait: Duration,
    /// After a create whose outcome is unknown (timeout, cut connection, 5xx, unreadable
    /// answer), how long to let the vendor finish before looking for the customer there.
    pub reconcile_after: Duration,
    /// How old a journaled create must be before recovery looks at it: longer than a request
    /// can still be working on it, in this instance or another sharing the database (see
    /// [`ServiceSettings::orphan_age_for`]).
    pub orphan_age: Duration,
    /// Definitive "not at the vendor" answers after which recovery gives an entry up.
    pub recovery_attempts: u32,
}

/// Added to the orphan age for the database writes around a create and the clocks of several
/// instances not agreeing exactly.
const ORPHAN_MARGIN: Duration = Duration::from_secs(1);
const DEFAULT_POS_TIMEOUT: Duration = Duration::from_secs(10);

impl ServiceSettings {
    /// The defaults, with the orphan age that follows `pos_timeout` (the most one vendor call
    /// may take, retries included).
    pub fn for_pos_timeout(pos_timeout: Duration) -> Self {
        let defaults = Self::default();
        Self {
            orphan_age: Self::orphan_age_for(pos_timeout, defaults.reconcile_after),
            ..defaults
        }
    }

    /// The longest a request can still be working on a create it journaled, plus a margin:
    /// the token and the create calls (2 x `pos_timeout`), the pause before looking for a lost
    /// answer (`reconcile_after`), and that look, one search per key (3 x `pos_timeout`).
    /// 7 s with a 1 s POS timeout; 52 s with the default 10 s.
    pub fn orphan_age_for(pos_timeout: Duration, reconcile_after: Duration) -> Duration {
        pos_timeout
            .saturating_mul(5)
            .saturating_add(reconcile_after)
            .saturating_add(ORPHAN_MARGIN)
    }
}

impl Default for ServiceSettings {
    fn default() -> Self {
        let reconcile_after = Duration::from_secs(1);
        Self {
            bulk_concurrency: 4,
            idempotency_wait: Duration::from_secs(15),
            reconcile_after,
            orphan_age: Self::orphan_age_for(DEFAULT_POS_TIMEOUT, reconcile_after),
            recovery_attempts: 3,
        }
    }
}

/// What a look for a customer at the POS found.
enum PosLookup {
    Found(Box<Customer>),
    /// Searched by at least one key: not there.
    Absent,
    /// The POS cannot search by any key this customer has.
    Unsearchable,
}

/// What recovery did with one journaled create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryOutcome {
    Mirrored,
    NotFound,
    Dropped,
    Deferred,
}

/// The stores one recovery pass has opened (`None`: deleted), by id.
type OpenedStores = HashMap<StoreId, Option<(Store, Arc<dyn CustomerDirectory>)>>;

pub struct CustomerService {
    stores: Arc<dyn StoreRegistry>,
    mirror: Arc<dyn CustomerMirror>,
    idempotency: Arc<dyn IdempotencyStore>,
    pending: Arc<dyn PendingCreates>,
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
        pending: Arc<dyn PendingCreates>,
        connections: Arc<dyn PosConnections>,
        settings: ServiceSettings,
    ) -> Self {
        Self {
            stores,
            mirror,
            idempotency,
            pending,
            connections,
            settings,
        }
    }

    /// What this service was built with (the recovery loop paces itself on the orphan age).
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
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
    /// adapter for supports nothing, and one whose config is unusable is an error.
    pub async fn capabilities(
        &self,
        catalog: &CatalogId,
    ) -> Result<(Vendor, Capabilities), CustomerError> {
        let store = self.store(catalog).await?;
        let capabilities = match self.connections.directory_for(&store) {
            Ok(directory) => directory.capabilities(),
            // No adapter in this build: the store's POS can do nothing here.
            Err(PosError::Unsupported(_)) => Capabilities::default(),
            Err(e) => return Err(e.into()),
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
                    let customers = if directory.is_mirror() {
                        page.customers
                    } else {
                        let unknown = directory.capabilities().unreadable_fields;
                        self.copy_to_mirror(&store, page.customers, unknown).await
                    };
                    return Ok(Listing {
                        customers,
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
                    let customer = if directory.is_mirror() {
                        customer
                    } else {
                        let unknown = directory.capabilities().unreadable_fields;
                        let mut stored = self.copy_to_mirror(&store, vec![customer], unknown).await;
                        match stored.pop() {
                            Some(customer) => customer,
                            None => return Err(CustomerError::CustomerNotFound),
                        }
                    };
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
        let create_key = key.map(|k| CreateKey::derive(&[&k.scope, &k.key, &k.fingerprint]));
        self.idempotent(key, async {
            self.create_one(&store, directory.as_ref(), customer, create_key)
                .await
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
            let outcomes = futures::stream::iter(items.into_iter().enumerate())
                .map(|(index, item)| {
                    let (store, directory) = (&store, directory.as_ref());
                    let create_key = key.map(|k| {
                        CreateKey::derive(&[&k.scope, &k.key, &k.fingerprint, &index.to_string()])
                    });
                    async move {
                        match item {
                            Ok(customer) => {
                                self.create_one(store, directory, customer, create_key)
                                    .await
                            }
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
        let patch = self
            .with_kept_fields(&store, directory.as_ref(), id, patch)
            .await;
        let patch = &patch;
        let updated = directory.update(id, patch).await?;
        if !directory.is_mirror() {
            // What the patch named, the POS's answer says; the rest it may not know.
            let unknown: Vec<OptionalField> = directory
                .capabilities()
                .unreadable_fields
                .iter()
                .copied()
                .filter(|field| !names(patch, *field))
                .collect();
            let mut stored = self.copy_to_mirror(&store, vec![updated], &unknown).await;
            return stored.pop().ok_or(CustomerError::CustomerNotFound);
        }
        Ok(updated)
    }

    /// The patch with the mirror's values of the fields the POS never gives back and the patch
    /// does not name: a POS whose update replaces the whole record (Flowhub) would otherwise
    /// lose them, since the adapter can't read them to send them back. The mirror is the
    /// only place that knows them; without its row the patch goes as it is.
    async fn with_kept_fields(
        &self,
        store: &Store,
        directory: &dyn CustomerDirectory,
        id: &CustomerId,
        patch: &CustomerPatch,
    ) -> CustomerPatch {
        let unreadable = directory.capabilities().unreadable_fields;
        let mut patch = patch.clone();
        if directory.is_mirror() || unreadable.iter().all(|f| names(&patch, *f)) {
            return patch;
        }
        let known = match self.mirror.get(store.id, id).await {
            Ok(Some(known)) => known,
            Ok(None) => return patch,
            Err(e) => {
                tracing::warn!(store = %store.id, error = %e, "could not read the mirror before an update");
                return patch;
            }
        };
        for field in unreadable {
            match field {
                OptionalField::Gender if patch.gender.is_none() => {
                    patch.gender = known.gender.map(Some);
                }
                OptionalField::Birthday if patch.birthday.is_none() => {
                    patch.birthday = known.birthday.map(Some);
                }
                OptionalField::Email if patch.email.is_none() => {
                    patch.email = known.email.clone().map(Some);
                }
                OptionalField::Phone if patch.phone.is_none() => {
                    patch.phone = known.phone.clone().map(Some);
                }
                OptionalField::DriversLicense if patch.drivers_license.is_none() => {
                    patch.drivers_license = known.drivers_license.clone().map(Some);
                }
                OptionalField::Notes if patch.notes.is_none() => {
                    patch.notes = known.notes.clone().map(Some);
                }
                _ => {}
            }
        }
        patch
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
        let unknown = directory.capabilities().unreadable_fields;
        self.mirror
            .upsert(store.id, &found.customers, unknown)
            .await?;
        Ok(SyncPage {
            copied: found.customers.len(),
            next: found.next,
        })
    }

    /// Creates one customer at the store's POS. `key` identifies the kiosk's request across its
    /// retries (its `Idempotency-Key` and the request's fingerprint, so a key reused for another
    /// request after 24 h is another create); `None` without an `Idempotency-Key`.
    async fn create_one(
        &self,
        store: &Store,
        directory: &dyn CustomerDirectory,
        customer: NewCustomer,
        key: Option<CreateKey>,
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
        if directory.is_mirror() {
            // The `local` POS writes the mirror itself, in one statement: nothing to journal.
            let key = key.unwrap_or_else(|| CreateKey::derive(&[&uuid_v4()]));
            return Ok(CreateOutcome::Created(
                directory.create(&customer, &key).await?,
            ));
        }
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
                self.settle(store, entry).await;
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
                self.settle(store, entry).await;
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
            Ok(_) => self.settle(store, entry).await,
            // The mirror is a cache: the create succeeded. The entry stays, so recovery
            // writes the customer to the mirror later.
            Err(e) => {
                tracing::warn!(store = %store.id, pending = %entry, error = %e, "could not update the mirror; left for recovery");
            }
        }
        Ok(CreateOutcome::Created(created))
    }

    /// Forgets a journaled create whose outcome is known. A failure only means recovery will
    /// find the customer in the mirror (or not at the vendor) later.
    async fn settle(&self, store: &Store, entry: PendingCreateId) {
        if let Err(e) = self.pending.settle(entry).await {
            tracing::warn!(store = %store.id, pending = %entry, error = %e, "could not settle a journaled create");
        }
    }

    /// One recovery pass over up to `limit` journaled vendor creates old enough that no
    /// request can still be working on them (`ServiceSettings::orphan_age`): a crash, or a
    /// lost answer the request could not reconcile, left them unaccounted for. Each is looked
    /// for by its e-mail, phone and licence, in the mirror and then at its store's POS.
    /// Found: written to the mirror and settled. Not at the vendor: counted, and dropped after
    /// `recovery_attempts` looks (the vendor never created it). Vendor unreachable: kept for
    /// a later pass. Nothing to look by, unreadable, or its store gone: dropped. Never creates
    /// anything at a vendor.
    pub async fn recover_pending(&self, limit: u32) -> Result<RecoveryReport, CustomerError> {
        let entries = self
            .pending
            .orphans(self.settings.orphan_age, limit)
            .await?;
        let mut report = RecoveryReport::default();
        let mut opened = OpenedStores::new();
        let mut unreachable: HashSet<StoreId> = HashSet::new();
        for entry in entries {
            let outcome = self
                .recover_one(&entry, &mut opened, &mut unreachable)
                .await;
            match outcome {
                EntryOutcome::Mirrored => report.recovered += 1,
                EntryOutcome::NotFound => report.not_found += 1,
                EntryOutcome::Dropped => report.dropped += 1,
                EntryOutcome::Deferred => report.deferred += 1,
            }
        }
        Ok(report)
    }

    async fn recover_one(
        &self,
        entry: &PendingCreate,
        opened: &mut OpenedStores,
        unreachable: &mut HashSet<StoreId>,
    ) -> EntryOutcome {
        let (store_id, pending) = (entry.store, entry.id);
        let customer = match &entry.customer {
            Ok(customer) => customer,
            Err(e) => {
                tracing::warn!(store = %store_id, %pending, error = %e, "recovery: dropped an unreadable journaled create");
                return self.drop_entry(entry).await;
            }
        };
        let keys = customer.duplicate_keys();
        if keys.is_empty() {
            tracing::warn!(store = %store_id, %pending, "recovery: dropped a journaled create with no e-mail, phone or licence to look it up by; a sync of the store would copy it if the vendor has it");
            return self.drop_entry(entry).await;
        }
        let (store, directory) = match opened.get(&store_id) {
            Some(Some((store, directory))) => (store.clone(), directory.clone()),
            Some(None) => return self.drop_entry(entry).await,
            None => match self.stores.store_by_id(store_id).await {
                Ok(Some(store)) => match self.connections.directory_for(&store) {
                    Ok(directory) => {
                        opened.insert(store_id, Some((store.clone(), directory.clone())));
                        (store, directory)
                    }
                    Err(e) => {
                        tracing::warn!(store = %store_id, %pending, error = %e, "recovery: cannot open the store's POS; kept");
                        unreachable.insert(store_id);
                        return self.postpone(entry).await;
                    }
                },
                Ok(None) => {
                    tracing::info!(store = %store_id, %pending, "recovery: dropped a journaled create of a store that no longer exists");
                    opened.insert(store_id, None);
                    return self.drop_entry(entry).await;
                }
                Err(e) => {
                    tracing::warn!(store = %store_id, %pending, error = %e, "recovery: cannot read the store; kept");
                    return EntryOutcome::Deferred;
                }
            },
        };
        if directory.is_mirror() {
            // The store is on the `local` POS now, whose storage is the mirror.
            return self.drop_entry(entry).await;
        }
        match self.mirror.find_duplicate(store.id, &keys).await {
            Ok(Some(_)) => {
                tracing::info!(store = %store.id, %pending, "recovery: the customer is in the mirror; settled");
                return self.settle_recovered(entry).await;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(store = %store.id, %pending, error = %e, "recovery: cannot read the mirror; kept");
                return EntryOutcome::Deferred;
            }
        }
        if unreachable.contains(&store.id) {
            return self.postpone(entry).await;
        }
        match self.look_up_at_pos(directory.as_ref(), customer).await {
            Ok(PosLookup::Found(found)) => {
                // The look-up's copy lacks what the POS never gives back: the journaled
                // customer has what the kiosk gave.
                let caps = directory.capabilities();
                let found = with_unreadable(*found, customer, caps);
                let unknown: Vec<OptionalField> = caps
                    .unreadable_fields
                    .iter()
                    .copied()
                    .filter(|field| !has(customer, *field))
                    .collect();
                match self
                    .mirror
                    .upsert(store.id, std::slice::from_ref(&found), &unknown)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(store = %store.id, %pending, "recovery: found at the vendor and written to the mirror");
                        self.settle_recovered(entry).await
                    }
                    Err(e) => {
                        tracing::warn!(store = %store.id, %pending, error = %e, "recovery: found at the vendor but cannot write the mirror; kept");
                        EntryOutcome::Deferred
                    }
                }
            }
            Ok(PosLookup::Absent) => {
                let attempts = entry.attempts.saturating_add(1);
                if attempts >= self.settings.recovery_attempts {
                    tracing::info!(store = %store.id, %pending, attempts, "recovery: the vendor never created it; dropped");
                    return self.drop_entry(entry).await;
                }
                tracing::info!(store = %store.id, %pending, attempts, "recovery: not at the vendor yet; will look again");
                match self.pending.note_attempt(entry).await {
                    Ok(()) => EntryOutcome::NotFound,
                    Err(e) => {
                        tracing::warn!(store = %store.id, %pending, error = %e, "recovery: could not count an attempt");
                        EntryOutcome::Deferred
                    }
                }
            }
            Ok(PosLookup::Unsearchable) => {
                tracing::warn!(store = %store.id, %pending, "recovery: dropped a journaled create the POS cannot search for by any of its keys");
                self.drop_entry(entry).await
            }
            Err(e) => {
                if e.is_unreachable() {
                    unreachable.insert(store.id);
                }
                tracing::warn!(store = %store.id, %pending, error = %e, "recovery: could not ask the vendor; kept");
                self.postpone(entry).await
            }
        }
    }

    async fn drop_entry(&self, entry: &PendingCreate) -> EntryOutcome {
        match self.pending.settle(entry.id).await {
            Ok(()) => EntryOutcome::Dropped,
            Err(e) => {
                tracing::warn!(store = %entry.store, pending = %entry.id, error = %e, "recovery: could not drop a journaled create");
                EntryOutcome::Deferred
            }
        }
    }

    async fn settle_recovered(&self, entry: &PendingCreate) -> EntryOutcome {
        if let Err(e) = self.pending.settle(entry.id).await {
            // The customer is in the mirror: the next pass finds it there and settles.
            tracing::warn!(store = %entry.store, pending = %entry.id, error = %e, "recovery: could not settle a journaled create");
        }
        EntryOutcome::Mirrored
    }

    async fn postpone(&self, entry: &PendingCreate) -> EntryOutcome {
        if let Err(e) = self.pending.postpone(entry.id).await {
            tracing::warn!(store = %entry.store, pending = %entry.id, error = %e, "recovery: could not postpone a journaled create");
        }
        EntryOutcome::Deferred
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
        if directory.is_mirror() {
            return Ok(None);
        }
        match self.look_up_at_pos(directory, customer).await? {
            PosLookup::Found(found) => {
                let unknown = directory.capabilities().unreadable_fields;
                let mut stored = self.copy_to_mirror(store, vec![*found], unknown).await;
                Ok(stored.pop())
            }
            PosLookup::Absent | PosLookup::Unsearchable => Ok(None),
        }
    }

    /// Looks for the customer at the POS, one search per key, since POS searches combine
    /// filters with AND.
    async fn look_up_at_pos(
        &self,
        directory: &dyn CustomerDirectory,
        customer: &NewCustomer,
    ) -> Result<PosLookup, PosError> {
        if !directory.capabilities().search_customers {
            return Ok(PosLookup::Unsearchable);
        }
        let keys = customer.duplicate_keys();
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
        let mut searched = false;
        // One search per key, all at once: against a slow vendor the duplicate check then costs
        // one round trip, not three. Results are read in key order, so the answer is the same.
        let pages =
            futures::future::join_all(queries.iter().map(|query| directory.find(query))).await;
        for (query, page) in queries.iter().zip(pages) {
            let page = match page {
                Ok(page) => page,
                // This POS cannot search by this key.
                Err(PosError::Unsupported(_)) => continue,
                Err(e) => return Err(e),
            };
            searched = true;
            if let Some(found) = page.customers.into_iter().find(|c| query.matches(c)) {
                return Ok(PosLookup::Found(Box::new(found)));
            }
        }
        Ok(if searched {
            PosLookup::Absent
        } else {
            PosLookup::Unsearchable
        })
    }

    /// The mirror is a cache of the POS: failing to write it must not fail a request whose POS
    /// part succeeded, so it is logged and the next read repairs it.
    ///
    /// Answers the customers as the mirror now holds them: what the POS never gives back
    /// (`unknown`) filled in from the mirror, so a kiosk sees it on live reads too; the POS's
    /// own answer when the mirror could not be written.
    async fn copy_to_mirror(
        &self,
        store: &Store,
        customers: Vec<Customer>,
        unknown: &[OptionalField],
    ) -> Vec<Customer> {
        if customers.is_empty() {
            return customers;
        }
        match self.mirror.upsert(store.id, &customers, unknown).await {
            Ok(stored) if stored.len() == customers.len() => stored,
            Ok(_) => customers,
            Err(e) => {
                tracing::warn!(store = %store.id, error = %e, "could not update the mirror");
                customers
            }
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

/// `found` (read from a POS) with what the kiosk gave for the fields the POS never gives back.
fn with_unreadable(mut found: Customer, sent: &NewCustomer, caps: Capabilities) -> Customer {
    for field in caps.unreadable_fields {
        match field {
            OptionalField::Gender => found.gender = found.gender.or(sent.gender),
            OptionalField::Birthday => found.birthday = found.birthday.or(sent.birthday),
            OptionalField::Email => found.email = found.email.or_else(|| sent.email.clone()),
            OptionalField::Phone => found.phone = found.phone.or_else(|| sent.phone.clone()),
            OptionalField::DriversLicense => {
                found.drivers_license = found
                    .drivers_license
                    .or_else(|| sent.drivers_license.clone());
            }
            OptionalField::Notes => found.notes = found.notes.or_else(|| sent.notes.clone()),
        }
    }
    found
}

/// Whether the patch names the field at all (sets or clears it).
fn names(patch: &CustomerPatch, field: OptionalField) -> bool {
    match field {
        OptionalField::Gender => patch.gender.is_some(),
        OptionalField::Birthday => patch.birthday.is_some(),
        OptionalField::Email => patch.email.is_some(),
        OptionalField::Phone => patch.phone.is_some(),
        OptionalField::DriversLicense => patch.drivers_license.is_some(),
        OptionalField::Notes => patch.notes.is_some(),
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
