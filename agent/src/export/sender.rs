//! The sender task: ships the buffer oldest-first and removes a record only once its data was
//! delivered — or dropped for one of the few reasons that allow it (see [`crate::export::reason`]).
//!
//! A failure that may pass (a rotated token, a wrong path, an outage, back-pressure) keeps the
//! record and retries it with exponential backoff, or after the server's `Retry-After`. A 413
//! splits the request in two halves by bytes, sent one after the other, down to a single item;
//! only a single item over the limit is dropped. The sender then remembers the smallest size
//! refused, and splits requests of that size before sending them. It logs once per change of
//! state (failing for a new reason, recovered), not once per retry.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::watch;

use crate::export::buffer::RecordId;
use crate::export::otlp::{Signal, Transport};
use crate::export::reason::{Fate, Reason};
use crate::export::retry::{Backoff, SendFailure};
use crate::export::split;
use crate::export::state::{buffer_op, Shared};

/// Whether the last attempt failed, and since when.
struct Failing {
    reason: Reason,
    since: Instant,
    attempts: u64,
}

/// What became of the oldest record.
enum Delivery {
    /// Delivered or dropped: acknowledge it.
    Done,
    /// The buffer dropped it for space while it was being retried: do not acknowledge.
    Gone,
    /// The exporter is stopping; the record stays for the next start.
    Stopped,
}

/// The sender's state between records.
pub struct Sender {
    shared: Arc<Shared>,
    transport: Transport,
    backoff: Backoff,
    stop: watch::Receiver<bool>,
    failing: Option<Failing>,
    /// Whether the last accepted request had items rejected (logged once per run of them).
    rejecting: bool,
    /// Smallest request size the collector refused as too large.
    too_large_at: Option<usize>,
}

impl Sender {
    /// A sender over `shared`'s buffer, ending when `stop` turns true.
    pub fn new(
        shared: Arc<Shared>,
        transport: Transport,
        backoff: Backoff,
        stop: watch::Receiver<bool>,
    ) -> Sender {
        Sender {
            shared,
            transport,
            backoff,
            stop,
            failing: None,
            rejecting: false,
            too_large_at: None,
        }
    }

