#!/usr/bin/env bash
# The Debian package test (scripts/test.sh runs it after the Rust tests): packages the debug
# binaries the test run built, installs them with dpkg, checks every installed path and the
# systemd units, runs both services as their system users with the installed configs (as
# their units would; systemd itself does not run here), pushes a metric and queries it,
# upgrades (reinstalls), checks that data, users and config survived, removes, purges, and
# checks that nothing is left. A trap purges on failure too: nothing stays installed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    exec sudo --preserve-env=CARGO_TARGET_DIR,PATH,CARGO_HOME,RUSTUP_HOME "$0" "$@"
fi
# "" or not-installed: a package in any other state (even config-files) would be replaced or
# purged by this test, with whatever data and config it has.
dpkg_state() {
    dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true
}
for pkg in didban didban-agent; do
    state="$(dpkg_state "$pkg")"
    if [ -n "$state" ] && [ "$state" != not-installed ]; then
        echo "package test: $pkg is on this machine ($state); the test would replace and purge it." >&2
        echo "package test: remove it first (apt purge $pkg)." >&2
        exit 1
    fi
done

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
work="$(mktemp -d /tmp/didban-package-test.XXXXXX)"
chmod 0755 "$work"
server_pid=""
agent_pid=""

cleanup() {
    for pid in $agent_pid $server_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    local pkg
    for pkg in didban-agent didban; do
        case "$(dpkg_state "$pkg")" in
            "" | not-installed) ;;
            *) dpkg_run "$work/dpkg-cleanup.log" --purge "$pkg" || echo "package test: could not purge $pkg" >&2 ;;
        esac
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "package test: FAILED: $*" >&2
    for log in "$work"/*.log; do
        [ -f "$log" ] || continue
        echo "--- $log (last 40 lines)" >&2
        tail -n 40 "$log" >&2
    done
    exit 1
}
step() { echo "package test: $*"; }

# dpkg_run LOG ARGS...: dpkg, waiting (up to 10 minutes) while another apt or dpkg holds its
# lock, as on a machine where something else installs packages at the same time.
dpkg_run() {
    local log="$1"
    shift
    for _ in $(seq 1 120); do
        if dpkg "$@" >"$log" 2>&1; then return 0; fi
        grep -q 'lock' "$log" || return 1
        sleep 5
    done
    return 1
}

# A free TCP port on 127.0.0.1 (the kernel picks it).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# expect_mode PATH MODE USER GROUP
expect_mode() {
    [ -e "$1" ] || fail "$1 is missing"
    local got
    got="$(stat -c '%a %U %G' "$1")"
    [ "$got" = "$2 $3 $4" ] || fail "$1 is '$got', expected '$2 $3 $4'"
}

# unit_key UNIT KEY: the value of KEY= in the installed unit file.
unit_key() {
    sed -n "s/^$2=//p" "$1"
}

# run_unit UNIT [VAR=VALUE...]: runs the unit's ExecStart= from / the way systemd would as far
# as a plain process can: as its User=/Group= with its SupplementaryGroups=, no capabilities
# (CapabilityBoundingSet=), no_new_privs (NoNewPrivileges=), its Environment=, plus the
# given variables. setpriv execs, so $! is the service process itself.
run_unit() {
    local unit="$1"
    shift
    local user group groups env cmd
    user="$(unit_key "$unit" User)"
    group="$(unit_key "$unit" Group)"
    groups="$(unit_key "$unit" SupplementaryGroups | tr ' ' ',')"
    read -r -a env <<<"$(unit_key "$unit" Environment | tr '\n' ' ')"
    read -r -a cmd <<<"$(unit_key "$unit" ExecStart)"
    local group_args=(--clear-groups)
    [ -z "$groups" ] || group_args=(--groups "$groups")
    cd / && exec setpriv --reuid "$user" --regid "$group" "${group_args[@]}" --no-new-privs \
        --bounding-set -all --inh-caps -all env -i PATH=/usr/bin:/bin "${env[@]}" "$@" "${cmd[@]}"
}

# ---------------------------------------------------------------- build and install
step "packaging the debug binaries"
# A no-op after the test run, which built both binaries.
cargo build --quiet -p didban-cli -p didban-agent --bins || fail "cargo build"
scripts/package.sh --debug "$work/debs" || fail "scripts/package.sh --debug"
server_deb="$(ls "$work"/debs/didban_*.deb)"
agent_deb="$(ls "$work"/debs/didban-agent_*.deb)"

step "dpkg -i $(basename "$server_deb") $(basename "$agent_deb")"
dpkg_run "$work/dpkg-install.log" -i "$server_deb" "$agent_deb" || fail "dpkg -i"

# ---------------------------------------------------------------- installed paths
step "checking the installed paths"
unit_dir=""
for d in /usr/lib/systemd/system /lib/systemd/system; do
    if [ -f "$d/didban.service" ]; then unit_dir="$d"; break; fi
done
[ -n "$unit_dir" ] || fail "didban.service is not installed"
expect_mode /usr/bin/didban 755 root root
expect_mode /usr/bin/didban-agent 755 root root
expect_mode /etc/didban/didban.toml 640 root didban
expect_mode /etc/didban-agent/agent.toml 640 root didban-agent
expect_mode /etc/didban/rules 755 root root
expect_mode /etc/didban/dashboards 755 root root
expect_mode /var/lib/didban 750 didban didban
expect_mode /var/lib/didban-agent 750 didban-agent didban-agent
expect_mode "$unit_dir/didban.service" 644 root root
expect_mode "$unit_dir/didban-agent.service" 644 root root
for doc in README.md install.md configuration.md alerting.md copyright; do
    [ -f "/usr/share/doc/didban/$doc" ] || fail "/usr/share/doc/didban/$doc is missing"
done
for doc in agent.md agent.example.toml install.md copyright; do
    [ -f "/usr/share/doc/didban-agent/$doc" ] || fail "/usr/share/doc/didban-agent/$doc is missing"
done
# Enabled at install (deb-systemd-helper), so they start at the next boot.
for unit in didban didban-agent; do
    [ -L "/etc/systemd/system/multi-user.target.wants/$unit.service" ] || fail "$unit.service is not enabled"
done
dpkg-query -W -f='${Conffiles}\n' didban | grep -q ' /etc/didban/didban.toml ' || fail "didban.toml is not a conffile"
dpkg-query -W -f='${Conffiles}\n' didban-agent | grep -q ' /etc/didban-agent/agent.toml ' || fail "agent.toml is not a conffile"
for user in didban didban-agent; do
    entry="$(getent passwd "$user")" || fail "no user $user"
    IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
    [ "$uid" -lt 1000 ] || fail "$user has uid $uid, not a system uid"
    [ "$home" = "/var/lib/$user" ] || fail "$user's home is $home"
    case "$shell" in */nologin | /bin/false) ;; *) fail "$user has login shell $shell" ;; esac
