//! Appending OTLP traces and logs: map on the blocking pool, store, count, and (for
//! spans) write the span-derived metrics to the metric database.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::error::IngestError;
use super::logs::map::map_logs;
use super::pipeline::{Ingestor, OtlpOutcome, Protocol};
use super::traces::map::map_traces;
use crate::signals::Signals;
use didban_base::now_ms;
use didban_base::now_nanos;

/// The receivers' core for traces and logs.
pub struct SignalIngestor {
    /// The metric ingestor (limits, self-metrics, metric database).
    pub ingestor: Arc<Ingestor>,
    /// The trace and log stores.
    pub signals: Arc<Signals>,
}

impl SignalIngestor {
    /// An ingestor over the server's stores.
    pub fn new(ingestor: Arc<Ingestor>, signals: Arc<Signals>) -> Arc<SignalIngestor> {
        Arc::new(SignalIngestor { ingestor, signals })
    }

    /// Maps and stores spans; `rejected_points` of the outcome counts refused spans.
    pub async fn export_traces(
        &self,
        request: ExportTraceServiceRequest,
        protocol: Protocol,
    ) -> Result<OtlpOutcome, IngestError> {
        let mapped = tokio::task::spawn_blocking(move || map_traces(&request, now_nanos()))
            .await
            .map_err(|e| IngestError::Unavailable(format!("mapping task failed: {e}")))?;
        let metrics = &self.ingestor.state.metrics;
        let label = [("protocol", protocol.as_str())];
        metrics.inc(
            "didban_spans_rejected_total",
            "Spans refused by the OTLP mapping (bad ids or timestamps).",
            &label,
            mapped.rejected as f64,
        );
        // Refuse an overloaded head before the spans are counted in the span metrics.
        self.signals.traces.check_capacity()?;
        let samples = match &self.signals.span_metrics {
            Some(m) if !mapped.spans.is_empty() => m.observe(&mapped.spans, now_ms()),
            _ => Vec::new(),
        };
        let stored = self.signals.traces.append(mapped.spans).await?;
        metrics.inc(
            "didban_spans_ingested_total",
            "Spans stored, by receiving protocol.",
            &label,
            stored as f64,
        );
        if !samples.is_empty() {
            if let Err(e) = self.ingestor.state.db.append(samples).await {
                tracing::warn!(error = %e, "span metrics could not be stored");
            }
        }
        Ok(OtlpOutcome {
            rejected_points: i64::try_from(mapped.rejected).unwrap_or(i64::MAX),
            error_message: mapped.first_error.unwrap_or_default(),
        })
    }

    /// Maps and stores log records; `rejected_points` counts refused records.
    pub async fn export_logs(
        &self,
        request: ExportLogsServiceRequest,
        protocol: Protocol,
    ) -> Result<OtlpOutcome, IngestError> {
        let now = now_nanos();
        let min = oldest_kept(now, self.signals.logs.options().retention_days);
        let mapped = tokio::task::spawn_blocking(move || map_logs(&request, now, min))
            .await
            .map_err(|e| IngestError::Unavailable(format!("mapping task failed: {e}")))?;
        let metrics = &self.ingestor.state.metrics;
        let label = [("protocol", protocol.as_str())];
        metrics.inc(
            "didban_log_records_rejected_total",
            "Log records refused by the OTLP mapping (bad ids or timestamps).",
            &label,
            mapped.rejected as f64,
        );
        let mut body_bytes = 0usize;
        for r in &mapped.records {
            body_bytes += r.body.len();
        }
        let stored = self.signals.logs.append(mapped.records).await?;
        metrics.inc(
            "didban_log_records_ingested_total",
            "Log records stored, by receiving protocol.",
            &label,
            stored as f64,
        );
        metrics.inc(
            "didban_log_body_bytes_ingested_total",
            "Bytes of log record bodies stored.",
            &label,
            body_bytes as f64,
        );
        Ok(OtlpOutcome {
            rejected_points: i64::try_from(mapped.rejected).unwrap_or(i64::MAX),
            error_message: mapped.first_error.unwrap_or_default(),
        })
    }
}

/// Start of the oldest day that log retention keeps (`i64::MIN` when it keeps everything).
pub fn oldest_kept(now_nano: i64, retention_days: u32) -> i64 {
    if retention_days == 0 {
        return i64::MIN;
    }
    let day: i64 = 86_400 * 1_000_000_000;
    let today = now_nano.div_euclid(day) * day;
    today.saturating_sub(i64::from(retention_days).saturating_mul(day))
}
