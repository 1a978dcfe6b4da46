//! Configuration: environment variables, optionally under a TOML file with the same keys
//! (lower case, without the `POS_GATEWAY_` prefix). The environment wins.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use persistence::CredentialsKey;
use serde::Deserialize;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://pos-gateway.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_AUDIENCE: &str = "pos-gateway";
pub const DEFAULT_POS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request body may take to arrive once its head has (`POS_GATEWAY_BODY_TIMEOUT`).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Each catalog's (kiosk's) sustained request budget (`POS_GATEWAY_CATALOG_RATE`).
pub const DEFAULT_CATALOG_RATE: RequestRate = RequestRate {
    requests: 600,
    per: Duration::from_secs(60),
};
/// How many requests a catalog may send at once before its rate applies
/// (`POS_GATEWAY_CATALOG_BURST`); a full bulk (100 items, each counted) fits.
pub const DEFAULT_CATALOG_BURST: u32 = 100;
/// Bulk requests in flight at once, over every catalog (`POS_GATEWAY_MAX_BULKS_IN_FLIGHT`).
pub const DEFAULT_MAX_BULKS_IN_FLIGHT: usize = 16;
/// The longest any configured timeout may be: more is a typo, and overflows clocks.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// HS256 with a short secret can be brute-forced offline from one token.
pub const MIN_SECRET_LEN: usize = 32;

/// A value that must never reach a log, an error or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The algorithm family tokens are checked with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtKey {
    /// HS256 with a shared secret.
    Secret(Secret),
    /// RS256 or ES256 with a PEM public key.
    PublicKey {
        algorithm: jsonwebtoken::Algorithm,
        pem: String,
    },
}

/// `N/unit`: N requests per second, minute or hour (`600/min`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestRate {
    pub requests: u32,
    pub per: Duration,
}

impl RequestRate {
    /// `600/min`, `10/s`, `5000/hour`; or `off`.
    pub fn parse(text: &str) -> Option<Option<Self>> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Some(None);
        }
        let (count, unit) = text.split_once('/')?;
        let requests = count.trim().parse::<u32>().ok().filter(|n| *n > 0)?;
        let per = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return None,
        };
        Some(Some(Self { requests, per }))
    }

    /// The time one request's budget takes to come back.
    pub fn interval(&self) -> Duration {
        self.per / self.requests
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub listen: String,
    pub jwt_key: Option<JwtKey>,
    pub jwt_audience: String,
    /// Encrypts vendor credentials in store configs at rest.
    pub credentials_key: Option<CredentialsKey>,
    pub pos_timeout: Duration,
    /// A second listener for `/metrics` and `/readyz` (`/healthz` too); when set, the public
    /// listener does not serve those two.
    pub ops_listen: Option<String>,
    /// How long a request body may take to arrive, once the head has (408 after).
    pub body_timeout: Duration,
    /// Each catalog's request budget (`None`: unlimited); a bulk counts one per item.
    pub catalog_rate: Option<RequestRate>,
    /// Requests a catalog may send at once before `catalog_rate` applies.
    pub catalog_burst: u32,
    /// Bulk requests in flight at once over all catalogs; more are 429 at once, never queued.
    pub max_bulks_in_flight: usize,
    /// How many replicas share the database (`POS_GATEWAY_REPLICAS`): only used while
    /// PostgreSQL cannot answer the shared vendor budget, when each replica takes this share
    /// of a store's vendor limit on its own.
    pub replicas: NonZeroU32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            listen: DEFAULT_LISTEN.to_owned(),
            jwt_key: None,
            jwt_audience: DEFAULT_AUDIENCE.to_owned(),
            credentials_key: None,
            pos_timeout: DEFAULT_POS_TIMEOUT,
            ops_listen: None,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            catalog_rate: Some(DEFAULT_CATALOG_RATE),
            catalog_burst: DEFAULT_CATALOG_BURST,
            max_bulks_in_flight: DEFAULT_MAX_BULKS_IN_FLIGHT,
            replicas: NonZeroU32::MIN,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML for pos-gateway: {message}")]
    Toml { path: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// The keys a config file may set; the same as the environment's, lower case, no prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    listen: Option<String>,
    jwt_secret: Option<String>,
    jwt_public_key: Option<String>,
    jwt_algorithm: Option<String>,
    jwt_audience: Option<String>,
    credentials_key: Option<String>,
    pos_timeout: Option<String>,
    ops_listen: Option<String>,
    body_timeout: Option<String>,
    catalog_rate: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    catalog_burst: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    max_bulks_in_flight: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    replicas: Option<String>,
}

/// A count may be written `5` or `"5"` in the file (the environment only has text).
fn text_or_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Number(i64),
    }
    Ok(
        Option::<Scalar>::deserialize(deserializer)?.map(|value| match value {
            Scalar::Text(text) => text,
            Scalar::Number(n) => n.to_string(),
        }),
    )
}

