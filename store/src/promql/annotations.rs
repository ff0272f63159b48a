//! Query annotations: the warnings and infos Prometheus 3 returns beside a result (in the API's
//! `warnings` and `infos` arrays), worded as Prometheus words them. Prometheus appends the
//! position of the offending expression (`(1:6)`); Didban's parser reports no positions, so
//! Didban's texts end before it.

/// Warnings and infos one query produced, each text once, in the order first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    /// `PromQL warning: …` texts: the result may be wrong or incomplete.
    pub warnings: Vec<String>,
    /// `PromQL info: …` texts: the result is right but the query may not mean what it says.
    pub infos: Vec<String>,
}

impl Annotations {
    /// True when there is neither a warning nor an info.
    pub fn is_empty(&self) -> bool {
        self.warnings.is_empty() && self.infos.is_empty()
    }

    fn push(list: &mut Vec<String>, text: String) {
        if !list.contains(&text) {
            list.push(text);
        }
    }

    /// A φ outside [0, 1] (or NaN) given to `quantile`, `quantile_over_time` or
    /// `histogram_quantile`.
    pub(crate) fn invalid_quantile(&mut self, q: f64) {
        Self::push(
            &mut self.warnings,
            format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}",
                go_float(q)
            ),
        );
    }

    /// A `limit_ratio` ratio outside [-1, 1], capped to `to`.
    pub(crate) fn invalid_ratio(&mut self, ratio: f64, to: f64) {
        Self::push(
            &mut self.warnings,
            format!(
                "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
                go_float(ratio),
                go_float(to)
            ),
        );
    }

    /// A classic-histogram bucket series whose `le` is missing or not a number.
    pub(crate) fn bad_bucket_label(&mut self, metric_name: &str, le: &str) {
        Self::push(
            &mut self.warnings,
            format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of {le:?}{}",
                for_metric_name(metric_name)
            ),
        );
    }

    /// `rate`/`increase` over a metric whose name does not say it is a counter.
    pub(crate) fn possible_non_counter(&mut self, metric_name: &str) {
        Self::push(
            &mut self.infos,
            format!(
                "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric_name:?}"
            ),
        );
    }

    /// `histogram_quantile` had to make decreasing cumulative bucket counts monotonic.
    pub(crate) fn forced_monotonicity(&mut self, metric_name: &str) {
        Self::push(
            &mut self.infos,
            format!(
                "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile){}",
                for_metric_name(metric_name)
            ),
        );
    }
}

fn for_metric_name(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" for metric name {name:?}")
    }
}

/// A float as Go's `%g` prints the usual values: `NaN`, `+Inf`, `-Inf`, shortest decimal.
fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_deduplicated_and_worded_as_prometheus() {
        let mut a = Annotations::default();
        a.invalid_quantile(1.5);
        a.invalid_quantile(1.5);
        a.possible_non_counter("foo");
        a.bad_bucket_label("", "x");
        assert_eq!(
            a.warnings,
            vec![
                "PromQL warning: quantile value should be between 0 and 1, got 1.5".to_string(),
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of \"x\""
                    .to_string(),
            ]
        );
        assert_eq!(
            a.infos,
            vec!["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"foo\"".to_string()]
        );
    }
}
