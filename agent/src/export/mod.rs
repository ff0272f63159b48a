//! The exporter: batches samples, writes each batch to the on-disk buffer, and a sender task
//! ships the buffer oldest-first, removing a record only once the collector accepted it.
//!
//! Nothing is sent from memory: a batch is on disk (fsynced) before any attempt, so a collector
//! outage or an agent restart loses nothing that reached [`SampleSink::send`]... and was flushed.
//! [`Exporter::shutdown`] flushes the open batch, so a clean stop loses nothing either.

pub mod buffer;
pub mod encode;
pub mod otlp;
pub mod retry;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prost::Message;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::config::ExportConfig;
use crate::error::{BufferError, ExportError};
use crate::model::Sample;
use buffer::DiskBuffer;
use didban_base::now_ms;
use encode::{encode, ResourceInfo};
pub use otlp::Signal;
use otlp::Transport;
use retry::Backoff;

/// Counters describing the exporter, for logs and self-metrics.
#[derive(Debug, Default)]
pub struct ExportStats {
    /// Requests the collector accepted.
    pub sent_requests: AtomicU64,
    /// Samples put into the buffer.
    pub buffered_samples: AtomicU64,
    /// Failed attempts (each retried or dropped).
    pub failed_attempts: AtomicU64,
    /// Records dropped because the collector refused them for good (not retryable).
    pub rejected_records: AtomicU64,
    /// Items (points, spans, log records) the collector rejected in partial successes.
    pub rejected_items: AtomicU64,
}

struct Shared {
    buffer: Mutex<DiskBuffer>,
    notify: Notify,
    stats: ExportStats,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, DiskBuffer> {
        // A panic while holding the lock leaves the buffer's files consistent (every step is
        // a complete file operation), so a poisoned lock is still usable.
        match self.buffer.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Where collectors put their samples. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SampleSink {
    tx: mpsc::Sender<Vec<Sample>>,
}

impl SampleSink {
    /// Hands samples to the exporter; waits if the batcher is behind. Returns false once the
    /// exporter has shut down.
    pub async fn send(&self, samples: Vec<Sample>) -> bool {
        self.tx.send(samples).await.is_ok()
    }
}

/// Where already-encoded OTLP requests go (the local OTLP receiver, log tailing): straight
/// into the disk buffer. Cheap to clone.
#[derive(Clone)]
pub struct OtlpSink {
    shared: Arc<Shared>,
}

impl OtlpSink {
    /// Appends one encoded request of `signal` to the buffer and returns once it is fsynced,
    /// so a caller may acknowledge its own sender afterwards.
    pub async fn send(&self, signal: Signal, request: Vec<u8>) -> Result<(), BufferError> {
        let shared = self.shared.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut record = Vec::with_capacity(request.len() + 1);
            record.push(signal as u8);
            record.extend_from_slice(&request);
            shared.lock().append(&record)
        })
        .await;
        match result {
            Ok(Ok(())) => {
                self.shared.notify.notify_one();
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(e) => Err(BufferError::Io {
                path: std::path::PathBuf::from("<buffer task>"),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

/// A snapshot of the buffer and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSnapshot {
    /// Records on disk not yet acknowledged.
    pub pending_records: usize,
    /// Bytes of buffer segment files.
    pub buffer_bytes: u64,
    /// Records dropped because the buffer was full.
    pub dropped_records: u64,
    /// Requests accepted by the collector.
    pub sent_requests: u64,
    /// Failed attempts.
    pub failed_attempts: u64,
    /// Records refused for good.
    pub rejected_records: u64,
}

/// The running exporter: a batcher task and a sender task.
pub struct Exporter {
    shared: Arc<Shared>,
    sink: SampleSink,
    stop: watch::Sender<bool>,
    batcher: JoinHandle<()>,
    sender: JoinHandle<()>,
}

impl Exporter {
    /// Opens the buffer under `buffer_dir` and starts the tasks. Records left by a previous run
    /// are sent first.
    pub fn start(
        config: &ExportConfig,
        buffer_dir: &Path,
        resource: ResourceInfo,
    ) -> Result<Exporter, ExportError> {
        let buffer = DiskBuffer::open(buffer_dir, config.buffer_max_bytes, config.buffer_segment_bytes)?;
        let pending = buffer.pending_records();
        if pending > 0 {
            tracing::info!(
                records = pending,
                "export buffer: resending records left by the previous run"
            );
        }
        let transport = Transport::new(config)?;
        let shared = Arc::new(Shared {
            buffer: Mutex::new(buffer),
            notify: Notify::new(),
            stats: ExportStats::default(),
        });
        let (tx, rx) = mpsc::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let batcher = tokio::spawn(run_batcher(
            rx,
            shared.clone(),
            resource,
            config.batch_max_samples,
            config.flush_interval,
            stop_rx.clone(),
        ));
        let backoff = Backoff::new(config.retry_initial_backoff, config.retry_max_backoff);
        let sender = tokio::spawn(run_sender(shared.clone(), transport, backoff, stop_rx));
        Ok(Exporter {
            shared,
            sink: SampleSink { tx },
            stop,
            batcher,
            sender,
        })
    }

    /// A handle for collectors.
    pub fn sink(&self) -> SampleSink {
        self.sink.clone()
    }

    /// A handle for already-encoded OTLP traffic (traces, logs, forwarded metrics).
    pub fn otlp_sink(&self) -> OtlpSink {
        OtlpSink {
            shared: self.shared.clone(),
        }
    }

    /// Current buffer state and counters.
    pub fn snapshot(&self) -> ExportSnapshot {
        snapshot_of(&self.shared)
    }

    /// A function returning [`Exporter::snapshot`], for tasks that outlive a borrow.
    pub fn snapshot_fn(&self) -> impl Fn() -> ExportSnapshot + Send + 'static {
        let shared = self.shared.clone();
        move || snapshot_of(&shared)
    }

    /// Waits until the buffer is empty or `timeout` passes; true if it emptied.
    pub async fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.snapshot().pending_records == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Flushes the open batch to disk and stops. Unsent records stay in the buffer for the
    /// next start.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        drop(self.sink);
        let _ = self.batcher.await;
        self.shared.notify.notify_one();
        let _ = self.sender.await;
    }
}

fn snapshot_of(shared: &Shared) -> ExportSnapshot {
    let (pending_records, buffer_bytes, dropped_records) = {
        let b = shared.lock();
        (b.pending_records(), b.bytes(), b.dropped_records())
    };
    let s = &shared.stats;
    ExportSnapshot {
        pending_records,
        buffer_bytes,
        dropped_records,
        sent_requests: s.sent_requests.load(Ordering::Relaxed),
        failed_attempts: s.failed_attempts.load(Ordering::Relaxed),
        rejected_records: s.rejected_records.load(Ordering::Relaxed),
    }
}

async fn run_batcher(
    mut rx: mpsc::Receiver<Vec<Sample>>,
    shared: Arc<Shared>,
    resource: ResourceInfo,
    max_samples: usize,
    flush_interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let start_ms = now_ms();
    let mut batch: Vec<Sample> = Vec::new();
    let mut ticker = tokio::time::interval(flush_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = rx.recv() => match received {
                Some(samples) => {
                    batch.extend(samples);
                    while batch.len() >= max_samples {
                        let rest = batch.split_off(max_samples);
                        write_batch(&shared, &batch, &resource, start_ms).await;
                        batch = rest;
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                if !batch.is_empty() {
                    write_batch(&shared, &batch, &resource, start_ms).await;
                    batch.clear();
                }
            }
            _ = stop.changed() => {
                // Take what is already queued, then stop.
                while let Ok(samples) = rx.try_recv() {
                    batch.extend(samples);
                }
                break;
            }
        }
    }
    for chunk in batch.chunks(max_samples) {
        write_batch(&shared, chunk, &resource, start_ms).await;
    }
}

async fn write_batch(shared: &Arc<Shared>, samples: &[Sample], resource: &ResourceInfo, start_ms: i64) {
    if samples.is_empty() {
        return;
    }
    let request = encode(samples, resource, start_ms);
    let mut payload = Vec::with_capacity(request.encoded_len() + 1);
    payload.push(Signal::Metrics as u8);
    if request.encode(&mut payload).is_err() {
        return;
    }
    let count = samples.len() as u64;
    let shared2 = shared.clone();
    let result = tokio::task::spawn_blocking(move || shared2.lock().append(&payload)).await;
    match result {
        Ok(Ok(())) => {
            shared.stats.buffered_samples.fetch_add(count, Ordering::Relaxed);
            shared.notify.notify_one();
        }
        Ok(Err(e)) => tracing::error!(error = %e, samples = count, "export buffer: could not store a batch"),
        Err(e) => tracing::error!(error = %e, "export buffer: writer task failed"),
    }
}

async fn buffer_op<T: Send + 'static>(
    shared: &Arc<Shared>,
    op: impl FnOnce(&mut DiskBuffer) -> Result<T, BufferError> + Send + 'static,
) -> Option<T> {
    let shared2 = shared.clone();
    match tokio::task::spawn_blocking(move || op(&mut shared2.lock())).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "export buffer failed");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "export buffer task failed");
            None
        }
    }
}

