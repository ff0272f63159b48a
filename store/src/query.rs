//! The read interface every query engine (PromQL, the series/labels APIs, alerting) uses,
//! so they work the same over the live database and over in-memory test data.

use crate::model::{LabelMatcher, Labels, SeriesSamples};
use crate::window::SeriesWindows;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("storage read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt block {block}: {reason}")]
    Corrupt { block: String, reason: String },
    #[error("query needs more than {limit} samples")]
    TooManySamples { limit: usize },
    /// A part of the storage the read needs did not answer (an ingester of the cluster,
    /// the object store): worth retrying, not the query's fault or a damaged block.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// What a downsampled read returns: the series as windows, and what the read touched.
#[derive(Debug, Clone, Default)]
pub struct WindowsRead {
    /// Series sorted by labels, windows and histograms each in time order.
    pub series: Vec<SeriesWindows>,
    /// What was read to produce them.
    pub stats: ReadStats,
}

/// What one read touched, for query statistics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Blocks of raw samples read (the head is not counted).
    pub raw_blocks: usize,
    /// Downsampled blocks read.
    pub downsampled_blocks: usize,
    /// Coarsest resolution read, ms (0 when only raw data was read).
    pub resolution_ms: i64,
}

impl ReadStats {
    /// Adds the figures of another read.
    pub fn add(&mut self, other: &ReadStats) {
        self.raw_blocks += other.raw_blocks;
        self.downsampled_blocks += other.downsampled_blocks;
        self.resolution_ms = self.resolution_ms.max(other.resolution_ms);
    }
}

/// One read a query is going to make, known before it is evaluated: the series matching
/// all `matchers` with their samples in `[start_ms, end_ms]`. The evaluation reads it in
/// slices of that range (see [`Queryable::prepare`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRead {
    /// Series matching all of these.
    pub matchers: Vec<LabelMatcher>,
    /// From this time (ms, inclusive).
    pub start_ms: i64,
    /// Up to this time (ms, inclusive).
    pub end_ms: i64,
}

impl PlannedRead {
    /// True when a read of `matchers` over `[start_ms, end_ms]` is this read or a slice of it.
    pub fn covers(&self, matchers: &[LabelMatcher], start_ms: i64, end_ms: i64) -> bool {
        self.matchers == matchers && self.start_ms <= start_ms && end_ms <= self.end_ms
    }
}

/// Something series can be selected from.
pub trait Queryable: Send + Sync {
    /// Every series that satisfies all `matchers` with its samples in `[start_ms, end_ms]`
    /// (both inclusive), samples in timestamp order, no duplicates. Series without samples in
    /// the range are left out.
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError>;

    /// [`Queryable::select`], also saying what the read touched (a storage without blocks
    /// reports nothing: this default).
    fn select_counted(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(Vec<SeriesSamples>, ReadStats), ReadError> {
        Ok((self.select(matchers, start_ms, end_ms)?, ReadStats::default()))
    }

    /// Like [`Queryable::select`], but the float data may come from downsampled blocks of
    /// windows up to `max_resolution_ms` wide: for each part of the range, the coarsest
    /// resolution that has a block there, raw samples where none has. A storage without
    /// downsampled data answers with raw samples only (this default).
    fn select_windows(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
        max_resolution_ms: i64,
    ) -> Result<WindowsRead, ReadError> {
        let _ = max_resolution_ms;
        let mut series = Vec::new();
        for s in self.select(matchers, start_ms, end_ms)? {
            series.push(raw_windows(s));
        }
        Ok(WindowsRead {
            series,
            stats: ReadStats::default(),
        })
    }

    /// A view of this storage for one query evaluation, which is going to read what `plan`
    /// returns (each read whole or in slices of its range; empty when the query cannot be
    /// planned) and maybe more: a storage whose reads cost a round trip fetches what it can
    /// for all of them at once, and the view answers every read as this storage would
    /// (those it did not foresee too, the usual way). The view lives as long as the
    /// evaluation. The plan is worked out only when called, so a storage with nothing to
    /// gain does not pay for it. `None` (this default): the evaluation reads this storage
    /// itself.
    fn prepare(
        &self,
        plan: &dyn Fn() -> Vec<PlannedRead>,
    ) -> Result<Option<Box<dyn Queryable + '_>>, ReadError> {
        let _ = plan;
        Ok(None)
    }

