//! Exclusive ownership of the data directory: two servers writing one WAL would corrupt it,
//! so the second one to start refuses with a clear message. The lock is an OS file lock on
//! `<data_dir>/LOCK`, released by the kernel when the process exits, even after `kill -9`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the data directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot create data directory {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another didban process (pid {holder}); stop it or choose another --data-dir")]
    InUse { path: PathBuf, holder: String },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held for as long as the server runs; dropping it releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Creates `data_dir` if needed and takes its lock, writing our pid into the lock file.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, DataDirError> {
        std::fs::create_dir_all(data_dir).map_err(|source| DataDirError::Create {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("LOCK");
        let lock_err = |source| DataDirError::Lock {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(lock_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(DataDirError::InUse {
                    path: data_dir.to_path_buf(),
                    holder: holder.trim().to_string(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(lock_err(e)),
        }
        file.set_len(0).map_err(lock_err)?;
        write!(file, "{}", std::process::id()).map_err(lock_err)?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("in use by another didban process"), "{message}");
        assert!(message.contains(&std::process::id().to_string()), "{message}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
