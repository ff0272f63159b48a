//! The drivers most functions are written with: [`range_apply`] walks every series' window
//! at every step with forward-only cursors (series by series, the result held so:
//! `SeriesVec`), [`map_values`] maps every sample of an instant vector.

use std::ops::Range;
use std::sync::Arc;

use crate::model::{FloatHistogram, HistogramSample, Labels, Sample, METRIC_NAME_LABEL};

use super::super::annotations::Annotations;
use super::super::engine::{Deadline, Evaluator};
use super::super::error::PromqlError;
use super::super::selector::advance_window;
use super::super::value::{check_steps, Grid, LabelMemo, RangeData, RangeSeries, StepVec};
use super::super::value::{step_index, SeriesVec, StepSeries};

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
    /// Index of `samples[0]` among the series' float samples: for what a function keeps
    /// about a series as its windows move forward (`rate`'s counter resets).
    pub first_sample: usize,
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
/// output. `f` may add annotations; it runs on several threads for large inputs (see
/// [`range_apply_any`]).
pub(crate) fn range_apply(
    ev: &mut Evaluator<'_>,
    rd: &RangeData,
    grid: &Grid,
    drop_name: bool,
    f: impl Fn(&Window<'_>, &mut Annotations) -> Result<Option<f64>, PromqlError> + Sync,
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
            Ok(f(w, notes_in)?.map(Out::Float))
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

/// Fewest sample visits (see [`sample_visits`]) worth splitting a range function's series
/// over threads: below, starting threads costs more than it saves. (Counting samples
/// instead left `topk(5, avg_over_time(x[10m]))` over 6 h of 207 series on one thread: 99k
/// samples, but each one in 10 windows.)
const MIN_PARALLEL_VISITS: usize = 200_000;

/// How many windows' worth of samples `f` goes through: every sample is in about
/// `range ÷ step` consecutive windows (at least one, at most every step's; every step's
/// under `@`, where all windows are the same).
fn sample_visits(rd: &RangeData, grid: &Grid, samples: usize) -> usize {
    let steps = grid.len().max(1);
    let windows_per_sample = if rd.at_ms.is_some() || grid.step <= 0 {
        steps
    } else {
        let per = rd.range_ms.max(0) / grid.step;
        usize::try_from(per).unwrap_or(usize::MAX).clamp(1, steps)
    };
    samples.saturating_mul(windows_per_sample)
}

/// Applies `f` to every series' window (floats and histograms) at every step; `f` may add
/// annotations to `notes`. Windows with no sample of either kind are skipped. The result is
/// held series by series, as it is computed. Runs on several threads for large inputs
/// (see [`range_apply_series`]).
pub(crate) fn range_apply_any(
    ev: &Evaluator<'_>,
    rd: &RangeData,
    grid: &Grid,
    drop_name: bool,
    f: impl Fn(&Window<'_>, &mut Annotations) -> Result<Option<Out>, PromqlError> + Sync,
    notes: &mut Annotations,
) -> Result<SeriesVec, PromqlError> {
    range_apply_series(ev, rd, grid, drop_name, notes, |run, s, notes| {
        run.walk_windows(s, &f, notes)
    })
}

/// Computes every series' output with `per_series` (given the series, its output labels
/// and where its index is, and the notes to add to), dropping series with no output.
///
/// Series are independent, so a large input is split into contiguous runs of series, one
/// per thread (at most [`Evaluator::workers`]); the runs' results and annotations are put
/// back in series order, so the answer, its order and its annotations are those of one
/// thread. Output labels are mapped before the split, on this thread (one label memo).
pub(crate) fn range_apply_series(
    ev: &Evaluator<'_>,
    rd: &RangeData,
    grid: &Grid,
    drop_name: bool,
    notes: &mut Annotations,
    per_series: impl Fn(&Run<'_>, OneSeries<'_>, &mut Annotations) -> Result<StepSeries, PromqlError> + Sync,
) -> Result<SeriesVec, PromqlError> {
    let mut memo = LabelMemo::default();
    let mut labels: Vec<Arc<Labels>> = Vec::with_capacity(rd.series.len());
    let mut samples = 0usize;
    for s in &rd.series {
        labels.push(if drop_name {
            memo.map(&s.labels, |l| l.without_metric_name())
        } else {
            s.labels.clone()
        });
        samples += s.samples.len() + s.histograms.len();
    }
    let workers = if sample_visits(rd, grid, samples) < MIN_PARALLEL_VISITS {
        1
    } else {
        ev.workers().min(rd.series.len()).max(1)
    };
    let run = Run {
        rd,
        grid,
        deadline: ev.deadline(),
    };
    let per_worker = rd.series.len().div_ceil(workers).max(1);
    let mut parts: Vec<Result<Applied, PromqlError>> = Vec::with_capacity(workers);
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        let mut runs = rd.series.chunks(per_worker).zip(labels.chunks(per_worker));
        // The first run on this thread, the others on theirs.
        let first = runs.next();
        for (series, labels) in runs {
            let (run, per_series) = (&run, &per_series);
            handles.push(scope.spawn(move || run.apply(series, labels, per_series)));
        }
        if let Some((series, labels)) = first {
            parts.push(run.apply(series, labels, &per_series));
        }
        for h in handles {
            parts.push(
                h.join()
                    .unwrap_or_else(|_| Err(PromqlError::exec("a range function's worker thread failed"))),
            );
        }
    });
    let mut out: Vec<StepSeries> = Vec::with_capacity(rd.series.len());
    for part in parts {
        let applied = part?;
        out.extend(applied.series);
        notes.merge(applied.notes);
    }
    Ok(SeriesVec {
        series: out,
        steps: grid.len(),
        collided: memo.collided,
    })
}

/// What one thread of [`range_apply_series`] works with.
pub(crate) struct Run<'a> {
    rd: &'a RangeData,
    grid: &'a Grid,
    deadline: Deadline<'a>,
}

