//! Dutchie POS (formerly LeafLogix). Placeholder until the adapter lands: refuses to connect.

use async_trait::async_trait;
use domain::{
    Capabilities, Customer, CustomerDirectory, CustomerId, CustomerPage, CustomerPatch,
    CustomerQuery, NewCustomer, Operation, PosError, Vendor,
};

use crate::{AdapterError, Settings};

pub struct Dutchie;

impl Dutchie {
    pub fn connect(
        _config: &serde_json::Value,
        _settings: &Settings,
    ) -> Result<Self, AdapterError> {
        Err(AdapterError::NotBuilt(Vendor::Dutchie))
    }
}

#[async_trait]
impl CustomerDirectory for Dutchie {
    fn vendor(&self) -> Vendor {
        Vendor::Dutchie
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    fn is_mirror(&self) -> bool {
        false
    }
    async fn find(&self, _query: &CustomerQuery) -> Result<CustomerPage, PosError> {
        Err(PosError::Unsupported(Operation::SearchCustomers))
    }
    async fn get(&self, _id: &CustomerId) -> Result<Option<Customer>, PosError> {
        Err(PosError::Unsupported(Operation::GetCustomer))
    }
    async fn create(&self, _customer: &NewCustomer) -> Result<Customer, PosError> {
        Err(PosError::Unsupported(Operation::CreateCustomer))
    }
    async fn update(&self, _id: &CustomerId, _patch: &CustomerPatch) -> Result<Customer, PosError> {
        Err(PosError::Unsupported(Operation::UpdateCustomer))
    }
}
