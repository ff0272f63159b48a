//! What every receiver shares: the [`Ingestor`] (one per receiver) that signal modules add
//! their `export_*` methods to, appending samples, turning a store's report into a reply,
//! and counting it all in the self-metrics.

use std::sync::Arc;

use didban_store::{AppendReport, RejectReason, SeriesExemplar, SeriesHint, SeriesSamples};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

use super::error::IngestError;
use super::metrics::delta::DeltaTracker;
use super::metrics::map::SharedLabels;
use super::remote_write::labels::WireLabelCache;
use crate::ingest_log::message::Batch;
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

impl OtlpOutcome {
    /// The `partial_success` of a trace export reply; `None` when everything was stored.
    pub fn traces_partial(&self) -> Option<ExportTracePartialSuccess> {
        if self.rejected_points > 0 || !self.error_message.is_empty() {
            Some(ExportTracePartialSuccess {
                rejected_spans: self.rejected_points,
                error_message: self.error_message.clone(),
            })
        } else {
            None
        }
    }

    /// The `partial_success` of a logs export reply; `None` when everything was stored.
    pub fn logs_partial(&self) -> Option<ExportLogsPartialSuccess> {
        if self.rejected_points > 0 || !self.error_message.is_empty() {
            Some(ExportLogsPartialSuccess {
                rejected_log_records: self.rejected_points,
                error_message: self.error_message.clone(),
            })
        } else {
            None
        }
    }
}

/// The receivers' shared core; one per receiver (they share the server's [`AppState`]).
pub struct Ingestor {
    /// The server state (stores, limits, self-metrics).
    pub state: AppState,
    pub(crate) delta: Arc<DeltaTracker>,
    /// Series labels built by earlier requests of this receiver.
    pub(crate) shared: Arc<SharedLabels>,
    /// Remote write 1.0 series labels built by earlier requests of this receiver.
    pub(crate) remote_write_labels: WireLabelCache,
}

impl Ingestor {
    /// The ingestor of the server that `state` belongs to; receivers built from the same
    /// state share delta → cumulative totals.
    pub fn new(state: AppState) -> Arc<Ingestor> {
        let delta = state.delta.clone();
        let remote_write_labels = WireLabelCache::new(state.config.limits.series.max_series);
        Arc::new(Ingestor {
            state,
            delta,
            shared: Arc::new(SharedLabels::default()),
            remote_write_labels,
        })
    }

    /// The most bytes a request body may have, raw or decompressed.
    pub fn body_limit(&self) -> usize {
        self.state.config.limits.max_body_bytes
    }

    /// Appends series, counting stored and refused samples.
    pub async fn append(
        &self,
        series: Vec<SeriesSamples>,
        protocol: Protocol,
    ) -> Result<AppendReport, IngestError> {
        self.append_hinted(series, &mut [], protocol).await
    }

    /// [`Ingestor::append`] with the series' hints (empty, or one per series; see
    /// [`didban_store::Db::append_hinted`]), set to where each series is now. Through the
    /// ingest log the hints are left as they are: the consuming ingester's head is elsewhere.
    pub async fn append_hinted(
        &self,
        series: Vec<SeriesSamples>,
        hints: &mut [SeriesHint],
        protocol: Protocol,
    ) -> Result<AppendReport, IngestError> {
        if series.is_empty() {
            return Ok(AppendReport::default());
        }
        let report = self.store_series(series, hints).await?;
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

    /// Stores series without counting them: into the ingest log when it is on (accepted
    /// once the stream holds them; refusals that need the head — out of order, too old —
    /// happen at the consuming ingester, which counts them), else into the metric store.
    pub(crate) async fn store_series(
        &self,
        series: Vec<SeriesSamples>,
        hints: &mut [SeriesHint],
    ) -> Result<AppendReport, IngestError> {
        let Some(log) = &self.state.ingest_log else {
            return Ok(self.state.stores.metrics.append_hinted(series, hints).await?);
        };
        let mut accepted = 0u64;
        for s in &series {
            accepted += (s.samples.len() + s.histograms.len()) as u64;
        }
        log.publish(Batch::Metrics(series)).await?;
        Ok(AppendReport {
            accepted,
            ..AppendReport::default()
        })
    }

    /// Appends exemplars (after their series' samples) and returns how many were stored
    /// durably. Refusals (out of order, label set too long, …) and a failing exemplar log
    /// are counted and logged, never the request's failure: its samples are stored
    /// already, and Prometheus treats exemplars the same way (its remote_write handler
    /// logs exemplar errors and answers for the samples). With the ingest log they are
    /// published with the samples' partitions (by series) and counted as written once
    /// JetStream has them; the consuming ingester stores them, and counts its refusals.
    pub async fn append_exemplars(&self, batch: Vec<SeriesExemplar>, protocol: Protocol) -> u64 {
        if batch.is_empty() {
            return 0;
        }
        let n = batch.len() as u64;
        if let Some(log) = &self.state.ingest_log {
            return match log.publish(Batch::Exemplars(batch)).await {
                Ok(()) => {
                    self.count_exemplars(protocol, n);
                    n
                }
                Err(e) => {
                    tracing::warn!(error = %e, exemplars = n, "exemplars not published to the ingest log");
                    self.count_exemplars_rejected(protocol, "storage_error", n);
                    0
                }
            };
        }
        match self.state.stores.exemplars.append(batch).await {
            Ok(report) => {
                self.count_exemplars(protocol, report.accepted);
                for (reason, count) in &report.refused {
                    self.count_exemplars_rejected(protocol, reason.as_str(), *count);
                }
                if report.refused_total() > 0 {
                    if let Some(e) = &report.first_error {
                        tracing::debug!(error = %e, refused = report.refused_total(), "exemplars refused");
                    }
                }
                report.accepted
            }
            Err(e) => {
                tracing::warn!(error = %e, exemplars = n, "exemplars not stored");
                self.count_exemplars_rejected(protocol, "storage_error", n);
                0
            }
        }
    }

    fn count_exemplars(&self, protocol: Protocol, n: u64) {
        self.state.metrics.inc(
            "didban_exemplars_ingested_total",
            "Exemplars stored, by receiving protocol.",
            &[("protocol", protocol.as_str())],
            n as f64,
        );
    }

    /// Counts exemplars refused under `reason` (before or by storage).
    pub fn count_exemplars_rejected(&self, protocol: Protocol, reason: &str, n: u64) {
        self.state.metrics.inc(
            "didban_exemplars_rejected_total",
            "Exemplars refused, by protocol and reason.",
            &[("protocol", protocol.as_str()), ("reason", reason)],
            n as f64,
        );
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