/// One series as [`range_apply_series`] hands it over.
pub(crate) struct OneSeries<'a> {
    pub series: &'a RangeSeries,
    /// Its output labels.
    pub labels: &'a Arc<Labels>,
}

/// What one run of series produced.
struct Applied {
    series: Vec<StepSeries>,
    notes: Annotations,
}

impl Run<'_> {
    /// `per_series` over `series` (a run of the range vector's series), with their output
    /// `labels`.
    fn apply(
        &self,
        series: &[RangeSeries],
        labels: &[Arc<Labels>],
        per_series: &(impl Fn(&Run<'_>, OneSeries<'_>, &mut Annotations) -> Result<StepSeries, PromqlError>
              + Sync),
    ) -> Result<Applied, PromqlError> {
        let mut notes = Annotations::default();
        let mut out: Vec<StepSeries> = Vec::with_capacity(series.len());
        for (s, label) in series.iter().zip(labels) {
            let one = OneSeries {
                series: s,
                labels: label,
            };
            let values = per_series(self, one, &mut notes)?;
            if !values.is_empty() {
                out.push(values);
            }
            self.deadline.check()?;
        }
        Ok(Applied { series: out, notes })
    }

    /// `f` over every window of one series holding a sample of either kind.
    pub(crate) fn walk_windows(
        &self,
        one: OneSeries<'_>,
        f: &impl Fn(&Window<'_>, &mut Annotations) -> Result<Option<Out>, PromqlError>,
        notes: &mut Annotations,
    ) -> Result<StepSeries, PromqlError> {
        let (rd, grid, s) = (self.rd, self.grid, one.series);
        let mut values = StepSeries::new(one.labels.clone());
        let steps = steps_seeing(rd, grid, s);
        values.reserve_floats(float_outputs_at_most(rd, grid, s, steps.len()));
        let (mut lo, mut hi) = (0usize, 0usize);
        let (mut hlo, mut hhi) = (0usize, 0usize);
        for i in steps {
            let t = grid.t(i);
            let (start_t, end) = rd.bounds(t);
            let (first, _) = rd.window_of((start_t, end));
            advance_window(&s.samples, first, end, &mut lo, &mut hi);
            advance_hist_window(&s.histograms, first, end, &mut hlo, &mut hhi);
            let samples = s.samples.get(lo..hi).unwrap_or(&[]);
            let histograms = s.histograms.get(hlo..hhi).unwrap_or(&[]);
            if samples.is_empty() && histograms.is_empty() {
                continue;
            }
            let w = Window {
                samples,
                histograms,
                labels: &s.labels,
                start: start_t,
                end,
                t,
                step: i,
                first_sample: lo,
            };
            match f(&w, notes)? {
                Some(Out::Float(v)) => values.push_float(step_index(i)?, v),
                Some(Out::Histogram(h)) => values.push_histogram(step_index(i)?, Arc::new(h)),
                None => {}
            }
        }
        Ok(values)
    }

    /// The windows of a series' float samples that hold at least one, as (step, the
    /// samples' index range), in step order, into `out` (cleared first).
    pub(crate) fn float_windows(&self, s: &RangeSeries, out: &mut Vec<(usize, Range<usize>)>) {
        out.clear();
        let (rd, grid) = (self.rd, self.grid);
        let (mut lo, mut hi) = (0usize, 0usize);
        for i in steps_seeing(rd, grid, s) {
            let (first, end) = rd.window(grid.t(i));
            advance_window(&s.samples, first, end, &mut lo, &mut hi);
            if lo < hi {
                out.push((i, lo..hi));
            }
        }
    }
}

