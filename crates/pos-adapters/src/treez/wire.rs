//! Treez's JSON, and every conversion between it and our customer, in one place (see
//! docs/vendors/treez.md for the sources and for what is unverified).

use domain::{
    Customer, CustomerPatch, FieldError, Gender, NewCustomer, PosError, ValidationErrors, Vendor,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::convert::{Incoming, ten_digits};
use crate::http::VendorAnswer;

/// `resultCode`/`resultReason`/`resultDetail`, around every answer but the token's.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Head {
    #[serde(default)]
    pub result_code: Option<String>,
    #[serde(default)]
    pub result_reason: Option<Value>,
    #[serde(default)]
    pub result_detail: Option<Value>,
    /// Where the update's own refusal envelope puts the detail (spec).
    #[serde(default)]
    pub message: Option<Value>,
}

/// An answer's envelope, its `data` read where the answer holds it: customers are built
/// straight from it, with no copy of the answer's JSON in between.
#[derive(Debug)]
pub(super) struct Envelope<'a> {
    head: Head,
    pub data: &'a Value,
}

static NO_DATA: Value = Value::Null;

impl<'a> Envelope<'a> {
    /// The envelope of an answer; a body that is not one is `PosError::BadAnswer`.
    pub fn of(answer: &'a VendorAnswer) -> Result<Self, PosError> {
        Ok(Self::with(answer.json()?, answer.body()))
    }

    /// The envelope of a body, for tests that have no answer around it.
    #[cfg(test)]
    pub fn read(body: &'a Value) -> Result<Self, serde_json::Error> {
        Ok(Self::with(Head::deserialize(body)?, body))
    }

    fn with(head: Head, body: &'a Value) -> Self {
        Self {
            head,
            data: body.get("data").unwrap_or(&NO_DATA),
        }
    }
    pub fn failed(&self) -> bool {
        self.head
            .result_code
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("FAIL"))
    }

    pub fn reason(&self) -> &str {
        self.head
            .result_reason
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn detail(&self) -> &str {
        [&self.head.result_detail, &self.head.message]
            .into_iter()
            .flatten()
            .find_map(Value::as_str)
            .unwrap_or_default()
    }

    /// The key another customer already holds, when Treez refused a write for it (e-mail and
    /// phone are unique at Treez, spec; the reasons are unverified).
    pub fn duplicate_of(&self) -> Option<Unique> {
        let reason = self.reason().to_ascii_uppercase();
        if !(reason.contains("ALREADY_EXIST") || reason.contains("DUPLICATE")) {
            return None;
        }
        if reason.contains("EMAIL") {
            Some(Unique::Email)
        } else if reason.contains("PHONE") {
            Some(Unique::Phone)
        } else {
            None
        }
    }

    /// Whether Treez refused an update because the customer was merged into another (spec:
    /// the error names `MERGED_INTO_CUSTOMER_ID`).
    pub fn merged_away(&self) -> bool {
        self.reason().eq_ignore_ascii_case(MERGED_REASON) || self.detail().contains(MERGED_REASON)
    }

    /// The customers in `data`: one object (look-up by id) or a list (searches, pages).
    pub fn customers(&self) -> Result<Vec<Customer>, String> {
        match self.data {
            Value::Null => Ok(Vec::new()),
            // One unusable record (no id, no name) must not hide the rest of a page.
            Value::Array(items) => Ok(items
                .iter()
                .filter_map(|item| {
                    customer(item)
                        .map_err(|problem| tracing::warn!(vendor = "treez", %problem, "skipped a customer record"))
                        .ok()
                })
                .collect()),
            object @ Value::Object(_) => customer(object).map(|c| vec![c]),
            _ => Err("data is neither a customer nor a list".to_owned()),
        }
    }
}

/// A key Treez keeps unique across its customers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Unique {
    Email,
    Phone,
}

const MERGED_REASON: &str = "MERGED_INTO_CUSTOMER_ID";

/// Unverified: where a merged-away customer's record names the one it was merged into.
const MERGED_INTO_FIELD: &str = "merged_into_customer_id";

