//! The bounded in-memory exemplar storage: one circular buffer shared by every series, as
//! Prometheus keeps it (`tsdb/exemplar.go`).
//!
//! The buffer holds at most `capacity` exemplars; the next write overwrites the oldest one
//! of all series. Each series has an index entry naming its oldest and newest exemplar in
//! the buffer, and every exemplar links to the next newer one of its series, so a series'
//! exemplars are read oldest to newest without scanning the buffer, and the newest one (the
//! one a new exemplar is checked against) is found at once.

use std::collections::HashMap;

use crate::model::{is_valid_label_name, LabelMatcher, Labels};

use super::types::{Exemplar, ExemplarRefusal, SeriesExemplars};

/// Longest exemplar label set: the sum of the UTF-8 character counts of every label name
/// and value, Prometheus' `ExemplarMaxLabelSetLength` (from OpenMetrics).
pub const MAX_LABEL_SET_CHARS: usize = 128;

/// One slot of the buffer.
struct Entry {
    series: Labels,
    exemplar: Exemplar,
    /// The next newer exemplar of the same series.
    next: Option<usize>,
}

/// Where a series' exemplars are in the buffer.
#[derive(Clone, Copy)]
struct SeriesIndex {
    oldest: usize,
    newest: usize,
}

/// The circular buffer and its per-series index.
pub(super) struct Ring {
    entries: Vec<Option<Entry>>,
    capacity: usize,
    /// The slot the next exemplar goes to (holding the oldest exemplar once full).
    next_slot: usize,
    index: HashMap<Labels, SeriesIndex>,
}

impl Ring {
    /// An empty buffer for `capacity` exemplars (0 stores none).
    pub fn new(capacity: usize) -> Ring {
        Ring {
            entries: Vec::new(),
            capacity,
            next_slot: 0,
            index: HashMap::new(),
        }
    }

    /// Exemplars stored now.
    pub fn len(&self) -> usize {
        // A slot is emptied only to be refilled at once.
        self.entries.len()
    }

    /// Series with at least one exemplar.
    pub fn series_count(&self) -> usize {
        self.index.len()
    }

    /// Checks `exemplar` against the rules and the series' newest exemplar, then stores it,
    /// overwriting the oldest exemplar of the buffer when it is full.
    ///
    /// The rules are Prometheus': labels at most [`MAX_LABEL_SET_CHARS`] characters; the
    /// same exemplar as the series' newest is a duplicate (a no-op, as a re-sent scrape
    /// is); one dated before the newest, or at its time with a smaller value, is out of
    /// order (Prometheus breaks a tie of time and value by the labels' hash; here by the
    /// labels' order, which is deterministic).
    pub fn append(&mut self, series: &Labels, exemplar: Exemplar) -> Result<(), ExemplarRefusal> {
        if self.capacity == 0 {
            return Err(ExemplarRefusal::Disabled);
        }
        check_labels(&exemplar.labels)?;
        if let Some(idx) = self.index.get(series) {
            if let Some(Some(newest)) = self.entries.get(idx.newest) {
                let n = &newest.exemplar;
                if n.timestamp_ms == exemplar.timestamp_ms
                    && n.value.to_bits() == exemplar.value.to_bits()
                    && n.labels == exemplar.labels
                {
                    return Err(ExemplarRefusal::Duplicate);
                }
                let older = exemplar.timestamp_ms < n.timestamp_ms
                    || (exemplar.timestamp_ms == n.timestamp_ms && exemplar.value < n.value)
                    || (exemplar.timestamp_ms == n.timestamp_ms
                        && exemplar.value == n.value
                        && exemplar.labels < n.labels);
                if older {
                    return Err(ExemplarRefusal::OutOfOrder);
                }
            }
        }
        let slot = self.next_slot;
        if slot < self.entries.len() {
            self.evict(slot);
        } else {
            self.entries.push(None);
        }
        match self.index.get_mut(series) {
            Some(idx) => {
                let previous = idx.newest;
                idx.newest = slot;
                if let Some(Some(prev)) = self.entries.get_mut(previous) {
                    prev.next = Some(slot);
                }
            }
            None => {
                self.index.insert(
                    series.clone(),
                    SeriesIndex {
                        oldest: slot,
                        newest: slot,
                    },
                );
            }
        }
        if let Some(cell) = self.entries.get_mut(slot) {
            *cell = Some(Entry {
                series: series.clone(),
                exemplar,
                next: None,
            });
        }
        self.next_slot = (slot + 1) % self.capacity;
        Ok(())
    }

