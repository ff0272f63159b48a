//! Intermediate values of an evaluation: every expression is evaluated once over the whole
//! step grid, so a vector is one list of samples per step (or, from range functions, one
//! list of steps per series: [`SeriesVec`]) and a range vector is the raw samples of each
//! series plus the window each step looks at.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::model::{FloatHistogram, HistogramSample, Labels, Sample, SeriesSamples};

use super::error::PromqlError;

/// The evaluation timestamps of a query: `start, start+step, …, ≤ end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Grid {
    /// A grid with the single timestamp `t` (an instant query).
    pub fn instant(t: i64) -> Grid {
        Grid {
            start: t,
            end: t,
            step: 1,
        }
    }

    /// Number of steps (0 when `start > end`).
    pub fn len(&self) -> usize {
        if self.start > self.end || self.step <= 0 {
            return 0;
        }
        let span = i128::from(self.end) - i128::from(self.start);
        usize::try_from(span / i128::from(self.step) + 1).unwrap_or(usize::MAX)
    }

    /// Timestamp of step `i`.
    pub fn t(&self, i: usize) -> i64 {
        let i = i64::try_from(i).unwrap_or(i64::MAX);
        self.start.saturating_add(self.step.saturating_mul(i))
    }
}

/// One sample of an instant vector at one step: a float (`h` is `None`) or a native
/// histogram (`h` holds it and `v` is unused, 0). Labels are shared between steps.
#[derive(Debug, Clone)]
pub(crate) struct Elem {
    pub labels: Arc<Labels>,
    pub v: f64,
    pub h: Option<Arc<FloatHistogram>>,
}

impl Elem {
    /// A float sample.
    pub fn float(labels: Arc<Labels>, v: f64) -> Elem {
        Elem { labels, v, h: None }
    }

    /// A histogram sample.
    pub fn histogram(labels: Arc<Labels>, h: Arc<FloatHistogram>) -> Elem {
        Elem {
            labels,
            v: 0.0,
            h: Some(h),
        }
    }
}

/// An instant vector at one step.
pub(crate) type StepVec = Vec<Elem>;

/// One series of a range vector: all samples any step's window may need, stale markers
/// removed; float and histogram samples apart, each in time order.
#[derive(Debug, Clone)]
pub(crate) struct RangeSeries {
    pub labels: Arc<Labels>,
    pub samples: Vec<Sample>,
    pub histograms: Vec<HistogramSample>,
}

/// A range vector (range selector or subquery) over a grid: step `t` sees the samples in
/// `(end - range, end]` (Prometheus 3, `left_open`) or `[end - range, end]` (Prometheus 2.x)
/// where `end = (at or t) - offset`.
#[derive(Debug, Clone)]
pub(crate) struct RangeData {
    pub series: Vec<RangeSeries>,
    pub range_ms: i64,
    pub offset_ms: i64,
    pub at_ms: Option<i64>,
    /// True when a sample exactly at `end - range` is outside the window.
    pub left_open: bool,
    /// The aggregate the float samples carry when they were read from downsampled
    /// windows (one sample per window, see `downsampled`); `None` for raw samples.
    pub aggregate: Option<super::downsampled::Aggr>,
}

impl RangeData {
    /// The `(start, end)` of the window step time `t` looks at, as stated by the query
    /// (`end - range`, `end`): what `rate` extrapolates to.
    pub fn bounds(&self, t: i64) -> (i64, i64) {
        let end = self.at_ms.unwrap_or(t).saturating_sub(self.offset_ms);
        (end.saturating_sub(self.range_ms), end)
    }

    /// The first and last timestamps (both inclusive) a sample of step time `t`'s window
    /// may have.
    pub fn window(&self, t: i64) -> (i64, i64) {
        self.window_of(self.bounds(t))
    }

    /// The first and last timestamps (both inclusive) of the window with `bounds` (as
    /// [`RangeData::bounds`] gives them): for callers that need both.
    pub fn window_of(&self, (start, end): (i64, i64)) -> (i64, i64) {
        if self.left_open {
            (start.saturating_add(1), end)
        } else {
            (start, end)
        }
    }

    /// The first and last timestamps (both inclusive) a sample of any step of `grid` may
    /// have: what a range over that grid reads.
    pub fn reach(&self, grid: &Grid) -> (i64, i64) {
        (self.window(grid.start).0, self.window(grid.end).1)
    }
}

/// The value of an expression over the whole grid.
#[derive(Debug)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    /// One instant vector per step.
    Vector(Vec<StepVec>),
    /// One instant vector per step, held series by series (what range functions
    /// produce; see [`SeriesVec`]).
    Series(SeriesVec),
    /// A range vector.
    Matrix(RangeData),
    /// A string literal.
    String(String),
}

