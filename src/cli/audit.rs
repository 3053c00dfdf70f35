//! `sesame audit tail` (recent events, newest last) and `sesame audit export` (JSON lines, for
//! a SIEM).

use std::io::Write;

use clap::Subcommand;
use sesame::clock::{rfc3339, Clock, SystemClock, UnixTime};
use sesame::config::Config;

use super::output::print;

/// Events read per query while exporting.
const PAGE: i64 = 1_000;

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
    /// Every event from --since (default: all) until --until (default: now), oldest first, one
    /// JSON object per line on stdout.
    Export {
        /// An RFC 3339 time (2026-12-01T00:00:00Z), a date (2026-12-01, UTC), unix seconds, or
        /// a duration meaning that long ago (24h, 7d).
        #[arg(long, value_parser = parse_time)]
        since: Option<UnixTime>,
        /// As --since; events at this time or later are left out.
        #[arg(long, value_parser = parse_time)]
        until: Option<UnixTime>,
    },
}

pub async fn run(cmd: AuditCommand, config: &Config, json: bool) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Tail { key, limit } => tail(config, json, key, limit).await,
        AuditCommand::Export { since, until } => export(config, since, until).await,
    }
}

async fn tail(config: &Config, json: bool, key: Option<String>, limit: i64) -> anyhow::Result<()> {
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

/// Pages through the log by id, so events appended meanwhile are neither skipped nor repeated.
/// A reader that goes away (`| head`) ends the export quietly.
async fn export(config: &Config, since: Option<UnixTime>, until: Option<UnixTime>) -> anyhow::Result<()> {
    let store = super::durable(config).await?;
    let (since, until) = (since.unwrap_or(UnixTime::MIN), until.unwrap_or_else(|| SystemClock.now() + 1));
    if since >= until {
        anyhow::bail!("--since must be before --until");
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = 0;
    loop {
        let page = store.audit_page(since, until, after, PAGE).await?;
        for event in &page {
            let mut line = serde_json::to_value(event)?;
            line["time"] = rfc3339(event.at).into();
            if let Err(e) = writeln!(out, "{line}") {
                return quiet_on_broken_pipe(e);
            }
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = last.id,
            _ => break,
        }
    }
    out.flush().or_else(quiet_on_broken_pipe)
}

fn quiet_on_broken_pipe(e: std::io::Error) -> anyhow::Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return Ok(());
    }
    Err(anyhow::anyhow!("writing the export: {e}"))
}

pub(super) fn parse_time(text: &str) -> Result<UnixTime, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(SystemClock.now() - ago.as_secs() as i64);
    }
    let stamp = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_string() };
    humantime::parse_rfc3339_weak(&stamp)
        .map(|t| t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64))
        .map_err(|_| format!("`{text}` is not a time: use RFC 3339 (2026-12-01T00:00:00Z), a date, unix seconds or a duration (24h)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_every_documented_form() {
        assert_eq!(parse_time("1764547200"), Ok(1_764_547_200));
        assert_eq!(parse_time("2025-12-01T00:00:00Z"), Ok(1_764_547_200));
        assert_eq!(parse_time("2025-12-01"), Ok(1_764_547_200));
        let ago = parse_time("1h").unwrap();
        assert!((SystemClock.now() - 3600 - ago).abs() <= 1);
        assert!(parse_time("yesterday-ish").unwrap_err().contains("not a time"));
    }
}
