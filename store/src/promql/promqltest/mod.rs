//! A runner for Prometheus' promqltest script format, so evaluator behaviour is pinned by
//! readable `.test` files (and the alerting crate can reuse the same data notation).
//!
//! Supported commands: `load <interval>` with series in expanding notation (`0+10x100`,
//! `1 _ 3 stale`, `_x3`, `1x4`), `clear`, `eval instant at <t> <expr>`, `eval range from
//! <t> to <t> step <d> <expr>`, the `eval_fail` / `eval_ordered` / `eval_warn` / `eval_info`
//! variants and `expect fail|ordered|warn|info|no_warn|no_info [msg:|regex: …]` lines (an
//! `eval` with no annotation expectation ignores annotations). Values compare with a relative
//! tolerance of 1e-6; NaN equals NaN. Native histograms load and compare in Prometheus'
//! `{{schema:… count:… buckets:[…]}}` notation (see `hist_notation`).
//!
//! As Prometheus' own test runner, experimental functions are enabled. Two Didban commands
//! change the engine for the evals that follow: `set compat v2|v3` (PromQL semantics) and
//! `set experimental_functions on|off`.

use std::path::Path;

use crate::model::{LabelMatcher, Labels, MatchOp, SeriesSamples};
use crate::query::Queryable;

use super::{Annotations, Engine, EngineOptions, MemStorage, PromqlError, Value};

mod hist_notation;
mod notation;

use notation::parse_number;
pub use notation::{add_points, add_series, expand_points, parse_duration_ms, parse_series_desc, Point};

/// One failed expectation, with the 1-based line of the command that failed.
#[derive(Debug, Clone)]
pub struct TestFailure {
    /// Line of the `eval`/`load` command.
    pub line: usize,
    /// What differed.
    pub message: String,
}

/// Outcome of running one script.
#[derive(Debug, Clone, Default)]
pub struct TestReport {
    /// Number of `eval` commands run.
    pub evals: usize,
    /// Number of `eval` commands that met their expectations.
    pub passed: usize,
    /// Everything that went wrong (eval mismatches and malformed commands).
    pub failures: Vec<TestFailure>,
}

/// Runs the script in `path` with the default engine options, experimental functions on.
pub fn run_file(path: &Path) -> std::io::Result<TestReport> {
    let text = std::fs::read_to_string(path)?;
    let opts = EngineOptions {
        enable_experimental_functions: true,
        ..EngineOptions::default()
    };
    Ok(run_script(&text, opts))
}

/// What an `eval` expects.
struct Expectation {
    fail: bool,
    fail_msg: Option<String>,
    fail_regex: Option<String>,
    ordered: bool,
    /// `Some(true)`: some warning expected (containing the text, if any); `Some(false)`: none.
    warn: Option<(bool, Option<String>)>,
    info: Option<(bool, Option<String>)>,
    scalar: Option<f64>,
    string: Option<String>,
    series: Vec<(Labels, Vec<Point>)>,
}

/// Where a script's `load` commands put their series and its `eval`s read them: the
/// in-memory [`MemStorage`] by default, or a real store (the metric `Db` in the store's
/// integration tests), so the same scripts pin the store's read path.
pub trait ScriptStorage {
    /// Stores the series of one `load` command (each series' samples in time order).
    fn load(&mut self, series: Vec<SeriesSamples>) -> Result<(), String>;
    /// Forgets everything (`clear`).
    fn clear(&mut self);
    /// What `eval` queries.
    fn queryable(&self) -> &dyn Queryable;
}

impl ScriptStorage for MemStorage {
    fn load(&mut self, series: Vec<SeriesSamples>) -> Result<(), String> {
        for s in series {
            for p in s.samples {
                self.add(&s.labels, p);
            }
            for h in s.histograms {
                self.add_histogram(&s.labels, h.timestamp_ms, (*h.h).clone());
            }
        }
        Ok(())
    }

    fn clear(&mut self) {
        MemStorage::clear(self);
    }

    fn queryable(&self) -> &dyn Queryable {
        self
    }
}

/// Runs a promqltest script with an engine built from `opts` (changed by `set` commands).
pub fn run_script(text: &str, opts: EngineOptions) -> TestReport {
    run_script_on(text, opts, &mut MemStorage::new())
}

