//! Cova's JSON (PascalCase, the shapes of the iQmetrix CRM it fronts) and every conversion
//! between it and our customer, in one place. What vendors.md leaves open is in the
//! "Unverified (chosen)" block below, each guess once; docs/vendors/cova.md lists them with
//! their confidence.

use std::time::Duration;

use domain::{Customer, CustomerPatch, CustomerQuery, Email, FieldError, NewCustomer, Phone};
use domain::{PosError, ValidationErrors};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::convert::{Incoming, date_prefix, display_phone, present, ten_digits};

// --- Cova's facts (vendors.md, spec) -----------------------------------------------------------

/// `CustomerTypeId` of a person.
pub(super) const PERSON: i64 = 2;
/// `ContactMethodCategoryId` of a phone and of an e-mail address.
pub(super) const PHONE: i64 = 1;
pub(super) const EMAIL: i64 = 2;
/// `ContactMethodTypeId` of a mobile phone and of a home e-mail address.
const MOBILE: i64 = 3;
const HOME_EMAIL: i64 = 9;
/// A `CustomerFull`'s nested lists; the core `Customers` resource has none of them.
pub(super) const CONTACT_METHODS: &str = "ContactMethods";
pub(super) const EXTENSIONS: &str = "CustomerExtensions";
const NESTED: [&str; 3] = [CONTACT_METHODS, "Addresses", EXTENSIONS];
/// The figure of Cova's per-service limit per 60 s, on its answers (lower case: header names
/// are case-insensitive).
pub(super) const LIMIT_HEADER: &str = "cova-apim-ratelimit-limit";
/// What a token answer says when it does not say how long the token lives: Cova's 12 h.
pub(super) const TOKEN_LIFETIME: Duration = Duration::from_secs(43_199);

// --- Unverified (chosen): every guess of this adapter, in one place ---------------------------

/// Unverified (gap): the `POST Search` fields for an e-mail and a phone (matched against the
/// `Value` of the customer's contact methods of that category).
const SEARCH_EMAIL: &str = "Email";
const SEARCH_PHONE: &str = "Phone";
/// Unverified (gap): the `POST Search` operations used.
const EQUALS: &str = "Equals";
const CONTAINS: &str = "Contains";
/// Unverified (chosen): the list is `CustomerFull` modified since a time (the documented form,
/// every customer with its contact methods), paged by `$skip`/`$top`; a full listing asks
/// from a date before any Cova customer.
pub(super) fn list_filter(since: Option<chrono::DateTime<chrono::Utc>>) -> String {
    let since = since.map_or_else(
        || "1900-01-01T00:00:00".to_owned(),
        |since| since.format("%Y-%m-%dT%H:%M:%S").to_string(),
    );
    format!("LastModifiedDateUtc ge datetime'{since}z'")
}
/// Unverified (chosen): asked for the list; a bare array is read as well.
pub(super) const LIST_ACCEPT: &str = "application/hal+json, application/json;q=0.9";
/// Unverified (gap): the limit until Cova's first answer announces its own.
pub(super) const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 120;
/// Unverified (gap): a stale `Version` (vendors.md: "treat 409/412 as a conflict"); the double
/// answers 409, also to a write to a customer merged into another.
pub(super) const CONFLICTS: [u16; 2] = [409, 412];
/// Unverified (gap): an extension's type and value keys (`{Id, ExtensionTypeId, Value, Version}`).
const EXTENSION_TYPE: &str = "ExtensionTypeId";
/// Unverified (chosen): .NET's empty GUID in `MergedIntoCustomerId` means "not merged", as null.
const EMPTY_GUID: &str = "00000000-0000-0000-0000-000000000000";
/// Unverified (chosen): our statuses for Cova's flags: merged into another, `Disabled`, neither.
const MERGED: &str = "MERGED";
const INACTIVE: &str = "INACTIVE";
const ACTIVE: &str = "ACTIVE";
/// Unverified (chosen, RFC 6749 5.2): token errors that mean our credentials were refused.
const REFUSED_GRANTS: [&str; 3] = ["invalid_grant", "invalid_client", "unauthorized_client"];

