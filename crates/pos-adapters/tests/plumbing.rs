//! The shared vendor plumbing against a real HTTP double on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use domain::{PosError, Vendor};
use pos_adapters::http::{
    BreakerSettings, FreshToken, MAX_ECHOED_BODY_BYTES, Method, RateBudget, RateQuota, Secret,
    Settings, Shared, SharedStateError, StatusCode, TokenCache, TokenFetch, TokenKey, TokenStore,
    TokenStoreError, VendorHttp,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "sk_live_4f9a1c2e7b";

fn settings() -> Settings {
    Settings {
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_millis(500),
        max_retry_after: Duration::from_secs(5),
        read_retries: 2,
        retry_backoff: Duration::from_millis(10),
        max_body_bytes: 64 * 1024,
        rate_limit_per_minute: None,
        rate_limit_burst: None,
        write_rate_limit_per_minute: None,
        breaker: BreakerSettings {
            failure_threshold: 100,
            open_for: Duration::from_secs(30),
        },
        max_in_flight: 256,
        shared: None,
    }
}

fn http(server: &MockServer, settings: Settings) -> VendorHttp {
    VendorHttp::new(
        Vendor::Cova,
        &format!("{}/v1", server.uri()),
        settings,
        &[Secret::new(SECRET)],
    )
    .unwrap()
}

async fn requests_seen(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn a_slow_vendor_is_a_timeout_within_the_bound() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(json!({})).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let http = http(
        &server,
        Settings {
            timeout: Duration::from_millis(300),
            ..settings()
        },
    );
    let started = Instant::now();
    let error = http
        .read(http.request(Method::GET, ["customers"]))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        PosError::Timeout {
            vendor: Vendor::Cova,
            after: Duration::from_millis(300)
        }
    );
    assert!(error.is_unreachable());
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

/// A burst above the store's calls in flight waits its turn instead of opening a connection
/// each: nine calls to a vendor that takes 200 ms, three at a time, take three rounds, and
/// every one is answered.
#[tokio::test]
async fn a_burst_waits_its_turn_among_the_stores_calls_in_flight() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(json!({})).set_delay(Duration::from_millis(200)))
        .mount(&server)
        .await;
    let http = Arc::new(http(
        &server,
        Settings {
            max_in_flight: 3,
            ..settings()
        },
    ));
    let started = Instant::now();
    let calls: Vec<_> = (0..9)
        .map(|_| {
            let http = http.clone();
            tokio::spawn(async move { http.read(http.request(Method::GET, ["customers"])).await })
        })
        .collect();
    for call in calls {
        assert!(call.await.unwrap().is_ok());
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(590) && took < Duration::from_millis(1500),
        "three rounds of three: {took:?}"
    );
    assert_eq!(requests_seen(&server).await, 9);
}

#[tokio::test]
async fn a_read_waits_out_a_short_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok(json!({"Id": "1"})))
        .with_priority(2)
        .mount(&server)
        .await;
    let http = http(&server, settings());
    let started = Instant::now();
    let answer = http
        .read(http.request(Method::GET, ["Customers(1)"]))
        .await
        .unwrap();
    assert_eq!(answer.body(), &json!({"Id": "1"}));
    assert_eq!(requests_seen(&server).await, 2);
    assert!(started.elapsed() >= Duration::from_millis(950));
}

