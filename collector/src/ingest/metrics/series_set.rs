//! The series of one request being mapped: each label set once, in a slot that points refer
//! to by index, with its float and native histogram samples.

use foldhash::HashMap;

use didban_store::{HistogramSample, Labels, Sample, SeriesSamples};

/// Series being collected, each label set once, in a slot that points refer to by index
/// (so a sample is added without hashing its labels again).
#[derive(Default)]
pub(crate) struct SeriesSet {
    slots: HashMap<Labels, usize>,
    series: Vec<(Labels, Vec<Sample>, Vec<HistogramSample>)>,
}

impl SeriesSet {
    /// The slot of `labels`, new and empty when not seen before in this request.
    pub fn slot(&mut self, labels: Labels) -> usize {
        if let Some(slot) = self.slots.get(&labels) {
            return *slot;
        }
        let slot = self.series.len();
        self.slots.insert(labels.clone(), slot);
        self.series.push((labels, Vec::new(), Vec::new()));
        slot
    }

    /// The labels of the series in `slot`.
    pub fn labels(&self, slot: usize) -> Option<Labels> {
        self.series.get(slot).map(|(labels, _, _)| labels.clone())
    }

    /// Adds a sample to the series in `slot`.
    pub fn push(&mut self, slot: usize, sample: Sample) {
        if let Some((_, samples, _)) = self.series.get_mut(slot) {
            samples.push(sample);
        }
    }

    /// Adds a native histogram sample to the series in `slot`.
    pub fn push_histogram(&mut self, slot: usize, sample: HistogramSample) {
        if let Some((_, _, histograms)) = self.series.get_mut(slot) {
            histograms.push(sample);
        }
    }

    /// The series with samples, each once, samples in timestamp order, in the order the
    /// request first named them: deterministic (the output and the WAL record do not depend
    /// on hash order) without sorting by labels.
    pub fn finish(self) -> Vec<SeriesSamples> {
        let mut out = Vec::with_capacity(self.series.len());
        for (labels, mut samples, mut histograms) in self.series {
            if samples.is_empty() && histograms.is_empty() {
                continue; // a point that failed after its first series was resolved
            }
            samples.sort_by_key(|x| x.timestamp_ms);
            histograms.sort_by_key(|x| x.timestamp_ms);
            out.push(SeriesSamples {
                labels,
                samples,
                histograms,
            });
        }
        out
    }
}
