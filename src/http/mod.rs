//! The HTTP door: the OpenID AuthZEN Authorization API 1.0 (HTTPS JSON binding) over the same
//! use cases, tokens and scopes as gRPC. Transport only, as `grpc`: decode, authenticate,
//! call a use case, encode; handlers in `handlers.rs`, request validation in `args.rs`,
//! errors in `error.rs`. See docs/authzen.md for the mapping and the spec sections followed.

mod answer;
pub mod args;
mod error;
mod handlers;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OnceCell, watch};
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tower::ServiceBuilder;

pub use error::HttpError;

use crate::auth::Authenticator;
use crate::domain::Reason;
use crate::service::{Caller, Services};
use crate::transport::CurrentTls;
use crate::transport::caller::RecentCallers;

/// The spec's default paths (its HTTPS binding's endpoint table).
pub const EVALUATION: &str = "/access/v1/evaluation";
pub const EVALUATIONS: &str = "/access/v1/evaluations";
pub const SEARCH_RESOURCE: &str = "/access/v1/search/resource";
pub const METADATA: &str = "/.well-known/authzen-configuration";

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler shares; the services appear once the database is migrated.
#[derive(Clone)]
pub struct HttpApi {
    services: Arc<OnceCell<Services>>,
    auth: Authenticator,
    recent: Arc<RecentCallers>,
    /// Whether the door speaks TLS, for the scheme of the metadata's URLs.
    tls: bool,
}

impl HttpApi {
    pub fn new(services: Arc<OnceCell<Services>>, auth: Authenticator, tls: bool) -> Self {
        Self {
            services,
            auth,
            recent: Arc::default(),
            tls,
        }
    }

    /// Authenticates the request and returns the caller and the use cases.
    async fn enter(&self, headers: &HeaderMap) -> Result<(Caller, &Services), HttpError> {
        let header = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        // Checks write no audit event, so no trace id is read (as the gRPC check path).
        let caller =
            crate::transport::caller::caller(&self.auth, &self.recent, header, None, false).await?;
        let services = self.services.get().ok_or_else(|| {
            HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Reason::Starting,
                "the service is starting; retry shortly",
            )
            .retry_after(1)
        })?;
        Ok((caller, services))
    }
}

/// The same limits as the gRPC listener's flags.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body (`--max-message-bytes`).
    pub max_body_bytes: usize,
    /// Requests in flight on this door before new ones are shed (`--concurrency-limit`).
    pub concurrency: usize,
    /// Per-request deadline (`--request-timeout-ms`).
    pub timeout: Duration,
}

pub fn router(api: HttpApi, limits: Limits) -> Router {
    Router::new()
        .route(EVALUATION, post(handlers::evaluation))
        .route(EVALUATIONS, post(handlers::evaluations))
        .route(SEARCH_RESOURCE, post(handlers::search_resource))
        .route(METADATA, get(handlers::metadata))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(refused))
                .load_shed()
                // One limit for the whole door (HTTP/1.1 clients open many connections).
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                    limits.concurrency.max(1),
                ))
                .timeout(limits.timeout),
        )
        // Outermost, so every answer (shed, late, unknown path) echoes the request id.
        .layer(axum::middleware::from_fn(echo_request_id))
        .with_state(api)
}

/// The spec's Request Identification: the PEP's `X-Request-ID` comes back on the response.
async fn echo_request_id(req: Request, next: Next) -> Response {
    let id = req.headers().get(&REQUEST_ID).cloned();
    let mut response = next.run(req).await;
    if let Some(id) = id {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

async fn refused(e: tower::BoxError) -> HttpError {
    if e.is::<tower::load_shed::error::Overloaded>() {
        HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Reason::TooManyCallsInFlight,
            "too many requests in flight on this server; retry shortly",
        )
        .retry_after(1)
    } else if e.is::<tower::timeout::error::Elapsed>() {
        HttpError::new(
            StatusCode::GATEWAY_TIMEOUT,
            Reason::DeadlineExceeded,
            "the request did not finish within the server's deadline",
        )
    } else {
        tracing::error!(error = %e, "HTTP middleware failed");
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Reason::Internal,
            "internal error; it has been logged",
        )
    }
}

async fn not_found() -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        Reason::InvalidArgument,
        "no such endpoint; GET /.well-known/authzen-configuration lists them",
    )
}

/// A JSON response.
fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "encoding a JSON answer failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Serves `router` on `listener` until `stop`, over TLS when `tls` is given (HTTP/2 or
/// HTTP/1.1 by ALPN; plaintext takes both too, HTTP/2 with prior knowledge).
pub async fn serve(
    listener: TcpListener,
    tls: Option<CurrentTls>,
    router: Router,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let accept_stop = stop.clone();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    match tls {
        None => {
            use axum::serve::ListenerExt as _;
            // As on the gRPC port: a response in two segments must not wait for a delayed ACK.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await
        }
        Some(tls) => {
            let incoming = crate::transport::tls_incoming(
                listener,
                tls.with_alpn(&[b"h2", b"http/1.1"]),
                accept_stop,
            );
            axum::serve(TlsListener { incoming, local }, router)
                .with_graceful_shutdown(stopped)
                .await
        }
    }
}

/// The finished TLS handshakes of `transport::tls_incoming`, as axum takes connections.
struct TlsListener {
    incoming: ReceiverStream<io::Result<TlsStream<TcpStream>>>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.incoming.next().await {
                Some(Ok(stream)) => {
                    let peer = stream.get_ref().0.peer_addr().unwrap_or(self.local);
                    return (stream, peer);
                }
                Some(Err(_)) => continue,
                // The accept loop stopped: only the graceful shutdown ends serving now.
                None => std::future::pending().await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
