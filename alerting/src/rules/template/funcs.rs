//! The functions Prometheus offers in alert templates (`humanize`, `printf`, …).

use super::exec::truthy;
use super::gofmt::{fmt_g, go_value, sprintf};
use super::value::TValue;

const FUNCTIONS: &[&str] = &[
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "printf",
    "print",
    "toUpper",
    "toLower",
    "title",
    "reReplaceAll",
    "match",
    "stripPort",
    "stripDomain",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "len",
    "index",
    "urlquery",
    "html",
    "js",
];

/// True when `name` is a function templates may call.
pub(crate) fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

/// Calls function `name`.
pub(crate) fn call(name: &str, args: Vec<TValue>) -> Result<TValue, String> {
    let one = |args: &[TValue]| -> Result<TValue, String> {
        match args {
            [a] => Ok(a.clone()),
            _ => Err(format!("wrong number of args: want 1 got {}", args.len())),
        }
    };
    Ok(match name {
        "humanize" => TValue::Str(humanize(to_float(&one(&args)?)?)),
        "humanize1024" => TValue::Str(humanize1024(to_float(&one(&args)?)?)),
        "humanizeDuration" => TValue::Str(humanize_duration(to_float(&one(&args)?)?)),
        "humanizePercentage" => TValue::Str(format!("{}%", fmt_g(to_float(&one(&args)?)? * 100.0, Some(4)))),
        "humanizeTimestamp" => TValue::Str(humanize_timestamp(to_float(&one(&args)?)?)),
        "printf" => {
            let mut it = args.into_iter();
            let Some(TValue::Str(f)) = it.next() else {
                return Err("printf needs a format string".into());
            };
            TValue::Str(sprintf(&f, &it.collect::<Vec<_>>()))
        }
        "print" => {
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                let both_non_str =
                    i > 0 && !matches!(a, TValue::Str(_)) && !matches!(args.get(i - 1), Some(TValue::Str(_)));
                if both_non_str {
                    s.push(' ');
                }
                s.push_str(&go_value(a));
            }
            TValue::Str(s)
        }
        "toUpper" => TValue::Str(to_str(&one(&args)?).to_uppercase()),
        "toLower" => TValue::Str(to_str(&one(&args)?).to_lowercase()),
        "title" => TValue::Str(title(&to_str(&one(&args)?))),
        "reReplaceAll" => {
            let [p, r, t] = args.as_slice() else {
                return Err("reReplaceAll needs pattern, replacement, text".into());
            };
            let re = regex::Regex::new(&to_str(p)).map_err(|e| format!("bad regexp {:?}: {e}", to_str(p)))?;
            let repl = go_replacement(&to_str(r));
            TValue::Str(re.replace_all(&to_str(t), repl.as_str()).into_owned())
        }
        "match" => {
            let [p, t] = args.as_slice() else {
                return Err("match needs pattern and text".into());
            };
            let re = regex::Regex::new(&to_str(p)).map_err(|e| format!("bad regexp {:?}: {e}", to_str(p)))?;
            TValue::Bool(re.is_match(&to_str(t)))
        }
        "stripPort" => {
            let s = to_str(&one(&args)?);
            TValue::Str(strip_port(&s))
        }
        "stripDomain" => {
            let s = to_str(&one(&args)?);
            let (host, port) = match s.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h.to_string(), format!(":{p}")),
                _ => (s.clone(), String::new()),
            };
            let short = host.split('.').next().unwrap_or("").to_string();
            TValue::Str(format!("{short}{port}"))
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
            let [a, b] = args.as_slice() else {
                return Err(format!("{name} needs two arguments"));
            };
            let ord = compare(a, b)?;
            TValue::Bool(match name {
                "eq" => ord == std::cmp::Ordering::Equal,
                "ne" => ord != std::cmp::Ordering::Equal,
                "lt" => ord == std::cmp::Ordering::Less,
                "le" => ord != std::cmp::Ordering::Greater,
                "gt" => ord == std::cmp::Ordering::Greater,
                _ => ord != std::cmp::Ordering::Less,
            })
        }
        "and" => {
            let mut last = TValue::Nil;
            for a in args {
                if !truthy(&a) {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "or" => {
            let mut last = TValue::Nil;
            for a in args {
                if truthy(&a) {
                    return Ok(a);
                }
                last = a;
            }
            last
        }
        "not" => TValue::Bool(!truthy(&one(&args)?)),
        "len" => match one(&args)? {
            TValue::Str(s) => TValue::Int(s.len() as i64),
            TValue::Map(m) => TValue::Int(m.len() as i64),
            TValue::List(l) => TValue::Int(l.len() as i64),
            other => return Err(format!("len of {}", other.type_name())),
        },
        "index" => {
            let mut it = args.into_iter();
            let mut v = it.next().unwrap_or(TValue::Nil);
            for k in it {
                v = match (v, k) {
                    (TValue::Map(m), k) => m.get(&to_str(&k)).cloned().unwrap_or(TValue::Nil),
                    (TValue::List(l), TValue::Int(i)) => usize::try_from(i)
                        .ok()
                        .and_then(|i| l.get(i).cloned())
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    (other, _) => return Err(format!("can't index item of type {}", other.type_name())),
                };
            }
            v
        }
        "urlquery" | "html" | "js" => {
            let s: String = args.iter().map(go_value).collect();
            TValue::Str(match name {
                "urlquery" => url_escape(&s),
                "html" => s
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&#34;")
                    .replace('\'', "&#39;"),
                _ => s.replace('\\', "\\\\").replace('\'', "\\'").replace('"', "\\\""),
            })
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

fn compare(a: &TValue, b: &TValue) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (TValue::Str(x), TValue::Str(y)) => Ok(x.cmp(y)),
        (TValue::Bool(x), TValue::Bool(y)) => Ok(x.cmp(y)),
        (x, y) => {
            let (Some(x), Some(y)) = (x.as_number(), y.as_number()) else {
                return Err(format!(
                    "incompatible types for comparison: {} and {}",
                    x.type_name(),
                    y.type_name()
                ));
            };
            Ok(x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal))
        }
    }
}

/// Converts Go's `$1`/`${name}` replacement syntax to the regex crate's (`${1}`).
fn go_replacement(r: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = r.chars().collect();
    let mut i = 0usize;
    while let Some(&c) = chars.get(i) {
        if c == '$' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
            let start = i + 1;
            let mut j = start;
            while chars
                .get(j)
                .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_')
            {
                j += 1;
            }
            let name: String = chars
                .get(start..j)
                .map(|s| s.iter().collect())
                .unwrap_or_default();
            out.push_str(&format!("${{{name}}}"));
            i = j;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn strip_port(s: &str) -> String {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, _)) = rest.split_once(']') {
            return host.to_string();
        }
    }
    match s.rsplit_once(':') {
        Some((h, _)) if !h.contains(':') => h.to_string(),
        _ => s.to_string(),
    }
}

fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_start = true;
    for c in s.chars() {
        if at_start && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

/// The value as a string, as Go would print it.
fn to_str(v: &TValue) -> String {
    go_value(v)
}

/// Numbers and numeric strings as f64, as Prometheus' `convertToFloat`.
fn to_float(v: &TValue) -> Result<f64, String> {
    match v {
        TValue::Float(x) => Ok(*x),
        TValue::Int(n) => Ok(*n as f64),
        TValue::Str(s) => {
            parse_go_float(s).ok_or_else(|| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
        }
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

fn parse_go_float(s: &str) -> Option<f64> {
    match s.trim() {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        t => t.parse().ok(),
    }
}

/// Prometheus' `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return fmt_g(v, Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", fmt_g(v, Some(4)))
}

/// Prometheus' `humanize1024`: binary prefixes (ki, Mi, …), 4 significant digits.
pub fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return fmt_g(v, Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", fmt_g(v, Some(4)))
}

/// Prometheus' `humanizeDuration`: seconds as `1d 2h 3m 4s`, sub-second with SI prefixes.
pub fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return fmt_g(v, Some(4));
    }
    if v == 0.0 {
        return format!("{}s", fmt_g(v, Some(4)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let d = v as i64;
        let (secs, mins, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{sign}{mins}m {secs}s");
        }
        return format!("{sign}{}s", fmt_g(v, Some(4)));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", fmt_g(v, Some(4)))
}

/// Prometheus' `humanizeTimestamp`: Unix seconds as `2006-01-02 15:04:05.999999999 +0000 UTC`.
fn humanize_timestamp(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return fmt_g(v, Some(4));
    }
    // Prometheus goes through model.Time: milliseconds, truncated.
    let ms = ((v * 1e9) as i64).div_euclid(1_000_000);
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => {
            let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
            let millis = ms.rem_euclid(1000);
            if millis > 0 {
                let frac = format!("{millis:03}");
                s.push('.');
                s.push_str(frac.trim_end_matches('0'));
            }
            s.push_str(" +0000 UTC");
            s
        }
        None => fmt_g(v, Some(4)),
    }
}
