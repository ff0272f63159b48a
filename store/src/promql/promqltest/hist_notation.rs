//! Native histograms in promqltest notation, as Prometheus' test scripts write them:
//! `{{schema:0 sum:5 count:4 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 1] offset:0
//! n_buckets:[1] n_offset:0 custom_values:[1 5] counter_reset_hint:gauge}}` (every field
//! optional; bucket lists are absolute counts of consecutive buckets starting at the offset),
//! and the series forms `{{…}}x3` (repeated) and `{{…}}+{{…}}x3` / `{{…}}-{{…}}x3` (each
//! step adds or subtracts the second histogram).

use std::sync::Arc;

use crate::model::{CounterResetHint, FloatHistogram, CUSTOM_BUCKETS_SCHEMA};

/// Splits a value list into tokens at whitespace outside `{{ … }}`.
pub(super) fn tokens(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    let bytes = s.as_bytes();
    let mut i = 0usize;
    while i < bytes.len() {
        let c = bytes.get(i).copied().unwrap_or(b' ');
        let next = bytes.get(i + 1).copied().unwrap_or(b' ');
        if c == b'{' && next == b'{' {
            depth += 1;
            start.get_or_insert(i);
            i += 2;
            continue;
        }
        if c == b'}' && next == b'}' {
            depth = depth
                .checked_sub(1)
                .ok_or_else(|| format!("unbalanced '}}}}' in {s:?}"))?;
            i += 2;
            continue;
        }
        if c.is_ascii_whitespace() && depth == 0 {
            if let Some(st) = start.take() {
                out.push(s.get(st..i).unwrap_or(""));
            }
        } else {
            start.get_or_insert(i);
        }
        i += 1;
    }
    if depth != 0 {
        return Err(format!("unterminated '{{{{' in {s:?}"));
    }
    if let Some(st) = start {
        out.push(s.get(st..).unwrap_or(""));
    }
    Ok(out)
}

/// Expands a histogram token (`{{…}}`, `{{…}}xN`, `{{…}}+{{…}}xN`, `{{…}}-{{…}}xN`).
pub(super) fn expand(tok: &str) -> Result<Vec<FloatHistogram>, String> {
    let (first, rest) = literal(tok)?;
    if rest.is_empty() {
        return Ok(vec![first]);
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n: usize = n.parse().map_err(|_| format!("invalid repetition in {tok:?}"))?;
        return Ok(std::iter::repeat_n(first, n + 1).collect());
    }
    let sign = match rest.chars().next() {
        Some('+') => 1.0,
        Some('-') => -1.0,
        _ => return Err(format!("unexpected {rest:?} after histogram in {tok:?}")),
    };
    let (inc, tail) = literal(rest.get(1..).unwrap_or(""))?;
    let n: usize = tail
        .strip_prefix('x')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("expected xN after the increment in {tok:?}"))?;
    let mut out = Vec::with_capacity(n + 1);
    let mut cur = first;
    for _ in 0..=n {
        out.push(cur.clone());
        let r = if sign > 0.0 { cur.add(&inc) } else { cur.sub(&inc) };
        r.map_err(|e| format!("{tok:?}: {e}"))?;
        // Keep the hint of the first histogram for every step.
        cur.counter_reset_hint = out.first().map(|h| h.counter_reset_hint).unwrap_or_default();
    }
    Ok(out)
}

/// Parses one `{{…}}` at the start of `s`, returning it and the text after it.
fn literal(s: &str) -> Result<(FloatHistogram, &str), String> {
    let inner_start = s
        .strip_prefix("{{")
        .ok_or_else(|| format!("expected '{{{{' at {s:?}"))?;
    let end = inner_start
        .find("}}")
        .ok_or_else(|| format!("missing '}}}}' in {s:?}"))?;
    let body = inner_start.get(..end).unwrap_or("");
    let rest = inner_start.get(end + 2..).unwrap_or("");
    Ok((parse_body(body)?, rest))
}

