//! The block index cache: blocks' series lists and postings are read on demand into one
//! cache bounded in bytes; queries over many blocks stay exact while it evicts, also
//! while other queries run.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use didban_store::{Db, LabelMatcher, Labels, MatchOp, Queryable, Sample, SeriesSamples};

const BLOCKS: i64 = 12;
const SERIES_PER_BLOCK: i64 = 150;

/// Block `b`'s data: 150 series with 20 samples each over 5 minutes; ids 0–49 recur in
/// every block, the rest are new in each (like a burst's one-off series). Every fifth
/// series has a label `Zone`, which sorts before `__name__`, so a metric's series are
/// split into several runs of the block's series list.
fn block_data(b: i64) -> Vec<SeriesSamples> {
    let mut out = Vec::new();
    for i in 0..SERIES_PER_BLOCK {
        let id = if i < 50 { i } else { b * 1_000 + i };
        let zone = if id % 5 == 0 {
            format!("z{}", id % 2)
        } else {
            String::new()
        };
        let labels = Labels::from_pairs([
            ("__name__", format!("cache_metric_{}", id % 3)),
            ("job", if id % 2 == 0 { "even" } else { "odd" }.to_string()),
            ("id", format!("{id:06}")),
            ("Zone", zone),
        ]);
        let mut samples = Vec::new();
        for k in 0..20 {
            samples.push(Sample::new(
                T0 + b * 5 * MIN + k * 15_000,
                (b * 100 + k) as f64 + id as f64 / 1e6,
            ));
        }
        out.push(SeriesSamples::floats(labels, samples));
    }
    out
}

/// Writes the blocks (one head cut each) and returns every series with every sample.
async fn write_blocks(db: &Db) -> BTreeMap<Labels, Vec<Sample>> {
    let mut expected: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for b in 0..BLOCKS {
        let data = block_data(b);
        for s in &data {
            expected
                .entry(s.labels.clone())
                .or_default()
                .extend(s.samples.iter().copied());
        }
        db.append(data).await.unwrap();
        db.flush_head().unwrap();
    }
    assert_eq!(db.stats().blocks, BLOCKS as u64);
    expected
}

/// The expected answer to `matchers` over `[start, end]`.
fn expect(
    all: &BTreeMap<Labels, Vec<Sample>>,
    matchers: &[LabelMatcher],
    start: i64,
    end: i64,
) -> Vec<SeriesSamples> {
    let mut out = Vec::new();
    for (labels, samples) in all {
        if !matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
        {
            continue;
        }
        let mut kept = Vec::new();
        for s in samples {
            if s.timestamp_ms >= start && s.timestamp_ms <= end {
                kept.push(*s);
            }
        }
        if !kept.is_empty() {
            out.push(SeriesSamples {
                labels: labels.clone(),
                samples: kept,
                histograms: Vec::new(),
            });
        }
    }
    out
}

/// Selectors of every kind the postings answer, with ranges over all or some blocks.
fn queries() -> Vec<(Vec<LabelMatcher>, i64, i64)> {
    let re = |name: &str, v: &str| LabelMatcher::new(MatchOp::RegexMatch, name, v).unwrap();
    let end = T0 + BLOCKS * 5 * MIN;
    vec![
        (vec![re("__name__", ".+")], i64::MIN, i64::MAX),
        (vec![LabelMatcher::equal("__name__", "cache_metric_1")], T0, end),
        (
            vec![LabelMatcher::equal("job", "even"), re("id", "0000[0-4].")],
            T0 + 7 * MIN,
            T0 + 31 * MIN,
        ),
        (
            vec![
                re("__name__", "cache_metric_.*"),
                LabelMatcher::new(MatchOp::NotEqual, "job", "odd").unwrap(),
            ],
            T0 + 40 * MIN,
            end,
        ),
        (vec![LabelMatcher::equal("id", "011120")], i64::MIN, i64::MAX),
    ]
}

fn small_cache_options(dir: &Path, cache_bytes: u64) -> didban_store::DbOptions {
    let mut o = options(dir);
    o.block_index_cache_bytes = cache_bytes;
    o
}

