//! The local cache of block files fetched from the bucket: whole files under
//! `<data_dir>/cache/<signal>`, bounded in bytes, least recently used file dropped first.
//! An entry may also be a whole directory (a sealed log day index, which Tantivy opens
//! with its own memory-mapped directory), counted and dropped as one.
//!
//! A query that misses the cache reads what it needs with range requests and asks for the
//! file to be fetched whole in the background ([`FileCache::begin`] →
//! [`FileCache::finish`]); later queries read the local copy. The cache starts empty at
//! every open (what a crash left there is not trusted). A file evicted while a query still
//! reads it stays readable through the open handle (Unix unlink semantics).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Figures of the cache, for self-monitoring and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ObjectCacheStats {
    /// Bytes of the files in the cache.
    pub bytes: u64,
    /// The configured bound.
    pub limit_bytes: u64,
    /// Files in the cache.
    pub files: u64,
    /// Files being fetched into it.
    pub loading: u64,
    /// Opens served from the cache.
    pub hits: u64,
    /// Opens that went to the bucket.
    pub misses: u64,
    /// Range requests queries made for files not in the cache (footers, indexes, pages).
    pub range_requests: u64,
    /// Bytes those range requests read: what a cold query cost, beside the whole-file
    /// fetches into the cache (which `bytes` shows once they land).
    pub range_bytes: u64,
}

/// One cached file.
struct Entry {
    bytes: u64,
    last_used: u64,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Entry>,
    used: u64,
    tick: u64,
    loading: HashSet<String>,
}

/// The bounded cache of block files.
pub(crate) struct FileCache {
    dir: PathBuf,
    limit: u64,
    state: Mutex<State>,
    next_tmp: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    range_requests: AtomicU64,
    range_bytes: AtomicU64,
}

impl FileCache {
    /// An empty cache in `dir` (whatever was there is removed) holding at most `limit`
    /// bytes.
    pub(crate) fn open(dir: &Path, limit: u64) -> io::Result<FileCache> {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(dir)?;
        Ok(FileCache {
            dir: dir.to_path_buf(),
            limit,
            state: Mutex::new(State::default()),
            next_tmp: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            range_requests: AtomicU64::new(0),
            range_bytes: AtomicU64::new(0),
        })
    }

    /// Where the cached copy of object `key` lives (the key's `/` become `%`, so every
    /// file sits directly in the cache directory).
    fn local_path(&self, key: &str) -> PathBuf {
        self.dir.join(key.replace('/', "%"))
    }

    /// The cached copy of `key`, opened, when there is one; counts a hit or a miss.
    pub(crate) fn get(&self, key: &str) -> Option<File> {
        self.lookup(key, |path| File::open(path).ok())
    }

    /// Where the cached entry `key` is (a file, or a directory a caller fetched whole into
    /// the path [`begin`](Self::begin) gave), when it is cached; counts a hit or a miss
    /// and marks the entry used, like [`get`](Self::get).
    pub(crate) fn path_of(&self, key: &str) -> Option<PathBuf> {
        self.lookup(key, |path| path.exists().then_some(path))
    }

