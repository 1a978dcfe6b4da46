//! PostgreSQL for the benchmarks: the seeded mirror, and the baselines that run the gateway's
//! SQL straight on the server (each run's database of its own is a `testkit::pg::TestDatabase`).

use anyhow::Context;
use diesel::sql_types::{BigInt, Date, Nullable, Text, Timestamp};
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// The gateway's PostgreSQL pool size (persistence's `POSTGRES_POOL_SIZE`): the baselines get
/// as many connections as the gateway has.
pub const GATEWAY_POOL_SIZE: usize = 16;

pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool<AsyncPgConnection>> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    Ok(Pool::builder(manager).max_size(size).build()?)
}

/// The phone digits of seeded customer `i` (1-based): `2` and nine digits, never a phone
/// the create scenarios use.
pub fn seeded_phone(i: u64) -> String {
    format!("2{i:09}")
}

/// Seeds `count` customers into `store`'s mirror with one INSERT ... SELECT, then ANALYZE;
/// `local`: the store is on the `local` POS (whose customers carry `local_store_id`).
pub async fn seed(url: &str, store: i64, local: bool, count: u64) -> anyhow::Result<()> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    // The same columns and normal forms the mirror writes (persistence's CustomerFields).
    diesel::sql_query(
        "INSERT INTO customers (store_id, pos_customer_id, status, first_name, last_name, \
           first_name_lower, last_name_lower, gender, birthday, email, email_lower, phone, \
           phone_digits, drivers_license, drivers_license_key, notes, created_at, updated_at, \
           seen_at, local_store_id) \
         SELECT $1, 'seed-' || i, 'ACTIVE', 'First' || i, 'Last' || i, 'first' || i, 'last' || i, \
           (ARRAY['Male','Female','Other'])[1 + i % 3], DATE '1960-01-01' + (i % 15000)::int, \
           'c' || i || '@example.com', 'c' || i || '@example.com', \
           substr(d, 1, 3) || '-' || substr(d, 4, 3) || '-' || substr(d, 7, 4), d, \
           'D' || i, 'd' || i, NULL, now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc', \
           now() AT TIME ZONE 'utc', CASE WHEN $3 THEN $1 END \
         FROM (SELECT i, '2' || lpad(i::text, 9, '0') AS d FROM generate_series(1, $2) AS i) AS s",
    )
    .bind::<BigInt, _>(store)
    .bind::<BigInt, _>(i64::try_from(count)?)
    .bind::<diesel::sql_types::Bool, _>(local)
    .execute(&mut conn)
    .await
    .context("seeding the mirror")?;
    conn.batch_execute("ANALYZE customers").await?;
    Ok(())
}

/// A mirror row as the gateway's look-up reads it (persistence's CustomerRow).
#[derive(diesel::QueryableByName)]
#[allow(dead_code)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    pos_customer_id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    first_name: String,
    #[diesel(sql_type = Text)]
    last_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    gender: Option<String>,
    #[diesel(sql_type = Nullable<Date>)]
    birthday: Option<chrono::NaiveDate>,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    phone: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    drivers_license: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    notes: Option<String>,
}

/// The statement the mirror's `find` runs for `?phone=` (first page, limit 25).
pub async fn lookup_by_phone(
    pool: &Pool<AsyncPgConnection>,
    store: i64,
    digits: &str,
) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT id, pos_customer_id, status, first_name, last_name, gender, birthday, email, \
           phone, drivers_license, notes FROM customers \
         WHERE store_id = $1 AND deleted_at IS NULL AND phone_digits = $2 ORDER BY id ASC LIMIT $3",
    )
    .bind::<BigInt, _>(store)
    .bind::<Text, _>(digits)
    .bind::<BigInt, _>(26)
    .load(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    if rows.len() == 1 {
        Ok(())
    } else {
        Err(format!("{} rows for phone {digits}", rows.len()))
    }
}

/// The INSERT the `local` POS runs for a create: one statement, the store's unique keys its
/// duplicate check (`ON CONFLICT DO NOTHING`), as `persistence`'s `insert_local` writes it.
pub async fn insert_customer(
    pool: &Pool<AsyncPgConnection>,
    store: i64,
    n: u64,
) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let now = chrono::Utc::now().naive_utc();
    let (email, digits) = (format!("direct{n}@example.com"), format!("4{n:09}"));
    diesel::sql_query(
        "INSERT INTO customers (store_id, pos_customer_id, status, first_name, last_name, \
           first_name_lower, last_name_lower, gender, birthday, email, email_lower, phone, \
           phone_digits, drivers_license, drivers_license_key, notes, created_at, updated_at, \
           seen_at, deleted_at, local_store_id) \
         VALUES ($1, $2, 'ACTIVE', 'Ann', 'Lee', 'ann', 'lee', NULL, NULL, $3, $3, $4, $4, \
           NULL, NULL, NULL, $5, $5, $5, NULL, $1) ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(store)
    .bind::<Text, _>(uuid::Uuid::now_v7().to_string())
    .bind::<Text, _>(&email)
    .bind::<Text, _>(&digits)
    .bind::<Timestamp, _>(now)
    .execute(&mut conn)
    .await
    .map(drop)
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use domain::CustomerMirror as _;

    use super::*;

    /// The seed and the baselines run against the schema the gateway migrates, and the gateway
    /// reads what the seed wrote: a migration that changes `customers` fails here, in
    /// `cargo xtask test`, not in a bench run weeks later (as `seen_at` once did).
    #[tokio::test]
    async fn the_seed_and_the_baselines_fit_the_gateways_schema() {
        let database = testkit::pg::TestDatabase::create().await;
        let db = persistence::Database::connect(database.url())
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let store = db
            .stores()
            .add_store("bench", domain::Vendor::Local, &serde_json::json!({}))
            .await
            .unwrap()
            .id;
        seed(database.url(), store.0, true, 10).await.unwrap();
        let pool = pool(database.url(), 2).unwrap();
        lookup_by_phone(&pool, store.0, &seeded_phone(3))
            .await
            .unwrap();
        insert_customer(&pool, store.0, 1).await.unwrap();
        let query = domain::CustomerQuery {
            phone_digits: Some(seeded_phone(3)),
            limit: 25,
            ..Default::default()
        };
        let found = db.mirror().find(store, &query).await.unwrap();
        assert_eq!(
            found.customers.len(),
            1,
            "the gateway reads the seeded customer"
        );
        database.drop_database().await.unwrap();
    }
}
