//! The database's side of the metastore (`storage::metastore`), when blocks live in a
//! bucket shared with other processes: each published block gets its row; each
//! maintenance round refreshes the block list from the rows (blocks others published
//! appear, blocks the compactor retired go once no query holds them); only the holder of
//! the compactor lease compacts, applies retention and collects garbage.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::Db;
use crate::metrics::block::{self, Block, BlockIndexCache};
use crate::storage::block_dir;
use crate::storage::metastore::{refresh, BlockRow, Metastore, MetastoreConfig};
use crate::storage::object::{BlockFiles, Remote};
use crate::storage::BlockError;

/// The row describing `block` (a block in the bucket; `None` for a local one).
pub(super) fn row_of(block: &Block) -> Option<BlockRow> {
    let name = block.files.remote_name()?.to_string();
    let files = block.files.remote_sizes()?.clone();
    let m = &block.meta;
    let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Some(BlockRow {
        name,
        min_time_ms: m.min_time_ms,
        max_time_ms: m.max_time_ms,
        level: i32::try_from(m.compaction.level).unwrap_or(i32::MAX),
        series: signed(m.series),
        samples: signed(m.samples),
        histogram_samples: signed(m.histogram_samples),
        bytes: signed(block.bytes),
        files,
    })
}

/// Uploads the published local block `dir` and opens it from the bucket; on error the
/// local directory is removed (its data is still in the WAL or the compaction sources).
pub(super) fn upload(
    remote: &Arc<Remote>,
    dir: &Path,
    cache: &Arc<BlockIndexCache>,
) -> Result<Block, BlockError> {
    let files = match BlockFiles::upload(remote, dir) {
        Ok(files) => files,
        Err(e) => {
            let _ = std::fs::remove_dir_all(dir);
            return Err(e);
        }
    };
    Block::open(files, cache)
}

/// Records `block` in `metastore`. When that fails the block is forgotten locally and
/// its objects are left to the compactor's garbage collection (its row may exist after
/// all, if only the answer was lost).
pub(super) fn publish(metastore: &Metastore, block: &Block) -> Result<(), BlockError> {
    let Some(row) = row_of(block) else {
        return Ok(());
    };
    if let Err(e) = metastore.publish(row) {
        block.files.forget();
        return Err(e);
    }
    Ok(())
}

impl Db {
    /// At open with a metastore: connects, uploads and records blocks a crash left staged
    /// in `blocks_dir`, and opens the blocks the metastore lists (no bucket listing).
    pub(super) fn open_shared_blocks(
        config: &MetastoreConfig,
        remote: &Arc<Remote>,
        blocks_dir: &Path,
        cache: &Arc<BlockIndexCache>,
    ) -> Result<(Metastore, Vec<Block>), BlockError> {
        let metastore = Metastore::open(config, "metrics")?;
        let staged = block_dir::open_all(blocks_dir, "block", |dir| Ok(dir.to_path_buf()))?;
        for dir in staged {
            // On error the directory stays for the next start, as without a metastore.
            let block = Block::open(BlockFiles::upload(remote, &dir)?, cache)?;
            publish(&metastore, &block)?;
        }
        let mut files = Vec::new();
        for row in metastore.list()? {
            files.push(BlockFiles::in_bucket(remote, row.name, row.files));
        }
        let blocks = block::open_listed(files, cache);
        Ok((metastore, blocks))
    }

    /// Whether this process compacts and applies retention: always without a metastore,
    /// else only while it holds the compactor lease.
    pub(super) fn may_compact(&self) -> bool {
        self.metastore.as_ref().is_none_or(|m| m.is_compactor())
    }

    /// Takes `b` out of service: with a metastore its cached copies go once no query
    /// holds it (the compactor's garbage collection deletes the objects after the grace
    /// period, when other processes have let go too); without one it is deleted then.
    pub(super) fn retire(&self, b: &Block) {
        if self.metastore.is_some() {
            b.files.forget();
        } else {
            b.mark_deleted();
        }
    }

    /// Makes sure the block list was read from the metastore after `since`: a querier
    /// calls it after asking the ingesters for their heads (at `since`), so a block an
    /// ingester published and dropped from its head before answering is in the list
    /// (the row is written before the head lets go of the data). Concurrent callers
    /// share one refresh: whoever waits for the lock finds it done after `since` and
    /// returns. Without a metastore it does nothing.
    pub fn ensure_listed_after(&self, since: Instant) -> Result<(), BlockError> {
        if self.metastore.is_none() {
            return Ok(());
        }
        let mut listed_at = self.listed_at.lock();
        if listed_at.is_some_and(|t| t >= since) {
            return Ok(());
        }
        let started = Instant::now();
        self.refresh_blocks()?;
        *listed_at = Some(started);
        Ok(())
    }

    /// Brings the block list in line with the metastore: opens blocks other processes
    /// published, drops blocks no longer live (retired by the compactor).
    pub(super) fn refresh_blocks(&self) -> Result<(), BlockError> {
        let (Some(metastore), Some(remote)) = (&self.metastore, &self.remote) else {
            return Ok(());
        };
        let rows = metastore.list()?;
        let live: HashSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let have: HashSet<String> = self
            .blocks
            .read()
            .iter()
            .filter_map(|b| b.files.remote_name().map(str::to_string))
            .collect();
        let mut new = Vec::new();
        for row in &rows {
            if !have.contains(&row.name) {
                new.push(BlockFiles::in_bucket(remote, row.name.clone(), row.files.clone()));
            }
        }
        let opened = block::open_listed(new, &self.index_cache);
        let gone = {
            let mut list = self.blocks.write();
            let gone = refresh::take_retired(&mut list, &live, |b| b.files.remote_name());
            list.extend(opened.into_iter().map(Arc::new));
            list.sort_by_key(|b| (b.meta.min_time_ms, b.meta.max_time_ms));
            gone
        };
        if !gone.is_empty() {
            tracing::info!(
                blocks = gone.len(),
                "blocks retired by the compactor leave the list"
            );
        }
        for b in &gone {
            b.files.forget();
        }
        Ok(())
    }

    /// The compactor's garbage collection (`storage::metastore::gc`), at most once per
    /// quarter of the grace period.
    pub(super) fn collect_garbage(&self) -> Result<(), BlockError> {
        let (Some(metastore), Some(remote), Some(config)) =
            (&self.metastore, &self.remote, &self.options.metastore)
        else {
            return Ok(());
        };
        let deleted = self.gc_schedule.run(remote, metastore, config.gc_grace)?;
        self.counters
            .gc_deleted_blocks
            .fetch_add(deleted, Ordering::Relaxed);
        Ok(())
    }

    /// The bucket names of `blocks`, for a metastore transaction retiring them.
    pub(super) fn names_of(blocks: &[Arc<Block>]) -> Vec<String> {
        let mut out = Vec::new();
        for b in blocks {
            if let Some(name) = b.files.remote_name() {
                out.push(name.to_string());
            }
        }
        out
    }
}
