//! One tower layer around every gRPC call: the server span of the OpenTelemetry RPC semantic
//! conventions (release candidate, semconv v1.40: span name and `rpc.method` are the fully
//! qualified method, `rpc.system.name` is `grpc`, `rpc.response.status_code` is the status
//! name) and the `rpc.server.call.duration` histogram with the same attributes.
//!
//! A unary call's status is known only when its response ends: an error travels in the
//! response headers (trailers-only), a success in the trailers after the message. So the
//! call is finished by the response body: at its trailers, at its end, or when it is dropped
//! (a client that went away, or a deadline the server enforced).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use tonic::Code;
use tower::{Layer, Service};
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// What an unknown path is recorded as, so a caller cannot mint new metric series.
const OTHER: &str = "_OTHER";
/// Probes call health every few seconds: they are counted, not traced.
const UNTRACED_PREFIX: &str = "grpc.health.";

/// Latency buckets in seconds: most calls are answered from memory in well under a
/// millisecond, writes take milliseconds, nothing legitimate takes a minute.
const BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// The methods the server knows, by request path, each with its attribute values made once.
#[derive(Clone)]
pub struct RpcLayer {
    methods: Arc<HashMap<String, Method>>,
    other: Method,
    duration: Histogram<f64>,
}

#[derive(Clone)]
struct Method {
    name: Arc<str>,
    traced: bool,
    system: KeyValue,
    method: KeyValue,
}

impl Method {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            traced: !name.starts_with(UNTRACED_PREFIX),
            system: KeyValue::new("rpc.system.name", "grpc"),
            method: KeyValue::new("rpc.method", Arc::<str>::from(name)),
        }
    }
}

impl RpcLayer {
    /// `methods`: fully qualified names, `package.Service/Method`.
    pub fn new<'a>(methods: impl IntoIterator<Item = &'a str>) -> Self {
        let methods = methods
            .into_iter()
            .map(|m| (format!("/{m}"), Method::new(m)))
            .collect();
        let duration = opentelemetry::global::meter("entitlements")
            .f64_histogram("rpc.server.call.duration")
            .with_unit("s")
            .with_description("Duration of gRPC calls handled, until the response ends")
            .with_boundaries(BUCKETS.to_vec())
            .build();
        Self {
            methods: Arc::new(methods),
            other: Method::new(OTHER),
            duration,
        }
    }

    fn method(&self, path: &str) -> &Method {
        self.methods.get(path).unwrap_or(&self.other)
    }
}

/// Every `package.Service/Method` of the encoded descriptor sets.
pub fn methods_of(descriptor_sets: &[&[u8]]) -> Vec<String> {
    use prost::Message as _;
    let mut out = Vec::new();
    for bytes in descriptor_sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(*bytes) else {
            continue;
        };
        for file in set.file {
            let package = file.package();
            for service in &file.service {
                for method in &service.method {
                    out.push(format!("{package}.{}/{}", service.name(), method.name()));
                }
            }
        }
    }
    out
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    layer: RpcLayer,
}

impl<S, B> Service<Request<B>> for RpcService<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = self.layer.method(req.uri().path()).clone();
        let span = if method.traced {
            server_span(&method.name, &req)
        } else {
            tracing::Span::none()
        };
        let call = Call {
            span: span.clone(),
            method,
            started: Instant::now(),
            duration: self.layer.duration.clone(),
        };
        let response = self.inner.call(req).instrument(span);
        Box::pin(async move {
            let response = response.await?;
            Ok(match status_in(response.headers()) {
                Some(code) => {
                    call.finish(code);
                    response
                }
                None => response.map(|body| tonic::body::Body::new(Observed::new(body, call))),
            })
        })
    }
}

