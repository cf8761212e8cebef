//! The HTTP port's connection loop: every connection gets a time limit for its request headers
//! and every peer address a bound on its open connections.
//!
//! Written here rather than taken from `axum::serve`, which sets no header-read timeout (hyper
//! only applies one given a timer) and accepts connections without bound: a client that opens
//! connections and sends its headers a byte at a time ("slowloris") would hold them all
//! forever. The loop is hyper's HTTP/1 connection with a tokio timer; axum still routes the
//! requests.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::Service;

/// How long a client has to send a request's headers, from the moment the connection waits
/// for them (so also how long an idle keep-alive connection stays open).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The most connections one peer address holds open at once; further ones are closed as soon
/// as they are accepted.
pub const MAX_CONNECTIONS_PER_PEER: usize = 128;

/// The most connections open at once, all peers together.
pub const MAX_CONNECTIONS: usize = 8_192;

/// Open connections per peer address.
#[derive(Clone, Default)]
struct OpenConnections {
    counts: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    by_peer: HashMap<IpAddr, usize>,
    total: usize,
}

/// One open connection; gives its place back when dropped.
struct ConnectionPlace {
    open: OpenConnections,
    peer: IpAddr,
}

impl OpenConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a new connection from `peer`, unless it or everyone is at the bound.
    fn take_place(&self, peer: IpAddr) -> Option<ConnectionPlace> {
        let mut counts = self.lock();
        let held = counts.by_peer.get(&peer).copied().unwrap_or(0);
        if held >= MAX_CONNECTIONS_PER_PEER || counts.total >= MAX_CONNECTIONS {
            return None;
        }
        *counts.by_peer.entry(peer).or_insert(0) += 1;
        counts.total += 1;
        Some(ConnectionPlace {
            open: self.clone(),
            peer,
        })
    }
}

impl Drop for ConnectionPlace {
    fn drop(&mut self) {
        let mut counts = self.open.lock();
        counts.total -= 1;
        if let Some(held) = counts.by_peer.get_mut(&self.peer) {
            *held -= 1;
            if *held == 0 {
                counts.by_peer.remove(&self.peer);
            }
        }
    }
}

/// Serves `app` on the connections `listener` accepts until `shutdown` completes, then lets
/// the requests in flight finish (as `axum::serve(..).with_graceful_shutdown` does). Handlers
/// see the client's address as [`ConnectInfo<SocketAddr>`].
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let open = OpenConnections::default();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    // Every connection task holds a sender; when all are gone, every connection has closed.
    let (alive, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let Some(place) = open.take_place(peer.ip()) else {
            tracing::debug!(%peer, "HTTP connection refused: too many open from this address");
            continue;
        };
        let app = app.clone();
        let mut stopping = stopping.clone();
        let alive = alive.clone();
        tokio::spawn(async move {
            let _place = place;
            let _alive = alive;
            let service =
                hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let mut app = app.clone();
                    // A Router is always ready, so it may be called without polling readiness.
                    app.call(request.map(Body::new))
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(io), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::trace!(%peer, error = %err, "HTTP connection ended");
                    }
                    return;
                }
                _ = stopping.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(alive);
    let _ = all_closed.recv().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peer_at_its_bound_costs_nobody_else_anything() {
        let open = OpenConnections::default();
        let greedy: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let held: Vec<ConnectionPlace> = (0..MAX_CONNECTIONS_PER_PEER)
            .map(|_| open.take_place(greedy).unwrap())
            .collect();
        assert!(open.take_place(greedy).is_none());
        assert!(open.take_place(other).is_some());
        drop(held);
        assert!(open.take_place(greedy).is_some());
        assert!(open.lock().by_peer.is_empty());
        assert_eq!(open.lock().total, 0);
    }
}
