#!/usr/bin/env bash
# A rolling restart measured: the test tests/it/faults/rolling_restart.rs, on the release build of
# sesame and with longer phases. Three `sesame serve` nodes (PostgreSQL on 127.0.0.1:5432, database
# `test`, a fresh schema; a private redis-server) behind nginx round robin carry a mixed load
# through nginx (7 tasks, one request after the other each: client_credentials x2, refresh
# rotations of 2 chains, JWT introspection, discovery/JWKS GETs, API-key introspection). Each
# node in turn gets SIGTERM, drains 1 s, exits, starts again on its port, and serves through
# nginx again for PHASE before the next goes. Prints one line: requests served, failed, and
# throughput before, during each restart, and after; and how many requests nginx passed on to
# another node after a refused connection. It fails if any request failed.
#
# The load generator is the test binary (a debug build), on the same 2 cores as everything else.
#
#   bench/rolling_restart.sh [PHASE]    PHASE: a duration, default 10s
set -euo pipefail
cd "$(dirname "$0")/.."
phase=${1:-10s}
target=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --release --locked --bin sesame
# Every dependency must be here: a missing one fails the run instead of skipping it.
SESAME_TEST_REQUIRE_ALL=1 \
SESAME_TEST_TIMEOUT_SECS=3600 \
SESAME_ROLLING_RESTART_BINARY="$target/release/sesame" \
SESAME_ROLLING_RESTART_PHASE="$phase" \
  cargo test --locked --test it -- --exact faults::rolling_restart_behind_nginx_fails_no_request --nocapture 2>&1 \
  | grep -v '^missing: '
