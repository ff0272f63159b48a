//! Downsampled data: one [`Window`] summarises the float samples of one series inside one
//! aligned time window (5 minutes or 1 hour), so queries over long ranges read one row per
//! window instead of every sample. Folding is exact and associative: windows of 5 minutes
//! fold into windows of 1 hour giving the same result as folding the raw samples.

use serde::{Deserialize, Serialize};

use crate::model::{is_stale_nan, HistogramSample, Labels, Sample};

/// The aggregates of one series' float samples in one window.
///
/// Stale markers are left out of every aggregate. A NaN that is not a stale marker counts in
/// `count` and makes `sum` NaN, as it would in `count_over_time`/`sum_over_time`; `min` and
/// `max` ignore it unless every sample is NaN (as `min_over_time`/`max_over_time` do);
/// `first`, `last` and `counter` consider only the other values (NaN when there are none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Timestamp of the window's last sample (not the window's end): a downsampled series
    /// keeps the real time of its newest sample in each window.
    pub timestamp_ms: i64,
    /// Samples in the window.
    pub count: u64,
    /// Sum of their values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// First value in time order.
    pub first: f64,
    /// Last value in time order.
    pub last: f64,
    /// Increase from `first` to `last` with counter resets accounted the way `increase`
    /// accounts them (a drop adds the value after it). With `first` and `last` it gives the
    /// exact raw increase across any run of consecutive windows: within each window
    /// `counter`, between two windows the reset-aware step from one's `last` to the next
    /// one's `first`.
    pub counter: f64,
}

impl Window {
    /// The window of one raw sample; `None` for a stale marker.
    pub fn of_sample(s: &Sample) -> Option<Window> {
        if is_stale_nan(s.value) {
            return None;
        }
        let v = s.value;
        let counted = if v.is_nan() { f64::NAN } else { v };
        Some(Window {
            timestamp_ms: s.timestamp_ms,
            count: 1,
            sum: v,
            min: v,
            max: v,
            first: counted,
            last: counted,
            counter: if v.is_nan() { f64::NAN } else { 0.0 },
        })
    }

    /// Folds `next` (which follows `self` in time) into `self`.
    pub fn absorb(&mut self, next: &Window) {
        self.timestamp_ms = next.timestamp_ms;
        self.count += next.count;
        self.sum += next.sum;
        self.min = nan_min(self.min, next.min);
        self.max = nan_max(self.max, next.max);
        if next.last.is_nan() {
            return;
        }
        if self.last.is_nan() {
            self.first = next.first;
            self.counter = next.counter;
        } else {
            self.counter += counter_step(self.last, next.first) + next.counter;
        }
        self.last = next.last;
    }
}

/// The increase from counter value `prev` to the next value `next`: their difference, or
/// `next` itself when the counter went down (a reset), as Prometheus' `increase` counts it.
pub fn counter_step(prev: f64, next: f64) -> f64 {
    if next >= prev {
        next - prev
    } else {
        next
    }
}

/// The smaller value, NaN only when both are NaN.
fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b < a {
        b
    } else {
        a
    }
}

/// The larger value, NaN only when both are NaN.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b > a {
        b
    } else {
        a
    }
}

/// Folds windows (or raw samples made windows with [`Window::of_sample`]), sorted by time,
/// into windows aligned to multiples of `resolution_ms` (which must be positive), appending
/// them to `out`.
pub fn fold_windows(input: impl IntoIterator<Item = Window>, resolution_ms: i64, out: &mut Vec<Window>) {
    let resolution_ms = resolution_ms.max(1);
    let mut current: Option<(i64, Window)> = None;
    for w in input {
        let slot = w.timestamp_ms.div_euclid(resolution_ms);
        match current.as_mut() {
            Some((s, acc)) if *s == slot => acc.absorb(&w),
            _ => {
                if let Some((_, done)) = current.take() {
                    out.push(done);
                }
                current = Some((slot, w));
            }
        }
    }
    if let Some((_, done)) = current {
        out.push(done);
    }
}

