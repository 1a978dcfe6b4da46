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
/// A scheduled sync walks every customer of a store (and looks for those gone) once a day.
pub const DEFAULT_SYNC_FULL_EVERY: Duration = Duration::from_secs(24 * 3600);
/// The longest any configured timeout may be: more is a typo, and overflows clocks.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest lifetime (`exp - iat`) a token may have: a leaked token is good for at most
/// this long.
pub const DEFAULT_JWT_MAX_TTL: Duration = Duration::from_secs(400 * 24 * 3600);
/// How to make an HS256 secret that passes [`crate::secret_strength::check`].
pub const MAKE_A_SECRET: &str = "make one with `openssl rand -base64 32`";

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
    /// HS256 with one shared secret (`POS_GATEWAY_JWT_SECRET` alone); a token's `kid` is not
    /// looked at.
    Secret(Secret),
    /// HS256 with secrets named by `kid` (`POS_GATEWAY_JWT_SECRETS`), so that a secret can be
    /// replaced while tokens signed with the one before still work.
    SecretSet(SecretSet),
    /// RS256 or ES256 with a PEM public key; one key, a token's `kid` is not looked at.
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

/// The key tokens are signed with: a secret, and the `kid` that names it in their header.
#[derive(Clone, Copy, Debug)]
pub struct SigningKey<'a> {
    pub kid: Option<&'a str>,
    pub secret: &'a Secret,
}

impl JwtKey {
    /// What `pos-gateway token` signs with: the newest named secret, else the one secret;
    /// `None` for a public key (the private key is elsewhere).
    pub fn signing_key(&self) -> Option<SigningKey<'_>> {
        match self {
            JwtKey::Secret(secret) => Some(SigningKey { kid: None, secret }),
            JwtKey::SecretSet(set) => {
                let (kid, secret) = set.newest();
                Some(SigningKey {
                    kid: Some(kid),
                    secret,
                })
            }
            JwtKey::PublicKey { .. } => None,
        }
    }
}

/// HS256 secrets named by `kid`: a token naming a kid is checked against that secret only;
/// one naming none against the unnamed secret (`POS_GATEWAY_JWT_SECRET`), if there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSet {
    /// At least one, kids distinct, in the configured order.
    named: Vec<(String, Secret)>,
    /// The kid and secret new tokens are signed with; one of `named`.
    newest: (String, Secret),
    unnamed: Option<Secret>,
}

/// Why a [`SecretSet`] cannot be made; never quotes a secret.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretSetError {
    #[error("names no key: give KID:SECRET pairs separated by commas")]
    Empty,
    #[error("key {0} has a kid that is not 1 to 64 letters, digits, '-', '_' or '.'")]
    BadKid(usize),
    #[error("kid '{0}' is given twice")]
    Twice(String),
    #[error("kid '{wanted}' is not one of POS_GATEWAY_JWT_SECRETS's ({known})")]
    UnknownNewest { wanted: String, known: String },
}

