#!/usr/bin/env bash
# The kill -9 fault loop: starts the real `didban serve` with head cuts, block writes,
# compactions, retention, span-block writes and log-index commits every second or so, feeds it
# metrics, logs and traces, kills it with SIGKILL at random moments (also during start-up),
# restarts it and checks that every start succeeds and every acknowledged sample, log record
# and span is queryable exactly once. Prints a summary; exits non-zero on the first failure.
#
#   scripts/kill9.sh [iterations]          (default 100)
#
# The loop is the ignored test `kill9_loop` of cli/tests/it (kill9_loop.rs). Environment:
# KILL9_SEED (repeat a run's kill moments; every run prints its seed), KILL9_RELEASE=1 (build
# and test the release binary instead of the debug one), CARGO_TARGET_DIR as usual.
set -euo pipefail

cd "$(dirname "$0")/.."
iterations=${1:-100}
if ! [[ $iterations =~ ^[0-9]+$ ]] || [[ $iterations == 0 ]]; then
    echo "iterations must be a positive whole number, not '$iterations'" >&2
    exit 2
fi
export KILL9_ITERATIONS=$iterations
if [[ ${KILL9_RELEASE:-0} == 1 ]]; then
    cargo build --release -p didban-cli
    export DIDBAN_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/didban"
fi
exec cargo test -p didban-cli --test it kill9_loop::kill9_loop -- --exact --ignored --nocapture
