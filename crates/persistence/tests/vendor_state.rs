//! The vendor state replicas share on PostgreSQL (issue 14): the GCRA budget statement under
//! concurrent takers, and tokens fetched once for every "replica" (each a pool of its own on
//! the same database). Needs `TEST_DATABASE_URL`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use persistence::{CredentialsKey, Database, StoredToken};
use testkit::pg::TestDatabase;

async fn replicas(n: usize) -> (TestDatabase, Vec<Database>) {
    let scratch = TestDatabase::create().await;
    let mut replicas = Vec::new();
    for _ in 0..n {
        let db = Database::connect(scratch.url())
            .await
            .unwrap()
            .with_credentials_key(Some(CredentialsKey::from_bytes(&[9; 32])));
        db.migrate().await.unwrap();
        replicas.push(db);
    }
    (scratch, replicas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takers_on_two_replicas_never_exceed_the_limit_plus_the_burst() {
    let (scratch, dbs) = replicas(2).await;
    // 600 a minute (one each 100 ms) with 5 at once.
    let interval = Duration::from_millis(100);
    let burst = 5;
    let run_for = Duration::from_millis(2000);
    let started = Instant::now();
    let mut takers = Vec::new();
    for n in 0..16 {
        let budgets = dbs[n % 2].vendor_budgets().expect("PostgreSQL");
        takers.push(tokio::spawn(async move {
            let mut admitted = Vec::new();
            while started.elapsed() < run_for {
                match budgets.take("7/requests", interval, burst).await.unwrap() {
                    None => admitted.push(started.elapsed()),
                    // Waiting as the client does, but never so long that the run ends first.
                    Some(wait) => tokio::time::sleep(wait.min(Duration::from_millis(50))).await,
                }
            }
            admitted
        }));
    }
    let mut admitted = Vec::new();
    for taker in takers {
        admitted.extend(taker.await.unwrap());
    }
    admitted.sort();
    let elapsed = started.elapsed();
    // GCRA: at most `burst` at once, then one per interval; one more for the clocks' jitter.
    let bound = |window: Duration| {
        burst as usize + (window.as_millis() / interval.as_millis()) as usize + 1
    };
    assert!(
        admitted.len() <= bound(elapsed),
        "{} admitted in {elapsed:?}",
        admitted.len()
    );
    let second = Duration::from_secs(1);
    for (i, start) in admitted.iter().enumerate() {
        let in_window = admitted[i..]
            .iter()
            .take_while(|t| **t < *start + second)
            .count();
        assert!(
            in_window <= bound(second),
            "{in_window} admitted in the second from {start:?}"
        );
    }
    // And the budget is spent, not refused wholesale.
    assert!(
        admitted.len() >= burst as usize + 12,
        "only {} admitted in {elapsed:?}",
        admitted.len()
    );
    drop(dbs);
    scratch.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_refused_take_answers_the_wait_and_takes_nothing() {
    let (scratch, dbs) = replicas(1).await;
    let budgets = dbs[0].vendor_budgets().unwrap();
    let minute = Duration::from_secs(60);
    assert_eq!(budgets.take("1/writes", minute, 2).await.unwrap(), None);
    assert_eq!(budgets.take("1/writes", minute, 2).await.unwrap(), None);
    for _ in 0..3 {
        let wait = budgets.take("1/writes", minute, 2).await.unwrap();
        assert!(
            wait.is_some_and(|w| w > Duration::from_secs(58) && w <= minute),
            "{wait:?}"
        );
    }
    assert_eq!(
        budgets.take("2/writes", minute, 2).await.unwrap(),
        None,
        "another store's budget is its own"
    );
    drop(dbs);
    scratch.drop_database().await.unwrap();
}

#[tokio::test]
async fn sqlite_has_no_shared_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::connect(&format!("sqlite://{}/t.db", dir.path().display()))
        .await
        .unwrap();
    assert!(db.vendor_budgets().is_none() && db.vendor_tokens().is_none());
}

/// How many fetches ran (`load` alone would be diesel's `RunQueryDsl::load` on the `Arc`).
fn fetched(fetches: &AtomicUsize) -> usize {
    fetches.load(Ordering::SeqCst)
}

/// A fetch that counts itself and takes `latency`, as a vendor's token call would.
fn fetch(
    fetches: &Arc<AtomicUsize>,
    latency: Duration,
) -> impl Future<Output = Result<StoredToken, String>> + Send + 'static {
    let fetches = fetches.clone();
    async move {
        let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(latency).await;
        Ok(StoredToken::new(
            &format!("token-{n}"),
            Duration::from_secs(3000),
            Duration::from_secs(3600),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_token_fetch_serves_every_replica_and_a_refusal_forgets_it_for_all() {
    let (scratch, dbs) = replicas(2).await;
    let fetches = Arc::new(AtomicUsize::new(0));
    let within = Duration::from_secs(5);
    let mut callers = Vec::new();
    for n in 0..10 {
        let tokens = dbs[n % 2].vendor_tokens().unwrap();
        let fetch = fetch(&fetches, Duration::from_millis(300));
        callers.push(tokio::spawn(async move {
            tokens
                .token("3/treez-token", "creds-a", within, fetch)
                .await
                .unwrap()
                .unwrap()
        }));
    }
    let mut seen = Vec::new();
    for caller in callers {
        let token = caller.await.unwrap();
        assert!(token.refresh_in > Duration::from_secs(2900));
        assert!(token.expires_in > token.refresh_in);
        seen.push(token.token.to_string());
    }
    assert_eq!(fetched(&fetches), 1, "one fetch for both replicas");
    assert!(seen.iter().all(|t| t == "token-1"), "{seen:?}");

    // Stored sealed: the table holds no token.
    let mut conn = AsyncPgConnection::establish(scratch.url()).await.unwrap();
    let stored = diesel::sql_query("SELECT 1 FROM vendor_tokens WHERE sealed LIKE 'v1:%'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    let leaked = diesel::sql_query("SELECT 1 FROM vendor_tokens WHERE sealed LIKE '%token-1%'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(leaked, 0, "the token is stored sealed");

    // A 401 to an older token than the stored one forgets nothing.
    let (a, b) = (
        dbs[0].vendor_tokens().unwrap(),
        dbs[1].vendor_tokens().unwrap(),
    );
    a.invalidate("3/treez-token", "token-0").await.unwrap();
    let same = b
        .token(
            "3/treez-token",
            "creds-a",
            within,
            fetch(&fetches, Duration::ZERO),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(same.token.as_str(), "token-1");
    assert_eq!(fetched(&fetches), 1);

    // A 401 to the stored one, on one replica, makes the other fetch anew, once.
    a.invalidate("3/treez-token", "token-1").await.unwrap();
    let renewed = b
        .token(
            "3/treez-token",
            "creds-a",
            within,
            fetch(&fetches, Duration::ZERO),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.token.as_str(), "token-2");
    let again = a
        .token(
            "3/treez-token",
            "creds-a",
            within,
            fetch(&fetches, Duration::ZERO),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.token.as_str(), "token-2");
    assert_eq!(fetched(&fetches), 2);

    // Other credentials (the store's config changed): the stored token is not theirs.
    let other = a
        .token(
            "3/treez-token",
            "creds-b",
            within,
            fetch(&fetches, Duration::ZERO),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.token.as_str(), "token-3");

    // A failed fetch is the caller's answer, and stores nothing.
    let failed: Result<StoredToken, String> = a
        .token("4/treez-token", "creds-a", within, async {
            Err("refused".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(failed.err().as_deref(), Some("refused"));
    drop(conn);
    drop(dbs);
    scratch.drop_database().await.unwrap();
}

#[tokio::test]
async fn without_a_credentials_key_tokens_are_not_shared() {
    let scratch = TestDatabase::create().await;
    let db = Database::connect(scratch.url()).await.unwrap();
    db.migrate().await.unwrap();
    let fetches = Arc::new(AtomicUsize::new(0));
    let answer = db
        .vendor_tokens()
        .unwrap()
        .token(
            "1/t",
            "c",
            Duration::from_secs(1),
            fetch(&fetches, Duration::ZERO),
        )
        .await;
    assert!(answer.is_err(), "unavailable: the caller fetches its own");
    assert_eq!(fetched(&fetches), 0, "the fetch was not polled");
    drop(db);
    scratch.drop_database().await.unwrap();
}
