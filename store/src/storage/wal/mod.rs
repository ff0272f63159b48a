//! The write-ahead log: segment files under `<data_dir>/wal/<store>/` (`metrics`,
//! `traces`, `logs`) written by one dedicated thread with group commit.
//!
//! The log moves opaque payloads; what a record means is the business of the store that
//! submits it (`metrics::record`, `traces::span`, `logs::record`).
//!
//! Appends hand an encoded record to the writer thread through a channel. The thread takes
//! everything queued, writes it with one `write`, then (in [`FsyncMode::Batch`]) one fsync
//! covers the whole group before every append in it is acknowledged. The order of records
//! in the log is the order in which they were submitted.
//!
//! After an I/O error the writer seals the failed segment at its last acknowledged record
//! and starts a new one on the next append (or probe), so a full disk or a lack of file
//! descriptors costs the appends made during it, never a restart (`writer`).

pub(crate) mod position;
pub(crate) mod segment;
mod stats;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::storage::fsutil::{sync_dir, WalFaultOp};
pub use position::{AppliedPositions, LogPosition};
pub use stats::WalHealth;
pub(crate) use stats::WalStats;
pub(crate) use writer::WalConfig;
use writer::{Msg, Writer};

/// The writer thread has stopped (the log was closed or failed to start).
#[derive(Debug)]
pub(crate) struct WalClosed;

/// Handle to the WAL writer thread.
pub(crate) struct Wal {
    dir: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub stats: Arc<WalStats>,
}

impl Wal {
    /// Starts the writer with a fresh segment numbered `first_segment` in `dir`;
    /// `positions` are the ingest-log positions the replay found, carried on into the
    /// rotation checkpoints.
    pub(crate) fn start(
        dir: &Path,
        first_segment: u64,
        config: WalConfig,
        positions: AppliedPositions,
    ) -> io::Result<Wal> {
        let stats = Arc::new(WalStats::default());
        stats
            .segments
            .store(segment::list_segments(dir)?.len() as u64, Ordering::Relaxed);
        let writer = Writer::start(dir, first_segment, config, stats.clone(), positions)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("didban-wal".into())
            .spawn(move || writer.run(rx))?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    fn send(&self, msg: Msg) -> Result<(), WalClosed> {
        let guard = self.tx.lock();
        match guard.as_ref() {
            Some(tx) => tx.send(msg).map_err(|_| WalClosed),
            None => Err(WalClosed),
        }
    }

    /// Queues an encoded record; the receiver resolves once it is written (and fsynced,
    /// in batch mode).
    pub(crate) fn submit(&self, payload: Vec<u8>) -> Result<oneshot::Receiver<io::Result<()>>, WalClosed> {
        let (done, rx) = oneshot::channel();
        self.send(Msg::Append { payload, done })?;
        Ok(rx)
    }

    /// Queues a rotation: the current segment is synced and closed, a new one starts with
    /// `checkpoint` as its first record. The receiver yields the new segment's number;
    /// every record submitted before this call lives in a lower-numbered segment.
    pub(crate) fn rotate(&self, checkpoint: Vec<u8>) -> Result<mpsc::Receiver<io::Result<u64>>, WalClosed> {
        let (done, rx) = mpsc::channel();
        self.send(Msg::Rotate { checkpoint, done })?;
        Ok(rx)
    }

    /// The ingest-log positions of every record before the last rotation, once its
    /// receiver has answered: what a head frozen at that rotation holds.
    pub(crate) fn rotation_positions(&self) -> AppliedPositions {
        self.stats.rotation_positions.lock().clone()
    }

    /// Flushes and fsyncs everything queued, then stops the writer. Idempotent.
    pub(crate) async fn close(&self) -> io::Result<()> {
        let (done, rx) = oneshot::channel();
        if self.send(Msg::Close { done }).is_err() {
            return Ok(());
        }
        self.tx.lock().take();
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(io::Error::other("WAL writer stopped before confirming close")),
        }
    }

    /// The error of the fault the writer is in (a failed write, fsync or segment
    /// creation it has not recovered from yet), `None` while it writes normally.
    pub(crate) fn fault(&self) -> Option<String> {
        self.stats.fault()
    }

    /// The fault (if any) and the failure and recovery counts.
    pub(crate) fn health(&self) -> WalHealth {
        self.stats.health()
    }

    /// Appends answered with an error since open; every such answer was sent after the
    /// count, so once a later message (a rotation) is answered, it covers all before it.
    pub(crate) fn refused_appends(&self) -> u64 {
        self.stats.refused_appends.load(Ordering::Relaxed)
    }

    /// Makes the next `times` I/O steps of kind `op` fail, for tests of fault handling.
    pub(crate) fn inject_fault(&self, op: WalFaultOp, times: u32) {
        self.stats.injector.arm(op, times);
    }

    /// Deletes the segments numbered below `first_kept`; returns how many were removed.
    pub(crate) fn delete_before(&self, first_kept: u64) -> io::Result<usize> {
        let mut removed = 0;
        for (n, path) in segment::list_segments(&self.dir)? {
            if n >= first_kept {
                break;
            }
            std::fs::remove_file(&path)?;
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
            self.stats.segments.fetch_sub(removed as u64, Ordering::Relaxed);
        }
        Ok(removed)
    }
}

impl Drop for Wal {
    /// Dropping the sender lets the thread drain, sync and exit; waiting for it makes
    /// dropping a `Db` without `close` as safe as closing it.
    fn drop(&mut self) {
        self.tx.lock().take();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

/// Every intact record of a log directory, for the stores that replay a WAL of their own
/// record format (traces, logs).
pub(crate) struct ReplayedLog {
    /// `(segment number, payloads)` in order.
    pub segments: Vec<(u64, Vec<Vec<u8>>)>,
    /// Segments whose torn or corrupt tail was cut off.
    pub torn_repairs: u64,
    /// Highest segment number seen (0 for an empty log).
    pub last_segment: u64,
    /// The highest ingest-log position per partition the records carried.
    pub positions: AppliedPositions,
}

/// Reads every segment of `dir` in order, repairing torn tails as the metric replay does.
pub(crate) fn read_log(dir: &Path) -> io::Result<ReplayedLog> {
    let mut out = ReplayedLog {
        segments: Vec::new(),
        torn_repairs: 0,
        last_segment: 0,
        positions: AppliedPositions::default(),
    };
    for (n, path) in segment::list_segments(dir)? {
        out.last_segment = n;
        let contents = segment::read_segment(&path)?;
        if contents.repaired {
            out.torn_repairs += 1;
            tracing::warn!(segment = %path.display(), "cut a torn or corrupt record off the WAL");
        }
        out.positions.merge(&contents.positions);
        out.segments.push((n, contents.payloads));
    }
    Ok(out)
}
