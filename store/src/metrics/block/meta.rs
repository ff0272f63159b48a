//! What a metric block says about itself: `meta.json`, and the series list of
//! `series.parquet` as held in memory.

use serde::{Deserialize, Serialize};

use crate::model::Labels;

/// Version of the raw block layout written into `meta.json`: 4 since a series' scaled
/// values are stored as differences (`scaled_delta` from the series' `scaled_base`; see
/// `decimal`). 2 was taken by downsampled blocks, so each number names one layout.
pub const BLOCK_FORMAT_VERSION: u32 = 4;

/// The raw block layout with scaled values stored whole (`scaled_value`, `value_scale`):
/// such blocks are still read and compacted into the current layout.
pub const SCALED_BLOCK_FORMAT_VERSION: u32 = 3;

/// The raw block layout before scaled values (every value in the float column `value`):
/// such blocks are still read and compacted into the current layout.
pub const FLOAT_BLOCK_FORMAT_VERSION: u32 = 1;

/// Version written into the `meta.json` of a downsampled block: a release that predates
/// downsampling refuses (and skips) such a block instead of reading its windows' last
/// values as raw samples.
pub const DOWNSAMPLED_FORMAT_VERSION: u32 = 2;

/// The resolutions Didban downsamples to (`resolution_ms` of a downsampled block), finest
/// first: 5 minutes and 1 hour, as Thanos.
pub const RESOLUTIONS_MS: [i64; 2] = [300_000, 3_600_000];

/// Contents of `meta.json`: what an outside reader needs to pick blocks by time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// [`BLOCK_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Random id, also the last part of the directory name.
    pub id: String,
    /// Oldest sample timestamp in the block (inclusive).
    pub min_time_ms: i64,
    /// Newest sample timestamp in the block (inclusive).
    pub max_time_ms: i64,
    /// Rows of `series.parquet`.
    pub series: u64,
    /// Rows of `samples.parquet`.
    pub samples: u64,
    /// Rows of `histograms.parquet` (native histogram samples); 0, and absent from older
    /// blocks, when the block has no such file.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub histogram_samples: u64,
    /// Level and source blocks.
    pub compaction: CompactionMeta,
    /// Width of the windows of a downsampled block (300000 or 3600000): its
    /// `samples.parquet` holds one row of aggregates per series and window. 0, and absent
    /// from `meta.json`, for a block of raw samples. The time range of a downsampled block is
    /// the range of the data it summarises (its source's), which its windows' timestamps lie in.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub resolution_ms: i64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// Where a block came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactionMeta {
    /// 1 for a block cut from the head, one more than the highest source when compacted.
    pub level: u32,
    /// Ids of the blocks merged into this one (empty for a head cut).
    pub sources: Vec<String>,
    /// With the ingest log: per partition, the highest stream sequence whose samples this
    /// block holds all of (a head cut freezes the whole head, so every message up to it is
    /// in this block or an older one); the highest of the sources' after a merge. What a
    /// replacement ingester resumes after. Absent without the ingest log.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub ingest_positions: std::collections::BTreeMap<u32, u64>,
}

/// One series of a block, as listed in `series.parquet`.
#[derive(Debug, Clone)]
pub(crate) struct BlockSeries {
    pub labels: Labels,
    pub first_row: u64,
    pub row_count: u64,
    pub min_t: i64,
    pub max_t: i64,
    /// Decimal scale of the series' scaled rows (`None`: all its values are floats, as in
    /// every series of a format 1 block).
    pub value_scale: Option<u8>,
    /// What the series' first `scaled_delta` adds to (format 4; 0 in older blocks and in
    /// series without scaled rows). See `decimal`.
    pub scaled_base: i64,
}
