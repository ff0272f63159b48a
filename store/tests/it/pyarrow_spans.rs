//! A span block written by the trace store, read back by pyarrow (an outside reader):
//! schema, sort order, JSON attribute columns and row count are as documented in
//! docs/storage.md. Fails (does not skip) when python3 or pyarrow are missing: install
//! from tests/requirements.txt.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use didban_store::traces::{kind, status, Span, SpanEvent, TraceOptions, TraceStore};
use serde_json::{Map, Value};

const SCRIPT: &str = r#"
import json, sys
import pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
t = f.read()
ids = t.column("trace_id").to_pylist()
rows = t.to_pylist()
err = [r for r in rows if r["status_code"] == 2][0]
print(json.dumps({
    "rows": t.num_rows,
    "row_groups": f.num_row_groups,
    "columns": t.column_names,
    "sorted": ids == sorted(ids),
    "attrs": json.loads(err["attributes"]),
    "events": json.loads(err["events"]),
    "compression": f.metadata.row_group(0).column(0).compression,
}))
"#;

fn span(i: u64) -> Span {
    let mut attributes = Map::new();
    attributes.insert(
        "http.status_code".into(),
        Value::from(if i == 7 { 500 } else { 200 }),
    );
    attributes.insert("ratio".into(), Value::from(0.25));
    Span {
        trace_id: format!("{:032x}", (i * 7919) % 1000 + 1),
        span_id: format!("{:016x}", i + 1),
        parent_span_id: String::new(),
        trace_state: String::new(),
        name: "GET /".into(),
        kind: kind::SERVER,
        service: "shop".into(),
        start_unix_nano: 1_000_000 + i as i64,
        duration_nano: 5,
        status_code: if i == 7 { status::ERROR } else { status::UNSET },
        status_message: String::new(),
        attributes,
        resource: Default::default(),
        scope_name: String::new(),
        scope_version: String::new(),
        events: vec![SpanEvent {
            time_unix_nano: 1_000_001,
            name: "exception".into(),
            attributes: Map::new(),
        }],
        links: Vec::new(),
    }
}

#[tokio::test]
async fn pyarrow_reads_the_span_block_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    let mut spans = Vec::new();
    for i in 0..40_000 {
        spans.push(span(i));
    }
    store.append(spans).await.unwrap();
    store.flush_head().unwrap();
    let blocks_dir = dir.path().join("traces/blocks");
    let block = std::fs::read_dir(&blocks_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let output = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(block.join("spans.parquet"))
        .output()
        .expect("python3 must be installed (see tests/requirements.txt)");
    assert!(
        output.status.success(),
        "pyarrow failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let v: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(v["rows"], 40_000);
    assert_eq!(v["row_groups"], 3, "16Ki-row row groups");
    assert_eq!(v["sorted"], true);
    assert_eq!(v["compression"], "ZSTD");
    assert_eq!(v["attrs"]["http.status_code"], 500);
    assert_eq!(v["attrs"]["ratio"], 0.25);
    assert_eq!(v["events"][0]["name"], "exception");
    let columns: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "trace_id",
            "span_id",
            "parent_span_id",
            "trace_state",
            "name",
            "kind",
            "service",
            "start_time_unix_nano",
            "duration_nano",
            "status_code",
            "status_message",
            "attributes",
            "resource",
            "scope_name",
            "scope_version",
            "events",
            "links"
        ]
    );
}
