//! OpenTelemetry → Prometheus names: metric names with unit and type suffixes, label
//! names, and attribute values turned into label values.
//!
//! The rules follow the OpenTelemetry "Prometheus and OpenMetrics compatibility"
//! specification; `docs/otlp-mapping.md` lists them with examples.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::AnyValue;

/// What kind of Prometheus metric an OTLP metric becomes; decides the suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// Gauges: unit `1` becomes `_ratio`.
    Gauge,
    /// Monotonic sums: `_total` is appended.
    Counter,
    /// Non-monotonic sums, histograms, summaries: unit suffix only.
    Other,
}

/// The Prometheus metric name for an OTLP metric name, unit and kind.
///
/// Invalid characters become `_`, runs of `_` collapse into one, a leading digit gets a `_`
/// prefix; the unit suffix is appended unless the name already ends with it, then `_total`
/// for counters (once).
pub fn metric_name(name: &str, unit: &str, kind: NameKind) -> String {
    let mut out = sanitize(name, true);
    let mut suffix = unit_suffix(unit);
    if suffix.is_none() && unit == "1" && kind == NameKind::Gauge {
        suffix = Some("ratio".to_string());
    }
    if let Some(suffix) = suffix {
        if !ends_with_word(&out, &suffix) {
            push_word(&mut out, &suffix);
        }
    }
    if kind == NameKind::Counter && !ends_with_word(&out, "total") {
        push_word(&mut out, "total");
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The Prometheus label name for an attribute key: invalid characters become `_`, runs of
/// `_` collapse, a leading digit gets a `key_` prefix and a leading `__` (reserved for
/// Prometheus' own labels such as `__name__`) gets a `key` prefix.
pub fn label_name(key: &str) -> String {
    let sanitized = sanitize(key, false);
    if sanitized.is_empty() {
        return "key_".to_string();
    }
    if sanitized.starts_with(|c: char| c.is_ascii_digit()) {
        return format!("key_{sanitized}");
    }
    if sanitized.starts_with("__") {
        return format!("key{sanitized}");
    }
    sanitized
}

/// Replaces characters outside `[a-zA-Z0-9_]` (plus `:` in metric names) with `_` and
/// collapses runs of `_`. A leading `__` is kept so reserved names stay recognisable; a
/// leading digit in a metric name gets a `_` prefix.
fn sanitize(input: &str, metric: bool) -> String {
    let mut out = String::with_capacity(input.len());
    let mut previous_underscore = false;
    for c in input.chars() {
        let keep = c.is_ascii_alphanumeric() || (metric && c == ':');
        if keep {
            out.push(c);
            previous_underscore = false;
        } else {
            // The first two underscores of a leading `__` survive (see label_name).
            let leading_pair = out == "_" && input.starts_with("__");
            if !previous_underscore || leading_pair {
                out.push('_');
            }
            previous_underscore = true;
        }
    }
    if metric && out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn ends_with_word(name: &str, word: &str) -> bool {
    name == word || name.ends_with(&format!("_{word}"))
}

fn push_word(name: &mut String, word: &str) {
    if !name.is_empty() && !name.ends_with('_') {
        name.push('_');
    }
    name.push_str(word);
}

/// The Prometheus suffix for a UCUM unit: `s` → `seconds`, `By/s` → `bytes_per_second`;
/// annotations in `{...}` are dropped; unknown units are kept, sanitised. `1` and the empty
/// unit give no suffix.
pub fn unit_suffix(unit: &str) -> Option<String> {
    let without_annotations = strip_annotations(unit);
    let unit = without_annotations.trim();
    if unit.is_empty() || unit == "1" {
        return None;
    }
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (unit, None),
    };
    let mut words = Vec::new();
    if !main.is_empty() && main != "1" {
        words.push(main_unit(main));
    }
    if let Some(per) = per {
        if !per.is_empty() {
            words.push(format!("per_{}", per_unit(per)));
        }
    }
    let joined = sanitize(&words.join("_"), false);
    let trimmed = joined.trim_matches('_');
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed.to_string())
    }
}

fn strip_annotations(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    let mut depth = 0usize;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn main_unit(unit: &str) -> String {
    let word = match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        other => other,
    };
    word.to_string()
}

fn per_unit(unit: &str) -> String {
    let word = match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    };
    word.to_string()
}

/// An attribute value as a label value: strings as they are, booleans and numbers in their
/// usual text form, bytes as base64, arrays and key-value lists as JSON.
pub fn attribute_value(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => format_float(*d),
        Some(Value::BytesValue(b)) => base64(b),
        Some(other) => json_value(Some(other)).to_string(),
    }
}

