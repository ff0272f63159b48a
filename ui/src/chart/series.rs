//! One line of a chart ([`Series`]): labels, display name and points — floats, and the
//! native histograms a query returned for the same series.

use std::sync::Arc;

use didban_store::model::{FloatHistogram, Labels};

/// One line of a chart: the series' labels, a display name, and `(ms, value)` points in time
/// order. `NaN` values are gaps. A series of native histograms has its samples in
/// `histograms` (time order too); the float path never looks at them, so it costs nothing
/// when they are absent.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Legend text; defaults to the labels in PromQL form.
    pub name: String,
    /// Points in time order.
    pub points: Vec<(i64, f64)>,
    /// Native histogram samples in time order (empty for float series).
    pub histograms: Vec<(i64, Arc<FloatHistogram>)>,
}

impl Series {
    /// A series named after its labels.
    pub fn new(labels: Labels, points: Vec<(i64, f64)>) -> Series {
        let name = labels.to_string();
        Series {
            labels,
            name,
            points,
            histograms: Vec::new(),
        }
    }

    /// A series of native histogram samples named after its labels.
    pub fn of_histograms(labels: Labels, histograms: Vec<(i64, Arc<FloatHistogram>)>) -> Series {
        let mut s = Series::new(labels, Vec::new());
        s.histograms = histograms;
        s
    }

    /// The last value that is not `NaN`.
    pub fn last_value(&self) -> Option<f64> {
        self.points.iter().rev().map(|p| p.1).find(|v| !v.is_nan())
    }

    /// The last native histogram sample, when the series has no float points after it
    /// (what a stat or a table shows: count and sum).
    pub fn last_histogram(&self) -> Option<&FloatHistogram> {
        let (t, h) = self.histograms.last()?;
        match self.points.last() {
            Some((tf, _)) if tf > t => None,
            _ => Some(h),
        }
    }
}
