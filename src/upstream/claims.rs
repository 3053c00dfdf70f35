//! From a provider's claims (the validated ID token and userinfo, or a plain OAuth 2.0 userinfo
//! document) to the identity sesame works with, through the provider's claim mapping.

use serde_json::{Map, Value};

use super::error::UpstreamError;
use crate::config::ClaimMapping;

/// At most this many groups are kept from one sign-in, each at most `MAX_GROUP_BYTES` long:
/// they are stored and copied into tokens.
const MAX_GROUPS: usize = 200;
const MAX_GROUP_BYTES: usize = 256;
const MAX_SUBJECT_BYTES: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamIdentity {
    /// The provider's stable id for the person: the durable link.
    pub subject: String,
    pub username: Option<String>,
    pub email: Option<String>,
    /// The provider vouches for the address (`email_verified`, or `emails_are_verified`).
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// How the provider signed the person in (RFC 8176), from the ID token.
    pub amr: Vec<String>,
    pub acr: Option<String>,
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        // Plain OAuth 2.0 providers often number their users (GitHub's `id`).
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn truthy(value: Option<&Value>) -> bool {
    // Some providers send the boolean as a string.
    matches!(value, Some(Value::Bool(true))) || matches!(value, Some(Value::String(s)) if s == "true")
}

fn list(value: Option<&Value>) -> Vec<String> {
    let items: Vec<&Value> = match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::String(_)) => vec![one],
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if let Some(s) = text(Some(item)).filter(|s| s.len() <= MAX_GROUP_BYTES) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        if out.len() == MAX_GROUPS {
            break;
        }
    }
    out
}

pub fn map(claims: &Map<String, Value>, mapping: &ClaimMapping, emails_are_verified: bool) -> Result<UpstreamIdentity, UpstreamError> {
    let subject = text(claims.get(&mapping.subject))
        .filter(|s| s.len() <= MAX_SUBJECT_BYTES)
        .ok_or_else(|| UpstreamError::invalid("no_subject", format!("the claim `{}` (the subject) is missing or unusable", mapping.subject)))?;
    let email = text(claims.get(&mapping.email)).map(|e| e.to_lowercase()).filter(|e| e.contains('@') && e.len() <= 254);
    Ok(UpstreamIdentity {
        subject,
        username: text(claims.get(&mapping.username)),
        // A provider trusted to verify addresses still has the last word when it says `false`.
        email_verified: email.is_some() && match claims.get(&mapping.email_verified) {
            None | Some(Value::Null) => emails_are_verified,
            said => truthy(said),
        },
        email,
        name: text(claims.get(&mapping.name)),
        groups: list(claims.get(&mapping.groups)),
        amr: list(claims.get("amr")),
        acr: text(claims.get("acr")),
    })
}

impl UpstreamIdentity {
    pub fn email_domain(&self) -> Option<&str> {
        self.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, domain)| domain)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_standard_names_map_by_default() {
        let c = claims(json!({"sub": "u-1", "preferred_username": "ada", "email": "Ada@Corp.Example", "email_verified": true, "name": "Ada L", "groups": ["eng", "admins", "eng", 7], "amr": ["pwd", "mfa"], "acr": "urn:x"}));
        let id = map(&c, &ClaimMapping::default(), false).unwrap();
        assert_eq!(id.subject, "u-1");
        assert_eq!(id.username.as_deref(), Some("ada"));
        assert_eq!(id.email.as_deref(), Some("ada@corp.example"));
        assert_eq!(id.email_domain(), Some("corp.example"));
        assert!(id.email_verified);
        assert_eq!(id.groups, ["eng", "admins", "7"]);
        assert_eq!(id.amr, ["pwd", "mfa"]);
        assert_eq!(id.acr.as_deref(), Some("urn:x"));
    }

    #[test]
    fn a_custom_mapping_and_numeric_ids_work() {
        let mapping = ClaimMapping { subject: "id".into(), username: "login".into(), groups: "https://corp.example/roles".into(), ..ClaimMapping::default() };
        let c = claims(json!({"id": 583231, "login": "octocat", "email": "o@github.example", "https://corp.example/roles": "ops"}));
        let id = map(&c, &mapping, false).unwrap();
        assert_eq!((id.subject.as_str(), id.username.as_deref()), ("583231", Some("octocat")));
        assert_eq!(id.groups, ["ops"]);
        assert!(!id.email_verified, "no email_verified claim: not verified");
        assert!(map(&c, &mapping, true).unwrap().email_verified, "unless the provider is trusted to verify");
    }

    #[test]
    fn an_identity_without_a_subject_is_refused() {
        for c in [json!({"email": "a@b.c"}), json!({"sub": ""}), json!({"sub": {"x": 1}}), json!({"sub": "x".repeat(300)})] {
            assert!(matches!(map(&claims(c), &ClaimMapping::default(), false), Err(UpstreamError::Invalid { reason: "no_subject", .. })));
        }
    }

    #[test]
    fn email_verified_as_text_counts_and_groups_are_bounded() {
        let many: Vec<String> = (0..500).map(|i| format!("g{i}")).collect();
        let c = claims(json!({"sub": "s", "email": "a@b.example", "email_verified": "true", "groups": many}));
        let id = map(&c, &ClaimMapping::default(), false).unwrap();
        assert!(id.email_verified);
        assert_eq!(id.groups.len(), MAX_GROUPS);
        let unverified = claims(json!({"sub": "s", "email": "a@b.example", "email_verified": false}));
        assert!(!map(&unverified, &ClaimMapping::default(), true).unwrap().email_verified, "an explicit false wins over emails_are_verified");
    }
}
