//! PostgreSQL connections, over TLS when the URL asks for it: rustls with the ring provider
//! (as reqwest uses it; no OpenSSL, no libpq), through `tokio-postgres-rustls`.
//!
//! The URL's `sslmode` means what it means to libpq:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (the default) | when the server offers it, else plain text | not checked |
//! | `require` | always | not checked; with `sslrootcert`, checked as `verify-ca` (libpq does the same) |
//! | `verify-ca` | always | must chain to a trusted root |
//! | `verify-full` | always | must chain to a trusted root and name the host in the URL |
//!
//! Trusted roots: the PEM file `sslrootcert` names (one or more certificates), or, without
//! it (or with `sslrootcert=system`), the public web roots of `webpki-roots`. `allow`, client
//! certificates (`sslcert`, `sslkey`) and revocation lists (`sslcrl`) are refused with a
//! message rather than ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use diesel::ConnectionResult;
use diesel_async::AsyncPgConnection;
use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// `sslmode`, as libpq spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, String> {
        match value {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            "allow" => Err(
                "sslmode=allow is not supported (it prefers plain text): use disable, prefer, \
                 require, verify-ca or verify-full"
                    .to_owned(),
            ),
            // An unknown value is repeated: it is a word from a short list, not a secret.
            other => Err(format!(
                "sslmode '{other}' is not one of disable, prefer, require, verify-ca, verify-full"
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres itself is told: whether to ask for TLS and whether to insist.
    fn negotiation(self) -> &'static str {
        match self {
            Self::Disable => "sslmode=disable",
            Self::Prefer => "sslmode=prefer",
            Self::Require | Self::VerifyCa | Self::VerifyFull => "sslmode=require",
        }
    }
}

/// Where the trusted roots come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Roots {
    /// `webpki-roots`: the public web's roots.
    Web,
    /// A PEM file (`sslrootcert=PATH`).
    File(PathBuf),
}

/// How the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Encrypted, not authenticated: a passive listener learns nothing, an active one can
    /// pretend to be the server (libpq's `prefer` and `require`).
    Nothing,
    /// The chain, not the name (`verify-ca`).
    Chain,
    /// The chain and the host name (`verify-full`).
    Full,
}

