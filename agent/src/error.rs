//! Error types of the agent library. Each names what failed so the log line is actionable.

use std::path::PathBuf;

/// The configuration could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown key or a bad value.
    #[error("parsing config: {0}")]
    Parse(String),
    /// A key has a value out of its range.
    #[error("config key {key}: {why}")]
    Invalid {
        /// The dotted key.
        key: String,
        /// What is wrong with it.
        why: String,
    },
}

/// The on-disk export buffer failed.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// A file operation in the buffer directory failed.
    #[error("export buffer {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A record is larger than a record may be.
    #[error("export buffer: record of {0} bytes is too large")]
    TooLarge(usize),
}

/// The exporter could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The buffer could not be opened.
    #[error(transparent)]
    Buffer(#[from] BufferError),
    /// The endpoint is not a valid URI.
    #[error("export endpoint {endpoint:?}: {why}")]
    Endpoint {
        /// The configured endpoint.
        endpoint: String,
        /// Why it is unusable.
        why: String,
    },
}

/// One collection failed; the agent logs it and tries again next interval.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Reading a local file (e.g. under /proc) failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A remote target (scrape URL, Redis, PostgreSQL) failed.
    #[error("{target}: {why}")]
    Target {
        /// Which target.
        target: String,
        /// What went wrong.
        why: String,
    },
    /// The collection took longer than its timeout.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

/// The agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The exporter (buffer, endpoint) could not start.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A collector could not be built from its config.
    #[error("collector {name}: {source}")]
    Collector {
        /// Which collector.
        name: String,
        /// Why.
        source: CollectError,
    },
}
