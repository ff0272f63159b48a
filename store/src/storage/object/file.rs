//! A block's files wherever they are — its local directory, or its objects in the bucket
//! (read from the cache when it has them, else with range requests) — and one file of it
//! as a Parquet [`ChunkReader`], so the block reader reads footers, page indexes and just
//! the pages a query selects the same way from both.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;

use super::remote::Remote;
use crate::storage::block_dir::{self, BlockDir, META_FILE};
use crate::storage::error::BlockError;

/// Bytes a sequential remote reader fetches per request.
const READ_AHEAD: u64 = 1024 * 1024;

/// The files of one block.
pub(crate) enum BlockFiles {
    /// A published directory under the data directory.
    Local(BlockDir),
    /// Objects `<prefix>/<name>/<file>` in the bucket.
    Remote(RemoteBlock),
}

/// A block in the bucket.
pub(crate) struct RemoteBlock {
    remote: Arc<Remote>,
    /// `<min>-<max>-<id>`, the block's "directory".
    name: String,
    /// Size of each file, from the listing or the upload.
    sizes: HashMap<String, u64>,
    delete_on_drop: AtomicBool,
    /// Drop only the cached copies, not the objects: another process (the metastore's
    /// compactor) deletes them.
    uncache_on_drop: AtomicBool,
}

/// `meta.json` is uploaded last and deleted first, so a block is listed only while all its
/// files are there.
impl RemoteBlock {
    fn key(&self, file: &str) -> String {
        self.remote.key(&self.name, file)
    }
}

impl BlockFiles {
    /// Uploads the published local block directory `dir` to `remote`
    /// ([`Remote::publish`]: meta.json last, files into the cache, directory removed) and
    /// returns the block's files there.
    pub(crate) fn upload(remote: &Arc<Remote>, dir: &Path) -> Result<BlockFiles, BlockError> {
        let (name, sizes) = remote.publish(dir)?;
        Ok(BlockFiles::remote(remote, name, sizes))
    }

    /// Block `name` of `remote` with files of `sizes`, as the metastore lists it.
    pub(crate) fn in_bucket(remote: &Arc<Remote>, name: String, sizes: HashMap<String, u64>) -> BlockFiles {
        BlockFiles::remote(remote, name, sizes)
    }

    /// The block's name in the bucket (`None` for a local block).
    pub(crate) fn remote_name(&self) -> Option<&str> {
        match self {
            BlockFiles::Local(_) => None,
            BlockFiles::Remote(b) => Some(&b.name),
        }
    }

    /// The sizes of the block's files in the bucket (`None` for a local block).
    pub(crate) fn remote_sizes(&self) -> Option<&HashMap<String, u64>> {
        match self {
            BlockFiles::Local(_) => None,
            BlockFiles::Remote(b) => Some(&b.sizes),
        }
    }

    /// The blocks `remote` lists ([`Remote::list`]).
    pub(crate) fn list_remote(remote: &Arc<Remote>) -> Result<Vec<BlockFiles>, BlockError> {
        let mut out = Vec::new();
        for (name, sizes) in remote.list()? {
            out.push(BlockFiles::remote(remote, name, sizes));
        }
        Ok(out)
    }

    fn remote(remote: &Arc<Remote>, name: String, sizes: HashMap<String, u64>) -> BlockFiles {
        BlockFiles::Remote(RemoteBlock {
            remote: remote.clone(),
            name,
            sizes,
            delete_on_drop: AtomicBool::new(false),
            uncache_on_drop: AtomicBool::new(false),
        })
    }

    /// The block in the published directory `dir`.
    pub(crate) fn local(dir: &Path, kind: &'static str) -> BlockFiles {
        BlockFiles::Local(BlockDir::new(dir, kind))
    }

    /// Where `file` of the block is, for messages (`s3://bucket/key` for a remote block).
    pub(crate) fn path(&self, file: &str) -> PathBuf {
        match self {
            BlockFiles::Local(dir) => dir.join(file),
            BlockFiles::Remote(b) => PathBuf::from(b.remote.bucket.url(&b.key(file))),
        }
    }

