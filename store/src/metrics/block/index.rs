//! A block's index: its series list (labels and where each series' rows are) and the
//! postings over it, read from `series.parquet` (`reader::load_index`) when a query needs
//! them and held in the shared
//! [`BlockIndexCache`](super::index_cache::BlockIndexCache), charged by its heap size.

use super::meta::BlockSeries;
use crate::metrics::postings::{heap_alloc, Postings};
use crate::model::Labels;
use crate::storage::BlockError;

/// The series list and postings of one block; immutable once built.
#[derive(Debug)]
pub(crate) struct BlockIndex {
    /// Block series id of `series[0]`: an index covers the whole series list or a run
    /// of it (one metric name).
    pub base: u64,
    /// Series in label order; series `series[i]` has block id `base + i`.
    pub series: Vec<BlockSeries>,
    /// Label → value → positions in `series`.
    pub postings: Postings,
    /// Estimated heap bytes of the whole index ([`BlockIndex::bytes`]).
    bytes: u64,
}

impl BlockIndex {
    /// Block series `id`, which must lie in this index's run; a sample or histogram row
    /// naming another id is a corrupt block (`what` names the row's kind).
    pub(crate) fn series_of(
        &self,
        id: u64,
        path: &std::path::Path,
        what: &str,
    ) -> Result<&BlockSeries, BlockError> {
        id.checked_sub(self.base)
            .and_then(|i| self.series.get(i as usize))
            .ok_or_else(|| BlockError::corrupt(path, format!("{what} for unknown series id {id}")))
    }

    /// The labels of block series `id`, as [`BlockIndex::series_of`].
    pub(crate) fn labels_of(
        &self,
        id: u64,
        path: &std::path::Path,
        what: &str,
    ) -> Result<Labels, BlockError> {
        self.series_of(id, path, what).map(|s| s.labels.clone())
    }

    /// Builds the postings over `series` (the block's series from id `base` on; postings
    /// hold positions) and sizes the result.
    pub(crate) fn from_series(base: u64, series: Vec<BlockSeries>) -> BlockIndex {
        let mut postings = Postings::default();
        for (i, s) in series.iter().enumerate() {
            postings.add(i as u64, &s.labels);
        }
        postings.shrink_to_fit();
        let bytes =
            std::mem::size_of::<BlockIndex>() as u64 + series_heap_bytes(&series) + postings.heap_bytes();
        BlockIndex {
            base,
            series,
            postings,
            bytes,
        }
    }

    /// Estimated heap bytes: the series vector by capacity, each series' label slice and
    /// strings, and the postings ([`Postings::heap_bytes`]), each allocation rounded up as
    /// the allocator does.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// Heap bytes of a series list: the vector and each series' labels (one allocation).
fn series_heap_bytes(series: &Vec<BlockSeries>) -> u64 {
    let mut total = heap_alloc(series.capacity() * std::mem::size_of::<BlockSeries>());
    for s in series {
        total += heap_alloc(s.labels.heap_bytes());
    }
    total
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::Labels;

    /// Series like a cardinality burst: a few metric names, a shared job, a unique id.
    fn burst_series(n: usize) -> Vec<BlockSeries> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let labels = Labels::from_pairs([
                ("__name__", format!("burst_metric_{}", i % 100)),
                ("job", "burst".to_string()),
                ("id", format!("{i:08}-{:06x}", i * 7919)),
            ]);
            out.push(BlockSeries {
                labels,
                first_row: i as u64,
                row_count: 1,
                min_t: 0,
                max_t: 0,
                value_scale: None,
                scaled_base: 0,
            });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// The charged size stays close to what building the index really allocates, so
    /// the cache's byte limit bounds real memory.
    #[test]
    fn charged_bytes_track_real_allocations() {
        for n in [1_000usize, 50_000] {
            let series = burst_series(n);
            let mut index = None;
            let real = allocation_counter::measure(|| {
                // The labels are counted too: a loaded index owns freshly read ones.
                let mut copy = Vec::with_capacity(series.len());
                for s in &series {
                    copy.push(BlockSeries {
                        labels: Labels::new(s.labels.to_vec()).unwrap(),
                        ..s.clone()
                    });
                }
                index = Some(BlockIndex::from_series(0, copy));
            })
            .bytes_current;
            let charged = index.as_ref().unwrap().bytes() as i64;
            let ratio = charged as f64 / real as f64;
            eprintln!("{n} series: real {real} B, charged {charged} B, ratio {ratio:.2}");
            assert!((0.95..=1.4).contains(&ratio), "{n} series: ratio {ratio:.2}");
        }
    }
}
