//! What the use cases ask of a customer's optional fields, and the 422s they answer.

use crate::customer::{Customer, CustomerPatch, NewCustomer};
use crate::error::CustomerError;
use crate::ports::{Capabilities, Operation, OptionalField};
use crate::validation::{FieldError, ValidationErrors};

pub(super) fn has(customer: &NewCustomer, field: OptionalField) -> bool {
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
pub(super) fn with_unreadable(
    mut found: Customer,
    sent: &NewCustomer,
    caps: Capabilities,
) -> Customer {
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
pub(super) fn names(patch: &CustomerPatch, field: OptionalField) -> bool {
    match field {
        OptionalField::Gender => patch.gender.is_some(),
        OptionalField::Birthday => patch.birthday.is_some(),
        OptionalField::Email => patch.email.is_some(),
        OptionalField::Phone => patch.phone.is_some(),
        OptionalField::DriversLicense => patch.drivers_license.is_some(),
        OptionalField::Notes => patch.notes.is_some(),
    }
}

pub(super) fn clears(patch: &CustomerPatch, field: OptionalField) -> bool {
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
pub(super) fn reject_blank<'a>(
    fields: impl Iterator<Item = &'a OptionalField>,
) -> Result<(), CustomerError> {
    let mut errors = ValidationErrors::new();
    for field in fields {
        errors.add(field.as_str(), FieldError::Blank);
    }
    errors.into_result(|| ()).map_err(CustomerError::Invalid)
}

pub(super) fn ensure(
    capabilities: Capabilities,
    operation: Operation,
) -> Result<(), CustomerError> {
    if capabilities.supports(operation) {
        Ok(())
    } else {
        Err(CustomerError::Unsupported(operation))
    }
}