    /// The block's directory or prefix, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            BlockFiles::Local(dir) => dir.display().to_string(),
            BlockFiles::Remote(b) => b.remote.bucket.url(&b.remote.key(&b.name, "")),
        }
    }

    /// Opens `file` of the block for a query: the local file, the cached copy of a remote
    /// one, or else the object itself read by ranges (and fetched into the cache in the
    /// background for the next query).
    pub(crate) fn open(&self, file: &str) -> Result<BlockFile, BlockError> {
        self.open_with(file, true)
    }

    /// Opens `file` of the block for a read that will not recur soon (footers at open, a
    /// compaction's sources): like [`open`](Self::open), but a remote file read by ranges
    /// is not fetched into the cache, so opening every block of a bucket does not churn it.
    pub(crate) fn open_once(&self, file: &str) -> Result<BlockFile, BlockError> {
        self.open_with(file, false)
    }

    fn open_with(&self, file: &str, keep: bool) -> Result<BlockFile, BlockError> {
        match self {
            BlockFiles::Local(dir) => {
                let path = dir.join(file);
                File::open(&path)
                    .map(BlockFile::Local)
                    .map_err(|e| BlockError::io(&path, e))
            }
            BlockFiles::Remote(b) => {
                let key = b.key(file);
                if let Some(f) = b.remote.cache.get(&key) {
                    return Ok(BlockFile::Local(f));
                }
                let Some(&len) = b.sizes.get(file) else {
                    return Err(BlockError::corrupt(&self.path(file), "no such file in the block"));
                };
                if keep && len <= WHOLE_FETCH_BYTES {
                    if let Some(f) = fetch_now(&b.remote, &key, len)? {
                        return Ok(BlockFile::Local(f));
                    }
                }
                if keep {
                    fetch_into_cache(&b.remote, key.clone(), len);
                }
                Ok(BlockFile::Remote(RemoteFile {
                    remote: b.remote.clone(),
                    key,
                    len,
                }))
            }
        }
    }

    /// Whether the block has `file` (optional files such as `histograms.parquet`).
    pub(crate) fn has(&self, file: &str) -> bool {
        match self {
            BlockFiles::Local(dir) => dir.join(file).exists(),
            BlockFiles::Remote(b) => b.sizes.contains_key(file),
        }
    }

    /// Reads and parses the block's `meta.json`.
    pub(crate) fn read_meta<T: DeserializeOwned>(&self) -> Result<T, BlockError> {
        match self {
            BlockFiles::Local(dir) => block_dir::read_meta(dir),
            BlockFiles::Remote(b) => {
                let text = b.remote.bucket.get(&b.key(META_FILE))?;
                serde_json::from_slice(&text).map_err(|source| BlockError::Meta {
                    path: self.path(META_FILE),
                    source,
                })
            }
        }
    }

    /// Bytes of the block's files.
    pub(crate) fn bytes(&self) -> Result<u64, BlockError> {
        match self {
            BlockFiles::Local(dir) => block_dir::dir_bytes(dir),
            BlockFiles::Remote(b) => Ok(b.sizes.values().sum()),
        }
    }

    /// Schedules the block's deletion (directory, or objects and cached copies) for when
    /// the last reader lets go of it.
    pub(crate) fn mark_deleted(&self) {
        match self {
            BlockFiles::Local(dir) => dir.mark_deleted(),
            BlockFiles::Remote(b) => b.delete_on_drop.store(true, Ordering::SeqCst),
        }
    }

    /// Schedules the removal of the block's cached copies for when the last reader lets
    /// go of it, leaving its objects: the metastore retired it and its compactor deletes
    /// them after a grace period (other processes may still read them). A local block is
    /// left alone.
    pub(crate) fn forget(&self) {
        if let BlockFiles::Remote(b) = self {
            b.uncache_on_drop.store(true, Ordering::SeqCst);
        }
    }
}

impl std::fmt::Debug for BlockFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Drop for RemoteBlock {
    /// A block marked deleted leaves the bucket — `meta.json` first, so it is never listed
    /// half there — and the cache, in the background.
    fn drop(&mut self) {
        if !self.delete_on_drop.load(Ordering::SeqCst) {
            if self.uncache_on_drop.load(Ordering::SeqCst) {
                for file in self.sizes.keys() {
                    self.remote.cache.remove(&self.key(file));
                }
            }
            return;
        }
        let mut keys = vec![self.key(META_FILE)];
        for file in self.sizes.keys() {
            if file != META_FILE {
                keys.push(self.key(file));
            }
        }
        for k in &keys {
            self.remote.cache.remove(k);
        }
        let store = self.remote.bucket.store();
        let url = self.remote.bucket.url(&self.remote.key(&self.name, ""));
        self.remote.bucket.spawn(async move {
            for k in keys {
                match store.delete(&ObjectPath::from(k.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        tracing::warn!(block = %url, error = %e, "could not delete block from the bucket");
                        return;
                    }
                }
            }
        });
    }
}

/// Starts fetching object `key` (`len` bytes) whole into the cache, unless it is there,
/// on its way, or too large for it.
/// Files up to this size are fetched whole, in one request, when a query first opens them:
/// on a cold cache a query's page-by-page range reads cost one round trip each (measured
/// on a three-node Garage: Q2 of the object-storage figures, 28.5 s cold with range reads
/// of 12 blocks of ~40 KB files), where one GET per file is a handful. Larger files are
/// read by ranges while they are fetched into the cache in the background.
const WHOLE_FETCH_BYTES: u64 = 4 * 1024 * 1024;

