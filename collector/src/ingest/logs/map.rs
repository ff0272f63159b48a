//! OTLP logs → the store's log records.
//!
//! Each record is checked on its own; a refused record is counted in
//! `rejected_log_records` of the partial success and named in its message:
//!
//! - `trace_id` empty or 16 bytes, `span_id` empty or 8 bytes (all zeros reads as empty);
//! - the timestamp is `time_unix_nano`, else `observed_time_unix_nano`, else the server's
//!   clock; one more than a day ahead of the server's clock is refused;
//! - the body: strings as they are, other values as JSON text, cut at
//!   [`MAX_BODY_BYTES`]; attributes under the limits of [`super::otlp_common`];
//! - a record older than log retention keeps (`logs.retention_days`) is refused;
//! - a missing severity text is derived from the number (`17` → `ERROR`).

use didban_store::logs::{severity_name, LogRecord};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::logs::v1::LogRecord as OtlpLogRecord;

use crate::ingest::attributes::FutureLimit;
use crate::ingest::attributes::{attributes_map, cut, id_hex, nanos_i64, resource_map, service_name};
use crate::ingest::metrics::names::json_value;

/// Longest body kept; longer ones are cut and end with `…`.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The records of a request and what was refused.
#[derive(Debug, Default)]
pub struct MappedLogs {
    /// Records to store.
    pub records: Vec<LogRecord>,
    /// Records refused.
    pub rejected: u64,
    /// Why the first refused record was refused.
    pub first_error: Option<String>,
}

/// Maps a request; `limit` holds the server's clock and refuses records too far ahead of
/// it; records older than `min_nano` (the start of the oldest day log retention keeps) are
/// refused, as retention would delete them at once.
pub fn map_logs(request: &ExportLogsServiceRequest, limit: FutureLimit, min_nano: i64) -> MappedLogs {
    let mut out = MappedLogs::default();
    for rl in &request.resource_logs {
        let service = service_name(rl.resource.as_ref());
        let resource = resource_map(rl.resource.as_ref());
        for sl in &rl.scope_logs {
            let scope_name = sl.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            for (i, r) in sl.log_records.iter().enumerate() {
                match map_record(r, limit, min_nano) {
                    Ok(mut rec) => {
                        rec.service = service.clone();
                        rec.resource = resource.clone();
                        rec.scope_name = scope_name.clone();
                        out.records.push(rec);
                    }
                    Err(e) => {
                        out.rejected += 1;
                        if out.first_error.is_none() {
                            out.first_error = Some(format!("log record {i} of service {service:?}: {e}"));
                        }
                    }
                }
            }
        }
    }
    out
}

fn optional_id(bytes: &[u8], len: usize, what: &str) -> Result<String, String> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
        return Ok(String::new());
    }
    id_hex(bytes, len, what)
}

fn map_record(r: &OtlpLogRecord, limit: FutureLimit, min_nano: i64) -> Result<LogRecord, String> {
    let trace_id = optional_id(&r.trace_id, 16, "trace_id")?;
    let span_id = optional_id(&r.span_id, 8, "span_id")?;
    let observed = if r.observed_time_unix_nano > 0 {
        nanos_i64(r.observed_time_unix_nano)
    } else {
        limit.now_nano
    };
    let timestamp = if r.time_unix_nano > 0 {
        nanos_i64(r.time_unix_nano)
    } else {
        observed
    };
    limit.check("timestamp", timestamp)?;
    if timestamp < min_nano {
        return Err(format!(
            "timestamp {timestamp} is older than the log retention keeps"
        ));
    }
    let body = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        None => String::new(),
        Some(V::StringValue(s)) => cut(s, MAX_BODY_BYTES),
        Some(other) => cut(&json_value(Some(other)).to_string(), MAX_BODY_BYTES),
    };
    let severity_text = if r.severity_text.is_empty() {
        severity_name(r.severity_number).to_string()
    } else {
        cut(&r.severity_text, 64)
    };
    Ok(LogRecord {
        timestamp_unix_nano: timestamp,
        observed_unix_nano: observed,
        severity_number: r.severity_number,
        severity_text,
        service: String::new(),
        body,
        attributes: attributes_map(&r.attributes),
        resource: serde_json::Map::new(),
        trace_id,
        span_id,
        scope_name: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

    fn record(trace: Vec<u8>, t: u64) -> OtlpLogRecord {
        OtlpLogRecord {
            time_unix_nano: t,
            severity_number: 17,
            body: Some(AnyValue {
                value: Some(V::StringValue("boom".into())),
            }),
            trace_id: trace,
            ..OtlpLogRecord::default()
        }
    }

    #[test]
    fn records_are_mapped_and_bad_ids_refused() {
        let now = 1_700_000_000_000_000_000i64;
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        record(vec![7; 16], now as u64),
                        record(vec![7; 3], now as u64),
                        record(Vec::new(), 0),
                        record(Vec::new(), u64::MAX),
                        record(Vec::new(), 1),
                    ],
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        let limit = FutureLimit::new(now, std::time::Duration::from_secs(600));
        let mapped = map_logs(&request, limit, now - 86_400_000_000_000);
        assert_eq!(mapped.records.len(), 2);
        assert_eq!(mapped.rejected, 3);
        assert!(mapped.first_error.unwrap().contains("trace_id"));
        let r = &mapped.records[0];
        assert_eq!((r.severity_text.as_str(), r.body.as_str()), ("ERROR", "boom"));
        assert_eq!(r.trace_id, "07".repeat(16));
        assert_eq!(r.service, "unknown_service");
        assert_eq!(mapped.records[1].timestamp_unix_nano, now);
    }
}
