//! `sesame audit tail`: recent audit events, newest last.

use clap::Subcommand;
use sesame::clock::rfc3339;
use sesame::config::Config;

use super::output::print;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recent events, newest last.
    Tail {
        /// Only events about this API key (or client) id.
        #[arg(long = "key")]
        key: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

pub async fn run(cmd: AuditCommand, config: &Config, json: bool) -> anyhow::Result<()> {
    let AuditCommand::Tail { key, limit } = cmd;
    let store = super::durable(config).await?;
    let events = store.recent_audit(key.as_deref(), limit.clamp(1, 10_000)).await?;
    print(json, &serde_json::json!({ "events": events }), || {
        if events.is_empty() {
            return "no events".into();
        }
        events
            .iter()
            .map(|e| format!("{}  {:<20} {:<7} {}  from {}  {}", rfc3339(e.at), e.kind, e.result, e.subject, e.caller.as_deref().unwrap_or("-"), e.reason.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n")
    })
}
