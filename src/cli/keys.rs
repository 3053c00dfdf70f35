//! `sesame key ...`: list signing keys and their states, rotate them.

use std::sync::Arc;

use clap::Subcommand;
use sesame::clock::{rfc3339, SystemClock};
use sesame::config::Config;
use sesame::crypto::keyring::KeyRing;
use sesame::server::load_kek;

use super::output::print;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// List signing keys and their states (next, active, retired).
    List,
    /// Schedule a successor for each algorithm; it is published now and signs after the
    /// pre-publication period.
    Rotate {
        /// Sign with the new keys at once (for a compromised key): verifiers holding a cached
        /// JWKS will reject new tokens until they refetch it.
        #[arg(long)]
        now: bool,
    },
}

pub async fn run(cmd: KeyCommand, config: &Config, json: bool) -> anyhow::Result<()> {
    let store = super::durable(config).await?;
    let ring = KeyRing::open(store, load_kek(config)?, Arc::new(SystemClock), KeyRing::schedule_from(config), Box::new(|_| {})).await?;
    if let KeyCommand::Rotate { now } = cmd {
        ring.rotate_now(now).await?;
    }
    let keys = ring.info();
    print(json, &serde_json::json!({ "keys": keys }), || {
        if keys.is_empty() {
            return "no signing keys yet (the server creates them at its first start)".into();
        }
        keys.iter()
            .map(|k| {
                let until = k.unpublish_at.map(|t| format!("  published until {}", rfc3339(t))).unwrap_or_default();
                format!("{:<6} {:<8} {}  signs from {}{}", k.alg, format!("{:?}", k.state).to_lowercase(), k.kid, rfc3339(k.activates_at), until)
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}
