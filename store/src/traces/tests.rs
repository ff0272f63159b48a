#![allow(clippy::unwrap_used)]
use super::span::tests::span;
use super::*;

fn query(start: i64, end: i64) -> TraceQuery {
    TraceQuery {
        start_unix_nano: start,
        end_unix_nano: end,
        limit: 20,
        ..TraceQuery::default()
    }
}

#[tokio::test]
async fn spans_survive_reopen_and_block_cut_with_bloom_filtered_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    let mut batch = Vec::new();
    for t in 1..=200u8 {
        batch.push(span(
            t,
            1,
            0,
            if t % 2 == 0 { "even" } else { "odd" },
            "GET",
            1000 + t as i64,
        ));
        batch.push(span(t, 2, 1, "db", "SELECT", 1001 + t as i64));
    }
    assert_eq!(store.append(batch).await.unwrap(), 400);
    store.close().await.unwrap();
    drop(store);

    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    assert_eq!(store.stats().head_spans, 400);
    assert_eq!(store.trace(&format!("{:032x}", 7)).unwrap().len(), 2);
    store.flush_head().unwrap();
    let stats = store.stats();
    assert_eq!((stats.head_spans, stats.blocks, stats.block_spans), (0, 1, 400));
    let spans = store.trace(&format!("{:032x}", 7)).unwrap();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[1].parent_span_id, spans[0].span_id);
    assert_eq!(spans[0].attributes["http.status_code"], 200);
    assert_eq!(spans[0].events.len(), 1);
    assert!(store.trace(&format!("{:032x}", 999)).unwrap().is_empty());

    let deps = store.dependencies(0, i64::MAX).unwrap();
    assert_eq!(deps.len(), 2);
    assert_eq!(
        (
            deps[0].parent.as_str(),
            deps[0].child.as_str(),
            deps[0].call_count
        ),
        ("even", "db", 100)
    );
    let services = store.services();
    assert_eq!(
        services.keys().cloned().collect::<Vec<_>>(),
        vec!["db", "even", "odd"]
    );
    let mut q = query(0, i64::MAX);
    q.service = Some("even".into());
    q.limit = 3;
    let found = store.find_traces(&q).unwrap();
    assert_eq!(found.len(), 3);
    assert_eq!(found[0][0].trace_id, format!("{:032x}", 200));
    assert_eq!(found[0].len(), 2, "found traces come with all their spans");
    q.tags = vec![("http.status_code".into(), "200".into())];
    assert_eq!(store.find_traces(&q).unwrap().len(), 3);
    q.tags = vec![("http.status_code".into(), "500".into())];
    assert!(store.find_traces(&q).unwrap().is_empty());
    q.tags.clear();
    q.operation = Some("SELECT".into());
    q.service = Some("db".into());
    q.limit = 500;
    assert_eq!(store.find_traces(&q).unwrap().len(), 200);

    // The block's Parquet file carries a bloom filter on trace_id.
    let blocks = store.blocks.read().clone();
    let path = blocks[0].files.path("spans.parquet");
    let file = std::fs::File::open(path).unwrap();
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let filter = builder.get_row_group_column_bloom_filter(0, 0).unwrap().unwrap();
    assert!(filter.check(format!("{:032x}", 7).as_str()));
    store.close().await.unwrap();
    drop(store);

    // After the cut the WAL holds nothing: a reopen finds the spans once, in the block.
    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    assert_eq!(store.stats().head_spans, 0);
    assert_eq!(store.trace(&format!("{:032x}", 7)).unwrap().len(), 2);
}

#[tokio::test]
async fn retention_drops_old_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = TraceOptions::new(dir.path());
    options.retention_time = Duration::from_secs(1);
    let store = TraceStore::open(options).unwrap();
    store.append(vec![span(1, 1, 0, "a", "x", 1_000)]).await.unwrap();
    store.flush_head().unwrap();
    assert_eq!(store.stats().blocks, 1);
    store.maintain(5_000_000_000).unwrap();
    assert_eq!(store.stats().blocks, 0);
    assert_eq!(store.stats().retention_deleted_blocks, 1);
}

