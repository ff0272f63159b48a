//! Exemplars: a sample's pointer to a trace (`trace_id`, `span_id` and a few other labels,
//! a value and a time), kept per series in a bounded buffer and answered by
//! `/api/v1/query_exemplars`.
//!
//! - `ring`: the in-memory storage, one circular buffer of `max_exemplars` for all series
//!   with the duplicate and out-of-order rules of Prometheus;
//! - `record`: the log record;
//! - `types`: what the store takes and answers ([`Exemplar`], [`ExemplarRefusal`], …).
//!
//! Durability: the store has its own small write-ahead log, `<data_dir>/wal/exemplars`,
//! written by the same WAL writer the other stores use (CRC per record, group commit,
//! fsync per the `fsync` mode, torn tails cut on replay). An append returns once its
//! record is durable, so an acknowledged exemplar survives a kill -9. Its own log rather
//! than a record type in the metric WAL, because the metric WAL is truncated on head cuts
//! while the exemplar buffer is bounded by count, not time: exemplars would have to be
//! re-checkpointed into every new metric segment; here the log is cut on its own terms
//! (`maintain` writes the buffer as a checkpoint once the log holds more than the buffer
//! again, and drops the older segments), and the metric record format stays untouched.
//!
//! From the ingest log, an append carries its message's position in the same WAL record
//! (as every store does, `storage::wal::position`), so a consumer restarted over the data
//! directory skips what the log already holds ([`ExemplarStore::replayed_positions`]).
//! Exemplars are never in a block: a replacement on a new disk starts with an empty buffer
//! and stores those of the messages it reads again.

mod record;
mod ring;
mod types;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::model::{LabelMatcher, Labels};
use crate::storage::wal::{read_log, Wal, WalConfig};
use crate::storage::{AppendError, FsyncMode, OpenError, WalHealth};

pub use ring::MAX_LABEL_SET_CHARS;
pub use types::{Exemplar, ExemplarRefusal, SeriesExemplar, SeriesExemplars};

/// A batch of exemplars as bytes, in the exemplar log record's form: what the ingest log
/// carries between the process that accepted them and the one that stores them.
pub fn encode_batch(batch: &[SeriesExemplar]) -> Vec<u8> {
    let list: Vec<(Labels, Exemplar)> = batch
        .iter()
        .map(|e| (e.series.clone(), e.exemplar.clone()))
        .collect();
    record::encode(&list)
}

/// Decodes what [`encode_batch`] wrote; the error names what is wrong.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<SeriesExemplar>, String> {
    Ok(record::decode(bytes)?
        .into_iter()
        .map(|(series, exemplar)| SeriesExemplar { series, exemplar })
        .collect())
}

/// Default `max_exemplars`, Prometheus' default `storage.exemplars.max-exemplars`.
pub const DEFAULT_MAX_EXEMPLARS: usize = 100_000;

/// What happened to an append of exemplars.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExemplarReport {
    /// Exemplars stored (durable once `append` returned `Ok`).
    pub accepted: u64,
    /// Refused exemplars per reason, sorted by reason.
    pub refused: Vec<(ExemplarRefusal, u64)>,
    /// The first refusal, naming the series.
    pub first_error: Option<String>,
}

impl ExemplarReport {
    fn refuse(&mut self, reason: ExemplarRefusal, series: &Labels) {
        if self.first_error.is_none() {
            self.first_error = Some(format!("{} for series {series}", reason.describe()));
        }
        match self.refused.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => {
                self.refused.push((reason, 1));
                self.refused.sort();
            }
        }
    }

    /// Refused exemplars, duplicates not counted (they are no-ops).
    pub fn refused_total(&self) -> u64 {
        let mut n = 0;
        for (reason, count) in &self.refused {
            if *reason != ExemplarRefusal::Duplicate {
                n += count;
            }
        }
        n
    }
}

