//! Metrics: the OpenTelemetry metrics SDK, read as Prometheus text at `/metrics` on
//! `--metrics-listen`, and pushed over OTLP/gRPC when the standard variables ask for it.
//!
//! Counters on the hot path are plain atomics the service keeps (see `service::stats`); the
//! SDK reads them through callbacks when it collects, so a check pays no SDK call for them.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::service::Services;

const METRICS_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";

/// The registry `/metrics` reads, once Prometheus export is on.
static REGISTRY: OnceLock<prometheus::Registry> = OnceLock::new();

/// Shuts the meter provider down (a last OTLP export) when dropped.
#[must_use = "dropping the guard shuts metrics export down"]
pub struct MetricsGuard {
    provider: Option<SdkMeterProvider>,
}

impl std::fmt::Debug for MetricsGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsGuard")
            .field("active", &self.provider.is_some())
            .finish()
    }
}

impl Drop for MetricsGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "shutting down the meter provider failed");
        }
    }
}

/// Installs the global meter provider: a Prometheus reader when `prometheus` (for
/// `--metrics-listen`), an OTLP exporter when the standard variables name an endpoint. With
/// neither, instruments stay the no-op default and cost nothing.
pub fn init(service_name: &str, prometheus: bool) -> anyhow::Result<MetricsGuard> {
    let otlp = super::otlp_configured(METRICS_ENDPOINT_VAR);
    if !prometheus && !otlp {
        return Ok(MetricsGuard { provider: None });
    }
    let mut builder = SdkMeterProvider::builder().with_resource(super::resource(service_name));
    if prometheus {
        let registry = REGISTRY.get_or_init(prometheus::Registry::new).clone();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry)
            .build()
            .context("building the Prometheus exporter")?;
        builder = builder.with_reader(exporter);
    }
    if otlp {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()
            .context("cannot build the OTLP metric exporter")?;
        builder = builder.with_periodic_exporter(exporter);
    }
    let provider = builder.build();
    opentelemetry::global::set_meter_provider(provider.clone());
    Ok(MetricsGuard {
        provider: Some(provider),
    })
}

/// The Prometheus text of every metric, or None when Prometheus export is off.
pub fn prometheus_text() -> Option<Result<String, prometheus::Error>> {
    let registry = REGISTRY.get()?;
    let mut out = String::new();
    Some(
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut out)
            .map(|()| out),
    )
}

/// Serves `GET /metrics` on `listener` until `stop`.
pub async fn serve(listener: TcpListener, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    async fn metrics() -> axum::response::Response {
        match prometheus_text() {
            Some(Ok(text)) => (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                text,
            )
                .into_response(),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "encoding metrics failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                "metrics are not initialised in this process",
            )
                .into_response(),
        }
    }
    let app = axum::Router::new().route("/metrics", axum::routing::get(metrics));
    let addr: SocketAddr = listener.local_addr().context("metrics listener")?;
    tracing::info!(%addr, "serving Prometheus metrics at http://{addr}/metrics");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
        .context("metrics server failed")
}

/// Registers the gauges and counters read from the service at collection time. The returned
/// handles keep the callbacks registered.
pub fn observe_service(services: &Services) -> Vec<Box<dyn std::any::Any + Send + Sync>> {
    let meter = opentelemetry::global::meter("entitlements");
    let s = Arc::new(services.clone());
    let mut keep: Vec<Box<dyn std::any::Any + Send + Sync>> = Vec::new();
    keep.push(Box::new(decisions(&meter, s.clone())));
    keep.push(Box::new(cache_lookups(&meter, s.clone())));
    keep.extend(feed(&meter, &s));
    keep.extend(pool(&meter, &s));
    keep.extend(database(&meter, &s));
    keep.push(Box::new(
        meter
            .u64_observable_counter("entitlements.outbox.given_up")
            .with_unit("{message}")
            .with_description(
                "Emails this replica stopped trying to deliver (permanent refusal, or too old)",
            )
            .with_callback(|o| o.observe(crate::mail::emails_given_up(), &[]))
            .build(),
    ));
    keep
}

fn decisions(meter: &Meter, s: Arc<Services>) -> opentelemetry::metrics::ObservableCounter<u64> {
    meter
        .u64_observable_counter("entitlements.check.decisions")
        .with_unit("{decision}")
        .with_description("Checks answered, by decision reason")
        .with_callback(move |o| {
            for (reason, n) in s.stats().decisions {
                o.observe(n, &[KeyValue::new("reason", reason.as_str())]);
            }
        })
        .build()
}