#[tokio::test]
async fn blocks_of_a_finished_window_are_merged_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = TraceOptions::new(dir.path());
    options.block_duration = Duration::from_nanos(1000);
    options.retention_time = Duration::ZERO;
    let store = TraceStore::open(options).unwrap();
    // Three blocks in the window [0, 12000) ns; the second repeats a span of the first, as
    // a crash between a block write and the WAL truncation would.
    store
        .append(vec![span(1, 1, 0, "a", "x", 100), span(2, 1, 0, "a", "x", 200)])
        .await
        .unwrap();
    store.flush_head().unwrap();
    store
        .append(vec![span(2, 1, 0, "a", "x", 200), span(2, 2, 1, "b", "y", 300)])
        .await
        .unwrap();
    store.flush_head().unwrap();
    store.append(vec![span(3, 1, 0, "c", "z", 5000)]).await.unwrap();
    store.flush_head().unwrap();
    // One block in the next window, still open.
    store.append(vec![span(4, 1, 0, "a", "x", 12_500)]).await.unwrap();
    store.flush_head().unwrap();
    assert_eq!(store.stats().blocks, 4);
    store.maintain(13_500).unwrap();
    let stats = store.stats();
    assert_eq!((stats.blocks, stats.compactions, stats.block_spans), (2, 1, 5));
    assert_eq!(store.trace(&format!("{:032x}", 2)).unwrap().len(), 2);
    let blocks = store.blocks.read().clone();
    assert_eq!(blocks[0].meta.level, 2);
    assert_eq!(blocks[0].meta.sources.len(), 3);
    assert_eq!(blocks[0].meta.services.len(), 3);
    drop(blocks);
    let mut on_disk = 0;
    for entry in std::fs::read_dir(dir.path().join("traces/blocks")).unwrap() {
        if !entry.unwrap().file_name().to_string_lossy().starts_with('.') {
            on_disk += 1;
        }
    }
    assert_eq!(on_disk, 2, "merged sources are deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_skips_row_groups_by_time_duration_and_service() {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    // 40,000 one-span traces: three row groups of 16Ki rows in trace-id order. Only the last
    // 2,000 (all in the last row group) are the slow "batch" service.
    let mut batch = Vec::with_capacity(40_000);
    for i in 0..40_000i64 {
        let mut s = span(1, 1, 0, "web", "GET", 1_000 + i);
        s.trace_id = format!("{i:032x}");
        if i >= 38_000 {
            s.service = "batch".into();
            s.name = "nightly".into();
            s.duration_nano = 5_000_000_000;
        }
        batch.push(s);
    }
    store.append(batch).await.unwrap();
    store.flush_head().unwrap();
    let blocks = store.blocks.read().clone();
    assert_eq!(blocks.len(), 1);
    let block = &blocks[0];
    let all = block.candidate_row_groups(&query(0, i64::MAX)).unwrap();
    assert_eq!(all, vec![0, 1, 2]);

    let mut slow = query(0, i64::MAX);
    slow.min_duration_nano = Some(1_000_000_000);
    assert_eq!(
        block.candidate_row_groups(&slow).unwrap(),
        vec![2],
        "duration statistics"
    );
    let mut by_service = query(0, i64::MAX);
    by_service.service = Some("batch".into());
    assert_eq!(
        block.candidate_row_groups(&by_service).unwrap(),
        vec![2],
        "service bloom filter"
    );
    let mut by_operation = query(0, i64::MAX);
    by_operation.operation = Some("nightly".into());
    assert_eq!(block.candidate_row_groups(&by_operation).unwrap(), vec![2]);
    let mut nowhere = query(0, i64::MAX);
    nowhere.service = Some("nobody".into());
    assert!(block.candidate_row_groups(&nowhere).unwrap().is_empty());
    // Start times 1,000..41,000 lie in trace-id order too: a narrow window keeps one group.
    assert_eq!(block.candidate_row_groups(&query(1_000, 1_100)).unwrap(), vec![0]);

    // The pruned search finds exactly what a full scan would.
    slow.limit = 5_000;
    let found = store.find_traces(&slow).unwrap();
    assert_eq!(found.len(), 2_000);
    assert!(found.iter().all(|t| t[0].service == "batch"));
    by_service.limit = 10;
    let found = store.find_traces(&by_service).unwrap();
    assert_eq!(found.len(), 10);
    assert_eq!(found[0][0].trace_id, format!("{:032x}", 39_999), "newest first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_stops_at_blocks_older_than_the_traces_already_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    // Three blocks of three traces each: old (starts 1_000..), middle (2_000..), new (3_000..).
    for (block, base) in [(0u8, 1_000i64), (1, 2_000), (2, 3_000)] {
        let spans: Vec<Span> = (0..3u8)
            .map(|i| span(block * 10 + i + 1, 1, 0, "web", "GET", base + i64::from(i)))
            .collect();
        store.append(spans).await.unwrap();
        store.flush_head().unwrap();
    }
    assert_eq!(store.stats().blocks, 3);
    // Empty the oldest block's file (its trace ids 1..3 are outside every id looked up
    // below, so lookups skip it by statistics): a search answered by the newer blocks never
    // scans it.
    let oldest = store
        .blocks
        .read()
        .iter()
        .find(|b| b.meta.max_start_unix_nano < 2_000)
        .unwrap()
        .files
        .path("spans.parquet");
    let file = oldest;
    let content = std::fs::read(&file).unwrap();
    std::fs::write(&file, b"").unwrap();

    let mut q = query(0, i64::MAX);
    q.limit = 4;
    let found = store.find_traces(&q).unwrap();
    let starts: Vec<i64> = found.iter().map(|t| t[0].start_unix_nano).collect();
    assert_eq!(
        starts,
        vec![3_002, 3_001, 3_000, 2_002],
        "newest four, from the two newest blocks"
    );
    // Asking for more than the newer blocks hold has to read the oldest one.
    q.limit = 7;
    assert!(
        store.find_traces(&q).is_err(),
        "the oldest block was needed and is gone"
    );
    std::fs::write(&file, content).unwrap();
    let found = store.find_traces(&q).unwrap();
    assert_eq!(found.len(), 7);
    assert_eq!(found[6][0].start_unix_nano, 1_002);
}

#[tokio::test]
async fn unpublished_reads_see_the_heads_only_and_exchange_keeps_resources() {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    let mut resource = serde_json::Map::new();
    resource.insert("host.name".into(), serde_json::Value::from("web-1"));
    let resource = Arc::new(resource);
    let mut root = span(1, 1, 0, "front", "GET /", 1_000);
    root.resource = resource.clone();
    let mut child = span(1, 2, 1, "back", "charge", 1_001);
    child.resource = resource;
    store.append(vec![root, child]).await.unwrap();
    let id = format!("{:032x}", 1);
    assert_eq!(store.unpublished_traces(std::slice::from_ref(&id)).len(), 2);
    assert_eq!(store.unpublished_matches(&query(0, 2_000)).get(&id), Some(&1_001));
    assert_eq!(store.unpublished_services().len(), 2);
    assert_eq!(dependencies_of(store.unpublished_edges(0, 2_000)).len(), 1);
    let wire = decode_spans(&encode_spans(
        &store.unpublished_traces(std::slice::from_ref(&id)),
    ))
    .unwrap();
    assert_eq!(wire[0].resource["host.name"], "web-1");

    // Once in a block, the spans are no longer unpublished; the full reads still see them
    // once, and the block's matches and edges read apart give the same answers.
    store.flush_head().unwrap();
    assert!(store.unpublished_traces(std::slice::from_ref(&id)).is_empty());
    assert!(store.unpublished_matches(&query(0, 2_000)).is_empty());
    assert!(store.unpublished_services().is_empty());
    assert_eq!(store.trace(&id).unwrap().len(), 2);
    let mut found = HashMap::new();
    store.block_matches(&query(0, 2_000), &mut found).unwrap();
    assert_eq!(found.get(&id), Some(&1_001));
    let deps = dependencies_of(store.block_edges(0, 2_000).unwrap());
    assert_eq!(
        deps,
        vec![Dependency {
            parent: "front".into(),
            child: "back".into(),
            call_count: 1
        }]
    );
    // The same edges from two sources count once.
    let mut twice = store.block_edges(0, 2_000).unwrap();
    twice.extend(store.block_edges(0, 2_000).unwrap());
    assert_eq!(dependencies_of(twice), deps);
    assert_eq!(newest_traces(found, 5), vec![id]);
}