/// [`run_script`] over `storage`, which starts empty.
pub fn run_script_on(text: &str, opts: EngineOptions, storage: &mut dyn ScriptStorage) -> TestReport {
    let mut opts = opts;
    let mut engine = Engine::new(opts.clone());
    let lines: Vec<&str> = text.lines().collect();
    let mut report = TestReport::default();
    let mut i = 0usize;
    while i < lines.len() {
        let line_no = i + 1;
        let line = lines.get(i).map(|l| l.trim()).unwrap_or("");
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let block = take_block(&lines, &mut i);
        let result = if line == "clear" {
            storage.clear();
            Ok(())
        } else if let Some(rest) = line.strip_prefix("load ") {
            load(storage, rest.trim(), &block)
        } else if let Some(rest) = line.strip_prefix("set ") {
            let r = set_option(&mut opts, rest.trim());
            engine = Engine::new(opts.clone());
            r
        } else if line.starts_with("eval") {
            report.evals += 1;
            let r = eval(&engine, storage.queryable(), line, &block);
            if r.is_ok() {
                report.passed += 1;
            }
            r
        } else {
            Err(format!("unknown command {line:?}"))
        };
        if let Err(message) = result {
            report.failures.push(TestFailure {
                line: line_no,
                message,
            });
        }
    }
    report
}

/// The lines belonging to the command just read: up to a blank line or the next command.
fn take_block<'a>(lines: &[&'a str], i: &mut usize) -> Vec<(usize, &'a str)> {
    let mut block = Vec::new();
    while let Some(l) = lines.get(*i) {
        let t = l.trim();
        if t.is_empty() || (!l.starts_with([' ', '\t']) && is_command(t)) {
            break;
        }
        *i += 1;
        if !t.starts_with('#') {
            block.push((*i, t));
        }
    }
    block
}

fn is_command(t: &str) -> bool {
    t == "clear"
        || t.starts_with("load ")
        || t.starts_with("eval ")
        || t.starts_with("eval_")
        || t.starts_with("set ")
}

/// `set compat v2|v3` or `set experimental_functions on|off`.
fn set_option(opts: &mut EngineOptions, what: &str) -> Result<(), String> {
    match what.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["compat", v] => {
            opts.compat = v.parse().map_err(|e| format!("{e}"))?;
            Ok(())
        }
        ["experimental_functions", "on"] => {
            opts.enable_experimental_functions = true;
            Ok(())
        }
        ["experimental_functions", "off"] => {
            opts.enable_experimental_functions = false;
            Ok(())
        }
        _ => Err(format!("unknown set command {what:?}")),
    }
}

/// Parses a `load` block into a scratch [`MemStorage`] (the notation's home) and hands
/// its series to `storage`.
fn load(storage: &mut dyn ScriptStorage, interval: &str, block: &[(usize, &str)]) -> Result<(), String> {
    let step = parse_duration_ms(interval)?;
    let mut scratch = MemStorage::new();
    for (line, text) in block {
        let (labels, rest) = parse_series_desc(text).map_err(|e| format!("line {line}: {e}"))?;
        let points = expand_points(rest).map_err(|e| format!("line {line}: {e}"))?;
        add_points(&mut scratch, &labels, &points, step);
    }
    let all = LabelMatcher::new(MatchOp::RegexMatch, "__name__", ".*").map_err(|e| e.to_string())?;
    let series = scratch
        .select(&[all], i64::MIN, i64::MAX)
        .map_err(|e| e.to_string())?;
    storage.load(series)
}