fn server_span<B>(method: &str, req: &Request<B>) -> tracing::Span {
    // Without an exporter the span only gives log lines their context: one field is enough,
    // and the formatting of every other one would be paid on the hot path for nothing.
    if !super::exporting() {
        return tracing::info_span!("rpc", rpc.method = method);
    }
    // Plaintext or TLS: the connect info is filed under a different type for each.
    let connection = crate::transport::tcp_connect_info(req.extensions());
    let span = tracing::info_span!(
        "rpc",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system.name = "grpc",
        rpc.method = method,
        rpc.response.status_code = Empty,
        error.type = Empty,
        server.port = connection.and_then(|c| c.local_addr()).map(|a| a.port()),
        network.peer.address = connection
            .and_then(|c| c.remote_addr())
            .map(|a| tracing::field::display(a.ip())),
    );
    if req.headers().contains_key("traceparent") {
        let _ = span.set_parent(super::extract_parent_from_headers(req.headers()));
    }
    span
}

/// The status a response carries in its headers (or trailers): absent means not yet known.
fn status_in(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(value.parse().ok()?))
}

/// Server errors in the sense of the gRPC conventions: the ones that are the server's fault.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// The name semantic conventions use for a status code (`OK`, `DEADLINE_EXCEEDED`): the
/// gRPC spec's, which `ctl` already prints.
pub use crate::ctl::names::code_name;

/// One call in flight, finished exactly once.
struct Call {
    span: tracing::Span,
    method: Method,
    started: Instant,
    duration: Histogram<f64>,
}

impl Call {
    fn finish(self, code: Code) {
        let name = code_name(code);
        self.span.record("rpc.response.status_code", name);
        if is_server_error(code) {
            self.span.record("otel.status_code", "ERROR");
            self.span.record("error.type", name);
        }
        self.duration.record(
            self.started.elapsed().as_secs_f64(),
            &[
                self.method.system,
                self.method.method,
                KeyValue::new("rpc.response.status_code", name),
            ],
        );
    }
}

/// A response body that finishes its call when the status arrives or the body goes away.
struct Observed<B> {
    inner: B,
    call: Option<Call>,
}

impl<B> Observed<B> {
    fn new(inner: B, call: Call) -> Self {
        Self {
            inner,
            call: Some(call),
        }
    }

    fn finish(&mut self, code: Code) {
        if let Some(call) = self.call.take() {
            call.finish(code);
        }
    }
}

impl<B> HttpBody for Observed<B>
where
    B: HttpBody + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_in) {
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(Code::Internal),
            // A body that ends without trailers broke the protocol; tonic never does that.
            Poll::Ready(None) => self.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Observed<B> {
    fn drop(&mut self) {
        // Dropped before its status was sent: the client went away or the deadline passed.
        self.finish(Code::Cancelled);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    #[test]
    fn methods_come_from_the_descriptors() {
        let methods = methods_of(&[crate::proto::FILE_DESCRIPTOR_SET]);
        assert!(methods.contains(&"entitlement.v1.EntitlementService/CheckEntitlement".into()));
        assert!(methods.contains(&"entitlement.v1.AccessService/RequestAccess".into()));
        assert!(methods.iter().all(|m| m.contains('/')));
    }

    #[test]
    fn unknown_paths_share_one_name() {
        let layer = RpcLayer::new(["a.B/C", "grpc.health.v1.Health/Check"]);
        assert_eq!(&*layer.method("/a.B/C").name, "a.B/C");
        assert!(layer.method("/a.B/C").traced);
        assert_eq!(&*layer.method("/a.B/D").name, OTHER);
        assert!(!layer.method("/grpc.health.v1.Health/Check").traced);
    }

    #[test]
    fn status_names_and_server_errors() {
        let mut h = HeaderMap::new();
        assert_eq!(status_in(&h), None);
        h.insert("grpc-status", "4".parse().unwrap());
        assert_eq!(status_in(&h), Some(Code::DeadlineExceeded));
        assert_eq!(code_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        assert!(is_server_error(Code::Internal));
        assert!(!is_server_error(Code::PermissionDenied));
        assert!(!is_server_error(Code::NotFound));
    }
}