#[tokio::test]
async fn a_long_retry_after_is_reported_clamped_without_waiting() {
    let server = MockServer::start().await;
    let in_an_hour =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    Mock::given(path("/v1/by-date"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", in_an_hour.as_str()))
        .mount(&server)
        .await;
    Mock::given(path("/v1/by-seconds"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "120")
                .set_body_json(json!({"message": "slow down"})),
        )
        .mount(&server)
        .await;
    let http = http(&server, settings());
    let started = Instant::now();
    for (request, expected_requests) in [
        (http.request(Method::GET, ["by-date"]), 1),
        (http.request(Method::POST, ["by-seconds"]), 2),
    ] {
        let is_read = request.method() == Method::GET;
        let result = if is_read {
            http.read(request).await
        } else {
            http.write(request).await
        };
        match result.unwrap_err() {
            PosError::Unavailable {
                retry_after,
                response,
                ..
            } => {
                assert_eq!(retry_after, Some(Duration::from_secs(5)));
                assert_eq!(response.unwrap().status, 429);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(requests_seen(&server).await, expected_requests);
    }
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn reads_are_retried_after_5xx_then_succeed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok(json!([1, 2])))
        .with_priority(2)
        .mount(&server)
        .await;
    let http = http(&server, settings());
    let answer = http
        .read(http.request(Method::GET, ["Customers"]))
        .await
        .unwrap();
    assert_eq!(answer.json::<Vec<u32>>().unwrap(), vec![1, 2]);
    assert_eq!(requests_seen(&server).await, 3);
}

#[tokio::test]
async fn reads_give_up_after_their_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_string("down"))
        .mount(&server)
        .await;
    let http = http(&server, settings());
    let error = http
        .read(http.request(Method::GET, ["Customers"]))
        .await
        .unwrap_err();
    match error {
        PosError::Unavailable { response, .. } => {
            let response = response.unwrap();
            assert_eq!((response.status, response.body), (503, json!("down")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(requests_seen(&server).await, 3);
}

#[tokio::test]
async fn writes_are_never_retried_once_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ok(json!({})).set_delay(Duration::from_secs(5)))
        .expect(1)
        .mount(&server)
        .await;
    let http = http(
        &server,
        Settings {
            timeout: Duration::from_millis(300),
            ..settings()
        },
    );
    let create = http
        .request(Method::POST, ["Customers"])
        .json(&json!({"PrimaryName": "Jo"}));
    assert!(matches!(
        http.write(create).await,
        Err(PosError::Unavailable { .. })
    ));
    let update = http.request(Method::PUT, ["Customers(1)"]).json(&json!({}));
    assert!(matches!(
        http.write(update).await,
        Err(PosError::Timeout { .. })
    ));
    server.verify().await;
}

#[tokio::test]
async fn an_unreachable_vendor_is_unavailable_quickly() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = VendorHttp::new(
        Vendor::Treez,
        &format!("http://127.0.0.1:{port}"),
        settings(),
        &[],
    )
    .unwrap();
    let started = Instant::now();
    let request = http.request(Method::POST, ["customer", "detailcustomer"]);
    match http.write(request).await.unwrap_err() {
        PosError::Unavailable { message, .. } => {
            assert_eq!(message, "could not connect to the POS");
            assert!(!message.contains("127.0.0.1"));
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn an_oversized_or_garbled_answer_is_a_bad_answer() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/big"))
        .respond_with(ok(json!({"data": "x".repeat(100 * 1024)})))
        .mount(&server)
        .await;
    Mock::given(path("/v1/garbage"))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!("<html>{SECRET}")))
        .mount(&server)
        .await;
    Mock::given(path("/v1/shape"))
        .respond_with(ok(json!({"unexpected": true})))
        .mount(&server)
        .await;
    let http = http(&server, settings());
    match http.read(http.request(Method::GET, ["big"])).await {
        Err(PosError::BadAnswer { message, .. }) => assert!(message.contains("larger than")),
        other => panic!("{other:?}"),
    }
    match http.read(http.request(Method::GET, ["garbage"])).await {
        Err(PosError::BadAnswer { response, .. }) => {
            assert_eq!(response.unwrap().body, json!("<html>[redacted]"));
        }
        other => panic!("{other:?}"),
    }
    let answer = http
        .read(http.request(Method::GET, ["shape"]))
        .await
        .unwrap();
    assert!(matches!(
        answer.json::<Vec<String>>(),
        Err(PosError::BadAnswer { .. })
    ));
    // Neither bad answer is retried: the vendor answered.
    assert_eq!(requests_seen(&server).await, 3);
}

#[tokio::test]
async fn a_refusal_echoes_the_body_cut_and_without_credentials() {
    let server = MockServer::start().await;
    let token = Secret::new("eyJhbGciOi.token.value");
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "Message": format!("key {SECRET} refused with Bearer eyJhbGciOi.token.value"),
            "client_secret": "whatever-the-vendor-echoes",
            "padding": "p".repeat(10_000),
        })))
        .mount(&server)
        .await;
    let http = http(&server, settings());
    let request = http.request(Method::GET, ["Customers"]).bearer(&token);
    let error = http.read(request).await.unwrap_err();
    let PosError::Unauthorized(response) = &error else {
        panic!("{error:?}");
    };
    assert_eq!((response.vendor, response.status), (Vendor::Cova, 401));
    let body = response.body.as_str().expect("cut to a string");
    assert!(body.len() <= MAX_ECHOED_BODY_BYTES);
    let everything = format!("{error:?} {error}");
    for leaked in [SECRET, "eyJhbGciOi", "whatever-the-vendor-echoes"] {
        assert!(!everything.contains(leaked), "{leaked} in {everything}");
    }
    assert!(body.contains("[redacted]"));
    // A refusal is final: no retry.
    assert_eq!(requests_seen(&server).await, 1);
    let sent = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        sent.headers.get("authorization").unwrap(),
        "Bearer eyJhbGciOi.token.value"
    );
}

