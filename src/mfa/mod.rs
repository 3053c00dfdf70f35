//! Second factors: authenticator apps (TOTP), recovery codes and passkeys (`passkey`). The
//! operations the account page, the sign-in step and the CLI share, over narrow dependencies:
//! what touches a TOTP secret is a method of [`Mfa`] (the durable store, the key-encryption key,
//! the issuer), and checking a code at sign-in also takes a [`Throttle`] (the ephemeral store's
//! failure counters and the login limits); the rest (list, remove, reset, new recovery codes)
//! are functions of the durable store alone.
//!
//! Every enrolment, confirmation, removal, reset, failure and recovery-code use is audited (the
//! `sub` as subject); never a secret or a code.

pub mod passkey;
pub mod recovery;
pub mod totp;

use serde::Serialize;
use serde_json::{json, Value};

use crate::clock::UnixTime;
use crate::config::LoginConfig;
use crate::crypto::kek::Kek;
use crate::crypto::secrets::random_token;
use crate::state::AppState;
use crate::store::{AuditEvent, Durable, Ephemeral, Factor, FactorKind, StoreError, User};

/// How long an enrolment may wait for its first code: a secret shown long ago (on a screen
/// someone else may have seen) is not confirmed later; the user starts again.
pub const ENROLMENT_TTL: i64 = 30 * 60;
const MAX_NAME_CHARS: usize = 64;
const DEFAULT_TOTP_NAME: &str = "Authenticator app";

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// Wrong, replayed, or for no confirmed factor: one answer for all, as for passwords.
    #[error("wrong code")]
    WrongCode,
    /// Too many wrong codes for the account within `login.failure_window`: refused unchecked.
    #[error("too many wrong codes; wait a few minutes, then try again")]
    Throttled,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The issuer cannot be a WebAuthn relying party (an IP address): no passkeys here.
    #[error("passkeys are not available on this server")]
    PasskeysUnavailable,
    /// A passkey ceremony that did not succeed, and why (audited).
    #[error("passkey refused: {0}")]
    PasskeyRefused(&'static str),
    /// A failure of sesame itself (a secret that does not open under the key-encryption key).
    #[error("{0}")]
    Internal(String),
}

impl From<totp::TotpError> for MfaError {
    fn from(e: totp::TotpError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// How a second factor was proven; `amr` (RFC 8176) is `otp` for both: a recovery code is a
/// one-time password too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Otp,
    Recovery,
}

impl Method {
    pub fn amr(self) -> &'static str {
        "otp"
    }
}

/// A TOTP enrolment to show once: the secret to type, the URI to scan (also as a QR code).
#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrolment {
    pub factor_id: String,
    /// Base32, as apps take it typed.
    pub secret: String,
    pub otpauth_uri: String,
    /// An inline `<svg>` element: the QR code of `otpauth_uri`.
    #[serde(skip)]
    pub qr_svg: String,
}

/// A factor as the account page and the CLI show it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactorSummary {
    pub id: String,
    pub kind: FactorKind,
    pub name: String,
    pub confirmed: bool,
    pub confirmed_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactorList {
    pub factors: Vec<FactorSummary>,
    pub recovery_codes_left: i64,
}

impl FactorList {
    /// Whether sign-in should ask this user for a second factor.
    pub fn has_confirmed_factor(&self) -> bool {
        self.factors.iter().any(|f| f.confirmed)
    }
}

/// Whether a session may change the user's factors (add an app, remove a factor, replace the
/// recovery codes): once the user has a confirmed factor, only a session that proved a second
/// factor may; otherwise a stolen password alone could remove the victim's app. A user with no
/// factor yet may add the first one on a password session.
pub fn may_change_factors(factors: &FactorList, session_proved_factor: bool) -> bool {
    session_proved_factor || !factors.has_confirmed_factor()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reset {
    pub factors_removed: u64,
    pub recovery_codes_removed: u64,
}

pub fn summary(f: &Factor) -> FactorSummary {
    FactorSummary {
        id: f.id.clone(),
        kind: f.kind,
        name: f.name.clone(),
        confirmed: f.confirmed_at.is_some(),
        confirmed_at: f.confirmed_at,
        created_at: f.created_at,
        last_used_at: f.last_used_at,
    }
}

/// A factor's label: trimmed, 1 to 64 characters, no control characters; absent, `default`.
pub fn check_name(name: Option<&str>, default: &str) -> Result<String, MfaError> {
    let name = name.map(str::trim).unwrap_or(default);
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(MfaError::Invalid(format!("a factor's name needs 1 to {MAX_NAME_CHARS} characters, none of them control characters")));
    }
    Ok(name.to_string())
}

