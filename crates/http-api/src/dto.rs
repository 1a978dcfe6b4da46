//! The JSON shapes of the API: request bodies turned into domain forms at the edge, and the
//! response shapes (which also give the OpenAPI document its schemas).

use actix_web::web::{Bytes, Payload};
use actix_web::{HttpMessage, HttpRequest};
use domain::{Capabilities, Customer, CustomerForm, Input, Vendor};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;

/// The contract's body limit.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const MAX_BULK_ITEMS: usize = 100;

/// A customer as every response shows it; every field present, unknown ones `null`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerDto {
    /// Upper case, e.g. `ACTIVE`.
    #[schema(example = "ACTIVE")]
    pub status: String,
    /// The POS's id for the customer.
    #[schema(example = "12345")]
    pub customer_id: String,
    #[schema(example = "John")]
    pub first_name: String,
    #[schema(example = "Doe")]
    pub last_name: String,
    /// `Male`, `Female` or `Other`.
    #[schema(example = "Male")]
    pub gender: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(format = Date, example = "1990-04-05")]
    pub birthday: Option<String>,
    #[schema(example = "john.doe@example.com")]
    pub email: Option<String>,
    #[schema(example = "555-123-4567")]
    pub phone: Option<String>,
    pub drivers_license: Option<String>,
    pub notes: Option<String>,
}

impl From<&Customer> for CustomerDto {
    fn from(c: &Customer) -> Self {
        Self {
            status: c.status.as_str().to_owned(),
            customer_id: c.customer_id.as_str().to_owned(),
            first_name: c.first_name.as_str().to_owned(),
            last_name: c.last_name.as_str().to_owned(),
            gender: c.gender.map(|g| g.as_str().to_owned()),
            birthday: c.birthday.map(|d| d.format("%Y-%m-%d").to_string()),
            email: c.email.as_ref().map(|e| e.as_str().to_owned()),
            phone: c.phone.as_ref().map(|p| p.as_str().to_owned()),
            drivers_license: c.drivers_license.clone(),
            notes: c.notes.clone(),
        }
    }
}

/// `{"customer": {...}}`, the envelope of every single-customer response.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerEnvelope {
    pub customer: CustomerDto,
}

impl From<&Customer> for CustomerEnvelope {
    fn from(customer: &Customer) -> Self {
        Self {
            customer: customer.into(),
        }
    }
}

