//! The evaluator: dispatch over the AST, subqueries, unary minus, and turning the internal
//! per-step values into the public [`Value`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use promql_parser::parser::{Expr, SubqueryExpr};

use crate::model::{HistogramSample, Labels, Sample, SeriesSamples};
use crate::query::{Queryable, ReadStats};

use super::annotations::Annotations;
use super::budget::SampleBudget;
use super::compat::{check_ast, PromqlCompat};
use super::control::QueryControl;
use super::depth::{check_depth, DEFAULT_MAX_DEPTH};
use super::downsampled::Aggr;
use super::error::PromqlError;
use super::parse::{at_ms, duration_ms, offset_ms, parse_expr, unparen};
use super::result::{InstantSample, QueryResult, QueryStats, Value};
use super::selector::{eval_matrix_selector, eval_vector_selector, Pick};
use super::value::SeriesVec;
use super::value::{check_steps, Grid, IdMap, LabelMemo, RangeData, RangeSeries, StepVec, Val};
use super::{aggregate, binary, functions};

/// Step used by subqueries that do not name one (`[5m:]`), as Prometheus' default
/// evaluation interval.
const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// Most points a range query may return per series, as Prometheus' HTTP API allows.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Limits and defaults of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant vector selector looks for a sample (Prometheus: 5m).
    pub lookback_delta: Duration,
    /// Longest a single query may run before it fails with [`PromqlError::Timeout`].
    pub timeout: Duration,
    /// Most samples a query may load from storage and produce, to bound memory.
    pub max_samples: usize,
    /// Deepest nesting a query may have (see [`check_depth`]); deeper ones are refused
    /// before parsing, as they would overflow the stack.
    pub max_depth: usize,
    /// Most samples all queries of this engine (and engines made from it with
    /// [`Engine::with_options`]) may hold at once; 0 = no shared limit. See [`SampleBudget`].
    pub max_samples_total: usize,
    /// Which Prometheus release's semantics to follow (default 3.x).
    pub compat: PromqlCompat,
    /// Allows the functions and aggregations Prometheus gates behind
    /// `--enable-feature=promql-experimental-functions` (off by default, as in Prometheus).
    pub enable_experimental_functions: bool,
    /// The coarsest downsampled data the query may read, as Thanos' `max_source_resolution`:
    /// `None` (default) lets each selector read the coarsest resolution its step and range
    /// allow; `Some(Duration::ZERO)` forces raw data.
    pub max_source_resolution: Option<Duration>,
    /// Threads a range function of one query may run on at once (series split between
    /// them, as VictoriaMetrics' `-search.maxWorkersPerQuery`): by default the machine's
    /// cores, at most 8; 1 runs everything on the query's own thread. Small inputs always
    /// run on one. The operands of an operator chain that read storage are split the same
    /// way (`binary::chain`).
    pub workers_per_query: usize,
}

impl Default for EngineOptions {
    /// Prometheus 3's defaults: 5m lookback, 2m timeout, 50 million samples, experimental
    /// functions off; depth 200; downsampled data read where it fits.
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            max_samples_total: 0,
            max_depth: DEFAULT_MAX_DEPTH,
            compat: PromqlCompat::V3,
            enable_experimental_functions: false,
            max_source_resolution: None,
            workers_per_query: crate::cores::read_threads(),
        }
    }
}

/// Evaluates PromQL queries. Cheap to share: it holds options and the samples budget its
/// running queries share.
#[derive(Debug, Clone)]
pub struct Engine {
    opts: EngineOptions,
    budget: Arc<SampleBudget>,
}

impl Engine {
    /// An engine with these limits and a budget of `opts.max_samples_total` of its own.
    pub fn new(opts: EngineOptions) -> Engine {
        let budget = Arc::new(SampleBudget::new(opts.max_samples_total));
        Engine { opts, budget }
    }

    /// An engine with other options (a query's own lookback, say) that shares this one's
    /// samples budget, so a query evaluated with it still counts against the total;
    /// `opts.max_samples_total` is ignored.
    pub fn with_options(&self, opts: EngineOptions) -> Engine {
        Engine {
            opts,
            budget: self.budget.clone(),
        }
    }

