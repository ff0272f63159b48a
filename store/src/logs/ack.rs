//! Waiting for the WAL's answer to a log batch and taking the batch back out of its day
//! indexes when the WAL refuses it, before any commit makes it searchable. A batch whose
//! caller stopped waiting (a client that disconnects drops its request's future) becomes
//! an *orphan*, settled by the next append or commit once its answer is there.

use std::io;
use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::schema::Field;
use tokio::sync::oneshot::{self, error::TryRecvError};
use tokio::sync::RwLockReadGuard;

use super::day::DayIndex;
use crate::storage::AppendError;

/// The WAL's answer to an append.
type Ack = oneshot::Receiver<io::Result<()>>;

/// Documents of one batch added to one day index, by their `seq` values.
pub(super) struct Added {
    /// The day index they went to.
    pub(super) day: Arc<DayIndex>,
    /// Their sequence numbers.
    pub(super) seqs: Vec<u64>,
}

/// Takes the documents of a batch back out of their (uncommitted) day indexes.
pub(super) fn take_back(added: &[Added], seq_field: Field) {
    for a in added {
        a.day.delete_seqs(seq_field, &a.seqs);
    }
}

/// Batches abandoned by their callers before the WAL answered.
#[derive(Default)]
pub(super) struct Orphans {
    list: Mutex<Vec<(Vec<Added>, Ack)>>,
}

impl Orphans {
    /// Takes back every orphan whose answer arrived and is a refusal (or a stopped
    /// writer); drops the acknowledged ones from the list.
    pub(super) fn settle_ready(&self, seq_field: Field) {
        let mut list = self.list.lock();
        list.retain_mut(|(added, ack)| match ack.try_recv() {
            Ok(Ok(())) => false,
            Ok(Err(_)) | Err(TryRecvError::Closed) => {
                take_back(added, seq_field);
                false
            }
            Err(TryRecvError::Empty) => true,
        });
    }
}

/// Leaves the batch to the orphans unless its answer was applied: dropped while waiting.
/// It holds the store's gate, released (as a field) only after that.
struct Waiting<'a> {
    orphans: &'a Orphans,
    added: Vec<Added>,
    ack: Option<Ack>,
    _gate: RwLockReadGuard<'a, ()>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(ack) = self.ack.take() {
            self.orphans
                .list
                .lock()
                .push((std::mem::take(&mut self.added), ack));
        }
    }
}

/// Waits for the WAL's answer to the batch whose documents are `added`; on a refusal
/// ([`AppendError::Wal`]) or a stopped writer ([`AppendError::Closed`]) takes them back.
/// Holds `gate` until the answer is applied (or the batch left to the orphans), so a
/// commit never sees a batch whose answer is pending.
pub(super) async fn await_ack<'a>(
    gate: RwLockReadGuard<'a, ()>,
    orphans: &'a Orphans,
    seq_field: Field,
    added: Vec<Added>,
    ack: Ack,
) -> Result<(), AppendError> {
    let mut waiting = Waiting {
        orphans,
        added,
        ack: Some(ack),
        _gate: gate,
    };
    let answer = match waiting.ack.as_mut() {
        Some(ack) => ack.await,
        None => return Err(AppendError::Closed),
    };
    waiting.ack = None;
    let error = match answer {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => AppendError::Wal(e),
        Err(_) => AppendError::Closed,
    };
    take_back(&waiting.added, seq_field);
    Err(error)
}
