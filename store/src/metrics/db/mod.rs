//! The metric database: the one object the server holds to append and read samples.
//!
//! Appends are validated against the live head, applied to it and logged to the WAL as
//! one record; they return once the WAL says the record is durable. `maintain` cuts the
//! head into Parquet blocks, compacts blocks and applies retention. Reads merge the live
//! head, frozen heads awaiting their block, and every block overlapping the range.

mod ack;
#[cfg(test)]
mod block_memory;
mod downsample;
mod maintain;
mod published;
mod read;
mod resolution;
mod types;

pub use types::{DbOptions, DbStats};

/// The vocabulary of an append (`metrics/append.rs`), shared with the head that applies it.
pub use crate::metrics::append::{AppendReport, RejectReason, SeriesHint, SeriesLimits};

/// The shared error types and fsync setting, under the paths they had when they lived here.
pub use crate::storage::{AppendError, FsyncMode, OpenError};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::metrics::block::{self, Block, BlockIndexCache};
use crate::metrics::head::rules::AppendRules;
use crate::metrics::head::striped::StripedHead;
use crate::metrics::record::WalRecord;
use crate::model::SeriesSamples;
use crate::storage::block_dir;
use crate::storage::metastore::Metastore;
use crate::storage::object::Remote;
use crate::storage::wal::{position, segment, Wal, WalConfig};
use crate::storage::BlockStorage;

/// A head that was cut and waits to be written as a block; WAL segments numbered below
/// `keep_from` hold only its data (and older) and go once the block is durable.
///
/// Its bytes count in `counted` (the database's `frozen_bytes`, which the head memory
/// budget adds to the live head's) from the cut until it is dropped: after its block is
/// published and the last query reading it lets go, not when it leaves the list.
struct Frozen {
    head: StripedHead,
    keep_from: u64,
    /// The ingest-log positions of everything in `head` (the rotation's).
    positions: crate::AppliedPositions,
    counted: Arc<AtomicU64>,
}

impl Frozen {
    /// Freezes `head`, adding its bytes to `counted`.
    fn new(
        head: StripedHead,
        keep_from: u64,
        positions: crate::AppliedPositions,
        counted: &Arc<AtomicU64>,
    ) -> Frozen {
        counted.fetch_add(head.bytes(), Ordering::Relaxed);
        Frozen {
            head,
            keep_from,
            positions,
            counted: counted.clone(),
        }
    }
}

