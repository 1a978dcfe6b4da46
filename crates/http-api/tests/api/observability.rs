//! Observability across replicas (issue 14), on the real binary: JSON log lines, traces over
//! OTLP to a receiver of the test's own, and the vendor calls' Prometheus series.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::Value;
use testkit::gateway::Gateway;
use vendor_doubles::{Fault, Op, VendorDouble};

const BIN: &str = env!("CARGO_BIN_EXE_pos-gateway");

fn served_gateway(dir: &std::path::Path) -> Gateway {
    Gateway::new(BIN)
        .current_dir(dir)
        .env(
            "POS_GATEWAY_JWT_SECRET",
            "yB0EBEUtbGBAbaO38c/4PAfIqJyI93G+cc94VbgvJs0=",
        )
        .env("POS_GATEWAY_CREDENTIALS_KEY", "cd".repeat(32))
        .env("POS_GATEWAY_CATALOG_RATE", "off")
        .log(dir.join("gateway.log"))
}

/// A Treez store on `double` (with the vendor's own rate limit) behind catalog `kiosk`: its id
/// and a token for it.
fn treez_store(
    gateway: &Gateway,
    dir: &std::path::Path,
    double: &dyn VendorDouble,
) -> (i64, String) {
    let config = dir.join("treez.json");
    std::fs::write(&config, double.store_config().to_string()).unwrap();
    let store = gateway
        .admin(&[
            "store",
            "add",
            "--name",
            "Main St",
            "--vendor",
            "treez",
            "--config",
            config.to_str().unwrap(),
        ])
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    gateway
        .admin(&[
            "catalog",
            "add",
            "--store",
            &store.to_string(),
            "--id",
            "kiosk",
        ])
        .unwrap();
    let token = gateway.admin(&["token", "--catalog", "kiosk"]).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    (store, token)
}

/// GET `path` on the gateway with the token (and `headers`): status, headers, body.
fn get(
    url: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut request = reqwest::Client::new().get(url).bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.unwrap())
    })
}

