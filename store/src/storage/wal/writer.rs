//! The WAL writer thread: group commit, segment rollover, and recovery from I/O faults.
//!
//! Every append is answered once the bytes before it are durable (per the fsync mode) or
//! with the error that kept them from being so. After a write, fsync or segment-creation
//! error the writer is *in a fault*: the failed segment is cut back to the end of its last
//! acknowledged record and fsynced ("sealed"), and the next group (or, when none arrives,
//! a probe every [`PROBE_INTERVAL`]) starts a new segment. So the log never holds a byte of
//! a refused record after a seal, and once the cause is gone (space freed, descriptors
//! released) writing resumes without a restart.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::position::{self, AppliedPositions};
use super::segment;
use super::stats::WalStats;
use crate::storage::fsutil::{sync_dir, WalFaultOp};
use crate::storage::fsync::FsyncMode;

/// Smallest segment size the writer accepts; smaller settings are raised to it.
const MIN_SEGMENT_BYTES: u64 = 1024;

/// Most messages handled as one group.
const MAX_GROUP: usize = 4096;

/// How often a writer in a fault tries to recover when no append arrives.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Bytes the recovery probe writes (then cuts off again) to test for free space.
const PROBE_BYTES: usize = 64 * 1024;

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

/// What the handle asks of the writer thread.
pub(crate) enum Msg {
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

/// A reply the writer owes once the bytes framed before it are durable.
enum Owed {
    Append(oneshot::Sender<io::Result<()>>),
    Rotate(mpsc::Sender<io::Result<u64>>, u64),
}

/// The state of the writer thread.
pub(crate) struct Writer {
    dir: PathBuf,
    config: WalConfig,
    /// The segment being appended to; `None` after a fault until a new one is started.
    file: Option<File>,
    seg_no: u64,
    /// Bytes written to the current segment.
    seg_size: u64,
    /// Bytes of the current segment that hold acknowledged records; a fault cuts it back
    /// to this length.
    good_len: u64,
    /// A failed segment whose cut back to `good_len` is not durable yet.
    unsealed: Option<File>,
    in_fault: bool,
    stats: Arc<WalStats>,
    last_sync: Instant,
    dirty: bool,
    /// Ingest-log positions of every record written (from the replay on), carried into
    /// each rotation checkpoint so deleting old segments never loses them
    /// (`position.rs`).
    positions: AppliedPositions,
    /// Positions of the records framed but not written yet.
    framed_positions: AppliedPositions,
}

impl Writer {
    /// A writer whose first segment, numbered `first_segment`, is created now.
    pub(crate) fn start(
        dir: &Path,
        first_segment: u64,
        config: WalConfig,
        stats: Arc<WalStats>,
        positions: AppliedPositions,
    ) -> io::Result<Writer> {
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            config,
            file: None,
            seg_no: first_segment.saturating_sub(1),
            seg_size: 0,
            good_len: 0,
            unsealed: None,
            in_fault: false,
            stats,
            last_sync: Instant::now(),
            dirty: false,
            positions,
            framed_positions: AppliedPositions::default(),
        };
        writer.next_segment()?;
        Ok(writer)
    }

