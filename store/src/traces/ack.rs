//! Waiting for the WAL's answer to a span batch and applying it to the head, even when the
//! caller stops waiting (a client that disconnects drops its request's future): an
//! acknowledged batch becomes visible, a refused one is dropped. A batch abandoned before
//! its answer is left to the head ([`SpanHead::adopt_orphan`]), which settles it at the
//! next append or head cut.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use super::head::{Ack, SpanHead};
use crate::storage::AppendError;

/// Leaves the answer to the head unless it was applied: dropped while waiting.
struct Waiting<'a> {
    head: &'a RwLock<SpanHead>,
    ticket: u64,
    ack: Option<Ack>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(ack) = self.ack.take() {
            self.head.write().adopt_orphan(self.ticket, ack);
        }
    }
}

/// Waits for the WAL's answer to the batch `ticket` and applies it: visible on success,
/// dropped on failure (returned as [`AppendError::Wal`], counted in `refused`, or
/// [`AppendError::Closed`]).
pub(super) async fn await_ack(
    head: &RwLock<SpanHead>,
    refused: &AtomicU64,
    ticket: u64,
    ack: Ack,
) -> Result<(), AppendError> {
    let mut waiting = Waiting {
        head,
        ticket,
        ack: Some(ack),
    };
    let answer = match waiting.ack.as_mut() {
        Some(ack) => ack.await,
        None => return Err(AppendError::Closed),
    };
    waiting.ack = None;
    match answer {
        Ok(Ok(())) => {
            head.write().commit(ticket);
            Ok(())
        }
        Ok(Err(e)) => {
            head.write().discard(ticket);
            refused.fetch_add(1, Ordering::Relaxed);
            Err(AppendError::Wal(e))
        }
        Err(_) => {
            head.write().discard(ticket);
            Err(AppendError::Closed)
        }
    }
}
