//! The ports: traits the outside world implements for the use cases.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::customer::{Customer, CustomerId, CustomerPatch, NewCustomer};
use crate::error::{PosError, RepositoryError};
use crate::query::{CustomerPage, CustomerQuery, PageToken};

/// The POS systems pos-gateway knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Local,
    Treez,
    Flowhub,
    Dutchie,
    Blaze,
    Cova,
}

impl Vendor {
    pub const ALL: [Vendor; 6] = [
        Vendor::Local,
        Vendor::Treez,
        Vendor::Flowhub,
        Vendor::Dutchie,
        Vendor::Blaze,
        Vendor::Cova,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Local => "local",
            Vendor::Treez => "treez",
            Vendor::Flowhub => "flowhub",
            Vendor::Dutchie => "dutchie",
            Vendor::Blaze => "blaze",
            Vendor::Cova => "cova",
        }
    }

    /// Other names a store's vendor may be given (Dutchie POS was LeafLogix).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Vendor::Dutchie => &["leaflogix"],
            _ => &[],
        }
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Vendor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str() == lower || v.aliases().contains(&lower.as_str()))
            .ok_or_else(|| format!("unknown vendor '{s}' (expected one of local, treez, flowhub, dutchie, leaflogix, blaze, cova)"))
    }
}

/// The operations of the POS port, for capabilities and "not supported" answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    ListCustomers,
    SearchCustomers,
    GetCustomer,
    CreateCustomer,
    UpdateCustomer,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::ListCustomers => "list customers",
            Operation::SearchCustomers => "search customers",
            Operation::GetCustomer => "get a customer",
            Operation::CreateCustomer => "create a customer",
            Operation::UpdateCustomer => "update a customer",
        })
    }
}

/// A customer field that is optional in the contract but that some POS insists on (Treez
/// will not create a customer without a birthday).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionalField {
    Gender,
    Birthday,
    Email,
    Phone,
    DriversLicense,
    Notes,
}

impl OptionalField {
    pub const ALL: [OptionalField; 6] = [
        OptionalField::Gender,
        OptionalField::Birthday,
        OptionalField::Email,
        OptionalField::Phone,
        OptionalField::DriversLicense,
        OptionalField::Notes,
    ];

    /// The field's name in the contract (and so in 422 bodies).
    pub fn as_str(self) -> &'static str {
        match self {
            OptionalField::Gender => "gender",
            OptionalField::Birthday => "birthday",
            OptionalField::Email => "email",
            OptionalField::Phone => "phone",
            OptionalField::DriversLicense => "drivers_license",
            OptionalField::Notes => "notes",
        }
    }
}

/// A filter of a customer search (`?email=`, `?phone=`, `?drivers_license=`, `?name=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchFilter {
    Email,
    Phone,
    DriversLicense,
    Name,
}

impl SearchFilter {
    pub const ALL: [SearchFilter; 4] = [
        SearchFilter::Email,
        SearchFilter::Phone,
        SearchFilter::DriversLicense,
        SearchFilter::Name,
    ];

    /// The query parameter's name in the contract.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchFilter::Email => "email",
            SearchFilter::Phone => "phone",
            SearchFilter::DriversLicense => "drivers_license",
            SearchFilter::Name => "name",
        }
    }
}

/// What a POS can do, as data, so "this vendor can't update" is a typed answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub list_customers: bool,
    pub search_customers: bool,
    pub get_customer: bool,
    pub create_customer: bool,
    pub update_customer: bool,
    /// Optional fields the POS requires on create (and so that an update may not clear);
    /// checked before any vendor call, so a kiosk gets a 422 on the field, not a vendor error.
    pub required_fields: &'static [OptionalField],
    /// The filters the POS can look customers up by. A search with none of them is answered
    /// by the mirror; the others of a search are checked on what the POS returns.
    pub search_by: &'static [SearchFilter],
    /// Optional fields the POS does not give back on reads (write-only there, like Dutchie's
    /// licence, or not kept at all): what a customer read from it says of them is nothing, so
    /// the mirror keeps the value it was given.
    pub unreadable_fields: &'static [OptionalField],
}

impl Capabilities {
    pub const ALL: Capabilities = Capabilities {
        list_customers: true,
        search_customers: true,
        get_customer: true,
        create_customer: true,
        update_customer: true,
        required_fields: &[],
        search_by: &SearchFilter::ALL,
        unreadable_fields: &[],
    };

    pub fn supports(&self, op: Operation) -> bool {
        match op {
            Operation::ListCustomers => self.list_customers,
            Operation::SearchCustomers => self.search_customers,
            Operation::GetCustomer => self.get_customer,
            Operation::CreateCustomer => self.create_customer,
            Operation::UpdateCustomer => self.update_customer,
        }
    }