#[tokio::test]
async fn statuses_a_vendor_module_accepts_come_back_as_answers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"resultCode": "FAIL"})))
        .mount(&server)
        .await;
    let http = http(&server, settings());
    let email = "jo doe+kiosk@example.com";
    let plain = http.request(Method::GET, ["customer", "email", email]);
    assert_eq!(http.read(plain).await.unwrap_err(), PosError::NotFound);
    let accepting = http
        .request(Method::GET, ["customer", "email", email])
        .query("page", "1")
        .header("Accept", "application/hal+json")
        .accept_status(StatusCode::NOT_FOUND);
    let answer = http.read(accepting).await.unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_eq!(answer.body()["resultCode"], "FAIL");
    assert_eq!(answer.into_error(), PosError::NotFound);
    let sent = &server.received_requests().await.unwrap()[1];
    assert_eq!(
        sent.url.path(),
        "/v1/customer/email/jo%20doe+kiosk@example.com"
    );
    assert_eq!(sent.url.query(), Some("page=1"));
    let accepts: Vec<_> = sent.headers.get_all("accept").iter().collect();
    assert_eq!(accepts, ["application/hal+json"]);
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_then_a_probe_closes_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let open_for = Duration::from_millis(300);
    let http = http(
        &server,
        Settings {
            read_retries: 0,
            breaker: BreakerSettings {
                failure_threshold: 3,
                open_for,
            },
            ..settings()
        },
    );
    let read = || http.read(http.request(Method::GET, ["Customers"]));
    for _ in 0..3 {
        assert!(
            matches!(read().await, Err(PosError::Unavailable { message, .. }) if message.contains("502"))
        );
    }
    for _ in 0..5 {
        match read().await.unwrap_err() {
            PosError::Unavailable {
                message,
                retry_after,
                response,
                ..
            } => {
                assert_eq!(message, "circuit open");
                assert!(retry_after.unwrap() <= open_for);
                assert!(response.is_none());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(requests_seen(&server).await, 3, "no request while open");

    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ok(json!({"ok": true})))
        .mount(&server)
        .await;
    tokio::time::sleep(open_for).await;
    read().await.unwrap();
    read().await.unwrap();
    assert_eq!(requests_seen(&server).await, 2);
}

#[tokio::test]
async fn client_errors_do_not_open_the_breaker() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"Message": "bad"})))
        .mount(&server)
        .await;
    let http = http(
        &server,
        Settings {
            breaker: BreakerSettings {
                failure_threshold: 2,
                open_for: Duration::from_secs(30),
            },
            ..settings()
        },
    );
    for _ in 0..4 {
        let request = http.request(Method::POST, ["Customers"]).json(&json!({}));
        assert!(
            matches!(http.write(request).await, Err(PosError::Upstream(r)) if r.body == json!({"Message": "bad"}))
        );
    }
    assert_eq!(requests_seen(&server).await, 4);
}

