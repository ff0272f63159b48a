#!/usr/bin/env bash
# Agent footprint with every collector on (issues 4 and 12): CPU and peak RSS of
# `didban-agent` watching a small fleet at a 10 s interval — two PostgreSQL clusters (with
# pg_stat_statements), PgBouncer in front of the first, two Redis servers with Celery queues,
# two RabbitMQ nodes (management API), nginx with stub_status, an HTTP and a TCP probe, the
# host with two process groups, StatsD at 40 packets/s, a [[scrape]] job on
# prometheus-node-exporter when it is installed — while tailing four log files that grow by
# 1,000 lines/s each (parsing on). Every server is private: started here on free ports in a
# temp dir, stopped at exit. The agent ships to a second agent acting as OTLP sink, so export
# cost is included. node_exporter (host only, scraped by the agent) is measured alongside.
#
#   bench/agent.sh [SECONDS] [LINES_PER_SECOND_PER_FILE]   # default 300, 1000
#   BASE_AGENT_BIN=/path/to/old/didban-agent bench/agent.sh  # both builds, one window
#
# Needs (Debian packages): postgresql (+ contrib for pg_stat_statements), pgbouncer,
# redis-server, rabbitmq-server (management plugin), nginx; root (servers run as their users).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-300}
RATE=${2:-1000}
NODE_EXPORTER=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
source bench/agent_common.sh

PG_BIN=/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -n | tail -1)/bin

# A PostgreSQL cluster in $WORK/pg$1 on a free port; sets PG_PORT.
start_postgres() {
  local dir="$WORK/pg$1"
  PG_PORT=$(free_port)
  mkdir -p "$dir" && chown postgres:postgres "$dir"
  runuser -u postgres -- "$PG_BIN/initdb" -A trust -U postgres --no-sync -D "$dir/data" >"$dir/initdb.log"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -w -t 60 -l "$dir/log" -D "$dir/data" -o \
    "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements -c fsync=off" \
    start >/dev/null
  CLEANUP_HOOKS+=("runuser -u postgres -- $PG_BIN/pg_ctl -m immediate -D $dir/data stop")
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "create extension pg_stat_statements" postgres
}

# A Redis server on a free port; sets REDIS_PORT.
start_redis() {
  REDIS_PORT=$(free_port)
  mkdir -p "$WORK/redis$1"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$WORK/redis$1" >"$WORK/redis$1.log" 2>&1 &
  PIDS+=($!)
  wait_for "redis-cli -p $REDIS_PORT ping" 30 "redis-server on $REDIS_PORT"
  # A Celery queue with work waiting, so the queue collector has something to count.
  redis-cli -p "$REDIS_PORT" lpush celery a b c >/dev/null
}

# A RabbitMQ node with the management plugin in $WORK/rmq$1; sets RMQ_API (not waited for:
# the nodes boot in parallel, see wait_rabbitmq).
start_rabbitmq() {
  local dir="$WORK/rmq$1" amqp mgmt dist node
  amqp=$(free_port); mgmt=$(free_port); dist=$(free_port)
  node="didbanbench$amqp@localhost"
  mkdir -p "$dir"
  echo "[rabbitmq_management]." >"$dir/enabled_plugins"
  printf 'listeners.tcp.default = %s\nmanagement.tcp.port = %s\nmanagement.tcp.ip = 127.0.0.1\n' \
    "$amqp" "$mgmt" >"$dir/rabbitmq.conf"
  chown -R rabbitmq:rabbitmq "$dir"
  RABBITMQ_NODENAME=$node RABBITMQ_DIST_PORT=$dist RABBITMQ_MNESIA_BASE=$dir/mnesia \
    RABBITMQ_LOG_BASE=$dir/log RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins \
    RABBITMQ_CONFIG_FILE=$dir/rabbitmq RABBITMQ_PID_FILE=$dir/pid \
    rabbitmq-server >/dev/null 2>&1 &
  PIDS+=($!)
  CLEANUP_HOOKS+=("rabbitmqctl -n $node stop")
  RMQ_API=http://127.0.0.1:$mgmt
}
wait_rabbitmq() { wait_for "curl -sf -u guest:guest $1/api/overview" 180 "RabbitMQ at $1"; }

# nginx with stub_status on a free port; sets NGINX_PORT.
start_nginx() {
  local dir="$WORK/nginx"
  NGINX_PORT=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
error_log $dir/error.log;
events { worker_connections 64; }
http {
  access_log $dir/access.log combined;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location = /stub_status { stub_status; }
    location / { return 200 "ok\n"; }
  }
}
CONF
  nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g "daemon off; pid $dir/pid;" &
  PIDS+=($!)
  wait_for "curl -sf http://127.0.0.1:$NGINX_PORT/stub_status" 30 "nginx on $NGINX_PORT"
}

