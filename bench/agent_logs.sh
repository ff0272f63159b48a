#!/usr/bin/env bash
# Agent log-parsing footprint (issue 12): CPU and peak RSS of `didban-agent` tailing four files
# growing by 1,000 lines/s each (nginx combined access log, Django with a traceback every 100
# records, Celery, gunicorn), every line parsed (format "auto": severity, timestamp, trace ids,
# HTTP attributes) and shipped. Prints one table; figures go to docs/benchmarks.md.
#
#   bench/agent_logs.sh [SECONDS] [LINES_PER_SECOND_PER_FILE]   # default 120, 1000
#
# Needs a release didban-agent ($AGENT_BIN, default <target>/release/didban-agent; built if
# missing). The agent ships to a second agent acting as an OTLP sink (its local receiver), so
# export cost is included.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-120}
RATE=${2:-1000}
TARGET=${CARGO_TARGET_DIR:-target}
AGENT_BIN=${AGENT_BIN:-$TARGET/release/didban-agent}
if [ ! -x "$AGENT_BIN" ]; then
  cargo build --release -p didban-agent --bin didban-agent
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SINK_GRPC=$(free_port); SINK_HTTP=$(free_port)

cat >"$WORK/sink.toml" <<TOML
[agent]
data_dir = "$WORK/sink"
[export]
endpoint = "http://127.0.0.1:9"
[host]
enabled = false
[receiver]
enabled = true
grpc_listen = "127.0.0.1:$SINK_GRPC"
http_listen = "127.0.0.1:$SINK_HTTP"
TOML

mkdir -p "$WORK/logs"
cat >"$WORK/agent.toml" <<TOML
[agent]
data_dir = "$WORK/agent"
[export]
endpoint = "http://127.0.0.1:$SINK_GRPC"
[host]
enabled = false
[[logs]]
paths = ["$WORK/logs/*.log"]
service = "bench-app"
TOML

"$AGENT_BIN" --config "$WORK/sink.toml" >"$WORK/sink.log" 2>&1 & PIDS+=($!)
sleep 1
"$AGENT_BIN" --config "$WORK/agent.toml" >"$WORK/agent.log" 2>&1 & PIDS+=($!); AGENT_PID=$!
sleep 1

# The writer: every 100 ms, RATE/10 records appended to each of the four files.
python3 - "$WORK/logs" "$RATE" "$DURATION" >"$WORK/writer.log" 2>&1 <<'PY' & PIDS+=($!)
import os, sys, time
from datetime import datetime, timezone
out, rate, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) + 15
files = {n: open(os.path.join(out, n + ".log"), "a", buffering=1 << 16) for n in ("access", "django", "celery", "gunicorn")}
trace = "4bf92f3577b34da6a3ce929d0e0e4736"
end, n, per_tick = time.time() + duration, 0, max(1, rate // 10)
while time.time() < end:
    tick = time.time()
    now = datetime.now(timezone.utc)
    clf, iso, py = now.strftime("%d/%b/%Y:%H:%M:%S +0000"), now.strftime("%Y-%m-%d %H:%M:%S +0000"), now.strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    for _ in range(per_tick):
        n += 1
        status = 500 if n % 97 == 0 else (404 if n % 13 == 0 else 200)
        files["access"].write(f'203.0.113.{n % 250} - - [{clf}] "GET /api/orders/{n}?page=2 HTTP/1.1" {status} 512 "https://shop.example/" "Mozilla/5.0 (X11; Linux x86_64)" 0.0{n % 90:02d}\n')
        if n % 100 == 0:
            files["django"].write(f'{py} ERROR [shop.payments] charge failed trace_id={trace} span_id=00f067aa0ba902b7\nTraceback (most recent call last):\n  File "/srv/shop/payments.py", line 20, in charge\n    return gateway.post(payload)\nTimeoutError: gateway timed out\n')
        else:
            files["django"].write(f'INFO {py} views 4242 140211 order {n} served trace_id={trace}\n')
        files["celery"].write(f'[{py}: INFO/ForkPoolWorker-2] Task shop.tasks.send_receipt[8c1f3e2a-1b5e-4f0e-9a51-{n:012d}] succeeded in 0.0211s: None\n')
        files["gunicorn"].write(f'[{iso}] [4242] [INFO] Worker {n} handled request\n')
    for f in files.values():
        f.flush()
    time.sleep(max(0.0, 0.1 - (time.time() - tick)))
print(n)
PY

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
TICK=$(getconf CLK_TCK)

sleep 10 # warm-up
A0=$(cpu_ticks "$AGENT_PID"); L0=$(cat "$WORK"/logs/*.log | wc -l)
sleep "$DURATION"
A1=$(cpu_ticks "$AGENT_PID"); L1=$(cat "$WORK"/logs/*.log | wc -l)
kill -0 "$AGENT_PID" || { echo "agent died:"; cat "$WORK/agent.log"; exit 1; }

python3 - "$DURATION" "$TICK" "$A0" "$A1" "$(hwm_kb "$AGENT_PID")" "$(rss_kb "$AGENT_PID")" "$L0" "$L1" <<'PY'
import sys
d, tick, a0, a1, hwm, rss, l0, l1 = map(float, sys.argv[1:])
cpu = (a1 - a0) / tick
print(f"window: {d:.0f} s, {(l1 - l0) / d:.0f} lines/s written over 4 files")
print("| process | CPU time | % of one core | peak RSS | RSS at end |")
print("|---|---|---|---|---|")
print(f"| didban-agent (4 tailed files, parsing on, export) | {cpu:.2f} s | {100 * cpu / d:.2f} % | {hwm / 1024:.1f} MiB | {rss / 1024:.1f} MiB |")
PY
grep -i "warn\|error" "$WORK/agent.log" | head -5 || true
