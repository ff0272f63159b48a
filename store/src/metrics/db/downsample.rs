//! The downsampling pass of `maintain`: raw blocks older than `downsample_5m_after` get a
//! 5-minute copy, blocks older than `downsample_1h_after` a 1-hour copy (from the 5-minute
//! block when 5-minute downsampling is on, else from the raw block). The sources stay:
//! each resolution has its own retention. A resolution whose source is deleted (by its
//! retention time) before the age is reached is skipped. A new downsampled block replaces the blocks of
//! its resolution lying inside its time range (a raw block re-merged with backfill is
//! downsampled again, and the new copy supersedes the old one).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{millis, published, Db};

/// Most downsampled blocks one `maintain` round writes: a backlog (downsampling turned on
/// over a long history) is worked off over several rounds instead of holding the
/// maintenance lock, and with it head cuts, for the whole of it.
const MAX_BLOCKS_PER_ROUND: usize = 4;
use crate::metrics::block::downsample::{downsample, RESOLUTIONS_MS};
use crate::metrics::block::Block;

impl Db {
    /// Writes the downsampled blocks that are due (see the module doc), at most
    /// [`MAX_BLOCKS_PER_ROUND`]; each is durable and in the block list before any block it
    /// replaces is removed.
    pub(super) fn downsample(&self, now_ms: i64) -> io::Result<()> {
        let mut budget = MAX_BLOCKS_PER_ROUND;
        let o = &self.options;
        let [res_5m, res_1h] = RESOLUTIONS_MS;
        let five_on = !o.downsample_5m_after.is_zero();
        let passes = [
            (res_5m, o.downsample_5m_after, 0, o.retention_time),
            if five_on {
                (res_1h, o.downsample_1h_after, res_5m, o.retention_time_5m)
            } else {
                (res_1h, o.downsample_1h_after, 0, o.retention_time)
            },
        ];
        for (resolution, age, source_resolution, source_retention) in passes {
            // Off, or its source is deleted before it is due.
            if age.is_zero() || (!source_retention.is_zero() && age >= source_retention) {
                continue;
            }
            let cutoff = now_ms.saturating_sub(millis(age));
            let blocks: Vec<Arc<Block>> = self.blocks.read().clone();
            for source in due(&blocks, resolution, source_resolution, cutoff) {
                if budget == 0 {
                    return Ok(());
                }
                budget -= 1;
                tracing::info!(block = %source.files.describe(), resolution, "downsampling block");
                let Some(dir) = downsample(&self.blocks_dir, &source, resolution)? else {
                    continue;
                };
                let block = Arc::new(self.place_block(&dir)?);
                let (min_t, max_t) = (block.meta.min_time_ms, block.meta.max_time_ms);
                let mut replaced: Vec<Arc<Block>> = Vec::new();
                for b in self.blocks.read().iter() {
                    if b.meta.resolution_ms == resolution
                        && b.meta.min_time_ms >= min_t
                        && b.meta.max_time_ms <= max_t
                    {
                        replaced.push(b.clone());
                    }
                }
                if let Some(metastore) = &self.metastore {
                    // The new copy in, the copies it replaces out: one transaction, under
                    // the compactor lease (as a compaction).
                    let row = published::row_of(&block);
                    if let Err(e) = metastore.replace(row, Db::names_of(&replaced)) {
                        block.mark_deleted();
                        return Err(e.into());
                    }
                }
                let mut list = self.blocks.write();
                list.retain(|b| !replaced.iter().any(|r| Arc::ptr_eq(r, b)));
                list.push(block);
                list.sort_by_key(|b| (b.meta.min_time_ms, b.meta.max_time_ms));
                drop(list);
                for r in &replaced {
                    self.retire(r);
                }
                self.counters.downsampled.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// The blocks of `source_resolution` whose newest sample is before `cutoff` and whose time
/// range no block of `resolution` covers yet.
fn due(blocks: &[Arc<Block>], resolution: i64, source_resolution: i64, cutoff: i64) -> Vec<Arc<Block>> {
    let mut out = Vec::new();
    for b in blocks {
        if b.meta.resolution_ms != source_resolution || b.meta.max_time_ms >= cutoff {
            continue;
        }
        let covered = blocks.iter().any(|d| {
            d.meta.resolution_ms == resolution
                && d.meta.min_time_ms <= b.meta.min_time_ms
                && d.meta.max_time_ms >= b.meta.max_time_ms
        });
        if !covered {
            out.push(b.clone());
        }
    }
    out
}
