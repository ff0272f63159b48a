//! Span blocks on object storage, against a real three-node Garage cluster (and a private
//! PostgreSQL for the metastore): blocks leave the data directory for the bucket; a store
//! on an empty data directory finds traces by id and by search from the bucket alone; a
//! cold trace lookup reads byte ranges, not the whole file; retention deletes from the
//! bucket; two stores sharing bucket and metastore see each other's blocks and only the
//! lease holder compacts them.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use crate::common::garage_storage;
use didban_store::traces::{Span, TraceOptions, TraceQuery, TraceStore};
use didban_store::MetastoreConfig;
use didban_testkit::garage::Garage;
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::{until, HANG};

const T0: i64 = 1_764_115_200_000_000_000; // 2025-11-26T00:00:00Z

/// A trace store under `dir` whose blocks go to `garage` through node `node`.
fn s3_options(dir: &Path, garage: &Garage, node: usize, cache_bytes: u64) -> TraceOptions {
    let mut o = TraceOptions::new(dir);
    o.block_storage = garage_storage(garage, node, cache_bytes);
    o
}

/// Span `n` of trace `trace` of service `service`; `padding` bytes of attribute text make
/// the columns a lookup reads only for matching rows large.
fn span(trace: u64, n: u64, service: &str, padding: usize) -> Span {
    // Hashed ids: neighbouring traces do not share row groups' id ranges by accident.
    let mix = |x: u64| x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x5bd1_e995;
    let mut attributes = serde_json::Map::new();
    attributes.insert(
        "pad".into(),
        serde_json::Value::String(format!("{:x}", mix(trace ^ n)).repeat(padding / 16 + 1)),
    );
    Span {
        trace_id: format!("{:016x}{:016x}", mix(trace), trace),
        span_id: format!("{:016x}", mix(trace << 8 | n)),
        parent_span_id: if n == 0 {
            String::new()
        } else {
            format!("{:016x}", mix(trace << 8))
        },
        trace_state: String::new(),
        name: format!("op{}", n % 3),
        kind: 2,
        service: service.to_string(),
        start_unix_nano: T0 + (trace as i64) * 1_000_000 + n as i64,
        duration_nano: 1000 + n as i64,
        status_code: 0,
        status_message: String::new(),
        attributes,
        resource: Default::default(),
        scope_name: String::new(),
        scope_version: String::new(),
        events: Vec::new(),
        links: Vec::new(),
    }
}

/// Traces `traces` of `service`, `per_trace` spans each.
fn spans(traces: std::ops::Range<u64>, per_trace: u64, service: &str, padding: usize) -> Vec<Span> {
    let mut out = Vec::new();
    for t in traces {
        for n in 0..per_trace {
            out.push(span(t, n, service, padding));
        }
    }
    out
}

fn trace_id(trace: u64) -> String {
    span(trace, 0, "", 0).trace_id
}

fn by_service(service: &str, limit: usize) -> TraceQuery {
    TraceQuery {
        service: Some(service.into()),
        start_unix_nano: T0 - 1,
        end_unix_nano: i64::MAX,
        limit,
        ..TraceQuery::default()
    }
}