#[tokio::test]
async fn the_rate_limiter_lets_a_burst_through_then_spaces_or_refuses() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    // 60 a minute: a burst of 6, then one a second; a 900 ms timeout can't wait a second.
    let http = Arc::new(http(
        &server,
        Settings {
            timeout: Duration::from_millis(900),
            rate_limit_per_minute: Some(60),
            ..settings()
        },
    ));
    let calls = (0..10).map(|_| {
        let http = Arc::clone(&http);
        tokio::spawn(async move { http.read(http.request(Method::GET, ["Customers"])).await })
    });
    let mut refused = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => {}
            Err(PosError::Unavailable {
                retry_after,
                message,
                ..
            }) => {
                assert!(message.contains("rate limit"), "{message}");
                assert!(retry_after.unwrap() > Duration::ZERO);
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((requests_seen(&server).await, refused), (6, 4));

    // 600 a minute: a burst of 60, then one per 100 ms; two more calls wait their turn.
    let spaced = self::http(
        &server,
        Settings {
            rate_limit_per_minute: Some(600),
            ..settings()
        },
    );
    let started = Instant::now();
    for _ in 0..62 {
        spaced
            .read(spaced.request(Method::GET, ["Customers"]))
            .await
            .unwrap();
    }
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_vendor_counting_per_second_gets_a_small_burst_and_writes_a_budget_of_their_own() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    // 300 a minute (5 a second) with 5 at once: never more than 10 in any second.
    let http = self::http(
        &server,
        Settings {
            rate_limit_per_minute: Some(300),
            rate_limit_burst: Some(5),
            write_rate_limit_per_minute: Some(6000),
            ..settings()
        },
    );
    let started = Instant::now();
    for _ in 0..7 {
        http.read(http.request(Method::GET, ["Customers"]))
            .await
            .unwrap();
    }
    // The 6th and 7th waited 200 ms each.
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    // Writes spend their own budget (a burst of 600): no wait although reads are used up.
    let started = Instant::now();
    for _ in 0..20 {
        http.write(http.request(Method::POST, ["Customers"]))
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

/// A shared budget that records its takes and answers `answer` to each.
struct ScriptedBudget {
    takes: std::sync::Mutex<Vec<(String, RateQuota)>>,
    answer: Result<Option<Duration>, SharedStateError>,
}

#[async_trait::async_trait]
impl RateBudget for ScriptedBudget {
    async fn take(
        &self,
        key: &str,
        quota: RateQuota,
    ) -> Result<Option<Duration>, SharedStateError> {
        self.takes.lock().unwrap().push((key.to_owned(), quota));
        self.answer.clone()
    }
}

/// A token store that never answers: only its budget is used here.
struct NoTokens;

#[async_trait::async_trait]
impl TokenStore for NoTokens {
    async fn token(
        &self,
        _: &TokenKey,
        _: Duration,
        _: TokenFetch<'_>,
    ) -> Result<FreshToken, TokenStoreError> {
        Err(TokenStoreError::Unavailable(SharedStateError(
            "none".into(),
        )))
    }
    async fn invalidate(&self, _: &TokenKey, _: &Secret) -> Result<(), SharedStateError> {
        Ok(())
    }
}

fn sharing(budget: Arc<ScriptedBudget>, replicas: u32) -> Option<Shared> {
    Some(Shared {
        scope: "42".into(),
        budget,
        tokens: Arc::new(NoTokens),
        replicas: std::num::NonZeroU32::new(replicas).unwrap(),
    })
}

#[tokio::test]
async fn every_call_takes_from_the_shared_budget_which_may_refuse_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    let open = Arc::new(ScriptedBudget {
        takes: Default::default(),
        answer: Ok(None),
    });
    let http = self::http(
        &server,
        Settings {
            rate_limit_per_minute: Some(60),
            rate_limit_burst: Some(2),
            write_rate_limit_per_minute: Some(600),
            shared: sharing(open.clone(), 3),
            ..settings()
        },
    );
    // Ten calls where the local limiter would let two go: the shared budget decides.
    for _ in 0..10 {
        http.read(http.request(Method::GET, ["Customers"]))
            .await
            .unwrap();
    }
    let _ = http.write(http.request(Method::GET, ["Customers"])).await;
    let takes = open.takes.lock().unwrap().clone();
    assert_eq!(takes.len(), 11);
    assert_eq!(takes[0].0, "42/requests");
    assert_eq!(takes[0].1.burst.get(), 2);
    assert_eq!(takes[10].0, "42/writes");

    // Spent for the next 10 s: a 2 s call cannot wait, and says when to come back.
    let spent = Arc::new(ScriptedBudget {
        takes: Default::default(),
        answer: Ok(Some(Duration::from_secs(10))),
    });
    let http = self::http(
        &server,
        Settings {
            rate_limit_per_minute: Some(60),
            shared: sharing(spent, 3),
            ..settings()
        },
    );
    let seen = requests_seen(&server).await;
    match http.read(http.request(Method::GET, ["Customers"])).await {
        Err(PosError::Unavailable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(10)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(requests_seen(&server).await, seen, "nothing sent");
}

#[tokio::test]
async fn without_an_answer_from_the_shared_budget_a_replica_takes_its_share_locally() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    let down = Arc::new(ScriptedBudget {
        takes: Default::default(),
        answer: Err(SharedStateError("connection refused".into())),
    });
    // 60 a minute with 6 at once over 3 replicas: this one may send 2 at once, then one each
    // 3 s, which a 1 s call cannot wait for.
    let http = Arc::new(self::http(
        &server,
        Settings {
            timeout: Duration::from_secs(1),
            rate_limit_per_minute: Some(60),
            rate_limit_burst: Some(6),
            shared: sharing(down, 3),
            ..settings()
        },
    ));
    let mut refused = 0;
    for _ in 0..5 {
        match http.read(http.request(Method::GET, ["Customers"])).await {
            Ok(_) => {}
            Err(PosError::Unavailable { message, .. }) if message.contains("rate limit") => {
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((requests_seen(&server).await, refused), (2, 3));
}

#[test]
fn https_or_loopback_http_are_the_urls_credentials_go_to() {
    for good in [
        "https://api.example.com/v1",
        "http://127.0.0.1:8080",
        "http://localhost:9000/x",
        "http://[::1]:8080",
    ] {
        assert!(pos_adapters::http::vendor_url(good).is_some(), "{good}");
    }
}

#[tokio::test]
async fn a_bad_base_url_is_a_config_error() {
    for bad in [
        "not a url",
        "ftp://x",
        "mailto:a@b",
        // Credentials in clear over the network, or printed with the URL: refused.
        "http://api.example.com",
        "http://10.0.0.7:8080/v1",
        "https://user:pass@api.example.com",
    ] {
        assert!(matches!(
            VendorHttp::new(Vendor::Blaze, bad, Settings::default(), &[]),
            Err(pos_adapters::AdapterError::Config {
                vendor: Vendor::Blaze,
                ..
            })
        ));
    }
}

#[test]
fn secrets_never_print() {
    let secret = Secret::new(SECRET);
    assert!(!format!("{secret} {secret:?}").contains(SECRET));
    let http = VendorHttp::new(
        Vendor::Cova,
        "http://127.0.0.1:1",
        Settings::default(),
        std::slice::from_ref(&secret),
    )
    .unwrap();
    let request = http
        .request(Method::POST, ["token"])
        .secret_header("x-api-key", &secret)
        .secret_form_field("password", &secret)
        .basic_auth(&secret, None);
    assert!(!format!("{request:?} {http:?}").contains(SECRET));
}

// Token cache: no HTTP needed, and paused time makes lifetimes instant to test.

fn counting_cache(
    lifetime: Duration,
) -> (
    Arc<AtomicUsize>,
    TokenCache<impl Fn() -> futures_like::Ready + Send + Sync>,
) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fetches);
    let cache = TokenCache::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        futures_like::ready(lifetime, n)
    });
    (fetches, cache)
}

/// A fetch that takes 50 ms and answers token `t<n>`.
mod futures_like {
    use super::*;
    pub type Ready = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(Secret, Duration), PosError>> + Send>,
    >;
    pub fn ready(lifetime: Duration, n: usize) -> Ready {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok((Secret::new(format!("t{n}")), lifetime))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn twenty_concurrent_callers_cause_one_fetch() {
    let (fetches, cache) = counting_cache(Duration::from_secs(7200));
    let cache = Arc::new(cache);
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), Secret::new("t1"));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn tokens_are_refreshed_ahead_of_expiry_and_after_invalidation() {
    let (fetches, cache) = counting_cache(Duration::from_secs(100));
    assert_eq!(cache.token().await.unwrap(), Secret::new("t1"));
    // 100 s lifetime: refreshed 10 s (a tenth) ahead of expiry.
    tokio::time::advance(Duration::from_secs(85)).await;
    assert_eq!(cache.token().await.unwrap(), Secret::new("t1"));
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(cache.token().await.unwrap(), Secret::new("t2"));
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // A 401 on an old token leaves the current one alone; on the current one, refetches.
    cache.invalidate(&Secret::new("t1")).await;
    assert_eq!(cache.token().await.unwrap(), Secret::new("t2"));
    cache.invalidate(&Secret::new("t2")).await;
    assert_eq!(cache.token().await.unwrap(), Secret::new("t3"));
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_a_valid_token_and_is_shared_by_waiters() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fetches);
    let cache = Arc::new(TokenCache::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if n == 1 {
                Ok((Secret::new("t1"), Duration::from_secs(100)))
            } else {
                Err(PosError::Timeout {
                    vendor: Vendor::Cova,
                    after: Duration::from_secs(10),
                })
            }
        }
    }));
    cache.token().await.unwrap();
    tokio::time::advance(Duration::from_secs(95)).await;
    // Within the refresh window: the refresh fails, the still-valid token is used, and the
    // callers that queued behind the failed fetch don't each fetch again.
    let callers: Vec<_> = (0..5)
        .map(|_| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.token().await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), Secret::new("t1"));
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(matches!(cache.token().await, Err(PosError::Timeout { .. })));
}

