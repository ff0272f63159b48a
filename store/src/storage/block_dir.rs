//! The life of a block directory, the same for metric blocks and span blocks.
//!
//! A block is written into `<blocks_dir>/.tmp-<id>/` ([`TmpBlockDir`]); its files are
//! fsynced, then [`TmpBlockDir::publish`] fsyncs the directory, renames it to
//! `<min>-<max>-<id>` and fsyncs `blocks_dir`, so a block directory either is complete or
//! does not exist. A writer dropped before publishing removes its temporary directory.
//! An open block holds its directory as a [`BlockDir`]; once marked deleted, the directory
//! is renamed to `.tmp-del-<name>` (a crash never leaves a half-deleted block that looks
//! valid) and removed when the last reader lets go. [`open_all`] removes every leftover
//! `.tmp-` directory at open.
//!
//! What goes into a block (Parquet files, the fields of `meta.json`) is the business of
//! each kind: `metrics::block` and `traces::block`.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::BlockError;
use super::fsutil::{sync_dir, write_synced};

/// Prefix of directories that are not (yet or any more) blocks; removed at open.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// Name of the block metadata file in every block directory.
pub(crate) const META_FILE: &str = "meta.json";

/// A fresh random block id (16 hex digits): process-random hasher keys mixed with the
/// time, the pid and a counter, so ids never collide across writers.
pub(crate) fn new_block_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// A block being written: a fresh `.tmp-<id>` directory under the blocks directory.
/// Dropped before [`publish`](TmpBlockDir::publish) (an error, an empty block), it is
/// removed with everything in it.
pub(crate) struct TmpBlockDir {
    blocks_dir: PathBuf,
    path: PathBuf,
    id: String,
    published: bool,
}

impl TmpBlockDir {
    /// Creates `<blocks_dir>/.tmp-<new id>/`.
    pub(crate) fn create(blocks_dir: &Path) -> Result<TmpBlockDir, BlockError> {
        let id = new_block_id();
        let path = blocks_dir.join(format!("{TMP_PREFIX}{id}"));
        fs::create_dir_all(&path).map_err(|e| BlockError::io(&path, e))?;
        Ok(TmpBlockDir {
            blocks_dir: blocks_dir.to_path_buf(),
            path,
            id,
            published: false,
        })
    }

    /// The block's id, the last part of its final directory name.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The temporary directory, where the block's files are written (and fsynced by
    /// their writer).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `meta` as pretty JSON to `meta.json` and fsyncs it.
    pub(crate) fn write_meta<T: Serialize>(&self, meta: &T) -> Result<(), BlockError> {
        let meta_path = self.path.join(META_FILE);
        let text = serde_json::to_vec_pretty(meta).map_err(|source| BlockError::Meta {
            path: meta_path.clone(),
            source,
        })?;
        write_synced(&meta_path, &text).map_err(|e| BlockError::io(&meta_path, e))
    }

    /// Makes the block durable and visible: fsyncs the temporary directory, renames it to
    /// `<min>-<max>-<id>` and fsyncs the blocks directory. Returns the final directory.
    pub(crate) fn publish(mut self, min: i64, max: i64) -> Result<PathBuf, BlockError> {
        sync_dir(&self.path).map_err(|e| BlockError::io(&self.path, e))?;
        let final_dir = self.blocks_dir.join(format!("{min}-{max}-{}", self.id));
        fs::rename(&self.path, &final_dir).map_err(|e| BlockError::io(&final_dir, e))?;
        if let Err(e) = sync_dir(&self.blocks_dir) {
            // Not durable, so not published: the caller keeps the data (WAL, frozen head)
            // and writes the block again later. Renamed back, the directory goes with this
            // writer instead of becoming a second copy of the block.
            if let Err(back) = fs::rename(&final_dir, &self.path) {
                tracing::warn!(error = %back, dir = %final_dir.display(), "cannot take back a block whose directory fsync failed");
            }
            return Err(BlockError::io(&self.blocks_dir, e));
        }
        self.published = true;
        Ok(final_dir)
    }
}

impl Drop for TmpBlockDir {
    /// Removes the temporary directory of a block that was never published.
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The directory of a published block, held by the open block; dereferences to its path.
/// Once [`mark_deleted`](BlockDir::mark_deleted), dropping it (when the last reader lets go
/// of the block) deletes the directory.
pub(crate) struct BlockDir {
    path: PathBuf,
    /// What the block is, for log messages ("block", "span block").
    kind: &'static str,
    delete_on_drop: AtomicBool,
}

impl BlockDir {
    /// Takes charge of the published block directory `path`.
    pub(crate) fn new(path: &Path, kind: &'static str) -> BlockDir {
        BlockDir {
            path: path.to_path_buf(),
            kind,
            delete_on_drop: AtomicBool::new(false),
        }
    }

