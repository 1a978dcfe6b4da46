//! The heart of pos-gateway: the customer entity, value types that can only hold valid values,
//! the validation messages of the contract, the ports the outside world implements (the POS,
//! the mirror, the store registry, the idempotency store, the outbox of pending vendor creates)
//! and the use cases that combine them.
//!
//! This crate does no I/O and must not depend on actix, diesel, reqwest or any other crate of
//! the workspace: every other crate depends on it, never the reverse.

pub mod customer;
pub mod error;
pub mod ports;
pub mod query;
pub mod service;
pub mod sweep;
pub mod validation;

pub use customer::{
    Customer, CustomerForm, CustomerId, CustomerPatch, CustomerStatus, Email, Gender, Input,
    NewCustomer, PersonName, Phone, TextKind, plain_text,
};
pub use error::{CustomerError, PosError, RepositoryError, VendorResponse};
pub use ports::{
    Capabilities, CatalogId, Claim, ClaimToken, CreateKey, CreateLease, CreateLocks,
    CustomerDirectory, CustomerMirror, DuplicateKeys, IdempotencyKey, IdempotencyStore, Operation,
    OptionalField, PendingCreate, PendingCreateId, PendingCreates, PosConnections, SavedOutcome,
    SearchFilter, Store, StoreId, StoreRegistry, Unseen, Vendor,
};
pub use query::{CustomerPage, CustomerQuery, PageToken};
pub use service::{
    BulkItem, CreateOutcome, CustomerService, DataSource, Listing, RecoveryReport, ServiceSettings,
    SyncPage,
};
pub use sweep::SweepStep;
pub use validation::{FieldError, ValidationErrors};