    /// The samples budget this engine's running queries share.
    pub fn sample_budget(&self) -> &Arc<SampleBudget> {
        &self.budget
    }

    /// Evaluates `expr` at `time_ms`. Yields a Vector, Scalar or String; a range vector at the
    /// top (`foo[5m]`, a subquery) yields a Matrix of the raw samples in its window.
    pub fn instant_query(
        &self,
        q: &dyn Queryable,
        expr: &str,
        time_ms: i64,
    ) -> Result<QueryResult, PromqlError> {
        self.instant_query_with(q, expr, time_ms, &QueryControl::default())
    }

    /// [`Engine::instant_query`] bounded also by the caller's deadline and cancel flag.
    pub fn instant_query_with(
        &self,
        q: &dyn Queryable,
        expr: &str,
        time_ms: i64,
        ctl: &QueryControl,
    ) -> Result<QueryResult, PromqlError> {
        let started = Instant::now();
        let ast = self.parse(expr)?;
        let grid = Grid::instant(time_ms);
        let mut ev = Evaluator::new(q, &self.opts, &self.budget, ctl, started, time_ms, time_ms);
        ev.prepare(&ast, &grid)?;
        let val = ev.eval(&ast, &grid)?;
        let value = match val {
            Val::Scalar(v) => Value::Scalar {
                t_ms: time_ms,
                v: v.first().copied().unwrap_or(f64::NAN),
            },
            Val::String(s) => Value::String { t_ms: time_ms, v: s },
            vector @ (Val::Vector(_) | Val::Series(_)) => {
                let steps = vector.into_vector("query")?;
                let step = steps.into_iter().next().unwrap_or_default();
                check_unique_labels(&step)?;
                let mut out: Vec<InstantSample> = Vec::with_capacity(step.len());
                for e in step {
                    out.push(InstantSample {
                        labels: (*e.labels).clone(),
                        t_ms: time_ms,
                        v: e.v,
                        h: e.h,
                    });
                }
                if !keeps_order(&ast) {
                    out.sort_by(|a, b| a.labels.cmp(&b.labels));
                }
                ev.account_output(out.len())?;
                Value::Vector(out)
            }
            Val::Matrix(rd) => Value::Matrix(matrix_at(&mut ev, &rd, time_ms)?),
        };
        Ok(ev.finish(expr, value, started))
    }

