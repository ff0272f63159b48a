//! One kind of block in the bucket: the bucket, the local cache, and the key prefix
//! (`metrics/blocks`) under which each block is `<prefix>/<min>-<max>-<id>/<file>`.
//!
//! A block is written and published in the data directory as in file mode, then
//! [`Remote::publish`] uploads its data files and `meta.json` last — a block counts as
//! published only once its `meta.json` is in the bucket, so a crash mid-upload leaves
//! objects that no listing returns — and moves the local files into the cache (a new
//! block is what queries read most). `file::BlockFiles` wraps what these return. Names carry a random id, so writers never collide and
//! need no lock.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use super::bucket::{Bucket, Object};
use super::cache::{FileCache, ObjectCacheStats};
use super::config::S3Config;
use crate::storage::block_dir::{META_FILE, TMP_PREFIX};
use crate::storage::error::BlockError;

/// A block's files by name, with their sizes in bytes.
pub(crate) type FileSizes = HashMap<String, u64>;

/// The bucket side of a block store.
pub(crate) struct Remote {
    pub(super) bucket: Bucket,
    pub(super) cache: Arc<FileCache>,
    prefix: String,
}

impl Remote {
    /// Connects to the bucket of `config` for blocks under `prefix`, with an empty cache
    /// in `cache_dir`.
    pub(crate) fn open(config: &S3Config, prefix: &str, cache_dir: &Path) -> Result<Arc<Remote>, BlockError> {
        let cache =
            FileCache::open(cache_dir, config.cache_bytes).map_err(|e| BlockError::io(cache_dir, e))?;
        Ok(Arc::new(Remote {
            bucket: Bucket::connect(config)?,
            cache: Arc::new(cache),
            prefix: prefix.trim_matches('/').to_string(),
        }))
    }

    /// The key of `file` in block `name` (of the block's prefix when `file` is empty).
    pub(super) fn key(&self, name: &str, file: &str) -> String {
        if file.is_empty() {
            format!("{}/{name}/", self.prefix)
        } else {
            format!("{}/{name}/{file}", self.prefix)
        }
    }

    /// Uploads the published local block directory `dir` (data files, then `meta.json`),
    /// moves its files into the cache and removes the directory. The block is in the
    /// bucket when this returns `Ok`; on error the directory stays for the next try.
    pub(crate) fn publish(&self, dir: &Path) -> Result<(String, HashMap<String, u64>), BlockError> {
        let (name, files) = self.upload(dir)?;
        for (file, size) in &files {
            let key = self.key(&name, file);
            if let Some(tmp) = self.cache.begin(&key, *size) {
                match std::fs::rename(dir.join(file), &tmp) {
                    Ok(()) => self.cache.finish(&key, &tmp, *size),
                    Err(_) => self.cache.abort(&key, &tmp),
                }
            }
        }
        if let Err(e) = std::fs::remove_dir_all(dir) {
            tracing::warn!(block = %dir.display(), error = %e, "uploaded block's local directory not removed");
        }
        Ok((name, files))
    }