/// A PostgreSQL server to connect to: the URL parsed once, and the TLS set-up it asks for.
/// `Debug` shows neither the URL nor the password.
#[derive(Clone)]
pub(crate) struct PgTarget {
    config: tokio_postgres::Config,
    mode: SslMode,
    roots: Roots,
    tls: Option<MakeRustlsConnect>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("sslmode", &self.mode)
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl PgTarget {
    /// Reads a `postgres://` URL. The error never repeats the URL (it may hold a password).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut mode = SslMode::Prefer;
        let mut root_file: Option<String> = None;
        let mut kept: Vec<&str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key)?;
            match key.as_str() {
                "sslmode" => mode = SslMode::parse(&decode(value)?)?,
                "sslrootcert" => root_file = Some(decode(value)?),
                "sslcert" | "sslkey" | "sslpassword" | "sslcertmode" => {
                    return Err(format!(
                        "{key}: client certificates are not supported; authenticate with a \
                         password (over sslmode=verify-full)"
                    ));
                }
                "sslcrl" | "sslcrldir" => {
                    return Err(format!(
                        "{key}: certificate revocation lists are not supported"
                    ));
                }
                _ => kept.push(pair),
            }
        }
        let roots = match root_file.as_deref() {
            None | Some("system") => Roots::Web,
            Some("") => return Err("sslrootcert is empty: give the path of a PEM file".into()),
            Some(path) => Roots::File(PathBuf::from(path)),
        };
        let check = match mode {
            SslMode::Disable | SslMode::Prefer => Check::Nothing,
            SslMode::Require if roots == Roots::Web => Check::Nothing,
            SslMode::Require | SslMode::VerifyCa => Check::Chain,
            SslMode::VerifyFull => Check::Full,
        };
        kept.push(mode.negotiation());
        // tokio-postgres takes the scheme in lower case only.
        let base = match base.split_once("://") {
            Some((scheme, rest)) => format!("{}://{rest}", scheme.to_ascii_lowercase()),
            None => base.to_owned(),
        };
        let rewritten = format!("{base}?{}", kept.join("&"));
        // Its messages name the option at fault, never a value.
        let config: tokio_postgres::Config = rewritten.parse().map_err(
            |e: tokio_postgres::Error| match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            },
        )?;
        let tls = match mode {
            SslMode::Disable => None,
            _ => Some(MakeRustlsConnect::new(client_config(check, &roots)?)),
        };
        Ok(Self {
            config,
            mode,
            roots,
            tls,
        })
    }

    /// Opens one connection, driven on the current runtime.
    pub(crate) async fn connect(&self) -> ConnectionResult<AsyncPgConnection> {
        match &self.tls {
            None => {
                let (client, connection) = self
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| self.connect_error(&e))?;
                AsyncPgConnection::try_from_client_and_connection(client, connection).await
            }
            Some(tls) => {
                let (client, connection) = self
                    .config
                    .connect(tls.clone())
                    .await
                    .map_err(|e| self.connect_error(&e))?;
                AsyncPgConnection::try_from_client_and_connection(client, connection).await
            }
        }
    }

    /// tokio-postgres's own message, and for a refused certificate what was checked and how
    /// to fix it.
    fn connect_error(&self, error: &tokio_postgres::Error) -> diesel::ConnectionError {
        let message = match refused_certificate(error) {
            Some(reason) => {
                let against = match &self.roots {
                    Roots::Web => "the public web roots (webpki-roots), as no sslrootcert is \
                                   set; a server with a private CA needs \
                                   sslrootcert=/path/to/ca.pem in the URL"
                        .to_owned(),
                    Roots::File(path) => format!("the roots in sslrootcert={}", path.display()),
                };
                let name = if matches!(
                    reason,
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                ) {
                    " (verify-full also checks that the certificate names the host of the URL)"
                } else {
                    ""
                };
                format!(
                    "the server's TLS certificate was refused under sslmode={}: {reason}; it was \
                     checked against {against}{name}",
                    self.mode.as_str()
                )
            }
            None => error.to_string(),
        };
        diesel::ConnectionError::BadConnection(message)
    }
}

fn decode(text: &str) -> Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| "a query parameter of the database URL is not UTF-8".to_owned())
}

/// The rustls error under a failed handshake, when it is the server's certificate.
fn refused_certificate(error: &tokio_postgres::Error) -> Option<CertificateError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        // tokio-rustls wraps rustls's error in an io::Error, whose `source` skips it.
        let inner = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(current), inner].into_iter().flatten() {
            if let Some(rustls::Error::InvalidCertificate(reason)) =
                candidate.downcast_ref::<rustls::Error>()
            {
                return Some(reason.clone());
            }
        }
        source = current.source();
    }
    None
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(check: Check, roots: &Roots) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::Nothing => Arc::new(Unchecked {
            provider: Arc::clone(&provider),
        }),
        Check::Chain | Check::Full => {
            let store = root_store(roots)?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(&provider))
                    .build()
                    .map_err(|e| format!("sslrootcert: {e}"))?;
            if check == Check::Full {
                webpki
            } else {
                Arc::new(ChainOnly { webpki })
            }
        }
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // What PostgreSQL 17 expects of a TLS client; older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

fn root_store(roots: &Roots) -> Result<RootCertStore, String> {
    match roots {
        Roots::Web => Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        Roots::File(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("sslrootcert: cannot read {}: {e}", path.display()))?;
            let mut store = RootCertStore::empty();
            for certificate in CertificateDer::pem_slice_iter(&pem) {
                let certificate = certificate.map_err(|e| not_pem(path, &e.to_string()))?;
                store
                    .add(certificate)
                    .map_err(|e| not_pem(path, &e.to_string()))?;
            }
            if store.is_empty() {
                return Err(not_pem(path, "it holds no CERTIFICATE block"));
            }
            Ok(store)
        }
    }
}