fn cache_lookups(
    meter: &Meter,
    s: Arc<Services>,
) -> opentelemetry::metrics::ObservableCounter<u64> {
    meter
        .u64_observable_counter("entitlements.cache.lookups")
        .with_unit("{lookup}")
        .with_description("Checks answered from the cache (hit) or from the database (miss)")
        .with_callback(move |o| {
            let st = s.stats();
            o.observe(st.cache_hits, &[KeyValue::new("result", "hit")]);
            o.observe(st.cache_misses, &[KeyValue::new("result", "miss")]);
        })
        .build()
}

type Keep = Box<dyn std::any::Any + Send + Sync>;

fn feed(meter: &Meter, s: &Arc<Services>) -> Vec<Keep> {
    let (a, b, c) = (s.clone(), s.clone(), s.clone());
    vec![
        Box::new(
            meter
                .i64_observable_gauge("entitlements.feed.lag.revisions")
                .with_unit("{revision}")
                .with_description("Revisions committed but not yet applied by this replica")
                .with_callback(move |o| o.observe(a.stats().feed_lag_revisions, &[]))
                .build(),
        ),
        Box::new(
            meter
                .f64_observable_gauge("entitlements.feed.lag")
                .with_unit("s")
                .with_description("Time since this replica last read the change feed to its end")
                .with_callback(move |o| o.observe(b.stats().feed_lag_seconds, &[]))
                .build(),
        ),
        Box::new(
            meter
                .f64_observable_gauge("entitlements.cache.warm.duration")
                .with_unit("s")
                .with_description("Time this replica took to load its cache before serving")
                .with_callback(move |o| o.observe(c.stats().warm_seconds, &[]))
                .build(),
        ),
    ]
}

fn pool(meter: &Meter, s: &Arc<Services>) -> Vec<Keep> {
    let (a, b, c) = (s.clone(), s.clone(), s.clone());
    vec![
        Box::new(
            meter
                .i64_observable_gauge("db.client.connection.count")
                .with_unit("{connection}")
                .with_description("Connections of the pool, by state")
                .with_callback(move |o| {
                    let p = a.stats().pool;
                    let state = "db.client.connection.state";
                    o.observe(i64::from(p.used), &[KeyValue::new(state, "used")]);
                    o.observe(i64::from(p.idle), &[KeyValue::new(state, "idle")]);
                })
                .build(),
        ),
        Box::new(
            meter
                .i64_observable_gauge("db.client.connection.max")
                .with_unit("{connection}")
                .with_description("Most connections the pool opens")
                .with_callback(move |o| o.observe(i64::from(b.stats().pool.max), &[]))
                .build(),
        ),
        Box::new(
            meter
                .i64_observable_gauge("db.client.connection.pending_requests")
                .with_unit("{request}")
                .with_description("Calls waiting for a connection of the pool")
                .with_callback(move |o| {
                    let waiting = i64::try_from(c.stats().pool.waiting).unwrap_or(i64::MAX);
                    o.observe(waiting, &[]);
                })
                .build(),
        ),
    ]
}

fn database(meter: &Meter, s: &Arc<Services>) -> Vec<Keep> {
    let (a, b, c, d) = (s.clone(), s.clone(), s.clone(), s.clone());
    vec![
        Box::new(
            meter
                .i64_observable_gauge("entitlements.outbox.backlog")
                .with_unit("{message}")
                .with_description("Emails accepted but not yet delivered")
                .with_callback(move |o| {
                    if let Some(ops) = a.stats().ops {
                        o.observe(ops.outbox_backlog, &[]);
                    }
                })
                .build(),
        ),
        Box::new(
            meter
                .f64_observable_gauge("entitlements.outbox.oldest_due_age")
                .with_unit("s")
                .with_description("How long the longest-waiting due email has been due")
                .with_callback(move |o| {
                    if let Some(age) = b.stats().outbox_oldest_due_age_ms {
                        o.observe(age as f64 / 1000.0, &[]);
                    }
                })
                .build(),
        ),
        Box::new(
            meter
                .i64_observable_gauge("entitlements.requests.pending")
                .with_unit("{request}")
                .with_description("Access requests waiting for a decision, by age")
                .with_callback(move |o| {
                    if let Some(ops) = c.stats().ops {
                        for (age, n) in ["lt_1d", "1d_to_7d", "ge_7d"]
                            .into_iter()
                            .zip(ops.pending_requests)
                        {
                            o.observe(n, &[KeyValue::new("age", age)]);
                        }
                    }
                })
                .build(),
        ),
        Box::new(
            meter
                .i64_observable_gauge("entitlements.accounts.orphaned")
                .with_unit("{account}")
                .with_description("Active accounts with no administrator who can decide (no STC or TC with a verified email)")
                .with_callback(move |o| {
                    if let Some(ops) = d.stats().ops {
                        o.observe(ops.orphaned_accounts, &[]);
                    }
                })
                .build(),
        ),
    ]
}
