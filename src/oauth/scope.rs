//! Scope values (RFC 6749 §3.3): one parser for every place a scope arrives (authorization and
//! token requests, client and API-key registration, our own tokens' `scope` claim).

use std::fmt;

/// The scope of sesame's own admin API.
pub const ADMIN_SCOPE: &str = "sesame:admin";

/// Space-separated scope tokens, each printable ASCII without space, `"` or `\`; duplicates
/// dropped, order kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

/// A token RFC 6749 §3.3 does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope `{0}` has characters RFC 6749 does not allow")]
pub struct ScopeError(pub String);

fn legal(token: &str) -> bool {
    token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

impl Scopes {
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let mut out: Vec<String> = Vec::new();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            if !legal(token) {
                return Err(ScopeError(token.chars().take(64).collect()));
            }
            if !out.iter().any(|t| t == token) {
                out.push(token.to_string());
            }
        }
        Ok(Self(out))
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }

    /// The scope a request asks for, which may narrow `granted` but never widen it; no `scope`
    /// means all of `granted`. Err names the first scope that was not granted.
    pub fn narrowed(granted: &[String], asked: Option<&str>) -> Result<Vec<String>, NarrowError> {
        let Some(asked) = asked else { return Ok(granted.to_vec()) };
        let asked = Self::parse(asked).map_err(NarrowError::Illegal)?;
        if let Some(extra) = asked.iter().find(|s| !granted.iter().any(|g| g == s)) {
            return Err(NarrowError::NotGranted(extra.to_string()));
        }
        Ok(asked.into_vec())
    }
}

/// Why a requested scope cannot narrow a grant (`invalid_scope` to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NarrowError {
    #[error(transparent)]
    Illegal(ScopeError),
    #[error("scope `{0}` was not granted")]
    NotGranted(String),
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn tokens_are_checked_deduplicated_and_kept_in_order() {
        assert_eq!(Scopes::parse("openid  email openid").unwrap().into_vec(), vec!["openid", "email"]);
        assert_eq!(Scopes::parse("").unwrap(), Scopes::default());
        for bad in ["bad\"scope", "back\\slash", "tab\there", "é"] {
            assert!(Scopes::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn narrowing_never_widens() {
        let granted = vec!["a".to_string(), "b".to_string()];
        assert_eq!(Scopes::narrowed(&granted, None).unwrap(), granted);
        assert_eq!(Scopes::narrowed(&granted, Some("b b")).unwrap(), vec!["b"]);
        assert_eq!(Scopes::narrowed(&granted, Some("a c")), Err(NarrowError::NotGranted("c".into())));
        assert_eq!(Scopes::narrowed(&granted, Some("a c")).unwrap_err().to_string(), "scope `c` was not granted");
        assert!(matches!(Scopes::narrowed(&granted, Some("a \"")), Err(NarrowError::Illegal(_))));
    }

    proptest! {
        #[test]
        fn display_then_parse_is_the_identity(tokens in prop::collection::vec("[!#-\\[\\]-~]{1,10}", 0..6)) {
            let scopes = Scopes::parse(&tokens.join(" ")).unwrap();
            prop_assert_eq!(Scopes::parse(&scopes.to_string()).unwrap(), scopes.clone());
            prop_assert!(tokens.iter().all(|t| scopes.contains(t)));
        }

        #[test]
        fn a_narrowed_scope_is_within_the_grant(granted in prop::collection::vec("[a-e]", 0..5), asked in "[a-g ]{0,12}") {
            if let Ok(scopes) = Scopes::narrowed(&granted, Some(&asked)) {
                prop_assert!(scopes.iter().all(|s| granted.contains(s)));
            }
        }
    }
}
