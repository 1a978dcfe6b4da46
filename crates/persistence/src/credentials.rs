//! Vendor credentials at rest: a store's config JSON is sealed with XChaCha20-Poly1305
//! (RustCrypto's `chacha20poly1305`) under the deployment's credentials key before it is
//! written, and opened when it is read.
//!
//! Stored form: `v1:` then standard base64 of a random 24-byte nonce followed by the ciphertext
//! and its 16-byte tag. The store's vendor and name are the associated data, so a sealed config
//! copied onto another store's row does not open. An empty config (`{}`, the `local` vendor's)
//! holds no secret and is stored as plain `{}`, so a deployment without vendor stores needs no
//! key.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead as _, OsRng, Payload};
use chacha20poly1305::{AeadCore as _, KeyInit as _, XChaCha20Poly1305, XNonce};
use domain::Vendor;
use zeroize::Zeroizing;

/// The prefix of a sealed config; the number changes with the format or algorithm.
const SEALED_V1: &str = "v1:";
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

/// What the key must look like; repeated by every parse error, which never repeats the value.
pub const KEY_FORMAT: &str = "32 random bytes written as 64 hex digits or as base64 \
     (standard or URL-safe), e.g. the output of `openssl rand -hex 32`";

/// The 32-byte key vendor credentials are sealed with. `Debug` does not print it, and its bytes
/// are zeroed when it is dropped.
#[derive(Clone)]
pub struct CredentialsKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for CredentialsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsKey(<redacted>)")
    }
}

/// A credentials key that is not 32 bytes in hex or base64. Holds nothing of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be {KEY_FORMAT}")]
pub struct InvalidCredentialsKey;

/// Why a config could not be sealed or opened. No variant holds any of the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("encryption failed")]
    Seal,
    /// Wrong key, or the stored text was altered or moved from another store.
    #[error("cannot be decrypted with this key (a different key, or the value was altered)")]
    Open,
    #[error("is not in a known encrypted form")]
    Format,
}

impl CredentialsKey {
    /// Reads a key given as 64 hex digits or as base64 (standard or URL-safe, padded or not)
    /// of exactly 32 bytes. Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, InvalidCredentialsKey> {
        let text = text.trim();
        let bytes = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok().map(Zeroizing::new)
        } else {
            [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
                .into_iter()
                .find_map(|engine| engine.decode(text).ok())
                .map(Zeroizing::new)
        }
        .ok_or(InvalidCredentialsKey)?;
        let bytes: &[u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| InvalidCredentialsKey)?;
        Ok(Self::from_bytes(bytes))
    }

    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }

    /// Encrypts `config` for the store `vendor`/`name`, with a fresh random nonce.
    pub fn seal(
        &self,
        config: &serde_json::Value,
        vendor: Vendor,
        name: &str,
    ) -> Result<String, CredentialsError> {
        let plaintext = Zeroizing::new(config.to_string().into_bytes());
        self.seal_bytes(&plaintext, &associated_data(vendor, name))
    }

    /// Encrypts `plaintext` bound to `context` (the associated data: what it belongs to), in
    /// the same form as a store config. For other secrets than configs (vendor tokens).
    pub(crate) fn seal_bytes(
        &self,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<String, CredentialsError> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CredentialsError::Seal)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_V1}{}", STANDARD.encode(sealed)))
    }

    /// Decrypts what [`seal`](Self::seal) made for the same store.
    pub fn open(
        &self,
        sealed: &str,
        vendor: Vendor,
        name: &str,
    ) -> Result<serde_json::Value, CredentialsError> {
        let plaintext = self.open_bytes(sealed, &associated_data(vendor, name))?;
        // Authenticated, so this is our own JSON; a failure means a bug, not an attacker.
        serde_json::from_slice(&plaintext).map_err(|_| CredentialsError::Format)
    }

    /// Decrypts what [`seal_bytes`](Self::seal_bytes) made with the same `aad`.
    pub(crate) fn open_bytes(
        &self,
        sealed: &str,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CredentialsError> {
        let encoded = sealed
            .strip_prefix(SEALED_V1)
            .ok_or(CredentialsError::Format)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| CredentialsError::Format)?;
        let (nonce, ciphertext) = bytes
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(CredentialsError::Format)?;
        self.cipher
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CredentialsError::Open)
    }
}

/// A SQL `LIKE` pattern matching sealed configs.
pub(crate) const SEALED_LIKE: &str = "v1:%";

/// Whether a stored config is sealed (as opposed to a plain, empty `{}`).
pub(crate) fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_V1)
}

/// Whether a config holds nothing to protect, so it may be stored as plain `{}`.
pub(crate) fn is_empty_config(config: &serde_json::Value) -> bool {
    config.as_object().is_some_and(serde_json::Map::is_empty)
}

