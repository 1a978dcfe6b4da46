//! Conversions every vendor module shares: the vendor's loose records into our strict types
//! (leniently: a vendor's odd value is dropped, not a reason to lose the customer), and our
//! values into the forms vendors commonly want.

use std::borrow::Cow;

use chrono::{Datelike, NaiveDate};
use domain::{
    Customer, CustomerId, CustomerStatus, Email, Gender, PersonName, Phone, TextKind, plain_text,
};

/// A customer as a vendor module read it, before our rules are applied. Every vendor's reads
/// end here ([`Incoming::into_customer`]), so what a vendor's text may hold is decided once:
/// control characters are taken out of every field ([`domain::plain_text`]), the id excepted
/// (an id is the vendor's key, used as sent; one with a control character is unusable).
#[derive(Debug, Default)]
pub struct Incoming<'a> {
    pub customer_id: Option<String>,
    pub status: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub gender: Option<Gender>,
    pub birthday: Option<&'a str>,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub drivers_license: Option<&'a str>,
    pub notes: Option<&'a str>,
}

impl Incoming<'_> {
    /// Our customer, or what makes the record unusable (no id, no name): a record without
    /// them cannot be shown to a kiosk nor kept in the mirror.
    pub fn into_customer(self) -> Result<Customer, String> {
        let customer_id = self
            .customer_id
            .as_deref()
            .and_then(CustomerId::parse)
            .ok_or("a customer has no id")?;
        let name = |text: Option<&str>, field: &str| {
            PersonName::parse(&line(text).unwrap_or_default())
                .map_err(|_| format!("customer {customer_id} has no usable {field}"))
        };
        Ok(Customer {
            status: self
                .status
                .map_or_else(CustomerStatus::active, CustomerStatus::new),
            first_name: name(self.first_name, "first name")?,
            last_name: name(self.last_name, "last name")?,
            gender: self.gender,
            birthday: line(self.birthday).as_deref().and_then(date_prefix),
            email: owned(line(self.email)).and_then(|e| Email::parse(&e).ok()),
            phone: owned(line(self.phone)).and_then(|p| display_phone(&p)),
            // The kiosk's licence and notes may hold tabs and line breaks (the domain's
            // `bounded_text`): a vendor's keep them too, so what we sent reads back equal.
            drivers_license: owned(lines(self.drivers_license)),
            notes: owned(lines(self.notes)),
            customer_id,
        })
    }
}

/// A vendor's one-line text without control characters.
fn line(text: Option<&str>) -> Option<Cow<'_, str>> {
    text.map(|t| plain_text(t, TextKind::SingleLine))
}

/// A vendor's text of several lines without control characters but line breaks and tabs.
fn lines(text: Option<&str>) -> Option<Cow<'_, str>> {
    text.map(|t| plain_text(t, TextKind::MultiLine))
}

/// Cleaned text as a value: trimmed, and `None` when blank.
fn owned(text: Option<Cow<'_, str>>) -> Option<String> {
    present(text.as_deref()).map(str::to_owned)
}

