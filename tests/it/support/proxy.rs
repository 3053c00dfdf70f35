//! A TCP proxy a test puts in front of a real service (PostgreSQL) to break the network
//! between sesame and it: forward, close (every connection reset, new ones too), or blackhole
//! (connections accepted and held, nothing ever answered).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Every connection is reset at once, and every new one as soon as it is accepted.
    Closed,
    /// Connections are accepted and kept, and nothing is passed on either way.
    Blackhole,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    fault: Arc<watch::Sender<Fault>>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fault = Arc::new(watch::channel(Fault::None).0);
        let watched = fault.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(carry(client, upstream, watched.subscribe()));
            }
        });
        Self { addr, fault, task }
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.fault.send_replace(Fault::Closed);
    }
}

/// Carries one connection until it ends or a fault stops it.
async fn carry(client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let _ = client.set_zero_linger();
    let now = *fault.borrow_and_update();
    match now {
        Fault::Closed => return,
        Fault::Blackhole => return hold(client, fault).await,
        Fault::None => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (mut up, mut down) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        tokio::select! {
            read = client_read.read(&mut up) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => if server_write.write_all(&up[..n]).await.is_err() { return },
            },
            read = server_read.read(&mut down) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => if client_write.write_all(&down[..n]).await.is_err() { return },
            },
            changed = fault.changed() => {
                if changed.is_err() { return }
                let now = *fault.borrow_and_update();
                match now {
                    Fault::None => {}
                    Fault::Closed => return,
                    Fault::Blackhole => {
                        // Keep both ends open and silent until the fault is lifted, then drop them.
                        while fault.changed().await.is_ok() && still_blackholed(&mut fault) {}
                        return;
                    }
                }
            }
        }
    }
}

/// Holds an accepted connection, reading nothing, until the blackhole ends.
async fn hold(client: TcpStream, mut fault: watch::Receiver<Fault>) {
    while fault.changed().await.is_ok() && still_blackholed(&mut fault) {}
    drop(client);
}

fn still_blackholed(fault: &mut watch::Receiver<Fault>) -> bool {
    *fault.borrow_and_update() == Fault::Blackhole
}
