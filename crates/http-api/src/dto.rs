//! The JSON shapes of the API: request bodies turned into domain forms at the edge, and the
//! response shapes (which also give the OpenAPI document its schemas).

use std::time::Duration;

use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::{HttpMessage, HttpRequest};
use chrono::NaiveDate;
use domain::query::QueryParams;
use domain::{
    Capabilities, Customer, CustomerForm, CustomerPatch, CustomerQuery, FieldError, Input,
    NewCustomer, ValidationErrors, Vendor,
};
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{AnyOfBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};

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

/// A customer in a create or full-update (PUT) request: first and last name required. Unknown
/// fields are ignored; an optional field that is absent or `null` is empty (PUT clears it).
/// The store's POS may require more (see `required_fields` of `GET /pos`).
#[allow(dead_code)] // Only its schema is used: bodies are read as JSON values, see `customer_form`.
#[derive(ToSchema)]
pub struct CustomerInput {
    /// Not blank; at most 100 characters (surrounding spaces are trimmed).
    #[schema(max_length = 100, pattern = r"\S", example = "John")]
    pub first_name: String,
    /// Not blank; at most 100 characters (surrounding spaces are trimmed).
    #[schema(max_length = 100, pattern = r"\S", example = "Doe")]
    pub last_name: String,
    /// `male`, `female`, `other` or `M`, `F`, `O`, any case.
    #[schema(
        pattern = r"^\s*([Mm]([Aa][Ll][Ee])?|[Ff]([Ee][Mm][Aa][Ll][Ee])?|[Oo]([Tt][Hh][Ee][Rr])?)\s*$",
        example = "male"
    )]
    pub gender: Option<String>,
    /// `YYYY-MM-DD` or `MM/DD/YYYY`; a real date, not in the future.
    #[schema(
        pattern = r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{2}/[0-9]{2}/[0-9]{4})\s*$",
        example = "1990-04-05"
    )]
    pub birthday: Option<String>,
    #[schema(format = Email, example = "john.doe@example.com")]
    pub email: Option<String>,
    /// 10 to 15 digits once spaces, dashes, dots, parentheses and a leading `+` are removed.
    #[schema(
        pattern = r"^\s*\+?([ ().-]*[0-9]){10,15}[ ().-]*$",
        example = "555-123-4567"
    )]
    pub phone: Option<String>,
    /// At most 64 characters.
    #[schema(max_length = 64)]
    pub drivers_license: Option<String>,
    /// At most 2000 characters.
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

/// The fields to change in a partial update (PATCH): an absent field is left alone, `null`
/// clears an optional one; the names can be changed but not cleared. At least one field.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct CustomerPatchInput {
    /// Not blank; at most 100 characters.
    #[schema(value_type = String, required = false, max_length = 100, pattern = r"\S")]
    pub first_name: Option<String>,
    /// Not blank; at most 100 characters.
    #[schema(value_type = String, required = false, max_length = 100, pattern = r"\S")]
    pub last_name: Option<String>,
    /// `male`, `female`, `other` or `M`, `F`, `O`, any case.
    #[schema(
        pattern = r"^\s*([Mm]([Aa][Ll][Ee])?|[Ff]([Ee][Mm][Aa][Ll][Ee])?|[Oo]([Tt][Hh][Ee][Rr])?)\s*$"
    )]
    pub gender: Option<String>,
    /// `YYYY-MM-DD` or `MM/DD/YYYY`; a real date, not in the future.
    #[schema(pattern = r"^\s*([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{2}/[0-9]{2}/[0-9]{4})\s*$")]
    pub birthday: Option<String>,
    #[schema(format = Email)]
    pub email: Option<String>,
    /// 10 to 15 digits once spaces, dashes, dots, parentheses and a leading `+` are removed.
    #[schema(pattern = r"^\s*\+?([ ().-]*[0-9]){10,15}[ ().-]*$")]
    pub phone: Option<String>,
    /// At most 64 characters.
    #[schema(max_length = 64)]
    pub drivers_license: Option<String>,
    /// At most 2000 characters.
    #[schema(max_length = 2000, example = "prefers edibles")]
    pub notes: Option<String>,
}

/// `{"customer": {...}}` for a create or a PUT.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct CustomerRequest {
    pub customer: CustomerInput,
}

/// `{"customer": {...}}` for a PATCH.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct CustomerPatchRequest {
    pub customer: CustomerPatchInput,
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub struct BulkRequest {
    /// 1 to 100 customers (not wrapped in `customer`); each is checked on its own.
    #[schema(min_items = 1, max_items = 100)]
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
    pub errors: Option<ValidationErrors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pos: Option<PosAnswer>,
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
    /// The search filters the POS looks customers up by; a search by none of them is
    /// answered from the mirror (`X-Data-Source: mirror`).
    #[schema(example = json!(["email", "phone", "drivers_license"]))]
    pub search_by: Vec<&'static str>,
    /// Fields the POS does not give back (write-only there, or not kept at all): the gateway
    /// keeps the value a kiosk gave in its mirror, and answers with it.
    #[schema(example = json!(["drivers_license"]))]
    pub unreadable_fields: Vec<&'static str>,
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
            search_by: c.search_by.iter().map(|f| f.as_str()).collect(),
            unreadable_fields: c.unreadable_fields.iter().map(|f| f.as_str()).collect(),
        }
    }
}

