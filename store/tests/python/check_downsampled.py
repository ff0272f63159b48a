#!/usr/bin/env python3
"""Reads a Didban downsampled block with pyarrow, as an outside reader would.

Usage: check_downsampled.py <block dir>

Checks the schema of samples.parquet (the raw columns, then the aggregates), the
(series_id, timestamp_ms) order and that min <= value <= max where defined, and prints a
JSON summary (rows, the sum of `count`, meta.json's resolution) the Rust test compares
with the raw data. Exits non-zero (with a message) on any failed check.
"""
import json
import math
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def fail(msg):
    print(f"check_downsampled: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    block = sys.argv[1]
    table = pq.read_table(f"{block}/samples.parquet")
    expected = pa.schema(
        [
            pa.field("series_id", pa.uint64(), nullable=False),
            pa.field("timestamp_ms", pa.int64(), nullable=False),
            pa.field("value", pa.float64(), nullable=False),
            pa.field("count", pa.uint64(), nullable=False),
            pa.field("sum", pa.float64(), nullable=False),
            pa.field("min", pa.float64(), nullable=False),
            pa.field("max", pa.float64(), nullable=False),
            pa.field("first", pa.float64(), nullable=False),
            pa.field("counter", pa.float64(), nullable=False),
        ]
    )
    if not table.schema.remove_metadata().equals(expected):
        fail(f"unexpected schema {table.schema}")
    rows = table.to_pydict()
    keys = list(zip(rows["series_id"], rows["timestamp_ms"]))
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        fail("rows not sorted by (series_id, timestamp_ms) without duplicates")
    for lo, v, hi in zip(rows["min"], rows["value"], rows["max"]):
        if not any(math.isnan(x) for x in (lo, v, hi)) and not lo <= v <= hi:
            fail(f"last value {v} outside [{lo}, {hi}]")
    with open(f"{block}/meta.json") as f:
        meta = json.load(f)
    print(
        json.dumps(
            {
                "rows": table.num_rows,
                "count_sum": sum(rows["count"]),
                "resolution_ms": meta.get("resolution_ms", 0),
                "series_rows": pq.ParquetFile(f"{block}/series.parquet").metadata.num_rows,
            }
        )
    )


if __name__ == "__main__":
    main()
