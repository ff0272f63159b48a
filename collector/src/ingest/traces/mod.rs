//! OTLP spans → stored spans, and the metrics derived from them.
//!
//! - [`map`]: spans with their resource and scope, ids checked;
//! - [`span_metrics`]: RED metrics (calls, errors, duration) per service and operation;
//! - [`faas`]: serverless invocations, cold starts and estimated cost;
//! - [`totals`]: their cumulative values, the duration layouts and exemplars;
//! - [`exponential`]: a span-duration native histogram.

pub mod exponential;
pub mod faas;
pub mod map;
pub mod span_metrics;
mod totals;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::attributes::FutureLimit;
use super::error::IngestError;
use super::pipeline::{Ingestor, OtlpOutcome, Protocol};
use crate::ingest_log::message::Batch;
use didban_base::{now_ms, now_nanos};
use map::map_traces;
use span_metrics::Recorded;

impl Ingestor {
    /// Maps and stores spans; `rejected_points` of the outcome counts refused spans.
    pub async fn export_traces(
        &self,
        request: ExportTraceServiceRequest,
        protocol: Protocol,
    ) -> Result<OtlpOutcome, IngestError> {
        let limit = FutureLimit::new(now_nanos(), self.state.config.limits.max_future);
        let mapped = tokio::task::spawn_blocking(move || map_traces(&request, limit))
            .await
            .map_err(|e| IngestError::Unavailable(format!("mapping task failed: {e}")))?;
        let metrics = &self.state.metrics;
        let label = [("protocol", protocol.as_str())];
        metrics.inc(
            "didban_spans_rejected_total",
            "Spans refused by the OTLP mapping (bad ids or timestamps).",
            &label,
            mapped.rejected as f64,
        );
        // Spans are counted in the span metrics only once stored: a batch the trace store
        // refuses (503) is counted when the client's retry is stored, not twice.
        let span_metrics = match &self.state.span_metrics {
            Some(m) if !mapped.spans.is_empty() => Some((m, m.tally(&mapped.spans))),
            _ => None,
        };
        let stored = match &self.state.ingest_log {
            Some(log) => {
                let n = mapped.spans.len();
                log.publish(Batch::Spans(mapped.spans)).await?;
                n
            }
            None => self.state.stores.traces.append(mapped.spans).await?,
        };
        let (recorded, span_metrics) = match span_metrics {
            Some((m, tally)) => (m.record(tally, now_ms()), Some(m)),
            None => (Recorded::default(), None),
        };
        metrics.inc(
            "didban_spans_ingested_total",
            "Spans stored, by receiving protocol.",
            &label,
            stored as f64,
        );
        // The spans are stored: failing the request now would make the client store (and
        // count) them twice. Span metrics are cumulative, so samples the metric store
        // refuses are written again, with the counts they missed, by the next batch; their
        // exemplars are best effort and go only with stored samples.
        if let (false, Some(m)) = (recorded.samples.is_empty(), span_metrics) {
            match self.store_series(recorded.samples.clone(), &mut []).await {
                Ok(_) => {
                    self.append_exemplars(recorded.exemplars, protocol).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "span metrics could not be stored; retried with the next batch");
                    m.retry_later(&recorded.samples);
                }
            }
        }
        Ok(OtlpOutcome {
            rejected_points: i64::try_from(mapped.rejected).unwrap_or(i64::MAX),
            error_message: mapped.first_error.unwrap_or_default(),
        })
    }
}