/// With `POS_GATEWAY_LOG_FORMAT=json` every line of stderr is a JSON object; the request's
/// line has its id, the replica, the store and vendor, the status and the latency, and the
/// search's values masked; the vendor call's line is in the same request.
#[test]
fn json_logs_are_one_object_a_line_with_the_request_and_its_vendor_call() {
    let double = vendor_doubles::start("treez").unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gateway = served_gateway(dir.path())
        .env("POS_GATEWAY_LOG_FORMAT", "json")
        .env("POS_GATEWAY_REPLICA", "replica-7")
        .env("RUST_LOG", "info");
    let (store, token) = treez_store(&gateway, dir.path(), double.as_ref());
    double.seed_customer(&vendor_doubles::SeedCustomer {
        first_name: "Annlogged".into(),
        last_name: "Customer".into(),
        email: Some("Ann.Logged@example.org".into()),
        phone: Some("5550106666".into()),
        ..Default::default()
    });
    let serving = gateway.serve().unwrap();
    let (status, headers, body) = get(
        &format!(
            "{}/api/v1/kiosk/customers?email=Ann.Logged%40example.org",
            serving.url()
        ),
        &token,
        &[],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Annlogged"), "{body}");
    let request_id = headers["x-request-id"].to_str().unwrap().to_owned();
    let log = serving.stop();

    let lines: Vec<Value> = log
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(
        lines.iter().all(|line| line["replica"] == "replica-7"
            && line["timestamp"].is_string()
            && line["level"].is_string()),
        "{log}"
    );
    let of_request = |message: &str| {
        lines
            .iter()
            .find(|line| line["request_id"] == request_id.as_str() && line["message"] == message)
            .unwrap_or_else(|| panic!("no '{message}' line for {request_id}:\n{log}"))
    };
    let finished = of_request("request finished");
    assert_eq!(finished["level"], "INFO");
    assert_eq!(finished["status"], 200, "{finished}");
    assert_eq!(finished["store"], store, "{finished}");
    assert_eq!(finished["vendor"], "treez", "{finished}");
    assert!(finished["latency_ms"].is_u64(), "{finished}");
    assert_eq!(
        finished["http.target"], "/api/v1/kiosk/customers?email=***",
        "{finished}"
    );
    // The last (a token fetch may come first).
    let call = lines
        .iter()
        .rev()
        .find(|line| line["request_id"] == request_id.as_str() && line["message"] == "vendor call")
        .unwrap_or_else(|| panic!("no vendor call line for {request_id}:\n{log}"));
    assert_eq!(call["vendor"], "treez", "{call}");
    assert_eq!(call["store"], store, "{call}");
    assert_eq!(call["operation"], "find", "{call}");
    assert_eq!(call["status"], 200, "{call}");
    assert!(call["latency_ms"].is_u64(), "{call}");
    assert!(call["route"].as_str().unwrap().contains("{}"), "{call}");
    for value in [
        "Ann.Logged",
        "example.org",
        "ann.logged",
        "Annlogged",
        "0106666",
    ] {
        assert!(!log.contains(value), "{value} is in the log:\n{log}");
    }
}

/// A receiver of OTLP over HTTP/protobuf on a random port: the spans it was sent.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Receiver {
    fn start() -> Self {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let kept = spans.clone();
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            let server = HttpServer::new(move || {
                let kept = kept.clone();
                App::new().route(
                    "/v1/traces",
                    web::post().to(move |body: web::Bytes| {
                        let kept = kept.clone();
                        async move {
                            let Ok(export) = ExportTraceServiceRequest::decode(body) else {
                                return HttpResponse::BadRequest().finish();
                            };
                            let mut spans = kept.lock().unwrap();
                            for resource in export.resource_spans {
                                for scope in resource.scope_spans {
                                    spans.extend(scope.spans);
                                }
                            }
                            HttpResponse::Ok()
                                .content_type("application/x-protobuf")
                                .finish()
                        }
                    }),
                )
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
            let _ = system.block_on(server);
        });
        Self { url, spans }
    }

    /// Waits (up to 20 s) until `found` finds what it looks for in the spans received.
    fn wait_for<T>(&self, mut found: impl FnMut(&[Span]) -> Option<T>) -> T {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(value) = found(&self.spans.lock().unwrap()) {
                return value;
            }
            if Instant::now() > until {
                let names: Vec<_> = self
                    .spans
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|s| s.name.clone())
                    .collect();
                panic!("not received; spans: {names:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, a request's server span (continuing the caller's
/// `traceparent`) and its vendor call's client span reach the receiver in one trace, and the
/// vendor received that trace in its own `traceparent`. Logs at `warn` do not stop spans.
#[test]
fn traces_go_over_otlp_with_the_vendor_call_in_the_request_trace() {
    let receiver = Receiver::start();
    let double = vendor_doubles::start("treez").unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gateway = served_gateway(dir.path())
        .env("RUST_LOG", "warn")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "pos-gateway-under-test");
    let (_, token) = treez_store(&gateway, dir.path(), double.as_ref());
    let mut serving = gateway.serve().unwrap();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (status, _, body) = get(
        &format!("{}/api/v1/kiosk/customers?phone=5550104444", serving.url()),
        &token,
        &[("traceparent", &format!("00-{trace_id}-00f067aa0ba902b7-01"))],
    );
    assert_eq!(status, 200, "{body}");

    let search = double
        .double()
        .calls()
        .into_iter()
        .find(|call| call.op == Op::Search)
        .expect("the search reached the double");
    let sent = search
        .header("traceparent")
        .expect("a traceparent was sent")
        .to_owned();
    let (sent_trace, sent_span) = match sent.split('-').collect::<Vec<_>>()[..] {
        ["00", trace, span, "01"] => (trace.to_owned(), span.to_owned()),
        _ => panic!("not a W3C traceparent: {sent}"),
    };
    assert_eq!(sent_trace, trace_id, "the vendor got the request's trace");

    let (server, client) = receiver.wait_for(|spans| {
        let in_trace = |span: &&Span| hex(&span.trace_id) == trace_id;
        let server = spans
            .iter()
            .filter(in_trace)
            .find(|s| s.kind == SpanKind::Server as i32)?;
        let client = spans
            .iter()
            .filter(in_trace)
            .find(|s| hex(&s.span_id) == sent_span)?;
        Some((server.clone(), client.clone()))
    });
    assert_eq!(client.kind, SpanKind::Client as i32, "{client:?}");
    assert!(
        matches!(attribute(&client, "operation"), Some(AnyValue::StringValue(op)) if op == "find"),
        "{client:?}"
    );
    assert_eq!(server.name, "GET /api/v1/{catalog_id}/customers");
    assert_eq!(hex(&server.parent_span_id), "00f067aa0ba902b7");
    assert!(
        matches!(attribute(&server, "vendor"), Some(AnyValue::StringValue(v)) if v == "treez"),
        "{server:?}"
    );
    assert!(
        matches!(attribute(&client, "vendor"), Some(AnyValue::StringValue(v)) if v == "treez"),
        "{client:?}"
    );
    assert!(
        matches!(attribute(&client, "status"), Some(AnyValue::IntValue(_))),
        "{client:?}"
    );
    let route = match attribute(&client, "route") {
        Some(AnyValue::StringValue(route)) => route.clone(),
        other => panic!("no route: {other:?}"),
    };
    assert!(!route.contains("5550104444"), "{route}");
    assert!(!client.name.contains("5550104444"), "{}", client.name);

    serving.terminate(Duration::from_secs(10)).unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// After vendor calls through the gateway (one failing once with a 500, retried), `/metrics`
/// shows the vendor series by vendor, operation and status class, the retry and its reason,
/// the rate limiter's waits and the circuits; never a store.
#[test]
fn metrics_show_vendor_calls_by_vendor_operation_and_status_class() {
    let double = vendor_doubles::start("treez").unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gateway = served_gateway(dir.path()).env("RUST_LOG", "warn");
    let (_, token) = treez_store(&gateway, dir.path(), double.as_ref());
    let serving = gateway.serve().unwrap();
    double.double().fail(Op::Search, Fault::Status(500), 1);
    let (status, _, body) = get(
        &format!("{}/api/v1/kiosk/customers?phone=5550105555", serving.url()),
        &token,
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let (status, _, metrics) = get(&format!("{}/metrics", serving.url()), &token, &[]);
    assert_eq!(status, 200);
    for series in [
        r#"pos_gateway_vendor_request_duration_seconds_count{operation="find",status_class="2xx",vendor="treez"} "#,
        r#"pos_gateway_vendor_request_duration_seconds_count{operation="find",status_class="5xx",vendor="treez"} 1"#,
        r#"pos_gateway_vendor_retries_total{operation="find",reason="5xx",vendor="treez"} 1"#,
        r#"pos_gateway_vendor_open_circuits{vendor="treez"} 0"#,
        r#"pos_gateway_vendor_rate_limit_wait_seconds_count{vendor="treez"}"#,
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    // Vendor-call series carry no store (the sync's per-store gauges are another matter).
    assert!(
        metrics
            .lines()
            .filter(|line| line.starts_with("pos_gateway_vendor_"))
            .all(|line| !line.contains("store=")),
        "{metrics}"
    );
}

/// A live read of Treez answers at once and is copied into the mirror behind: `/metrics`
/// counts the customers copied and the statements that wrote them (how few statements reads
/// in quick succession share is the persistence tests' to say).
#[test]
fn metrics_count_mirror_copies_written_behind_reads_and_their_statements() {
    let double = vendor_doubles::start("treez").unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gateway = served_gateway(dir.path()).env("RUST_LOG", "warn");
    let (_, token) = treez_store(&gateway, dir.path(), double.as_ref());
    double.seed_customer(&vendor_doubles::SeedCustomer {
        first_name: "Behind".into(),
        last_name: "Reader".into(),
        email: Some("behind.reader@example.org".into()),
        ..Default::default()
    });
    let serving = gateway.serve().unwrap();
    for _ in 0..5 {
        let (status, _, body) = get(
            &format!(
                "{}/api/v1/kiosk/customers?email=behind.reader%40example.org",
                serving.url()
            ),
            &token,
            &[],
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("Behind"), "{body}");
    }
    let counter = |metrics: &str, series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let began = Instant::now();
    loop {
        let (status, _, metrics) = get(&format!("{}/metrics", serving.url()), &token, &[]);
        assert_eq!(status, 200);
        let written = counter(
            &metrics,
            r#"pos_gateway_mirror_writes_behind_total{outcome="written"}"#,
        );
        let statements = counter(&metrics, "pos_gateway_mirror_write_behind_statements_total");
        if written > 0 {
            assert!(
                (1..=written).contains(&statements),
                "{statements} statements:\n{metrics}"
            );
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "never written:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