    /// Sends until stopped. A delivered record is acknowledged together with the look-up of
    /// the next one ([`crate::export::buffer::DiskBuffer::ack_and_peek`]): one trip to the
    /// buffer per record, and one `ack` write per burst.
    pub async fn run(mut self) {
        let mut delivered: Option<RecordId> = None;
        loop {
            if *self.stop.borrow() {
                self.save_ack(delivered).await;
                return;
            }
            let next = buffer_op(&self.shared, move |b| b.ack_and_peek(delivered)).await;
            delivered = None;
            let (id, record) = match next {
                Some(Some(record)) => record,
                Some(None) => {
                    tokio::select! {
                        _ = self.shared.notify.notified() => {}
                        _ = self.stop.changed() => return,
                    }
                    continue;
                }
                None => {
                    // The buffer itself failed (disk full, permissions): wait and try again.
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                        _ = self.stop.changed() => return,
                    }
                    continue;
                }
            };
            let signal = record.first().and_then(|t| Signal::from_tag(*t));
            let delivery = match signal {
                // The request is the record after its tag byte, shared rather than copied.
                Some(signal) => self.deliver(id, signal, Bytes::from(record).slice(1..)).await,
                None => {
                    tracing::error!("export buffer: record with an unknown signal tag; dropping it");
                    self.count_drop(Reason::Undecodable, 1);
                    Delivery::Done
                }
            };
            match delivery {
                Delivery::Done => delivered = Some(id),
                Delivery::Gone => {}
                Delivery::Stopped => {
                    self.save_ack(None).await;
                    return;
                }
            }
        }
    }

    /// Acknowledges `delivered` (when given) and writes what was acknowledged in memory.
    async fn save_ack(&self, delivered: Option<RecordId>) {
        buffer_op(&self.shared, move |b| {
            if let Some(id) = delivered {
                b.ack(id)?;
            }
            b.save_ack()
        })
        .await;
    }

    /// Delivers one buffered request, in pieces when the collector finds it too large.
    async fn deliver(&mut self, id: RecordId, signal: Signal, payload: Bytes) -> Delivery {
        // A stack whose top is the next piece in order.
        let mut todo = vec![payload];
        while let Some(piece) = todo.pop() {
            if self.too_large_at.is_some_and(|n| piece.len() >= n) {
                if let Some((first, second)) = split::halve(signal, &piece) {
                    todo.push(Bytes::from(second));
                    todo.push(Bytes::from(first));
                    continue;
                }
            }
            loop {
                let outcome = tokio::select! {
                    r = self.transport.send_bytes(signal, &piece) => r,
                    _ = self.stop.changed() => return Delivery::Stopped,
                };
                let failure = match outcome {
                    Ok(accepted) => {
                        self.recovered();
                        let stats = &self.shared.stats;
                        stats.sent_requests.fetch_add(1, Ordering::Relaxed);
                        if accepted.rejected > 0 {
                            let n = u64::try_from(accepted.rejected).unwrap_or(0);
                            stats.dropped_items.add(Reason::Rejected, n);
                            if self.rejecting {
                                tracing::debug!(?signal, rejected = accepted.rejected, message = %accepted.message, "export: collector rejected some items again");
                            } else {
                                tracing::warn!(?signal, rejected = accepted.rejected, message = %accepted.message, "export: collector rejected some items as invalid; they are dropped (counted in didban_agent_export_dropped_total{{reason=\"rejected\"}}, logged again once it accepted a request whole)");
                            }
                        }
                        self.rejecting = accepted.rejected > 0;
                        break;
                    }
                    Err(failure) => failure,
                };
                let stats = &self.shared.stats;
                stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                stats.failures.add(failure.reason, 1);
                match failure.reason.fate() {
                    Fate::Retry => {
                        let delay = self.backoff.next_delay(failure.retry_after);
                        self.failed(&failure, delay).await;
                        // What was delivered before the outage is written down before waiting.
                        self.save_ack(None).await;
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = self.stop.changed() => return Delivery::Stopped,
                        }
                        if buffer_op(&self.shared, move |b| Ok(b.is_oldest(id))).await == Some(false) {
                            return Delivery::Gone;
                        }
                    }
                    Fate::Split => {
                        self.refused_as_too_large(&failure, piece.len());
                        match split::halve(signal, &piece) {
                            Some((first, second)) => {
                                todo.push(Bytes::from(second));
                                todo.push(Bytes::from(first));
                            }
                            None => {
                                tracing::error!(?signal, bytes = piece.len(), error = %failure.message, "export: a single item is larger than the collector accepts; dropping it");
                                self.count_drop(Reason::TooLarge, 1);
                            }
                        }
                        break;
                    }
                    Fate::Drop => {
                        let items = split::count_items(signal, &piece).unwrap_or(1);
                        tracing::error!(?signal, items, reason = failure.reason.as_str(), error = %failure.message, "export: collector refused a request as invalid; dropping it");
                        self.count_drop(failure.reason, items);
                        break;
                    }
                }
            }
        }
        Delivery::Done
    }

    fn count_drop(&self, reason: Reason, items: u64) {
        let stats = &self.shared.stats;
        stats.rejected_records.fetch_add(1, Ordering::Relaxed);
        stats.dropped_items.add(reason, items);
    }

    fn refused_as_too_large(&mut self, failure: &SendFailure, bytes: usize) {
        if self.too_large_at.is_some_and(|n| n <= bytes) {
            return;
        }
        self.too_large_at = Some(bytes);
        tracing::warn!(bytes, error = %failure.message, "export: collector refused a request as too large; splitting it and every request this large (set export.batch_max_bytes below the collector's limit)");
    }

    /// Logs a retryable failure: loudly when the reason changed, at debug level otherwise.
    async fn failed(&mut self, failure: &SendFailure, delay: std::time::Duration) {
        let reason = failure.reason;
        if let Some(f) = self.failing.as_mut() {
            f.attempts += 1;
            if f.reason == reason {
                tracing::debug!(reason = reason.as_str(), error = %failure.message, retry_in = ?delay, "export failed again");
                return;
            }
            f.reason = reason;
        } else {
            self.failing = Some(Failing {
                reason,
                since: Instant::now(),
                attempts: 1,
            });
        }
        let (records, bytes) = buffer_op(&self.shared, |b| Ok((b.pending_records(), b.pending_bytes())))
            .await
            .unwrap_or((0, 0));
        let what = "export failing; data stays buffered on disk and is retried";
        if reason.needs_an_operator() {
            tracing::error!(reason = reason.as_str(), error = %failure.message, retry_in = ?delay, buffered_records = records, buffered_bytes = bytes, "{what}");
        } else {
            tracing::warn!(reason = reason.as_str(), error = %failure.message, retry_in = ?delay, buffered_records = records, buffered_bytes = bytes, "{what}");
        }
    }

    fn recovered(&mut self) {
        self.backoff.reset();
        if let Some(f) = self.failing.take() {
            tracing::info!(
                last_reason = f.reason.as_str(),
                failed_attempts = f.attempts,
                failing_for = ?f.since.elapsed(),
                "export recovered; sending the buffered data"
            );
        }
    }
}