/// A customer in a create or update request. Unknown fields are ignored; on PATCH, an absent
/// field is left alone and `null` clears it.
#[allow(dead_code)] // Only its schema is used: bodies are read as JSON values, see `customer_form`.
#[derive(ToSchema)]
pub struct CustomerInput {
    /// Required on create and PUT; not blank; at most 100 characters.
    pub first_name: Option<String>,
    /// Required on create and PUT; not blank; at most 100 characters.
    pub last_name: Option<String>,
    /// `male`, `female`, `other` or `M`, `F`, `O`, any case.
    pub gender: Option<String>,
    /// `YYYY-MM-DD` or `MM/DD/YYYY`; a real date, not in the future.
    pub birthday: Option<String>,
    pub email: Option<String>,
    /// 10 to 15 digits once spaces, dashes, dots, parentheses and a leading `+` are removed.
    pub phone: Option<String>,
    /// At most 64 characters.
    pub drivers_license: Option<String>,
    /// At most 2000 characters.
    pub notes: Option<String>,
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub struct CustomerRequest {
    pub customer: CustomerInput,
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub struct BulkRequest {
    /// 1 to 100 customers.
    pub customers: Vec<CustomerInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerList {
    pub customers: Vec<CustomerDto>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// One bulk item's outcome: `status` is the status a single create would have had, with that
/// answer's body fields beside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkItemResult {
    #[schema(example = 201)]
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub errors: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub pos: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResponse {
    pub results: Vec<BulkItemResult>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CapabilitiesDto {
    pub list_customers: bool,
    pub search_customers: bool,
    pub get_customer: bool,
    pub create_customer: bool,
    pub update_customer: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PosInfo {
    #[schema(example = "local")]
    pub vendor: String,
    pub capabilities: CapabilitiesDto,
    /// Fields optional in the contract that this store's POS requires on create (Treez:
    /// `birthday`); a create without them gets a 422 on the field.
    #[schema(example = json!(["birthday"]))]
    pub required_fields: Vec<&'static str>,
}

impl PosInfo {
    pub fn new(vendor: Vendor, c: Capabilities) -> Self {
        Self {
            vendor: vendor.as_str().to_owned(),
            capabilities: CapabilitiesDto {
                list_customers: c.list_customers,
                search_customers: c.search_customers,
                get_customer: c.get_customer,
                create_customer: c.create_customer,
                update_customer: c.update_customer,
            },
            required_fields: c.required_fields.iter().map(|f| f.as_str()).collect(),
        }
    }
}

/// `{"error": "..."}`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// `{"errors": {"field": ["message", ...]}}`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ValidationErrorBody {
    #[schema(value_type = Object, example = json!({"first_name": ["can't be blank"]}))]
    pub errors: Value,
}

/// `{"error": "customer already exists", "customer": {...}}`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct DuplicateBody {
    pub error: String,
    pub customer: CustomerDto,
}

/// `{"status": 405, "message": "method not allowed"}`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct MethodNotAllowedBody {
    pub status: u16,
    pub message: String,
}

/// What the POS answered, cut to 4 KiB and free of credentials.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct PosAnswer {
    pub vendor: Option<String>,
    pub status: Option<u16>,
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
}

/// `{"error": "pos_error", "message": "...", "pos": {...}}`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct PosErrorBody {
    pub error: String,
    pub message: String,
    pub pos: PosAnswer,
}

/// Reads a JSON request body: `Content-Type` must be JSON and the body at most 1 MiB. The
/// declared length is checked first so an oversized upload is refused without reading it.
pub async fn read_json_body(
    request: &HttpRequest,
    mut payload: Payload,
) -> Result<Bytes, ApiError> {
    let is_json = request
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body =
        actix_web::web::BytesMut::with_capacity(declared.unwrap_or(0).min(MAX_BODY_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::MalformedJson(format!("malformed JSON: {e}")))
}

/// The object under `key` of a request body; the contract's 400 when it is missing, empty or
/// not an object.
pub fn object_param<'a>(
    body: &'a Value,
    key: &'static str,
) -> Result<&'a Map<String, Value>, ApiError> {
    body.get(key)
        .and_then(Value::as_object)
        .filter(|o| !o.is_empty())
        .ok_or(ApiError::MissingParam(key))
}

/// The list under `key` of a request body.
pub fn list_param<'a>(body: &'a Value, key: &'static str) -> Result<&'a Vec<Value>, ApiError> {
    body.get(key)
        .and_then(Value::as_array)
        .ok_or(ApiError::MissingParam(key))
}

/// A JSON customer object as the domain's raw form. Numbers are taken as their text (a kiosk
/// may send a phone as a number); other non-string values are invalid for any field.
pub fn customer_form(object: &Map<String, Value>) -> CustomerForm {
    let input = |key: &str| match object.get(key) {
        None => Input::Absent,
        Some(Value::Null) => Input::Null,
        Some(Value::String(s)) => Input::Text(s.clone()),
        Some(Value::Number(n)) => Input::Text(n.to_string()),
        Some(_) => Input::NotText,
    };
    CustomerForm {
        first_name: input("first_name"),
        last_name: input("last_name"),
        gender: input("gender"),
        birthday: input("birthday"),
        email: input("email"),
        phone: input("phone"),
        drivers_license: input("drivers_license"),
        notes: input("notes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_customer_param_must_be_a_non_empty_object() {
        for body in [
            json!({}),
            json!({"customer": null}),
            json!({"customer": {}}),
            json!({"customer": "x"}),
            json!([1]),
        ] {
            let error = object_param(&body, "customer").unwrap_err();
            assert_eq!(
                error.body(),
                json!({"error": "param is missing or the value is empty: customer"})
            );
        }
    }

    #[test]
    fn json_types_become_inputs() {
        let body =
            json!({"first_name": "A", "phone": 5551234567u64, "email": null, "notes": ["x"]});
        let form = customer_form(body.as_object().unwrap());
        assert_eq!(form.first_name, Input::Text("A".into()));
        assert_eq!(form.phone, Input::Text("5551234567".into()));
        assert_eq!(form.email, Input::Null);
        assert_eq!(form.notes, Input::NotText);
        assert_eq!(form.gender, Input::Absent);
    }
}
