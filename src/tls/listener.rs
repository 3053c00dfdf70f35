//! A listener whose connections are TLS. Handshakes run concurrently, each bounded in time, so
//! that a slow or silent client cannot hold up the others' accepts.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A handshake that takes longer is dropped.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    /// Tells the accept task to stop: it takes the connections already completed, closes the
    /// listening socket, and ends; `ready` ends once their handshakes are done too.
    stop: Option<oneshot::Sender<()>>,
    acceptor: JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let (tx, ready) = mpsc::channel(128);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let tls = TlsAcceptor::from(config);
        let handshake = move |stream: TcpStream, addr: SocketAddr| {
            let (tls, tx) = (tls.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_LIMIT, tls.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, addr)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                }
            });
        };
        let acceptor = tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = tcp.accept() => match accepted {
                        Ok((stream, addr)) => handshake(stream, addr),
                        Err(e) => {
                            // Out of file descriptors, say: wait a moment rather than spin.
                            tracing::warn!(error = %e, "accepting a connection failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                    _ = &mut stopped => break,
                }
            }
            for (stream, addr) in crate::connections::take_backlog(tcp) {
                handshake(stream, addr);
            }
        });
        Ok(Self { ready, stop: Some(stop), acceptor })
    }
}

impl crate::connections::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task ended (it never does by itself): no more connections.
            None => std::future::pending().await,
        }
    }

    async fn close(mut self, mut take: impl FnMut(Self::Io, SocketAddr) + Send) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Until the accept task and every handshake it started are done.
        while let Some((stream, addr)) = self.ready.recv().await {
            take(stream, addr);
        }
    }
}
