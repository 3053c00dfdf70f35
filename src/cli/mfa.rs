//! `sesame user mfa list|reset USERNAME` and `sesame user totp add USERNAME`: a user's second
//! factors, as an administrator sees them (never a stored secret).

use sesame::clock::{rfc3339, Clock, SystemClock};
use sesame::config::Config;
use sesame::mfa::{self, FactorList, Mfa};
use sesame::server::load_kek;
use sesame::store::{Durable, User};

use super::output::print;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum MfaAction {
    /// The user's factors and how many recovery codes they have left.
    List,
    /// Remove every factor and recovery code (a lost phone): the next sign-in needs the password alone.
    Reset,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TotpAction {
    /// Provision a confirmed TOTP secret and print it with its otpauth:// URI (and, for a first
    /// factor, ten recovery codes): for scripted set-up.
    Add,
}

const ACTOR: &str = "cli";

async fn user(store: &dyn Durable, username: &str) -> anyhow::Result<User> {
    store.user_by_username(username).await?.ok_or_else(|| anyhow::Error::from(mfa::MfaError::NotFound(format!("user {username}"))))
}

fn describe(list: &FactorList) -> String {
    let mut lines: Vec<String> = list
        .factors
        .iter()
        .map(|f| {
            let state = if f.confirmed { "confirmed" } else { "unconfirmed" };
            let used = f.last_used_at.map(rfc3339).unwrap_or_else(|| "never".into());
            format!("{}  {}  {}  {}  created {}  last used {}", f.id, f.kind.as_str(), f.name, state, rfc3339(f.created_at), used)
        })
        .collect();
    if lines.is_empty() {
        lines.push("no factors".into());
    }
    lines.push(format!("recovery codes left: {}", list.recovery_codes_left));
    lines.join("\n")
}

pub async fn run_mfa(action: MfaAction, store: &dyn Durable, username: &str, json: bool) -> anyhow::Result<()> {
    match action {
        MfaAction::List => {
            let user = user(store, username).await?;
            let list = mfa::list_factors(store, &user.sub).await?;
            print(json, &list, || describe(&list))
        }
        MfaAction::Reset => {
            let reset = mfa::reset(store, username, ACTOR, SystemClock.now()).await?;
            let out = serde_json::json!({
                "username": username,
                "factors": [],
                "recovery_codes_left": 0,
                "factors_removed": reset.factors_removed,
                "recovery_codes_removed": reset.recovery_codes_removed,
            });
            print(json, &out, || format!("removed {} factors and {} recovery codes of {username}", reset.factors_removed, reset.recovery_codes_removed))
        }
    }
}

/// The key-encryption key is the server's (`kek`, or the file in `keys_dir`): run it with the
/// server's configuration, or the secret will not open there.
pub async fn run_totp(action: TotpAction, store: &dyn Durable, username: &str, name: Option<&str>, config: &Config, json: bool) -> anyhow::Result<()> {
    let TotpAction::Add = action;
    let user = user(store, username).await?;
    let kek = load_kek(config)?;
    let mfa = Mfa { durable: store, kek: &kek, issuer: &config.issuer };
    let (added, codes) = mfa.provision_totp(&user, name, ACTOR, SystemClock.now()).await?;
    let out = serde_json::json!({
        "username": username,
        "factor_id": added.factor_id,
        "secret": added.secret,
        "otpauth_uri": added.otpauth_uri,
        "recovery_codes": codes,
    });
    print(json, &out, || {
        let mut text = format!("TOTP factor {} added for {username} (confirmed)\nsecret: {}\notpauth_uri: {}", added.factor_id, added.secret, added.otpauth_uri);
        if let Some(codes) = &codes {
            text.push_str("\nrecovery codes (shown once):");
            for code in codes {
                text.push_str(&format!("\n  {code}"));
            }
        }
        text
    })
}
