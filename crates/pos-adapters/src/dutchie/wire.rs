//! Dutchie's names and formats, ours <-> theirs, all here so a wrong guess is corrected in one
//! place. What is a guess (a "gap" or "weak" in vendors.md) is marked *unverified* below and in
//! docs/vendors/dutchie.md.

use chrono::NaiveDate;
use domain::{Customer, CustomerPatch, FieldError, Gender, NewCustomer, Phone, ValidationErrors};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::convert::{Incoming, display_phone, present};

/// A customer as Dutchie sends it (`customers-paginated`, `customerLookup`, and the answer to
/// `POST /customer/customer`). Every field is loose (`Value`), so one odd value (a number where
/// a string was expected) drops that value, not the customer. The licence never comes back:
/// Dutchie returns only `driversLicenseHash`, which is deliberately not read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireCustomer {
    #[serde(default)]
    customer_id: Value,
    #[serde(default)]
    first_name: Value,
    #[serde(default)]
    last_name: Value,
    #[serde(default)]
    phone: Value,
    #[serde(default)]
    cell_phone: Value,
    #[serde(default)]
    email_address: Value,
    #[serde(default)]
    status: Value,
    #[serde(default)]
    gender: Value,
    #[serde(default)]
    date_of_birth: Value,
    #[serde(default)]
    notes: Value,
}

impl WireCustomer {
    /// `customerId` as our id: Dutchie's is an integer; a string of digits is taken too.
    pub(super) fn id(&self) -> Option<String> {
        match &self.customer_id {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            Value::String(s) => present(Some(s)).map(str::to_owned),
            _ => None,
        }
    }

    /// The phone we show: `phone`, else `cellPhone` (Dutchie has both; registers fill either).
    fn phone_text(&self) -> Option<&str> {
        [&self.phone, &self.cell_phone]
            .into_iter()
            .filter_map(|v| present(v.as_str()))
            .find(|p| display_phone(p).is_some())
    }

    /// Whether `phone` or `cellPhone` has these digits, as Dutchie's lookup compares them.
    pub(super) fn has_phone_digits(&self, digits: &str) -> bool {
        [&self.phone, &self.cell_phone]
            .into_iter()
            .filter_map(Value::as_str)
            .any(|p| Phone::digits_of(p).as_deref() == Some(digits))
    }

    /// Whether the names are these, case-insensitively (what the lookup matched on).
    pub(super) fn has_names(&self, first: Option<&str>, last: Option<&str>) -> bool {
        let same = |value: &Value, wanted: Option<&str>| {
            wanted.is_none_or(|w| {
                present(value.as_str()).is_some_and(|v| v.to_lowercase() == w.to_lowercase())
            })
        };
        same(&self.first_name, first) && same(&self.last_name, last)
    }

    /// Our customer, or why the record can't be one (no id, no name). `drivers_license` is
    /// always `None`: Dutchie never returns it.
    pub(super) fn to_customer(&self) -> Result<Customer, String> {
        Incoming {
            customer_id: self.id(),
            status: self.status.as_str(),
            first_name: self.first_name.as_str(),
            last_name: self.last_name.as_str(),
            gender: self.gender.as_str().and_then(gender_from_wire),
            birthday: self.date_of_birth.as_str(),
            email: self.email_address.as_str(),
            phone: self.phone_text(),
            drivers_license: None,
            notes: self.notes.as_str(),
        }
        .into_customer()
    }
}

/// Unverified: Dutchie's gender values are a gap. Read: `M`/`Male`, `F`/`Female`, `O`/`Other`,
/// in any case; anything else is no gender rather than a lost customer.
fn gender_from_wire(text: &str) -> Option<Gender> {
    Gender::parse(text).ok()
}

/// Unverified: we send the one-letter codes `M`, `F`, `O`.
fn gender_to_wire(gender: Gender) -> &'static str {
    match gender {
        Gender::Male => "M",
        Gender::Female => "F",
        Gender::Other => "O",
    }
}

/// `dateOfBirth` as Dutchie writes it back (`1990-01-02T00:00:00`): midnight, no offset.
fn date_to_wire(date: NaiveDate) -> String {
    format!("{}T00:00:00", date.format("%Y-%m-%d"))
}

/// The body of `POST /customer/customer`: without `customerId` a create, with it a sparse
/// update (absent fields unchanged). Strings only, since the update clears with `""`.
#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireWrite {
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_of_birth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_address: Option<String>,
    /// Digits only: the register shows its own format.
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    /// Write-only at Dutchie: read back as `driversLicenseHash`.
    #[serde(rename = "driversLicenseID", skip_serializing_if = "Option::is_none")]
    drivers_license_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
    /// Required on create (spec): the store's own address, kiosks rarely ask for one.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    address: Option<Address>,
    /// Required on create (spec): `Active`.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    /// Required on create (spec): the store's, or Dutchie's first retail type.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_type: Option<String>,
    /// With the `ConsumerKey` header, "prevents duplicate customer creation" (spec).
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
}

