//! Compaction of span blocks: the blocks of a finished window (12 × `block_duration`,
//! aligned on the epoch) are merged into one, streaming: every source is already sorted
//! by `(trace_id, start, span_id)`, so a k-way merge writes the new block with a batch of
//! each source in memory. Identical spans (same trace id, start and span id, left by a
//! crash between a block write and the WAL truncation) are written once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::block::SpanBlock;
use super::writer::{span_order, SpanBlockWriter};
use crate::storage::BlockError;

/// Groups of block indexes (into `blocks`) to merge: two or more blocks lying entirely in
/// one window that ended before `done_before`.
pub(crate) fn plan(blocks: &[Arc<SpanBlock>], window: i64, done_before: i64) -> Vec<Vec<usize>> {
    let window = window.max(1);
    let mut groups: std::collections::BTreeMap<i64, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, b) in blocks.iter().enumerate() {
        let w = b.meta.min_start_unix_nano.div_euclid(window);
        if b.meta.max_start_unix_nano.div_euclid(window) != w {
            continue;
        }
        let end = w.saturating_add(1).saturating_mul(window);
        if end > done_before {
            continue;
        }
        groups.entry(w).or_default().push(i);
    }
    let mut out = Vec::new();
    for (_, g) in groups {
        if g.len() >= 2 {
            out.push(g);
        }
    }
    out
}

/// Merges `sources` into one new block; returns its directory.
pub(crate) fn merge(blocks_dir: &Path, sources: &[Arc<SpanBlock>]) -> Result<Option<PathBuf>, BlockError> {
    let mut rows = 0u64;
    let mut level = 1;
    let mut ids = Vec::with_capacity(sources.len());
    let mut cursors = Vec::with_capacity(sources.len());
    let mut positions = crate::AppliedPositions::default();
    for s in sources {
        rows += s.meta.spans;
        level = level.max(s.meta.level + 1);
        ids.push(s.meta.id.clone());
        cursors.push(s.cursor()?);
        positions.merge_map(&s.meta.ingest_positions);
    }
    let mut writer = SpanBlockWriter::new(blocks_dir, rows as usize, level, ids)?;
    writer.set_ingest_positions(&positions);
    // The next span of every source, taken out of its cursor.
    let mut heads = Vec::with_capacity(cursors.len());
    for c in cursors.iter_mut() {
        heads.push(next(c)?);
    }
    let mut last: Option<(String, i64, String)> = None;
    loop {
        let mut best: Option<usize> = None;
        for (i, head) in heads.iter().enumerate() {
            let Some(span) = head else { continue };
            let better = match best.and_then(|b| heads.get(b)).and_then(|h| h.as_ref()) {
                Some(current) => span_order(span, current).is_lt(),
                None => true,
            };
            if better {
                best = Some(i);
            }
        }
        let Some(b) = best else { break };
        let (Some(slot), Some(cursor)) = (heads.get_mut(b), cursors.get_mut(b)) else {
            break;
        };
        let Some(span) = std::mem::replace(slot, next(cursor)?) else {
            break;
        };
        let key = (span.trace_id.clone(), span.start_unix_nano, span.span_id.clone());
        if last.as_ref() == Some(&key) {
            continue;
        }
        writer.push(&span)?;
        last = Some(key);
    }
    writer.finish()
}

fn next(cursor: &mut super::block::SpanCursor) -> Result<Option<super::span::Span>, BlockError> {
    cursor.peek()?;
    Ok(cursor.take())
}
