//! Sealed log days on object storage (`object_store = "s3"`).
//!
//! A day index is sealed once its day ended more than `seal_after` ago (an option of the
//! store, `[logs] seal_after`): under the append gate it is committed, the WAL
//! truncated behind the commit, the index taken out of the writable days and its
//! directory renamed to `<data_dir>/logs/sealed/<day>-<id>` (the staging area). Outside the
//! gate its segments are merged into one, its files uploaded to `logs/days/<day>-<id>/`
//! (Tantivy's `meta.json` last, so a listing never finds half an index), recorded in the
//! metastore (signal `logs`) when there is one, and the directory moved into the local
//! cache as one entry. A record for a sealed day that arrives later goes into a new index
//! of that day in the data directory, sealed in turn at the next maintenance round: a day
//! may have several sealed indexes (also one per process sharing the bucket), and searches
//! read them all. Each sealed index carries the ingest-log marks of its seal
//! (`ingest.json`, see `marks`), read back once per index when a consumer asks.
//!
//! Queries open a sealed day by fetching all its files into one directory of the cache on
//! first use and opening it with Tantivy's `MmapDirectory`; the cache's LRU bound evicts
//! whole days. Range reads through a Tantivy `Directory` of our own would fetch less for
//! one query, but Tantivy reads whole fast-field columns and term dictionaries for most
//! queries of the UI (histograms, top values, time-sorted pages), so a day is soon read
//! nearly whole anyway, and a sealed index merged into one segment is a few files, so the
//! whole fetch is a few large GETs.

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::day::DayIndex;
use super::error::LogError;
use super::marks::{SealPositions, INGEST_FILE};
use super::record::day_start;
use super::schema::Fields;
use super::scope::Scope;
use crate::storage::block_dir::new_block_id;
use crate::storage::metastore::{gc, BlockRow, Metastore, MetastoreConfig};
use crate::storage::object::{FileSizes, Remote};
use crate::storage::{BlockError, ObjectCacheStats, S3Config};

const DAY_MS: i64 = 86_400_000;

/// One sealed index of a day.
pub(crate) struct SealedDay {
    /// `yyyy-mm-dd`.
    pub day: String,
    /// `<day>-<id>`, its prefix in the bucket.
    pub name: String,
    /// Bytes of its files (kept apart from `state`, whose lock a fetch holds).
    bytes: AtomicU64,
    /// An upload under this name was tried (in this process, or before a restart) and
    /// may have left objects without a row.
    tried: AtomicBool,
    state: Mutex<State>,
    /// Its `ingest.json`, once read (`None`: it has none, sealed by an older version).
    marks: OnceLock<Option<SealPositions>>,
}

enum State {
    /// Committed and renamed into the staging area, not uploaded yet: searched in place.
    Staged(Arc<DayIndex>),
    /// In the bucket; the index opened from the cache's copy while it is there.
    Remote {
        files: FileSizes,
        opened: Option<Arc<DayIndex>>,
    },
}

impl SealedDay {
    fn remote(name: String, files: FileSizes) -> Option<SealedDay> {
        let day = name.get(..10)?.to_string();
        day_start(&day)?;
        Some(SealedDay {
            day,
            name,
            bytes: AtomicU64::new(files.values().sum()),
            tried: AtomicBool::new(false),
            state: Mutex::new(State::Remote { files, opened: None }),
            marks: OnceLock::new(),
        })
    }

