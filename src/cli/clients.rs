//! `sesame client ...`: register, list, show, remove clients and rotate their secrets.

use std::path::PathBuf;

use clap::Subcommand;
use sesame::admin::clients::{self, NewClient};
use sesame::clock::{Clock, SystemClock};
use sesame::config::Config;
use sesame::store::{AuthMethod, Client};

use super::output::{or_dash, print};

/// Who the audit trail names for changes made on the command line.
const CLI_ACTOR: &str = "cli";

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register a client; its secret is printed once.
    ///
    /// The same options, as JSON fields (`redirect_uris`, `tls_client_auth_subject_dn`, ...),
    /// register a client through the admin API: POST /admin/clients.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// authorization_code, refresh_token, client_credentials, the token-exchange URN, or
        /// urn:ietf:params:oauth:grant-type:device_code (command-line tools and devices that
        /// show a code for the user to enter at /device); repeat for several (default:
        /// authorization_code and refresh_token).
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// Space-separated scopes the client may ask for (default: "openid profile email").
        #[arg(long)]
        scope: Option<String>,
        #[arg(long = "auth-method", value_parser = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none", "tls_client_auth", "self_signed_tls_client_auth"])]
        auth_method: Option<String>,
        /// Shorthand for --auth-method none.
        #[arg(long, conflicts_with = "auth_method")]
        public: bool,
        #[arg(long = "jwks-uri", conflicts_with = "jwks")]
        jwks_uri: Option<String>,
        /// A file holding the client's JWK Set.
        #[arg(long)]
        jwks: Option<PathBuf>,
        /// Skip the consent page for this client (device-grant approvals are always asked).
        #[arg(long = "first-party")]
        first_party: bool,
        /// Algorithm of this client's access tokens (RS256, ES256, EdDSA).
        #[arg(long = "access-token-alg")]
        access_token_alg: Option<sesame::crypto::alg::SigningAlg>,
        /// Every sign-in for this client proves a second factor (users without one set it up first).
        #[arg(long = "require-mfa")]
        require_mfa: bool,
        /// Where a logout token is POSTed when a session this client had tokens in ends
        /// (OpenID Connect Back-Channel Logout).
        #[arg(long = "backchannel-logout-uri")]
        backchannel_logout_uri: Option<String>,
        /// The client needs `sid` in logout tokens (always sent; recorded for discovery clients).
        #[arg(long = "backchannel-logout-session-required", requires = "backchannel_logout_uri")]
        backchannel_logout_session_required: bool,
        /// tls_client_auth: the subject DN the client's certificate must have (RFC 4514, e.g.
        /// "CN=billing,O=Example Corp"), issued by a CA in tls.client_ca_file.
        #[arg(long = "tls-subject-dn", conflicts_with = "tls_san_dns")]
        tls_subject_dn: Option<String>,
        /// tls_client_auth: a DNS name the client's certificate must carry (subjectAltName).
        #[arg(long = "tls-san-dns")]
        tls_san_dns: Option<String>,
        /// Token requests must carry a DPoP proof (RFC 9449): every access token, and a public
        /// client's refresh tokens, are bound to the client's key.
        #[arg(long = "require-dpop")]
        require_dpop: bool,
        /// Authorization requests must be pushed to the PAR endpoint first (RFC 9126).
        #[arg(long = "require-par")]
        require_par: bool,
    },
    /// List clients.
    List,
    /// Show one client.
    Show {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Remove a client.
    Remove {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Issue a new secret; the old one stops working at once.
    RotateSecret {
        // Client ids are base64url: one in 64 begins with `-`, which must not read as a flag.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

pub async fn run(cmd: ClientCommand, config: &Config, json: bool) -> anyhow::Result<()> {
    let store = super::durable(config).await?;
    match cmd {
        ClientCommand::Add { name, redirect_uris, post_logout_redirect_uris, grant_types, scope, auth_method, public, jwks_uri, jwks, first_party, access_token_alg, require_mfa, backchannel_logout_uri, backchannel_logout_session_required, tls_subject_dn, tls_san_dns, require_dpop, require_par } => {
            let auth_method = if public {
                AuthMethod::None
            } else {
                auth_method.as_deref().and_then(AuthMethod::parse).unwrap_or(AuthMethod::ClientSecretBasic)
            };
            let jwks = match jwks {
                Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?),
                None => None,
            };
            let spec = NewClient {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                grant_types,
                scope,
                auth_method,
                jwks_uri,
                jwks,
                first_party,
                access_token_alg,
                require_mfa,
                backchannel_logout_uri,
                backchannel_logout_session_required,
                tls_client_auth_subject_dn: tls_subject_dn,
                tls_client_auth_san_dns: tls_san_dns,
                require_dpop,
                require_par,
            };
            let created = clients::add(store.as_ref(), &spec, CLI_ACTOR, SystemClock.now()).await?;
            print(json, &created, || {
                let mut text = describe(&created.client);
                match &created.client_secret {
                    Some(secret) => text.push_str(&format!("\nclient_secret: {secret}\n(shown once: store it now)")),
                    None => text.push_str("\nclient_secret: none"),
                }
                text
            })
        }
        ClientCommand::List => {
            let list = clients::list(store.as_ref()).await?;
            print(json, &serde_json::json!({ "clients": list }), || {
                if list.is_empty() {
                    return "no clients".into();
                }
                list.iter().map(|c| format!("{}  {}  {}  {}", c.id, c.auth_method.as_str(), c.grant_types.join(","), c.name)).collect::<Vec<_>>().join("\n")
            })
        }
        ClientCommand::Show { id } => {
            let client = clients::show(store.as_ref(), &id).await?;
            print(json, &client, || describe(&client))
        }
        ClientCommand::Remove { id } => {
            clients::remove(store.as_ref(), &id, CLI_ACTOR, SystemClock.now()).await?;
            print(json, &serde_json::json!({ "client_id": id, "removed": true }), || format!("client {id} removed"))
        }
        ClientCommand::RotateSecret { id } => {
            let secret = clients::rotate_secret(store.as_ref(), &id, CLI_ACTOR, SystemClock.now()).await?;
            print(json, &serde_json::json!({ "client_id": id, "client_secret": secret }), || {
                format!("client_secret: {secret}\n(shown once: store it now; the old secret no longer works)")
            })
        }
    }
}

fn describe(c: &Client) -> String {
    format!(
        "client_id: {}\nname: {}\nauth_method: {}\ngrant_types: {}\nscope: {}\nredirect_uris: {}\npost_logout_redirect_uris: {}\nfirst_party: {}\nrequire_mfa: {}\nrequire_dpop: {}\nrequire_par: {}\njwks_uri: {}\nbackchannel_logout_uri: {}",
        c.id,
        c.name,
        c.auth_method.as_str(),
        c.grant_types.join(" "),
        c.scopes.join(" "),
        c.redirect_uris.join(" "),
        c.post_logout_redirect_uris.join(" "),
        c.first_party,
        c.require_mfa,
        c.require_dpop,
        c.require_par,
        or_dash(&c.jwks_uri),
        or_dash(&c.backchannel_logout_uri),
    )
}
