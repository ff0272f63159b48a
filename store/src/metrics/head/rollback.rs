//! Taking back an append whose WAL record failed, and knowing which series still need
//! their definition logged: what keeps a refused request from leaving series behind.

use std::sync::atomic::Ordering;

use super::Head;
use crate::metrics::record::{SeriesDef, WalRecord};

impl Head {
    /// Notes that the series defined in an acknowledged record are logged.
    pub(crate) fn mark_logged(&self, defs: &[SeriesDef]) {
        for def in defs {
            if let Some(series) = self.series.by_ref(def.series_ref) {
                series.logged.store(true, Ordering::Release);
            }
        }
    }

    /// Takes back an append whose WAL record failed: its samples leave the head, and a
    /// series it defined that is now empty and not logged is removed, so a refused request
    /// leaves nothing behind that counts toward the series limits. (A series' newest
    /// timestamp is recomputed only for such new series; an older series keeps the raised
    /// value, which can only make the ordering rules stricter.)
    pub(crate) fn rollback(&mut self, record: &WalRecord) {
        for (series_ref, samples) in &record.samples {
            let Some(series) = self.series.by_ref_mut(*series_ref) else {
                continue;
            };
            let bytes_before = series.sample_bytes();
            let mut removed = 0u64;
            for s in samples {
                if series.samples.remove(*s) {
                    removed += 1;
                }
            }
            let bytes_after = series.sample_bytes();
            self.num_samples = self.num_samples.saturating_sub(removed);
            // Removing re-encodes the chunks concerned, which gives their bytes back.
            self.bytes = (self.bytes + bytes_after).saturating_sub(bytes_before);
        }
        for (series_ref, samples) in &record.histograms {
            let Some(series) = self.series.by_ref_mut(*series_ref) else {
                continue;
            };
            let bytes_before = series.sample_bytes();
            let mut removed = 0u64;
            for s in samples {
                if series.histograms.remove(s.timestamp_ms, &s.h) {
                    removed += 1;
                }
            }
            let bytes_after = series.sample_bytes();
            self.num_samples = self.num_samples.saturating_sub(removed);
            self.bytes = (self.bytes + bytes_after).saturating_sub(bytes_before);
        }
        for def in &record.series {
            let Some(series) = self.series.by_ref_mut(def.series_ref) else {
                continue;
            };
            if series.logged.load(Ordering::Acquire) {
                continue;
            }
            if series.is_empty() {
                self.remove_new_series(def.series_ref);
            } else {
                series.set_max_t(series.last_t());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::metrics::append::{AppendReport, SeriesHint, SeriesLimits};
    use crate::metrics::head::rules::AppendRules;
    use crate::model::{Labels, Sample};

    fn rules() -> AppendRules {
        AppendRules {
            limits: SeriesLimits::default(),
            out_of_order_window_ms: 100,
            max_sample_age_ms: 0,
            max_future_ms: 0,
        }
    }

    fn record(head: &mut Head, t: i64) -> WalRecord {
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let mut report = AppendReport::default();
        let out = head
            .append_series(labels, &[Sample::new(t, 1.0)], &rules(), 0, &mut report)
            .unwrap();
        WalRecord {
            series: out.definition.into_iter().collect(),
            samples: vec![(out.series_ref, out.accepted)],
            histograms: Vec::new(),
        }
    }

    #[test]
    fn a_series_lives_while_any_unacknowledged_append_holds_it() {
        let mut head = Head::new(1, None);
        let empty_bytes = head.bytes();
        let first = record(&mut head, 1000);
        // The second append finds the series but must define it again: the first record
        // may still fail.
        let second = record(&mut head, 2000);
        assert_eq!(second.series.len(), 1);
        assert_eq!(head.num_samples(), 2);

        head.rollback(&first);
        assert_eq!(head.num_series(), 1, "the second append still holds the series");
        assert_eq!(head.num_samples(), 1);
        head.rollback(&second);
        assert_eq!(head.num_series(), 0);
        assert_eq!(head.num_samples(), 0);
        assert_eq!(head.bytes(), empty_bytes);
    }

    #[test]
    fn a_refused_histogram_append_leaves_nothing_behind() {
        use crate::model::{FloatHistogram, HistogramSample};
        let mut head = Head::new(1, None);
        let empty_bytes = head.bytes();
        let labels = Labels::from_pairs([("__name__", "rpc_seconds")]);
        let h = |t: i64, count: f64| {
            HistogramSample::new(
                t,
                FloatHistogram {
                    count,
                    ..FloatHistogram::default()
                },
            )
        };
        let mut report = AppendReport::default();
        let histograms = [h(1000, 1.0), h(2000, 2.0)];
        let append = |head: &mut Head, labels: Labels, report: &mut AppendReport| {
            head.append_series_with(
                labels,
                Vec::new(),
                &histograms,
                SeriesHint::NONE,
                &rules(),
                0,
                report,
            )
        };
        let out = append(&mut head, labels.clone(), &mut report).unwrap();
        assert_eq!(report.accepted, 2);
        assert_eq!(head.num_samples(), 2);
        let record = WalRecord {
            series: out.definition.into_iter().collect(),
            samples: Vec::new(),
            histograms: vec![(out.series_ref, out.accepted_histograms)],
        };
        head.rollback(&record);
        assert_eq!(head.num_series(), 0);
        assert_eq!(head.num_samples(), 0);
        assert_eq!(head.bytes(), empty_bytes);
        // The retry is accepted, not a duplicate.
        let mut report = AppendReport::default();
        append(&mut head, labels, &mut report).unwrap();
        assert_eq!(report.accepted, 2);
    }

    #[test]
    fn a_logged_series_is_kept_and_defined_once() {
        let mut head = Head::new(1, None);
        let first = record(&mut head, 1000);
        head.mark_logged(&first.series);
        let second = record(&mut head, 2000);
        assert!(second.series.is_empty());
        head.rollback(&second);
        assert_eq!(head.num_series(), 1);
        assert_eq!(head.num_samples(), 1);
        // A retry of the refused sample is accepted, not a duplicate.
        let retry = record(&mut head, 2000);
        assert_eq!(retry.samples[0].1.len(), 1);
    }
}
