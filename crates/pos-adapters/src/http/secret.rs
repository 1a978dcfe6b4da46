//! Credentials that cannot be printed by accident.

use secrecy::{ExposeSecret, SecretString};

/// A vendor credential: an API key, a password, a client secret or a token.
///
/// `Debug` and `Display` print `[redacted]`, and there is no `Serialize`, so a credential can't
/// reach a log line, an error message or a JSON body by accident; the only way to the value is
/// [`Secret::expose`], which is easy to find in a review. The memory is zeroed on drop
/// (`secrecy`). Every secret a request carries is also scrubbed from the vendor bodies we echo.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The value itself, for the one place that must send it to the vendor.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// Compares the values, so a token cache can tell "the token that was refused" from a newer one.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Lets a vendor's config struct hold its keys as `Secret` straight from the store's JSON.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
        let parsed: Secret = serde_json::from_str("\"k\"").unwrap();
        assert_eq!(parsed, Secret::new("k"));
    }
}
