//! Logs, traces and the vendor calls' metrics (issue 14): what tells replicas apart.
//!
//! - Logs go to stderr as text (no colour unless stderr is a terminal) or, with
//!   `POS_GATEWAY_LOG_FORMAT=json`, one JSON object a line: the event's fields and those of
//!   every span it is in (request id, store, vendor, route...), with `timestamp`, `level`,
//!   `target` and `replica`. `RUST_LOG` filters them (default `info`).
//! - Traces go over OTLP (HTTP/protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, configured by the standard `OTEL_*`
//!   variables; a request's span continues the caller's `traceparent`, and each vendor call's
//!   span sends its own to the vendor. `RUST_LOG` does not filter them: every span at `info`.
//! - Vendor calls are counted by [`VendorMetrics`], whose series `/metrics` shows beside the
//!   HTTP ones. pos-adapters knows neither Prometheus nor OpenTelemetry: it reports to the
//!   [`VendorObserver`](pos_adapters::http::observe::VendorObserver) installed here.

use std::io::IsTerminal as _;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context as _;
use domain::Vendor;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::trace::TracerProvider as _;
use pos_adapters::http::observe::{Attempt, RetryReason, VendorObserver};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use serde_json::{Map, Value};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{Config, LogFormat};

/// What the process is called in logs and traces: `POS_GATEWAY_REPLICA`, else the host's name
/// and the process id (`web-3-12345`), which tells replicas on one host apart too.
pub fn replica_name(config: &Config) -> String {
    config.replica.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            gethostname::gethostname().to_string_lossy(),
            std::process::id()
        )
    })
}

/// Keeps the trace exporter alive; dropping it sends the spans not yet sent (a few seconds at
/// most), so hold it until the process ends.
#[must_use]
pub struct Telemetry {
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take()
            && let Err(e) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("warning: the last traces could not be sent: {e}");
        }
    }
}

/// Sets up logs and traces for the process, once: a second call changes nothing. The
/// `OTEL_*` variables are read from the environment, as every OpenTelemetry SDK does.
pub fn init(format: LogFormat, replica: &str) -> anyhow::Result<Telemetry> {
    init_with(format, replica, |key| std::env::var(key).ok())
}

fn init_with(
    format: LogFormat,
    replica: &str,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(crate::progress::LogWriter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines {
                replica: replica.to_owned(),
            })
            .with_writer(crate::progress::LogWriter)
            .with_filter(filter)
            .boxed(),
    };
    let provider = trace_provider(replica, &env)?;
    let traces = provider.as_ref().map(|provider| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("pos-gateway"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init();
    Ok(Telemetry { traces: provider })
}

/// The OTLP exporter the `OTEL_*` variables ask for; `None` without an endpoint, with
/// `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`.
fn trace_provider(
    replica: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    let set = |key: &str| env(key).filter(|v| !v.trim().is_empty());
    let endpoint =
        set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    if endpoint.is_none() || disabled {
        return Ok(None);
    }
    if let Some(exporter) = set("OTEL_TRACES_EXPORTER")
        && !exporter.trim().eq_ignore_ascii_case("otlp")
    {
        anyhow::bail!("OTEL_TRACES_EXPORTER={exporter} is not supported: otlp or none");
    }
    let protocol =
        set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"));
    if let Some(protocol) = protocol
        && protocol.trim() != "http/protobuf"
    {
        anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported by this build: http/protobuf"
        );
    }
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
        .context("cannot set up the OTLP trace exporter (OTEL_EXPORTER_OTLP_*)")?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if set("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("pos-gateway");
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.instance.id",
            replica.to_owned(),
        ))
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(Some(
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

/// Makes `span` (a request's root span) continue the trace of the caller's `traceparent`,
/// if any, and records its trace id in it (so log lines carry it). Nothing without traces.
pub fn continue_trace(headers: &actix_web::http::header::HeaderMap, span: &tracing::Span) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&ActixHeaders(headers))
    });
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let context = span.context();
    let trace = context.span().span_context().trace_id();
    if trace != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace));
    }
}

struct ActixHeaders<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for ActixHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

struct VendorHeaders<'a>(&'a mut pos_adapters::http::HeaderMap);

