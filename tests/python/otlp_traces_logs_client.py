#!/usr/bin/env python3
"""Exports traces and logs with the real OpenTelemetry Python SDK to Didban, once over
OTLP/HTTP and once over OTLP/gRPC.

Usage: otlp_traces_logs_client.py HTTP_BASE GRPC_ENDPOINT
  HTTP_BASE      e.g. http://127.0.0.1:4318 (the client posts to /v1/traces and /v1/logs)
  GRPC_ENDPOINT  e.g. 127.0.0.1:4317

Per transport (service.name = py-http or py-grpc) it records one trace:

  checkout (SERVER, http.method=POST, http.status_code=200)   ~ >= 30 ms
  ├── db.query (CLIENT, db.system=postgresql, rows=3)           >= 20 ms, logs "loaded cart"
  └── payment (INTERNAL, error status, exception event)         logs "payment declined" at ERROR

and one log record outside any span ("worker started", WARNING). Prints one JSON line
{"transport": ..., "trace_id": ..., "checkout": ..., "db": ..., "payment": ...} per
transport (ids in hex). Exits 0 when every export succeeded, 1 otherwise.
"""

import json
import logging
import sys
import time

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import LogExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

FAILURES = []


class Checked:
    """Wraps an exporter and remembers failed exports."""

    def __init__(self, inner, what):
        self.inner = inner
        self.what = what

    def export(self, batch):
        result = self.inner.export(batch)
        # Span and log exporters answer with different enums; both name success SUCCESS.
        if getattr(result, "name", "") != "SUCCESS":
            FAILURES.append(f"{self.what}: {result}")
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


class CheckedLogs(Checked, LogExporter):
    pass


def run(transport, span_exporter, log_exporter):
    resource = Resource.create({"service.name": f"py-{transport}", "deployment.environment": "test"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(Checked(span_exporter, f"{transport} spans")))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(CheckedLogs(log_exporter, f"{transport} logs")))
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=logger_provider)
    log = logging.getLogger(f"didban.test.{transport}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(handler)

    tracer = tracer_provider.get_tracer("didban.test", "0.1.0")
    ids = {"transport": transport}
    with tracer.start_as_current_span(
        "checkout", kind=SpanKind.SERVER, attributes={"http.method": "POST", "http.status_code": 200}
    ) as root:
        ids["trace_id"] = format(root.get_span_context().trace_id, "032x")
        ids["checkout"] = format(root.get_span_context().span_id, "016x")
        with tracer.start_as_current_span(
            "db.query", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql", "rows": 3}
        ) as db:
            ids["db"] = format(db.get_span_context().span_id, "016x")
            time.sleep(0.02)
            log.info("loaded cart", extra={"cart.items": 3})
        with tracer.start_as_current_span("payment") as payment:
            ids["payment"] = format(payment.get_span_context().span_id, "016x")
            try:
                raise ValueError("card declined")
            except ValueError as e:
                payment.record_exception(e)
                payment.set_status(Status(StatusCode.ERROR, "card declined"))
                log.error("payment declined for order %s", "A-17")
        time.sleep(0.01)
    log.warning("worker started")
    tracer_provider.shutdown()
    logger_provider.shutdown()
    log.removeHandler(handler)
    print(json.dumps(ids), flush=True)


def main():
    http_base, grpc_endpoint = sys.argv[1], sys.argv[2]
    run("http", HttpSpans(f"{http_base}/v1/traces"), HttpLogs(f"{http_base}/v1/logs"))
    run(
        "grpc",
        GrpcSpans(endpoint=grpc_endpoint, insecure=True),
        GrpcLogs(endpoint=grpc_endpoint, insecure=True),
    )
    if FAILURES:
        print("export failures: " + "; ".join(FAILURES), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
