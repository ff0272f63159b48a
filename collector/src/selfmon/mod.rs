//! Didban's own metrics: counters and gauges kept in memory, exposed at `/metrics` in the
//! Prometheus text format and written into Didban's own database so they can be queried
//! and alerted on like any other series.

pub mod gauges;
pub mod scrape;
pub mod storage_health;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use didban_store::{Label, Labels, Sample, SeriesSamples};
use parking_lot::Mutex;

/// Whether a metric only goes up (a counter) or can go both ways (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

#[derive(Debug)]
struct Family {
    kind: Kind,
    help: &'static str,
    values: BTreeMap<Vec<(String, String)>, f64>,
}

/// A small registry of named metric families with labelled values.
#[derive(Debug, Default)]
pub struct SelfMetrics {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

impl SelfMetrics {
    pub fn new() -> Self {
        SelfMetrics::default()
    }

    /// Adds `delta` to counter `name{labels}`.
    pub fn inc(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], delta: f64) {
        self.update(name, help, Kind::Counter, labels, |v| *v += delta);
    }

    /// Sets gauge `name{labels}` to `value`.
    pub fn set(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], value: f64) {
        self.update(name, help, Kind::Gauge, labels, |v| *v = value);
    }

    /// Sets a counter whose total is kept elsewhere (e.g. in the store's stats).
    pub fn set_counter(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], value: f64) {
        self.update(name, help, Kind::Counter, labels, |v| *v = value);
    }

    fn update(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &[(&str, &str)],
        f: impl FnOnce(&mut f64),
    ) {
        let mut key: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        key.sort();
        let mut families = self.families.lock();
        let family = families.entry(name).or_insert_with(|| Family {
            kind,
            help,
            values: BTreeMap::new(),
        });
        f(family.values.entry(key).or_insert(0.0));
    }

    /// The current value of `name{labels}`, for tests and for the UI.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut key: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        key.sort();
        self.families
            .lock()
            .get(name)
            .and_then(|f| f.values.get(&key).copied())
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, family) in self.families.lock().iter() {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in &family.values {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                        let _ = write!(out, "{k}=\"{escaped}\"");
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", format_value(*value));
            }
        }
        out
    }

    /// Every value as a series sample at `timestamp_ms`, labelled `job="didban"`, for
    /// writing into Didban's own database.
    pub fn snapshot(&self, timestamp_ms: i64, instance: &str) -> Vec<SeriesSamples> {
        let mut out = Vec::new();
        for (name, family) in self.families.lock().iter() {
            for (labels, value) in &family.values {
                let mut all = vec![
                    Label::new("__name__", *name),
                    Label::new("job", "didban"),
                    Label::new("instance", instance),
                ];
                for (k, v) in labels {
                    all.push(Label::new(k.clone(), v.clone()));
                }
                if let Ok(labels) = Labels::new(all) {
                    out.push(SeriesSamples {
                        labels,
                        samples: vec![Sample::new(timestamp_ms, *value)],
                        histograms: Vec::new(),
                    });
                }
            }
        }
        out
    }
}

/// Formats a value the way Prometheus' text format expects (`+Inf`, `NaN`, shortest float).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_format_with_help_type_and_escaped_labels() {
        let m = SelfMetrics::new();
        m.inc(
            "didban_samples_ingested_total",
            "Samples stored.",
            &[("protocol", "otlp")],
            3.0,
        );
        m.inc(
            "didban_samples_ingested_total",
            "Samples stored.",
            &[("protocol", "otlp")],
            2.0,
        );
        m.set(
            "didban_head_series",
            "Series in the head.",
            &[("path", "a\"b")],
            7.0,
        );
        let text = m.render();
        assert!(
            text.contains("# TYPE didban_samples_ingested_total counter"),
            "{text}"
        );
        assert!(
            text.contains("didban_samples_ingested_total{protocol=\"otlp\"} 5\n"),
            "{text}"
        );
        assert!(text.contains("didban_head_series{path=\"a\\\"b\"} 7\n"), "{text}");
        let snap = m.snapshot(1000, "host:1");
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].labels.get("job"), Some("didban"));
    }
}