impl SecretSet {
    /// `newest` names the kid new tokens get (default: the first of `named`).
    pub fn new(
        named: Vec<(String, Secret)>,
        newest: Option<&str>,
        unnamed: Option<Secret>,
    ) -> Result<Self, SecretSetError> {
        for (i, (kid, _)) in named.iter().enumerate() {
            if !valid_kid(kid) {
                return Err(SecretSetError::BadKid(i + 1));
            }
            if named.iter().take(i).any(|(other, _)| other == kid) {
                return Err(SecretSetError::Twice(kid.clone()));
            }
        }
        let newest = match newest {
            None => named.first().ok_or(SecretSetError::Empty)?,
            Some(wanted) => named.iter().find(|(kid, _)| kid == wanted).ok_or_else(|| {
                SecretSetError::UnknownNewest {
                    wanted: wanted.to_owned(),
                    known: named
                        .iter()
                        .map(|(kid, _)| kid.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?,
        }
        .clone();
        Ok(Self {
            named,
            newest,
            unnamed,
        })
    }

    /// The secret a token naming `kid` must be signed with.
    pub fn get(&self, kid: &str) -> Option<&Secret> {
        self.named
            .iter()
            .find(|(name, _)| name == kid)
            .map(|(_, secret)| secret)
    }

    /// The secret of tokens without a `kid`.
    pub fn unnamed(&self) -> Option<&Secret> {
        self.unnamed.as_ref()
    }

    pub fn named(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.named
            .iter()
            .map(|(kid, secret)| (kid.as_str(), secret))
    }

    /// The kid and secret new tokens are signed with.
    pub fn newest(&self) -> (&str, &Secret) {
        (&self.newest.0, &self.newest.1)
    }
}

fn valid_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// How log lines are written to stderr (`POS_GATEWAY_LOG_FORMAT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one line of text each, coloured only on a terminal.
    #[default]
    Text,
    /// For log collectors: one JSON object a line.
    Json,
}

#[derive(Clone)]
pub struct Config {
    /// May hold a password: print it through [`persistence::redact_url`] only.
    pub database_url: String,
    pub listen: String,
    pub jwt_key: Option<JwtKey>,
    pub jwt_audience: String,
    /// Tokens living longer than this (`exp - iat`, or `exp - now` without `iat`) are refused,
    /// and `pos-gateway token` does not make them.
    pub jwt_max_ttl: Duration,
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
    /// How logs are written (`POS_GATEWAY_LOG_FORMAT`: `text` or `json`).
    pub log_format: LogFormat,
    /// This process's name in logs and traces (`POS_GATEWAY_REPLICA`); the host name and
    /// process id when unset.
    pub replica: Option<String>,
    /// `serve` syncs every vendor store this often (one replica per store per interval);
    /// `None` (the default): only `pos-gateway sync` does.
    pub sync_interval: Option<Duration>,
    /// How long after a store's last complete full pass the scheduled sync walks every
    /// customer again (`POS_GATEWAY_SYNC_FULL_EVERY`, default a day); in between, it copies
    /// only what changed.
    pub sync_full_every: Duration,
    /// How many replicas share the database (`POS_GATEWAY_REPLICAS`): only used while
    /// PostgreSQL cannot answer the shared vendor budget, when each replica takes this share
    /// of a store's vendor limit on its own.
    pub replicas: NonZeroU32,
}

/// Every field, the database URL without its password.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Config {
            database_url,
            listen,
            jwt_key,
            jwt_audience,
            jwt_max_ttl,
            credentials_key,
            pos_timeout,
            ops_listen,
            body_timeout,
            catalog_rate,
            catalog_burst,
            max_bulks_in_flight,
            log_format,
            replica,
            sync_interval,
            sync_full_every,
            replicas,
        } = self;
        f.debug_struct("Config")
            .field("database_url", &persistence::redact_url(database_url))
            .field("listen", listen)
            .field("jwt_key", jwt_key)
            .field("jwt_audience", jwt_audience)
            .field("jwt_max_ttl", jwt_max_ttl)
            .field("credentials_key", credentials_key)
            .field("pos_timeout", pos_timeout)
            .field("ops_listen", ops_listen)
            .field("body_timeout", body_timeout)
            .field("catalog_rate", catalog_rate)
            .field("catalog_burst", catalog_burst)
            .field("max_bulks_in_flight", max_bulks_in_flight)
            .field("log_format", log_format)
            .field("replica", replica)
            .field("sync_interval", sync_interval)
            .field("sync_full_every", sync_full_every)
            .field("replicas", replicas)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            listen: DEFAULT_LISTEN.to_owned(),
            jwt_key: None,
            jwt_audience: DEFAULT_AUDIENCE.to_owned(),
            jwt_max_ttl: DEFAULT_JWT_MAX_TTL,
            credentials_key: None,
            pos_timeout: DEFAULT_POS_TIMEOUT,
            ops_listen: None,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            catalog_rate: Some(DEFAULT_CATALOG_RATE),
            catalog_burst: DEFAULT_CATALOG_BURST,
            max_bulks_in_flight: DEFAULT_MAX_BULKS_IN_FLIGHT,
            log_format: LogFormat::Text,
            replica: None,
            sync_interval: None,
            sync_full_every: DEFAULT_SYNC_FULL_EVERY,
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
    /// `KID:SECRET,KID:SECRET`, as in the environment.
    jwt_secrets: Option<String>,
    jwt_kid: Option<String>,
    jwt_max_ttl: Option<String>,
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
    log_format: Option<String>,
    replica: Option<String>,
    sync_interval: Option<String>,
    sync_full_every: Option<String>,
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
        let overrides: [(&str, &mut Option<String>); 21] = [
            ("POS_GATEWAY_DATABASE_URL", &mut values.database_url),
            ("POS_GATEWAY_LISTEN", &mut values.listen),
            ("POS_GATEWAY_JWT_SECRET", &mut values.jwt_secret),
            ("POS_GATEWAY_JWT_SECRETS", &mut values.jwt_secrets),
            ("POS_GATEWAY_JWT_KID", &mut values.jwt_kid),
            ("POS_GATEWAY_JWT_MAX_TTL", &mut values.jwt_max_ttl),
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
            ("POS_GATEWAY_LOG_FORMAT", &mut values.log_format),
            ("POS_GATEWAY_REPLICA", &mut values.replica),
            ("POS_GATEWAY_SYNC_INTERVAL", &mut values.sync_interval),
            ("POS_GATEWAY_SYNC_FULL_EVERY", &mut values.sync_full_every),
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
        if let Some(format) = values.log_format {
            config.log_format = match format.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "POS_GATEWAY_LOG_FORMAT",
                        message: format!("'{format}' is not text or json"),
                    });
                }
            };
        }
        config.replica = values
            .replica
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty());
        if let Some(interval) = values.sync_interval {
            config.sync_interval = match interval.trim() {
                "" | "off" => None,
                text => Some(
                    humantime::parse_duration(text)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| ConfigError::Invalid {
                            key: "POS_GATEWAY_SYNC_INTERVAL",
                            message: format!(
                                "'{interval}' is not a duration such as 1h or 15m (or off)"
                            ),
                        })?,
                ),
            };
        }
        if let Some(every) = values.sync_full_every {
            config.sync_full_every = humantime::parse_duration(every.trim())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| ConfigError::Invalid {
                    key: "POS_GATEWAY_SYNC_FULL_EVERY",
                    message: format!("'{every}' is not a duration such as 24h or 7d"),
                })?;
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
        if let Some(ttl) = values.jwt_max_ttl {
            config.jwt_max_ttl = humantime::parse_duration(ttl.trim())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| ConfigError::Invalid {
                    key: "POS_GATEWAY_JWT_MAX_TTL",
                    message: format!("'{ttl}' is not a duration such as 400days or 30d"),
                })?;
        }
        if values.jwt_kid.is_some() && values.jwt_secrets.is_none() {
            return Err(ConfigError::Invalid {
                key: "POS_GATEWAY_JWT_KID",
                message: "names a key of POS_GATEWAY_JWT_SECRETS, which is not set".into(),
            });
        }
        config.jwt_key = match (values.jwt_public_key, values.jwt_secrets, values.jwt_secret) {
            (Some(_), Some(_), _) => {
                return Err(ConfigError::Invalid {
                    key: "POS_GATEWAY_JWT_SECRETS",
                    message: "HS256 secrets and POS_GATEWAY_JWT_PUBLIC_KEY exclude each other: \
                              set one"
                        .into(),
                });
            }
            (Some(key), None, _) => Some(public_key(&key, values.jwt_algorithm.as_deref())?),
            (None, Some(list), unnamed) => Some(JwtKey::SecretSet(secret_set(
                &list,
                values.jwt_kid.as_deref(),
                unnamed
                    .map(|secret| checked_secret("POS_GATEWAY_JWT_SECRET", secret))
                    .transpose()?,
            )?)),
            (None, None, Some(secret)) => Some(JwtKey::Secret(checked_secret(
                "POS_GATEWAY_JWT_SECRET",
                secret,
            )?)),
            (None, None, None) => None,
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

/// A secret that would give HS256 tokens under 32 bytes of strength is refused, saying why
/// (never with any of it) and how to make a good one.
pub fn checked_secret(key: &'static str, secret: String) -> Result<Secret, ConfigError> {
    crate::secret_strength::check(&secret).map_err(|weakness| ConfigError::Invalid {
        key,
        message: weak(&weakness),
    })?;
    Ok(Secret::new(secret))
}

fn weak(weakness: &crate::secret_strength::Weakness) -> String {
    format!(
        "is too weak for HS256 ({weakness}); it needs {} bits, 32 random bytes: {MAKE_A_SECRET}",
        crate::secret_strength::MIN_BITS
    )
}

/// `KID:SECRET,KID:SECRET`, newest first unless `newest` names another kid. The secret is what
/// follows the first `:`; a secret cannot hold a `,`. Errors never quote a secret.
fn secret_set(
    list: &str,
    newest: Option<&str>,
    unnamed: Option<Secret>,
) -> Result<SecretSet, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: "POS_GATEWAY_JWT_SECRETS",
        message,
    };
    let mut named = Vec::new();
    for (i, entry) in list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let (kid, secret) = entry
            .split_once(':')
            .ok_or_else(|| invalid(format!("entry {} is not KID:SECRET", i + 1)))?;
        let kid = kid.trim();
        crate::secret_strength::check(secret).map_err(|weakness| {
            invalid(if valid_kid(kid) {
                format!("the secret of kid '{kid}' {}", weak(&weakness))
            } else {
                format!("the secret of entry {} {}", i + 1, weak(&weakness))
            })
        })?;
        named.push((kid.to_owned(), Secret::new(secret)));
    }
    SecretSet::new(named, newest.map(str::trim), unnamed).map_err(|e| match e {
        SecretSetError::UnknownNewest { .. } => ConfigError::Invalid {
            key: "POS_GATEWAY_JWT_KID",
            message: e.to_string(),
        },
        other => invalid(other.to_string()),
    })
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
    fn the_log_format_and_replica_come_from_the_file_and_the_environment() {
        let defaults = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(
            (defaults.log_format, defaults.replica),
            (LogFormat::Text, None)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "log_format = \"json\"\nreplica = \"web-1\"\n").unwrap();
        let file = Config::from_sources(Some(&path), env(&[])).unwrap();
        assert_eq!(file.log_format, LogFormat::Json);
        assert_eq!(file.replica.as_deref(), Some("web-1"));
        let environment = Config::from_sources(
            Some(&path),
            env(&[
                ("POS_GATEWAY_LOG_FORMAT", "TEXT"),
                ("POS_GATEWAY_REPLICA", "web-2"),
            ]),
        )
        .unwrap();
        assert_eq!(environment.log_format, LogFormat::Text);
        assert_eq!(environment.replica.as_deref(), Some("web-2"));
        let bad = Config::from_sources(None, env(&[("POS_GATEWAY_LOG_FORMAT", "xml")]))
            .unwrap_err()
            .to_string();
        assert!(bad.contains("POS_GATEWAY_LOG_FORMAT"), "{bad}");
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
        assert!(short.unwrap_err().to_string().contains("too weak"));
    }

    const OLD: &str = "wfSjo2mU7bKx7NbplB6TjNThljUjgGW5Osipa7d+t64=";
    const NEW: &str = "QGTDi5KBNSsKg8h0ZxK6uTCXN8WGRK8HPEQqDoHGbG4=";

    /// Long is not strong: 64 characters of one letter, or a word repeated, are refused at
    /// start-up (`serve`, `token` and every other command load this), saying how to make a
    /// good one and never echoing the secret.
    #[test]
    fn weak_secrets_are_refused_whatever_their_length() {
        let aaa = "a".repeat(64);
        let password = "password".repeat(8);
        let old_test_secret = "test-secret-0123456789abcdef0123456789";
        for weak in [aaa.as_str(), password.as_str(), old_test_secret] {
            for variable in ["POS_GATEWAY_JWT_SECRET", "POS_GATEWAY_JWT_SECRETS"] {
                let value = match variable {
                    "POS_GATEWAY_JWT_SECRETS" => format!("k2:{NEW},k1:{weak}"),
                    _ => weak.to_owned(),
                };
                let error =
                    Config::from_sources(None, |key| (key == variable).then(|| value.clone()))
                        .unwrap_err()
                        .to_string();
                assert!(error.starts_with(variable), "{error}");
                assert!(error.contains("too weak"), "{error}");
                assert!(error.contains("openssl rand -base64 32"), "{error}");
                assert!(!error.contains(&weak[..8]), "{error}");
            }
        }
        for strong in [
            OLD,
            "4aec2485a34e0a3a637ebff6f98ceaa074296926e6f3ddd308351daf5b442e97",
        ] {
            let config = Config::from_sources(None, |key| {
                (key == "POS_GATEWAY_JWT_SECRET").then(|| strong.to_owned())
            })
            .unwrap();
            assert_eq!(config.jwt_key, Some(JwtKey::Secret(Secret::new(strong))));
        }
    }

    #[test]
    fn a_key_set_names_its_secrets_and_signs_with_the_newest() {
        let list = format!("2025-06:{NEW}, 2025-01:{OLD}");
        let config = Config::from_sources(None, |key| match key {
            "POS_GATEWAY_JWT_SECRETS" => Some(list.clone()),
            "POS_GATEWAY_JWT_SECRET" => Some(OLD.to_owned()),
            _ => None,
        })
        .unwrap();
        let Some(JwtKey::SecretSet(set)) = &config.jwt_key else {
            panic!("{:?}", config.jwt_key);
        };
        assert_eq!(set.get("2025-06"), Some(&Secret::new(NEW)));
        assert_eq!(set.get("2025-01"), Some(&Secret::new(OLD)));
        assert_eq!(set.get("2024-12"), None);
        assert_eq!(set.unnamed(), Some(&Secret::new(OLD)));
        let signing = config.jwt_key.as_ref().unwrap().signing_key().unwrap();
        assert_eq!(
            (signing.kid, signing.secret),
            (Some("2025-06"), &Secret::new(NEW))
        );

        let chosen = Config::from_sources(None, |key| match key {
            "POS_GATEWAY_JWT_SECRETS" => Some(list.clone()),
            "POS_GATEWAY_JWT_KID" => Some("2025-01".into()),
            _ => None,
        })
        .unwrap();
        let Some(JwtKey::SecretSet(set)) = &chosen.jwt_key else {
            panic!("{:?}", chosen.jwt_key);
        };
        assert_eq!(set.newest(), ("2025-01", &Secret::new(OLD)));
        assert_eq!(set.unnamed(), None);

        // The same from a file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            format!("jwt_secrets = \"{list}\"\njwt_kid = \"2025-01\"\n"),
        )
        .unwrap();
        let from_file = Config::from_sources(Some(&path), env(&[])).unwrap();
        assert_eq!(from_file.jwt_key, chosen.jwt_key);
    }

    #[test]
    fn a_bad_key_set_is_refused_without_quoting_a_secret() {
        for (list, kid, says) in [
            (NEW.to_owned(), None, "entry 1 is not KID:SECRET"),
            (format!("a b:{NEW}"), None, "key 1 has a kid that is not"),
            (format!("k:{NEW},k:{OLD}"), None, "kid 'k' is given twice"),
            (",".to_owned(), None, "names no key"),
            (
                format!("k1:{NEW}"),
                Some("k2"),
                "POS_GATEWAY_JWT_KID: kid 'k2' is not one of",
            ),
        ] {
            let error = Config::from_sources(None, |key| match key {
                "POS_GATEWAY_JWT_SECRETS" => Some(list.clone()),
                "POS_GATEWAY_JWT_KID" => kid.map(str::to_owned),
                _ => None,
            })
            .unwrap_err()
            .to_string();
            assert!(error.contains(says), "{error}");
            assert!(
                !error.contains(&NEW[..10]) && !error.contains(&OLD[..10]),
                "{error}"
            );
        }
        let error = Config::from_sources(None, |key| {
            (key == "POS_GATEWAY_JWT_KID").then(|| "k".to_owned())
        })
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("POS_GATEWAY_JWT_SECRETS, which is not set"),
            "{error}"
        );
        let both = Config::from_sources(None, |key| match key {
            "POS_GATEWAY_JWT_SECRETS" => Some(format!("k:{NEW}")),
            "POS_GATEWAY_JWT_PUBLIC_KEY" => Some("/nowhere.pem".into()),
            _ => None,
        });
        assert!(both.unwrap_err().to_string().contains("exclude each other"));
    }

    #[test]
    fn the_longest_token_lifetime_is_400_days_unless_set() {
        let config = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(config.jwt_max_ttl, Duration::from_secs(400 * 86400));
        let config =
            Config::from_sources(None, env(&[("POS_GATEWAY_JWT_MAX_TTL", "30days")])).unwrap();
        assert_eq!(config.jwt_max_ttl, Duration::from_secs(30 * 86400));
        for bad in ["0s", "forever"] {
            let error = Config::from_sources(None, |key| {
                (key == "POS_GATEWAY_JWT_MAX_TTL").then(|| bad.to_owned())
            })
            .unwrap_err()
            .to_string();
            assert!(error.contains("POS_GATEWAY_JWT_MAX_TTL"), "{error}");
        }
    }

    #[test]
    fn the_database_password_does_not_print() {
        let config = Config::from_sources(
            None,
            env(&[(
                "POS_GATEWAY_DATABASE_URL",
                "postgres://pos:hunter2@db.internal/pos_gateway",
            )]),
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://pos:***@db.internal/pos_gateway"),
            "{shown}"
        );
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
        let config = Config::from_sources(None, env(&[("POS_GATEWAY_JWT_SECRET", OLD)])).unwrap();
        assert!(!format!("{config:?}").contains(&OLD[..10]));
    }

    #[test]
    fn the_scheduled_sync_is_off_unless_given_an_interval() {
        assert_eq!(
            Config::from_sources(None, env(&[])).unwrap().sync_interval,
            None
        );
        let hourly = Config::from_sources(None, env(&[("POS_GATEWAY_SYNC_INTERVAL", "1h")]));
        assert_eq!(
            hourly.unwrap().sync_interval,
            Some(Duration::from_secs(3600))
        );
        let off = Config::from_sources(None, env(&[("POS_GATEWAY_SYNC_INTERVAL", "off")]));
        assert_eq!(off.unwrap().sync_interval, None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "sync_interval = \"15m\"\n").unwrap();
        let file = Config::from_sources(Some(&path), env(&[])).unwrap();
        assert_eq!(file.sync_interval, Some(Duration::from_secs(900)));
        for bad in ["0s", "hourly", "-1h"] {
            let error = Config::from_sources(None, move |key: &str| {
                (key == "POS_GATEWAY_SYNC_INTERVAL").then(|| bad.to_owned())
            })
            .unwrap_err()
            .to_string();
            assert!(
                error.starts_with("POS_GATEWAY_SYNC_INTERVAL: ") && error.contains(bad),
                "{error}"
            );
        }
    }

    #[test]
    fn the_scheduled_sync_walks_every_customer_daily_unless_told_otherwise() {
        let default = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(default.sync_full_every, Duration::from_secs(24 * 3600));
        let weekly = Config::from_sources(None, env(&[("POS_GATEWAY_SYNC_FULL_EVERY", "7d")]));
        assert_eq!(
            weekly.unwrap().sync_full_every,
            Duration::from_secs(7 * 24 * 3600)
        );
        for bad in ["0s", "off", "daily"] {
            let error = Config::from_sources(None, move |key: &str| {
                (key == "POS_GATEWAY_SYNC_FULL_EVERY").then(|| bad.to_owned())
            })
            .unwrap_err()
            .to_string();
            assert!(
                error.starts_with("POS_GATEWAY_SYNC_FULL_EVERY: ") && error.contains(bad),
                "{error}"
            );
        }
    }
}
