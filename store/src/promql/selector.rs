//! Selecting data: each selector node reads storage once for the whole grid (from the first
//! step's window start to the last step's end) and the steps are then answered by walking the
//! sorted samples, never by one storage call per step.

use std::sync::Arc;

use foldhash::HashMap;
use promql_parser::parser::{MatrixSelector, VectorSelector};

use crate::model::{is_stale_nan, LabelMatcher, Labels, Sample, SeriesSamples};
use crate::query::{Queryable, ReadError, ReadStats};
use crate::window::SeriesWindows;

use super::downsampled::{self, Aggr, MIN_RESOLUTION_MS};
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

/// A slice takes the rest of the range with it when that rest is shorter than this part
/// of a slice: a 6 h dashboard's `rate(x[5m])` reads 6 h 5 min, once rather than as 6 h
/// and then 5 min (a second pass over the head's series and a merge of the two).
const TAIL_PER_SLICE: i64 = 4;

/// What a selector reads a series as: raw samples or a downsampled read's windows.
trait Loaded: Sized {
    fn labels(&self) -> &Labels;
    /// Samples (or windows) it holds, for the limits.
    fn size(&self) -> usize;
    /// Appends the data of the same series from a later slice.
    fn append(&mut self, later: Self);
}

impl Loaded for SeriesSamples {
    fn labels(&self) -> &Labels {
        &self.labels
    }
    fn size(&self) -> usize {
        self.samples.len() + self.histograms.len()
    }
    fn append(&mut self, later: Self) {
        self.samples.extend(later.samples);
        self.histograms.extend(later.histograms);
    }
}

impl Loaded for SeriesWindows {
    fn labels(&self) -> &Labels {
        &self.labels
    }
    fn size(&self) -> usize {
        self.windows.len() + self.samples.len() + self.histograms.len()
    }
    fn append(&mut self, later: Self) {
        self.windows.extend(later.windows);
        self.samples.extend(later.samples);
        self.histograms.extend(later.histograms);
    }
}

/// Reads every series matching `vs` with samples in `[start, end]`, sorted by labels; `or`
/// groups are merged (the first group's copy of a series wins).
fn load(
    ev: &mut Evaluator<'_>,
    vs: &VectorSelector,
    start: i64,
    end: i64,
) -> Result<Vec<SeriesSamples>, PromqlError> {
    load_with(ev, vs, start, end, |q, g, from, to| q.select_counted(g, from, to))
}

/// [`load`] through a downsampled read: windows up to `resolution_ms` wide (at least
/// [`MIN_RESOLUTION_MS`] to find any) where there are some, raw samples elsewhere.
fn load_windows(
    ev: &mut Evaluator<'_>,
    vs: &VectorSelector,
    start: i64,
    end: i64,
    resolution_ms: i64,
) -> Result<Vec<SeriesWindows>, PromqlError> {
    load_with(ev, vs, start, end, |q, g, from, to| {
        let read = q.select_windows(g, from, to, resolution_ms)?;
        Ok((read.series, read.stats))
    })
}