/// Bytes one block's whole index is charged, read from a database whose cache holds
/// them all.
async fn one_index_bytes(dir: &Path) -> (u64, BTreeMap<Labels, Vec<Sample>>) {
    let db = Db::open(small_cache_options(dir, 1 << 30)).unwrap();
    let expected = write_blocks(&db).await;
    // No matcher on the metric name: every block's whole series list is read.
    let any_job = LabelMatcher::new(MatchOp::RegexMatch, "job", ".+").unwrap();
    db.select(&[any_job], i64::MIN, i64::MAX).unwrap();
    let c = db.stats().block_index_cache;
    assert_eq!(
        c.entries, BLOCKS as u64,
        "a roomy cache keeps every block's index"
    );
    // A selector naming metrics reads only their parts: 3 names per block, each in
    // three runs (with Zone z0, with Zone z1, without).
    everything(&db);
    assert_eq!(db.stats().block_index_cache.entries, 10 * BLOCKS as u64);
    db.close().await.unwrap();
    (c.bytes / BLOCKS as u64, expected)
}

#[tokio::test]
async fn queries_over_many_blocks_are_exact_while_a_small_cache_evicts() {
    let dir = tempfile::tempdir().unwrap();
    let (one, expected) = one_index_bytes(dir.path()).await;
    let limit = one * 5 / 2;
    let db = Db::open(small_cache_options(dir.path(), limit)).unwrap();
    assert_eq!(db.stats().blocks, BLOCKS as u64);
    assert_eq!(db.stats().block_index_cache.entries, 0, "nothing is read at open");
    for round in 0..3 {
        for (matchers, start, end) in queries() {
            let got = db.select(&matchers, start, end).unwrap();
            assert_same(&got, &expect(&expected, &matchers, start, end));
            let c = db.stats().block_index_cache;
            assert!(
                c.bytes <= limit,
                "round {round}: {} bytes cached, limit {limit}",
                c.bytes
            );
        }
    }
    let c = db.stats().block_index_cache;
    assert!(c.evictions > BLOCKS as u64, "{c:?}");
    assert!(c.misses > c.evictions, "{c:?}");
    // The newest block queried twice in a row is read once.
    let last = (
        vec![LabelMatcher::equal("id", "000007")],
        T0 + 56 * MIN,
        T0 + 57 * MIN,
    );
    db.select(&last.0, last.1, last.2).unwrap();
    let before = db.stats().block_index_cache;
    let got = db.select(&last.0, last.1, last.2).unwrap();
    assert_same(&got, &expect(&expected, &last.0, last.1, last.2));
    let after = db.stats().block_index_cache;
    assert_eq!((after.hits, after.misses), (before.hits + 1, before.misses));

    // Compaction merges blocks; the sources' indexes leave the cache with them.
    db.maintain(T0 + 24 * 60 * MIN).unwrap();
    let stats = db.stats();
    assert!(stats.compactions > 0 && stats.blocks < BLOCKS as u64, "{stats:?}");
    for (matchers, start, end) in queries() {
        assert_same(
            &db.select(&matchers, start, end).unwrap(),
            &expect(&expected, &matchers, start, end),
        );
    }
    let c = db.stats().block_index_cache;
    assert!(c.entries <= db.stats().blocks && c.bytes <= limit, "{c:?}");
}

#[tokio::test]
async fn a_cache_of_zero_bytes_keeps_nothing_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(small_cache_options(dir.path(), 0)).unwrap();
    let expected = write_blocks(&db).await;
    for (matchers, start, end) in queries() {
        assert_same(
            &db.select(&matchers, start, end).unwrap(),
            &expect(&expected, &matchers, start, end),
        );
    }
    let c = db.stats().block_index_cache;
    assert_eq!((c.entries, c.bytes, c.hits), (0, 0, 0));
    assert!(c.misses >= BLOCKS as u64);
}

/// Queries on several threads evict each other's blocks all the time (the cache holds
/// about one block's index); every answer is still exact, since a query keeps the index
/// it is reading alive.
#[tokio::test]
async fn eviction_during_running_queries_does_not_disturb_them() {
    let dir = tempfile::tempdir().unwrap();
    let (one, expected) = one_index_bytes(dir.path()).await;
    let limit = one + one / 2;
    let db = Db::open(small_cache_options(dir.path(), limit)).unwrap();
    let all = queries();
    std::thread::scope(|scope| {
        for t in 0..4usize {
            let db = &db;
            let all = &all;
            let expected = &expected;
            scope.spawn(move || {
                for round in 0..6usize {
                    let (matchers, start, end) = &all[(t + round) % all.len()];
                    let got = db.select(matchers, *start, *end).unwrap();
                    assert_same(&got, &expect(expected, matchers, *start, *end));
                }
            });
        }
    });
    let c = db.stats().block_index_cache;
    assert!(c.evictions > 2 * BLOCKS as u64, "{c:?}");
    assert!(c.bytes <= limit, "{c:?}");
}
