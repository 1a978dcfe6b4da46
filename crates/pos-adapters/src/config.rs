//! Store configs as data: each vendor's config is a `#[derive(Deserialize)]` struct with the
//! keys every vendor shares ([`CommonConfig`]) flattened in, read by [`parse_config`], whose
//! errors name the key and the type it wants but never the value (a value may be a secret).
//! The `deserialize_with` helpers here ([`secret`], [`optional_secret`], [`plain_text`],
//! [`optional_plain_text`]) give
//! a vendor's keys the same checks and messages everywhere.

use std::num::NonZeroU32;
use std::time::Duration;

use domain::Vendor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::AdapterError;
use crate::http::Secret;

/// The longest `timeout` a store may set: a kiosk waiting longer has given up anyway.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Keys every vendor's store config may set besides its own.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct CommonConfig {
    /// The vendor's API root; the vendor's production host when absent. Points an adapter at a
    /// test double or a vendor's sandbox.
    #[serde(default, deserialize_with = "optional_url")]
    pub base_url: Option<String>,
    /// This store's own limit for one vendor call (`"3s"`, `"1500ms"` or a number of
    /// seconds), instead of `POS_GATEWAY_POS_TIMEOUT`.
    #[serde(default, deserialize_with = "optional_timeout")]
    pub timeout: Option<Duration>,
    /// This store's vendor request budget: absent keeps the vendor's published limit, `null`
    /// turns the limiter off, a positive integer replaces it.
    #[serde(default, deserialize_with = "rate_limit")]
    pub rate_limit_per_minute: Option<Option<NonZeroU32>>,
    /// This store's vendor calls in flight at once (1 to [`MAX_IN_FLIGHT`]), instead of
    /// [`DEFAULT_MAX_IN_FLIGHT`](crate::http::DEFAULT_MAX_IN_FLIGHT): under a burst, more
    /// finish sooner against a slow vendor and fewer hold less memory.
    #[serde(default, deserialize_with = "in_flight")]
    pub max_in_flight: Option<usize>,
}

/// The most vendor calls in flight a store may ask for: each holds a connection to the vendor.
pub const MAX_IN_FLIGHT: usize = 4096;

/// Reads a store's config as `T`. Errors are [`AdapterError::Config`] naming the key path and
/// what it must be, never the value: serde's own messages quote values (`invalid type: string
/// "hunter2", expected u32`), so only their "expected" part is kept.
pub fn parse_config<T: DeserializeOwned>(
    vendor: Vendor,
    config: &Value,
) -> Result<T, AdapterError> {
    let invalid = |message: String| AdapterError::Config { vendor, message };
    if !config.is_object() {
        return Err(invalid("the config must be a JSON object".to_owned()));
    }
    serde_path_to_error::deserialize(config).map_err(|error| {
        let path = error.path().to_string();
        let found = found_kind(config, error.path());
        invalid(describe(&path, &error.into_inner().to_string(), found))
    })
}

/// Our message for one of serde's, keeping only what cannot hold the value.
fn describe(path: &str, message: &str, found: Option<&'static str>) -> String {
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("missing key \"{}\"", join(path, field));
    }
    let key = if path == "." {
        "the config".to_owned()
    } else {
        format!("key \"{path}\"")
    };
    if message.starts_with("unknown variant ") {
        let expected = message
            .split_once(", expected ")
            .map(|(_, e)| e.replace('`', ""))
            .unwrap_or_else(|| "one of the values the vendor knows".to_owned());
        return format!("{key} must be {expected}");
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if message.starts_with(prefix)
            && let Some((_, expected)) = message.split_once(", expected ")
        {
            return match (prefix, found) {
                ("invalid type: ", Some(found)) => {
                    format!("{key} must be {expected}, not {found}")
                }
                _ => format!("{key} must be {expected}"),
            };
        }
    }
    if let Some(whole) = message.strip_prefix(OWN_WHOLE) {
        return whole.to_owned();
    }
    if let Some(own) = message.strip_prefix(OWN) {
        return format!("{key} {own}");
    }
    format!("{key} is invalid")
}

