//! A runner for Prometheus' promqltest script format, so evaluator behaviour is pinned by
//! readable `.test` files (and the alerting crate can reuse the same data notation).
//!
//! Supported commands: `load <interval>` with series in expanding notation (`0+10x100`,
//! `1 _ 3 stale`, `_x3`, `1x4`), `clear`, `eval instant at <t> <expr>`, `eval range from
//! <t> to <t> step <d> <expr>`, the `eval_fail` / `eval_ordered` / `eval_warn` / `eval_info`
//! variants and `expect fail|ordered [msg:|regex: …]` lines. Values compare with a relative
//! tolerance of 1e-6; NaN equals NaN. Native histograms (`{{…}}`) and `expect warn|info`
//! annotations are not supported (annotation expectations are ignored).

use std::path::Path;

use crate::model::{stale_nan, Label, Labels, Sample};

use super::{Engine, EngineOptions, MemStorage, PromqlError, Value};

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

/// One point of a series in expanding notation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Point {
    /// `_`: no sample at this step.
    Missing,
    /// `stale`: a stale marker.
    Stale,
    /// A value.
    Value(f64),
}

/// Runs the script in `path` with a default engine.
pub fn run_file(path: &Path) -> std::io::Result<TestReport> {
    let text = std::fs::read_to_string(path)?;
    Ok(run_script(&text, &Engine::new(EngineOptions::default())))
}

/// What an `eval` expects.
struct Expectation {
    fail: bool,
    fail_msg: Option<String>,
    fail_regex: Option<String>,
    ordered: bool,
    scalar: Option<f64>,
    string: Option<String>,
    series: Vec<(Labels, Vec<Point>)>,
}

/// Runs a promqltest script against `engine`.
pub fn run_script(text: &str, engine: &Engine) -> TestReport {
    let lines: Vec<&str> = text.lines().collect();
    let mut storage = MemStorage::new();
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
            load(&mut storage, rest.trim(), &block)
        } else if line.starts_with("eval") {
            report.evals += 1;
            let r = eval(engine, &storage, line, &block);
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
    t == "clear" || t.starts_with("load ") || t.starts_with("eval ") || t.starts_with("eval_")
}

fn load(storage: &mut MemStorage, interval: &str, block: &[(usize, &str)]) -> Result<(), String> {
    let step = parse_duration_ms(interval)?;
    for (line, text) in block {
        let (labels, rest) = parse_series_desc(text).map_err(|e| format!("line {line}: {e}"))?;
        let points = expand_points(rest).map_err(|e| format!("line {line}: {e}"))?;
        for (k, p) in points.iter().enumerate() {
            let t = step * k as i64;
            match p {
                Point::Missing => {}
                Point::Stale => storage.add(&labels, Sample::new(t, stale_nan())),
                Point::Value(v) => storage.add(&labels, Sample::new(t, *v)),
            }
        }
    }
    Ok(())
}

fn eval(engine: &Engine, storage: &MemStorage, cmd: &str, block: &[(usize, &str)]) -> Result<(), String> {
    let (keyword, rest) = cmd
        .split_once(' ')
        .ok_or_else(|| format!("malformed eval {cmd:?}"))?;
    let mut exp = Expectation {
        fail: keyword == "eval_fail",
        fail_msg: None,
        fail_regex: None,
        ordered: keyword == "eval_ordered",
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
    let result: Result<Value, PromqlError>;
    let mut range: Option<(i64, i64)> = None;
    if let Some(r) = rest.strip_prefix("instant at ") {
        let (t, expr) = r
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("missing expression in {cmd:?}"))?;
        let t = parse_duration_ms(t)?;
        result = engine.instant_query(storage, expr.trim(), t).map(|r| r.value);
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
            .map(|r| r.value);
    } else {
        return Err(format!("malformed eval {cmd:?}"));
    }
    match result {
        Err(e) if exp.fail => check_fail_message(&exp, &e.to_string()),
        Err(e) => Err(format!("unexpected error: {e}")),
        Ok(v) if exp.fail => Err(format!("expected an error, got {v:?}")),
        Ok(v) => compare(&exp, v, range),
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
                        .map(|s| format!("{} {}", s.labels, s.v))
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
                        s.labels, s.v
                    ));
                };
                match points.as_slice() {
                    [Point::Value(e)] if almost_equal(*e, s.v) => {}
                    _ => return Err(format!("{}: expected {points:?}, got {}", s.labels, s.v)),
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
                let mut got: Vec<Point> = Vec::new();
                match range {
                    Some((start, step)) => {
                        for p in &s.samples {
                            let idx = usize::try_from((p.timestamp_ms - start) / step).unwrap_or(0);
                            while got.len() < idx {
                                got.push(Point::Missing);
                            }
                            got.push(Point::Value(p.value));
                        }
                    }
                    None => got.extend(s.samples.iter().map(|p| Point::Value(p.value))),
                }
                let mut want = points.clone();
                while want.last() == Some(&Point::Missing) {
                    want.pop();
                }
                let same = got.len() == want.len()
                    && got.iter().zip(want.iter()).all(|(g, w)| match (g, w) {
                        (Point::Value(a), Point::Value(b)) => almost_equal(*a, *b),
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
        })
        .collect();
    parts.join(" ")
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

/// Parses `5m`, `1h30m`, `10s`, `100ms`, `2d`, `1w`, `1y`, `0`, or plain seconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1000.0).round() as i64);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let n: i64 = rest
            .get(..digits)
            .unwrap_or("")
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = rest.get(digits..).unwrap_or("");
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = rest.get(..unit_len).unwrap_or("");
        rest = rest.get(unit_len..).unwrap_or("");
        let ms = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(format!("invalid unit {unit:?} in duration {s:?}")),
        };
        total += n * ms;
    }
    Ok(total)
}