    /// Whether the POS can look customers up by `filter`.
    pub fn searches_by(&self, filter: SearchFilter) -> bool {
        self.search_customers && self.search_by.contains(&filter)
    }

    /// Whether the POS gives `field` back on reads.
    pub fn reads_back(&self, field: OptionalField) -> bool {
        !self.unreadable_fields.contains(&field)
    }
}

/// The POS port: one store's customers at its point-of-sale system. `Debug` is required so an
/// adapter decides what it shows (never a credential).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CustomerDirectory: Send + Sync + std::fmt::Debug {
    fn vendor(&self) -> Vendor;

    fn capabilities(&self) -> Capabilities;

    /// True when this directory's storage *is* the mirror (the built-in `local` POS), so the
    /// use cases neither copy its answers into the mirror nor search the mirror twice.
    fn is_mirror(&self) -> bool;

    /// Lists (no filters) or searches (filters, combined with AND) the store's customers.
    async fn find(&self, query: &CustomerQuery) -> Result<CustomerPage, PosError>;

    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, PosError>;

    /// Creates a customer. Never retried blindly: a create is not idempotent at most vendors.
    /// `key` is the same for every attempt of one kiosk request (its `Idempotency-Key`), so a
    /// vendor that de-duplicates creates by a key of ours (Dutchie's `ConsumerKey`) makes one
    /// customer however often it is sent. A POS that finds the customer already exists answers
    /// [`PosError::Duplicate`].
    async fn create(&self, customer: &NewCustomer, key: &CreateKey) -> Result<Customer, PosError>;

    /// Applies a patch; `PosError::NotFound` when the customer does not exist.
    async fn update(&self, id: &CustomerId, patch: &CustomerPatch) -> Result<Customer, PosError>;
}

/// What identifies one create across its attempts: a name-based UUID of the kiosk's
/// `Idempotency-Key` (and the bulk item's place), or of the create's journal entry when the
/// kiosk sent none. Vendors that de-duplicate creates by a client key get it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CreateKey(uuid::Uuid);

impl CreateKey {
    /// pos-gateway's namespace for create keys (a random UUID, fixed once).
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1c_2a0e_9b7d_4c55_8e3a_51d2_c0f4_7a19);

    /// The key of everything named by `parts` (joined unambiguously).
    pub fn derive(parts: &[&str]) -> Self {
        let mut name = Vec::new();
        for part in parts {
            name.extend_from_slice(&(part.len() as u64).to_be_bytes());
            name.extend_from_slice(part.as_bytes());
        }
        Self(uuid::Uuid::new_v5(&Self::NAMESPACE, &name))
    }

    pub fn uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl std::fmt::Display for CreateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A store's id in our database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreId(pub i64);

impl std::fmt::Display for StoreId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A catalog (kiosk) id, as it appears in URLs and tokens.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CatalogId(String);

impl CatalogId {
    /// Letters, digits, `-`, `_` and `.`; 1 to 64 of them. `*` is reserved for tokens.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=64).contains(&text.len())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CatalogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A store and its POS integration. `config` holds vendor credentials, so `Debug` leaves it out.
/// It is shared: a store is handed to every request of its catalogs, and a clone must not copy
/// the JSON (nor must telling a changed config from the same one compare it).
#[derive(Clone, PartialEq)]
pub struct Store {
    pub id: StoreId,
    pub name: String,
    pub vendor: Vendor,
    pub config: Arc<serde_json::Value>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("vendor", &self.vendor)
            .field("config", &"<redacted>")
            .finish()
    }
}

/// Catalog -> store -> vendor and its config.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StoreRegistry: Send + Sync {
    async fn store_for_catalog(
        &self,
        catalog: &CatalogId,
    ) -> Result<Option<Store>, RepositoryError>;

    /// The store with this id; `None` once it has been deleted.
    async fn store_by_id(&self, id: StoreId) -> Result<Option<Store>, RepositoryError>;
}

/// Opens the POS port for a store. Implementations may cache one directory per store.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait PosConnections: Send + Sync {
    /// `Err(PosError::Unsupported)` when this build has no adapter for the store's vendor.
    fn directory_for(&self, store: &Store) -> Result<Arc<dyn CustomerDirectory>, PosError>;
}

/// What a create must not repeat within a store: any one of these matching is a duplicate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DuplicateKeys {
    /// Lower case.
    pub email: Option<String>,
    pub phone_digits: Option<String>,
    /// Upper case, without spaces and dashes.
    pub drivers_license: Option<String>,
}

impl DuplicateKeys {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.phone_digits.is_none() && self.drivers_license.is_none()
    }
}

