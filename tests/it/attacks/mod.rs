//! The adversarial suite: attacks on the running server, as an outsider would make them. Each
//! test fails without the defence it names.

pub mod audience;
pub mod browser_binding;
pub mod brute_force;
pub mod credentials;
pub mod enumeration;
pub mod hostile_jwks;
pub mod oversized;
pub mod replay;

use crate::support::harness::Tests;

pub fn tests(t: &mut Tests) {
    audience::tests(t);
    browser_binding::tests(t);
    brute_force::tests(t);
    credentials::tests(t);
    enumeration::tests(t);
    hostile_jwks::tests(t);
    oversized::tests(t);
    replay::tests(t);
}
