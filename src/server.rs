//! Assembling a running server: stores, key ring, state, background maintenance, listener.

use crate::crypto::alg::SigningAlg;
use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::kek::Kek;
use crate::crypto::keyring::KeyRing;
use crate::crypto::password::Passwords;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::oauth::client_jwks::ClientJwksCache;
use crate::oidc::metadata::Discovery;
use crate::outbound::{Destinations, OutboundHttp};
use crate::state::AppState;
use crate::store::ephemeral::{MemoryStore, RedisStore};
use crate::store::guard::guard;
use crate::store::sql::SqlStore;
use crate::store::Ephemeral;

/// Clients are read on every token request; a change reaches every node within this time.
const CLIENT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

pub use crate::store::Stores;

/// Opens (and migrates) the durable store and connects the ephemeral one.
/// `redis_prefix` namespaces every Redis key (tests give each server its own).
pub async fn open_stores(config: &Config, redis_prefix: &str) -> anyhow::Result<Stores> {
    let durable = SqlStore::open(&config.database_url, config.database_max_connections).await?;
    let ephemeral: Arc<dyn Ephemeral> = match &config.redis_url {
        Some(url) => Arc::new(RedisStore::connect(url, redis_prefix).await?),
        None => Arc::new(MemoryStore::with_ceiling(config.memory_store_max_mib * 1024 * 1024)),
    };
    Ok(Stores { durable: Arc::new(durable), ephemeral })
}

/// The key-encryption key: from config when set, else the file in `keys_dir` (created if missing).
pub fn load_kek(config: &Config) -> anyhow::Result<Kek> {
    Ok(match &config.kek {
        Some(b64) => Kek::from_base64(b64)?,
        None => Kek::load_or_create(&config.keys_dir)?,
    })
}

pub async fn build_state(config: Config, stores: Stores, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    let stores = guard(stores, config.store_timeout);
    let metrics = Arc::new(Metrics::new());
    let rotation_metrics = metrics.clone();
    // One key-encryption key for the signing keys and the TOTP secrets.
    let kek = Arc::new(load_kek(&config)?);
    let (durable, schedule) = (stores.durable.clone(), KeyRing::schedule_from(&config));
    let on_rotation: Box<dyn Fn(SigningAlg) + Send + Sync> = Box::new(move |alg| rotation_metrics.key_rotated(alg));
    let keys = KeyRing::start(durable, kek.clone(), clock.clone(), schedule, on_rotation).await?;
    let config_for_tls = config.clone();
    let webauthn = match crate::mfa::passkey::relying_party(&config.issuer) {
        Ok(rp) => Some(Arc::new(rp)),
        Err(why) => {
            tracing::warn!("passkeys are off: {why}");
            None
        }
    };
    Ok(AppState {
        webauthn,
        passwords: Passwords::new(&config.password)?,
        discovery: Arc::new(Discovery::build(&config)),
        upstreams: Arc::new(crate::upstream::Upstreams::build(&config).context("the upstream identity providers")?),
        client_jwks: Arc::new(ClientJwksCache::new(Destinations::from_config(&config.outbound)).context("the HTTP client for jwks_uri fetches")?),
        api_key_cache: Arc::new(crate::api_keys::cache::new_cache(config.api_keys.cache_ttl)),
        client_cache: Arc::new(crate::cache::TtlCache::new(CLIENT_CACHE_TTL, 10_000)),
        config: Arc::new(config),
        durable: stores.durable,
        ephemeral: stores.ephemeral,
        keys: Arc::new(keys),
        kek,
        clock,
        metrics,
        lifecycle: Arc::new(Lifecycle::default()),
        backchannel_http: Arc::new(OutboundHttp::new(Destinations::Anywhere).context("the HTTP client for back-channel logout")?),
        logout_wakeup: Arc::new(tokio::sync::Notify::new()),
        client_ca: Arc::new(crate::tls::client_roots(&config_for_tls)?),
    })
}

/// Every `keys.check_interval`: picks up keys other nodes or the CLI created, and runs the
/// rotation schedule. Failures are logged and retried at the next tick.
pub fn spawn_key_maintenance(state: &AppState) -> JoinHandle<()> {
    let keys = state.keys.clone();
    let every = state.config.keys.check_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = keys.reload().await {
                tracing::warn!(error = %e, "reloading signing keys failed");
                continue;
            }
            if let Err(e) = keys.rotate_if_due().await {
                tracing::warn!(error = %e, "signing key rotation failed");
            }
        }
    })
}

/// Serves until `shutdown` resolves; then drains for `shutdown.drain` (`/readyz` says 503, every
/// request is still served), stops accepting, and waits at most `shutdown.grace` for the
/// requests in flight, and for those of the connections it had accepted (`crate::connections`).
///
/// With `tls.cert_file` and `tls.key_file`, connections are TLS (see `crate::tls`).
pub async fn serve(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    match crate::tls::server_config(&state.config)? {
        Some(tls) => serve_on(crate::tls::TlsListener::new(listener, tls)?, state, shutdown).await,
        None => serve_on(listener, state, shutdown).await,
    }
    Ok(())
}

async fn serve_on<L: crate::connections::Listener>(listener: L, state: AppState, shutdown: impl Future<Output = ()> + Send + 'static) {
    let maintenance = spawn_key_maintenance(&state);
    let invalidations = crate::api_keys::cache::spawn_invalidation_listener(state.ephemeral.as_ref(), state.api_key_cache.clone());
    let logouts = crate::logout::delivery::spawn_worker(&state);
    let usage = crate::api_keys::usage::spawn_flusher(state.clone());
    let pruner = crate::retention::spawn_pruner(state.clone());
    let (lifecycle, limits) = (state.lifecycle.clone(), state.config.shutdown.clone());
    let mut server = crate::connections::Server::new(listener, crate::routes::app(state));
    // Until stopped, then while draining, connections are accepted.
    server.run_until(shutdown).await;
    server.run_until(drain(&lifecycle, limits.drain)).await;
    let in_flight = lifecycle.in_flight();
    tracing::info!(in_flight, "stopped accepting; {in_flight} requests in flight");
    if !server.stop(limits.grace).await {
        let cut_off = lifecycle.in_flight();
        tracing::warn!(cut_off, "requests still in flight after {}: {cut_off} cut off", humantime::format_duration(limits.grace));
    }
    maintenance.abort();
    invalidations.abort();
    logouts.abort();
    usage.abort();
    pruner.abort();
}

/// Keeps serving, `/readyz` saying 503, for `period`, or until hurried.
async fn drain(lifecycle: &Lifecycle, period: std::time::Duration) {
    lifecycle.start_draining();
    if period.is_zero() {
        return;
    }
    tracing::info!("draining for {}", humantime::format_duration(period));
    tokio::select! {
        () = tokio::time::sleep(period) => {}
        () = lifecycle.hurried() => tracing::info!("drain cut short"),
    }
}