/// The id a merged-away customer's record points at, if it was merged away.
pub(super) fn merged_into(record: &Map<String, Value>) -> Option<String> {
    match record.get(MERGED_INTO_FIELD)? {
        Value::String(id) if !id.trim().is_empty() => Some(id.trim().to_owned()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// The answer of `config/api/gettokens`.
#[derive(Debug, Deserialize)]
pub(super) struct TokenAnswer {
    pub access_token: String,
    /// Seconds; Treez documents two hours, which is assumed when it is absent.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// "Not found" reasons (spec); any other 404 (a wrong dispensary) is an error. The update
/// declares no 404, so it says so under a 400.
pub(super) const NOT_FOUND_REASONS: [&str; 3] =
    ["NOT_FOUND", "CUSTOMER_DOESNT_EXIST", "CUSTOMER_NOT_FOUND"];

/// `M`, `F`, `U` (unspecified), `N` (non-binary). Our `Other` is the nearest to `N`; `U` is
/// "not given", so null.
pub(super) fn gender_from_treez(code: &str) -> Option<Gender> {
    match code.trim().to_ascii_uppercase().as_str() {
        "M" => Some(Gender::Male),
        "F" => Some(Gender::Female),
        "N" | "O" => Some(Gender::Other),
        _ => None,
    }
}

pub(super) fn gender_to_treez(gender: Option<Gender>) -> &'static str {
    match gender {
        Some(Gender::Male) => "M",
        Some(Gender::Female) => "F",
        Some(Gender::Other) => "N",
        None => "U",
    }
}

fn string_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// One Treez customer as ours.
pub(super) fn customer(value: &Value) -> Result<Customer, String> {
    let object = value.as_object().ok_or("a customer is not an object")?;
    let customer_id = match object.get("customer_id") {
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Number(id)) => Some(id.to_string()),
        _ => None,
    };
    Incoming {
        customer_id,
        status: string_field(object, "status"),
        first_name: string_field(object, "first_name"),
        last_name: string_field(object, "last_name"),
        gender: string_field(object, "gender").and_then(gender_from_treez),
        birthday: string_field(object, "birthday"),
        email: string_field(object, "email"),
        phone: string_field(object, "phone"),
        drivers_license: string_field(object, "drivers_license"),
        notes: string_field(object, "notes"),
    }
    .into_customer()
}

/// Treez keeps ten digits; a number that has no ten-digit form is refused before any call.
fn phone_refused() -> PosError {
    PosError::Rejected(ValidationErrors::single("phone", FieldError::Invalid))
}

/// The ten digits Treez keeps for `phone`, when it can hold it: a North American number, whose
/// ten digits never start with 0 or 1 (spec: Treez refuses those).
pub(super) fn treez_phone(phone: &domain::Phone) -> Option<&str> {
    ten_digits(phone).filter(|ten| !ten.starts_with(['0', '1']))
}

/// The body of `POST customer/detailcustomer`, borrowed from the new customer and serialised
/// straight into the request. `birthday` is required by Treez: the domain refuses a create
/// without it before we get here (`Capabilities::required_fields`).
#[derive(Serialize)]
pub(super) struct NewTreezCustomer<'a> {
    first_name: &'a str,
    last_name: &'a str,
    patient_type: super::PatientType,
    gender: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    birthday: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    /// Ten digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drivers_license: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<&'a str>,
}

pub(super) fn new_customer(
    customer: &NewCustomer,
    patient_type: super::PatientType,
) -> Result<NewTreezCustomer<'_>, PosError> {
    let phone = match &customer.phone {
        Some(phone) => Some(treez_phone(phone).ok_or_else(phone_refused)?),
        None => None,
    };
    Ok(NewTreezCustomer {
        first_name: customer.first_name.as_str(),
        last_name: customer.last_name.as_str(),
        patient_type,
        gender: gender_to_treez(customer.gender),
        birthday: customer
            .birthday
            .map(|birthday| birthday.format("%Y-%m-%d").to_string()),
        email: customer.email.as_ref().map(|email| email.as_str()),
        phone,
        drivers_license: customer.drivers_license.as_deref(),
        notes: customer.notes.as_deref(),
    })
}

/// The fields of Treez's create schema, which its update takes whole (spec): everything a
/// record holds that a write may set. `customer_id`, `status`, `signup_date`, `last_update`
/// are Treez's own.
const WRITABLE: [&str; 14] = [
    "first_name",
    "middle_name",
    "last_name",
    "birthday",
    "drivers_license",
    "drivers_license_expiration",
    "email",
    "phone",
    "gender",
    "patient_type",
    "notes",
    "state_medical_id",
    "permit_expiration",
    "addresses",
];

/// The body of `PATCH customer/update/{id}`: the whole record Treez holds (every writable
/// field, so none is lost whether Treez keeps or clears what is left out), the patch's fields
/// over it, and the four fields Treez requires on every call. A record without a
/// `patient_type` gets the store's.
pub(super) fn update_body(
    record: &Map<String, Value>,
    patch: &CustomerPatch,
    patient_type: super::PatientType,
) -> Result<Value, PosError> {
    let mut body: Map<String, Value> = WRITABLE
        .into_iter()
        .filter_map(|key| Some((key.to_owned(), record.get(key)?.clone())))
        .collect();
    if body.get("patient_type").is_none_or(|t| !t.is_string()) {
        body.insert("patient_type".into(), json!(patient_type));
    }
    let Value::Object(changes) = self::patch(patch)? else {
        return Err(PosError::BadAnswer {
            vendor: Vendor::Treez,
            message: "the update body is not an object".into(),
            response: None,
        });
    };
    body.extend(changes);
    Ok(Value::Object(body))
}