# PgBouncer in front of the PostgreSQL on port $1; sets PGB_PORT.
start_pgbouncer() {
  local dir="$WORK/pgbouncer"
  PGB_PORT=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
app = host=127.0.0.1 port=$1 dbname=postgres user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = transaction
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  echo '"postgres" ""' >"$dir/userlist.txt"
  chown -R postgres:postgres "$dir"
  runuser -u postgres -- pgbouncer "$dir/pgbouncer.ini" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_for "exec 3<>/dev/tcp/127.0.0.1/$PGB_PORT" 30 "pgbouncer on $PGB_PORT"
}

start_rabbitmq 1; RMQ1=$RMQ_API
start_rabbitmq 2; RMQ2=$RMQ_API
start_postgres 1; PG1=$PG_PORT
start_postgres 2; PG2=$PG_PORT
start_redis 1; REDIS1=$REDIS_PORT
start_redis 2; REDIS2=$REDIS_PORT
start_nginx
start_pgbouncer "$PG1"
wait_rabbitmq "$RMQ1"
wait_rabbitmq "$RMQ2"

NE_PID=""
if [ -x "$NODE_EXPORTER" ]; then
  NE_PORT=$(free_port)
  "$NODE_EXPORTER" --web.listen-address="127.0.0.1:$NE_PORT" >"$WORK/ne.log" 2>&1 &
  PIDS+=($!); NE_PID=$!
else
  echo "no $NODE_EXPORTER (apt-get install prometheus-node-exporter): measured without a [[scrape]] job" >&2
fi
STATSD_MAIN=$(free_port); STATSD_BASE=$(free_port)

agent_config() {
  local statsd=$STATSD_MAIN
  [ "$2" = base ] && statsd=$STATSD_BASE
  cat <<TOML
[agent]
data_dir = "$1"
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
[[postgres]]
dsn = "host=127.0.0.1 port=$PG1 user=postgres dbname=postgres"
[[postgres]]
dsn = "host=127.0.0.1 port=$PG2 user=postgres dbname=postgres"
[[pgbouncer]]
dsn = "postgres://postgres@127.0.0.1:$PGB_PORT/pgbouncer"
[[redis]]
url = "redis://127.0.0.1:$REDIS1/0"
celery_queues = ["celery", "emails"]
[[redis]]
url = "redis://127.0.0.1:$REDIS2/0"
celery_queues = ["celery", "emails"]
[[rabbitmq]]
url = "$RMQ1"
[[rabbitmq]]
url = "$RMQ2"
[[nginx]]
url = "http://127.0.0.1:$NGINX_PORT/stub_status"
[[probe]]
target = "http://127.0.0.1:$NGINX_PORT/"
[[probe]]
target = "tcp://127.0.0.1:$PG1"
[statsd]
enabled = true
listen = "127.0.0.1:$statsd"
[[logs]]
paths = ["$WORK/logs/*.log"]
service = "bench-app"
TOML
  if [ -n "$NE_PID" ]; then
    printf '[[scrape]]\njob = "node"\ntargets = ["127.0.0.1:%s"]\n' "$NE_PORT"
  fi
}

start_sink
start_agents
sleep 1
start_log_writer "$WORK/logs" "$RATE" "$((DURATION + 20))"
# 40 StatsD packets/s to each measured agent.
python3 - "$STATSD_MAIN" "$STATSD_BASE" "$((DURATION + 20))" >/dev/null 2>&1 <<'PY' &
import socket, sys, time
ports, end = (int(sys.argv[1]), int(sys.argv[2])), time.time() + float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while time.time() < end:
    for i in range(20):
        for port in ports:
            s.sendto(f"shop.requests:1|c|#route:/p{i % 5}".encode(), ("127.0.0.1", port))
            s.sendto(f"shop.latency:{i}|ms".encode(), ("127.0.0.1", port))
    time.sleep(1)
PY
PIDS+=($!)

sleep 15 # warm-up: first collections, connections opened
MEASURED=("$AGENT_PID" ${BASE_PID:+"$BASE_PID"} ${NE_PID:+"$NE_PID"})
window_start "${MEASURED[@]}"; L0=$(count_lines "$WORK/logs")
sleep "$DURATION"
window_end "${MEASURED[@]}"; L1=$(count_lines "$WORK/logs")

echo "window: $DURATION s, every collector at 10 s (host, 2 postgres, pgbouncer, 2 redis+celery, 2 rabbitmq, nginx, 2 probes, statsd${NE_PID:+, scrape}), $(((L1 - L0) / DURATION)) lines/s written over 4 tailed files"
window_header
agent_rows "$DURATION"
if [ -n "$NE_PID" ]; then window_row "prometheus-node-exporter (host only, scraped every 10 s)" "$NE_PID" "$DURATION"; fi
agent_warnings