/// Whether an enrolment can still be confirmed at `now`.
pub fn confirmable(f: &Factor, now: UnixTime) -> Result<(), MfaError> {
    if f.confirmed_at.is_some() {
        return Err(MfaError::Invalid("this factor is confirmed already".into()));
    }
    if now - f.created_at > ENROLMENT_TTL {
        return Err(MfaError::Invalid("this enrolment has expired; start again".into()));
    }
    Ok(())
}

/// The associated data a factor's secret is sealed with: moved to another row, it does not open.
fn seal_context(factor_id: &str) -> String {
    format!("totp:{factor_id}")
}

fn event(kind: &str, sub: &str, caller: Option<&str>, ok: bool, reason: Option<&str>, details: Value, now: UnixTime) -> AuditEvent {
    AuditEvent {
        id: 0,
        at: now,
        kind: kind.to_string(),
        subject: sub.to_string(),
        caller: caller.map(str::to_string),
        result: if ok { "ok" } else { "denied" }.to_string(),
        reason: reason.map(str::to_string),
        details,
    }
}

/// The failure counters of the sign-in step, shared by every node.
pub struct Throttle<'a> {
    pub ephemeral: &'a dyn Ephemeral,
    /// `max_failures_per_account` and `failure_window`, as for passwords.
    pub limits: &'a LoginConfig,
}

impl<'a> Throttle<'a> {
    pub fn of(state: &'a AppState) -> Self {
        Self { ephemeral: state.ephemeral.as_ref(), limits: &state.config.login }
    }
}

/// The counter of wrong second-factor codes for an account (apart from its password failures).
fn failure_key(sub: &str) -> String {
    format!("mfafail:acct:{sub}")
}

/// The operations on a user's factors.
#[derive(Clone, Copy)]
pub struct Mfa<'a> {
    pub durable: &'a dyn Durable,
    pub kek: &'a Kek,
    /// The configured issuer URL: its host labels the entry in authenticator apps.
    pub issuer: &'a str,
}

impl<'a> Mfa<'a> {
    pub fn of(state: &'a AppState) -> Self {
        Self { durable: state.durable.as_ref(), kek: state.kek.as_ref(), issuer: &state.config.issuer }
    }

    /// Starts a TOTP enrolment: a new secret, sealed, stored as an unconfirmed factor (an earlier
    /// unconfirmed one of the user goes). Show the secret, the URI and the QR code, then
    /// [`confirm_totp`](Self::confirm_totp) with the app's first code.
    pub async fn enrol_totp(&self, user: &User, name: Option<&str>, actor: &str, now: UnixTime) -> Result<TotpEnrolment, MfaError> {
        self.add_totp(user, name, actor, now, false).await
    }

    /// Confirms an enrolment with the app's first code (whose time step is then spent), within
    /// [`ENROLMENT_TTL`]. Returns ten fresh recovery codes when the user had no unused ones (their
    /// first factor): show them once.
    pub async fn confirm_totp(&self, sub: &str, factor_id: &str, code: &str, actor: &str, now: UnixTime) -> Result<Option<Vec<String>>, MfaError> {
        let factor = self.durable.factor(factor_id).await?.filter(|f| f.sub == sub && f.kind == FactorKind::Totp);
        let factor = factor.ok_or_else(|| MfaError::NotFound(format!("factor {factor_id}")))?;
        confirmable(&factor, now)?;
        let details = json!({"factor_id": factor_id, "kind": "totp"});
        let Some(step) = totp::verify(&self.open_secret(&factor)?, code, now) else {
            let denied = event("mfa.totp.confirm", sub, Some(actor), false, Some("wrong_code"), details, now);
            self.durable.append_audit(&denied).await?;
            return Err(MfaError::WrongCode);
        };
        let confirmed = event("mfa.totp.confirm", sub, Some(actor), true, None, details, now);
        if !self.durable.confirm_factor(factor_id, step, now, &confirmed).await? {
            return Err(MfaError::Invalid("this enrolment was confirmed or removed meanwhile".into()));
        }
        self.first_recovery_codes(sub, actor, now).await
    }

