//! BLAZE's member JSON, and every conversion between it and our customer, in one place (see
//! docs/vendors/blaze.md for the sources). Where vendors.md is silent, the choice is in the
//! [`unverified`] module below and nowhere else.
//!
//! BLAZE calls customers "members". A member is read leniently (one odd value drops that
//! value, never the member) and written back WHOLE on update: BLAZE's `PUT members/{id}`
//! replaces the member, so [`update_body`] starts from the member as read and changes only
//! the fields the kiosk named.

use chrono::{NaiveDate, NaiveTime};
use domain::{
    Customer, CustomerPatch, FieldError, Gender, NewCustomer, Phone, PosError, ValidationErrors,
};
use serde_json::{Map, Value, json};

use crate::convert::{Incoming, display_phone, present, ten_digits};

/// What the facts leave open, decided here. Each item is marked "Unverified (chosen)" and is
/// listed in docs/vendors/blaze.md with vendors.md's confidence.
pub(super) mod unverified {
    use super::*;

    /// Unverified (chosen): the integer codes of `sex` that live BLAZE data returns, taken as
    /// the declaration order of the spec's enum (`MALE`, `FEMALE`, `OTHER`), as the double has
    /// them. Names are always what we write.
    pub const SEX_CODES: [(i64, Gender); 3] =
        [(0, Gender::Male), (1, Gender::Female), (2, Gender::Other)];

    /// Unverified (chosen): the store config has no time zone, so `dob` (epoch ms at the shop's
    /// local midnight) is written at NOON UTC of the birthday. That instant falls on the same
    /// calendar day everywhere from UTC-12 to UTC+11:59 (every North American zone), so the
    /// birthday is right whether BLAZE keeps our `localDob` or derives it from `dob`; BLAZE
    /// may move `dob` to the shop's midnight itself.
    pub const DOB_TIME_UTC: NaiveTime = match NaiveTime::from_hms_opt(12, 0, 0) {
        Some(noon) => noon,
        None => NaiveTime::MIN,
    };

    /// Unverified (chosen): a new identification carries the licence number only (BLAZE's
    /// `type` values are not known; a register can complete the record).
    pub fn new_identification(licence: &str) -> Value {
        json!({ "licenseNumber": licence })
    }

    /// Unverified (chosen): the messages of "no such member" when BLAZE answers a look-up
    /// with a 400 (its argument error) rather than a 404; compared in lower case.
    pub const MISSING_MESSAGES: [&str; 4] =
        ["not found", "does not exist", "doesn't exist", "no member"];

    /// Unverified (chosen): our field for a BLAZE `field` (the older error shape), compared
    /// case-insensitively on its last dotted segment.
    pub fn field_from_wire(field: &str) -> Option<&'static str> {
        let last = field
            .rsplit('.')
            .next()
            .unwrap_or(field)
            .to_ascii_lowercase();
        Some(match last.as_str() {
            "firstname" => "first_name",
            "lastname" => "last_name",
            "email" => "email",
            "primaryphone" | "cpn" | "phone" | "phonenumber" => "phone",
            "dob" | "localdob" | "birthdate" | "birthday" => "birthday",
            "sex" | "gender" => "gender",
            "identifications" | "licensenumber" | "licencenumber" => "drivers_license",
            "notes" | "message" => "notes",
            _ => return None,
        })
    }
}

// ---- reading ----------------------------------------------------------------------------

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// `sex` as BLAZE's spec has it (`MALE`, `FEMALE`, `OTHER`, any case) or as live data returns
/// it (an integer, or its digits as text); anything else is no gender.
pub(super) fn gender_from_wire(sex: &Value) -> Option<Gender> {
    let code = match sex {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(code) => Some(code),
            Err(_) => return Gender::parse(s).ok(),
        },
        _ => None,
    }?;
    unverified::SEX_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, gender)| *gender)
}

pub(super) fn gender_to_wire(gender: Gender) -> &'static str {
    match gender {
        Gender::Male => "MALE",
        Gender::Female => "FEMALE",
        Gender::Other => "OTHER",
    }
}

/// A phone as we show it: ten digits dashed (`(555) 123-4567` and `+15551234567` are both
/// `555-123-4567`), anything else as BLAZE wrote it.
fn phone_from_wire(text: &str) -> Option<Phone> {
    let phone = display_phone(text)?;
    match ten_digits(&phone) {
        Some(ten) => display_phone(ten),
        None => Some(phone),
    }
}

