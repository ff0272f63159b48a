//! Immutable Parquet blocks under `<data_dir>/metrics/blocks/<mint>-<maxt>-<id>/`.
//!
//! A block holds `series.parquet` (one row per series, sorted by labels, with the range of
//! its rows in `samples.parquet`), `samples.parquet` (rows sorted by series id then
//! timestamp), `histograms.parquet` when the block holds native histogram samples (same
//! order, see `histograms`) and `meta.json`. Blocks are written into a `.tmp-` directory and renamed into
//! place, so a block directory either is complete or does not exist (the lifecycle shared
//! with span blocks, in `storage::block_dir`).
//!
//! - `meta`: `meta.json` and the in-memory series list.
//! - `writer`: writing a block from series in label order.
//! - `decimal`: reading a row's value back from the float or the scaled column (`metrics::decimal`).
//! - `reader`: the open block and the reads queries make (footers, selected samples).
//! - `cursor`: reading a block's series list or samples front to back, a batch at a time.
//! - `rows`: the row groups and rows of `samples.parquet` a query reads.
//! - `index`: a block's series list and postings, built from `series.parquet` on demand.
//! - `index_cache`: the byte-bounded LRU cache those indexes live in, shared by all blocks.
//! - `compact`: choosing blocks to merge and merging them.
//! - `downsample`: folding a block into a block of 5-minute or 1-hour windows.
//! - `histograms`: `histograms.parquet`, the native histogram samples (layout there).
//! - `aggregates`: `samples.parquet` of a downsampled block, one row of aggregates per
//!   series and window (layout there).

pub(crate) mod aggregates;
pub(crate) mod compact;
mod cursor;
mod decimal;
pub(crate) mod downsample;
pub(crate) mod histograms;
mod index;
mod index_cache;
mod meta;
pub(crate) mod reader;
mod rows;
pub(crate) mod writer;

pub(crate) use index_cache::BlockIndexCache;
pub use index_cache::BlockIndexCacheStats;
pub use meta::{
    BlockMeta, CompactionMeta, BLOCK_FORMAT_VERSION, DOWNSAMPLED_FORMAT_VERSION, FLOAT_BLOCK_FORMAT_VERSION,
    SCALED_BLOCK_FORMAT_VERSION,
};
pub(crate) use reader::{open_all, open_listed, open_remote, Block};
pub(crate) use writer::BlockWriter;

/// The shared block error, under the path it had when it lived here.
pub use crate::storage::BlockError;
