//! One series in the head: its labels, its samples of both kinds and the newest timestamp
//! it ever accepted.

use std::sync::atomic::AtomicBool;

use crate::metrics::chunk::{HistogramChunk, SeriesChunks};
use crate::model::{HistogramSample, Labels, Sample};

/// One series in the head.
#[derive(Debug)]
pub(crate) struct MemSeries {
    /// The series' ref, which WAL records name it by.
    pub series_ref: u64,
    pub labels: Labels,
    /// The samples, compressed as they arrive.
    pub samples: SeriesChunks,
    /// The native histogram samples.
    pub histograms: HistogramChunk,
    /// Newest timestamp ever accepted for this series, also from earlier heads.
    pub max_t: Option<i64>,
    /// True once a WAL record defining the series was acknowledged (or it came from the
    /// WAL, or a checkpoint). Until then every record with its samples defines it again,
    /// so no written record depends on one that may still fail.
    pub logged: AtomicBool,
    /// Carried over from the previous head at a cut (not created in this one).
    pub carried: bool,
}

impl MemSeries {
    /// Inserts a sample in timestamp order; an equal timestamp (of either kind) replaces
    /// nothing and returns false.
    pub(crate) fn insert(&mut self, s: Sample) -> bool {
        if self.histograms.get(s.timestamp_ms).is_some() || !self.samples.insert(s) {
            return false;
        }
        self.max_t = Some(self.max_t.map_or(s.timestamp_ms, |m| m.max(s.timestamp_ms)));
        true
    }

    /// Inserts a histogram sample in timestamp order; an equal timestamp (of either
    /// kind) replaces nothing and returns false.
    pub(crate) fn insert_histogram(&mut self, s: &HistogramSample) -> bool {
        let t = s.timestamp_ms;
        if self.samples.get(t).is_some() || !self.histograms.insert(t, &s.h) {
            return false;
        }
        self.max_t = Some(self.max_t.map_or(t, |m| m.max(t)));
        true
    }

    /// True when the series holds no sample of either kind.
    pub(crate) fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.histograms.is_empty()
    }

    /// Samples of both kinds.
    pub(crate) fn sample_count(&self) -> usize {
        self.samples.len() + self.histograms.len()
    }

    /// Newest sample timestamp of either kind.
    pub(crate) fn last_t(&self) -> Option<i64> {
        match (self.samples.last_t(), self.histograms.last_t()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, None) => a,
            (None, b) => b,
        }
    }

    /// Bytes of both kinds' chunks.
    pub(crate) fn sample_bytes(&self) -> u64 {
        self.samples.bytes() + self.histograms.bytes()
    }
}
