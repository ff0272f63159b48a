//! The acceptance rules for appended series and samples.

use std::sync::atomic::Ordering;

use super::{Head, InsertedSamples, MemSeries};
use crate::metrics::append::{AppendReport, RejectReason, SeriesHint, SeriesLimits};
use crate::metrics::histogram_codec::identical;
use crate::metrics::record::SeriesDef;
use crate::model::{HistogramSample, Labels, Sample};

/// The limits and time windows an append is checked against.
#[derive(Debug, Clone)]
pub(crate) struct AppendRules {
    pub limits: SeriesLimits,
    /// Milliseconds an out-of-order sample may lag its series' newest sample.
    pub out_of_order_window_ms: i64,
    /// Milliseconds a sample may lag the newest sample in the database (0 = no limit); the
    /// newest sample counts as no later than the server clock.
    pub max_sample_age_ms: i64,
    /// Milliseconds a sample may lie ahead of the server clock (0 = no limit).
    pub max_future_ms: i64,
}

impl AppendRules {
    /// The latest timestamp accepted at server time `now_ms`.
    pub(crate) fn latest_accepted(&self, now_ms: i64) -> i64 {
        if self.max_future_ms > 0 {
            now_ms.saturating_add(self.max_future_ms)
        } else {
            i64::MAX
        }
    }

    /// The oldest timestamp accepted at server time `now_ms` when the newest sample in the
    /// database is `max_seen_t`. The newest sample counts as no later than `now_ms`: a
    /// sample from the future (accepted before time sanity, or within `max_future`) cannot
    /// push the window forward for every other series, and neither can a WAL or block that
    /// holds one. With only older data (a backfill) the window follows that data.
    pub(crate) fn oldest_accepted(&self, max_seen_t: Option<i64>, now_ms: i64) -> Option<i64> {
        if self.max_sample_age_ms <= 0 {
            return None;
        }
        max_seen_t.map(|t| t.min(now_ms).saturating_sub(self.max_sample_age_ms))
    }
}

/// What appending one series produced: the samples to log, and the series definition to
/// log first when the series is new or the record that defined it is not acknowledged yet
/// (so no written record depends on one that may still fail).
#[derive(Debug)]
pub(crate) struct SeriesAppend {
    pub series_ref: u64,
    /// Where the series is, for the caller's next append of it.
    pub hint: SeriesHint,
    pub definition: Option<SeriesDef>,
    pub accepted: Vec<Sample>,
    /// The accepted histogram samples, sorted by timestamp.
    pub accepted_histograms: Vec<HistogramSample>,
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
    /// Applies one series' samples under the acceptance rules at server time `now_ms`,
    /// counting refusals in `report`. The caller logs the result to the WAL. A new series
    /// that gets no sample accepted is not kept. (Float samples only: the tests' form.)
    #[cfg(test)]
    pub(crate) fn append_series(
        &mut self,
        labels: Labels,
        samples: &[Sample],
        rules: &AppendRules,
        now_ms: i64,
        report: &mut AppendReport,
    ) -> Option<SeriesAppend> {
        self.append_series_with(
            labels,
            samples.to_vec(),
            &[],
            SeriesHint::NONE,
            rules,
            now_ms,
            report,
        )
    }

    /// [`Head::append_series`] with native histogram samples besides the float ones. A
    /// histogram that fails [`FloatHistogram::validate`] is refused as
    /// [`RejectReason::InvalidHistogram`].
    ///
    /// The float samples are taken by value: those accepted are returned in the same
    /// vector (an allocation and a copy per series less on the hot path of ingest).
    /// `hint` is where the caller saw the series last (see [`SeriesHint`]).
    ///
    /// [`FloatHistogram::validate`]: crate::model::FloatHistogram::validate
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append_series_with(
        &mut self,
        labels: Labels,
        samples: Vec<Sample>,
        histograms: &[HistogramSample],
        hint: SeriesHint,
        rules: &AppendRules,
        now_ms: i64,
        report: &mut AppendReport,
    ) -> Option<SeriesAppend> {
        let n = (samples.len() + histograms.len()) as u64;
        let hinted = hint
            .slot()
            .and_then(|slot| self.series.confirm_slot(slot, &labels));
        let (slot, created) = match hinted {
            Some(slot) => (slot, false),
            None => self.find_or_create(labels, n, rules, report)?,
        };
        self.append_at_slot(slot, created, samples, histograms, rules, now_ms, report)
    }

