//! `sesame serve`: runs the server until SIGTERM or SIGINT.

use std::sync::Arc;

use sesame::clock::SystemClock;
use sesame::config::Config;
use sesame::server;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let stores = server::open_stores(&config, "sesame:").await?;
    tracing::info!(database = stores.durable.backend(), ephemeral = stores.ephemeral.backend(), "stores ready");
    if config.uses_embedded_stores() {
        tracing::warn!("no redis_url: short-lived state is kept in this process; run a single node only");
    }
    let listener = tokio::net::TcpListener::bind(config.listen_addr()).await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let issuer = config.issuer().to_string();
    let state = server::build_state(config, stores, Arc::new(SystemClock)).await?;
    // Not println!: a closed stdout (a supervisor that stopped reading) must not stop the server.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {addr}\nissuer {issuer}");
        let _ = out.flush();
    }
    tracing::info!(%addr, %issuer, "sesame ready");
    server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
