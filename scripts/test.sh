#!/usr/bin/env bash
# The test command (README "Test"): installs what the tests need, then runs the same
# checks CI runs. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python clients and servers used by the end-to-end tests (OpenTelemetry SDK, pyarrow, aiosmtpd).
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt

# A real Prometheus remote-writes into Didban in cli/tests/it/prometheus_remote_write.rs.
if ! command -v prometheus >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus
fi

# alerting/tests/it/email_tls.rs makes a test CA and server certificate with openssl.
if ! command -v openssl >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends openssl
fi

# agent/tests/it/nginx.rs and pgbouncer.rs start a real nginx (stub_status) and a real
# PgBouncer in front of the test PostgreSQL (testkit/src/{nginx,pgbouncer}.rs);
# cli/tests/it/ingest_log.rs a private nats-server with JetStream (testkit/src/nats.rs).
for tool in nginx pgbouncer nats-server; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "$tool"
  fi
done

# cli/tests/it/ui_browser.rs drives the UI in headless Chromium through Playwright
# (tests/requirements.txt), using Debian's chromium so no browser download is needed.
if ! command -v chromium >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium
fi
# Chromium is installed now: the browser test must run, never skip.
export DIDBAN_REQUIRE_BROWSER=1

# store/tests/it/object_storage.rs runs a three-node Garage cluster, the S3-compatible store
# (testkit/src/garage.rs). Garage ships no Debian package: it is built from crates.io once
# (docs/deployment.md says how long that takes here) and kept in ~/.cargo/bin.
if ! command -v garage >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/garage" ]; then
  cargo install --locked garage
fi

cargo fmt --all -- --check
# No module imports a parent module that imports it (docs/architecture.md).
for src in */src; do
  python3 scripts/module_cycles.py "$src" --check >/dev/null || {
    python3 scripts/module_cycles.py "$src" --check
    exit 1
  }
done
cargo clippy --workspace --all-targets -- -D warnings
# Examples are type-checked by clippy above and not built again here (each would link the
# whole stack). cargo-nextest runs the test binaries side by side (.config/nextest.toml);
# without it, cargo test runs the same tests one binary after another.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --lib --bins --tests
else
  cargo test --workspace --lib --bins --tests
fi

# The Debian packages, made from the debug binaries just built: installed, run as their
# services would run, upgraded, removed and purged (docs/install.md, "The package test").
scripts/package_test.sh