/// Where the exemplar store lives and how it writes.
#[derive(Debug, Clone)]
pub struct ExemplarOptions {
    /// The server's data directory; the log is `<data_dir>/wal/exemplars`.
    pub data_dir: PathBuf,
    /// Most exemplars kept in memory, over all series (0 = exemplar storage off).
    pub max_exemplars: usize,
    /// fsync mode, interval and segment size of the log (the `[storage]` keys).
    pub fsync: FsyncMode,
    /// Interval of [`FsyncMode::Interval`].
    pub fsync_interval: Duration,
    /// Segment size of the log.
    pub wal_segment_bytes: u64,
}

impl ExemplarOptions {
    /// Defaults (100 000 exemplars, fsync per batch) under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> ExemplarOptions {
        ExemplarOptions {
            data_dir: data_dir.into(),
            max_exemplars: DEFAULT_MAX_EXEMPLARS,
            fsync: FsyncMode::Batch,
            fsync_interval: Duration::from_millis(200),
            wal_segment_bytes: 16 << 20,
        }
    }
}

/// Figures for self-monitoring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExemplarStats {
    /// Exemplars in memory now.
    pub stored: u64,
    /// `max_exemplars`.
    pub capacity: u64,
    /// Series with exemplars.
    pub series: u64,
    /// Exemplars stored since start (replay not counted).
    pub appended_total: u64,
    /// Exemplars read back from the log at open.
    pub replayed: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
}

/// Buffer state guarded together with the log's order.
struct Inner {
    ring: ring::Ring,
    /// Exemplars logged since the last checkpoint (or open).
    logged_since_checkpoint: u64,
}

/// The exemplar store: bounded buffer plus its log.
pub struct ExemplarStore {
    options: ExemplarOptions,
    inner: Mutex<Inner>,
    wal: Wal,
    appended: AtomicU64,
    replayed: u64,
    checkpoints: AtomicU64,
    /// The highest ingest-log position per partition the WAL replay found.
    replayed_positions: crate::AppliedPositions,
}