    /// The slot of the series with `labels`, created (and true) when the head has none
    /// and the limits allow it; `None` when it was refused (counted in `report`).
    fn find_or_create(
        &mut self,
        labels: Labels,
        n: u64,
        rules: &AppendRules,
        report: &mut AppendReport,
    ) -> Option<(u32, bool)> {
        let hash = self.series.hash(&labels);
        // A series already in the head passed the label checks when it was created.
        if let Some(slot) = self.series.slot_of_labels(hash, &labels) {
            return Some((slot, false));
        }
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
        let metric = labels.metric_name().unwrap_or_default();
        match self.totals.try_reserve(metric, limits) {
            Ok(()) => {}
            Err(RejectReason::SeriesPerMetricLimit) => {
                report.reject(RejectReason::SeriesPerMetricLimit, n, || {
                    format!(
                        "{labels}: limit of {} series for metric {metric:?} reached",
                        limits.max_series_per_metric
                    )
                });
                return None;
            }
            Err(reason) => {
                report.reject(reason, n, || {
                    format!("{labels}: series limit of {} reached", limits.max_series)
                });
                return None;
            }
        }
        self.create_series(labels.clone(), None);
        // One more probe, of the entry just written (in cache).
        let slot = self.series.slot_of_labels(hash, &labels)?;
        Some((slot, true))
    }

    /// Checks and inserts the samples of the series in `slot` (`created` by this append:
    /// removed again when none is accepted); the samples are checked and inserted with the
    /// head's other fields apart.
    #[allow(clippy::too_many_arguments)]
    fn append_at_slot(
        &mut self,
        slot: u32,
        created: bool,
        samples: Vec<Sample>,
        histograms: &[HistogramSample],
        rules: &AppendRules,
        now_ms: i64,
        report: &mut AppendReport,
    ) -> Option<SeriesAppend> {
        let max_seen_t = self.max_seen_t;
        let series = self.series.slot_mut(slot)?;
        let series_ref = series.series_ref;
        let bytes_before = series.sample_bytes();
        let mut check = Checker {
            rules,
            now_ms,
            max_seen_t,
            inserted: InsertedSamples::default(),
        };
        let mut accepted = check.samples(series, samples, report);
        let mut accepted_histograms = check.histograms(series, histograms, report);
        let bytes_after = series.sample_bytes();
        let definition = (created || !series.logged.load(Ordering::Acquire)).then(|| SeriesDef {
            series_ref,
            max_t: None,
            labels: series.labels.clone(),
        });
        self.account_inserted(&check.inserted, bytes_before, bytes_after);
        if accepted.is_empty() && accepted_histograms.is_empty() {
            if created {
                self.remove_new_series(series_ref);
            }
            return None;
        }
        report.accepted += (accepted.len() + accepted_histograms.len()) as u64;
        accepted.sort_by_key(|s| s.timestamp_ms);
        accepted_histograms.sort_by_key(|s| s.timestamp_ms);
        Some(SeriesAppend {
            series_ref,
            hint: SeriesHint::at(slot),
            definition,
            accepted,
            accepted_histograms,
        })
    }

    /// Lowers the database-wide newest timestamp to `latest` when it lies beyond it: what a
    /// WAL or block written before time sanity (or with `max_future` off) may hold. Called
    /// at open, so that a restart never brings back a window that one sample moved.
    pub(crate) fn forget_future(&mut self, latest: i64) {
        if self.max_seen_t.is_some_and(|t| t > latest) {
            self.max_seen_t = Some(latest);
        }
    }
}

