//! The drivers most functions are written with: [`range_apply`] walks every series' window
//! at every step with forward-only cursors (series by series, the result held so:
//! `series_vec`), [`map_values`] maps every sample of an instant vector.

use std::sync::Arc;

use crate::model::{FloatHistogram, HistogramSample, Labels, Sample, METRIC_NAME_LABEL};

use super::super::annotations::Annotations;
use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::selector::advance_window;
use super::super::series_vec::{step_index, SeriesVec, StepSeries};
use super::super::value::{check_steps, Grid, LabelMemo, RangeData, StepVec};

/// What a range function sees at one step.
pub(crate) struct Window<'a> {
    /// The float samples inside the window, in time order.
    pub samples: &'a [Sample],
    /// The histogram samples inside the window, in time order.
    pub histograms: &'a [HistogramSample],
    /// The series' labels (for annotations naming the metric).
    pub labels: &'a Labels,
    /// Window bounds as the query states them (`end - range`, `end`), ms: the start is
    /// outside the window when windows are left-open.
    pub start: i64,
    pub end: i64,
    /// The evaluation time of the step, ms (`predict_linear` predicts from it).
    pub t: i64,
    /// Step index, to look up per-step scalar arguments.
    pub step: usize,
}

/// What a range function produced for one window.
pub(crate) enum Out {
    /// A float sample.
    Float(f64),
    /// A histogram sample.
    Histogram(FloatHistogram),
}

/// Applies the float function `f` to every series' window at every step; steps where `f`
/// returns `None` or the window holds no float produce no sample. Histograms are ignored, with
/// Prometheus' info when a window held both kinds. `drop_name` removes `__name__` from the
/// output.
pub(crate) fn range_apply(
    ev: &mut Evaluator<'_>,
    rd: &RangeData,
    grid: &Grid,
    drop_name: bool,
    mut f: impl FnMut(&Window<'_>) -> Result<Option<f64>, PromqlError>,
) -> Result<SeriesVec, PromqlError> {
    let mut notes = Annotations::default();
    let out = range_apply_any(
        ev,
        rd,
        grid,
        drop_name,
        |w, notes_in| {
            if w.samples.is_empty() {
                return Ok(None);
            }
            if !w.histograms.is_empty() {
                notes_in.histogram_ignored_in_mixed_range(metric_name(w.labels));
            }
            Ok(f(w)?.map(Out::Float))
        },
        &mut notes,
    )?;
    ev.annotations.merge(notes);
    Ok(out)
}

/// The metric name of `labels`, or "" without one.
pub(crate) fn metric_name(labels: &Labels) -> &str {
    labels.get(METRIC_NAME_LABEL).unwrap_or("")
}

/// Applies `f` to every series' window (floats and histograms) at every step; `f` may add
/// annotations to `notes`. Windows with no sample of either kind are skipped. The result is
/// held series by series, as it is computed.
pub(crate) fn range_apply_any(
    ev: &mut Evaluator<'_>,
    rd: &RangeData,
    grid: &Grid,
    drop_name: bool,
    mut f: impl FnMut(&Window<'_>, &mut Annotations) -> Result<Option<Out>, PromqlError>,
    notes: &mut Annotations,
) -> Result<SeriesVec, PromqlError> {
    let n = grid.len();
    let mut out: Vec<StepSeries> = Vec::with_capacity(rd.series.len());
    let mut memo = LabelMemo::default();
    for s in &rd.series {
        let labels = if drop_name {
            memo.map(&s.labels, |l| l.without_metric_name())
        } else {
            s.labels.clone()
        };
        let mut series = StepSeries::new(labels);
        let (mut lo, mut hi) = (0usize, 0usize);
        let (mut hlo, mut hhi) = (0usize, 0usize);
        for i in 0..n {
            let t = grid.t(i);
            let (first, last) = rd.window(t);
            advance_window(&s.samples, first, last, &mut lo, &mut hi);
            advance_hist_window(&s.histograms, first, last, &mut hlo, &mut hhi);
            let (start, end) = rd.bounds(t);
            let samples = s.samples.get(lo..hi).unwrap_or(&[]);
            let histograms = s.histograms.get(hlo..hhi).unwrap_or(&[]);
            if samples.is_empty() && histograms.is_empty() {
                continue;
            }
            let w = Window {
                samples,
                histograms,
                labels: &s.labels,
                start,
                end,
                t,
                step: i,
            };
            match f(&w, notes)? {
                Some(Out::Float(v)) => series.push_float(step_index(i)?, v),
                Some(Out::Histogram(h)) => series.push_histogram(step_index(i)?, Arc::new(h)),
                None => {}
            }
        }
        if !series.is_empty() {
            out.push(series);
        }
        ev.check_deadline()?;
    }
    Ok(SeriesVec {
        series: out,
        steps: n,
        collided: memo.collided,
    })
}

/// [`advance_window`] for histogram samples.
pub(crate) fn advance_hist_window(
    samples: &[HistogramSample],
    start: i64,
    end: i64,
    lo: &mut usize,
    hi: &mut usize,
) {
    while *lo < samples.len() && samples[*lo].timestamp_ms < start {
        *lo += 1;
    }
    if *hi < *lo {
        *hi = *lo;
    }
    while *hi < samples.len() && samples[*hi].timestamp_ms <= end {
        *hi += 1;
    }
}

/// Applies `f` to every float sample of an instant vector, dropping `__name__`; `None` drops
/// the sample. Histogram samples are dropped silently, as Prometheus' math functions do.
pub(crate) fn map_values(
    steps: Vec<StepVec>,
    mut f: impl FnMut(f64, usize) -> Option<f64>,
) -> Result<Vec<StepVec>, PromqlError> {
    let mut memo = LabelMemo::default();
    let mut out: Vec<StepVec> = Vec::with_capacity(steps.len());
    for (i, step) in steps.into_iter().enumerate() {
        let mut res = Vec::with_capacity(step.len());
        for mut e in step {
            if e.h.is_some() {
                continue;
            }
            let Some(v) = f(e.v, i) else { continue };
            e.v = v;
            e.labels = memo.map(&e.labels, |l| l.without_metric_name());
            res.push(e);
        }
        out.push(res);
    }
    check_steps(&memo, &out)?;
    Ok(out)
}