/// The slicing and merging of [`load`] over a read function.
fn load_with<T: Loaded>(
    ev: &mut Evaluator<'_>,
    vs: &VectorSelector,
    start: i64,
    end: i64,
    read: impl Fn(&dyn Queryable, &[LabelMatcher], i64, i64) -> Result<(Vec<T>, ReadStats), ReadError>,
) -> Result<Vec<T>, PromqlError> {
    let groups = selector_matchers(vs, ev.compat)?;
    let span = i128::from(end) - i128::from(start);
    let width = i128::from(MIN_SLICE_MS).max(span / i128::from(MAX_SLICES) + 1);
    // The widest a slice gets by taking a short rest of the range with it.
    let widest = width + width / i128::from(TAIL_PER_SLICE);
    if groups.len() == 1 && span < widest {
        // One read: nothing to merge.
        let mut out = Vec::new();
        for g in &groups {
            let (series, stats) = read(ev.storage(), g, start, end)?;
            ev.read_stats.add(&stats);
            out = series;
        }
        let samples = out.iter().map(Loaded::size).sum();
        ev.account_loaded(out.len(), samples)?;
        return Ok(out);
    }
    let mut out: Vec<T> = Vec::new();
    // Series index by labels, and the slice that last added samples to it (foldhash: the
    // default SipHash was ~2 % of a large selector's load).
    let mut index: HashMap<Labels, (usize, usize)> = HashMap::default();
    let mut from = start;
    let mut slice = 0usize;
    loop {
        let to = if i128::from(end) - i128::from(from) >= widest {
            i64::try_from(i128::from(from) + width - 1).unwrap_or(end)
        } else {
            end
        };
        slice += 1;
        let (mut new_series, mut samples) = (0usize, 0usize);
        for g in &groups {
            let (series, stats) = read(ev.storage(), g, from, to)?;
            ev.read_stats.add(&stats);
            for s in series {
                match index.get_mut(s.labels()) {
                    // Already read from an earlier `or` group in this slice.
                    Some((_, last)) if *last == slice => {}
                    Some((i, last)) => {
                        *last = slice;
                        if let Some(dst) = out.get_mut(*i) {
                            samples += s.size();
                            dst.append(s);
                        }
                    }
                    None => {
                        new_series += 1;
                        samples += s.size();
                        index.insert(s.labels().clone(), (out.len(), slice));
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
    out.sort_by(|a, b| a.labels().cmp(b.labels()));
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
    let mut lookback = ev.lookback_ms;
    let left_open = ev.compat.left_open();
    let reach = vector_reach(ev, vs, grid);
    let data = if reach.resolution >= MIN_RESOLUTION_MS {
        let before = std::mem::take(&mut ev.read_stats);
        let loaded = load_windows(ev, vs, reach.from, reach.to, reach.resolution);
        let mine = std::mem::replace(&mut ev.read_stats, before);
        ev.read_stats.add(&mine);
        let mut windows = loaded?;
        lookback = lookback.saturating_add(mine.resolution_ms);
        let mut out = Vec::with_capacity(windows.len());
        for s in windows.iter_mut() {
            out.push(SeriesSamples {
                labels: s.labels.clone(),
                samples: downsampled::series_samples(s, Aggr::Last),
                histograms: std::mem::take(&mut s.histograms),
            });
        }
        out
    } else {
        load(ev, vs, reach.from, reach.to)?
    };
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

/// What an instant vector selector reads over a grid: the samples in `[from, to]`, from
/// downsampled windows up to `resolution` wide when that is at least
/// [`MIN_RESOLUTION_MS`], else raw.
pub(crate) struct VectorReach {
    pub from: i64,
    pub to: i64,
    pub resolution: i64,
}

/// Where `vs` reads over `grid` (each step looks back from its time, or from `@`, less the
/// offset): one function for the evaluation and the read plan, so both name one range.
pub(crate) fn vector_reach(ev: &Evaluator<'_>, vs: &VectorSelector, grid: &Grid) -> VectorReach {
    let offset = offset_ms(vs.offset.as_ref());
    let at = at_ms(vs.at.as_ref(), ev.query_start, ev.query_end);
    let first_ref = at.unwrap_or(grid.start).saturating_sub(offset);
    let last_ref = at.unwrap_or(grid.end).saturating_sub(offset);
    // Downsampled data only for grids of several steps (not instant queries), one window
    // per step at least; the lookback then reaches back one window more.
    let resolution = if grid.len() > 1 {
        downsampled::max_resolution(Some(grid.step), None, ev.max_source_resolution_ms)
    } else {
        0
    };
    let back = if resolution >= MIN_RESOLUTION_MS {
        ev.lookback_ms.saturating_add(resolution)
    } else {
        ev.lookback_ms
    };
    VectorReach {
        from: first_ref.saturating_sub(back),
        to: last_ref,
        resolution,
    }
}

/// The range vector range selector `ms` makes, before any series is read: its range,
/// offset, `@` and window ends.
pub(crate) fn range_template(ev: &Evaluator<'_>, ms: &MatrixSelector) -> RangeData {
    let vs = &ms.vs;
    RangeData {
        series: Vec::new(),
        range_ms: duration_ms(&ms.range),
        offset_ms: offset_ms(vs.offset.as_ref()),
        at_ms: at_ms(vs.at.as_ref(), ev.query_start, ev.query_end),
        left_open: ev.compat.left_open(),
        aggregate: None,
    }
}

/// Evaluates a range selector: loads every sample any step's window needs, stale markers
/// dropped (range functions ignore them, as in Prometheus).
pub(crate) fn eval_matrix_selector(
    ev: &mut Evaluator<'_>,
    ms: &MatrixSelector,
    grid: &Grid,
) -> Result<RangeData, PromqlError> {
    let mut rd = range_template(ev, ms);
    let hint = ev.read_hint.take();
    if grid.len() == 0 {
        return Ok(rd);
    }
    if let Some((aggr, ratio)) = hint {
        if let Some(mut both) = eval_matrix_windows(ev, ms, grid, &[aggr], ratio)? {
            if let Some(rd) = both.pop() {
                return Ok(rd);
            }
        }
    }
    let (start, end) = rd.reach(grid);
    for mut s in load(ev, &ms.vs, start, end)? {
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

/// Evaluates a range selector from downsampled data when its function, step and range
/// allow windows (see `downsampled`): one range vector per aggregate of `aggrs`, all from
/// one read, each with the same series and timestamps; or, when the read found no window,
/// one range vector of the raw samples (`aggregate` None). `None` when the selector must
/// read raw data.
pub(crate) fn eval_matrix_windows(
    ev: &mut Evaluator<'_>,
    ms: &MatrixSelector,
    grid: &Grid,
    aggrs: &[Aggr],
    ratio: i64,
) -> Result<Option<Vec<RangeData>>, PromqlError> {
    let range = duration_ms(&ms.range);
    let step = (grid.len() > 1).then_some(grid.step);
    let resolution = downsampled::max_resolution(step, Some((range, ratio)), ev.max_source_resolution_ms);
    if resolution < MIN_RESOLUTION_MS || grid.len() == 0 {
        return Ok(None);
    }
    let template = range_template(ev, ms);
    let (start, end) = template.reach(grid);
    let loaded = load_windows(ev, &ms.vs, start, end, resolution)?;
    // No downsampled data in range: the raw samples, evaluated exactly as without
    // downsampling (one range vector, `aggregate` None).
    let raw_only = loaded.iter().all(|s| s.windows.is_empty());
    let aggrs: &[Option<Aggr>] = if raw_only {
        &[None]
    } else {
        &aggrs.iter().map(|a| Some(*a)).collect::<Vec<_>>()
    };
    let mut out = Vec::with_capacity(aggrs.len());
    for &aggr in aggrs {
        let mut rd = template.clone();
        rd.aggregate = aggr;
        for s in &loaded {
            let mut s = s.clone();
            let mut samples = match aggr {
                Some(aggr) => downsampled::series_samples(&mut s, aggr),
                None => std::mem::take(&mut s.samples),
            };
            samples.retain(|p| !is_stale_nan(p.value));
            s.histograms.retain(|p| !p.h.is_stale());
            if samples.is_empty() && s.histograms.is_empty() {
                continue;
            }
            rd.series.push(RangeSeries {
                labels: Arc::new(s.labels),
                samples,
                histograms: s.histograms,
            });
        }
        out.push(rd);
    }
    Ok(Some(out))
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