/// The patch's own fields in Treez's form: only those it names; a cleared field is `null`
/// (gender `U`, Treez's "unspecified").
pub(super) fn patch(patch: &CustomerPatch) -> Result<Value, PosError> {
    let mut body = Map::new();
    let text = |value: Option<&str>| value.map_or(Value::Null, |v| json!(v));
    if let Some(name) = &patch.first_name {
        body.insert("first_name".into(), json!(name.as_str()));
    }
    if let Some(name) = &patch.last_name {
        body.insert("last_name".into(), json!(name.as_str()));
    }
    if let Some(gender) = patch.gender {
        body.insert("gender".into(), json!(gender_to_treez(gender)));
    }
    if let Some(birthday) = patch.birthday {
        let date = birthday.map(|d| d.format("%Y-%m-%d").to_string());
        body.insert("birthday".into(), text(date.as_deref()));
    }
    if let Some(email) = &patch.email {
        body.insert("email".into(), text(email.as_ref().map(|e| e.as_str())));
    }
    if let Some(phone) = &patch.phone {
        let digits = match phone {
            Some(phone) => Some(treez_phone(phone).ok_or_else(phone_refused)?),
            None => None,
        };
        body.insert("phone".into(), text(digits));
    }
    if let Some(license) = &patch.drivers_license {
        body.insert("drivers_license".into(), text(license.as_deref()));
    }
    if let Some(notes) = &patch.notes {
        body.insert("notes".into(), text(notes.as_deref()));
    }
    Ok(Value::Object(body))
}

/// Treez's field names that are ours too (the rest, `patient_type` say, have no field of ours
/// to put an error on).
const FIELDS: [&str; 8] = [
    "first_name",
    "last_name",
    "birthday",
    "email",
    "phone",
    "drivers_license",
    "gender",
    "notes",
];

/// A Treez rejection as errors on our fields, when it names one: `resultDetail` reads
/// `Field first_name cannot be blank` (spec) and `resultReason` `CUSTOMER_FIRST_NAME_BLANK`.
pub(super) fn field_errors(reason: &str, detail: &str) -> Option<ValidationErrors> {
    let from_detail = detail
        .strip_prefix("Field ")
        .and_then(|rest| rest.split_whitespace().next());
    let lower = reason.to_ascii_lowercase();
    let from_reason = FIELDS
        .into_iter()
        .find(|f| lower.starts_with("customer_") && lower.contains(f));
    let field = from_detail
        .and_then(|f| FIELDS.into_iter().find(|known| *known == f))
        .or(from_reason)?;
    let error = if reason.ends_with("_BLANK") {
        FieldError::Blank
    } else if reason == "INVALID_DATE_FORMAT" {
        FieldError::InvalidDate
    } else if field == "gender" {
        FieldError::NotInList
    } else {
        FieldError::Invalid
    };
    Some(ValidationErrors::single(field, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use domain::{CustomerForm, Input};

    #[test]
    fn the_spec_example_reads_as_our_customer() {
        let c = customer(&json!({
            "status": "MERGED", "customer_id": "20", "first_name": "KATHLEEN",
            "middle_name": null, "last_name": "SCOTT", "birthday": "1989-03-07",
            "drivers_license": "LIC744", "email": "SCOTT20@mail.com", "phone": "7777777777",
            "notes": "N/A", "gender": "U", "patient_type": "MEDICAL_MMID"
        }))
        .unwrap();
        assert_eq!(c.customer_id.as_str(), "20");
        assert_eq!(c.status.as_str(), "MERGED");
        assert_eq!(c.birthday, NaiveDate::from_ymd_opt(1989, 3, 7));
        assert_eq!(c.phone.unwrap().as_str(), "777-777-7777");
        assert_eq!(c.gender, None);
        assert_eq!(c.drivers_license.as_deref(), Some("LIC744"));
    }

    #[test]
    fn a_new_customer_goes_out_in_treez_form() {
        let form = CustomerForm {
            first_name: Input::Text("Ann".into()),
            last_name: Input::Text("Lee".into()),
            birthday: Input::Text("02/03/1990".into()),
            phone: Input::Text("+1 (555) 123-4567".into()),
            gender: Input::Text("other".into()),
            ..Default::default()
        };
        let new = NewCustomer::parse(&form, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).unwrap();
        let body = new_customer(&new, super::super::PatientType::Adult).unwrap();
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({"first_name": "Ann", "last_name": "Lee", "patient_type": "ADULT",
                   "gender": "N", "birthday": "1990-02-03", "phone": "5551234567"})
        );
        let back = customer(
            &json!({"customer_id": 1, "first_name": "Ann", "last_name": "Lee", "gender": "N"}),
        )
        .unwrap();
        assert_eq!(back.gender, Some(Gender::Other));
    }

    #[test]
    fn rejections_land_on_our_fields() {
        let e = field_errors(
            "CUSTOMER_FIRST_NAME_BLANK",
            "Field first_name cannot be blank",
        );
        assert_eq!(
            e.unwrap().get("first_name"),
            Some(&["can't be blank".to_owned()][..])
        );
        let e = field_errors(
            "INVALID_DATE_FORMAT",
            "Field birthday has an invalid date format",
        );
        assert_eq!(
            e.unwrap().get("birthday"),
            Some(&["is not a valid date".to_owned()][..])
        );
        assert_eq!(
            field_errors(
                "CUSTOMER_PATIENT_TYPE_BLANK",
                "Field patient_type cannot be blank"
            ),
            None
        );
        assert_eq!(field_errors("INVALID_REQUEST", ""), None);
    }
}
