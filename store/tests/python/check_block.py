#!/usr/bin/env python3
"""Checks a Didban metric block with pyarrow, as an outside reader would see it.

Usage: check_block.py <block dir>

Verifies the schemas, the (series_id, timestamp_ms) sort order, the encodings,
compression and statistics of samples.parquet, rebuilds every value the way
docs/storage.md tells outside readers to (coalesce(value, (scaled_base + the running sum of
the series' scaled_delta) / 10^value_scale)),
and prints a JSON summary that the Rust test compares with what it wrote. Exits non-zero
(with a message) on any failed check.
"""
import json
import sys

import struct

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def fail(msg):
    print(f"check_block: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    block = sys.argv[1]
    samples_file = pq.ParquetFile(f"{block}/samples.parquet")
    series_file = pq.ParquetFile(f"{block}/series.parquet")
    samples = samples_file.read()
    series = series_file.read()

    expected_samples = pa.schema(
        [
            pa.field("series_id", pa.uint64(), nullable=False),
            pa.field("timestamp_ms", pa.int64(), nullable=False),
            pa.field("value", pa.float64(), nullable=True),
            pa.field("scaled_delta", pa.int64(), nullable=True),
        ]
    )
    if not samples.schema.remove_metadata().equals(expected_samples):
        fail(f"unexpected samples schema: {samples.schema}")
    labels_type = series.schema.field("labels").type
    if not pa.types.is_list(labels_type) or not pa.types.is_struct(labels_type.value_type):
        fail(f"labels column is not list<struct>: {labels_type}")
    struct_names = [labels_type.value_type.field(i).name for i in range(labels_type.value_type.num_fields)]
    if struct_names != ["name", "value"]:
        fail(f"label struct fields are {struct_names}")
    for name in ["series_id", "metric_name", "labels", "first_row", "row_count", "min_time_ms", "max_time_ms", "value_scale", "scaled_base"]:
        if name not in series.schema.names:
            fail(f"series.parquet lacks column {name}")

    ids = samples.column("series_id").to_pylist()
    ts = samples.column("timestamp_ms").to_pylist()
    floats = samples.column("value")
    scaled = samples.column("scaled_delta")
    both = pc.sum(pc.cast(pc.and_(pc.is_valid(floats), pc.is_valid(scaled)), pa.int64())).as_py()
    neither = pc.sum(pc.cast(pc.and_(pc.is_null(floats), pc.is_null(scaled)), pa.int64())).as_py()
    if both or neither:
        fail(f"{both} rows with both value and scaled_delta, {neither} with neither")
    # The documented reconstruction: per series, in row order, scaled_base plus the running
    # sum of its scaled_delta (nulls skipped, as SQL's sum does), divided once by 10^scale.
    scale_of = series.column("value_scale").to_pylist()
    base_of = series.column("scaled_base").to_pylist()
    values = []
    running, current = None, None
    for sid, f, d in zip(ids, floats.to_pylist(), scaled.to_pylist()):
        if sid != current:
            current, running = sid, base_of[sid]
        if f is not None:
            values.append(f)
            continue
        if scale_of[sid] is None or running is None:
            fail(f"scaled row of series {sid} without value_scale or scaled_base")
        running += d
        values.append(running / 10.0 ** scale_of[sid])
    value_bits = [struct.unpack("<Q", struct.pack("<d", v))[0] for v in values]
    for i in range(1, len(ids)):
        if (ids[i - 1], ts[i - 1]) >= (ids[i], ts[i]):
            fail(f"rows {i - 1} and {i} are not strictly sorted by (series_id, timestamp_ms)")

    meta = samples_file.metadata
    encodings = {}
    compression = set()
    stats_everywhere = True
    page_index_everywhere = True
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        for c in range(group.num_columns):
            col = group.column(c)
            encodings.setdefault(col.path_in_schema, set()).update(col.encodings)
            compression.add(col.compression)
            # min/max matter for pruning on series_id and timestamp_ms; a value column
            # holding NaN (stale markers), or only nulls, legitimately has no min/max.
            needs_min_max = col.path_in_schema in ("series_id", "timestamp_ms")
            if not col.is_stats_set or (needs_min_max and not col.statistics.has_min_max):
                stats_everywhere = False
            if not (getattr(col, "has_offset_index", True) and getattr(col, "has_column_index", True)):
                page_index_everywhere = False

    out_series = []
    for row in series.to_pylist():
        out_series.append(
            {
                "series_id": row["series_id"],
                "metric_name": row["metric_name"],
                "labels": {pair["name"]: pair["value"] for pair in row["labels"]},
                "first_row": row["first_row"],
                "row_count": row["row_count"],
                "value_scale": row["value_scale"],
                "scaled_base": row["scaled_base"],
            }
        )
    rows_per_series = {}
    value_sum = 0.0
    for sid, v in zip(ids, values):
        rows_per_series[sid] = rows_per_series.get(sid, 0) + 1
        if v == v:  # skip NaN (stale markers)
            value_sum += v

    print(
        json.dumps(
            {
                "samples_rows": samples.num_rows,
                "series_rows": series.num_rows,
                "row_groups": meta.num_row_groups,
                "max_row_group_rows": max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)),
                "min_timestamp": min(ts),
                "max_timestamp": max(ts),
                "value_sum": value_sum,
                "nan_count": sum(1 for v in values if v != v),
                "scaled_rows": scaled.length() - scaled.null_count,
                # Sum of the values' IEEE bits modulo 2^64: equal only if every bit is.
                "value_bits_sum": sum(value_bits) % (1 << 64),
                "encodings": {k: sorted(v) for k, v in encodings.items()},
                "compression": sorted(compression),
                "statistics": stats_everywhere,
                "page_index": page_index_everywhere,
                "series": out_series,
                "rows_per_series": {str(k): v for k, v in sorted(rows_per_series.items())},
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