/// pos-gateway's own copy of every customer it has seen, per store.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CustomerMirror: Send + Sync {
    /// Writes what the POS said of these customers. For the fields in `unknown` (those the
    /// POS never gives back: its `unreadable_fields`), an empty value means "the POS did not
    /// say", not "none": the mirror keeps what it has, so a licence only we know survives
    /// every read of a vendor that never returns it. Answers the customers as now stored, in
    /// the order given (with what was kept filled in), for answers to show them whole.
    async fn upsert(
        &self,
        store: StoreId,
        customers: &[Customer],
        unknown: &[OptionalField],
    ) -> Result<Vec<Customer>, RepositoryError>;

    /// The same copy of a POS's read answer, made after the answer instead of before it:
    /// queued (bounded), written in batches, and dropped (counted) when the queue is full, for
    /// the next read or sync to make. Only for answers that need nothing from the mirror (the
    /// POS gives every field back, `unknown` is empty); creates and updates use
    /// [`CustomerMirror::upsert`], whose write is never dropped. A copy made behind never
    /// overwrites a newer one, nor brings back a customer marked deleted after it was read.
    fn upsert_behind(&self, store: StoreId, customers: Vec<Customer>);

    async fn find(
        &self,
        store: StoreId,
        query: &CustomerQuery,
    ) -> Result<CustomerPage, RepositoryError>;

    async fn get(
        &self,
        store: StoreId,
        id: &CustomerId,
    ) -> Result<Option<Customer>, RepositoryError>;

    async fn find_duplicate(
        &self,
        store: StoreId,
        keys: &DuplicateKeys,
    ) -> Result<Option<Customer>, RepositoryError>;

    /// Up to `limit` customers of the store, after `after`, that no write has touched since
    /// `since` (the start of a full sync pass) and that are not tombstoned: what the pass did
    /// not see. Every write of a customer (an upsert from a POS answer, a `local` write)
    /// counts as seeing it. Tombstoned customers are served by none of the other methods.
    async fn unseen(
        &self,
        store: StoreId,
        since: DateTime<Utc>,
        after: Option<PageToken>,
        limit: u32,
    ) -> Result<Unseen, RepositoryError>;

    /// Tombstones those of `ids` still unseen since `unseen_since` (one seen in the meantime,
    /// by a kiosk's read say, stays); how many it marked. A later upsert of one revives it.
    async fn tombstone(
        &self,
        store: StoreId,
        ids: &[CustomerId],
        unseen_since: DateTime<Utc>,
    ) -> Result<usize, RepositoryError>;

    /// Whether the mirror knew this customer and tombstoned it (the POS no longer has them).
    async fn is_tombstoned(&self, store: StoreId, id: &CustomerId)
    -> Result<bool, RepositoryError>;
}

/// A batch of [`CustomerMirror::unseen`]: the POS ids, and where the next batch starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unseen {
    pub ids: Vec<CustomerId>,
    pub next: Option<PageToken>,
}

/// An entry of the [`PendingCreates`] journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PendingCreateId(pub i64);

impl std::fmt::Display for PendingCreateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A vendor create that was journaled before it was sent and has not been accounted for: the
/// process may have died between the vendor's create and the mirror write.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingCreate {
    pub id: PendingCreateId,
    pub store: StoreId,
    /// The customer that was sent; `Err` when the stored copy no longer reads back.
    pub customer: Result<NewCustomer, RepositoryError>,
    pub recorded_at: DateTime<Utc>,
    /// How many times recovery has looked and the vendor definitively did not have it.
    pub attempts: u32,
}

/// The outbox of vendor creates: an entry is recorded before the vendor call and settled once
/// the outcome is known to the mirror (or the vendor said no), so a create a crash cut short
/// is left here for `CustomerService::recover_pending`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PendingCreates: Send + Sync {
    /// Journals a create about to be sent to `store`'s vendor.
    async fn record(
        &self,
        store: StoreId,
        customer: &NewCustomer,
    ) -> Result<PendingCreateId, RepositoryError>;

    /// The create is accounted for: forgets it. Settling an entry already gone is not an error.
    async fn settle(&self, id: PendingCreateId) -> Result<(), RepositoryError>;

    /// [`PendingCreates::settle`] after the answer instead of before it: queued, and written
    /// with whatever else is queued then. For a create whose customer is in the mirror already,
    /// so an entry the process dies before forgetting costs recovery one look in the mirror.
    /// Never dropped: a failure leaves the entry to recovery.
    fn settle_behind(&self, id: PendingCreateId);

    /// Claims up to `limit` entries recorded more than `older_than` ago, not looked at in the
    /// last `older_than` either, and claimed by nobody (or by a claim that ran out), for
    /// `lease`; oldest first. The claim is one atomic step: two instances sharing the database
    /// never get the same entry while its claim holds, and the claim of an instance that died
    /// runs out. Noting an attempt or postponing an entry gives its claim up.
    async fn claim_orphans(
        &self,
        older_than: Duration,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PendingCreate>, RepositoryError>;

    /// Counts one more definitive "the vendor does not have it" and marks the entry looked at
    /// now. Counted once however many instances looked: only when `attempts` is still what
    /// `entry` says.
    async fn note_attempt(&self, entry: &PendingCreate) -> Result<(), RepositoryError>;

    /// Marks the entry looked at now without counting an attempt (the vendor could not be
    /// asked), so the next passes look at the others first.
    async fn postpone(&self, id: PendingCreateId) -> Result<(), RepositoryError>;
}