/// The head's memory leaves the budget when it is really freed.
impl Drop for Frozen {
    fn drop(&mut self) {
        self.counted.fetch_sub(self.head.bytes(), Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Counters {
    compactions: AtomicU64,
    blocks_cut: AtomicU64,
    retention_deleted: AtomicU64,
    downsampled: AtomicU64,
    replayed_records: AtomicU64,
    torn_repairs: AtomicU64,
    undecodable_records: AtomicU64,
    gc_deleted_blocks: AtomicU64,
}

/// The metric database.
pub struct Db {
    options: DbOptions,
    rules: AppendRules,
    blocks_dir: PathBuf,
    wal: Wal,
    /// Read-locked by appends (around applying a batch and submitting its record) and
    /// queries, write-locked by cuts; the head's stripes have locks of their own.
    head: RwLock<StripedHead>,
    frozen: RwLock<Vec<Arc<Frozen>>>,
    /// Bytes of the frozen heads not dropped yet (see [`Frozen`]).
    frozen_bytes: Arc<AtomicU64>,
    blocks: RwLock<Vec<Arc<Block>>>,
    /// The bucket blocks go to, when not kept in `blocks_dir` (which then only stages
    /// blocks until they are uploaded).
    remote: Option<Arc<Remote>>,
    /// The PostgreSQL list of the bucket's blocks, shared with other processes, and the
    /// compactor election (`published.rs`).
    metastore: Option<Metastore>,
    /// When the compactor last collected garbage in the bucket.
    gc_schedule: crate::storage::metastore::gc::GcSchedule,
    /// When the last block-list refresh asked for by a query started (held during the
    /// refresh, so concurrent queries share one: `published.rs`).
    listed_at: Mutex<Option<std::time::Instant>>,
    /// Series lists and postings of the blocks, loaded on demand, bounded in bytes.
    index_cache: Arc<BlockIndexCache>,
    maintain_lock: Mutex<()>,
    /// Appends whose callers stopped waiting before the WAL answered.
    orphans: ack::Orphans,
    closed: AtomicBool,
    counters: Counters,
    /// Woken when the head passes 80% of its memory budget (`maintain.rs`).
    cut_wanted: tokio::sync::Notify,
    /// The highest ingest-log position per partition the WAL replay found
    /// (`storage::wal::position`).
    replayed_positions: crate::AppliedPositions,
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Db {
    /// Opens (creating if needed) the database under `options.data_dir`: removes leftover
    /// temporary block directories, opens the blocks, replays the WAL (cutting off a torn
    /// tail) and starts the WAL writer on a fresh segment. With a bucket, blocks a crash
    /// left published locally but not uploaded are uploaded first, and the blocks are
    /// those the bucket lists (an empty data directory reads them all) — or, with a
    /// metastore, those it lists.
    pub fn open(options: DbOptions) -> Result<Db, OpenError> {
        let wal_dir = options.data_dir.join("wal").join("metrics");
        let blocks_dir = options.data_dir.join("metrics").join("blocks");
        for dir in [&wal_dir, &blocks_dir] {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let index_cache = Arc::new(BlockIndexCache::new(options.block_index_cache_bytes));
        let (remote, metastore, blocks) = match &options.block_storage {
            BlockStorage::File if options.metastore.is_some() => {
                return Err(OpenError::Io {
                    path: blocks_dir,
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "a metastore needs blocks in a bucket (object_store = \"s3\")",
                    ),
                });
            }
            BlockStorage::File => (None, None, block::open_all(&blocks_dir, &index_cache)?),
            BlockStorage::S3(config) => {
                let cache_dir = options.data_dir.join("cache").join("metrics");
                let remote = Remote::open(config, "metrics/blocks", &cache_dir)?;
                if let Some(mc) = &options.metastore {
                    let (metastore, blocks) = Db::open_shared_blocks(mc, &remote, &blocks_dir, &index_cache)?;
                    (Some(remote), Some(metastore), blocks)
                } else {
                    let staged = block_dir::open_all(&blocks_dir, "block", |dir| Ok(dir.to_path_buf()))?;
                    for dir in staged {
                        remote.publish(&dir)?;
                    }
                    let blocks = block::open_remote(&remote, &index_cache)?;
                    (Some(remote), None, blocks)
                }
            }
        };
        let mut head = StripedHead::new(None);
        for b in &blocks {
            head.observe_time(b.meta.max_time_ms);
        }
        let counters = Counters::default();
        let (last_segment, applied) = replay(&wal_dir, &mut head, &counters)?;
        let config = WalConfig::new(options.fsync, options.fsync_interval, options.wal_segment_bytes);
        let wal = Wal::start(&wal_dir, last_segment + 1, config, applied.clone()).map_err(|source| {
            OpenError::Wal {
                path: wal_dir.clone(),
                source,
            }
        })?;
        let rules = AppendRules {
            limits: options.limits.clone(),
            out_of_order_window_ms: millis(options.out_of_order_window),
            max_sample_age_ms: millis(options.max_sample_age),
            max_future_ms: millis(options.max_future),
        };
        // A far-future sample in an old WAL or block must not move the window again.
        head.forget_future(rules.latest_accepted(didban_base::now_ms()));
        let db = Db {
            options,
            rules,
            blocks_dir,
            wal,
            head: RwLock::new(head),
            frozen: RwLock::new(Vec::new()),
            frozen_bytes: Arc::new(AtomicU64::new(0)),
            blocks: RwLock::new(blocks.into_iter().map(Arc::new).collect()),
            remote,
            metastore,
            listed_at: Mutex::new(None),
            gc_schedule: Default::default(),
            index_cache,
            maintain_lock: Mutex::new(()),
            orphans: ack::Orphans::default(),
            closed: AtomicBool::new(false),
            counters,
            cut_wanted: tokio::sync::Notify::new(),
            replayed_positions: applied,
        };
        db.cut_after_replay().map_err(|source| OpenError::Io {
            path: db.blocks_dir.clone(),
            source,
        })?;
        Ok(db)
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &DbOptions {
        &self.options
    }

    /// Directory holding the metric blocks (`<data_dir>/metrics/blocks`).
    pub fn blocks_dir(&self) -> &Path {
        &self.blocks_dir
    }

    /// Validates and stores a batch of float and native histogram samples (the report
    /// counts both kinds). Returns once the accepted samples are durable per the
    /// fsync mode; the report says what was refused and why. All accepted samples of one
    /// call go into one WAL record. When the head is over its memory budget new series
    /// are refused ([`RejectReason::HeadMemoryLimit`]) while existing ones are accepted;
    /// only past 125% of it is nothing stored and [`AppendError::Overloaded`] returned.
    /// When the WAL write fails ([`AppendError::Wal`]) the append is taken back out of the
    /// head: its samples go, and so do the series it created, so a refused request counts
    /// toward no limit.
    pub async fn append(&self, batch: Vec<SeriesSamples>) -> Result<AppendReport, AppendError> {
        self.append_with(batch, &mut [], None).await
    }

    /// [`Db::append`] of series the caller appends again and again (remote write's label
    /// cache): `hints` holds one [`SeriesHint`] per series of `batch` (or none at all: a
    /// plain append), where the head held it at the caller's last append
    /// ([`SeriesHint::NONE`] when unknown), and is set to where each is now (NONE for a
    /// series refused). A wrong or stale hint costs the usual lookup, never a sample in
    /// the wrong series.
    pub async fn append_hinted(
        &self,
        batch: Vec<SeriesSamples>,
        hints: &mut [SeriesHint],
    ) -> Result<AppendReport, AppendError> {
        debug_assert!(hints.is_empty() || hints.len() == batch.len());
        self.append_with(batch, hints, None).await
    }

    /// [`Db::append`] of a batch taken from the ingest log at `position`: the position is
    /// written in the same WAL record as the samples, so after a restart
    /// [`Db::replayed_positions`] tells what a redelivery must skip.
    pub async fn append_at(
        &self,
        batch: Vec<SeriesSamples>,
        position: Option<crate::LogPosition>,
    ) -> Result<AppendReport, AppendError> {
        self.append_with(batch, &mut [], position).await
    }

    /// What [`Db::append`], [`Db::append_hinted`] and [`Db::append_at`] do.
    async fn append_with(
        &self,
        batch: Vec<SeriesSamples>,
        hints: &mut [SeriesHint],
        position: Option<crate::LogPosition>,
    ) -> Result<AppendReport, AppendError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AppendError::Closed);
        }
        let mut report = AppendReport::default();
        let (record, ack) = {
            let head = self.head.read();
            self.orphans.settle_ready(&head);
            let gate = self.check_memory(&head)?;
            let record = head.append(
                batch,
                hints,
                &self.rules,
                didban_base::now_ms(),
                gate,
                &mut report,
            );
            if record.has_no_samples() {
                return Ok(report);
            }
            // Submitted under the read lock: a cut (write lock) never falls between the
            // head taking the samples and the WAL taking their record.
            match self.wal.submit(position::wrap(position, record.encode())) {
                Ok(ack) => (record, ack),
                Err(_) => {
                    head.rollback(&record);
                    return Err(AppendError::Closed);
                }
            }
        };
        ack::await_ack(&self.head, &self.orphans, record, ack)
            .await
            .map(|()| report)
    }

    /// The highest ingest-log position per partition whose batch the WAL held at open: a
    /// consumer of the log starts past these.
    pub fn replayed_positions(&self) -> &crate::AppliedPositions {
        &self.replayed_positions
    }

    /// The highest ingest-log position per partition that the listed blocks hold
    /// everything up to (see `CompactionMeta::ingest_positions`): where a consumer with an
    /// empty data directory resumes, the blocks of the process it replaces being listed
    /// from the bucket.
    pub fn published_positions(&self) -> crate::AppliedPositions {
        let mut out = crate::AppliedPositions::default();
        for b in self.blocks.read().iter() {
            out.merge_map(&b.meta.compaction.ingest_positions);
        }
        out
    }

    /// Why the WAL refuses appends right now (the error of a write, fsync or segment
    /// creation it has not recovered from), `None` while it works. The writer retries on
    /// every append and twice a second on its own, so this clears once the cause is gone.
    pub fn wal_fault(&self) -> Option<String> {
        self.wal.fault()
    }

    /// The WAL's fault (as [`Db::wal_fault`]) with its failure and recovery counts.
    pub fn wal_health(&self) -> crate::WalHealth {
        self.wal.health()
    }

    /// Makes the next `times` WAL I/O steps of kind `op` fail as a full disk (or, for
    /// segment creation, a lack of file descriptors) would: for tests of fault handling.
    #[doc(hidden)]
    pub fn inject_wal_fault(&self, op: crate::WalFaultOp, times: u32) {
        self.wal.inject_fault(op, times);
    }

    /// Housekeeping: cut the head into a block when due, write pending blocks and
    /// truncate the WAL, compact, downsample old blocks, apply retention. The server calls
    /// it periodically (from a blocking thread) with the current time. With a metastore the
    /// block list is first refreshed from it, and compaction, downsampling, retention and
    /// garbage collection run only in the process holding the compactor lease.
    pub fn maintain(&self, now_ms: i64) -> Result<(), std::io::Error> {
        let _guard = self.maintain_lock.lock();
        self.cut_head_if_due(false)?;
        self.persist_frozen()?;
        self.refresh_blocks()?;
        if self.may_compact() {
            self.compact()?;
            self.downsample(now_ms)?;
            self.apply_retention(now_ms);
            self.collect_garbage()?;
        }
        Ok(())
    }

    /// Cuts the live head now, whatever its time span, and writes it (and any other
    /// pending head) as a block, then truncates the WAL. For backfill tools, tests and
    /// operators who want the head on disk as Parquet; no compaction or retention.
    pub fn flush_head(&self) -> Result<(), std::io::Error> {
        let _guard = self.maintain_lock.lock();
        self.cut_head_if_due(true)?;
        self.persist_frozen()
    }

    /// Flushes and fsyncs the WAL and stops its writer; later appends fail with
    /// [`AppendError::Closed`]. The head's contents stay in the WAL for the next open.
    pub async fn close(&self) -> Result<(), std::io::Error> {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(metastore) = &self.metastore {
            // Another process takes over compaction at once instead of after the TTL.
            metastore.release().await;
        }
        self.wal.close().await
    }

    /// Figures for self-monitoring, read from the live engine.
    pub fn stats(&self) -> DbStats {
        let mut stats = DbStats::default();
        {
            let head = self.head.read();
            stats.head_series = head.num_series();
            stats.head_samples = head.num_samples();
            stats.head_bytes = head.bytes();
            let mut range = head.time_range();
            for f in self.frozen.read().iter() {
                stats.head_samples += f.head.num_samples();
                stats.head_bytes += f.head.bytes();
                stats.frozen_heads += 1;
                range = match (range, f.head.time_range()) {
                    (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
                    (r, None) => r,
                    (None, r) => r,
                };
            }
            stats.head_min_time_ms = range.map(|r| r.0);
            stats.head_max_time_ms = range.map(|r| r.1);
        }
        for b in self.blocks.read().iter() {
            stats.blocks += 1;
            stats.block_bytes += b.bytes;
            match b.meta.resolution_ms {
                0 => {}
                300_000 => {
                    stats.blocks_5m += 1;
                    stats.block_bytes_5m += b.bytes;
                }
                _ => {
                    stats.blocks_1h += 1;
                    stats.block_bytes_1h += b.bytes;
                }
            }
            stats.block_samples += b.meta.samples + b.meta.histogram_samples;
        }
        stats.block_index_cache = self.index_cache.stats();
        stats.object_cache = self.remote.as_ref().map(|r| r.cache_stats());
        stats.compactor = self.may_compact();
        stats.gc_deleted_blocks = self.counters.gc_deleted_blocks.load(Ordering::Relaxed);
        let w = &self.wal.stats;
        stats.wal_bytes_written = w.bytes_written.load(Ordering::Relaxed);
        stats.wal_fsyncs = w.fsyncs.load(Ordering::Relaxed);
        stats.wal_fsync_seconds_total = w.fsync_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        stats.wal_segments = w.segments.load(Ordering::Relaxed);
        stats.wal_errors = w.errors.load(Ordering::Relaxed);
        stats.wal_recoveries = w.recoveries.load(Ordering::Relaxed);
        stats.wal_fault = w.fault();
        let c = &self.counters;
        stats.compactions = c.compactions.load(Ordering::Relaxed);
        stats.blocks_cut = c.blocks_cut.load(Ordering::Relaxed);
        stats.blocks_downsampled = c.downsampled.load(Ordering::Relaxed);
        stats.retention_deleted_blocks = c.retention_deleted.load(Ordering::Relaxed);
        stats.wal_replayed_records = c.replayed_records.load(Ordering::Relaxed);
        stats.wal_torn_tail_repairs = c.torn_repairs.load(Ordering::Relaxed);
        stats.wal_undecodable_records = c.undecodable_records.load(Ordering::Relaxed);
        stats
    }
}

/// Replays every WAL segment into `head`; returns the highest segment number seen (0 when
/// the log is empty). Damaged tails are truncated and counted, never fatal.
/// Also returns the ingest-log positions the records carried.
fn replay(
    wal_dir: &Path,
    head: &mut StripedHead,
    counters: &Counters,
) -> Result<(u64, crate::AppliedPositions), OpenError> {
    let wal_err = |path: &Path, source| OpenError::Wal {
        path: path.to_path_buf(),
        source,
    };
    let segments = segment::list_segments(wal_dir).map_err(|e| wal_err(wal_dir, e))?;
    let mut last = 0;
    let mut applied = crate::AppliedPositions::default();
    let mut unknown_refs = 0u64;
    // Recorded refs given a new number at this replay (see `StripedHead::replay`).
    let mut renumbered = foldhash::HashMap::default();
    for (n, path) in segments {
        last = n;
        let contents = segment::read_segment(&path).map_err(|e| wal_err(&path, e))?;
        if contents.repaired {
            counters.torn_repairs.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(segment = %path.display(), "cut a torn or corrupt record off the WAL");
        }
        applied.merge(&contents.positions);
        for payload in contents.payloads {
            let record = match WalRecord::decode(&payload) {
                Ok(r) => r,
                Err(e) => {
                    counters.undecodable_records.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(segment = %path.display(), error = %e, "skipping undecodable WAL record");
                    continue;
                }
            };
            unknown_refs += head.replay(record, &mut renumbered);
            counters.replayed_records.fetch_add(1, Ordering::Relaxed);
        }
    }
    head.finish_replay();
    if unknown_refs > 0 {
        tracing::warn!(
            groups = unknown_refs,
            "WAL samples referenced unknown series and were dropped"
        );
    }
    Ok((last, applied))
}
