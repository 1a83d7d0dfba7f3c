//! Traces and metrics of a real `entitlements serve` process (telemetry is process-global, so
//! not the in-process servers of the other tests): spans and metrics sent by OTLP/gRPC to a
//! receiver on loopback, and the Prometheus text of `--metrics-listen`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entitlements::proto::v1 as pb;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::flow::{check, setup_account};
use crate::support::*;

/// A span as received, with the attributes that matter here as strings.
#[derive(Debug, Clone)]
struct Got {
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    kind: i32,
    attrs: HashMap<String, String>,
    resource: HashMap<String, String>,
}

#[derive(Default, Clone)]
struct Receiver {
    spans: Arc<Mutex<Vec<Got>>>,
    metrics: Arc<Mutex<Vec<String>>>,
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attrs(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let resource = attrs(&rs.resource.map(|r| r.attributes).unwrap_or_default());
            for ss in rs.scope_spans {
                for s in ss.spans {
                    spans.push(Got {
                        name: s.name,
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent: hex(&s.parent_span_id),
                        kind: s.kind,
                        attrs: attrs(&s.attributes),
                        resource: resource.clone(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        req: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut names = self.metrics.lock().unwrap();
        for rm in req.into_inner().resource_metrics {
            for sm in rm.scope_metrics {
                names.extend(sm.metrics.into_iter().map(|m| m.name));
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn start_receiver() -> (SocketAddr, Receiver) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(receiver.clone()))
        .add_service(MetricsServiceServer::new(receiver.clone()))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    (addr, receiver)
}

/// The service as a child process; killed when dropped.
struct Served {
    child: Child,
    grpc: SocketAddr,
    metrics: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `entitlements serve` on `db` with OTLP export to `otlp`, and reads the addresses it
/// bound from its JSON log.
fn serve(db: &TestDb, data_dir: &std::path::Path, otlp: SocketAddr) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_entitlements"))
        .args(["serve", "--dev", "--log-json"])
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--metrics-sample-ms", "100", "--database-url", &db.url])
        .arg("--data-dir")
        .arg(data_dir)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
        .env("OTEL_SERVICE_NAME", "entitlements-under-test")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test",
        )
        .env("OTEL_TRACES_SAMPLER", "parentbased_always_on")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "200")
        .env("RUST_LOG", "info")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start entitlements serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
    std::thread::spawn(move || {
        // Keeps draining the log so the child never blocks on a full pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let (Some(m), Some(a)) = (v["message"].as_str(), v["addr"].as_str()) {
                let _ = tx.send((m.to_owned(), a.to_owned()));
            }
        }
    });
    let (mut grpc, mut metrics) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while grpc.is_none() || metrics.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let (message, addr) = rx
            .recv_timeout(left)
            .expect("the server logs the addresses it listens on");
        if message.starts_with("listening on") {
            grpc = addr.parse().ok();
        } else if message.starts_with("serving Prometheus metrics") {
            metrics = addr.parse().ok();
        }
    }
    Served {
        child,
        grpc: grpc.unwrap(),
        metrics: metrics.unwrap(),
    }
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn with_parent<T>(mut req: tonic::Request<T>) -> tonic::Request<T> {
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    req
}

fn server_span(spans: &[Got], method: &str) -> Option<Got> {
    spans
        .iter()
        .find(|s| s.name == method && s.trace_id == TRACE && s.parent == CALLER_SPAN)
        .cloned()
}

fn children<'a>(spans: &'a [Got], parent: &Got) -> Vec<&'a Got> {
    spans
        .iter()
        .filter(|s| s.parent == parent.span_id)
        .collect()
}

async fn spans_follow_the_rpc_and_database_conventions(backend: Backend) {
    let (otlp, receiver) = start_receiver().await;
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    let db = Arc::new(TestDb::create(backend, data_dir.path()).await);
    let served = serve(&db, data_dir.path(), otlp);
    let app = TestApp::attach(served.grpc, db.clone(), data_dir.clone()).await;
    let db_system = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    setup_account(&app).await;

    app.access()
        .request_access(with_parent(authed(
            pb::RequestAccessRequest {
                request_id: String::new(),
                icn: ICN.into(),
                country_code: COUNTRY.into(),
                requested_role: pb::Role::AuthorizedUser as i32,
            },
            &app.person("ana"),
        )))
        .await
        .unwrap();
    let check = |icn: &str| {
        with_parent(authed(
            pb::CheckEntitlementRequest {
                web_id: "stc1".into(),
                icn: icn.into(),
                action: pb::Action::OpenServiceRequest as i32,
                product_id: String::new(),
                severity: 0,
                consistency_token: String::new(),
                consistency: 0,
            },
            &app.checker(),
        ))
    };
    // Once from the database (an ICN nobody has: nothing cached), once from the cache.
    app.entitlement()
        .check_entitlement(check("7654321"))
        .await
        .unwrap();
    for _ in 0..2 {
        app.entitlement()
            .check_entitlement(check(ICN))
            .await
            .unwrap();
    }

    let request_method = "entitlement.v1.AccessService/RequestAccess";
    let check_method = "entitlement.v1.EntitlementService/CheckEntitlement";
    let spans = wait_for("the spans of the calls", || {
        let spans = receiver.spans.lock().unwrap().clone();
        let checks = spans
            .iter()
            .filter(|s| s.name == check_method && s.trace_id == TRACE)
            .count();
        let mail = spans.iter().any(|s| s.name == "mail.deliver");
        (server_span(&spans, request_method).is_some() && checks == 3 && mail).then_some(spans)
    })
    .await;

    let request = server_span(&spans, request_method).unwrap();
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(request.attrs["rpc.system.name"], "grpc");
    assert_eq!(request.attrs["rpc.method"], request_method);
    assert_eq!(request.attrs["rpc.response.status_code"], "OK");
    assert_eq!(request.resource["service.name"], "entitlements-under-test");
    assert_eq!(request.resource["deployment.environment.name"], "test");
    let db_children: Vec<&Got> = children(&spans, &request)
        .into_iter()
        .filter(|s| s.attrs.get("db.system.name").map(String::as_str) == Some(db_system))
        .collect();
    for name in ["BEGIN", "INSERT access_requests", "COMMIT"] {
        let s = db_children
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span under RequestAccess: {db_children:#?}"));
        assert_eq!(s.kind, SpanKind::Client as i32);
        assert!(s.attrs.contains_key("db.operation.name"), "{s:?}");
    }
    assert!(
        db_children.iter().all(|s| s.trace_id == TRACE),
        "children continue the caller's trace"
    );

    let checks: Vec<&Got> = spans
        .iter()
        .filter(|s| s.name == check_method && s.trace_id == TRACE)
        .collect();
    let decisions: Vec<&Got> = checks
        .iter()
        .flat_map(|c| children(&spans, c))
        .filter(|s| s.name == "check")
        .collect();
    assert_eq!(decisions.len(), 3, "{decisions:#?}");
    let hits: Vec<&str> = decisions
        .iter()
        .map(|d| d.attrs["entitlements.cache.hit"].as_str())
        .collect();
    assert!(
        hits.contains(&"true") && hits.contains(&"false"),
        "{hits:?}"
    );
    let reasons: Vec<&str> = decisions
        .iter()
        .map(|d| d.attrs["entitlements.decision.reason"].as_str())
        .collect();
    assert!(reasons.contains(&"UNKNOWN_ACCOUNT") && reasons.contains(&"GRANTED"));
    let miss = decisions
        .iter()
        .find(|d| d.attrs["entitlements.cache.hit"] == "false")
        .unwrap();
    let fill = children(&spans, miss)
        .into_iter()
        .find(|s| s.name == "cache.fill")
        .expect("a cache fill under the missed check");
    assert!(
        children(&spans, fill)
            .iter()
            .any(|s| s.attrs.get("db.system.name").map(String::as_str) == Some(db_system)),
        "the fill's database read is its child"
    );

    let mail = spans.iter().find(|s| s.name == "mail.deliver").unwrap();
    assert_eq!(mail.kind, SpanKind::Client as i32);
    assert!(
        spans.iter().all(|s| !s.name.starts_with("grpc.health")
            && !s.name.starts_with("h2")
            && !s.name.starts_with("hyper")),
        "no health probes or transport internals in the traces"
    );

    // The same process's metrics: scraped as Prometheus text and pushed over OTLP.
    // Sampled every 100 ms here: the one pending request shows within a few samples.
    let text = wait_for("the pending request in the sampled gauges", || {
        let t = scrape(served.metrics);
        t.lines()
            .any(|l| {
                l.starts_with("entitlements_requests_pending{age=\"lt_1d\"") && l.ends_with(" 1")
            })
            .then_some(t)
    })
    .await;
    for series in [
        "rpc_server_call_duration_seconds_bucket{",
        "rpc_method=\"entitlement.v1.EntitlementService/CheckEntitlement\"",
        "rpc_response_status_code=\"OK\"",
        "entitlements_check_decisions_total{reason=\"GRANTED\"",
        "entitlements_check_decisions_total{reason=\"UNKNOWN_ACCOUNT\"",
        "entitlements_cache_lookups_total{result=\"hit\"",
        "entitlements_cache_lookups_total{result=\"miss\"",
        "entitlements_feed_lag_revisions",
        "entitlements_feed_lag_seconds",
        "entitlements_cache_warm_duration_seconds",
        "db_client_connection_count{db_client_connection_state=\"used\"",
        "db_client_connection_pending_requests",
        "db_client_connection_max",
        "entitlements_outbox_backlog",
        "entitlements_accounts_orphaned",
        "entitlements_outbox_oldest_due_age_seconds",
        "entitlements_outbox_given_up_total",
    ] {
        assert!(
            text.contains(series),
            "{series} missing from /metrics:\n{text}"
        );
    }
    // Counted, not only declared: the values follow the calls above (two checks granted, one
    // of an unknown account; a miss, then hits).
    for (series, at_least) in [
        ("entitlements_check_decisions_total{reason=\"GRANTED\"", 2.0),
        (
            "entitlements_check_decisions_total{reason=\"UNKNOWN_ACCOUNT\"",
            1.0,
        ),
        ("entitlements_cache_lookups_total{result=\"hit\"", 1.0),
        ("entitlements_cache_lookups_total{result=\"miss\"", 1.0),
    ] {
        let n = metric(&text, series);
        assert!(n >= at_least, "{series}: {n}, expected at least {at_least}");
    }
    let warm = metric(&text, "entitlements_cache_warm_duration_seconds");
    assert!(warm > 0.0, "the cache's warm-up took {warm} s");
    // Once the replica has applied every change, it lags by none.
    wait_for("a feed lag of 0 revisions", || {
        (metric(&scrape(served.metrics), "entitlements_feed_lag_revisions") == 0.0).then_some(())
    })
    .await;
    wait_for("metrics over OTLP", || {
        let names = receiver.metrics.lock().unwrap().clone();
        (names.iter().any(|n| n == "rpc.server.call.duration")
            && names.iter().any(|n| n == "entitlements.check.decisions"))
        .then_some(())
    })
    .await;
    drop(app);
    drop(served);
}

/// The value of the first sample of `series` (a name, or a name and its first labels) in a
/// Prometheus text exposition.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample of {series} in:\n{text}"))
}

/// GET /metrics over a plain HTTP/1.1 connection.
fn scrape(addr: SocketAddr) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

async fn a_check_stays_quiet_without_export(backend: Backend) {
    // In-process servers have no exporter: checks are answered with no span per decision.
    let app = TestApp::spawn(backend).await;
    setup_account(&app).await;
    assert!(!entitlements::telemetry::exporting());
    let r = check(&app, "stc1", pb::Action::OpenServiceRequest).await;
    assert!(r.allowed);
}

crate::both_backends!(
    spans_follow_the_rpc_and_database_conventions,
    a_check_stays_quiet_without_export
);