/// An `Idempotency-Key` with what it is for: `scope` (catalog and operation) and a
/// fingerprint of the request it came with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
    pub fingerprint: String,
}

/// Who holds a claim on an `Idempotency-Key`: only the holder may renew, complete or release
/// it, so a request whose claim was taken over (it stalled past the abandon time) cannot
/// overwrite the outcome of the one that took it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimToken(pub String);

/// The answer to "may I process this request?".
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// Yes: nobody has used this key (or its record expired, or its holder stopped renewing
    /// it). Renew it while working; complete or release it with the token.
    Acquired(ClaimToken),
    /// No: it was processed; here is the saved outcome.
    Completed(SavedOutcome),
    /// No: the key came with a different request.
    Mismatch,
    /// No: another request with this key is being processed right now.
    InProgress,
}

/// A request's outcome as saved for replay: JSON text, written straight from the typed
/// outcome and read straight back into it (no `serde_json::Value` in between: every create with
/// a key saves one, and few are ever replayed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedOutcome(String);

impl SavedOutcome {
    pub fn of<T: Serialize>(outcome: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(outcome).map(Self)
    }

    /// Text a store kept; whether it reads as the outcome is found out on replay.
    pub fn from_json(text: String) -> Self {
        Self(text)
    }

    pub fn as_json(&self) -> &str {
        &self.0
    }

    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

/// Idempotency records, kept 24 hours.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Atomically claims the key (only one concurrent caller gets `Acquired`).
    async fn claim(&self, key: &IdempotencyKey) -> Result<Claim, RepositoryError>;

    /// Waits, up to `timeout`, for a request in progress with this key to finish; answers the
    /// claim as it stands then.
    async fn wait(&self, key: &IdempotencyKey, timeout: Duration)
    -> Result<Claim, RepositoryError>;

    /// How often a holder renews its claim: well within the time after which an unrenewed
    /// claim is presumed abandoned and may be taken over.
    fn renew_every(&self) -> Duration;

    /// Keeps the claim alive while its holder works (a long bulk against a slow vendor);
    /// `false` when it is no longer this holder's.
    async fn renew(
        &self,
        key: &IdempotencyKey,
        token: &ClaimToken,
    ) -> Result<bool, RepositoryError>;

    /// Saves the outcome, if the claim is still this holder's (`false` otherwise: nothing is
    /// written).
    async fn complete(
        &self,
        key: &IdempotencyKey,
        token: &ClaimToken,
        outcome: &SavedOutcome,
    ) -> Result<bool, RepositoryError>;

    /// Gives the key up after a failure, so that a retry may try again; only the holder's
    /// claim, and never a saved outcome.
    async fn release(
        &self,
        key: &IdempotencyKey,
        token: &ClaimToken,
    ) -> Result<(), RepositoryError>;

    /// Deletes up to `limit` records past their 24 hours; answers how many went. Run on a
    /// schedule, in bounded batches, so that the table does not grow for ever and no request's
    /// data is kept past its promised life.
    async fn purge_expired(&self, limit: u32) -> Result<u64, RepositoryError>;
}

/// Serialises creates per store and duplicate key, so that the duplicate check and the create
/// that follows it are one step: two requests for the same new customer (in one bulk, from two
/// kiosks, or on two replicas sharing the database) make one customer and one 409. Locks are
/// leases: a holder that dies stops blocking others when its lease runs out.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CreateLocks: Send + Sync {
    /// Takes the locks of every key in `keys` (all or none), waiting up to `wait` for other
    /// holders; held for at most `lease`. `None`: another holder kept them past `wait`.
    async fn acquire(
        &self,
        store: StoreId,
        keys: &DuplicateKeys,
        lease: Duration,
        wait: Duration,
    ) -> Result<Option<CreateLease>, RepositoryError>;

    /// Gives the locks up (those still this lease's).
    async fn release(&self, lease: &CreateLease) -> Result<(), RepositoryError>;

    /// [`CreateLocks::release`] after the answer instead of before it: queued, and written with
    /// whatever else is queued then. Never dropped: a failure (or the process dying first)
    /// leaves the locks to run out with their lease.
    fn release_behind(&self, lease: CreateLease);
}

/// Locks held by one create (see [`CreateLocks`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateLease {
    pub store: StoreId,
    pub owner: String,
    /// What was locked, as the lock store names it.
    pub keys: Vec<String>,
}
