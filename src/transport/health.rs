//! `--health-listen`: plaintext gRPC serving only `grpc.health.v1.Health`, for the kubelet's
//! gRPC probes, which cannot speak TLS. It answers from the same reporter as the main
//! listener (the same statuses, `liveness` included) and serves nothing else, so opening it
//! to the node exposes no API.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::{Health, HealthServer};

use crate::telemetry::rpc::RpcLayer;

/// Probes are tiny and few: a small per-connection limit is plenty.
const CONCURRENCY: usize = 16;
/// A probe that takes longer has failed anyway (the kubelet's timeout is a few seconds).
const TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `health` on `listener` until `stop` is set. Probe calls are counted in the call
/// metrics like those on the main listener.
pub async fn serve_health<T: Health>(
    listener: TcpListener,
    health: HealthServer<T>,
    rpc: RpcLayer,
    mut stop: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .concurrency_limit_per_connection(CONCURRENCY)
        .timeout(TIMEOUT)
        .layer(rpc)
        .add_service(health)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}
