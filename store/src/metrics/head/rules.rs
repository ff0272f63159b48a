//! The acceptance rules for appended series and samples.

use super::{Head, MemSeries};
use crate::metrics::append::{AppendReport, RejectReason, SeriesLimits};
use crate::metrics::record::SeriesDef;
use crate::model::{Labels, Sample};

/// The limits and time windows an append is checked against.
#[derive(Debug, Clone)]
pub(crate) struct AppendRules {
    pub limits: SeriesLimits,
    /// Milliseconds an out-of-order sample may lag its series' newest sample.
    pub out_of_order_window_ms: i64,
    /// Milliseconds a sample may lag the newest sample in the database (0 = no limit).
    pub max_sample_age_ms: i64,
}

/// What appending one series produced: the samples to log, and the series definition to
/// log first when the series is new.
#[derive(Debug)]
pub(crate) struct SeriesAppend {
    pub series_ref: u64,
    pub new_series: Option<SeriesDef>,
    pub accepted: Vec<Sample>,
}

/// Checks the labels against validity and the size limits.
pub(crate) fn check_labels(labels: &Labels, limits: &SeriesLimits) -> Result<(), (RejectReason, String)> {
    if let Err(e) = labels.validate() {
        return Err((RejectReason::InvalidLabels, format!("{labels}: {e}")));
    }
    if labels.len() > limits.max_labels_per_series {
        return Err((
            RejectReason::TooManyLabels,
            format!(
                "{labels}: {} labels, limit {}",
                labels.len(),
                limits.max_labels_per_series
            ),
        ));
    }
    for l in labels.iter() {
        if l.name.len() > limits.max_label_name_bytes {
            return Err((
                RejectReason::LabelNameTooLong,
                format!(
                    "{labels}: label name {:?} is longer than {} bytes",
                    l.name, limits.max_label_name_bytes
                ),
            ));
        }
        if l.value.len() > limits.max_label_value_bytes {
            return Err((
                RejectReason::LabelValueTooLong,
                format!(
                    "{labels}: value of label {:?} is longer than {} bytes",
                    l.name, limits.max_label_value_bytes
                ),
            ));
        }
    }
    Ok(())
}

impl Head {
    /// Applies one series' samples under the acceptance rules, counting refusals in
    /// `report`. The caller logs the result to the WAL. A new series that gets no sample
    /// accepted is not kept.
    pub(crate) fn append_series(
        &mut self,
        labels: Labels,
        samples: &[Sample],
        rules: &AppendRules,
        report: &mut AppendReport,
    ) -> Option<SeriesAppend> {
        let n = samples.len() as u64;
        // A series already in the head passed the label checks when it was created.
        let (series_ref, created) = match self.lookup(&labels) {
            Some(r) => (r, false),
            None => {
                if let Err((reason, msg)) = check_labels(&labels, &rules.limits) {
                    report.reject(reason, n, || msg);
                    return None;
                }
                let gate = self.series_gate();
                if !gate.admits(self.bytes()) {
                    report.reject(RejectReason::HeadMemoryLimit, n, || {
                        format!(
                            "{labels}: head memory limit of {} bytes reached; new series are refused until the next head cut, existing series keep being accepted",
                            gate.limit
                        )
                    });
                    return None;
                }
                let limits = &rules.limits;
                if limits.max_series > 0 && self.num_series() as usize >= limits.max_series {
                    report.reject(RejectReason::SeriesLimit, n, || {
                        format!("{labels}: series limit of {} reached", limits.max_series)
                    });
                    return None;
                }
                let metric = labels.metric_name().unwrap_or_default();
                if limits.max_series_per_metric > 0
                    && self.series_with_metric(metric) >= limits.max_series_per_metric
                {
                    report.reject(RejectReason::SeriesPerMetricLimit, n, || {
                        format!(
                            "{labels}: limit of {} series for metric {metric:?} reached",
                            limits.max_series_per_metric
                        )
                    });
                    return None;
                }
                (self.create_series(labels, None), true)
            }
        };

        let mut accepted = self.accept_samples(series_ref, samples, rules, report);
        if accepted.is_empty() {
            if created {
                self.remove_new_series(series_ref);
            }
            return None;
        }
        report.accepted += accepted.len() as u64;
        accepted.sort_by_key(|s| s.timestamp_ms);
        let new_series = match (created, self.series.get(&series_ref)) {
            (true, Some(series)) => Some(SeriesDef {
                series_ref,
                max_t: None,
                labels: series.labels.clone(),
            }),
            _ => None,
        };
        Some(SeriesAppend {
            series_ref,
            new_series,
            accepted,
        })
    }

    /// Checks and inserts one series' samples (one lookup for all of them), counting
    /// refusals in `report`; returns the accepted samples in the order given.
    fn accept_samples(
        &mut self,
        series_ref: u64,
        samples: &[Sample],
        rules: &AppendRules,
        report: &mut AppendReport,
    ) -> Vec<Sample> {
        let mut max_seen = self.max_seen_t;
        let Some(series) = self.series.get_mut(&series_ref) else {
            return Vec::new();
        };
        let capacity_before = series.samples.capacity();
        let mut accepted = Vec::with_capacity(samples.len());
        for s in samples {
            match check_sample(series, max_seen, *s, rules) {
                Ok(()) => {
                    if series.insert(*s) {
                        accepted.push(*s);
                        max_seen = Some(max_seen.map_or(s.timestamp_ms, |m| m.max(s.timestamp_ms)));
                    }
                }
                Err(reason) => {
                    let labels = &series.labels;
                    report.reject(reason, 1, || {
                        format!("{labels}: {} at timestamp {}", reason.describe(), s.timestamp_ms)
                    });
                }
            }
        }
        let grown = series.samples.capacity().saturating_sub(capacity_before);
        self.account_inserted(&accepted, grown);
        accepted
    }
}