/// Marks messages written by this module's own deserializers, which never hold a value, so
/// [`describe`] may show them whole.
const OWN: &str = "pos-gateway: ";

/// The same for messages that name their key themselves: the keys of [`CommonConfig`], which
/// is flattened into each vendor's config, where serde no longer knows the key's path.
const OWN_WHOLE: &str = "pos-gateway (whole): ";

fn own<E: serde::de::Error>(message: &str) -> E {
    E::custom(format!("{OWN}{message}"))
}

fn common<E: serde::de::Error>(key: &str, message: &str) -> E {
    E::custom(format!("{OWN_WHOLE}key \"{key}\" {message}"))
}

fn join(path: &str, field: &str) -> String {
    if path == "." {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// What kind of JSON value sits at `path`: a word for the message, never the value.
fn found_kind(config: &Value, path: &serde_path_to_error::Path) -> Option<&'static str> {
    use serde_path_to_error::Segment;
    let mut value = config;
    for segment in path.iter() {
        value = match segment {
            Segment::Map { key } => value.get(key)?,
            Segment::Seq { index } => value.get(index)?,
            _ => return None,
        };
    }
    Some(match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    })
}

/// A credential: trimmed, not blank, and sendable in a header (no control characters).
pub fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
    let text = String::deserialize(deserializer)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(own("is blank"));
    }
    if text.chars().any(char::is_control) {
        return Err(own("contains control characters"));
    }
    Ok(Secret::new(text))
}

/// An optional credential: absent, `null` or blank is none.
pub fn optional_secret<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Secret>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => secret(serde::de::value::StrDeserializer::<D::Error>::new(&text)).map(Some),
    }
}

/// A non-blank text without control characters (a tenant slug, an id), trimmed.
pub fn plain_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    secret(deserializer).map(|s| s.expose().to_owned())
}

/// An optional text (a customer type, a date): absent, `null` or blank is none.
pub fn optional_plain_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    optional_secret(deserializer).map(|text| text.map(|t| t.expose().to_owned()))
}

fn optional_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) => Ok(Some(url.trim().trim_end_matches('/').to_owned())),
        Some(_) => Err(common("base_url", "must be an http(s) URL")),
    }
}

fn optional_timeout<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    let timeout = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => humantime::parse_duration(text.trim()).ok(),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= MAX_TIMEOUT.as_secs_f64())
            .map(Duration::from_secs_f64),
        Some(_) => None,
    };
    timeout
        .filter(|d| !d.is_zero() && *d <= MAX_TIMEOUT)
        .map(Some)
        .ok_or_else(|| {
            common(
                "timeout",
                "must be a duration such as \"10s\" or a number of seconds, at most an hour",
            )
        })
}

fn rate_limit<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<NonZeroU32>>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(Some(None)),
        value => value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .and_then(NonZeroU32::new)
            .map(|n| Some(Some(n)))
            .ok_or_else(|| {
                common(
                    "rate_limit_per_minute",
                    "must be a positive integer or null",
                )
            }),
    }
}

