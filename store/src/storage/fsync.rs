//! When a write-ahead log is fsynced relative to acknowledging an append; one setting for
//! the metric, trace and log WALs alike.

use serde::{Deserialize, Serialize};

/// When the WAL is fsynced relative to acknowledging an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Every append waits for an fsync that covers it (group commit). Nothing
    /// acknowledged is lost on a crash.
    #[default]
    Batch,
    /// Appends are acknowledged after the write; a timer fsyncs every `fsync_interval`.
    Interval,
    /// Never fsync explicitly; the OS decides. For benchmarks and throwaway data.
    Off,
}