/// A token store holding one token in memory, as another replica would have stored it; or
/// none that answers.
struct OneToken {
    stored: std::sync::Mutex<Option<Secret>>,
    answers: bool,
    invalidated: AtomicUsize,
}

#[async_trait::async_trait]
impl TokenStore for OneToken {
    async fn token(
        &self,
        key: &TokenKey,
        _: Duration,
        fetch: TokenFetch<'_>,
    ) -> Result<FreshToken, TokenStoreError> {
        assert_eq!(key.key, "42/test-token");
        if !self.answers {
            return Err(TokenStoreError::Unavailable(SharedStateError(
                "down".into(),
            )));
        }
        let stored = self.stored.lock().unwrap().clone();
        if let Some(token) = stored {
            return Ok(FreshToken {
                token,
                refresh_in: Duration::from_secs(50),
                expires_in: Duration::from_secs(60),
            });
        }
        let fresh = fetch.await.map_err(TokenStoreError::Vendor)?;
        *self.stored.lock().unwrap() = Some(fresh.token.clone());
        Ok(fresh)
    }

    async fn invalidate(&self, _: &TokenKey, refused: &Secret) -> Result<(), SharedStateError> {
        self.invalidated.fetch_add(1, Ordering::SeqCst);
        let mut stored = self.stored.lock().unwrap();
        if stored.as_ref() == Some(refused) {
            *stored = None;
        }
        Ok(())
    }
}

