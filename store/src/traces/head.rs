//! The span head: recent spans in memory, indexed by trace id, until they are cut into a
//! Parquet block. A batch whose WAL record is not acknowledged yet waits beside the head,
//! invisible to queries, so a batch the WAL refuses leaves nothing behind.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;

use tokio::sync::oneshot::{self, error::TryRecvError};

use super::query::TraceQuery;
use super::span::Span;

/// The WAL's answer to an append.
pub(crate) type Ack = oneshot::Receiver<io::Result<()>>;

/// A batch whose WAL record was submitted and not yet answered (or whose answer its
/// appender has not applied yet).
struct PendingBatch {
    ticket: u64,
    spans: Vec<Span>,
    bytes: u64,
    /// The answer, once the appender stopped waiting for it (an abandoned request).
    orphan: Option<Ack>,
}

/// What [`SpanHead::settle_orphans`] did with the abandoned batches whose answer arrived.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    /// Batches the WAL refused, discarded.
    pub(crate) refused: u64,
}

/// Recent spans in arrival order with an index by trace id.
#[derive(Default)]
pub(crate) struct SpanHead {
    spans: Vec<Span>,
    by_trace: HashMap<String, Vec<usize>>,
    bytes: u64,
    min_start: Option<i64>,
    max_start: Option<i64>,
    pending: Vec<PendingBatch>,
}

impl SpanHead {
    /// Holds a batch (counted in [`SpanHead::bytes`], invisible to queries) until its WAL
    /// answer: [`SpanHead::commit`] or [`SpanHead::discard`] with the same `ticket`.
    pub(crate) fn add_pending(&mut self, ticket: u64, spans: Vec<Span>) {
        let bytes: u64 = spans.iter().map(Span::approx_bytes).sum();
        self.bytes += bytes;
        self.pending.push(PendingBatch {
            ticket,
            spans,
            bytes,
            orphan: None,
        });
    }

    fn take_pending(&mut self, ticket: u64) -> Option<PendingBatch> {
        let i = self.pending.iter().position(|p| p.ticket == ticket)?;
        let batch = self.pending.remove(i);
        self.bytes = self.bytes.saturating_sub(batch.bytes);
        Some(batch)
    }

    /// Makes an acknowledged batch visible; `false` when it is not pending here (a head
    /// cut already took it along).
    pub(crate) fn commit(&mut self, ticket: u64) -> bool {
        match self.take_pending(ticket) {
            Some(batch) => {
                self.extend(batch.spans);
                true
            }
            None => false,
        }
    }

    /// Drops a refused batch; `false` when it is not pending here.
    pub(crate) fn discard(&mut self, ticket: u64) -> bool {
        self.take_pending(ticket).is_some()
    }

    /// Hands the answer of a batch whose appender stopped waiting to the head, which
    /// settles it with [`SpanHead::settle_orphans`].
    pub(crate) fn adopt_orphan(&mut self, ticket: u64, ack: Ack) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.ticket == ticket) {
            p.orphan = Some(ack);
        }
    }

    /// Commits or discards every abandoned batch whose answer has arrived.
    pub(crate) fn settle_orphans(&mut self) -> Settled {
        let mut settled = Settled::default();
        let mut i = 0;
        while let Some(p) = self.pending.get_mut(i) {
            let answer = match p.orphan.as_mut() {
                Some(ack) => ack.try_recv(),
                None => Err(TryRecvError::Empty),
            };
            let ticket = p.ticket;
            match answer {
                Ok(Ok(())) => {
                    self.commit(ticket);
                }
                Ok(Err(_)) => {
                    self.discard(ticket);
                    settled.refused += 1;
                }
                Err(TryRecvError::Closed) => {
                    self.discard(ticket);
                }
                Err(TryRecvError::Empty) => i += 1,
            }
        }
        settled
    }

    /// Whether a batch waits for its WAL answer.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Makes every pending batch visible: for a head cut that knows every one of them was
    /// acknowledged.
    pub(crate) fn commit_all_pending(&mut self) {
        for batch in std::mem::take(&mut self.pending) {
            self.bytes = self.bytes.saturating_sub(batch.bytes);
            self.extend(batch.spans);
        }
    }

    /// Adds spans.
    pub(crate) fn extend(&mut self, spans: Vec<Span>) {
        for span in spans {
            self.bytes += span.approx_bytes();
            let t = span.start_unix_nano;
            self.min_start = Some(self.min_start.map_or(t, |m| m.min(t)));
            self.max_start = Some(self.max_start.map_or(t, |m| m.max(t)));
            let index = self.spans.len();
            self.by_trace
                .entry(span.trace_id.clone())
                .or_default()
                .push(index);
            self.spans.push(span);
        }
    }

    /// Approximate memory use, pending batches included.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of visible spans.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Oldest and newest span start, nanoseconds.
    pub(crate) fn time_range(&self) -> Option<(i64, i64)> {
        Some((self.min_start?, self.max_start?))
    }

    /// Every span, in arrival order.
    pub(crate) fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// Appends the spans of one trace to `out`.
    pub(crate) fn trace(&self, trace_id: &str, out: &mut Vec<Span>) {
        if let Some(indexes) = self.by_trace.get(trace_id) {
            for i in indexes {
                if let Some(s) = self.spans.get(*i) {
                    out.push(s.clone());
                }
            }
        }
    }

    /// Adds the services and their operations (name → kinds) to `out`.
    pub(crate) fn services(&self, out: &mut BTreeMap<String, BTreeSet<(String, i32)>>) {
        for s in &self.spans {
            out.entry(s.service.clone())
                .or_default()
                .insert((s.name.clone(), s.kind));
        }
    }

    /// Records, for every span matching `q`, its trace id with the newest matching start.
    pub(crate) fn find(&self, q: &TraceQuery, found: &mut HashMap<String, i64>) {
        for s in &self.spans {
            if q.matches(s) {
                note_trace(found, &s.trace_id, s.start_unix_nano);
            }
        }
    }
}

/// Remembers `trace_id` with the newest start seen for it.
pub(crate) fn note_trace(found: &mut HashMap<String, i64>, trace_id: &str, start: i64) {
    match found.get_mut(trace_id) {
        Some(t) => *t = (*t).max(start),
        None => {
            found.insert(trace_id.to_string(), start);
        }
    }
}
