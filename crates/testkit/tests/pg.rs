//! `TestDatabase` against the server `TEST_DATABASE_URL` names: made, reachable, and gone once
//! its guard is dropped, inside a runtime or outside one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use testkit::pg::{TestDatabase, admin_url};

async fn exists(name: &str) -> bool {
    let (client, connection) =
        tokio_postgres::connect(&admin_url().unwrap(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap();
    !rows.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_is_dropped_with_its_guard_inside_a_runtime() {
    let database = TestDatabase::create().await;
    let name = database.name().to_owned();
    assert!(name.starts_with("pos_gateway_test_"), "{name}");
    assert!(
        database.url().ends_with(&format!("/{name}")),
        "{}",
        database.url()
    );
    // A connection still open to it does not keep it.
    let (client, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE t (x int)")
        .await
        .unwrap();
    assert!(exists(&name).await);
    drop(database);
    assert!(!exists(&name).await);
    assert!(
        connection.await.unwrap().is_err(),
        "the open connection was closed"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_database_can_be_dropped_early_and_prefixed() {
    let database = TestDatabase::create_on(&admin_url().unwrap(), "testkit_prefix")
        .await
        .unwrap();
    let name = database.name().to_owned();
    assert!(name.starts_with("testkit_prefix_"), "{name}");
    assert!(exists(&name).await);
    database.drop_database().await.unwrap();
    assert!(!exists(&name).await);
    assert!(
        TestDatabase::create_on(&admin_url().unwrap(), "Bad-Prefix")
            .await
            .is_err()
    );
}

#[test]
fn a_database_is_dropped_with_its_guard_outside_a_runtime() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(TestDatabase::create());
    let name = database.name().to_owned();
    drop(runtime);
    drop(database);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert!(!runtime.block_on(exists(&name)));
}
