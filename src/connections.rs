//! The server's connections: the accept loop, each connection served by hyper (axum's own
//! stack), and the way out.
//!
//! axum's `serve` would do the first two, but its graceful shutdown fails requests a load
//! balancer has already sent: it stops accepting by dropping the listener, which resets every
//! connection the kernel had completed and the loop not yet taken, and it closes at once every
//! connection whose first request has not been read yet. A balancer in front of a draining node
//! opens a new connection for each request (every answer during the drain says `Connection:
//! close`) and writes the request as soon as the connection is up, so at the moment the node stops
//! accepting a few requests are always in those two places. They were sent, so nginx does not
//! pass a POST on to another node: it answers 502.
//!
//! Here a stop first takes every connection the kernel completed (over TLS, once its handshake is
//! done), then closes the listening socket (new connections are refused, which a balancer takes
//! as "try another node"), and lets each connection bring the request it was opened for
//! (at most `FIRST_REQUEST_LIMIT`) before it is closed once answered. A connection that already
//! answered and is idle is closed at once, as before.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::tls::PeerCertificate;

/// How long a connection still without a request may take to bring one once the node stops:
/// its client opened it to send one, and has, unless it is a pre-connection that may never.
pub const FIRST_REQUEST_LIMIT: Duration = Duration::from_secs(2);

/// Where connections come from: plain TCP, or TLS (`crate::tls::TlsListener`).
pub trait Listener: Send + 'static {
    type Io: AsyncRead + AsyncWrite + PeerCertificate + Unpin + Send + 'static;

    /// The next connection; failures (out of file descriptors, say) are logged and retried.
    fn accept(&mut self) -> impl Future<Output = (Self::Io, SocketAddr)> + Send;

    /// Stops listening: hands every connection already completed to `take` (each holds a
    /// request on its way), then closes the listening socket.
    fn close(self, take: impl FnMut(Self::Io, SocketAddr) + Send) -> impl Future<Output = ()> + Send;
}

impl Listener for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match TcpListener::accept(self).await {
                Ok(accepted) => return accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn close(self, mut take: impl FnMut(TcpStream, SocketAddr) + Send) {
        for (stream, addr) in take_backlog(self) {
            take(stream, addr);
        }
    }
}

