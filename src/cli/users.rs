//! `sesame user ...`: add, list, disable users and change their passwords.

use std::io::Read;

use clap::Subcommand;
use sesame::admin::users::{self, NewUser};
use sesame::admin::AdminError;
use sesame::clock::{Clock, SystemClock};
use sesame::config::Config;
use sesame::crypto::password::Passwords;

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
    /// Disable a user: no new sign-ins.
    Disable { username: String },
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
            let list = store.users().await?;
            print(json, &serde_json::json!({ "users": list }), || {
                if list.is_empty() {
                    return "no users".into();
                }
                list.iter()
                    .map(|u| format!("{}  {}  {}  {}", u.sub, u.username, or_dash(&u.email), if u.disabled { "disabled" } else { "active" }))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        UserCommand::Passwd { username, .. } => {
            let password = read_password()?;
            users::set_password(store.as_ref(), &passwords, &username, &password).await?;
            print(json, &serde_json::json!({ "username": username, "password_changed": true }), || format!("password of {username} changed"))
        }
        UserCommand::Disable { username } => {
            users::disable(store.as_ref(), &username).await?;
            print(json, &serde_json::json!({ "username": username, "disabled": true }), || format!("user {username} disabled"))
        }
    }
}
