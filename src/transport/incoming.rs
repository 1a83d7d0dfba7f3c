//! TLS connections for tonic: the accept loop hands each TCP connection to a task of its own
//! for the handshake, so a slow or silent client never holds up the next accept, and feeds
//! the finished connections to `serve_with_incoming_shutdown` as a stream.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::CurrentTls;

/// A client that has not finished its handshake by then is dropped (a port scanner, a
/// plaintext client waiting for the server to speak first, a stalled network).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once. Beyond it the accept loop waits (new connections queue
/// in the kernel's backlog): a flood of half-open handshakes cannot take all the memory.
const MAX_HANDSHAKES: usize = 512;
/// Finished connections waiting for tonic to take them.
const QUEUE: usize = 64;
/// After an accept error (out of file descriptors, ...), wait this long before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The TCP connection a request came on, from its extensions: tonic files it as
/// `TcpConnectInfo` for plaintext and as `TlsConnectInfo<TcpConnectInfo>` for the streams
/// of [`tls_incoming`]. Anything that wants the peer's address asks here.
pub fn tcp_connect_info(extensions: &http::Extensions) -> Option<&TcpConnectInfo> {
    extensions.get::<TcpConnectInfo>().or_else(|| {
        extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .map(TlsConnectInfo::get_ref)
    })
}

/// The TLS connections made on `listener`, until tonic drops the stream or `stop` is set.
/// The streams carry tonic's `TlsConnectInfo<TcpConnectInfo>`, so requests still know the
/// peer's address (and its certificate, under mutual TLS).
pub fn tls_incoming(
    listener: TcpListener,
    tls: CurrentTls,
    mut stop: watch::Receiver<bool>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        loop {
            let permit = tokio::select! {
                p = handshakes.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
                _ = tx.closed() => return,
                _ = stop.changed() => return,
            };
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
                _ = stop.changed() => return,
            };
            // As for plaintext (src/server.rs): a response in two segments must not wait for
            // the client's delayed ACK.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "TCP_NODELAY");
            }
            // The config in force when the connection came: a rotation applies from the next.
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                drop(permit);
                match handshake {
                    Ok(Ok(stream)) => {
                        // Fails only when the server has stopped taking connections.
                        let _ = tx.send(Ok(stream)).await;
                    }
                    // Debug, not warn: anyone who can reach the port can fail a handshake.
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

#[cfg(test)]
#[path = "incoming_tests.rs"]
mod tests;
