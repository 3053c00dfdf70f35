//! Passkeys (WebAuthn): as the second step after a password, and alone (passwordless, with a
//! discoverable credential: user verification makes one passkey two factors). Every ceremony and
//! every signature check is `webauthn-rs`'s; this module keeps the ceremony state and the
//! credentials:
//!
//! - the relying party is the issuer: RP id its host, the only allowed origin its origin (an
//!   issuer on an IP address has no passkeys: WebAuthn needs a domain);
//! - a ceremony's state waits in the ephemeral store for [`CEREMONY_TTL`] under a key bound to
//!   what started it (a registration: a random id and the session; a sign-in: the pending
//!   request) and is *taken* by its finish, so a response is accepted once;
//! - registration asks for a discoverable credential where the authenticator can make one
//!   (`residentKey: preferred`), so the same passkey serves passwordless sign-in; a passwordless
//!   assertion names its credential, which names the user (the user handle must agree);
//! - a credential is a `passkey` factor, confirmed at once, its `Passkey` as JSON in `credential`;
//!   the factor id is derived from the credential id, so one credential is registered once in
//!   the whole server (the primary key refuses a second row);
//! - a use moves the stored signature counter forward by compare-and-set; a counter that does
//!   not move forward is the crate's clone warning: refused and audited.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, CredentialID, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid, WebauthnError,
};
use webauthn_rs_proto::ResidentKeyRequirement;
use webauthn_rs::{Webauthn, WebauthnBuilder};

use super::{event, summary, FactorSummary, MfaError};
use crate::clock::UnixTime;
use crate::crypto::secrets::{hash_hex, random_token};
use crate::state::AppState;
use crate::store::{Durable, Ephemeral, Factor, FactorKind, StoreError, User};

/// How long a started ceremony may wait for the authenticator (the browser's own timeout is 5 min).
pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);
const DEFAULT_NAME: &str = "Passkey";

/// The relying party of `issuer`, or why there is none (an IP address, an unparsable URL).
pub fn relying_party(issuer: &str) -> Result<Webauthn, String> {
    let url = Url::parse(issuer).map_err(|e| format!("the issuer is not a URL: {e}"))?;
    let Some(rp_id) = url.domain() else {
        return Err(format!("the issuer's host ({}) is not a domain name; WebAuthn needs one (localhost will do for a test)", url.host_str().unwrap_or("")));
    };
    let origin = Url::parse(&url.origin().ascii_serialization()).map_err(|e| e.to_string())?;
    WebauthnBuilder::new(rp_id, &origin)
        .and_then(|b| b.rp_name(rp_id).build())
        .map_err(|e| format!("the WebAuthn relying party for {issuer}: {e}"))
}

/// The factor id of a credential: `passkey_` and 128 bits of SHA-256 of its id, so a credential
/// maps to one row whoever registers it.
pub fn factor_id(credential_id: &CredentialID) -> String {
    let bytes: &[u8] = credential_id.as_ref();
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("passkey_{hex}")
}