done
# A package file the binary cannot read (a wrong install mode) would only show at start.
/usr/bin/didban --version >/dev/null || fail "didban --version"
/usr/bin/didban-agent --help >/dev/null || fail "didban-agent --help"

step "systemd-analyze verify"
for unit in didban didban-agent; do
    systemd-analyze verify "$unit_dir/$unit.service" >"$work/verify-$unit.log" 2>&1 ||
        fail "systemd-analyze verify $unit.service"
    # Warnings do not change the exit code; a clean unit has none.
    [ ! -s "$work/verify-$unit.log" ] || fail "systemd-analyze verify $unit.service printed: $(cat "$work/verify-$unit.log")"
done
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit_dir/didban.service" || fail "didban.service has no SIGHUP reload"

# ---------------------------------------------------------------- run as the services would
http_port="$(free_port)"
grpc_port="$(free_port)"
otlp_http_port="$(free_port)"
api="http://127.0.0.1:$http_port"

# start_server LOG: runs the unit's ExecStart as user didban from /, with the installed config;
# only the listen addresses are moved to free ports, and the in-process host collector is off
# so that every node_* series must come from the installed agent.
start_server() {
    (run_unit "$unit_dir/didban.service" \
        DIDBAN_HTTP_ADDR="127.0.0.1:$http_port" \
        DIDBAN_OTLP_GRPC_ADDR="127.0.0.1:$grpc_port" \
        DIDBAN_OTLP_HTTP_ADDR="127.0.0.1:$otlp_http_port" \
        DIDBAN_NO_HOST_METRICS=true) >"$1" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 120); do
        if curl -fsS -o /dev/null "$api/-/ready" 2>/dev/null; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || fail "didban exited at start"
        sleep 0.5
    done
    fail "didban was not ready within 60 s"
}

