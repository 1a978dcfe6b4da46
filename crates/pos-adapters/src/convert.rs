//! Conversions every vendor module shares: the vendor's loose records into our strict types
//! (leniently: a vendor's odd value is dropped, not a reason to lose the customer), and our
//! values into the forms vendors commonly want.

use chrono::NaiveDate;
use domain::{Customer, CustomerId, CustomerStatus, Email, Gender, PersonName, Phone};

/// A customer as a vendor module read it, before our rules are applied.
#[derive(Debug, Default)]
pub(crate) struct Incoming<'a> {
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
            PersonName::parse(text.unwrap_or_default())
                .map_err(|_| format!("customer {customer_id} has no usable {field}"))
        };
        Ok(Customer {
            status: self
                .status
                .map_or_else(CustomerStatus::active, CustomerStatus::new),
            first_name: name(self.first_name, "first name")?,
            last_name: name(self.last_name, "last name")?,
            gender: self.gender,
            birthday: self.birthday.and_then(date_prefix),
            email: present(self.email).and_then(|e| Email::parse(e).ok()),
            phone: present(self.phone).and_then(display_phone),
            drivers_license: present(self.drivers_license).map(str::to_owned),
            notes: present(self.notes).map(str::to_owned),
            customer_id,
        })
    }
}

/// Trimmed, and `None` when blank.
pub(crate) fn present(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

/// The date at the start of `YYYY-MM-DD...` (a plain date, or a date-time whose time we drop).
pub(crate) fn date_prefix(text: &str) -> Option<NaiveDate> {
    let head = text.trim().get(..10)?;
    NaiveDate::parse_from_str(head, "%Y-%m-%d").ok()
}

/// A vendor's phone as we show it: ten digits as `555-123-4567` (vendors that keep bare digits
/// should not make kiosks show `5551234567`), anything else as the vendor wrote it.
pub(crate) fn display_phone(text: &str) -> Option<Phone> {
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
#[cfg_attr(not(feature = "treez"), allow(dead_code))]
pub(crate) fn ten_digits(phone: &Phone) -> Option<&str> {
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
