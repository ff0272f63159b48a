//! What every request handler shares: the stores, the query engine, limits, metadata,
//! span-derived metrics and self-metrics. Built once by the server and passed to routers as
//! axum state.

use std::sync::Arc;

use didban_store::promql::{Engine, EngineOptions};

use crate::config::Config;
use crate::ingest::metrics::delta::DeltaTracker;
use crate::ingest::traces::span_metrics::SpanMetrics;
use crate::metadata::MetadataStore;
use crate::selfmon::SelfMetrics;
use crate::stores::Stores;

/// Shared server state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Metrics, traces and logs.
    pub stores: Stores,
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Didban's own metrics (`/metrics`, self-scrape).
    pub metrics: Arc<SelfMetrics>,
    /// PromQL over `stores.metrics`.
    pub engine: Arc<Engine>,
    /// Metric type/help/unit for `/api/v1/metadata`.
    pub metadata: Arc<MetadataStore>,
    /// Running totals that turn OTLP delta points into cumulative series; shared by the
    /// OTLP/HTTP and OTLP/gRPC receivers.
    pub delta: Arc<DeltaTracker>,
    /// Span-derived RED and FaaS metrics (`None` when `traces.span_metrics` is off).
    pub span_metrics: Option<Arc<SpanMetrics>>,
}

impl AppState {
    /// State over opened stores, with the query engine configured from `config`.
    pub fn new(stores: Stores, config: Config) -> AppState {
        let engine = Engine::new(EngineOptions {
            lookback_delta: config.query.lookback_delta,
            timeout: config.query.timeout,
            max_samples: config.query.max_samples,
        });
        let metadata = MetadataStore::open(&config.data_dir);
        let span_metrics = if config.traces.span_metrics {
            Some(Arc::new(SpanMetrics::new(
                config.traces.duration_buckets.clone(),
                config.faas.clone(),
            )))
        } else {
            None
        };
        let delta = DeltaTracker::new(config.limits.series.max_series);
        AppState {
            stores,
            config: Arc::new(config),
            metrics: Arc::new(SelfMetrics::new()),
            engine: Arc::new(engine),
            metadata: Arc::new(metadata),
            delta: Arc::new(delta),
            span_metrics,
        }
    }
}
