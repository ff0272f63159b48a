//! The read path: merging the live head, frozen heads and blocks.

use std::sync::Arc;

use super::Db;
use crate::metrics::block::{Block, BlockError};
use crate::model::{LabelMatcher, SeriesSamples};
use crate::query::{merge_series, Queryable, ReadError, ReadStats, WindowsRead};

impl From<BlockError> for ReadError {
    fn from(e: BlockError) -> ReadError {
        match e {
            BlockError::Io { source, .. } => ReadError::Io(source),
            BlockError::Parquet { path, source } => ReadError::Corrupt {
                block: path.display().to_string(),
                reason: source.to_string(),
            },
            BlockError::Arrow { path, source } => ReadError::Corrupt {
                block: path.display().to_string(),
                reason: source.to_string(),
            },
            BlockError::Meta { path, source } => ReadError::Corrupt {
                block: path.display().to_string(),
                reason: source.to_string(),
            },
            BlockError::Corrupt { path, reason } => ReadError::Corrupt {
                block: path.display().to_string(),
                reason,
            },
            // The store did not answer or refused: a failed read, not a damaged block.
            BlockError::Remote { url, source } => ReadError::Unavailable(format!("{url}: {source}")),
            // Reads never ask the metastore; kept as a failed read should one.
            e @ BlockError::Metastore(_) => ReadError::Io(std::io::Error::other(e.to_string())),
        }
    }
}

impl Queryable for Db {
    /// Reads the live head, then the frozen heads, then the blocks (snapshots taken in that
    /// order, so data moving from one to the next during the read is seen at least once);
    /// samples with equal timestamps from several sources are deduplicated.
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        self.select_raw(matchers, start_ms, end_ms, &mut ReadStats::default())
    }

    fn select_counted(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(Vec<SeriesSamples>, ReadStats), ReadError> {
        let mut stats = ReadStats::default();
        let series = self.select_raw(matchers, start_ms, end_ms, &mut stats)?;
        Ok((series, stats))
    }

    fn select_windows(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
        max_resolution_ms: i64,
    ) -> Result<WindowsRead, ReadError> {
        self.select_resolution(matchers, start_ms, end_ms, max_resolution_ms)
    }
}

impl Db {
    /// [`Queryable::select`] over the raw data (heads and raw blocks; downsampled blocks
    /// are left out), counting the blocks read in `stats`.
    pub(super) fn select_raw(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
        stats: &mut ReadStats,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        let mut parts = self.heads_parts(matchers, start_ms, end_ms);
        let blocks: Vec<Arc<Block>> = self.blocks.read().clone();
        for b in blocks.iter().rev() {
            if b.meta.resolution_ms == 0 && b.overlaps(start_ms, end_ms) {
                stats.raw_blocks += 1;
                b.select(matchers, start_ms, end_ms, &mut parts)?;
            }
        }
        Ok(merge_series(parts))
    }

    /// What only this process holds: the live head and the frozen heads not yet written
    /// as blocks, merged per series — an ingester's answer to a querier, which reads the
    /// published blocks itself. Heads are read in the same order as by
    /// [`Queryable::select`], so a series moving from the live head to a frozen one during
    /// the read is seen at least once.
    pub fn select_heads(&self, matchers: &[LabelMatcher], start_ms: i64, end_ms: i64) -> Vec<SeriesSamples> {
        merge_series(self.heads_parts(matchers, start_ms, end_ms))
    }

    /// The live head's series, then the frozen heads' (the frozen list taken while the
    /// live head is still read-locked, so a cut in between cannot hide a series from both),
    /// unmerged.
    fn heads_parts(&self, matchers: &[LabelMatcher], start_ms: i64, end_ms: i64) -> Vec<SeriesSamples> {
        let mut parts: Vec<SeriesSamples> = Vec::new();
        let frozen = {
            let head = self.head.read();
            head.select(matchers, start_ms, end_ms, &mut parts);
            self.frozen.read().clone()
        };
        for f in &frozen {
            f.head.select(matchers, start_ms, end_ms, &mut parts);
        }
        parts
    }
}
