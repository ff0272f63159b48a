//! A cumulative Prometheus histogram kept by the agent (`_bucket{le}`, `_sum`, `_count`), so
//! `histogram_quantile` works across workers and agents.

use crate::model::Sample;

/// Counts of observations at or under each bound, their sum and their number.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending, without `+Inf`).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Counts `value`; NaN and negative values are ignored.
    pub fn observe(&mut self, value: f64) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        for (i, bound) in self.bounds.iter().enumerate() {
            if value <= *bound {
                self.buckets[i] += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Appends `<name>_bucket` (one per bound and `+Inf`), `<name>_sum` and `<name>_count`
    /// with `labels` as counters at `now_ms`.
    pub fn push_samples(&self, name: &str, labels: &[(&str, &str)], now_ms: i64, out: &mut Vec<Sample>) {
        let bucket = format!("{name}_bucket");
        for (i, bound) in self.bounds.iter().enumerate() {
            let le = bound.to_string();
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            out.push(Sample::counter(&bucket, &with_le, self.buckets[i] as f64, now_ms));
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        out.push(Sample::counter(&bucket, &with_le, self.count as f64, now_ms));
        out.push(Sample::counter(&format!("{name}_sum"), labels, self.sum, now_ms));
        out.push(Sample::counter(
            &format!("{name}_count"),
            labels,
            self.count as f64,
            now_ms,
        ));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bad_values_ignored() {
        let mut h = Histogram::new(&[1.0, 10.0]);
        h.observe(0.5);
        h.observe(5.0);
        h.observe(50.0);
        h.observe(f64::NAN);
        h.observe(-1.0);
        let mut out = Vec::new();
        h.push_samples("w", &[("name", "t")], 7, &mut out);
        let got: Vec<(String, Option<&str>, f64)> = out
            .iter()
            .map(|s| (s.name.clone(), s.label("le"), s.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("w_bucket".to_string(), Some("1"), 1.0),
                ("w_bucket".to_string(), Some("10"), 2.0),
                ("w_bucket".to_string(), Some("+Inf"), 3.0),
                ("w_sum".to_string(), None, 55.5),
                ("w_count".to_string(), None, 3.0),
            ]
        );
        assert!(out.iter().all(|s| s.label("name") == Some("t")));
        assert_eq!(h.count(), 3);
    }
}