/// Unverified (chosen): Azure API Management's 429 says the wait in its body (`{"statusCode":
/// 429, "message": "Rate limit is exceeded. Try again in 5 seconds."}`) rather than in
/// `Retry-After`; a 429 without the header gets that wait.
fn apim_wait(body: &Value) -> Option<Duration> {
    let message = ["message", "Message"]
        .into_iter()
        .find_map(|key| body.get(key)?.as_str())?;
    let rest = message.split("Try again in ").nth(1)?;
    let seconds: String = rest.chars().take_while(char::is_ascii_digit).collect();
    seconds.parse().ok().map(Duration::from_secs)
}

// --- reading ----------------------------------------------------------------------------------

/// The token endpoint's answer.
#[derive(Deserialize)]
pub(super) struct TokenAnswer {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenAnswer {
    pub fn lifetime(&self) -> Duration {
        self.expires_in
            .filter(|s| *s > 0)
            .map_or(TOKEN_LIFETIME, Duration::from_secs)
    }
}

/// Whether the token endpoint's refusal (`{"error", "error_description"}`) is of our
/// credentials, rather than of the request.
pub(super) fn refused_credentials(status: u16, body: &Value) -> bool {
    let error = body.get("error").and_then(Value::as_str);
    match error {
        Some(error) => REFUSED_GRANTS.contains(&error),
        None => status == 401,
    }
}

/// A rate-limited answer with the wait APIM's body names, when `Retry-After` gave none.
pub(super) fn with_apim_wait(error: PosError, max: Duration) -> PosError {
    match error {
        PosError::Unavailable {
            vendor,
            message,
            retry_after: None,
            response: Some(response),
        } if response.status == 429 => PosError::Unavailable {
            vendor,
            message,
            retry_after: apim_wait(&response.body).map(|wait| wait.min(max)),
            response: Some(response),
        },
        other => other,
    }
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    present(object.get(key).and_then(Value::as_str))
}

/// An id as Cova writes it: a GUID string (a number is taken too).
fn id_of(object: &Map<String, Value>) -> Option<String> {
    match object.get("Id")? {
        Value::String(id) => present(Some(id)).map(str::to_owned),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// The customer a merged-away one was merged into (Cova merges duplicates), if it was.
pub(super) fn merged_into(record: &Map<String, Value>) -> Option<String> {
    text(record, "MergedIntoCustomerId")
        .filter(|id| *id != EMPTY_GUID)
        .map(str::to_owned)
}

fn status(record: &Map<String, Value>) -> &'static str {
    if merged_into(record).is_some() {
        MERGED
    } else if record.get("Disabled").and_then(Value::as_bool) == Some(true) {
        INACTIVE
    } else {
        ACTIVE
    }
}

fn items<'a>(record: &'a Map<String, Value>, list: &str) -> Vec<&'a Map<String, Value>> {
    record
        .get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .collect()
}

fn contact_methods(record: &Map<String, Value>, category: i64) -> Vec<&Map<String, Value>> {
    items(record, CONTACT_METHODS)
        .into_iter()
        .filter(|m| m.get("ContactMethodCategoryId").and_then(Value::as_i64) == Some(category))
        .collect()
}

fn extensions(record: &Map<String, Value>, type_id: i64) -> Vec<&Map<String, Value>> {
    items(record, EXTENSIONS)
        .into_iter()
        .filter(|e| e.get(EXTENSION_TYPE).and_then(Value::as_i64) == Some(type_id))
        .collect()
}

fn value_of(item: &Map<String, Value>) -> Option<&str> {
    text(item, "Value")
}

/// The item we show of several (a customer may have many phones): the `Default` one among
/// those `usable`, else the first usable.
fn pick<'a>(
    items: &[&'a Map<String, Value>],
    usable: impl Fn(&str) -> bool,
) -> Option<&'a Map<String, Value>> {
    let ok: Vec<&Map<String, Value>> = items
        .iter()
        .copied()
        .filter(|i| value_of(i).is_some_and(&usable))
        .collect();
    ok.iter()
        .copied()
        .find(|i| i.get("Default").and_then(Value::as_bool) == Some(true))
        .or_else(|| ok.first().copied())
}

fn is_phone(text: &str) -> bool {
    display_phone(text).is_some()
}

fn is_email(text: &str) -> bool {
    Email::parse(text).is_ok()
}