fn eval(engine: &Engine, storage: &dyn Queryable, cmd: &str, block: &[(usize, &str)]) -> Result<(), String> {
    let (keyword, rest) = cmd
        .split_once(' ')
        .ok_or_else(|| format!("malformed eval {cmd:?}"))?;
    let mut exp = Expectation {
        fail: keyword == "eval_fail",
        fail_msg: None,
        fail_regex: None,
        ordered: keyword == "eval_ordered",
        warn: (keyword == "eval_warn").then_some((true, None)),
        info: (keyword == "eval_info").then_some((true, None)),
        scalar: None,
        string: None,
        series: Vec::new(),
    };
    for (line, text) in block {
        if let Some(e) = text.strip_prefix("expect ") {
            let e = e.trim();
            if let Some(f) = e.strip_prefix("fail") {
                exp.fail = true;
                let f = f.trim();
                if let Some(m) = f.strip_prefix("msg:") {
                    exp.fail_msg = Some(unquote(m.trim()));
                } else if let Some(r) = f.strip_prefix("regex:") {
                    exp.fail_regex = Some(unquote(r.trim()));
                }
            } else if e == "ordered" {
                exp.ordered = true;
            } else if let Some((kind, text)) = annotation_expectation(e) {
                match kind {
                    "warn" => exp.warn = Some((true, text)),
                    "info" => exp.info = Some((true, text)),
                    "no_warn" => exp.warn = Some((false, None)),
                    _ => exp.info = Some((false, None)),
                }
            }
            continue;
        }
        if let Some(m) = text.strip_prefix("expected_fail_message ") {
            exp.fail_msg = Some(m.trim().to_string());
            continue;
        }
        if let Some(r) = text.strip_prefix("expected_fail_regexp ") {
            exp.fail_regex = Some(r.trim().to_string());
            continue;
        }
        if text.starts_with('"') {
            exp.string = Some(unquote(text));
            continue;
        }
        if let Ok(v) = parse_number(text) {
            exp.scalar = Some(v);
            continue;
        }
        let (labels, values) = parse_series_desc(text).map_err(|e| format!("line {line}: {e}"))?;
        exp.series.push((
            labels,
            expand_points(values).map_err(|e| format!("line {line}: {e}"))?,
        ));
    }
    let result: Result<(Value, Annotations), PromqlError>;
    let mut range: Option<(i64, i64)> = None;
    if let Some(r) = rest.strip_prefix("instant at ") {
        let (t, expr) = r
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("missing expression in {cmd:?}"))?;
        let t = parse_duration_ms(t)?;
        result = engine
            .instant_query(storage, expr.trim(), t)
            .map(|r| (r.value, r.annotations));
    } else if let Some(r) = rest.strip_prefix("range from ") {
        let words: Vec<&str> = r.trim().splitn(6, ' ').collect();
        let [start, "to", end, "step", step, expr] = words.as_slice() else {
            return Err(format!("malformed range eval {cmd:?}"));
        };
        let (start, end, step) = (
            parse_duration_ms(start)?,
            parse_duration_ms(end)?,
            parse_duration_ms(step)?,
        );
        range = Some((start, step));
        result = engine
            .range_query(storage, expr.trim(), start, end, step)
            .map(|r| (r.value, r.annotations));
    } else {
        return Err(format!("malformed eval {cmd:?}"));
    }
    match result {
        Err(e) if exp.fail => check_fail_message(&exp, &e.to_string()),
        Err(e) => Err(format!("unexpected error: {e}")),
        Ok((v, _)) if exp.fail => Err(format!("expected an error, got {v:?}")),
        Ok((v, annotations)) => {
            check_annotations("warning", exp.warn.as_ref(), &annotations.warnings)?;
            check_annotations("info", exp.info.as_ref(), &annotations.infos)?;
            compare(&exp, v, range)
        }
    }
}

/// `warn|info|no_warn|no_info [msg: text]` → the kind and the expected text.
fn annotation_expectation(e: &str) -> Option<(&str, Option<String>)> {
    let (kind, rest) = match e.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r.trim()),
        None => (e, ""),
    };
    if !matches!(kind, "warn" | "info" | "no_warn" | "no_info") {
        return None;
    }
    let text = rest.strip_prefix("msg:").map(|m| unquote(m.trim()));
    Some((kind, text))
}

/// Checks one kind of annotation against its expectation (none: anything goes).
fn check_annotations(kind: &str, exp: Option<&(bool, Option<String>)>, got: &[String]) -> Result<(), String> {
    match exp {
        None => Ok(()),
        Some((false, _)) if got.is_empty() => Ok(()),
        Some((false, _)) => Err(format!("expected no {kind} annotation, got {got:?}")),
        Some((true, _)) if got.is_empty() => Err(format!("expected a {kind} annotation, got none")),
        Some((true, Some(text))) if !got.iter().any(|g| g == text) => {
            Err(format!("expected {kind} annotation {text:?}, got {got:?}"))
        }
        Some((true, _)) => Ok(()),
    }
}

fn check_fail_message(exp: &Expectation, msg: &str) -> Result<(), String> {
    if let Some(m) = &exp.fail_msg {
        if !msg.contains(m.as_str()) {
            return Err(format!("expected error message {m:?}, got {msg:?}"));
        }
    }
    if let Some(r) = &exp.fail_regex {
        let re = regex::Regex::new(r).map_err(|e| format!("bad expected_fail_regexp {r:?}: {e}"))?;
        if !re.is_match(msg) {
            return Err(format!("expected error matching {r:?}, got {msg:?}"));
        }
    }
    Ok(())
}

