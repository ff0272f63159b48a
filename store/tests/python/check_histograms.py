#!/usr/bin/env python3
"""Reads the native histogram samples of a Didban metric block with pyarrow, as an outside
reader would: histograms.parquet joined to series.parquet by series_id.

Usage: check_histograms.py <block dir>

Verifies the schema and the (series_id, timestamp_ms) sort order, and prints every row as
JSON (labels, timestamp, every histogram field; a NaN sum as null with sum_is_nan) for the
Rust test to compare with what it wrote. Exits non-zero (with a message) on a failed check.
"""
import json
import math
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def fail(msg):
    print(f"check_histograms: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    block = sys.argv[1]
    hist = pq.read_table(f"{block}/histograms.parquet")
    series = pq.read_table(f"{block}/series.parquet")

    def lst(t):
        return pa.list_(pa.field("item", t, nullable=False))

    expected = pa.schema(
        [
            pa.field("series_id", pa.uint64(), nullable=False),
            pa.field("timestamp_ms", pa.int64(), nullable=False),
            pa.field("counter_reset_hint", pa.uint8(), nullable=False),
            pa.field("schema", pa.int32(), nullable=False),
            pa.field("zero_threshold", pa.float64(), nullable=False),
            pa.field("zero_count", pa.float64(), nullable=False),
            pa.field("count", pa.float64(), nullable=False),
            pa.field("sum", pa.float64(), nullable=False),
            pa.field("positive_span_offsets", lst(pa.int32()), nullable=False),
            pa.field("positive_span_lengths", lst(pa.uint32()), nullable=False),
            pa.field("positive_buckets", lst(pa.float64()), nullable=False),
            pa.field("negative_span_offsets", lst(pa.int32()), nullable=False),
            pa.field("negative_span_lengths", lst(pa.uint32()), nullable=False),
            pa.field("negative_buckets", lst(pa.float64()), nullable=False),
            pa.field("custom_values", lst(pa.float64()), nullable=False),
        ]
    )
    if not hist.schema.remove_metadata().equals(expected):
        fail(f"unexpected histograms schema: {hist.schema}")

    labels_by_id = {}
    for row in series.to_pylist():
        labels_by_id[row["series_id"]] = {p["name"]: p["value"] for p in row["labels"]}

    rows = []
    prev = None
    for row in hist.to_pylist():
        key = (row["series_id"], row["timestamp_ms"])
        if prev is not None and prev >= key:
            fail(f"rows {prev} and {key} are not strictly sorted by (series_id, timestamp_ms)")
        prev = key
        if row["series_id"] not in labels_by_id:
            fail(f"histogram row for unknown series id {row['series_id']}")
        for side in ["positive", "negative"]:
            spans = list(zip(row.pop(f"{side}_span_offsets"), row.pop(f"{side}_span_lengths")))
            if sum(length for _, length in spans) != len(row[f"{side}_buckets"]):
                fail(f"{side} spans and buckets disagree at {key}")
            row[f"{side}_spans"] = [list(s) for s in spans]
        row["labels"] = labels_by_id[row.pop("series_id")]
        row["sum_is_nan"] = math.isnan(row["sum"])
        if row["sum_is_nan"]:
            row["sum"] = None
        rows.append(row)
    print(json.dumps({"rows": rows}, sort_keys=True))


if __name__ == "__main__":
    main()
