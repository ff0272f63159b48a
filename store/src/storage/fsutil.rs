//! File-system steps whose durability the stores rely on (Prometheus' `tsdb/fileutil`).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

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