    /// Evaluates `expr` at every step from `start_ms` to `end_ms`; the result is a Matrix
    /// with series sorted by labels. The expression must be a scalar or an instant vector.
    pub fn range_query(
        &self,
        q: &dyn Queryable,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult, PromqlError> {
        self.range_query_with(q, expr, start_ms, end_ms, step_ms, &QueryControl::default())
    }

    /// [`Engine::range_query`] bounded also by the caller's deadline and cancel flag.
    pub fn range_query_with(
        &self,
        q: &dyn Queryable,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        ctl: &QueryControl,
    ) -> Result<QueryResult, PromqlError> {
        let started = Instant::now();
        if step_ms <= 0 {
            return Err(PromqlError::BadData(format!(
                "zero or negative query resolution step widths are not accepted (step {step_ms}ms)"
            )));
        }
        if end_ms < start_ms {
            return Err(PromqlError::BadData(format!(
                "end timestamp {end_ms} must not be before start time {start_ms}"
            )));
        }
        if (i128::from(end_ms) - i128::from(start_ms)) / i128::from(step_ms)
            >= i128::from(MAX_POINTS_PER_SERIES)
        {
            return Err(PromqlError::BadData(format!(
                "exceeded maximum resolution of {MAX_POINTS_PER_SERIES} points per timeseries (step {step_ms}ms). Try decreasing the query resolution"
            )));
        }
        let ast = self.parse(expr)?;
        let grid = Grid {
            start: start_ms,
            end: end_ms,
            step: step_ms,
        };
        let mut ev = Evaluator::new(q, &self.opts, &self.budget, ctl, started, start_ms, end_ms);
        ev.query_step = step_ms;
        ev.prepare(&ast, &grid)?;
        let val = ev.eval(&ast, &grid)?;
        let series = match val {
            Val::Scalar(v) => {
                let mut samples = Vec::with_capacity(v.len());
                for (i, x) in v.into_iter().enumerate() {
                    samples.push(Sample::new(grid.t(i), x));
                }
                vec![SeriesSamples {
                    labels: Labels::default(),
                    samples,
                    histograms: Vec::new(),
                }]
            }
            Val::Vector(steps) => assemble_matrix(&mut ev, steps, &grid)?,
            Val::Series(sv) => series_matrix(&mut ev, sv, &grid)?,
            other => {
                return Err(PromqlError::BadData(format!(
                    "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                    other.type_name()
                )))
            }
        };
        Ok(ev.finish(expr, Value::Matrix(series), started))
    }

    /// Parses `expr` after checking its nesting against the engine's limit, and refuses what
    /// the engine's semantics do not know (`holt_winters` under 3.x, experimental functions
    /// while they are off) with Prometheus' parse errors.
    pub fn parse(&self, expr: &str) -> Result<promql_parser::parser::Expr, PromqlError> {
        check_depth(expr, self.opts.max_depth)?;
        let ast = parse_expr(expr)?;
        check_ast(&ast, self.opts.compat, self.opts.enable_experimental_functions)?;
        Ok(ast)
    }

    /// The options this engine was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }
}

/// True when the top of the expression decides the order of an instant vector.
fn keeps_order(ast: &Expr) -> bool {
    match unparen(ast) {
        Expr::Call(c) => matches!(
            c.func.name,
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc"
        ),
        Expr::Aggregate(a) => {
            use promql_parser::parser::token::{T_BOTTOMK, T_TOPK};
            matches!(a.op.id(), T_TOPK | T_BOTTOMK)
        }
        _ => false,
    }
}

/// Errors when an instant vector holds two samples with equal labels.
fn check_unique_labels(step: &StepVec) -> Result<(), PromqlError> {
    if step.len() < 2 {
        return Ok(());
    }
    let mut refs: Vec<&Labels> = Vec::with_capacity(step.len());
    for e in step {
        refs.push(&e.labels);
    }
    refs.sort();
    for pair in refs.windows(2) {
        if pair[0] == pair[1] {
            return Err(PromqlError::exec(format!(
                "vector cannot contain metrics with the same labelset: {}",
                pair[0]
            )));
        }
    }
    Ok(())
}

/// The samples of each series of a range vector inside the window of time `t`.
fn matrix_at(ev: &mut Evaluator<'_>, rd: &RangeData, t: i64) -> Result<Vec<SeriesSamples>, PromqlError> {
    let (start, end) = rd.window(t);
    let mut out = Vec::new();
    let mut total = 0usize;
    for s in &rd.series {
        let mut samples = Vec::new();
        for p in &s.samples {
            if p.timestamp_ms >= start && p.timestamp_ms <= end {
                samples.push(*p);
            }
        }
        let mut histograms = Vec::new();
        for p in &s.histograms {
            if p.timestamp_ms >= start && p.timestamp_ms <= end {
                histograms.push(p.clone());
            }
        }
        if !samples.is_empty() || !histograms.is_empty() {
            total += samples.len() + histograms.len();
            out.push(SeriesSamples {
                labels: (*s.labels).clone(),
                samples,
                histograms,
            });
        }
    }
    ev.account_output(total)?;
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// Turns per-step vectors into series sorted by labels; a series seen twice at one step is
/// the "same labelset" error.
fn assemble_matrix(
    ev: &mut Evaluator<'_>,
    steps: Vec<StepVec>,
    grid: &Grid,
) -> Result<Vec<SeriesSamples>, PromqlError> {
    let mut by_ptr: IdMap<usize, usize> = IdMap::default();
    let mut by_labels: HashMap<Labels, usize> = HashMap::new();
    let mut series: Vec<SeriesSamples> = Vec::new();
    let mut keep_alive: Vec<Arc<Labels>> = Vec::new();
    let mut total = 0usize;
    for (i, step) in steps.into_iter().enumerate() {
        if i % 64 == 0 {
            ev.check_deadline()?;
        }
        let t = grid.t(i);
        total += step.len();
        for e in step {
            let key = Arc::as_ptr(&e.labels) as usize;
            let idx = match by_ptr.get(&key) {
                Some(&idx) => idx,
                None => {
                    let idx = match by_labels.get(&*e.labels) {
                        Some(&idx) => idx,
                        None => {
                            series.push(SeriesSamples {
                                labels: (*e.labels).clone(),
                                samples: Vec::new(),
                                histograms: Vec::new(),
                            });
                            by_labels.insert((*e.labels).clone(), series.len() - 1);
                            series.len() - 1
                        }
                    };
                    by_ptr.insert(key, idx);
                    keep_alive.push(e.labels.clone());
                    idx
                }
            };
            let Some(s) = series.get_mut(idx) else {
                continue;
            };
            if s.samples.last().is_some_and(|p| p.timestamp_ms == t)
                || s.histograms.last().is_some_and(|p| p.timestamp_ms == t)
            {
                return Err(PromqlError::exec(format!(
                    "vector cannot contain metrics with the same labelset: {}",
                    s.labels
                )));
            }
            match e.h {
                Some(h) => s.histograms.push(HistogramSample { timestamp_ms: t, h }),
                None => s.samples.push(Sample::new(t, e.v)),
            }
        }
    }
    ev.account_output(total)?;
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(series)
}

/// [`assemble_matrix`] for a vector held series by series: its series as they are, unless
/// two of them share labels (then through the steps, which finds a clash or merges them).
fn series_matrix(
    ev: &mut Evaluator<'_>,
    sv: SeriesVec,
    grid: &Grid,
) -> Result<Vec<SeriesSamples>, PromqlError> {
    if sv.collided {
        return assemble_matrix(ev, sv.into_steps()?, grid);
    }
    ev.check_deadline()?;
    ev.account_output(sv.points())?;
    Ok(sv.into_matrix(grid))
}

/// When an evaluation must stop (the caller's cancel flag, the deadline): copied to the
/// threads a range function runs on, each of which checks it between series.
#[derive(Clone, Copy)]
pub(crate) struct Deadline<'a> {
    at: Option<Instant>,
    cancel: Option<&'a std::sync::atomic::AtomicBool>,
}

impl Deadline<'_> {
    /// Fails with [`PromqlError::Cancelled`] once the caller gave up, with
    /// [`PromqlError::Timeout`] once the deadline has passed.
    pub fn check(&self) -> Result<(), PromqlError> {
        if self
            .cancel
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(PromqlError::Cancelled);
        }
        if self.at.is_some_and(|d| Instant::now() > d) {
            return Err(PromqlError::Timeout);
        }
        Ok(())
    }
}

