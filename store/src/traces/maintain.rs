//! The trace store's housekeeping: cutting the head into blocks, writing (and, with an
//! object store, uploading) them, compaction and retention (`published` has the bucket
//! and metastore side).

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::block::SpanBlock;
use super::{compact, nanos, span, writer, Frozen, TraceStore};
use crate::storage::BlockError;

impl TraceStore {
    /// Housekeeping, called periodically from a blocking thread: cut the head into a block
    /// when due, write (and upload) it, truncate the WAL; with a metastore, refresh the
    /// block list from it; then — only in the compactor — compact, apply retention and
    /// collect garbage in the bucket.
    pub fn maintain(&self, now_unix_nano: i64) -> io::Result<()> {
        let _guard = self.maintain_lock.lock();
        self.cut_head(now_unix_nano, false)?;
        self.persist_frozen()?;
        if let Some(b) = &self.bucket {
            b.refresh(&self.blocks)?;
        }
        if !self.may_compact() {
            return Ok(());
        }
        self.compact(now_unix_nano)?;
        self.apply_retention(now_unix_nano);
        if let Some(b) = &self.bucket {
            let deleted = b.collect_garbage()?;
            self.gc_deleted.fetch_add(deleted, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether this process compacts and applies retention to span blocks: always
    /// without a metastore, else while it holds the `compactor-traces` lease.
    pub fn is_compactor(&self) -> bool {
        self.bucket.as_ref().is_none_or(|b| b.may_compact())
    }

    fn may_compact(&self) -> bool {
        self.is_compactor()
    }

    /// Opens the block just written in `dir`: in place in file mode; uploaded (and, when
    /// `publish`, recorded in the metastore) with an object store.
    fn open_written(&self, dir: &std::path::Path, publish: bool) -> Result<SpanBlock, BlockError> {
        match &self.bucket {
            None => SpanBlock::open_dir(dir),
            Some(b) if publish => b.publish(dir),
            Some(b) => b.upload(dir),
        }
    }

    /// Merges the blocks of each finished compaction window (12 × `block_duration`; a
    /// window is finished one `block_duration` after its end) into one block. The new
    /// block is listed before the sources are removed; a source is deleted once no reader
    /// holds it. With a metastore the merged block's row and the sources' retirement are
    /// one transaction under the lease; when it fails the merged block is deleted and
    /// nothing changes.
    fn compact(&self, now: i64) -> io::Result<()> {
        let duration = nanos(self.options.block_duration).max(1);
        let window = duration.saturating_mul(12);
        let blocks: Vec<Arc<SpanBlock>> = self.blocks.read().clone();
        for group in compact::plan(&blocks, window, now.saturating_sub(duration)) {
            let mut sources = Vec::with_capacity(group.len());
            for i in group {
                if let Some(b) = blocks.get(i) {
                    sources.push(b.clone());
                }
            }
            tracing::info!(blocks = sources.len(), "compacting span blocks");
            let merged = match compact::merge(&self.blocks_dir, &sources)? {
                Some(dir) => Some(Arc::new(self.open_written(&dir, false)?)),
                None => None,
            };
            if let Some(b) = &self.bucket {
                b.replace(merged.as_deref(), &sources)?;
            }
            let mut list = self.blocks.write();
            if let Some(b) = merged {
                list.push(b);
            }
            list.retain(|b| !sources.iter().any(|s| Arc::ptr_eq(s, b)));
            list.sort_by_key(|b| (b.meta.min_start_unix_nano, b.meta.max_start_unix_nano));
            for s in &sources {
                self.retire(s);
            }
            self.compactions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes the whole head as a block now (tests, backfill).
    pub fn flush_head(&self) -> io::Result<()> {
        let _guard = self.maintain_lock.lock();
        self.cut_head(0, true)?;
        self.persist_frozen()
    }

    fn cut_head(&self, now: i64, force: bool) -> io::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let memory_due =
            self.memory_used().saturating_mul(5) >= self.options.head_memory_bytes.saturating_mul(4);
        let mut head = self.head.write();
        self.settle_orphans(&mut head);
        // (A head holding only batches still waiting for their WAL answer is cut too when
        // forced, so `flush_head` writes everything acknowledged.)
        let range = head.time_range();
        if range.is_none() && !head.has_pending() {
            return Ok(());
        }
        let age_due =
            range.is_some_and(|(min_t, _)| now.saturating_sub(min_t) >= nanos(self.options.block_duration));
        if !force && !age_due && !memory_due {
            return Ok(());
        }
        let rx = self
            .wal
            .rotate(span::encode_record(&[]))
            .map_err(|_| io::Error::other("trace WAL is closed"))?;
        let keep_from = rx
            .recv()
            .map_err(|_| io::Error::other("trace WAL writer stopped during rotation"))??;
        // Every batch submitted before the rotation has its answer now. When each refused
        // one has left the head, the batches still pending were all acknowledged (their
        // tasks wait for this lock) and go into the block with their WAL records' segments.
        // Otherwise a refused batch would be frozen: postpone the cut to the next round
        // (the extra segment is harmless: nothing is deleted below it until a cut).
        self.settle_orphans(&mut head);
        if self.wal.refused_appends() != self.refused.load(Ordering::Relaxed) {
            tracing::info!("span head cut postponed: a refused batch has yet to leave the head");
            return Ok(());
        }
        head.commit_all_pending();
        let old = std::mem::take(&mut *head);
        tracing::info!(spans = old.len(), bytes = old.bytes(), keep_from, "cut span head");
        self.frozen.write().push(Arc::new(Frozen {
            head: old,
            keep_from,
            positions: self.wal.rotation_positions(),
        }));
        Ok(())
    }

    fn persist_frozen(&self) -> io::Result<()> {
        loop {
            let Some(frozen) = self.frozen.read().first().cloned() else {
                return Ok(());
            };
            if let Some(dir) = writer::write_block(&self.blocks_dir, frozen.head.spans(), &frozen.positions)?
            {
                let b = self.open_written(&dir, true)?;
                let mut blocks = self.blocks.write();
                blocks.push(Arc::new(b));
                blocks.sort_by_key(|b| (b.meta.min_start_unix_nano, b.meta.max_start_unix_nano));
            }
            self.frozen.write().retain(|f| !Arc::ptr_eq(f, &frozen));
            self.wal.delete_before(frozen.keep_from)?;
        }
    }

    fn apply_retention(&self, now: i64) {
        let mut list = self.blocks.write();
        let mut doomed: Vec<Arc<SpanBlock>> = Vec::new();
        let retention = nanos(self.options.retention_time);
        if retention > 0 {
            let cutoff = now.saturating_sub(retention);
            for b in list.iter() {
                if b.meta.max_start_unix_nano < cutoff {
                    doomed.push(b.clone());
                }
            }
        }
        if self.options.retention_bytes > 0 {
            let mut total: u64 = 0;
            for b in list.iter() {
                if !doomed.iter().any(|d| Arc::ptr_eq(d, b)) {
                    total += b.bytes;
                }
            }
            // `list` is sorted oldest first.
            for b in list.iter() {
                if total <= self.options.retention_bytes {
                    break;
                }
                if !doomed.iter().any(|d| Arc::ptr_eq(d, b)) {
                    total = total.saturating_sub(b.bytes);
                    doomed.push(b.clone());
                }
            }
        }
        if doomed.is_empty() {
            return;
        }
        if let Some(bucket) = &self.bucket {
            if let Err(e) = bucket.replace(None, &doomed) {
                tracing::warn!(error = %e, "span block retention not applied this round");
                return;
            }
        }
        list.retain(|b| !doomed.iter().any(|d| Arc::ptr_eq(d, b)));
        for b in &doomed {
            tracing::info!(block = %b.files.describe(), "retention deletes span block");
            self.retire(b);
        }
        self.retention_deleted
            .fetch_add(doomed.len() as u64, Ordering::Relaxed);
    }

    /// Takes a compacted or expired block out of service (see `published::Bucketed::retire`);
    /// in file mode its directory goes once no reader holds it.
    fn retire(&self, block: &SpanBlock) {
        match &self.bucket {
            Some(b) => b.retire(block),
            None => block.mark_deleted(),
        }
    }
}