    /// Label sets of the series that satisfy `matchers` and have data in the range, sorted.
    fn series(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, ReadError> {
        let mut out: Vec<Labels> = self
            .select(matchers, start_ms, end_ms)?
            .into_iter()
            .map(|s| s.labels)
            .collect();
        out.sort();
        Ok(out)
    }

    /// Sorted, distinct label names of those series.
    fn label_names(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, ReadError> {
        let mut names: Vec<String> = Vec::new();
        for labels in self.series(matchers, start_ms, end_ms)? {
            for l in labels.iter() {
                names.push(l.name.to_string());
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Sorted, distinct values of label `name` among those series.
    fn label_values(
        &self,
        name: &str,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, ReadError> {
        let mut values: Vec<String> = Vec::new();
        for labels in self.series(matchers, start_ms, end_ms)? {
            if let Some(v) = labels.get(name) {
                values.push(v.to_string());
            }
        }
        values.sort();
        values.dedup();
        Ok(values)
    }
}

/// A raw series as a downsampled read returns it: no windows, its samples as they are.
pub fn raw_windows(s: SeriesSamples) -> SeriesWindows {
    SeriesWindows {
        labels: s.labels,
        windows: Vec::new(),
        samples: s.samples,
        histograms: s.histograms,
    }
}

/// Groups parts by series (sorted by labels) and merges the samples of series found in
/// several parts, keeping the first sample seen for each timestamp (floats and native
/// histograms each): how reads combine heads and blocks, and how a querier combines what
/// several ingesters (replicas of one series included) answered.
///
/// One stable sort of the parts by labels, then a pass joining neighbours: cheaper than a
/// map keyed by labels (a `BTreeMap` here was ~6 % of a large selector's query time), and
/// the stable sort keeps the parts of one series in the order given, which is what makes
/// the first part's sample win a timestamp.
pub fn merge_series(mut parts: Vec<SeriesSamples>) -> Vec<SeriesSamples> {
    parts.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out: Vec<SeriesSamples> = Vec::with_capacity(parts.len());
    // Whether the last series in `out` got samples from several parts.
    let mut joined = false;
    for part in parts {
        if let Some(last) = out.last_mut() {
            if last.labels == part.labels {
                last.samples.extend(part.samples);
                last.histograms.extend(part.histograms);
                joined = true;
                continue;
            }
            if joined {
                order_joined(last);
            }
        }
        joined = false;
        out.push(part);
    }
    if let (true, Some(last)) = (joined, out.last_mut()) {
        order_joined(last);
    }
    out.retain(|s| !s.samples.is_empty() || !s.histograms.is_empty());
    out
}

/// Sorts the samples a series got from several parts by time, keeping the first of each
/// timestamp (the sort is stable).
fn order_joined(s: &mut SeriesSamples) {
    s.samples.sort_by_key(|s| s.timestamp_ms);
    s.samples.dedup_by_key(|s| s.timestamp_ms);
    s.histograms.sort_by_key(|s| s.timestamp_ms);
    s.histograms.dedup_by_key(|s| s.timestamp_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Label, Sample};

    fn part(name: &str, samples: &[(i64, f64)]) -> SeriesSamples {
        let labels = Labels::new(vec![Label::new("__name__", name)]).unwrap();
        let samples = samples.iter().map(|&(t, v)| Sample::new(t, v)).collect();
        SeriesSamples::floats(labels, samples)
    }

    fn flat(out: &[SeriesSamples]) -> Vec<(String, Vec<(i64, f64)>)> {
        let mut flat = Vec::new();
        for s in out {
            let samples = s.samples.iter().map(|x| (x.timestamp_ms, x.value)).collect();
            flat.push((s.labels.metric_name().unwrap_or_default().to_string(), samples));
        }
        flat
    }

    #[test]
    fn parts_merge_per_series_sorted_by_labels_the_first_part_winning_a_timestamp() {
        let parts = vec![
            part("c", &[(5, 1.0)]),
            part("a", &[(3, 1.0), (1, 1.0)]),
            part("b", &[]),
            part("a", &[(2, 2.0), (3, 2.0)]),
            part("c", &[(5, 2.0), (4, 2.0)]),
            part("a", &[(1, 3.0), (4, 3.0)]),
        ];
        let out = merge_series(parts);
        assert_eq!(
            flat(&out),
            vec![
                ("a".to_string(), vec![(1, 1.0), (2, 2.0), (3, 1.0), (4, 3.0)]),
                ("c".to_string(), vec![(4, 2.0), (5, 1.0)]),
            ]
        );
        // A series from one part keeps its samples as they were.
        let out = merge_series(vec![part("z", &[(9, 1.0), (7, 1.0)])]);
        assert_eq!(flat(&out), vec![("z".to_string(), vec![(9, 1.0), (7, 1.0)])]);
    }
}
