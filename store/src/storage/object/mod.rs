//! Blocks on object storage: a bucket of an S3-compatible store (through the
//! `object_store` crate) instead of the data directory, with a bounded local cache.
//!
//! - `config`: [`BlockStorage`] (file or S3) and [`S3Config`].
//! - `bucket`: the client, with a blocking interface on its own small runtime.
//! - `remote`: a block kind's prefix in the bucket — publishing (meta.json last) and
//!   listing blocks.
//! - `cache`: whole block files kept locally, bounded in bytes, LRU by file.
//! - `file`: a block's files wherever they are, and one file as a Parquet `ChunkReader`
//!   (range requests on a cache miss), so block readers are the same for both.

mod bucket;
mod cache;
mod config;
mod file;
mod remote;

pub use cache::ObjectCacheStats;
pub use config::{BlockStorage, S3Config};
pub(crate) use file::{BlockFile, BlockFiles};
pub(crate) use remote::{FileSizes, Remote};