/// One `CustomerFull` (or core `Customers` record) as our customer, or why it can't be one.
/// `licence` is the store's `licence_extension_type_id`; gender Cova does not keep.
pub(super) fn customer(value: &Value, licence: Option<i64>) -> Result<Customer, String> {
    let record = value.as_object().ok_or("a customer is not an object")?;
    let phones = contact_methods(record, PHONE);
    let emails = contact_methods(record, EMAIL);
    let licence = licence.and_then(|t| extensions(record, t).into_iter().find_map(|e| value_of(e)));
    Incoming {
        customer_id: id_of(record),
        status: Some(status(record)),
        first_name: text(record, "PrimaryName"),
        last_name: text(record, "FamilyName"),
        gender: None,
        birthday: text(record, "DateOfBirth"),
        email: pick(&emails, is_email).and_then(|m| value_of(m)),
        phone: pick(&phones, is_phone).and_then(|m| value_of(m)),
        drivers_license: licence,
        notes: text(record, "Notes"),
    }
    .into_customer()
}

/// The records of a list or search answer: a bare array, HAL (`_embedded.self`), or a search's
/// `Results`.
pub(super) fn records(answer: &Value) -> Result<&[Value], String> {
    match answer {
        Value::Array(items) => Ok(items),
        Value::Object(object) => {
            let found = match (object.get("_embedded"), object.get("Results")) {
                (Some(embedded), _) => embedded.get("self"),
                (None, Some(results)) => Some(results),
                (None, None) => None,
            };
            match found {
                Some(Value::Array(items)) => Ok(items),
                Some(Value::Null) => Ok(&[]),
                _ => Err("the answer holds no list of customers".to_owned()),
            }
        }
        _ => Err("the answer is not a list of customers".to_owned()),
    }
}

/// Whether a HAL answer links a next page; `None` for a bare array, which does not say.
pub(super) fn links_next(answer: &Value) -> Option<bool> {
    let links = answer.as_object()?.get("_links")?;
    Some(
        links
            .get("next")
            .and_then(|next| next.get("href"))
            .and_then(Value::as_str)
            .is_some_and(|href| !href.trim().is_empty()),
    )
}

/// A customer id as Cova makes them: a GUID (braces allowed); any other id is nobody's there.
pub(super) fn guid(id: &str) -> Option<&str> {
    let inner = id
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or(id);
    let ok = inner.len() == 36
        && inner.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then_some(inner)
}

// --- searching --------------------------------------------------------------------------------

fn criterion(field: &str, operation: &str, value: &str) -> Value {
    json!({"Field": field, "Operation": operation, "Criteria": value})
}

/// `POST Search` criteria for an e-mail address.
pub(super) fn email_criteria(email: &str) -> Vec<Value> {
    vec![criterion(SEARCH_EMAIL, EQUALS, email)]
}

/// `POST Search` criteria for a phone number, chosen so they hold however a register wrote it:
/// a contact method's `Value` is free text (`(555) 123-4567`, `555.123.4567`, `+15551234567`)
/// and Cova compares text, not digits. A North American number is asked as its three groups
/// (`Contains` each: area, exchange, line), which every common writing keeps whole; any other
/// number by its last four digits. The digits are then compared in our code. `None` for digits
/// no phone has.
pub(super) fn phone_criteria(digits: &str) -> Option<Vec<Value>> {
    let phone = Phone::parse(digits).ok()?;
    let groups: Vec<&str> = match ten_digits(&phone) {
        Some(ten) => vec![ten.get(..3)?, ten.get(3..6)?, ten.get(6..)?],
        None => vec![phone.digits().get(phone.digits().len().checked_sub(4)?..)?],
    };
    Some(
        groups
            .into_iter()
            .map(|group| criterion(SEARCH_PHONE, CONTAINS, group))
            .collect(),
    )
}

/// The digits of a free-text phone, as ten when it is a North American number.
fn comparable_digits(text: &str) -> String {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix('1') {
        Some(ten) if ten.len() == 10 => ten.to_owned(),
        _ => digits,
    }
}

/// Whether one of the record's phones has these digits (a North American number with or
/// without its leading 1).
pub(super) fn has_phone(record: &Map<String, Value>, digits: &str) -> bool {
    let wanted = comparable_digits(digits);
    contact_methods(record, PHONE)
        .into_iter()
        .filter_map(value_of)
        .any(|value| comparable_digits(value) == wanted)
}

