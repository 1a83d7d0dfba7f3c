//! The server-side deadline of every call: the configured request timeout, or the caller's
//! `grpc-timeout` when shorter. tonic's own timeout answers an expired call with CANCELLED
//! and no details; this one answers DEADLINE_EXCEEDED with an `ErrorInfo`, as the gRPC status
//! code guide asks of a deadline the server enforces.

use std::collections::HashMap;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use tonic::Code;
use tower::{Layer, Service};

use crate::domain::Reason;

/// tonic still applies a caller's `grpc-timeout` outside this layer (it cannot be turned
/// off); answering this much earlier makes ours the answer the caller gets.
const AHEAD_OF_TONIC: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    max: Duration,
}

impl DeadlineLayer {
    pub fn new(max: Duration) -> Self {
        Self { max }
    }

    fn deadline(&self, headers: &HeaderMap) -> Duration {
        match grpc_timeout(headers) {
            Some(asked) => self.max.min(asked.saturating_sub(AHEAD_OF_TONIC)),
            None => self.max,
        }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            layer: *self,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    layer: DeadlineLayer,
}

impl<S, B> Service<Request<B>> for Deadline<S>
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
        let deadline = self.layer.deadline(req.headers());
        let call = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout(deadline, call).await {
                Ok(response) => response,
                Err(_) => Ok(expired(deadline).into_http()),
            }
        })
    }
}

fn expired(after: Duration) -> tonic::Status {
    super::status::status(
        Code::DeadlineExceeded,
        Reason::DeadlineExceeded,
        format!(
            "the call did not finish within its deadline ({} ms); it may or may not have taken effect",
            after.as_millis()
        ),
        HashMap::new(),
    )
}

/// The caller's `grpc-timeout` (`<up to 8 digits><H|M|S|m|u|n>`), when present and valid.
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("grpc-timeout")?.to_str().ok()?;
    let unit_at = v.len().checked_sub(1)?;
    let (digits, unit) = v.split_at(unit_at);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is how a test fails
mod tests {
    use super::*;

    fn headers(timeout: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("grpc-timeout", timeout.parse().unwrap());
        h
    }

    #[test]
    fn reads_grpc_timeout() {
        assert_eq!(grpc_timeout(&headers("2S")), Some(Duration::from_secs(2)));
        assert_eq!(
            grpc_timeout(&headers("150m")),
            Some(Duration::from_millis(150))
        );
        assert_eq!(
            grpc_timeout(&headers("1H")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(grpc_timeout(&headers("3M")), Some(Duration::from_secs(180)));
        assert_eq!(grpc_timeout(&headers("7u")), Some(Duration::from_micros(7)));
        assert_eq!(grpc_timeout(&headers("9n")), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "123456789S", "5x", "-1S", "1.5S"] {
            assert_eq!(grpc_timeout(&headers(bad)), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn the_shorter_deadline_wins() {
        let l = DeadlineLayer::new(Duration::from_secs(10));
        assert_eq!(l.deadline(&HeaderMap::new()), Duration::from_secs(10));
        assert_eq!(
            l.deadline(&headers("1S")),
            Duration::from_secs(1) - AHEAD_OF_TONIC
        );
        assert_eq!(l.deadline(&headers("1M")), Duration::from_secs(10));
    }
}