    /// Empties `slot`, the oldest exemplar of the buffer and so of its series: the
    /// series' oldest moves to the next one, and a series left with none is forgotten.
    fn evict(&mut self, slot: usize) {
        let Some(old) = self.entries.get_mut(slot).and_then(Option::take) else {
            return;
        };
        match old.next {
            Some(next) => {
                if let Some(idx) = self.index.get_mut(&old.series) {
                    idx.oldest = next;
                }
            }
            None => {
                self.index.remove(&old.series);
            }
        }
    }

    /// Every stored exemplar with its series, in the order they were stored (oldest
    /// first): appending them in this order to an empty buffer of the same capacity
    /// rebuilds this one (the log's checkpoint).
    pub fn snapshot(&self) -> Vec<(Labels, Exemplar)> {
        let mut out = Vec::with_capacity(self.entries.len());
        let n = self.entries.len();
        // Once the buffer has wrapped, the oldest exemplar is at `next_slot`.
        let start = if n == self.capacity { self.next_slot } else { 0 };
        for i in 0..n {
            if let Some(Some(e)) = self.entries.get((start + i) % n) {
                out.push((e.series.clone(), e.exemplar.clone()));
            }
        }
        out
    }

    /// The exemplars dated within `[start_ms, end_ms]` of every series matching all
    /// matchers of at least one set, grouped by series (sorted by labels), each series'
    /// exemplars oldest first. Series without such exemplars are left out.
    pub fn select(&self, sets: &[Vec<LabelMatcher>], start_ms: i64, end_ms: i64) -> Vec<SeriesExemplars> {
        let mut out = Vec::new();
        for (series, idx) in &self.index {
            let matched = sets
                .iter()
                .any(|set| set.iter().all(|m| m.matches_labels(series)));
            if !matched {
                continue;
            }
            let mut exemplars = Vec::new();
            let mut at = Some(idx.oldest);
            // A chain is never longer than the buffer; the bound guards against a bug
            // turning it into a loop.
            let mut steps = 0usize;
            while let Some(slot) = at {
                steps += 1;
                let Some(Some(e)) = self.entries.get(slot) else {
                    break;
                };
                if steps > self.capacity {
                    break;
                }
                let t = e.exemplar.timestamp_ms;
                if t > end_ms {
                    break;
                }
                if t >= start_ms {
                    exemplars.push(e.exemplar.clone());
                }
                at = e.next;
            }
            if !exemplars.is_empty() {
                out.push(SeriesExemplars {
                    series: series.clone(),
                    exemplars,
                });
            }
        }
        out.sort_by(|a, b| a.series.cmp(&b.series));
        out
    }
}

