//! Head cut, block writing with WAL truncation, compaction and retention.
//!
//! Correctness rule: a WAL segment is deleted only after everything in it is in a durable
//! block; a source block is deleted only after the block replacing it is durable.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{millis, published, Db, Frozen};
use crate::metrics::block::{compact, Block, BlockError, BlockWriter, CompactionMeta};
use crate::metrics::head::memory::SeriesGate;
use crate::metrics::head::striped::StripedHead;
use crate::storage::object::BlockFiles;
use crate::storage::AppendError;

/// Most compaction rounds one `maintain` call runs.
const MAX_COMPACTION_ROUNDS: usize = 8;

/// Writes the series of `head` with samples as a level-1 block under `blocks_dir` and
/// returns its directory (`None` for a head without samples). Besides the block writer's
/// batches it holds one reference per series (the label order) and one series' samples
/// decoded from its chunks at a time, so the memory it needs is a small fraction of the
/// head's own.
pub(crate) fn write_head(
    head: &StripedHead,
    positions: &crate::AppliedPositions,
    blocks_dir: &Path,
) -> Result<Option<PathBuf>, BlockError> {
    let mut writer = BlockWriter::new(blocks_dir)?;
    let mut samples = Vec::new();
    let mut histograms = Vec::new();
    head.with_sorted_series(|sorted| {
        for series in sorted {
            samples.clear();
            histograms.clear();
            series.samples.range(i64::MIN, i64::MAX, &mut samples);
            series.histograms.range(i64::MIN, i64::MAX, &mut histograms);
            writer.add_series(&series.labels, &samples, &histograms)?;
        }
        Ok::<(), BlockError>(())
    })?;
    writer.finish(CompactionMeta {
        level: 1,
        sources: Vec::new(),
        ingest_positions: positions.as_map().clone(),
    })
}

impl Db {
    /// Makes the block just published in `dir` one of the database's: opened where it is
    /// in file mode; with a bucket, uploaded first (its files then move into the cache)
    /// and, with a metastore, recorded there. A block that cannot be uploaded is removed:
    /// its data is still in the frozen head and the WAL, and the next round writes it
    /// again.
    pub(super) fn adopt_block(&self, dir: &Path) -> Result<Block, BlockError> {
        let block = self.place_block(dir)?;
        if let Some(metastore) = &self.metastore {
            published::publish(metastore, &block)?;
        }
        Ok(block)
    }

    /// Opens the block just published in `dir` where it is, or uploads it to the bucket
    /// first (not recording it in the metastore).
    pub(super) fn place_block(&self, dir: &Path) -> Result<Block, BlockError> {
        match &self.remote {
            None => Block::open(BlockFiles::local(dir, "block"), &self.index_cache),
            Some(remote) => published::upload(remote, dir, &self.index_cache),
        }
    }

    /// Bytes the live head and the heads waiting to be written hold together.
    fn head_memory_used(&self, head: &StripedHead) -> u64 {
        head.bytes() + self.frozen_bytes.load(Ordering::Relaxed)
    }

    /// True when the memory in heads is at 80% of the budget or more: time to cut.
    fn memory_cut_due(&self, used: u64) -> bool {
        let limit = self.options.head_memory_bytes;
        limit > 0 && used.saturating_mul(5) >= limit.saturating_mul(4)
    }

    /// The memory check of an append, under the head's read lock: past 80% of the budget
    /// the maintenance loop is woken to cut; at the budget new series are refused (the
    /// returned gate, which the head applies per series); past 125% the whole append is
    /// refused, so samples to existing series cannot outgrow a cut that cannot keep up.
    pub(super) fn check_memory(&self, head: &StripedHead) -> Result<SeriesGate, AppendError> {
        let limit = self.options.head_memory_bytes;
        let frozen = self.frozen_bytes.load(Ordering::Relaxed);
        let used = head.bytes() + frozen;
        if self.memory_cut_due(used) {
            self.cut_wanted.notify_one();
        }
        if limit > 0 && used > limit.saturating_add(limit / 4) {
            return Err(AppendError::Overloaded { used, limit });
        }
        Ok(SeriesGate {
            other_bytes: frozen,
            limit,
        })
    }

    /// Waits until an append finds the head at 80% of its memory budget; the server's
    /// maintenance loop then runs [`Db::maintain`] at once instead of at its next tick.
    pub async fn cut_requested(&self) {
        self.cut_wanted.notified().await
    }

