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
    /// Newest timestamp ever accepted for this series, also from earlier heads
    /// ([`NO_MAX_T`]: none; a sentinel rather than an `Option`, which would take 8 more
    /// bytes in every series).
    max_t: i64,
    /// True once a WAL record defining the series was acknowledged (or it came from the
    /// WAL, or a checkpoint). Until then every record with its samples defines it again,
    /// so no written record depends on one that may still fail.
    pub logged: AtomicBool,
    /// Carried over from the previous head at a cut (not created in this one).
    pub carried: bool,
}

/// [`MemSeries::max_t`] of a series that never accepted a sample.
const NO_MAX_T: i64 = i64::MIN;

impl MemSeries {
    /// A series without samples whose newest timestamp ever accepted is `max_t`.
    pub(crate) fn new(series_ref: u64, labels: Labels, max_t: Option<i64>, logged: bool) -> MemSeries {
        MemSeries {
            series_ref,
            labels,
            samples: SeriesChunks::default(),
            histograms: HistogramChunk::default(),
            max_t: max_t.unwrap_or(NO_MAX_T),
            logged: AtomicBool::new(logged),
            carried: false,
        }
    }

    /// Newest timestamp ever accepted for this series, also from earlier heads.
    pub(crate) fn max_t(&self) -> Option<i64> {
        (self.max_t != NO_MAX_T).then_some(self.max_t)
    }

    /// Raises the newest timestamp ever accepted to `t` when it is older.
    pub(crate) fn raise_max_t(&mut self, t: i64) {
        self.max_t = self.max_t.max(t);
    }

    /// Sets the newest timestamp ever accepted (an undone append lowers it again).
    pub(crate) fn set_max_t(&mut self, t: Option<i64>) {
        self.max_t = t.unwrap_or(NO_MAX_T);
    }

    /// Inserts a sample in timestamp order; an equal timestamp (of either kind) replaces
    /// nothing and returns false.
    pub(crate) fn insert(&mut self, s: Sample) -> bool {
        if self.histograms.get(s.timestamp_ms).is_some() || !self.samples.insert(s) {
            return false;
        }
        self.raise_max_t(s.timestamp_ms);
        true
    }

    /// Inserts a histogram sample in timestamp order; an equal timestamp (of either
    /// kind) replaces nothing and returns false.
    pub(crate) fn insert_histogram(&mut self, s: &HistogramSample) -> bool {
        let t = s.timestamp_ms;
        if self.samples.get(t).is_some() || !self.histograms.insert(t, &s.h) {
            return false;
        }
        self.raise_max_t(t);
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

#[cfg(test)]
mod tests {
    use super::MemSeries;

    /// Every series of the head is one slot of this size (1 M series: 1 MB per byte), so
    /// a field added to it should be a choice: this fails when the series grows.
    #[test]
    fn a_series_fits_its_slot_budget() {
        let size = size_of::<Option<MemSeries>>();
        assert!(size <= 144, "a series takes {size} bytes");
    }
}