impl Config {
    /// Reads the optional file, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(file, |key| std::env::var(key).ok())
    }

    /// The same, with the environment given as a function, for tests.
    pub fn from_sources(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut values = match file {
            Some(path) => {
                let display = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: display.clone(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Toml {
                    path: display,
                    message: e.message().to_owned(),
                })?
            }
            None => FileConfig::default(),
        };
        let overrides: [(&str, &mut Option<String>); 14] = [
            ("POS_GATEWAY_DATABASE_URL", &mut values.database_url),
            ("POS_GATEWAY_LISTEN", &mut values.listen),
            ("POS_GATEWAY_JWT_SECRET", &mut values.jwt_secret),
            ("POS_GATEWAY_JWT_PUBLIC_KEY", &mut values.jwt_public_key),
            ("POS_GATEWAY_JWT_ALGORITHM", &mut values.jwt_algorithm),
            ("POS_GATEWAY_JWT_AUDIENCE", &mut values.jwt_audience),
            ("POS_GATEWAY_CREDENTIALS_KEY", &mut values.credentials_key),
            ("POS_GATEWAY_POS_TIMEOUT", &mut values.pos_timeout),
            ("POS_GATEWAY_OPS_LISTEN", &mut values.ops_listen),
            ("POS_GATEWAY_BODY_TIMEOUT", &mut values.body_timeout),
            ("POS_GATEWAY_CATALOG_RATE", &mut values.catalog_rate),
            ("POS_GATEWAY_CATALOG_BURST", &mut values.catalog_burst),
            (
                "POS_GATEWAY_MAX_BULKS_IN_FLIGHT",
                &mut values.max_bulks_in_flight,
            ),
            ("POS_GATEWAY_REPLICAS", &mut values.replicas),
        ];
        for (key, slot) in overrides {
            if let Some(value) = env(key).filter(|v| !v.is_empty()) {
                *slot = Some(value);
            }
        }
        Self::from_values(values)
    }

    fn from_values(values: FileConfig) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        if let Some(url) = values.database_url {
            config.database_url = url;
        }
        if let Some(listen) = values.listen {
            config.listen = listen;
        }
        if let Some(audience) = values.jwt_audience {
            config.jwt_audience = audience;
        }
        if let Some(timeout) = values.pos_timeout {
            // At most an hour, as a store's own `timeout`: an absurd value made `Instant +
            // timeout` overflow (a panic on the first vendor call).
            config.pos_timeout = humantime::parse_duration(timeout.trim())
                .ok()
                .filter(|d| !d.is_zero() && *d <= pos_adapters::MAX_TIMEOUT)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "POS_GATEWAY_POS_TIMEOUT",
                    message: format!(
                        "'{timeout}' is not a duration from 1ms to 1h such as 10s or 1500ms"
                    ),
                })?;
        }
        config.ops_listen = values.ops_listen.filter(|a| !a.trim().is_empty());
        if let Some(timeout) = values.body_timeout {
            config.body_timeout = humantime::parse_duration(timeout.trim())
                .ok()
                .filter(|d| !d.is_zero() && *d <= MAX_TIMEOUT)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "POS_GATEWAY_BODY_TIMEOUT",
                    message: format!(
                        "'{timeout}' is not a duration from 1ms to 1h such as 10s or 1500ms"
                    ),
                })?;
        }
        if let Some(rate) = values.catalog_rate {
            config.catalog_rate =
                RequestRate::parse(&rate).ok_or_else(|| ConfigError::Invalid {
                    key: "POS_GATEWAY_CATALOG_RATE",
                    message: format!(
                        "'{rate}' is not a rate such as 600/min, 10/s or 5000/hour (or off)"
                    ),
                })?;
        }
        if let Some(burst) = values.catalog_burst {
            config.catalog_burst = positive(&burst, "POS_GATEWAY_CATALOG_BURST")?;
        }
        if let Some(bulks) = values.max_bulks_in_flight {
            config.max_bulks_in_flight =
                positive::<usize>(&bulks, "POS_GATEWAY_MAX_BULKS_IN_FLIGHT")?;
        }
        if let Some(replicas) = values.replicas {
            config.replicas = positive::<u32>(&replicas, "POS_GATEWAY_REPLICAS")?
                .try_into()
                .unwrap_or(NonZeroU32::MIN);
        }
        config.credentials_key = values
            .credentials_key
            .map(|text| {
                CredentialsKey::parse(&text).map_err(|e| ConfigError::Invalid {
                    key: "POS_GATEWAY_CREDENTIALS_KEY",
                    message: e.to_string(),
                })
            })
            .transpose()?;
        config.jwt_key = match (values.jwt_public_key, values.jwt_secret) {
            (Some(key), _) => Some(public_key(&key, values.jwt_algorithm.as_deref())?),
            (None, Some(secret)) => Some(JwtKey::Secret(checked_secret(secret)?)),
            (None, None) => None,
        };
        Ok(config)
    }
}

