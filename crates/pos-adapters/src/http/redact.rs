//! What of a vendor's body we may show: credential-free and cut to a bound.

use serde_json::Value;

use super::Secret;

/// The most of a vendor body echoed in an error (`VendorResponse.body`), per the contract.
pub const MAX_ECHOED_BODY_BYTES: usize = 4096;

const REDACTED: &str = "[redacted]";
const CUT_MARK: &str = "... [cut]";

/// Scrubs the credentials of one call from what the vendor sent back: every known secret value
/// wherever it appears, and the value of every JSON key that looks like a credential. Vendors
/// do echo keys and tokens in error bodies (the request they refused, a debug dump), and those
/// bodies travel to kiosks and logs.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// Longest first, so a secret that contains another is replaced whole.
    secrets: Vec<Secret>,
}

impl Redactor {
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        Self::default().with(secrets)
    }

    /// This redactor plus the secrets of one request (its token, its keys).
    pub(crate) fn with<'a>(&self, extra: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut secrets = self.secrets.clone();
        for secret in extra {
            if !secret.is_empty() && !secrets.contains(secret) {
                secrets.push(secret.clone());
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
        Self { secrets }
    }

    /// A raw body as we may echo it: its JSON (or, when it isn't JSON, a JSON string of its
    /// text), scrubbed, then cut to [`MAX_ECHOED_BODY_BYTES`].
    pub(crate) fn echo_bytes(&self, body: &[u8]) -> Value {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => self.echo(&value),
            Err(_) => {
                let text = self.text(&String::from_utf8_lossy(body));
                Value::String(cut(&text, MAX_ECHOED_BODY_BYTES))
            }
        }
    }

    /// A parsed body as we may echo it. Scrubbed before it is cut, so a secret straddling the
    /// cut can't leave a visible prefix; a body too long after scrubbing becomes a string of its
    /// first 4 KiB.
    pub(crate) fn echo(&self, body: &Value) -> Value {
        let scrubbed = self.value(body);
        let text = scrubbed.to_string();
        if text.len() <= MAX_ECHOED_BODY_BYTES {
            scrubbed
        } else {
            Value::String(cut(&text, MAX_ECHOED_BODY_BYTES))
        }
    }

    /// Free text (an error message) with every known secret replaced.
    pub(crate) fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.expose()) {
                out = out.replace(secret.expose(), REDACTED);
            }
        }
        out
    }

    fn value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Number(n) => {
                let digits = n.to_string();
                if self.secrets.iter().any(|s| s.expose() == digits) {
                    Value::String(REDACTED.to_owned())
                } else {
                    value.clone()
                }
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect()),
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, v)| {
                        let v = if looks_like_credential(key) && !v.is_null() {
                            Value::String(REDACTED.to_owned())
                        } else {
                            self.value(v)
                        };
                        (self.text(key), v)
                    })
                    .collect(),
            ),
            Value::Null | Value::Bool(_) => value.clone(),
        }
    }
}

/// `access_token`, `apiKey`, `client-secret`, `Authorization`, `partner_key`, `password`...
/// Generous on purpose: hiding a harmless field costs nothing, showing a key costs a rotation.
fn looks_like_credential(key: &str) -> bool {
    let key: String = key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    const WORDS: [&str; 8] = [
        "token",
        "password",
        "passwd",
        "secret",
        "authorization",
        "apikey",
        "credential",
        "signature",
    ];
    WORDS.iter().any(|w| key.contains(w)) || key.ends_with("key")
}

/// `text` cut to at most `max` bytes, on a character boundary, marked when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(CUT_MARK.len());
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let mut out = text.get(..end).unwrap_or_default().to_owned();
    out.push_str(CUT_MARK);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn redactor() -> Redactor {
        let secrets = [Secret::new("s3cr3t-key"), Secret::new("123456789")];
        Redactor::new(&secrets)
    }

    #[test]
    fn secrets_and_credential_keys_are_scrubbed() {
        let body = json!({
            "message": "bad key s3cr3t-key for you",
            "apiKey": "anything",
            "access_token": "abc",
            "client_id": "visible",
            "nested": [{"Password": "p"}, {"pin": 123456789}],
            "resultReason": "INVALID",
        });
        let echoed = redactor().echo(&body);
        let text = echoed.to_string();
        assert!(!text.contains("s3cr3t-key"), "{text}");
        assert!(!text.contains("123456789"), "{text}");
        assert!(
            !text.contains("anything") && !text.contains("\"abc\""),
            "{text}"
        );
        assert_eq!(echoed["client_id"], "visible");
        assert_eq!(echoed["resultReason"], "INVALID");
        assert_eq!(echoed["nested"][0]["Password"], "[redacted]");
    }

    #[test]
    fn text_bodies_become_strings_and_long_bodies_are_cut_after_scrubbing() {
        assert_eq!(
            redactor().echo_bytes(b"<html>s3cr3t-key</html>"),
            json!("<html>[redacted]</html>")
        );
        assert_eq!(redactor().echo_bytes(b"  "), Value::Null);
        // The secret straddles the 4 KiB mark: no prefix of it may survive.
        let mut long = "é".repeat(MAX_ECHOED_BODY_BYTES / 2 - 6);
        long.push_str("s3cr3t-key");
        long.push_str(&"x".repeat(10_000));
        let echoed = redactor().echo_bytes(long.as_bytes());
        let text = echoed.as_str().unwrap();
        assert!(text.len() <= MAX_ECHOED_BODY_BYTES);
        assert!(text.ends_with(CUT_MARK));
        assert!(!text.contains("s3cr"));
        let big = json!({"items": vec!["abcdefgh"; 1000]});
        assert!(redactor().echo(&big).is_string());
    }
}