/// `{"error": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// `{"errors": {"field": ["message", ...]}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationErrorBody {
    #[schema(value_type = Object, example = json!({"first_name": ["can't be blank"]}))]
    pub errors: ValidationErrors,
}

/// `{"error": "customer already exists", "customer": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicateBody {
    #[schema(example = "customer already exists")]
    pub error: String,
    pub customer: CustomerDto,
}

/// `{"status": 405, "message": "method not allowed"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MethodNotAllowedBody {
    #[schema(example = 405)]
    pub status: u16,
    #[schema(example = "method not allowed")]
    pub message: String,
}

/// `{"error": "service_unavailable", "message": "..."}`: the gateway's database is down.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceUnavailableBody {
    #[schema(example = "service_unavailable")]
    pub error: String,
    pub message: String,
}

/// `{"error": "rate_limited", "message": "..."}`, with `Retry-After`: the kiosk (catalog) is
/// over its own request budget, or too many bulk requests are in flight.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitedBody {
    #[schema(example = "rate_limited")]
    pub error: String,
    pub message: String,
}

/// A response body of one of several documented shapes (`anyOf`: the shapes overlap, e.g. a
/// duplicate's body also has the `error` of an [`ErrorBody`]).
macro_rules! any_of {
    ($(#[doc = $doc:literal])+ $name:ident: $($schema:ident),+) => {
        $(#[doc = $doc])+
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                AnyOfBuilder::new()
                    $(.item(Ref::from_schema_name(stringify!($schema))))+
                    .description(Some(concat!($($doc),+).trim()))
                    .into()
            }
        }

        impl ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
        }
    };
}

any_of!(
    /// 409: a duplicate customer (`DuplicateBody`), or a request with the same
    /// `Idempotency-Key` still in progress (`ErrorBody`, with `Retry-After`).
    ConflictBody: DuplicateBody, ErrorBody
);

any_of!(
    /// 422: invalid fields (`ValidationErrorBody`), or an `Idempotency-Key` already used with a
    /// different request (`ErrorBody`).
    UnprocessableBody: ValidationErrorBody, ErrorBody
);

any_of!(
    /// 503: the POS is unavailable (`PosErrorBody`) or the gateway's database is
    /// (`ServiceUnavailableBody`); with `Retry-After`.
    UnavailableBody: PosErrorBody, ServiceUnavailableBody
);

/// What the POS answered, cut to 4 KiB and free of credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct PosAnswer {
    #[schema(value_type = Option<String>, example = "treez")]
    pub vendor: Option<Vendor>,
    pub status: Option<u16>,
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
}

/// `{"error": "pos_error", "message": "...", "pos": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PosErrorBody {
    #[schema(example = "pos_error")]
    pub error: String,
    pub message: String,
    pub pos: PosAnswer,
}

/// Reads a JSON request body: `Content-Type` must be JSON and the body at most 1 MiB, arriving
/// within `deadline` of the handler starting to read it (408 after, and the connection is
/// closed: a client sending the head and trickling the body must not hold a worker for ever).
pub async fn read_json_body(
    request: &HttpRequest,
    payload: Payload,
    deadline: Duration,
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
    match tokio::time::timeout(deadline, collect_body(payload, declared, MAX_BODY_BYTES)).await {
        Ok(body) => Ok(body?.freeze()),
        Err(_) => Err(ApiError::BodyTimeout(deadline)),
    }
}

/// Reads a body of at most `limit` bytes that declares `declared` bytes. A declared length
/// over the limit is refused before anything is read; otherwise the declared length is only a
/// claim, so nothing is reserved from it: the buffer grows with what actually arrives.
pub async fn collect_body<S, E>(
    mut stream: S,
    declared: Option<usize>,
    limit: usize,
) -> Result<BytesMut, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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

/// Which update a body is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    /// PATCH: only the fields present change.
    Patch,
    /// PUT: a full replacement.
    Put,
}

/// The body of a create (`{"customer": {...}}`) as a new customer: the handler's whole
/// parsing path, in one function so the fuzzer (fuzz/fuzz_targets/customer_body.rs) runs the
/// code the API runs.
pub fn parse_create_body(body: &[u8], today: NaiveDate) -> Result<NewCustomer, ApiError> {
    let json = parse_json(body)?;
    let form = customer_form(object_param(&json, "customer")?);
    NewCustomer::parse(&form, today).map_err(ApiError::Invalid)
}

/// The body of a PATCH or PUT (`{"customer": {...}}`) as a patch.
pub fn parse_update_body(
    body: &[u8],
    kind: UpdateKind,
    today: NaiveDate,
) -> Result<CustomerPatch, ApiError> {
    let json = parse_json(body)?;
    let form = customer_form(object_param(&json, "customer")?);
    match kind {
        UpdateKind::Patch => CustomerPatch::parse_partial(&form, today),
        UpdateKind::Put => CustomerPatch::parse_full(&form, today),
    }
    .map_err(ApiError::Invalid)
}

