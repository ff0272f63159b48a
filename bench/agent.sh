#!/usr/bin/env bash
# Agent footprint benchmark (issue 4): CPU and peak RSS of `didban-agent` with every collector
# on at a 10 s interval, side by side with Debian's prometheus-node-exporter doing the host
# part, over the same window. Prints one table; figures go to docs/benchmarks.md.
#
#   bench/agent.sh [SECONDS]            # default 300
#
# Needs: a release didban-agent ($AGENT_BIN, default <target>/release/didban-agent; built if
# missing), prometheus-node-exporter (apt), PostgreSQL on 127.0.0.1:5432 (user postgres) and
# Redis on 127.0.0.1:6379, as on the dev machines. The agent ships to a second agent acting as
# an OTLP sink (its local receiver), so export cost is included and nothing else is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-300}
TARGET=${CARGO_TARGET_DIR:-target}
AGENT_BIN=${AGENT_BIN:-$TARGET/release/didban-agent}
NODE_EXPORTER=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
if [ ! -x "$AGENT_BIN" ]; then
  cargo build --release -p didban-agent --bin didban-agent
fi
[ -x "$NODE_EXPORTER" ] || { echo "install prometheus-node-exporter (apt-get install prometheus-node-exporter)" >&2; exit 1; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NE_PORT=$(free_port); SINK_GRPC=$(free_port); SINK_HTTP=$(free_port); STATSD_PORT=$(free_port)

# The sink: a second agent with only its local receiver on; its own exports go nowhere.
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
interval = "10s"
[export]
endpoint = "http://127.0.0.1:$SINK_GRPC"
[host]
enabled = true
[[host.process_groups]]
name = "postgres"
pattern = "postgres"
[[host.process_groups]]
name = "redis"
pattern = "redis-server"
[[scrape]]
job = "node"
targets = ["127.0.0.1:$NE_PORT"]
[[redis]]
url = "redis://127.0.0.1:6379/0"
celery_queues = ["celery", "emails"]
[[postgres]]
dsn = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
[[probe]]
target = "http://127.0.0.1:$NE_PORT/metrics"
[[probe]]
target = "tcp://127.0.0.1:5432"
[statsd]
enabled = true
listen = "127.0.0.1:$STATSD_PORT"
[[logs]]
paths = ["$WORK/logs/*.log"]
service = "bench-app"
TOML

"$NODE_EXPORTER" --web.listen-address="127.0.0.1:$NE_PORT" >"$WORK/ne.log" 2>&1 & PIDS+=($!); NE_PID=$!
"$AGENT_BIN" --config "$WORK/sink.toml" >"$WORK/sink.log" 2>&1 & PIDS+=($!)
sleep 1
"$AGENT_BIN" --config "$WORK/agent.toml" >"$WORK/agent.log" 2>&1 & PIDS+=($!); AGENT_PID=$!

# Background load the agent handles: 10 log lines/s and 20 StatsD packets/s.
python3 - "$WORK/logs/app.log" "$STATSD_PORT" "$DURATION" >/dev/null 2>&1 <<'PY' & PIDS+=($!)
import socket, sys, time
path, port, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) + 15
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + duration
n = 0
with open(path, "a", buffering=1) as f:
    while time.time() < end:
        for _ in range(10):
            f.write(f"2026-11-26 10:00:00 INFO request GET /products/{n} 200 12ms\n"); n += 1
        for i in range(20):
            s.sendto(f"shop.requests:1|c|#route:/p{i % 5}".encode(), ("127.0.0.1", port))
            s.sendto(f"shop.latency:{i}|ms".encode(), ("127.0.0.1", port))
        time.sleep(1)
PY

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
TICK=$(getconf CLK_TCK)

sleep 15 # warm-up: first collections, connections opened
A0=$(cpu_ticks "$AGENT_PID"); N0=$(cpu_ticks "$NE_PID")
# node_exporter does its work when scraped; the agent's [[scrape]] job scrapes it every 10 s.
sleep "$DURATION"
A1=$(cpu_ticks "$AGENT_PID"); N1=$(cpu_ticks "$NE_PID")
kill -0 "$AGENT_PID" || { echo "agent died:"; cat "$WORK/agent.log"; exit 1; }

python3 - "$DURATION" "$TICK" "$A0" "$A1" "$(hwm_kb "$AGENT_PID")" "$(rss_kb "$AGENT_PID")" \
  "$N0" "$N1" "$(hwm_kb "$NE_PID")" "$(rss_kb "$NE_PID")" <<'PY'
import sys
d, tick = float(sys.argv[1]), float(sys.argv[2])
a0, a1, ahwm, arss, n0, n1, nhwm, nrss = map(float, sys.argv[3:])
def row(name, c0, c1, hwm, rss):
    cpu = (c1 - c0) / tick
    print(f"| {name} | {cpu:.2f} s | {100 * cpu / d:.3f} % | {hwm / 1024:.1f} MiB | {rss / 1024:.1f} MiB |")
print(f"window: {d:.0f} s, every collector at 10 s")
print("| process | CPU time | % of one core | peak RSS | RSS at end |")
print("|---|---|---|---|---|")
row("didban-agent (host, scrape, redis+celery, postgres, 2 probes, statsd, log tail, export)", a0, a1, ahwm, arss)
row("prometheus-node-exporter (host only, scraped every 10 s)", n0, n1, nhwm, nrss)
PY
grep -ci "warn\|error" "$WORK/agent.log" >/dev/null && { echo "agent warnings/errors:"; grep -i "warn\|error" "$WORK/agent.log" | head -5; } || true