/// Accepts, without waiting, every connection the kernel has completed for `listener`, then
/// closes it. (Asked directly, not through the reactor, whose news of them may lag.)
pub fn take_backlog(listener: TcpListener) -> Vec<(TcpStream, SocketAddr)> {
    let mut taken = Vec::new();
    let Ok(listener) = listener.into_std() else { return taken };
    // Already non-blocking (tokio's), but say so: a blocking accept here would hang the stop.
    if listener.set_nonblocking(true).is_err() {
        return taken;
    }
    loop {
        match listener.accept() {
            Ok((stream, addr)) => {
                if let Ok(stream) = stream.set_nonblocking(true).and_then(|()| TcpStream::from_std(stream)) {
                    taken.push((stream, addr));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // WouldBlock: none left. Anything else: the socket is unusable; stop either way.
            Err(_) => break,
        }
    }
    taken
}

/// The connections being served, and how to tell them the node stops.
pub struct Server<L: Listener> {
    listener: L,
    router: Router,
    stopping: watch::Sender<bool>,
    /// Each connection holds a receiver: once all are dropped, every connection is done.
    alive: watch::Sender<()>,
}

impl<L: Listener> Server<L> {
    pub fn new(listener: L, router: Router) -> Self {
        Self { listener, router, stopping: watch::channel(false).0, alive: watch::channel(()).0 }
    }

    /// Accepts and serves connections until `event`.
    pub async fn run_until(&mut self, event: impl Future<Output = ()>) {
        let mut event = std::pin::pin!(event);
        loop {
            tokio::select! {
                (io, addr) = self.listener.accept() => spawn(io, addr, &self.router, &self.stopping, &self.alive),
                () = &mut event => return,
            }
        }
    }

    /// Stops accepting (see the module's doc), lets every connection finish the request it has
    /// or was opened for, and waits at most `grace` for them; whether they all finished.
    pub async fn stop(self, grace: Duration) -> bool {
        let Self { listener, router, stopping, alive } = self;
        tokio::time::timeout(grace, async {
            listener.close(|io, addr| spawn(io, addr, &router, &stopping, &alive)).await;
            stopping.send_replace(true);
            alive.closed().await;
        })
        .await
        .is_ok()
    }
}

fn spawn<I>(io: I, addr: SocketAddr, router: &Router, stopping: &watch::Sender<bool>, alive: &watch::Sender<()>)
where
    I: AsyncRead + AsyncWrite + PeerCertificate + Unpin + Send + 'static,
{
    tokio::spawn(connection(io, addr, router.clone(), stopping.subscribe(), alive.subscribe()));
}

/// Serves one connection; once the node stops, it ends after its current or first request.
async fn connection<I>(io: I, addr: SocketAddr, router: Router, mut stopping: watch::Receiver<bool>, _alive: watch::Receiver<()>)
where
    I: AsyncRead + AsyncWrite + PeerCertificate + Unpin + Send + 'static,
{
    use tower::{Layer, ServiceExt};
    let certificate = io.peer_certificate();
    // Whether a request has come on this connection.
    let seen = Arc::new(watch::channel(false).0);
    let mut first = seen.subscribe();
    let service = axum::Extension(certificate).layer(axum::Extension(ConnectInfo(addr)).layer(router)).map_request(move |request: hyper::Request<Incoming>| {
        seen.send_if_modified(|seen| !std::mem::replace(seen, true));
        request.map(Body::new)
    });
    let service = TowerToHyperService::new(service);
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    if !*first.borrow() {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = tokio::time::timeout(FIRST_REQUEST_LIMIT, first.wait_for(|seen| *seen)) => {}
        }
    }
    // With a request in progress: closed once it is answered. Idle: closed now.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const REQUEST: &[u8] = b"POST /token HTTP/1.1\r\nHost: sesame\r\nContent-Length: 0\r\n\r\n";
    const LIMIT: Duration = Duration::from_secs(10);

    fn app() -> Router {
        Router::new().route("/token", axum::routing::post(|| async { "issued" }))
    }

    async fn bound() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    /// Everything the server sends until it closes the connection (an error if it resets it).
    async fn answer(mut client: TcpStream) -> std::io::Result<String> {
        let mut bytes = Vec::new();
        tokio::time::timeout(LIMIT, client.read_to_end(&mut bytes)).await.expect("the server closes the connection")?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_connection_the_kernel_completed_before_the_stop_is_served_then_new_ones_are_refused() {
        let (listener, addr) = bound().await;
        let server = Server::new(listener, app());
        // Never taken by the accept loop (it does not run): the kernel completed the connection
        // and holds the request, as for a balancer's connection at the moment a node stops.
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(REQUEST).await.unwrap();
        assert!(server.stop(LIMIT).await, "the connection was served within the grace");
        let answer = answer(client).await.expect("answered, not reset");
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("issued"), "{answer}");
        assert!(TcpStream::connect(addr).await.is_err(), "the listening socket is closed");
    }

    #[tokio::test]
    async fn a_connection_accepted_before_the_stop_is_served_the_request_it_sends_after() {
        let (listener, addr) = bound().await;
        let mut server = Server::new(listener, app());
        let mut client = TcpStream::connect(addr).await.unwrap();
        // The loop takes the connection; the node stops before the request comes.
        server.run_until(tokio::time::sleep(Duration::from_millis(200))).await;
        let stopped = tokio::spawn(server.stop(LIMIT));
        tokio::time::sleep(Duration::from_millis(200)).await;
        client.write_all(REQUEST).await.unwrap();
        // Then closed (`answer` reads to the end). The app's lifecycle layer says `Connection:
        // close` in the answer too (this bare router has none).
        let answer = answer(client).await.expect("answered, not reset");
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("issued"), "{answer}");
        assert!(stopped.await.unwrap(), "the stop waited for that request only");
    }

    #[tokio::test]
    async fn an_idle_connection_that_was_answered_is_closed_at_the_stop() {
        let (listener, addr) = bound().await;
        let mut server = Server::new(listener, app());
        let (answered, heard) = tokio::sync::oneshot::channel();
        let client = tokio::spawn(async move {
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(REQUEST).await.unwrap();
            let (mut got, mut buffer) = (Vec::new(), [0u8; 1024]);
            while !got.ends_with(b"issued") {
                let n = client.read(&mut buffer).await.unwrap();
                assert!(n > 0, "closed before the answer: {}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&buffer[..n]);
            }
            answered.send(()).unwrap();
            // Kept alive and idle: the server closes it when it stops.
            answer(client).await.expect("closed, not reset")
        });
        server.run_until(async { heard.await.unwrap() }).await;
        assert!(server.stop(LIMIT).await);
        assert_eq!(client.await.unwrap(), "", "nothing more was sent");
    }
}