/// Parses a number as Go's `ParseFloat` would (`Inf`, `-Inf`, `NaN`, exponents).
fn parse_number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("invalid number {s:?}"))
}

/// Expands `0+10x3 _ stale 5 _x2 1x2` into points.
pub fn expand_points(s: &str) -> Result<Vec<Point>, String> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        if tok == "_" {
            out.push(Point::Missing);
        } else if tok == "stale" {
            out.push(Point::Stale);
        } else if tok.starts_with("{{") {
            return Err(format!("native histograms are not supported: {tok:?}"));
        } else if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("invalid repetition {tok:?}"))?;
            out.extend(std::iter::repeat_n(Point::Missing, n));
        } else if let Some((base, times)) = split_times(tok) {
            let (start, inc) = split_increment(base)?;
            let mut v = start;
            for _ in 0..=times {
                out.push(Point::Value(v));
                v += inc;
            }
        } else {
            out.push(Point::Value(parse_number(tok)?));
        }
    }
    Ok(out)
}

/// `a+bxn` → (`a+b`, n) when the token ends in `x<digits>`.
fn split_times(tok: &str) -> Option<(&str, usize)> {
    let x = tok.rfind('x')?;
    let n = tok.get(x + 1..)?;
    if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((tok.get(..x)?, n.parse().ok()?))
}

/// `a+b` / `a-b` / `a` → (a, ±b).
fn split_increment(base: &str) -> Result<(f64, f64), String> {
    let bytes = base.as_bytes();
    for i in 1..bytes.len() {
        let c = bytes.get(i).copied().unwrap_or(b' ');
        let prev = bytes.get(i - 1).copied().unwrap_or(b' ');
        if (c == b'+' || c == b'-') && prev != b'e' && prev != b'E' {
            let a = parse_number(base.get(..i).unwrap_or(""))?;
            let b = parse_number(base.get(i + 1..).unwrap_or(""))?;
            return Ok((a, if c == b'-' { -b } else { b }));
        }
    }
    Ok((parse_number(base)?, 0.0))
}

/// Splits `name{a="b", c='d'} rest` into labels and the rest of the line.
pub fn parse_series_desc(s: &str) -> Result<(Labels, &str), String> {
    let s = s.trim();
    let name_len = s
        .char_indices()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .count();
    let name = s.get(..name_len).unwrap_or("");
    let mut labels: Vec<Label> = Vec::new();
    if !name.is_empty() {
        labels.push(Label::new("__name__", name));
    }
    let mut rest = s.get(name_len..).unwrap_or("");
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut end = None;
        let mut key = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i);
                    break;
                }
                ',' | ' ' | '\t' => {}
                '=' => {}
                '"' | '\'' => {
                    let mut value = String::new();
                    let mut closed = false;
                    while let Some((_, c2)) = chars.next() {
                        match c2 {
                            '\\' => match chars.next().map(|(_, e)| e) {
                                Some('n') => value.push('\n'),
                                Some('t') => value.push('\t'),
                                Some(other) => value.push(other),
                                None => {}
                            },
                            q if q == c => {
                                closed = true;
                                break;
                            }
                            other => value.push(other),
                        }
                    }
                    if !closed {
                        return Err(format!("unterminated string in {s:?}"));
                    }
                    if key.is_empty() {
                        return Err(format!("label value without name in {s:?}"));
                    }
                    labels.push(Label::new(std::mem::take(&mut key), value));
                }
                c if c.is_ascii_alphanumeric() || c == '_' => key.push(c),
                other => return Err(format!("unexpected {other:?} in series {s:?}")),
            }
        }
        let end = end.ok_or_else(|| format!("missing '}}' in {s:?}"))?;
        rest = inner.get(end + 1..).unwrap_or("");
    } else if name.is_empty() {
        return Err(format!("invalid series description {s:?}"));
    }
    let labels = Labels::new(labels).map_err(|e| e.to_string())?;
    Ok((labels, rest))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn expanding_notation() {
        let p = expand_points("-2+4x3 1-2x2 _x2 1x2 stale _ Inf").unwrap();
        let v = |x| Point::Value(x);
        assert_eq!(
            p,
            vec![
                v(-2.0),
                v(2.0),
                v(6.0),
                v(10.0),
                v(1.0),
                v(-1.0),
                v(-3.0),
                Point::Missing,
                Point::Missing,
                v(1.0),
                v(1.0),
                v(1.0),
                Point::Stale,
                Point::Missing,
                v(f64::INFINITY)
            ]
        );
    }

    #[test]
    fn series_descriptions() {
        let (l, rest) = parse_series_desc(r#"foo{a="b", c='d\"'} 1 2"#).unwrap();
        assert_eq!(l.to_string(), r#"foo{a="b", c="d\""}"#);
        assert_eq!(rest.trim(), "1 2");
        let (l, _) = parse_series_desc("{} 1").unwrap();
        assert!(l.is_empty());
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
    }
}