/// An attribute value as JSON, keeping its type: strings, booleans, integers and doubles as
/// themselves, bytes as base64, arrays and key-value lists as JSON arrays and objects.
pub fn json_value(value: Option<&Value>) -> serde_json::Value {
    match value {
        None => serde_json::Value::Null,
        Some(Value::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Value::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Value::IntValue(i)) => serde_json::Value::from(*i),
        Some(Value::DoubleValue(d)) => match serde_json::Number::from_f64(*d) {
            Some(n) => serde_json::Value::Number(n),
            None => serde_json::Value::String(format_float(*d)),
        },
        Some(Value::BytesValue(b)) => serde_json::Value::String(base64(b)),
        // An index into a profiles string table; meaningless without it, kept as a number.
        Some(Value::StringValueStrindex(i)) => serde_json::Value::from(*i),
        Some(Value::ArrayValue(a)) => {
            let mut items = Vec::with_capacity(a.values.len());
            for v in &a.values {
                items.push(json_value(v.value.as_ref()));
            }
            serde_json::Value::Array(items)
        }
        Some(Value::KvlistValue(kv)) => {
            let mut map = serde_json::Map::new();
            for pair in &kv.values {
                let v = json_value(pair.value.as_ref().and_then(|v| v.value.as_ref()));
                map.insert(pair.key.clone(), v);
            }
            serde_json::Value::Object(map)
        }
    }
}

/// A float the way Prometheus prints label values such as `le`: shortest round-trip decimal,
/// `+Inf`, `-Inf`, `NaN`.
pub fn format_float(v: f64) -> String {
    crate::selfmon::format_value(v)
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = u32::from(chunk.first().copied().unwrap_or(0));
        let b1 = u32::from(chunk.get(1).copied().unwrap_or(0));
        let b2 = u32::from(chunk.get(2).copied().unwrap_or(0));
        let n = (b0 << 16) | (b1 << 8) | b2;
        let symbols = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, s) in symbols.iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(TABLE[*s as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValue, KeyValueList};

    fn any(v: Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    #[test]
    fn metric_names_are_sanitised_and_suffixed() {
        assert_eq!(
            metric_name("http.server.duration", "s", NameKind::Other),
            "http_server_duration_seconds"
        );
        assert_eq!(
            metric_name("system.filesystem.usage", "By", NameKind::Gauge),
            "system_filesystem_usage_bytes"
        );
        assert_eq!(
            metric_name("requests", "{request}", NameKind::Counter),
            "requests_total"
        );
        assert_eq!(
            metric_name("requests_total", "", NameKind::Counter),
            "requests_total"
        );
        assert_eq!(
            metric_name("cpu.utilization", "1", NameKind::Gauge),
            "cpu_utilization_ratio"
        );
        assert_eq!(
            metric_name("cpu.ratio", "1", NameKind::Counter),
            "cpu_ratio_total"
        );
        assert_eq!(
            metric_name("latency", "ms", NameKind::Other),
            "latency_milliseconds"
        );
        assert_eq!(
            metric_name("net.io", "By/s", NameKind::Gauge),
            "net_io_bytes_per_second"
        );
        assert_eq!(
            metric_name("duration_seconds", "s", NameKind::Counter),
            "duration_seconds_total"
        );
        assert_eq!(metric_name("a..b--c", "", NameKind::Gauge), "a_b_c");
        assert_eq!(metric_name("9lives", "", NameKind::Gauge), "_9lives");
        assert_eq!(metric_name("ns:metric", "", NameKind::Gauge), "ns:metric");
        assert_eq!(
            metric_name("packets", "{packet}/s", NameKind::Gauge),
            "packets_per_second"
        );
        assert_eq!(metric_name("x", "widgets", NameKind::Gauge), "x_widgets");
        assert_eq!(metric_name("", "", NameKind::Gauge), "_");
    }

    #[test]
    fn label_names_are_sanitised() {
        assert_eq!(label_name("http.method"), "http_method");
        assert_eq!(label_name("2xx"), "key_2xx");
        assert_eq!(label_name("__name__"), "key__name_");
        assert_eq!(label_name("_private"), "_private");
        assert_eq!(label_name("a/b c"), "a_b_c");
        assert_eq!(label_name(""), "key_");
    }

    #[test]
    fn attribute_values_of_every_type_become_strings() {
        assert_eq!(attribute_value(Some(&any(Value::StringValue("x".into())))), "x");
        assert_eq!(attribute_value(Some(&any(Value::BoolValue(true)))), "true");
        assert_eq!(attribute_value(Some(&any(Value::IntValue(-7)))), "-7");
        assert_eq!(attribute_value(Some(&any(Value::DoubleValue(0.5)))), "0.5");
        assert_eq!(
            attribute_value(Some(&any(Value::BytesValue(b"hi!?".to_vec())))),
            "aGkhPw=="
        );
        let array = Value::ArrayValue(ArrayValue {
            values: vec![any(Value::StringValue("a".into())), any(Value::IntValue(1))],
        });
        assert_eq!(attribute_value(Some(&any(array))), r#"["a",1]"#);
        let kv = Value::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: "k".into(),
                value: Some(any(Value::BoolValue(false))),
                ..Default::default()
            }],
        });
        assert_eq!(attribute_value(Some(&any(kv))), r#"{"k":false}"#);
        assert_eq!(attribute_value(None), "");
    }
}
