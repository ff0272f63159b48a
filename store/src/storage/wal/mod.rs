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

pub(crate) mod segment;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::storage::fsutil::sync_dir;
use crate::storage::fsync::FsyncMode;

/// Counters the writer keeps for the stores' stats (e.g. [`crate::DbStats`]).
#[derive(Debug, Default)]
pub(crate) struct WalStats {
    pub bytes_written: AtomicU64,
    pub fsyncs: AtomicU64,
    pub fsync_nanos: AtomicU64,
    pub segments: AtomicU64,
}

/// Smallest segment size the writer accepts; smaller settings are raised to it.
const MIN_SEGMENT_BYTES: u64 = 1024;

/// How the writer behaves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalConfig {
    pub mode: FsyncMode,
    pub interval: Duration,
    pub segment_bytes: u64,
}

impl WalConfig {
    /// A store's WAL settings: its fsync mode and interval, and the size at which a
    /// segment is closed (at least [`MIN_SEGMENT_BYTES`]).
    pub(crate) fn new(mode: FsyncMode, interval: Duration, segment_bytes: u64) -> WalConfig {
        WalConfig {
            mode,
            interval,
            segment_bytes: segment_bytes.max(MIN_SEGMENT_BYTES),
        }
    }
}

enum Msg {
    Append {
        payload: Vec<u8>,
        done: oneshot::Sender<io::Result<()>>,
    },
    Rotate {
        checkpoint: Vec<u8>,
        done: mpsc::Sender<io::Result<u64>>,
    },
    Close {
        done: oneshot::Sender<io::Result<()>>,
    },
}

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
    /// Starts the writer with a fresh segment numbered `first_segment` in `dir`.
    pub(crate) fn start(dir: &Path, first_segment: u64, config: WalConfig) -> io::Result<Wal> {
        let stats = Arc::new(WalStats::default());
        stats
            .segments
            .store(segment::list_segments(dir)?.len() as u64, Ordering::Relaxed);
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            config,
            file: None,
            seg_no: first_segment.saturating_sub(1),
            seg_size: 0,
            stats: stats.clone(),
            failed: None,
            last_sync: Instant::now(),
            dirty: false,
        };
        writer.next_segment()?;
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

struct Writer {
    dir: PathBuf,
    config: WalConfig,
    file: Option<File>,
    seg_no: u64,
    seg_size: u64,
    stats: Arc<WalStats>,
    failed: Option<String>,
    last_sync: Instant,
    dirty: bool,
}