fn shared_tokens(store: Arc<OneToken>) -> Settings {
    Settings {
        shared: Some(Shared {
            scope: "42".into(),
            budget: Arc::new(ScriptedBudget {
                takes: Default::default(),
                answer: Ok(None),
            }),
            tokens: store,
            replicas: std::num::NonZeroU32::MIN,
        }),
        ..settings()
    }
}

#[tokio::test(start_paused = true)]
async fn a_shared_token_is_used_without_a_fetch_and_a_refusal_reaches_the_store() {
    let store = Arc::new(OneToken {
        stored: std::sync::Mutex::new(Some(Secret::new("from-another-replica"))),
        answers: true,
        invalidated: AtomicUsize::new(0),
    });
    let (fetches, cache) = counting_cache(Duration::from_secs(3600));
    let cache = cache.shared_through(
        &shared_tokens(store.clone()),
        "test-token",
        Secret::new("c"),
    );
    let token = cache.token().await.unwrap();
    assert_eq!(token, Secret::new("from-another-replica"));
    assert_eq!(fetches.load(Ordering::SeqCst), 0);
    // Kept here until it is due: the store is not asked per call.
    tokio::time::advance(Duration::from_secs(40)).await;
    assert_eq!(cache.token().await.unwrap(), token);

    cache.invalidate(&token).await;
    assert_eq!(store.invalidated.load(Ordering::SeqCst), 1);
    assert_eq!(cache.token().await.unwrap(), Secret::new("t1"));
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "fetched once, for everyone"
    );
    assert_eq!(
        store.stored.lock().unwrap().clone(),
        Some(Secret::new("t1"))
    );
}

#[tokio::test(start_paused = true)]
async fn without_an_answer_from_the_token_store_a_replica_fetches_its_own() {
    let store = Arc::new(OneToken {
        stored: std::sync::Mutex::new(None),
        answers: false,
        invalidated: AtomicUsize::new(0),
    });
    let (fetches, cache) = counting_cache(Duration::from_secs(3600));
    let cache = cache.shared_through(&shared_tokens(store), "test-token", Secret::new("c"));
    assert_eq!(cache.token().await.unwrap(), Secret::new("t1"));
    assert_eq!(cache.token().await.unwrap(), Secret::new("t1"));
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}
