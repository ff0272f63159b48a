//! Series counts of a whole head, shared by its stripes: what the series limits are checked
//! against, so `max_series` and `max_series_per_metric` hold for the head and not per stripe.
//!
//! A new series reserves its place here before it is created ([`SeriesTotals::try_reserve`]
//! checks and counts in one step under one lock), so two appenders creating series in
//! different stripes at once never pass a limit together. Series creation is rare next to
//! sample appends (once per series per head), so one lock here costs little.

use foldhash::HashMap;
use parking_lot::Mutex;

use crate::metrics::append::{RejectReason, SeriesLimits};

/// The number of series of a head, in all and per metric name.
#[derive(Debug, Default)]
pub(crate) struct SeriesTotals {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    series: u64,
    per_metric: HashMap<Box<str>, usize>,
}

impl SeriesTotals {
    /// Counts a new series of metric `metric` if the limits admit it; otherwise returns
    /// which limit refused it and counts nothing.
    pub(crate) fn try_reserve(&self, metric: &str, limits: &SeriesLimits) -> Result<(), RejectReason> {
        let mut counts = self.counts.lock();
        if limits.max_series > 0 && counts.series >= limits.max_series as u64 {
            return Err(RejectReason::SeriesLimit);
        }
        let of_metric = counts.per_metric.get(metric).copied().unwrap_or(0);
        if limits.max_series_per_metric > 0 && of_metric >= limits.max_series_per_metric {
            return Err(RejectReason::SeriesPerMetricLimit);
        }
        counts.add(metric);
        Ok(())
    }

    /// Counts a series without checking limits (WAL replay, the series a cut carries over).
    pub(crate) fn add(&self, metric: &str) {
        self.counts.lock().add(metric);
    }

    /// Uncounts a removed series (one that was counted: a series of an uncounted metric
    /// changes nothing).
    pub(crate) fn release(&self, metric: &str) {
        let mut counts = self.counts.lock();
        let Some(n) = counts.per_metric.get_mut(metric) else {
            debug_assert!(
                false,
                "released a series of metric {metric:?} that was never counted"
            );
            return;
        };
        *n -= 1;
        if *n == 0 {
            counts.per_metric.remove(metric);
        }
        counts.series = counts.series.saturating_sub(1);
    }

    /// Series in the head.
    pub(crate) fn series(&self) -> u64 {
        self.counts.lock().series
    }
}

impl Counts {
    fn add(&mut self, metric: &str) {
        self.series += 1;
        match self.per_metric.get_mut(metric) {
            Some(n) => *n += 1,
            None => {
                self.per_metric.insert(metric.into(), 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn limits_count_in_all_and_per_metric() {
        let limits = SeriesLimits {
            max_series: 3,
            max_series_per_metric: 2,
            ..SeriesLimits::default()
        };
        let totals = SeriesTotals::default();
        assert_eq!(totals.try_reserve("a", &limits), Ok(()));
        assert_eq!(totals.try_reserve("a", &limits), Ok(()));
        assert_eq!(
            totals.try_reserve("a", &limits),
            Err(RejectReason::SeriesPerMetricLimit)
        );
        assert_eq!(totals.try_reserve("b", &limits), Ok(()));
        assert_eq!(totals.try_reserve("c", &limits), Err(RejectReason::SeriesLimit));
        assert_eq!(totals.series(), 3);
        totals.release("a");
        assert_eq!(
            totals.try_reserve("a", &limits),
            Ok(()),
            "a released place is free again"
        );
        assert_eq!(totals.series(), 3);
    }
}
