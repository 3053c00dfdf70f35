//! Command output: one JSON object with `--json`, human text otherwise.

use serde::Serialize;

/// One JSON object on stdout, or the human text.
pub fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{}", human());
    }
    Ok(())
}

pub fn done(json: bool, message: &str) -> anyhow::Result<()> {
    print(json, &serde_json::json!({"ok": true, "message": message}), || message.to_string())
}

/// An error as the one line the CLI prints: the outermost message and its causes.
pub fn one_line(e: &anyhow::Error) -> String {
    e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ").replace('\n', " ")
}

pub fn or_dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}
