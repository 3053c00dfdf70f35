//! Server-provided DPoP nonces (RFC 9449 §8), when `dpop.nonce` is on. One nonce per period of
//! `dpop.nonce_lifetime`, kept in the ephemeral store so every node hands out and accepts the
//! same ones; the current and the previous period's nonce are accepted.

use std::time::Duration;

use subtle::ConstantTimeEq;

use crate::clock::UnixTime;
use crate::crypto::secrets::random_token;
use crate::store::{Ephemeral, StoreResult};

/// One hash tag for every period, so a check (this period's and the last) is one read of one
/// slot on a Redis Cluster; only the token and PAR endpoints read it.
fn period_key(period: i64) -> String {
    format!("{{dpop-nonce}}:{period}")
}

fn period_of(now: UnixTime, lifetime: Duration) -> i64 {
    now.div_euclid(lifetime.as_secs().max(1) as i64)
}

/// The nonce of the current period, made by whichever node asks first.
pub async fn current(ephemeral: &dyn Ephemeral, lifetime: Duration, now: UnixTime) -> StoreResult<String> {
    let key = period_key(period_of(now, lifetime));
    if let Some(found) = ephemeral.get(&key).await? {
        return Ok(String::from_utf8_lossy(&found).into_owned());
    }
    // Two periods and a margin: it is accepted during the next period too.
    let ttl = lifetime * 2 + Duration::from_secs(5);
    let fresh = random_token(24);
    if ephemeral.put_if_absent(&key, fresh.as_bytes(), ttl).await? {
        return Ok(fresh);
    }
    // Another node made it a moment ago.
    Ok(ephemeral.get(&key).await?.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or(fresh))
}

/// Whether `nonce` is the current or the previous period's.
pub async fn is_valid(ephemeral: &dyn Ephemeral, lifetime: Duration, now: UnixTime, nonce: &str) -> StoreResult<bool> {
    let period = period_of(now, lifetime);
    let (this, last) = (period_key(period), period_key(period - 1));
    let known = ephemeral.get_many(&[&this, &last]).await?;
    Ok(known.iter().flatten().any(|n| bool::from(n.as_slice().ct_eq(nonce.as_bytes()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ephemeral::MemoryStore;

    #[tokio::test]
    async fn a_nonce_lives_for_its_period_and_the_next() {
        let store = MemoryStore::new();
        let lifetime = Duration::from_secs(300);
        let first = current(&store, lifetime, 1_000).await.unwrap();
        assert_eq!(current(&store, lifetime, 1_100).await.unwrap(), first, "one nonce per period");
        assert!(is_valid(&store, lifetime, 1_100, &first).await.unwrap());
        assert!(is_valid(&store, lifetime, 1_250, &first).await.unwrap(), "the next period still accepts it");
        assert!(!is_valid(&store, lifetime, 1_550, &first).await.unwrap(), "two periods on, it is gone");
        assert!(!is_valid(&store, lifetime, 1_100, "made-up").await.unwrap());
    }
}