impl Injector for VendorHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        use pos_adapters::http::header::{HeaderName, HeaderValue};
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// One JSON object a line: `timestamp`, `level`, `target`, `replica`, then the fields of
/// every span the event is in (outermost first, so an inner span's field wins), then the
/// event's own (`message` among them).
struct JsonLines {
    replica: String,
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let metadata = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
        line.insert("level".into(), metadata.level().as_str().into());
        line.insert("target".into(), metadata.target().into());
        line.insert("replica".into(), self.replica.clone().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields)
                {
                    // `otel.*` name and shape the span in a trace; the line has the same.
                    line.extend(
                        fields
                            .into_iter()
                            .filter(|(key, _)| !key.starts_with("otel.")),
                    );
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

/// The vendor calls' series. Labels are bounded by the code, never by the data: `vendor` (the
/// vendors built in), `operation` (`find`, `get`, `create`, `update`, `other`), `status_class`
/// (`2xx`, `3xx`, `4xx`, `429`, `5xx`, `timeout`, `connect_error`, `connection_lost`) and
/// `reason`. No store label: a chain has thousands of stores, and per-store detail is in the
/// logs and traces (`store` on every request's lines).
pub struct VendorMetrics {
    registry: Registry,
    duration: HistogramVec,
    retries: IntCounterVec,
    refused: IntCounterVec,
    rate_limit_wait: HistogramVec,
    open_circuits: IntGaugeVec,
    circuits_opened: IntCounterVec,
}

/// The process's vendor metrics: vendor calls are made by every server of the process, and
/// each server's `/metrics` shows them. (`None` only if prometheus refused a definition, which
/// the tests would show.)
pub static VENDOR_METRICS: LazyLock<Option<VendorMetrics>> = LazyLock::new(|| {
    VendorMetrics::new()
        .inspect_err(|e| tracing::warn!(error = %e, "the vendor metrics could not be set up"))
        .ok()
});

impl VendorMetrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "pos_gateway_vendor_request_duration_seconds",
                "Each attempt of a vendor call, by vendor, operation and status class",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["vendor", "operation", "status_class"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "pos_gateway_vendor_retries_total",
                "Vendor reads sent again, by vendor, operation and reason",
            ),
            &["vendor", "operation", "reason"],
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "pos_gateway_vendor_calls_refused_total",
                "Vendor calls refused before reaching the vendor: circuit_open, or rate_limit (the store's budget would not come back within the deadline)",
            ),
            &["vendor", "reason"],
        )?;
        let rate_limit_wait = HistogramVec::new(
            HistogramOpts::new(
                "pos_gateway_vendor_rate_limit_wait_seconds",
                "Time vendor calls waited for their store's rate limiter (0 when a permit was free)",
            )
            .buckets(vec![0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["vendor"],
        )?;
        let open_circuits = IntGaugeVec::new(
            Opts::new(
                "pos_gateway_vendor_open_circuits",
                "Stores whose circuit breaker is open or half-open in this replica, by vendor",
            ),
            &["vendor"],
        )?;
        let circuits_opened = IntCounterVec::new(
            Opts::new(
                "pos_gateway_vendor_circuits_opened_total",
                "Times a store's circuit breaker opened in this replica, by vendor",
            ),
            &["vendor"],
        )?;
        let metrics = Self {
            registry,
            duration,
            retries,
            refused,
            rate_limit_wait,
            open_circuits,
            circuits_opened,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 6] = [
            Box::new(metrics.duration.clone()),
            Box::new(metrics.retries.clone()),
            Box::new(metrics.refused.clone()),
            Box::new(metrics.rate_limit_wait.clone()),
            Box::new(metrics.open_circuits.clone()),
            Box::new(metrics.circuits_opened.clone()),
        ];
        for collector in collectors {
            metrics.registry.register(collector)?;
        }
        // Every vendor's gauge from the start, so a dashboard shows 0 rather than nothing.
        for spec in pos_adapters::VENDORS {
            metrics
                .open_circuits
                .with_label_values(&[spec.vendor.as_str()]);
        }
        Ok(metrics)
    }

    /// Every series, for `/metrics`.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }

    /// Installs the observer that feeds these series and sends the trace context to vendors
    /// (once per process; later calls change nothing).
    pub fn install() {
        pos_adapters::http::observe::install(Observer);
    }
}

struct Observer;

impl VendorObserver for Observer {
    fn inject_context(&self, headers: &mut pos_adapters::http::HeaderMap) {
        let context = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut VendorHeaders(headers));
        });
    }

    fn attempt(&self, attempt: &Attempt<'_>) {
        let Some(metrics) = &*VENDOR_METRICS else {
            return;
        };
        metrics
            .duration
            .with_label_values(&[
                attempt.vendor.as_str(),
                attempt.operation,
                attempt.outcome.class(),
            ])
            .observe(attempt.elapsed.as_secs_f64());
    }

    fn retry(&self, vendor: Vendor, operation: &'static str, reason: RetryReason) {
        let Some(metrics) = &*VENDOR_METRICS else {
            return;
        };
        metrics
            .retries
            .with_label_values(&[vendor.as_str(), operation, reason.as_str()])
            .inc();
    }

    fn rate_limit(&self, vendor: Vendor, waited: Duration, admitted: bool) {
        let Some(metrics) = &*VENDOR_METRICS else {
            return;
        };
        if admitted {
            metrics
                .rate_limit_wait
                .with_label_values(&[vendor.as_str()])
                .observe(waited.as_secs_f64());
        } else {
            metrics
                .refused
                .with_label_values(&[vendor.as_str(), "rate_limit"])
                .inc();
        }
    }

    fn circuit_refused(&self, vendor: Vendor) {
        let Some(metrics) = &*VENDOR_METRICS else {
            return;
        };
        metrics
            .refused
            .with_label_values(&[vendor.as_str(), "circuit_open"])
            .inc();
    }

    fn circuit_changed(&self, vendor: Vendor, opened: bool) {
        let Some(metrics) = &*VENDOR_METRICS else {
            return;
        };
        let gauge = metrics.open_circuits.with_label_values(&[vendor.as_str()]);
        if opened {
            gauge.inc();
            metrics
                .circuits_opened
                .with_label_values(&[vendor.as_str()])
                .inc();
        } else {
            gauge.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_off_without_an_endpoint_and_refuse_what_is_not_built() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(trace_provider("r", &env(&[])).unwrap().is_none());
        assert!(
            trace_provider(
                "r",
                &env(&[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                    ("OTEL_SDK_DISABLED", "true")
                ])
            )
            .unwrap()
            .is_none()
        );
        let grpc = trace_provider(
            "r",
            &env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ]),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(grpc.contains("http/protobuf"), "{grpc}");
    }
}
