//! Logs and traces: `tracing` for both, with an OpenTelemetry bridge.
//!
//! The OTel layer is always installed, so every span has a trace id to log and the caller's
//! `traceparent` carries through. Without `OTEL_EXPORTER_OTLP_ENDPOINT` its tracer provider
//! has no exporter and samples nothing (`AlwaysOff`): span contexts, and so trace ids, still
//! exist, but no span data is recorded. With the endpoint set, spans are batched and exported
//! over OTLP/gRPC.

pub mod metrics;
pub mod rpc;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

const DEFAULT_FILTER: &str = "info,entitlements=info,h2=warn,hyper=warn,tower=warn,sqlx=warn";
const TRACES_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// Spans of the transport stack the exporter itself runs on; exporting them would have the
/// exporter trace its own exports.
const TRANSPORT_TARGETS: [&str; 7] = [
    "h2",
    "hyper",
    "tonic",
    "tower",
    "reqwest",
    "rustls",
    "opentelemetry",
];
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Set once spans are exported: detail that only a trace backend would read (a span per
/// decision on the hot path) is recorded only then.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans leave the process (OTLP export configured and initialised).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// True when the standard variables ask for OTLP export (of traces, or of every signal).
pub fn otlp_configured(signal_var: &str) -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", signal_var]
        .iter()
        .any(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()))
}

/// Flushes and shuts down the tracer provider on [`TelemetryGuard::shutdown`] or drop; keep it
/// alive until the server has stopped.
#[must_use = "dropping the guard shuts tracing export down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("active", &self.provider.is_some())
            .finish()
    }
}

impl TelemetryGuard {
    pub fn shutdown(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        // Shutdown exports the spans still queued. The batch exporter runs on its own thread
        // but its gRPC channel is driven by Tokio: waiting for it on a runtime worker would
        // stall that worker, so hand the worker off. On a current-thread runtime nothing can
        // drive the channel meanwhile, and the timeout bounds the wait.
        let flush = move || {
            if let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                tracing::warn!(error = %e, "shutting down the tracer provider failed");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(flush);
            }
            _ => flush(),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// Installs the global subscriber (env `RUST_LOG`, else a default filter; JSON lines or human
/// text on stdout), the OTel layer, and the W3C trace-context propagator. Errors if a global
/// subscriber is already set. With OTLP export on, it must run inside the Tokio runtime.
pub fn init(service_name: &str, json_logs: bool) -> anyhow::Result<TelemetryGuard> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .with_context(|| format!("RUST_LOG={directives:?} is not a valid filter"))?,
        _ => EnvFilter::try_new(DEFAULT_FILTER)?,
    };
    let export = otlp_configured(TRACES_ENDPOINT_VAR);
    let provider = tracer_provider(service_name, export)?;

    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(json_logs.then(|| {
            fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
        }))
        // Colour codes only for a person at a terminal, not in files or log collectors.
        .with((!json_logs).then(|| fmt::layer().with_ansi(std::io::stdout().is_terminal())))
        // Without an exporter the bridge would only cost time on every span; trace ids of
        // incoming calls are then read from `traceparent` directly (see grpc::auth).
        .with(export.then(|| otel_layer(&provider)))
        .try_init();
    if let Err(e) = installed {
        let _ = provider.shutdown();
        return Err(anyhow::anyhow!(
            "a global tracing subscriber is already set: {e}"
        ));
    }
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(provider.clone());
    EXPORTING.store(export, Ordering::Relaxed);
    tracing::debug!(otlp_export = export, "telemetry initialised");
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// The process's resource: the standard detectors (`OTEL_SERVICE_NAME`,
/// `OTEL_RESOURCE_ATTRIBUTES`, SDK and telemetry attributes), with `default_name` as the
/// service name only where neither variable names one.
pub fn resource(default_name: &str) -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
            v.split(',')
                .any(|kv| kv.trim_start().starts_with("service.name="))
        });
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder.with_service_name(default_name.to_owned()).build()
    }
}

fn tracer_provider(service_name: &str, export: bool) -> anyhow::Result<SdkTracerProvider> {
    let resource = resource(service_name);
    let builder = SdkTracerProvider::builder().with_resource(resource);
    if !export {
        return Ok(builder.with_sampler(Sampler::AlwaysOff).build());
    }
    // The tonic channel spawns its connection task at build time, so it needs the runtime now.
    tokio::runtime::Handle::try_current()
        .context("telemetry::init must run inside the Tokio runtime when OTLP export is on")?;
    // Endpoint, headers, timeout and sampler come from the standard OTEL_* variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .context("cannot build the OTLP span exporter")?;
    Ok(builder.with_batch_exporter(exporter).build())
}