/// `primaryPhone` (the display form), else `cpn` (E.164) when a register filled only that.
fn phone_of(member: &Map<String, Value>) -> Option<Phone> {
    ["primaryPhone", "cpn"]
        .into_iter()
        .filter_map(|key| present(text(member, key)))
        .find_map(phone_from_wire)
}

/// The licence: the identification whose `type` says it is a driver's licence, else the first
/// one carrying a number and no type (as ours are written). A passport or a medical card is
/// never read as the licence.
fn licence_of(member: &Map<String, Value>) -> Option<&str> {
    let identifications = member.get("identifications")?.as_array()?;
    let index = licence_index(identifications)?;
    identifications
        .get(index)
        .and_then(Value::as_object)
        .and_then(|id| present(text(id, "licenseNumber")))
}

/// Where the licence is among the identifications (see [`licence_of`]).
fn licence_index(identifications: &[Value]) -> Option<usize> {
    let is_licence_type = |id: &Value| {
        id.get("type").and_then(Value::as_str).is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t.contains("driver") || t.contains("licen")
        })
    };
    let untyped = |id: &Value| {
        id.get("type")
            .and_then(Value::as_str)
            .is_none_or(|t| t.trim().is_empty())
    };
    identifications
        .iter()
        .position(|id| carries_number(id) && is_licence_type(id))
        .or_else(|| {
            identifications
                .iter()
                .position(|id| carries_number(id) && untyped(id))
        })
}

/// The newest note: the one with the latest `created` (epoch ms); among equals, or where BLAZE
/// gives no stamp, the later in the list. Notes without a message are not notes to us.
fn newest_note(member: &Map<String, Value>) -> Option<&str> {
    member
        .get("notes")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|note| {
            let message = present(text(note, "message"))?;
            Some((note.get("created").and_then(Value::as_i64), message))
        })
        .enumerate()
        .max_by_key(|(position, (created, _))| (*created, *position))
        .map(|(_, (_, message))| message)
}

/// A member's `modified` (epoch ms), for the list's windows.
pub(super) fn modified(member: &Value) -> Option<i64> {
    member.get("modified").and_then(Value::as_i64)
}

/// One member as our customer, or why it can't be one (no id, no name). The birthday is
/// `localDob`, never `dob` (the shop's local midnight: its UTC date is the day before
/// anywhere east of UTC); `email` `""` is none.
pub(super) fn customer(value: &Value) -> Result<Customer, String> {
    let member = value.as_object().ok_or("a member is not an object")?;
    let phone = phone_of(member);
    Incoming {
        customer_id: present(text(member, "id")).map(str::to_owned),
        status: present(text(member, "status")),
        first_name: text(member, "firstName"),
        last_name: text(member, "lastName"),
        gender: member.get("sex").and_then(gender_from_wire),
        birthday: text(member, "localDob"),
        email: text(member, "email"),
        phone: phone.as_ref().map(Phone::as_str),
        drivers_license: licence_of(member),
        notes: newest_note(member),
    }
    .into_customer()
}

/// The members of an answer (the property harness reads any answer through it): a page (`{"values": [...]}`, the usable ones, each unusable one
/// skipped with a warning) or a single member.
#[cfg(test)]
pub(super) fn customers(answer: &Value) -> Result<Vec<Customer>, String> {
    match answer.get("values") {
        Some(Value::Array(values)) => Ok(crate::paging::usable(
            domain::Vendor::Blaze,
            values,
            customer,
        )),
        Some(_) => Err("`values` is not a list".to_owned()),
        None if answer.is_object() => customer(answer).map(|c| vec![c]),
        None => Err("the answer is neither a member nor a page of members".to_owned()),
    }
}

/// A page of members: the list's and the searches' `{"values", "skip", "limit", "total"}`.
pub(super) struct Page {
    pub values: Vec<Value>,
    /// The page size BLAZE served (it may serve fewer than asked).
    pub limit: Option<u64>,
    /// How many members the window (or search) holds in all.
    pub total: Option<u64>,
}

impl Page {
    /// Whether nothing is left after this answer, `read` members in: nothing came, `total` is
    /// reached, or (without a total) the answer was shorter than the page served.
    pub fn is_last(&self, read: u64, received: u64, asked: u64) -> bool {
        received == 0
            || match self.total {
                Some(total) => read >= total,
                None => received < self.limit.map_or(asked, |served| served.min(asked)),
            }
    }
}

