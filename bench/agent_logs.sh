#!/usr/bin/env bash
# Agent log-parsing footprint (issue 12): CPU and peak RSS of `didban-agent` tailing four files
# growing by 1,000 lines/s each (nginx combined access log, Django with a traceback every 100
# records, Celery, gunicorn), every line parsed (format "auto": severity, timestamp, trace ids,
# HTTP attributes) and shipped, no other collector. Prints one table; figures go to
# docs/benchmarks.md. bench/agent.sh measures the same files with every collector on.
#
#   bench/agent_logs.sh [SECONDS] [LINES_PER_SECOND_PER_FILE]   # default 120, 1000
#   BASE_AGENT_BIN=/path/to/old/didban-agent bench/agent_logs.sh  # both builds, one window
#
# Needs a release didban-agent ($AGENT_BIN, default <target>/release/didban-agent; built if
# missing). The agent ships to a second agent acting as an OTLP sink (its local receiver), so
# export cost is included.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-120}
RATE=${2:-1000}
source bench/agent_common.sh

agent_config() {
  cat <<TOML
[agent]
data_dir = "$1"
[export]
endpoint = "http://127.0.0.1:$SINK_GRPC"
[host]
enabled = false
[[logs]]
paths = ["$WORK/logs/*.log"]
service = "bench-app"
TOML
}

start_sink
start_agents
sleep 1
start_log_writer "$WORK/logs" "$RATE" "$((DURATION + 15))"

sleep 10 # warm-up
MEASURED=("$AGENT_PID" ${BASE_PID:+"$BASE_PID"})
window_start "${MEASURED[@]}"; L0=$(count_lines "$WORK/logs")
sleep "$DURATION"
window_end "${MEASURED[@]}"; L1=$(count_lines "$WORK/logs")

echo "window: $DURATION s, $(((L1 - L0) / DURATION)) lines/s written over 4 files; 4 tailed files, parsing on, export"
window_header
agent_rows "$DURATION"
agent_warnings
