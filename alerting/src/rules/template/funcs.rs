//! The functions Prometheus offers in alert templates, and Go's number formatting (`%v`,
//! `%g`, `%e`, `%f`, `printf`) so that output matches Prometheus byte for byte.

use super::exec::truthy;
use super::TValue;

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

/// Go's `%v` for any template value.
pub(crate) fn go_value(v: &TValue) -> String {
    match v {
        TValue::Nil => "<no value>".into(),
        TValue::Bool(b) => b.to_string(),
        TValue::Int(n) => n.to_string(),
        TValue::Float(x) => fmt_g(*x, None),
        TValue::Str(s) => s.clone(),
        TValue::Map(m) => {
            let mut parts = Vec::new();
            for (k, v) in m {
                parts.push(format!("{k}:{}", go_value(v)));
            }
            format!("map[{}]", parts.join(" "))
        }
        TValue::List(l) => {
            let parts: Vec<String> = l.iter().map(go_value).collect();
            format!("[{}]", parts.join(" "))
        }
    }
}

/// Decimal digits (no trailing zeros, at least one) and exponent of `|v|` in scientific
/// notation, rounded to `sig` significant digits or shortest when `None`.
fn sci_digits(v: f64, sig: Option<usize>) -> (String, i32) {
    let s = match sig {
        Some(p) => format!("{:.*e}", p.max(1) - 1, v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let mut digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (digits, exp.parse().unwrap_or(0))
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v == f64::INFINITY {
        Some("+Inf".into())
    } else if v == f64::NEG_INFINITY {
        Some("-Inf".into())
    } else {
        None
    }
}

/// Go's `%g` (`%v` for floats when `prec` is `None`, `%.Ng` otherwise).
pub(crate) fn fmt_g(v: f64, prec: Option<usize>) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let neg = v.is_sign_negative() && v != 0.0;
    let (digits, exp) = if v == 0.0 {
        ("0".to_string(), 0)
    } else {
        sci_digits(v, prec)
    };
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let mut eprec = match prec {
        Some(p) => p.max(1) as i32,
        None => 6,
    };
    if prec.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    let sign = if neg { "-" } else { "" };
    if exp < -4 || exp >= eprec {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        return format!(
            "{sign}{first}{frac}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    // Fixed notation with exactly the significant digits.
    if dp <= 0 {
        let zeros = "0".repeat(dp.unsigned_abs() as usize);
        return format!("{sign}0.{zeros}{digits}");
    }
    let dpu = dp as usize;
    if digits.len() <= dpu {
        return format!("{sign}{digits}{}", "0".repeat(dpu - digits.len()));
    }
    let (int, frac) = digits.split_at(dpu);
    format!("{sign}{int}.{frac}")
}

/// Go's `%e` with `prec` decimals (default 6).
fn fmt_e(v: f64, prec: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let s = format!("{:.*e}", prec, v);
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %f %F %e %E %g %G %q %x %X %t %%`,
/// with flags `-+ 0`, width and precision.
pub(crate) fn sprintf(format: &str, args: &[TValue]) -> String {
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::new();
    let mut argi = 0usize;
    let mut i = 0usize;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space) = (false, false, false, false);
        while let Some(&f) = chars.get(i) {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            i += 1;
        }
        let mut width: Option<usize> = None;
        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
            width = Some(width.unwrap_or(0) * 10 + d as usize);
            i += 1;
        }
        let mut prec: Option<usize> = None;
        if chars.get(i) == Some(&'.') {
            i += 1;
            prec = Some(0);
            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                prec = Some(prec.unwrap_or(0) * 10 + d as usize);
                i += 1;
            }
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let mut s = format_one(verb, arg, prec);
        if (plus || space)
            && matches!(arg, TValue::Int(_) | TValue::Float(_))
            && !s.starts_with('-')
            && !s.starts_with('+')
        {
            s.insert(0, if plus { '+' } else { ' ' });
        }
        if let Some(w) = width {
            let len = s.chars().count();
            if len < w {
                let pad = w - len;
                if minus {
                    s.push_str(&" ".repeat(pad));
                } else if zero && matches!(arg, TValue::Int(_) | TValue::Float(_)) {
                    let (sign, rest) = match s.chars().next() {
                        Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s.get(1..).unwrap_or("").to_string()),
                        _ => (String::new(), s.clone()),
                    };
                    s = format!("{sign}{}{rest}", "0".repeat(pad));
                } else {
                    s = format!("{}{s}", " ".repeat(pad));
                }
            }
        }
        out.push_str(&s);
    }
    if argi < args.len() {
        let extra: Vec<String> = args
            .get(argi..)
            .unwrap_or(&[])
            .iter()
            .map(|a| format!("{}={}", a.type_name(), go_value(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn format_one(verb: char, arg: &TValue, prec: Option<usize>) -> String {
    let bad = || format!("%!{verb}({}={})", arg.type_name(), go_value(arg));
    match (verb, arg) {
        ('v', _) => go_value(arg),
        ('s', TValue::Str(s)) => match prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.clone(),
        },
        ('s', TValue::Float(_) | TValue::Int(_)) => bad(),
        ('s', _) => go_value(arg),
        ('q', TValue::Str(s)) => format!("{s:?}"),
        ('d', TValue::Int(n)) => n.to_string(),
        ('t', TValue::Bool(b)) => b.to_string(),
        ('x' | 'X', TValue::Int(n)) => {
            let s = format!("{:x}", n.unsigned_abs());
            let s = if verb == 'X' { s.to_uppercase() } else { s };
            if *n < 0 {
                format!("-{s}")
            } else {
                s
            }
        }
        ('x' | 'X', TValue::Str(s)) => {
            let h = hex::encode(s.as_bytes());
            if verb == 'X' {
                h.to_uppercase()
            } else {
                h
            }
        }
        ('f' | 'F' | 'e' | 'E' | 'g' | 'G', TValue::Float(_) | TValue::Int(_)) => {
            let x = arg.as_number().unwrap_or(f64::NAN);
            match verb {
                'f' | 'F' => special(x).unwrap_or_else(|| format!("{:.*}", prec.unwrap_or(6), x)),
                'e' => fmt_e(x, prec.unwrap_or(6)),
                'E' => fmt_e(x, prec.unwrap_or(6)).to_uppercase(),
                'g' => fmt_g(x, prec),
                _ => fmt_g(x, prec).to_uppercase(),
            }
        }
        _ => bad(),
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
