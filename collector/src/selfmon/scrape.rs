//! Writes the self-metrics into Didban's own database every `self_scrape_interval`, as a
//! Prometheus scraping Didban would.

use std::time::Duration;

use tokio::sync::watch;
use tracing::debug;

use super::gauges::refresh_store_gauges;
use crate::shutdown::stopped;
use crate::state::AppState;
use didban_base::now_ms;

/// Writes the self-metrics into the database periodically until `stop`.
pub async fn self_scrape_loop(state: AppState, stop: watch::Receiver<bool>) {
    let every = state.config.self_scrape_interval;
    if every.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let instance = state.config.http_addr.to_string();
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = stopped(stop.clone()) => return,
        }
        refresh_store_gauges(&state);
        let batch = state.metrics.snapshot(now_ms(), &instance);
        if let Err(e) = state.stores.metrics.append(batch).await {
            debug!(error = %e, "self-metrics not stored this round");
        }
    }
}