/// The address Dutchie requires on create (spec), from the store config's `default_address`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(deserialize_with = "crate::config::plain_text")]
    pub address1: String,
    #[serde(deserialize_with = "crate::config::plain_text")]
    pub city: String,
    #[serde(deserialize_with = "crate::config::plain_text")]
    pub state: String,
    #[serde(deserialize_with = "crate::config::plain_text")]
    pub postal_code: String,
}

/// A customer type (`GET /customer/customer-types`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CustomerType {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub is_retail: Option<bool>,
}

/// Unverified: the sparse update treats an absent field as unchanged, so clearing one is
/// sending it as an empty string.
const CLEAR: &str = "";

/// How a create is sent: what Dutchie requires besides the customer.
pub(super) struct CreateContext<'a> {
    pub address: &'a Address,
    pub customer_type: &'a str,
    pub idempotency_key: String,
}

impl WireWrite {
    pub(super) fn create(customer: &NewCustomer, context: CreateContext<'_>) -> Self {
        Self {
            address: Some(context.address.clone()),
            status: Some("Active"),
            customer_type: Some(context.customer_type.to_owned()),
            idempotency_key: Some(context.idempotency_key),
            ..Self::fields(customer)
        }
    }

    /// The customer's own fields, as a create sends them.
    fn fields(customer: &NewCustomer) -> Self {
        Self {
            customer_id: None,
            first_name: Some(customer.first_name.as_str().to_owned()),
            last_name: Some(customer.last_name.as_str().to_owned()),
            gender: customer.gender.map(|g| gender_to_wire(g).to_owned()),
            date_of_birth: customer.birthday.map(date_to_wire),
            email_address: customer.email.as_ref().map(|e| e.as_str().to_owned()),
            phone: customer.phone.as_ref().map(|p| p.digits().to_owned()),
            drivers_license_id: customer.drivers_license.clone(),
            notes: customer.notes.clone(),
            ..Self::default()
        }
    }

    pub(super) fn update(customer_id: i64, patch: &CustomerPatch) -> Self {
        fn field<T>(value: &Option<Option<T>>, to_wire: impl Fn(&T) -> String) -> Option<String> {
            value
                .as_ref()
                .map(|v| v.as_ref().map_or_else(|| CLEAR.to_owned(), to_wire))
        }
        Self {
            customer_id: Some(customer_id),
            first_name: patch.first_name.as_ref().map(|n| n.as_str().to_owned()),
            last_name: patch.last_name.as_ref().map(|n| n.as_str().to_owned()),
            gender: field(&patch.gender, |g| gender_to_wire(*g).to_owned()),
            date_of_birth: field(&patch.birthday, |d| date_to_wire(*d)),
            email_address: field(&patch.email, |e| e.as_str().to_owned()),
            phone: field(&patch.phone, |p| p.digits().to_owned()),
            drivers_license_id: field(&patch.drivers_license, String::clone),
            notes: field(&patch.notes, String::clone),
            ..Self::default()
        }
    }
}

/// The body of `POST /customer/customerLookup`: the fields given are combined with AND.
#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireLookup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

/// What `GET /whoami` says about the location a key opens.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Location {
    /// The store's name at Dutchie.
    #[serde(default)]
    pub location_name: Option<String>,
    /// Dutchie's id of the location the key opens.
    #[serde(default)]
    pub location_id: Option<i64>,
    /// The company (tenant) the location belongs to.
    #[serde(default)]
    pub company_name: Option<String>,
    /// Dutchie's id of that company.
    #[serde(default)]
    pub company_id: Option<i64>,
}

/// Our field for one of Dutchie's property names (`FirstName`, `customer.EmailAddress`...):
/// the last segment, any case; `None` for theirs alone (`Address1`, `CustomerType`).
fn field_from_wire(key: &str) -> Option<&'static str> {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    Some(match last.as_str() {
        "firstname" => "first_name",
        "lastname" => "last_name",
        "dateofbirth" => "birthday",
        "emailaddress" | "email" => "email",
        "phone" | "cellphone" => "phone",
        "gender" => "gender",
        "notes" => "notes",
        "driverslicenseid" | "driverslicense" => "drivers_license",
        _ => return None,
    })
}

/// Our message for one of Dutchie's: the contract's wording, never the vendor's text (which
/// may quote the customer's value back).
fn message_from_wire(field: &str, text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if lower.contains("required") {
        return FieldError::Blank.to_string();
    }
    if let Some(max) = lower
        .split("maximum length of")
        .nth(1)
        .and_then(|rest| {
            rest.trim_start()
                .split(|c: char| !c.is_ascii_digit())
                .next()
        })
        .and_then(|digits| digits.parse::<usize>().ok())
    {
        return FieldError::TooLong(max).to_string();
    }
    match field {
        "birthday" => FieldError::InvalidDate,
        "gender" => FieldError::NotInList,
        _ => FieldError::Invalid,
    }
    .to_string()
}

