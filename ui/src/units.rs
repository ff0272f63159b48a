//! Value formatting by unit id, and "nice" axis ticks in that unit. Unit ids follow
//! Grafana's: `bytes` (IEC: KiB, MiB…), `decbytes` (SI: kB, MB…), `bits`, `bps`, `Bps`,
//! `binBps`, `ns`/`µs`/`us`/`ms`/`s`/`seconds`/`m`/`h`/`d` (humanized durations such as
//! `1.5s`, `2m 3s`, `3h`), `percent` (0–100), `percentunit` (0–1 shown as %), `ops`
//! (ops/s), `reqps` (req/s), `currencyUSD` ($), `short` (k, M, G, T) and `none`. Any other
//! id is shown as a plain number followed by the id, so a custom suffix still reads well.
//!
//! The browser script (`assets/didban.js`) carries a port of [`format`] for tooltips; keep
//! the two in step.

/// How a unit turns a number into text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Scaled by powers of `base` with `prefixes`; `prefix` before the number (currency),
    /// `suffix` after the scale prefix.
    Scaled {
        base: f64,
        prefixes: &'static [&'static str],
        prefix: &'static str,
        suffix: &'static str,
        space: bool,
    },
    /// Like `Scaled`, but the prefix joins the number: `1.2k ops/s`.
    Rate { suffix: &'static str },
    /// A duration; the value times `to_seconds` is seconds.
    Duration { to_seconds: f64 },
    /// A percentage; the value times `factor` is percent.
    Percent { factor: f64 },
    /// A plain number with an optional suffix (unknown units, `none`).
    Plain,
}