    /// A confirmed TOTP factor at once, for scripted set-up (`sesame user totp add`): whoever
    /// runs it hands the secret over. Recovery codes as with [`confirm_totp`](Self::confirm_totp).
    pub async fn provision_totp(&self, user: &User, name: Option<&str>, actor: &str, now: UnixTime) -> Result<(TotpEnrolment, Option<Vec<String>>), MfaError> {
        let enrolment = self.add_totp(user, name, actor, now, true).await?;
        let codes = self.first_recovery_codes(&user.sub, actor, now).await?;
        Ok((enrolment, codes))
    }

    /// The enrolment of an unconfirmed TOTP factor shown again (after a wrong first code, the user
    /// retries with the app they just set up), while it can still be confirmed.
    pub async fn reshow_totp(&self, user: &User, factor_id: &str, now: UnixTime) -> Result<TotpEnrolment, MfaError> {
        let factor = self.durable.factor(factor_id).await?.filter(|f| f.sub == user.sub && f.kind == FactorKind::Totp);
        let factor = factor.ok_or_else(|| MfaError::NotFound(format!("factor {factor_id}")))?;
        confirmable(&factor, now)?;
        let secret = self.open_secret(&factor)?;
        let otpauth_uri = totp::otpauth_uri(&secret, &totp::issuer_label(self.issuer), &user.username)?;
        let qr_svg = totp::qr_svg(&otpauth_uri)?;
        Ok(TotpEnrolment { factor_id: factor.id, secret: totp::secret_base32(&secret), otpauth_uri, qr_svg })
    }

    async fn add_totp(&self, user: &User, name: Option<&str>, actor: &str, now: UnixTime, confirmed: bool) -> Result<TotpEnrolment, MfaError> {
        let name = check_name(name, DEFAULT_TOTP_NAME)?;
        let secret = totp::generate_secret();
        let issuer = totp::issuer_label(self.issuer);
        let otpauth_uri = totp::otpauth_uri(&secret, &issuer, &user.username)?;
        let qr_svg = totp::qr_svg(&otpauth_uri)?;
        let id = format!("totp_{}", random_token(12));
        let sealed = self.kek.seal(&seal_context(&id), &secret).map_err(|e| MfaError::Internal(e.to_string()))?;
        let factor = Factor {
            id: id.clone(),
            sub: user.sub.clone(),
            kind: FactorKind::Totp,
            name: name.clone(),
            secret_sealed: Some(sealed),
            last_step: 0,
            credential: None,
            confirmed_at: confirmed.then_some(now),
            created_at: now,
            last_used_at: None,
        };
        let details = json!({"factor_id": id, "kind": "totp", "name": name, "confirmed": confirmed});
        self.durable.insert_factor(&factor, &event("mfa.totp.enrol", &user.sub, Some(actor), true, None, details, now)).await?;
        Ok(TotpEnrolment { factor_id: id, secret: totp::secret_base32(&secret), otpauth_uri, qr_svg })
    }

    async fn first_recovery_codes(&self, sub: &str, actor: &str, now: UnixTime) -> Result<Option<Vec<String>>, MfaError> {
        if self.durable.recovery_codes_left(sub).await? > 0 {
            return Ok(None);
        }
        regenerate_recovery_codes(self.durable, sub, actor, now).await.map(Some)
    }

