//! The deny list of revoked access tokens. The durable store is the record; the ephemeral
//! store holds a copy that every check reads in one round trip. A marker key says the copy is
//! complete: when it is missing (Redis restarted without persistence, lost its data, or this
//! is the in-process store of a restarted node), the copy is reloaded from the record before
//! anything is answered, so a revoked token never comes back to life.

use std::time::Duration;

use crate::clock::UnixTime;
use crate::store::{Denial, DenialKind, Durable, Ephemeral, StoreResult};

/// All keys share one hash tag, so a check is one multi-key read even on a Redis Cluster. It
/// also keeps the marker on the same master as the denials it vouches for: a master that loses
/// its data loses both, and the copy is reloaded. The price is one hot slot (every bearer
/// request reads it), but the marker alone would be read on every request wherever it lived,
/// and an MGET of three short keys is among the cheapest things a master does.
const LOADED: &str = "{atdeny}:loaded";
/// How long a complete copy is trusted before it is reconciled with the record anyway
/// (covers a Redis that evicted some keys but not the marker).
const RELOAD_EVERY: Duration = Duration::from_secs(3600);

fn token_key(jti: &str) -> String {
    format!("{{atdeny}}:t:{jti}")
}

fn client_key(client_id: &str) -> String {
    format!("{{atdeny}}:c:{client_id}")
}

/// The denial of every token `client_id` (a client or an API key) holds at `now`; `lifetime`
/// is the longest any of them can live.
pub fn client_denial(client_id: &str, lifetime: Duration, now: UnixTime) -> Denial {
    Denial { kind: DenialKind::Client, subject: client_id.to_string(), issued_before: now, expires_at: now + lifetime.as_secs() as i64 + 1 }
}

/// What a token check needs to know about the token.
pub struct Presented<'a> {
    pub jti: &'a str,
    pub client_id: &'a str,
    pub iat: UnixTime,
}

pub struct DenyList<'a> {
    pub durable: &'a dyn Durable,
    pub ephemeral: &'a dyn Ephemeral,
}

impl DenyList<'_> {
    /// Revokes one token until it would have expired anyway.
    pub async fn deny_token(&self, jti: &str, exp: UnixTime, now: UnixTime) -> StoreResult<()> {
        self.deny(Denial { kind: DenialKind::Token, subject: jti.to_string(), issued_before: exp, expires_at: exp }, now).await
    }

    async fn deny(&self, denial: Denial, now: UnixTime) -> StoreResult<()> {
        // The record first: once it is written, a lost cache cannot forget the revocation.
        self.durable.insert_denial(&denial).await?;
        self.cache(&denial, now).await
    }

    /// Copies a denial already in the durable record into the ephemeral store.
    pub async fn cache(&self, denial: &Denial, now: UnixTime) -> StoreResult<()> {
        cache(self.ephemeral, denial, now).await
    }

    pub async fn is_denied(&self, token: &Presented<'_>, now: UnixTime) -> StoreResult<bool> {
        let (t, c) = (token_key(token.jti), client_key(token.client_id));
        let values = self.ephemeral.get_many(&[LOADED, &t, &c]).await?;
        let (token_denied, client_denied) = if values[0].is_some() {
            (values[1].is_some(), values[2].clone())
        } else {
            self.reload(now).await?;
            let values = self.ephemeral.get_many(&[&t, &c]).await?;
            (values[0].is_some(), values[1].clone())
        };
        let issued_before = client_denied.and_then(|v| String::from_utf8(v).ok()).and_then(|v| v.parse::<UnixTime>().ok());
        Ok(token_denied || issued_before.is_some_and(|before| token.iat <= before))
    }

    /// Copies every live denial from the record into the ephemeral store, then sets the marker.
    async fn reload(&self, now: UnixTime) -> StoreResult<()> {
        let denials = self.durable.live_denials(now).await?;
        for denial in &denials {
            cache(self.ephemeral, denial, now).await?;
        }
        tracing::info!(denials = denials.len(), "access-token deny list loaded from the durable store");
        self.ephemeral.put(LOADED, b"1", RELOAD_EVERY).await
    }
}

async fn cache(ephemeral: &dyn Ephemeral, denial: &Denial, now: UnixTime) -> StoreResult<()> {
    let ttl = Duration::from_secs((denial.expires_at - now).max(1) as u64);
    match denial.kind {
        DenialKind::Token => ephemeral.put(&token_key(&denial.subject), b"1", ttl).await,
        DenialKind::Client => ephemeral.put(&client_key(&denial.subject), denial.issued_before.to_string().as_bytes(), ttl).await,
    }
}
