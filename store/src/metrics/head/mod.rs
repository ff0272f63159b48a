//! The head: the in-memory part of the database holding the samples not yet in a block.
//!
//! Series are found by labels or ref (`series_map`) or by matchers (`postings`); each series keeps its
//! samples sorted by timestamp in compressed chunks (`metrics::chunk`) and the newest
//! timestamp it ever accepted (`max_t`), which survives head cuts so the ordering rules
//! keep working across them.
//!
//! A series holds float samples and native histogram samples in separate chunks. As in
//! Prometheus, a series may change type: it then holds both kinds, each in time order,
//! and the ordering rules see one series (one newest timestamp for both kinds, and a
//! timestamp taken by one kind is a duplicate for the other).

pub(crate) mod memory;
mod rollback;
pub(crate) mod rules;
mod series;
mod series_map;
pub(crate) mod striped;
mod totals;

use std::sync::Arc;

use crate::metrics::postings::Postings;
use crate::metrics::record::{SeriesDef, WalRecord};
use crate::model::{HistogramSample, LabelMatcher, Labels, Sample, SeriesSamples};
use memory::SeriesGate;
pub(crate) use series::MemSeries;
use series_map::SeriesMap;
use totals::SeriesTotals;

/// An in-memory head, or one stripe of a [`StripedHead`]: the series whose labels hash to
/// it, their postings and samples. A stand-alone head (`Head::new`, the unit tests' form)
/// is a head of one stripe.
///
/// Invariant: every series ref of a stripe is congruent to the stripe's first ref modulo
/// `ref_step` (the number of stripes), so a ref alone says which stripe holds it.
#[derive(Debug)]
pub(crate) struct Head {
    series: SeriesMap,
    postings: Postings,
    next_ref: u64,
    /// Distance between this stripe's refs (1 for a stand-alone head).
    ref_step: u64,
    /// Series counts of the whole head the series limits are checked against.
    totals: Arc<SeriesTotals>,
    bytes: u64,
    num_samples: u64,
    min_t: Option<i64>,
    max_t: Option<i64>,
    /// Newest timestamp accepted by any series in the database, for the too-old rule.
    max_seen_t: Option<i64>,
    /// Whether new series may be created (the head memory budget), set before each append.
    series_gate: SeriesGate,
}

/// What a head's accounting needs of the samples one call inserted into a series: how
/// many and their time range (a summary instead of the list of their timestamps, which
/// cost an allocation per series and append).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct InsertedSamples {
    count: u64,
    /// Oldest and newest timestamp inserted (`None`: none was).
    range: Option<(i64, i64)>,
}

impl InsertedSamples {
    /// Counts a sample inserted at `t`.
    pub(crate) fn add(&mut self, t: i64) {
        self.count += 1;
        self.range = Some(self.range.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
    }
}

impl Head {
    /// An empty stand-alone head whose new series refs start at `next_ref`.
    #[cfg(test)]
    pub(crate) fn new(next_ref: u64, max_seen_t: Option<i64>) -> Head {
        Head::stripe(next_ref.max(1), 1, max_seen_t, Arc::default())
    }

