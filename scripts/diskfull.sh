#!/usr/bin/env bash
# Fault injection by hand: runs `didban serve` on a small tmpfs, fills the disk while
# clients push OTLP samples (one new series per request), frees it again, and prints what
# happened: how ingest and /-/ready answered during the fault, how long recovery took,
# whether SIGTERM after the fault exits 0 and whether every acknowledged sample is
# queryable after a restart. Exits non-zero when any of that is wrong.
#
#   scripts/diskfull.sh [path/to/didban]     (default: target/release/didban, else debug)
#
# Needs root (mount -t tmpfs), curl and python3. Ports: DIDBAN_HTTP_PORT (19090),
# DIDBAN_OTLP_HTTP_PORT (19318), DIDBAN_OTLP_GRPC_PORT (19317).
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-}"
if [ -z "$bin" ]; then
  bin="${CARGO_TARGET_DIR:-target}/release/didban"
  [ -x "$bin" ] || bin="${CARGO_TARGET_DIR:-target}/debug/didban"
fi
[ -x "$bin" ] || { echo "no didban binary at $bin (cargo build first)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "SKIPPED: mounting a tmpfs needs root" >&2; exit 0; }

http_port="${DIDBAN_HTTP_PORT:-19090}"
otlp_port="${DIDBAN_OTLP_HTTP_PORT:-19318}"
grpc_port="${DIDBAN_OTLP_GRPC_PORT:-19317}"
mnt="$(mktemp -d)"
log="$(mktemp)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  umount -l "$mnt" 2>/dev/null || true
  rmdir "$mnt" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT
mount -t tmpfs -o size=48m tmpfs "$mnt"

start() {
  DIDBAN_LOG=warn "$bin" serve --data-dir "$mnt/data" --no-host-metrics \
    --http-addr "127.0.0.1:$http_port" --otlp-http-addr "127.0.0.1:$otlp_port" \
    --otlp-grpc-addr "127.0.0.1:$grpc_port" >>"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    [ "$(ready_status)" = 200 ] && return 0
    kill -0 "$pid" 2>/dev/null || { echo "didban exited at start:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "didban not ready after 60 s" >&2
  exit 1
}
ready_status() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/-/ready" || true; }

t0=$(( $(date +%s%3N) - 60000 ))
# Pushes sample $1 (series service=svc-$1); prints "<status> <retry-after>".
push() {
  local i=$1 ns=$(( (t0 + $1) * 1000000 ))
  local body="{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"svc-$i\"}}]},\"scopeMetrics\":[{\"metrics\":[{\"name\":\"diskfull_sample\",\"gauge\":{\"dataPoints\":[{\"timeUnixNano\":\"$ns\",\"asDouble\":$i}]}}]}]}]}"
  curl -s -D - -o /dev/null -H 'content-type: application/json' --data "$body" \
    "http://127.0.0.1:$otlp_port/v1/metrics" |
    awk 'NR==1{s=$2} tolower($1)=="retry-after:"{r=$2} END{gsub(/\r/,"",r); print s, (r==""?"-":r)}'
}
stored() {
  curl -s "http://127.0.0.1:$http_port/api/v1/query" \
    --data-urlencode 'query=count(last_over_time(diskfull_sample[1h]))' \
    --data-urlencode "time=$(( (t0 + i) / 1000 + 1 ))" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)'
}

start
acked=0; i=0; refused=0; refused_retry=0; failures=0
for _ in $(seq 1 50); do
  read -r s _ < <(push $i); i=$((i + 1)); [ "$s" = 200 ] && acked=$((acked + 1))
done
acked_before_fill=$acked

dd if=/dev/zero of="$mnt/filler" bs=64k 2>/dev/null || true   # until ENOSPC
while :; do
  read -r s r < <(push $i); i=$((i + 1))
  if [ "$s" = 200 ]; then acked=$((acked + 1)); continue; fi
  [ "$s" = 503 ] || { echo "unexpected status $s while the disk fills" >&2; failures=$((failures + 1)); }
  refused=$((refused + 1)); [ "$r" != "-" ] && refused_retry=$((refused_retry + 1))
  break
done
ready_during="$(curl -s -w '(HTTP %{http_code})' "http://127.0.0.1:$http_port/-/ready" | tr '\n' ' ')"
for _ in $(seq 1 100); do
  read -r s r < <(push $i); i=$((i + 1))
  if [ "$s" = 200 ]; then acked=$((acked + 1)); else refused=$((refused + 1)); [ "$r" != "-" ] && refused_retry=$((refused_retry + 1)); fi
done
stored_during=$(stored)

rm -f "$mnt/filler"
freed_at=$(date +%s%3N)
while [ "$(ready_status)" != 200 ]; do
  sleep 0.05
  [ $(( $(date +%s%3N) - freed_at )) -lt 60000 ] || { echo "not ready 60 s after freeing space" >&2; exit 1; }
done
recovery_ms=$(( $(date +%s%3N) - freed_at ))
after_ok=0
for _ in $(seq 1 50); do
  read -r s _ < <(push $i); i=$((i + 1)); [ "$s" = 200 ] && { acked=$((acked + 1)); after_ok=$((after_ok + 1)); }
done
stored_before_restart=$(stored)

kill -TERM "$pid"
set +e; wait "$pid"; exit_code=$?; set -e
pid=""
start
stored_after_restart=$(stored)
kill -TERM "$pid"; wait "$pid" || true; pid=""

echo "disk-full scenario on a 48 MiB tmpfs ($bin)"
echo "  acknowledged before the disk filled:   $acked_before_fill"
echo "  refused while full:                    $refused (with Retry-After: $refused_retry)"
echo "  /-/ready while full:                   $ready_during"
echo "  series stored while full:              $stored_during (acknowledged so far: $(( acked - after_ok )))"
echo "  /-/ready 200 again after freeing:      ${recovery_ms} ms"
echo "  accepted after recovery:               $after_ok of 50"
echo "  SIGTERM exit code after the fault:     $exit_code"
echo "  acknowledged in total:                 $acked"
echo "  queryable before / after restart:      $stored_before_restart / $stored_after_restart"
ok=1
[ "$refused" -gt 0 ] && [ "$refused" = "$refused_retry" ] || ok=0
[ "$stored_during" = "$(( acked - after_ok ))" ] || ok=0
[ "$after_ok" = 50 ] && [ "$exit_code" = 0 ] && [ "$failures" = 0 ] || ok=0
[ "$stored_before_restart" = "$acked" ] && [ "$stored_after_restart" = "$acked" ] || ok=0
if [ "$ok" = 1 ]; then echo "PASS"; else echo "FAIL"; exit 1; fi
