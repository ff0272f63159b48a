//! OTLP metrics → Prometheus series: the mapping rules and what they need.
//!
//! - [`map`]: the mapping of a decoded request (gauges, sums, histograms, summaries), with
//!   [`names`] (metric and label names, unit suffixes), [`buckets`] (bucket math),
//!   [`histograms`] (classic histogram-shaped points), [`native`] (exponential histograms
//!   as native histograms), [`delta`] (delta → cumulative);
//! - [`wire`]: the borrowing protobuf decoder fused with the mapping (the hot path);
//! - [`exemplars`]: exemplars of sum and histogram points, on the series they belong to;
//! - [`label_cache`]: series labels kept across requests;
//! - [`series_set`]: the series of the request being mapped;
//! - [`validate`]: per-series label rules and limits (shared with remote_write).

pub mod buckets;
pub mod delta;
mod exemplars;
mod histograms;
mod label_cache;
pub mod map;
pub mod names;
pub mod native;
pub mod nhcb;
mod series_set;
#[cfg(test)]
mod tests;
pub mod validate;
pub mod wire;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

use super::error::IngestError;
use super::pipeline::{refused_samples, Ingestor, OtlpOutcome, Protocol};
use map::{map_request, MapOptions, Mapped};
use wire::decode_and_map;

impl Ingestor {
    /// Maps and appends an OTLP export request. The mapping runs on the blocking pool: a
    /// large request is CPU work that must not stall the async workers.
    pub async fn export_otlp(
        &self,
        request: ExportMetricsServiceRequest,
        protocol: Protocol,
    ) -> Result<OtlpOutcome, IngestError> {
        let limits = self.state.config.limits.series.clone();
        let histograms_to_nhcb = self.state.config.otlp.convert_histograms_to_nhcb;
        let delta = self.delta.clone();
        let mapped = tokio::task::spawn_blocking(move || {
            let options = MapOptions {
                limits: &limits,
                delta: &delta,
                shared: None,
                histograms_to_nhcb,
            };
            map_request(&request, &options)
        })
        .await
        .map_err(|e| IngestError::Unavailable(format!("mapping task failed: {e}")))?;
        self.store_mapped(mapped, protocol).await
    }

    /// Decodes (with the borrowing decoder of [`wire`]), maps and appends a
    /// protobuf `ExportMetricsServiceRequest`. `body` runs first on the blocking pool and
    /// gives the plain protobuf bytes (e.g. by decompressing); malformed protobuf is a
    /// [`IngestError::BadRequest`] starting with `invalid protobuf:`.
    pub async fn export_otlp_protobuf<F>(
        &self,
        body: F,
        protocol: Protocol,
    ) -> Result<OtlpOutcome, IngestError>
    where
        F: FnOnce() -> Result<Vec<u8>, IngestError> + Send + 'static,
    {
        let limits = self.state.config.limits.series.clone();
        let histograms_to_nhcb = self.state.config.otlp.convert_histograms_to_nhcb;
        let delta = self.delta.clone();
        let shared = self.shared.clone();
        let mapped = tokio::task::spawn_blocking(move || {
            let plain = body()?;
            let options = MapOptions {
                limits: &limits,
                delta: &delta,
                shared: Some(&shared),
                histograms_to_nhcb,
            };
            decode_and_map(&plain, &options)
                .map_err(|e| IngestError::BadRequest(format!("invalid protobuf: {e}")))
        })
        .await
        .map_err(|e| IngestError::Unavailable(format!("mapping task failed: {e}")))??;
        self.store_mapped(mapped, protocol).await
    }

    /// Records metadata and refusals of a mapped request and appends its series.
    async fn store_mapped(&self, mut mapped: Mapped, protocol: Protocol) -> Result<OtlpOutcome, IngestError> {
        // A request of many resources names each metric once per resource: record it once.
        let mut metadata = std::mem::take(&mut mapped.metadata);
        metadata.sort_by(|a, b| a.0.cmp(&b.0));
        metadata.dedup();
        for (name, meta) in metadata {
            self.state.metadata.record(&name, meta);
        }
        for (reason, n) in &mapped.rejected_by_reason {
            self.count_rejected(protocol, reason, *n);
        }
        let exemplars = std::mem::take(&mut mapped.exemplars);
        let report = self.append(mapped.series, protocol).await?;
        self.append_exemplars(exemplars, protocol).await;
        let store_rejected = refused_samples(&report);
        let rejected = (mapped.rejected_points + store_rejected).min(mapped.points);
        let mut message = mapped.first_error.unwrap_or_default();
        if message.is_empty() && store_rejected > 0 {
            message = report.first_error.unwrap_or_default();
        }
        Ok(OtlpOutcome {
            rejected_points: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message: if rejected > 0 { message } else { String::new() },
        })
    }
}
