//! The one error type of the PromQL evaluator, shaped after the error classes of Prometheus'
//! HTTP API so the API layer can map it without guessing.

use crate::query::ReadError;

/// Why a PromQL query did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum PromqlError {
    /// The expression text is not valid PromQL.
    #[error("parse error{}: {message}", position.map(|p| format!(" at byte {p}")).unwrap_or_default())]
    Parse {
        /// What the parser refused.
        message: String,
        /// Byte offset into the expression, when the parser reported one.
        position: Option<usize>,
    },
    /// The request parameters (times, step, matchers) are invalid.
    #[error("bad data: {0}")]
    BadData(String),
    /// The expression is valid but cannot be evaluated over this data (e.g. many-to-many
    /// matching, duplicate label sets, an invalid function argument).
    #[error("{0}")]
    Execution(String),
    /// The query nests deeper than the engine allows (checked on the text, before parsing).
    #[error(
        "query nesting depth {found} exceeds the limit of {limit} (query.max_depth): simplify the expression"
    )]
    TooDeep {
        /// The configured limit.
        limit: usize,
        /// The depth found (an upper bound of the expression tree's depth).
        found: usize,
    },
    /// The caller gave up (the HTTP client went away) and evaluation stopped.
    #[error("query was canceled")]
    Cancelled,
    /// The query ran longer than the engine's timeout.
    #[error("query timed out in expression evaluation")]
    Timeout,
    /// The query would hold more samples in memory than the engine's limit (the limit).
    #[error("query processing would load too many samples into memory in query execution (limit {0})")]
    TooManySamples(usize),
    /// The queries running together would hold more samples than the engine's shared
    /// budget (the limit); retrying once they finish may succeed.
    #[error("the queries running now, this one included, would hold more than {0} samples in memory (query.max_samples_total); retry shortly or narrow the query")]
    TooManySamplesInFlight(usize),
    /// The storage could not be read.
    #[error(transparent)]
    Read(ReadError),
}

impl From<ReadError> for PromqlError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::TooManySamples { limit } => PromqlError::TooManySamples(limit),
            other => PromqlError::Read(other),
        }
    }
}

impl PromqlError {
    /// The `errorType` Prometheus' HTTP API reports for this error: `bad_data`, `execution`,
    /// `timeout`, `canceled`, `unavailable` (503, worth retrying) or `internal`.
    pub fn error_type(&self) -> &'static str {
        match self {
            PromqlError::Parse { .. } | PromqlError::BadData(_) | PromqlError::TooDeep { .. } => "bad_data",
            PromqlError::Cancelled => "canceled",
            PromqlError::Execution(_) | PromqlError::TooManySamples(_) => "execution",
            PromqlError::Timeout => "timeout",
            PromqlError::TooManySamplesInFlight(_) | PromqlError::Read(ReadError::Unavailable(_)) => {
                "unavailable"
            }
            PromqlError::Read(_) => "internal",
        }
    }

    /// Shorthand for an [`PromqlError::Execution`] error.
    pub(crate) fn exec(msg: impl Into<String>) -> Self {
        PromqlError::Execution(msg.into())
    }
}
