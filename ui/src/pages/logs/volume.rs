//! Log severities grouped into the five classes the pages colour, and the volume histogram
//! drawn as stacked SVG bars (one stack per bucket, one segment per class).

use didban_store::logs::HistogramBucket;

use crate::chart::escape;
use crate::pages::pagefmt;

/// The colour classes, in stacking order (bottom first) and legend order.
pub const CLASSES: [(&str, &str); 5] = [
    ("error", "Error / fatal"),
    ("warn", "Warning"),
    ("info", "Info"),
    ("debug", "Debug / trace"),
    ("other", "Unspecified"),
];

/// The colour class of a record: from its severity text (`ERROR`, `warning`, `Info`, …),
/// else from its OTLP severity number (17+ error, 13+ warn, 9+ info, 1+ debug).
pub fn severity_class(text: &str, number: i32) -> &'static str {
    let t = text.trim().to_ascii_uppercase();
    if t.starts_with("FATAL")
        || t.starts_with("CRIT")
        || t.starts_with("EMERG")
        || t.starts_with("ALERT")
        || t.starts_with("ERR")
        || t == "PANIC"
        || t == "SEVERE"
    {
        return "error";
    }
    if t.starts_with("WARN") {
        return "warn";
    }
    if t.starts_with("INFO") || t.starts_with("NOTICE") {
        return "info";
    }
    if t.starts_with("DEBUG") || t.starts_with("TRACE") || t == "FINE" || t == "FINER" || t == "FINEST" {
        return "debug";
    }
    match number {
        17.. => "error",
        13..=16 => "warn",
        9..=12 => "info",
        1..=8 => "debug",
        _ => "other",
    }
}

/// Counts of one bucket per class, in [`CLASSES`] order.
pub fn class_counts(bucket: &HistogramBucket) -> [u64; 5] {
    let mut out = [0u64; 5];
    for (text, n) in &bucket.by_severity {
        let class = severity_class(text, 0);
        if let Some(i) = CLASSES.iter().position(|(c, _)| *c == class) {
            out[i] += n;
        }
    }
    out
}

/// The histogram as an SVG of stacked bars. Each bar links to the logs of its bucket
/// (`link(start_ms, end_ms)`) and has a tooltip with the time and the counts.
pub fn histogram_svg(
    buckets: &[HistogramBucket],
    interval_ms: i64,
    link: &dyn Fn(i64, i64) -> String,
) -> String {
    const W: f64 = 1000.0;
    const H: f64 = 120.0;
    let max = buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let n = buckets.len().max(1) as f64;
    let bw = W / n;
    let gap = if bw > 3.0 { 1.0 } else { 0.0 };
    let mut svg = format!(
        r#"<svg class="log-volume" viewBox="0 0 {W} {H}" preserveAspectRatio="none" role="img" aria-label="Log volume by severity, highest bucket {max} records">"#
    );
    for (i, b) in buckets.iter().enumerate() {
        if b.count == 0 {
            continue;
        }
        let counts = class_counts(b);
        let x = i as f64 * bw;
        let mut tip = format!("{} — {} records", pagefmt::time_ms(b.start_ms), b.count);
        for (k, (_, label)) in CLASSES.iter().enumerate() {
            if counts[k] > 0 {
                tip.push_str(&format!("\n{label}: {}", counts[k]));
            }
        }
        svg.push_str(&format!(
            r#"<a class="bar" href="{}"><title>{}</title>"#,
            escape(&link(b.start_ms, b.start_ms + interval_ms)),
            escape(&tip)
        ));
        let mut y = H;
        for (k, (class, _)) in CLASSES.iter().enumerate() {
            if counts[k] == 0 {
                continue;
            }
            let h = counts[k] as f64 / max * (H - 2.0);
            y -= h;
            svg.push_str(&format!(
                r#"<rect class="sev-{class}" x="{x:.2}" y="{y:.2}" width="{:.2}" height="{h:.2}"/>"#,
                (bw - gap).max(0.5)
            ));
        }
        svg.push_str("</a>");
    }
    svg.push_str("</svg>");
    svg
}

/// A bucket width giving about 60 bars over `range_ms`, rounded to a readable step.
pub fn interval_for(range_ms: i64) -> i64 {
    const STEPS: [i64; 16] = [
        1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
        3_600_000, 10_800_000, 21_600_000, 86_400_000,
    ];
    let raw = range_ms / 60;
    for s in STEPS {
        if s >= raw {
            return s;
        }
    }
    (raw / 86_400_000 + 1) * 86_400_000
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn severities_fall_into_their_class() {
        assert_eq!(severity_class("ERROR", 0), "error");
        assert_eq!(severity_class("err", 0), "error");
        assert_eq!(severity_class("Fatal", 0), "error");
        assert_eq!(severity_class("warning", 0), "warn");
        assert_eq!(severity_class("WARN", 0), "warn");
        assert_eq!(severity_class("info", 0), "info");
        assert_eq!(severity_class("DEBUG2", 0), "debug");
        assert_eq!(severity_class("trace", 0), "debug");
        assert_eq!(severity_class("", 18), "error");
        assert_eq!(severity_class("", 14), "warn");
        assert_eq!(severity_class("", 9), "info");
        assert_eq!(severity_class("", 5), "debug");
        assert_eq!(severity_class("", 0), "other");
        assert_eq!(severity_class("whatever", 0), "other");
    }

    #[test]
    fn histogram_stacks_classes_and_links_buckets() {
        let mut by = BTreeMap::new();
        by.insert("ERROR".to_string(), 2);
        by.insert("info".to_string(), 6);
        by.insert("INFO".to_string(), 2);
        let b = HistogramBucket {
            start_ms: 60_000,
            count: 10,
            by_severity: by,
        };
        assert_eq!(class_counts(&b), [2, 0, 8, 0, 0]);
        let empty = HistogramBucket {
            start_ms: 0,
            count: 0,
            by_severity: BTreeMap::new(),
        };
        let svg = histogram_svg(&[empty, b], 60_000, &|s, e| format!("/logs?from={s}&to={e}"));
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert!(svg.contains(r#"class="sev-error""#));
        assert!(svg.contains(r#"class="sev-info""#));
        assert!(svg.contains("/logs?from=60000&amp;to=120000"), "{svg}");
        // the error segment sits at the bottom: its y is the largest
        let info_y: f64 = attr_after(&svg, "sev-info", "y=\"");
        let err_y: f64 = attr_after(&svg, "sev-error", "y=\"");
        assert!(err_y > info_y);
    }

    fn attr_after(svg: &str, class: &str, attr: &str) -> f64 {
        let at = svg.find(class).unwrap();
        let rest = &svg[at..];
        let s = rest.find(attr).unwrap() + attr.len();
        let e = rest[s..].find('"').unwrap();
        rest[s..s + e].parse().unwrap()
    }

    #[test]
    fn intervals_are_round() {
        assert_eq!(interval_for(3_600_000), 60_000);
        assert_eq!(interval_for(60_000), 1_000);
        assert_eq!(interval_for(7 * 86_400_000), 10_800_000);
    }
}