/// A series as a downsampled read returns it: windows where downsampled data was read,
/// raw float samples where raw data was read (the two cover disjoint times), each in time
/// order, and its native histogram samples, which are never downsampled.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesWindows {
    /// The series.
    pub labels: Labels,
    /// Windows read from downsampled blocks, in time order.
    pub windows: Vec<Window>,
    /// Raw float samples read where no downsampled block covers the range, in time order.
    pub samples: Vec<Sample>,
    /// Native histogram samples (never downsampled), in time order.
    pub histograms: Vec<HistogramSample>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::stale_nan;

    const R: i64 = 300_000;

    fn fold_samples(points: &[(i64, f64)], resolution: i64) -> Vec<Window> {
        let mut out = Vec::new();
        let windows = points
            .iter()
            .filter_map(|&(t, v)| Window::of_sample(&Sample::new(t, v)));
        fold_windows(windows, resolution, &mut out);
        out
    }

    /// Prometheus' reset-aware increase over raw values.
    fn raw_increase(values: &[f64]) -> f64 {
        values.windows(2).map(|p| counter_step(p[0], p[1])).sum()
    }

    #[test]
    fn aggregates_of_a_window() {
        let w = fold_samples(&[(0, 3.0), (15_000, 1.0), (30_000, 5.0), (45_000, 2.0)], R);
        assert_eq!(w.len(), 1);
        let w = w[0];
        assert_eq!(w.timestamp_ms, 45_000);
        assert_eq!(w.count, 4);
        assert_eq!((w.sum, w.min, w.max, w.first, w.last), (11.0, 1.0, 5.0, 3.0, 2.0));
        // 3 → 1 reset (+1), 1 → 5 (+4), 5 → 2 reset (+2)
        assert_eq!(w.counter, 7.0);
    }

    #[test]
    fn counter_across_windows_with_resets_matches_raw_increase() {
        // A counter growing by 10 per 15 s with resets at samples 30 and 61 (window
        // boundaries at 20 and 40 and 60 samples): the increase between any two windows'
        // last samples, rebuilt from the windows, equals the raw one.
        let mut points = Vec::new();
        let mut v = 100.0;
        for i in 0..100i64 {
            if i == 30 || i == 61 {
                v = 4.0;
            }
            points.push((i * 15_000, v));
            v += 10.0;
        }
        let windows = fold_samples(&points, R);
        assert_eq!(windows.len(), 5);
        let values: Vec<f64> = points.iter().map(|p| p.1).collect();
        for a in 0..windows.len() {
            for b in a + 1..windows.len() {
                let mut inc = 0.0;
                for k in a + 1..=b {
                    inc += counter_step(windows[k - 1].last, windows[k].first) + windows[k].counter;
                }
                let ia = points
                    .iter()
                    .position(|p| p.0 == windows[a].timestamp_ms)
                    .unwrap();
                let ib = points
                    .iter()
                    .position(|p| p.0 == windows[b].timestamp_ms)
                    .unwrap();
                assert_eq!(inc, raw_increase(&values[ia..=ib]), "windows {a}..{b}");
            }
        }
    }

    #[test]
    fn folding_five_minute_windows_into_hours_equals_folding_raw_samples() {
        let mut points = Vec::new();
        for i in 0..1000i64 {
            let v = if i % 97 == 0 {
                1.0
            } else {
                (i * 7 % 13) as f64 + i as f64
            };
            points.push((i * 15_000 + 7, v));
        }
        let fine = fold_samples(&points, R);
        let mut coarse = Vec::new();
        fold_windows(fine.iter().copied(), 3_600_000, &mut coarse);
        let direct = fold_samples(&points, 3_600_000);
        assert_eq!(coarse.len(), direct.len());
        for (a, b) in coarse.iter().zip(&direct) {
            assert_eq!(
                (a.timestamp_ms, a.count, a.min, a.max),
                (b.timestamp_ms, b.count, b.min, b.max)
            );
            assert_eq!((a.first, a.last), (b.first, b.last));
            assert!((a.sum - b.sum).abs() < 1e-6 && (a.counter - b.counter).abs() < 1e-6);
        }
    }

    #[test]
    fn gaps_and_a_series_starting_mid_window_make_partial_windows() {
        // Starts 2m into a window, then nothing for 12 minutes.
        let w = fold_samples(&[(120_000, 1.0), (135_000, 2.0), (1_020_000, 9.0)], R);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].timestamp_ms, w[0].count, w[0].sum), (135_000, 2, 3.0));
        assert_eq!(
            (w[1].timestamp_ms, w[1].count, w[1].first, w[1].counter),
            (1_020_000, 1, 9.0, 0.0)
        );
    }

    #[test]
    fn stale_markers_are_left_out_and_nan_values_follow_the_over_time_rules() {
        let w = fold_samples(
            &[(0, 2.0), (15_000, stale_nan()), (30_000, f64::NAN), (45_000, 4.0)],
            R,
        );
        assert_eq!(w.len(), 1);
        let w = w[0];
        assert_eq!(w.count, 3);
        assert!(w.sum.is_nan());
        assert_eq!(
            (w.min, w.max, w.first, w.last, w.counter),
            (2.0, 4.0, 2.0, 4.0, 2.0)
        );
        // A window of nothing but a stale marker does not exist.
        assert!(fold_samples(&[(0, stale_nan())], R).is_empty());
        // Only NaN: min/max/first/last NaN, counted.
        let w = fold_samples(&[(0, f64::NAN)], R)[0];
        assert_eq!(w.count, 1);
        assert!(w.min.is_nan() && w.max.is_nan() && w.last.is_nan());
    }

    #[test]
    fn negative_timestamps_align_to_their_own_window() {
        let w = fold_samples(&[(-1, 1.0), (0, 2.0)], R);
        assert_eq!(w.len(), 2);
    }
}
