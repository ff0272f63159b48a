//! The drivers most functions are written with: [`range_apply`] walks every series' window
//! at every step with forward-only cursors, [`map_values`] maps every sample of an instant
//! vector.

use crate::model::Sample;

use super::super::engine::Evaluator;
use super::super::error::PromqlError;
use super::super::selector::advance_window;
use super::super::value::{check_steps, Elem, Grid, LabelMemo, RangeData, StepVec};

/// What a range function sees at one step.
pub(crate) struct Window<'a> {
    /// The samples inside the window, in time order.
    pub samples: &'a [Sample],
    /// Window bounds as the query states them (`end - range`, `end`), ms: the start is
    /// outside the window when windows are left-open.
    pub start: i64,
    pub end: i64,
    /// The evaluation time of the step, ms (`predict_linear` predicts from it).
    pub t: i64,
    /// Step index, to look up per-step scalar arguments.
    pub step: usize,
}

/// Applies `f` to every series' window at every step; steps where `f` returns `None` (or the
/// window is empty) produce no sample. `drop_name` removes `__name__` from the output.
pub(crate) fn range_apply(
    ev: &mut Evaluator<'_>,
    rd: &RangeData,
    grid: &Grid,
    drop_name: bool,
    mut f: impl FnMut(&Window<'_>) -> Result<Option<f64>, PromqlError>,
) -> Result<Vec<StepVec>, PromqlError> {
    let n = grid.len();
    let mut out: Vec<StepVec> = vec![Vec::new(); n];
    let mut memo = LabelMemo::default();
    for s in &rd.series {
        let labels = if drop_name {
            memo.map(&s.labels, |l| l.without_metric_name())
        } else {
            s.labels.clone()
        };
        let (mut lo, mut hi) = (0usize, 0usize);
        for (i, slot) in out.iter_mut().enumerate() {
            let t = grid.t(i);
            let (first, last) = rd.window(t);
            advance_window(&s.samples, first, last, &mut lo, &mut hi);
            let (start, end) = rd.bounds(t);
            let Some(samples) = s.samples.get(lo..hi) else {
                continue;
            };
            if samples.is_empty() {
                continue;
            }
            let w = Window {
                samples,
                start,
                end,
                t,
                step: i,
            };
            if let Some(v) = f(&w)? {
                slot.push(Elem {
                    labels: labels.clone(),
                    v,
                });
            }
        }
        ev.check_deadline()?;
    }
    check_steps(&memo, &out)?;
    Ok(out)
}

/// Applies `f` to every sample of an instant vector, dropping `__name__`; `None` drops the
/// sample.
pub(crate) fn map_values(
    steps: Vec<StepVec>,
    mut f: impl FnMut(f64, usize) -> Option<f64>,
) -> Result<Vec<StepVec>, PromqlError> {
    let mut memo = LabelMemo::default();
    let mut out: Vec<StepVec> = Vec::with_capacity(steps.len());
    for (i, step) in steps.into_iter().enumerate() {
        let mut res = Vec::with_capacity(step.len());
        for mut e in step {
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
