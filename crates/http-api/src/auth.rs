//! Bearer tokens: checking them, and making them for the CLI.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{JwtKey, Secret};

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
/// confusion (an HS256 token signed with a public key) are refused.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn new(key: &JwtKey, audience: &str) -> Result<Self, jsonwebtoken::errors::Error> {
        let (key, algorithm) = match key {
            JwtKey::Secret(secret) => (
                DecodingKey::from_secret(secret.expose().as_bytes()),
                Algorithm::HS256,
            ),
            JwtKey::PublicKey {
                algorithm: Algorithm::ES256,
                pem,
            } => (DecodingKey::from_ec_pem(pem.as_bytes())?, Algorithm::ES256),
            JwtKey::PublicKey { algorithm, pem } => {
                (DecodingKey::from_rsa_pem(pem.as_bytes())?, *algorithm)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.leeway = 30;
        Ok(Self { key, validation })
    }

    /// The claims of a valid token; `None` for anything else (the caller answers one 401 for
    /// every kind of bad token, so the reason is only logged).
    pub fn verify(&self, token: &str) -> Option<Claims> {
        match jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation) {
            Ok(data) => Some(data.claims),
            Err(e) => {
                tracing::info!(reason = %e, "refused a bearer token");
                None
            }
        }
    }
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithm", &self.validation.algorithms)
            .finish()
    }
}

/// Signs an HS256 token for `catalogs`, valid for `ttl`.
pub fn issue_token(
    secret: &Secret,
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
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )?;
    Ok((token, exp))
}