/// What a forked evaluation spent (see [`Evaluator::spent`]).
pub(crate) struct Spent {
    read_stats: ReadStats,
    samples: usize,
    samples_loaded: usize,
    series_loaded: usize,
}

/// State of one query evaluation: the storage, limits, and what was spent so far.
pub(crate) struct Evaluator<'a> {
    q: &'a dyn Queryable,
    /// The storage's view for this evaluation when it prepared one for the query's
    /// planned reads (`plan`); dropped with the evaluation.
    view: Option<Box<dyn Queryable + 'a>>,
    pub lookback_ms: i64,
    /// The semantics in force (window ends, regex newlines).
    pub compat: PromqlCompat,
    /// Warnings and infos gathered while evaluating.
    pub annotations: Annotations,
    /// Start of the top-level query, for `@ start()`.
    pub query_start: i64,
    /// End of the top-level query, for `@ end()`.
    pub query_end: i64,
    /// Step of the top-level range query, 0 for an instant query (`step()`).
    pub query_step: i64,
    /// The coarsest resolution of downsampled data selectors may read (`i64::MAX`: any).
    pub max_source_resolution_ms: i64,
    /// The aggregate the range selector evaluated next reads from downsampled data, and how
    /// many windows its range must hold: set by a function for its direct range-selector
    /// argument and taken by that selector (see `downsampled`).
    pub read_hint: Option<(Aggr, i64)>,
    /// Blocks read so far, for the query's stats.
    pub read_stats: ReadStats,
    /// `None` when the timeout is too large to represent: no deadline.
    deadline: Option<Instant>,
    /// Set by the caller when nobody waits for the answer any more.
    cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// [`EngineOptions::workers_per_query`].
    workers: usize,
    max_samples: usize,
    samples: usize,
    samples_loaded: usize,
    series_loaded: usize,
    /// The engine's shared budget; `samples` of it are reserved by this evaluation and
    /// given back when it is dropped.
    budget: Arc<SampleBudget>,
}