/// A page answer; `values` must be a list, `limit` and `total` are read when they are counts.
pub(super) fn page(body: &Value) -> Result<Page, String> {
    let values = match body.get("values") {
        Some(Value::Array(values)) => values.clone(),
        _ => return Err("the answer has no list of `values`".to_owned()),
    };
    let count = |key: &str| body.get(key).and_then(Value::as_u64);
    Ok(Page {
        values,
        limit: count("limit"),
        total: count("total"),
    })
}

// ---- writing ----------------------------------------------------------------------------

/// BLAZE holds North American numbers (`primaryPhone` in the display form `(xxx) xxx-xxxx`,
/// `cpn` in E.164): `primaryPhone` and `cpn` for one, or a 422 on `phone` before any call.
fn phone_fields(phone: &Phone) -> Result<(String, String), PosError> {
    let ten = ten_digits(phone).ok_or_else(|| {
        PosError::Rejected(ValidationErrors::single("phone", FieldError::Invalid))
    })?;
    let (area, exchange, line) = (
        ten.get(..3).unwrap_or_default(),
        ten.get(3..6).unwrap_or_default(),
        ten.get(6..).unwrap_or_default(),
    );
    Ok((format!("({area}) {exchange}-{line}"), format!("+1{ten}")))
}

/// `localDob` and `dob` for a birthday, written consistently (see
/// [`unverified::DOB_TIME_UTC`]).
fn birthday_fields(date: NaiveDate) -> (String, i64) {
    let dob = date
        .and_time(unverified::DOB_TIME_UTC)
        .and_utc()
        .timestamp_millis();
    (date.format("%Y-%m-%d").to_string(), dob)
}

/// The body of `POST members`: the customer's fields and the store's consumer type; what the
/// customer does not have is left out (BLAZE's blank member has none).
pub(super) fn new_member(customer: &NewCustomer, consumer_type: &str) -> Result<Value, PosError> {
    let mut member = Map::new();
    member.insert("firstName".into(), json!(customer.first_name.as_str()));
    member.insert("lastName".into(), json!(customer.last_name.as_str()));
    if let Some(email) = &customer.email {
        member.insert("email".into(), json!(email.as_str()));
    }
    if let Some(phone) = &customer.phone {
        let (primary, cpn) = phone_fields(phone)?;
        member.insert("primaryPhone".into(), json!(primary));
        member.insert("cpn".into(), json!(cpn));
    }
    if let Some(date) = customer.birthday {
        let (local, dob) = birthday_fields(date);
        member.insert("localDob".into(), json!(local));
        member.insert("dob".into(), json!(dob));
    }
    if let Some(gender) = customer.gender {
        member.insert("sex".into(), json!(gender_to_wire(gender)));
    }
    if let Some(licence) = &customer.drivers_license {
        member.insert(
            "identifications".into(),
            json!([unverified::new_identification(licence)]),
        );
    }
    if let Some(notes) = &customer.notes {
        member.insert("notes".into(), json!([{ "message": notes }]));
    }
    member.insert("consumerType".into(), json!(consumer_type));
    Ok(Value::Object(member))
}

