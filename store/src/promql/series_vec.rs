//! An instant vector over the whole grid held series by series: what a range function
//! produces, since it walks each series once over every step.
//!
//! The per-step form ([`StepVec`] per step) costs one shared-label clone and one push into
//! a different vector per point, and a range query turns it back into series at the end.
//! Held series by series, a range query's answer is assembled without that round trip and
//! an aggregation (`sum by (…) (rate(…))`) reads each series' group once instead of once
//! per step (`aggregate::by_series`). Consumers that need steps call
//! [`SeriesVec::into_steps`], which gives exactly the vectors the per-step form would have
//! held, in the same order.

use std::sync::Arc;

use crate::model::{FloatHistogram, HistogramSample, Labels, Sample, SeriesSamples};

use super::error::PromqlError;
use super::value::{check_unique_ptrs, Elem, Grid, StepVec};

/// An instant vector per step of a grid, held series by series.
#[derive(Debug)]
pub(crate) struct SeriesVec {
    /// The series, in the order the per-step form lists them within a step.
    pub series: Vec<StepSeries>,
    /// Number of steps of the grid.
    pub steps: usize,
    /// True when two input series were given the same output labels (dropping `__name__`
    /// can do that): a step may then hold one label set twice, which is an error only if
    /// it happens at a step — the per-step check decides.
    pub collided: bool,
}

/// One series' values at the steps where it has one. Invariant: step indexes ascend and
/// are below the grid's length, and a step has a float or a histogram, not both.
#[derive(Debug)]
pub(crate) struct StepSeries {
    pub labels: Arc<Labels>,
    /// Steps with a float value, ascending; `values[i]` is the value at `steps[i]`.
    pub steps: Vec<u32>,
    pub values: Vec<f64>,
    /// Steps with a histogram value, ascending.
    pub histograms: Vec<(u32, Arc<FloatHistogram>)>,
}

impl StepSeries {
    /// A series without values yet.
    pub fn new(labels: Arc<Labels>) -> StepSeries {
        StepSeries {
            labels,
            steps: Vec::new(),
            values: Vec::new(),
            histograms: Vec::new(),
        }
    }

    /// Appends the float `v` at `step` (after every step pushed so far).
    pub fn push_float(&mut self, step: u32, v: f64) {
        debug_assert!(self.steps.last().is_none_or(|&s| s < step), "steps ascend");
        self.steps.push(step);
        self.values.push(v);
    }

    /// Appends the histogram `h` at `step` (after every step pushed so far).
    pub fn push_histogram(&mut self, step: u32, h: Arc<FloatHistogram>) {
        debug_assert!(
            self.histograms.last().is_none_or(|(s, _)| *s < step),
            "steps ascend"
        );
        self.histograms.push((step, h));
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.steps.len() + self.histograms.len()
    }

    /// True without any value.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.histograms.is_empty()
    }
}

/// The index of step `i` as stored, or an error when the grid is too long to index with
/// 32 bits (the engine's limits stop far below: 11,000 points per series, and subquery
/// grids are counted against the sample limit before they are evaluated).
pub(crate) fn step_index(i: usize) -> Result<u32, PromqlError> {
    u32::try_from(i).map_err(|_| PromqlError::exec(format!("too many steps in one evaluation: {i}")))
}

impl SeriesVec {
    /// True when some series holds a histogram.
    pub fn has_histograms(&self) -> bool {
        self.series.iter().any(|s| !s.histograms.is_empty())
    }

    /// Number of values over all series and steps.
    pub fn points(&self) -> usize {
        self.series.iter().map(StepSeries::len).sum()
    }

    /// The per-step form: at each step, the series that have a value there, in series
    /// order; refuses a step holding one label set twice.
    pub fn into_steps(self) -> Result<Vec<StepVec>, PromqlError> {
        let mut out: Vec<StepVec> = vec![Vec::new(); self.steps];
        for s in self.series {
            let mut hists = s.histograms.into_iter().peekable();
            for (&step, &v) in s.steps.iter().zip(&s.values) {
                while let Some((hs, h)) = hists.next_if(|(hs, _)| *hs < step) {
                    push_at(&mut out, hs, Elem::histogram(s.labels.clone(), h));
                }
                push_at(&mut out, step, Elem::float(s.labels.clone(), v));
            }
            for (hs, h) in hists {
                push_at(&mut out, hs, Elem::histogram(s.labels.clone(), h));
            }
        }
        if self.collided {
            for step in &out {
                check_unique_ptrs(step)?;
            }
        }
        Ok(out)
    }