/// The steps whose windows may hold a sample of `s`: from the first whose window ends at
/// or after its first sample to the last whose window starts at or before its last one.
/// Windows move forward with the steps (or stay put under `@`), so both ends are found by
/// bisection; steps outside hold nothing and are not walked (a series that exists for part
/// of a long range costs only that part).
fn steps_seeing(rd: &RangeData, grid: &Grid, s: &RangeSeries) -> std::ops::Range<usize> {
    let n = grid.len();
    let first_t = match (s.samples.first(), s.histograms.first()) {
        (Some(a), Some(b)) => a.timestamp_ms.min(b.timestamp_ms),
        (Some(a), None) => a.timestamp_ms,
        (None, Some(b)) => b.timestamp_ms,
        (None, None) => return 0..0,
    };
    let last_t = match (s.samples.last(), s.histograms.last()) {
        (Some(a), Some(b)) => a.timestamp_ms.max(b.timestamp_ms),
        (Some(a), None) => a.timestamp_ms,
        (None, Some(b)) => b.timestamp_ms,
        (None, None) => return 0..0,
    };
    let from = partition_point(n, |i| rd.window(grid.t(i)).1 < first_t);
    let to = partition_point(n, |i| rd.window(grid.t(i)).0 <= last_t);
    from..to.max(from)
}

/// How many float values a series can give over `steps` steps: one per step, but no more
/// than its samples' windows (each sample is in at most `range ÷ step + 1` of them), so a
/// sparse series over a long range does not reserve a value for every step (the values a
/// query holds are budgeted as they are computed, not as they are reserved).
fn float_outputs_at_most(rd: &RangeData, grid: &Grid, s: &RangeSeries, steps: usize) -> usize {
    if s.samples.is_empty() {
        return 0;
    }
    if grid.step <= 0 || rd.at_ms.is_some() {
        // One window for every step (under `@`, the same one).
        return steps;
    }
    let per_sample = usize::try_from(rd.range_ms.max(0) / grid.step).unwrap_or(usize::MAX);
    steps.min(s.samples.len().saturating_mul(per_sample.saturating_add(1)))
}

/// The first index in `0..n` where `before` turns false (`before` is true on a prefix).
fn partition_point(n: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
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

#[cfg(test)]
mod tests {
    use super::*;

    fn range_data(range_ms: i64, at_ms: Option<i64>) -> RangeData {
        RangeData {
            series: Vec::new(),
            range_ms,
            offset_ms: 0,
            at_ms,
            left_open: true,
            aggregate: None,
        }
    }

    /// A sample is counted once per window it falls in: `range ÷ step` of them, at least
    /// one, at most every step's; under `@` every step's window is the same one.
    #[test]
    fn samples_count_once_per_window_they_fall_in() {
        let six_hours = Grid {
            start: 0,
            end: 6 * 3_600_000,
            step: 60_000,
        };
        assert_eq!(six_hours.len(), 361);
        // topk(5, avg_over_time(x[10m])) over 6 h of 207 series × 480 samples.
        let ten_minutes = range_data(600_000, None);
        assert_eq!(sample_visits(&ten_minutes, &six_hours, 99_360), 993_600);
        assert!(sample_visits(&ten_minutes, &six_hours, 99_360) >= MIN_PARALLEL_VISITS);
        // A range shorter than the step: each sample in one window at most.
        assert_eq!(sample_visits(&range_data(30_000, None), &six_hours, 5_000), 5_000);
        // A range longer than the whole grid: each sample in every step's window.
        assert_eq!(
            sample_visits(&range_data(86_400_000, None), &six_hours, 10),
            3_610
        );
        assert_eq!(
            sample_visits(&range_data(600_000, Some(0)), &six_hours, 10),
            3_610
        );
        let instant = Grid::instant(1_000);
        assert_eq!(sample_visits(&ten_minutes, &instant, 40), 40);
    }
}