    fn staged(day: &str, name: String, index: DayIndex, tried: bool) -> SealedDay {
        SealedDay {
            day: day.to_string(),
            name,
            bytes: AtomicU64::new(index.bytes()),
            tried: AtomicBool::new(tried),
            state: Mutex::new(State::Staged(Arc::new(index))),
            marks: OnceLock::new(),
        }
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// The sealed days of the store and the bucket they live in.
pub(crate) struct SealedDays {
    remote: Arc<Remote>,
    metastore: Option<Metastore>,
    gc_grace: Duration,
    gc_schedule: gc::GcSchedule,
    /// `<data_dir>/logs/sealed`: days sealed but not uploaded yet.
    staging: PathBuf,
    /// Sorted by name (so by day).
    list: RwLock<Vec<Arc<SealedDay>>>,
    /// When the last refresh from the metastore started; held while one runs.
    listed_at: Mutex<Option<Instant>>,
}

fn block_err(e: BlockError) -> LogError {
    let path = PathBuf::from("logs/days");
    LogError::Io {
        path,
        source: std::io::Error::other(e.to_string()),
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl SealedDays {
    /// Connects to the bucket (and the metastore), lists the sealed days (the metastore's
    /// rows, else the bucket) and takes back the days a crash left staged in `staging`.
    pub(crate) fn open(
        config: &S3Config,
        metastore_config: Option<&MetastoreConfig>,
        data_dir: &Path,
        staging: &Path,
        fields: &Fields,
    ) -> Result<SealedDays, LogError> {
        let cache_dir = data_dir.join("cache").join("logs");
        let remote = Remote::open(config, "logs/days", &cache_dir).map_err(block_err)?;
        let metastore = metastore_config
            .map(|m| Metastore::open(m, "logs"))
            .transpose()
            .map_err(block_err)?;
        let listed: Vec<(String, FileSizes)> = match &metastore {
            Some(m) => m
                .list()
                .map_err(block_err)?
                .into_iter()
                .map(|r| (r.name, r.files))
                .collect(),
            None => remote.list().map_err(block_err)?,
        };
        let mut list: Vec<Arc<SealedDay>> = listed
            .into_iter()
            .filter_map(|(name, files)| SealedDay::remote(name, files))
            .map(Arc::new)
            .collect();
        std::fs::create_dir_all(staging).map_err(io_err(staging))?;
        for entry in std::fs::read_dir(staging).map_err(io_err(staging))? {
            let path = entry.map_err(io_err(staging))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            let Some(day) = name
                .get(..10)
                .filter(|d| day_start(d).is_some())
                .map(str::to_string)
            else {
                continue;
            };
            list.retain(|s| s.name != name);
            let index = DayIndex::open(&path, &day, fields)?;
            // Found at open: an upload may have been tried before the restart.
            list.push(Arc::new(SealedDay::staged(&day, name, index, true)));
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(SealedDays {
            remote,
            gc_grace: metastore_config.map(|m| m.gc_grace).unwrap_or_default(),
            metastore,
            gc_schedule: gc::GcSchedule::default(),
            staging: staging.to_path_buf(),
            list: RwLock::new(list),
            listed_at: Mutex::new(None),
        })
    }

    /// Takes the writable day `index` (committed, its writer closed, the WAL truncated
    /// behind its commit) out of the data directory into the staging area as a sealed
    /// index. Call under the append gate: a record for its day arriving afterwards opens a
    /// new index of the day.
    pub(crate) fn stage(&self, index: &DayIndex, fields: &Fields) -> Result<(), LogError> {
        index.close();
        let name = format!("{}-{}", index.day, new_block_id());
        let staged = self.staging.join(&name);
        std::fs::rename(&index.dir, &staged).map_err(io_err(&index.dir))?;
        let reopened = DayIndex::open(&staged, &index.day, fields)?;
        let mut list = self.list.write();
        list.push(Arc::new(SealedDay::staged(&index.day, name, reopened, false)));
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(())
    }

    /// Merges, uploads and records every staged day, moving each into the cache once it
    /// is in the bucket. A day that fails stays staged (searched in place) and is tried
    /// again next round — under a new name unless its row turns out to exist (an insert
    /// whose answer was lost): the objects a failed try left have no row, and the
    /// compactor's garbage collection deletes such objects once they are older than the
    /// grace period, which must not race with a retry writing the same names. Returns the
    /// first error.
    pub(crate) fn upload_staged(&self, memory: usize, fields: &Fields) -> Result<(), LogError> {
        let days: Vec<Arc<SealedDay>> = self.list.read().clone();
        let mut first_err = None;
        for mut sealed in days {
            let mut staged = match &*sealed.state.lock() {
                State::Staged(index) => index.clone(),
                State::Remote { .. } => continue,
            };
            let attempt = match self.fresh_name_if_tried(&sealed, &staged, fields) {
                Ok(Some(renamed)) => {
                    if let State::Staged(index) = &*renamed.state.lock() {
                        staged = index.clone();
                    }
                    sealed = renamed;
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
            .and_then(|()| self.upload(&sealed, &staged, memory));
            match attempt {
                Ok(files) => {
                    sealed.bytes.store(files.values().sum(), Ordering::Relaxed);
                    *sealed.state.lock() = State::Remote { files, opened: None };
                    tracing::info!(day = %sealed.name, "sealed log day uploaded");
                }
                Err(e) => {
                    sealed.tried.store(true, Ordering::Relaxed);
                    tracing::warn!(day = %sealed.name, error = %e, "sealed log day not uploaded yet");
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// For a staged day tried before whose row does not exist: renames it to
    /// `<day>-<new id>` (directory and list entry) and returns the new entry.
    fn fresh_name_if_tried(
        &self,
        sealed: &Arc<SealedDay>,
        staged: &DayIndex,
        fields: &Fields,
    ) -> Result<Option<Arc<SealedDay>>, LogError> {
        // Without a metastore there is no garbage collection to race: a retry overwrites
        // what a failed try left under the same name.
        if self.metastore.is_none() || !sealed.tried.load(Ordering::Relaxed) || self.recorded(&sealed.name)? {
            return Ok(None);
        }
        let name = format!("{}-{}", sealed.day, new_block_id());
        let path = self.staging.join(&name);
        std::fs::rename(&staged.dir, &path).map_err(io_err(&staged.dir))?;
        let renamed = Arc::new(SealedDay::staged(
            &sealed.day,
            name,
            DayIndex::open(&path, &sealed.day, fields)?,
            false,
        ));
        let mut list = self.list.write();
        list.retain(|s| !Arc::ptr_eq(s, sealed));
        list.push(renamed.clone());
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(renamed))
    }

    /// Whether the metastore has a row named `name` (always false without one).
    fn recorded(&self, name: &str) -> Result<bool, LogError> {
        match &self.metastore {
            Some(m) => Ok(m.list().map_err(block_err)?.iter().any(|r| r.name == name)),
            None => Ok(false),
        }
    }

    fn upload(&self, sealed: &SealedDay, staged: &DayIndex, memory: usize) -> Result<FileSizes, LogError> {
        staged.merge_all(memory)?;
        let docs = staged.docs();
        let (name, files) = self.remote.upload(&staged.dir).map_err(block_err)?;
        let bytes: u64 = files.values().sum();
        // A retry after an insert whose answer was lost finds its row already there.
        let recorded = self.recorded(&name)?;
        if let (Some(m), false) = (&self.metastore, recorded) {
            let day_ms = day_start(&sealed.day).unwrap_or(0).div_euclid(1_000_000);
            let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            m.publish(BlockRow {
                name: name.clone(),
                min_time_ms: day_ms,
                max_time_ms: day_ms + DAY_MS - 1,
                level: 1,
                series: 0,
                samples: signed(docs),
                histogram_samples: 0,
                bytes: signed(bytes),
                files: files.clone(),
            })
            .map_err(block_err)?;
        }
        self.remote.cache_dir(&name, &staged.dir, bytes);
        Ok(files)
    }

    /// The sealed indexes of days overlapping `[start, end]` (nanoseconds), opened for a
    /// search: staged ones in place, the others from the cache, fetched whole into it
    /// first when not there. [`Scope::Unpublished`]: the staged ones only.
    pub(crate) fn for_search(
        &self,
        start: i64,
        end: i64,
        fields: &Fields,
        scope: Scope,
    ) -> Result<Vec<Arc<DayIndex>>, LogError> {
        let day_nanos = DAY_MS * 1_000_000;
        let days: Vec<Arc<SealedDay>> = self
            .list
            .read()
            .iter()
            .filter(|s| day_start(&s.day).is_some_and(|d| d <= end && d.saturating_add(day_nanos) > start))
            .filter(|s| scope == Scope::All || matches!(&*s.state.lock(), State::Staged(_)))
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(days.len());
        for sealed in days {
            out.push(self.open_day(&sealed, fields)?);
        }
        Ok(out)
    }

    fn open_day(&self, sealed: &SealedDay, fields: &Fields) -> Result<Arc<DayIndex>, LogError> {
        let mut state = sealed.state.lock();
        let (files, opened) = match &mut *state {
            State::Staged(index) => return Ok(index.clone()),
            State::Remote { files, opened } => (files, opened),
        };
        let path = match self.remote.cached_dir(&sealed.name) {
            Some(path) => path,
            None => {
                // Evicted (or never fetched): a search holding the old copy keeps its
                // mapped files; this one fetches the day again.
                *opened = None;
                self.remote
                    .fetch_dir(&sealed.name, files)
                    .map_err(block_err)?
                    .ok_or_else(|| {
                        let bytes: u64 = files.values().sum();
                        LogError::Io {
                            path: PathBuf::from(self.remote.block_url(&sealed.name)),
                            source: std::io::Error::other(format!(
                                "the sealed log day ({bytes} bytes) does not fit in the object cache \
                             (storage.s3.cache_size, {} bytes)",
                                self.remote.cache_stats().limit_bytes
                            )),
                        }
                    })?
            }
        };
        if let Some(index) = opened.as_ref().filter(|i| i.dir == path) {
            return Ok(index.clone());
        }
        let index = Arc::new(DayIndex::open(&path, &sealed.day, fields)?);
        *opened = Some(index.clone());
        Ok(index)
    }

    /// Whether this process applies retention to sealed days and collects garbage:
    /// always without a metastore, else while it holds the `compactor-logs` lease.
    pub(crate) fn may_compact(&self) -> bool {
        self.metastore.as_ref().is_none_or(|m| m.is_compactor())
    }

    /// Deletes the sealed days `doomed` accepts (by day name): with a metastore their rows
    /// are retired in one transaction under the lease (the objects go with the garbage
    /// collection after the grace period), else their objects are deleted now. Staged
    /// days are removed from the staging area. Returns how many went.
    pub(crate) fn apply_retention(&self, doomed: impl Fn(&str) -> bool) -> Result<u64, LogError> {
        if !self.may_compact() {
            return Ok(0);
        }
        let victims: Vec<Arc<SealedDay>> = self
            .list
            .read()
            .iter()
            .filter(|s| doomed(&s.day))
            .cloned()
            .collect();
        if victims.is_empty() {
            return Ok(0);
        }
        if let Some(m) = &self.metastore {
            let names = victims
                .iter()
                .filter(|s| matches!(&*s.state.lock(), State::Remote { .. }))
                .map(|s| s.name.clone())
                .collect::<Vec<_>>();
            if !names.is_empty() {
                m.replace(None, names).map_err(block_err)?;
            }
        }
        for s in &victims {
            match &*s.state.lock() {
                State::Staged(index) => {
                    let _ = std::fs::remove_dir_all(&index.dir);
                }
                State::Remote { files, .. } => {
                    if self.metastore.is_some() {
                        self.remote.forget_dir(&s.name);
                    } else {
                        self.remote.delete_block(&s.name, files).map_err(block_err)?;
                    }
                }
            }
            tracing::info!(day = %s.name, "log retention deleted a sealed day");
        }
        let gone: HashSet<&str> = victims.iter().map(|s| s.name.as_str()).collect();
        self.list.write().retain(|s| !gone.contains(s.name.as_str()));
        Ok(victims.len() as u64)
    }

    /// With a metastore: adds the days other processes sealed and drops the days no longer
    /// live (retired by the compactor).
    pub(crate) fn refresh(&self) -> Result<(), LogError> {
        let mut listed_at = self.listed_at.lock();
        self.refresh_locked(&mut listed_at)
    }

    /// [`refresh`](Self::refresh) unless one that started after `since` already ran.
    pub(crate) fn refresh_if_listed_before(&self, since: Instant) -> Result<(), LogError> {
        let mut listed_at = self.listed_at.lock();
        if listed_at.is_some_and(|t| t >= since) {
            return Ok(());
        }
        self.refresh_locked(&mut listed_at)
    }

    fn refresh_locked(&self, listed_at: &mut Option<Instant>) -> Result<(), LogError> {
        let Some(m) = &self.metastore else {
            return Ok(());
        };
        let started = Instant::now();
        let rows = m.list().map_err(block_err)?;
        let live: HashSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let mut list = self.list.write();
        list.retain(|s| {
            let keep = live.contains(s.name.as_str()) || matches!(&*s.state.lock(), State::Staged(_));
            if !keep {
                self.remote.forget_dir(&s.name);
            }
            keep
        });
        let have: HashSet<String> = list.iter().map(|s| s.name.clone()).collect();
        for row in &rows {
            if !have.contains(&row.name) {
                if let Some(s) = SealedDay::remote(row.name.clone(), row.files.clone()) {
                    list.push(Arc::new(s));
                }
            }
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        *listed_at = Some(started);
        Ok(())
    }

    /// The compactor's garbage collection of `logs/days/`, at most once per quarter of
    /// the grace period; the number of sealed days deleted.
    pub(crate) fn collect_garbage(&self) -> Result<u64, LogError> {
        match &self.metastore {
            Some(m) => self
                .gc_schedule
                .run(&self.remote, m, self.gc_grace)
                .map_err(block_err),
            None => Ok(0),
        }
    }

    /// The ingest-log marks of every sealed index with a day: staged ones read from
    /// their directory, the others from the cache or the bucket (once per index; an
    /// index without `ingest.json` is left out).
    pub(crate) fn seal_positions(&self) -> Result<Vec<(String, SealPositions)>, LogError> {
        let days: Vec<Arc<SealedDay>> = self.list.read().clone();
        let mut out = Vec::with_capacity(days.len());
        for sealed in days {
            let marks = match sealed.marks.get() {
                Some(marks) => marks.clone(),
                None => {
                    let read = self.read_marks(&sealed)?;
                    sealed.marks.get_or_init(|| read).clone()
                }
            };
            if let Some(marks) = marks {
                out.push((sealed.day.clone(), marks));
            }
        }
        Ok(out)
    }

    fn read_marks(&self, sealed: &SealedDay) -> Result<Option<SealPositions>, LogError> {
        // A staged index may be uploaded (its directory moved into the cache) meanwhile:
        // then its state says where to read on the second pass.
        for _ in 0..2 {
            // Decided under the state lock, read outside it (a GET may take a while).
            let local = match &*sealed.state.lock() {
                State::Staged(index) => Some(index.dir.join(INGEST_FILE)),
                State::Remote { files, .. } if files.contains_key(INGEST_FILE) => None,
                State::Remote { .. } => return Ok(None),
            };
            let bytes = match local {
                Some(path) => match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(LogError::Io { path, source }),
                },
                None => self
                    .remote
                    .read_file(&sealed.name, INGEST_FILE)
                    .map_err(block_err)?,
            };
            return Ok(SealPositions::parse(&bytes));
        }
        Ok(None)
    }

    /// The `first` marks of the staged indexes (sealed, not in the bucket yet).
    pub(crate) fn staged_firsts(&self) -> Vec<BTreeMap<u32, u64>> {
        self.list
            .read()
            .iter()
            .filter_map(|s| match &*s.state.lock() {
                State::Staged(index) => Some(index.first()),
                State::Remote { .. } => None,
            })
            .collect()
    }

    /// Sealed indexes and their bytes.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let list = self.list.read();
        (list.len() as u64, list.iter().map(|s| s.bytes()).sum())
    }

    /// Figures of the local cache of sealed days.
    pub(crate) fn cache_stats(&self) -> ObjectCacheStats {
        self.remote.cache_stats()
    }

    /// Gives the compactor lease up (at shutdown).
    pub(crate) async fn release(&self) {
        if let Some(m) = &self.metastore {
            m.release().await;
        }
    }
}
