//! Per-series checks done before an append, so a refusal can name the series and the rule:
//! valid names, no duplicate names, and the configured label limits.

use didban_store::{Labels, RejectReason, SeriesLimits};

/// Longest label value echoed back in an error message.
const MAX_ECHO: usize = 120;

/// Why a series is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SeriesError {
    /// The counter the refusal is reported under.
    pub reason: RejectReason,
    /// What was wrong, naming the series.
    pub message: String,
}

/// Checks `labels` against the naming rules and `limits`.
pub fn check_series(labels: &Labels, limits: &SeriesLimits) -> Result<(), SeriesError> {
    if let Err(e) = labels.validate() {
        return Err(SeriesError {
            reason: RejectReason::InvalidLabels,
            message: format!("{e} in series {}", describe(labels)),
        });
    }
    if labels.len() > limits.max_labels_per_series {
        return Err(SeriesError {
            reason: RejectReason::TooManyLabels,
            message: format!(
                "series {} has {} labels; the limit is {}",
                describe(labels),
                labels.len(),
                limits.max_labels_per_series
            ),
        });
    }
    for label in labels.iter() {
        if label.name.len() > limits.max_label_name_bytes {
            return Err(SeriesError {
                reason: RejectReason::LabelNameTooLong,
                message: format!(
                    "label name {:?} is {} bytes; the limit is {} (series {})",
                    shorten(label.name),
                    label.name.len(),
                    limits.max_label_name_bytes,
                    describe(labels)
                ),
            });
        }
        if label.value.len() > limits.max_label_value_bytes {
            return Err(SeriesError {
                reason: RejectReason::LabelValueTooLong,
                message: format!(
                    "value of label {:?} is {} bytes; the limit is {} (series {})",
                    shorten(label.name),
                    label.value.len(),
                    limits.max_label_value_bytes,
                    describe(labels)
                ),
            });
        }
    }
    Ok(())
}

/// The series in Prometheus notation, with long names and values cut short.
pub fn describe(labels: &Labels) -> String {
    let mut out = String::new();
    if let Some(name) = labels.metric_name() {
        out.push_str(&shorten(name));
    }
    out.push('{');
    let mut first = true;
    for l in labels.iter() {
        if l.name == didban_store::model::METRIC_NAME_LABEL {
            continue;
        }
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(&shorten(l.name));
        out.push('=');
        out.push_str(&format!("{:?}", shorten(l.value)));
    }
    out.push('}');
    out
}

/// `s` cut to [`MAX_ECHO`] characters, with `…` when cut.
pub fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_ECHO {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_ECHO).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn limits_name_the_series_and_the_rule() {
        let limits = SeriesLimits {
            max_labels_per_series: 3,
            max_label_name_bytes: 8,
            max_label_value_bytes: 10,
            ..SeriesLimits::default()
        };
        let ok = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        assert!(check_series(&ok, &limits).is_ok());
        let long = Labels::from_pairs([("__name__", "up"), ("job", "x".repeat(500).as_str())]);
        let err = check_series(&long, &limits).unwrap_err();
        assert_eq!(err.reason, RejectReason::LabelValueTooLong);
        assert!(
            err.message.starts_with("value of label \"job\" is 500 bytes"),
            "{}",
            err.message
        );
        assert!(err.message.len() < 300);
        let bad = Labels::from_pairs([("__name__", "up"), ("a-b", "1")]);
        let err = check_series(&bad, &limits).unwrap_err();
        assert_eq!(err.reason, RejectReason::InvalidLabels);
        assert!(err.message.contains("\"a-b\""), "{}", err.message);
        let many = Labels::from_pairs([("__name__", "up"), ("a", "1"), ("b", "1"), ("c", "1")]);
        assert_eq!(
            check_series(&many, &limits).unwrap_err().reason,
            RejectReason::TooManyLabels
        );
        let longname = Labels::from_pairs([("__name__", "up"), ("abcdefghi", "1")]);
        assert_eq!(
            check_series(&longname, &limits).unwrap_err().reason,
            RejectReason::LabelNameTooLong
        );
    }
}