/// Binds a sealed config to its store: the vendor and the (unique) store name.
fn associated_data(vendor: Vendor, name: &str) -> Vec<u8> {
    format!("pos-gateway store config\0{vendor}\0{name}").into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use serde_json::json;

    const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn key() -> CredentialsKey {
        CredentialsKey::parse(HEX_KEY).unwrap()
    }

    fn secret_config() -> serde_json::Value {
        json!({"client_id": "kiosk-client", "api_key": "sk_live_TOPSECRET", "dispensary": "main"})
    }

    #[test]
    fn seal_then_open_gives_the_config_back() {
        let config = secret_config();
        let sealed = key().seal(&config, Vendor::Treez, "Main Street").unwrap();
        assert!(sealed.starts_with("v1:"), "{sealed}");
        assert!(is_sealed(&sealed));
        assert_eq!(
            key().open(&sealed, Vendor::Treez, "Main Street").unwrap(),
            config
        );
    }

    #[test]
    fn a_sealed_config_does_not_contain_the_secrets() {
        let sealed = key()
            .seal(&secret_config(), Vendor::Treez, "Main Street")
            .unwrap();
        for plain in ["TOPSECRET", "sk_live", "kiosk-client", "api_key", "main"] {
            assert!(!sealed.contains(plain), "{plain} in {sealed}");
        }
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let config = secret_config();
        let a = key().seal(&config, Vendor::Treez, "s").unwrap();
        let b = key().seal(&config, Vendor::Treez, "s").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn the_wrong_key_does_not_open_it() {
        let sealed = key().seal(&secret_config(), Vendor::Treez, "s").unwrap();
        let other = CredentialsKey::from_bytes(&[7; 32]);
        assert_eq!(
            other.open(&sealed, Vendor::Treez, "s"),
            Err(CredentialsError::Open)
        );
    }

    #[test]
    fn a_tampered_value_does_not_open() {
        let sealed = key().seal(&secret_config(), Vendor::Treez, "s").unwrap();
        let mut bytes = STANDARD.decode(&sealed[3..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("v1:{}", STANDARD.encode(&bytes));
        assert_eq!(
            key().open(&tampered, Vendor::Treez, "s"),
            Err(CredentialsError::Open)
        );
        bytes[last] ^= 1;
        bytes[30] ^= 0x80; // in the ciphertext proper
        let tampered = format!("v1:{}", STANDARD.encode(&bytes));
        assert_eq!(
            key().open(&tampered, Vendor::Treez, "s"),
            Err(CredentialsError::Open)
        );
        for garbage in ["v1:", "v1:!!!", "v1:AAAA", "v2:AAAA", "{}"] {
            assert!(
                key().open(garbage, Vendor::Treez, "s").is_err(),
                "{garbage}"
            );
        }
    }

    #[test]
    fn a_config_sealed_for_one_store_does_not_open_for_another() {
        let sealed = key().seal(&secret_config(), Vendor::Treez, "A").unwrap();
        assert_eq!(
            key().open(&sealed, Vendor::Treez, "B"),
            Err(CredentialsError::Open)
        );
        assert_eq!(
            key().open(&sealed, Vendor::Flowhub, "A"),
            Err(CredentialsError::Open)
        );
    }

    #[test]
    fn keys_are_32_bytes_in_hex_or_base64() {
        let bytes: Vec<u8> = (0u8..32).collect();
        let sealed = key().seal(&json!({"k": 1}), Vendor::Cova, "s").unwrap();
        for text in [
            HEX_KEY.to_owned(),
            HEX_KEY.to_uppercase(),
            format!("  {HEX_KEY}\n"),
            STANDARD.encode(&bytes),
            STANDARD_NO_PAD.encode(&bytes),
            URL_SAFE.encode(&bytes),
            URL_SAFE_NO_PAD.encode(&bytes),
        ] {
            let parsed = CredentialsKey::parse(&text).unwrap();
            assert_eq!(
                parsed.open(&sealed, Vendor::Cova, "s").unwrap(),
                json!({"k": 1}),
                "{text}"
            );
        }
        for bad in [
            "",
            "hunter2",
            &HEX_KEY[..62],
            &format!("{HEX_KEY}00"),
            &STANDARD.encode([1u8; 16]),
            &STANDARD.encode([1u8; 33]),
            "correct horse battery staple correct horse battery staple 12345",
        ] {
            assert_eq!(
                CredentialsKey::parse(bad).err(),
                Some(InvalidCredentialsKey),
                "{bad}"
            );
        }
    }

    #[test]
    fn neither_the_key_nor_its_errors_print_the_value() {
        let shown = format!("{:?}", key());
        assert!(!shown.contains("0001"), "{shown}");
        let error = CredentialsKey::parse("hunter2hunter2").err().unwrap();
        let message = error.to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("openssl rand -hex 32"), "{message}");
    }

    #[test]
    fn only_an_empty_object_counts_as_empty() {
        assert!(is_empty_config(&json!({})));
        assert!(!is_empty_config(&json!({"a": 1})));
        assert!(!is_empty_config(&json!(null)));
        assert!(!is_empty_config(&json!([])));
    }
}
