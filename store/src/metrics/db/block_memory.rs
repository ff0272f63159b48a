//! What writing a block costs in memory, measured with a counting allocator on the test's
//! thread: writing a frozen head, opening the block, and compacting blocks must not hold
//! a copy of the series list, so their peak grows with the series count by a few bytes
//! per series at most (the head's own cost is hundreds). And a frozen head stays in the
//! head budget until it is freed.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use allocation_counter::measure;

use super::maintain::write_head;
use crate::metrics::append::{AppendReport, SeriesLimits};
use crate::metrics::block::{compact, Block, BlockIndexCache};
use crate::metrics::db::{Db, DbOptions};
use crate::metrics::head::memory::SeriesGate;
use crate::metrics::head::rules::AppendRules;
use crate::metrics::head::striped::StripedHead;
use crate::model::{Labels, Sample, SeriesSamples};
use crate::storage::object::BlockFiles;

/// Peak bytes a write may hold per extra series: one reference per series puts the head
/// in label order (8 B). The old writer held 323 B per series (1,141 B for a merge), the
/// head itself holds about 700.
const BYTES_PER_SERIES: u64 = 16;
/// Difference in peak allowed whatever the series count: where row groups and batches
/// happen to be cut moves the peak by up to ~2 MB (measured).
const CUT_SLACK_BYTES: u64 = 4 << 20;
/// Most bytes a merge may hold: a batch of each source's series and samples and the
/// writer's row groups (measured: 25–28 MB in a debug build).
const MERGE_PEAK_BYTES: u64 = 40 << 20;
/// Most bytes a head write may hold: a row group of each file being encoded and a batch
/// of sample rows (measured: 13–14 MB in a debug build).
const WRITE_PEAK_BYTES: u64 = 24 << 20;
/// Samples per series.
const SAMPLES: usize = 4;
/// Series counts compared: both large enough that the writer's row groups (32,768 series,
/// 131,072 sample rows) and batches are full, so what grows past them grows per series.
const SMALL: usize = 36_000;
const LARGE: usize = 72_000;

fn rules() -> AppendRules {
    AppendRules {
        limits: SeriesLimits::default(),
        out_of_order_window_ms: 600_000,
        max_sample_age_ms: 0,
        max_future_ms: 0,
    }
}

/// Labels like a cardinality burst: 100 metric names, a unique id per series.
fn burst_labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("burst_metric_{}", i % 100)),
        ("job", "load".to_string()),
        ("instance", format!("10.0.{}.{}:9100", i / 250 % 250, i % 250)),
        ("request_id", format!("{i:016x}-{:08x}", i.wrapping_mul(7919))),
    ])
}

/// A head of `n` series with [`SAMPLES`] samples each, series `offset..offset + n`.
fn head_of(n: usize, offset: usize, t0: i64) -> StripedHead {
    let head = StripedHead::new(None);
    let mut report = AppendReport::default();
    let mut batch = Vec::with_capacity(n);
    for i in offset..offset + n {
        let mut samples = Vec::new();
        for k in 0..SAMPLES {
            samples.push(Sample::new(t0 + k as i64 * 15_000 + i as i64, k as f64));
        }
        batch.push(SeriesSamples {
            labels: burst_labels(i),
            samples,
            histograms: Vec::new(),
        });
    }
    head.append(batch, &mut [], &rules(), 0, SeriesGate::default(), &mut report);
    assert_eq!(head.num_series(), n as u64);
    head
}

/// Writes a head of `n` series as a block; returns the peak bytes the write held, the
/// head's own accounted bytes and the block's directory.
fn measure_write(n: usize, dir: &Path) -> (u64, u64, PathBuf) {
    let head = head_of(n, 0, 1_000_000);
    let mut written = None;
    let peak =
        measure(|| written = Some(write_head(&head, &Default::default(), dir).unwrap().unwrap())).bytes_max;
    (peak, head.bytes(), written.unwrap())
}

