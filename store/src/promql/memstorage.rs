//! An in-memory [`Queryable`], for tests of the evaluator and of anything built on it.

use std::collections::BTreeMap;

use crate::model::{in_range, FloatHistogram, HistogramSample, LabelMatcher, Labels, Sample, SeriesSamples};
use crate::query::{Queryable, ReadError};

/// Series kept in memory, sorted by labels; float and native histogram samples kept sorted
/// by time (a sample at an existing timestamp replaces the old one of either kind).
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    series: BTreeMap<Labels, Stored>,
}

#[derive(Debug, Default, Clone)]
struct Stored {
    floats: Vec<Sample>,
    histograms: Vec<HistogramSample>,
}

impl MemStorage {
    /// An empty storage.
    pub fn new() -> Self {
        MemStorage::default()
    }

    /// Adds one sample to the series `labels`.
    pub fn add(&mut self, labels: &Labels, sample: Sample) {
        let stored = self.series.entry(labels.clone()).or_default();
        let t = sample.timestamp_ms;
        stored.histograms.retain(|h| h.timestamp_ms != t);
        put(&mut stored.floats, sample, |s| s.timestamp_ms);
    }

    /// Adds one native histogram sample to the series `labels`.
    pub fn add_histogram(&mut self, labels: &Labels, timestamp_ms: i64, h: FloatHistogram) {
        let stored = self.series.entry(labels.clone()).or_default();
        stored.floats.retain(|s| s.timestamp_ms != timestamp_ms);
        put(
            &mut stored.histograms,
            HistogramSample::new(timestamp_ms, h),
            |s| s.timestamp_ms,
        );
    }

    /// Removes all data.
    pub fn clear(&mut self) {
        self.series.clear();
    }

    /// Number of series held.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when no series is held.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

impl Queryable for MemStorage {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        let mut out = Vec::new();
        for (labels, stored) in &self.series {
            if !matchers.iter().all(|m| m.matches_labels(labels)) {
                continue;
            }
            let samples = in_range(&stored.floats, start_ms, end_ms, |s| s.timestamp_ms);
            let histograms = in_range(&stored.histograms, start_ms, end_ms, |s| s.timestamp_ms);
            if samples.is_empty() && histograms.is_empty() {
                continue;
            }
            out.push(SeriesSamples {
                labels: labels.clone(),
                samples,
                histograms,
            });
        }
        Ok(out)
    }
}

/// Inserts `item` in time order, replacing one at the same time.
fn put<T>(list: &mut Vec<T>, item: T, ts: impl Fn(&T) -> i64) {
    let t = ts(&item);
    match list.binary_search_by(|s| ts(s).cmp(&t)) {
        Ok(i) => {
            if let Some(s) = list.get_mut(i) {
                *s = item;
            }
        }
        Err(i) => list.insert(i, item),
    }
}