impl Drop for Evaluator<'_> {
    fn drop(&mut self) {
        self.budget.release(self.samples);
    }
}

impl<'a> Evaluator<'a> {
    fn new(
        q: &'a dyn Queryable,
        opts: &EngineOptions,
        budget: &Arc<SampleBudget>,
        ctl: &QueryControl,
        started: Instant,
        query_start: i64,
        query_end: i64,
    ) -> Self {
        let own = started.checked_add(opts.timeout);
        let deadline = match (own, ctl.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Evaluator {
            q,
            view: None,
            lookback_ms: duration_ms(&opts.lookback_delta),
            compat: opts.compat,
            annotations: Annotations::default(),
            query_start,
            query_end,
            query_step: 0,
            max_source_resolution_ms: opts.max_source_resolution.map_or(i64::MAX, |d| duration_ms(&d)),
            read_hint: None,
            read_stats: ReadStats::default(),
            deadline,
            cancel: ctl.cancel.clone(),
            workers: opts.workers_per_query,
            max_samples: opts.max_samples,
            samples: 0,
            samples_loaded: 0,
            series_loaded: 0,
            budget: budget.clone(),
        }
    }

    fn finish(mut self, expr: &str, value: Value, started: Instant) -> QueryResult {
        let stats = QueryStats {
            samples_loaded: self.samples_loaded,
            series_loaded: self.series_loaded,
            duration: started.elapsed(),
            blocks_raw: self.read_stats.raw_blocks,
            blocks_downsampled: self.read_stats.downsampled_blocks,
            resolution_ms: self.read_stats.resolution_ms,
        };
        tracing::debug!(
            query = expr,
            elapsed_ms = stats.duration.as_millis() as u64,
            samples_loaded = stats.samples_loaded,
            series_loaded = stats.series_loaded,
            "promql query evaluated"
        );
        QueryResult {
            value,
            stats,
            annotations: std::mem::take(&mut self.annotations),
        }
    }

    /// What the evaluation reads: the storage's view for this query, or the storage.
    pub fn storage(&self) -> &dyn Queryable {
        self.view.as_deref().unwrap_or(self.q)
    }

    /// Offers the storage the reads evaluating `expr` over `grid` is going to make (see
    /// `plan`; worked out only if the storage asks), and reads through the view it
    /// prepares, if any. A query whose reads cannot be planned (an error the evaluation
    /// will report) offers none.
    fn prepare(&mut self, expr: &Expr, grid: &Grid) -> Result<(), PromqlError> {
        let q = self.q;
        let view = q.prepare(&|| self.planned_reads(expr, grid).unwrap_or_default())?;
        self.view = view;
        Ok(())
    }

    /// An evaluation of part of this query on another thread (an operand of a binary
    /// operator chain, `binary::chain`): the same storage view, options and deadline,
    /// nothing spent yet, at most `workers` threads for its range functions, and the
    /// samples this query has left as its limit. What it spends comes back through
    /// [`Evaluator::spent`] and [`Evaluator::absorb`]; until then its samples are reserved
    /// from the shared budget in its own name.
    pub(crate) fn fork(&self, workers: usize) -> Evaluator<'_> {
        Evaluator {
            q: self.storage(),
            view: None,
            lookback_ms: self.lookback_ms,
            compat: self.compat,
            annotations: Annotations::default(),
            query_start: self.query_start,
            query_end: self.query_end,
            query_step: self.query_step,
            max_source_resolution_ms: self.max_source_resolution_ms,
            read_hint: None,
            read_stats: ReadStats::default(),
            deadline: self.deadline,
            cancel: self.cancel.clone(),
            workers: workers.max(1),
            max_samples: self.max_samples.saturating_sub(self.samples),
            samples: 0,
            samples_loaded: 0,
            series_loaded: 0,
            budget: self.budget.clone(),
        }
    }