impl ExemplarStore {
    /// Opens (creating if needed) the store: replays the log into a buffer of
    /// `max_exemplars` (a smaller buffer than before keeps the newest exemplars) and starts
    /// the log writer on a fresh segment.
    pub fn open(options: ExemplarOptions) -> Result<ExemplarStore, OpenError> {
        let wal_dir = options.data_dir.join("wal").join("exemplars");
        std::fs::create_dir_all(&wal_dir).map_err(|source| OpenError::Io {
            path: wal_dir.clone(),
            source,
        })?;
        let log = read_log(&wal_dir).map_err(|source| OpenError::Wal {
            path: wal_dir.clone(),
            source,
        })?;
        let mut ring = ring::Ring::new(options.max_exemplars);
        let mut replayed = 0u64;
        let mut logged = 0u64;
        for (n, payloads) in log.segments {
            for payload in payloads {
                match record::decode(&payload) {
                    Ok(list) => {
                        for (series, e) in list {
                            logged += 1;
                            if ring.append(&series, e).is_ok() {
                                replayed += 1;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(segment = n, error = %e, "skipping undecodable exemplar WAL record")
                    }
                }
            }
        }
        let config = WalConfig::new(options.fsync, options.fsync_interval, options.wal_segment_bytes);
        let wal =
            Wal::start(&wal_dir, log.last_segment + 1, config, log.positions.clone()).map_err(|source| {
                OpenError::Wal {
                    path: wal_dir.clone(),
                    source,
                }
            })?;
        Ok(ExemplarStore {
            options,
            inner: Mutex::new(Inner {
                ring,
                logged_since_checkpoint: logged,
            }),
            wal,
            appended: AtomicU64::new(0),
            replayed,
            checkpoints: AtomicU64::new(0),
            replayed_positions: log.positions,
        })
    }

    /// The highest ingest-log position per partition whose batch the WAL held at open: a
    /// consumer of the log skips exemplars up to these.
    pub fn replayed_positions(&self) -> &crate::AppliedPositions {
        &self.replayed_positions
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &ExemplarOptions {
        &self.options
    }

    /// Checks and stores a batch; returns once the stored exemplars are durable per the
    /// fsync mode. Exemplars are checked in the order given, each against the newest
    /// exemplar of its series (including earlier ones of the batch). When the log write
    /// fails the error is returned; the exemplars stay in memory until the buffer turns
    /// over, but were not acknowledged and may be gone after a restart.
    pub async fn append(&self, batch: Vec<SeriesExemplar>) -> Result<ExemplarReport, AppendError> {
        self.append_at(batch, None).await
    }

    /// [`ExemplarStore::append`] of a batch taken from the ingest log at `position`,
    /// written in the same WAL record (see [`ExemplarStore::replayed_positions`]). When
    /// every exemplar is refused nothing is logged, the position neither: a redelivery is
    /// refused the same way.
    pub async fn append_at(
        &self,
        batch: Vec<SeriesExemplar>,
        position: Option<crate::LogPosition>,
    ) -> Result<ExemplarReport, AppendError> {
        let mut report = ExemplarReport::default();
        let mut logged: Vec<(Labels, Exemplar)> = Vec::new();
        let ack = {
            let mut inner = self.inner.lock();
            for item in batch {
                match inner.ring.append(&item.series, item.exemplar.clone()) {
                    Ok(()) => logged.push((item.series, item.exemplar)),
                    Err(reason) => report.refuse(reason, &item.series),
                }
            }
            if logged.is_empty() {
                return Ok(report);
            }
            inner.logged_since_checkpoint += logged.len() as u64;
            // Submitted under the lock: the log's order is the buffer's order.
            self.wal
                .submit(crate::storage::wal::position::wrap(
                    position,
                    record::encode(&logged),
                ))
                .map_err(|_| AppendError::Closed)?
        };
        match ack.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(AppendError::Wal(e)),
            Err(_) => return Err(AppendError::Closed),
        }
        report.accepted = logged.len() as u64;
        self.appended.fetch_add(report.accepted, Ordering::Relaxed);
        Ok(report)
    }

    /// The exemplars in `[start_ms, end_ms]` of every series matching at least one of the
    /// matcher sets, grouped by series sorted by labels, each series' oldest first.
    pub fn select(&self, sets: &[Vec<LabelMatcher>], start_ms: i64, end_ms: i64) -> Vec<SeriesExemplars> {
        self.inner.lock().ring.select(sets, start_ms, end_ms)
    }

    /// Keeps the log bounded: once more exemplars were logged since the last checkpoint
    /// than the buffer holds, writes the buffer as the first record of a new segment and
    /// deletes the older segments (everything they held is in the checkpoint or was
    /// overwritten). Blocking; the server calls it from its maintenance round.
    pub fn maintain(&self) -> io::Result<()> {
        let rx = {
            let mut inner = self.inner.lock();
            let due = inner.logged_since_checkpoint > self.options.max_exemplars.max(1) as u64;
            if !due {
                return Ok(());
            }
            let checkpoint = record::encode(&inner.ring.snapshot());
            // Rotated under the lock: every record submitted after the snapshot lands
            // after the checkpoint.
            let rx = self
                .wal
                .rotate(checkpoint)
                .map_err(|_| io::Error::other("exemplar WAL is closed"))?;
            inner.logged_since_checkpoint = 0;
            rx
        };
        let first_kept = rx
            .recv()
            .map_err(|_| io::Error::other("exemplar WAL writer stopped during rotation"))??;
        self.wal.delete_before(first_kept)?;
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Flushes and fsyncs the log and stops its writer; later appends fail with
    /// [`AppendError::Closed`].
    pub async fn close(&self) -> io::Result<()> {
        self.wal.close().await
    }

    /// The log's fault (if any) and its failure and recovery counts.
    pub fn wal_health(&self) -> WalHealth {
        self.wal.health()
    }

    /// Figures for self-monitoring.
    pub fn stats(&self) -> ExemplarStats {
        let inner = self.inner.lock();
        ExemplarStats {
            stored: inner.ring.len() as u64,
            capacity: self.options.max_exemplars as u64,
            series: inner.ring.series_count() as u64,
            appended_total: self.appended.load(Ordering::Relaxed),
            replayed: self.replayed,
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests;
