//! The log store: records go to their own WAL (`<data_dir>/wal/logs`) and into one
//! Tantivy index per UTC day (`<data_dir>/logs/<yyyy-mm-dd>/`).
//!
//! An append adds the documents to the day's index writer and its record to the WAL, and
//! returns once the WAL record is durable (per the fsync mode). Every `commit_interval`
//! the store rotates the WAL, commits every day written since the last commit with the
//! new segment number as the commit payload, reloads the readers and deletes the WAL
//! segments below that number. At open, records of segments at or above a day's payload
//! are indexed again, so what the WAL covers is never lost and never indexed twice.
//! A batch the WAL refuses is taken back out of its day indexes before any commit, so it
//! is never searchable and the client's retry stores exactly one copy.

mod ack;
mod day;
mod error;
mod query;
mod record;
mod schema;
mod search;

pub use error::LogError;
pub use query::{Cursor, HistogramBucket, LogPage, LogQuery};
pub use record::{day_of, day_start, severity_name, LogRecord};

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::storage::wal::{read_log, Wal, WalConfig};
use crate::storage::{AppendError, FsyncMode};
use day::DayIndex;
use schema::Fields;

/// Options of the log store; defaults in `docs/configuration.md`.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Root of the data directory (`wal/logs` and `logs/` below it).
    pub data_dir: PathBuf,
    /// When appends are acknowledged relative to the WAL fsync.
    pub fsync: FsyncMode,
    /// Period of the background fsync in [`FsyncMode::Interval`].
    pub fsync_interval: Duration,
    /// Size at which a WAL segment is closed.
    pub wal_segment_bytes: u64,
    /// Day indexes whose day ended more than this many days ago are deleted (0 = keep).
    pub retention_days: u32,
    /// Past this many bytes of indexes the oldest days are deleted (0 = no limit); the
    /// newest day is never deleted.
    pub retention_bytes: u64,
    /// Indexing memory budget of each day's writer (at least 15 MB, Tantivy's minimum).
    pub writer_memory_bytes: usize,
    /// Most bytes of log batches (their encoded WAL size) accepted but not yet indexed and
    /// durable; a batch beyond it is refused with [`AppendError::Backlog`] (HTTP 429) rather
    /// than held in memory while Tantivy's indexing queue is full. One batch is always
    /// admitted when nothing is waiting, however large.
    pub max_pending_bytes: u64,
}

impl LogOptions {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> LogOptions {
        LogOptions {
            data_dir: data_dir.into(),
            fsync: FsyncMode::Batch,
            fsync_interval: Duration::from_secs(1),
            wal_segment_bytes: 64 * 1024 * 1024,
            retention_days: 7,
            retention_bytes: 0,
            writer_memory_bytes: 64 * 1024 * 1024,
            max_pending_bytes: 256 * 1024 * 1024,
        }
    }
}

/// The day indexes' Tantivy schema and the document of a record in it, for tools that
/// compare the store with bare Tantivy on the same documents (the log benchmark).
pub struct LogSchema(Fields);

impl LogSchema {
    /// The schema of every day index.
    pub fn new() -> LogSchema {
        LogSchema(Fields::new())
    }

    /// The Tantivy schema.
    pub fn schema(&self) -> tantivy::schema::Schema {
        self.0.schema.clone()
    }

    /// The document the store indexes for `record` (with ingest sequence number `seq`).
    pub fn document(&self, record: &LogRecord, seq: u64) -> tantivy::TantivyDocument {
        self.0.document(record, seq)
    }
}

/// Indexes `records` with bare Tantivy into a new index in `dir`: the store's schema and
/// documents, one writer with `memory` bytes, one commit. The benchmarks' baseline.
pub fn index_bare(dir: &Path, records: &[LogRecord], memory: usize) -> Result<(), LogError> {
    let fields = Fields::new();
    let err = |source| LogError::Tantivy {
        path: dir.to_path_buf(),
        source,
    };
    let index = tantivy::Index::create_in_dir(dir, fields.schema.clone()).map_err(err)?;
    let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, memory).map_err(err)?;
    for (i, r) in records.iter().enumerate() {
        writer.add_document(fields.document(r, i as u64)).map_err(err)?;
    }
    writer.commit().map_err(err)?;
    writer.wait_merging_threads().map_err(err)
}

impl Default for LogSchema {
    fn default() -> Self {
        LogSchema::new()
    }
}

