//! What every receiver shares: mapping OTLP, appending to the database, turning the
//! store's report into a reply, and counting it all in the self-metrics.

use std::sync::Arc;

use didban_store::{AppendReport, RejectReason, SeriesSamples};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

use super::error::IngestError;
use super::metrics::delta::DeltaTracker;
use super::metrics::map::{map_request, MapOptions, Mapped, SharedLabels};
use super::metrics::wire::decode_and_map;
use crate::state::AppState;

/// The receiving protocols, as the `protocol` label of the self-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over HTTP (`/v1/metrics`).
    OtlpHttp,
    /// OTLP over gRPC (`MetricsService/Export`).
    OtlpGrpc,
    /// Prometheus remote_write 1.0.
    RemoteWrite,
}

impl Protocol {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OtlpHttp => "otlp_http",
            Protocol::OtlpGrpc => "otlp_grpc",
            Protocol::RemoteWrite => "remote_write",
        }
    }
}

/// What an OTLP export achieved, for the `partial_success` field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OtlpOutcome {
    /// Data points refused (0 when everything was stored).
    pub rejected_points: i64,
    /// Why, naming the first refused series; empty when nothing was refused.
    pub error_message: String,
}

/// The receivers' shared core; one per server.
pub struct Ingestor {
    /// The server state (database, limits, self-metrics).
    pub state: AppState,
    delta: Arc<DeltaTracker>,
    /// Series labels built by earlier requests of this receiver.
    shared: Arc<SharedLabels>,
}

impl Ingestor {
    /// The ingestor of the server that `state` belongs to; receivers built from the same
    /// state share delta → cumulative totals.
    pub fn new(state: AppState) -> Arc<Ingestor> {
        let delta = state.delta.clone();
        Arc::new(Ingestor {
            state,
            delta,
            shared: Arc::new(SharedLabels::default()),
        })
    }

    /// The most bytes a request body may have, raw or decompressed.
    pub fn body_limit(&self) -> usize {
        self.state.config.limits.max_body_bytes
    }

    /// Maps and appends an OTLP export request. The mapping runs on the blocking pool: a
    /// large request is CPU work that must not stall the async workers.
    pub async fn export_otlp(
        &self,
        request: ExportMetricsServiceRequest,
        protocol: Protocol,
    ) -> Result<OtlpOutcome, IngestError> {
        let limits = self.state.config.limits.series.clone();
        let delta = self.delta.clone();
        let mapped = tokio::task::spawn_blocking(move || {
            let options = MapOptions {
                limits: &limits,
                delta: &delta,
                shared: None,
            };
            map_request(&request, &options)
        })
        .await
        .map_err(|e| IngestError::Unavailable(format!("mapping task failed: {e}")))?;
        self.store_mapped(mapped, protocol).await
    }

    /// Decodes (with the borrowing decoder of [`super::metrics::wire`]), maps and appends a
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
        let delta = self.delta.clone();
        let shared = self.shared.clone();
        let mapped = tokio::task::spawn_blocking(move || {
            let plain = body()?;
            let options = MapOptions {
                limits: &limits,
                delta: &delta,
                shared: Some(&shared),
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
        let report = self.append(mapped.series, protocol).await?;
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

    /// Appends series, counting stored and refused samples.
    pub async fn append(
        &self,
        series: Vec<SeriesSamples>,
        protocol: Protocol,
    ) -> Result<AppendReport, IngestError> {
        if series.is_empty() {
            return Ok(AppendReport::default());
        }
        let report = self.state.db.append(series).await?;
        self.state.metrics.inc(
            "didban_samples_ingested_total",
            "Samples stored, by receiving protocol.",
            &[("protocol", protocol.as_str())],
            report.accepted as f64,
        );
        for (reason, n) in &report.rejected {
            self.count_rejected(protocol, reason.as_str(), *n);
        }
        Ok(report)
    }

    /// Counts refused samples (or, for OTLP mapping refusals, data points) under `reason`.
    pub fn count_rejected(&self, protocol: Protocol, reason: &str, n: u64) {
        self.state.metrics.inc(
            "didban_samples_rejected_total",
            "Samples (OTLP: data points refused before storage) refused, by protocol and reason.",
            &[("protocol", protocol.as_str()), ("reason", reason)],
            n as f64,
        );
    }

    /// Counts one finished request with its response code (HTTP status or gRPC code name).
    pub fn count_request(&self, protocol: Protocol, code: &str) {
        self.state.metrics.inc(
            "didban_ingest_requests_total",
            "Ingest requests, by protocol and response code.",
            &[("protocol", protocol.as_str()), ("code", code)],
            1.0,
        );
    }

    /// Counts request body bytes as received (before decompression).
    pub fn count_bytes(&self, protocol: Protocol, n: usize) {
        self.state.metrics.inc(
            "didban_ingest_request_bytes_total",
            "Bytes of ingest request bodies as received, before decompression.",
            &[("protocol", protocol.as_str())],
            n as f64,
        );
    }
}

/// Samples the store refused, not counting exact duplicates (a retried request resending
/// what is already stored is not an error).
pub fn refused_samples(report: &AppendReport) -> u64 {
    let mut n = 0;
    for (reason, count) in &report.rejected {
        if *reason != RejectReason::Duplicate {
            n += count;
        }
    }
    n
}
