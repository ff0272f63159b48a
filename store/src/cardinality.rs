//! Cardinality statistics of the series stored in a time range: the figures Prometheus'
//! `/api/v1/status/tsdb` reports for its head (series per metric name, distinct values per
//! label name, bytes of label values per label name, series per label pair), computed over
//! any [`Queryable`] so the API and the UI's cardinality page count the same way.
//!
//! The walk reads the range in slices, keeping only a 64-bit fingerprint per series seen
//! (not its labels or samples) besides the counters themselves, so its memory grows with
//! the number of distinct label pairs, not with the number of samples.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::model::Labels;
use crate::query::{Queryable, ReadError};

/// Width of one read slice: bounds the samples held at once during a walk.
const SLICE_MS: i64 = 15 * 60 * 1000;

/// Why a walk stopped without an answer.
#[derive(Debug, thiserror::Error)]
pub enum CardinalityError {
    /// A storage read failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The caller's deadline passed between two slices.
    #[error("cardinality statistics took longer than the deadline (read up to {reached_ms} of {end_ms})")]
    Timeout {
        /// End of the last slice read, Unix ms.
        reached_ms: i64,
        /// End of the range asked for, Unix ms.
        end_ms: i64,
    },
}

/// One row of a top list: a name (metric, label name, or `name=value`) and its figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// What is counted.
    pub name: String,
    /// Its series count, value count or bytes.
    pub value: u64,
}

/// The statistics of one walk, each list sorted by value (largest first, ties by name) and
/// cut to the limit given to [`CardinalityCounter::finish`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardinalityStats {
    /// Distinct series seen.
    pub num_series: u64,
    /// Distinct `name=value` label pairs seen (metric names included).
    pub num_label_pairs: u64,
    /// Series per metric name.
    pub series_count_by_metric_name: Vec<Stat>,
    /// Distinct values per label name.
    pub label_value_count_by_label_name: Vec<Stat>,
    /// Bytes of the values of each label name summed over the series carrying it (what
    /// storing each series' own copy of the value costs).
    pub memory_in_bytes_by_label_name: Vec<Stat>,
    /// Series per `name=value` label pair.
    pub series_count_by_label_value_pair: Vec<Stat>,
}

/// Counts series once each, however often they are offered.
#[derive(Debug, Default)]
pub struct CardinalityCounter {
    seen: HashSet<u64>,
    /// Per label name: series count per value.
    pairs: HashMap<String, HashMap<String, u64>>,
}

impl CardinalityCounter {
    /// An empty counter.
    pub fn new() -> CardinalityCounter {
        CardinalityCounter::default()
    }

    /// Counts `labels` unless a series with the same labels was counted before.
    pub fn add(&mut self, labels: &Labels) {
        if !self.seen.insert(labels.fingerprint()) {
            return;
        }
        for l in labels.iter() {
            let values = self.pairs.entry(l.name.to_string()).or_default();
            match values.get_mut(l.value) {
                Some(n) => *n += 1,
                None => {
                    values.insert(l.value.to_string(), 1);
                }
            }
        }
    }

    /// The statistics, each top list cut to `limit` rows.
    pub fn finish(self, limit: usize) -> CardinalityStats {
        let mut stats = CardinalityStats {
            num_series: self.seen.len() as u64,
            ..CardinalityStats::default()
        };
        let mut by_metric = Vec::new();
        let mut value_counts = Vec::new();
        let mut bytes = Vec::new();
        let mut by_pair = Vec::new();
        for (name, values) in &self.pairs {
            stats.num_label_pairs += values.len() as u64;
            value_counts.push(stat(name.clone(), values.len() as u64));
            let mut size = 0u64;
            for (value, series) in values {
                size += value.len() as u64 * series;
                if name == "__name__" {
                    by_metric.push(stat(value.clone(), *series));
                }
                by_pair.push(stat(format!("{name}={value}"), *series));
            }
            bytes.push(stat(name.clone(), size));
        }
        stats.series_count_by_metric_name = top(by_metric, limit);
        stats.label_value_count_by_label_name = top(value_counts, limit);
        stats.memory_in_bytes_by_label_name = top(bytes, limit);
        stats.series_count_by_label_value_pair = top(by_pair, limit);
        stats
    }
}