/// Figures for self-monitoring.
#[derive(Debug, Clone, Default)]
pub struct LogStats {
    /// Day indexes on disk.
    pub days: u64,
    /// Bytes of all indexes.
    pub bytes: u64,
    /// Committed (searchable) records.
    pub committed_records: u64,
    /// Records indexed again from the WAL at open.
    pub wal_replayed_records: u64,
    /// Segments whose torn tail was cut at open.
    pub wal_torn_tail_repairs: u64,
    /// Day indexes deleted by retention since open.
    pub retention_deleted_days: u64,
}

/// The log store.
pub struct LogStore {
    options: LogOptions,
    dir: PathBuf,
    fields: Fields,
    wal: Wal,
    days: RwLock<BTreeMap<String, Arc<DayIndex>>>,
    /// Appends hold it shared while they index and log a batch and until the WAL answers;
    /// a commit holds it alone while it rotates the WAL and commits, so no record is
    /// half-way at that point and no refused batch is still in an index.
    gate: tokio::sync::RwLock<()>,
    /// Appends abandoned before the WAL answered them.
    orphans: ack::Orphans,
    commit_lock: Mutex<()>,
    next_seq: AtomicU64,
    /// Every record with a lower sequence number is committed.
    committed_seq: AtomicU64,
    closed: AtomicBool,
    /// Bytes of batches inside [`LogStore::append`] (indexing or waiting for the WAL).
    pending_bytes: AtomicU64,
    replayed: u64,
    torn: u64,
    retention_deleted: AtomicU64,
}

/// Releases a batch's bytes from the pending count when its append ends, however it ends.
struct PendingGuard<'a> {
    counter: &'a AtomicU64,
    bytes: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