    /// Schedules the directory for deletion once the last reader lets go of the block.
    pub(crate) fn mark_deleted(&self) {
        self.delete_on_drop.store(true, Ordering::SeqCst);
    }
}

impl Deref for BlockDir {
    type Target = PathBuf;

    fn deref(&self) -> &PathBuf {
        &self.path
    }
}

impl std::fmt::Debug for BlockDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.path.fmt(f)
    }
}

impl Drop for BlockDir {
    /// Deletes a directory marked deleted: first renamed to a `.tmp-del-` name (so a crash
    /// never leaves a half-deleted block that looks valid), then removed.
    fn drop(&mut self) {
        if !self.delete_on_drop.load(Ordering::SeqCst) {
            return;
        }
        let (Some(parent), Some(name)) = (self.path.parent(), self.path.file_name().and_then(|n| n.to_str()))
        else {
            return;
        };
        let doomed = parent.join(format!("{TMP_PREFIX}del-{name}"));
        if let Err(e) = fs::rename(&self.path, &doomed).and_then(|_| fs::remove_dir_all(&doomed)) {
            tracing::warn!(block = %self.path.display(), error = %e, "could not delete {}", self.kind);
        }
    }
}

/// Reads and parses a block directory's `meta.json`.
pub(crate) fn read_meta<T: DeserializeOwned>(dir: &Path) -> Result<T, BlockError> {
    let meta_path = dir.join(META_FILE);
    let text = fs::read(&meta_path).map_err(|e| BlockError::io(&meta_path, e))?;
    serde_json::from_slice(&text).map_err(|source| BlockError::Meta {
        path: meta_path,
        source,
    })
}

/// Bytes of the files directly in `dir` (a block's size on disk).
pub(crate) fn dir_bytes(dir: &Path) -> Result<u64, BlockError> {
    let mut bytes = 0;
    for entry in fs::read_dir(dir).map_err(|e| BlockError::io(dir, e))? {
        let entry = entry.map_err(|e| BlockError::io(dir, e))?;
        bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
    }
    Ok(bytes)
}

/// Opens every block directory in `blocks_dir` with `open`, in directory order, after
/// removing leftover `.tmp-` directories; blocks that fail to open are logged (as an
/// unreadable `kind`) and skipped, left on disk for inspection. Files are ignored.
pub(crate) fn open_all<B>(
    blocks_dir: &Path,
    kind: &str,
    open: impl Fn(&Path) -> Result<B, BlockError>,
) -> Result<Vec<B>, BlockError> {
    let mut blocks = Vec::new();
    for entry in fs::read_dir(blocks_dir).map_err(|e| BlockError::io(blocks_dir, e))? {
        let entry = entry.map_err(|e| BlockError::io(blocks_dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if !path.is_dir() {
            continue;
        }
        if name.starts_with(TMP_PREFIX) {
            fs::remove_dir_all(&path).map_err(|e| BlockError::io(&path, e))?;
            continue;
        }
        match open(&path) {
            Ok(block) => blocks.push(block),
            Err(e) => tracing::error!(block = %path.display(), error = %e, "skipping unreadable {kind}"),
        }
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn unpublished_dirs_vanish_and_published_ones_are_named_by_range_and_id() {
        let root = tempfile::tempdir().unwrap();
        let dropped = TmpBlockDir::create(root.path()).unwrap();
        let tmp_path = dropped.path().to_path_buf();
        assert!(tmp_path.is_dir());
        drop(dropped);
        assert!(!tmp_path.exists());

        let tmp = TmpBlockDir::create(root.path()).unwrap();
        let id = tmp.id().to_string();
        tmp.write_meta(&serde_json::json!({"id": id})).unwrap();
        let dir = tmp.publish(-5, 7).unwrap();
        assert_eq!(dir, root.path().join(format!("-5-7-{id}")));
        let meta: serde_json::Value = read_meta(&dir).unwrap();
        assert_eq!(meta["id"], id.as_str());

        std::fs::create_dir(root.path().join(".tmp-leftover")).unwrap();
        let opened = open_all(root.path(), "block", |p| Ok(BlockDir::new(p, "block"))).unwrap();
        assert_eq!(opened.len(), 1);
        assert!(!root.path().join(".tmp-leftover").exists());

        let held = opened.into_iter().next().unwrap();
        held.mark_deleted();
        drop(held);
        assert!(!dir.exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
