//! The customer entity and its value types. Every value type is built by `parse`, which is the
//! only way to make one, so a `NewCustomer` in hand is always valid.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use validator::ValidateEmail;

use crate::validation::{FieldError, ValidationErrors};

pub const NAME_MAX: usize = 100;
pub const DRIVERS_LICENSE_MAX: usize = 64;
pub const NOTES_MAX: usize = 2000;
const EMAIL_MAX: usize = 254;
const CUSTOMER_ID_MAX: usize = 128;

/// What text may hold: one line (names, e-mail, phone, licence, status) or several (notes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    SingleLine,
    MultiLine,
}

impl TextKind {
    /// Whether `c` may stay in text of this kind: no control character (C0 with NUL, DEL,
    /// C1), except that notes keep line breaks and tabs. The one rule for what we store and
    /// show, whoever sent it: a kiosk's input with anything else is refused, a vendor's is
    /// cleaned ([`plain_text`]).
    pub fn allows(self, c: char) -> bool {
        !c.is_control() || (self == TextKind::MultiLine && matches!(c, '\n' | '\r' | '\t'))
    }
}

/// Text from outside (a vendor's answer) as we can store and show it: every character
/// [`TextKind::allows`] refuses is taken out, so no mirror row fails to store (PostgreSQL's
/// text cannot hold NUL) and no escape reaches a kiosk's screen or an operator's terminal.
/// A refused character that separates words (a tab, a line or page break) becomes one space,
/// so `"Ann\nMarie"` does not become `"AnnMarie"`. Borrowed when there is nothing to take out.
pub fn plain_text(text: &str, kind: TextKind) -> Cow<'_, str> {
    if text.chars().all(|c| kind.allows(c)) {
        return Cow::Borrowed(text);
    }
    let mut plain = String::with_capacity(text.len());
    for c in text.chars() {
        if kind.allows(c) {
            plain.push(c);
        } else if c.is_whitespace() && !plain.ends_with(' ') {
            plain.push(' ');
        }
    }
    Cow::Owned(plain)
}

/// A first or last name: trimmed, not blank, at most 100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(FieldError::Blank);
        }
        if trimmed.chars().count() > NAME_MAX {
            return Err(FieldError::TooLong(NAME_MAX));
        }
        if !trimmed.chars().all(|c| TextKind::SingleLine.allows(c)) {
            return Err(FieldError::Invalid);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address; matched case-insensitively through [`Email::match_key`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let trimmed = text.trim();
        if trimmed.chars().count() > EMAIL_MAX || !trimmed.validate_email() {
            return Err(FieldError::Invalid);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two addresses are compared in.
    pub fn match_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A phone number as the customer gave it, with the digits it is matched on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone {
    text: String,
    digits: String,
}

impl Phone {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let trimmed = text.trim();
        let digits = Self::digits_of(trimmed).ok_or(FieldError::Invalid)?;
        Ok(Self {
            text: trimmed.to_owned(),
            digits,
        })
    }

    /// The 10 to 15 digits of a phone number once spaces, dashes, dots, parentheses and a
    /// leading `+` are removed; `None` when anything else is left or the count is wrong.
    pub fn digits_of(text: &str) -> Option<String> {
        let text = text.trim();
        let text = text.strip_prefix('+').unwrap_or(text);
        let mut digits = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return None,
            }
        }
        (10..=15).contains(&digits.len()).then_some(digits)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn digits(&self) -> &str {
        &self.digits
    }
}

/// Gender as the contract returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Gender {
    Male,
    Female,
    Other,
}

impl Gender {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "male" | "m" => Ok(Gender::Male),
            "female" | "f" => Ok(Gender::Female),
            "other" | "o" => Ok(Gender::Other),
            _ => Err(FieldError::NotInList),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "Male",
            Gender::Female => "Female",
            Gender::Other => "Other",
        }
    }
}

