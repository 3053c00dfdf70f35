//! Authentication context classes (OIDC Core §2 `acr`, §3.1.2.1 `acr_values`) and methods
//! (RFC 8176 `amr`): what a sign-in proved, and what a client may ask it to prove.

/// A password alone.
pub const ACR_PASSWORD: &str = "urn:sesame:acr:password";
/// A password and a second factor (an authenticator app, a recovery code, a passkey).
pub const ACR_MFA: &str = "urn:sesame:acr:mfa";
/// What discovery advertises, weakest first.
pub const ACR_VALUES_SUPPORTED: [&str; 2] = [ACR_PASSWORD, ACR_MFA];

/// RFC 8176 §2: several factors were used.
pub const AMR_MFA: &str = "mfa";

/// The class a sign-in with these methods reaches.
pub fn acr_of(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m == AMR_MFA) { ACR_MFA } else { ACR_PASSWORD }
}

/// Whether `acr_values` (space-separated, in order of preference) asks for a second factor:
/// the client's first choice we know decides; unknown values are ignored, as OIDC Core allows
/// for a voluntary request.
pub fn asks_for_mfa(acr_values: Option<&str>) -> bool {
    acr_values.unwrap_or_default().split(' ').find(|v| ACR_VALUES_SUPPORTED.contains(v)) == Some(ACR_MFA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_known_acr_value_decides() {
        assert!(!asks_for_mfa(None));
        assert!(asks_for_mfa(Some(ACR_MFA)));
        assert!(asks_for_mfa(Some(&format!("urn:other {ACR_MFA} {ACR_PASSWORD}"))));
        assert!(!asks_for_mfa(Some(&format!("{ACR_PASSWORD} {ACR_MFA}"))), "a password is the client's first choice");
        assert!(!asks_for_mfa(Some("urn:unknown")));
    }

    #[test]
    fn the_class_follows_the_methods() {
        let amr = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(acr_of(&amr(&["pwd"])), ACR_PASSWORD);
        assert_eq!(acr_of(&amr(&["pwd", "otp", "mfa"])), ACR_MFA);
    }
}