    /// An empty stripe whose new series refs are `first_ref`, `first_ref + step`, …,
    /// counting its series in `totals` with the other stripes of its head.
    pub(crate) fn stripe(
        first_ref: u64,
        step: u64,
        max_seen_t: Option<i64>,
        totals: Arc<SeriesTotals>,
    ) -> Head {
        debug_assert!(step > 0 && first_ref > 0);
        Head {
            series: SeriesMap::default(),
            postings: Postings::default(),
            next_ref: first_ref,
            ref_step: step,
            totals,
            bytes: 0,
            num_samples: 0,
            min_t: None,
            max_t: None,
            max_seen_t,
            series_gate: SeriesGate::default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn num_series(&self) -> u64 {
        self.series.len() as u64
    }

    pub(crate) fn num_samples(&self) -> u64 {
        self.num_samples
    }

    /// Bytes held by series, postings and samples, as `memory` accounts them.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Sets the budget new series are checked against until the next call.
    pub(crate) fn set_series_gate(&mut self, gate: SeriesGate) {
        self.series_gate = gate;
    }

    /// The budget new series are checked against.
    pub(crate) fn series_gate(&self) -> SeriesGate {
        self.series_gate
    }

    /// Oldest and newest sample timestamp held by this head.
    pub(crate) fn time_range(&self) -> Option<(i64, i64)> {
        match (self.min_t, self.max_t) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        }
    }

    pub(crate) fn max_seen_t(&self) -> Option<i64> {
        self.max_seen_t
    }

    /// Raises the database-wide newest timestamp (e.g. from blocks found at open).
    pub(crate) fn observe_time(&mut self, t: i64) {
        self.max_seen_t = Some(self.max_seen_t.map_or(t, |m| m.max(t)));
    }

    /// The ref of the series with labels `labels`.
    pub(crate) fn lookup(&self, labels: &Labels) -> Option<u64> {
        let hash = self.series.hash(labels);
        self.series.by_labels(hash, labels).map(|s| s.series_ref)
    }

    /// True when this stripe holds a series under `series_ref`.
    pub(crate) fn has_ref(&self, series_ref: u64) -> bool {
        self.series.contains_ref(series_ref)
    }

    /// Adds a series under a fresh ref (the caller reserved its place in the totals) and
    /// returns the ref.
    pub(crate) fn create_series(&mut self, labels: Labels, max_t: Option<i64>) -> u64 {
        let series_ref = self.next_ref;
        self.insert_series(series_ref, labels, max_t, false);
        series_ref
    }

    /// Adds a series read from the WAL under a fresh ref of this stripe (its recorded ref
    /// belongs to another stripe): not logged, so the next record with its samples defines
    /// it under the new ref.
    pub(crate) fn replay_series_renumbered(&mut self, labels: Labels, max_t: Option<i64>) -> u64 {
        if let Some(t) = max_t {
            self.observe_time(t);
        }
        self.totals.add(labels.metric_name().unwrap_or_default());
        self.create_series(labels, max_t)
    }

    fn insert_series(&mut self, series_ref: u64, labels: Labels, max_t: Option<i64>, logged: bool) {
        debug_assert_eq!(
            series_ref % self.ref_step,
            self.next_ref % self.ref_step,
            "ref {series_ref} does not belong to this stripe"
        );
        self.next_ref = self.next_ref.max(series_ref + self.ref_step);
        self.bytes += memory::series_bytes(&labels) + self.postings.add(series_ref, &labels);
        self.series
            .insert(MemSeries::new(series_ref, labels, max_t, logged));
    }

    /// Undoes [`Head::create_series`] for a series that ended up with no accepted sample.
    pub(crate) fn remove_new_series(&mut self, series_ref: u64) {
        if let Some(series) = self.series.remove(series_ref) {
            self.totals
                .release(series.labels.metric_name().unwrap_or_default());
            let postings_bytes = self.postings.remove(series_ref, &series.labels);
            let cost = memory::series_bytes(&series.labels) + postings_bytes + series.sample_bytes();
            self.bytes = self.bytes.saturating_sub(cost);
        }
    }

    /// Applies a series definition read from the WAL: creates the series under its
    /// recorded ref, or raises the newest timestamp of an existing one.
    pub(crate) fn replay_series(&mut self, def: SeriesDef) {
        if let Some(series) = self.series.by_ref_mut(def.series_ref) {
            if let Some(t) = def.max_t {
                series.raise_max_t(t);
                self.observe_time(t);
            }
            return;
        }
        if let Some(t) = def.max_t {
            self.observe_time(t);
        }
        self.totals.add(def.labels.metric_name().unwrap_or_default());
        self.insert_series(def.series_ref, def.labels, def.max_t, true);
    }

    /// Inserts samples read from the WAL without the acceptance rules (they were checked
    /// when first appended); samples for an unknown ref are counted and dropped.
    pub(crate) fn replay_samples(&mut self, series_ref: u64, samples: &[Sample]) -> bool {
        let Some(series) = self.series.by_ref_mut(series_ref) else {
            return false;
        };
        let bytes_before = series.sample_bytes();
        let mut inserted = InsertedSamples::default();
        for s in samples {
            if series.insert(*s) {
                inserted.add(s.timestamp_ms);
            }
        }
        let bytes_after = series.sample_bytes();
        self.account_inserted(&inserted, bytes_before, bytes_after);
        true
    }

    /// [`Head::replay_samples`] for histogram samples.
    pub(crate) fn replay_histograms(&mut self, series_ref: u64, samples: &[HistogramSample]) -> bool {
        let Some(series) = self.series.by_ref_mut(series_ref) else {
            return false;
        };
        let bytes_before = series.sample_bytes();
        let mut inserted = InsertedSamples::default();
        for s in samples {
            if series.insert_histogram(s) {
                inserted.add(s.timestamp_ms);
            }
        }
        let bytes_after = series.sample_bytes();
        self.account_inserted(&inserted, bytes_before, bytes_after);
        true
    }

    /// Updates the head's counters, memory figure and time range for inserted samples;
    /// the series' sample bytes went from `bytes_before` to `bytes_after` with them (an
    /// out-of-order insert re-encodes a chunk, which can also make it smaller).
    fn account_inserted(&mut self, inserted: &InsertedSamples, bytes_before: u64, bytes_after: u64) {
        self.bytes = (self.bytes + bytes_after).saturating_sub(bytes_before);
        let Some((min, max)) = inserted.range else {
            return;
        };
        self.num_samples += inserted.count;
        self.min_t = Some(self.min_t.map_or(min, |m| m.min(min)));
        self.max_t = Some(self.max_t.map_or(max, |m| m.max(max)));
        self.observe_time(max);
    }

    /// Appends the series' samples with matchers `matchers` and samples in `[start, end]`
    /// to `out`.
    pub(crate) fn select(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
        out: &mut Vec<SeriesSamples>,
    ) {
        if let Some((min, max)) = self.time_range() {
            if max < start || min > end {
                return;
            }
        } else {
            return;
        }
        for series_ref in self.postings.select(matchers) {
            let Some(series) = self.series.by_ref(series_ref) else {
                continue;
            };
            let mut samples = Vec::new();
            series.samples.range(start, end, &mut samples);
            let mut histograms = Vec::new();
            series.histograms.range(start, end, &mut histograms);
            if !samples.is_empty() || !histograms.is_empty() {
                out.push(SeriesSamples {
                    labels: series.labels.clone(),
                    samples,
                    histograms,
                });
            }
        }
    }

    /// The head that follows this one at a cut: the same series (refs, labels, newest
    /// timestamps) without samples. Series whose newest sample is older than
    /// `drop_before` can no longer receive samples and are left behind, and so are series
    /// idle since the last cut (no sample in this head): they come back as new series
    /// when they get a sample again, so a burst of one-off series leaves the memory.
    ///
    /// A cut for memory (`for_memory`) keeps fewer: series created in this head with a
    /// single sample stay only if they were carried over from the head before (a series
    /// seen in two heads, or with two samples, is a recurring one; a burst's one-off series
    /// is not), so the successor does not double the memory the burst took.
    ///
    /// The successor counts its series in `totals` (those of the successor of the whole
    /// head this stripe belongs to).
    pub(crate) fn successor(&self, drop_before: i64, for_memory: bool, totals: Arc<SeriesTotals>) -> Head {
        let mut next = Head::stripe(self.next_ref, self.ref_step, self.max_seen_t, totals);
        next.series_gate = self.series_gate;
        for series in self.series_by_ref() {
            if series.is_empty() || series.max_t().is_none_or(|t| t < drop_before) {
                continue;
            }
            if for_memory && !series.carried && series.sample_count() < 2 {
                continue;
            }
            // The new segment starts with the successor's checkpoint: every series is logged.
            next.totals.add(series.labels.metric_name().unwrap_or_default());
            next.insert_series(series.series_ref, series.labels.clone(), series.max_t(), true);
            if let Some(s) = next.series.by_ref_mut(series.series_ref) {
                s.carried = true;
            }
        }
        next
    }

    /// A record defining every series of this head with its newest timestamp: the first
    /// record of the WAL segment that starts with this head.
    pub(crate) fn checkpoint(&self) -> WalRecord {
        let mut record = WalRecord::default();
        for series in self.series_by_ref() {
            record.series.push(SeriesDef {
                series_ref: series.series_ref,
                max_t: series.max_t(),
                labels: series.labels.clone(),
            });
        }
        record
    }

    /// Every series, by ref (what keeps a successor's and a checkpoint's order the same
    /// from run to run).
    fn series_by_ref(&self) -> Vec<&MemSeries> {
        let mut all: Vec<&MemSeries> = self.series.iter().collect();
        all.sort_unstable_by_key(|s| s.series_ref);
        all
    }

    /// Series with at least one sample, in no particular order.
    pub(crate) fn series_with_samples(&self) -> Vec<&MemSeries> {
        let mut out: Vec<&MemSeries> = Vec::new();
        for series in self.series.iter() {
            if !series.is_empty() {
                out.push(series);
            }
        }
        out
    }
}