/// A whole number of at least 1.
fn positive<T: std::str::FromStr + PartialOrd + From<u8>>(
    text: &str,
    key: &'static str,
) -> Result<T, ConfigError> {
    text.trim()
        .parse::<T>()
        .ok()
        .filter(|n| *n >= T::from(1))
        .ok_or_else(|| ConfigError::Invalid {
            key,
            message: format!("'{text}' is not a whole number of at least 1"),
        })
}

pub fn checked_secret(secret: String) -> Result<Secret, ConfigError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(ConfigError::Invalid {
            key: "POS_GATEWAY_JWT_SECRET",
            message: format!("must be at least {MIN_SECRET_LEN} characters long"),
        });
    }
    Ok(Secret::new(secret))
}

/// The key may be given as PEM text or as the path of a PEM file.
fn public_key(key: &str, algorithm: Option<&str>) -> Result<JwtKey, ConfigError> {
    let algorithm = match algorithm.map(str::trim).unwrap_or("RS256") {
        "RS256" => jsonwebtoken::Algorithm::RS256,
        "ES256" => jsonwebtoken::Algorithm::ES256,
        other => {
            return Err(ConfigError::Invalid {
                key: "POS_GATEWAY_JWT_ALGORITHM",
                message: format!("'{other}' is not supported with a public key (RS256 or ES256)"),
            });
        }
    };
    let pem = if key.contains("-----BEGIN") {
        key.to_owned()
    } else {
        std::fs::read_to_string(key).map_err(|e| ConfigError::Invalid {
            key: "POS_GATEWAY_JWT_PUBLIC_KEY",
            message: format!("cannot read {key}: {e}"),
        })?
    };
    let parsed = match algorithm {
        jsonwebtoken::Algorithm::ES256 => jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes()),
        _ => jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()),
    };
    parsed.map_err(|e| ConfigError::Invalid {
        key: "POS_GATEWAY_JWT_PUBLIC_KEY",
        message: format!("not a {algorithm:?} public key in PEM form: {e}"),
    })?;
    Ok(JwtKey::PublicKey { algorithm, pem })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_are_the_contracts() {
        let config = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(config.database_url, "sqlite://pos-gateway.db");
        assert_eq!(config.listen, "127.0.0.1:8080");
        assert_eq!(config.pos_timeout, Duration::from_secs(10));
        assert_eq!(config.jwt_key, None);
    }

    #[test]
    fn limits_listeners_and_deadlines_come_from_the_file_and_the_environment() {
        let defaults = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(defaults.ops_listen, None);
        assert_eq!(defaults.body_timeout, Duration::from_secs(10));
        assert_eq!(
            defaults.catalog_rate,
            Some(RequestRate {
                requests: 600,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(
            defaults.catalog_rate.unwrap().interval(),
            Duration::from_millis(100)
        );
        assert_eq!(
            (defaults.catalog_burst, defaults.max_bulks_in_flight),
            (100, 16)
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "ops_listen = \"127.0.0.1:9100\"\nbody_timeout = \"2s\"\ncatalog_rate = \"10/s\"\n\
             catalog_burst = 5\nmax_bulks_in_flight = \"4\"\n",
        )
        .unwrap();
        let file = Config::from_sources(Some(&path), env(&[])).unwrap();
        assert_eq!(file.ops_listen.as_deref(), Some("127.0.0.1:9100"));
        assert_eq!(file.body_timeout, Duration::from_secs(2));
        assert_eq!(
            file.catalog_rate,
            Some(RequestRate {
                requests: 10,
                per: Duration::from_secs(1)
            })
        );
        assert_eq!((file.catalog_burst, file.max_bulks_in_flight), (5, 4));

        let environment = Config::from_sources(
            Some(&path),
            env(&[
                ("POS_GATEWAY_OPS_LISTEN", "0.0.0.0:9200"),
                ("POS_GATEWAY_CATALOG_RATE", "off"),
                ("POS_GATEWAY_MAX_BULKS_IN_FLIGHT", "64"),
                ("POS_GATEWAY_REPLICAS", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(environment.ops_listen.as_deref(), Some("0.0.0.0:9200"));
        assert_eq!(environment.catalog_rate, None);
        assert_eq!(environment.max_bulks_in_flight, 64);
        assert_eq!(environment.replicas.get(), 3);
        assert_eq!(file.replicas.get(), 1, "one unless told");

        for (key, value) in [
            ("POS_GATEWAY_BODY_TIMEOUT", "0s"),
            ("POS_GATEWAY_BODY_TIMEOUT", "2h"),
            ("POS_GATEWAY_CATALOG_RATE", "600"),
            ("POS_GATEWAY_CATALOG_RATE", "0/min"),
            ("POS_GATEWAY_CATALOG_RATE", "5/fortnight"),
            ("POS_GATEWAY_CATALOG_BURST", "0"),
            ("POS_GATEWAY_MAX_BULKS_IN_FLIGHT", "-1"),
            ("POS_GATEWAY_REPLICAS", "0"),
        ] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(vec![(key, value)].into_boxed_slice());
            let error = Config::from_sources(None, env(pairs))
                .unwrap_err()
                .to_string();
            assert!(error.contains(key), "{key}={value}: {error}");
        }
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\npos_timeout = \"3s\"\n").unwrap();
        let config =
            Config::from_sources(Some(&path), env(&[("POS_GATEWAY_POS_TIMEOUT", "1500ms")]))
                .unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.pos_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn unknown_file_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        assert!(Config::from_sources(Some(&path), env(&[])).is_err());
        let bad = Config::from_sources(None, env(&[("POS_GATEWAY_POS_TIMEOUT", "soon")]));
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("POS_GATEWAY_POS_TIMEOUT")
        );
        for absurd in [
            &[("POS_GATEWAY_POS_TIMEOUT", "2h")],
            &[("POS_GATEWAY_POS_TIMEOUT", "100000000000000s")],
            &[("POS_GATEWAY_POS_TIMEOUT", "584942417355years")],
        ] {
            let error = Config::from_sources(None, env(absurd))
                .unwrap_err()
                .to_string();
            assert!(error.contains("1ms to 1h"), "{absurd:?}: {error}");
        }
        let hour = Config::from_sources(None, env(&[("POS_GATEWAY_POS_TIMEOUT", "1h")])).unwrap();
        assert_eq!(hour.pos_timeout, Duration::from_secs(3600));
        let short = Config::from_sources(None, env(&[("POS_GATEWAY_JWT_SECRET", "short")]));
        assert!(short.unwrap_err().to_string().contains("at least 32"));
    }

    #[test]
    fn the_credentials_key_is_32_bytes_and_never_echoed() {
        let config = Config::from_sources(
            None,
            env(&[(
                "POS_GATEWAY_CREDENTIALS_KEY",
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            )]),
        )
        .unwrap();
        assert!(config.credentials_key.is_some());
        assert!(!format!("{config:?}").contains("9f86d0"));
        let bad = Config::from_sources(
            None,
            env(&[("POS_GATEWAY_CREDENTIALS_KEY", "my-passphrase-hunter2")]),
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("POS_GATEWAY_CREDENTIALS_KEY"), "{bad}");
        assert!(bad.contains("openssl rand -hex 32"), "{bad}");
        assert!(!bad.contains("hunter2"), "{bad}");
    }

    #[test]
    fn secrets_do_not_print() {
        let config = Config::from_sources(
            None,
            env(&[(
                "POS_GATEWAY_JWT_SECRET",
                "0123456789abcdef0123456789abcdef-very-secret",
            )]),
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("very-secret"));
    }
}
