//! `sesame serve`: runs the server until SIGTERM or SIGINT.

use std::sync::Arc;

use sesame::clock::SystemClock;
use sesame::config::Config;
use sesame::lifecycle::Lifecycle;
use sesame::server;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let stores = server::open_stores(&config, "sesame:").await?;
    let ephemeral = config.redis_target().map_or_else(|| stores.ephemeral.backend().to_string(), |target| target.describe());
    tracing::info!(database = stores.durable.backend(), %ephemeral, "stores ready");
    if config.uses_embedded_stores() {
        tracing::warn!("no redis_url: short-lived state is kept in this process; run a single node only");
    }
    let listener = tokio::net::TcpListener::bind(config.listen_addr()).await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let issuer = config.issuer().to_string();
    let state = server::build_state(config, stores, Arc::new(SystemClock)).await?;
    // Before `listening on`: whoever reads it may signal at once, and must not meet the default
    // action (death) of a signal nobody listens to yet.
    let signals = StopSignals::listen()?;
    // Not println!: a closed stdout (a supervisor that stopped reading) must not stop the server.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {addr}\nissuer {issuer}");
        let _ = out.flush();
    }
    tracing::info!(%addr, %issuer, "sesame ready");
    let lifecycle = state.lifecycle.clone();
    server::serve(listener, state, signals.stop_requested(lifecycle)).await?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT: the first starts the shutdown, a second cuts its drain period short.
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }

    async fn stop_requested(mut self, lifecycle: Arc<Lifecycle>) {
        self.next().await;
        tracing::info!("shutting down (a second SIGTERM or SIGINT skips the drain)");
        tokio::spawn(async move {
            self.next().await;
            lifecycle.hurry();
        });
    }
}
