"""A small shop served by real gunicorn and instrumented with OpenTelemetry's WSGI middleware,
which makes one SERVER span per request (status ERROR for a 5xx answer) and exports them over
OTLP/HTTP. The scenario suite (cli/tests/it/scenarios/http_errors.rs) drives it.

`/checkout/fail` answers 500 (the payment backend is down), `/ready` answers 200 without a
span (readiness polling is not traffic), anything else answers 200.

Environment: OTEL_EXPORTER_OTLP_ENDPOINT (the Didban server's OTLP/HTTP address, read by the
exporter), OTEL_SERVICE_NAME (the `service_name` of the span metrics), OTEL_BSP_SCHEDULE_DELAY
(how often the batch processor exports, in ms).
"""
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

# gunicorn imports this module in its worker (no --preload), so the exporter's thread runs in
# the process that serves the requests.
provider = TracerProvider(resource=Resource.create())
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)


def shop(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/checkout/fail":
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"payment backend unavailable\n"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]


_traced = OpenTelemetryMiddleware(shop)


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/ready":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ready\n"]
    return _traced(environ, start_response)
