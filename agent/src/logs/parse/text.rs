//! Plain-text records: the body is the text; severity, timestamp and trace context are read
//! from it ([`super::severity`], [`super::timestamp`], [`super::trace`]).

use super::fields::Parsed;
use super::severity;
use super::timestamp;
use super::trace;

/// The fields of a plain-text record; `custom` is the configured strftime pattern.
pub fn parse<'a>(text: &'a str, custom: &str, now_ns: u64) -> Parsed<'a> {
    let mut parsed = Parsed::default();
    if let Some((number, name)) = severity::detect(text) {
        parsed.severity_number = number;
        parsed.severity_text = name.into();
    }
    parsed.time_ns = timestamp::find(text, custom, now_ns);
    let (trace_id, span_id) = trace::find(text);
    parsed.trace_id = trace_id;
    parsed.span_id = span_id;
    parsed
}
