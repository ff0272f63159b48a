//! The series notation shared by promqltest scripts and rule unit tests: `name{a="b"}`
//! descriptions, expanding value notation (`0+10x3 _ stale`) and durations (`1h30m`).

use crate::model::{stale_nan, FloatHistogram, Label, Labels, Sample};

use super::super::MemStorage;
use super::hist_notation;

/// One point of a series in expanding notation.
#[derive(Debug, Clone, PartialEq)]
pub enum Point {
    /// `_`: no sample at this step.
    Missing,
    /// `stale`: a stale marker.
    Stale,
    /// A value.
    Value(f64),
    /// A native histogram (`{{schema:0 count:1 buckets:[1]}}`).
    Histogram(Box<FloatHistogram>),
}

/// Parses `5m`, `1h30m`, `10s`, `100ms`, `2d`, `1w`, `1y`, `0`, or plain seconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let d = didban_base::parse_seconds_or_duration(s).map_err(|e| e.to_string())?;
    i64::try_from(d.as_millis()).map_err(|_| format!("duration {s:?} is too long"))
}

/// Parses a number as Go's `ParseFloat` would (`Inf`, `-Inf`, `NaN`, exponents).
pub(super) fn parse_number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("invalid number {s:?}"))
}

/// Expands `0+10x3 _ stale 5 _x2 1x2 {{schema:0 count:1 buckets:[1]}}x2` into points.
pub fn expand_points(s: &str) -> Result<Vec<Point>, String> {
    let mut out = Vec::new();
    for tok in hist_notation::tokens(s)? {
        if tok == "_" {
            out.push(Point::Missing);
        } else if tok == "stale" {
            out.push(Point::Stale);
        } else if tok.starts_with("{{") {
            for h in hist_notation::expand(tok)? {
                out.push(Point::Histogram(Box::new(h)));
            }
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

/// Adds a series written in test notation — `series` like `up{job="a"}`, `values` like
/// `0+1x10 _ stale` — to `storage`, one point every `interval_ms` starting at 0.
pub fn add_series(
    storage: &mut MemStorage,
    series: &str,
    values: &str,
    interval_ms: i64,
) -> Result<(), String> {
    let (labels, rest) = parse_series_desc(series)?;
    if !rest.trim().is_empty() {
        return Err(format!("unexpected {rest:?} after series {series:?}"));
    }
    add_points(storage, &labels, &expand_points(values)?, interval_ms);
    Ok(())
}

/// Adds expanded points to a series, point `k` at `k * interval_ms`.
pub fn add_points(storage: &mut MemStorage, labels: &Labels, points: &[Point], interval_ms: i64) {
    for (k, p) in points.iter().enumerate() {
        let t = interval_ms.saturating_mul(i64::try_from(k).unwrap_or(i64::MAX));
        match p {
            Point::Missing => {}
            Point::Stale => storage.add(labels, Sample::new(t, stale_nan())),
            Point::Value(v) => storage.add(labels, Sample::new(t, *v)),
            Point::Histogram(h) => storage.add_histogram(labels, t, (**h).clone()),
        }
    }
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

    #[test]
    fn add_series_places_points_on_the_interval() {
        use crate::query::Queryable;
        let mut s = MemStorage::new();
        add_series(&mut s, r#"up{job="a"}"#, "1 _ stale 4", 15_000).unwrap();
        let got = s.select(&[], 0, 100_000).unwrap();
        let times: Vec<i64> = got[0].samples.iter().map(|p| p.timestamp_ms).collect();
        assert_eq!(times, [0, 30_000, 45_000]);
        assert!(crate::model::is_stale_nan(got[0].samples[1].value));
        assert!(add_series(&mut s, "up 1", "1", 1).is_err());
    }
}