    /// `open` of the entry `key`'s local path when the entry is cached and `open` succeeds
    /// (the entry is then the most recently used); an entry whose file is gone is
    /// forgotten. Counts a hit or a miss.
    fn lookup<T>(&self, key: &str, open: impl FnOnce(PathBuf) -> Option<T>) -> Option<T> {
        let mut state = self.state.lock();
        state.tick += 1;
        let tick = state.tick;
        if let Some(entry) = state.files.get_mut(key) {
            entry.last_used = tick;
            if let Some(found) = open(self.local_path(key)) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Some(found);
            }
            // Removed behind the cache's back: forget it.
            if let Some(gone) = state.files.remove(key) {
                state.used = state.used.saturating_sub(gone.bytes);
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Claims the fetch of `key` (`size` bytes): `Some(temporary path)` to download it to
    /// when the caller should fetch it, `None` when it is cached, already being fetched,
    /// or larger than the whole cache. The caller ends with [`finish`](Self::finish) or
    /// [`abort`](Self::abort).
    pub(crate) fn begin(&self, key: &str, size: u64) -> Option<PathBuf> {
        if size > self.limit {
            return None;
        }
        let mut state = self.state.lock();
        if state.files.contains_key(key) || !state.loading.insert(key.to_string()) {
            return None;
        }
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        Some(self.dir.join(format!(".tmp-{n}")))
    }

    /// Takes the file fetched to `tmp` into the cache as `key`, first dropping the least
    /// recently used files until it fits.
    pub(crate) fn finish(&self, key: &str, tmp: &Path, size: u64) {
        let mut state = self.state.lock();
        state.loading.remove(key);
        while state.used.saturating_add(size) > self.limit {
            let mut oldest: Option<(String, u64)> = None;
            for (k, e) in &state.files {
                if oldest.as_ref().is_none_or(|(_, t)| e.last_used < *t) {
                    oldest = Some((k.clone(), e.last_used));
                }
            }
            let Some((victim, _)) = oldest else {
                break;
            };
            self.drop_entry(&mut state, &victim);
        }
        if state.used.saturating_add(size) > self.limit {
            remove_entry_path(tmp);
            return;
        }
        if let Err(e) = std::fs::rename(tmp, self.local_path(key)) {
            tracing::warn!(key, error = %e, "cannot keep a fetched block file in the cache");
            remove_entry_path(tmp);
            return;
        }
        state.tick += 1;
        let tick = state.tick;
        state.used += size;
        state.files.insert(
            key.to_string(),
            Entry {
                bytes: size,
                last_used: tick,
            },
        );
    }

    /// Counts one range request of `bytes` made instead of a cached read.
    pub(crate) fn note_range(&self, bytes: u64) {
        self.range_requests.fetch_add(1, Ordering::Relaxed);
        self.range_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Gives up the fetch of `key` claimed by [`begin`](Self::begin).
    pub(crate) fn abort(&self, key: &str, tmp: &Path) {
        self.state.lock().loading.remove(key);
        remove_entry_path(tmp);
    }

    /// Drops `key` from the cache (its block was deleted).
    pub(crate) fn remove(&self, key: &str) {
        let mut state = self.state.lock();
        self.drop_entry(&mut state, key);
    }

    fn drop_entry(&self, state: &mut State, key: &str) {
        if let Some(e) = state.files.remove(key) {
            state.used = state.used.saturating_sub(e.bytes);
            remove_entry_path(&self.local_path(key));
        }
    }

    /// The cache's figures now.
    pub(crate) fn stats(&self) -> ObjectCacheStats {
        let state = self.state.lock();
        ObjectCacheStats {
            bytes: state.used,
            limit_bytes: self.limit,
            files: state.files.len() as u64,
            loading: state.loading.len() as u64,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            range_requests: self.range_requests.load(Ordering::Relaxed),
            range_bytes: self.range_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Removes a cache entry's file or directory (a sealed log day is cached whole as one
/// directory); what is already gone is fine.
fn remove_entry_path(path: &Path) {
    if std::fs::remove_file(path).is_err() {
        let _ = std::fs::remove_dir_all(path);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fetch(cache: &FileCache, key: &str, size: usize) {
        let tmp = cache.begin(key, size as u64).unwrap();
        std::fs::write(&tmp, vec![7u8; size]).unwrap();
        cache.finish(key, &tmp, size as u64);
    }

    #[test]
    fn least_recently_used_files_leave_first_and_the_bound_holds() {
        let root = tempfile::tempdir().unwrap();
        let cache = FileCache::open(&root.path().join("c"), 250).unwrap();
        fetch(&cache, "b/1", 100);
        fetch(&cache, "b/2", 100);
        assert!(cache.get("b/1").is_some(), "b/1 is now the most recently used");
        fetch(&cache, "b/3", 100);
        let s = cache.stats();
        assert_eq!((s.files, s.bytes, s.loading), (2, 200, 0));
        assert!(
            cache.get("b/2").is_none(),
            "the least recently used file was dropped"
        );
        assert!(cache.get("b/1").is_some());
        assert!(cache.get("b/3").is_some());
        let on_disk: u64 = std::fs::read_dir(root.path().join("c"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(on_disk, 200);
        assert!(
            cache.begin("b/4", 251).is_none(),
            "a file larger than the cache is not fetched"
        );
        assert!(
            cache.begin("b/1", 100).is_none(),
            "a cached file is not fetched again"
        );
        let tmp = cache.begin("b/5", 10).unwrap();
        assert!(cache.begin("b/5", 10).is_none(), "one fetch per file at a time");
        cache.abort("b/5", &tmp);
        cache.remove("b/1");
        assert_eq!(cache.stats().bytes, 100);
    }
}