/// Whether one of the record's e-mail addresses is this one, whatever its case.
pub(super) fn has_email(record: &Map<String, Value>, email: &str) -> bool {
    contact_methods(record, EMAIL)
        .into_iter()
        .filter_map(value_of)
        .any(|value| value.to_lowercase() == email.trim().to_lowercase())
}

/// Whether a search result satisfies the whole query: phone and e-mail on any of the record's
/// contact methods, the rest (name, licence) on the customer read from it.
pub(super) fn satisfies(
    record: &Map<String, Value>,
    customer: &Customer,
    query: &CustomerQuery,
) -> bool {
    let rest = CustomerQuery {
        phone_digits: None,
        email: None,
        ..query.clone()
    };
    query
        .phone_digits
        .as_deref()
        .is_none_or(|digits| has_phone(record, digits))
        && query
            .email
            .as_deref()
            .is_none_or(|email| has_email(record, email))
        && rest.matches(customer)
}

// --- writing ----------------------------------------------------------------------------------

fn date(birthday: chrono::NaiveDate) -> String {
    birthday.format("%Y-%m-%d").to_string()
}

fn new_contact_method(category: i64, type_id: i64, value: &str) -> Value {
    json!({
        "ContactMethodCategoryId": category,
        "ContactMethodTypeId": type_id,
        "Value": value,
        "Default": true,
    })
}

fn new_extension(type_id: i64, value: &str) -> Value {
    json!({EXTENSION_TYPE: type_id, "Value": value})
}

/// Which of our fields each nested item of a create carries, by list and index, so a 400 that
/// names `customer.ContactMethods[1].Value` lands on ours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Carried {
    pub contact_methods: Vec<&'static str>,
    pub extensions: Vec<&'static str>,
    /// For a write of one item (`contactMethod.Value`, `customerExtension.Value`).
    pub item: Option<&'static str>,
}

/// The body of `POST CustomerFull`: the person, `DoNotContact` false (Cova's default is true,
/// and a kiosk that signs a customer up has their consent; the contract has no field to say
/// otherwise), the phone and e-mail as contact methods, and the licence as an extension when
/// the store names its type. What each nested item carries comes with it.
pub(super) fn create_body(customer: &NewCustomer, licence: Option<i64>) -> (Value, Carried) {
    let mut carried = Carried::default();
    let mut methods = Vec::new();
    if let Some(phone) = &customer.phone {
        methods.push(new_contact_method(PHONE, MOBILE, phone.as_str()));
        carried.contact_methods.push("phone");
    }
    if let Some(email) = &customer.email {
        methods.push(new_contact_method(EMAIL, HOME_EMAIL, email.as_str()));
        carried.contact_methods.push("email");
    }
    let mut body = Map::new();
    body.insert("PrimaryName".into(), json!(customer.first_name.as_str()));
    body.insert("FamilyName".into(), json!(customer.last_name.as_str()));
    body.insert("CustomerTypeId".into(), json!(PERSON));
    if let Some(birthday) = customer.birthday {
        body.insert("DateOfBirth".into(), json!(date(birthday)));
    }
    if let Some(notes) = &customer.notes {
        body.insert("Notes".into(), json!(notes));
    }
    body.insert("Disabled".into(), json!(false));
    body.insert("DoNotContact".into(), json!(false));
    body.insert(CONTACT_METHODS.into(), Value::Array(methods));
    if let (Some(type_id), Some(licence)) = (licence, &customer.drivers_license) {
        body.insert(EXTENSIONS.into(), json!([new_extension(type_id, licence)]));
        carried.extensions.push("drivers_license");
    }
    (Value::Object(body), carried)
}

/// One write of an update, in the order they are sent.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Step {
    /// `PUT Customers({id})`: the whole core customer, with its current `Version`.
    Core(Map<String, Value>),
    /// `POST Customers({id})/{list}`.
    Add {
        list: &'static str,
        field: &'static str,
        body: Value,
    },
    /// `PUT Customers({id})/{list}({item})`: the whole item, with its `Version`.
    Change {
        list: &'static str,
        field: &'static str,
        item: String,
        body: Value,
    },
    /// `DELETE Customers({id})/{list}({item})`.
    Remove { list: &'static str, item: String },
}

