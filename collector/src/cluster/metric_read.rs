//! The querier's metric reads, a [`Queryable`] over the cluster ([`ClusterReader`]): each
//! read asks every live ingester for its heads (`POST /internal/v1/heads`) and merges the
//! answers with the published blocks, in the order `reader` explains.
//!
//! A PromQL evaluation reads through the view [`Queryable::prepare`] makes instead,
//! [`Prefetched`]: every live ingester is asked once for the heads of all the reads the
//! query is going to make (`POST /internal/v1/heads/batch`, one series set per read), and
//! each read the evaluation then makes is answered from those answers, cut to the slice
//! asked, and merged with the blocks the same way. A read the plan did not foresee asks
//! the ingesters as above. The answers live as long as the view, which the engine drops
//! when the evaluation ends.
//!
//! The reader's order still holds for the view: the ingesters are asked once, before any
//! read of the evaluation, and the block list is then refreshed unless it was read after
//! that ask began ([`ClusterReader::ask_then_list`]). A sample an answer misses had left
//! its ingester's head before the ask, and its block's row was written before that, so the
//! refreshed list holds the block — and so does every list read later (a compaction
//! replaces blocks with one holding the same samples), which is what each read of the
//! evaluation reads the blocks from. Samples that arrive while the query runs may be
//! missing from it: the heads are those of the moment of the ask, for every selector alike.

use didban_store::metrics::exchange::decode_series_sets;
use didban_store::{LabelMatcher, PlannedRead, Queryable, ReadError, ReadStats, SeriesSamples, WindowsRead};

use super::reader::{unavailable, unreadable, ClusterReader, IngesterError};
use super::wire::{HeadsBatchRequest, HEADS_BATCH_PATH};

/// Each read asks every live ingester (one request each) and then reads the blocks; a
/// query evaluation reads through the view [`Queryable::prepare`] makes instead.
impl Queryable for ClusterReader {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        Ok(self.select_counted(matchers, start_ms, end_ms)?.0)
    }

    fn select_counted(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(Vec<SeriesSamples>, ReadStats), ReadError> {
        let heads = self.ask_then_list(|| self.heads(matchers, start_ms, end_ms))?;
        self.with_blocks(heads, matchers, start_ms, end_ms)
    }

    fn select_windows(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
        max_resolution_ms: i64,
    ) -> Result<WindowsRead, ReadError> {
        let heads = self.ask_then_list(|| self.heads(matchers, start_ms, end_ms))?;
        self.with_block_windows(heads, matchers, start_ms, end_ms, max_resolution_ms)
    }

    /// Every live ingester asked once for the heads of all planned reads ([`Prefetched`]);
    /// nothing to fetch for a query without any.
    fn prepare(
        &self,
        plan: &dyn Fn() -> Vec<PlannedRead>,
    ) -> Result<Option<Box<dyn Queryable + '_>>, ReadError> {
        let reads = plan();
        if reads.is_empty() {
            return Ok(None);
        }
        Ok(Some(Box::new(Prefetched::fetch(self, &reads)?)))
    }
}

/// The cluster for one evaluation: the ingesters' answers for its planned reads, and the
/// reader for the blocks and for reads the plan did not foresee.
pub struct Prefetched<'r> {
    reader: &'r ClusterReader,
    heads: PlannedHeads,
}

impl<'r> Prefetched<'r> {
    /// Asks every live ingester for the heads of all `reads` (one request each), then
    /// brings the block list up to date; fails naming the first ingester that did not
    /// answer, or answered something else than one series set per read.
    fn fetch(reader: &'r ClusterReader, reads: &[PlannedRead]) -> Result<Prefetched<'r>, ReadError> {
        let body = serde_json::to_vec(&HeadsBatchRequest::new(reads)).map_err(unreadable)?;
        let heads = reader.ask_then_list(|| {
            let mut heads = PlannedHeads::new(reads);
            for (member, bytes) in reader.ask(HEADS_BATCH_PATH, body).map_err(unavailable)? {
                let at_fault = |e: String| unavailable(IngesterError::of(&member, e));
                let sets = decode_series_sets(&bytes).map_err(|e| at_fault(e.to_string()))?;
                heads.add(sets).map_err(at_fault)?;
            }
            Ok(heads)
        })?;
        Ok(Prefetched { reader, heads })
    }
}

impl Queryable for Prefetched<'_> {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        Ok(self.select_counted(matchers, start_ms, end_ms)?.0)
    }

    fn select_counted(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(Vec<SeriesSamples>, ReadStats), ReadError> {
        match self.heads.slice(matchers, start_ms, end_ms) {
            Some(heads) => self.reader.with_blocks(heads, matchers, start_ms, end_ms),
            None => self.reader.select_counted(matchers, start_ms, end_ms),
        }
    }

    fn select_windows(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
        max_resolution_ms: i64,
    ) -> Result<WindowsRead, ReadError> {
        match self.heads.slice(matchers, start_ms, end_ms) {
            Some(heads) => {
                self.reader
                    .with_block_windows(heads, matchers, start_ms, end_ms, max_resolution_ms)
            }
            None => self
                .reader
                .select_windows(matchers, start_ms, end_ms, max_resolution_ms),
        }
    }
}

