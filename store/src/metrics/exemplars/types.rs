//! What the exemplar store takes and answers: an exemplar, one with its series, a series'
//! exemplars, and why one was refused.

use crate::model::Labels;

/// One exemplar: its own labels (`trace_id`, `span_id`, …), value and time.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// The exemplar's labels (not the series').
    pub labels: Labels,
    /// The observed value.
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
}

/// An exemplar to append, with the series it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplar {
    /// The series' labels (as its samples are stored).
    pub series: Labels,
    /// The exemplar.
    pub exemplar: Exemplar,
}

/// A series' exemplars as a query answers them: oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    /// The series' labels.
    pub series: Labels,
    /// Its exemplars in the queried range, oldest first.
    pub exemplars: Vec<Exemplar>,
}

/// Why one exemplar was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExemplarRefusal {
    /// The same exemplar as the series' newest (a no-op, not an error in Prometheus).
    Duplicate,
    /// Older than the series' newest exemplar.
    OutOfOrder,
    /// Labels longer than 128 characters (`MAX_LABEL_SET_CHARS`).
    LabelSetTooLong,
    /// A label name that is not a valid Prometheus label name.
    InvalidLabels,
    /// `max_exemplars` is 0: exemplar storage is off.
    Disabled,
}

impl ExemplarRefusal {
    /// Stable snake_case name, for self-metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ExemplarRefusal::Duplicate => "duplicate",
            ExemplarRefusal::OutOfOrder => "out_of_order",
            ExemplarRefusal::LabelSetTooLong => "label_set_too_long",
            ExemplarRefusal::InvalidLabels => "invalid_labels",
            ExemplarRefusal::Disabled => "disabled",
        }
    }

    /// A phrase for messages, in Prometheus' wording where it has one.
    pub fn describe(self) -> &'static str {
        match self {
            ExemplarRefusal::Duplicate => "duplicate exemplar",
            ExemplarRefusal::OutOfOrder => "out of order exemplar",
            ExemplarRefusal::LabelSetTooLong => "exemplar label set exceeds 128 characters",
            ExemplarRefusal::InvalidLabels => "invalid exemplar label name",
            ExemplarRefusal::Disabled => "exemplar storage is disabled (max_exemplars = 0)",
        }
    }
}