/// The body of a bulk create (`{"customers": [...]}`, 1 to 100 items) as one result per
/// item, in input order: an invalid item is that item's 422, not the request's.
pub fn parse_bulk_body(
    body: &[u8],
    today: NaiveDate,
) -> Result<Vec<Result<NewCustomer, ValidationErrors>>, ApiError> {
    let json = parse_json(body)?;
    let items = list_param(&json, "customers")?;
    if items.is_empty() {
        return Err(ApiError::Invalid(ValidationErrors::single(
            "customers",
            FieldError::Blank,
        )));
    }
    if items.len() > MAX_BULK_ITEMS {
        let mut errors = ValidationErrors::new();
        errors.add_message(
            "customers",
            format!("is too long (maximum is {MAX_BULK_ITEMS} items)"),
        );
        return Err(ApiError::Invalid(errors));
    }
    Ok(items
        .iter()
        .map(|item| match item.as_object() {
            Some(object) => NewCustomer::parse(&customer_form(object), today),
            None => Err(ValidationErrors::single("customer", FieldError::Invalid)),
        })
        .collect())
}

/// The query string of a list or search as a validated query and its cursor.
pub fn parse_list_query(query: &str) -> Result<(CustomerQuery, Option<String>), ApiError> {
    let params = actix_web::web::Query::<QueryParams>::from_query(query)
        .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))?;
    CustomerQuery::parse(&params).map_err(ApiError::Invalid)
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
                serde_json::to_value(error.body()).unwrap(),
                json!({"error": "param is missing or the value is empty: customer"})
            );
        }
    }

    #[tokio::test]
    async fn a_declared_length_reserves_nothing_and_a_larger_one_is_refused_unread() {
        let ten_bytes = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(
            br#"{"a": 1}  "#,
        ))]);
        let body = collect_body(ten_bytes, Some(1_000_000), MAX_BODY_BYTES)
            .await
            .unwrap();
        assert_eq!(body.len(), 10);
        assert!(
            body.capacity() < 64 * 1024,
            "{} bytes reserved for a body of 10 that claimed 1 MB",
            body.capacity()
        );

        let never_read = futures::stream::poll_fn(
            |_| -> std::task::Poll<Option<Result<Bytes, std::io::Error>>> {
                panic!("a body declared over the limit is not read")
            },
        );
        assert!(matches!(
            collect_body(never_read, Some(MAX_BODY_BYTES + 1), MAX_BODY_BYTES).await,
            Err(ApiError::PayloadTooLarge)
        ));
        let chunks = futures::stream::iter(
            (0..3).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 400]))),
        );
        assert!(matches!(
            collect_body(chunks, None, 1000).await,
            Err(ApiError::PayloadTooLarge)
        ));
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

    #[test]
    fn bodies_and_query_strings_parse_as_the_handlers_need() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let create = br#"{"customer": {"first_name": "A", "last_name": "B", "email": null}}"#;
        assert_eq!(
            parse_create_body(create, today)
                .unwrap()
                .first_name
                .as_str(),
            "A"
        );
        let patch = br#"{"customer": {"email": null}}"#;
        let parsed = parse_update_body(patch, UpdateKind::Patch, today).unwrap();
        assert_eq!(parsed.email, Some(None));
        assert_eq!(parsed.first_name, None);
        let put = parse_update_body(patch, UpdateKind::Put, today).unwrap_err();
        assert_eq!(put.status().as_u16(), 422);
        assert!(matches!(
            parse_create_body(b"{", today),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            parse_update_body(b"[]", UpdateKind::Patch, today),
            Err(ApiError::MissingParam("customer"))
        ));

        let bulk = br#"{"customers": [{"first_name": "A", "last_name": "B"}, "x"]}"#;
        let items = parse_bulk_body(bulk, today).unwrap();
        assert!(items[0].is_ok());
        assert_eq!(
            items[1].as_ref().unwrap_err().get("customer").unwrap(),
            ["is invalid"]
        );
        for refused in [&br#"{"customers": []}"#[..], br#"{"customer": {}}"#] {
            assert!(parse_bulk_body(refused, today).is_err());
        }
        let many = format!("{{\"customers\": [{}]}}", vec!["{}"; 101].join(","));
        assert_eq!(
            parse_bulk_body(many.as_bytes(), today)
                .unwrap_err()
                .status()
                .as_u16(),
            422
        );

        let (query, cursor) = parse_list_query("limit=5&name=Jo&cursor=+c+").unwrap();
        assert_eq!((query.limit, query.name.as_deref()), (5, Some("jo")));
        assert_eq!(cursor.as_deref(), Some("c"));
        assert_eq!(
            parse_list_query("limit=0").unwrap_err().status().as_u16(),
            422
        );
        assert!(matches!(
            parse_list_query("limit=1&limit=2"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