/// A birthday: a real calendar date, `YYYY-MM-DD` or `MM/DD/YYYY`, not after `today`.
pub fn parse_birthday(text: &str, today: NaiveDate) -> Result<NaiveDate, FieldError> {
    let text = text.trim();
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%m/%d/%Y"))
        .map_err(|_| FieldError::InvalidDate)?;
    // chrono accepts years far outside any plausible birthday; a four-digit year keeps the
    // output format `YYYY-MM-DD` true.
    if date.year() < 1000 {
        return Err(FieldError::InvalidDate);
    }
    if date > today {
        return Err(FieldError::Invalid);
    }
    Ok(date)
}

/// The POS's id for a customer. Opaque to us, but it goes into vendor URLs, so it is held to
/// what every vendor's ids are made of (digits, integers, UUIDs, hex and GUIDs) and URL paths
/// carry as they are: ASCII letters, digits, `-`, `_`, `.`, `~` and `:`, and never only dots
/// (`.` and `..` are path segments a URL builder resolves away, reaching the collection).
/// Bounded so a path cannot carry a novel.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerId(String);

impl CustomerId {
    pub fn parse(text: &str) -> Option<Self> {
        let ok = !text.is_empty()
            && text.len() <= CUSTOMER_ID_MAX
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | ':'))
            && !text.chars().all(|c| c == '.');
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CustomerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A customer's status, upper case (`ACTIVE`, `INACTIVE`, ...). Any text a vendor sends is
/// one, cleaned of control characters; deserialising goes through [`CustomerStatus::new`] too.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct CustomerStatus(String);

impl From<String> for CustomerStatus {
    fn from(text: String) -> Self {
        Self::new(&text)
    }
}

impl From<CustomerStatus> for String {
    fn from(status: CustomerStatus) -> Self {
        status.0
    }
}

impl CustomerStatus {
    pub fn new(text: &str) -> Self {
        let upper = plain_text(text, TextKind::SingleLine)
            .trim()
            .to_ascii_uppercase();
        if upper.is_empty() {
            Self::active()
        } else {
            Self(upper)
        }
    }

    pub fn active() -> Self {
        Self("ACTIVE".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A customer as the POS knows it. Field order is the contract's response order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub status: CustomerStatus,
    pub customer_id: CustomerId,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub gender: Option<Gender>,
    pub birthday: Option<NaiveDate>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub drivers_license: Option<String>,
    pub notes: Option<String>,
}

impl Customer {
    /// What a create must not repeat.
    pub fn duplicate_keys(&self) -> crate::ports::DuplicateKeys {
        duplicate_keys(
            self.email.as_ref(),
            self.phone.as_ref(),
            self.drivers_license.as_deref(),
        )
    }

    /// Applies a patch the way a POS that stores every field would.
    pub fn apply(&mut self, patch: &CustomerPatch) {
        if let Some(v) = &patch.first_name {
            self.first_name = v.clone();
        }
        if let Some(v) = &patch.last_name {
            self.last_name = v.clone();
        }
        if let Some(v) = patch.gender {
            self.gender = v;
        }
        if let Some(v) = patch.birthday {
            self.birthday = v;
        }
        if let Some(v) = &patch.email {
            self.email = v.clone();
        }
        if let Some(v) = &patch.phone {
            self.phone = v.clone();
        }
        if let Some(v) = &patch.drivers_license {
            self.drivers_license = v.clone();
        }
        if let Some(v) = &patch.notes {
            self.notes = v.clone();
        }
    }
}

fn duplicate_keys(
    email: Option<&Email>,
    phone: Option<&Phone>,
    license: Option<&str>,
) -> crate::ports::DuplicateKeys {
    crate::ports::DuplicateKeys {
        email: email.map(Email::match_key),
        phone_digits: phone.map(|p| p.digits().to_owned()),
        drivers_license: license.map(license_match_key),
    }
}

/// Licences are compared without case or inner spaces and dashes.
pub fn license_match_key(license: &str) -> String {
    license
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .flat_map(char::to_uppercase)
        .collect()
}

/// A valid customer to create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCustomer {
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub gender: Option<Gender>,
    pub birthday: Option<NaiveDate>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub drivers_license: Option<String>,
    pub notes: Option<String>,
}

impl NewCustomer {
    pub fn parse(form: &CustomerForm, today: NaiveDate) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let first_name = required_name(&mut errors, "first_name", &form.first_name);
        let last_name = required_name(&mut errors, "last_name", &form.last_name);
        let optional = OptionalFields::parse(&mut errors, form, today);
        match (first_name, last_name) {
            (Some(first_name), Some(last_name)) if errors.is_empty() => Ok(Self {
                first_name,
                last_name,
                gender: optional.gender.flatten(),
                birthday: optional.birthday.flatten(),
                email: optional.email.flatten(),
                phone: optional.phone.flatten(),
                drivers_license: optional.drivers_license.flatten(),
                notes: optional.notes.flatten(),
            }),
            _ => Err(errors),
        }
    }