/// The WebAuthn user handle of `sub`: stable, and no `sub` in clear on the authenticator.
fn user_handle(sub: &str) -> Uuid {
    let digest = Sha256::digest(format!("sesame passkey user\0{sub}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// The RFC 8176 `amr` values a passkey assertion proves: `swk` when the credential is
/// backup-eligible (a synced passkey: its private key leaves the device, into a cloud keychain),
/// `hwk` when it is device-bound; and `user`: webauthn-rs requires user presence (and, for
/// passkeys, user verification) in every assertion. Without attestation the flags are the
/// authenticator's word.
pub fn amr(backup_eligible: bool) -> [&'static str; 2] {
    [if backup_eligible { "swk" } else { "hwk" }, "user"]
}

/// A registration's options for `navigator.credentials.create`, and the id of its ceremony.
#[derive(Debug, Serialize)]
pub struct RegistrationStart {
    pub ceremony: String,
    #[serde(flatten)]
    pub options: CreationChallengeResponse,
}

#[derive(Serialize, Deserialize)]
struct PendingRegistration {
    sid: String,
    sub: String,
    state: PasskeyRegistration,
}

#[derive(Serialize, Deserialize)]
struct PendingAuthentication {
    sub: String,
    state: PasskeyAuthentication,
}

/// A passkey assertion that was accepted.
#[derive(Debug, Clone)]
pub struct Proof {
    pub factor_id: String,
    pub amr: [&'static str; 2],
}

/// A passwordless sign-in that was accepted: whose passkey it was, and the proof.
#[derive(Debug, Clone)]
pub struct Identified {
    pub sub: String,
    pub proof: Proof,
}

fn registration_key(ceremony: &str) -> String {
    format!("pkreg:{}", hash_hex(ceremony))
}

fn authentication_key(binding: &str) -> String {
    format!("pkauth:{}", hash_hex(binding))
}

fn discoverable_key(binding: &str) -> String {
    format!("pkdisc:{}", hash_hex(binding))
}

/// The stored passkey of a factor row.
fn passkey_of(f: &Factor) -> Result<Passkey, MfaError> {
    let text = f.credential.as_deref().ok_or_else(|| internal(format!("passkey factor {} has no credential", f.id)))?;
    serde_json::from_str(text).map_err(|e| internal(format!("passkey factor {}: {e}", f.id)))
}

fn internal(e: impl std::fmt::Display) -> MfaError {
    MfaError::Internal(e.to_string())
}

/// The passkey operations: the relying party, the durable store (credentials, audit) and the
/// ephemeral store (ceremony state).
#[derive(Clone, Copy)]
pub struct Passkeys<'a> {
    pub webauthn: &'a Webauthn,
    pub durable: &'a dyn Durable,
    pub ephemeral: &'a dyn Ephemeral,
}

impl<'a> Passkeys<'a> {
    /// The passkey operations of this server; `PasskeysUnavailable` when the issuer cannot be a
    /// relying party.
    pub fn of(state: &'a AppState) -> Result<Self, MfaError> {
        let webauthn = state.webauthn.as_deref().ok_or(MfaError::PasskeysUnavailable)?;
        Ok(Self { webauthn, durable: state.durable.as_ref(), ephemeral: state.ephemeral.as_ref() })
    }

    /// The user's confirmed passkeys, with their factor ids.
    async fn passkeys(&self, sub: &str) -> Result<Vec<(Factor, Passkey)>, MfaError> {
        let mut found = Vec::new();
        for f in self.durable.factors(sub).await? {
            if f.kind != FactorKind::Passkey || f.confirmed_at.is_none() {
                continue;
            }
            let passkey = passkey_of(&f)?;
            found.push((f, passkey));
        }
        Ok(found)
    }

    /// Starts registering a passkey for `user`, signed in with session `sid`: the options for
    /// the browser, excluding the user's registered credentials.
    pub async fn begin_registration(&self, user: &User, sid: &str) -> Result<RegistrationStart, MfaError> {
        let exclude: Vec<CredentialID> = self.passkeys(&user.sub).await?.iter().map(|(_, p)| p.cred_id().clone()).collect();
        let display = user.name.as_deref().unwrap_or(&user.username);
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(user_handle(&user.sub), &user.username, display, (!exclude.is_empty()).then_some(exclude))
            .map_err(internal)?;
        // webauthn-rs asks for a server-side credential ("discouraged"); a discoverable one is
        // what passwordless sign-in needs, and the crate's verification does not depend on it.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Preferred);
        }
        let ceremony = random_token(24);
        let pending = PendingRegistration { sid: sid.to_string(), sub: user.sub.clone(), state };
        let bytes = serde_json::to_vec(&pending).map_err(internal)?;
        self.ephemeral.put(&registration_key(&ceremony), &bytes, CEREMONY_TTL).await?;
        Ok(RegistrationStart { ceremony, options })
    }

    /// Finishes a registration begun by the same session: the credential is verified by
    /// webauthn-rs and stored as a confirmed `passkey` factor named `name`. A ceremony is
    /// finished once; a credential is registered once.
    pub async fn finish_registration(&self, user: &User, sid: &str, ceremony: &str, name: Option<&str>, credential: &RegisterPublicKeyCredential, actor: &str, now: UnixTime) -> Result<FactorSummary, MfaError> {
        let name = super::check_name(name, DEFAULT_NAME)?;
        let refuse = |reason: &'static str| async move {
            let denied = event("mfa.passkey.register", &user.sub, Some(actor), false, Some(reason), json!({}), now);
            self.durable.append_audit(&denied).await?;
            Err::<FactorSummary, MfaError>(MfaError::PasskeyRefused(reason))
        };
        if ceremony.is_empty() || ceremony.len() > 64 {
            return refuse("no_ceremony").await;
        }
        let Some(bytes) = self.ephemeral.take(&registration_key(ceremony)).await? else { return refuse("no_ceremony").await };
        let pending: PendingRegistration = serde_json::from_slice(&bytes).map_err(internal)?;
        if pending.sub != user.sub || pending.sid != sid {
            return refuse("other_session").await;
        }
        let passkey = match self.webauthn.finish_passkey_registration(credential, &pending.state) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(error = %e, "passkey registration refused");
                return refuse("invalid_credential").await;
            }
        };
        let id = factor_id(passkey.cred_id());
        if self.durable.factor(&id).await?.is_some() {
            return refuse("already_registered").await;
        }
        let factor = Factor {
            id: id.clone(),
            sub: user.sub.clone(),
            kind: FactorKind::Passkey,
            name: name.clone(),
            secret_sealed: None,
            last_step: 0,
            credential: Some(serde_json::to_string(&passkey).map_err(internal)?),
            confirmed_at: Some(now),
            created_at: now,
            last_used_at: None,
        };
        let details = json!({"factor_id": id, "kind": "passkey", "name": name});
        match self.durable.insert_factor(&factor, &event("mfa.passkey.register", &user.sub, Some(actor), true, None, details, now)).await {
            Ok(()) => Ok(summary(&factor)),
            // Registered by a concurrent finish meanwhile.
            Err(StoreError::Conflict(_)) => refuse("already_registered").await,
            Err(e) => Err(e.into()),
        }
    }

    /// Starts a passkey sign-in step for `sub` bound to `binding` (the pending request): the
    /// options for `navigator.credentials.get`, allowing the user's passkeys. A newer start for
    /// the same binding replaces an older one.
    pub async fn begin_authentication(&self, sub: &str, binding: &str) -> Result<RequestChallengeResponse, MfaError> {
        let passkeys: Vec<Passkey> = self.passkeys(sub).await?.into_iter().map(|(_, p)| p).collect();
        if passkeys.is_empty() {
            return Err(MfaError::PasskeyRefused("no_passkey"));
        }
        let (options, state) = self.webauthn.start_passkey_authentication(&passkeys).map_err(internal)?;
        let bytes = serde_json::to_vec(&PendingAuthentication { sub: sub.to_string(), state }).map_err(internal)?;
        self.ephemeral.put(&authentication_key(binding), &bytes, CEREMONY_TTL).await?;
        Ok(options)
    }

    /// Checks the assertion answering the step begun for `binding` (taken: a second finish
    /// finds nothing), for `sub`. On success the credential's counter moves forward.
    pub async fn finish_authentication(&self, sub: &str, binding: &str, credential: &PublicKeyCredential, caller: Option<&str>, now: UnixTime) -> Result<Proof, MfaError> {
        let fail = |kind: &'static str, reason: &'static str, details: serde_json::Value| async move {
            self.durable.append_audit(&event(kind, sub, caller, false, Some(reason), details, now)).await?;
            Err::<Proof, MfaError>(MfaError::PasskeyRefused(reason))
        };
        let Some(bytes) = self.ephemeral.take(&authentication_key(binding)).await? else {
            return fail("mfa.failure", "no_ceremony", json!({"kind": "passkey"})).await;
        };
        let pending: PendingAuthentication = serde_json::from_slice(&bytes).map_err(internal)?;
        if pending.sub != sub {
            return fail("mfa.failure", "other_user", json!({"kind": "passkey"})).await;
        }
        let result = match self.webauthn.finish_passkey_authentication(credential, &pending.state) {
            Ok(r) => r,
            Err(e) => return Err(self.refused_assertion(sub, credential, e, caller, now).await),
        };
        let id = factor_id(result.cred_id());
        let Some((factor, passkey)) = self.passkeys(sub).await?.into_iter().find(|(f, _)| f.id == id) else {
            return fail("mfa.failure", "removed", json!({"kind": "passkey", "factor_id": id})).await;
        };
        self.record_use(&factor, passkey, &result, caller, false, now).await
    }

    /// Starts a passwordless sign-in bound to `binding` (the pending request): options for
    /// `navigator.credentials.get` naming no credential, so the authenticator offers its
    /// discoverable ones for this relying party.
    pub async fn begin_discoverable(&self, binding: &str) -> Result<RequestChallengeResponse, MfaError> {
        let (options, state) = self.webauthn.start_discoverable_authentication().map_err(internal)?;
        let bytes = serde_json::to_vec(&state).map_err(internal)?;
        self.ephemeral.put(&discoverable_key(binding), &bytes, CEREMONY_TTL).await?;
        Ok(options)
    }

    /// Checks a passwordless assertion answering the start for `binding` (taken: once). The
    /// credential names the factor, the factor the user; the assertion's user handle must be
    /// that user's. A disabled user's passkey is refused.
    pub async fn finish_discoverable(&self, binding: &str, credential: &PublicKeyCredential, caller: Option<&str>, now: UnixTime) -> Result<Identified, MfaError> {
        let refuse = |sub: Option<String>, reason: &'static str| async move {
            let details = json!({"kind": "passkey", "passwordless": true, "factor_id": factor_id(&credential.raw_id)});
            self.durable.append_audit(&event("login.passkey", sub.as_deref().unwrap_or(""), caller, false, Some(reason), details, now)).await?;
            Err::<Identified, MfaError>(MfaError::PasskeyRefused(reason))
        };
        let Some(bytes) = self.ephemeral.take(&discoverable_key(binding)).await? else { return refuse(None, "no_ceremony").await };
        let state: DiscoverableAuthentication = serde_json::from_slice(&bytes).map_err(internal)?;
        let Ok((handle, _)) = self.webauthn.identify_discoverable_authentication(credential) else { return refuse(None, "no_user_handle").await };
        let Some(factor) = self.durable.factor(&factor_id(&credential.raw_id)).await? else { return refuse(None, "unknown_passkey").await };
        if factor.kind != FactorKind::Passkey || factor.confirmed_at.is_none() {
            return refuse(None, "unknown_passkey").await;
        }
        if user_handle(&factor.sub) != handle {
            return refuse(Some(factor.sub), "user_handle_mismatch").await;
        }
        match self.durable.user(&factor.sub).await? {
            Some(user) if !user.disabled => {}
            _ => return refuse(Some(factor.sub), "user_disabled").await,
        }
        let passkey = passkey_of(&factor)?;
        let result = match self.webauthn.finish_discoverable_authentication_v2(credential, state, &passkey) {
            Ok(r) => r,
            Err(e) => return Err(self.refused_assertion(&factor.sub, credential, e, caller, now).await),
        };
        let sub = factor.sub.clone();
        let proof = self.record_use(&factor, passkey, &result, caller, true, now).await?;
        Ok(Identified { sub, proof })
    }

    /// An assertion webauthn-rs refused: a counter that did not move forward is its clone
    /// warning, audited as such; anything else a plain failure.
    async fn refused_assertion(&self, sub: &str, credential: &PublicKeyCredential, e: WebauthnError, caller: Option<&str>, now: UnixTime) -> MfaError {
        let (kind, reason, details) = match e {
            WebauthnError::CredentialPossibleCompromise => ("mfa.passkey.clone_warning", "counter_regressed", json!({"kind": "passkey", "factor_id": factor_id(&credential.raw_id)})),
            e => {
                tracing::info!(error = %e, "passkey assertion refused");
                ("mfa.failure", "invalid_assertion", json!({"kind": "passkey"}))
            }
        };
        match self.durable.append_audit(&event(kind, sub, caller, false, Some(reason), details, now)).await {
            Ok(()) => MfaError::PasskeyRefused(reason),
            Err(e) => e.into(),
        }
    }

    /// Moves the credential's counter forward (compare-and-set: of two concurrent uses of one
    /// credential, one wins) and audits the use.
    async fn record_use(&self, factor: &Factor, mut passkey: Passkey, result: &AuthenticationResult, caller: Option<&str>, passwordless: bool, now: UnixTime) -> Result<Proof, MfaError> {
        passkey.update_credential(result);
        let expected = factor.credential.as_deref().unwrap_or_default();
        let updated = serde_json::to_string(&passkey).map_err(internal)?;
        let details = json!({"kind": "passkey", "factor_id": factor.id, "passwordless": passwordless});
        if !self.durable.update_passkey(&factor.id, expected, &updated, now).await? {
            self.durable.append_audit(&event("mfa.failure", &factor.sub, caller, false, Some("concurrent_use"), details, now)).await?;
            return Err(MfaError::PasskeyRefused("concurrent_use"));
        }
        let proof = Proof { factor_id: factor.id.clone(), amr: amr(result.backup_eligible()) };
        let details = json!({"kind": "passkey", "factor_id": proof.factor_id, "amr": proof.amr, "passwordless": passwordless});
        self.durable.append_audit(&event("mfa.passkey.use", &factor.sub, caller, true, None, details, now)).await?;
        Ok(proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuers_host() {
        assert!(relying_party("https://sso.example.com").is_ok());
        assert!(relying_party("http://localhost:8080/").is_ok());
        assert!(relying_party("http://127.0.0.1:8080").unwrap_err().contains("not a domain"));
        assert!(relying_party("not a url").is_err());
    }

    #[test]
    fn a_credential_has_one_factor_id_and_users_one_handle() {
        let a = CredentialID::from(vec![1u8, 2, 3]);
        assert_eq!(factor_id(&a), factor_id(&CredentialID::from(vec![1u8, 2, 3])));
        assert_ne!(factor_id(&a), factor_id(&CredentialID::from(vec![1u8, 2, 4])));
        assert_eq!(factor_id(&a).len(), "passkey_".len() + 32);
        assert_eq!(user_handle("s1"), user_handle("s1"));
        assert_ne!(user_handle("s1"), user_handle("s2"));
    }

    #[test]
    fn amr_says_whether_the_key_can_leave_the_device() {
        assert_eq!(amr(false), ["hwk", "user"]);
        assert_eq!(amr(true), ["swk", "user"]);
    }
}