stop() {
    local pid="$1"
    kill -TERM "$pid"
    wait "$pid" || fail "process $pid exited with status $? after SIGTERM"
}

# query PROMQL: the first sample's value, "" when the result is empty. Called in $(…): fail
# there ends the subshell, and set -e the test, with the message.
query() {
    local body
    body="$(curl -fsS -H "Authorization: Bearer $token" "$api/api/v1/query" --data-urlencode "query=$1")" ||
        fail "query $1: the query API did not answer"
    python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' \
        <<<"$body" || fail "query $1: unexpected answer: $body"
}

step "starting didban as user didban with /etc/didban/didban.toml"
start_server "$work/server-1.log"
[ "$(stat -c '%U %G' "/proc/$server_pid")" = "didban didban" ] || fail "didban does not run as didban:didban"

# The generated admin password, printed once on the first start (the journal, under systemd).
password="$(sed -n 's/^  password: //p' "$work/server-1.log")"
[ -n "$password" ] || fail "no first-admin password in didban's output"
grep -q '^  user:     admin$' "$work/server-1.log" || fail "the first admin is not 'admin'"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$api/api/v1/query?query=up")" = 401 ] ||
    fail "the query API answers without credentials: sign-in is not on"

step "making an ingest token as admin (basic auth)"
token="$(curl -fsS -u "admin:$password" "$api/admin/tokens" \
    --data-urlencode action=create --data-urlencode name=package-test \
    --data-urlencode role=editor --data-urlencode ingest=on |
    sed -n 's/.*id="new-token"[^>]*value="\([^"]*\)".*/\1/p')"
[ -n "$token" ] || fail "no token in the /admin/tokens answer"

step "pushing a metric over OTLP/HTTP and querying it"
now_ns="$(date +%s)000000000"
curl -fsS -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    "http://127.0.0.1:$otlp_http_port/v1/metrics" -d '{"resourceMetrics": [{
      "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "package-test"}}]},
      "scopeMetrics": [{"metrics": [{"name": "package_test_value", "gauge": {
        "dataPoints": [{"timeUnixNano": "'"$now_ns"'", "asDouble": 42}]}}]}]}]}' ||
    fail "OTLP/HTTP push"
[ "$(query 'package_test_value{job="package-test"}')" = 42 ] || fail "package_test_value is not 42 after the push"

