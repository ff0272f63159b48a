//! What the WAL writer reports to its store: throughput counters and the fault it is in.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::storage::fsutil::FaultInjector;

/// Counters and fault state the writer keeps for the stores' stats (e.g. [`crate::DbStats`])
/// and readiness.
#[derive(Debug, Default)]
pub(crate) struct WalStats {
    pub bytes_written: AtomicU64,
    pub fsyncs: AtomicU64,
    pub fsync_nanos: AtomicU64,
    pub segments: AtomicU64,
    /// Write, fsync or segment-creation failures since open.
    pub errors: AtomicU64,
    /// Times the writer left a fault (a write after it succeeded).
    pub recoveries: AtomicU64,
    /// Appends answered with an error; counted before the answer is sent, so a store
    /// can tell whether every refused append has been taken back (a head cut waits).
    pub refused_appends: AtomicU64,
    /// The error of the fault the writer is in, `None` while it writes normally.
    fault: Mutex<Option<String>>,
    /// Failures tests inject into the writer's I/O.
    pub injector: FaultInjector,
    /// The ingest-log positions the last rotation checkpoint carried: those of every
    /// record before the rotation (`position.rs`).
    pub rotation_positions: Mutex<super::position::AppliedPositions>,
}

/// How a store's write-ahead log is doing, for readiness and the self-metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalHealth {
    /// The error of the fault the log is in (it refuses appends until it recovers), `None`
    /// while it works.
    pub fault: Option<String>,
    /// Write, fsync or segment-creation failures since open.
    pub errors: u64,
    /// Times the log left a fault since open.
    pub recoveries: u64,
}

impl WalStats {
    /// The current [`WalHealth`].
    pub(crate) fn health(&self) -> WalHealth {
        WalHealth {
            fault: self.fault(),
            errors: self.errors.load(Ordering::Relaxed),
            recoveries: self.recoveries.load(Ordering::Relaxed),
        }
    }

    /// The current fault's error message, if the writer is in one.
    pub(crate) fn fault(&self) -> Option<String> {
        self.fault.lock().clone()
    }

    /// Enters (or stays in) a fault caused by `error`, counting the failure.
    pub(crate) fn set_fault(&self, error: &std::io::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.fault.lock() = Some(error.to_string());
    }

    /// Leaves the fault, if any; returns true when there was one.
    pub(crate) fn clear_fault(&self) -> bool {
        let was = self.fault.lock().take().is_some();
        if was {
            self.recoveries.fetch_add(1, Ordering::Relaxed);
        }
        was
    }
}
