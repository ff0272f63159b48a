//! The three stores of a server — metrics, traces, logs — opened, maintained and closed
//! together, so nothing that serves requests has to know there are three.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use didban_base::{now_ms, now_nanos};
use didban_store::logs::LogStore;
use didban_store::traces::TraceStore;
use didban_store::{Db, ExemplarStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::config::Config;
use crate::shutdown::stopped;
use crate::state::AppState;

/// The server's stores; cheap to clone.
#[derive(Clone)]
pub struct Stores {
    /// Time series (WAL → head → Parquet blocks).
    pub metrics: Arc<Db>,
    /// Spans (WAL → span head → Parquet span blocks).
    pub traces: Arc<TraceStore>,
    /// Log records (WAL → one Tantivy index per day).
    pub logs: Arc<LogStore>,
    /// Exemplars of metric series (bounded buffer → its own log).
    pub exemplars: Arc<ExemplarStore>,
}

impl Stores {
    /// The home page's figures of these stores alone (an ingester answers a querier with
    /// them; a querier adds the ingesters' to its own).
    pub fn local_figures(&self) -> didban_ui::signal_reads::LocalFigures {
        didban_ui::signal_reads::LocalFigures {
            db: self.metrics.clone(),
            traces: self.traces.clone(),
            logs: self.logs.clone(),
        }
    }

    /// Opens the three stores under `config.data_dir`, replaying their WALs; log records
    /// replayed from the WAL are searchable on return. Blocking.
    pub fn open(config: &Config) -> anyhow::Result<Stores> {
        let metrics = Db::open(config.db_options()).context("opening the metric database")?;
        let traces = TraceStore::open(config.trace_options()).context("opening the trace store")?;
        let logs = LogStore::open(config.log_options()).context("opening the log store")?;
        logs.commit().context("committing replayed log records")?;
        let exemplars =
            ExemplarStore::open(config.exemplar_options()).context("opening the exemplar store")?;
        Ok(Stores {
            metrics: Arc::new(metrics),
            traces: Arc::new(traces),
            logs: Arc::new(logs),
            exemplars: Arc::new(exemplars),
        })
    }

    /// Each store's WAL health, named as the `store` label of the self-metrics.
    pub fn wal_health(&self) -> [(&'static str, didban_store::WalHealth); 4] {
        [
            ("metrics", self.metrics.wal_health()),
            ("traces", self.traces.wal_health()),
            ("logs", self.logs.wal_health()),
            ("exemplars", self.exemplars.wal_health()),
        ]
    }

    /// The faults the stores' WALs are in now, each as `"<store> WAL: <error>"`; empty
    /// when all three write normally. A fault ends by itself once its cause is gone.
    pub fn faults(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (store, health) in self.wal_health() {
            if let Some(fault) = health.fault {
                out.push(format!("{store} WAL: {fault}"));
            }
        }
        out
    }

    /// Commits the logs one last time and closes the three WALs (logs, traces, then
    /// metrics: span-derived samples of the last spans still reach the metric WAL).
    pub async fn close(&self) -> anyhow::Result<()> {
        let logs = self.logs.clone();
        match tokio::task::spawn_blocking(move || logs.commit()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "final log commit failed; the WAL keeps the records"),
            Err(e) => warn!(error = %e, "final log commit task failed"),
        }
        self.logs.close().await.context("closing the log WAL")?;
        self.traces.close().await.context("closing the trace WAL")?;
        self.metrics.close().await.context("closing the metric WAL")?;
        self.exemplars.close().await.context("closing the exemplar WAL")?;
        Ok(())
    }
}

/// The one maintenance loop of a server, until `stop`:
///
/// - every `logs.commit_interval`, commits the logs (so new records become searchable);
/// - every `storage.maintenance_interval`, and at once when an append finds the metric
///   head at 80% of its memory budget, cuts, compacts and applies retention to the
///   metric blocks (and saves metric metadata), and does the same for span blocks and day
///   indexes of logs.
///
/// Each piece of work runs on the blocking pool. Metric maintenance (a head cut over many
/// series can take seconds) runs apart from the rest, so log commits keep their pace while
/// it works; a round starts only when the previous one of the same kind has finished.
/// (The stores' gauges are refreshed where they are read: `/metrics` and the self-scrape.)
pub async fn maintenance_loop(state: AppState, stop: watch::Receiver<bool>) {
    let config = &state.config;
    let mut commit_tick = tokio::time::interval(config.logs.commit_interval.max(Duration::from_millis(100)));
    commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut maintain_tick =
        tokio::time::interval(config.storage.maintenance_interval.max(Duration::from_secs(1)));
    maintain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    maintain_tick.tick().await;
    let mut metric_round: Option<JoinHandle<()>> = None;
    loop {
        let maintain = tokio::select! {
            _ = commit_tick.tick() => false,
            _ = maintain_tick.tick() => true,
            // The metric head reached 80% of its memory budget: cut it now (only the
            // metric round; logs and traces keep their own pace).
            _ = state.stores.metrics.cut_requested() => {
                if metric_round.as_ref().is_none_or(|r| r.is_finished()) {
                    metric_round = Some(tokio::spawn(maintain_metrics(state.clone())));
                }
                continue;
            }
            _ = stopped(stop.clone()) => break,
        };
        if maintain && metric_round.as_ref().is_none_or(|r| r.is_finished()) {
            metric_round = Some(tokio::spawn(maintain_metrics(state.clone())));
        }
        let s = state.clone();
        let result = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            s.stores.logs.commit().context("log commit")?;
            if maintain {
                let now = now_nanos();
                s.stores.traces.maintain(now).context("trace maintenance")?;
                s.stores.logs.maintain(now);
            }
            Ok(())
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %format!("{e:#}"), "trace/log maintenance failed; will retry"),
            Err(e) => warn!(error = %e, "trace/log maintenance task panicked"),
        }
    }
    // Let a running metric round finish before the stores close.
    if let Some(round) = metric_round {
        let _ = round.await;
    }
}

/// One round of metric maintenance: cut, compact, retention; then metadata is saved.
async fn maintain_metrics(state: AppState) {
    let db = state.stores.metrics.clone();
    let now = now_ms();
    let exemplars = state.stores.exemplars.clone();
    match tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        db.maintain(now)?;
        exemplars.maintain()
    })
    .await
    {
        Ok(Ok(())) => {
            if let Err(e) = state.metadata.save() {
                warn!(error = %e, "could not save metric metadata");
            }
        }
        Ok(Err(e)) => warn!(error = %e, "storage maintenance failed; will retry"),
        Err(e) => warn!(error = %e, "storage maintenance task panicked"),
    }
}