/// Peak bytes for a small and a large count; asserts the growth stays under
/// [`CUT_SLACK_BYTES`] plus [`BYTES_PER_SERIES`] per extra series.
fn assert_bounded_growth(what: &str, small: (usize, u64), large: (usize, u64)) {
    let extra_series = (large.0 - small.0) as u64;
    let growth = large.1.saturating_sub(small.1);
    eprintln!(
        "{what}: peak {} B for {} series, {} B for {} series: {:.1} B per extra series",
        small.1,
        small.0,
        large.1,
        large.0,
        growth as f64 / extra_series as f64
    );
    assert!(
        growth <= CUT_SLACK_BYTES + extra_series * BYTES_PER_SERIES,
        "{what}: the peak grew by {growth} B for {extra_series} more series \
         (over {CUT_SLACK_BYTES} B + {BYTES_PER_SERIES} B each)"
    );
}

#[test]
fn writing_a_frozen_head_holds_a_bounded_working_set() {
    let dir = tempfile::tempdir().unwrap();
    let (small_peak, _, small_dir) = measure_write(SMALL, dir.path());
    let (large_peak, head_bytes, large_dir) = measure_write(LARGE, dir.path());
    assert_bounded_growth("head write", (SMALL, small_peak), (LARGE, large_peak));
    assert!(
        large_peak < WRITE_PEAK_BYTES,
        "writing a head of {head_bytes} B held {large_peak} B (over {WRITE_PEAK_BYTES} B)"
    );

    // Opening the block reads its series list a batch at a time.
    let cache = Arc::new(BlockIndexCache::new(0));
    let mut opened = Vec::new();
    let small_open =
        measure(|| opened.push(Block::open(BlockFiles::local(&small_dir, "block"), &cache).unwrap()))
            .bytes_max;
    let large_open =
        measure(|| opened.push(Block::open(BlockFiles::local(&large_dir, "block"), &cache).unwrap()))
            .bytes_max;
    assert_bounded_growth("block open", (SMALL, small_open), (LARGE, large_open));
    assert_eq!(opened[1].meta.series, LARGE as u64);
    assert_eq!(opened[1].meta.samples, (LARGE * SAMPLES) as u64);
}

#[test]
fn compacting_blocks_holds_a_bounded_working_set() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(BlockIndexCache::new(0));
    let mut peaks = Vec::new();
    // Merged blocks of 1.5 × SMALL and 1.5 × LARGE series.
    for n in [SMALL, LARGE] {
        // Two blocks sharing half of their series, so the merge interleaves and deduplicates.
        let mut sources = Vec::new();
        for offset in [0, n / 2] {
            let head = head_of(n, offset, 1_000_000);
            let written = write_head(&head, &Default::default(), dir.path())
                .unwrap()
                .unwrap();
            sources.push(Arc::new(
                Block::open(BlockFiles::local(&written, "block"), &cache).unwrap(),
            ));
        }
        let mut merged = None;
        let peak = measure(|| merged = compact::merge(dir.path(), &sources).unwrap()).bytes_max;
        let block = Block::open(BlockFiles::local(&merged.unwrap(), "block"), &cache).unwrap();
        assert_eq!(block.meta.series, (n + n / 2) as u64);
        assert_eq!(block.meta.samples, (SAMPLES * (n + n / 2)) as u64);
        assert!(peak < MERGE_PEAK_BYTES, "merging {n}-series blocks held {peak} B");
        peaks.push((n, peak));
    }
    assert_bounded_growth("compaction", peaks[0], peaks[1]);
}

#[tokio::test]
async fn a_frozen_head_stays_counted_until_it_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(DbOptions::new(dir.path())).unwrap();
    let t = didban_base::now_ms();
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.push(SeriesSamples {
            labels: burst_labels(i),
            samples: vec![Sample::new(t, 1.0)],
            histograms: Vec::new(),
        });
    }
    db.append(batch).await.unwrap();
    let bytes = db.head.read().bytes();
    assert!(bytes > 0);

    db.cut_head_if_due(true).unwrap();
    assert_eq!(db.frozen_bytes.load(Ordering::Relaxed), bytes);
    // What a query does: it holds the frozen heads it reads.
    let reader = db.frozen.read().first().cloned().unwrap();
    db.persist_frozen().unwrap();
    assert!(db.frozen.read().is_empty(), "the block replaced the frozen head");
    assert_eq!(db.stats().blocks, 1);
    assert_eq!(
        db.frozen_bytes.load(Ordering::Relaxed),
        bytes,
        "a frozen head a query still holds is still in memory"
    );
    drop(reader);
    assert_eq!(db.frozen_bytes.load(Ordering::Relaxed), 0);
}
