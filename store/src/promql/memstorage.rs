//! An in-memory [`Queryable`], for tests of the evaluator and of anything built on it.

use std::collections::BTreeMap;

use crate::model::{LabelMatcher, Labels, Sample, SeriesSamples};
use crate::query::{Queryable, ReadError};

/// Series kept in memory, sorted by labels; samples kept sorted by time (a sample at an
/// existing timestamp replaces the old one).
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    series: BTreeMap<Labels, Vec<Sample>>,
}

impl MemStorage {
    /// An empty storage.
    pub fn new() -> Self {
        MemStorage::default()
    }

    /// Adds one sample to the series `labels`.
    pub fn add(&mut self, labels: &Labels, sample: Sample) {
        let samples = self.series.entry(labels.clone()).or_default();
        match samples.binary_search_by(|s| s.timestamp_ms.cmp(&sample.timestamp_ms)) {
            Ok(i) => {
                if let Some(s) = samples.get_mut(i) {
                    *s = sample;
                }
            }
            Err(i) => samples.insert(i, sample),
        }
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
        for (labels, samples) in &self.series {
            if !matchers.iter().all(|m| m.matches_labels(labels)) {
                continue;
            }
            let lo = samples.partition_point(|s| s.timestamp_ms < start_ms);
            let hi = samples.partition_point(|s| s.timestamp_ms <= end_ms);
            let Some(window) = samples.get(lo..hi) else {
                continue;
            };
            if window.is_empty() {
                continue;
            }
            out.push(SeriesSamples {
                labels: labels.clone(),
                samples: window.to_vec(),
            });
        }
        Ok(out)
    }
}
