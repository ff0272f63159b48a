//! What every request handler shares: the stores, the query engine, limits, metadata,
//! span-derived metrics and self-metrics. Built once by the server and passed to routers as
//! axum state.

use std::sync::Arc;

use didban_store::promql::{Engine, EngineOptions, LimiterStats, Observer, QueryLimiter};
use didban_store::Queryable;

use crate::config::Config;
use crate::ingest::metrics::delta::DeltaTracker;
use crate::ingest::traces::span_metrics::{DurationLayout, SpanMetrics};
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
    /// PromQL over `reader`.
    pub engine: Arc<Engine>,
    /// What queries read: `stores.metrics`, or on a querier the published blocks plus
    /// the live ingesters' heads (`cluster::reader`).
    pub reader: Arc<dyn Queryable>,
    /// On a querier (or alerting instance): the live ingesters, asked for their
    /// unpublished spans and log records too (`cluster::trace_read`, `cluster::log_read`).
    pub cluster: Option<Arc<crate::cluster::reader::ClusterReader>>,
    /// Admission of PromQL evaluations of the query API (`query.max_concurrent`,
    /// `query.max_queued`).
    pub query_limiter: Arc<QueryLimiter>,
    /// Metric type/help/unit for `/api/v1/metadata`.
    pub metadata: Arc<MetadataStore>,
    /// Running totals that turn OTLP delta points into cumulative series; shared by the
    /// OTLP/HTTP and OTLP/gRPC receivers.
    pub delta: Arc<DeltaTracker>,
    /// Span-derived RED and FaaS metrics (`None` when `traces.span_metrics` is off).
    pub span_metrics: Option<Arc<SpanMetrics>>,
    /// Where the receivers send accepted batches when `[ingest_log]` is on (instead of
    /// appending to `stores` themselves); `None` otherwise.
    pub ingest_log: Option<Arc<crate::ingest_log::IngestLog>>,
}

impl AppState {
    /// What the web UI reads: these stores and this engine and limiter, the configured
    /// dashboards directory, and the alert engine when one runs.
    pub fn ui_context(&self, alerting: Option<Arc<didban_alerting::Alerting>>) -> didban_ui::UiContext {
        didban_ui::UiContext {
            db: self.stores.metrics.clone(),
            reader: self.reader.clone(),
            engine: self.engine.clone(),
            query_limiter: self.query_limiter.clone(),
            query_timeout: self.config.query.timeout,
            logs: self.stores.logs.clone(),
            traces: self.stores.traces.clone(),
            trace_reads: Arc::new(crate::cluster::trace_read::ClusterTraces::new(
                self.stores.traces.clone(),
                self.cluster.clone(),
            )),
            log_reads: Arc::new(crate::cluster::log_read::ClusterLogs::new(
                self.stores.logs.clone(),
                self.cluster.clone(),
            )),
            figures: Arc::new(crate::cluster::figures::ClusterFigures::new(
                self.stores.local_figures(),
                self.cluster.clone(),
            )),
            exemplars: Arc::new(crate::cluster::exemplars::ClusterExemplars::new(
                self.stores.exemplars.clone(),
                self.cluster.clone(),
            )),
            alerting,
            data_dir: self.config.data_dir.clone(),
            dashboard_dirs: self.config.ui.dashboards_dir.iter().cloned().collect(),
        }
    }

    /// State over opened stores, with the query engine configured from `config`.
    pub fn new(stores: Stores, config: Config) -> AppState {
        let engine = Engine::new(EngineOptions {
            lookback_delta: config.query.lookback_delta,
            timeout: config.query.timeout,
            max_samples: config.query.max_samples,
            max_samples_total: config.query.max_samples_total,
            max_depth: config.query.max_depth,
            compat: config.query.promql_compat,
            enable_experimental_functions: config.query.enable_experimental_functions,
            max_source_resolution: None,
            workers_per_query: config.query.workers_per_query,
        });
        let metrics = Arc::new(SelfMetrics::new());
        let query_limiter = QueryLimiter::with_observer(
            config.query.max_concurrent,
            config.query.max_queued,
            Some(limiter_metrics(metrics.clone())),
        );
        let metadata = MetadataStore::open(&config.data_dir);
        let span_metrics = if config.traces.span_metrics {
            Some(Arc::new(SpanMetrics::new(
                DurationLayout::of(&config.traces),
                config.faas.clone(),
            )))
        } else {
            None
        };
        let delta = DeltaTracker::new(config.limits.series.max_series);
        let reader: Arc<dyn Queryable> = stores.metrics.clone();
        AppState {
            reader,
            cluster: None,
            stores,
            config: Arc::new(config),
            metrics,
            engine: Arc::new(engine),
            query_limiter: Arc::new(query_limiter),
            metadata: Arc::new(metadata),
            delta: Arc::new(delta),
            span_metrics,
            ingest_log: None,
        }
    }
}

/// Keeps the query limiter's self-metrics current: `didban_queries_running`,
/// `didban_queries_queued` and `didban_queries_rejected_total`.
fn limiter_metrics(metrics: Arc<SelfMetrics>) -> Observer {
    Box::new(move |s: LimiterStats| {
        metrics.set(
            "didban_queries_running",
            "PromQL evaluations of the query API running now.",
            &[],
            s.running as f64,
        );
        metrics.set(
            "didban_queries_queued",
            "PromQL queries waiting for an evaluation slot.",
            &[],
            s.queued as f64,
        );
        metrics.set_counter(
            "didban_queries_rejected_total",
            "PromQL queries refused with 503 because the queue was full (query.max_queued).",
            &[],
            s.rejected as f64,
        );
    })
}