/// The body of `PUT members/{id}`: the member exactly as BLAZE gave it, with only the fields
/// the patch names changed. BLAZE's PUT replaces the whole member, so everything else (its
/// middle name, address, consumer type, other identifications, older notes, an integer `sex`,
/// fields we do not know) goes back as it came.
///
/// - `email`: cleared as `""`, BLAZE's "none".
/// - `phone`: `primaryPhone` and `cpn` together; cleared as `""` both. A member whose number
///   is only in `cpn` gets it in `primaryPhone` too, since BLAZE may derive `cpn` from it.
/// - `birthday`: `localDob` and `dob` together; cleared, both null and the legacy `birthdate`
///   too.
/// - `drivers_license`: set in the identification it was read from (its state, type and
///   expiry kept), or a new one; cleared, every identification carrying a number goes (each
///   would read as the licence).
/// - `notes`: a new note is appended (BLAZE keeps a history; ours is the newest), unless the
///   newest already says the same; cleared, every note goes.
pub(super) fn update_body(
    member: &Map<String, Value>,
    patch: &CustomerPatch,
) -> Result<Value, PosError> {
    let mut member = member.clone();
    if let Some(name) = &patch.first_name {
        member.insert("firstName".into(), json!(name.as_str()));
    }
    if let Some(name) = &patch.last_name {
        member.insert("lastName".into(), json!(name.as_str()));
    }
    if let Some(gender) = patch.gender {
        member.insert("sex".into(), json!(gender.map(gender_to_wire)));
    }
    if let Some(email) = &patch.email {
        member.insert(
            "email".into(),
            json!(email.as_ref().map_or("", |e| e.as_str())),
        );
    }
    match &patch.phone {
        Some(phone) => {
            let (primary, cpn) = match phone {
                Some(phone) => phone_fields(phone)?,
                None => (String::new(), String::new()),
            };
            member.insert("primaryPhone".into(), json!(primary));
            member.insert("cpn".into(), json!(cpn));
        }
        None => keep_phone(&mut member),
    }
    if let Some(birthday) = patch.birthday {
        match birthday {
            Some(date) => {
                let (local, dob) = birthday_fields(date);
                member.insert("localDob".into(), json!(local));
                member.insert("dob".into(), json!(dob));
            }
            None => {
                for key in ["localDob", "dob", "birthdate"] {
                    member.insert(key.into(), Value::Null);
                }
            }
        }
    }
    if let Some(licence) = &patch.drivers_license {
        set_licence(&mut member, licence.as_deref());
    }
    if let Some(notes) = &patch.notes {
        set_notes(&mut member, notes.as_deref());
    }
    Ok(Value::Object(member))
}

/// A number held only in `cpn` is written to `primaryPhone` too, so a BLAZE that derives
/// `cpn` from `primaryPhone` on a PUT does not lose it.
fn keep_phone(member: &mut Map<String, Value>) {
    if present(text(member, "primaryPhone")).is_some() {
        return;
    }
    let fields = present(text(member, "cpn"))
        .and_then(|cpn| Phone::parse(cpn).ok())
        .and_then(|phone| phone_fields(&phone).ok());
    if let Some((primary, cpn)) = fields {
        member.insert("primaryPhone".into(), json!(primary));
        member.insert("cpn".into(), json!(cpn));
    }
}

/// Changes the list under `key` (absent or not a list: an empty one); the list is written
/// back only when it existed or now holds something, so a member without one keeps none.
fn with_list(member: &mut Map<String, Value>, key: &str, change: impl FnOnce(&mut Vec<Value>)) {
    let existed = member.contains_key(key);
    let mut items = match member.remove(key) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    change(&mut items);
    if existed || !items.is_empty() {
        member.insert(key.to_owned(), Value::Array(items));
    }
}

fn carries_number(identification: &Value) -> bool {
    identification
        .as_object()
        .is_some_and(|id| present(text(id, "licenseNumber")).is_some())
}

/// Sets or clears the licence in the identification it is read from; the others (a passport,
/// a medical card) are the member's and stay.
fn set_licence(member: &mut Map<String, Value>, licence: Option<&str>) {
    with_list(member, "identifications", |identifications| {
        let index = licence_index(identifications);
        match (licence, index) {
            (None, Some(index)) => {
                identifications.remove(index);
            }
            (None, None) => {}
            (Some(licence), Some(index)) => {
                if let Some(id) = identifications
                    .get_mut(index)
                    .and_then(Value::as_object_mut)
                {
                    id.insert("licenseNumber".into(), json!(licence));
                }
            }
            (Some(licence), None) => {
                identifications.push(unverified::new_identification(licence));
            }
        }
    });
}

fn set_notes(member: &mut Map<String, Value>, note: Option<&str>) {
    match note {
        None => {
            member.insert("notes".into(), json!([]));
        }
        Some(note) => {
            if newest_note(member) == Some(note) {
                return;
            }
            with_list(member, "notes", |notes| {
                notes.push(json!({ "message": note }))
            });
        }
    }
}

// ---- errors -----------------------------------------------------------------------------

/// BLAZE's error `message`, from either of its shapes (`{"error","message","status"}`,
/// `{"field","message","errorType"}`).
pub(super) fn message(body: &Value) -> Option<&str> {
    body.get("message").and_then(Value::as_str)
}

/// Whether a 400 says "no such member" (BLAZE's argument error for an unknown id or e-mail).
pub(super) fn says_missing(body: &Value) -> bool {
    message(body).is_some_and(|m| {
        let lower = m.to_lowercase();
        unverified::MISSING_MESSAGES
            .iter()
            .any(|missing| lower.contains(missing))
    })
}