step "systemctl reload: the unit's ExecReload (SIGHUP) re-reads rules and notification config"
reload_cmd="$(unit_key "$unit_dir/didban.service" ExecReload)"
${reload_cmd//\$MAINPID/$server_pid} || fail "ExecReload $reload_cmd"
for _ in $(seq 1 60); do
    grep -q 'SIGHUP: reloading rules' "$work/server-1.log" && break
    kill -0 "$server_pid" 2>/dev/null || fail "didban exited on SIGHUP"
    sleep 0.5
done
grep -q 'SIGHUP: reloading rules' "$work/server-1.log" || fail "no reload within 30 s of SIGHUP"
# A reload that cannot read the config or the rules keeps the old set and logs why.
sleep 2
if grep -Eq 'keeping the previous|reload failed' "$work/server-1.log"; then fail "the reload failed"; fi
curl -fsS -o /dev/null "$api/-/ready" || fail "didban is not ready after the reload"

step "starting didban-agent as user didban-agent with /etc/didban-agent/agent.toml"
(run_unit "$unit_dir/didban-agent.service" \
    DIDBAN_AGENT_ENDPOINT="http://127.0.0.1:$grpc_port" DIDBAN_AGENT_TOKEN="$token") >"$work/agent.log" 2>&1 &
agent_pid=$!
# The subshell becomes the agent through setpriv's exec; wait for that before looking at it.
for _ in $(seq 1 100); do
    [ "$(readlink "/proc/$agent_pid/exe" 2>/dev/null)" = /usr/bin/didban-agent ] && break
    sleep 0.1
done
[ "$(stat -c '%U %G' "/proc/$agent_pid")" = "didban-agent didban-agent" ] ||
    fail "didban-agent does not run as didban-agent:didban-agent"
adm_gid="$(getent group adm | cut -d: -f3)"
grep -Eq "^Groups:.*\\b$adm_gid\\b" "/proc/$agent_pid/status" || fail "didban-agent is not in group adm (SupplementaryGroups)"
host_series=""
for _ in $(seq 1 60); do
    host_series="$(query 'node_memory_MemTotal_bytes{job="didban-agent"}')"
    [ -z "$host_series" ] || break
    kill -0 "$agent_pid" 2>/dev/null || fail "didban-agent exited"
    sleep 1
done
[ -n "$host_series" ] || fail "no node_memory_MemTotal_bytes from the agent within 60 s"
[ -d /var/lib/didban-agent/buffer ] || fail "the agent made no buffer in /var/lib/didban-agent"
stop "$agent_pid"
agent_pid=""
stop "$server_pid"
server_pid=""
owned="$(find /var/lib/didban /var/lib/didban-agent ! -user didban ! -user didban-agent | head -n 3)"
[ -z "$owned" ] || fail "files in the data directories not owned by the service users: $owned"
[ -f /var/lib/didban/auth/users.json ] || fail "no users in /var/lib/didban/auth"

# ---------------------------------------------------------------- upgrade keeps everything
step "upgrading (dpkg -i the same packages again) with an edited config"
echo "# edited by the package test" >>/etc/didban/didban.toml
chmod 0440 /etc/didban/didban.toml
users_before="$(sha256sum /var/lib/didban/auth/users.json)"
dpkg_run "$work/dpkg-upgrade.log" -i "$server_deb" "$agent_deb" || fail "dpkg -i (upgrade)"
grep -q '^# edited by the package test$' /etc/didban/didban.toml || fail "the upgrade replaced the edited didban.toml"
expect_mode /etc/didban/didban.toml 440 root didban
[ "$(sha256sum /var/lib/didban/auth/users.json)" = "$users_before" ] || fail "the upgrade changed the users"
getent passwd didban >/dev/null || fail "the upgrade removed user didban"

start_server "$work/server-2.log"
if grep -q 'password:' "$work/server-2.log"; then fail "a second start printed a password again"; fi
[ "$(query 'package_test_value{job="package-test"}')" = 42 ] || fail "package_test_value is gone after the upgrade"
[ -n "$(query 'node_memory_MemTotal_bytes{job="didban-agent"}')" ] || fail "the agent's series are gone after the upgrade"
[ "$(curl -s -o /dev/null -w '%{http_code}' -u "admin:$password" "$api/api/v1/query?query=up")" = 200 ] ||
    fail "the admin password no longer works after the upgrade"
stop "$server_pid"
server_pid=""

# ---------------------------------------------------------------- remove keeps data, purge deletes
step "dpkg --remove keeps data and config"
dpkg_run "$work/dpkg-remove.log" --remove didban-agent didban || fail "dpkg --remove"
[ ! -e /usr/bin/didban ] || fail "/usr/bin/didban is still there after remove"
[ -f /var/lib/didban/auth/users.json ] || fail "remove deleted the data"
[ -f /etc/didban/didban.toml ] || fail "remove deleted the config"
[ "$(dpkg_state didban)" = config-files ] || fail "didban is $(dpkg_state didban) after remove, not config-files"
getent passwd didban >/dev/null || fail "remove deleted user didban"

step "dpkg --purge deletes data, config, users and units"
dpkg_run "$work/dpkg-purge.log" --purge didban-agent didban || fail "dpkg --purge"
for path in /usr/bin/didban /usr/bin/didban-agent /etc/didban /etc/didban-agent /var/lib/didban \
    /var/lib/didban-agent "$unit_dir/didban.service" "$unit_dir/didban-agent.service" \
    /etc/systemd/system/multi-user.target.wants/didban.service \
    /etc/systemd/system/multi-user.target.wants/didban-agent.service \
    /usr/share/doc/didban /usr/share/doc/didban-agent; do
    [ ! -e "$path" ] && [ ! -L "$path" ] || fail "$path is still there after purge"
done
for user in didban didban-agent; do
    if getent passwd "$user" >/dev/null; then fail "user $user is still there after purge"; fi
    if getent group "$user" >/dev/null; then fail "group $user is still there after purge"; fi
done
for pkg in didban didban-agent; do
    state="$(dpkg_state "$pkg")"
    [ -z "$state" ] || [ "$state" = not-installed ] || fail "$pkg is still $state after purge"
done

echo "package test: passed (installed, ran, upgraded, removed and purged both packages)"
