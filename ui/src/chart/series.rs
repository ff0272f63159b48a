//! One line of a chart ([`Series`]): labels, display name and points.

use didban_store::model::Labels;

/// One line of a chart: the series' labels, a display name, and `(ms, value)` points in time
/// order. `NaN` values are gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Legend text; defaults to the labels in PromQL form.
    pub name: String,
    /// Points in time order.
    pub points: Vec<(i64, f64)>,
}

impl Series {
    /// A series named after its labels.
    pub fn new(labels: Labels, points: Vec<(i64, f64)>) -> Series {
        let name = labels.to_string();
        Series { labels, name, points }
    }

    /// The last value that is not `NaN`.
    pub fn last_value(&self) -> Option<f64> {
        self.points.iter().rev().map(|p| p.1).find(|v| !v.is_nan())
    }
}
