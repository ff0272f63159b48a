#!/usr/bin/env python3
"""Exports metrics with the real OpenTelemetry Python SDK to Didban, once over OTLP/HTTP
(cumulative temporality) and once over OTLP/gRPC (delta temporality).

Usage: otlp_metrics_client.py HTTP_URL GRPC_ENDPOINT
  HTTP_URL       e.g. http://127.0.0.1:4318/v1/metrics
  GRPC_ENDPOINT  e.g. 127.0.0.1:4317

Records, per export: a counter `requests` ({request}, 5 then 2, route=/a), an up-down
counter `queue.depth` (+10, -3), a gauge `temperature` (Cel, 42.5) and a histogram
`request.duration` (s, 0.1, 0.4 and 2.0, route=/a). The resource has service.name=checkout,
service.namespace=shop, service.instance.id=py-http or py-grpc and
deployment.environment=test. Exits 0 when both exports succeed, 1 otherwise.
"""

import sys

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpExporter,
)
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricExportResult,
)
from opentelemetry.sdk.resources import Resource


def record_and_collect(instance_id, temporality):
    resource = Resource.create(
        {
            "service.name": "checkout",
            "service.namespace": "shop",
            "service.instance.id": instance_id,
            "deployment.environment": "test",
        }
    )
    reader = InMemoryMetricReader(
        preferred_temporality={
            Counter: temporality,
            UpDownCounter: temporality,
            Histogram: temporality,
        }
    )
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("didban.test", "0.1.0")
    route = {"route": "/a"}
    requests = meter.create_counter("requests", unit="{request}", description="Requests served.")
    requests.add(5, route)
    requests.add(2, route)
    depth = meter.create_up_down_counter("queue.depth")
    depth.add(10)
    depth.add(-3)
    meter.create_gauge("temperature", unit="Cel").set(42.5)
    duration = meter.create_histogram("request.duration", unit="s")
    for v in (0.1, 0.4, 2.0):
        duration.record(v, route)
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    http_url, grpc_endpoint = sys.argv[1], sys.argv[2]

    http = HttpExporter(endpoint=http_url, timeout=10)
    result = http.export(record_and_collect("py-http", AggregationTemporality.CUMULATIVE))
    http.shutdown()
    if result != MetricExportResult.SUCCESS:
        print(f"OTLP/HTTP export to {http_url} failed: {result}", file=sys.stderr)
        return 1

    grpc = GrpcExporter(endpoint=grpc_endpoint, insecure=True, timeout=10)
    result = grpc.export(record_and_collect("py-grpc", AggregationTemporality.DELTA))
    grpc.shutdown()
    if result != MetricExportResult.SUCCESS:
        print(f"OTLP/gRPC export to {grpc_endpoint} failed: {result}", file=sys.stderr)
        return 1
    print("exported over OTLP/HTTP and OTLP/gRPC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
