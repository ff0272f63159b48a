//! The options the metric database opens with and the figures it reports.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::metrics::append::SeriesLimits;
use crate::storage::{BlockStorage, FsyncMode, MetastoreConfig, ObjectCacheStats};

/// Everything the database needs to know, with the defaults documented in
/// `docs/configuration.md`.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Root of the data directory; metrics live under `wal/metrics` and `metrics/blocks`.
    pub data_dir: PathBuf,
    /// When appends are acknowledged relative to the WAL fsync (default: batch).
    pub fsync: FsyncMode,
    /// Period of the background fsync in [`FsyncMode::Interval`].
    pub fsync_interval: Duration,
    /// Size at which a WAL segment is closed and a new one started (a single record is
    /// never split, so one huge append can make a segment larger; minimum 1 KiB).
    pub wal_segment_bytes: u64,
    /// How much time a head holds before it is cut into a block: the head is cut once its
    /// samples span 1.5× this; compaction windows are 3× and 12× this.
    pub block_duration: Duration,
    /// How far behind a series' newest sample an out-of-order sample is still accepted.
    pub out_of_order_window: Duration,
    /// How far behind the newest sample seen (by any series, but never later than the
    /// server clock) an in-order sample is still accepted; older samples are rejected as
    /// too old.
    pub max_sample_age: Duration,
    /// How far ahead of the server clock a sample may be (0 = no limit); later samples are
    /// refused as too far in the future, so no client clock can move the window above.
    pub max_future: Duration,
    /// Blocks whose newest sample is older than this are deleted (0 = keep forever).
    pub retention_time: Duration,
    /// When blocks take more bytes than this, the oldest are deleted (0 = no limit).
    pub retention_bytes: u64,
    /// Raw blocks whose newest sample is older than this get a copy downsampled to
    /// 5-minute windows (0 = never). Should be shorter than `retention_time`, or raw data
    /// is deleted before it is downsampled.
    pub downsample_5m_after: Duration,
    /// Blocks whose newest sample is older than this get a copy downsampled to 1-hour
    /// windows, made from the 5-minute block when there is one, else from the raw block
    /// (0 = never).
    pub downsample_1h_after: Duration,
    /// 5-minute blocks whose newest window is older than this are deleted (0 = keep).
    pub retention_time_5m: Duration,
    /// 1-hour blocks whose newest window is older than this are deleted (0 = keep).
    pub retention_time_1h: Duration,
    /// Memory budget of the head (live plus heads waiting to become blocks): a cut is
    /// forced at 80%, new series are refused at 100% (existing ones are not), whole appends
    /// get [`AppendError::Overloaded`](crate::AppendError::Overloaded) past 125%.
    pub head_memory_bytes: u64,
    /// Bytes of block indexes (series lists and postings read from `series.parquet`) kept
    /// in memory across queries, least recently used dropped first; 0 keeps none, so every
    /// query reads the blocks' series lists again.
    pub block_index_cache_bytes: u64,
    /// Limits applied to every appended series.
    pub limits: SeriesLimits,
    /// Where blocks live: `metrics/blocks` in the data directory (default), or a bucket
    /// of an S3-compatible store with a bounded cache in `cache/metrics`.
    pub block_storage: BlockStorage,
    /// The PostgreSQL metastore of the bucket's blocks (only with a bucket): the block
    /// list comes from it, and only the holder of its compactor lease compacts.
    pub metastore: Option<MetastoreConfig>,
}