/// A refusal as an error on one of our fields, when it names one (`field`, the older shape);
/// the message is the contract's, never BLAZE's text (which may quote the customer's value).
pub(super) fn field_errors(body: &Value) -> Option<ValidationErrors> {
    let field = body
        .get("field")
        .and_then(Value::as_str)
        .and_then(unverified::field_from_wire)?;
    let lower = message(body).unwrap_or_default().to_lowercase();
    let too_long = lower
        .split(|c: char| !c.is_ascii_digit())
        .find(|digits| !digits.is_empty())
        .and_then(|digits| digits.parse::<usize>().ok())
        .filter(|_| {
            lower.contains("long") || lower.contains("maximum") || lower.contains("exceed")
        });
    let error = if lower.contains("required") || lower.contains("blank") || lower.contains("empty")
    {
        FieldError::Blank
    } else if let Some(max) = too_long {
        FieldError::TooLong(max)
    } else {
        match field {
            "birthday" => FieldError::InvalidDate,
            "gender" => FieldError::NotInList,
            _ => FieldError::Invalid,
        }
    };
    Some(ValidationErrors::single(field, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{CustomerForm, Email, Input, PersonName};

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default()
    }

    #[test]
    fn the_real_member_shape_reads_as_our_customer() {
        let c = customer(&json!({
            "id": "5f0c0ffee0ddba11c0ffee01", "firstName": "Kathleen", "lastName": "Scott",
            "middleName": "", "email": "", "primaryPhone": "(555) 123-4567",
            "cpn": "+15551234567", "dob": 636_274_800_000_i64, "localDob": "1990-03-01",
            "birthdate": null, "sex": 1, "status": "Active", "consumerType": "AdultUse",
            "notes": [{"message": "old", "created": 1}, {"message": "new", "created": 2},
                      {"message": "  ", "created": 3}],
            "identifications": [{"licenseNumber": ""}, {"licenseNumber": "D1234567", "state": "CA"}],
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.customer_id.as_str(), "5f0c0ffee0ddba11c0ffee01");
        assert_eq!(c.status.as_str(), "ACTIVE");
        assert_eq!(c.email, None);
        assert_eq!(
            c.phone.map(|p| p.as_str().to_owned()).as_deref(),
            Some("555-123-4567")
        );
        assert_eq!(c.birthday, NaiveDate::from_ymd_opt(1990, 3, 1));
        assert_eq!(c.gender, Some(Gender::Female));
        assert_eq!(c.drivers_license.as_deref(), Some("D1234567"));
        assert_eq!(c.notes.as_deref(), Some("new"));
    }

    #[test]
    fn sex_reads_as_a_name_or_a_code() {
        for (sex, want) in [
            (json!("MALE"), Some(Gender::Male)),
            (json!("female"), Some(Gender::Female)),
            (json!(2), Some(Gender::Other)),
            (json!("0"), Some(Gender::Male)),
            (json!(7), None),
            (json!(null), None),
            (json!("UNKNOWN"), None),
        ] {
            assert_eq!(gender_from_wire(&sex), want, "{sex}");
        }
    }

    #[test]
    fn a_phone_only_in_cpn_is_read_and_kept() {
        let member = json!({"id": "a", "firstName": "A", "lastName": "B", "primaryPhone": "",
                            "cpn": "+15557778888"});
        let c = customer(&member).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.phone.map(|p| p.as_str().to_owned()).as_deref(),
            Some("555-777-8888")
        );
        let body = update_body(
            member.as_object().unwrap_or(&Map::new()),
            &CustomerPatch::default(),
        )
        .unwrap_or_default();
        assert_eq!(body["primaryPhone"], "(555) 777-8888");
        assert_eq!(body["cpn"], "+15557778888");
    }

    #[test]
    fn a_new_member_writes_dob_and_local_dob_together() {
        let form = CustomerForm {
            first_name: Input::Text("Ann".into()),
            last_name: Input::Text("Lee".into()),
            birthday: Input::Text("1989-03-07".into()),
            phone: Input::Text("+1 (555) 123-4567".into()),
            gender: Input::Text("f".into()),
            email: Input::Text("Ann@Example.com".into()),
            drivers_license: Input::Text("D1".into()),
            notes: Input::Text("hi".into()),
        };
        let new = NewCustomer::parse(&form, today()).unwrap_or_else(|e| panic!("{e:?}"));
        let body = new_member(&new, "AdultUse").unwrap_or_default();
        assert_eq!(
            body,
            json!({"firstName": "Ann", "lastName": "Lee", "email": "Ann@Example.com",
                   "primaryPhone": "(555) 123-4567", "cpn": "+15551234567",
                   "localDob": "1989-03-07", "dob": 605_275_200_000_i64, "sex": "FEMALE",
                   "identifications": [{"licenseNumber": "D1"}], "notes": [{"message": "hi"}],
                   "consumerType": "AdultUse"})
        );
        let abroad = NewCustomer {
            phone: Phone::parse("+44 20 7946 0958").ok(),
            ..new
        };
        assert_eq!(
            new_member(&abroad, "AdultUse"),
            Err(PosError::Rejected(ValidationErrors::single(
                "phone",
                FieldError::Invalid
            )))
        );
    }

    #[test]
    fn an_update_changes_only_what_the_patch_names() {
        let member = json!({
            "id": "x", "firstName": "A", "lastName": "B", "middleName": "M", "email": "a@b.co",
            "sex": 1, "importId": "ext-1", "address": {"city": "LA"},
            "notes": [{"message": "keep", "created": 5}],
            "identifications": [{"licenseNumber": "OLD", "state": "CA", "type": "Drivers"},
                                {"licenseNumber": "P9", "type": "Passport"}],
        });
        let member = member.as_object().cloned().unwrap_or_default();
        let patch = CustomerPatch {
            last_name: PersonName::parse("C").ok(),
            email: Some(None),
            drivers_license: Some(Some("NEW".into())),
            notes: Some(Some("added".into())),
            ..Default::default()
        };
        let body = update_body(&member, &patch).unwrap_or_default();
        assert_eq!(body["lastName"], "C");
        assert_eq!(body["email"], "");
        assert_eq!(body["sex"], 1, "an integer sex goes back as it came");
        for kept in ["firstName", "middleName", "importId", "address"] {
            assert_eq!(body[kept], member[kept], "{kept}");
        }
        assert_eq!(
            body["identifications"],
            json!([{"licenseNumber": "NEW", "state": "CA", "type": "Drivers"},
                   {"licenseNumber": "P9", "type": "Passport"}])
        );
        assert_eq!(
            body["notes"],
            json!([{"message": "keep", "created": 5}, {"message": "added"}])
        );
        let cleared = CustomerPatch {
            drivers_license: Some(None),
            notes: Some(None),
            email: Some(Email::parse("new@b.co").ok()),
            ..Default::default()
        };
        let body = update_body(&member, &cleared).unwrap_or_default();
        assert_eq!(
            body["identifications"],
            json!([{"licenseNumber": "P9", "type": "Passport"}]),
            "the passport is the member's"
        );
        assert_eq!(body["notes"], json!([]));
        assert_eq!(body["email"], "new@b.co");
    }

    #[test]
    fn field_errors_land_on_our_fields_with_our_messages() {
        let error =
            |body: Value| field_errors(&body).map(|e| serde_json::to_value(e).unwrap_or_default());
        assert_eq!(
            error(
                json!({"field": "lastName", "message": "Last name is required.", "errorType": "Invalid argument"})
            ),
            Some(json!({"last_name": ["can't be blank"]}))
        );
        assert_eq!(
            error(json!({"field": "primaryPhone", "message": "Invalid phone number."})),
            Some(json!({"phone": ["is invalid"]}))
        );
        assert_eq!(
            error(json!({"field": "localDob", "message": "localDob must be yyyy-MM-dd."})),
            Some(json!({"birthday": ["is not a valid date"]}))
        );
        assert_eq!(
            error(
                json!({"field": "member.firstName", "message": "First name is too long (max 50)"})
            ),
            Some(json!({"first_name": ["is too long (maximum is 50 characters)"]}))
        );
        assert_eq!(
            error(json!({"field": "consumerType", "message": "Invalid consumer type."})),
            None
        );
        assert_eq!(
            error(
                json!({"error": "Invalid argument", "message": "First name is required.", "status": 400})
            ),
            None
        );
        assert!(says_missing(
            &json!({"error": "Invalid argument", "message": "Member does not exist", "status": 400})
        ));
        assert!(!says_missing(&json!({"message": "startDate is required"})));
    }
}
