#!/usr/bin/env bash
# The test command (README "Test"): installs what the tests need, then runs the same
# checks CI runs. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python clients and servers used by the end-to-end tests (OpenTelemetry SDK, pyarrow, aiosmtpd).
python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
