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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::export::reason::ReasonCounters;

    #[test]
    fn every_reason_is_reported_from_the_start() {
        let failures = ReasonCounters::default();
        failures.add(Reason::Unauthorized, 4);
        let dropped = ReasonCounters::default();
        dropped.add(Reason::BufferFull, 7);
        let snap = ExportSnapshot {
            pending_records: 3,
            buffer_bytes: 9000,
            buffered_bytes: 4000,
            dropped_records: 1,
            sent_requests: 2,
            failed_attempts: 4,
            rejected_records: 0,
            failures: failures.snapshot(),
            dropped_items: dropped.snapshot(),
        };
        let out = samples(&snap, 1000);
        let value = |name: &str, reason: Option<&str>| {
            out.iter()
                .find(|s| {
                    s.name == name
                        && s.labels
                            .iter()
                            .find(|(k, _)| k == "reason")
                            .map(|(_, v)| v.as_str())
                            == reason
                })
                .map(|s| s.value)
        };
        assert_eq!(value("didban_agent_export_buffered_bytes", None), Some(4000.0));
        assert_eq!(
            value("didban_agent_export_failures_total", Some("unauthorized")),
            Some(4.0)
        );
        assert_eq!(
            value("didban_agent_export_failures_total", Some("too_large")),
            Some(0.0)
        );
        assert_eq!(
            value("didban_agent_export_dropped_total", Some("buffer_full")),
            Some(7.0)
        );
        assert_eq!(
            value("didban_agent_export_dropped_total", Some("rejected")),
            Some(0.0)
        );
        let failures = out
            .iter()
            .filter(|s| s.name == "didban_agent_export_failures_total")
            .count();
        let drops = out
            .iter()
            .filter(|s| s.name == "didban_agent_export_dropped_total")
            .count();
        assert_eq!((failures, drops), (FAILURE_REASONS.len(), DROP_REASONS.len()));
    }
}
