//! What every request handler shares: the database, the query engine, limits and
//! self-metrics. Built once by the server and passed to routers as axum state.

use std::sync::Arc;

use didban_store::Db;

use crate::config::Config;
use crate::selfmon::SelfMetrics;

/// Shared server state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Arc<Db>,
    pub config: Arc<Config>,
    pub metrics: Arc<SelfMetrics>,
}
