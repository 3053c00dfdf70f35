//! The schema migrations, embedded at compile time from `migrations/{postgres,sqlite}`.
//!
//! sqlx's `migrate!` macro does the same, but it builds both database drivers a second time
//! inside a proc-macro. These are the same `Migration` values it would make (version and
//! description from the file name, checksum of the text), so databases migrated before agree.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

macro_rules! embedded {
    ($dir:literal: $($file:literal),+ $(,)?) => {
        &[$(($file, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $dir, "/", $file)))),+]
    };
}

/// Every migration file, oldest first; a unit test checks this against the directories.
const POSTGRES: &[(&str, &str)] = embedded!("postgres":
    "0001_foundation.sql", "0002_refresh_tokens.sql", "0003_api_keys_audit.sql", "0004_consents.sql", "0005_roles_and_denials.sql", "0006_factors.sql", "0007_client_require_mfa.sql", "0008_sso_sessions.sql", "0009_upstream_identities.sql", "0010_backchannel_logout.sql", "0011_dpop_par.sql", "0012_client_tls_auth.sql", "0013_api_key_usage_retention.sql", "0014_refresh_certificate_binding.sql", "0015_refresh_family_expiry_index.sql");
const SQLITE: &[(&str, &str)] = embedded!("sqlite":
    "0001_foundation.sql", "0002_refresh_tokens.sql", "0003_api_keys_audit.sql", "0004_consents.sql", "0005_roles_and_denials.sql", "0006_factors.sql", "0007_client_require_mfa.sql", "0008_sso_sessions.sql", "0009_upstream_identities.sql", "0010_backchannel_logout.sql", "0011_dpop_par.sql", "0012_client_tls_auth.sql", "0013_api_key_usage_retention.sql", "0014_refresh_certificate_binding.sql", "0015_refresh_family_expiry_index.sql");

pub fn postgres() -> Migrator {
    migrator(POSTGRES)
}

pub fn sqlite() -> Migrator {
    migrator(SQLITE)
}

fn migrator(files: &'static [(&'static str, &'static str)]) -> Migrator {
    let migrations: Vec<Migration> = files.iter().map(|(name, sql)| migration(name, sql)).collect();
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

/// `0003_api_keys_audit.sql` is version 3, described as "api keys audit" (as sqlx names it).
fn migration(name: &str, sql: &'static str) -> Migration {
    let stem = name.strip_suffix(".sql").unwrap_or(name);
    let (version, description) = stem.split_once('_').unwrap_or((stem, ""));
    let version = version.parse().unwrap_or_else(|_| panic!("migration {name} must start with its version"));
    let no_tx = sql.starts_with("-- no-transaction");
    Migration::new(version, Cow::Owned(description.replace('_', " ")), MigrationType::Simple, Cow::Borrowed(sql), no_tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(dir: &str) -> Vec<String> {
        let path = format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<String> = std::fs::read_dir(path).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    #[test]
    fn every_file_is_embedded_in_order() {
        for (dir, files) in [("postgres", POSTGRES), ("sqlite", SQLITE)] {
            let embedded: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
            assert_eq!(embedded, on_disk(dir), "migrations/{dir}");
        }
    }

    #[test]
    fn versions_descriptions_and_checksums_match_sqlx() {
        let m = &sqlite().migrations[2];
        assert_eq!((m.version, m.description.as_ref()), (3, "api keys audit"));
        use sha2::Digest;
        assert_eq!(m.checksum.as_ref(), sha2::Sha384::digest(SQLITE[2].1.as_bytes()).as_slice());
        assert!(postgres().migrations.windows(2).all(|w| w[0].version < w[1].version));
    }
}