    /// Handles messages until a close is requested or every handle is gone.
    pub(crate) fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            let first = match self.idle_wait() {
                Some(wait) => match rx.recv_timeout(wait) {
                    Ok(msg) => msg,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.on_idle();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(msg) => msg,
                    Err(_) => break,
                },
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

    /// How long to wait for a message before doing idle work (`None`: no idle work).
    fn idle_wait(&self) -> Option<Duration> {
        let interval_wait = (self.config.mode == FsyncMode::Interval && self.dirty)
            .then(|| self.config.interval.saturating_sub(self.last_sync.elapsed()));
        match (self.in_fault, interval_wait) {
            (true, Some(w)) => Some(w.min(PROBE_INTERVAL)),
            (true, None) => Some(PROBE_INTERVAL),
            (false, w) => w,
        }
    }

    /// Idle work: the interval fsync, or a recovery attempt while in a fault.
    fn on_idle(&mut self) {
        if self.in_fault {
            self.probe();
            return;
        }
        if self.config.mode == FsyncMode::Interval && self.dirty {
            if let Err(e) = self.sync() {
                self.fail(&e);
            }
        }
    }

    /// Writes one group and answers it; returns true when a close was requested.
    fn handle_group(&mut self, group: Vec<Msg>) -> bool {
        let mut buf = Vec::new();
        let mut owed = Vec::new();
        let mut closes = Vec::new();
        let mut error = self.ensure_ready().err();
        if let Some(e) = &error {
            self.fail(e);
        }
        for msg in group {
            match msg {
                Msg::Close { done } => closes.push(done),
                Msg::Append { payload, done } => {
                    if payload.len() > segment::MAX_PAYLOAD {
                        let msg = format!("WAL record of {} bytes is too large", payload.len());
                        self.refuse(done, io::Error::new(io::ErrorKind::InvalidInput, msg));
                        continue;
                    }
                    if let Some(e) = &error {
                        self.refuse(done, copy_error(e));
                        continue;
                    }
                    match self.make_room(&mut buf, &mut owed, payload.len()) {
                        Ok(()) => {
                            segment::frame(&mut buf, &payload);
                            position::peek(&payload, &mut self.framed_positions);
                            owed.push(Owed::Append(done));
                        }
                        Err(e) => {
                            self.fail(&e);
                            self.refuse(done, copy_error(&e));
                            error = Some(e);
                        }
                    }
                }
                Msg::Rotate { checkpoint, done } => {
                    if let Some(e) = &error {
                        let _ = done.send(Err(copy_error(e)));
                        continue;
                    }
                    match self.switch_segment(&mut buf, &mut owed) {
                        Ok(()) => {
                            *self.stats.rotation_positions.lock() = self.positions.clone();
                            let checkpoint = position::wrap_all(&self.positions, checkpoint);
                            segment::frame(&mut buf, &checkpoint);
                            owed.push(Owed::Rotate(done, self.seg_no));
                        }
                        Err(e) => {
                            self.fail(&e);
                            let _ = done.send(Err(copy_error(&e)));
                            error = Some(e);
                        }
                    }
                }
            }
        }
        // The fault state changes before anyone is answered (here and above), so a client
        // that got its answer finds readiness already telling the same story.
        if error.is_none() {
            let rotating = owed.iter().any(|o| matches!(o, Owed::Rotate(..)));
            let mode = self.config.mode;
            let sync = mode == FsyncMode::Batch
                || (mode != FsyncMode::Off && (!closes.is_empty() || rotating))
                || (mode == FsyncMode::Interval && self.last_sync.elapsed() >= self.config.interval);
            // Only a write that succeeded proves the fault over (not a close or an empty group).
            let writes = !buf.is_empty();
            match self.commit(&mut buf, sync) {
                Ok(()) if writes => self.recovered(),
                Ok(()) => {}
                Err(e) => {
                    self.fail(&e);
                    error = Some(e);
                }
            }
        }
        settle(owed.drain(..), error.as_ref(), &self.stats);
        let closing = !closes.is_empty();
        for done in closes {
            // Refused appends were told so; only acknowledged but unsynced data (interval
            // mode) can be lost by a failure here.
            let result = match &error {
                Some(e) if self.config.mode == FsyncMode::Interval => Err(copy_error(e)),
                _ => Ok(()),
            };
            let _ = done.send(result);
        }
        closing
    }

    /// Answers an append with an error, counting it (see [`WalStats::refused_appends`]).
    fn refuse(&self, done: oneshot::Sender<io::Result<()>>, error: io::Error) {
        self.stats.refused_appends.fetch_add(1, Ordering::Relaxed);
        let _ = done.send(Err(error));
    }

    /// Before a record of `len` bytes is framed: when it would overflow the segment, writes
    /// and syncs what is framed, answers it, and starts a new segment.
    fn make_room(&mut self, buf: &mut Vec<u8>, owed: &mut Vec<Owed>, len: usize) -> io::Result<()> {
        let framed = (segment::FRAME_HEADER + len) as u64;
        let pending = self.seg_size + buf.len() as u64;
        if pending > 0 && pending + framed > self.config.segment_bytes {
            self.switch_segment(buf, owed)?;
        }
        Ok(())
    }

    /// Writes and syncs what is framed, answers it (it is durable in the old segment) and
    /// starts a new segment.
    fn switch_segment(&mut self, buf: &mut Vec<u8>, owed: &mut Vec<Owed>) -> io::Result<()> {
        self.commit(buf, self.config.mode != FsyncMode::Off)?;
        settle(owed.drain(..), None, &self.stats);
        self.next_segment()
    }

    /// Writes `buf` to the current segment and, when `sync`, fsyncs it; on success every
    /// byte written so far counts as acknowledged.
    fn commit(&mut self, buf: &mut Vec<u8>, sync: bool) -> io::Result<()> {
        let written = self.write_out(buf, sync);
        match &written {
            Ok(()) => {
                let framed = std::mem::take(&mut self.framed_positions);
                self.positions.merge(&framed);
            }
            // The framed records are refused: their positions must not be claimed.
            Err(_) => self.framed_positions = AppliedPositions::default(),
        }
        written
    }

    /// [`Writer::commit`]'s I/O.
    fn write_out(&mut self, buf: &mut Vec<u8>, sync: bool) -> io::Result<()> {
        if !buf.is_empty() {
            self.stats.injector.check(WalFaultOp::Write)?;
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
        }
        if sync && self.dirty {
            self.sync()?;
        }
        self.good_len = self.seg_size;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let started = Instant::now();
        if let Some(file) = &self.file {
            self.stats.injector.check(WalFaultOp::Sync)?;
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

    /// Enters a fault after `e`: the current segment is sealed at its last acknowledged
    /// record (now, or before anything else is written when that fails too).
    fn fail(&mut self, e: &io::Error) {
        if self.in_fault {
            // Once per fault in the log, not once per refused append or probe.
            tracing::debug!(error = %e, segment = self.seg_no, "WAL still failing");
        } else {
            tracing::error!(error = %e, segment = self.seg_no, "WAL write failed; refusing appends until it recovers");
        }
        self.stats.set_fault(e);
        self.in_fault = true;
        self.dirty = false;
        if let Some(file) = self.file.take() {
            if self.good_len == 0 && rewind(&file).is_ok() {
                // Nothing acknowledged lives in it: emptied, it is as good as a new segment,
                // and a long fault does not leave one empty file per refused append.
                self.file = Some(file);
                self.seg_size = 0;
                return;
            }
            self.unsealed = Some(file);
        }
        if let Err(seal) = self.seal() {
            tracing::warn!(error = %seal, segment = self.seg_no, "cannot seal the failed WAL segment yet; will retry");
        }
    }

    /// Cuts the failed segment back to its acknowledged records and makes that durable.
    fn seal(&mut self) -> io::Result<()> {
        if let Some(file) = &self.unsealed {
            file.set_len(self.good_len)?;
            self.stats.injector.check(WalFaultOp::Sync)?;
            file.sync_all()?;
            self.unsealed = None;
        }
        Ok(())
    }

    /// Makes the writer able to write: seals a failed segment, starts a new one.
    fn ensure_ready(&mut self) -> io::Result<()> {
        self.seal()?;
        if self.file.is_none() {
            self.next_segment()?;
        }
        Ok(())
    }

    /// Leaves the fault after a successful write.
    fn recovered(&mut self) {
        if self.in_fault {
            self.in_fault = false;
            if self.stats.clear_fault() {
                tracing::info!(segment = self.seg_no, "WAL recovered; appends are accepted again");
            }
        }
    }

    /// A recovery attempt without an append: start a segment and check that a write and an
    /// fsync of [`PROBE_BYTES`] succeed (the probe bytes are cut off again; a crash before
    /// that leaves zeros that replay cuts off as a torn tail).
    fn probe(&mut self) {
        let result = self.ensure_ready().and_then(|()| self.probe_space());
        match result {
            Ok(()) => self.recovered(),
            Err(e) => self.fail(&e),
        }
    }

    fn probe_space(&mut self) -> io::Result<()> {
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("no open WAL segment"))?;
        self.stats.injector.check(WalFaultOp::Write)?;
        file.write_all_at(&[0u8; PROBE_BYTES], self.seg_size)?;
        if self.config.mode != FsyncMode::Off {
            self.stats.injector.check(WalFaultOp::Sync)?;
            file.sync_data()?;
        }
        file.set_len(self.seg_size)
    }

    /// Creates the next segment and makes its directory entry durable. A file left behind
    /// by an attempt whose directory fsync failed is reused when empty.
    fn next_segment(&mut self) -> io::Result<()> {
        let next = self.seg_no + 1;
        let path = segment::segment_path(&self.dir, next);
        let file = self.create_segment(&path)?;
        if self.config.mode != FsyncMode::Off {
            let synced = self
                .stats
                .injector
                .check(WalFaultOp::SyncDir)
                .and_then(|()| sync_dir(&self.dir));
            if let Err(e) = synced {
                drop(file);
                if let Err(rm) = std::fs::remove_file(&path) {
                    tracing::warn!(error = %rm, path = %path.display(), "cannot remove the WAL segment just created");
                }
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot sync WAL directory {}: {e}", self.dir.display()),
                ));
            }
        }
        self.file = Some(file);
        self.seg_no = next;
        self.seg_size = 0;
        self.good_len = 0;
        self.stats.segments.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn create_segment(&self, path: &Path) -> io::Result<File> {
        let created = self
            .stats
            .injector
            .check(WalFaultOp::CreateSegment)
            .and_then(|()| OpenOptions::new().write(true).create_new(true).open(path));
        let named = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot create WAL segment {}: {e}", path.display()),
            )
        };
        match created {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let file = OpenOptions::new().write(true).open(path).map_err(named)?;
                if file.metadata().map_err(named)?.len() > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("WAL segment {} already exists and is not empty", path.display()),
                    ));
                }
                Ok(file)
            }
            Err(e) => Err(named(e)),
        }
    }
}

/// Answers every owed reply: success, or the error that kept its bytes from being durable.
fn settle(owed: impl Iterator<Item = Owed>, error: Option<&io::Error>, stats: &WalStats) {
    for o in owed {
        match o {
            Owed::Append(done) => {
                if error.is_some() {
                    stats.refused_appends.fetch_add(1, Ordering::Relaxed);
                }
                let _ = done.send(error.map_or(Ok(()), |e| Err(copy_error(e))));
            }
            Owed::Rotate(done, seg_no) => {
                let _ = done.send(error.map_or(Ok(seg_no), |e| Err(copy_error(e))));
            }
        }
    }
}

/// Empties a segment and puts the write position back at its start.
fn rewind(mut file: &File) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0)).map(|_| ())
}

fn copy_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}