    /// Uploads the files of the local directory `dir` as block `<dir's name>` — data
    /// files first, `meta.json` last (lock files of a Tantivy index, names starting with
    /// `.`, stay behind) — and leaves the directory as it is. Uploading the same directory
    /// again overwrites the same objects, so a retry after a crash is harmless.
    pub(crate) fn upload(&self, dir: &Path) -> Result<(String, FileSizes), BlockError> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| BlockError::corrupt(dir, "block directory without a name"))?
            .to_string();
        let mut files: Vec<(String, u64)> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| BlockError::io(dir, e))? {
            let entry = entry.map_err(|e| BlockError::io(dir, e))?;
            let meta = entry.metadata().map_err(|e| BlockError::io(&entry.path(), e))?;
            let file = entry.file_name().to_string_lossy().to_string();
            if meta.is_file() && !file.starts_with('.') {
                files.push((file, meta.len()));
            }
        }
        if !files.iter().any(|(f, _)| f == META_FILE) {
            return Err(BlockError::corrupt(dir, "no meta.json to publish"));
        }
        // meta.json last: it is what makes the block exist for a listing.
        files.sort_by_key(|(f, _)| f == META_FILE);
        for (file, _) in &files {
            self.bucket.upload_file(&dir.join(file), &self.key(&name, file))?;
        }
        Ok((name, files.into_iter().collect()))
    }

    /// The cache key of block `name` kept whole as one directory entry.
    fn dir_key(&self, name: &str) -> String {
        self.key(name, "")
    }

    /// The cached directory of block `name` ([`fetch_dir`](Self::fetch_dir)), if cached;
    /// marks it used.
    pub(crate) fn cached_dir(&self, name: &str) -> Option<std::path::PathBuf> {
        self.cache.path_of(&self.dir_key(name))
    }

    /// Moves the local directory `dir` (block `name`'s files, `bytes` in all, just
    /// uploaded) into the cache as one entry; when the cache does not take it the
    /// directory is removed. Returns the cached path.
    pub(crate) fn cache_dir(&self, name: &str, dir: &Path, bytes: u64) -> Option<std::path::PathBuf> {
        let key = self.dir_key(name);
        let cached = match self.cache.begin(&key, bytes) {
            Some(tmp) => match std::fs::rename(dir, &tmp) {
                Ok(()) => {
                    self.cache.finish(&key, &tmp, bytes);
                    self.cache.path_of(&key)
                }
                Err(_) => {
                    self.cache.abort(&key, &tmp);
                    None
                }
            },
            None => None,
        };
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                tracing::warn!(block = %dir.display(), error = %e, "uploaded directory not removed");
            }
        }
        cached
    }

    /// Drops the cached directory of block `name` (retired: its objects are the
    /// metastore compactor's to delete).
    pub(crate) fn forget_dir(&self, name: &str) {
        self.cache.remove(&self.dir_key(name));
    }

    /// Fetches every file of block `name` (`sizes`) into one directory entry of the
    /// cache and returns its path; `None` when the cache cannot hold the whole block (or
    /// another thread is fetching it: the caller tries again later).
    pub(crate) fn fetch_dir(
        &self,
        name: &str,
        sizes: &FileSizes,
    ) -> Result<Option<std::path::PathBuf>, BlockError> {
        let key = self.dir_key(name);
        let total = sizes.values().sum();
        let Some(tmp) = self.cache.begin(&key, total) else {
            return Ok(None);
        };
        let fetched = (|| {
            std::fs::create_dir_all(&tmp).map_err(|e| BlockError::io(&tmp, e))?;
            for file in sizes.keys() {
                let bytes = self.bucket.get(&self.key(name, file))?;
                let path = tmp.join(file);
                std::fs::write(&path, &bytes).map_err(|e| BlockError::io(&path, e))?;
            }
            Ok(())
        })();
        if let Err(e) = fetched {
            self.cache.abort(&key, &tmp);
            return Err(e);
        }
        self.cache.finish(&key, &tmp, total);
        Ok(self.cache.path_of(&key))
    }

    /// The bytes of one (small) file of block `name`: from the cached copy of the whole
    /// block when there is one, else with one GET.
    pub(crate) fn read_file(&self, name: &str, file: &str) -> Result<Vec<u8>, BlockError> {
        if let Some(dir) = self.cached_dir(name) {
            let path = dir.join(file);
            if let Ok(bytes) = std::fs::read(&path) {
                return Ok(bytes);
            }
        }
        Ok(self.bucket.get(&self.key(name, file))?.to_vec())
    }

    /// Deletes block `name` (files `files`) from the bucket, `meta.json` first, and
    /// drops its cached copies (files and a whole-directory entry).
    pub(crate) fn delete_block(&self, name: &str, files: &FileSizes) -> Result<(), BlockError> {
        self.cache.remove(&self.dir_key(name));
        let mut keys: Vec<&String> = files.keys().collect();
        keys.sort_by_key(|f| f.as_str() != META_FILE);
        for file in keys {
            let key = self.key(name, file);
            self.cache.remove(&key);
            self.bucket.delete(&key)?;
        }
        Ok(())
    }

    /// The blocks in the bucket: every `<prefix>/<name>/` holding a `meta.json`, with the
    /// sizes of its files. Objects of a block whose upload never finished are left alone.
    pub(crate) fn list(&self) -> Result<Vec<(String, FileSizes)>, BlockError> {
        let mut blocks: BTreeMap<String, HashMap<String, u64>> = BTreeMap::new();
        let prefix = format!("{}/", self.prefix);
        for object in self.bucket.list(&self.prefix)? {
            let Some(rest) = object.key.strip_prefix(&prefix) else {
                continue;
            };
            let Some((name, file)) = rest.split_once('/') else {
                continue;
            };
            if name.starts_with(TMP_PREFIX) || file.contains('/') {
                continue;
            }
            blocks
                .entry(name.to_string())
                .or_default()
                .insert(file.to_string(), object.size);
        }
        let mut out = Vec::new();
        for (name, sizes) in blocks {
            if !sizes.contains_key(META_FILE) {
                tracing::info!(block = %name, "block in the bucket without meta.json (upload unfinished); skipped");
                continue;
            }
            out.push((name, sizes));
        }
        Ok(out)
    }

    /// Every object under the prefix by block name (`.tmp-` names and unfinished uploads
    /// included), for the garbage collection of the metastore's compactor.
    pub(crate) fn list_objects(&self) -> Result<BTreeMap<String, Vec<Object>>, BlockError> {
        let mut blocks: BTreeMap<String, Vec<Object>> = BTreeMap::new();
        let prefix = format!("{}/", self.prefix);
        for object in self.bucket.list(&self.prefix)? {
            let Some((name, _)) = object.key.strip_prefix(&prefix).and_then(|r| r.split_once('/')) else {
                continue;
            };
            blocks.entry(name.to_string()).or_default().push(object);
        }
        Ok(blocks)
    }

    /// Deletes `objects` of one block from the bucket and the cache, `meta.json` first so
    /// a listing never finds the block half there.
    pub(crate) fn delete_objects(&self, mut objects: Vec<Object>) -> Result<(), BlockError> {
        objects.sort_by_key(|o| !o.key.ends_with(&format!("/{META_FILE}")));
        for o in objects {
            self.cache.remove(&o.key);
            self.bucket.delete(&o.key)?;
        }
        Ok(())
    }

    /// `s3://<bucket>/<prefix>/<name>/`, for messages.
    pub(crate) fn block_url(&self, name: &str) -> String {
        self.bucket.url(&self.key(name, ""))
    }

    /// Figures of the local cache.
    pub(crate) fn cache_stats(&self) -> ObjectCacheStats {
        self.cache.stats()
    }
}
