//! Configuration: environment variables, optionally under a TOML file with the same keys
//! (lower case, without the `POS_GATEWAY_` prefix). The environment wins.

use std::path::Path;
use std::time::Duration;

use persistence::CredentialsKey;
use serde::Deserialize;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://pos-gateway.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_AUDIENCE: &str = "pos-gateway";
pub const DEFAULT_POS_TIMEOUT: Duration = Duration::from_secs(10);
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

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub listen: String,
    pub jwt_key: Option<JwtKey>,
    pub jwt_audience: String,
    /// Encrypts vendor credentials in store configs at rest.
    pub credentials_key: Option<CredentialsKey>,
    pub pos_timeout: Duration,
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
        let overrides: [(&str, &mut Option<String>); 8] = [
            ("POS_GATEWAY_DATABASE_URL", &mut values.database_url),
            ("POS_GATEWAY_LISTEN", &mut values.listen),
            ("POS_GATEWAY_JWT_SECRET", &mut values.jwt_secret),
            ("POS_GATEWAY_JWT_PUBLIC_KEY", &mut values.jwt_public_key),
            ("POS_GATEWAY_JWT_ALGORITHM", &mut values.jwt_algorithm),
            ("POS_GATEWAY_JWT_AUDIENCE", &mut values.jwt_audience),
            ("POS_GATEWAY_CREDENTIALS_KEY", &mut values.credentials_key),
            ("POS_GATEWAY_POS_TIMEOUT", &mut values.pos_timeout),
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