fn parse_body(body: &str) -> Result<FloatHistogram, String> {
    let mut h = FloatHistogram::default();
    let (mut pos, mut neg, mut pos_off, mut neg_off) = (Vec::new(), Vec::new(), 0i32, 0i32);
    let mut count: Option<f64> = None;
    let mut rest = body.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once(':')
            .ok_or_else(|| format!("expected key:value in histogram {body:?}"))?;
        let key = key.trim();
        let after = after.trim_start();
        let (value, next) = if after.starts_with('[') {
            let close = after
                .find(']')
                .ok_or_else(|| format!("missing ']' in histogram {body:?}"))?;
            (
                after.get(1..close).unwrap_or(""),
                after.get(close + 1..).unwrap_or(""),
            )
        } else {
            match after.split_once(char::is_whitespace) {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        rest = next.trim_start();
        let num = |v: &str| -> Result<f64, String> {
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("invalid number {v:?} for {key} in histogram {body:?}"))
        };
        let int = |v: &str| -> Result<i32, String> {
            v.trim()
                .parse::<i32>()
                .map_err(|_| format!("invalid integer {v:?} for {key} in histogram {body:?}"))
        };
        let list = |v: &str| -> Result<Vec<f64>, String> { v.split_whitespace().map(num).collect() };
        match key {
            "schema" => h.schema = int(value)?,
            "sum" => h.sum = num(value)?,
            "count" => count = Some(num(value)?),
            "z_bucket" => h.zero_count = num(value)?,
            "z_bucket_w" => h.zero_threshold = num(value)?,
            "buckets" => pos = list(value)?,
            "n_buckets" => neg = list(value)?,
            "offset" => pos_off = int(value)?,
            "n_offset" => neg_off = int(value)?,
            "custom_values" => h.custom_values = Arc::from(list(value)?),
            "counter_reset_hint" => {
                h.counter_reset_hint = match value {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::CounterReset,
                    "not_reset" => CounterResetHint::NotCounterReset,
                    "gauge" => CounterResetHint::Gauge,
                    other => return Err(format!("invalid counter_reset_hint {other:?}")),
                }
            }
            other => return Err(format!("unknown histogram field {other:?} in {body:?}")),
        }
    }
    if !h.custom_values.is_empty() && h.schema == 0 {
        h.schema = CUSTOM_BUCKETS_SCHEMA;
    }
    let pairs = |off: i32, counts: &[f64]| -> Vec<(i32, f64)> {
        counts
            .iter()
            .enumerate()
            .map(|(k, c)| (off.saturating_add(i32::try_from(k).unwrap_or(i32::MAX)), *c))
            .collect()
    };
    h.set_positive(&pairs(pos_off, &pos));
    h.set_negative(&pairs(neg_off, &neg));
    h.count = count.unwrap_or_else(|| h.zero_count + pos.iter().sum::<f64>() + neg.iter().sum::<f64>());
    h.validate()
        .map_err(|e| format!("invalid histogram {body:?}: {e}"))?;
    Ok(h)
}

/// Prometheus' notation for a histogram (non-empty buckets only), for failure messages.
pub(super) fn format(h: &FloatHistogram) -> String {
    let mut parts = vec![
        format!("schema:{}", h.schema),
        format!("count:{}", h.count),
        format!("sum:{}", h.sum),
    ];
    if h.zero_count != 0.0 || h.zero_threshold != 0.0 {
        parts.push(format!(
            "z_bucket:{} z_bucket_w:{}",
            h.zero_count, h.zero_threshold
        ));
    }
    let side = |pairs: Vec<(i32, f64)>| -> String {
        let items: Vec<String> = pairs
            .into_iter()
            .filter(|p| p.1 != 0.0)
            .map(|(i, c)| format!("{i}:{c}"))
            .collect();
        items.join(" ")
    };
    let pos = side(h.positive_pairs());
    if !pos.is_empty() {
        parts.push(format!("buckets:[{pos}]"));
    }
    let neg = side(h.negative_pairs());
    if !neg.is_empty() {
        parts.push(format!("n_buckets:[{neg}]"));
    }
    if !h.custom_values.is_empty() {
        parts.push(format!("custom_values:{:?}", h.custom_values));
    }
    if h.counter_reset_hint != CounterResetHint::Unknown {
        parts.push(format!("counter_reset_hint:{:?}", h.counter_reset_hint));
    }
    format!("{{{{{}}}}}", parts.join(" "))
}

/// True when `got` matches `want` within the runner's float tolerance: same schema, zero
/// threshold and custom bounds; count, sum, zero count and every non-empty bucket
/// approximately equal; the counter reset hint compared only when `want` names one.
pub(super) fn matches(want: &FloatHistogram, got: &FloatHistogram, eq: fn(f64, f64) -> bool) -> bool {
    let nonempty = |p: Vec<(i32, f64)>| -> Vec<(i32, f64)> { p.into_iter().filter(|x| x.1 != 0.0).collect() };
    let same_list = |a: Vec<(i32, f64)>, b: Vec<(i32, f64)>| {
        let (a, b) = (nonempty(a), nonempty(b));
        a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.0 == y.0 && eq(x.1, y.1))
    };
    want.schema == got.schema
        && eq(want.zero_threshold, got.zero_threshold)
        && want.custom_values == got.custom_values
        && eq(want.count, got.count)
        && eq(want.sum, got.sum)
        && eq(want.zero_count, got.zero_count)
        && same_list(want.positive_pairs(), got.positive_pairs())
        && same_list(want.negative_pairs(), got.negative_pairs())
        && (want.counter_reset_hint == CounterResetHint::Unknown
            || want.counter_reset_hint == got.counter_reset_hint)
}
