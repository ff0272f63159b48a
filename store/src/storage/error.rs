//! The error types the metric, trace and log stores share: why an append, an open or a
//! block read/write failed.

use std::path::{Path, PathBuf};

/// Why a whole append failed; nothing of it was stored or acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The head is over its memory limit; retry after the next block cut.
    #[error("head is over its memory limit ({used} of {limit} bytes); retry later")]
    Overloaded {
        /// Bytes the head (live and waiting to be written) uses.
        used: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Log records waiting to be indexed and made durable are over their limit; retry
    /// after indexing catches up.
    #[error("log ingest backlog is over its limit ({used} of {limit} bytes waiting); retry later")]
    Backlog {
        /// Bytes of batches accepted but not yet indexed and durable.
        used: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Writing or syncing the WAL failed; the samples may be visible to queries but are
    /// not durable, and the request should be retried.
    #[error("write-ahead log failed: {0}")]
    Wal(#[from] std::io::Error),
    /// The store was closed ([`crate::Db::close`], or `close` of the trace or log store).
    #[error("database is closed")]
    Closed,
}

/// Why the metric database or the trace store could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A directory could not be created.
    #[error("cannot open data directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A WAL segment could not be read or repaired, or the writer could not start.
    #[error("cannot replay write-ahead log {path}: {source}")]
    Wal {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The blocks directory could not be listed or cleaned up.
    #[error(transparent)]
    Block(#[from] BlockError),
}

/// Why a block (metric or span) could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// Reading or writing a file or directory failed.
    #[error("block I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Parquet library refused a file.
    #[error("parquet error in {path}: {source}")]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// The Parquet library's error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Arrow arrays did not fit the expected schema.
    #[error("arrow error in {path}: {source}")]
    Arrow {
        /// The Parquet file.
        path: PathBuf,
        /// The Arrow library's error.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// `meta.json` is not valid.
    #[error("bad meta.json in {path}: {source}")]
    Meta {
        /// The `meta.json` file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A request to the object store failed (after the client's retries).
    #[error("object store request on {url}: {source}")]
    Remote {
        /// `s3://<bucket>/<key>`.
        url: String,
        /// The client's error.
        #[source]
        source: object_store::Error,
    },
    /// A statement of the PostgreSQL metastore failed (or the compactor lease was not
    /// held for an action that needs it).
    #[error("metastore: {0}")]
    Metastore(#[from] didban_coord::CoordError),
    /// The files contradict each other or the layout.
    #[error("corrupt block {path}: {reason}")]
    Corrupt {
        /// The block directory or file.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
}

impl BlockError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> BlockError {
        BlockError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A Parquet error on the file at `path`.
    pub(crate) fn parquet(path: &Path, source: parquet::errors::ParquetError) -> BlockError {
        BlockError::Parquet {
            path: path.to_path_buf(),
            source,
        }
    }

    /// `path` contradicts the layout for `reason`.
    pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> BlockError {
        BlockError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// For maintenance paths that report `io::Error`: I/O errors keep their kind and gain the
/// path; the others become `ErrorKind::Other` with their message.
impl From<BlockError> for std::io::Error {
    fn from(e: BlockError) -> std::io::Error {
        match e {
            BlockError::Io { path, source } => {
                std::io::Error::new(source.kind(), format!("{}: {source}", path.display()))
            }
            other => std::io::Error::other(other.to_string()),
        }
    }
}