/// Exemplar labels must be valid label names and at most [`MAX_LABEL_SET_CHARS`]
/// characters of names and values together.
fn check_labels(labels: &Labels) -> Result<(), ExemplarRefusal> {
    let mut chars = 0usize;
    for l in labels.iter() {
        if !is_valid_label_name(l.name) {
            return Err(ExemplarRefusal::InvalidLabels);
        }
        chars += l.name.chars().count() + l.value.chars().count();
    }
    if chars > MAX_LABEL_SET_CHARS {
        return Err(ExemplarRefusal::LabelSetTooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::MatchOp;

    fn ex(t: i64, v: f64, trace: &str) -> Exemplar {
        Exemplar {
            labels: Labels::from_pairs([("trace_id", trace)]),
            value: v,
            timestamp_ms: t,
        }
    }

    fn series(job: &str) -> Labels {
        Labels::from_pairs([("__name__", "latency_bucket"), ("job", job)])
    }

    fn all() -> Vec<Vec<LabelMatcher>> {
        vec![vec![LabelMatcher::equal("__name__", "latency_bucket")]]
    }

    fn times(r: &Ring, job: &str) -> Vec<i64> {
        let sets = vec![vec![LabelMatcher::equal("job", job)]];
        let mut out = Vec::new();
        for s in r.select(&sets, i64::MIN, i64::MAX) {
            for e in s.exemplars {
                out.push(e.timestamp_ms);
            }
        }
        out
    }

    #[test]
    fn full_buffer_overwrites_the_oldest_exemplar_of_all_series() {
        let mut r = Ring::new(3);
        r.append(&series("a"), ex(1, 1.0, "a1")).unwrap();
        r.append(&series("b"), ex(2, 1.0, "b1")).unwrap();
        r.append(&series("a"), ex(3, 1.0, "a2")).unwrap();
        r.append(&series("a"), ex(4, 1.0, "a3")).unwrap();
        assert_eq!(times(&r, "a"), vec![3, 4]);
        assert_eq!(times(&r, "b"), vec![2]);
        // b's only exemplar goes: b leaves the index.
        r.append(&series("a"), ex(5, 1.0, "a4")).unwrap();
        assert_eq!(times(&r, "a"), vec![3, 4, 5]);
        assert_eq!(times(&r, "b"), Vec::<i64>::new());
        assert_eq!(r.series_count(), 1);
        assert_eq!(r.len(), 3);
        // The series overwriting its own oldest exemplar keeps its chain.
        r.append(&series("a"), ex(6, 1.0, "a5")).unwrap();
        assert_eq!(times(&r, "a"), vec![4, 5, 6]);
    }

    #[test]
    fn duplicates_and_out_of_order_exemplars_are_refused_like_prometheus() {
        let mut r = Ring::new(10);
        let s = series("a");
        r.append(&s, ex(10, 2.0, "x")).unwrap();
        assert_eq!(r.append(&s, ex(10, 2.0, "x")), Err(ExemplarRefusal::Duplicate));
        assert_eq!(r.append(&s, ex(9, 5.0, "y")), Err(ExemplarRefusal::OutOfOrder));
        assert_eq!(r.append(&s, ex(10, 1.0, "y")), Err(ExemplarRefusal::OutOfOrder));
        // Same time, greater value: a native histogram's next bucket.
        r.append(&s, ex(10, 3.0, "y")).unwrap();
        // Same time and value, labels ordered after the newest: accepted.
        r.append(&s, ex(10, 3.0, "z")).unwrap();
        assert_eq!(r.append(&s, ex(10, 3.0, "w")), Err(ExemplarRefusal::OutOfOrder));
        // Another series is checked against its own newest only.
        r.append(&series("b"), ex(1, 0.0, "q")).unwrap();
        assert_eq!(times(&r, "a"), vec![10, 10, 10]);
    }

    #[test]
    fn label_set_limit_counts_characters_not_bytes() {
        let mut r = Ring::new(4);
        // "trace_id" is 8 characters: a 120-character value is exactly 128.
        let ok = "ä".repeat(120);
        r.append(&series("a"), ex(1, 1.0, &ok)).unwrap();
        let long = "ä".repeat(121);
        assert_eq!(
            r.append(&series("a"), ex(2, 1.0, &long)),
            Err(ExemplarRefusal::LabelSetTooLong)
        );
        let bad = Exemplar {
            labels: Labels::from_pairs([("1bad", "x")]),
            value: 1.0,
            timestamp_ms: 3,
        };
        assert_eq!(r.append(&series("a"), bad), Err(ExemplarRefusal::InvalidLabels));
    }

    #[test]
    fn zero_capacity_stores_nothing() {
        let mut r = Ring::new(0);
        assert_eq!(
            r.append(&series("a"), ex(1, 1.0, "x")),
            Err(ExemplarRefusal::Disabled)
        );
        assert!(r.select(&all(), i64::MIN, i64::MAX).is_empty());
    }

    #[test]
    fn select_filters_by_time_and_matcher_sets_and_sorts_series() {
        let mut r = Ring::new(10);
        for t in 1..=5 {
            r.append(&series("b"), ex(t, 1.0, "b")).unwrap();
            r.append(&series("a"), ex(t, 1.0, "a")).unwrap();
        }
        let got = r.select(&all(), 2, 4);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].series.get("job"), Some("a"));
        let ts: Vec<i64> = got[1].exemplars.iter().map(|e| e.timestamp_ms).collect();
        assert_eq!(ts, vec![2, 3, 4]);
        let re = vec![vec![LabelMatcher::new(MatchOp::RegexMatch, "job", "b|c").unwrap()]];
        assert_eq!(r.select(&re, i64::MIN, i64::MAX).len(), 1);
        assert!(r.select(&all(), 6, 9).is_empty());
    }

    #[test]
    fn snapshot_replayed_into_a_new_ring_rebuilds_it() {
        let mut r = Ring::new(4);
        for t in 1..=7 {
            let job = if t % 2 == 0 { "a" } else { "b" };
            r.append(&series(job), ex(t, t as f64, job)).unwrap();
        }
        let mut copy = Ring::new(4);
        for (s, e) in r.snapshot() {
            copy.append(&s, e).unwrap();
        }
        assert_eq!(times(&copy, "a"), times(&r, "a"));
        assert_eq!(times(&copy, "b"), times(&r, "b"));
        assert_eq!(times(&r, "a"), vec![4, 6]);
        assert_eq!(times(&r, "b"), vec![5, 7]);
    }
}