fn item_id(item: &Map<String, Value>) -> Option<String> {
    match item.get("Id")? {
        Value::String(id) => present(Some(id)).map(str::to_owned),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// The whole core customer as read, for `PUT Customers({id})`, which replaces it: every field
/// Cova gave (ours or not, so a field no kiosk knows is not cleared), without the nested lists,
/// `DateOfBirth` in the `YYYY-MM-DD` Cova takes, and `DoNotContact` always sent (left out, it
/// would go back to true).
fn core_body(record: &Map<String, Value>) -> Map<String, Value> {
    let mut body: Map<String, Value> = record
        .iter()
        .filter(|(key, _)| !NESTED.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if let Some(born) = text(record, "DateOfBirth").and_then(date_prefix) {
        body.insert("DateOfBirth".into(), json!(date(born)));
    }
    if !body.get("CustomerTypeId").is_some_and(Value::is_i64) {
        body.insert("CustomerTypeId".into(), json!(PERSON));
    }
    if !body.get("DoNotContact").is_some_and(Value::is_boolean) {
        body.insert("DoNotContact".into(), json!(false));
    }
    body
}

/// The writes that make `record` what `patch` says, touching nothing it does not name and
/// writing nothing already so (so a plan made again after a conflict does only what is left).
/// Gender has no place at Cova; the licence has one only with the store's extension type.
pub(super) fn plan(
    record: &Map<String, Value>,
    patch: &CustomerPatch,
    licence: Option<i64>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut core = core_body(record);
    let mut changed = false;
    let mut set = |key: &str, value: Value, same: bool| {
        if !same {
            core.insert(key.to_owned(), value);
            changed = true;
        }
    };
    if let Some(name) = &patch.first_name {
        let same = text(record, "PrimaryName") == Some(name.as_str());
        set("PrimaryName", json!(name.as_str()), same);
    }
    if let Some(name) = &patch.last_name {
        let same = text(record, "FamilyName") == Some(name.as_str());
        set("FamilyName", json!(name.as_str()), same);
    }
    if let Some(birthday) = patch.birthday {
        let same = text(record, "DateOfBirth").and_then(date_prefix) == birthday;
        set(
            "DateOfBirth",
            birthday.map_or(Value::Null, |d| json!(date(d))),
            same,
        );
    }
    if let Some(notes) = &patch.notes {
        let same = text(record, "Notes") == notes.as_deref();
        set(
            "Notes",
            notes.as_deref().map_or(Value::Null, |n| json!(n)),
            same,
        );
    }
    if changed {
        steps.push(Step::Core(core));
    }
    if let Some(phone) = &patch.phone {
        let wanted = phone.as_ref().map(Phone::as_str);
        let new = || new_contact_method(PHONE, MOBILE, wanted.unwrap_or_default());
        item_steps(
            &mut steps,
            CONTACT_METHODS,
            "phone",
            &contact_methods(record, PHONE),
            is_phone,
            wanted,
            new,
        );
    }
    if let Some(email) = &patch.email {
        let wanted = email.as_ref().map(Email::as_str);
        let new = || new_contact_method(EMAIL, HOME_EMAIL, wanted.unwrap_or_default());
        item_steps(
            &mut steps,
            CONTACT_METHODS,
            "email",
            &contact_methods(record, EMAIL),
            is_email,
            wanted,
            new,
        );
    }
    if let (Some(type_id), Some(licence)) = (licence, &patch.drivers_license) {
        let wanted = licence.as_deref();
        let new = || new_extension(type_id, wanted.unwrap_or_default());
        item_steps(
            &mut steps,
            EXTENSIONS,
            "drivers_license",
            &extensions(record, type_id),
            |_| true,
            wanted,
            new,
        );
    }
    steps
}

/// The writes for one of our fields kept as items of a list: change the one we show (or the
/// first when none is usable), add one when there is none, remove them all when cleared (else
/// the next one would show as the field).
fn item_steps(
    steps: &mut Vec<Step>,
    list: &'static str,
    field: &'static str,
    held: &[&Map<String, Value>],
    usable: impl Fn(&str) -> bool,
    wanted: Option<&str>,
    new: impl Fn() -> Value,
) {
    let Some(wanted) = wanted else {
        steps.extend(held.iter().filter_map(|item| {
            Some(Step::Remove {
                list,
                item: item_id(item)?,
            })
        }));
        return;
    };
    let shown = pick(held, usable).or_else(|| {
        held.iter()
            .copied()
            .find(|i| i.get("Default").and_then(Value::as_bool) == Some(true))
            .or_else(|| held.first().copied())
    });
    match shown.and_then(|item| Some((item, item_id(item)?))) {
        Some((item, _)) if value_of(item) == Some(wanted) => {}
        Some((item, id)) => {
            let mut body = item.clone();
            body.insert("Value".into(), json!(wanted));
            steps.push(Step::Change {
                list,
                field,
                item: id,
                body: Value::Object(body),
            });
        }
        None => steps.push(Step::Add {
            list,
            field,
            body: new(),
        }),
    }
}

/// Keeps our copy of the record as Cova holds it after `step`, from its answer (the core
/// customer, the item) or, when the answer has no object, from what was sent.
pub(super) fn apply(record: &mut Map<String, Value>, step: &Step, answer: &Value) {
    let answered = answer.as_object();
    match step {
        Step::Core(sent) => {
            for (key, value) in answered.unwrap_or(sent) {
                if !NESTED.contains(&key.as_str()) {
                    record.insert(key.clone(), value.clone());
                }
            }
        }
        Step::Add { list, body, .. } => {
            let item = answered.map_or_else(|| body.clone(), |a| Value::Object(a.clone()));
            if let Some(items) = list_of(record, list) {
                items.push(item);
            }
        }
        Step::Change {
            list, item, body, ..
        } => {
            let changed = answered.map_or_else(|| body.clone(), |a| Value::Object(a.clone()));
            for slot in list_of(record, list).into_iter().flatten() {
                if slot.as_object().and_then(item_id).as_deref() == Some(item.as_str()) {
                    *slot = changed.clone();
                }
            }
        }
        Step::Remove { list, item } => {
            if let Some(items) = list_of(record, list) {
                items.retain(|slot| {
                    slot.as_object().and_then(item_id).as_deref() != Some(item.as_str())
                });
            }
        }
    }
}

fn list_of<'a>(record: &'a mut Map<String, Value>, list: &str) -> Option<&'a mut Vec<Value>> {
    let slot = record
        .entry(list.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
}

// --- errors -----------------------------------------------------------------------------------

/// Cova's own names of the core fields that are ours.
const CORE_FIELDS: [(&str, &str); 4] = [
    ("PrimaryName", "first_name"),
    ("FamilyName", "last_name"),
    ("DateOfBirth", "birthday"),
    ("Notes", "notes"),
];

/// The index in `list[i]` of a model-state key (`customer.contactmethods[1].value`).
fn index_in(key: &str, list: &str) -> Option<usize> {
    let rest = key.split(&format!("{list}[")).nth(1)?;
    rest.split(']').next()?.parse().ok()
}

/// Our field for one of Cova's model-state keys, given what the write carried.
fn field_of(key: &str, carried: &Carried) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    let last = key.rsplit('.').next().unwrap_or(&key);
    if let Some(i) = index_in(&key, "contactmethods") {
        return (last == "value").then(|| carried.contact_methods.get(i).copied())?;
    }
    if let Some(i) = index_in(&key, "customerextensions") {
        return (last == "value").then(|| carried.extensions.get(i).copied())?;
    }
    if key.starts_with("contactmethod.") || key.starts_with("customerextension.") {
        return if last == "value" { carried.item } else { None };
    }
    CORE_FIELDS
        .into_iter()
        .find(|(theirs, _)| theirs.eq_ignore_ascii_case(last))
        .map(|(_, ours)| ours)
}

/// Our message for one of Cova's: the contract's wording, never Cova's text (it may quote the
/// customer's value).
fn message_for(field: &str, text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if lower.contains("required") {
        return FieldError::Blank.to_string();
    }
    let max = lower
        .split("maximum length")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .find(|digits| !digits.is_empty())
        })
        .and_then(|digits| digits.parse::<usize>().ok());
    if let Some(max) = max {
        return FieldError::TooLong(max).to_string();
    }
    match field {
        "birthday" => FieldError::InvalidDate,
        _ => FieldError::Invalid,
    }
    .to_string()
}