    pub fn duplicate_keys(&self) -> crate::ports::DuplicateKeys {
        duplicate_keys(
            self.email.as_ref(),
            self.phone.as_ref(),
            self.drivers_license.as_deref(),
        )
    }

    /// The customer this becomes once a POS has given it an id.
    pub fn into_customer(self, customer_id: CustomerId, status: CustomerStatus) -> Customer {
        Customer {
            status,
            customer_id,
            first_name: self.first_name,
            last_name: self.last_name,
            gender: self.gender,
            birthday: self.birthday,
            email: self.email,
            phone: self.phone,
            drivers_license: self.drivers_license,
            notes: self.notes,
        }
    }
}

/// A valid change to a customer. `None` leaves a field alone; `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerPatch {
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub gender: Option<Option<Gender>>,
    pub birthday: Option<Option<NaiveDate>>,
    pub email: Option<Option<Email>>,
    pub phone: Option<Option<Phone>>,
    pub drivers_license: Option<Option<String>>,
    pub notes: Option<Option<String>>,
}

impl CustomerPatch {
    /// PATCH: only the fields present change; names can't be blanked.
    pub fn parse_partial(form: &CustomerForm, today: NaiveDate) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let first_name = optional_name(&mut errors, "first_name", &form.first_name);
        let last_name = optional_name(&mut errors, "last_name", &form.last_name);
        let optional = OptionalFields::parse(&mut errors, form, today);
        errors.into_result(|| Self {
            first_name,
            last_name,
            gender: optional.gender,
            birthday: optional.birthday,
            email: optional.email,
            phone: optional.phone,
            drivers_license: optional.drivers_license,
            notes: optional.notes,
        })
    }

    /// PUT: a full replacement; names required, absent optional fields are cleared.
    pub fn parse_full(form: &CustomerForm, today: NaiveDate) -> Result<Self, ValidationErrors> {
        let new = NewCustomer::parse(form, today)?;
        Ok(Self {
            first_name: Some(new.first_name),
            last_name: Some(new.last_name),
            gender: Some(new.gender),
            birthday: Some(new.birthday),
            email: Some(new.email),
            phone: Some(new.phone),
            drivers_license: Some(new.drivers_license),
            notes: Some(new.notes),
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One raw input field as it arrived, before parsing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Input {
    #[default]
    Absent,
    Null,
    Text(String),
    /// A value of the wrong JSON type (an object, a list, a boolean).
    NotText,
}

/// The raw customer object of a request; [`NewCustomer::parse`] and the `CustomerPatch`
/// parsers turn it into domain values, gathering every field's errors at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerForm {
    pub first_name: Input,
    pub last_name: Input,
    pub gender: Input,
    pub birthday: Input,
    pub email: Input,
    pub phone: Input,
    pub drivers_license: Input,
    pub notes: Input,
}

fn required_name(errors: &mut ValidationErrors, field: &str, input: &Input) -> Option<PersonName> {
    match input {
        Input::Absent | Input::Null => {
            errors.add(field, FieldError::Blank);
            None
        }
        _ => optional_name(errors, field, input),
    }
}

fn optional_name(errors: &mut ValidationErrors, field: &str, input: &Input) -> Option<PersonName> {
    match input {
        Input::Absent => None,
        Input::Null => {
            errors.add(field, FieldError::Blank);
            None
        }
        Input::NotText => {
            errors.add(field, FieldError::Invalid);
            None
        }
        Input::Text(text) => PersonName::parse(text)
            .map_err(|e| errors.add(field, e))
            .ok(),
    }
}

/// The optional fields, each `None` (absent), `Some(None)` (null or blank: clear) or
/// `Some(Some(v))`.
struct OptionalFields {
    gender: Option<Option<Gender>>,
    birthday: Option<Option<NaiveDate>>,
    email: Option<Option<Email>>,
    phone: Option<Option<Phone>>,
    drivers_license: Option<Option<String>>,
    notes: Option<Option<String>>,
}

impl OptionalFields {
    fn parse(errors: &mut ValidationErrors, form: &CustomerForm, today: NaiveDate) -> Self {
        Self {
            gender: optional(errors, "gender", &form.gender, Gender::parse),
            birthday: optional(errors, "birthday", &form.birthday, |t| {
                parse_birthday(t, today)
            }),
            email: optional(errors, "email", &form.email, Email::parse),
            phone: optional(errors, "phone", &form.phone, Phone::parse),
            drivers_license: optional(errors, "drivers_license", &form.drivers_license, |t| {
                bounded_text(t, DRIVERS_LICENSE_MAX)
            }),
            notes: optional(errors, "notes", &form.notes, |t| bounded_text(t, NOTES_MAX)),
        }
    }
}

fn bounded_text(text: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = text.trim();
    if trimmed.chars().count() > max {
        return Err(FieldError::TooLong(max));
    }
    // Line breaks and tabs are text; other control characters are not, and PostgreSQL cannot
    // store NUL at all: refused here, before any POS holds a customer the mirror cannot.
    if !trimmed.chars().all(|c| TextKind::MultiLine.allows(c)) {
        return Err(FieldError::Invalid);
    }
    Ok(trimmed.to_owned())
}

/// A blank string clears an optional field like `null` does: kiosk forms send `""` for an
/// empty box, and refusing it would help no one.
fn optional<T>(
    errors: &mut ValidationErrors,
    field: &str,
    input: &Input,
    parse: impl FnOnce(&str) -> Result<T, FieldError>,
) -> Option<Option<T>> {
    match input {
        Input::Absent => None,
        Input::Null => Some(None),
        Input::Text(text) if text.trim().is_empty() => Some(None),
        Input::Text(text) => match parse(text) {
            Ok(value) => Some(Some(value)),
            Err(e) => {
                errors.add(field, e);
                None
            }
        },
        Input::NotText => {
            errors.add(field, FieldError::Invalid);
            None
        }
    }
}

/// Serde goes through `parse`, so a stored or received value is as valid as a parsed one.
macro_rules! text_value {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = FieldError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$t> for String {
            fn from(value: $t) -> Self {
                value.as_str().to_owned()
            }
        }
    )*};
}

