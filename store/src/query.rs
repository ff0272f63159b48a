//! The read interface every query engine (PromQL, the series/labels APIs, alerting) uses,
//! so they work the same over the live database and over in-memory test data.

use crate::model::{LabelMatcher, Labels, SeriesSamples};

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("storage read failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt block {block}: {reason}")]
    Corrupt { block: String, reason: String },
    #[error("query needs more than {limit} samples")]
    TooManySamples { limit: usize },
}

/// Something series can be selected from.
pub trait Queryable: Send + Sync {
    /// Every series that satisfies all `matchers` with its samples in `[start_ms, end_ms]`
    /// (both inclusive), samples in timestamp order, no duplicates. Series without samples in
    /// the range are left out.
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError>;

    /// Label sets of the series that satisfy `matchers` and have data in the range, sorted.
    fn series(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, ReadError> {
        let mut out: Vec<Labels> = self
            .select(matchers, start_ms, end_ms)?
            .into_iter()
            .map(|s| s.labels)
            .collect();
        out.sort();
        Ok(out)
    }

    /// Sorted, distinct label names of those series.
    fn label_names(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, ReadError> {
        let mut names: Vec<String> = Vec::new();
        for labels in self.series(matchers, start_ms, end_ms)? {
            for l in labels.iter() {
                names.push(l.name.clone());
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Sorted, distinct values of label `name` among those series.
    fn label_values(
        &self,
        name: &str,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, ReadError> {
        let mut values: Vec<String> = Vec::new();
        for labels in self.series(matchers, start_ms, end_ms)? {
            if let Some(v) = labels.get(name) {
                values.push(v.to_string());
            }
        }
        values.sort();
        values.dedup();
        Ok(values)
    }
}