/// The bridge from `tracing` spans to OTel spans, minus the transport crates' own spans.
fn otel_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let tracer = provider.tracer("entitlements");
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(FilterFn::new(|meta| !is_transport(meta.target())))
}

fn is_transport(target: &str) -> bool {
    TRANSPORT_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::") || rest.starts_with('_'))
    })
}

/// Hex trace id of the current span's OTel context, if it has a valid one. Reading it starts
/// the OTel span, so attach an incoming parent (`span.set_parent(extract_parent(..))`) first.
pub fn trace_id_from_current_span() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The caller's trace context from W3C `traceparent`/`tracestate` gRPC metadata, read through
/// the global propagator (set by [`init`]).
pub fn extract_parent(metadata: &tonic::metadata::MetadataMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&MetadataExtractor(metadata)))
}

/// The caller's trace context from the W3C headers of an HTTP/2 request.
pub fn extract_parent_from_headers(headers: &http::HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataExtractor<'a>(&'a tonic::metadata::MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;
    use tonic::metadata::MetadataMap;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn metadata(traceparent: &str) -> MetadataMap {
        let mut md = MetadataMap::new();
        md.insert("traceparent", traceparent.parse().unwrap());
        md.insert("tracestate", "vendor=opaque".parse().unwrap());
        md
    }

    #[test]
    fn extract_parent_reads_traceparent() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let cx = extract_parent(&metadata(PARENT));
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(sc.trace_id().to_string(), TRACE_ID);
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(sc.trace_state().get("vendor"), Some("opaque"));

        let cx = extract_parent(&metadata("00-garbage"));
        assert!(!cx.span().span_context().is_valid());
        assert!(
            !extract_parent(&MetadataMap::new())
                .span()
                .span_context()
                .is_valid()
        );
    }

    /// The no-exporter setup still carries the caller's trace id into our spans.
    #[test]
    fn trace_id_follows_incoming_parent_without_export() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = tracer_provider("test", false).unwrap();
        let subscriber = tracing_subscriber::registry().with(otel_layer(&provider));
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(trace_id_from_current_span(), None, "no span, no trace id");

            let span = tracing::info_span!("request");
            span.set_parent(extract_parent(&metadata(PARENT))).unwrap();
            let _entered = span.enter();
            assert_eq!(trace_id_from_current_span().as_deref(), Some(TRACE_ID));

            let child = tracing::info_span!("child");
            let _inner = child.enter();
            assert_eq!(trace_id_from_current_span().as_deref(), Some(TRACE_ID));
        });
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(otel_layer(&provider)),
            || {
                let root = tracing::info_span!("root");
                let _entered = root.enter();
                let id = trace_id_from_current_span().unwrap();
                assert_eq!(id.len(), 32);
                assert_ne!(id, TRACE_ID);
            },
        );
    }

    #[test]
    fn transport_targets_are_kept_out() {
        for t in [
            "h2",
            "h2::codec",
            "hyper_util::client",
            "tonic::transport",
            "tower::buffer",
        ] {
            assert!(is_transport(t), "{t}");
        }
        for t in ["entitlements::grpc", "hyperion", "towering"] {
            assert!(!is_transport(t), "{t}");
        }
    }

    const CHILD_ENV: &str = "ENTITLEMENTS_TELEMETRY_INIT_CHILD";

    /// `init` touches process-global state, so it runs in a child copy of this test binary.
    #[test]
    fn init_once_per_process() {
        for otlp in [None, Some("http://127.0.0.1:9")] {
            let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
            cmd.args([
                "--exact",
                "telemetry::tests::init_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .env_remove("RUST_LOG");
            match otlp {
                Some(endpoint) => cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
                None => cmd.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT"),
            };
            let out = cmd
                .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "child failed ({otlp:?}):\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                stdout.contains("1 passed"),
                "the child ran the test:\n{stdout}"
            );
        }
    }

    #[test]
    fn init_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let guard = init("entitlements-test", true).unwrap();
            assert!(
                init("entitlements-test", false).is_err(),
                "second init must fail, not panic"
            );
            let exporting = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
            let span = tracing::info_span!("request");
            // Without export there is no OTel layer (it would only cost time); the transport
            // then reads trace ids from `traceparent` itself.
            assert_eq!(
                span.set_parent(extract_parent(&metadata(PARENT))).is_ok(),
                exporting
            );
            let _entered = span.enter();
            let expected = exporting.then_some(TRACE_ID);
            assert_eq!(trace_id_from_current_span().as_deref(), expected);
            tracing::info!("inside a traced request");
            drop(_entered);
            guard.shutdown();
        });
    }
}
