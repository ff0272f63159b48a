//! Reducing a series to what a chart can show: at most a few points per pixel column.
//!
//! Pages query at about one step per pixel, so this only trims whatever arrives beyond that
//! (raw samples of a range vector, a step finer than the panel). The method is **min/max per
//! pixel column**: every column keeps the point with its lowest and the point with its
//! highest value, in time order. We chose it over LTTB (largest-triangle-three-buckets)
//! because a line drawn through each column's min and max covers exactly the vertical extent
//! the full data would have covered in that column, so no spike, in either direction, can
//! disappear; LTTB keeps one point per bucket chosen by triangle area and may drop one side
//! of a short up-and-down spike. Min/max is also one linear pass with no floating point
//! tie-breaking, so the same data always draws the same picture.
//!
//! Gaps survive: when a column contains a `NaN` (a gap in the series), a `NaN` point is kept
//! at its time, so the chart still lifts its pen there.

/// What one pixel column keeps.
#[derive(Default, Clone, Copy)]
struct Column {
    min: Option<(i64, f64)>,
    max: Option<(i64, f64)>,
    gap: Option<i64>,
}

impl Column {
    fn add(&mut self, t: i64, v: f64) {
        if v.is_nan() {
            if self.gap.is_none() {
                self.gap = Some(t);
            }
            return;
        }
        if self.min.is_none_or(|(_, m)| v < m) {
            self.min = Some((t, v));
        }
        if self.max.is_none_or(|(_, m)| v > m) {
            self.max = Some((t, v));
        }
    }

    fn flush(&mut self, out: &mut Vec<(i64, f64)>) {
        let mut keep: Vec<(i64, f64)> = Vec::with_capacity(3);
        if let Some(p) = self.min {
            keep.push(p);
        }
        if let Some(p) = self.max {
            if Some(p) != self.min {
                keep.push(p);
            }
        }
        if let Some(t) = self.gap {
            keep.push((t, f64::NAN));
        }
        keep.sort_by_key(|p| p.0);
        out.extend(keep);
        *self = Column::default();
    }
}

/// `points` (in time order) reduced to at most about two per column when the window
/// `start_ms..end_ms` is drawn `columns` pixels wide; unchanged when already that small.
/// Points outside the window fall into the first or last column.
pub fn min_max(points: &[(i64, f64)], start_ms: i64, end_ms: i64, columns: usize) -> Vec<(i64, f64)> {
    if columns == 0 || points.len() <= 2 * columns || end_ms <= start_ms {
        return points.to_vec();
    }
    let span = (end_ms - start_ms) as f64;
    let column_of = |t: i64| -> usize {
        let c = ((t - start_ms) as f64 / span * columns as f64).floor();
        c.clamp(0.0, (columns - 1) as f64) as usize
    };
    let mut out = Vec::with_capacity(2 * columns + 2);
    let mut current = Column::default();
    let mut current_index = usize::MAX;
    for &(t, v) in points {
        let c = column_of(t);
        if c != current_index {
            current.flush(&mut out);
            current_index = c;
        }
        current.add(t, v);
    }
    current.flush(&mut out);
    out
}

/// Keeps every k-th point so that about `max_points` remain (the first and last always
/// stay). Only for data whose columns must stay aligned across series (stacked areas,
/// heatmaps), where per-series min/max would pick different times.
pub fn stride(points: &[(i64, f64)], max_points: usize) -> Vec<(i64, f64)> {
    if max_points == 0 || points.len() <= max_points {
        return points.to_vec();
    }
    let k = points.len().div_ceil(max_points);
    let mut out: Vec<(i64, f64)> = points.iter().step_by(k).copied().collect();
    if let (Some(last), Some(kept)) = (points.last(), out.last()) {
        if kept.0 != last.0 {
            out.push(*last);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_series_are_untouched() {
        let pts: Vec<(i64, f64)> = (0..10).map(|i| (i * 1000, i as f64)).collect();
        assert_eq!(min_max(&pts, 0, 10_000, 5), pts);
        assert_eq!(min_max(&pts, 0, 10_000, 0), pts);
    }

    #[test]
    fn spikes_in_both_directions_survive() {
        // 10 000 points over 100 columns, flat at 1 with one spike up and one down.
        let mut pts: Vec<(i64, f64)> = (0..10_000).map(|i| (i, 1.0)).collect();
        pts[4321].1 = 500.0;
        pts[7777].1 = -300.0;
        let out = min_max(&pts, 0, 10_000, 100);
        assert!(out.len() <= 200, "{}", out.len());
        assert!(out.contains(&(4321, 500.0)));
        assert!(out.contains(&(7777, -300.0)));
        // still in time order
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn each_column_keeps_its_min_and_max() {
        let pts: Vec<(i64, f64)> = (0..1000).map(|i| (i, (i % 10) as f64)).collect();
        let out = min_max(&pts, 0, 1000, 100);
        // every column of 10 points keeps the 0 and the 9
        assert_eq!(out.len(), 200);
        assert_eq!(&out[..2], &[(0, 0.0), (9, 9.0)]);
    }

    #[test]
    fn gaps_survive() {
        let mut pts: Vec<(i64, f64)> = (0..1000).map(|i| (i, 1.0)).collect();
        for p in &mut pts[500..520] {
            p.1 = f64::NAN;
        }
        let out = min_max(&pts, 0, 1000, 10);
        let gaps: Vec<i64> = out.iter().filter(|p| p.1.is_nan()).map(|p| p.0).collect();
        assert_eq!(gaps, vec![500]);
        // the NaN sits between the column's finite points
        let i = out.iter().position(|p| p.1.is_nan()).unwrap();
        assert!(out[i - 1].0 < 500 && out[i + 1].0 > 500);
    }

    #[test]
    fn stride_keeps_ends() {
        let pts: Vec<(i64, f64)> = (0..1001).map(|i| (i, i as f64)).collect();
        let out = stride(&pts, 100);
        assert!(out.len() <= 102);
        assert_eq!(out.first(), Some(&(0, 0.0)));
        assert_eq!(out.last(), Some(&(1000, 1000.0)));
    }
}