    /// Checks a second factor at sign-in: a TOTP code of one of the user's confirmed apps (each
    /// time step accepted once), else one of their unused recovery codes (spent by this use).
    ///
    /// Throttled like passwords: every attempt first takes its place in the account's failure
    /// counter (atomically, so parallel guesses cannot all slip under the limit); past
    /// `login.max_failures_per_account` within `login.failure_window` even the right code is
    /// refused, unchecked. A success clears the counter. `caller` (an address) goes to the audit.
    pub async fn verify_second_factor(&self, throttle: &Throttle<'_>, sub: &str, code: &str, caller: Option<&str>, now: UnixTime) -> Result<Method, MfaError> {
        let key = failure_key(sub);
        let limits = throttle.limits;
        let failures = throttle.ephemeral.incr(&key, limits.failure_window).await?;
        if failures > limits.max_failures_per_account {
            // Audited once per window: the attempt that crossed the limit.
            if failures == limits.max_failures_per_account + 1 {
                let details = json!({"failures": limits.max_failures_per_account});
                self.durable.append_audit(&event("mfa.throttled", sub, caller, false, Some("too_many_failures"), details, now)).await?;
            }
            return Err(MfaError::Throttled);
        }
        match self.check_code(sub, code, caller, now).await? {
            Ok(method) => {
                throttle.ephemeral.delete(&key).await?;
                Ok(method)
            }
            Err(reason) => {
                self.durable.append_audit(&event("mfa.failure", sub, caller, false, Some(reason), json!({}), now)).await?;
                Err(MfaError::WrongCode)
            }
        }
    }

    /// The method that accepted `input`, or why none did (`wrong_code`, `replayed`).
    async fn check_code(&self, sub: &str, input: &str, caller: Option<&str>, now: UnixTime) -> Result<Result<Method, &'static str>, MfaError> {
        let mut refusal = "wrong_code";
        if totp::normalize_code(input).is_some() {
            let factors = self.durable.factors(sub).await?;
            for f in factors.iter().filter(|f| f.kind == FactorKind::Totp && f.confirmed_at.is_some()) {
                let Some(step) = totp::verify(&self.open_secret(f)?, input, now) else { continue };
                if self.durable.accept_factor_step(&f.id, step, now).await? {
                    return Ok(Ok(Method::Otp));
                }
                refusal = "replayed";
            }
        }
        if let Some(hash) = recovery::hash(sub, input) {
            let audit = event("mfa.recovery_code.use", sub, caller, true, None, json!({}), now);
            if self.durable.use_recovery_code(sub, &hash, now, &audit).await? {
                return Ok(Ok(Method::Recovery));
            }
        }
        Ok(Err(refusal))
    }

    fn open_secret(&self, f: &Factor) -> Result<Vec<u8>, MfaError> {
        let sealed = f.secret_sealed.as_deref().ok_or_else(|| MfaError::Internal(format!("TOTP factor {} has no secret", f.id)))?;
        self.kek
            .open(&seal_context(&f.id), sealed)
            .map_err(|_| MfaError::Internal(format!("the secret of TOTP factor {} does not open under this key-encryption key", f.id)))
    }
}

/// Ten new recovery codes, replacing every earlier one (used or not). Show them once.
pub async fn regenerate_recovery_codes(durable: &dyn Durable, sub: &str, actor: &str, now: UnixTime) -> Result<Vec<String>, MfaError> {
    let codes = recovery::generate();
    let hashes: Vec<Vec<u8>> = codes.iter().filter_map(|c| recovery::hash(sub, c)).collect();
    debug_assert_eq!(hashes.len(), codes.len());
    let audit = event("mfa.recovery_codes.generate", sub, Some(actor), true, None, json!({"count": codes.len()}), now);
    durable.replace_recovery_codes(sub, &hashes, now, &audit).await?;
    Ok(codes)
}

/// The user's factors (oldest first) and how many recovery codes they have left.
pub async fn list_factors(durable: &dyn Durable, sub: &str) -> Result<FactorList, MfaError> {
    let factors = durable.factors(sub).await?.iter().map(summary).collect();
    Ok(FactorList { factors, recovery_codes_left: durable.recovery_codes_left(sub).await? })
}