text_value!(PersonName, Email, Phone);

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    fn text(s: &str) -> Input {
        Input::Text(s.to_owned())
    }

    fn form(first: &str, last: &str) -> CustomerForm {
        CustomerForm {
            first_name: text(first),
            last_name: text(last),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_create_keeps_what_was_given() {
        let mut f = form(" John ", "Doe");
        f.email = text("John.Doe@Example.com");
        f.phone = text("(555) 123-4567");
        f.gender = text("m");
        f.birthday = text("04/05/1990");
        let c = NewCustomer::parse(&f, today()).unwrap();
        assert_eq!(c.first_name.as_str(), "John");
        assert_eq!(c.email.as_ref().unwrap().as_str(), "John.Doe@Example.com");
        assert_eq!(
            c.email.as_ref().unwrap().match_key(),
            "john.doe@example.com"
        );
        assert_eq!(c.phone.as_ref().unwrap().as_str(), "(555) 123-4567");
        assert_eq!(c.phone.as_ref().unwrap().digits(), "5551234567");
        assert_eq!(c.gender, Some(Gender::Male));
        assert_eq!(c.birthday, NaiveDate::from_ymd_opt(1990, 4, 5));
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let f = CustomerForm {
            first_name: Input::Absent,
            last_name: text("   "),
            gender: text("robot"),
            birthday: text("2021-02-30"),
            email: text("not-an-email"),
            phone: text("12-34"),
            drivers_license: text(&"x".repeat(65)),
            notes: text(&"n".repeat(2001)),
        };
        let errors = NewCustomer::parse(&f, today()).unwrap_err();
        let json = serde_json::to_value(&errors).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "first_name": ["can't be blank"],
                "last_name": ["can't be blank"],
                "gender": ["is not included in the list"],
                "birthday": ["is not a valid date"],
                "email": ["is invalid"],
                "phone": ["is invalid"],
                "drivers_license": ["is too long (maximum is 64 characters)"],
                "notes": ["is too long (maximum is 2000 characters)"],
            })
        );
    }

    #[test]
    fn names_are_bounded_in_characters_not_bytes() {
        assert!(PersonName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(
            PersonName::parse(&"é".repeat(101)),
            Err(FieldError::TooLong(100))
        );
    }

    #[test]
    fn control_characters_are_invalid_but_notes_keep_line_breaks() {
        assert_eq!(PersonName::parse("Ann\u{0}"), Err(FieldError::Invalid));
        assert_eq!(PersonName::parse("A\nnn"), Err(FieldError::Invalid));
        assert_eq!(bounded_text("a\u{0}b", NOTES_MAX), Err(FieldError::Invalid));
        assert_eq!(
            bounded_text("a\u{1b}[31m", NOTES_MAX),
            Err(FieldError::Invalid)
        );
        assert_eq!(
            bounded_text("line one\r\n\tline two", NOTES_MAX).as_deref(),
            Ok("line one\r\n\tline two")
        );
    }

    #[test]
    fn plain_text_takes_out_every_control_character() {
        // C0 (NUL, BEL, ESC), DEL and C1 go; word separators become one space.
        assert_eq!(
            plain_text("An\u{0}n\u{7}a\u{7f}\u{9b}", TextKind::SingleLine),
            "Anna"
        );
        assert_eq!(
            plain_text("Ann\r\nMarie", TextKind::SingleLine),
            "Ann Marie"
        );
        assert_eq!(plain_text("a\tb\u{85}c", TextKind::SingleLine), "a b c");
        assert_eq!(
            plain_text("\u{1b}[31mred\u{1b}[0m", TextKind::SingleLine),
            "[31mred[0m"
        );
        // Notes keep their lines and tabs, and nothing else.
        assert_eq!(
            plain_text("one\u{0}\r\n\ttwo\u{7}\u{c}three", TextKind::MultiLine),
            "one\r\n\ttwo three"
        );
        // Nothing to take out: the text itself, not a copy.
        assert!(matches!(
            plain_text("José O'Brien", TextKind::SingleLine),
            Cow::Borrowed("José O'Brien")
        ));
        // Whatever it is given, what comes out is what a kiosk's input may hold.
        for kind in [TextKind::SingleLine, TextKind::MultiLine] {
            let all: String = (0u32..0x250).filter_map(char::from_u32).collect();
            assert!(plain_text(&all, kind).chars().all(|c| kind.allows(c)));
        }
    }

    #[test]
    fn a_status_holds_no_control_character_however_it_is_made() {
        assert_eq!(CustomerStatus::new("act\u{0}ive\u{7}").as_str(), "ACTIVE");
        assert_eq!(CustomerStatus::new("\u{0}").as_str(), "ACTIVE");
        let read: CustomerStatus =
            serde_json::from_value(serde_json::json!("in\u{0}active")).unwrap();
        assert_eq!(read.as_str(), "INACTIVE");
        assert_eq!(
            serde_json::to_value(CustomerStatus::new("merged")).unwrap(),
            "MERGED"
        );
    }

    #[test]
    fn phone_digits_follow_the_contract() {
        assert_eq!(
            Phone::digits_of("+1 (555) 123.4567").as_deref(),
            Some("15551234567")
        );
        assert_eq!(Phone::digits_of("555123456"), None, "9 digits is too few");
        assert_eq!(
            Phone::digits_of("1234567890123456"),
            None,
            "16 digits is too many"
        );
        assert_eq!(Phone::digits_of("555-123-4567 ext 2"), None);
        assert_eq!(
            Phone::digits_of("++5551234567"),
            None,
            "only one leading plus"
        );
        assert_eq!(Phone::digits_of("555+1234567"), None);
    }

    #[test]
    fn birthdays_are_real_past_dates() {
        assert!(parse_birthday("2024-02-29", today()).is_ok());
        assert_eq!(
            parse_birthday("2023-02-29", today()),
            Err(FieldError::InvalidDate)
        );
        assert_eq!(
            parse_birthday("13/01/2000", today()),
            Err(FieldError::InvalidDate)
        );
        assert_eq!(
            parse_birthday("tomorrow", today()),
            Err(FieldError::InvalidDate)
        );
        assert_eq!(
            parse_birthday("2026-11-24", today()),
            Err(FieldError::Invalid)
        );
        assert_eq!(parse_birthday("2026-11-23", today()), Ok(today()));
    }

    #[test]
    fn gender_is_case_insensitive_and_returned_capitalised() {
        for (given, want) in [
            ("MALE", Gender::Male),
            ("f", Gender::Female),
            ("Other", Gender::Other),
        ] {
            assert_eq!(Gender::parse(given), Ok(want));
        }
        assert_eq!(serde_json::to_value(Gender::Female).unwrap(), "Female");
    }

    #[test]
    fn patch_distinguishes_absent_null_and_value() {
        let f = CustomerForm {
            email: Input::Null,
            notes: text(""),
            phone: text("555.123.4567"),
            ..Default::default()
        };
        let patch = CustomerPatch::parse_partial(&f, today()).unwrap();
        assert_eq!(patch.first_name, None);
        assert_eq!(patch.gender, None);
        assert_eq!(patch.email, Some(None));
        assert_eq!(patch.notes, Some(None));
        assert_eq!(patch.phone.unwrap().unwrap().digits(), "5551234567");
    }

    #[test]
    fn patch_cannot_blank_a_name() {
        let f = CustomerForm {
            first_name: Input::Null,
            last_name: text(""),
            ..Default::default()
        };
        let errors = CustomerPatch::parse_partial(&f, today()).unwrap_err();
        assert_eq!(errors.get("first_name").unwrap(), ["can't be blank"]);
        assert_eq!(errors.get("last_name").unwrap(), ["can't be blank"]);
    }

    #[test]
    fn put_requires_names_and_clears_the_rest() {
        let errors = CustomerPatch::parse_full(&CustomerForm::default(), today()).unwrap_err();
        assert_eq!(
            errors.fields().collect::<Vec<_>>(),
            ["first_name", "last_name"]
        );
        let patch = CustomerPatch::parse_full(&form("A", "B"), today()).unwrap();
        assert_eq!(patch.email, Some(None));
        assert_eq!(patch.notes, Some(None));
    }

    #[test]
    fn wrong_json_types_are_invalid() {
        let mut f = form("A", "B");
        f.email = Input::NotText;
        let errors = NewCustomer::parse(&f, today()).unwrap_err();
        assert_eq!(errors.get("email").unwrap(), ["is invalid"]);
    }

    #[test]
    fn value_types_cannot_be_deserialised_invalid() {
        assert!(serde_json::from_value::<Email>(serde_json::json!("nope")).is_err());
        assert!(serde_json::from_value::<Phone>(serde_json::json!("12")).is_err());
        assert!(serde_json::from_value::<PersonName>(serde_json::json!(" ")).is_err());
    }

    #[test]
    fn licences_match_without_case_or_separators() {
        assert_eq!(license_match_key("ab-12 34"), "AB1234");
    }

    #[test]
    fn customer_ids_are_bounded() {
        assert!(CustomerId::parse("12345").is_some());
        assert!(CustomerId::parse("").is_none());
        assert!(CustomerId::parse(&"9".repeat(129)).is_none());
        assert!(CustomerId::parse("a\nb").is_none());
        // Every vendor's ids pass; path tricks do not.
        for id in [
            "20",
            "01a233de-45ec-73bf-8756-382237247f42",
            "5f1e2d3c4b5a69788796a5b4",
            "a.b",
            "x_y~z:1",
        ] {
            assert!(CustomerId::parse(id).is_some(), "{id}");
        }
        for id in [
            ".", "..", "...", "a/b", "a?b", "a#b", "%2e%2e", "a b", "é", "a\\b",
        ] {
            assert!(CustomerId::parse(id).is_none(), "{id}");
        }
    }
}
