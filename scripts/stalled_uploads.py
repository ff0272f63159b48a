"""Issue 13's stall: 1,000 uploads per port whose bodies never finish, against `didban serve`
with default settings. Prints whether a query and an OTLP request still get through during
the stall, how many stalled uploads are answered 408 once listen.request_body_timeout
(30 s) passes, and the server's open descriptors before, during and after.

Usage: python3 scripts/stalled_uploads.py [path/to/didban]   (default target/release/didban)
"""
import os, shutil, socket, subprocess, sys, time, urllib.request, tempfile
BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/didban"
d = tempfile.mkdtemp()
ports = {"http": 29480, "otlp_http": 29418, "otlp_grpc": 29417}
p = subprocess.Popen([BIN, "serve", "--data-dir", d, "--http-addr", f"127.0.0.1:{ports['http']}",
    "--otlp-http-addr", f"127.0.0.1:{ports['otlp_http']}", "--otlp-grpc-addr", f"127.0.0.1:{ports['otlp_grpc']}"],
    stdout=subprocess.DEVNULL, stderr=open(d + "/err.log", "w"), env={**os.environ, "DIDBAN_LOG": "warn"})
def fds(): return len(os.listdir(f"/proc/{p.pid}/fd"))
def get(url):
    t = time.time()
    with urllib.request.urlopen(url, timeout=60) as r:
        r.read()
        return r.status, time.time() - t
for _ in range(600):
    try:
        get(f"http://127.0.0.1:{ports['http']}/-/ready"); break
    except Exception: time.sleep(0.1)
time.sleep(2)
print("nofile limit of the server:", open(f"/proc/{p.pid}/limits").read().split("Max open files")[1].split()[0:2])
print("fds at rest:", fds())
socks = []
t0 = time.time()
for i in range(1000):
    for port in (ports["otlp_http"], ports["http"]):
        s = socket.create_connection(("127.0.0.1", port))
        path = b"/v1/metrics" if port == ports["otlp_http"] else b"/api/v1/write"
        s.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000000\r\n\r\nabc")
        socks.append(s)
print(f"opened {len(socks)} stalled uploads in {time.time()-t0:.1f}s; server fds: {fds()}")
st, dt = get(f"http://127.0.0.1:{ports['http']}/api/v1/query?query=1")
print(f"query during the stall: {st} in {dt*1000:.0f} ms")
body = b'{"resourceMetrics":[]}'
req = urllib.request.Request(f"http://127.0.0.1:{ports['otlp_http']}/v1/metrics", data=body, headers={"Content-Type": "application/json"})
t = time.time(); r = urllib.request.urlopen(req, timeout=60); print(f"OTLP/HTTP during the stall: {r.status} in {(time.time()-t)*1000:.0f} ms")
# wait for the body timeout (30 s default)
t = time.time()
answered = 0
for s in socks:
    s.settimeout(max(1, 45 - (time.time() - t)))
    try:
        data = s.recv(200)
        if data.startswith(b"HTTP/1.1 408"): answered += 1
    except Exception as e:
        pass
print(f"stalled uploads answered 408: {answered}/{len(socks)} within {time.time()-t0:.1f}s of the first")
for s in socks: s.close()
time.sleep(3)
print("server fds after:", fds())
p.terminate(); print("exit:", p.wait())
shutil.rmtree(d, ignore_errors=True)