/// The field errors of Cova's 400 on our fields. Cova's 400 body is a gap: the double answers
/// ASP.NET's model state (`{"Message", "ModelState": {"customer.PrimaryName": [..]}}`), read
/// here; a bare `{"Message"}` is read for one of Cova's field names in it. Empty when none is
/// ours (a `CustomerTypeId` or `Version` refused is not the kiosk's to fix).
pub(super) fn field_errors(body: &Value, carried: &Carried) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    let state = body.as_object().and_then(|o| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("ModelState"))
            .and_then(|(_, v)| v.as_object())
    });
    if let Some(state) = state {
        for (key, messages) in state {
            let Some(field) = field_of(key, carried) else {
                continue;
            };
            let text = match messages {
                Value::Array(list) => list.iter().find_map(Value::as_str).unwrap_or_default(),
                Value::String(text) => text,
                _ => "",
            };
            errors.add_message(field, message_for(field, text));
        }
        return errors;
    }
    let message = ["Message", "message"]
        .into_iter()
        .find_map(|key| body.get(key)?.as_str())
        .unwrap_or_default();
    for (theirs, ours) in CORE_FIELDS {
        let named = message
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word == theirs);
        if named {
            errors.add_message(ours, message_for(ours, message));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use domain::{CustomerForm, Input};

    fn ann() -> NewCustomer {
        let form = CustomerForm {
            first_name: Input::Text("Ann".into()),
            last_name: Input::Text("Lee".into()),
            birthday: Input::Text("03/07/1989".into()),
            phone: Input::Text("(555) 123-4567".into()),
            email: Input::Text("Ann@Example.com".into()),
            drivers_license: Input::Text("D1234567".into()),
            gender: Input::Text("F".into()),
            notes: Input::Text("likes edibles".into()),
        };
        NewCustomer::parse(&form, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).unwrap()
    }

    #[test]
    fn a_new_customer_goes_out_with_nested_contact_methods_and_do_not_contact_false() {
        let (body, carried) = create_body(&ann(), Some(17));
        assert_eq!(
            body,
            json!({
                "PrimaryName": "Ann", "FamilyName": "Lee", "CustomerTypeId": 2,
                "DateOfBirth": "1989-03-07", "Notes": "likes edibles",
                "Disabled": false, "DoNotContact": false,
                "ContactMethods": [
                    {"ContactMethodCategoryId": 1, "ContactMethodTypeId": 3, "Value": "(555) 123-4567", "Default": true},
                    {"ContactMethodCategoryId": 2, "ContactMethodTypeId": 9, "Value": "Ann@Example.com", "Default": true},
                ],
                "CustomerExtensions": [{"ExtensionTypeId": 17, "Value": "D1234567"}],
            })
        );
        assert_eq!(carried.contact_methods, ["phone", "email"]);
        let (without, _) = create_body(&ann(), None);
        assert!(without.get("CustomerExtensions").is_none());
    }

    #[test]
    fn a_cova_record_reads_with_its_default_contact_methods_and_flags() {
        let record = json!({
            "Id": "0b1c2d3e-0000-4000-8000-000000000001", "PrimaryName": "Kathleen",
            "FamilyName": "Scott", "DateOfBirth": "1952-07-23T12:00:00.000", "Notes": " ",
            "Disabled": true, "MergedIntoCustomerId": null,
            "ContactMethods": [
                {"Id": 1, "ContactMethodCategoryId": 1, "ContactMethodTypeId": 3, "Value": "n/a"},
                {"Id": 2, "ContactMethodCategoryId": 1, "ContactMethodTypeId": 3, "Value": "555.000.1111"},
                {"Id": 3, "ContactMethodCategoryId": 1, "ContactMethodTypeId": 3, "Value": "(555) 123-4567", "Default": true},
                {"Id": 4, "ContactMethodCategoryId": 2, "ContactMethodTypeId": 9, "Value": "k@example.com"},
            ],
            "CustomerExtensions": [{"Id": 9, "ExtensionTypeId": 17, "Value": "LIC744"}],
        });
        let c = customer(&record, Some(17)).unwrap();
        assert_eq!(c.phone.unwrap().as_str(), "555-123-4567");
        assert_eq!(c.email.unwrap().as_str(), "k@example.com");
        assert_eq!(c.birthday, NaiveDate::from_ymd_opt(1952, 7, 23));
        assert_eq!(c.status.as_str(), "INACTIVE");
        assert_eq!(c.notes, None);
        assert_eq!(c.drivers_license.as_deref(), Some("LIC744"));
        assert_eq!(customer(&record, None).unwrap().drivers_license, None);
        let mut merged = record.clone();
        merged["MergedIntoCustomerId"] = json!("0b1c2d3e-0000-4000-8000-000000000002");
        assert_eq!(customer(&merged, None).unwrap().status.as_str(), "MERGED");
        merged["MergedIntoCustomerId"] = json!(EMPTY_GUID);
        assert_eq!(customer(&merged, None).unwrap().status.as_str(), "INACTIVE");
    }

    #[test]
    fn phone_criteria_are_the_groups_every_writing_keeps() {
        let groups = |digits: &str| {
            phone_criteria(digits)
                .unwrap()
                .iter()
                .map(|c| c["Criteria"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(groups("5551234567"), ["555", "123", "4567"]);
        assert_eq!(groups("15551234567"), ["555", "123", "4567"]);
        assert_eq!(groups("442079460958"), ["0958"]);
        assert_eq!(phone_criteria("12"), None);
        let record = json!({"ContactMethods": [
            {"ContactMethodCategoryId": 1, "Value": "+1 (555) 123-4567"},
            {"ContactMethodCategoryId": 2, "Value": "A@B.co"},
        ]});
        let record = record.as_object().unwrap();
        assert!(has_phone(record, "5551234567"));
        assert!(has_phone(record, "15551234567"));
        assert!(!has_phone(record, "5551234568"));
        assert!(has_email(record, "a@b.co"));
        assert!(!has_email(record, "b@b.co"));
    }

    #[test]
    fn model_state_lands_on_our_fields_with_our_messages() {
        let carried = Carried {
            contact_methods: vec!["phone", "email"],
            extensions: vec!["drivers_license"],
            item: None,
        };
        let body = json!({"Message": "The request is invalid.", "ModelState": {
            "customer.PrimaryName": ["The PrimaryName field is required."],
            "customer.DateOfBirth": ["The value \"x\" is not valid for DateOfBirth."],
            "customer.ContactMethods[1].Value": ["The Value field is required."],
            "customer.ContactMethods[0].ContactMethodCategoryId": ["?"],
            "customer.CustomerExtensions[0].Value": ["The field Value must be a string with a maximum length of 64."],
            "customer.CustomerTypeId": ["The CustomerTypeId field is required."],
        }});
        assert_eq!(
            serde_json::to_value(field_errors(&body, &carried)).unwrap(),
            json!({
                "first_name": ["can't be blank"],
                "birthday": ["is not a valid date"],
                "email": ["can't be blank"],
                "drivers_license": ["is too long (maximum is 64 characters)"],
            })
        );
        let item = Carried {
            item: Some("phone"),
            ..Carried::default()
        };
        let one =
            json!({"ModelState": {"contactMethod.Value": ["bad"], "contactMethod.Version": ["?"]}});
        assert_eq!(
            serde_json::to_value(field_errors(&one, &item)).unwrap(),
            json!({"phone": ["is invalid"]})
        );
        let plain = json!({"Message": "FamilyName is too long: maximum length 50."});
        assert_eq!(
            serde_json::to_value(field_errors(&plain, &item)).unwrap(),
            json!({"last_name": ["is too long (maximum is 50 characters)"]})
        );
        assert!(field_errors(&json!({"Message": "The request is invalid."}), &item).is_empty());
    }

    #[test]
    fn ids_token_errors_and_apim_waits() {
        assert_eq!(
            guid("{0B1C2D3E-0000-4000-8000-000000000001}"),
            Some("0B1C2D3E-0000-4000-8000-000000000001")
        );
        for nobody in ["424242424242", "5f0c0ffee0ddba11c0ffee00", "x/../y", ""] {
            assert_eq!(guid(nobody), None, "{nobody}");
        }
        assert!(refused_credentials(400, &json!({"error": "invalid_grant"})));
        assert!(refused_credentials(401, &Value::Null));
        assert!(!refused_credentials(
            400,
            &json!({"error": "unsupported_grant_type"})
        ));
        assert_eq!(
            apim_wait(
                &json!({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 42 seconds."})
            ),
            Some(Duration::from_secs(42))
        );
        assert_eq!(apim_wait(&json!({"Message": "slow down"})), None);
    }
}
