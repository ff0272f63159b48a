#!/usr/bin/env python3
"""Pushes a high-cardinality OTLP/HTTP metrics burst at a running Didban and prints the
server's peak RSS against its memory limit.

Every burst request carries `--series-per-request` points of series never seen before (one
unique `id` attribute each); beside it, one thread writes `--steady` existing series once a
second and another runs a simple query once a second, so the output says whether existing
series kept flowing and queries stayed fast while new series were refused.

    python3 scripts/cardinality_burst.py --pid $(pgrep -f 'didban serve') \
        --memory-limit 1GiB --duration 120

Standard library only. Exit status 0 unless the server could not be reached at all.
"""

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def parse_size(text):
    t = text.strip().lower()
    for unit in sorted(UNITS, key=len, reverse=True):
        if unit and t.endswith(unit):
            return int(float(t[: -len(unit)]) * UNITS[unit])
    return int(t)


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def find_pid():
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"didban") and b"serve" in argv:
            return int(entry)
    return None


def gauge_request(metric, points):
    """An OTLP/JSON ExportMetricsServiceRequest with one gauge and `points` (attrs, value)."""
    now = str(time.time_ns())
    data_points = []
    for attrs, value in points:
        data_points.append(
            {
                "timeUnixNano": now,
                "asDouble": value,
                "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()],
            }
        )
    body = {
        "resourceMetrics": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "burst"}}]},
                "scopeMetrics": [{"metrics": [{"name": metric, "gauge": {"dataPoints": data_points}}]}],
            }
        ]
    }
    return json.dumps(body).encode()


def post(url, body, timeout=30):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, str(e).encode()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.rejected_points = 0
        self.sent_points = 0
        self.first_message = {}

    def add(self, kind, status, body, sent):
        rejected = 0
        message = ""
        if status == 200 and body:
            try:
                partial = json.loads(body).get("partialSuccess") or {}
                rejected = int(partial.get("rejectedDataPoints", 0))
                message = partial.get("errorMessage", "")
            except ValueError:
                pass
        elif body:
            message = body[:200].decode(errors="replace")
        with self.lock:
            key = (kind, status)
            self.counts[key] = self.counts.get(key, 0) + 1
            if kind == "burst":
                self.sent_points += sent
                self.rejected_points += rejected
            else:
                self.counts[(kind, "rejected_points")] = self.counts.get((kind, "rejected_points"), 0) + rejected
            if message and key not in self.first_message:
                self.first_message[key] = message


def burst_worker(args, worker, stop, stats):
    n = 0
    url = args.otlp_url.rstrip("/") + "/v1/metrics"
    while not stop.is_set():
        points = []
        for _ in range(args.series_per_request):
            points.append(({"id": f"w{worker}-{n}", "pod": f"pod-{n % 5000}"}, float(n)))
            n += 1
        # Spread over many metric names so the per-metric series limit is not what stops it.
        body = gauge_request(f"burst_requests_{(n // args.series_per_request) % args.metric_names}", points)
        status, reply = post(url, body)
        stats.add("burst", status, reply, len(points))
        if status in (429, 503):
            time.sleep(0.2)


def steady_worker(args, stop, stats):
    url = args.otlp_url.rstrip("/") + "/v1/metrics"
    while not stop.is_set():
        points = [({"id": f"steady-{i}"}, 1.0) for i in range(args.steady)]
        status, reply = post(url, gauge_request("steady_requests", points))
        stats.add("steady", status, reply, len(points))
        stop.wait(1.0)


def query_worker(args, stop, latencies):
    url = args.http_url.rstrip("/") + "/api/v1/query?query=count(steady_requests)"
    while not stop.is_set():
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                r.read()
        except (urllib.error.URLError, OSError):
            pass
        latencies.append(time.monotonic() - started)
        stop.wait(1.0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--otlp-url", default="http://127.0.0.1:4318")
    p.add_argument("--http-url", default="http://127.0.0.1:9480")
    p.add_argument("--pid", type=int, help="the server's process id (default: found by its command line)")
    p.add_argument("--memory-limit", help="the server's storage.memory_limit, e.g. 1GiB, to compare with")
    p.add_argument("--duration", type=float, default=120.0, help="seconds (default 120)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--series-per-request", type=int, default=2000)
    p.add_argument("--steady", type=int, default=100, help="existing series written once a second")
    p.add_argument("--metric-names", type=int, default=100, help="metric names the new series are spread over")
    args = p.parse_args()

    pid = args.pid or find_pid()
    if pid is None or rss_bytes(pid) is None:
        print("cannot find the server process; pass --pid", file=sys.stderr)
        return 2
    status, reply = post(args.otlp_url.rstrip("/") + "/v1/metrics", gauge_request("steady_requests", []))
    if status is None:
        print(f"cannot reach {args.otlp_url}: {reply.decode(errors='replace')}", file=sys.stderr)
        return 2

    stats = Stats()
    latencies = []
    stop = threading.Event()
    threads = [threading.Thread(target=burst_worker, args=(args, w, stop, stats)) for w in range(args.workers)]
    threads.append(threading.Thread(target=steady_worker, args=(args, stop, stats)))
    threads.append(threading.Thread(target=query_worker, args=(args, stop, latencies)))
    start_rss = rss_bytes(pid)
    peak = start_rss
    for t in threads:
        t.start()
    started = time.monotonic()
    last_report = started
    while time.monotonic() - started < args.duration:
        time.sleep(0.25)
        rss = rss_bytes(pid)
        if rss is None:
            print("the server process is gone", file=sys.stderr)
            break
        peak = max(peak, rss)
        if time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            with stats.lock:
                sent, refused = stats.sent_points, stats.rejected_points
            print(f"{last_report - started:6.0f}s rss {rss / 2**20:8.1f} MiB  peak {peak / 2**20:8.1f} MiB  "
                  f"new-series points sent {sent}, refused {refused}", flush=True)
    stop.set()
    for t in threads:
        t.join()
    end_rss = rss_bytes(pid)

    mib = lambda b: f"{b / 2**20:.1f} MiB" if b is not None else "?"
    print()
    print(f"RSS: start {mib(start_rss)}, peak {mib(peak)}, end {mib(end_rss)}")
    if args.memory_limit:
        limit = parse_size(args.memory_limit)
        verdict = "under" if peak <= limit else "OVER"
        print(f"memory limit {mib(limit)}: peak is {peak / limit:.0%} of it ({verdict})")
    print(f"new-series points sent {stats.sent_points}, refused {stats.rejected_points}")
    for (kind, status), n in sorted(stats.counts.items(), key=lambda kv: str(kv[0])):
        print(f"  {kind:6} {status}: {n}")
    for key, message in stats.first_message.items():
        print(f"  first message for {key}: {message[:160]}")
    if latencies:
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"simple query: {len(latencies)} runs, median {latencies[len(latencies) // 2] * 1000:.0f} ms, "
              f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
