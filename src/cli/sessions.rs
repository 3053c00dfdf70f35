//! `sesame session ...`: the live SSO sessions and their clients; ending them.

use clap::{ArgGroup, Subcommand};
use sesame::admin::sessions;
use sesame::admin::AdminError;
use sesame::clock::{rfc3339, Clock, SystemClock};
use sesame::config::Config;
use sesame::server;
use sesame::session::{EndedSession, SessionEnder};

use super::output::print;

#[derive(Subcommand)]
pub enum SessionCommand {
    /// Live SSO sessions (everyone's, or one user's) with the clients that got tokens in each.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// End a session, or every session of a user: revokes the refresh tokens issued in them.
    #[command(group(ArgGroup::new("which").required(true).args(["id", "user"])))]
    End {
        /// The session id (the `sid` of its ID tokens), as `session list` shows it.
        // Session ids are base64url: one in 64 begins with `-`, which must not read as a flag.
        #[arg(allow_hyphen_values = true)]
        id: Option<String>,
        /// End every live session of this user.
        #[arg(long)]
        user: Option<String>,
    },
}

pub async fn run(cmd: SessionCommand, config: &Config, json: bool) -> anyhow::Result<()> {
    // The ephemeral store too: with Redis, the live sessions go at once; without, the server
    // finds them ended in the database at their next use.
    let stores = server::open_stores(config, "sesame:").await?;
    let ender = SessionEnder { durable: stores.durable.as_ref(), ephemeral: stores.ephemeral.as_ref(), actor: "cli", now: SystemClock.now(), logout_wakeup: None };
    match cmd {
        SessionCommand::List { user } => {
            let listed = sessions::list(&ender, user.as_deref()).await?;
            print(json, &serde_json::json!({ "sessions": listed }), || {
                if listed.is_empty() {
                    return "no live sessions".into();
                }
                listed
                    .iter()
                    .map(|s| {
                        let clients = if s.clients.is_empty() { "-".to_string() } else { s.clients.join(",") };
                        let user = s.username.as_deref().unwrap_or(&s.sub);
                        format!("{}  {}  created {}  last auth {}  clients {}", s.id, user, rfc3339(s.created_at), rfc3339(s.last_auth_at), clients)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        SessionCommand::End { id, user } => {
            let ended: Vec<EndedSession> = match (id, user) {
                (Some(id), _) => vec![sessions::end(&ender, &id).await?],
                (None, Some(user)) => sessions::end_all_of_user(&ender, &user).await?,
                (None, None) => return Err(AdminError::Invalid("name a session id or --user USERNAME".into()).into()),
            };
            print(json, &serde_json::json!({ "sessions": ended }), || {
                if ended.is_empty() {
                    return "no live sessions to end".into();
                }
                ended.iter().map(|e| format!("session {} ended ({} refresh token families revoked)", e.sid, e.revoked_families)).collect::<Vec<_>>().join("\n")
            })
        }
    }
}
