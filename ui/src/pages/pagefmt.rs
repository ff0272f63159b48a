//! Small pieces the signal pages (logs, traces, services, serverless, alerts) share: time
//! and duration formatting, query-string links, the time-range fields of a search form, and
//! the check of a form's CSRF token.

use leptos::prelude::*;

use didban_auth::Viewer;

/// Current time in Unix milliseconds (the alert engine's clock, shared by every page).
pub use didban_alerting::now_ms;

/// Relative time-range presets offered next to the `from`/`to` fields.
pub const PRESETS: [(&str, &str); 7] = [
    ("now-5m", "5m"),
    ("now-15m", "15m"),
    ("now-1h", "1h"),
    ("now-6h", "6h"),
    ("now-24h", "24h"),
    ("now-7d", "7d"),
    ("now-30d", "30d"),
];

/// A UTC time in milliseconds as `2024-05-01 12:00:00.123`.
pub fn time_ms(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => ms.to_string(),
    }
}

/// A UTC time in nanoseconds, with microseconds.
pub fn time_ns(ns: i64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(ns);
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// A machine-readable RFC 3339 time for `<time datetime=…>`.
pub fn rfc3339_ms(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => String::new(),
    }
}

/// A duration in nanoseconds for people: `850µs`, `12.3ms`, `1.52s`, `2m3s`.
pub fn duration_ns(ns: i64) -> String {
    let ns = ns.max(0) as f64;
    if ns < 1e3 {
        format!("{ns:.0}ns")
    } else if ns < 1e6 {
        format!("{:.0}µs", ns / 1e3)
    } else if ns < 1e9 {
        trim_num(ns / 1e6, "ms")
    } else if ns < 60e9 {
        trim_num(ns / 1e9, "s")
    } else {
        let secs = (ns / 1e9).round() as i64;
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        let mut out = String::new();
        for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
            if n > 0 {
                out.push_str(&format!("{n}{unit}"));
            }
        }
        out
    }
}

/// A duration in seconds for people (PromQL results).
pub fn duration_secs(secs: f64) -> String {
    if !secs.is_finite() {
        return "–".into();
    }
    duration_ns((secs * 1e9) as i64)
}

fn trim_num(v: f64, unit: &str) -> String {
    let text = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{unit}")
}

/// A number with at most three significant decimals (`0.333`, `12.5`, `1200`); `–` for NaN.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `path?k=v&…` with the non-empty values, URL-encoded.
pub fn link(path: &str, pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    if kept.is_empty() {
        return path.to_string();
    }
    match serde_urlencoded::to_string(&kept) {
        Ok(q) => format!("{path}?{q}"),
        Err(_) => path.to_string(),
    }
}

/// The `from`/`to` text fields (relative or absolute times) and a list of preset links that
/// keep the page's other parameters (`keep`).
pub fn range_fields(from: &str, to: &str, path: &str, keep: &[(&str, &str)]) -> impl IntoView {
    let presets = PRESETS
        .iter()
        .map(|(value, label)| {
            let mut pairs: Vec<(&str, &str)> = keep.to_vec();
            pairs.push(("from", value));
            pairs.push(("to", "now"));
            let href = link(path, &pairs);
            let shown_from = if from.is_empty() { "now-1h" } else { from };
            let current = if *value == shown_from && (to == "now" || to.is_empty()) {
                Some("true")
            } else {
                None
            };
            view! { <a href=href aria-current=current>{*label}</a> }
        })
        .collect_view();
    view! {
        <label>"From " <input type="text" name="from" value=from.to_string() size="14"
            placeholder="now-1h" title="now-1h, epoch milliseconds or RFC 3339"/></label>
        <label>"To " <input type="text" name="to" value=to.to_string() size="14"
            placeholder="now" title="now, epoch milliseconds or RFC 3339"/></label>
        <span class="presets" aria-label="Quick ranges">{presets}</span>
    }
}

/// Whether a submitted form carries the viewer's CSRF token (compared in constant time).
pub fn csrf_ok(viewer: &Viewer, sent: &str) -> bool {
    didban_auth::secret::constant_time_eq(&viewer.csrf, sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_ns(500), "500ns");
        assert_eq!(duration_ns(850_000), "850µs");
        assert_eq!(duration_ns(12_345_678), "12.3ms");
        assert_eq!(duration_ns(1_520_000_000), "1.52s");
        assert_eq!(duration_ns(30_000_000_000), "30s");
        assert_eq!(duration_ns(40_000_000), "40ms");
        assert_eq!(duration_ns(123_000_000_000), "2m3s");
        assert_eq!(duration_ns(3_600_000_000_000), "1h");
    }

    #[test]
    fn links_drop_empty_values_and_encode() {
        assert_eq!(
            link("/logs", &[("q", ""), ("from", "now-1h")]),
            "/logs?from=now-1h"
        );
        assert_eq!(link("/logs", &[("q", "a b&c")]), "/logs?q=a+b%26c");
        assert_eq!(link("/x", &[]), "/x");
    }

    #[test]
    fn csrf_must_match_exactly() {
        let mut v = Viewer::anonymous_admin();
        assert!(csrf_ok(&v, ""));
        v.csrf = "tok".into();
        assert!(csrf_ok(&v, "tok"));
        assert!(!csrf_ok(&v, "to"));
        assert!(!csrf_ok(&v, "tox"));
    }
}
