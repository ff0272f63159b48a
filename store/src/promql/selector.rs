//! Selecting data: each selector node reads storage once for the whole grid (from the first
//! step's window start to the last step's end) and the steps are then answered by walking the
//! sorted samples, never by one storage call per step.

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::{MatrixSelector, VectorSelector};

use crate::model::{is_stale_nan, Labels, Sample, SeriesSamples};

use super::engine::Evaluator;
use super::error::PromqlError;
use super::parse::{at_ms, duration_ms, offset_ms, selector_matchers};
use super::value::{check_steps, Elem, Grid, LabelMemo, RangeData, RangeSeries, StepVec};

/// Shortest time slice read from storage at once. A selector's range is read slice by slice
/// (at most [`MAX_SLICES`] of them) and counted against the sample limit, the deadline and
/// the cancel flag after each: a query over the limit fails after reading one slice past
/// it, not after materialising everything.
const MIN_SLICE_MS: i64 = 6 * 3_600_000;

/// Most slices one selector's range is cut into (wide ranges get wider slices).
const MAX_SLICES: i64 = 64;

/// Reads every series matching `vs` with samples in `[start, end]`, sorted by labels; `or`
/// groups are merged (the first group's copy of a series wins).
fn load(
    ev: &mut Evaluator<'_>,
    vs: &VectorSelector,
    start: i64,
    end: i64,
) -> Result<Vec<SeriesSamples>, PromqlError> {
    let groups = selector_matchers(vs, ev.compat)?;
    let span = i128::from(end) - i128::from(start);
    let width = i128::from(MIN_SLICE_MS).max(span / i128::from(MAX_SLICES) + 1);
    if groups.len() == 1 && span < width {
        // One read: nothing to merge.
        let mut out = Vec::new();
        for g in &groups {
            out = ev.q.select(g, start, end)?;
        }
        let samples = out.iter().map(|s| s.samples.len() + s.histograms.len()).sum();
        ev.account_loaded(out.len(), samples)?;
        return Ok(out);
    }
    let mut out: Vec<SeriesSamples> = Vec::new();
    // Series index by labels, and the slice that last added samples to it.
    let mut index: HashMap<Labels, (usize, usize)> = HashMap::new();
    let mut from = start;
    let mut slice = 0usize;
    loop {
        let to = if i128::from(end) - i128::from(from) >= width {
            i64::try_from(i128::from(from) + width - 1).unwrap_or(end)
        } else {
            end
        };
        slice += 1;
        let (mut new_series, mut samples) = (0usize, 0usize);
        for g in &groups {
            for s in ev.q.select(g, from, to)? {
                match index.get_mut(&s.labels) {
                    // Already read from an earlier `or` group in this slice.
                    Some((_, last)) if *last == slice => {}
                    Some((i, last)) => {
                        *last = slice;
                        if let Some(dst) = out.get_mut(*i) {
                            samples += s.samples.len() + s.histograms.len();
                            dst.samples.extend(s.samples);
                            dst.histograms.extend(s.histograms);
                        }
                    }
                    None => {
                        new_series += 1;
                        samples += s.samples.len() + s.histograms.len();
                        index.insert(s.labels.clone(), (out.len(), slice));
                        out.push(s);
                    }
                }
            }
        }
        ev.account_loaded(new_series, samples)?;
        if to >= end {
            break;
        }
        from = to + 1;
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// What a vector selector yields per step: the sample's value, or (for `timestamp()`) the
/// sample's own timestamp in seconds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    Value,
    Timestamp,
}

/// Evaluates an instant vector selector: at each step the newest sample no older than the
/// lookback delta (exactly the lookback delta old is too old under Prometheus 3), unless that
/// sample is a stale marker.
pub(crate) fn eval_vector_selector(
    ev: &mut Evaluator<'_>,
    vs: &VectorSelector,
    grid: &Grid,
    pick: Pick,
) -> Result<Vec<StepVec>, PromqlError> {
    let n = grid.len();
    let mut out: Vec<StepVec> = vec![Vec::new(); n];
    if n == 0 {
        return Ok(out);
    }
    let offset = offset_ms(vs.offset.as_ref());
    let at = at_ms(vs.at.as_ref(), ev.query_start, ev.query_end);
    let first_ref = at.unwrap_or(grid.start).saturating_sub(offset);
    let last_ref = at.unwrap_or(grid.end).saturating_sub(offset);
    let lookback = ev.lookback_ms;
    let left_open = ev.compat.left_open();
    let data = load(ev, vs, first_ref.saturating_sub(lookback), last_ref)?;
    let mut memo = LabelMemo::default();
    for series in data {
        let mut labels = Arc::new(series.labels);
        if pick == Pick::Timestamp {
            labels = memo.map(&labels, |l| l.without_metric_name());
        }
        let samples = series.samples;
        let hists = series.histograms;
        let (mut idx, mut hidx) = (0usize, 0usize);
        for (i, slot) in out.iter_mut().enumerate() {
            let r = at.unwrap_or(grid.t(i)).saturating_sub(offset);
            while idx < samples.len() && samples[idx].timestamp_ms <= r {
                idx += 1;
            }
            while hidx < hists.len() && hists[hidx].timestamp_ms <= r {
                hidx += 1;
            }
            let float = idx.checked_sub(1).and_then(|j| samples.get(j));
            let hist = hidx.checked_sub(1).and_then(|j| hists.get(j));
            // The newer of the two kinds is the series' current sample.
            let (ts, value, h) = match (float, hist) {
                (Some(f), Some(h)) if f.timestamp_ms > h.timestamp_ms => {
                    (f.timestamp_ms, Some(f.value), None)
                }
                (_, Some(h)) => (h.timestamp_ms, None, Some(&h.h)),
                (Some(f), None) => (f.timestamp_ms, Some(f.value), None),
                (None, None) => continue,
            };
            let oldest = r.saturating_sub(lookback);
            let too_old = if left_open { ts <= oldest } else { ts < oldest };
            let stale = value.is_some_and(is_stale_nan) || h.is_some_and(|h| h.is_stale());
            if too_old || stale {
                continue;
            }
            let elem = match (pick, h) {
                (Pick::Timestamp, _) => Elem::float(labels.clone(), ts as f64 / 1000.0),
                (Pick::Value, Some(h)) => Elem::histogram(labels.clone(), h.clone()),
                (Pick::Value, None) => Elem::float(labels.clone(), value.unwrap_or(f64::NAN)),
            };
            slot.push(elem);
        }
        ev.check_deadline()?;
    }
    check_steps(&memo, &out)?;
    Ok(out)
}

/// Evaluates a range selector: loads every sample any step's window needs, stale markers
/// dropped (range functions ignore them, as in Prometheus).
pub(crate) fn eval_matrix_selector(
    ev: &mut Evaluator<'_>,
    ms: &MatrixSelector,
    grid: &Grid,
) -> Result<RangeData, PromqlError> {
    let vs = &ms.vs;
    let offset = offset_ms(vs.offset.as_ref());
    let at = at_ms(vs.at.as_ref(), ev.query_start, ev.query_end);
    let range = duration_ms(&ms.range);
    let mut rd = RangeData {
        series: Vec::new(),
        range_ms: range,
        offset_ms: offset,
        at_ms: at,
        left_open: ev.compat.left_open(),
    };
    if grid.len() == 0 {
        return Ok(rd);
    }
    let (start, _) = rd.window(grid.start);
    let (_, end) = rd.window(grid.end);
    for mut s in load(ev, vs, start, end)? {
        s.samples.retain(|p| !is_stale_nan(p.value));
        s.histograms.retain(|p| !p.h.is_stale());
        if s.samples.is_empty() && s.histograms.is_empty() {
            continue;
        }
        rd.series.push(RangeSeries {
            labels: Arc::new(s.labels),
            samples: s.samples,
            histograms: s.histograms,
        });
    }
    Ok(rd)
}

/// Index range `[lo, hi)` of the samples inside `[start, end]`, advancing cursors that only
/// move forward (windows of successive steps never move backwards).
pub(crate) fn advance_window(samples: &[Sample], start: i64, end: i64, lo: &mut usize, hi: &mut usize) {
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