    /// What a [`fork`](Evaluator::fork) spent, its samples' reservation handed over with it
    /// (dropping the fork no longer gives them back). Its annotations are not included:
    /// the caller takes them operand by operand, to keep their order.
    pub(crate) fn spent(mut self) -> Spent {
        Spent {
            read_stats: std::mem::take(&mut self.read_stats),
            samples: std::mem::take(&mut self.samples),
            samples_loaded: self.samples_loaded,
            series_loaded: self.series_loaded,
        }
    }

    /// Counts what a fork spent as this evaluation's own: its reads for the stats, its
    /// samples against this query's limit (each fork was held to what was left when it
    /// started, so together they may pass it: then the query fails as one would have).
    pub(crate) fn absorb(&mut self, spent: Spent) -> Result<(), PromqlError> {
        self.read_stats.add(&spent.read_stats);
        self.samples_loaded += spent.samples_loaded;
        self.series_loaded += spent.series_loaded;
        // Already reserved from the budget by the fork: now given back when this drops.
        self.samples = self.samples.saturating_add(spent.samples);
        if self.samples > self.max_samples {
            return Err(PromqlError::TooManySamples(self.max_samples));
        }
        Ok(())
    }

    /// Fails with [`PromqlError::Cancelled`] once the caller gave up, with
    /// [`PromqlError::Timeout`] once the deadline has passed. Called at loop boundaries.
    pub fn check_deadline(&self) -> Result<(), PromqlError> {
        self.deadline().check()
    }

