//! Process faults, on the real `sesame serve` binary: a stop asked for (SIGTERM, SIGINT) drains
//! without failing a request; a crash (SIGKILL) loses nothing that was acknowledged.

pub mod crash;
pub mod drain;

use crate::support::harness::Tests;

pub fn tests(t: &mut Tests) {
    crash::tests(t);
    drain::tests(t);
}