fn not_pem(path: &Path, why: &str) -> String {
    format!(
        "sslrootcert: {} is not a PEM file of CA certificates: {why}",
        path.display()
    )
}

/// `verify-ca`: the chain must lead to a trusted root; the name in it is not compared with
/// the host (rustls checks the name last, after the chain).
#[derive(Debug)]
struct ChainOnly {
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `prefer` and `require`: any certificate is accepted, but the handshake's signatures are
/// still checked against it, so the session is encrypted to whoever holds its key.
#[derive(Debug)]
struct Unchecked {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn refused(url: &str) -> String {
        match PgTarget::parse(url) {
            Err(e) => e,
            Ok(_) => String::from("accepted"),
        }
    }

    #[test]
    fn sslmode_is_read_as_libpq_reads_it() {
        for (url, mode) in [
            ("postgres://u:p@h/db", SslMode::Prefer),
            ("postgres://u:p@h/db?sslmode=disable", SslMode::Disable),
            ("postgres://u:p@h/db?sslmode=prefer", SslMode::Prefer),
            ("postgres://u:p@h/db?sslmode=require", SslMode::Require),
            (
                "postgres://u:p@h/db?application_name=x&sslmode=verify-ca",
                SslMode::VerifyCa,
            ),
            (
                "postgres://u:p@h/db?sslmode=verify%2Dfull",
                SslMode::VerifyFull,
            ),
        ] {
            let target = PgTarget::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(target.mode, mode, "{url}");
            assert_eq!(target.tls.is_none(), mode == SslMode::Disable, "{url}");
        }
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_and_the_password_never_repeated() {
        for (url, expected) in [
            ("postgres://u:hunter2@h/db?sslmode=allow", "sslmode=allow"),
            ("postgres://u:hunter2@h/db?sslmode=strict", "'strict'"),
            (
                "postgres://u:hunter2@h/db?sslcert=c.pem",
                "client certificates",
            ),
            ("postgres://u:hunter2@h/db?sslcrl=x.pem", "revocation"),
            (
                "postgres://u:hunter2@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
                "cannot read /nonexistent/ca.pem",
            ),
            ("postgres://u:hunter2@h/db?frobnicate=1", "frobnicate"),
        ] {
            let message = refused(url);
            assert!(message.contains(expected), "{url}: {message}");
            assert!(!message.contains("hunter2"), "{url}: {message}");
        }
        let dir = std::env::temp_dir().join(format!("pos-gateway-tls-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("not-a-ca.pem");
        let _ = std::fs::write(&file, "hello");
        let message = refused(&format!(
            "postgres://h/db?sslmode=verify-ca&sslrootcert={}",
            file.display()
        ));
        assert!(message.contains("no CERTIFICATE block"), "{message}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn require_checks_the_chain_when_given_a_root_as_libpq_does() {
        let target = PgTarget::parse("postgres://h/db?sslmode=require").unwrap_or_else(|e| {
            panic!("{e}");
        });
        assert_eq!(target.roots, Roots::Web);
        // With sslrootcert, `require` reads the file (and fails on a missing one).
        assert!(
            refused("postgres://h/db?sslmode=require&sslrootcert=/nonexistent.pem")
                .contains("cannot read")
        );
        // `prefer` never checks, so it does not read the file.
        assert!(
            PgTarget::parse("postgres://h/db?sslmode=prefer&sslrootcert=/nonexistent.pem").is_ok()
        );
        assert!(PgTarget::parse("postgres://h/db?sslmode=verify-full&sslrootcert=system").is_ok());
    }

    #[test]
    fn debug_shows_no_password() {
        let target = PgTarget::parse("postgres://u:hunter2@h/db?sslmode=require")
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{target:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Require"), "{shown}");
    }
}