    /// What [`Evaluator::check_deadline`] checks, for the threads a range function runs on.
    pub fn deadline(&self) -> Deadline<'_> {
        Deadline {
            at: self.deadline,
            cancel: self.cancel.as_deref(),
        }
    }

    /// Threads a range function may split its series over, an operator chain its operands.
    pub fn workers(&self) -> usize {
        self.workers.max(1)
    }

    /// Counts samples read from storage against the limit.
    pub fn account_loaded(&mut self, series: usize, samples: usize) -> Result<(), PromqlError> {
        self.series_loaded += series;
        self.samples_loaded += samples;
        self.account_output(samples)?;
        self.check_deadline()
    }

    /// Counts samples held (loaded or produced) against the limit.
    pub fn account_output(&mut self, samples: usize) -> Result<(), PromqlError> {
        let total = self.samples.saturating_add(samples);
        if total > self.max_samples {
            return Err(PromqlError::TooManySamples(self.max_samples));
        }
        self.budget
            .reserve(samples)
            .map_err(PromqlError::TooManySamplesInFlight)?;
        // Only what was reserved is counted, so the drop gives back exactly that.
        self.samples = total;
        Ok(())
    }

    /// Evaluates `expr` at every step of `grid`.
    pub fn eval(&mut self, expr: &Expr, grid: &Grid) -> Result<Val, PromqlError> {
        self.check_deadline()?;
        let n = grid.len();
        match expr {
            Expr::NumberLiteral(nl) => Ok(Val::Scalar(vec![nl.val; n])),
            Expr::StringLiteral(s) => Ok(Val::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, grid),
            Expr::Unary(u) => match self.eval(&u.expr, grid)?.per_step()? {
                Val::Scalar(mut v) => {
                    for x in v.iter_mut() {
                        *x = -*x;
                    }
                    Ok(Val::Scalar(v))
                }
                Val::Vector(mut steps) => {
                    let mut memo = LabelMemo::default();
                    for step in steps.iter_mut() {
                        for e in step.iter_mut() {
                            e.v = -e.v;
                            if let Some(h) = e.h.as_mut() {
                                Arc::make_mut(h).mul(-1.0);
                            }
                            e.labels = memo.map(&e.labels, |l| l.without_metric_name());
                        }
                    }
                    check_steps(&memo, &steps)?;
                    Ok(Val::Vector(steps))
                }
                other => Err(PromqlError::exec(format!(
                    "unary minus only applies to scalars and instant vectors, got {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(eval_vector_selector(self, vs, grid, Pick::Value)?)),
            Expr::MatrixSelector(ms) => Ok(Val::Matrix(eval_matrix_selector(self, ms, grid)?)),
            Expr::Subquery(sq) => Ok(Val::Matrix(self.eval_subquery(sq, grid)?)),
            Expr::Aggregate(a) => aggregate::eval(self, a, grid),
            Expr::Binary(b) => binary::eval(self, b, grid),
            Expr::Call(c) => functions::eval(self, c, grid),
            Expr::Extension(_) => Err(PromqlError::exec("extension expressions are not supported")),
        }
    }

    /// Evaluates a subquery: the inner expression runs as a range query over the step-aligned
    /// grid covering every outer window, and the result is treated like a range selector.
    fn eval_subquery(&mut self, sq: &SubqueryExpr, grid: &Grid) -> Result<RangeData, PromqlError> {
        let (mut rd, inner) = self.subquery_grid(sq, grid)?;
        let Some(inner) = inner else {
            return Ok(rd);
        };
        // Every inner step holds at least one value: bound the grid before allocating it.
        self.account_output(inner.len())?;
        let val = self.eval(&sq.expr, &inner)?;
        match val {
            Val::Scalar(v) => {
                let mut samples = Vec::with_capacity(v.len());
                for (i, x) in v.into_iter().enumerate() {
                    samples.push(Sample::new(inner.t(i), x));
                }
                rd.series.push(RangeSeries {
                    labels: Arc::new(Labels::default()),
                    samples,
                    histograms: Vec::new(),
                });
            }
            vector @ (Val::Vector(_) | Val::Series(_)) => {
                let series = match vector {
                    Val::Series(sv) => series_matrix(self, sv, &inner)?,
                    other => assemble_matrix(self, other.into_vector("subquery")?, &inner)?,
                };
                for s in series {
                    rd.series.push(RangeSeries {
                        labels: Arc::new(s.labels),
                        samples: s.samples,
                        histograms: s.histograms,
                    });
                }
            }
            other => {
                return Err(PromqlError::exec(format!(
                    "subquery is only allowed on instant vector or scalar, got {}",
                    other.type_name()
                )))
            }
        }
        Ok(rd)
    }

    /// The range vector subquery `sq` makes over `grid`, before its series are evaluated,
    /// and the grid its expression is evaluated over (`None`: not evaluated, `grid` has no
    /// step): one function for the evaluation and the read plan.
    pub(crate) fn subquery_grid(
        &self,
        sq: &SubqueryExpr,
        grid: &Grid,
    ) -> Result<(RangeData, Option<Grid>), PromqlError> {
        let offset = offset_ms(sq.offset.as_ref());
        let at = at_ms(sq.at.as_ref(), self.query_start, self.query_end);
        let range = duration_ms(&sq.range);
        let step = match &sq.step {
            Some(d) => duration_ms(d),
            None => DEFAULT_SUBQUERY_STEP_MS,
        };
        if step <= 0 {
            return Err(PromqlError::exec(format!(
                "subquery step must be positive, got {step}ms"
            )));
        }
        let rd = RangeData {
            series: Vec::new(),
            range_ms: range,
            offset_ms: offset,
            at_ms: at,
            left_open: self.compat.left_open(),
            aggregate: None,
        };
        if grid.len() == 0 {
            return Ok((rd, None));
        }
        let (first_start, last_end) = rd.reach(grid);
        // First multiple of the step at or after the first window's first included time
        // (after its start when windows are left-open).
        let aligned = first_start.div_euclid(step).saturating_mul(step);
        let inner = Grid {
            start: if aligned < first_start {
                aligned.saturating_add(step)
            } else {
                aligned
            },
            end: last_end,
            step,
        };
        Ok((rd, Some(inner)))
    }
}
