//! A host's families with their label sets ([`Family`]), the Prometheus series they spell
//! out ([`series`]), and the value formatting they share ([`format_le`], [`round_to`]).

use super::catalog::{Kind, Metric};

/// One family of a host with its label sets, in value order.
#[derive(Debug, Clone)]
pub struct Family {
    /// The catalogue entry.
    pub metric: Metric,
    /// Label name and value pairs of each instrument (histograms: before `le`), in the
    /// order of [`Metric::labels`].
    pub label_sets: Vec<Vec<(&'static str, String)>>,
}

impl Family {
    /// Values per label set: 1, or for a histogram its buckets, `+Inf`, sum and count.
    pub fn width(&self) -> usize {
        match self.metric.kind {
            Kind::Histogram(bounds) => bounds.len() + 3,
            _ => 1,
        }
    }

    /// Number of Prometheus series (and values) this family yields.
    pub fn series_count(&self) -> usize {
        self.label_sets.len() * self.width()
    }
}

/// One Prometheus series of a host.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name (histograms: with `_bucket`, `_sum` or `_count`).
    pub name: String,
    /// Labels besides the host's own (`instance`, `job`), `le` last.
    pub labels: Vec<(&'static str, String)>,
    /// Whether the value only goes up.
    pub counter: bool,
}

/// The Prometheus series of `families`, in value order.
pub fn series(families: &[Family]) -> Vec<Series> {
    let mut out = Vec::new();
    for f in families {
        for set in &f.label_sets {
            match f.metric.kind {
                Kind::Histogram(bounds) => {
                    let bucket = format!("{}_bucket", f.metric.name);
                    for b in bounds {
                        out.push(histogram_series(&bucket, set, Some(format_le(*b))));
                    }
                    out.push(histogram_series(&bucket, set, Some("+Inf".to_string())));
                    out.push(histogram_series(&format!("{}_sum", f.metric.name), set, None));
                    out.push(histogram_series(&format!("{}_count", f.metric.name), set, None));
                }
                kind => out.push(Series {
                    name: f.metric.name.to_string(),
                    labels: set.clone(),
                    counter: kind == Kind::Counter,
                }),
            }
        }
    }
    out
}

fn histogram_series(name: &str, set: &[(&'static str, String)], le: Option<String>) -> Series {
    let mut labels = set.to_vec();
    if let Some(le) = le {
        labels.push(("le", le));
    }
    Series {
        name: name.to_string(),
        labels,
        counter: true,
    }
}

/// `le` label value as client libraries print it.
pub fn format_le(b: f64) -> String {
    let s = format!("{b}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// `v` rounded to a multiple of `step` (unchanged when `step` is 0). A step below 1 is
/// taken as a fraction 1/n, so 0.01 gives what an exporter prints for ticks of 1/100 s
/// (`12.34`, not `12.340000000000002`).
pub fn round_to(v: f64, step: f64) -> f64 {
    if step <= 0.0 {
        v
    } else if step < 1.0 {
        let per_unit = (1.0 / step).round();
        (v * per_unit).round() / per_unit
    } else {
        (v / step).round() * step
    }
}
