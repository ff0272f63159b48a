"""A small app instrumented with prometheus_client, scraped by the agent's tests.

With `--tls CERT KEY` it serves HTTPS. Routes: /metrics (prometheus_client's own content negotiation: OpenMetrics when asked),
/text (always text format 0.0.4), /broken (malformed exposition), /missing (404). Prints "READY <port>".
"""
import sys
from wsgiref.simple_server import make_server, WSGIRequestHandler

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

registry = CollectorRegistry()
requests = Counter("app_requests", "Requests served.", ["method"], registry=registry)
temperature = Gauge("app_temperature_celsius", "A gauge with an awkward label.", ["path"], registry=registry)
latency = Histogram("app_latency_seconds", "Latency.", buckets=(0.1, 0.5, 1.0), registry=registry)
size = Summary("app_size_bytes", "Sizes.", registry=registry)

requests.labels("get").inc(3)
requests.labels("post").inc()
temperature.labels('C:\\dir "x"\n').set(-12.5)
for v in (0.05, 0.2, 0.7, 3.0):
    latency.observe(v)
size.observe(100)
size.observe(300)


class Stamped:
    """A custom collector whose sample carries an explicit timestamp."""

    def collect(self):
        g = GaugeMetricFamily("app_batch_last_success", "Last batch.", labels=["batch"])
        g.add_metric(["nightly"], 1.0, timestamp=1700000000.5)
        yield g


registry.register(Stamped())
metrics_app = make_wsgi_app(registry)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/text":
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [generate_latest(registry)]
    if path == "/broken":
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [b"# TYPE ok counter\nok_total 1\nthis is { not valid\n"]
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such page\n"]
    return metrics_app(environ, start_response)


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
if len(sys.argv) == 4 and sys.argv[1] == "--tls":
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"READY {server.server_port}", flush=True)
server.serve_forever()
