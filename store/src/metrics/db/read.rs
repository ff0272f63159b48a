//! The read path: merging the live head, frozen heads and blocks.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Db;
use crate::metrics::block::{Block, BlockError};
use crate::model::{LabelMatcher, Labels, Sample, SeriesSamples};
use crate::query::{Queryable, ReadError};

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
            BlockError::Remote { url, source } => {
                ReadError::Io(std::io::Error::other(format!("{url}: {source}")))
            }
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
        let mut parts: Vec<SeriesSamples> = Vec::new();
        let frozen = {
            let head = self.head.read();
            head.select(matchers, start_ms, end_ms, &mut parts);
            self.frozen.read().clone()
        };
        for f in &frozen {
            f.head.select(matchers, start_ms, end_ms, &mut parts);
        }
        let blocks: Vec<Arc<Block>> = self.blocks.read().clone();
        for b in blocks.iter().rev() {
            if b.overlaps(start_ms, end_ms) {
                b.select(matchers, start_ms, end_ms, &mut parts)?;
            }
        }
        Ok(merge_parts(parts))
    }
}

/// Groups parts by series (sorted by labels) and merges the samples of series found in
/// several parts, keeping the first sample seen for each timestamp.
fn merge_parts(parts: Vec<SeriesSamples>) -> Vec<SeriesSamples> {
    let mut by_series: BTreeMap<Labels, (Vec<Sample>, bool)> = BTreeMap::new();
    for part in parts {
        match by_series.get_mut(&part.labels) {
            Some((samples, merged)) => {
                samples.extend(part.samples);
                *merged = true;
            }
            None => {
                by_series.insert(part.labels, (part.samples, false));
            }
        }
    }
    let mut out = Vec::with_capacity(by_series.len());
    for (labels, (mut samples, merged)) in by_series {
        if merged {
            samples.sort_by_key(|s| s.timestamp_ms);
            samples.dedup_by_key(|s| s.timestamp_ms);
        }
        if !samples.is_empty() {
            out.push(SeriesSamples::floats(labels, samples));
        }
    }
    out
}
