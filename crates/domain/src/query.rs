//! List and search queries, and pages of results.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::customer::{Customer, Email, Phone, license_match_key};
use crate::validation::{FieldError, ValidationErrors};

pub const DEFAULT_LIMIT: u32 = 25;
pub const MAX_LIMIT: u32 = 100;
const MAX_FILTER_LEN: usize = 200;

/// Where a page stopped, in the terms of whoever produced it (a POS or the mirror). Opaque to
/// everyone else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PageToken(pub String);

/// A validated list/search query; filters combine with AND.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerQuery {
    /// Digits only.
    pub phone_digits: Option<String>,
    /// Lower case.
    pub email: Option<String>,
    /// As given; compare with [`CustomerQuery::drivers_license_key`].
    pub drivers_license: Option<String>,
    /// Each word must start the first or the last name, case-insensitively.
    pub name: Option<String>,
    pub limit: u32,
    pub page: Option<PageToken>,
    /// Lists only (no filters), for an incremental sync: the customers changed at or after
    /// this time. A lower bound, not a filter a caller may rely on to exclude: a POS may
    /// answer more than changed (its filter is coarser, a day at Flowhub, or it has none),
    /// never less. Kiosk requests never set it.
    pub changed_since: Option<DateTime<Utc>>,
}

/// The raw query string parameters.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct QueryParams {
    pub phone: Option<String>,
    pub email: Option<String>,
    pub drivers_license: Option<String>,
    pub name: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl CustomerQuery {
    /// Validates the filters; the cursor is decoded by the use case, which knows its source.
    pub fn parse(params: &QueryParams) -> Result<(Self, Option<String>), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let nonblank = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let mut query = CustomerQuery {
            limit: DEFAULT_LIMIT,
            ..Default::default()
        };
        for (field, value) in [
            ("phone", &params.phone),
            ("email", &params.email),
            ("drivers_license", &params.drivers_license),
            ("name", &params.name),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_FILTER_LEN)
            {
                errors.add(field, FieldError::TooLong(MAX_FILTER_LEN));
            }
        }
        if errors.is_empty() {
            if let Some(phone) = nonblank(&params.phone) {
                match Phone::digits_of(&phone) {
                    Some(digits) => query.phone_digits = Some(digits),
                    None => errors.add("phone", FieldError::Invalid),
                }
            }
            if let Some(email) = nonblank(&params.email) {
                match Email::parse(&email) {
                    Ok(email) => query.email = Some(email.match_key()),
                    Err(e) => errors.add("email", e),
                }
            }
            query.drivers_license = nonblank(&params.drivers_license);
            query.name = nonblank(&params.name).map(|n| n.to_lowercase());
        }
        if let Some(limit) = &params.limit {
            match limit.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => query.limit = n,
                _ => errors.add("limit", FieldError::NotInList),
            }
        }
        let cursor = nonblank(&params.cursor);
        errors.into_result(|| (query, cursor))
    }

    pub fn has_filters(&self) -> bool {
        self.phone_digits.is_some()
            || self.email.is_some()
            || self.drivers_license.is_some()
            || self.name.is_some()
    }

    pub fn drivers_license_key(&self) -> Option<String> {
        self.drivers_license.as_deref().map(license_match_key)
    }

    /// The lower-case words of the name filter.
    pub fn name_words(&self) -> Vec<&str> {
        self.name
            .as_deref()
            .map(|n| n.split_whitespace().collect())
            .unwrap_or_default()
    }

    /// Whether a customer satisfies every filter; adapters that can only list use it to filter,
    /// and tests use it as the reference.
    pub fn matches(&self, customer: &Customer) -> bool {
        let keys = customer.duplicate_keys();
        let first = customer.first_name.as_str().to_lowercase();
        let last = customer.last_name.as_str().to_lowercase();
        self.phone_digits
            .as_ref()
            .is_none_or(|p| keys.phone_digits.as_ref() == Some(p))
            && self
                .email
                .as_ref()
                .is_none_or(|e| keys.email.as_ref() == Some(e))
            && self
                .drivers_license_key()
                .is_none_or(|l| keys.drivers_license.as_ref() == Some(&l))
            && self
                .name_words()
                .iter()
                .all(|w| first.starts_with(w) || last.starts_with(w))
    }
}

/// One page of customers and where the next starts, if anywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerPage {
    pub customers: Vec<Customer>,
    pub next: Option<PageToken>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        let mut p = QueryParams::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "phone" => p.phone = v,
                "email" => p.email = v,
                "drivers_license" => p.drivers_license = v,
                "name" => p.name = v,
                "limit" => p.limit = v,
                "cursor" => p.cursor = v,
                _ => unreachable!(),
            }
        }
        p
    }

    #[test]
    fn filters_are_normalised() {
        let (q, cursor) = CustomerQuery::parse(&params(&[
            ("phone", "(555) 123-4567"),
            ("email", "A@B.COM"),
            ("name", "  Jo  DOE "),
            ("limit", "10"),
        ]))
        .unwrap();
        assert_eq!(q.phone_digits.as_deref(), Some("5551234567"));
        assert_eq!(q.email.as_deref(), Some("a@b.com"));
        assert_eq!(q.name_words(), ["jo", "doe"]);
        assert_eq!(q.limit, 10);
        assert_eq!(cursor, None);
    }

    #[test]
    fn limit_is_bounded_and_defaults_to_25() {
        assert_eq!(CustomerQuery::parse(&params(&[])).unwrap().0.limit, 25);
        for bad in ["0", "101", "-1", "ten"] {
            let errors = CustomerQuery::parse(&params(&[("limit", bad)])).unwrap_err();
            assert_eq!(
                errors.get("limit").unwrap(),
                ["is not included in the list"]
            );
        }
    }

    #[test]
    fn bad_filters_are_reported_together() {
        let errors = CustomerQuery::parse(&params(&[("phone", "12"), ("email", "x")])).unwrap_err();
        assert_eq!(errors.fields().collect::<Vec<_>>(), ["email", "phone"]);
    }
}
