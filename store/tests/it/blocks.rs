//! Head cuts into Parquet blocks, WAL truncation, compaction and retention.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::time::Duration;

use crate::common::*;
use didban_store::model::stale_nan;
use didban_store::{Db, LabelMatcher, MatchOp, Queryable, SeriesSamples};

/// `n` samples every 15 s from `start` for five series.
fn load(start: i64, n: i64) -> Vec<SeriesSamples> {
    let mut out = Vec::new();
    for job in ["a", "b", "c", "d", "e"] {
        let mut points = Vec::new();
        for i in 0..n {
            let v = if job == "e" && i == n - 1 {
                stale_nan()
            } else {
                (i * 7 % 13) as f64 + 0.5
            };
            points.push((start + i * 15_000, v));
        }
        out.push(series("http_requests_total", job, &points));
    }
    out
}

#[tokio::test]
async fn cut_keeps_query_results_and_truncates_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.wal_segment_bytes = 1024;
    let db = Db::open(opts.clone()).unwrap();
    for chunk in 0..8 {
        db.append(load(T0 + chunk * 15 * 15_000, 15)).await.unwrap();
    }
    // 120 samples over 30 min per series: span ≥ 1.5 × 10 min, so maintain cuts
    let before = everything(&db);
    let job_b = db
        .select(&[LabelMatcher::equal("job", "b")], T0 + 5 * MIN, T0 + 7 * MIN)
        .unwrap();
    let segments_before = wal_segments(dir.path()).len();
    assert!(segments_before > 2);
    db.maintain(T0 + 31 * MIN).unwrap();
    let stats = db.stats();
    assert_eq!(stats.blocks_cut, 1);
    assert_eq!(stats.blocks, 1);
    assert_eq!(stats.block_samples, 600);
    assert_eq!(stats.head_samples, 0);
    assert_eq!(stats.frozen_heads, 0);
    assert_same(&everything(&db), &before);
    let again = db
        .select(&[LabelMatcher::equal("job", "b")], T0 + 5 * MIN, T0 + 7 * MIN)
        .unwrap();
    assert_same(&again, &job_b);
    assert_eq!(count(&job_b), 9);
    // only the segment begun at the cut (the series checkpoint) remains
    assert_eq!(wal_segments(dir.path()).len(), 1);
    assert_eq!(stats.wal_segments, 1);
    assert_eq!(block_dirs(dir.path()).len(), 1);

    // more data after the cut, one out-of-order sample into the block's range
    db.append(load(T0 + 30 * MIN, 10)).await.unwrap();
    let ooo = db
        .append(vec![series("x", "a", &[(T0 + 32 * MIN, 1.0)])])
        .await
        .unwrap();
    assert_eq!(ooo.accepted, 1);
    let late = db
        .append(vec![series(
            "http_requests_total",
            "a",
            &[(T0 + 29 * MIN + 1, 42.0)],
        )])
        .await
        .unwrap();
    assert_eq!(late.accepted, 1, "{late:?}");
    let full = everything(&db);
    assert_eq!(count(&full), 600 + 50 + 2);
    drop(db);

    let db = Db::open(opts).unwrap();
    assert_same(&everything(&db), &full);
    // the series' newest timestamp came back from the checkpoint + WAL: this is a duplicate
    let dup = db
        .append(vec![series("http_requests_total", "a", &[(T0 + 30 * MIN, 0.5)])])
        .await
        .unwrap();
    assert_eq!(dup.accepted, 0);
}

#[tokio::test]
async fn overlapping_blocks_are_compacted_with_dedup() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    db.append(load(T0, 40)).await.unwrap(); // T0 .. T0+9:45
    db.flush_head().unwrap();
    // backfill into the block's range: some duplicates of what the block has, some new
    let mut backfill = Vec::new();
    for job in ["a", "b"] {
        let mut pts = Vec::new();
        for i in 30..50 {
            pts.push((T0 + i * 15_000, (i * 7 % 13) as f64 + 0.5));
        }
        pts.push((T0 + 3 * MIN + 7_500, 99.0));
        backfill.push(series("http_requests_total", job, &pts));
    }
    db.append(backfill).await.unwrap();
    let expected = everything(&db);
    // 200 from the block, plus per series a/b: 10 new (40..49) + 1 in-between
    assert_eq!(count(&expected), 200 + 2 * 11);
    db.flush_head().unwrap();
    assert_eq!(db.stats().blocks, 2);
    assert_same(&everything(&db), &expected);

    db.maintain(T0 + 20 * MIN).unwrap();
    let stats = db.stats();
    assert_eq!(stats.compactions, 1);
    assert_eq!(stats.blocks, 1);
    assert_eq!(stats.block_samples, 222, "duplicates removed in the merged block");
    assert_same(&everything(&db), &expected);
    let dirs = block_dirs(dir.path());
    assert_eq!(dirs.len(), 1, "sources deleted: {dirs:?}");
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(dirs[0].join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["compaction"]["level"], 2);
    assert_eq!(meta["compaction"]["sources"].as_array().unwrap().len(), 2);
    drop(db);
    let db = Db::open(options(dir.path())).unwrap();
    assert_same(&everything(&db), &expected);
}

