//! What the metric, trace and log stores share, so none of them borrows from another:
//!
//! - `wal`: the write-ahead log. It moves bytes — numbered segment files, CRC-framed
//!   records, one writer thread with group commit, torn-tail repair on read — and knows
//!   nothing of what a record means; each store encodes its own records
//!   (`metrics::record`, `traces::span`, `logs::record`), as Prometheus' `tsdb/wlog`
//!   leaves encodings to `tsdb/record`.
//! - [`FsyncMode`]: when a WAL is fsynced relative to acknowledging an append.
//! - The error types: [`AppendError`], [`OpenError`], [`BlockError`].
//! - `block_dir`: the life of a block directory, for metric and span blocks alike —
//!   written in a `.tmp-<id>` directory, fsynced, renamed to `<min>-<max>-<id>`, the
//!   parent fsynced; leftovers removed at open; deletion by rename to `.tmp-del-…`.
//! - `parquet`: reading helpers both block kinds use.
//! - `object`: blocks in a bucket of an S3-compatible store, with a bounded local cache
//!   of their files; a block's files (local or remote) as Parquet chunk readers.
//! - `metastore`: the list of blocks in PostgreSQL (optional, with a bucket), through
//!   which processes sharing a bucket see each other's blocks and elect one compactor.
//! - `fsutil`: directory fsync and synced file writes (Prometheus' `tsdb/fileutil`), the
//!   disk headroom of the data directory, and the WAL's fault injector for tests.

pub(crate) mod block_dir;
mod error;
mod fsutil;
mod fsync;
pub(crate) mod metastore;
pub(crate) mod object;
pub(crate) mod parquet;
pub(crate) mod wal;

pub use error::{AppendError, BlockError, OpenError};
pub use fsutil::{disk_space, DiskSpace, WalFaultOp};
pub use fsync::FsyncMode;
pub use metastore::MetastoreConfig;
pub use object::{BlockStorage, ObjectCacheStats, S3Config};
pub use wal::{AppliedPositions, LogPosition, WalHealth};
