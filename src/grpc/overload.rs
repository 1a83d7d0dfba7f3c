//! Calls in flight per connection, shed above the limit. tonic's own limit and load shedding
//! sit outside every layer of ours and answer RESOURCE_EXHAUSTED with no `ErrorInfo` and no
//! `RetryInfo`, so a client cannot tell an overloaded connection from a rate limit; this one
//! answers with both. Connections are told apart by the peer's address (one TCP connection
//! per address and port while it is open).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{Request, Response};
use tower::{Layer, Service};

use crate::domain::Reason;

/// What a shed call is told to wait: long enough for a call in flight to finish, short enough
/// that a burst does not turn into an outage.
const RETRY_AFTER: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct ConnectionLimitLayer {
    limit: usize,
    in_flight: Arc<Mutex<HashMap<Option<SocketAddr>, usize>>>,
}

impl ConnectionLimitLayer {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            in_flight: Arc::default(),
        }
    }

    /// A slot for one more call on this connection, or `None` when it has `limit` in flight.
    fn admit(&self, peer: Option<SocketAddr>) -> Option<Slot> {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(peer).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            peer,
            in_flight: self.in_flight.clone(),
        })
    }
}

/// Gives its place back when the call is answered (or dropped, as when the client goes away).
struct Slot {
    peer: Option<SocketAddr>,
    in_flight: Arc<Mutex<HashMap<Option<SocketAddr>, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            // Closed connections must not accumulate: an entry lives while a call does.
            if *n == 0 {
                map.remove(&self.peer);
            }
        }
    }
}

impl<S> Layer<S> for ConnectionLimitLayer {
    type Service = ConnectionLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ConnectionLimit {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectionLimit<S> {
    inner: S,
    layer: ConnectionLimitLayer,
}

impl<S, B> Service<Request<B>> for ConnectionLimit<S>
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
        let peer =
            crate::transport::tcp_connect_info(req.extensions()).and_then(|c| c.remote_addr());
        let Some(slot) = self.layer.admit(peer) else {
            let limit = self.layer.limit;
            return Box::pin(async move { Ok(shed(limit).into_http()) });
        };
        let call = self.inner.call(req);
        Box::pin(async move {
            let response = call.await;
            drop(slot);
            response
        })
    }
}

fn shed(limit: usize) -> tonic::Status {
    super::status::exhausted(
        Reason::TooManyCallsInFlight,
        format!(
            "this connection already has {limit} calls in flight; retry shortly, or spread calls over more connections"
        ),
        HashMap::from([("limit".to_owned(), limit.to_string())]),
        RETRY_AFTER,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn addr(port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn admits_up_to_the_limit_per_connection_and_frees_on_drop() {
        let layer = ConnectionLimitLayer::new(2);
        let a1 = layer.admit(addr(1)).unwrap();
        let _a2 = layer.admit(addr(1)).unwrap();
        assert!(
            layer.admit(addr(1)).is_none(),
            "a third call on a full connection"
        );
        let _b = layer
            .admit(addr(2))
            .expect("another connection has its own limit");
        drop(a1);
        assert!(
            layer.admit(addr(1)).is_some(),
            "a freed slot is usable again"
        );
    }

    #[test]
    fn an_idle_connection_leaves_nothing_behind() {
        let layer = ConnectionLimitLayer::new(1);
        drop(layer.admit(addr(7)).unwrap());
        assert!(layer.in_flight.lock().unwrap().is_empty());
    }

    #[test]
    fn a_shed_call_carries_its_reason_and_when_to_retry() {
        use tonic_types::StatusExt;
        let s = shed(3);
        assert_eq!(s.code(), Code::ResourceExhausted);
        let d = s.get_error_details();
        assert_eq!(d.error_info().unwrap().reason, "TOO_MANY_CALLS_IN_FLIGHT");
        assert_eq!(d.retry_info().unwrap().retry_delay, Some(RETRY_AFTER));
    }
}
