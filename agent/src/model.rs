//! The agent's internal metric model: what every collector produces and the exporter encodes.
//!
//! It is the Prometheus data model on purpose (name + labels, one `f64` value, a millisecond
//! timestamp), because agent metric names follow the Prometheus exporters and the collector
//! maps OTLP back to Prometheus series.

/// How a sample's value behaves over time; decides how it is encoded in OTLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKind {
    /// Only goes up (resets on restart). Encoded as a cumulative monotonic OTLP sum when the
    /// name ends with `_total`, otherwise as a gauge so the collector keeps the name unchanged.
    Counter,
    /// Any value, may go up and down.
    Gauge,
}

/// One measured value of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Prometheus metric name (`node_cpu_seconds_total`), sent unchanged.
    pub name: String,
    /// Label pairs. `job` and `instance`, when present, become the OTLP resource
    /// (`service.name`, `service.instance.id`) instead of data point attributes.
    pub labels: Vec<(String, String)>,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The value.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The whole histogram, for a classic histogram of a scrape job that converts them to
    /// native histograms (`value` is then its count); `None` for every other sample.
    pub histogram: Option<Box<ClassicHistogram>>,
}

/// A classic (`le` bucket) histogram kept whole, so the exporter sends it as one OTLP
/// explicit-bucket histogram point instead of `_bucket`, `_sum` and `_count` series.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicHistogram {
    /// Finite upper bounds, strictly increasing.
    pub bounds: Vec<f64>,
    /// Observations per bucket, not cumulative: one more than `bounds`, the last one above
    /// the largest bound.
    pub counts: Vec<u64>,
    /// Observations in all (the sum of `counts`).
    pub count: u64,
    /// Sum of the observations, when exposed.
    pub sum: Option<f64>,
}

impl Sample {
    /// A gauge sample with the given labels.
    pub fn gauge(name: &str, labels: &[(&str, &str)], value: f64, timestamp_ms: i64) -> Sample {
        Sample::new(name, labels, MetricKind::Gauge, value, timestamp_ms)
    }

    /// A counter sample with the given labels.
    pub fn counter(name: &str, labels: &[(&str, &str)], value: f64, timestamp_ms: i64) -> Sample {
        Sample::new(name, labels, MetricKind::Counter, value, timestamp_ms)
    }

    /// A sample of any kind; labels are copied in the given order.
    pub fn new(
        name: &str,
        labels: &[(&str, &str)],
        kind: MetricKind,
        value: f64,
        timestamp_ms: i64,
    ) -> Sample {
        let mut owned = Vec::with_capacity(labels.len());
        for (k, v) in labels {
            owned.push((k.to_string(), v.to_string()));
        }
        Sample {
            name: name.to_string(),
            labels: owned,
            kind,
            value,
            timestamp_ms,
            histogram: None,
        }
    }

    /// The value of a label, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        for (k, v) in &self.labels {
            if k == name {
                return Some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_lookup() {
        let s = Sample::gauge("x", &[("a", "1"), ("b", "2")], 1.0, 5);
        assert_eq!(s.label("b"), Some("2"));
        assert_eq!(s.label("c"), None);
        assert_eq!(s.kind, MetricKind::Gauge);
    }
}
