#!/usr/bin/env bash
# Builds the release binaries (didban, didban-bench) and runs the default side-by-side
# benchmark against Debian's Prometheus and VictoriaMetrics. Extra arguments go to
# didban-bench, e.g.
#   bench/run.sh --span 24h --hosts 64
#   bench/run.sh --targets prometheus,victoriametrics
#   bench/run.sh --mode series-memory --hosts 207
# Results: a table on stdout and JSON in $BENCH_JSON (default <target dir>/bench-results.json).
# See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
[ -x /usr/bin/victoria-metrics ] || missing+=(victoria-metrics)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    # The packages enable system services; this benchmark starts its own instances.
  else
    echo "Missing: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p didban-cli --bin didban -p didban-bench --bin didban-bench
exec "$target/release/didban-bench" \
  --didban-bin "$target/release/didban" \
  --json "${BENCH_JSON:-$target/bench-results.json}" \
  "$@"