/// The field errors of Dutchie's 400 (`{"message", "propertyErrors": [{"propertyName",
/// "propertyError"}]}`, spec) on our field names; empty when none names a field of ours (the
/// address or customer type Dutchie requires are the store's config, not the kiosk's input).
pub(super) fn field_errors(body: &Value) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    let Some(items) = body
        .as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("propertyErrors"))
                .map(|(_, v)| v)
        })
        .and_then(Value::as_array)
    else {
        return errors;
    };
    for item in items {
        let text = |key: &str| {
            item.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .and_then(|(_, v)| v.as_str())
            })
        };
        let Some(field) = text("propertyName").and_then(field_from_wire) else {
            continue;
        };
        errors.add_message(
            field,
            message_from_wire(field, text("propertyError").unwrap_or_default()),
        );
    }
    errors
}

/// Whether `answered` is not the customer `sent` made: a create Dutchie de-duplicated into a
/// customer it already had answers that one, whose fields differ from ours somewhere Dutchie
/// gives back (its replay of our own earlier create, after a lost answer, does not). A field
/// we did not send that the answer has counts too: a fresh create holds nothing we didn't send.
pub(super) fn is_someone_else(answered: &Customer, sent: &NewCustomer) -> bool {
    let same_text = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
    let differs = |ours: Option<String>, theirs: Option<String>| match (ours, theirs) {
        (Some(ours), Some(theirs)) => !same_text(&ours, &theirs),
        (None, None) => false,
        _ => true,
    };
    !same_text(answered.first_name.as_str(), sent.first_name.as_str())
        || !same_text(answered.last_name.as_str(), sent.last_name.as_str())
        || differs(
            sent.email.as_ref().map(|e| e.as_str().to_owned()),
            answered.email.as_ref().map(|e| e.as_str().to_owned()),
        )
        || differs(
            sent.phone.as_ref().map(|p| p.digits().to_owned()),
            answered.phone.as_ref().map(|p| p.digits().to_owned()),
        )
        || sent.birthday != answered.birthday
        || sent.gender != answered.gender
        || differs(sent.notes.clone(), answered.notes.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(value: Value) -> WireCustomer {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_dutchie_record_reads_with_phone_fallback_and_no_licence() {
        let c = wire(json!({
            "customerId": 1001, "firstName": "Jane", "lastName": "Roe", "phone": "",
            "cellPhone": "5551234567", "emailAddress": "Jane@Example.com", "status": "Active",
            "gender": "Female", "dateOfBirth": "1990-01-02T00:00:00", "notes": null,
            "driversLicenseHash": "ab12", "customerType": "Recreational",
        }))
        .to_customer()
        .unwrap();
        assert_eq!(c.customer_id.as_str(), "1001");
        assert_eq!(c.status.as_str(), "ACTIVE");
        assert_eq!(c.phone.unwrap().as_str(), "555-123-4567");
        assert_eq!(c.gender, Some(Gender::Female));
        assert_eq!(c.birthday, NaiveDate::from_ymd_opt(1990, 1, 2));
        assert_eq!(c.drivers_license, None);
        let odd = wire(json!({"customerId": "7", "firstName": "A", "lastName": "B", "gender": 3}));
        assert_eq!(odd.to_customer().unwrap().gender, None);
        assert!(
            wire(json!({"firstName": "A", "lastName": "B"}))
                .to_customer()
                .is_err()
        );
    }

    #[test]
    fn a_patch_clears_with_empty_strings_and_leaves_absent_fields_out() {
        let patch = CustomerPatch {
            email: Some(None),
            birthday: Some(NaiveDate::from_ymd_opt(1990, 1, 2)),
            gender: Some(Some(Gender::Other)),
            phone: Some(Some(Phone::parse("(555) 123-4567").unwrap())),
            ..Default::default()
        };
        let body = serde_json::to_value(WireWrite::update(12, &patch)).unwrap();
        assert_eq!(
            body,
            json!({"customerId": 12, "emailAddress": "", "dateOfBirth": "1990-01-02T00:00:00",
                   "gender": "O", "phone": "5551234567"})
        );
    }

    #[test]
    fn property_errors_map_to_our_fields_and_messages() {
        let errors = field_errors(&json!({
            "message": "One or more validation errors occurred.",
            "propertyErrors": [
                {"propertyName": "FirstName", "propertyError": "FirstName is required."},
                {"propertyName": "DateOfBirth", "propertyError": "The value 'x' is not valid."},
                {"propertyName": "EmailAddress", "propertyError": "Not a valid e-mail address."},
                {"propertyName": "LastName", "propertyError": "LastName has a maximum length of 50."},
                {"propertyName": "Address1", "propertyError": "Address1 is required."},
            ]
        }));
        let json = serde_json::to_value(&errors).unwrap();
        assert_eq!(
            json,
            json!({
                "first_name": ["can't be blank"],
                "birthday": ["is not a valid date"],
                "email": ["is invalid"],
                "last_name": ["is too long (maximum is 50 characters)"],
            })
        );
        assert!(field_errors(&json!({"message": "x", "propertyErrors": null})).is_empty());
        assert!(
            field_errors(
                &json!({"propertyErrors": [{"propertyName": "CustomerType", "propertyError": "?"}]})
            )
            .is_empty()
        );
    }
}