#[tokio::test]
async fn adjacent_blocks_in_a_finished_window_are_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    for k in 0..3 {
        db.append(load(T0 + k * 10 * MIN, 20)).await.unwrap(); // 5 min each, 30-min window
        db.flush_head().unwrap();
    }
    assert_eq!(db.stats().blocks, 3);
    let expected = everything(&db);
    db.maintain(T0 + 25 * MIN).unwrap();
    assert_eq!(db.stats().blocks, 3, "window not finished yet");
    db.append(load(T0 + 31 * MIN, 2)).await.unwrap();
    db.maintain(T0 + 32 * MIN).unwrap();
    let stats = db.stats();
    assert_eq!(stats.blocks, 1);
    assert_eq!(stats.compactions, 1);
    let range = db
        .select(
            &[LabelMatcher::new(MatchOp::RegexMatch, "job", "a|c").unwrap()],
            T0,
            T0 + 30 * MIN - 1,
        )
        .unwrap();
    assert_same(
        &range,
        &expected
            .iter()
            .filter(|s| ["a", "c"].contains(&s.labels.get("job").unwrap()))
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(count(&everything(&db)), 300 + 10);
}

#[tokio::test]
async fn retention_by_time_and_size_deletes_whole_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_sample_age = Duration::from_secs(24 * 3600);
    {
        let db = Db::open(opts.clone()).unwrap();
        for k in 0..3 {
            // blocks 3 h apart: never in one compaction window
            db.append(load(T0 + k * 180 * MIN, 4)).await.unwrap();
            db.flush_head().unwrap();
        }
        db.maintain(T0).unwrap();
        assert_eq!(db.stats().blocks, 3);
        db.close().await.unwrap();
    }
    opts.retention_time = Duration::from_secs(2 * 3600);
    {
        let db = Db::open(opts.clone()).unwrap();
        db.maintain(T0 + 180 * MIN + 2 * 60 * MIN + 1).unwrap();
        let stats = db.stats();
        assert_eq!(stats.blocks, 2);
        assert_eq!(stats.retention_deleted_blocks, 1);
        assert!(db.select(&[], T0, T0 + MIN).unwrap().is_empty());
        db.close().await.unwrap();
    }
    assert_eq!(block_dirs(dir.path()).len(), 2);
    let newest_bytes: u64 = {
        let dirs = block_dirs(dir.path());
        let mut max_t = i64::MIN;
        let mut bytes = 0;
        for d in &dirs {
            let meta: serde_json::Value =
                serde_json::from_slice(&fs::read(d.join("meta.json")).unwrap()).unwrap();
            let t = meta["max_time_ms"].as_i64().unwrap();
            if t > max_t {
                max_t = t;
                bytes = fs::read_dir(d)
                    .unwrap()
                    .map(|e| e.unwrap().metadata().unwrap().len())
                    .sum();
            }
        }
        bytes
    };
    opts.retention_time = Duration::ZERO;
    opts.retention_bytes = newest_bytes;
    let db = Db::open(opts).unwrap();
    db.maintain(T0).unwrap();
    assert_eq!(db.stats().blocks, 1);
    let left = everything(&db);
    assert_eq!(left[0].samples[0].timestamp_ms, T0 + 360 * MIN);
    drop(db);
    assert_eq!(block_dirs(dir.path()).len(), 1);
}

#[tokio::test]
async fn leftover_temporary_directories_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(options(dir.path())).unwrap();
        db.append(load(T0, 4)).await.unwrap();
        db.flush_head().unwrap();
    }
    let blocks = dir.path().join("metrics/blocks");
    fs::create_dir_all(blocks.join(".tmp-deadbeef")).unwrap();
    fs::write(blocks.join(".tmp-deadbeef/samples.parquet"), b"half").unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    assert!(!blocks.join(".tmp-deadbeef").exists());
    assert_eq!(db.stats().blocks, 1);
    assert_eq!(count(&everything(&db)), 20);
}

