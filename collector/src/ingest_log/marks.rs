//! What the stores of this process already hold of a partition, as stream sequences: the
//! marks the consumer skips up to (see `consumer`'s hidden contract).
//!
//! Two sources: the stores' WAL replays (`replayed_marks`) and what is published to the
//! bucket (`published_marks`): a metric or span block holds everything of the partition up
//! to its positions; sealed log days hold, per day, the records up to their seal's mark, and
//! everything below the highest floor (`didban_store::logs::LogPublished`).

use super::message::Batch;
use crate::state::AppState;
use didban_store::logs::LogPublished;

/// The highest stream sequence of the partition each store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Marks {
    pub(super) metrics: u64,
    pub(super) traces: u64,
    pub(super) logs: u64,
    pub(super) exemplars: u64,
}

impl Marks {
    /// The mark of `batch`'s signal.
    pub(super) fn of(&self, batch: &Batch) -> u64 {
        match batch {
            Batch::Metrics(_) => self.metrics,
            Batch::Spans(_) => self.traces,
            Batch::Logs(_) => self.logs,
            Batch::Exemplars(_) => self.exemplars,
        }
    }

    /// The higher mark of each signal.
    pub(super) fn max(self, other: Marks) -> Marks {
        Marks {
            metrics: self.metrics.max(other.metrics),
            traces: self.traces.max(other.traces),
            logs: self.logs.max(other.logs),
            exemplars: self.exemplars.max(other.exemplars),
        }
    }
}

/// Where the consumer stands: the marks per signal, and the log records the sealed days
/// hold per day.
pub(super) struct Stored {
    pub(super) marks: Marks,
    pub(super) log_days: LogPublished,
}

/// The marks the published blocks and sealed log days give for `partition` (a metric or
/// span block holds everything of the partition up to its positions: whole-head cuts;
/// for logs see `LogPublished`); an error names what could not be read (the caller
/// retries).
pub(super) async fn published_marks(
    state: &AppState,
    partition: u32,
) -> Result<(Marks, LogPublished), String> {
    let stores = &state.stores;
    let (metrics, traces, logs) = (stores.metrics.clone(), stores.traces.clone(), stores.logs.clone());
    let read = tokio::task::spawn_blocking(move || {
        // Lists refreshed from the metastore now: what a previous holder of the
        // partition published up to its end counts.
        let since = std::time::Instant::now();
        if let Err(e) = metrics.ensure_listed_after(since) {
            tracing::warn!(error = %e, "metric blocks not listed again");
        }
        if let Err(e) = traces.ensure_listed_after(since) {
            tracing::warn!(error = %e, "span blocks not listed again");
        }
        logs.ensure_listed_after(since)?;
        logs.published_positions(partition)
    })
    .await;
    match read {
        Ok(Ok(log_days)) => {
            let marks = Marks {
                metrics: stores.metrics.published_positions().get(partition).unwrap_or(0),
                traces: stores.traces.published_positions().get(partition).unwrap_or(0),
                logs: log_days.below,
                // Exemplars are in no block: a new disk stores those of the messages
                // it reads again, and has lost the others.
                exemplars: 0,
            };
            Ok((marks, log_days))
        }
        Ok(Err(e)) => Err(format!("sealed log days' ingest marks unreadable: {e}")),
        Err(e) => Err(format!("reading sealed log days' ingest marks failed: {e}")),
    }
}

/// The marks the stores' WAL replays found for `partition` (0: nothing yet).
pub(super) fn replayed_marks(state: &AppState, partition: u32) -> Marks {
    let stores = &state.stores;
    Marks {
        metrics: stores.metrics.replayed_positions().get(partition).unwrap_or(0),
        traces: stores.traces.replayed_positions().get(partition).unwrap_or(0),
        logs: stores.logs.replayed_positions().get(partition).unwrap_or(0),
        exemplars: stores.exemplars.replayed_positions().get(partition).unwrap_or(0),
    }
}
