//! Parser for the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text.
//!
//! Follows what Prometheus ingests: every sample line becomes a sample; `# TYPE` decides
//! whether it is a counter (counters, histogram/summary `_bucket`, `_count`, `_sum`) or a
//! gauge; OpenMetrics `_created` series are skipped, as Prometheus does by default; label
//! values are unescaped (`\\`, `\"`, `\n`); explicit timestamps are milliseconds in 0.0.4 and
//! seconds in OpenMetrics; OpenMetrics must end with `# EOF`. Any malformed line fails the
//! whole scrape with the line number, like Prometheus.

use std::collections::HashMap;

use crate::model::MetricKind;

/// Which format the body is in (from the response's Content-Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text`.
    OpenMetrics,
}

/// One parsed sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    /// Metric name as exposed.
    pub name: String,
    /// Labels in exposed order.
    pub labels: Vec<(String, String)>,
    /// Counter or gauge, from the family's `# TYPE`.
    pub kind: MetricKind,
    /// The value.
    pub value: f64,
    /// Explicit timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// The family name when this is a `_bucket`, `_sum` or `_count` sample of a family of
    /// `# TYPE histogram` (not gauge histograms), for converting them to native histograms.
    pub histogram_family: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FamilyType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Other,
}

/// Parses a whole exposition body. The error names the line and what is wrong with it.
pub fn parse(text: &str, format: Format) -> Result<Vec<ParsedSample>, String> {
    let mut types: HashMap<String, FamilyType> = HashMap::new();
    let mut out = Vec::new();
    let mut saw_eof = false;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = if format == Format::Text { raw.trim() } else { raw };
        if saw_eof {
            if line.is_empty() && format == Format::OpenMetrics {
                continue;
            }
            return Err(format!("line {line_no}: content after # EOF"));
        }
        if line.is_empty() {
            if format == Format::OpenMetrics {
                return Err(format!("line {line_no}: empty line"));
            }
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            if comment == "EOF" && format == Format::OpenMetrics {
                saw_eof = true;
                continue;
            }
            let mut parts = comment.splitn(3, [' ', '\t']);
            if parts.next() == Some("TYPE") {
                let name = parts.next().unwrap_or_default();
                let kind = match parts.next().map(str::trim) {
                    Some("counter") => FamilyType::Counter,
                    Some("gauge") => FamilyType::Gauge,
                    Some("histogram") => FamilyType::Histogram,
                    Some("gaugehistogram") => FamilyType::GaugeHistogram,
                    Some("summary") => FamilyType::Summary,
                    Some("untyped" | "unknown" | "info" | "stateset") => FamilyType::Other,
                    other => return Err(format!("line {line_no}: unknown metric type {other:?}")),
                };
                types.insert(name.to_string(), kind);
            }
            continue;
        }
        let mut sample = parse_sample(line, format).map_err(|e| format!("line {line_no}: {e}"))?;
        let (family, kind) = family_of(&sample.name, &types);
        if format == Format::OpenMetrics
            && sample.name.ends_with("_created")
            && matches!(
                family,
                FamilyType::Counter | FamilyType::Histogram | FamilyType::Summary
            )
        {
            continue;
        }
        sample.kind = kind;
        if family == FamilyType::Histogram {
            sample.histogram_family = histogram_family(&sample.name, &types);
        }
        out.push(sample);
    }
    if format == Format::OpenMetrics && !saw_eof {
        return Err("OpenMetrics body does not end with # EOF".to_string());
    }
    Ok(out)
}

/// The family type a sample name belongs to and the kind it gets.
fn family_of(name: &str, types: &HashMap<String, FamilyType>) -> (FamilyType, MetricKind) {
    if let Some(t) = types.get(name) {
        let kind = if *t == FamilyType::Counter {
            MetricKind::Counter
        } else {
            MetricKind::Gauge
        };
        return (*t, kind);
    }
    for suffix in [
        "_total", "_bucket", "_count", "_sum", "_created", "_gcount", "_gsum",
    ] {
        let Some(base) = name.strip_suffix(suffix) else {
            continue;
        };
        let Some(t) = types.get(base) else { continue };
        let kind = match (t, suffix) {
            (FamilyType::Counter, "_total") => MetricKind::Counter,
            (FamilyType::Histogram | FamilyType::Summary, "_bucket" | "_count" | "_sum") => {
                MetricKind::Counter
            }
            _ => MetricKind::Gauge,
        };
        return (*t, kind);
    }
    (FamilyType::Other, MetricKind::Gauge)
}

/// The histogram family a `_bucket`, `_sum` or `_count` sample belongs to.
fn histogram_family(name: &str, types: &HashMap<String, FamilyType>) -> Option<String> {
    for suffix in ["_bucket", "_count", "_sum"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base) == Some(&FamilyType::Histogram) {
                return Some(base.to_string());
            }
        }
    }
    None
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn parse_sample(line: &str, format: Format) -> Result<ParsedSample, String> {
    let mut chars = line.char_indices().peekable();
    match chars.peek() {
        Some((_, c)) if is_name_start(*c) => {}
        _ => return Err("expected a metric name".to_string()),
    }
    let mut name_end = line.len();
    for (i, c) in line.char_indices() {
        if !is_name_char(c) {
            name_end = i;
            break;
        }
    }
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if format == Format::Text {
        rest = rest.trim_start();
    }
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after, format)?;
        labels = parsed;
        rest = remaining;
    }
    // Drop an OpenMetrics exemplar.
    if let Some(pos) = rest.find(" # ") {
        rest = &rest[..pos];
    }
    let mut fields = rest.split_whitespace();
    let value_text = fields.next().ok_or("missing value")?;
    let value = parse_value(value_text).ok_or_else(|| format!("invalid value {value_text:?}"))?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(t) => Some(parse_timestamp(t, format).ok_or_else(|| format!("invalid timestamp {t:?}"))?),
    };
    if let Some(extra) = fields.next() {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    Ok(ParsedSample {
        name: name.to_string(),
        labels,
        kind: MetricKind::Gauge,
        value,
        timestamp_ms,
        histogram_family: None,
    })
}