const IEC: &[&str] = &["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
const SI: &[&str] = &["", "k", "M", "G", "T", "P", "E"];
const CURRENCY: &[&str] = &["", "K", "M", "B", "T"];

fn kind(unit: &str) -> Kind {
    let scaled = |base, prefixes, prefix, suffix, space| Kind::Scaled {
        base,
        prefixes,
        prefix,
        suffix,
        space,
    };
    match unit {
        "bytes" => scaled(1024.0, IEC, "", "B", true),
        "decbytes" => scaled(1000.0, SI, "", "B", true),
        "bits" => scaled(1000.0, SI, "", "b", true),
        "bps" => scaled(1000.0, SI, "", "bps", true),
        "Bps" => scaled(1000.0, SI, "", "B/s", true),
        "binBps" => scaled(1024.0, IEC, "", "B/s", true),
        "ops" => Kind::Rate { suffix: "ops/s" },
        "reqps" => Kind::Rate { suffix: "req/s" },
        "currencyUSD" => scaled(1000.0, CURRENCY, "$", "", false),
        "short" => scaled(1000.0, SI, "", "", false),
        "ns" => Kind::Duration { to_seconds: 1e-9 },
        "µs" | "us" => Kind::Duration { to_seconds: 1e-6 },
        "ms" => Kind::Duration { to_seconds: 1e-3 },
        "s" | "seconds" => Kind::Duration { to_seconds: 1.0 },
        "m" => Kind::Duration { to_seconds: 60.0 },
        "h" => Kind::Duration { to_seconds: 3600.0 },
        "d" => Kind::Duration { to_seconds: 86400.0 },
        "percent" => Kind::Percent { factor: 1.0 },
        "percentunit" => Kind::Percent { factor: 100.0 },
        _ => Kind::Plain,
    }
}

/// Whether `unit` is one this module knows (anything else is shown as a suffix).
pub fn is_known(unit: &str) -> bool {
    unit.is_empty() || unit == "none" || kind(unit) != Kind::Plain
}

/// Decimals that show about three significant digits of `v`.
fn auto_decimals(v: f64) -> usize {
    let a = v.abs();
    if a == 0.0 || !a.is_finite() {
        return 0;
    }
    let mag = a.log10().floor() as i32;
    (2 - mag).clamp(0, 10) as usize
}

/// `v` with `decimals` places, trailing zeros (and a trailing dot) removed when the
/// decimals were chosen automatically.
fn number(v: f64, decimals: Option<u32>) -> String {
    match decimals {
        Some(d) => format!("{:.*}", d as usize, v),
        None => {
            let a = v.abs();
            if a >= 1e15 || (a > 0.0 && a < 1e-6) {
                // scientific, three significant digits: 1.5e21, 7.3e-7
                let s = format!("{v:.2e}");
                let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
                let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
                return format!("{mantissa}e{exp}");
            }
            let s = format!("{:.*}", auto_decimals(v), v);
            let s = if s.contains('.') {
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                s
            };
            if s == "-0" {
                "0".to_string()
            } else {
                s
            }
        }
    }
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

/// The power of `base` to scale `v` by (0 for |v| < base), at most `max`.
fn exponent(v: f64, base: f64, max: usize) -> usize {
    let mut k = 0;
    let mut a = v.abs();
    while a >= base && k < max {
        a /= base;
        k += 1;
    }
    k
}

fn scaled_text(
    v: f64,
    k: usize,
    decimals: Option<u32>,
    (base, prefixes, prefix, suffix, space): (f64, &[&str], &str, &str, bool),
) -> String {
    let n = number(v / base.powi(k as i32), decimals);
    let unit = format!("{}{}", prefixes[k], suffix);
    let (sign, n) = match n.strip_prefix('-') {
        Some(rest) => ("-", rest.to_string()),
        None => ("", n),
    };
    if unit.is_empty() {
        format!("{sign}{prefix}{n}")
    } else if space {
        format!("{sign}{prefix}{n} {unit}")
    } else {
        format!("{sign}{prefix}{n}{unit}")
    }
}

/// `v` in `unit` for people: `1.5 MiB`, `2m 3s`, `42.5%`, `$1.2K`, `3.4k`. `decimals`
/// fixes the places after the point; `None` shows about three significant digits.
pub fn format(v: f64, unit: &str, decimals: Option<u32>) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    match kind(unit) {
        Kind::Scaled {
            base,
            prefixes,
            prefix,
            suffix,
            space,
        } => {
            let k = exponent(v, base, prefixes.len() - 1);
            // 999.9 k rounds to "1000 k": move up a prefix instead.
            let k = if k + 1 < prefixes.len() && decimals.is_none() {
                let scaled = (v / base.powi(k as i32)).abs();
                if number(scaled, None).parse::<f64>().unwrap_or(0.0) >= base {
                    k + 1
                } else {
                    k
                }
            } else {
                k
            };
            scaled_text(v, k, decimals, (base, prefixes, prefix, suffix, space))
        }
        Kind::Rate { suffix } => format!("{} {suffix}", format(v, "short", decimals)),
        Kind::Duration { to_seconds } => duration(v * to_seconds, decimals),
        Kind::Percent { factor } => format!("{}%", number(v * factor, decimals)),
        Kind::Plain => {
            let n = number(v, decimals);
            if unit.is_empty() || unit == "none" {
                n
            } else {
                format!("{n} {unit}")
            }
        }
    }
}

/// A duration in seconds, humanized: `250ms`, `1.5s`, `2m 3s`, `3h`, `1d 4h`.
pub fn duration(seconds: f64, decimals: Option<u32>) -> String {
    if let Some(s) = special(seconds) {
        return s;
    }
    if seconds < 0.0 {
        return format!("-{}", duration(-seconds, decimals));
    }
    if seconds == 0.0 {
        return "0s".into();
    }
    if seconds < 1e-6 {
        return format!("{}ns", number(seconds * 1e9, decimals));
    }
    if seconds < 1e-3 {
        return format!("{}µs", number(seconds * 1e6, decimals));
    }
    if seconds < 1.0 {
        let ms = number(seconds * 1e3, decimals);
        if ms != "1000" {
            return format!("{ms}ms");
        }
    }
    if seconds < 59.995 {
        return format!("{}s", number(seconds, decimals));
    }
    let total = seconds.round() as u64;
    let (d, h, m, s) = (total / 86400, total / 3600 % 24, total / 60 % 60, total % 60);
    let (big, big_unit, small, small_unit) = if d > 0 {
        (d, "d", h, "h")
    } else if h > 0 {
        (h, "h", m, "m")
    } else {
        (m, "m", s, "s")
    };
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit} {small}{small_unit}")
    }
}

/// Steps a duration axis may take, in seconds.
const DURATION_STEPS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0,
    21600.0, 43200.0, 86400.0, 172800.0, 604800.0, 1209600.0, 2592000.0,
];

/// The smallest 1-2-5 × 10ⁿ step at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let pow = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * pow >= raw * (1.0 - 1e-9) {
            return m * pow;
        }
    }
    10.0 * pow
}

/// The tick step for an axis from `lo` to `hi` with about `target` ticks in `unit`:
/// 1-2-5 steps, in powers of 1024 for IEC byte units, and whole minutes/hours/days for
/// duration units.
pub fn tick_step(lo: f64, hi: f64, target: usize, unit: &str) -> f64 {
    let raw = (hi - lo).abs() / target.max(1) as f64;
    match kind(unit) {
        Kind::Duration { to_seconds } => {
            let raw_s = raw * to_seconds;
            if raw_s >= 1.0 {
                for &s in DURATION_STEPS {
                    if s >= raw_s {
                        return s / to_seconds;
                    }
                }
            }
            nice_step(raw_s) / to_seconds
        }
        Kind::Scaled { base: 1024.0, .. } => {
            let k = exponent(lo.abs().max(hi.abs()), 1024.0, 6) as i32;
            let div = 1024f64.powi(k);
            nice_step(raw / div) * div
        }
        _ => nice_step(raw),
    }
}

