//! What every request handler shares: the database, the query engine, limits, metadata and
//! self-metrics. Built once by the server and passed to routers as axum state.

use std::sync::Arc;

use didban_store::promql::{Engine, EngineOptions};
use didban_store::Db;

use crate::config::Config;
use crate::ingest::metrics::delta::DeltaTracker;
use crate::metadata::MetadataStore;
use crate::selfmon::SelfMetrics;

/// Shared server state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Arc<Db>,
    pub config: Arc<Config>,
    pub metrics: Arc<SelfMetrics>,
    pub engine: Arc<Engine>,
    pub metadata: Arc<MetadataStore>,
    /// Running totals that turn OTLP delta points into cumulative series; shared by the
    /// OTLP/HTTP and OTLP/gRPC receivers.
    pub delta: Arc<DeltaTracker>,
}

impl AppState {
    /// State over an opened database, with the query engine configured from `config`.
    pub fn new(db: Db, config: Config) -> AppState {
        let engine = Engine::new(EngineOptions {
            lookback_delta: config.query.lookback_delta,
            timeout: config.query.timeout,
            max_samples: config.query.max_samples,
        });
        let metadata = MetadataStore::open(&config.data_dir);
        let config_max_series = config.limits.series.max_series;
        AppState {
            db: Arc::new(db),
            config: Arc::new(config),
            metrics: Arc::new(SelfMetrics::new()),
            engine: Arc::new(engine),
            metadata: Arc::new(metadata),
            delta: Arc::new(DeltaTracker::new(config_max_series)),
        }
    }
}