#[tokio::test]
async fn block_reads_across_row_groups_match_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_sample_age = Duration::from_secs(24 * 3600);
    let db = Db::open(opts).unwrap();
    let mut batch = Vec::new();
    for s in 0..40 {
        let mut points = Vec::new();
        for i in 0..4000i64 {
            points.push((T0 + i * 1000, (s * 4000 + i) as f64));
        }
        batch.push(series(
            if s % 3 == 0 { "a_metric" } else { "b_metric" },
            &format!("j{s:02}"),
            &points,
        ));
    }
    db.append(batch).await.unwrap();
    let queries: Vec<(Vec<LabelMatcher>, i64, i64)> = vec![
        (vec![LabelMatcher::equal("job", "j33")], T0, T0 + 4_000_000),
        (
            vec![LabelMatcher::equal("job", "j32")],
            T0 + 3_000_000,
            T0 + 3_100_000,
        ),
        (
            vec![LabelMatcher::equal("__name__", "a_metric")],
            T0 + 1_500_000,
            T0 + 1_500_000,
        ),
        (
            vec![LabelMatcher::new(MatchOp::RegexMatch, "job", "j0[0-4]|j3[5-9]").unwrap()],
            T0 + 10,
            T0 + 3_999_000,
        ),
        (vec![LabelMatcher::equal("job", "missing")], T0, T0 + 4_000_000),
        (vec![], T0 + 5_000_000, T0 + 6_000_000),
    ];
    let mut before = Vec::new();
    for (m, a, b) in &queries {
        before.push(db.select(m, *a, *b).unwrap());
    }
    db.flush_head().unwrap();
    assert_eq!(db.stats().head_samples, 0);
    for (i, (m, a, b)) in queries.iter().enumerate() {
        assert_same(&db.select(m, *a, *b).unwrap(), &before[i]);
    }
    assert_eq!(count(&before[0]), 4000);
    assert_eq!(count(&before[1]), 101);
    assert_eq!(count(&before[2]), 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn concurrent_appends_during_cuts_and_compactions_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.block_duration = Duration::from_secs(60);
    opts.wal_segment_bytes = 2048;
    let db = std::sync::Arc::new(Db::open(opts.clone()).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let maintainer = {
        let db = db.clone();
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                db.maintain(T0 + 100 * MIN).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let db = db.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..300i64 {
                let t = T0 + i * 1000;
                let r = db
                    .append(vec![series("m", &format!("w{w}"), &[(t, (w * 1000 + i) as f64)])])
                    .await
                    .unwrap();
                assert_eq!(r.accepted, 1);
                if i % 50 == 0 {
                    // readers run alongside: every acknowledged sample is visible
                    let seen = db
                        .select(&[LabelMatcher::equal("job", format!("w{w}"))], T0, t)
                        .unwrap();
                    assert_eq!(count(&seen), i as usize + 1);
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    maintainer.await.unwrap();
    db.maintain(T0 + 100 * MIN).unwrap();
    let stats = db.stats();
    assert!(stats.blocks_cut >= 1, "{stats:?}");
    let all = everything(&db);
    assert_eq!(count(&all), 1200);
    db.close().await.unwrap();
    drop(db);
    let db = Db::open(opts).unwrap();
    assert_same(&everything(&db), &all);
}

#[tokio::test]
async fn a_duplicate_block_left_by_a_crash_is_deduplicated_then_merged() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(options(dir.path())).unwrap();
        db.append(load(T0, 20)).await.unwrap();
        db.flush_head().unwrap();
        db.close().await.unwrap();
    }
    // as if a compaction's output was durable but its source not yet deleted
    let original = block_dirs(dir.path()).pop().unwrap();
    let copy = original.with_file_name(format!("{}-{}-00000000deadbeef", T0, T0 + 19 * 15_000));
    fs::create_dir(&copy).unwrap();
    for f in ["series.parquet", "samples.parquet", "meta.json"] {
        fs::copy(original.join(f), copy.join(f)).unwrap();
    }
    let db = Db::open(options(dir.path())).unwrap();
    assert_eq!(db.stats().blocks, 2);
    assert_eq!(count(&everything(&db)), 100, "reads deduplicate");
    db.maintain(T0 + 10 * MIN).unwrap();
    assert_eq!(db.stats().blocks, 1);
    assert_eq!(db.stats().block_samples, 100);
    assert_eq!(count(&everything(&db)), 100);
    assert_eq!(block_dirs(dir.path()).len(), 1);
}

/// What an ingester answers a querier: the heads only. Before a cut everything is in the
/// head; after it, the cut samples are in the block (not in the answer) and new samples
/// appended since are; merged with the block they give what the database's own read gives.
#[tokio::test]
async fn select_heads_answers_what_no_block_holds_yet() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    let all = [LabelMatcher::new(MatchOp::RegexMatch, "job", ".+").unwrap()];
    for chunk in 0..8 {
        db.append(load(T0 + chunk * 15 * 15_000, 15)).await.unwrap();
    }
    assert_same(&db.select_heads(&all, T0, T0 + 300 * MIN), &everything(&db));
    db.maintain(T0 + 31 * MIN).unwrap();
    assert_eq!(db.stats().blocks, 1);
    assert!(
        db.select_heads(&all, T0, T0 + 300 * MIN).is_empty(),
        "all in the block now"
    );
    db.append(load(T0 + 120 * 15_000, 4)).await.unwrap();
    let heads = db.select_heads(&all, T0, T0 + 300 * MIN);
    assert_eq!(count(&heads), 20, "the 4 new samples of 5 series");
    for s in &heads {
        assert!(s.samples.iter().all(|x| x.timestamp_ms >= T0 + 120 * 15_000));
    }
    let block_part = db.select(&all, T0, T0 + 120 * 15_000 - 1).unwrap();
    let mut parts = block_part;
    parts.extend(heads);
    assert_same(&didban_store::merge_series(parts), &everything(&db));
}