/// Tick values at multiples of [`tick_step`] within `[lo, hi]` (at most 50).
pub fn ticks(lo: f64, hi: f64, target: usize, unit: &str) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return Vec::new();
    }
    let step = tick_step(lo, hi, target, unit);
    let mut out = Vec::new();
    let mut i = (lo / step - 1e-9).ceil();
    while out.len() < 50 {
        let v = i * step;
        if v > hi + step * 1e-9 {
            break;
        }
        // -0.0 and 1e-17 noise print as 0
        out.push(if (v / step).abs() < 1e-9 { 0.0 } else { v });
        i += 1.0;
    }
    out
}

/// Labels for axis `ticks` (evenly spaced): one scale for all of them (from the largest),
/// decimals from the step, so neighbouring labels never read the same.
pub fn tick_labels(ticks: &[f64], unit: &str) -> Vec<String> {
    let step = if ticks.len() > 1 {
        (ticks[1] - ticks[0]).abs()
    } else {
        0.0
    };
    let largest = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let places = |scaled_step: f64| -> Option<u32> {
        if scaled_step > 0.0 {
            Some((-(scaled_step.log10() + 1e-9).floor()).clamp(0.0, 10.0) as u32)
        } else {
            None
        }
    };
    match kind(unit) {
        Kind::Duration { .. } => ticks.iter().map(|&v| format(v, unit, None)).collect(),
        Kind::Rate { suffix } => tick_labels(ticks, "short")
            .into_iter()
            .map(|l| format!("{l} {suffix}"))
            .collect(),
        Kind::Scaled {
            base,
            prefixes,
            prefix,
            suffix,
            space,
        } => {
            let k = exponent(largest, base, prefixes.len() - 1);
            let d = places(step / base.powi(k as i32));
            ticks
                .iter()
                .map(|&v| scaled_text(v, k, d, (base, prefixes, prefix, suffix, space)))
                .collect()
        }
        Kind::Percent { factor } => {
            let d = places(step * factor);
            ticks
                .iter()
                .map(|&v| format!("{}%", number(v * factor, d)))
                .collect()
        }
        Kind::Plain => {
            let d = places(step);
            ticks.iter().map(|&v| format(v, unit, d)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_iec_and_decbytes_si() {
        assert_eq!(format(0.0, "bytes", None), "0 B");
        assert_eq!(format(512.0, "bytes", None), "512 B");
        assert_eq!(format(1536.0, "bytes", None), "1.5 KiB");
        assert_eq!(format(5.0 * 1024.0 * 1024.0 * 1024.0, "bytes", None), "5 GiB");
        assert_eq!(format(1023.9, "bytes", None), "1 KiB");
        assert_eq!(format(1_500_000.0, "decbytes", None), "1.5 MB");
        assert_eq!(format(-2048.0, "bytes", None), "-2 KiB");
        assert_eq!(format(1536.0, "bytes", Some(2)), "1.50 KiB");
        assert_eq!(format(2_500.0, "bits", None), "2.5 kb");
        assert_eq!(format(1024.0 * 1024.0, "binBps", None), "1 MiB/s");
    }

    #[test]
    fn durations_are_humanized() {
        assert_eq!(format(1.5, "s", None), "1.5s");
        assert_eq!(format(123.0, "seconds", None), "2m 3s");
        assert_eq!(format(3.0 * 3600.0, "s", None), "3h");
        assert_eq!(format(3.0 * 3600.0 + 120.0, "s", None), "3h 2m");
        assert_eq!(format(86400.0 * 2.0 + 3600.0 * 5.0, "s", None), "2d 5h");
        assert_eq!(format(250.0, "ms", None), "250ms");
        assert_eq!(format(1500.0, "ms", None), "1.5s");
        assert_eq!(format(0.0123, "ms", None), "12.3µs");
        assert_eq!(format(0.0, "s", None), "0s");
        assert_eq!(format(-90.0, "s", None), "-1m 30s");
        assert_eq!(format(0.9999, "s", None), "1s");
    }

    #[test]
    fn percent_currency_rates_and_short() {
        assert_eq!(format(42.5, "percent", None), "42.5%");
        assert_eq!(format(0.425, "percentunit", None), "42.5%");
        assert_eq!(format(1.0, "percentunit", Some(1)), "100.0%");
        assert_eq!(format(1234.0, "ops", None), "1.23k ops/s");
        assert_eq!(format(12.0, "reqps", None), "12 req/s");
        assert_eq!(format(1_500.0, "currencyUSD", None), "$1.5K");
        assert_eq!(format(-3.0, "currencyUSD", None), "-$3");
        assert_eq!(format(12_345.0, "short", None), "12.3k");
        assert_eq!(format(2.5e9, "short", None), "2.5G");
        assert_eq!(format(3e12, "short", None), "3T");
        assert_eq!(format(999_999.0, "short", None), "1M");
        assert_eq!(format(0.012345, "none", None), "0.0123");
        assert_eq!(format(1e300, "none", None), "1e300");
        assert_eq!(format(-2.5e21, "", None), "-2.5e21");
        assert_eq!(format(7.3e-7, "", None), "7.3e-7");
        assert_eq!(format(5e30, "short", None), "5000000000000E");
        assert_eq!(format(1234.4, "", None), "1234");
        assert_eq!(format(21.5, "celsius", None), "21.5 celsius");
        assert_eq!(format(f64::NAN, "bytes", None), "NaN");
        assert_eq!(format(f64::INFINITY, "short", None), "+Inf");
        assert!(is_known("bytes") && is_known("") && !is_known("celsius"));
    }

    #[test]
    fn nice_steps_are_one_two_five() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(1000.0), 1000.0);
        assert_eq!(ticks(0.0, 100.0, 5, ""), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(ticks(-1.0, 1.0, 4, ""), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert!(ticks(1.0, 1.0, 4, "").is_empty());
        assert!(ticks(f64::NAN, 1.0, 4, "").is_empty());
    }

    #[test]
    fn unit_aware_steps() {
        // bytes step in powers of 1024
        let mib = 1024.0 * 1024.0;
        assert_eq!(tick_step(0.0, 10.0 * mib, 5, "bytes"), 2.0 * mib);
        // durations in whole minutes
        assert_eq!(tick_step(0.0, 600.0, 4, "s"), 300.0);
        assert_eq!(tick_step(0.0, 90_000.0, 4, "ms"), 30_000.0);
        assert_eq!(tick_step(0.0, 0.5, 5, "s"), 0.1);
    }

    #[test]
    fn tick_labels_share_a_scale() {
        let labels = tick_labels(&[1000.0, 1500.0, 2000.0, 2500.0], "short");
        assert_eq!(labels, vec!["1.0k", "1.5k", "2.0k", "2.5k"]);
        let kib = 1024.0;
        let labels = tick_labels(&[0.0, 512.0 * kib, 1024.0 * kib], "bytes");
        assert_eq!(labels, vec!["0.0 MiB", "0.5 MiB", "1.0 MiB"]);
        let labels = tick_labels(&[0.0, 2e6, 4e6], "reqps");
        assert_eq!(labels, vec!["0M req/s", "2M req/s", "4M req/s"]);
        let labels = tick_labels(&[0.0, 0.25, 0.5], "percentunit");
        assert_eq!(labels, vec!["0%", "25%", "50%"]);
        let labels = tick_labels(&[0.0, 60.0, 120.0], "s");
        assert_eq!(labels, vec!["0s", "1m", "2m"]);
        let labels = tick_labels(&[0.0, 0.05, 0.1], "");
        assert_eq!(labels, vec!["0.00", "0.05", "0.10"]);
    }
}

/// The script's port of [`format`] (in `assets/didban.js`) gives the same text.
#[cfg(test)]
mod script_parity {
    use super::format;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn script_formats_like_rust() {
        let units = [
            "bytes",
            "decbytes",
            "bits",
            "bps",
            "Bps",
            "binBps",
            "ops",
            "reqps",
            "currencyUSD",
            "short",
            "none",
            "",
            "ns",
            "us",
            "ms",
            "s",
            "seconds",
            "m",
            "h",
            "d",
            "percent",
            "percentunit",
            "celsius",
        ];
        let values = [
            0.0, 1.0, -1.0, 0.5, 0.0123, 1.5, 59.0, 60.0, 123.0, 999.0, 1023.9, 1536.0, 12_345.0, 999_999.0,
            3_600.0, 90_061.0, 1.5e9, 2.5e12, -2048.0, 7.3e-7,
        ];
        let mut cases = Vec::new();
        for u in units {
            for v in values {
                for d in [None, Some(2)] {
                    cases.push(serde_json::json!([v, u, d, format(v, u, d)]));
                }
            }
        }
        let script = format!(
            "global.window = global; global.document = {{ readyState: 'complete', querySelectorAll: () => [], addEventListener: () => {{}} }};\n\
             global.setInterval = () => 0;\n{}\nconst cases = {};\nlet bad = 0;\n\
             for (const [v, u, d, want] of cases) {{ const got = window.didbanFormat(v, u, d); if (got !== want) {{ bad++; console.log(JSON.stringify([v, u, d, want, got])); }} }}\n\
             console.log('mismatches ' + bad);",
            include_str!("../assets/didban.js"),
            serde_json::Value::Array(cases)
        );
        let mut child = Command::new("node")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node (part of this machine kind) runs the script's tests");
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.trim_end().ends_with("mismatches 0"), "{text}");
    }
}
