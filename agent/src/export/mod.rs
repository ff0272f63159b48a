//! The exporter: batches samples, writes each batch to the on-disk buffer, and a sender task
//! ([`sender`]) ships the buffer oldest-first, removing a record only once the collector
//! accepted it — or refused it for one of the few reasons that allow dropping ([`reason`]).
//! No buffered request is larger than `export.batch_max_bytes` ([`split`] cuts bigger ones).
//!
//! Nothing is sent from memory: a batch is on disk (fsynced) before any attempt, so a collector
//! outage or an agent restart loses nothing that reached [`SampleSink::send`]... and was flushed.
//! [`Exporter::shutdown`] flushes the open batch, so a clean stop loses nothing either.

pub mod buffer;
pub mod encode;
pub mod otlp;
pub mod raw_grpc;
pub mod reason;
pub mod retry;
pub mod self_metrics;
pub mod sender;
pub mod split;
pub mod state;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::config::ExportConfig;
use crate::error::{BufferError, ExportError};
use crate::model::Sample;
use buffer::DiskBuffer;
use didban_base::now_ms;
use encode::{encode_with, ResourceInfo};
pub use otlp::Signal;
use otlp::Transport;
use retry::Backoff;
use sender::Sender;
use state::{snapshot_of, Shared};
pub use state::{ExportSnapshot, ExportStats};

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
    /// Appends one encoded request of `signal` to the buffer — cut into requests of at most
    /// `export.batch_max_bytes` when it is bigger — and returns once it is fsynced, so a caller
    /// may acknowledge its own sender afterwards.
    pub async fn send(&self, signal: Signal, request: Vec<u8>) -> Result<(), BufferError> {
        self.send_all(signal, vec![request]).await
    }

    /// The largest request the buffer stores whole (`export.batch_max_bytes`); callers that
    /// cut their own requests at this size spare the buffer decoding them to split them.
    pub fn max_request_bytes(&self) -> usize {
        self.shared.max_request_bytes
    }

    /// [`OtlpSink::send`] for several requests, fsynced once after the last: what a caller
    /// has ready at once costs one fsync, not one per request.
    pub async fn send_all(&self, signal: Signal, requests: Vec<Vec<u8>>) -> Result<(), BufferError> {
        let shared = self.shared.clone();
        let result = tokio::task::spawn_blocking(move || {
            let max = shared.max_request_bytes;
            let mut pieces = Vec::with_capacity(requests.len());
            for request in requests {
                if request.len() > max {
                    pieces.extend(split::fit(signal, request, max));
                } else {
                    pieces.push(request);
                }
            }
            let mut refs = Vec::with_capacity(pieces.len());
            for piece in &pieces {
                refs.push(piece.as_slice());
            }
            shared.lock().append_all_tagged(&[signal as u8], &refs)
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
        let buffer = DiskBuffer::open(buffer_dir, config.buffer_max_bytes, config.buffer_segment_bytes)?
            .with_item_counter(record_items);
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
            max_request_bytes: config.batch_max_bytes,
        });
        let (tx, rx) = mpsc::channel(64);
        let (stop, stop_rx) = watch::channel(false);
        let batcher = tokio::spawn(run_batcher(
            rx,
            shared.clone(),
            resource,
            resource_attributes(config),
            config.batch_max_samples,
            config.flush_interval,
            stop_rx.clone(),
        ));
        let backoff = Backoff::new(
            config.retry_initial_backoff,
            config.retry_max_backoff,
            config.retry_after_max,
        );
        let sender = tokio::spawn(Sender::new(shared.clone(), transport, backoff, stop_rx).run());
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

/// Items in a buffer record — the signal's tag byte, then the encoded request (1 when it
/// does not decode: it is still one thing lost).
fn record_items(record: &[u8]) -> u64 {
    record
        .split_first()
        .and_then(|(tag, body)| split::count_items(Signal::from_tag(*tag)?, body))
        .unwrap_or(1)
}

async fn run_batcher(
    mut rx: mpsc::Receiver<Vec<Sample>>,
    shared: Arc<Shared>,
    resource: ResourceInfo,
    extra: Vec<(String, String)>,
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
                        write_batch(&shared, &batch, &resource, &extra, start_ms).await;
                        batch = rest;
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                if !batch.is_empty() {
                    write_batch(&shared, &batch, &resource, &extra, start_ms).await;
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
        write_batch(&shared, chunk, &resource, &extra, start_ms).await;
    }
}

/// `export.resource_attributes` as pairs, in key order.
fn resource_attributes(config: &ExportConfig) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(config.resource_attributes.len());
    for (k, v) in &config.resource_attributes {
        out.push((k.clone(), v.clone()));
    }
    out
}

async fn write_batch(
    shared: &Arc<Shared>,
    samples: &[Sample],
    resource: &ResourceInfo,
    extra: &[(String, String)],
    start_ms: i64,
) {
    if samples.is_empty() {
        return;
    }
    let request = encode_with(samples, resource, extra, start_ms).encode_to_vec();
    let count = samples.len() as u64;
    let shared2 = shared.clone();
    let result = tokio::task::spawn_blocking(move || {
        let pieces = split::fit(Signal::Metrics, request, shared2.max_request_bytes);
        let mut buffer = shared2.lock();
        for piece in pieces {
            buffer.append_all_tagged(&[Signal::Metrics as u8], &[&piece])?;
        }
        Ok::<(), BufferError>(())
    })
    .await;
    match result {
        Ok(Ok(())) => {
            shared.stats.buffered_samples.fetch_add(count, Ordering::Relaxed);
            shared.notify.notify_one();
        }
        Ok(Err(e)) => tracing::error!(error = %e, samples = count, "export buffer: could not store a batch"),
        Err(e) => tracing::error!(error = %e, "export buffer: writer task failed"),
    }
}
