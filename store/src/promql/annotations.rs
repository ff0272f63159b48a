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

    /// Adds every annotation of `other` not already present.
    pub(crate) fn merge(&mut self, other: Annotations) {
        for w in other.warnings {
            Self::push(&mut self.warnings, w);
        }
        for i in other.infos {
            Self::push(&mut self.infos, i);
        }
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

    /// A range of one series, or an aggregation group, held both floats and histograms
    /// where the operation needs one kind (`rate`, `sum_over_time`; `sum`/`avg` pass "").
    pub(crate) fn mixed_floats_histograms(&mut self, metric_name: &str) {
        Self::push(
            &mut self.warnings,
            format!(
                "PromQL warning: encountered a mix of histograms and floats{}",
                if metric_name.is_empty() {
                    " for aggregation".to_string()
                } else {
                    for_metric_name(metric_name)
                }
            ),
        );
    }

    /// `histogram_quantile`/`histogram_fraction` found classic bucket series and native
    /// histograms in one group.
    pub(crate) fn mixed_classic_native(&mut self, metric_name: &str) {
        Self::push(
            &mut self.warnings,
            format!(
                "PromQL warning: vector contains a mix of classic and native histograms{}",
                for_metric_name(metric_name)
            ),
        );
    }

    /// Histograms with exponential and custom buckets met in one operation.
    pub(crate) fn mixed_exponential_custom(&mut self, metric_name: &str) {
        Self::push(
            &mut self.warnings,
            format!(
                "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas{}",
                for_metric_name(metric_name)
            ),
        );
    }

    /// Custom-bucket histograms with different bounds met in one operation.
    pub(crate) fn incompatible_custom_buckets(&mut self, metric_name: &str) {
        Self::push(
            &mut self.warnings,
            format!(
                "PromQL warning: vector contains histograms with incompatible custom buckets{}",
                for_metric_name(metric_name)
            ),
        );
    }

    /// Added histograms said "counter reset" and "no counter reset" at once.
    pub(crate) fn counter_reset_collision(&mut self) {
        Self::push(
            &mut self.warnings,
            "PromQL warning: conflicting counter resets during histogram addition".to_string(),
        );
    }

    /// `rate`/`increase`/`irate` over a gauge histogram.
    pub(crate) fn histogram_not_counter(&mut self, metric_name: &str) {
        Self::push(
            &mut self.warnings,
            format!("PromQL warning: this native histogram metric is not a counter: {metric_name:?}"),
        );
    }

    /// `delta`/`idelta` over a counter histogram.
    pub(crate) fn histogram_not_gauge(&mut self, metric_name: &str) {
        Self::push(
            &mut self.warnings,
            format!("PromQL warning: this native histogram metric is not a gauge: {metric_name:?}"),
        );
    }

    /// An aggregation that only works on floats (`min`, `topk`, …) skipped histograms.
    pub(crate) fn histogram_ignored_in_aggregation(&mut self, aggregation: &str) {
        Self::push(
            &mut self.infos,
            format!("PromQL info: ignored histogram in {aggregation} aggregation"),
        );
    }

    /// A float-only range function skipped the histograms of a range that had both kinds.
    pub(crate) fn histogram_ignored_in_mixed_range(&mut self, metric_name: &str) {
        Self::push(
            &mut self.infos,
            format!(
                "PromQL info: ignored histograms in a range containing both floats and histograms{}",
                for_metric_name(metric_name)
            ),
        );
    }

    /// A binary operator met a float and a histogram (or two histograms) it is not
    /// defined for; the pair is dropped.
    pub(crate) fn incompatible_types_in_bin_op(&mut self, op: &str, lhs: &str, rhs: &str) {
        Self::push(
            &mut self.infos,
            format!(
                "PromQL info: incompatible sample types encountered for binary operator {op:?}: {lhs} {op} {rhs}"
            ),
        );
    }

    /// The warning for a failed histogram addition or subtraction.
    pub(crate) fn histogram_op_error(&mut self, err: crate::model::HistogramOpError, metric_name: &str) {
        match err {
            crate::model::HistogramOpError::MixedExponentialCustom => {
                self.mixed_exponential_custom(metric_name)
            }
            crate::model::HistogramOpError::IncompatibleCustomBuckets => {
                self.incompatible_custom_buckets(metric_name)
            }
        }
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
