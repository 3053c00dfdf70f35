//! Argument parsing and dispatch. The work itself lives in the library (`sesame::admin`, `sesame::server`).

mod api_keys;
mod audit;
mod clients;
mod keys;
mod mfa;
mod output;
mod serve;
mod sessions;
mod users;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use sesame::config::Config;
use sesame::store::sql::SqlStore;
use sesame::store::Durable;

pub use output::one_line;

#[derive(Parser)]
#[command(name = "sesame", version, about = "An OAuth 2.0 / OpenID Connect authorization server")]
pub struct Args {
    /// Configuration file (default: ./sesame.toml when present, else built-in defaults).
    #[arg(long, global = true, env = "SESAME_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text", env = "SESAME_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Print exactly one JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(clients::ClientCommand),
    /// Manage users.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Inspect and rotate signing keys.
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(api_keys::ApiKeyCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// SSO sessions: list them with their clients, end them.
    #[command(subcommand)]
    Session(sessions::SessionCommand),
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let json = args.json;
    match args.command {
        Command::Serve => serve::run(config).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            store.close().await;
            output::done(json, "migrations applied")
        }
        Command::Client(cmd) => clients::run(cmd, &config, json).await,
        Command::User(cmd) => users::run(cmd, &config, json).await,
        Command::Key(cmd) => keys::run(cmd, &config, json).await,
        Command::Apikey(cmd) => api_keys::run(cmd, &config, json).await,
        Command::Audit(cmd) => audit::run(cmd, &config, json).await,
        Command::Session(cmd) => sessions::run(cmd, &config, json).await,
    }
}

/// Opens and migrates the configured database, as the server would.
async fn open_store(config: &Config) -> anyhow::Result<SqlStore> {
    Ok(SqlStore::open(&config.database_url, 2).await?)
}

async fn durable(config: &Config) -> anyhow::Result<Arc<dyn Durable>> {
    Ok(Arc::new(open_store(config).await?))
}
