//! Bearer tokens: checking them, and making them for the CLI.

use std::collections::HashMap;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{JwtKey, Secret, SigningKey};

/// The claims the contract requires.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub exp: u64,
    pub aud: String,
    /// Catalog ids the bearer may use, or `["*"]` for all.
    pub catalogs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

impl Claims {
    pub fn grants(&self, catalog: &str) -> bool {
        self.catalogs.iter().any(|c| c == "*" || c == catalog)
    }
}

/// Checks tokens. Only the configured algorithm is accepted, so `alg: none` and algorithm
/// confusion (an HS256 token signed with a public key) are refused. `nbf` is checked when a
/// token has one, and a token may not live longer than the configured maximum.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Keys,
    validation: Validation,
    /// The longest `exp - iat` (or `exp - now` without `iat`), in seconds.
    max_lifetime: u64,
}

#[derive(Clone)]
enum Keys {
    /// One secret or public key; a `kid` is not looked at.
    One(DecodingKey),
    /// Secrets by `kid`, and the one for tokens without a `kid`.
    Named {
        by_kid: HashMap<String, DecodingKey>,
        unnamed: Option<DecodingKey>,
    },
}

/// Why a token was refused: logged, never shown (every refusal is the same 401).
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error(transparent)]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("its kid names no configured key")]
    UnknownKid,
    #[error("it has no kid and POS_GATEWAY_JWT_SECRET (the key of such tokens) is not set")]
    NoKid,
    #[error("it lives {lifetime} s, over the maximum of {max} s (POS_GATEWAY_JWT_MAX_TTL)")]
    TooLong { lifetime: u64, max: u64 },
}

impl TokenVerifier {
    pub fn new(
        key: &JwtKey,
        audience: &str,
        max_lifetime: Duration,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        let secret = |secret: &Secret| DecodingKey::from_secret(secret.expose().as_bytes());
        let (keys, algorithm) = match key {
            JwtKey::Secret(one) => (Keys::One(secret(one)), Algorithm::HS256),
            JwtKey::SecretSet(set) => (
                Keys::Named {
                    by_kid: set
                        .named()
                        .map(|(kid, named)| (kid.to_owned(), secret(named)))
                        .collect(),
                    unnamed: set.unnamed().map(secret),
                },
                Algorithm::HS256,
            ),
            JwtKey::PublicKey {
                algorithm: Algorithm::ES256,
                pem,
            } => (
                Keys::One(DecodingKey::from_ec_pem(pem.as_bytes())?),
                Algorithm::ES256,
            ),
            JwtKey::PublicKey { algorithm, pem } => (
                Keys::One(DecodingKey::from_rsa_pem(pem.as_bytes())?),
                *algorithm,
            ),
        };
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Ok(Self {
            keys,
            validation,
            max_lifetime: max_lifetime.as_secs(),
        })
    }

    /// The claims of a valid token; `None` for anything else (the caller answers one 401 for
    /// every kind of bad token, so the reason is only logged).
    pub fn verify(&self, token: &str) -> Option<Claims> {
        match self.check(token) {
            Ok(claims) => Some(claims),
            Err(e) => {
                tracing::info!(reason = %e, "refused a bearer token");
                None
            }
        }
    }

    fn check(&self, token: &str) -> Result<Claims, Refusal> {
        let key = match &self.keys {
            Keys::One(key) => key,
            Keys::Named { by_kid, unnamed } => match jsonwebtoken::decode_header(token)?.kid {
                Some(kid) => by_kid.get(&kid).ok_or(Refusal::UnknownKid)?,
                None => unnamed.as_ref().ok_or(Refusal::NoKid)?,
            },
        };
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)?.claims;
        let lifetime = claims.exp.saturating_sub(
            claims
                .iat
                .unwrap_or_else(jsonwebtoken::get_current_timestamp),
        );
        if lifetime > self.max_lifetime {
            return Err(Refusal::TooLong {
                lifetime,
                max: self.max_lifetime,
            });
        }
        Ok(claims)
    }
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithm", &self.validation.algorithms)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

/// Signs an HS256 token for `catalogs`, valid for `ttl`, without a `kid`.
pub fn issue_token(
    secret: &Secret,
    audience: &str,
    catalogs: Vec<String>,
    ttl: Duration,
) -> Result<(String, u64), jsonwebtoken::errors::Error> {
    sign_token(SigningKey { kid: None, secret }, audience, catalogs, ttl)
}

/// Signs an HS256 token for `catalogs`, valid for `ttl`, naming `key.kid` in its header.
pub fn sign_token(
    key: SigningKey<'_>,
    audience: &str,
    catalogs: Vec<String>,
    ttl: Duration,
) -> Result<(String, u64), jsonwebtoken::errors::Error> {
    let now = jsonwebtoken::get_current_timestamp();
    let exp = now.saturating_add(ttl.as_secs());
    let claims = Claims {
        exp,
        aud: audience.to_owned(),
        catalogs,
        iat: Some(now),
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = key.kid.map(str::to_owned);
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(key.secret.expose().as_bytes()),
    )?;
    Ok((token, exp))
}
