//! Test helpers: a real server on a random port over a fresh database, and a client that reads
//! like a kiosk's session.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::time::Duration;

use http_api::config::{Config, JwtKey, Secret};
use persistence::Database;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789";

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database: Database,
    pub config: Config,
    _dir: tempfile::TempDir,
}

/// A database of its own for one test: a temp SQLite file, or a new PostgreSQL database on the
/// server that `TEST_DATABASE_URL` names.
pub async fn fresh_database_url(db: Db, dir: &tempfile::TempDir) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("test.db").display()),
        Db::Postgres => {
            let admin = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
                panic!("TEST_DATABASE_URL is not set: run `cargo xtask test`, or set it to a PostgreSQL URL whose user may CREATE DATABASE")
            });
            let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .expect("connect to TEST_DATABASE_URL");
            tokio::spawn(connection);
            let name = format!("pgw_http_{}", uuid::Uuid::new_v4().simple());
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let (base, _) = admin
                .rsplit_once('/')
                .expect("TEST_DATABASE_URL names a database");
            let query = admin
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            format!("{base}/{name}{query}")
        }
    }
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with_key(db, JwtKey::Secret(Secret::new(SECRET))).await
}

/// The same, checking tokens with `key` (e.g. an ES256 public key).
pub async fn spawn_app_with_key(db: Db, key: JwtKey) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(db, &dir).await;
    let database = Database::connect(&url).await.unwrap();
    database.migrate().await.unwrap();
    let config = Config {
        database_url: url,
        jwt_key: Some(key),
        credentials_key: Some(persistence::CredentialsKey::from_bytes(&[7; 32])),
        ..Config::default()
    };
    let state = http_api::app::state(&config, database.clone()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server = http_api::app::server(state, listener).unwrap();
    tokio::spawn(server);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        database,
        config,
        _dir: dir,
    }
}

impl TestApp {
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
