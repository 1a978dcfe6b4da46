//! PostgreSQL over TLS, against real servers: a throw-away cluster with `ssl = on` and a
//! certificate made for this run (a CA of its own signs a server certificate for 127.0.0.1
//! only), and the shared server `TEST_DATABASE_URL` names for `sslmode=disable`.
//!
//! Whether a session is encrypted is asked of the server (`pg_stat_ssl`), from a plain
//! connection of the test's own, by the `application_name` each `Database` is given.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::sync::OnceLock;

use persistence::Database;
use testkit::pg::TestDatabase;
use testkit::pg_cluster::Cluster;

/// The cluster with TLS, started once for the binary's tests (its watchdog stops it when the
/// test process ends), and the CA file that verifies it.
struct TlsServer {
    cluster: Cluster,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn tls_server() -> &'static TlsServer {
    static SERVER: OnceLock<TlsServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        ca.distinguished_name = rcgen::DistinguishedName::new();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "pos-gateway test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();

        // For the IP address only: `localhost` is not in it, so verify-full to localhost fails.
        let server_key = rcgen::KeyPair::generate().unwrap();
        let mut server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        server.distinguished_name = rcgen::DistinguishedName::new();
        server
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pos-gateway test server");
        let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();

        let cluster = Cluster::builder()
            .setting("ssl", "on")
            .file("server.crt", server_cert.pem())
            .file("server.key", server_key.serialize_pem())
            .start()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        TlsServer {
            cluster,
            ca_file,
            _dir: dir,
        }
    })
}

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{params}")
}

/// Whether the sessions named `application` on the server at `admin_url` are encrypted:
/// `Some(ssl)` when there is at least one and they all agree.
async fn session_ssl(admin_url: &str, application: &str) -> Option<bool> {
    let (client, connection) = tokio_postgres::connect(
        &with_params(admin_url, "sslmode=disable"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&application],
        )
        .await
        .unwrap();
    let ssl: Vec<bool> = rows.iter().map(|row| row.get(0)).collect();
    match ssl.as_slice() {
        [] => None,
        [first, rest @ ..] if rest.iter().all(|s| s == first) => Some(*first),
        mixed => panic!("sessions of {application} disagree: {mixed:?}"),
    }
}

async fn connect(url: &str) -> Result<Database, String> {
    Database::connect(url).await.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_encrypts_the_session_and_migrations_run_over_it() {
    let server = tls_server();
    let url = with_params(
        &server.cluster.url(),
        "sslmode=require&application_name=tls_require",
    );
    let database = connect(&url).await.unwrap();
    database.migrate().await.unwrap();
    database.ping().await.unwrap();
    assert_eq!(
        session_ssl(&server.cluster.url(), "tls_require").await,
        Some(true),
        "the pooled session is TLS"
    );
    // The repositories work over it.
    let store = database
        .stores()
        .add_store("Over TLS", domain::Vendor::Local, &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(
        database
            .stores()
            .get_store(store.id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "Over TLS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sslmode_tls_is_used_when_the_server_offers_it() {
    let server = tls_server();
    let url = with_params(&server.cluster.url(), "application_name=tls_default");
    let _database = connect(&url).await.unwrap();
    assert_eq!(
        session_ssl(&server.cluster.url(), "tls_default").await,
        Some(true),
        "libpq's default, prefer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_connects_with_the_servers_ca() {
    let server = tls_server();
    let url = with_params(
        &server.cluster.url(),
        &format!(
            "sslmode=verify-full&sslrootcert={}&application_name=tls_verify_full",
            server.ca_file.display()
        ),
    );
    let database = connect(&url).await.unwrap();
    database.migrate().await.unwrap();
    assert_eq!(
        session_ssl(&server.cluster.url(), "tls_verify_full").await,
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_without_the_ca_is_refused_saying_why() {
    let server = tls_server();
    let url = with_params(
        &server
            .cluster
            .url()
            .replace("postgres@", "postgres:hunter2@"),
        "sslmode=verify-full",
    );
    let message = connect(&url).await.expect_err("an unknown CA is refused");
    for expected in [
        "could not connect to the PostgreSQL database",
        "TLS certificate was refused under sslmode=verify-full",
        "UnknownIssuer",
        "sslrootcert=",
    ] {
        assert!(message.contains(expected), "{expected}: {message}");
    }
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let server = tls_server();
    // The certificate names 127.0.0.1, not localhost.
    let localhost = server.cluster.url().replace("127.0.0.1", "localhost");
    let root = format!("sslrootcert={}", server.ca_file.display());
    let message = connect(&with_params(
        &localhost,
        &format!("sslmode=verify-full&{root}"),
    ))
    .await
    .expect_err("a certificate for another name is refused");
    assert!(
        message.contains("not valid for name \"localhost\""),
        "{message}"
    );
    assert!(message.contains("names the host"), "{message}");

    connect(&with_params(
        &localhost,
        &format!("sslmode=verify-ca&{root}"),
    ))
    .await
    .unwrap();
    // `require` with a root file checks the chain as verify-ca does: a file with another CA
    // makes it fail.
    let other_ca = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, other_ca.pem()).unwrap();
    let message = connect(&with_params(
        &server.cluster.url(),
        &format!("sslmode=require&sslrootcert={}", other.display()),
    ))
    .await
    .expect_err("require with a root file checks the chain");
    assert!(message.contains("under sslmode=require"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_disable_works_on_the_plain_server_and_stays_plain() {
    let scratch = TestDatabase::create().await;
    let url = with_params(
        scratch.url(),
        "sslmode=disable&application_name=tls_disable",
    );
    let database = connect(&url).await.unwrap();
    database.migrate().await.unwrap();
    database.ping().await.unwrap();
    assert_eq!(session_ssl(scratch.url(), "tls_disable").await, Some(false));

    let server = tls_server();
    let url = with_params(
        &server.cluster.url(),
        "sslmode=disable&application_name=tls_disable_on_tls",
    );
    let _plain = connect(&url).await.unwrap();
    assert_eq!(
        session_ssl(&server.cluster.url(), "tls_disable_on_tls").await,
        Some(false),
        "disable never asks for TLS, even of a server that has it"
    );
    drop(database);
    scratch.drop_database().await.unwrap();
}