/// Decides whether one sample may be stored, given the series' state and the newest
/// sample seen in the database.
fn check_sample(
    series: &MemSeries,
    max_seen_t: Option<i64>,
    s: Sample,
    rules: &AppendRules,
) -> Result<(), RejectReason> {
    let t = s.timestamp_ms;
    if rules.max_sample_age_ms > 0 {
        if let Some(newest) = max_seen_t {
            if t < newest.saturating_sub(rules.max_sample_age_ms) {
                return Err(RejectReason::TooOld);
            }
        }
    }
    let Some(newest) = series.max_t else {
        return Ok(());
    };
    if t > newest {
        return Ok(());
    }
    if let Ok(i) = series.samples.binary_search_by(|x| x.timestamp_ms.cmp(&t)) {
        if series.samples[i].value.to_bits() == s.value.to_bits() {
            return Err(RejectReason::Duplicate);
        }
        return Err(RejectReason::DuplicateTimestamp);
    }
    if newest.saturating_sub(t) > rules.out_of_order_window_ms {
        return Err(RejectReason::OutOfOrder);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rules() -> AppendRules {
        AppendRules {
            limits: SeriesLimits {
                max_series: 3,
                max_series_per_metric: 2,
                ..SeriesLimits::default()
            },
            out_of_order_window_ms: 100,
            max_sample_age_ms: 10_000,
        }
    }

    fn up(job: &str) -> Labels {
        Labels::from_pairs([("__name__", "up"), ("job", job)])
    }

    #[test]
    fn ordering_rules() {
        let mut head = Head::new(1, None);
        let mut report = AppendReport::default();
        let samples = [
            Sample::new(1000, 1.0),
            Sample::new(950, 2.0),  // within window
            Sample::new(800, 3.0),  // beyond window
            Sample::new(1000, 1.0), // duplicate
            Sample::new(1000, 9.0), // duplicate timestamp
            Sample::new(1100, 4.0),
        ];
        let out = head
            .append_series(up("a"), &samples, &rules(), &mut report)
            .unwrap();
        assert_eq!(report.accepted, 3);
        let ts: Vec<i64> = out.accepted.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(ts, vec![950, 1000, 1100]);
        assert!(out.new_series.is_some());
        assert_eq!(
            report.rejected,
            vec![
                (RejectReason::OutOfOrder, 1),
                (RejectReason::Duplicate, 1),
                (RejectReason::DuplicateTimestamp, 1)
            ]
        );
        assert!(report.first_error.as_deref().unwrap().contains(r#"up{job="a"}"#));

        let mut report = AppendReport::default();
        let out = head.append_series(up("b"), &[Sample::new(-9000, 1.0)], &rules(), &mut report);
        assert!(out.is_none());
        assert_eq!(report.rejected, vec![(RejectReason::TooOld, 1)]);
        assert_eq!(head.num_series(), 1, "a refused new series is not kept");
    }

    #[test]
    fn series_limits_refuse_new_series_only() {
        let mut head = Head::new(1, None);
        let mut report = AppendReport::default();
        head.append_series(up("a"), &[Sample::new(1, 1.0)], &rules(), &mut report)
            .unwrap();
        head.append_series(up("b"), &[Sample::new(1, 1.0)], &rules(), &mut report)
            .unwrap();
        assert!(head
            .append_series(up("c"), &[Sample::new(1, 1.0)], &rules(), &mut report)
            .is_none());
        assert_eq!(report.rejected, vec![(RejectReason::SeriesPerMetricLimit, 1)]);
        let other = Labels::from_pairs([("__name__", "x")]);
        head.append_series(other, &[Sample::new(1, 1.0)], &rules(), &mut report)
            .unwrap();
        let other2 = Labels::from_pairs([("__name__", "y")]);
        assert!(head
            .append_series(other2, &[Sample::new(1, 1.0)], &rules(), &mut report)
            .is_none());
        assert!(report.rejected.contains(&(RejectReason::SeriesLimit, 1)));
        let existing = head.append_series(up("a"), &[Sample::new(2, 1.0)], &rules(), &mut report);
        assert!(existing.is_some());
    }

    #[test]
    fn label_limits() {
        let mut head = Head::new(1, None);
        let mut report = AppendReport::default();
        let mut r = rules();
        r.limits.max_label_value_bytes = 3;
        assert!(head
            .append_series(up("long"), &[Sample::new(1, 1.0)], &r, &mut report)
            .is_none());
        let bad = Labels::from_pairs([("__name__", "up"), ("bad-name", "x")]);
        assert!(head
            .append_series(bad, &[Sample::new(1, 1.0)], &r, &mut report)
            .is_none());
        r.limits.max_labels_per_series = 1;
        assert!(head
            .append_series(up("a"), &[Sample::new(1, 1.0)], &r, &mut report)
            .is_none());
        assert_eq!(
            report.rejected,
            vec![
                (RejectReason::InvalidLabels, 1),
                (RejectReason::TooManyLabels, 1),
                (RejectReason::LabelValueTooLong, 1)
            ]
        );
    }
}
