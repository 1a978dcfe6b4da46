//! The step of `pos-gateway sync`: one page of a vendor's customers copied into the mirror.

use super::fields::ensure;
use super::{CustomerService, Opened, Pos, SyncPage};
use crate::error::CustomerError;
use crate::ports::{CatalogId, Operation};
use crate::query::{CustomerQuery, PageToken};

impl CustomerService {
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
        let Opened { store, pos } = self.open(catalog).await?;
        let directory = match pos {
            Pos::Local(_) => {
                return Ok(SyncPage {
                    copied: 0,
                    next: None,
                });
            }
            Pos::Vendor(directory) => directory,
        };
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
}