fn in_flight<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<usize>, D::Error> {
    Value::deserialize(deserializer)?
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=MAX_IN_FLIGHT).contains(n))
        .map(Some)
        .ok_or_else(|| common("max_in_flight", "must be an integer from 1 to 4096"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Example {
        #[serde(deserialize_with = "secret")]
        api_key: Secret,
        #[serde(default, deserialize_with = "optional_secret")]
        extra_key: Option<Secret>,
        count: u32,
        #[serde(default)]
        kind: Option<Kind>,
        #[serde(default)]
        nested: Option<Nested>,
        #[serde(flatten)]
        common: CommonConfig,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    enum Kind {
        #[serde(rename = "ADULT")]
        Adult,
        #[serde(rename = "MEDICAL")]
        Medical,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        city: String,
    }

    fn error(config: Value) -> String {
        match parse_config::<Example>(Vendor::Cova, &config) {
            Err(AdapterError::Config { message, .. }) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_key_and_what_it_must_be() {
        assert_eq!(error(json!({"count": 1})), "missing key \"api_key\"");
        assert_eq!(
            error(json!({"api_key": "k", "count": "seven"})),
            "key \"count\" must be u32, not a string"
        );
        assert_eq!(
            error(json!({"api_key": "  ", "count": 1})),
            "key \"api_key\" is blank"
        );
        assert_eq!(
            error(json!({"api_key": "a\u{7}b", "count": 1})),
            "key \"api_key\" contains control characters"
        );
        assert_eq!(
            error(json!({"api_key": "k", "count": 1, "kind": "KID"})),
            "key \"kind\" must be ADULT or MEDICAL"
        );
        assert_eq!(
            error(json!({"api_key": "k", "count": 1, "nested": {}})),
            "missing key \"nested.city\""
        );
        assert_eq!(
            error(json!({"api_key": "k", "count": -3})),
            "key \"count\" must be u32"
        );
        assert_eq!(error(json!("x")), "the config must be a JSON object");
        let timeout = error(json!({"api_key": "k", "count": 1, "timeout": "soon"}));
        assert_eq!(
            timeout,
            "key \"timeout\" must be a duration such as \"10s\" or a number of seconds, at most an hour"
        );
        let limit = error(json!({"api_key": "k", "count": 1, "rate_limit_per_minute": 0}));
        assert_eq!(
            limit,
            "key \"rate_limit_per_minute\" must be a positive integer or null"
        );
        for wrong in [json!(0), json!(4097), json!("8"), json!(null)] {
            assert_eq!(
                error(json!({"api_key": "k", "count": 1, "max_in_flight": wrong})),
                "key \"max_in_flight\" must be an integer from 1 to 4096"
            );
        }
        let url = error(json!({"api_key": "k", "count": 1, "base_url": 8080}));
        assert_eq!(url, "key \"base_url\" must be an http(s) URL");
    }

    #[test]
    fn common_keys_are_read_beside_the_vendors() {
        let parsed: Example = parse_config(
            Vendor::Cova,
            &json!({"api_key": " k ", "extra_key": "", "count": 1, "base_url": "http://x/",
                    "timeout": "1500ms", "rate_limit_per_minute": 60, "max_in_flight": 64}),
        )
        .unwrap();
        assert_eq!(parsed.common.max_in_flight, Some(64));
        assert_eq!(parsed.api_key.expose(), "k");
        assert!(parsed.extra_key.is_none());
        assert_eq!(parsed.common.base_url.as_deref(), Some("http://x"));
        assert_eq!(parsed.common.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(
            parsed.common.rate_limit_per_minute,
            Some(NonZeroU32::new(60))
        );
        let off: Example = parse_config(
            Vendor::Cova,
            &json!({"api_key": "k", "count": 1, "rate_limit_per_minute": null, "timeout": 2}),
        )
        .unwrap();
        assert_eq!(off.common.rate_limit_per_minute, Some(None));
        assert_eq!(off.common.timeout, Some(Duration::from_secs(2)));
        let too_long = error(json!({"api_key": "k", "count": 1, "timeout": "2h"}));
        assert!(too_long.contains("at most an hour"), "{too_long}");
    }

    proptest! {
        /// Whatever a config holds, an error never repeats a value from it.
        #[test]
        fn an_error_never_shows_a_value(
            value in "[a-zA-Z0-9_]{6,20}",
            key in prop::sample::select(vec!["api_key", "extra_key", "count", "kind", "nested", "base_url", "timeout", "rate_limit_per_minute", "max_in_flight"]),
            shape in 0..5u8,
        ) {
            let wrong = match shape {
                0 => json!(value),
                1 => json!([value]),
                2 => json!({"city": 1, "x": value}),
                3 => json!({ value.clone(): value }),
                _ => json!(format!("{value}\u{1}")),
            };
            let mut config = json!({"api_key": "secret-api-key-value", "count": 1});
            config[key] = wrong;
            if let Err(AdapterError::Config { message, .. }) = parse_config::<Example>(Vendor::Cova, &config) {
                prop_assert!(!message.contains(&value), "{message}");
                prop_assert!(!message.contains("secret-api-key-value"), "{message}");
            }
        }
    }
}
