//! Span blocks on object storage (`object_store = "s3"`): blocks are written in the data
//! directory as in file mode, then uploaded to `traces/blocks/<name>/` (`spans.parquet`,
//! then `meta.json` last) and read through [`BlockFiles`] like metric blocks. Without a
//! metastore the bucket is listed at open and this process compacts and applies
//! retention; with one (signal `traces`) the block list comes from its rows, refreshed
//! every maintenance round, and only the holder of the `compactor-traces` lease compacts,
//! applies retention (retiring rows in the same transaction that checks the lease) and
//! collects garbage in the bucket.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use super::block::SpanBlock;
use crate::storage::block_dir;
use crate::storage::metastore::{gc, refresh, BlockRow, Metastore, MetastoreConfig};
use crate::storage::object::{BlockFiles, Remote};
use crate::storage::{BlockError, S3Config};

/// The bucket side of the trace store.
pub(super) struct Bucketed {
    remote: Arc<Remote>,
    metastore: Option<Metastore>,
    gc_grace: std::time::Duration,
    gc_schedule: gc::GcSchedule,
    /// When the last refresh from the metastore started; held while one runs, so two
    /// refreshes never open the same new block twice.
    listed_at: Mutex<Option<Instant>>,
}

/// The metastore row of `block` (a block in the bucket; `None` for a local one). Times
/// are the span starts in milliseconds (the block's `meta.json` keeps nanoseconds);
/// `series` counts services and `samples` spans.
fn row_of(block: &SpanBlock) -> Option<BlockRow> {
    let m = &block.meta;
    let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Some(BlockRow {
        name: block.files.remote_name()?.to_string(),
        min_time_ms: m.min_start_unix_nano.div_euclid(1_000_000),
        max_time_ms: m.max_start_unix_nano.div_euclid(1_000_000),
        level: i32::try_from(m.level).unwrap_or(i32::MAX),
        series: signed(m.services.len() as u64),
        samples: signed(m.spans),
        histogram_samples: 0,
        bytes: signed(block.bytes),
        files: block.files.remote_sizes()?.clone(),
    })
}

/// Opens `files`, logging and skipping the blocks that cannot be read.
fn open_each(files: Vec<BlockFiles>) -> Vec<SpanBlock> {
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let name = f.describe();
        match SpanBlock::open(f) {
            Ok(b) => out.push(b),
            Err(e) => tracing::error!(block = %name, error = %e, "skipping unreadable span block"),
        }
    }
    out
}

impl Bucketed {
    /// Connects to the bucket (and the metastore, when given), uploads the blocks a crash
    /// left staged in `blocks_dir`, and opens the blocks the metastore or the bucket lists.
    pub(super) fn open(
        config: &S3Config,
        metastore: Option<&MetastoreConfig>,
        data_dir: &Path,
        blocks_dir: &Path,
    ) -> Result<(Bucketed, Vec<SpanBlock>), BlockError> {
        let cache_dir = data_dir.join("cache").join("traces");
        let remote = Remote::open(config, "traces/blocks", &cache_dir)?;
        let bucketed = Bucketed {
            remote,
            metastore: metastore.map(|m| Metastore::open(m, "traces")).transpose()?,
            gc_grace: metastore.map(|m| m.gc_grace).unwrap_or_default(),
            gc_schedule: gc::GcSchedule::default(),
            listed_at: Mutex::new(None),
        };
        // On error a staged directory stays for the next start.
        for dir in block_dir::open_all(blocks_dir, "span block", |dir| Ok(dir.to_path_buf()))? {
            bucketed.publish(&dir)?;
        }
        let files = match &bucketed.metastore {
            Some(m) => m
                .list()?
                .into_iter()
                .map(|row| BlockFiles::in_bucket(&bucketed.remote, row.name, row.files))
                .collect(),
            None => BlockFiles::list_remote(&bucketed.remote)?,
        };
        Ok((bucketed, open_each(files)))
    }

    /// Uploads the published local block `dir` and opens it from the bucket, without a
    /// metastore row (a compaction's output gets its row in the transaction retiring its
    /// sources). On error the local directory is removed: its spans are still in the WAL
    /// or the compaction's sources.
    pub(super) fn upload(&self, dir: &Path) -> Result<SpanBlock, BlockError> {
        match BlockFiles::upload(&self.remote, dir) {
            Ok(files) => SpanBlock::open(files),
            Err(e) => {
                let _ = std::fs::remove_dir_all(dir);
                Err(e)
            }
        }
    }

