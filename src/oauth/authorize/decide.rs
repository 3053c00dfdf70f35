//! What an authorization request needs next, as a pure function of what is known: the pending
//! request, the browser's session, the user's earlier consent, the client and the time.
//! OIDC Core §3.1.2.1 (`prompt`, `max_age`) and §3.1.2.4 (consent).

use super::pending::PendingAuthorization;
use crate::clock::UnixTime;

/// The next step of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Show the login page.
    Login,
    /// `prompt=none`, but the user would have to sign in: `login_required` to the client.
    LoginRequired,
    /// Show the consent page.
    Consent,
    /// `prompt=none`, but the user would have to consent: `consent_required` to the client.
    ConsentRequired,
    /// Ask for the second factor of the signed-in user.
    SecondFactor,
    /// A second factor is required and the user has none: set one up first.
    EnrolFactor,
    /// `prompt=none`, but the user would have to prove a second factor: `interaction_required`.
    InteractionRequired,
    /// Issue the code.
    Issue,
}

/// What the request is decided on, besides the pending request itself.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// When the browser's session signed in; `None` without a usable session.
    pub session_auth_time: Option<UnixTime>,
    /// Who that session is; consent given in this request counts only for that user.
    pub session_sub: Option<&'a str>,
    /// Scopes the user allowed this client before. Only read when consent can be needed
    /// (`consent_needs_record`); anything less than the truth leads to asking, never to skipping.
    pub consented_scopes: &'a [String],
    /// First-party clients never ask for consent.
    pub first_party: bool,
    pub second_factor: SecondFactorFacts,
    pub now: UnixTime,
}

/// What decides whether the sign-in needs a second factor now.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecondFactorFacts {
    /// Required by configuration, by the client, or asked for with `acr_values`.
    pub required: bool,
    /// The user has a confirmed factor: then it is always asked, required or not.
    pub enrolled: bool,
    /// When the browser's session last proved one.
    pub proven_at: Option<UnixTime>,
}

/// Whether `decide` will read `sub`'s consent record (so the caller need not load it).
pub fn consent_needs_record(pending: &PendingAuthorization, first_party: bool, sub: Option<&str>) -> bool {
    !first_party && (sub.is_none() || pending.consented_by.as_deref() != sub)
}

pub fn decide(pending: &PendingAuthorization, facts: Facts<'_>) -> Step {
    let Some(auth_time) = facts.session_auth_time else {
        return if pending.prompt.none { Step::LoginRequired } else { Step::Login };
    };
    // A sign-in during this very request satisfies `prompt=login` and `max_age` (no loop).
    let signed_in_here = pending.logged_in_at.is_some_and(|at| auth_time >= at);
    let too_old = pending.max_age.is_some_and(|max| facts.now - auth_time > max);
    if !signed_in_here && (pending.prompt.login || too_old) {
        return if pending.prompt.none { Step::LoginRequired } else { Step::Login };
    }
    let factor = facts.second_factor;
    if factor.required || factor.enrolled {
        // Proven during this very request, or recently enough for `max_age`.
        let proven_here = pending.factor_proven_at.is_some_and(|at| factor.proven_at.is_some_and(|p| p >= at));
        let fresh = factor.proven_at.is_some_and(|at| pending.max_age.is_none_or(|max| facts.now - at <= max));
        if !proven_here && !fresh {
            return match (pending.prompt.none, factor.enrolled) {
                (true, _) => Step::InteractionRequired,
                (false, true) => Step::SecondFactor,
                (false, false) => Step::EnrolFactor,
            };
        }
    }
    if consent_needs_record(pending, facts.first_party, facts.session_sub) {
        let covered = pending.scopes.iter().all(|s| facts.consented_scopes.contains(s));
        if pending.prompt.consent || !covered {
            return if pending.prompt.none { Step::ConsentRequired } else { Step::Consent };
        }
    }
    Step::Issue
}

#[cfg(test)]
mod tests {
    use super::super::checks::{Prompt, ResponseMode};
    use super::*;

    const NOW: UnixTime = 1_000_000;

