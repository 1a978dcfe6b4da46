//! Bearer tokens: checking them, and making them for the CLI.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::{JwtKey, Secret, SigningKey};

/// The claims the contract requires.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
///
/// A kiosk sends the same token with every request, so the claims of a token that passed are
/// kept (by the SHA-256 of the token: no bearer token is held in memory) and a later request
/// with it is checked against its `exp` alone: no signature, no JSON. Bounded
/// ([`VERIFIED_TOKENS`], least recently used out first); refusals are never kept.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Keys,
    validation: Validation,
    /// The longest `exp - iat` (or `exp - now` without `iat`), in seconds.
    max_lifetime: u64,
    verified: Arc<quick_cache::sync::Cache<[u8; 32], Arc<Claims>>>,
}

/// Tokens whose claims are kept: a few per kiosk for thousands of kiosks (a token is a kiosk's
/// for hours, so the hits are nearly all requests).
pub const VERIFIED_TOKENS: usize = 10_000;

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
            verified: Arc::new(quick_cache::sync::Cache::new(VERIFIED_TOKENS)),
        })
    }

    /// The claims of a valid token; `None` for anything else (the caller answers one 401 for
    /// every kind of bad token, so the reason is only logged).
    pub fn verify(&self, token: &str) -> Option<Arc<Claims>> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest) {
            // Passed before; only time can have made it invalid since (the same leeway as a
            // full check). `nbf` was in the past then, so it still is.
            if jsonwebtoken::get_current_timestamp()
                <= claims.exp.saturating_add(self.validation.leeway)
            {
                return Some(claims);
            }
            self.verified.remove(&digest);
            tracing::info!(reason = "it has expired", "refused a bearer token");
            return None;
        }
        match self.check(token) {
            Ok(claims) => {
                let claims = Arc::new(claims);
                self.verified.insert(digest, claims.clone());
                Some(claims)
            }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SECRET: &str = "wZ8ahtb2e5gkHZPABkwKOI6TXyudD5vihKEY7B5FOV0=";

    fn verifier() -> TokenVerifier {
        let key = JwtKey::Secret(Secret::new(SECRET));
        TokenVerifier::new(&key, "pos-gateway", Duration::from_secs(3600)).unwrap()
    }

    fn token(ttl: Duration) -> String {
        issue_token(&Secret::new(SECRET), "pos-gateway", vec!["a".into()], ttl)
            .unwrap()
            .0
    }

    #[test]
    fn a_token_that_passed_is_kept_until_it_expires() {
        let mut verifier = verifier();
        // No leeway, so the kept claims run out within the test.
        verifier.validation.leeway = 0;
        let token = token(Duration::from_secs(1));
        let first = verifier.verify(&token).unwrap();
        assert_eq!(verifier.verified.len(), 1);
        let again = verifier.verify(&token).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the kept claims, not a new check"
        );
        std::thread::sleep(Duration::from_millis(2100));
        assert!(verifier.verify(&token).is_none(), "expired, kept or not");
        assert_eq!(verifier.verified.len(), 0);
    }

    #[test]
    fn a_refused_token_is_never_kept() {
        let verifier = verifier();
        let good = token(Duration::from_secs(60));
        let (head, _signature) = good.rsplit_once('.').unwrap();
        let forged = format!("{head}.AAAA");
        for _ in 0..2 {
            assert!(verifier.verify(&forged).is_none());
        }
        let too_long = token(Duration::from_secs(7200));
        assert!(verifier.verify(&too_long).is_none());
        assert_eq!(verifier.verified.len(), 0);
        // The forged token's claims are the good one's: only the good one is let in.
        assert!(verifier.verify(&good).is_some());
        assert!(verifier.verify(&forged).is_none());
    }
}