async fn run_sender(
    shared: Arc<Shared>,
    mut transport: Transport,
    mut backoff: Backoff,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let next = buffer_op(&shared, |b| b.peek()).await;
        let (id, payload) = match next {
            Some(Some(record)) => record,
            Some(None) => {
                tokio::select! {
                    _ = shared.notify.notified() => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
            None => {
                // The buffer itself failed (disk full, permissions): wait and try again.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
        };
        let Some((signal, body)) = payload
            .split_first()
            .and_then(|(t, b)| Some((Signal::from_tag(*t)?, b)))
        else {
            tracing::error!("export buffer: record with an unknown signal tag; dropping it");
            shared.stats.rejected_records.fetch_add(1, Ordering::Relaxed);
            buffer_op(&shared, move |b| b.ack(id)).await;
            continue;
        };
        let outcome = tokio::select! {
            r = transport.send(signal, body) => r,
            _ = stop.changed() => return,
        };
        match outcome {
            Ok(accepted) => {
                if failing {
                    tracing::info!("export: collector reachable again");
                    failing = false;
                }
                backoff.reset();
                shared.stats.sent_requests.fetch_add(1, Ordering::Relaxed);
                if accepted.rejected > 0 {
                    shared
                        .stats
                        .rejected_items
                        .fetch_add(accepted.rejected as u64, Ordering::Relaxed);
                    tracing::warn!(?signal, rejected = accepted.rejected, message = %accepted.message, "export: collector rejected some items");
                }
                buffer_op(&shared, move |b| b.ack(id)).await;
            }
            Err(failure) if failure.retryable => {
                shared.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                let delay = backoff.next_delay(failure.retry_after);
                if !failing {
                    tracing::warn!(error = %failure.message, retry_in = ?delay, "export failed; data stays buffered on disk");
                    failing = true;
                } else {
                    tracing::debug!(error = %failure.message, retry_in = ?delay, "export failed again");
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return,
                }
            }
            Err(failure) => {
                shared.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                shared.stats.rejected_records.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %failure.message, "export: collector refused a batch for good; dropping it");
                buffer_op(&shared, move |b| b.ack(id)).await;
            }
        }
    }
}
