//! Looking for an existing customer by its duplicate keys: in the mirror, then at the POS.

use super::{CustomerService, Pos};
use crate::customer::{Customer, NewCustomer};
use crate::error::{CustomerError, PosError};
use crate::ports::{CustomerDirectory, Store};
use crate::query::CustomerQuery;

/// What a look for a customer at the POS found.
pub(super) enum PosLookup {
    Found(Box<Customer>),
    /// Searched by at least one key: not there.
    Absent,
    /// The POS cannot search by any key this customer has.
    Unsearchable,
}

impl CustomerService {
    /// The mirror first (cheap, and it has every customer we ever saw), then the POS, one
    /// search per key, since POS searches combine filters with AND.
    pub(super) async fn find_duplicate(
        &self,
        store: &Store,
        pos: &Pos,
        customer: &NewCustomer,
    ) -> Result<Option<Customer>, CustomerError> {
        let keys = customer.duplicate_keys();
        if keys.is_empty() {
            return Ok(None);
        }
        if let Some(found) = self.mirror.find_duplicate(store.id, &keys).await? {
            return Ok(Some(found));
        }
        let directory = match pos {
            // The mirror was the local POS's own storage: there is nowhere else to look.
            Pos::Local(_) => return Ok(None),
            Pos::Vendor(directory) => directory.as_ref(),
        };
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
    pub(super) async fn look_up_at_pos(
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
}
