//! File-system steps whose durability the stores rely on (Prometheus' `tsdb/fileutil`),
//! and the fault injector the WAL consults before each of its own I/O steps.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// Fsyncs a directory so entries created or removed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates (or replaces) the file at `path` with `data` and fsyncs it before returning.
pub(crate) fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(data)?;
    file.sync_all()
}

/// A WAL I/O step that [`FaultInjector`] can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalFaultOp {
    /// Writing records (or the recovery probe) to the current segment.
    Write,
    /// Fsyncing the current segment.
    Sync,
    /// Creating a new segment file (fails as if the process were out of file descriptors).
    CreateSegment,
    /// Fsyncing the WAL directory after a new segment was created.
    SyncDir,
}

/// Makes the next few WAL I/O steps of a kind fail, so tests can drive the writer through a
/// fault and its recovery without a full disk. Injected failures look like the real ones:
/// `ENOSPC` for writes and fsyncs, `EMFILE` for segment creation.
#[derive(Debug, Default)]
pub(crate) struct FaultInjector {
    write: AtomicU32,
    sync: AtomicU32,
    create: AtomicU32,
    sync_dir: AtomicU32,
}

impl FaultInjector {
    fn counter(&self, op: WalFaultOp) -> &AtomicU32 {
        match op {
            WalFaultOp::Write => &self.write,
            WalFaultOp::Sync => &self.sync,
            WalFaultOp::CreateSegment => &self.create,
            WalFaultOp::SyncDir => &self.sync_dir,
        }
    }

    /// Makes the next `times` steps of kind `op` fail (replacing an earlier setting).
    pub(crate) fn arm(&self, op: WalFaultOp, times: u32) {
        self.counter(op).store(times, Ordering::SeqCst);
    }

    /// Fails when a failure of kind `op` is armed, using one up.
    pub(crate) fn check(&self, op: WalFaultOp) -> io::Result<()> {
        let counter = self.counter(op);
        let armed = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if armed.is_err() {
            return Ok(());
        }
        let errno = match op {
            WalFaultOp::CreateSegment => rustix::io::Errno::MFILE,
            _ => rustix::io::Errno::NOSPC,
        };
        Err(io::Error::from_raw_os_error(errno.raw_os_error()))
    }
}

/// Size and headroom of the file system holding a directory, for the disk-space
/// self-metrics and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskSpace {
    /// Bytes an unprivileged writer (this server) can still allocate.
    pub free_bytes: u64,
    /// Size of the file system.
    pub total_bytes: u64,
}

/// The [`DiskSpace`] of the file system holding `path` (`statvfs`).
pub fn disk_space(path: &Path) -> io::Result<DiskSpace> {
    let st = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    let unit = if st.f_frsize > 0 { st.f_frsize } else { st.f_bsize };
    Ok(DiskSpace {
        free_bytes: st.f_bavail.saturating_mul(unit),
        total_bytes: st.f_blocks.saturating_mul(unit),
    })
}
