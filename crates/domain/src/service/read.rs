//! Reads: capabilities, list and search, get by id. Live at a vendor's POS (its answers copied
//! into the mirror), the mirror when the POS cannot be reached or cannot do what was asked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{CustomerService, DataSource, Listing, Opened, Pos};
use crate::customer::{Customer, CustomerId};
use crate::error::{CustomerError, PosError};
use crate::ports::{Capabilities, CatalogId, Operation, Vendor};
use crate::query::{CustomerQuery, PageToken};
use crate::validation::{FieldError, ValidationErrors};

/// The cursor a client sees: which source made it, and that source's own token.
pub(super) enum Cursor {
    Pos(PageToken),
    Mirror(PageToken),
}

impl Cursor {
    pub(super) fn encode(source: DataSource, token: PageToken) -> String {
        let tag = match source {
            DataSource::Pos => 'p',
            DataSource::Mirror => 'm',
        };
        URL_SAFE_NO_PAD.encode(format!("{tag}:{}", token.0))
    }

    pub(super) fn decode(text: &str) -> Result<Self, CustomerError> {
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
        let Opened { store, pos } = self.open(catalog).await?;
        let directory = match pos {
            // The local POS's storage is the mirror: one source, one kind of cursor.
            Pos::Local(directory) => {
                query.page = match cursor {
                    Some(Cursor::Pos(token) | Cursor::Mirror(token)) => Some(token),
                    None => None,
                };
                let page = directory.find(&query).await?;
                return Ok(Listing {
                    customers: page.customers,
                    next_cursor: page.next.map(|t| Cursor::encode(DataSource::Pos, t)),
                    source: DataSource::Pos,
                });
            }
            Pos::Vendor(directory) => directory,
        };
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
                    let unknown = directory.capabilities().unreadable_fields;
                    let customers = self
                        .copy_read_to_mirror(&store, page.customers, unknown)
                        .await;
                    return Ok(Listing {
                        customers,
                        next_cursor: page.next.map(|t| Cursor::encode(DataSource::Pos, t)),
                        source: DataSource::Pos,
                    });
                }
                Err(e) if e.is_unreachable() => {
                    tracing::warn!(store = %store.id, error = %e, "POS unreachable; answering from the mirror");
                    // A POS cursor means nothing to the mirror: start from its first page.
                    query.page = None;
                }
                // The POS searches, but not by these filters (Dutchie has no licence search,
                // Treez no name search): the mirror can.
                Err(PosError::Unsupported(_)) => {
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
        let Opened { store, pos } = self.open(catalog).await?;
        let directory = match pos {
            Pos::Local(directory) => {
                return match directory.get(id).await? {
                    Some(customer) => Ok((customer, DataSource::Pos)),
                    None => Err(CustomerError::CustomerNotFound),
                };
            }
            Pos::Vendor(directory) => directory,
        };
        if directory.capabilities().get_customer {
            match directory.get(id).await {
                Ok(Some(customer)) => {
                    let unknown = directory.capabilities().unreadable_fields;
                    let mut stored = self
                        .copy_read_to_mirror(&store, vec![customer], unknown)
                        .await;
                    return match stored.pop() {
                        Some(customer) => Ok((customer, DataSource::Pos)),
                        None => Err(CustomerError::CustomerNotFound),
                    };
                }
                Ok(None) => {
                    // Gone at the POS: the mirror stops serving it too (as a sync would).
                    if let Err(e) = self
                        .mirror
                        .tombstone(store.id, std::slice::from_ref(id), chrono::Utc::now())
                        .await
                    {
                        tracing::warn!(store = %store.id, error = %e, "could not mark a customer the POS no longer has");
                    }
                    return Err(CustomerError::CustomerNotFound);
                }
                Err(e) if e.is_unreachable() => {
                    // Not in the mirror either: say the POS is down, not that there is no such
                    // customer, which we do not know; unless the mirror knows it was deleted.
                    return match self.mirror.get(store.id, id).await? {
                        Some(customer) => Ok((customer, DataSource::Mirror)),
                        None if self.mirror.is_tombstoned(store.id, id).await? => {
                            Err(CustomerError::CustomerNotFound)
                        }
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
}
