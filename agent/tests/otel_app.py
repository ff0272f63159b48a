"""An app instrumented with the OpenTelemetry Python SDK that sends spans and log records over
OTLP/gRPC to the agent's local receiver, then prints DONE.

Usage: otel_app.py ENDPOINT COUNT
"""
import logging
import sys

from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

endpoint, count = sys.argv[1], int(sys.argv[2])
resource = Resource.create({"service.name": "checkout"})

tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
tracer = tracer_provider.get_tracer("otel_app")

logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
set_logger_provider(logger_provider)
log = logging.getLogger("otel_app")
log.setLevel(logging.INFO)
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))
log.propagate = False

for i in range(count):
    with tracer.start_as_current_span(f"op-{i}") as span:
        span.set_attribute("seq", i)
        log.info("log line %d", i)

ok_spans = tracer_provider.force_flush(30000)
ok_logs = logger_provider.force_flush(30000)
tracer_provider.shutdown()
logger_provider.shutdown()
print("DONE" if ok_spans and ok_logs else "FLUSH FAILED", flush=True)
