//! The rules of RFC 7515 and RFC 7519 that jsonwebtoken leaves to its caller: the `crit`
//! header (§4.1.11: extensions we do not understand make a token invalid) and the time claims
//! judged against sesame's clock, not the library's.

use jsonwebtoken::Header;
use serde_json::Value;

use crate::clock::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the token names critical header parameters this server does not understand")]
    Critical,
    #[error("the token is encrypted or compressed; only signed tokens are accepted")]
    NotJws,
    #[error("`{0}` is missing")]
    Missing(&'static str),
    #[error("`{0}` is not a NumericDate")]
    NotADate(&'static str),
    #[error("the token expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token claims to live too long")]
    TooLong,
}

/// sesame understands no JWS extension, so any `crit` (even an empty one, which §4.1.11
/// forbids) is refused; JWE (`enc`) and compressed (`zip`) tokens are not JWS at all.
pub fn check_header(header: &Header) -> Result<(), RuleError> {
    if header.crit.is_some() || header.extras.contains_key("b64") {
        return Err(RuleError::Critical);
    }
    if header.enc.is_some() || header.zip.is_some() {
        return Err(RuleError::NotJws);
    }
    Ok(())
}

/// How the time claims of one kind of token are judged.
#[derive(Debug, Clone, Copy)]
pub struct TimeRules {
    /// Seconds of clock skew forgiven on `nbf` and `iat` (and on `exp` unless `allow_expired`).
    pub skew: i64,
    pub exp_leeway: i64,
    pub require_iat: bool,
    /// Accept an expired token (an ID token hint at logout).
    pub allow_expired: bool,
    /// The longest `exp - now` a token may claim.
    pub max_lifetime: Option<i64>,
}

/// `exp` (required), `nbf` and `iat` (when present, or required) against `now` (RFC 7519 §4.1.4-6).
pub fn check_times(claims: &Value, now: UnixTime, rules: TimeRules) -> Result<(), RuleError> {
    let exp = date(claims, "exp")?.ok_or(RuleError::Missing("exp"))?;
    let nbf = date(claims, "nbf")?;
    let iat = date(claims, "iat")?;
    if rules.require_iat && iat.is_none() {
        return Err(RuleError::Missing("iat"));
    }
    if !rules.allow_expired && now >= exp + rules.exp_leeway {
        return Err(RuleError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now + rules.skew) {
        return Err(RuleError::NotYetValid);
    }
    if iat.is_some_and(|iat| iat > now + rules.skew) {
        return Err(RuleError::IssuedInFuture);
    }
    if rules.max_lifetime.is_some_and(|max| exp - now > max) {
        return Err(RuleError::TooLong);
    }
    Ok(())
}

/// A NumericDate: seconds since the epoch, possibly fractional (RFC 7519 §2); truncated.
fn date(claims: &Value, name: &'static str) -> Result<Option<UnixTime>, RuleError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            (None, Some(f)) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f as i64)),
            _ => Err(RuleError::NotADate(name)),
        },
        Some(_) => Err(RuleError::NotADate(name)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const STRICT: TimeRules = TimeRules { skew: 30, exp_leeway: 0, require_iat: true, allow_expired: false, max_lifetime: None };

    #[test]
    fn times_are_judged_against_the_given_clock() {
        let now = 1_000;
        assert_eq!(check_times(&json!({"exp": 1_001, "iat": 990}), now, STRICT), Ok(()));
        assert_eq!(check_times(&json!({"exp": 1_000, "iat": 990}), now, STRICT), Err(RuleError::Expired));
        assert_eq!(check_times(&json!({"exp": 1_000, "iat": 990}), now, TimeRules { allow_expired: true, ..STRICT }), Ok(()));
        assert_eq!(check_times(&json!({"iat": 990}), now, STRICT), Err(RuleError::Missing("exp")));
        assert_eq!(check_times(&json!({"exp": 2_000}), now, STRICT), Err(RuleError::Missing("iat")));
        assert_eq!(check_times(&json!({"exp": 2_000, "iat": 1_031}), now, STRICT), Err(RuleError::IssuedInFuture));
        assert_eq!(check_times(&json!({"exp": 2_000, "iat": 1_030}), now, STRICT), Ok(()), "within the skew");
        assert_eq!(check_times(&json!({"exp": 2_000, "iat": 990, "nbf": 1_031}), now, STRICT), Err(RuleError::NotYetValid));
        assert_eq!(check_times(&json!({"exp": "2000", "iat": 990}), now, STRICT), Err(RuleError::NotADate("exp")));
        assert_eq!(check_times(&json!({"exp": 2_000.5, "iat": 990}), now, STRICT), Ok(()), "fractional dates are dates");
        assert_eq!(check_times(&json!({"exp": 1e300, "iat": 990}), now, STRICT), Err(RuleError::NotADate("exp")));
        let short = TimeRules { max_lifetime: Some(300), ..STRICT };
        assert_eq!(check_times(&json!({"exp": 1_301, "iat": 990}), now, short), Err(RuleError::TooLong));
    }

    #[test]
    fn critical_and_encrypted_headers_are_refused() {
        let plain: Header = serde_json::from_value(json!({"alg": "RS256", "typ": "at+jwt"})).unwrap();
        assert_eq!(check_header(&plain), Ok(()));
        for extra in [json!({"crit": ["exp"], "exp": "1"}), json!({"crit": []}), json!({"b64": "false"}), json!({"zip": "DEF"})] {
            let mut h = json!({"alg": "RS256"});
            h.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            let header: Header = serde_json::from_value(h.clone()).unwrap();
            assert!(check_header(&header).is_err(), "{h}");
        }
    }
}
