//! The contract's validation messages, in one place, and the per-field error map.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One thing wrong with one field. `Display` gives the exact message of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldError {
    Blank,
    Invalid,
    InvalidDate,
    TooLong(usize),
    NotInList,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldError::Blank => f.write_str("can't be blank"),
            FieldError::Invalid => f.write_str("is invalid"),
            FieldError::InvalidDate => f.write_str("is not a valid date"),
            FieldError::TooLong(n) => write!(f, "is too long (maximum is {n} characters)"),
            FieldError::NotInList => f.write_str("is not included in the list"),
        }
    }
}

/// Every field's errors at once, keyed by the contract's field name; serialises as
/// `{"first_name": ["can't be blank"], ...}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValidationErrors(BTreeMap<String, Vec<String>>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, error: FieldError) {
        self.add_message(field, error.to_string());
    }

    /// For messages that do not come from us, such as a vendor's own field error.
    pub fn add_message(&mut self, field: &str, message: impl Into<String>) {
        let messages = self.0.entry(field.to_owned()).or_default();
        let message = message.into();
        if !messages.contains(&message) {
            messages.push(message);
        }
    }

    pub fn single(field: &str, error: FieldError) -> Self {
        let mut errors = Self::new();
        errors.add(field, error);
        errors
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&[String]> {
        self.0.get(field).map(Vec::as_slice)
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// `Ok(value)` when nothing was recorded, so parsers can end with `errors.into_result(x)`.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Self> {
        if self.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (field, messages) in &self.0 {
            for message in messages {
                if !first {
                    f.write_str(", ")?;
                }
                first = false;
                write!(f, "{field} {message}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_contracts() {
        assert_eq!(FieldError::Blank.to_string(), "can't be blank");
        assert_eq!(FieldError::Invalid.to_string(), "is invalid");
        assert_eq!(FieldError::InvalidDate.to_string(), "is not a valid date");
        assert_eq!(
            FieldError::TooLong(100).to_string(),
            "is too long (maximum is 100 characters)"
        );
        assert_eq!(
            FieldError::NotInList.to_string(),
            "is not included in the list"
        );
    }

    #[test]
    fn serialises_as_a_map_of_lists_without_repeats() {
        let mut errors = ValidationErrors::new();
        errors.add("first_name", FieldError::Blank);
        errors.add("first_name", FieldError::Blank);
        errors.add("email", FieldError::Invalid);
        assert_eq!(
            serde_json::to_value(&errors).unwrap(),
            serde_json::json!({"email": ["is invalid"], "first_name": ["can't be blank"]})
        );
    }
}