impl LogStore {
    /// Opens (creating if needed) the store: opens every day index, indexes again the WAL
    /// records not covered by a commit, and starts the WAL writer on a fresh segment.
    pub fn open(options: LogOptions) -> Result<LogStore, LogError> {
        let wal_dir = options.data_dir.join("wal").join("logs");
        let dir = options.data_dir.join("logs");
        for d in [&wal_dir, &dir] {
            std::fs::create_dir_all(d).map_err(|source| LogError::Io {
                path: d.clone(),
                source,
            })?;
        }
        let fields = Fields::new();
        let mut days = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(|source| LogError::Io {
            path: dir.clone(),
            source,
        })? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(".del-") {
                let _ = std::fs::remove_dir_all(entry.path());
                continue;
            }
            if day_start(&name).is_none() || !entry.path().is_dir() {
                continue;
            }
            let index = DayIndex::open(&entry.path(), &name, &fields)?;
            days.insert(name, Arc::new(index));
        }
        let store_days = RwLock::new(days);
        let log = read_log(&wal_dir).map_err(|source| LogError::Io {
            path: wal_dir.clone(),
            source,
        })?;
        let config = WalConfig::new(options.fsync, options.fsync_interval, options.wal_segment_bytes);
        let wal = Wal::start(&wal_dir, log.last_segment + 1, config).map_err(|source| LogError::Io {
            path: wal_dir.clone(),
            source,
        })?;
        let first_seq = u64::try_from(didban_base::now_nanos()).unwrap_or(0);
        let mut store = LogStore {
            options,
            dir,
            fields,
            wal,
            days: store_days,
            gate: tokio::sync::RwLock::new(()),
            orphans: ack::Orphans::default(),
            commit_lock: Mutex::new(()),
            next_seq: AtomicU64::new(first_seq),
            committed_seq: AtomicU64::new(first_seq),
            closed: AtomicBool::new(false),
            pending_bytes: AtomicU64::new(0),
            replayed: 0,
            torn: log.torn_repairs,
            retention_deleted: AtomicU64::new(0),
        };
        let mut replayed = 0;
        for (n, payloads) in log.segments {
            for payload in payloads {
                let records = match record::decode_record(&payload) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(segment = n, error = %e, "skipping undecodable log WAL record");
                        continue;
                    }
                };
                let mut added = Vec::new();
                store.index_records(&records, Some(n), &mut added)?;
                replayed += added.iter().map(|a| a.seqs.len() as u64).sum::<u64>();
            }
        }
        store.replayed = replayed;
        Ok(store)
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &LogOptions {
        &self.options
    }

    fn day_index(&self, day: &str) -> Result<Arc<DayIndex>, LogError> {
        if let Some(d) = self.days.read().get(day) {
            return Ok(d.clone());
        }
        let mut days = self.days.write();
        if let Some(d) = days.get(day) {
            return Ok(d.clone());
        }
        let index = Arc::new(DayIndex::open(&self.dir.join(day), day, &self.fields)?);
        days.insert(day.to_string(), index.clone());
        Ok(index)
    }

    /// Adds records to their day indexes; with `segment` (replay), records already covered
    /// by a day's last commit are skipped. Notes in `added` what was added (also what may
    /// have been, when it fails half-way), so it can be taken back.
    fn index_records(
        &self,
        records: &[LogRecord],
        segment: Option<u64>,
        added: &mut Vec<ack::Added>,
    ) -> Result<(), LogError> {
        let mut by_day: BTreeMap<String, Vec<&LogRecord>> = BTreeMap::new();
        for r in records {
            by_day.entry(day_of(r.timestamp_unix_nano)).or_default().push(r);
        }
        for (day, list) in by_day {
            let index = self.day_index(&day)?;
            if let Some(n) = segment {
                if n < index.committed_through.load(Ordering::SeqCst) {
                    continue;
                }
            }
            let mut docs = Vec::with_capacity(list.len());
            let mut seqs = Vec::with_capacity(list.len());
            for r in list {
                let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
                docs.push(self.fields.document(r, seq));
                seqs.push(seq);
            }
            added.push(ack::Added {
                day: index.clone(),
                seqs,
            });
            index.add(docs, self.options.writer_memory_bytes)?;
        }
        Ok(())
    }

    /// Stores a batch: indexed (searchable after the next commit) and logged as one WAL
    /// record; returns once that record is durable per the fsync mode. When the WAL
    /// refuses the record ([`AppendError::Wal`]) the batch is taken back out of the
    /// indexes before the next commit, so it never becomes searchable.
    pub async fn append(&self, records: Vec<LogRecord>) -> Result<usize, AppendError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AppendError::Closed);
        }
        if records.is_empty() {
            return Ok(0);
        }
        let n = records.len();
        let payload = record::encode_record(&records);
        let _pending = self.admit(payload.len() as u64)?;
        // Held until the WAL's answer is applied (see `ack::await_ack`).
        let shared = self.gate.read().await;
        self.orphans.settle_ready(self.fields.seq);
        let mut added = Vec::new();
        // Indexing is CPU work that may wait for Tantivy's indexing queue: off the async
        // workers where the runtime allows it.
        let indexed = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.index_records(&records, None, &mut added))
            }
            _ => self.index_records(&records, None, &mut added),
        };
        if let Err(e) = indexed {
            ack::take_back(&added, self.fields.seq);
            return Err(AppendError::Wal(io::Error::other(e.to_string())));
        }
        let ack = match self.wal.submit(payload) {
            Ok(ack) => ack,
            Err(_) => {
                ack::take_back(&added, self.fields.seq);
                return Err(AppendError::Closed);
            }
        };
        ack::await_ack(shared, &self.orphans, self.fields.seq, added, ack)
            .await
            .map(|()| n)
    }

    /// Makes the next `times` WAL I/O steps of kind `op` fail as a full disk (or, for
    /// segment creation, a lack of file descriptors) would: for tests of fault handling.
    #[doc(hidden)]
    pub fn inject_wal_fault(&self, op: crate::WalFaultOp, times: u32) {
        self.wal.inject_fault(op, times);
    }

    /// Counts `bytes` as pending for the life of the returned guard, or refuses them when
    /// the backlog would pass `max_pending_bytes` (a lone batch is always admitted).
    fn admit(&self, bytes: u64) -> Result<PendingGuard<'_>, AppendError> {
        let limit = self.options.max_pending_bytes;
        let before = self.pending_bytes.fetch_add(bytes, Ordering::SeqCst);
        if before > 0 && before.saturating_add(bytes) > limit {
            self.pending_bytes.fetch_sub(bytes, Ordering::SeqCst);
            return Err(AppendError::Backlog { used: before, limit });
        }
        Ok(PendingGuard {
            counter: &self.pending_bytes,
            bytes,
        })
    }

    /// Bytes of log batches accepted but not yet indexed and durable.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes.load(Ordering::SeqCst)
    }

    /// Makes everything appended so far searchable and truncates the WAL behind it. Call
    /// from a blocking thread (the server does so every `commit_interval`).
    pub fn commit(&self) -> Result<(), LogError> {
        let _one = self.commit_lock.lock();
        let (keep_from, seq, in_flight) = {
            let _alone = self.gate.blocking_write();
            let rx = self
                .wal
                .rotate(record::encode_record(&[]))
                .map_err(|_| self.wal_error("log WAL is closed"))?;
            let keep_from = rx
                .recv()
                .map_err(|_| self.wal_error("log WAL writer stopped during rotation"))?
                .map_err(|source| LogError::Io {
                    path: self.wal_dir(),
                    source,
                })?;
            // Every append before the rotation has its answer now: abandoned ones the WAL
            // refused leave the indexes before the commit.
            self.orphans.settle_ready(self.fields.seq);
            let seq = self.next_seq.load(Ordering::SeqCst);
            let days: Vec<Arc<DayIndex>> = self.days.read().values().cloned().collect();
            let mut in_flight = Vec::new();
            for d in days {
                if let Some(c) = d.begin_commit(keep_from)? {
                    in_flight.push((d, c));
                }
            }
            (keep_from, seq, in_flight)
        };
        // Appends go on while the commits are written (segment files and meta.json fsynced):
        // what they add is in the next commit, and the WAL keeps it until then.
        for (d, c) in in_flight {
            d.finish_commit(c)?;
        }
        self.committed_seq.store(seq, Ordering::SeqCst);
        self.wal.delete_before(keep_from).map_err(|source| LogError::Io {
            path: self.wal_dir(),
            source,
        })?;
        Ok(())
    }

    fn wal_dir(&self) -> PathBuf {
        self.options.data_dir.join("wal").join("logs")
    }

    fn wal_error(&self, message: &str) -> LogError {
        LogError::Io {
            path: self.wal_dir(),
            source: io::Error::other(message.to_string()),
        }
    }

    /// Applies retention by days and by size, pausing appends while days are deleted.
    /// Call from a blocking thread.
    pub fn maintain(&self, now_unix_nano: i64) {
        let day_nanos: i64 = 86_400 * 1_000_000_000;
        let mut doomed: Vec<String> = Vec::new();
        let days: Vec<Arc<DayIndex>> = self.days.read().values().cloned().collect();
        if self.options.retention_days > 0 {
            let keep = i64::from(self.options.retention_days).saturating_mul(day_nanos);
            for d in &days {
                let Some(start) = day_start(&d.day) else { continue };
                if start.saturating_add(day_nanos) <= now_unix_nano.saturating_sub(keep) {
                    doomed.push(d.day.clone());
                }
            }
        }
        if self.options.retention_bytes > 0 {
            let mut sizes: Vec<(String, u64)> = Vec::new();
            let mut total = 0;
            for d in &days {
                if doomed.contains(&d.day) {
                    continue;
                }
                let b = d.bytes();
                total += b;
                sizes.push((d.day.clone(), b));
            }
            // Oldest first (day names sort by date); never the newest day.
            let newest = sizes.last().map(|(d, _)| d.clone());
            for (day, b) in sizes {
                if total <= self.options.retention_bytes || Some(&day) == newest.as_ref() {
                    break;
                }
                total = total.saturating_sub(b);
                doomed.push(day);
            }
        }
        if doomed.is_empty() {
            return;
        }
        // No commit is waiting on a day and no append is half-way into one while it is deleted.
        let _one = self.commit_lock.lock();
        let _alone = self.gate.blocking_write();
        for day in doomed {
            self.delete_day(&day);
        }
    }

    fn delete_day(&self, day: &str) {
        let Some(index) = self.days.write().remove(day) else {
            return;
        };
        index.close();
        let doomed = self.dir.join(format!(".del-{day}"));
        let result = std::fs::rename(&index.dir, &doomed).and_then(|_| std::fs::remove_dir_all(&doomed));
        match result {
            Ok(()) => {
                tracing::info!(day, "log retention deleted a day index");
                self.retention_deleted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(day, error = %e, "could not delete log day index"),
        }
    }

    /// How this store's WAL is doing: the fault that makes it refuse appends right now
    /// (see [`crate::Db::wal_fault`]) and its failure counts.
    pub fn wal_health(&self) -> crate::WalHealth {
        self.wal.health()
    }

    /// Stops appends, fsyncs and closes the WAL, and stops the index writers. What was not
    /// committed stays in the WAL and is indexed again at the next open.
    pub async fn close(&self) -> io::Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        let result = self.wal.close().await;
        let days: Vec<Arc<DayIndex>> = self.days.read().values().cloned().collect();
        for d in days {
            d.close();
        }
        result
    }

    /// Figures for self-monitoring.
    pub fn stats(&self) -> LogStats {
        let mut s = LogStats {
            wal_replayed_records: self.replayed,
            wal_torn_tail_repairs: self.torn,
            retention_deleted_days: self.retention_deleted.load(Ordering::Relaxed),
            ..LogStats::default()
        };
        for d in self.days.read().values() {
            s.days += 1;
            s.bytes += d.bytes();
            s.committed_records += d.reader.searcher().num_docs();
        }
        s
    }

    /// The directory holding the day indexes.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests;
