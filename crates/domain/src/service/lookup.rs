//! Looking for an existing customer by its duplicate keys: in the mirror, then at the POS.

use super::{CustomerService, Pos};
use crate::customer::{Customer, NewCustomer};
use crate::error::{CustomerError, PosError, RepositoryError};
use crate::ports::{Capabilities, CustomerDirectory, DuplicateKeys, OptionalField, Store};
use crate::query::CustomerQuery;

/// What a look for a customer at the POS found.
pub(super) enum PosLookup {
    Found(Box<Customer>),
    /// Already in the mirror (only [`CustomerService::find_same`] answers it).
    Mirrored(Box<Customer>),
    /// Searched by at least one key: not there.
    Absent,
    /// The POS cannot search by any key this customer has.
    Unsearchable,
}

/// How a look-up decides that a customer it finds is the one it looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Match {
    /// Shares any one duplicate key: the contract's duplicate.
    AnyKey,
    /// Is the customer that was sent: see [`same_identity`].
    Identity,
}

/// Customers sharing one key looked at when looking for one of them by identity.
const IDENTITY_CANDIDATES: u32 = 25;

/// Whether `found` is the customer `sent` became, not another sharing one of its keys (a
/// household's phone, a family e-mail): the same names (ignoring case), and every key `sent`
/// has is `found`'s too, except for a field the POS never gives back, which `found` may lack.
pub(super) fn same_identity(
    sent: &NewCustomer,
    found: &Customer,
    capabilities: Capabilities,
) -> bool {
    let same_name = |a: &str, b: &str| a.trim().to_lowercase() == b.trim().to_lowercase();
    if !same_name(sent.first_name.as_str(), found.first_name.as_str())
        || !same_name(sent.last_name.as_str(), found.last_name.as_str())
    {
        return false;
    }
    let (ours, theirs) = (sent.duplicate_keys(), found.duplicate_keys());
    let agrees =
        |ours: &Option<String>, theirs: &Option<String>, field: OptionalField| match (ours, theirs)
        {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => !capabilities.reads_back(field),
        };
    agrees(&ours.email, &theirs.email, OptionalField::Email)
        && agrees(
            &ours.phone_digits,
            &theirs.phone_digits,
            OptionalField::Phone,
        )
        && agrees(
            &ours.drivers_license,
            &theirs.drivers_license,
            OptionalField::DriversLicense,
        )
}

impl CustomerService {
    /// The customer `sent` became, if the mirror or the POS has it: looked for by identity
    /// (see [`same_identity`]), never settled on someone else sharing a key. Found at the POS,
    /// it is not written to the mirror here: the caller knows what the kiosk gave.
    pub(super) async fn find_same(
        &self,
        store: &Store,
        directory: &dyn CustomerDirectory,
        sent: &NewCustomer,
    ) -> Result<PosLookup, CustomerError> {
        if let Some(found) = self
            .mirrored_same(store, directory.capabilities(), sent)
            .await?
        {
            return Ok(PosLookup::Mirrored(Box::new(found)));
        }
        Ok(self
            .look_up_at_pos(directory, sent, &sent.duplicate_keys(), Match::Identity)
            .await?)
    }

    /// The customer `sent` became, if the mirror has it (by identity).
    pub(super) async fn mirrored_same(
        &self,
        store: &Store,
        capabilities: Capabilities,
        sent: &NewCustomer,
    ) -> Result<Option<Customer>, RepositoryError> {
        let keys = sent.duplicate_keys();
        // The mirror's search combines its filters with AND: every key at once.
        let query = CustomerQuery {
            email: keys.email.clone(),
            phone_digits: keys.phone_digits.clone(),
            drivers_license: sent.drivers_license.clone(),
            limit: IDENTITY_CANDIDATES,
            ..Default::default()
        };
        let page = self.mirror.find(store.id, &query).await?;
        Ok(page
            .customers
            .into_iter()
            .find(|c| same_identity(sent, c, capabilities)))
    }

    /// The mirror first (cheap, and it has every customer we ever saw), then the POS, one
    /// search per key, since POS searches combine filters with AND.
    /// `keys` are `customer`'s, computed once by the caller.
    pub(super) async fn find_duplicate(
        &self,
        store: &Store,
        pos: &Pos,
        customer: &NewCustomer,
        keys: &DuplicateKeys,
    ) -> Result<Option<Customer>, CustomerError> {
        if keys.is_empty() {
            return Ok(None);
        }
        if let Some(found) = self.mirror.find_duplicate(store.id, keys).await? {
            return Ok(Some(found));
        }
        let directory = match pos {
            // The mirror was the local POS's own storage: there is nowhere else to look.
            Pos::Local(_) => return Ok(None),
            Pos::Vendor(directory) => directory.as_ref(),
        };
        match self
            .look_up_at_pos(directory, customer, keys, Match::AnyKey)
            .await?
        {
            PosLookup::Found(found) | PosLookup::Mirrored(found) => {
                let unknown = directory.capabilities().unreadable_fields;
                let mut stored = self.copy_to_mirror(store, vec![*found], unknown).await;
                Ok(stored.pop())
            }
            PosLookup::Absent | PosLookup::Unsearchable => Ok(None),
        }
    }

    /// Looks for the customer at the POS, one search per key, since POS searches combine
    /// filters with AND.
    /// `Match::AnyKey` finds whoever shares one key (a duplicate); `Match::Identity` only the
    /// customer that was sent (see [`same_identity`]), for a create whose answer was lost.
    /// `keys` are `customer`'s.
    pub(super) async fn look_up_at_pos(
        &self,
        directory: &dyn CustomerDirectory,
        customer: &NewCustomer,
        keys: &DuplicateKeys,
        by: Match,
    ) -> Result<PosLookup, PosError> {
        let capabilities = directory.capabilities();
        if !capabilities.search_customers {
            return Ok(PosLookup::Unsearchable);
        }
        let base = CustomerQuery {
            // Looking for one customer among those sharing a key (a household's phone), a page
            // of them; any one of them will do for a duplicate.
            limit: match by {
                Match::AnyKey => 1,
                Match::Identity => IDENTITY_CANDIDATES,
            },
            ..Default::default()
        };
        let mut queries = Vec::new();
        if let Some(email) = &keys.email {
            queries.push(CustomerQuery {
                email: Some(email.clone()),
                ..base.clone()
            });
        }
        if let Some(phone_digits) = &keys.phone_digits {
            queries.push(CustomerQuery {
                phone_digits: Some(phone_digits.clone()),
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
            let wanted = |c: &Customer| match by {
                Match::AnyKey => query.matches(c),
                Match::Identity => query.matches(c) && same_identity(customer, c, capabilities),
            };
            if let Some(found) = page.customers.into_iter().find(wanted) {
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