fn compare(exp: &Expectation, v: Value, range: Option<(i64, i64)>) -> Result<(), String> {
    match v {
        Value::Scalar { v, .. } => match exp.scalar {
            Some(e) if almost_equal(e, v) => Ok(()),
            Some(e) => Err(format!("expected scalar {e}, got {v}")),
            None => Err(format!("expected {} series, got scalar {v}", exp.series.len())),
        },
        Value::String { v, .. } => match &exp.string {
            Some(e) if *e == v => Ok(()),
            _ => Err(format!("expected string {:?}, got {v:?}", exp.string)),
        },
        Value::Vector(samples) => {
            if exp.scalar.is_some() {
                return Err(format!("expected a scalar, got vector {samples:?}"));
            }
            if samples.len() != exp.series.len() {
                return Err(format!(
                    "expected {} samples, got {}: {}",
                    exp.series.len(),
                    samples.len(),
                    samples
                        .iter()
                        .map(|s| format!("{} {}", s.labels, instant_text(s)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            for (pos, s) in samples.iter().enumerate() {
                let found = if exp.ordered {
                    exp.series.get(pos).filter(|(l, _)| *l == s.labels)
                } else {
                    exp.series.iter().find(|(l, _)| *l == s.labels)
                };
                let Some((_, points)) = found else {
                    return Err(format!(
                        "unexpected sample {} {} at position {pos}",
                        s.labels,
                        instant_text(s)
                    ));
                };
                match (points.as_slice(), &s.h) {
                    ([Point::Value(e)], None) if almost_equal(*e, s.v) => {}
                    ([Point::Histogram(e)], Some(h)) if hist_notation::matches(e, h, almost_equal) => {}
                    _ => {
                        return Err(format!(
                            "{}: expected {}, got {}",
                            s.labels,
                            fmt_points(points),
                            instant_text(s)
                        ))
                    }
                }
            }
            Ok(())
        }
        Value::Matrix(series) => {
            if series.len() != exp.series.len() {
                let got: Vec<String> = series.iter().map(|s| s.labels.to_string()).collect();
                return Err(format!(
                    "expected {} series, got {}: {}",
                    exp.series.len(),
                    series.len(),
                    got.join(", ")
                ));
            }
            for s in &series {
                let Some((_, points)) = exp.series.iter().find(|(l, _)| *l == s.labels) else {
                    return Err(format!("unexpected series {}", s.labels));
                };
                // Floats and histograms merged in time order.
                let mut timed: Vec<(i64, Point)> = Vec::new();
                for p in &s.samples {
                    timed.push((p.timestamp_ms, Point::Value(p.value)));
                }
                for p in &s.histograms {
                    timed.push((p.timestamp_ms, Point::Histogram(Box::new((*p.h).clone()))));
                }
                timed.sort_by_key(|(t, _)| *t);
                let mut got: Vec<Point> = Vec::new();
                match range {
                    Some((start, step)) => {
                        for (t, p) in timed {
                            let idx = usize::try_from((t - start) / step).unwrap_or(0);
                            while got.len() < idx {
                                got.push(Point::Missing);
                            }
                            got.push(p);
                        }
                    }
                    None => got.extend(timed.into_iter().map(|(_, p)| p)),
                }
                let mut want = points.clone();
                while want.last() == Some(&Point::Missing) {
                    want.pop();
                }
                let same = got.len() == want.len()
                    && got.iter().zip(want.iter()).all(|(g, w)| match (g, w) {
                        (Point::Value(a), Point::Value(b)) => almost_equal(*a, *b),
                        (Point::Histogram(g), Point::Histogram(w)) => {
                            hist_notation::matches(w, g, almost_equal)
                        }
                        (a, b) => a == b,
                    });
                if !same {
                    return Err(format!(
                        "{}: expected {}, got {}",
                        s.labels,
                        fmt_points(&want),
                        fmt_points(&got)
                    ));
                }
            }
            Ok(())
        }
    }
}

fn fmt_points(p: &[Point]) -> String {
    let parts: Vec<String> = p
        .iter()
        .map(|p| match p {
            Point::Missing => "_".to_string(),
            Point::Stale => "stale".to_string(),
            Point::Value(v) => v.to_string(),
            Point::Histogram(h) => hist_notation::format(h),
        })
        .collect();
    parts.join(" ")
}

/// A vector element as text: its value or its histogram.
fn instant_text(s: &super::InstantSample) -> String {
    match &s.h {
        Some(h) => hist_notation::format(h),
        None => s.v.to_string(),
    }
}

/// Equal within a relative tolerance of 1e-6 (absolute near zero); NaN equals NaN.
pub fn almost_equal(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < f64::MIN_POSITIVE {
        return diff < 1e-6 * 1e-6;
    }
    diff / (a.abs() + b.abs()).min(f64::MAX) < 1e-6
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 2 && (t.starts_with('"') && t.ends_with('"') || t.starts_with('\'') && t.ends_with('\'')) {
        return t.get(1..t.len() - 1).unwrap_or(t).to_string();
    }
    t.to_string()
}