/// Checks one series' samples against the acceptance rules and inserts those accepted,
/// tracking the newest timestamp seen as they go (the too-old rule follows it).
struct Checker<'a> {
    rules: &'a AppendRules,
    now_ms: i64,
    /// Newest timestamp in the database, raised by each accepted sample.
    max_seen_t: Option<i64>,
    /// The samples inserted (of both kinds), for the head's accounting.
    inserted: InsertedSamples,
}

impl Checker<'_> {
    fn window(&self) -> Window {
        Window {
            oldest: self.rules.oldest_accepted(self.max_seen_t, self.now_ms),
            latest: self.rules.latest_accepted(self.now_ms),
            now_ms: self.now_ms,
            out_of_order_ms: self.rules.out_of_order_window_ms,
        }
    }

    fn inserted(&mut self, window: &mut Window, t: i64) {
        self.inserted.add(t);
        self.max_seen_t = Some(self.max_seen_t.map_or(t, |m| m.max(t)));
        window.oldest = self.rules.oldest_accepted(self.max_seen_t, self.now_ms);
    }

    /// Checks and inserts float samples, counting refusals in `report`; returns the
    /// accepted samples in the order given, in `samples`' own vector.
    fn samples(
        &mut self,
        series: &mut MemSeries,
        mut samples: Vec<Sample>,
        report: &mut AppendReport,
    ) -> Vec<Sample> {
        let mut window = self.window();
        // Accepted samples are moved down to the front as they are found.
        let mut kept = 0;
        for i in 0..samples.len() {
            let Some(&s) = samples.get(i) else {
                break;
            };
            let same = |series: &MemSeries| {
                held_same(series, s.timestamp_ms, |v| v == Held::Float(s.value.to_bits()))
            };
            match check_sample(series, s.timestamp_ms, &window, same) {
                Ok(()) => {
                    if series.insert(s) {
                        if let Some(slot) = samples.get_mut(kept) {
                            *slot = s;
                        }
                        kept += 1;
                        self.inserted(&mut window, s.timestamp_ms);
                    }
                }
                Err(reason) => {
                    let labels = &series.labels;
                    let (now_ms, rules) = (self.now_ms, self.rules);
                    report.reject(reason, 1, || {
                        refusal_message(labels, reason, s.timestamp_ms, now_ms, rules)
                    });
                }
            }
        }
        samples.truncate(kept);
        samples
    }

    /// [`Checker::samples`] for histogram samples; an invalid histogram is refused.
    fn histograms(
        &mut self,
        series: &mut MemSeries,
        histograms: &[HistogramSample],
        report: &mut AppendReport,
    ) -> Vec<HistogramSample> {
        if histograms.is_empty() {
            return Vec::new();
        }
        let mut window = self.window();
        let mut accepted = Vec::with_capacity(histograms.len());
        for s in histograms {
            let t = s.timestamp_ms;
            if let Err(e) = s.h.validate() {
                let labels = &series.labels;
                report.reject(RejectReason::InvalidHistogram, 1, || {
                    format!("{labels}: invalid native histogram at timestamp {t}: {e}")
                });
                continue;
            }
            let same = |series: &MemSeries| {
                held_same(series, t, |held| match held {
                    Held::Histogram(h) => identical(&h, &s.h),
                    Held::Float(_) => false,
                })
            };
            match check_sample(series, t, &window, same) {
                Ok(()) => {
                    if series.insert_histogram(s) {
                        accepted.push(s.clone());
                        self.inserted(&mut window, t);
                    }
                }
                Err(reason) => {
                    let labels = &series.labels;
                    let (now_ms, rules) = (self.now_ms, self.rules);
                    report.reject(reason, 1, || refusal_message(labels, reason, t, now_ms, rules));
                }
            }
        }
        accepted
    }
}

/// The timestamps one series' samples are checked against.
struct Window {
    /// Oldest accepted (`None`: no limit).
    oldest: Option<i64>,
    /// Latest accepted.
    latest: i64,
    /// The server clock.
    now_ms: i64,
    /// How far behind its series' newest sample a sample may be.
    out_of_order_ms: i64,
}

