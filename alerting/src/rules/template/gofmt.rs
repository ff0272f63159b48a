//! Go's `fmt` number and value formatting (`%v`, `%g`, `%e`, `%f`, `Sprintf`), so template
//! output matches Prometheus byte for byte.

use super::value::TValue;

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

/// Width and precision above this are refused, as Go's `fmt` refuses them (a template must not
/// be able to ask for a gigabyte of padding).
const MAX_FORMAT_NUM: usize = 1_000_000;

/// Reads the digits at `i` (a width or precision): `Ok(None)` when there are none, `Err` when
/// the number grows past [`MAX_FORMAT_NUM`] (then, as in Go, the rest of the format is
/// consumed).
fn parse_num(chars: &[char], i: &mut usize) -> Result<Option<usize>, ()> {
    let mut num: Option<usize> = None;
    while let Some(d) = chars.get(*i).and_then(|c| c.to_digit(10)) {
        let n = num.unwrap_or(0);
        if n > MAX_FORMAT_NUM {
            *i = chars.len();
            return Err(());
        }
        num = Some(n * 10 + d as usize);
        *i += 1;
    }
    Ok(num)
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
        let Ok(width) = parse_num(&chars, &mut i) else {
            // Go gives up on the rest of the format at an absurd width.
            out.push_str("%!(NOVERB)");
            break;
        };
        let mut prec: Option<usize> = None;
        if chars.get(i) == Some(&'.') {
            i += 1;
            let Ok(p) = parse_num(&chars, &mut i) else {
                out.push_str("%!(NOVERB)");
                break;
            };
            prec = Some(p.unwrap_or(0));
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
