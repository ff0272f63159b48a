//! What the exporter's tasks share: the disk buffer behind a mutex, the wake-up of the sender,
//! and the counters behind [`ExportSnapshot`] and the `didban_agent_export_*` self-metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::error::BufferError;
use crate::export::buffer::DiskBuffer;
use crate::export::reason::{Reason, ReasonCounters, ReasonCounts};

/// Counters describing the exporter, for logs and self-metrics.
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Requests the collector accepted.
    pub sent_requests: AtomicU64,
    /// Samples put into the buffer.
    pub buffered_samples: AtomicU64,
    /// Failed attempts (each retried, split or dropped).
    pub failed_attempts: AtomicU64,
    /// Requests dropped for good (undecodable, or one item over the collector's limit).
    pub rejected_records: AtomicU64,
    /// Failed attempts by reason.
    pub failures: ReasonCounters,
    /// Items (points, spans, log records) dropped, by reason; the buffer's own drops are
    /// added by [`snapshot_of`].
    pub dropped_items: ReasonCounters,
}

/// The buffer, the sender's wake-up and the counters.
pub struct Shared {
    /// The on-disk buffer.
    pub buffer: Mutex<DiskBuffer>,
    /// Wakes the sender when a record was appended.
    pub notify: Notify,
    /// Counters.
    pub stats: ExportStats,
    /// No buffered request is larger than this (`export.batch_max_bytes`).
    pub max_request_bytes: usize,
}

impl Shared {
    /// The buffer. A panic while holding the lock leaves the buffer's files consistent (every
    /// step is a complete file operation), so a poisoned lock is still usable.
    pub fn lock(&self) -> MutexGuard<'_, DiskBuffer> {
        match self.buffer.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Runs `op` on the buffer off the async threads; `None` (logged) when it failed.
pub async fn buffer_op<T: Send + 'static>(
    shared: &Arc<Shared>,
    op: impl FnOnce(&mut DiskBuffer) -> Result<T, BufferError> + Send + 'static,
) -> Option<T> {
    let shared2 = shared.clone();
    match tokio::task::spawn_blocking(move || op(&mut shared2.lock())).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "export buffer failed");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "export buffer task failed");
            None
        }
    }
}

/// A snapshot of the buffer and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSnapshot {
    /// Records on disk not yet acknowledged.
    pub pending_records: usize,
    /// Bytes of buffer segment files.
    pub buffer_bytes: u64,
    /// Bytes of the records not yet acknowledged.
    pub buffered_bytes: u64,
    /// Records dropped because the buffer was full.
    pub dropped_records: u64,
    /// Requests accepted by the collector.
    pub sent_requests: u64,
    /// Failed attempts.
    pub failed_attempts: u64,
    /// Requests dropped for good.
    pub rejected_records: u64,
    /// Failed attempts by reason.
    pub failures: ReasonCounts,
    /// Items dropped by reason (`buffer_full` included).
    pub dropped_items: ReasonCounts,
}

/// The current [`ExportSnapshot`].
pub fn snapshot_of(shared: &Shared) -> ExportSnapshot {
    let (pending_records, buffer_bytes, buffered_bytes, dropped_records, buffer_items) = {
        let b = shared.lock();
        (
            b.pending_records(),
            b.bytes(),
            b.pending_bytes(),
            b.dropped_records(),
            b.dropped_items(),
        )
    };
    let s = &shared.stats;
    let dropped = ReasonCounters::default();
    for (reason, n) in s.dropped_items.snapshot().nonzero() {
        dropped.add(reason, n);
    }
    dropped.add(Reason::BufferFull, buffer_items);
    ExportSnapshot {
        pending_records,
        buffer_bytes,
        buffered_bytes,
        dropped_records,
        sent_requests: s.sent_requests.load(Ordering::Relaxed),
        failed_attempts: s.failed_attempts.load(Ordering::Relaxed),
        rejected_records: s.rejected_records.load(Ordering::Relaxed),
        failures: s.failures.snapshot(),
        dropped_items: dropped.snapshot(),
    }
}