/// Removes one of the user's factors (the account page; recovery codes stay).
pub async fn remove_factor(durable: &dyn Durable, sub: &str, factor_id: &str, actor: &str, now: UnixTime) -> Result<(), MfaError> {
    let not_found = || MfaError::NotFound(format!("factor {factor_id}"));
    let factor = durable.factor(factor_id).await?.filter(|f| f.sub == sub).ok_or_else(not_found)?;
    let details = json!({"factor_id": factor_id, "kind": factor.kind, "name": factor.name});
    let removed = durable.delete_factor(sub, factor_id, &event("mfa.remove", sub, Some(actor), true, None, details, now)).await?;
    if removed { Ok(()) } else { Err(not_found()) }
}

/// Removes every factor and recovery code of the user (a lost phone): the next sign-in asks
/// for the password alone.
pub async fn reset(durable: &dyn Durable, username: &str, actor: &str, now: UnixTime) -> Result<Reset, MfaError> {
    let user = durable.user_by_username(username).await?.ok_or_else(|| MfaError::NotFound(format!("user {username}")))?;
    let audit = event("mfa.reset", &user.sub, Some(actor), true, None, json!({"username": username}), now);
    let (factors_removed, recovery_codes_removed) = durable.delete_all_factors(&user.sub, &audit).await?;
    Ok(Reset { factors_removed, recovery_codes_removed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factor(created_at: UnixTime, confirmed_at: Option<UnixTime>) -> Factor {
        Factor {
            id: "totp_1".into(),
            sub: "s".into(),
            kind: FactorKind::Totp,
            name: "Phone".into(),
            secret_sealed: Some(vec![1, 2, 3]),
            last_step: 0,
            credential: None,
            confirmed_at,
            created_at,
            last_used_at: None,
        }
    }

    #[test]
    fn an_enrolment_is_confirmed_once_and_only_while_fresh() {
        assert!(confirmable(&factor(1_000, None), 1_000 + ENROLMENT_TTL).is_ok());
        assert!(matches!(confirmable(&factor(1_000, None), 1_001 + ENROLMENT_TTL), Err(MfaError::Invalid(m)) if m.contains("expired")));
        assert!(matches!(confirmable(&factor(1_000, Some(1_010)), 1_020), Err(MfaError::Invalid(m)) if m.contains("confirmed")));
    }

    #[test]
    fn a_password_session_changes_factors_only_before_the_first_one() {
        let list = |confirmed: Option<UnixTime>| FactorList { factors: vec![summary(&factor(5, confirmed))], recovery_codes_left: 10 };
        let none = FactorList { factors: vec![], recovery_codes_left: 0 };
        assert!(may_change_factors(&none, false), "the first app on a password session");
        assert!(may_change_factors(&list(None), false), "an unconfirmed enrolment is not a factor yet");
        assert!(!may_change_factors(&list(Some(6)), false), "a password alone does not remove a factor");
        assert!(may_change_factors(&list(Some(6)), true));
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(check_name(None, "Authenticator app").unwrap(), "Authenticator app");
        assert_eq!(check_name(Some("  Work phone "), "x").unwrap(), "Work phone");
        for bad in ["", "   ", "a\nb", "\u{7}"] {
            assert!(check_name(Some(bad), "x").is_err(), "{bad:?}");
        }
        assert!(check_name(Some(&"é".repeat(64)), "x").is_ok());
        assert!(check_name(Some(&"é".repeat(65)), "x").is_err());
    }

    #[test]
    fn a_summary_never_carries_the_secret() {
        let s = summary(&factor(5, Some(6)));
        assert!(s.confirmed);
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("secret") && !json.contains("last_step"), "{json}");
        assert_eq!(serde_json::to_value(&s).unwrap()["kind"], "totp");
    }

    #[test]
    fn secrets_are_sealed_to_their_factor() {
        let kek = Kek::from_bytes(&[9; 32]).unwrap();
        let sealed = kek.seal(&seal_context("totp_a"), b"12345678901234567890").unwrap();
        assert!(kek.open(&seal_context("totp_b"), &sealed).is_err());
        assert_eq!(kek.open(&seal_context("totp_a"), &sealed).unwrap(), b"12345678901234567890");
    }
}