    /// At open: a head replayed from the WAL at 80% of its budget or more is cut and
    /// written at once, so nothing a restart re-reads can keep new series refused.
    pub(super) fn cut_after_replay(&self) -> io::Result<()> {
        let used = self.head_memory_used(&self.head.read());
        if !self.memory_cut_due(used) {
            return Ok(());
        }
        tracing::warn!(
            used,
            limit = self.options.head_memory_bytes,
            "head replayed from the WAL is at its memory budget; cutting it now"
        );
        let _guard = self.maintain_lock.lock();
        self.cut_head_if_due(false)?;
        self.persist_frozen()
    }

    /// Cuts the live head when its samples span 1.5 block durations or its memory passes
    /// 80% of the limit: the WAL is rotated (the new segment starts with a checkpoint of
    /// the series), the head is frozen (still queryable) and replaced by its successor.
    /// A memory cut happens also when the head holds series but no samples (series idle
    /// since the last cut leave with it).
    pub(super) fn cut_head_if_due(&self, force: bool) -> io::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut head = self.head.write();
        // Abandoned appends the WAL refused leave the head before it is frozen.
        self.orphans.settle_ready(&head);
        let range = head.time_range();
        let span_due = range.is_some_and(|(min_t, max_t)| {
            max_t.saturating_sub(min_t) >= millis(self.options.block_duration).saturating_mul(3) / 2
        });
        let memory_due = self.memory_cut_due(self.head_memory_used(&head));
        if range.is_none() && head.num_series() == 0 {
            return Ok(());
        }
        if !force && !span_due && !memory_due {
            return Ok(());
        }
        let (min_t, max_t) = range.unwrap_or((0, 0));
        // Series that can no longer accept a sample need not follow into the new head.
        let drop_before = if self.rules.max_sample_age_ms > 0 {
            let horizon = self
                .rules
                .max_sample_age_ms
                .max(self.rules.out_of_order_window_ms);
            head.max_seen_t().map_or(i64::MIN, |t| t.saturating_sub(horizon))
        } else {
            i64::MIN
        };
        let next = head.successor(drop_before, memory_due && !span_due);
        let rx = self
            .wal
            .rotate(next.checkpoint().encode())
            .map_err(|_| io::Error::other("WAL is closed"))?;
        let keep_from = rx
            .recv()
            .map_err(|_| io::Error::other("WAL writer stopped during rotation"))??;
        // Every append submitted before the rotation has its answer now. A refused one
        // that has not left the head yet (its task waits for this lock) would be frozen
        // into the block: postpone the cut to the next round instead. (The extra segment
        // the rotation started is harmless: nothing is deleted below it until a cut.)
        self.orphans.settle_ready(&head);
        if self.wal.refused_appends() != self.orphans.rolled_back() {
            tracing::info!("head cut postponed: a refused append has yet to leave the head");
            return Ok(());
        }
        tracing::info!(
            min_t,
            max_t,
            samples = head.num_samples(),
            series = head.num_series(),
            next_series = next.num_series(),
            bytes = head.bytes(),
            memory_due,
            keep_from,
            "cut head"
        );
        let old = std::mem::replace(&mut *head, next);
        let frozen = Frozen::new(old, keep_from, self.wal.rotation_positions(), &self.frozen_bytes);
        self.frozen.write().push(Arc::new(frozen));
        Ok(())
    }

    /// Writes every frozen head as a block (oldest first); after each block is durable the
    /// WAL segments before its rotation point are deleted and the frozen head dropped
    /// (its bytes leave the budget then, see `Frozen`).
    pub(super) fn persist_frozen(&self) -> io::Result<()> {
        loop {
            let Some(frozen) = self.frozen.read().first().cloned() else {
                return Ok(());
            };
            if let Some(dir) = write_head(&frozen.head, &frozen.positions, &self.blocks_dir)? {
                let block = self.adopt_block(&dir)?;
                let mut blocks = self.blocks.write();
                blocks.push(Arc::new(block));
                blocks.sort_by_key(|b| (b.meta.min_time_ms, b.meta.max_time_ms));
            }
            {
                let mut list = self.frozen.write();
                list.retain(|f| !Arc::ptr_eq(f, &frozen));
            }
            self.wal.delete_before(frozen.keep_from)?;
            self.counters.blocks_cut.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Merges overlapping blocks, then blocks sharing a finished compaction window; the
    /// new block is added before the sources are removed (they are deleted from disk once
    /// no reader holds them).
    pub(super) fn compact(&self) -> io::Result<()> {
        let block_duration_ms = millis(self.options.block_duration);
        for _ in 0..MAX_COMPACTION_ROUNDS {
            // Downsampled blocks are never merged (they are replaced, see `downsample.rs`).
            let blocks: Vec<Arc<Block>> = self
                .blocks
                .read()
                .iter()
                .filter(|b| b.meta.resolution_ms == 0)
                .cloned()
                .collect();
            let mut newest = self.head.read().max_seen_t().unwrap_or(i64::MIN);
            for b in &blocks {
                newest = newest.max(b.meta.max_time_ms);
            }
            let groups = compact::plan(&blocks, block_duration_ms, newest);
            if groups.is_empty() {
                return Ok(());
            }
            for group in groups {
                let mut sources = Vec::with_capacity(group.len());
                for i in group {
                    if let Some(b) = blocks.get(i) {
                        sources.push(b.clone());
                    }
                }
                tracing::info!(blocks = sources.len(), "compacting blocks");
                let merged = match compact::merge(&self.blocks_dir, &sources)? {
                    Some(dir) => Some(Arc::new(self.place_block(&dir)?)),
                    None => None,
                };
                if let Some(metastore) = &self.metastore {
                    // The merged block in, its sources out: one transaction, under the lease.
                    let row = merged.as_deref().and_then(published::row_of);
                    if let Err(e) = metastore.replace(row, Db::names_of(&sources)) {
                        if let Some(m) = &merged {
                            m.mark_deleted();
                        }
                        return Err(e.into());
                    }
                }
                let mut list = self.blocks.write();
                if let Some(b) = merged {
                    list.push(b);
                }
                list.retain(|b| !sources.iter().any(|s| Arc::ptr_eq(s, b)));
                list.sort_by_key(|b| (b.meta.min_time_ms, b.meta.max_time_ms));
                drop(list);
                for s in &sources {
                    self.retire(s);
                }
                self.counters.compactions.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Deletes whole blocks whose newest sample is older than the retention time of their
    /// resolution (`retention_time`, `retention_time_5m`, `retention_time_1h`), then the
    /// oldest blocks (the finer first among blocks ending together) while all blocks
    /// together exceed `retention_bytes`. With a metastore they are retired there first
    /// (under the compactor lease); if that fails they stay.
    pub(super) fn apply_retention(&self, now_ms: i64) {
        let doomed = self.retention_doomed(now_ms);
        if doomed.is_empty() {
            return;
        }
        if let Some(metastore) = &self.metastore {
            if let Err(e) = metastore.replace(None, Db::names_of(&doomed)) {
                tracing::warn!(error = %e, "retention: blocks not retired in the metastore; will retry");
                return;
            }
        }
        self.blocks
            .write()
            .retain(|b| !doomed.iter().any(|d| Arc::ptr_eq(d, b)));
        for b in &doomed {
            tracing::info!(block = %b.files.describe(), "retention deletes block");
            self.retire(b);
        }
        self.counters
            .retention_deleted
            .fetch_add(doomed.len() as u64, Ordering::Relaxed);
    }

    /// The blocks retention removes at `now_ms`: past `retention_time`, then the oldest
    /// while the rest exceed `retention_bytes`.
    fn retention_doomed(&self, now_ms: i64) -> Vec<Arc<Block>> {
        let list = self.blocks.read();
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        for b in list.iter() {
            let retention = match b.meta.resolution_ms {
                0 => self.options.retention_time,
                r if r <= 300_000 => self.options.retention_time_5m,
                _ => self.options.retention_time_1h,
            };
            let retention_ms = millis(retention);
            if retention_ms > 0 && b.meta.max_time_ms < now_ms.saturating_sub(retention_ms) {
                doomed.push(b.clone());
            }
        }
        let limit = self.options.retention_bytes;
        if limit > 0 {
            let mut by_age: Vec<Arc<Block>> = list.clone();
            by_age.sort_by_key(|b| (b.meta.max_time_ms, b.meta.resolution_ms));
            let mut total: u64 = 0;
            for b in &by_age {
                if !doomed.iter().any(|d| Arc::ptr_eq(d, b)) {
                    total += b.bytes;
                }
            }
            for b in &by_age {
                if total <= limit {
                    break;
                }
                if doomed.iter().any(|d| Arc::ptr_eq(d, b)) {
                    continue;
                }
                total = total.saturating_sub(b.bytes);
                doomed.push(b.clone());
            }
        }
        doomed
    }
}
