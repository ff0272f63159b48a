//! Why the log store failed.

use std::io;
use std::path::PathBuf;

/// Why the log store failed to open, commit or answer a search.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file or directory operation failed.
    #[error("log store I/O on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Tantivy refused an operation on an index.
    #[error("log index {path}: {source}")]
    Tantivy {
        /// The day index directory.
        path: PathBuf,
        /// Tantivy's error.
        #[source]
        source: tantivy::TantivyError,
    },
    /// The search query does not parse or names an unknown field.
    #[error("invalid log query {query:?}: {message}")]
    Query {
        /// The query as given.
        query: String,
        /// What is wrong with it.
        message: String,
    },
    /// A request parameter is out of range.
    #[error("{0}")]
    BadRequest(String),
}
