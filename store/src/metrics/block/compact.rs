//! Compaction: choosing blocks to merge and merging them into one.
//!
//! Overlapping blocks (backfill, head cuts replayed after a crash, interrupted
//! compactions) are always merged first. Otherwise blocks that fall inside the same
//! aligned window of 3× and then 12× the block duration are merged once the window has
//! passed (2h blocks → 6h → 24h with the default duration).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cursor::{SampleCursor, SeriesCursor};
use super::histograms::HistogramCursor;
use super::meta::CompactionMeta;
use super::reader::Block;
use super::writer::BlockWriter;
use crate::model::{HistogramSample, Labels, Sample};
use crate::storage::BlockError;

/// Groups of indexes into `blocks` (sorted by min time) that should each become one block.
pub(crate) fn plan(blocks: &[Arc<Block>], block_duration_ms: i64, newest_ms: i64) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_max = i64::MIN;
    for (i, b) in blocks.iter().enumerate() {
        if !current.is_empty() && b.meta.min_time_ms <= current_max {
            current.push(i);
            current_max = current_max.max(b.meta.max_time_ms);
            continue;
        }
        if current.len() > 1 {
            groups.push(std::mem::take(&mut current));
        }
        current = vec![i];
        current_max = b.meta.max_time_ms;
    }
    if current.len() > 1 {
        groups.push(current);
    }
    if !groups.is_empty() || block_duration_ms <= 0 {
        return groups;
    }

    for factor in [3i64, 12] {
        let range = block_duration_ms.saturating_mul(factor);
        let mut buckets: Vec<(i64, Vec<usize>)> = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            let window = b.meta.min_time_ms.div_euclid(range);
            if b.meta.max_time_ms.div_euclid(range) != window {
                continue;
            }
            match buckets.iter_mut().find(|(w, _)| *w == window) {
                Some((_, members)) => members.push(i),
                None => buckets.push((window, vec![i])),
            }
        }
        for (window, members) in buckets {
            let window_end = window.saturating_add(1).saturating_mul(range);
            if members.len() > 1 && window_end <= newest_ms {
                groups.push(members);
            }
        }
        if !groups.is_empty() {
            return groups;
        }
    }
    groups
}

/// Merges `sources` into one new block in `blocks_dir`, deduplicating samples with equal
/// timestamps (the first source in the list wins). Returns the new block's directory.
/// Series lists and samples are streamed from each source's files, so a merge holds a
/// batch of each, not whole series lists (and leaves the index cache alone).
pub(crate) fn merge(blocks_dir: &Path, sources: &[Arc<Block>]) -> Result<Option<PathBuf>, BlockError> {
    let mut writer = BlockWriter::new(blocks_dir)?;
    let mut cursors = Vec::with_capacity(sources.len());
    let mut series = Vec::with_capacity(sources.len());
    let mut hist_cursors = Vec::with_capacity(sources.len());
    // The id of the next series of each source (its row in `series.parquet`), which
    // keys its rows in `histograms.parquet`.
    let mut next_ids = vec![0u64; sources.len()];
    for b in sources {
        cursors.push(SampleCursor::open(&b.files)?);
        series.push(SeriesCursor::open(&b.files)?);
        hist_cursors.push(HistogramCursor::open(&b.files)?);
    }
    let mut samples: Vec<Sample> = Vec::new();
    let mut histograms: Vec<HistogramSample> = Vec::new();
    loop {
        let mut smallest: Option<Labels> = None;
        for list in series.iter_mut() {
            if let Some(s) = list.peek()? {
                if smallest.as_ref().is_none_or(|m| s.labels < *m) {
                    smallest = Some(s.labels.clone());
                }
            }
        }
        let Some(labels) = smallest else {
            break;
        };
        samples.clear();
        histograms.clear();
        let mut contributors = 0;
        for (i, list) in series.iter_mut().enumerate() {
            let Some(series) = list.next_series_if(|s| s.labels == labels)? else {
                continue;
            };
            cursors[i].take(&series, &mut samples)?;
            if let (Some(h), Some(id)) = (hist_cursors.get_mut(i), next_ids.get_mut(i)) {
                h.take(*id, &mut histograms)?;
                *id += 1;
            }
            contributors += 1;
        }
        if contributors > 1 {
            samples.sort_by_key(|s| s.timestamp_ms);
            samples.dedup_by_key(|s| s.timestamp_ms);
            histograms.sort_by_key(|s| s.timestamp_ms);
            histograms.dedup_by_key(|s| s.timestamp_ms);
        }
        writer.add_series(&labels, &samples, &histograms)?;
    }
    let mut level = 0;
    let mut ids = Vec::new();
    let mut positions = crate::AppliedPositions::default();
    for b in sources {
        level = level.max(b.meta.compaction.level);
        ids.push(b.meta.id.clone());
        positions.merge_map(&b.meta.compaction.ingest_positions);
    }
    writer.finish(CompactionMeta {
        level: level + 1,
        sources: ids,
        ingest_positions: positions.as_map().clone(),
    })
}
