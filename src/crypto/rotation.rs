//! The rotation schedule as a pure function of the keys' activation times and `now`.
//!
//! A key is *next* from creation until it activates (published, not signing), *active* while it
//! is the most recently activated key of its algorithm (signing), and *retired* once a successor
//! activates (published, not signing) until every token it signed has expired; then it is purged.

use std::time::Duration;

use crate::clock::UnixTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Active,
    Retired,
}

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub rotation_interval: Duration,
    pub prepublish: Duration,
    /// How long a retired key stays published: the longest lifetime of a signed token, plus skew.
    pub retention: Duration,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Create a key that activates at this time.
    pub create_activating_at: Option<UnixTime>,
    /// Kids to delete: retired and past retention.
    pub purge: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create_activating_at.is_none() && self.purge.is_empty()
    }
}

fn secs(d: Duration) -> i64 {
    d.as_secs() as i64
}

/// `keys` are (kid, activates_at) of one algorithm, in any order.
pub fn state_of(keys: &[(String, UnixTime)], kid: &str, now: UnixTime) -> Option<KeyState> {
    let (_, at) = keys.iter().find(|(k, _)| k == kid)?;
    if *at > now {
        return Some(KeyState::Next);
    }
    let newest_active = keys.iter().filter(|(_, a)| *a <= now).map(|(_, a)| *a).max()?;
    let is_newest = *at == newest_active && active_kid(keys, now) == Some(kid);
    Some(if is_newest { KeyState::Active } else { KeyState::Retired })
}

/// The signing key of one algorithm at `now`: the most recently activated one
/// (ties broken by kid so every node picks the same).
pub fn active_kid(keys: &[(String, UnixTime)], now: UnixTime) -> Option<&str> {
    keys.iter().filter(|(_, a)| *a <= now).max_by(|x, y| (x.1, &x.0).cmp(&(y.1, &y.0))).map(|(k, _)| k.as_str())
}

pub fn plan(keys: &[(String, UnixTime)], now: UnixTime, schedule: &Schedule) -> Plan {
    let mut sorted: Vec<&(String, UnixTime)> = keys.iter().collect();
    sorted.sort_by(|x, y| (x.1, &x.0).cmp(&(y.1, &y.0)));
    let Some(active) = active_kid(keys, now) else {
        // Nothing signs yet (first start): a key that signs at once.
        return Plan { create_activating_at: Some(now), purge: vec![] };
    };
    let active_at = sorted.iter().find(|(k, _)| k == active).map(|(_, a)| *a).unwrap_or(now);
    let pending = sorted.iter().any(|(_, a)| *a > now);
    let due_at = active_at + secs(schedule.rotation_interval);
    let create_activating_at = (!pending && now >= due_at - secs(schedule.prepublish))
        .then(|| due_at.max(now + secs(schedule.prepublish)));
    let purge = sorted
        .windows(2)
        .filter(|w| w[1].1 <= now && w[1].1 + secs(schedule.retention) <= now)
        .map(|w| w[0].0.clone())
        .collect();
    Plan { create_activating_at, purge }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn schedule() -> Schedule {
        Schedule {
            rotation_interval: Duration::from_secs(30 * DAY as u64),
            prepublish: Duration::from_secs(2 * DAY as u64),
            retention: Duration::from_secs(3600),
        }
    }

    fn keys(list: &[(&str, i64)]) -> Vec<(String, i64)> {
        list.iter().map(|(k, a)| (k.to_string(), *a)).collect()
    }

    #[test]
    fn first_start_creates_a_key_active_at_once() {
        assert_eq!(plan(&[], 1000, &schedule()).create_activating_at, Some(1000));
    }

    #[test]
    fn nothing_to_do_mid_period() {
        assert!(plan(&keys(&[("a", 0)]), 10 * DAY, &schedule()).is_empty());
    }

    #[test]
    fn successor_is_prepublished_before_it_activates() {
        let now = 28 * DAY;
        let p = plan(&keys(&[("a", 0)]), now, &schedule());
        assert_eq!(p.create_activating_at, Some(30 * DAY));
        let ks = keys(&[("a", 0), ("b", 30 * DAY)]);
        assert_eq!(state_of(&ks, "b", now), Some(KeyState::Next));
        assert_eq!(state_of(&ks, "a", now), Some(KeyState::Active));
        assert!(plan(&ks, now + 1, &schedule()).is_empty(), "one pending successor at a time");
    }

    #[test]
    fn a_late_check_still_prepublishes_fully() {
        let p = plan(&keys(&[("a", 0)]), 40 * DAY, &schedule());
        assert_eq!(p.create_activating_at, Some(42 * DAY));
    }

    #[test]
    fn activation_retires_the_predecessor_then_purges_it_after_retention() {
        let ks = keys(&[("a", 0), ("b", 30 * DAY)]);
        assert_eq!(state_of(&ks, "b", 30 * DAY), Some(KeyState::Active));
        assert_eq!(state_of(&ks, "a", 30 * DAY), Some(KeyState::Retired));
        assert!(plan(&ks, 30 * DAY + 3599, &schedule()).purge.is_empty());
        assert_eq!(plan(&ks, 30 * DAY + 3600, &schedule()).purge, vec!["a".to_string()]);
    }

    #[test]
    fn same_activation_time_ties_break_by_kid() {
        let ks = keys(&[("b", 5), ("a", 5)]);
        assert_eq!(active_kid(&ks, 5), Some("b"));
        assert_eq!(state_of(&ks, "a", 5), Some(KeyState::Retired));
    }
}
