//! Waiting for the WAL's answer to an append and settling the head by it, even when the
//! caller stops waiting (a client that disconnects drops its request's future): an
//! acknowledged record marks the series it defined as logged; a refused one is rolled back
//! out of the head. An append abandoned before its answer becomes an *orphan*, settled by
//! the next append or head cut once the answer is there, so a refused request leaves
//! nothing behind either way.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot::{self, error::TryRecvError};

use crate::metrics::head::striped::StripedHead;
use crate::metrics::record::WalRecord;
use crate::storage::AppendError;

/// An append whose record went to the WAL and whose answer is not applied yet.
struct Unsettled {
    record: WalRecord,
    ack: oneshot::Receiver<io::Result<()>>,
}

/// Appends abandoned by their callers before the WAL answered, and the count of refused
/// appends taken back out of the head (to compare with the WAL's count of refusals).
#[derive(Default)]
pub(super) struct Orphans {
    list: Mutex<Vec<Unsettled>>,
    rolled_back: AtomicU64,
}

impl Orphans {
    /// Refused appends rolled back since open (answers other than the WAL's own refusals,
    /// such as a stopped writer, are not counted).
    pub(super) fn rolled_back(&self) -> u64 {
        self.rolled_back.load(Ordering::Relaxed)
    }

    /// Settles every orphan whose answer has arrived; call with the head locked.
    pub(super) fn settle_ready(&self, head: &StripedHead) {
        let mut list = self.list.lock();
        if list.is_empty() {
            return;
        }
        list.retain_mut(|o| match o.ack.try_recv() {
            Ok(Ok(())) => {
                head.mark_logged(&o.record.series);
                false
            }
            Ok(Err(_)) => {
                head.rollback(&o.record);
                self.rolled_back.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(TryRecvError::Closed) => {
                head.rollback(&o.record);
                false
            }
            Err(TryRecvError::Empty) => true,
        });
    }
}

/// Settles the append unless it was settled: dropped while waiting, it becomes an orphan.
struct Waiting<'a> {
    orphans: &'a Orphans,
    record: WalRecord,
    ack: Option<oneshot::Receiver<io::Result<()>>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(ack) = self.ack.take() {
            self.orphans.list.lock().push(Unsettled {
                record: std::mem::take(&mut self.record),
                ack,
            });
        }
    }
}

/// Waits for the WAL's answer to `record` and settles the head by it: logged on success,
/// rolled back on failure (returned as [`AppendError::Wal`] or [`AppendError::Closed`]).
pub(super) async fn await_ack(
    head: &RwLock<StripedHead>,
    orphans: &Orphans,
    record: WalRecord,
    ack: oneshot::Receiver<io::Result<()>>,
) -> Result<(), AppendError> {
    let mut waiting = Waiting {
        orphans,
        record,
        ack: Some(ack),
    };
    let answer = match waiting.ack.as_mut() {
        Some(ack) => ack.await,
        None => return Err(AppendError::Closed),
    };
    waiting.ack = None;
    let error = match answer {
        Ok(Ok(())) => {
            if !waiting.record.series.is_empty() {
                head.read().mark_logged(&waiting.record.series);
            }
            return Ok(());
        }
        Ok(Err(e)) => {
            head.read().rollback(&waiting.record);
            orphans.rolled_back.fetch_add(1, Ordering::Relaxed);
            return Err(AppendError::Wal(e));
        }
        Err(_) => AppendError::Closed,
    };
    head.read().rollback(&waiting.record);
    Err(error)
}
