//! Test helpers: a real server on a random port over a fresh database, and a client that reads
//! like a kiosk's session.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::time::Duration;

use http_api::config::{Config, JwtKey, Secret};
use persistence::Database;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use testkit::pg::TestDatabase;

/// As `openssl rand -base64 32` makes: the gateway refuses weaker HS256 secrets.
pub const SECRET: &str = "dD2QENjpSgvUDS5S6xoxHOZGU366SjI4Hh/svPJVQPw=";

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    /// The operations listener's `http://host:port`, when the config asked for one.
    pub ops_address: Option<String>,
    pub client: reqwest::Client,
    pub database: Database,
    pub config: Config,
    /// The PostgreSQL database, dropped with the app (its server's connections go with it).
    postgres: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

/// A database of its own for one test: a SQLite file in `dir`, or a new PostgreSQL database
/// on the server `TEST_DATABASE_URL` names, dropped with the returned guard.
pub async fn fresh_database(db: Db, dir: &tempfile::TempDir) -> (String, Option<TestDatabase>) {
    match db {
        Db::Sqlite => (
            format!("sqlite://{}", dir.path().join("test.db").display()),
            None,
        ),
        Db::Postgres => {
            let database = TestDatabase::create().await;
            (database.url().to_owned(), Some(database))
        }
    }
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with_key(db, JwtKey::Secret(Secret::new(SECRET))).await
}

/// The same, checking tokens with `key` (e.g. an ES256 public key).
pub async fn spawn_app_with_key(db: Db, key: JwtKey) -> TestApp {
    spawn_configured(db, key, |_| {}).await
}

/// The same, with the configuration changed by `configure` first (limits, deadlines, an
/// operations listener: `ops_listen = Some("127.0.0.1:0")` binds a free port).
pub async fn spawn_app_with(db: Db, configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_configured(db, JwtKey::Secret(Secret::new(SECRET)), configure).await
}

async fn spawn_configured(db: Db, key: JwtKey, configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (url, postgres) = fresh_database(db, &dir).await;
    let database = Database::connect(&url).await.unwrap();
    database.migrate().await.unwrap();
    let mut config = Config {
        database_url: url,
        jwt_key: Some(key),
        credentials_key: Some(persistence::CredentialsKey::from_bytes(&[7; 32])),
        // Tests send bursts no kiosk would (50 bulks at once): they run without the
        // per-catalog budget and bulk cap, except those that test them (`limits.rs`).
        catalog_rate: None,
        max_bulks_in_flight: 1024,
        ..Config::default()
    };
    configure(&mut config);
    serve(config, database, postgres, dir)
}

/// Serves `config` over `database` on a free port.
fn serve(
    config: Config,
    database: Database,
    postgres: Option<TestDatabase>,
    dir: tempfile::TempDir,
) -> TestApp {
    let state = http_api::app::state(&config, database.clone()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let ops = config
        .ops_listen
        .as_deref()
        .map(|ops| TcpListener::bind(ops).unwrap());
    let ops_address = ops
        .as_ref()
        .map(|ops| format!("http://{}", ops.local_addr().unwrap()));
    let servers = http_api::app::servers(state, listener, ops).unwrap();
    tokio::spawn(servers.run());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    TestApp {
        address,
        ops_address,
        client,
        database,
        config,
        postgres,
        _dir: dir,
    }
}

impl TestApp {
    /// Another gateway on this app's database (a second replica behind the same load
    /// balancer), with the same configuration and its own pools, vendor clients and caches.
    pub async fn replica(&self) -> TestApp {
        let database = Database::connect(&self.config.database_url).await.unwrap();
        serve(
            self.config.clone(),
            database,
            None,
            tempfile::tempdir().unwrap(),
        )
    }

    /// Drops the app's PostgreSQL database under the running server, as an outage would.
    pub async fn drop_postgres_database(&mut self) {
        let database = self
            .postgres
            .take()
            .expect("the app runs on PostgreSQL (Db::Postgres)");
        database.drop_database().await.unwrap();
    }

    /// Adds a store with `vendor` and catalog `catalog`; returns the store id.
    pub async fn add_store(&self, catalog: &str, vendor: domain::Vendor) -> domain::StoreId {
        self.insert_store(catalog, vendor, &json!({})).await
    }

    /// Adds a store on a vendor POS with `config` (credentials, `base_url` to a double) and
    /// catalog `catalog`, as `store add` would.
    pub async fn add_vendor_store(
        &self,
        catalog: &str,
        vendor: domain::Vendor,
        config: Value,
    ) -> domain::StoreId {
        pos_adapters::validate_config(vendor, &config).unwrap();
        self.insert_store(catalog, vendor, &config).await
    }

    async fn insert_store(
        &self,
        catalog: &str,
        vendor: domain::Vendor,
        config: &Value,
    ) -> domain::StoreId {
        let stores = self
            .database
            .clone()
            .with_credentials_key(self.config.credentials_key.clone())
            .stores();
        let store = stores
            .add_store(&format!("store of {catalog}"), vendor, config)
            .await
            .unwrap();
        stores
            .add_catalog(store.id, &domain::CatalogId::parse(catalog).unwrap())
            .await
            .unwrap();
        store.id
    }

    pub fn token(&self, catalogs: &[&str]) -> String {
        http_api::auth::issue_token(
            &Secret::new(SECRET),
            "pos-gateway",
            catalogs.iter().map(|c| (*c).to_owned()).collect(),
            Duration::from_secs(600),
        )
        .unwrap()
        .0
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    pub async fn create(&self, catalog: &str, customer: Value) -> Response {
        let token = self.token(&[catalog]);
        self.request(
            reqwest::Method::POST,
            &format!("/api/v1/{catalog}/customers"),
            &token,
        )
        .json(&json!({ "customer": customer }))
        .send()
        .await
        .unwrap()
    }

    pub async fn get_json(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let response = self
            .request(reqwest::Method::GET, path, token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }
}

pub async fn body(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value)
}

pub fn john() -> Value {
    json!({"first_name": "John", "last_name": "Doe", "email": "john.doe@example.com", "phone": "555-123-4567"})
}

/// Runs an async test body once on SQLite and once on PostgreSQL (`main.rs` declares this
/// module first, with `#[macro_use]`, so every test module can use it).
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Db::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Db::Postgres).await })*
        }
    };
}
