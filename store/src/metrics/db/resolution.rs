//! Downsampled reads: each part of a query's range is read at the coarsest resolution
//! allowed that has a block there (1 hour, then 5 minutes), the rest from raw data (raw
//! blocks and the heads).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Db;
use crate::metrics::block::downsample::RESOLUTIONS_MS;
use crate::metrics::block::Block;
use crate::model::{LabelMatcher, Labels};
use crate::query::{raw_windows, ReadError, ReadStats, WindowsRead};
use crate::window::SeriesWindows;

impl Db {
    /// See [`Queryable::select_windows`](crate::query::Queryable::select_windows).
    pub(super) fn select_resolution(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
        max_resolution_ms: i64,
    ) -> Result<WindowsRead, ReadError> {
        let mut stats = ReadStats::default();
        let mut parts: Vec<SeriesWindows> = Vec::new();
        // Inclusive time ranges not read yet.
        let mut remaining: Vec<(i64, i64)> = if start_ms <= end_ms {
            vec![(start_ms, end_ms)]
        } else {
            Vec::new()
        };
        let blocks: Vec<Arc<Block>> = self.blocks.read().clone();
        for &resolution in RESOLUTIONS_MS.iter().rev() {
            if resolution > max_resolution_ms {
                continue;
            }
            for b in blocks.iter().filter(|b| b.meta.resolution_ms == resolution) {
                let (lo, hi) = (b.meta.min_time_ms, b.meta.max_time_ms);
                let mut left: Vec<(i64, i64)> = Vec::with_capacity(remaining.len() + 1);
                let mut touched = false;
                for &(a, z) in &remaining {
                    if hi < a || lo > z {
                        left.push((a, z));
                        continue;
                    }
                    let (s, e) = (a.max(lo), z.min(hi));
                    b.select_windows(matchers, s, e, &mut parts)?;
                    touched = true;
                    if a < s {
                        left.push((a, s - 1));
                    }
                    if e < z {
                        left.push((e + 1, z));
                    }
                }
                if touched {
                    stats.downsampled_blocks += 1;
                    stats.resolution_ms = stats.resolution_ms.max(resolution);
                }
                remaining = left;
            }
        }
        for (a, z) in remaining {
            for s in self.select_raw(matchers, a, z, &mut stats)? {
                parts.push(raw_windows(s));
            }
        }
        Ok(WindowsRead {
            series: merge(parts),
            stats,
        })
    }
}

/// Groups parts by series (sorted by labels), windows and histograms sorted by time, the
/// first of equal timestamps kept.
fn merge(parts: Vec<SeriesWindows>) -> Vec<SeriesWindows> {
    let mut by_series: BTreeMap<Labels, SeriesWindows> = BTreeMap::new();
    let mut several: Vec<Labels> = Vec::new();
    for part in parts {
        match by_series.get_mut(&part.labels) {
            Some(m) => {
                m.windows.extend(part.windows);
                m.samples.extend(part.samples);
                m.histograms.extend(part.histograms);
                several.push(part.labels);
            }
            None => {
                by_series.insert(part.labels.clone(), part);
            }
        }
    }
    for labels in several {
        if let Some(m) = by_series.get_mut(&labels) {
            m.windows.sort_by_key(|w| w.timestamp_ms);
            m.windows.dedup_by_key(|w| w.timestamp_ms);
            m.samples.sort_by_key(|w| w.timestamp_ms);
            m.samples.dedup_by_key(|w| w.timestamp_ms);
            m.histograms.sort_by_key(|h| h.timestamp_ms);
            m.histograms.dedup_by_key(|h| h.timestamp_ms);
        }
    }
    by_series
        .into_values()
        .filter(|s| !s.windows.is_empty() || !s.samples.is_empty() || !s.histograms.is_empty())
        .collect()
}