/// Block directories left under `<dir>/traces/blocks`.
fn local_blocks(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("traces").join("blocks"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn span_blocks_go_to_the_bucket_and_a_fresh_store_finds_traces_there() {
    let garage = Garage::start();
    let first = tempfile::tempdir().unwrap();
    let store = TraceStore::open(s3_options(first.path(), &garage, 0, 64 << 20)).unwrap();
    store.append(spans(0..50, 4, "cart", 0)).await.unwrap();
    store.flush_head().unwrap();
    store.append(spans(50..80, 3, "pay", 0)).await.unwrap();
    store.flush_head().unwrap();
    assert_eq!(store.stats().blocks, 2);
    assert_eq!(
        local_blocks(first.path()),
        0,
        "uploaded blocks leave the data directory"
    );
    let expected = store.trace(&trace_id(60)).unwrap();
    assert_eq!(expected.len(), 3);
    store.close().await.unwrap();
    drop(store);

    // Another process's view, through another node, with an empty cache.
    let second = tempfile::tempdir().unwrap();
    let fresh = TraceStore::open(s3_options(second.path(), &garage, 1, 64 << 20)).unwrap();
    assert_eq!(fresh.stats().blocks, 2);
    assert_eq!(fresh.stats().block_spans, 50 * 4 + 30 * 3);
    assert_eq!(fresh.trace(&trace_id(60)).unwrap(), expected);
    assert_eq!(fresh.trace(&trace_id(7)).unwrap().len(), 4);
    let found = fresh.find_traces(&by_service("pay", 100)).unwrap();
    assert_eq!(found.len(), 30, "every pay trace, from the bucket");
    assert!(found.iter().all(|t| t.len() == 3 && t[0].service == "pay"));
    let services: Vec<String> = fresh.services().into_keys().collect();
    assert_eq!(services, ["cart", "pay"]);
    let cache = fresh.stats().object_cache.unwrap();
    assert!(cache.misses > 0, "the reads went to the bucket: {cache:?}");

    // Retention deletes from the bucket: a third store finds nothing.
    let mut o = s3_options(second.path(), &garage, 1, 64 << 20);
    o.retention_time = Duration::from_secs(60);
    drop(fresh);
    let expiring = TraceStore::open(o).unwrap();
    expiring.maintain(T0 + 24 * 3600 * 1_000_000_000).unwrap();
    assert_eq!(expiring.stats().blocks, 0);
    assert_eq!(
        expiring.stats().retention_deleted_blocks,
        1,
        "the two were merged first"
    );
    drop(expiring);
    until("retention's deletions to reach the bucket", HANG, || {
        let look = tempfile::tempdir().unwrap();
        let s = TraceStore::open(s3_options(look.path(), &garage, 2, 64 << 20)).unwrap();
        match s.stats().blocks {
            0 => Ok(()),
            n => Err(format!("{n} span blocks still listed")),
        }
    });
}

#[tokio::test]
async fn a_cold_trace_lookup_reads_byte_ranges_not_the_whole_file() {
    let garage = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(s3_options(dir.path(), &garage, 0, 64 << 20)).unwrap();
    // 100k spans: seven row groups, attribute columns far larger than the ids.
    store.append(spans(0..20_000, 5, "big", 200)).await.unwrap();
    store.flush_head().unwrap();
    let file_bytes = store.stats().block_bytes;
    let expected = store.trace(&trace_id(12_345)).unwrap();
    assert_eq!(expected.len(), 5);
    store.close().await.unwrap();
    drop(store);

    // A cache smaller than the file never holds it: every read is a range request.
    let cold = tempfile::tempdir().unwrap();
    let fresh = TraceStore::open(s3_options(cold.path(), &garage, 1, 64 << 10)).unwrap();
    let opened = fresh.stats().object_cache.unwrap();
    assert_eq!(fresh.trace(&trace_id(12_345)).unwrap(), expected);
    let after = fresh.stats().object_cache.unwrap();
    let read = after.range_bytes - opened.range_bytes;
    assert!(after.range_requests > opened.range_requests, "{after:?}");
    assert!(
        read * 5 < file_bytes,
        "a lookup read {read} bytes by ranges of a {file_bytes}-byte block: \
         more than the bloom filters, one row group's ids and the matching rows"
    );
    assert_eq!(after.files, 0, "{after:?}");
}

/// A store sharing `garage`'s bucket and the metastore on `pg`.
fn shared(dir: &Path, garage: &Garage, node: usize, pg: &Postgres) -> TraceOptions {
    let mut o = s3_options(dir, garage, node, 64 << 20);
    let mut m = MetastoreConfig::new(pg.dsn("postgres"));
    m.compactor_lease_ttl = Duration::from_secs(3);
    m.gc_grace = Duration::from_secs(2);
    o.metastore = Some(m);
    // The test spans are from 2025: kept, so the blocks counted are the compaction's.
    o.retention_time = Duration::ZERO;
    o
}

#[tokio::test]
async fn stores_sharing_bucket_and_metastore_see_each_others_blocks_and_one_compacts() {
    let garage = Garage::start();
    let pg = Postgres::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TraceStore::open(shared(dir_a.path(), &garage, 0, &pg)).unwrap();
    let b = TraceStore::open(shared(dir_b.path(), &garage, 1, &pg)).unwrap();
    a.append(spans(0..10, 2, "from-a", 0)).await.unwrap();
    a.flush_head().unwrap();
    b.append(spans(10..30, 2, "from-b", 0)).await.unwrap();
    b.flush_head().unwrap();
    assert_eq!((a.stats().blocks, b.stats().blocks), (1, 1));

    until("one store to hold the compactor-traces lease", HANG, || {
        match (a.is_compactor(), b.is_compactor()) {
            (true, false) | (false, true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let (compactor, other) = if a.is_compactor() { (&a, &b) } else { (&b, &a) };
    // The other refreshes first: it lists the compactor's block and compacts nothing.
    other.maintain(didban_base::now_nanos()).unwrap();
    assert_eq!(other.stats().blocks, 2);
    assert_eq!(other.stats().compactions, 0);
    assert_eq!(
        other.trace(&trace_id(3)).unwrap().len(),
        2,
        "a's trace seen by b or b's by a"
    );
    assert_eq!(other.trace(&trace_id(20)).unwrap().len(), 2);

    // The compactor lists the other's block and merges both (one finished window).
    compactor.maintain(didban_base::now_nanos()).unwrap();
    assert_eq!(compactor.stats().compactions, 1);
    assert_eq!(compactor.stats().blocks, 1);
    other.maintain(didban_base::now_nanos()).unwrap();
    assert_eq!(
        other.stats().blocks,
        1,
        "the retired sources left the other's list"
    );
    for s in [&a, &b] {
        assert_eq!(s.stats().block_spans, 60, "nothing lost, nothing twice");
        assert_eq!(s.find_traces(&by_service("from-a", 100)).unwrap().len(), 10);
        assert_eq!(s.find_traces(&by_service("from-b", 100)).unwrap().len(), 20);
    }

    // After the grace period the compactor's garbage collection deletes the sources.
    tokio::time::sleep(Duration::from_secs(3)).await;
    compactor.maintain(didban_base::now_nanos()).unwrap();
    assert_eq!(compactor.stats().gc_deleted_blocks, 2);
    let look = tempfile::tempdir().unwrap();
    let lister = TraceStore::open(s3_options(look.path(), &garage, 2, 64 << 20)).unwrap();
    assert_eq!(
        lister.stats().blocks,
        1,
        "only the merged block is left in the bucket"
    );
}

#[tokio::test]
async fn a_failed_upload_keeps_the_spans_in_the_head_and_the_wal() {
    let mut garage = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(s3_options(dir.path(), &garage, 2, 64 << 20)).unwrap();
    store.append(spans(0..20, 2, "kept", 0)).await.unwrap();
    garage.stop_node(2);
    let err = store.flush_head().unwrap_err();
    assert!(
        err.to_string().contains("s3://"),
        "the error names the bucket: {err}"
    );
    assert_eq!(store.stats().blocks, 0);
    assert_eq!(store.stats().head_spans, 40, "the head stays frozen in memory");
    assert_eq!(store.trace(&trace_id(5)).unwrap().len(), 2, "and queryable");
    assert_eq!(
        local_blocks(dir.path()),
        0,
        "the block not uploaded is not left on disk"
    );
    store.close().await.unwrap();
    drop(store);

    // The next process on the same data directory, through a live node: the WAL still
    // holds the spans, and they are uploaded.
    let again = TraceStore::open(s3_options(dir.path(), &garage, 0, 64 << 20)).unwrap();
    assert_eq!(again.stats().head_spans, 40);
    again.flush_head().unwrap();
    assert_eq!((again.stats().blocks, again.stats().head_spans), (1, 0));
    drop(again);
    let look = tempfile::tempdir().unwrap();
    let fresh = TraceStore::open(s3_options(look.path(), &garage, 1, 64 << 20)).unwrap();
    assert_eq!(fresh.stats().block_spans, 40);
}
