//! The adversarial suite: attacks on the running server, as an outsider would make them. Each
//! test fails without the defence it names.

pub mod audience;
pub mod authority;
pub mod browser_binding;
pub mod brute_force;
pub mod credentials;
pub mod enumeration;
pub mod forged_tokens;
pub mod hostile_jwks;
pub mod metrics_labels;
pub mod oversized;
pub mod replay;
pub mod revocation;

use crate::support::harness::Tests;

pub fn tests(t: &mut Tests) {
    audience::tests(t);
    authority::tests(t);
    browser_binding::tests(t);
    brute_force::tests(t);
    credentials::tests(t);
    enumeration::tests(t);
    forged_tokens::tests(t);
    hostile_jwks::tests(t);
    metrics_labels::tests(t);
    oversized::tests(t);
    replay::tests(t);
    revocation::tests(t);
}