fn stat(name: String, value: u64) -> Stat {
    Stat { name, value }
}

fn top(mut rows: Vec<Stat>, limit: usize) -> Vec<Stat> {
    rows.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.name.cmp(&b.name)));
    rows.truncate(limit);
    rows
}

/// Counts every series with a sample in `[start_ms, end_ms]`, reading the range in
/// 15-minute slices and checking `deadline` between them.
pub fn walk(
    q: &dyn Queryable,
    start_ms: i64,
    end_ms: i64,
    deadline: Option<Instant>,
    limit: usize,
) -> Result<CardinalityStats, CardinalityError> {
    let mut counter = CardinalityCounter::new();
    let mut from = start_ms;
    while from <= end_ms {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(CardinalityError::Timeout {
                reached_ms: from,
                end_ms,
            });
        }
        let to = from.saturating_add(SLICE_MS - 1).min(end_ms);
        for s in q.select(&[], from, to)? {
            counter.add(&s.labels);
        }
        if to == end_ms {
            break;
        }
        from = to + 1;
    }
    Ok(counter.finish(limit))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::Sample;
    use crate::promql::MemStorage;

    /// One series: its label pairs and the times of its samples.
    type Series<'a> = (&'a [(&'a str, &'a str)], &'a [i64]);

    fn store(series: &[Series<'_>]) -> MemStorage {
        let mut store = MemStorage::new();
        for (pairs, times) in series {
            let labels = Labels::from_pairs(pairs.iter().copied());
            for t in *times {
                store.add(&labels, Sample::new(*t, 1.0));
            }
        }
        store
    }

    #[test]
    fn counts_each_series_once_across_slices() {
        let hour = 3_600_000;
        let store = store(&[
            // Samples in several slices: still one series.
            (
                &[("__name__", "http_requests_total"), ("code", "200")],
                &[0, hour, 2 * hour],
            ),
            (&[("__name__", "http_requests_total"), ("code", "500")], &[hour]),
            (&[("__name__", "up"), ("code", "200")], &[2 * hour]),
            // Outside the range: not counted.
            (&[("__name__", "old"), ("code", "404")], &[3 * hour]),
        ]);
        let stats = walk(&store, 0, 2 * hour, None, 10).unwrap();
        assert_eq!(stats.num_series, 3);
        // __name__ has 2 values, code 2 values.
        assert_eq!(stats.num_label_pairs, 4);
        assert_eq!(
            stats.series_count_by_metric_name,
            vec![stat("http_requests_total".into(), 2), stat("up".into(), 1)]
        );
        // Two pairs on two series: the tie is broken by name.
        assert_eq!(
            stats.series_count_by_label_value_pair[..2],
            [
                stat("__name__=http_requests_total".into(), 2),
                stat("code=200".into(), 2)
            ]
        );
        assert_eq!(
            stats.label_value_count_by_label_name,
            vec![stat("__name__".into(), 2), stat("code".into(), 2)]
        );
        // __name__: 19 bytes × 2 series + 2 bytes × 1; code: 3 bytes × 3 series.
        assert_eq!(
            stats.memory_in_bytes_by_label_name,
            vec![stat("__name__".into(), 40), stat("code".into(), 9)]
        );
    }

    #[test]
    fn limit_cuts_every_list_and_ties_sort_by_name() {
        let store = store(&[
            (&[("__name__", "b")], &[0]),
            (&[("__name__", "a")], &[0]),
            (&[("__name__", "c")], &[0]),
        ]);
        let stats = walk(&store, 0, 0, None, 2).unwrap();
        assert_eq!(
            stats.series_count_by_metric_name,
            vec![stat("a".into(), 1), stat("b".into(), 1)]
        );
        assert_eq!(stats.series_count_by_label_value_pair.len(), 2);
        assert_eq!(stats.num_series, 3);
    }

    #[test]
    fn a_passed_deadline_stops_the_walk() {
        let store = store(&[(&[("__name__", "a")], &[0])]);
        let err = walk(&store, 0, 10, Some(Instant::now()), 10).unwrap_err();
        assert!(
            matches!(
                err,
                CardinalityError::Timeout {
                    reached_ms: 0,
                    end_ms: 10
                }
            ),
            "{err}"
        );
    }
}