    /// The series with their samples at the grid's times, sorted by labels, leaving out
    /// series without values. Only for a vector whose series have distinct labels
    /// (`collided` false); otherwise go through [`SeriesVec::into_steps`], which finds where
    /// two clash.
    pub fn into_matrix(self, grid: &Grid) -> Vec<SeriesSamples> {
        debug_assert!(
            !self.collided,
            "series with shared labels are merged through the steps"
        );
        let mut out: Vec<SeriesSamples> = Vec::with_capacity(self.series.len());
        for s in self.series {
            if s.is_empty() {
                continue;
            }
            let mut samples = Vec::with_capacity(s.steps.len());
            for (&step, &v) in s.steps.iter().zip(&s.values) {
                samples.push(Sample::new(grid.t(step as usize), v));
            }
            let mut histograms = Vec::with_capacity(s.histograms.len());
            for (step, h) in s.histograms {
                histograms.push(HistogramSample {
                    timestamp_ms: grid.t(step as usize),
                    h,
                });
            }
            out.push(SeriesSamples {
                labels: Arc::unwrap_or_clone(s.labels),
                samples,
                histograms,
            });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

fn push_at(out: &mut [StepVec], step: u32, e: Elem) {
    debug_assert!((step as usize) < out.len(), "step {step} inside the grid");
    if let Some(slot) = out.get_mut(step as usize) {
        slot.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str) -> Arc<Labels> {
        Arc::new(Labels::from_pairs([("job", name)]))
    }

    fn hist(count: f64) -> Arc<FloatHistogram> {
        Arc::new(FloatHistogram {
            count,
            ..FloatHistogram::default()
        })
    }

    #[test]
    fn steps_list_series_in_order_and_floats_and_histograms_by_step() {
        let mut a = StepSeries::new(labels("a"));
        a.push_float(0, 1.0);
        a.push_histogram(1, hist(5.0));
        a.push_float(2, 3.0);
        let mut b = StepSeries::new(labels("b"));
        b.push_float(1, 10.0);
        b.push_float(2, 20.0);
        let sv = SeriesVec {
            series: vec![a, b],
            steps: 4,
            collided: false,
        };
        assert_eq!(sv.points(), 5);
        assert!(sv.has_histograms());
        let steps = sv.into_steps().unwrap();
        assert_eq!(steps.len(), 4);
        let at = |i: usize| -> Vec<(String, f64, Option<f64>)> {
            steps[i]
                .iter()
                .map(|e| (e.labels.to_string(), e.v, e.h.as_ref().map(|h| h.count)))
                .collect()
        };
        assert_eq!(at(0), vec![(r#"{job="a"}"#.to_string(), 1.0, None)]);
        assert_eq!(
            at(1),
            vec![
                (r#"{job="a"}"#.to_string(), 0.0, Some(5.0)),
                (r#"{job="b"}"#.to_string(), 10.0, None)
            ]
        );
        assert_eq!(
            at(2),
            vec![
                (r#"{job="a"}"#.to_string(), 3.0, None),
                (r#"{job="b"}"#.to_string(), 20.0, None)
            ]
        );
        assert!(at(3).is_empty());
    }

    #[test]
    fn a_shared_label_set_is_refused_only_where_two_series_meet() {
        let shared = labels("x");
        let mut a = StepSeries::new(shared.clone());
        a.push_float(0, 1.0);
        let mut b = StepSeries::new(shared.clone());
        b.push_float(1, 2.0);
        let apart = SeriesVec {
            series: vec![a, b],
            steps: 2,
            collided: true,
        };
        assert_eq!(apart.into_steps().unwrap().len(), 2);

        let mut a = StepSeries::new(shared.clone());
        a.push_float(1, 1.0);
        let mut b = StepSeries::new(shared);
        b.push_float(1, 2.0);
        let clash = SeriesVec {
            series: vec![a, b],
            steps: 2,
            collided: true,
        };
        let err = clash.into_steps().unwrap_err().to_string();
        assert!(err.contains("same labelset"), "{err}");
    }

    #[test]
    fn the_matrix_has_the_grid_times_sorted_by_labels_without_empty_series() {
        let grid = Grid {
            start: 1_000,
            end: 4_000,
            step: 1_000,
        };
        let mut z = StepSeries::new(labels("z"));
        z.push_float(0, 1.0);
        z.push_float(3, 4.0);
        let empty = StepSeries::new(labels("e"));
        let mut a = StepSeries::new(labels("a"));
        a.push_histogram(2, hist(7.0));
        let sv = SeriesVec {
            series: vec![z, empty, a],
            steps: 4,
            collided: false,
        };
        let m = sv.into_matrix(&grid);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].labels.get("job"), Some("a"));
        assert_eq!(m[0].histograms[0].timestamp_ms, 3_000);
        assert_eq!(m[1].labels.get("job"), Some("z"));
        let times: Vec<i64> = m[1].samples.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(times, vec![1_000, 4_000]);
    }
}