/// Most messages handled as one group.
const MAX_GROUP: usize = 4096;

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            let first = if self.config.mode == FsyncMode::Interval && self.dirty {
                let wait = self.config.interval.saturating_sub(self.last_sync.elapsed());
                match rx.recv_timeout(wait) {
                    Ok(msg) => msg,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Err(e) = self.sync() {
                            self.fail(&e);
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                }
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(msg) => group.push(msg),
                    Err(_) => break,
                }
            }
            if self.handle_group(group) {
                return;
            }
        }
        if self.dirty && self.config.mode != FsyncMode::Off {
            if let Err(e) = self.sync() {
                tracing::error!(error = %e, "final WAL fsync failed");
            }
        }
    }

    /// Writes one group and acknowledges it; returns true when a close was requested.
    fn handle_group(&mut self, group: Vec<Msg>) -> bool {
        let mut buf = Vec::new();
        let mut appends = Vec::new();
        let mut rotations = Vec::new();
        let mut closes = Vec::new();
        let mut result: io::Result<()> = self.check_failed();
        for msg in group {
            match msg {
                Msg::Append { payload, done } => {
                    if payload.len() > segment::MAX_PAYLOAD {
                        let msg = format!("WAL record of {} bytes is too large", payload.len());
                        let _ = done.send(Err(io::Error::new(io::ErrorKind::InvalidInput, msg)));
                        continue;
                    }
                    if result.is_ok() {
                        result = self.add(&mut buf, &payload);
                    }
                    appends.push(done);
                }
                Msg::Rotate { checkpoint, done } => {
                    if result.is_ok() {
                        result = self.rotate_now(&mut buf, &checkpoint);
                    }
                    rotations.push((done, self.seg_no));
                }
                Msg::Close { done } => closes.push(done),
            }
        }
        if result.is_ok() {
            result = self.flush(&mut buf);
        }
        let must_sync = self.config.mode == FsyncMode::Batch
            || (self.config.mode != FsyncMode::Off && (!closes.is_empty() || !rotations.is_empty()))
            || (self.config.mode == FsyncMode::Interval && self.last_sync.elapsed() >= self.config.interval);
        if result.is_ok() && must_sync && self.dirty {
            result = self.sync();
        }
        if let Err(e) = &result {
            self.fail(e);
        }
        for done in appends {
            let _ = done.send(clone_result(&result));
        }
        for (done, seg_no) in rotations {
            let _ = done.send(clone_result(&result).map(|_| seg_no));
        }
        let closing = !closes.is_empty();
        for done in closes {
            let _ = done.send(clone_result(&result));
        }
        closing
    }

    fn check_failed(&self) -> io::Result<()> {
        match &self.failed {
            Some(msg) => Err(io::Error::other(format!(
                "WAL is unusable after an earlier error: {msg}"
            ))),
            None => Ok(()),
        }
    }

    /// Marks the log failed and cuts the current segment back to its last complete write,
    /// so a partial record can never hide acknowledged records written later.
    fn fail(&mut self, e: &io::Error) {
        tracing::error!(error = %e, segment = self.seg_no, "WAL write failed");
        if self.failed.is_none() {
            self.failed = Some(e.to_string());
        }
        if let Some(file) = &self.file {
            let _ = file.set_len(self.seg_size);
        }
    }

    /// Frames `payload` into `buf`, first starting a new segment if it would overflow.
    fn add(&mut self, buf: &mut Vec<u8>, payload: &[u8]) -> io::Result<()> {
        let framed = (segment::FRAME_HEADER + payload.len()) as u64;
        let pending = self.seg_size + buf.len() as u64;
        if pending > 0 && pending + framed > self.config.segment_bytes {
            self.flush(buf)?;
            if self.config.mode != FsyncMode::Off && self.dirty {
                self.sync()?;
            }
            self.next_segment()?;
        }
        segment::frame(buf, payload);
        Ok(())
    }

    fn rotate_now(&mut self, buf: &mut Vec<u8>, checkpoint: &[u8]) -> io::Result<()> {
        self.flush(buf)?;
        if self.config.mode != FsyncMode::Off && self.dirty {
            self.sync()?;
        }
        self.next_segment()?;
        segment::frame(buf, checkpoint);
        Ok(())
    }

    fn flush(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("no open WAL segment"))?;
        file.write_all(buf)?;
        self.seg_size += buf.len() as u64;
        self.stats
            .bytes_written
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        buf.clear();
        self.dirty = true;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let started = Instant::now();
        if let Some(file) = &self.file {
            file.sync_data()?;
        }
        self.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.stats
            .fsync_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.last_sync = Instant::now();
        self.dirty = false;
        Ok(())
    }

    fn next_segment(&mut self) -> io::Result<()> {
        let next = self.seg_no + 1;
        let path = segment::segment_path(&self.dir, next);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create WAL segment {}: {e}", path.display()),
                )
            })?;
        if self.config.mode != FsyncMode::Off {
            sync_dir(&self.dir)?;
        }
        self.file = Some(file);
        self.seg_no = next;
        self.seg_size = 0;
        self.stats.segments.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn clone_result(r: &io::Result<()>) -> io::Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
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
}

/// Reads every segment of `dir` in order, repairing torn tails as the metric replay does.
pub(crate) fn read_log(dir: &Path) -> io::Result<ReplayedLog> {
    let mut out = ReplayedLog {
        segments: Vec::new(),
        torn_repairs: 0,
        last_segment: 0,
    };
    for (n, path) in segment::list_segments(dir)? {
        out.last_segment = n;
        let contents = segment::read_segment(&path)?;
        if contents.repaired {
            out.torn_repairs += 1;
            tracing::warn!(segment = %path.display(), "cut a torn or corrupt record off the WAL");
        }
        out.segments.push((n, contents.payloads));
    }
    Ok(out)
}
