//! OTLP log records → stored log records.

pub mod map;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

use super::attributes::FutureLimit;
use super::error::IngestError;
use super::pipeline::{Ingestor, OtlpOutcome, Protocol};
use crate::ingest_log::message::Batch;
use didban_base::now_nanos;
use map::map_logs;

impl Ingestor {
    /// Maps and stores log records; `rejected_points` counts refused records.
    pub async fn export_logs(
        &self,
        request: ExportLogsServiceRequest,
        protocol: Protocol,
    ) -> Result<OtlpOutcome, IngestError> {
        let now = now_nanos();
        let min = oldest_kept(now, self.state.stores.logs.options().retention_days);
        let limit = FutureLimit::new(now, self.state.config.limits.max_future);
        let mapped = tokio::task::spawn_blocking(move || map_logs(&request, limit, min))
            .await
            .map_err(|e| IngestError::Unavailable(format!("mapping task failed: {e}")))?;
        let metrics = &self.state.metrics;
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
        let stored = match &self.state.ingest_log {
            Some(log) => {
                let n = mapped.records.len();
                log.publish(Batch::Logs(mapped.records)).await?;
                n
            }
            None => self.state.stores.logs.append(mapped.records).await?,
        };
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
