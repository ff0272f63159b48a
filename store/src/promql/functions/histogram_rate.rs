//! The native-histogram side of `rate`/`increase`/`delta` and `irate`/`idelta`: the
//! bucket-by-bucket increase between two histograms, corrected for counter resets, as a gauge
//! histogram at the coarsest schema seen.

use crate::model::{CounterResetHint, FloatHistogram, HistogramSample};

use super::super::annotations::Annotations;

/// Increase (or, for gauges, difference) from the first to the last histogram of a window,
/// before extrapolation. Counter resets add back the value before the reset. `None` (with a
/// warning) when the histograms cannot be combined.
pub(super) fn histogram_increase(
    hs: &[HistogramSample],
    is_counter: bool,
    metric_name: &str,
    notes: &mut Annotations,
) -> Option<FloatHistogram> {
    let first = &hs.first()?.h;
    let last = &hs.last()?.h;
    let mut min_schema = first.schema.min(last.schema);
    for p in hs {
        if p.h.uses_custom_buckets() != first.uses_custom_buckets() {
            notes.mixed_exponential_custom(metric_name);
            return None;
        }
        if is_counter {
            min_schema = min_schema.min(p.h.schema);
        }
    }
    if is_counter
        && (first.counter_reset_hint == CounterResetHint::Gauge
            || last.counter_reset_hint == CounterResetHint::Gauge)
    {
        notes.histogram_not_counter(metric_name);
    }
    if !is_counter
        && (first.counter_reset_hint != CounterResetHint::Gauge
            || last.counter_reset_hint != CounterResetHint::Gauge)
    {
        notes.histogram_not_gauge(metric_name);
    }
    let mut h = (**last).clone();
    h.reduce_resolution(min_schema);
    if let Err(e) = h.sub(first) {
        notes.histogram_op_error(e, metric_name);
        return None;
    }
    if is_counter {
        let mut prev = first;
        for p in hs.iter().skip(1) {
            if p.h.detect_reset(prev) {
                if let Err(e) = h.add(prev) {
                    notes.histogram_op_error(e, metric_name);
                    return None;
                }
            }
            prev = &p.h;
        }
    }
    h.counter_reset_hint = CounterResetHint::Gauge;
    h.compact(0);
    Some(h)
}

/// `last - prev` (for `irate`, just `last` after a counter reset), as a gauge histogram.
pub(super) fn histogram_instant_delta(
    prev: &FloatHistogram,
    last: &FloatHistogram,
    is_rate: bool,
    metric_name: &str,
    notes: &mut Annotations,
) -> Option<FloatHistogram> {
    let gauge = |h: &FloatHistogram| h.counter_reset_hint == CounterResetHint::Gauge;
    if is_rate && (gauge(prev) || gauge(last)) {
        notes.histogram_not_counter(metric_name);
    }
    let both_gauges = gauge(prev) && gauge(last);
    if !is_rate && !both_gauges {
        notes.histogram_not_gauge(metric_name);
    }
    let mut h = last.clone();
    if !is_rate || !last.detect_reset(prev) {
        if let Err(e) = h.sub(prev) {
            notes.histogram_op_error(e, metric_name);
            return None;
        }
    }
    h.counter_reset_hint = CounterResetHint::Gauge;
    h.compact(0);
    Some(h)
}