    fn pending(prompt: &str, max_age: Option<i64>) -> PendingAuthorization {
        PendingAuthorization {
            client_id: "app".into(),
            redirect_uri: "https://app.example.com/cb".into(),
            redirect_uri_given: true,
            scopes: vec!["openid".into(), "email".into()],
            state: None,
            nonce: None,
            code_challenge: None,
            response_mode: ResponseMode::Query,
            prompt: Prompt { none: prompt.contains("none"), login: prompt.contains("login"), consent: prompt.contains("consent") },
            max_age,
            login_hint: None,
            created_at: NOW - 30,
            csrf: "c".into(),
            logged_in_at: None,
            consented_by: None,
            browser: String::new(),
            acr_values: None,
            factor_proven_at: None,
            idp_hint: None,
            dpop_jkt: None,
            device: None,
        }
    }

    fn pending_with_consent(prompt: &str, by: &str) -> PendingAuthorization {
        PendingAuthorization { consented_by: Some(by.into()), ..pending(prompt, None) }
    }

    fn scopes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn facts(session: Option<UnixTime>, consented: &[String]) -> Facts<'_> {
        Facts { session_auth_time: session, session_sub: session.map(|_| "alice"), consented_scopes: consented, first_party: false, second_factor: SecondFactorFacts::default(), now: NOW }
    }

    #[test]
    fn without_a_session_the_user_signs_in_unless_prompt_is_none() {
        let all = scopes(&["openid", "email"]);
        for prompt in ["", "login", "consent", "login consent"] {
            assert_eq!(decide(&pending(prompt, None), facts(None, &all)), Step::Login, "prompt={prompt}");
        }
        assert_eq!(decide(&pending("none", None), facts(None, &all)), Step::LoginRequired);
        assert_eq!(decide(&pending("none", Some(600)), facts(None, &all)), Step::LoginRequired);
    }

    #[test]
    fn prompt_login_asks_once_then_accepts_the_fresh_sign_in() {
        let all = scopes(&["openid", "email"]);
        let mut p = pending("login", None);
        assert_eq!(decide(&p, facts(Some(NOW - 5), &all)), Step::Login, "an older session does not count");
        p.logged_in_at = Some(NOW - 2);
        assert_eq!(decide(&p, facts(Some(NOW - 2), &all)), Step::Issue, "signed in during this request");
        assert_eq!(decide(&p, facts(Some(NOW - 5), &all)), Step::Login, "the session predates that sign-in");
    }

    #[test]
    fn max_age_forces_a_fresh_sign_in_when_the_session_is_older() {
        let all = scopes(&["openid", "email"]);
        assert_eq!(decide(&pending("", Some(60)), facts(Some(NOW - 60), &all)), Step::Issue, "exactly max_age is still fresh");
        assert_eq!(decide(&pending("", Some(60)), facts(Some(NOW - 61), &all)), Step::Login);
        assert_eq!(decide(&pending("none", Some(60)), facts(Some(NOW - 61), &all)), Step::LoginRequired);
        assert_eq!(decide(&pending("", Some(0)), facts(Some(NOW - 1), &all)), Step::Login, "max_age=0 means sign in now");
        let mut p = pending("", Some(0));
        p.logged_in_at = Some(NOW);
        assert_eq!(decide(&p, facts(Some(NOW), &all)), Step::Issue, "and a sign-in during this request is enough");
        assert_eq!(decide(&pending("", None), facts(Some(NOW - 86_400), &all)), Step::Issue, "no max_age: any live session");
    }

    #[test]
    fn consent_is_asked_for_what_was_not_allowed_before() {
        let none: Vec<String> = vec![];
        let some = scopes(&["openid"]);
        let all = scopes(&["openid", "email", "profile"]);
        let session = Some(NOW - 10);
        assert_eq!(decide(&pending("", None), facts(session, &none)), Step::Consent);
        assert_eq!(decide(&pending("", None), facts(session, &some)), Step::Consent, "email was never allowed");
        assert_eq!(decide(&pending("", None), facts(session, &all)), Step::Issue);
        assert_eq!(decide(&pending("none", None), facts(session, &some)), Step::ConsentRequired);
        assert_eq!(decide(&pending("none", None), facts(session, &all)), Step::Issue);
        assert_eq!(decide(&pending("consent", None), facts(session, &all)), Step::Consent, "prompt=consent asks again");
    }

    #[test]
    fn consent_given_in_this_request_or_a_first_party_client_skips_the_page() {
        let none: Vec<String> = vec![];
        let session = Some(NOW - 10);
        let mut p = pending("consent", None);
        p.consented_by = Some("alice".into());
        assert_eq!(decide(&p, facts(session, &none)), Step::Issue, "no loop after allowing");
        let mallory = Facts { session_sub: Some("mallory"), ..facts(session, &none) };
        assert_eq!(decide(&p, mallory), Step::Consent, "alice's consent in this request is not mallory's");
        let mallory_none = Facts { session_sub: Some("mallory"), ..facts(session, &none) };
        assert_eq!(decide(&pending_with_consent("none consent", "alice"), mallory_none), Step::ConsentRequired);
        let first_party = Facts { first_party: true, ..facts(session, &none) };
        assert_eq!(decide(&pending("", None), first_party), Step::Issue);
        assert_eq!(decide(&pending("consent", None), first_party), Step::Issue);
        assert!(!consent_needs_record(&pending("", None), true, Some("alice")));
        assert!(!consent_needs_record(&p, false, Some("alice")));
        assert!(consent_needs_record(&p, false, Some("mallory")));
        assert!(consent_needs_record(&pending("", None), false, Some("alice")));
    }

    #[test]
    fn login_comes_before_consent() {
        let none: Vec<String> = vec![];
        assert_eq!(decide(&pending("none", Some(60)), facts(Some(NOW - 100), &none)), Step::LoginRequired);
        assert_eq!(decide(&pending("", Some(60)), facts(Some(NOW - 100), &none)), Step::Login);
    }

    fn with_factor(consented: &[String], required: bool, enrolled: bool, proven_at: Option<UnixTime>) -> Facts<'_> {
        Facts { second_factor: SecondFactorFacts { required, enrolled, proven_at }, ..facts(Some(NOW - 10), consented) }
    }

    #[test]
    fn a_second_factor_is_asked_when_required_or_enrolled_and_not_yet_proven() {
        let all = scopes(&["openid", "email"]);
        let p = pending("", None);
        assert_eq!(decide(&p, with_factor(&all, false, false, None)), Step::Issue, "neither required nor enrolled");
        assert_eq!(decide(&p, with_factor(&all, false, true, None)), Step::SecondFactor, "an enrolled user always proves it");
        assert_eq!(decide(&p, with_factor(&all, true, true, None)), Step::SecondFactor);
        assert_eq!(decide(&p, with_factor(&all, true, false, None)), Step::EnrolFactor, "required but none set up: enrol first");
        assert_eq!(decide(&p, with_factor(&all, true, true, Some(NOW - 5))), Step::Issue, "the session proved it");
        assert_eq!(decide(&pending("none", None), with_factor(&all, true, true, None)), Step::InteractionRequired);
        assert_eq!(decide(&pending("none", None), with_factor(&all, true, false, None)), Step::InteractionRequired);
    }

    #[test]
    fn max_age_asks_for_a_fresh_second_factor_too() {
        let all = scopes(&["openid", "email"]);
        let mut p = pending("", Some(60));
        // The password sign-in is fresh (10 s), the second factor an hour old.
        assert_eq!(decide(&p, with_factor(&all, true, true, Some(NOW - 3600))), Step::SecondFactor);
        assert_eq!(decide(&p, with_factor(&all, true, true, Some(NOW - 30))), Step::Issue);
        p.factor_proven_at = Some(NOW - 1);
        assert_eq!(decide(&p, with_factor(&all, true, true, Some(NOW - 1))), Step::Issue, "proven during this request: no loop");
        p.max_age = Some(0);
        assert_eq!(decide(&p, Facts { session_auth_time: Some(NOW), ..with_factor(&all, true, true, Some(NOW - 1)) }), Step::Issue);
    }

    #[test]
    fn sign_in_then_second_factor_then_consent() {
        let none: Vec<String> = vec![];
        assert_eq!(decide(&pending("", None), Facts { session_auth_time: None, ..with_factor(&none, true, true, None) }), Step::Login);
        assert_eq!(decide(&pending("", None), with_factor(&none, true, true, None)), Step::SecondFactor);
        assert_eq!(decide(&pending("", None), with_factor(&none, true, true, Some(NOW))), Step::Consent);
    }
}
