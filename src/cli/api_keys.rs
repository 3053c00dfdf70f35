//! `sesame apikey ...`: generate, list, revoke, rotate and test API keys.

use std::time::Duration;

use clap::Subcommand;
use sesame::api_keys::cache::new_cache;
use sesame::api_keys::verify::Verifier;
use sesame::metrics::Metrics;
use sesame::admin::api_keys::{self, Admin, NewApiKey};
use sesame::clock::{rfc3339, Clock, SystemClock};
use sesame::config::Config;
use sesame::server;

use super::output::print;

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Issue a key; it is printed once.
    Generate {
        name: String,
        /// Space-separated scopes.
        #[arg(long)]
        scope: Option<String>,
        /// Lifetime, e.g. 30d (default and maximum: the environment's limit).
        #[arg(long = "expires-in", value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        #[arg(long, value_parser = ["dev", "staging", "prod"], default_value = "dev")]
        env: String,
        /// Networks the key may be used from (repeatable).
        #[arg(long = "cidr")]
        cidrs: Vec<String>,
        /// Requests per minute (default: the environment's).
        #[arg(long = "rate-limit")]
        rate_limit: Option<i64>,
        /// Free-form metadata as a JSON object.
        #[arg(long)]
        metadata: Option<String>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key everywhere at once.
    Revoke {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Issue a successor; the old key keeps working for the grace period.
    Rotate {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long, value_parser = humantime::parse_duration, default_value = "24h")]
        grace: Duration,
    },
    /// A key's use per minute (flushed minutes: the last two are still being counted) and totals.
    Usage {
        #[arg(allow_hyphen_values = true)]
        id: String,
        /// As for `audit export`: an RFC 3339 time, a date, unix seconds, or a duration ago.
        #[arg(long, value_parser = super::audit::parse_time, default_value = "24h")]
        since: i64,
    },
    /// Check a key: exit 0 when valid, 1 when not. Without KEY (or with `-`) the key is read
    /// from stdin, or from --key-file, so it stays out of shell history and the process list.
    Test {
        key: Option<String>,
        #[arg(long = "key-file", conflicts_with = "key")]
        key_file: Option<std::path::PathBuf>,
    },
}

pub async fn run(cmd: ApiKeyCommand, config: &Config, json: bool) -> anyhow::Result<()> {
    let stores = server::open_stores(config, "sesame:").await?;
    let durable = stores.durable.clone();
    let ephemeral = stores.ephemeral.clone();
    let admin = Admin { config, durable: durable.as_ref(), ephemeral: ephemeral.as_ref(), actor: "cli", now: SystemClock.now() };
    match cmd {
        ApiKeyCommand::Generate { name, scope, expires_in, env, cidrs, rate_limit, metadata } => {
            let metadata = metadata.map(|m| serde_json::from_str(&m)).transpose().map_err(|e| anyhow::anyhow!("--metadata is not JSON: {e}"))?;
            let spec = NewApiKey { name, scope, expires_in, env: Some(env), cidrs, rate_limit_per_minute: rate_limit, metadata };
            let issued = admin.generate(&spec).await?;
            print(json, &issued, || format!("id: {}\nkey: {}\n(shown once: store it now)\nexpires: {}", issued.id, issued.key, rfc3339(issued.expires_at)))
        }
        ApiKeyCommand::List => {
            let keys = admin.list().await?;
            print(json, &serde_json::json!({ "keys": keys }), || {
                if keys.is_empty() {
                    return "no API keys".into();
                }
                keys.iter()
                    .map(|k| format!("{}  {:<10} {}…  {}  expires {}  [{}]", k.id, k.state, k.prefix, k.name, rfc3339(k.expires_at), k.scopes.join(" ")))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        ApiKeyCommand::Revoke { id } => {
            admin.revoke(&id).await?;
            print(json, &serde_json::json!({ "id": id, "revoked": true }), || format!("API key {id} revoked"))
        }
        ApiKeyCommand::Rotate { id, grace } => {
            let issued = admin.rotate(&id, grace).await?;
            print(json, &serde_json::json!({ "id": issued.id, "key": issued.key, "replaces": id, "expires_at": issued.expires_at }), || {
                format!("id: {}\nkey: {}\n(shown once: store it now)\n{id} keeps working for {}", issued.id, issued.key, humantime::format_duration(grace))
            })
        }
        ApiKeyCommand::Usage { id, since } => {
            let usage = admin.usage(&id, since).await?;
            print(json, &usage, || {
                let mut lines = vec![format!("{id} since {}: {} requests, {} rate-limited, {} refused", rfc3339(usage.since), usage.requests, usage.rate_limited, usage.denied)];
                lines.extend(usage.minutes.iter().map(|m| format!("{}  {:>8} requests  {:>6} rate-limited  {:>6} refused", rfc3339(m.minute), m.requests, m.rate_limited, m.denied)));
                lines.join("\n")
            })
        }
        ApiKeyCommand::Test { key, key_file } => {
            let key = match (key.as_deref(), key_file) {
                (_, Some(path)) => std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
                (None | Some("-"), None) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line
                }
                (Some(k), None) => k.to_string(),
            };
            let key = key.trim();
            // What a resource server's check needs, and no more (no signing keys, no KEK).
            let cache = new_cache(config.api_keys.cache_ttl);
            let metrics = Metrics::new();
            let verifier = Verifier { durable: durable.as_ref(), ephemeral: ephemeral.as_ref(), cache: &cache, metrics: &metrics, now: SystemClock.now() };
            let result = api_keys::test(&verifier, key).await?;
            print(json, &result, || match &result.key {
                Some(k) => format!("valid: {} ({}) env {} scopes [{}] expires {}  lookup {} µs", k.id, k.name, k.env, k.scopes.join(" "), rfc3339(k.expires_at), result.lookup_micros),
                None => format!("not valid: {}  lookup {} µs", result.reason.unwrap_or("unknown"), result.lookup_micros),
            })?;
            if !result.valid {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
