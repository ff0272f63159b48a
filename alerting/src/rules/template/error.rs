//! Why a template did not parse or run ([`TemplateError`]).

/// Why a template did not parse or run; the message follows Go's wording where it can.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct TemplateError {
    /// Line inside the template text (1-based), for parse errors.
    pub line: Option<usize>,
    /// What went wrong.
    pub message: String,
}

impl TemplateError {
    /// A parse error at `line`.
    pub(super) fn at(line: usize, message: impl Into<String>) -> Self {
        TemplateError {
            line: Some(line),
            message: message.into(),
        }
    }

    /// An error while expanding (no line).
    pub(super) fn exec(message: impl Into<String>) -> Self {
        TemplateError {
            line: None,
            message: message.into(),
        }
    }
}
