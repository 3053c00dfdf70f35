//! `sesame user ...`: add, list, disable users, change their passwords, grant roles; their
//! second factors (`user mfa`, `user totp`, in `mfa.rs`).

use std::io::Read;

use clap::Subcommand;
use sesame::admin::roles;
use sesame::admin::users::{self, NewUser};
use sesame::admin::AdminError;
use sesame::clock::{Clock, SystemClock};
use sesame::config::Config;
use sesame::crypto::password::Passwords;
use sesame::server;
use sesame::session::SessionEnder;

use super::mfa::{MfaAction, TotpAction};
use super::output::{or_dash, print};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        username: String,
        /// Read the password from standard input (the only way to give one).
        #[arg(long = "password-stdin")]
        password_stdin: bool,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// List users.
    List,
    /// Set a user's password, read from standard input.
    Passwd {
        username: String,
        #[arg(long = "password-stdin", required = true)]
        password_stdin: bool,
    },
    /// Disable a user: no new sign-ins, and their sessions end at once.
    Disable { username: String },
    /// Grant or remove a role (`admin`: may hold the sesame:admin scope and use the admin API).
    Role {
        #[arg(value_enum)]
        action: RoleAction,
        username: String,
        role: String,
    },
    /// A user's second factors: list them, or reset them all (a lost phone).
    Mfa {
        #[arg(value_enum)]
        action: MfaAction,
        username: String,
    },
    /// Authenticator apps (TOTP): `add` provisions a confirmed secret for scripted set-up.
    Totp {
        #[arg(value_enum)]
        action: TotpAction,
        username: String,
        /// The factor's label (default "Authenticator app").
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum RoleAction {
    Add,
    Remove,
}

fn read_password() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn run(cmd: UserCommand, config: &Config, json: bool) -> anyhow::Result<()> {
    let store = super::durable(config).await?;
    let passwords = Passwords::new(&config.password)?;
    match cmd {
        UserCommand::Add { username, password_stdin, email, name } => {
            if !password_stdin {
                return Err(AdminError::Invalid("give the password on standard input with --password-stdin".into()).into());
            }
            let password = read_password()?;
            let user = users::add(store.as_ref(), &passwords, NewUser { username: &username, password: &password, email, name }, SystemClock.now()).await?;
            print(json, &user, || format!("user {} created, sub {}", user.username, user.sub))
        }
        UserCommand::List => {
            let mut list = Vec::new();
            for user in store.users().await? {
                let roles = store.user_roles(&user.sub).await?;
                list.push((user, roles));
            }
            let rows: Vec<_> = list.iter().map(|(u, roles)| serde_json::json!({ "sub": u.sub, "username": u.username, "email": u.email, "name": u.name, "disabled": u.disabled, "created_at": u.created_at, "roles": roles })).collect();
            print(json, &serde_json::json!({ "users": rows }), || {
                if list.is_empty() {
                    return "no users".into();
                }
                list.iter()
                    .map(|(u, roles)| {
                        let state = if u.disabled { "disabled" } else { "active" };
                        format!("{}  {}  {}  {}  {}", u.sub, u.username, or_dash(&u.email), state, if roles.is_empty() { "-".into() } else { roles.join(",") })
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        UserCommand::Passwd { username, .. } => {
            let password = read_password()?;
            users::set_password(store.as_ref(), &passwords, &username, &password).await?;
            print(json, &serde_json::json!({ "username": username, "password_changed": true }), || format!("password of {username} changed"))
        }
        UserCommand::Role { action, username, role } => {
            let now = SystemClock.now();
            let (changed, verb) = match action {
                RoleAction::Add => (roles::grant(store.as_ref(), &username, &role, "cli", now).await?, "granted to"),
                RoleAction::Remove => (roles::remove(store.as_ref(), &username, &role, "cli", now).await?, "removed from"),
            };
            let held = matches!(action, RoleAction::Add);
            print(json, &serde_json::json!({ "username": username, "role": role, "held": held, "changed": changed }), || {
                if changed { format!("role {role} {verb} {username}") } else { format!("{username} already {} role {role}", if held { "held" } else { "lacked" }) }
            })
        }
        UserCommand::Disable { username } => {
            let stores = server::open_stores(config, "sesame:").await?;
            let ender = SessionEnder { durable: stores.durable.as_ref(), ephemeral: stores.ephemeral.as_ref(), actor: "cli", now: SystemClock.now(), logout_wakeup: None };
            let ended = users::disable(&ender, &username).await?;
            print(json, &serde_json::json!({ "username": username, "disabled": true, "sessions": ended }), || format!("user {username} disabled; {} sessions ended", ended.len()))
        }
        UserCommand::Mfa { action, username } => super::mfa::run_mfa(action, store.as_ref(), &username, json).await,
        UserCommand::Totp { action, username, name } => super::mfa::run_totp(action, store.as_ref(), &username, name.as_deref(), config, json).await,
    }
}