/// Trimmed, and `None` when blank.
pub fn present(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

/// The date at the start of `YYYY-MM-DD...` (a plain date, or a date-time whose time we drop).
/// chrono also reads signed and short years (`-0001-1-01`); like the domain's birthdays, only
/// a four-digit year is kept, so the API's `YYYY-MM-DD` holds for vendors' dates too.
pub fn date_prefix(text: &str) -> Option<NaiveDate> {
    let head = text.trim().get(..10)?;
    NaiveDate::parse_from_str(head, "%Y-%m-%d")
        .ok()
        .filter(|date| (1000..=9999).contains(&date.year()))
}

/// A vendor's phone as we show it: ten digits as `555-123-4567` (vendors that keep bare digits
/// should not make kiosks show `5551234567`), anything else as the vendor wrote it.
pub fn display_phone(text: &str) -> Option<Phone> {
    let digits = Phone::digits_of(text)?;
    if let (10, Some(area), Some(exchange), Some(line)) = (
        digits.len(),
        digits.get(..3),
        digits.get(3..6),
        digits.get(6..),
    ) {
        return Phone::parse(&format!("{area}-{exchange}-{line}")).ok();
    }
    Phone::parse(text).ok()
}

/// The ten digits of a North American number (an 11-digit number starting with 1 loses the
/// 1), for vendors that store exactly ten; `None` when the number has no such form.
pub fn ten_digits(phone: &Phone) -> Option<&str> {
    let digits = phone.digits();
    match digits.len() {
        10 => Some(digits),
        11 if digits.starts_with('1') => digits.get(1..),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_show_dashed_and_go_out_as_ten_digits() {
        assert_eq!(
            display_phone("5551234567").unwrap().as_str(),
            "555-123-4567"
        );
        assert_eq!(
            display_phone("+44 20 7946 0958").unwrap().as_str(),
            "+44 20 7946 0958"
        );
        assert_eq!(display_phone("n/a"), None);
        let us = Phone::parse("+1 (555) 123-4567").unwrap();
        assert_eq!(ten_digits(&us), Some("5551234567"));
        let uk = Phone::parse("+44 20 7946 0958").unwrap();
        assert_eq!(ten_digits(&uk), None);
    }

    #[test]
    fn a_vendors_control_characters_never_reach_a_customer() {
        let read = Incoming {
            customer_id: Some("7".into()),
            status: Some("act\u{0}ive"),
            first_name: Some("An\u{0}n\u{7}a"),
            last_name: Some("\u{1b}Smith\u{9b}"),
            birthday: Some("1990-01-0\u{0}2"),
            email: Some("ann\u{0}@example.com"),
            phone: Some("555\u{7}-123-4567"),
            drivers_license: Some("D12\u{0}34\u{7f}"),
            notes: Some("line one\u{0}\nline\u{7} two\u{c}end"),
            ..Default::default()
        }
        .into_customer()
        .unwrap();
        assert_eq!(read.status.as_str(), "ACTIVE");
        assert_eq!(read.first_name.as_str(), "Anna");
        assert_eq!(read.last_name.as_str(), "Smith");
        assert_eq!(read.birthday, NaiveDate::from_ymd_opt(1990, 1, 2));
        assert_eq!(read.email.unwrap().as_str(), "ann@example.com");
        assert_eq!(read.phone.unwrap().as_str(), "555-123-4567");
        assert_eq!(read.drivers_license.as_deref(), Some("D1234"));
        assert_eq!(read.notes.as_deref(), Some("line one\nline two end"));
        // A field that was nothing but control characters is no value; a name, no customer.
        let blank = Incoming {
            customer_id: Some("8".into()),
            first_name: Some("Ann"),
            last_name: Some("Lee"),
            notes: Some("\u{0}\u{7}"),
            ..Default::default()
        }
        .into_customer()
        .unwrap();
        assert_eq!(blank.notes, None);
        assert!(
            Incoming {
                customer_id: Some("9".into()),
                first_name: Some("\u{0}"),
                last_name: Some("Lee"),
                ..Default::default()
            }
            .into_customer()
            .is_err()
        );
    }

    #[test]
    fn records_without_id_or_name_are_refused_and_odd_values_dropped() {
        let base = || Incoming {
            customer_id: Some("20".into()),
            first_name: Some("KATHLEEN"),
            last_name: Some("SCOTT"),
            ..Default::default()
        };
        let odd = Incoming {
            email: Some("not an address"),
            birthday: Some("1989-03-07T00:00:00"),
            notes: Some("  "),
            status: Some("merged"),
            ..base()
        }
        .into_customer()
        .unwrap();
        assert_eq!(odd.email, None);
        assert_eq!(odd.notes, None);
        assert_eq!(odd.status.as_str(), "MERGED");
        assert_eq!(odd.birthday, NaiveDate::from_ymd_opt(1989, 3, 7));
        assert!(
            Incoming {
                customer_id: None,
                ..base()
            }
            .into_customer()
            .is_err()
        );
        assert!(
            Incoming {
                last_name: Some(" "),
                ..base()
            }
            .into_customer()
            .is_err()
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::properties::{assert_valid, birthday, email, name, phone};
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn display_phone_keeps_the_digits_and_dashes_ten(text in prop_oneof![any::<String>(), phone(), "[0-9 ()+.-]{0,20}"]) {
            match display_phone(&text) {
                Some(phone) => {
                    prop_assert_eq!(Some(phone.digits().to_owned()), Phone::digits_of(&text));
                    if phone.digits().len() == 10 {
                        let d = phone.digits();
                        prop_assert_eq!(phone.as_str(), format!("{}-{}-{}", &d[..3], &d[3..6], &d[6..]));
                    } else {
                        prop_assert_eq!(phone.as_str(), text.trim());
                    }
                    prop_assert_eq!(display_phone(phone.as_str()), Some(phone));
                }
                None => prop_assert_eq!(Phone::digits_of(&text), None),
            }
        }

        #[test]
        fn ten_digits_are_north_american_numbers(text in phone()) {
            let phone = Phone::parse(&text).unwrap();
            let digits = phone.digits();
            match ten_digits(&phone) {
                Some(ten) => {
                    prop_assert_eq!(ten.len(), 10);
                    prop_assert!(digits.ends_with(ten));
                    prop_assert!(digits.len() == 10 || (digits.len() == 11 && digits.starts_with('1')));
                    // What a ten-digit vendor gives back shows as the same number.
                    let back = display_phone(ten).unwrap();
                    prop_assert_eq!(back.digits(), ten);
                }
                None => prop_assert!(!(digits.len() == 10 || (digits.len() == 11 && digits.starts_with('1')))),
            }
        }

        #[test]
        fn date_prefix_reads_dates_and_date_times(birthday in birthday(), rest in prop_oneof![Just(String::new()), "T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,7})?Z?", any::<String>()], before in "[ \t]{0,2}") {
            let date = parse_either(&birthday);
            let iso = date.format("%Y-%m-%d").to_string();
            prop_assert_eq!(date_prefix(&format!("{before}{iso}{rest}")), Some(date));
        }

        #[test]
        fn date_prefix_of_anything_prints_as_an_iso_date(text in prop_oneof![any::<String>(), "[ +-]?[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}.{0,4}"]) {
            if let Some(date) = date_prefix(&text) {
                let iso = date.format("%Y-%m-%d").to_string();
                prop_assert_eq!(iso.len(), 10, "{:?} read as {}", text, iso);
                prop_assert_eq!(date_prefix(&iso), Some(date));
            }
        }

        #[test]
        fn any_vendor_record_reads_as_a_valid_customer_or_not_at_all(
            customer_id in prop_oneof![Just(None), any::<String>().prop_map(Some), "[0-9]{1,12}".prop_map(Some)],
            fields in vec(prop_oneof![Just(None), any::<String>().prop_map(Some), name().prop_map(Some), phone().prop_map(Some), email().prop_map(Some), birthday().prop_map(Some)], 8),
        ) {
            let field = |i: usize| fields[i].as_deref();
            let incoming = Incoming {
                customer_id: customer_id.clone(),
                status: field(0),
                first_name: field(1),
                last_name: field(2),
                gender: None,
                birthday: field(3),
                email: field(4),
                phone: field(5),
                drivers_license: field(6),
                notes: field(7),
            };
            match incoming.into_customer() {
                Ok(c) => {
                    assert_valid(&c)?;
                    prop_assert_eq!(Some(c.customer_id.as_str()), customer_id.as_deref());
                }
                Err(message) => prop_assert!(!message.is_empty()),
            }
        }
    }

    /// Found by `date_prefix_of_anything_prints_as_an_iso_date`: a vendor's `-0001-1-01` was
    /// read as the year -1, which the API would have printed as `-0001-01-01`.
    #[test]
    fn dates_without_a_four_digit_year_are_dropped() {
        for text in [
            "-0001-1-01",
            "+10000-1-1",
            "0999-12-31",
            "0000-01-01T00:00:00",
        ] {
            assert_eq!(date_prefix(text), None, "{text}");
        }
        assert_eq!(
            date_prefix("1000-01-01"),
            NaiveDate::from_ymd_opt(1000, 1, 1)
        );
        assert_eq!(
            date_prefix("9999-12-31T23:59:59Z"),
            NaiveDate::from_ymd_opt(9999, 12, 31)
        );
    }

    fn parse_either(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(text, "%m/%d/%Y"))
            .unwrap()
    }
}