/// Every ingester's heads for each planned read.
struct PlannedHeads {
    /// Each read with the series the ingesters answered for it, one part per ingester that
    /// holds the series (merged with the blocks later, duplicates dropped there).
    reads: Vec<(PlannedRead, Vec<SeriesSamples>)>,
}

impl PlannedHeads {
    fn new(reads: &[PlannedRead]) -> PlannedHeads {
        PlannedHeads {
            reads: reads.iter().map(|r| (r.clone(), Vec::new())).collect(),
        }
    }

    /// Adds one ingester's answer: one series set per read, in order; the error says why
    /// it is not one.
    fn add(&mut self, sets: Vec<Vec<SeriesSamples>>) -> Result<(), String> {
        if sets.len() != self.reads.len() {
            return Err(format!(
                "answered {} series sets for {} reads",
                sets.len(),
                self.reads.len()
            ));
        }
        for ((_, parts), set) in self.reads.iter_mut().zip(sets) {
            parts.extend(set);
        }
        Ok(())
    }

    /// The heads' series for `matchers` with their samples in `[start_ms, end_ms]`, as
    /// asking the ingesters for that would have answered them (series without samples
    /// there left out); `None` when no planned read covers it.
    fn slice(&self, matchers: &[LabelMatcher], start_ms: i64, end_ms: i64) -> Option<Vec<SeriesSamples>> {
        let (_, parts) = self
            .reads
            .iter()
            .find(|(r, _)| r.covers(matchers, start_ms, end_ms))?;
        let mut out = Vec::new();
        for s in parts {
            let cut = s.within(start_ms, end_ms);
            if !cut.samples.is_empty() || !cut.histograms.is_empty() {
                out.push(cut);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use didban_store::{FloatHistogram, HistogramSample, Labels, Sample};

    fn read(name: &str, start_ms: i64, end_ms: i64) -> PlannedRead {
        PlannedRead {
            matchers: vec![LabelMatcher::equal("__name__", name)],
            start_ms,
            end_ms,
        }
    }

    fn series(name: &str, job: &str, times: &[i64]) -> SeriesSamples {
        SeriesSamples {
            labels: Labels::from_pairs([("__name__", name), ("job", job)]),
            samples: times.iter().map(|&t| Sample::new(t, t as f64)).collect(),
            histograms: Vec::new(),
        }
    }

    fn times(series: &[SeriesSamples]) -> Vec<(String, Vec<i64>, Vec<i64>)> {
        let mut out = Vec::new();
        for s in series {
            out.push((
                s.labels.get("job").unwrap_or_default().to_string(),
                s.samples.iter().map(|p| p.timestamp_ms).collect(),
                s.histograms.iter().map(|p| p.timestamp_ms).collect(),
            ));
        }
        out
    }

    #[test]
    fn a_slice_of_a_planned_read_holds_exactly_its_samples_from_every_ingester() {
        let mut heads = PlannedHeads::new(&[read("a", 0, 100), read("b", 50, 60)]);
        let mut with_histograms = series("a", "h", &[]);
        with_histograms.histograms = vec![
            HistogramSample::new(10, FloatHistogram::default()),
            HistogramSample::new(40, FloatHistogram::default()),
        ];
        // Ingester one holds x and h, ingester two x (a replica) and y.
        heads
            .add(vec![
                vec![series("a", "x", &[0, 10, 20, 30, 100]), with_histograms],
                vec![series("b", "x", &[55])],
            ])
            .unwrap();
        heads
            .add(vec![
                vec![series("a", "x", &[20, 30]), series("a", "y", &[90, 100])],
                Vec::new(),
            ])
            .unwrap();
        let a = [LabelMatcher::equal("__name__", "a")];
        // Both ends inclusive; series without samples in the slice left out.
        assert_eq!(
            times(&heads.slice(&a, 10, 30).unwrap()),
            vec![
                ("x".to_string(), vec![10, 20, 30], vec![]),
                ("h".to_string(), vec![], vec![10]),
                ("x".to_string(), vec![20, 30], vec![]),
            ]
        );
        assert_eq!(
            times(&heads.slice(&a, 31, 100).unwrap()),
            vec![
                ("x".to_string(), vec![100], vec![]),
                ("h".to_string(), vec![], vec![40]),
                ("y".to_string(), vec![90, 100], vec![]),
            ]
        );
        assert!(heads.slice(&a, 41, 89).unwrap().is_empty());
        // The whole planned range; another read's.
        assert_eq!(heads.slice(&a, 0, 100).unwrap().len(), 4);
        let b = [LabelMatcher::equal("__name__", "b")];
        assert_eq!(times(&heads.slice(&b, 50, 60).unwrap()).len(), 1);
        // Not planned: past the range, or other matchers.
        assert!(heads.slice(&a, -1, 10).is_none());
        assert!(heads.slice(&b, 50, 61).is_none());
        assert!(heads
            .slice(&[LabelMatcher::equal("__name__", "c")], 0, 1)
            .is_none());
    }

    #[test]
    fn an_answer_of_other_than_one_set_per_read_is_refused() {
        let mut heads = PlannedHeads::new(&[read("a", 0, 100), read("b", 0, 100)]);
        assert_eq!(
            heads.add(vec![Vec::new()]).unwrap_err(),
            "answered 1 series sets for 2 reads"
        );
        assert_eq!(
            heads.add(vec![Vec::new(); 3]).unwrap_err(),
            "answered 3 series sets for 2 reads"
        );
    }
}