impl Val {
    /// The PromQL type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Vector(_) | Val::Series(_) => "instant vector",
            Val::Matrix(_) => "range vector",
            Val::String(_) => "string",
        }
    }

    /// The per-step vectors, or an error naming what was found instead.
    pub fn into_vector(self, what: &str) -> Result<Vec<StepVec>, PromqlError> {
        match self {
            Val::Vector(v) => Ok(v),
            Val::Series(sv) => sv.into_steps(),
            other => Err(PromqlError::exec(format!(
                "{what}: expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// The per-step scalars, or an error naming what was found instead.
    pub fn into_scalar(self, what: &str) -> Result<Vec<f64>, PromqlError> {
        match self {
            Val::Scalar(v) => Ok(v),
            other => Err(PromqlError::exec(format!(
                "{what}: expected scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// The same value with an instant vector in its per-step form, for code that walks
    /// steps.
    pub fn per_step(self) -> Result<Val, PromqlError> {
        match self {
            Val::Series(sv) => Ok(Val::Vector(sv.into_steps()?)),
            other => Ok(other),
        }
    }

    /// The range vector, or an error naming what was found instead.
    pub fn into_matrix(self, what: &str) -> Result<RangeData, PromqlError> {
        match self {
            Val::Matrix(v) => Ok(v),
            other => Err(PromqlError::exec(format!(
                "{what}: expected range vector, got {}",
                other.type_name()
            ))),
        }
    }
}

/// A cheap hasher for keys that are already well distributed integers (pointers, ids):
/// SipHash on every series at every step is the main cost of matching otherwise.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A hash map keyed by pointers or small ids.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A hash set of pointers or small ids.
pub(crate) type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// Maps input label sets to output label sets once per distinct input (inputs are shared
/// `Arc`s, so the pointer identifies the series), interning outputs so that equal outputs
/// share one `Arc`. Remembers whether two inputs collapsed onto one output, the only case
/// where a step can hold duplicate label sets.
#[derive(Default)]
pub(crate) struct LabelMemo {
    /// Input pointer → (the input, kept alive so its address cannot be reused; the output).
    by_ptr: IdMap<usize, (Arc<Labels>, Arc<Labels>)>,
    interned: foldhash::HashMap<Labels, Arc<Labels>>,
    /// True once two different inputs produced the same output.
    pub collided: bool,
}

impl LabelMemo {
    /// The output for `input`, computing it with `f` the first time. The memo holds a
    /// reference to every input it has seen, so a pointer always names the same series.
    pub fn map(&mut self, input: &Arc<Labels>, f: impl FnOnce(&Labels) -> Labels) -> Arc<Labels> {
        let key = Arc::as_ptr(input) as usize;
        if let Some((_, out)) = self.by_ptr.get(&key) {
            return out.clone();
        }
        let out = self.intern(f(input));
        self.by_ptr.insert(key, (input.clone(), out.clone()));
        out
    }

    /// The shared `Arc` for `labels`; marks a collision when the set was already known.
    pub fn intern(&mut self, labels: Labels) -> Arc<Labels> {
        if let Some(existing) = self.interned.get(&labels) {
            self.collided = true;
            return existing.clone();
        }
        let arc = Arc::new(labels.clone());
        self.interned.insert(labels, arc.clone());
        arc
    }
}

/// Errors when a step holds two samples with the same (interned) labels.
pub(crate) fn check_unique_ptrs(v: &StepVec) -> Result<(), PromqlError> {
    if v.len() < 2 {
        return Ok(());
    }
    let mut ptrs: Vec<usize> = Vec::with_capacity(v.len());
    for e in v {
        ptrs.push(Arc::as_ptr(&e.labels) as usize);
    }
    ptrs.sort_unstable();
    for pair in ptrs.windows(2) {
        if pair[0] == pair[1] {
            return Err(duplicate_labelset_error(v, pair[0]));
        }
    }
    Ok(())
}

fn duplicate_labelset_error(v: &StepVec, ptr: usize) -> PromqlError {
    let mut name = String::new();
    for e in v {
        if Arc::as_ptr(&e.labels) as usize == ptr {
            name = e.labels.to_string();
            break;
        }
    }
    PromqlError::exec(format!(
        "vector cannot contain metrics with the same labelset: {name}"
    ))
}

/// Runs [`check_unique_ptrs`] on every step when the memo saw a collision.
pub(crate) fn check_steps(memo: &LabelMemo, steps: &[StepVec]) -> Result<(), PromqlError> {
    if !memo.collided {
        return Ok(());
    }
    for v in steps {
        check_unique_ptrs(v)?;
    }
    Ok(())
}

/// Kahan–Neumaier compensated summation step: returns the new `(sum, compensation)`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    if t.is_infinite() {
        (t, 0.0)
    } else if sum.abs() >= inc.abs() {
        (t, c + ((sum - t) + inc))
    } else {
        (t, c + ((inc - t) + sum))
    }
}

/// A compensated (Kahan) running sum, which for a mean turns into a compensated incremental
/// mean once the sum overflows: Prometheus 3's arithmetic for `sum`, `avg` and
/// `avg_over_time`, so both give its answers to the last bit, and a mean costs no division
/// per value until an overflow.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RunningSum {
    sum: f64,
    comp: f64,
    /// The mean so far, once `incremental`.
    mean: f64,
    /// A mean's sum overflowed; `mean` (with `comp`) holds the mean since.
    incremental: bool,
}

impl RunningSum {
    /// A sum of the one value `first`.
    pub(crate) fn new(first: f64) -> RunningSum {
        RunningSum {
            sum: first,
            ..RunningSum::default()
        }
    }

    /// Adds `v` to a sum.
    pub(crate) fn add(&mut self, v: f64) {
        (self.sum, self.comp) = kahan_inc(v, self.sum, self.comp);
    }

    /// The sum.
    pub(crate) fn total(&self) -> f64 {
        self.sum + self.comp
    }

    /// Adds `v`, the `count`th value, to a mean.
    pub(crate) fn add_for_mean(&mut self, v: f64, count: f64) {
        if !self.incremental {
            let (sum, comp) = kahan_inc(v, self.sum, self.comp);
            if !sum.is_infinite() {
                (self.sum, self.comp) = (sum, comp);
                return;
            }
            // The sum would overflow: continue with the mean of the values so far.
            self.incremental = true;
            self.mean = self.sum / (count - 1.0);
            self.comp /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (self.mean, self.comp) = kahan_inc(v / count, q * self.mean, q * self.comp);
    }

    /// The mean of the `count` values added with [`RunningSum::add_for_mean`].
    pub(crate) fn mean(&self, count: f64) -> f64 {
        if self.incremental {
            self.mean + self.comp
        } else {
            compensated_mean(self.sum, self.comp, count)
        }
    }
}

/// The mean of `count` values from their compensated sum (`sum`, `comp`) that did not
/// overflow, as Prometheus 3 divides it.
pub(crate) fn compensated_mean(sum: f64, comp: f64, count: f64) -> f64 {
    sum / count + comp / count
}

#[cfg(test)]
mod running_sum_tests {
    use super::*;

    fn mean_of(values: &[f64]) -> f64 {
        let mut acc = RunningSum::new(values[0]);
        for (i, v) in values.iter().enumerate().skip(1) {
            acc.add_for_mean(*v, (i + 1) as f64);
        }
        acc.mean(values.len() as f64)
    }

    /// Bit for bit what Prometheus 3's mean gives (its algorithm replayed by hand in IEEE
    /// arithmetic): where Prometheus 2's incremental mean rounds differently, these tell
    /// the two apart.
    #[test]
    fn the_mean_sums_then_divides_as_prometheus_3_does() {
        // The incremental mean gives 0.19999999999999998 and 0.66.
        assert_eq!(mean_of(&[0.1, 0.2, 0.3]).to_bits(), 0.2f64.to_bits());
        assert_eq!(
            mean_of(&[0.7, 0.1, 0.3, 0.9, 1.3]).to_bits(),
            0.6599999999999999f64.to_bits()
        );
        assert_eq!(mean_of(&[5.0]), 5.0);
        // A sum that overflows goes on as an incremental mean, which does not.
        assert_eq!(mean_of(&[1e308, 1e308]), 1e308);
        assert_eq!(mean_of(&[1e308, 1e308, 1e308, -1e308]), 5e307);
        assert_eq!(mean_of(&[1e308, 1e308, -1e308, 5.0]), 2.5e307);
        assert_eq!(mean_of(&[f64::INFINITY, 1.0]), f64::INFINITY);
        assert!(mean_of(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert!(mean_of(&[f64::NAN, 1.0]).is_nan());
    }
}

/// An instant vector per step of a grid, held series by series: what a range function
/// produces, since it walks each series once over every step.
///
/// The per-step form ([`StepVec`] per step) costs one shared-label clone and one push into
/// a different vector per point, and a range query turns it back into series at the end.
/// Held series by series, a range query's answer is assembled without that round trip and
/// an aggregation (`sum by (…) (rate(…))`) reads each series' group once instead of once
/// per step (`aggregate::by_series`). Consumers that need steps call
/// [`SeriesVec::into_steps`], which gives exactly the vectors the per-step form would have
/// held, in the same order.
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

    /// Makes room for `n` more float values (a range function's output, counted before it
    /// is computed, so its vectors are not grown as it goes).
    pub fn reserve_floats(&mut self, n: usize) {
        self.steps.reserve(n);
        self.values.reserve(n);
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
mod tests;
