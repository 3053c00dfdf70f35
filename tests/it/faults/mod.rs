//! The fault suite: real stores stopped, cut off and blackholed under load, real processes
//! killed. Each test asserts the answers during the fault, the time to answer and to recover,
//! and that nothing acknowledged was lost.

pub mod outages;

use crate::support::harness::Tests;

pub fn tests(t: &mut Tests) {
    outages::tests(t);
}
