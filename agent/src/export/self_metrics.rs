//! The exporter's own series, sent with the agent's other self-metrics: how much is buffered,
//! how often sending failed and why, and what was dropped and why. A counter is sent for
//! every reason that can happen from the first report on, so `increase()` sees the first one.

use crate::export::reason::Reason;
use crate::export::state::ExportSnapshot;
use crate::model::Sample;

/// Reasons an attempt can fail for (`didban_agent_export_failures_total{reason}`).
const FAILURE_REASONS: [Reason; 11] = [
    Reason::Unauthorized,
    Reason::Forbidden,
    Reason::NotFound,
    Reason::Timeout,
    Reason::Throttled,
    Reason::Unavailable,
    Reason::ServerError,
    Reason::TooLarge,
    Reason::Invalid,
    Reason::Undecodable,
    Reason::Other,
];

/// Reasons items can be dropped for (`didban_agent_export_dropped_total{reason}`).
const DROP_REASONS: [Reason; 5] = [
    Reason::Invalid,
    Reason::Rejected,
    Reason::TooLarge,
    Reason::BufferFull,
    Reason::Undecodable,
];

/// The exporter's series at `now_ms`.
pub fn samples(e: &ExportSnapshot, now_ms: i64) -> Vec<Sample> {
    let mut out = vec![
        Sample::gauge("didban_agent_buffer_bytes", &[], e.buffer_bytes as f64, now_ms),
        Sample::gauge(
            "didban_agent_buffer_records",
            &[],
            e.pending_records as f64,
            now_ms,
        ),
        Sample::counter(
            "didban_agent_buffer_dropped_records_total",
            &[],
            e.dropped_records as f64,
            now_ms,
        ),
        Sample::gauge(
            "didban_agent_export_buffered_bytes",
            &[],
            e.buffered_bytes as f64,
            now_ms,
        ),
        Sample::counter(
            "didban_agent_export_requests_total",
            &[],
            e.sent_requests as f64,
            now_ms,
        ),
        Sample::counter(
            "didban_agent_export_rejected_records_total",
            &[],
            e.rejected_records as f64,
            now_ms,
        ),
    ];
    for reason in FAILURE_REASONS {
        out.push(Sample::counter(
            "didban_agent_export_failures_total",
            &[("reason", reason.as_str())],
            e.failures.get(reason) as f64,
            now_ms,
        ));
    }
    for reason in DROP_REASONS {
        out.push(Sample::counter(
            "didban_agent_export_dropped_total",
            &[("reason", reason.as_str())],
            e.dropped_items.get(reason) as f64,
            now_ms,
        ));
    }
    out
}
