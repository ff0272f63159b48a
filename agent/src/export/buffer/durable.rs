//! File operations of the disk buffer that make changes durable, and I/O errors that name
//! the file they happened to.

use std::fs::File;
use std::path::Path;

use crate::error::BufferError;

/// An I/O error on `path`.
pub(super) fn io_err(path: &Path, source: std::io::Error) -> BufferError {
    BufferError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Fsyncs the directory `dir`, so a file created or renamed in it survives a power cut.
pub(super) fn sync_dir(dir: &Path) -> Result<(), BufferError> {
    let d = File::open(dir).map_err(|e| io_err(dir, e))?;
    d.sync_all().map_err(|e| io_err(dir, e))
}
