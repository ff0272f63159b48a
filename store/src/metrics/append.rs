//! What an append of samples is checked against and what it reports back: the per-series
//! limits, the reasons a sample or series is refused, and the report. The head applies
//! them (`head::rules`); the database returns the report from [`Db::append`].
//!
//! [`Db::append`]: crate::Db::append

use serde::{Deserialize, Serialize};

/// Per-series validation limits (the cardinality guard).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesLimits {
    /// Most labels (including `__name__`) a series may have.
    pub max_labels_per_series: usize,
    /// Longest label name in bytes.
    pub max_label_name_bytes: usize,
    /// Longest label value in bytes.
    pub max_label_value_bytes: usize,
    /// Total number of series in the head (0 = unlimited).
    pub max_series: usize,
    /// Series per metric name in the head (0 = unlimited).
    pub max_series_per_metric: usize,
}

impl Default for SeriesLimits {
    fn default() -> Self {
        SeriesLimits {
            max_labels_per_series: 64,
            max_label_name_bytes: 256,
            max_label_value_bytes: 4096,
            max_series: 2_000_000,
            max_series_per_metric: 200_000,
        }
    }
}

/// Where the head held a series the last time it was appended: given back with the next
/// append of the same series ([`Db::append_hinted`]), it lets the head go to the series
/// without finding it by its labels (at 1 M series those lookups' cache misses were ~15 %
/// of remote-write ingest CPU). A hint is only ever a shortcut: the head checks that the
/// series there has the labels given, and finds it the usual way when not (after a cut
/// moved it, a restart, another series in its place), handing back the new hint.
///
/// [`Db::append_hinted`]: crate::Db::append_hinted
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesHint(u32);

impl SeriesHint {
    /// No hint: the head finds the series by its labels.
    pub const NONE: SeriesHint = SeriesHint(u32::MAX);

    /// The hint of the series in `slot` of its stripe.
    pub(crate) fn at(slot: u32) -> SeriesHint {
        SeriesHint(slot)
    }

    /// The slot the hint names, if any.
    pub(crate) fn slot(self) -> Option<u32> {
        (self != SeriesHint::NONE).then_some(self.0)
    }

    /// The hint as a number, to keep it in an atomic (see [`SeriesHint::from_bits`]).
    pub fn to_bits(self) -> u32 {
        self.0
    }

    /// The hint [`SeriesHint::to_bits`] gave. Any number is a valid hint: the head checks
    /// where it leads.
    pub fn from_bits(bits: u32) -> SeriesHint {
        SeriesHint(bits)
    }
}

impl Default for SeriesHint {
    fn default() -> Self {
        SeriesHint::NONE
    }
}

/// Why a single sample or series was refused; counted per reason and reported back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Labels invalid: bad name, duplicate name, missing metric name.
    InvalidLabels,
    /// More labels than `max_labels_per_series`.
    TooManyLabels,
    /// A label name longer than `max_label_name_bytes`.
    LabelNameTooLong,
    /// A label value longer than `max_label_value_bytes`.
    LabelValueTooLong,
    /// The total series limit was reached; new series are refused.
    SeriesLimit,
    /// The per-metric series limit was reached.
    SeriesPerMetricLimit,
    /// The head is over its memory budget: new series are refused (existing ones are
    /// not) until a head cut gives the memory back.
    HeadMemoryLimit,
    /// Older than the series' newest sample by more than the out-of-order window.
    OutOfOrder,
    /// Older than `max_sample_age` before the newest sample seen, where "newest" is never
    /// later than the server clock (so no input can push it).
    TooOld,
    /// More than `max_future` ahead of the server clock.
    TooFarInFuture,
    /// Same timestamp as an existing sample with the same value: ignored.
    Duplicate,
    /// Same timestamp as an existing sample but a different value (or a sample of the
    /// other kind, float or native histogram).
    DuplicateTimestamp,
    /// A native histogram that breaks the model's invariants (spans and bucket counts
    /// disagree, bad schema, bad custom bounds).
    InvalidHistogram,
}

impl RejectReason {
    /// Stable snake_case name, for metrics labels and API responses.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidLabels => "invalid_labels",
            RejectReason::TooManyLabels => "too_many_labels",
            RejectReason::LabelNameTooLong => "label_name_too_long",
            RejectReason::LabelValueTooLong => "label_value_too_long",
            RejectReason::SeriesLimit => "series_limit",
            RejectReason::SeriesPerMetricLimit => "series_per_metric_limit",
            RejectReason::HeadMemoryLimit => "head_memory_limit",
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::TooOld => "too_old",
            RejectReason::TooFarInFuture => "too_far_in_future",
            RejectReason::Duplicate => "duplicate",
            RejectReason::DuplicateTimestamp => "duplicate_timestamp",
            RejectReason::InvalidHistogram => "invalid_histogram",
        }
    }

    /// A phrase for messages to clients, in Prometheus' wording where it has one.
    pub fn describe(self) -> &'static str {
        match self {
            RejectReason::InvalidLabels => "invalid labels",
            RejectReason::TooManyLabels => "too many labels",
            RejectReason::LabelNameTooLong => "label name too long",
            RejectReason::LabelValueTooLong => "label value too long",
            RejectReason::SeriesLimit => "series limit reached",
            RejectReason::SeriesPerMetricLimit => "per-metric series limit reached",
            RejectReason::HeadMemoryLimit => "head memory limit reached, new series refused",
            RejectReason::OutOfOrder => "out of order sample",
            RejectReason::TooOld => "too old sample",
            RejectReason::TooFarInFuture => "sample timestamp too far in the future",
            RejectReason::Duplicate => "duplicate sample",
            RejectReason::DuplicateTimestamp => "duplicate sample for timestamp",
            RejectReason::InvalidHistogram => "invalid native histogram",
        }
    }
}

/// What happened to an append: how many samples were stored, and for the rest why not.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AppendReport {
    /// Samples stored, float and native histogram (and, once `append` returns, durable per
    /// the fsync mode).
    pub accepted: u64,
    /// Refused samples per reason, sorted by reason.
    pub rejected: Vec<(RejectReason, u64)>,
    /// A human-readable description of the first refusal, naming the series.
    pub first_error: Option<String>,
}

impl AppendReport {
    /// Refused samples over all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }

    /// Counts `n` refusals for `reason`, remembering the first message.
    pub fn reject(&mut self, reason: RejectReason, n: u64, message: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
        match self.rejected.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, count)) => *count += n,
            None => {
                self.rejected.push((reason, n));
                self.rejected.sort();
            }
        }
    }
}