impl DbOptions {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        DbOptions {
            data_dir: data_dir.into(),
            fsync: FsyncMode::Batch,
            fsync_interval: Duration::from_secs(1),
            wal_segment_bytes: 64 * 1024 * 1024,
            block_duration: Duration::from_secs(2 * 3600),
            out_of_order_window: Duration::from_secs(10 * 60),
            max_sample_age: Duration::from_secs(6 * 3600),
            max_future: Duration::from_secs(10 * 60),
            retention_time: Duration::from_secs(15 * 24 * 3600),
            retention_bytes: 0,
            downsample_5m_after: Duration::from_secs(2 * 24 * 3600),
            downsample_1h_after: Duration::from_secs(10 * 24 * 3600),
            retention_time_5m: Duration::from_secs(90 * 24 * 3600),
            retention_time_1h: Duration::from_secs(365 * 24 * 3600),
            head_memory_bytes: 2 * 1024 * 1024 * 1024,
            block_index_cache_bytes: 256 * 1024 * 1024,
            limits: SeriesLimits::default(),
            block_storage: BlockStorage::File,
            metastore: None,
        }
    }
}

/// Figures for self-monitoring.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DbStats {
    /// Series in the live head (including ones carried over a cut without new samples).
    pub head_series: u64,
    /// Samples in memory (float and native histogram): live head plus frozen heads.
    pub head_samples: u64,
    /// Approximate bytes of labels and samples in memory (live plus frozen heads); the
    /// figure compared with `head_memory_bytes`.
    pub head_bytes: u64,
    /// Oldest sample in memory.
    pub head_min_time_ms: Option<i64>,
    /// Newest sample in memory.
    pub head_max_time_ms: Option<i64>,
    /// Blocks on disk (raw and downsampled).
    pub blocks: u64,
    /// Total size of the blocks on disk (raw and downsampled).
    pub block_bytes: u64,
    /// Downsampled blocks of 5-minute windows (part of `blocks`).
    pub blocks_5m: u64,
    /// Their bytes (part of `block_bytes`).
    pub block_bytes_5m: u64,
    /// Downsampled blocks of 1-hour windows (part of `blocks`).
    pub blocks_1h: u64,
    /// Their bytes (part of `block_bytes`).
    pub block_bytes_1h: u64,
    /// Downsampled blocks written since open.
    pub blocks_downsampled: u64,
    /// Bytes written to WAL segments since open (frames included).
    pub wal_bytes_written: u64,
    /// fsyncs of WAL segments since open.
    pub wal_fsyncs: u64,
    /// Time those fsyncs took.
    pub wal_fsync_seconds_total: f64,
    /// WAL segment files currently on disk.
    pub wal_segments: u64,
    /// Compactions (each merges several blocks into one) since open.
    pub compactions: u64,
    /// Heads written as blocks since open.
    pub blocks_cut: u64,
    /// Blocks deleted by time or size retention since open.
    pub retention_deleted_blocks: u64,
    /// WAL records applied at open.
    pub wal_replayed_records: u64,
    /// Segments whose torn or corrupt tail was cut off at open.
    pub wal_torn_tail_repairs: u64,
    /// Heads cut but not yet written as blocks (still queryable from memory).
    pub frozen_heads: u64,
    /// Samples stored in blocks (float and native histogram).
    pub block_samples: u64,
    /// WAL records that passed the CRC but could not be decoded at replay (skipped).
    pub wal_undecodable_records: u64,
    /// WAL write, fsync or segment-creation failures since open.
    pub wal_errors: u64,
    /// Times the WAL left a fault and accepted appends again.
    pub wal_recoveries: u64,
    /// The error of the fault the WAL is in now, `None` while it works.
    pub wal_fault: Option<String>,
    /// The block index cache: bytes held, limit, hits, misses, evictions.
    pub block_index_cache: crate::metrics::block::BlockIndexCacheStats,
    /// The local cache of block files when blocks are in a bucket (`None` in file mode).
    pub object_cache: Option<ObjectCacheStats>,
    /// Whether this process compacts and applies retention: always without a metastore,
    /// with one while it holds the compactor lease.
    pub compactor: bool,
    /// Blocks the compactor's garbage collection deleted from the bucket since open
    /// (retired ones past the grace period, and abandoned uploads).
    pub gc_deleted_blocks: u64,
}
