//! HTTPS for the HTTP front door: a listener that completes TLS handshakes before axum sees
//! a connection.
//!
//! Written here rather than taken from `axum-server`: that crate brings its own server loop
//! and shutdown handle, while all HTTPS needs is a [`Listener`] over `tokio-rustls` (which
//! tonic already puts in the build) for [`super::serve::serve`].
//!
//! Handshakes run in their own tasks, bounded in number and time, so a client that opens a
//! connection and says nothing holds up no one else.

use axum::serve::Listener;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many handshakes may be in progress at once; further connections wait to be accepted.
pub const MAX_PENDING_HANDSHAKES: usize = 256;

/// A listener yielding connections that completed a TLS handshake.
///
/// ```no_run
/// # async fn run(config: std::sync::Arc<tokio_rustls::rustls::ServerConfig>) {
/// use osprey_coordinator::TlsListener;
/// let tcp = tokio::net::TcpListener::bind("127.0.0.1:8443").await.unwrap();
/// let app = axum::Router::new();
/// let listener = TlsListener::new(tcp, config);
/// osprey_coordinator::serve_http(listener, app, std::future::pending())
///     .await
///     .unwrap();
/// # }
/// ```
pub struct TlsListener {
    local_addr: SocketAddr,
    handshaken: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    acceptor_task: tokio::task::AbortHandle,
}

impl TlsListener {
    /// Starts accepting on `tcp` with the server settings `config`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> Self {
        let local_addr = tcp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (sender, handshaken) = mpsc::channel(16);
        let acceptor = TlsAcceptor::from(config);
        let acceptor_task = tokio::spawn(accept_loop(tcp, acceptor, sender)).abort_handle();
        Self {
            local_addr,
            handshaken,
            acceptor_task,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshaken: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let Ok(permit) = Arc::clone(&pending).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Usually too many open files: back off instead of spinning.
                tracing::warn!(error = %err, "HTTPS accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let handshaken = handshaken.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = handshaken.send((tls, peer)).await;
                }
                Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
