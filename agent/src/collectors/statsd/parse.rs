//! Parser for StatsD lines (`name:value|type[|@rate][|#tag:value,…]`), including DogStatsD
//! tags. One packet may hold several lines separated by newlines.

/// The StatsD metric types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    /// `c`: add to a running count.
    Counter,
    /// `g`: set a value, or add to it when the value has an explicit sign.
    Gauge,
    /// `ms`: a duration in milliseconds.
    Timer,
    /// `h` or `d`: a unitless observation.
    Histogram,
    /// `s`: count unique values.
    Set,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct StatLine {
    /// Metric name as sent (`api.requests`).
    pub name: String,
    /// Numeric value (for sets: 0, see `set_member`).
    pub value: f64,
    /// The raw value of a set line.
    pub set_member: String,
    /// Type.
    pub kind: StatKind,
    /// Gauge value had an explicit `+`/`-` sign: relative change.
    pub relative: bool,
    /// Sample rate in (0, 1].
    pub rate: f64,
    /// DogStatsD tags as (key, value); tags without a value are kept with value "".
    pub tags: Vec<(String, String)>,
}

/// Parses one line; the error says what is wrong.
pub fn parse_line(line: &str) -> Result<StatLine, String> {
    let (name, rest) = line.split_once(':').ok_or("missing ':'")?;
    if name.is_empty() {
        return Err("empty name".to_string());
    }
    let mut parts = rest.split('|');
    let value_text = parts.next().unwrap_or_default();
    let kind = match parts.next() {
        Some("c") => StatKind::Counter,
        Some("g") => StatKind::Gauge,
        Some("ms") => StatKind::Timer,
        Some("h" | "d") => StatKind::Histogram,
        Some("s") => StatKind::Set,
        Some(other) => return Err(format!("unknown type {other:?}")),
        None => return Err("missing type".to_string()),
    };
    let mut rate = 1.0;
    let mut tags = Vec::new();
    for part in parts {
        if let Some(r) = part.strip_prefix('@') {
            rate = r
                .parse::<f64>()
                .map_err(|_| format!("invalid sample rate {r:?}"))?;
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(format!("sample rate {r} out of (0, 1]"));
            }
        } else if let Some(list) = part.strip_prefix('#') {
            for tag in list.split(',') {
                if tag.is_empty() {
                    continue;
                }
                match tag.split_once(':') {
                    Some((k, v)) => tags.push((k.to_string(), v.to_string())),
                    None => tags.push((tag.to_string(), String::new())),
                }
            }
        }
    }
    if kind == StatKind::Set {
        return Ok(StatLine {
            name: name.to_string(),
            value: 0.0,
            set_member: value_text.to_string(),
            kind,
            relative: false,
            rate,
            tags,
        });
    }
    let value: f64 = value_text
        .parse()
        .map_err(|_| format!("invalid value {value_text:?}"))?;
    if !value.is_finite() {
        return Err(format!("invalid value {value_text:?}"));
    }
    let relative = kind == StatKind::Gauge && (value_text.starts_with('+') || value_text.starts_with('-'));
    Ok(StatLine {
        name: name.to_string(),
        value,
        set_member: String::new(),
        kind,
        relative,
        rate,
        tags,
    })
}

/// A Prometheus-safe name: characters outside `[a-zA-Z0-9_:]` become `_`, and a leading digit
/// gets a `_` in front (`api.requests-2xx` → `api_requests_2xx`).
pub fn sanitize(name: &str, allow_colon: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
        }
        if c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':') {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines() {
        let c = parse_line("api.requests:3|c|@0.5|#env:prod,region:eu").unwrap();
        assert_eq!((c.kind, c.value, c.rate), (StatKind::Counter, 3.0, 0.5));
        assert_eq!(
            c.tags,
            vec![("env".into(), "prod".into()), ("region".into(), "eu".into())]
        );
        let g = parse_line("queue.depth:-4|g").unwrap();
        assert!(g.relative && g.value == -4.0);
        assert!(!parse_line("queue.depth:4|g").unwrap().relative);
        assert_eq!(parse_line("t:12.5|ms").unwrap().kind, StatKind::Timer);
        assert_eq!(parse_line("h:1|d").unwrap().kind, StatKind::Histogram);
        assert_eq!(parse_line("users:alice|s").unwrap().set_member, "alice");
        for bad in [
            "novalue", ":1|c", "x:1", "x:abc|c", "x:1|q", "x:1|c|@0", "x:1|c|@2", "x:nan|g",
        ] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
        assert_eq!(sanitize("api.requests-2xx", false), "api_requests_2xx");
        assert_eq!(sanitize("5xx", false), "_5xx");
    }
}
