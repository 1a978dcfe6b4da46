//! Updates: a patch applied at the POS, the mirror written with what the POS answers.

use super::fields::{clears, ensure, names, reject_blank};
use super::{CustomerService, Opened, Pos};
use crate::customer::{Customer, CustomerId, CustomerPatch};
use crate::error::CustomerError;
use crate::ports::{CatalogId, CustomerDirectory, Operation, OptionalField, Store};

impl CustomerService {
    pub async fn update(
        &self,
        catalog: &CatalogId,
        id: &CustomerId,
        patch: &CustomerPatch,
    ) -> Result<Customer, CustomerError> {
        let Opened { store, pos } = self.open(catalog).await?;
        let capabilities = pos.directory().capabilities();
        ensure(capabilities, Operation::UpdateCustomer)?;
        let cleared = capabilities
            .required_fields
            .iter()
            .filter(|field| clears(patch, **field));
        reject_blank(cleared)?;
        let directory = match pos {
            // The local POS writes its own storage, which is the mirror.
            Pos::Local(directory) => return Ok(directory.update(id, patch).await?),
            Pos::Vendor(directory) => directory,
        };
        let patch = &self
            .with_kept_fields(&store, directory.as_ref(), id, patch)
            .await;
        let updated = directory.update(id, patch).await?;
        // What the patch named, the POS's answer says; the rest it may not know.
        let unknown: Vec<OptionalField> = capabilities
            .unreadable_fields
            .iter()
            .copied()
            .filter(|field| !names(patch, *field))
            .collect();
        let mut stored = self.copy_to_mirror(&store, vec![updated], &unknown).await;
        stored.pop().ok_or(CustomerError::CustomerNotFound)
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
        if unreadable.iter().all(|f| names(&patch, *f)) {
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
}
