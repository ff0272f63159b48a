//! The public types of the metric database: options, limits, reports, errors, stats.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::storage::FsyncMode;

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
    /// How far behind the newest sample seen (by any series) an in-order sample is still
    /// accepted; older samples are rejected as too old.
    pub max_sample_age: Duration,
    /// Blocks whose newest sample is older than this are deleted (0 = keep forever).
    pub retention_time: Duration,
    /// When blocks take more bytes than this, the oldest are deleted (0 = no limit).
    pub retention_bytes: u64,
    /// Memory the head (live plus heads waiting to become blocks) may use before appends
    /// are refused with [`AppendError::Overloaded`](crate::AppendError::Overloaded); a cut is forced at 80%.
    pub head_memory_bytes: u64,
    /// Limits applied to every appended series.
    pub limits: SeriesLimits,
}

/// Per-series validation limits (the cardinality guard).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesLimits {
    /// Most labels (including `__name__`) a series may have.
    pub max_labels_per_series: usize,
    /// Longest label name in bytes.
    pub max_label_name_bytes: usize,
    /// Longest label value in bytes.
    pub max_label_value_bytes: usize,
    /// Total number of series in the head (0 = unlimited).
    pub max_series: usize,
    /// Series per metric name in the head (0 = unlimited).
    pub max_series_per_metric: usize,
}

impl Default for SeriesLimits {
    fn default() -> Self {
        SeriesLimits {
            max_labels_per_series: 64,
            max_label_name_bytes: 256,
            max_label_value_bytes: 4096,
            max_series: 2_000_000,
            max_series_per_metric: 200_000,
        }
    }
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
            retention_time: Duration::from_secs(15 * 24 * 3600),
            retention_bytes: 0,
            head_memory_bytes: 2 * 1024 * 1024 * 1024,
            limits: SeriesLimits::default(),
        }
    }
}

/// Why a single sample or series was refused; counted per reason and reported back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Labels invalid: bad name, duplicate name, missing metric name.
    InvalidLabels,
    /// More labels than `max_labels_per_series`.
    TooManyLabels,
    /// A label name longer than `max_label_name_bytes`.
    LabelNameTooLong,
    /// A label value longer than `max_label_value_bytes`.
    LabelValueTooLong,
    /// The total series limit was reached; new series are refused.
    SeriesLimit,
    /// The per-metric series limit was reached.
    SeriesPerMetricLimit,
    /// Older than the series' newest sample by more than the out-of-order window.
    OutOfOrder,
    /// Older than the newest sample seen by more than `max_sample_age`.
    TooOld,
    /// Same timestamp as an existing sample with the same value: ignored.
    Duplicate,
    /// Same timestamp as an existing sample but a different value.
    DuplicateTimestamp,
}

impl RejectReason {
    /// Stable snake_case name, for metrics labels and API responses.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidLabels => "invalid_labels",
            RejectReason::TooManyLabels => "too_many_labels",
            RejectReason::LabelNameTooLong => "label_name_too_long",
            RejectReason::LabelValueTooLong => "label_value_too_long",
            RejectReason::SeriesLimit => "series_limit",
            RejectReason::SeriesPerMetricLimit => "series_per_metric_limit",
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::TooOld => "too_old",
            RejectReason::Duplicate => "duplicate",
            RejectReason::DuplicateTimestamp => "duplicate_timestamp",
        }
    }

    /// A phrase for messages to clients, in Prometheus' wording where it has one.
    pub fn describe(self) -> &'static str {
        match self {
            RejectReason::InvalidLabels => "invalid labels",
            RejectReason::TooManyLabels => "too many labels",
            RejectReason::LabelNameTooLong => "label name too long",
            RejectReason::LabelValueTooLong => "label value too long",
            RejectReason::SeriesLimit => "series limit reached",
            RejectReason::SeriesPerMetricLimit => "per-metric series limit reached",
            RejectReason::OutOfOrder => "out of order sample",
            RejectReason::TooOld => "too old sample",
            RejectReason::Duplicate => "duplicate sample",
            RejectReason::DuplicateTimestamp => "duplicate sample for timestamp",
        }
    }
}

/// What happened to an append: how many samples were stored, and for the rest why not.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AppendReport {
    /// Samples stored (and, once `append` returns, durable per the fsync mode).
    pub accepted: u64,
    /// Refused samples per reason, sorted by reason.
    pub rejected: Vec<(RejectReason, u64)>,
    /// A human-readable description of the first refusal, naming the series.
    pub first_error: Option<String>,
}

impl AppendReport {
    /// Refused samples over all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }

    /// Counts `n` refusals for `reason`, remembering the first message.
    pub fn reject(&mut self, reason: RejectReason, n: u64, message: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
        match self.rejected.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, count)) => *count += n,
            None => {
                self.rejected.push((reason, n));
                self.rejected.sort();
            }
        }
    }
}

/// Figures for self-monitoring.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DbStats {
    /// Series in the live head (including ones carried over a cut without new samples).
    pub head_series: u64,
    /// Samples in memory: live head plus frozen heads.
    pub head_samples: u64,
    /// Approximate bytes of labels and samples in memory (live plus frozen heads); the
    /// figure compared with `head_memory_bytes`.
    pub head_bytes: u64,
    /// Oldest and newest sample in memory.
    pub head_min_time_ms: Option<i64>,
    pub head_max_time_ms: Option<i64>,
    /// Blocks on disk and their total size.
    pub blocks: u64,
    pub block_bytes: u64,
    /// Bytes written to WAL segments since open (frames included).
    pub wal_bytes_written: u64,
    /// fsyncs of WAL segments since open and the time they took.
    pub wal_fsyncs: u64,
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
    /// Samples stored in blocks.
    pub block_samples: u64,
    /// WAL records that passed the CRC but could not be decoded at replay (skipped).
    pub wal_undecodable_records: u64,
}