/// Parses `name="value",…}`; returns the labels and the text after `}`.
/// Label pairs in exposed order.
type Labels = Vec<(String, String)>;

fn parse_labels(text: &str, format: Format) -> Result<(Labels, &str), String> {
    let mut labels: Vec<(String, String)> = Vec::new();
    let mut rest = text;
    loop {
        if format == Format::Text {
            rest = rest.trim_start();
        }
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let name_end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        let label = &rest[..name_end];
        if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
            return Err("invalid label name".to_string());
        }
        rest = &rest[name_end..];
        if format == Format::Text {
            rest = rest.trim_start();
        }
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after label {label:?}"))?;
        if format == Format::Text {
            rest = rest.trim_start();
        }
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("expected '\"' for label {label:?}"))?;
        let mut value = String::new();
        let mut closed = None;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            if escaped {
                match c {
                    'n' => value.push('\n'),
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    other => {
                        value.push('\\');
                        value.push(other);
                    }
                }
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                closed = Some(i);
                break;
            } else {
                value.push(c);
            }
        }
        let end = closed.ok_or_else(|| format!("unterminated value of label {label:?}"))?;
        rest = &rest[end + 1..];
        if labels.iter().any(|(k, _)| k == label) {
            return Err(format!("duplicate label {label:?}"));
        }
        labels.push((label.to_string(), value));
        if format == Format::Text {
            rest = rest.trim_start();
        }
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected ',' or '}' after a label".to_string());
        }
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "+inf" | "inf" => return Some(f64::INFINITY),
        "-Inf" | "-inf" => return Some(f64::NEG_INFINITY),
        "NaN" | "nan" => return Some(f64::NAN),
        _ => {}
    }
    if !text.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.') {
        return None;
    }
    text.parse().ok()
}

fn parse_timestamp(text: &str, format: Format) -> Option<i64> {
    match format {
        Format::Text => text.parse::<i64>().ok(),
        Format::OpenMetrics => {
            let secs: f64 = text.parse().ok()?;
            if !secs.is_finite() {
                return None;
            }
            Some((secs * 1000.0).round() as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_format_with_all_types() {
        let body = "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n\
            http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
            http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\n\
            # TYPE temp gauge\ntemp{path=\"C:\\\\DIR\\\\\",q=\"say \\\"hi\\\"\\n\",} -1.5e3\n\
            # TYPE lat histogram\nlat_bucket{le=\"0.1\"} 5\nlat_bucket{le=\"+Inf\"} 7\nlat_sum 1.5\nlat_count 7\n\
            # TYPE rpc summary\nrpc{quantile=\"0.5\"} NaN\nrpc_sum 2\nrpc_count 3\nrpc_created 1.6e9\n\
            untyped_thing +Inf\n";
        let s = parse(body, Format::Text).unwrap();
        assert_eq!(s.len(), 12);
        assert_eq!(s[0].name, "http_requests_total");
        assert_eq!(s[0].kind, MetricKind::Counter);
        assert_eq!(s[0].timestamp_ms, Some(1_395_066_363_000));
        assert_eq!(s[1].value, 3.0);
        assert_eq!(s[2].labels[0], ("path".to_string(), "C:\\DIR\\".to_string()));
        assert_eq!(s[2].labels[1].1, "say \"hi\"\n");
        assert_eq!((s[2].value, s[2].kind), (-1500.0, MetricKind::Gauge));
        assert_eq!(s[4].labels[0].1, "+Inf");
        assert_eq!(s[4].kind, MetricKind::Counter);
        assert_eq!(s[6].kind, MetricKind::Counter);
        assert!(s[7].value.is_nan());
        assert_eq!(s[7].kind, MetricKind::Gauge);
        assert_eq!(s[10].name, "rpc_created"); // kept in 0.0.4, as Prometheus does
        assert_eq!(s[11].value, f64::INFINITY);
    }

    #[test]
    fn openmetrics() {
        let body = "# TYPE foo counter\n# HELP foo Foo.\nfoo_total{a=\"b\"} 17.0 1520879607.789 # {trace_id=\"x\"} 1 1\n\
            foo_created{a=\"b\"} 1520430000.123\n# TYPE g gauge\n# UNIT g seconds\ng 1\n# EOF\n";
        let s = parse(body, Format::OpenMetrics).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].timestamp_ms, Some(1_520_879_607_789));
        assert_eq!(s[0].kind, MetricKind::Counter);
        assert_eq!(s[1].name, "g");
        assert!(parse("g 1\n", Format::OpenMetrics).unwrap_err().contains("EOF"));
        assert!(parse("g 1\n# EOF\ng 2\n", Format::OpenMetrics)
            .unwrap_err()
            .contains("after # EOF"));
    }

    #[test]
    fn malformed_lines_name_the_line() {
        for bad in [
            "x{a=\"1\" 1",
            "x{a=1} 1",
            "x one",
            "{} 1",
            "x 1 2 3",
            "x{a=\"1\",a=\"2\"} 1",
            "# TYPE x bogus",
        ] {
            let err = parse(&format!("ok 1\n{bad}\n"), Format::Text).unwrap_err();
            assert!(err.starts_with("line 2:"), "{bad}: {err}");
        }
    }
}
