//! Selecting data: each selector node reads storage once for the whole grid (from the first
//! step's window start to the last step's end) and the steps are then answered by walking the
//! sorted samples, never by one storage call per step.

use std::collections::BTreeMap;
use std::sync::Arc;

use promql_parser::parser::{MatrixSelector, VectorSelector};

use crate::model::{is_stale_nan, Labels, Sample, SeriesSamples};

use super::engine::Evaluator;
use super::error::PromqlError;
use super::parse::{at_ms, duration_ms, offset_ms, selector_matchers};
use super::value::{check_steps, Elem, Grid, LabelMemo, RangeData, RangeSeries, StepVec};

/// Reads every series matching `vs` with samples in `[start, end]`; `or` groups are merged.
fn load(
    ev: &mut Evaluator<'_>,
    vs: &VectorSelector,
    start: i64,
    end: i64,
) -> Result<Vec<SeriesSamples>, PromqlError> {
    let groups = selector_matchers(vs)?;
    let mut out: Vec<SeriesSamples> = Vec::new();
    if groups.len() == 1 {
        for g in &groups {
            out = ev.q.select(g, start, end)?;
        }
    } else {
        let mut merged: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
        for g in &groups {
            for s in ev.q.select(g, start, end)? {
                merged.entry(s.labels).or_insert(s.samples);
            }
        }
        for (labels, samples) in merged {
            out.push(SeriesSamples { labels, samples });
        }
    }
    let mut total = 0usize;
    for s in &out {
        total += s.samples.len();
    }
    ev.account_loaded(out.len(), total)?;
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
/// lookback delta, unless that sample is a stale marker.
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
    let data = load(ev, vs, first_ref.saturating_sub(lookback), last_ref)?;
    let mut memo = LabelMemo::default();
    for series in data {
        let mut labels = Arc::new(series.labels);
        if pick == Pick::Timestamp {
            labels = memo.map(&labels, |l| l.without_metric_name());
        }
        let samples = series.samples;
        let mut idx = 0usize;
        for (i, slot) in out.iter_mut().enumerate() {
            let r = at.unwrap_or(grid.t(i)).saturating_sub(offset);
            while idx < samples.len() && samples[idx].timestamp_ms <= r {
                idx += 1;
            }
            let Some(s) = idx.checked_sub(1).and_then(|j| samples.get(j)) else {
                continue;
            };
            if s.timestamp_ms < r.saturating_sub(lookback) || is_stale_nan(s.value) {
                continue;
            }
            let v = match pick {
                Pick::Value => s.value,
                Pick::Timestamp => s.timestamp_ms as f64 / 1000.0,
            };
            slot.push(Elem {
                labels: labels.clone(),
                v,
            });
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
    };
    if grid.len() == 0 {
        return Ok(rd);
    }
    let (start, _) = rd.window(grid.start);
    let (_, end) = rd.window(grid.end);
    for mut s in load(ev, vs, start, end)? {
        s.samples.retain(|p| !is_stale_nan(p.value));
        if s.samples.is_empty() {
            continue;
        }
        rd.series.push(RangeSeries {
            labels: Arc::new(s.labels),
            samples: s.samples,
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
