//! The read interface every query engine (PromQL, the series/labels APIs, alerting) uses,
//! so they work the same over the live database and over in-memory test data.

use std::collections::BTreeMap;

use crate::model::{HistogramSample, LabelMatcher, Labels, Sample, SeriesSamples};
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
                names.push(l.name.clone());
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

/// Both kinds of samples of one series gathered from several parts.
struct Merged {
    samples: Vec<Sample>,
    histograms: Vec<HistogramSample>,
    from_several: bool,
}

/// Groups parts by series (sorted by labels) and merges the samples of series found in
/// several parts, keeping the first sample seen for each timestamp (floats and native
/// histograms each): how reads combine heads and blocks, and how a querier combines what
/// several ingesters (replicas of one series included) answered.
pub fn merge_series(parts: Vec<SeriesSamples>) -> Vec<SeriesSamples> {
    let mut by_series: BTreeMap<Labels, Merged> = BTreeMap::new();
    for part in parts {
        match by_series.get_mut(&part.labels) {
            Some(m) => {
                m.samples.extend(part.samples);
                m.histograms.extend(part.histograms);
                m.from_several = true;
            }
            None => {
                let m = Merged {
                    samples: part.samples,
                    histograms: part.histograms,
                    from_several: false,
                };
                by_series.insert(part.labels, m);
            }
        }
    }
    let mut out = Vec::with_capacity(by_series.len());
    for (labels, mut m) in by_series {
        if m.from_several {
            m.samples.sort_by_key(|s| s.timestamp_ms);
            m.samples.dedup_by_key(|s| s.timestamp_ms);
            m.histograms.sort_by_key(|s| s.timestamp_ms);
            m.histograms.dedup_by_key(|s| s.timestamp_ms);
        }
        if !m.samples.is_empty() || !m.histograms.is_empty() {
            out.push(SeriesSamples {
                labels,
                samples: m.samples,
                histograms: m.histograms,
            });
        }
    }
    out
}
