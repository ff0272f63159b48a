//! The span head: recent spans in memory, indexed by trace id, until they are cut into a
//! Parquet block.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::query::TraceQuery;
use super::span::Span;

/// Recent spans in arrival order with an index by trace id.
#[derive(Default)]
pub(crate) struct SpanHead {
    spans: Vec<Span>,
    by_trace: HashMap<String, Vec<usize>>,
    bytes: u64,
    min_start: Option<i64>,
    max_start: Option<i64>,
}

impl SpanHead {
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

    /// Approximate memory use.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of spans.
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
