# Shared part of the agent benchmarks (bench/agent.sh, bench/agent_logs.sh); sourced, not run.
#
# Gives: the agent binaries (AGENT_BIN, and BASE_AGENT_BIN when set: a previous build measured
# side by side in the same window), a temp dir WORK cleaned up with every process started
# through `bg`, the OTLP sink (a second agent with only its receiver on), the writer growing
# four log files at a steady rate, and the sampling of CPU time (/proc/PID/stat utime+stime)
# and peak RSS (VmHWM) over a window.

TARGET=${CARGO_TARGET_DIR:-target}
AGENT_BIN=${AGENT_BIN:-$TARGET/release/didban-agent}
BASE_AGENT_BIN=${BASE_AGENT_BIN:-}
# A command the measured agent (this build) runs under, word-split, empty = none. For
# instruction counts over the window (load-independent, unlike CPU time):
# AGENT_PREFIX="valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/tmp/cg.%p"
# (children traced: the agent re-executes itself once to set its malloc variables).
AGENT_PREFIX=${AGENT_PREFIX:-}
if [ ! -x "$AGENT_BIN" ]; then
  cargo build --release -p didban-agent --bin didban-agent
fi
if [ -n "$BASE_AGENT_BIN" ] && [ ! -x "$BASE_AGENT_BIN" ]; then
  echo "BASE_AGENT_BIN=$BASE_AGENT_BIN is not an executable" >&2
  exit 1
fi

WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
# Commands run at exit before the processes are killed (servers stopped by their own tools).
CLEANUP_HOOKS=()
cleanup() {
  for h in "${CLEANUP_HOOKS[@]}"; do eval "$h" >/dev/null 2>&1 || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to $2 seconds for `bash -c "$1"` to succeed; fails the run naming $3 otherwise.
wait_for() {
  local i
  for ((i = 0; i < $2 * 2; i++)); do
    if bash -c "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "$3 did not come up within $2 s" >&2
  exit 1
}

# The sink: an agent with only its local receiver on; its own exports go nowhere.
# Sets SINK_GRPC.
start_sink() {
  SINK_GRPC=$(free_port)
  local http
  http=$(free_port)
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
http_listen = "127.0.0.1:$http"
TOML
  "$AGENT_BIN" --config "$WORK/sink.toml" >"$WORK/sink.log" 2>&1 &
  PIDS+=($!)
  wait_for "exec 3<>/dev/tcp/127.0.0.1/$SINK_GRPC" 30 "the OTLP sink"
}

# Starts `$1` (a binary) with the config `$2`, under the words of `$3` when given; sets
# STARTED_PID.
start_agent() {
  # shellcheck disable=SC2086 # the prefix is a command and its arguments
  ${3:-} "$1" --config "$2" >"${2%.toml}.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=($STARTED_PID)
}

# The agents measured: AGENT_PID (this build) and BASE_PID (BASE_AGENT_BIN, when given), each
# with the config the caller's `agent_config DATA_DIR WHICH` prints (WHICH: main or base).
start_agents() {
  agent_config "$WORK/agent" main >"$WORK/agent.toml"
  start_agent "$AGENT_BIN" "$WORK/agent.toml" "$AGENT_PREFIX"
  AGENT_PID=$STARTED_PID
  BASE_PID=""
  if [ -n "$BASE_AGENT_BIN" ]; then
    agent_config "$WORK/base" base >"$WORK/base.toml"
    start_agent "$BASE_AGENT_BIN" "$WORK/base.toml"
    BASE_PID=$STARTED_PID
  fi
}

# Grows four files in `$1` by `$2` records/s each for `$3` s: an nginx `combined` access log
# with 4xx/5xx, Django lines with trace ids and a 5-line traceback every 100 records, Celery,
# gunicorn. Every 100 ms, a tenth of a second's records go to each file.
start_log_writer() {
  mkdir -p "$1"
  python3 - "$1" "$2" "$3" >"$WORK/writer.log" 2>&1 <<'PY' &
import os, sys, time
from datetime import datetime, timezone
out, rate, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
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
  PIDS+=($!)
}

# Lines in the files of directory `$1`.
count_lines() { cat "$1"/*.log 2>/dev/null | wc -l; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
TICK=$(getconf CLK_TCK)

# Window sampling: `window_start PID…`, sleep, `window_end PID…`, then `window_row LABEL PID`
# for each (after window_end). Fails the run if a measured process died.
declare -A TICKS0 TICKS1 HWM RSS
# Under AGENT_PREFIX=…callgrind… the counts cover the window: zeroed at its start (-z) and
# dumped at its end (-d, to the --callgrind-out-file name with a suffix).
callgrind_window() {
  case "$AGENT_PREFIX" in
    *callgrind*) callgrind_control "$1" "$AGENT_PID" >/dev/null 2>&1 ;;
  esac
}
window_start() {
  local p
  callgrind_window -z
  for p in "$@"; do TICKS0[$p]=$(cpu_ticks "$p"); done
}
window_end() {
  local p
  for p in "$@"; do
    if ! kill -0 "$p" 2>/dev/null; then
      echo "process $p died during the window" >&2
      tail -20 "$WORK"/*.log >&2
      exit 1
    fi
    TICKS1[$p]=$(cpu_ticks "$p")
    HWM[$p]=$(hwm_kb "$p")
    RSS[$p]=$(rss_kb "$p")
  done
  callgrind_window -d
}
window_header() {
  echo "| process | CPU time | % of one core | peak RSS | RSS at end |"
  echo "|---|---|---|---|---|"
}
# `window_row LABEL PID SECONDS`
window_row() {
  awk -v name="$1" -v t0="${TICKS0[$2]}" -v t1="${TICKS1[$2]}" -v tick="$TICK" -v d="$3" \
    -v hwm="${HWM[$2]}" -v rss="${RSS[$2]}" 'BEGIN {
      cpu = (t1 - t0) / tick
      printf "| %s | %.2f s | %.3f %% | %.1f MiB | %.1f MiB |\n", name, cpu, 100 * cpu / d, hwm / 1024, rss / 1024
    }'
}
# The rows of the agents started by start_agents.
agent_rows() {
  window_row "didban-agent ($AGENT_BIN)" "$AGENT_PID" "$1"
  if [ -n "$BASE_PID" ]; then window_row "didban-agent, base ($BASE_AGENT_BIN)" "$BASE_PID" "$1"; fi
}
# Warnings and errors the measured agents logged.
agent_warnings() {
  local f
  for f in "$WORK/agent.log" "$WORK/base.log"; do
    [ -f "$f" ] || continue
    if grep -qi "warn\|error" "$f"; then
      echo "$(basename "$f"): warnings/errors:"
      grep -i "warn\|error" "$f" | head -5
    fi
  done
}