    /// Uploads a head's block `dir` and records it in the metastore. When the row cannot
    /// be inserted the block is forgotten locally (the garbage collection deletes its
    /// objects) and the error returned, so the head stays frozen and in the WAL.
    pub(super) fn publish(&self, dir: &Path) -> Result<SpanBlock, BlockError> {
        let block = self.upload(dir)?;
        if let (Some(metastore), Some(row)) = (&self.metastore, row_of(&block)) {
            if let Err(e) = metastore.publish(row) {
                block.files.forget();
                return Err(e);
            }
        }
        Ok(block)
    }

    /// Whether this process compacts and applies retention: always without a metastore,
    /// else while it holds the `compactor-traces` lease.
    pub(super) fn may_compact(&self) -> bool {
        self.metastore.as_ref().is_none_or(|m| m.is_compactor())
    }

    /// Replaces `removed` by `added` (a compaction) or just retires `removed`
    /// (retention). With a metastore this is one transaction under the lease; when it
    /// fails nothing changed and `added` is deleted. The caller drops `removed` from its
    /// list and then calls [`retire`](Self::retire) on each.
    pub(super) fn replace(
        &self,
        added: Option<&SpanBlock>,
        removed: &[Arc<SpanBlock>],
    ) -> Result<(), BlockError> {
        let Some(metastore) = &self.metastore else {
            return Ok(());
        };
        let names = removed
            .iter()
            .filter_map(|b| b.files.remote_name().map(str::to_string))
            .collect();
        let result = metastore.replace(added.and_then(row_of), names);
        if result.is_err() {
            if let Some(b) = added {
                b.mark_deleted();
            }
        }
        result
    }

    /// Takes a replaced block out of service: with a metastore only its cached copies go
    /// (the compactor's garbage collection deletes the objects after the grace period);
    /// without one its objects are deleted once no query holds it.
    pub(super) fn retire(&self, block: &SpanBlock) {
        if self.metastore.is_some() {
            block.files.forget();
        } else {
            block.mark_deleted();
        }
    }

    /// With a metastore: opens the blocks other processes published and drops the blocks
    /// no longer live (retired by the compactor) once no query holds them.
    pub(super) fn refresh(&self, blocks: &RwLock<Vec<Arc<SpanBlock>>>) -> Result<(), BlockError> {
        let mut listed_at = self.listed_at.lock();
        self.refresh_locked(blocks, &mut listed_at)
    }

    /// [`refresh`](Self::refresh) unless one that started after `since` already ran.
    pub(super) fn refresh_if_listed_before(
        &self,
        since: Instant,
        blocks: &RwLock<Vec<Arc<SpanBlock>>>,
    ) -> Result<(), BlockError> {
        let mut listed_at = self.listed_at.lock();
        if listed_at.is_some_and(|t| t >= since) {
            return Ok(());
        }
        self.refresh_locked(blocks, &mut listed_at)
    }

    fn refresh_locked(
        &self,
        blocks: &RwLock<Vec<Arc<SpanBlock>>>,
        listed_at: &mut Option<Instant>,
    ) -> Result<(), BlockError> {
        let Some(metastore) = &self.metastore else {
            return Ok(());
        };
        let started = Instant::now();
        let rows = metastore.list()?;
        let live: HashSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let have: HashSet<String> = blocks
            .read()
            .iter()
            .filter_map(|b| b.files.remote_name().map(str::to_string))
            .collect();
        let new = rows
            .iter()
            .filter(|r| !have.contains(&r.name))
            .map(|r| BlockFiles::in_bucket(&self.remote, r.name.clone(), r.files.clone()))
            .collect();
        let opened = open_each(new);
        let gone = {
            let mut list = blocks.write();
            let gone = refresh::take_retired(&mut list, &live, |b| b.files.remote_name());
            list.extend(opened.into_iter().map(Arc::new));
            list.sort_by_key(|b| (b.meta.min_start_unix_nano, b.meta.max_start_unix_nano));
            gone
        };
        for b in &gone {
            b.files.forget();
        }
        *listed_at = Some(started);
        Ok(())
    }

    /// The compactor's garbage collection of `traces/blocks/` ([`gc::collect`]), at most
    /// once per quarter of the grace period; the number of blocks deleted.
    pub(super) fn collect_garbage(&self) -> Result<u64, BlockError> {
        match &self.metastore {
            Some(m) => self.gc_schedule.run(&self.remote, m, self.gc_grace),
            None => Ok(0),
        }
    }

    /// Gives the compactor lease up (at shutdown).
    pub(super) async fn release(&self) {
        if let Some(m) = &self.metastore {
            m.release().await;
        }
    }

    /// Figures of the local cache of block files.
    pub(super) fn cache_stats(&self) -> crate::storage::ObjectCacheStats {
        self.remote.cache_stats()
    }
}