/// The message naming the series and the timestamp of a refused sample.
fn refusal_message(
    labels: &Labels,
    reason: RejectReason,
    t: i64,
    now_ms: i64,
    rules: &AppendRules,
) -> String {
    if reason == RejectReason::TooFarInFuture {
        return format!(
            "{labels}: {} (timestamp {t} ms is {} s ahead of the server clock, at most {} s allowed)",
            reason.describe(),
            t.saturating_sub(now_ms) / 1000,
            rules.max_future_ms / 1000
        );
    }
    format!("{labels}: {} at timestamp {t}", reason.describe())
}

/// A sample a series already holds at some timestamp.
#[derive(PartialEq)]
enum Held {
    /// A float sample, by its bits.
    Float(u64),
    /// A native histogram sample.
    Histogram(std::sync::Arc<crate::model::FloatHistogram>),
}

/// Whether the series holds a sample at `t` (`None`: no) and, if so, whether `same`
/// says it is the one being appended.
fn held_same(series: &MemSeries, t: i64, same: impl Fn(Held) -> bool) -> Option<bool> {
    if let Some(v) = series.samples.get(t) {
        return Some(same(Held::Float(v.to_bits())));
    }
    series.histograms.get(t).map(|h| same(Held::Histogram(h)))
}

/// Decides whether one sample at `t` may be stored, given the series' state and the
/// window; `same` tells whether the series holds a sample at `t` and whether it is
/// identical to the new one (a duplicate) or not (a conflicting one, also when the kinds
/// differ).
fn check_sample(
    series: &MemSeries,
    t: i64,
    window: &Window,
    same: impl Fn(&MemSeries) -> Option<bool>,
) -> Result<(), RejectReason> {
    if t > window.latest {
        return Err(RejectReason::TooFarInFuture);
    }
    if window.oldest.is_some_and(|oldest| t < oldest) {
        return Err(RejectReason::TooOld);
    }
    let Some(newest) = series.max_t() else {
        return Ok(());
    };
    if t > newest {
        return Ok(());
    }
    match same(series) {
        Some(true) => return Err(RejectReason::Duplicate),
        Some(false) => return Err(RejectReason::DuplicateTimestamp),
        None => {}
    }
    // The series' newest sample counts as no later than the server clock: one from the
    // future (written before time sanity) must not lock its series out until the clock
    // catches up.
    let newest = newest.min(window.now_ms);
    if newest.saturating_sub(t) > window.out_of_order_ms {
        return Err(RejectReason::OutOfOrder);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The server clock of these tests.
    const NOW: i64 = 1_000_000;

    fn rules() -> AppendRules {
        AppendRules {
            limits: SeriesLimits {
                max_series: 3,
                max_series_per_metric: 2,
                ..SeriesLimits::default()
            },
            out_of_order_window_ms: 100,
            max_sample_age_ms: 10_000,
            max_future_ms: 60_000,
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
            .append_series(up("a"), &samples, &rules(), NOW, &mut report)
            .unwrap();
        assert_eq!(report.accepted, 3);
        let ts: Vec<i64> = out.accepted.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(ts, vec![950, 1000, 1100]);
        assert!(out.definition.is_some());
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
        let out = head.append_series(up("b"), &[Sample::new(-9000, 1.0)], &rules(), NOW, &mut report);
        assert!(out.is_none());
        assert_eq!(report.rejected, vec![(RejectReason::TooOld, 1)]);
        assert_eq!(head.num_series(), 1, "a refused new series is not kept");
    }

    #[test]
    fn series_limits_refuse_new_series_only() {
        let mut head = Head::new(1, None);
        let mut report = AppendReport::default();
        head.append_series(up("a"), &[Sample::new(1, 1.0)], &rules(), NOW, &mut report)
            .unwrap();
        head.append_series(up("b"), &[Sample::new(1, 1.0)], &rules(), NOW, &mut report)
            .unwrap();
        assert!(head
            .append_series(up("c"), &[Sample::new(1, 1.0)], &rules(), NOW, &mut report)
            .is_none());
        assert_eq!(report.rejected, vec![(RejectReason::SeriesPerMetricLimit, 1)]);
        let other = Labels::from_pairs([("__name__", "x")]);
        head.append_series(other, &[Sample::new(1, 1.0)], &rules(), NOW, &mut report)
            .unwrap();
        let other2 = Labels::from_pairs([("__name__", "y")]);
        assert!(head
            .append_series(other2, &[Sample::new(1, 1.0)], &rules(), NOW, &mut report)
            .is_none());
        assert!(report.rejected.contains(&(RejectReason::SeriesLimit, 1)));
        let existing = head.append_series(up("a"), &[Sample::new(2, 1.0)], &rules(), NOW, &mut report);
        assert!(existing.is_some());
    }

    #[test]
    fn label_limits() {
        let mut head = Head::new(1, None);
        let mut report = AppendReport::default();
        let mut r = rules();
        r.limits.max_label_value_bytes = 3;
        assert!(head
            .append_series(up("long"), &[Sample::new(1, 1.0)], &r, NOW, &mut report)
            .is_none());
        let bad = Labels::from_pairs([("__name__", "up"), ("bad-name", "x")]);
        assert!(head
            .append_series(bad, &[Sample::new(1, 1.0)], &r, NOW, &mut report)
            .is_none());
        r.limits.max_labels_per_series = 1;
        assert!(head
            .append_series(up("a"), &[Sample::new(1, 1.0)], &r, NOW, &mut report)
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

    #[test]
    fn future_samples_are_refused_and_move_no_window() {
        let mut head = Head::new(1, None);
        let mut report = AppendReport::default();
        let year = 365 * 24 * 3_600_000;
        let samples = [
            Sample::new(NOW + year, 1.0),
            Sample::new(NOW + 60_001, 2.0),
            Sample::new(NOW + 60_000, 3.0),
        ];
        let out = head
            .append_series(up("a"), &samples, &rules(), NOW, &mut report)
            .unwrap();
        assert_eq!(out.accepted, vec![Sample::new(NOW + 60_000, 3.0)]);
        assert_eq!(report.rejected, vec![(RejectReason::TooFarInFuture, 2)]);
        let message = report.first_error.unwrap();
        assert!(message.contains(r#"up{job="a"}"#), "{message}");
        assert!(message.contains("ahead of the server clock"), "{message}");

        // The accepted sample 1 min ahead does not make "now" too old for other series.
        let mut report = AppendReport::default();
        let at_now = [Sample::new(NOW - 9_000, 1.0)];
        assert!(head
            .append_series(up("b"), &at_now, &rules(), NOW, &mut report)
            .is_some());
        assert_eq!(report.rejected, vec![]);
    }

    #[test]
    fn a_future_newest_from_before_locks_nothing() {
        // As a WAL written before time sanity leaves it: one series a year ahead.
        let year = 365 * 24 * 3_600_000;
        let mut head = Head::new(1, None);
        let mut report = AppendReport::default();
        let mut no_limit = rules();
        no_limit.max_future_ms = 0;
        head.append_series(
            up("a"),
            &[Sample::new(NOW + year, 1.0)],
            &no_limit,
            NOW,
            &mut report,
        )
        .unwrap();
        head.forget_future(rules().latest_accepted(NOW));
        assert_eq!(head.max_seen_t(), Some(NOW + 60_000));

        let mut report = AppendReport::default();
        for labels in [up("a"), up("b")] {
            let out = head.append_series(labels, &[Sample::new(NOW, 2.0)], &rules(), NOW, &mut report);
            assert!(out.is_some(), "{report:?}");
        }
        assert_eq!(report.accepted, 2);
        // The series' own order still holds below the clock.
        let late = head.append_series(
            up("a"),
            &[Sample::new(NOW - 1_000, 2.0)],
            &rules(),
            NOW,
            &mut report,
        );
        assert!(late.is_none());
        assert_eq!(report.rejected, vec![(RejectReason::OutOfOrder, 1)]);
    }
}