/// Fetches `key` whole into the cache now and opens the cached copy; `None` when the cache
/// will not take it (another reader is fetching it, or it is larger than the cache), so
/// the caller reads by ranges instead.
fn fetch_now(remote: &Arc<Remote>, key: &str, len: u64) -> Result<Option<File>, BlockError> {
    let Some(tmp) = remote.cache.begin(key, len) else {
        return Ok(None);
    };
    let written = remote
        .bucket
        .get(key)
        .and_then(|bytes| std::fs::write(&tmp, &bytes).map_err(|e| BlockError::io(&tmp, e)));
    if let Err(e) = written {
        remote.cache.abort(key, &tmp);
        return Err(e);
    }
    remote.cache.finish(key, &tmp, len);
    Ok(remote.cache.get(key))
}

fn fetch_into_cache(remote: &Arc<Remote>, key: String, len: u64) {
    let Some(tmp) = remote.cache.begin(&key, len) else {
        return;
    };
    let store = remote.bucket.store();
    let cache = remote.cache.clone();
    remote.bucket.spawn(async move {
        let result: std::io::Result<()> = async {
            let got = store
                .get(&ObjectPath::from(key.as_str()))
                .await
                .map_err(std::io::Error::other)?;
            let mut stream = got.into_stream();
            let mut out = tokio::fs::File::create(&tmp).await?;
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk.map_err(std::io::Error::other)?).await?;
            }
            out.flush().await
        }
        .await;
        match result {
            Ok(()) => cache.finish(&key, &tmp, len),
            Err(e) => {
                tracing::warn!(key, error = %e, "could not fetch a block file into the cache");
                cache.abort(&key, &tmp);
            }
        }
    });
}

/// One file of a block opened for reading.
pub(crate) enum BlockFile {
    /// A local file: the block's own, or the cached copy of a remote one.
    Local(File),
    /// An object read with range requests.
    Remote(RemoteFile),
}

/// An object of the bucket read by ranges.
pub(crate) struct RemoteFile {
    remote: Arc<Remote>,
    key: String,
    len: u64,
}

impl RemoteFile {
    fn range(&self, start: u64, end: u64) -> Result<Bytes, ParquetError> {
        let bytes = self
            .remote
            .bucket
            .get_range(&self.key, start..end)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        self.remote.cache.note_range(bytes.len() as u64);
        Ok(bytes)
    }
}

impl Length for BlockFile {
    fn len(&self) -> u64 {
        match self {
            BlockFile::Local(f) => f.metadata().map(|m| m.len()).unwrap_or(0),
            BlockFile::Remote(r) => r.len,
        }
    }
}

impl ChunkReader for BlockFile {
    type T = BlockRead;

    fn get_read(&self, start: u64) -> Result<BlockRead, ParquetError> {
        match self {
            BlockFile::Local(f) => {
                let mut reader = f.try_clone()?;
                reader.seek(SeekFrom::Start(start))?;
                Ok(BlockRead::Local(BufReader::new(reader)))
            }
            BlockFile::Remote(r) => Ok(BlockRead::Remote(RemoteRead {
                file: RemoteFile {
                    remote: r.remote.clone(),
                    key: r.key.clone(),
                    len: r.len,
                },
                pos: start,
                buf: Bytes::new(),
            })),
        }
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes, ParquetError> {
        match self {
            BlockFile::Local(f) => f.get_bytes(start, length),
            BlockFile::Remote(r) => {
                let end = start.saturating_add(length as u64);
                if end > r.len {
                    return Err(ParquetError::EOF(format!(
                        "range {start}..{end} past the end of {} ({} bytes)",
                        r.key, r.len
                    )));
                }
                r.range(start, end)
            }
        }
    }
}

/// A sequential reader over a block file (what [`ChunkReader::get_read`] hands out).
pub(crate) enum BlockRead {
    Local(BufReader<File>),
    Remote(RemoteRead),
}

/// Reads an object front to back from `pos`, [`READ_AHEAD`] bytes per range request.
pub(crate) struct RemoteRead {
    file: RemoteFile,
    pos: u64,
    buf: Bytes,
}

impl Read for BlockRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        match self {
            BlockRead::Local(r) => r.read(out),
            BlockRead::Remote(r) => {
                if r.buf.is_empty() {
                    if r.pos >= r.file.len {
                        return Ok(0);
                    }
                    let end = r.pos.saturating_add(READ_AHEAD).min(r.file.len);
                    r.buf = r.file.range(r.pos, end).map_err(std::io::Error::other)?;
                    r.pos = end;
                    if r.buf.is_empty() {
                        return Ok(0);
                    }
                }
                let n = out.len().min(r.buf.len());
                r.buf.copy_to_slice(&mut out[..n]);
                Ok(n)
            }
        }
    }
}
