//! The fault suite: real stores stopped, cut off and blackholed under load, and the real
//! `sesame serve` binary stopped (SIGTERM drains without failing a request) and killed (SIGKILL
//! loses nothing acknowledged), and a rolling restart of three nodes behind nginx (no request
//! fails). Each test asserts the answers during the fault, the time to
//! answer and to recover, and that nothing acknowledged was lost.

pub mod crash;
pub mod drain;
pub mod outages;
pub mod rolling_restart;

use crate::support::harness::Tests;

pub fn tests(t: &mut Tests) {
    crash::tests(t);
    drain::tests(t);
    outages::tests(t);
    rolling_restart::tests(t);
}
