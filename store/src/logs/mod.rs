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
//!
//! With an object store, days over for longer than `seal_after` are sealed and uploaded
//! (`sealed`); the data directory then only holds the days still written to.

mod ack;
mod day;
mod error;
mod maintain;
mod marks;
mod published;
mod query;
mod record;
mod schema;
mod scope;
mod sealed;
mod search;

pub use error::LogError;
pub use marks::LogPublished;
pub use query::{Cursor, HistogramBucket, LogPage, LogQuery};
pub use record::{day_of, day_start, severity_name, LogRecord};
pub use schema::{index_bare, LogSchema};

/// A batch of log records as bytes, in the log WAL record's form: what the ingest log
/// carries between the process that accepted the batch and the one that stores it.
pub fn encode_batch(records: &[LogRecord]) -> Vec<u8> {
    record::encode_record(records)
}

/// Decodes what [`encode_batch`] (or the WAL) wrote; the error names what is wrong.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<LogRecord>, String> {
    record::decode_record(bytes)
}

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::storage::wal::{read_log, Wal, WalConfig};
use crate::storage::{AppendError, BlockStorage, FsyncMode, MetastoreConfig, ObjectCacheStats};
use day::DayIndex;
use schema::Fields;
use sealed::SealedDays;

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
    /// Where sealed day indexes go: nowhere (file mode, the default: every day stays in
    /// the data directory) or a bucket, under `logs/days/`.
    pub block_storage: BlockStorage,
    /// The PostgreSQL metastore listing the sealed days (signal `logs`) and electing the
    /// process that applies retention to them; needs a bucket.
    pub metastore: Option<MetastoreConfig>,
    /// With a bucket, a day is sealed (committed, merged, uploaded, no longer written)
    /// once it ended this long ago; a record for it arriving later goes into a new index
    /// of the day, sealed in turn.
    pub seal_after: Duration,
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
            block_storage: BlockStorage::File,
            metastore: None,
            seal_after: Duration::from_secs(2 * 3600),
        }
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
    /// Day indexes deleted by retention since open (sealed ones included).
    pub retention_deleted_days: u64,
    /// Sealed day indexes (staged or in the bucket), with an object store.
    pub sealed_days: u64,
    /// Bytes of the sealed day indexes.
    pub sealed_bytes: u64,
    /// The local cache of sealed days, with an object store.
    pub object_cache: Option<ObjectCacheStats>,
    /// Sealed days the metastore compactor's garbage collection deleted from the bucket.
    pub gc_deleted_days: u64,
}

/// The log store.
pub struct LogStore {
    options: LogOptions,
    dir: PathBuf,
    fields: Fields,
    wal: Wal,
    days: RwLock<BTreeMap<String, Arc<DayIndex>>>,
    /// Sealed days and their bucket, with an object store.
    sealed: Option<SealedDays>,
    gc_deleted: AtomicU64,
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
    /// The highest ingest-log position per partition the WAL replay found.
    replayed_positions: crate::AppliedPositions,
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
        let sealed = match &options.block_storage {
            BlockStorage::File if options.metastore.is_some() => {
                return Err(LogError::Io {
                    path: dir,
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a metastore needs sealed log days in a bucket (object_store = \"s3\")",
                    ),
                });
            }
            BlockStorage::File => None,
            BlockStorage::S3(config) => Some(SealedDays::open(
                config,
                options.metastore.as_ref(),
                &options.data_dir,
                &dir.join("sealed"),
                &fields,
            )?),
        };
        let log = read_log(&wal_dir).map_err(|source| LogError::Io {
            path: wal_dir.clone(),
            source,
        })?;
        let config = WalConfig::new(options.fsync, options.fsync_interval, options.wal_segment_bytes);
        let wal =
            Wal::start(&wal_dir, log.last_segment + 1, config, log.positions.clone()).map_err(|source| {
                LogError::Io {
                    path: wal_dir.clone(),
                    source,
                }
            })?;
        let first_seq = u64::try_from(didban_base::now_nanos()).unwrap_or(0);
        let mut store = LogStore {
            options,
            dir,
            fields,
            wal,
            days: store_days,
            sealed,
            gc_deleted: AtomicU64::new(0),
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
            replayed_positions: log.positions.clone(),
        };
        let mut replayed = 0;
        for (n, payloads) in log.segments {
            for payload in payloads {
                let (records, first) = match record::decode_record_from(&payload) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(segment = n, error = %e, "skipping undecodable log WAL record");
                        continue;
                    }
                };
                let mut added = Vec::new();
                store.index_records(&records, Some(n), first, &mut added)?;
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
    /// by a day's last commit are skipped; with `first` (a batch from the ingest log, its
    /// first message) each day index notes it. Notes in `added` what was added (also what
    /// may have been, when it fails half-way), so it can be taken back.
    fn index_records(
        &self,
        records: &[LogRecord],
        segment: Option<u64>,
        first: Option<crate::LogPosition>,
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
            if let Some(first) = first {
                index.note_first(first.partition, first.seq);
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
        self.append_at(records, None).await
    }

    /// [`LogStore::append`] of a batch taken from one message of the ingest log at
    /// `position`, written in the same WAL record (see [`LogStore::replayed_positions`]).
    pub async fn append_at(
        &self,
        records: Vec<LogRecord>,
        position: Option<crate::LogPosition>,
    ) -> Result<usize, AppendError> {
        let first = position.map(|p| p.seq);
        self.append_from(records, position, first).await
    }

    /// [`LogStore::append_at`] of a batch of the messages from sequence `first_seq` to
    /// `position` of its partition: the day indexes it goes to note where their records
    /// start in the stream (for sealed days' `ingest.json`, see `published`).
    pub async fn append_from(
        &self,
        records: Vec<LogRecord>,
        position: Option<crate::LogPosition>,
        first_seq: Option<u64>,
    ) -> Result<usize, AppendError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AppendError::Closed);
        }
        if records.is_empty() {
            return Ok(0);
        }
        let n = records.len();
        let first = match (position, first_seq) {
            (Some(p), Some(seq)) => Some(crate::LogPosition {
                partition: p.partition,
                seq: seq.min(p.seq),
            }),
            (Some(p), None) => Some(crate::LogPosition {
                partition: p.partition,
                seq: 1,
            }),
            (None, _) => None,
        };
        let record = match first {
            Some(first) => record::encode_record_from(first, &records),
            None => record::encode_record(&records),
        };
        let payload = crate::storage::wal::position::wrap(position, record);
        let _pending = self.admit(payload.len() as u64)?;
        // Held until the WAL's answer is applied (see `ack::await_ack`).
        let shared = self.gate.read().await;
        self.orphans.settle_ready(self.fields.seq);
        let mut added = Vec::new();
        // Indexing is CPU work that may wait for Tantivy's indexing queue: off the async
        // workers where the runtime allows it.
        let indexed = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.index_records(&records, None, first, &mut added))
            }
            _ => self.index_records(&records, None, first, &mut added),
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

    /// The highest ingest-log position per partition whose batch the WAL held at open: a
    /// consumer of the log starts past these.
    pub fn replayed_positions(&self) -> &crate::AppliedPositions {
        &self.replayed_positions
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
        self.commit_locked(&[])
    }

    /// [`commit`](Self::commit) with the commit lock held. With days in `seal`, appends
    /// stay paused until those days are committed, the WAL is truncated behind the commit
    /// and they are staged as sealed (`sealed::SealedDays::stage`): no record of theirs
    /// can then be only in the WAL or only in a writer.
    fn commit_locked(&self, seal: &[String]) -> Result<(), LogError> {
        let alone = self.gate.blocking_write();
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
        // Appends go on while the commits are written (segment files and meta.json
        // fsynced), unless days are sealed: what they add is in the next commit, and the
        // WAL keeps it until then.
        let alone = if seal.is_empty() {
            drop(alone);
            None
        } else {
            Some(alone)
        };
        for (d, c) in in_flight {
            d.finish_commit(c)?;
        }
        self.committed_seq.store(seq, Ordering::SeqCst);
        self.wal.delete_before(keep_from).map_err(|source| LogError::Io {
            path: self.wal_dir(),
            source,
        })?;
        if let (Some(sealed), Some(_alone)) = (&self.sealed, alone) {
            self.write_seal_positions(sealed, seal)?;
            for day in seal {
                let Some(index) = self.days.write().remove(day) else {
                    continue;
                };
                if let Err(e) = sealed.stage(&index, &self.fields) {
                    // Still a writable day in place: sealed again next round.
                    self.days.write().insert(day.clone(), index);
                    return Err(e);
                }
            }
        }
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

    /// How this store's WAL is doing: the fault that makes it refuse appends right now
    /// (see [`crate::Db::wal_fault`]) and its failure counts.
    pub fn wal_health(&self) -> crate::WalHealth {
        self.wal.health()
    }

    /// Stops appends, fsyncs and closes the WAL, and stops the index writers. What was not
    /// committed stays in the WAL and is indexed again at the next open.
    pub async fn close(&self) -> io::Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(sealed) = &self.sealed {
            // Another process takes over sealed-day retention at once instead of after the TTL.
            sealed.release().await;
        }
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
            object_cache: self.sealed.as_ref().map(|s| s.cache_stats()),
            gc_deleted_days: self.gc_deleted.load(Ordering::Relaxed),
            ..LogStats::default()
        };
        if let Some(sealed) = &self.sealed {
            (s.sealed_days, s.sealed_bytes) = sealed.totals();
        }
        for d in self.days.read().values() {
            s.days += 1;
            s.bytes += d.bytes();
            s.committed_records += d.reader.searcher().num_docs();
        }
        s
    }

    /// With a metastore: makes sure the sealed days were listed from it after `since`
    /// (listing them now unless a listing that started after `since` already did), so a
    /// day uploaded before `since` is searched. Without one a no-op.
    pub fn ensure_listed_after(&self, since: std::time::Instant) -> Result<(), LogError> {
        match &self.sealed {
            Some(s) => s.refresh_if_listed_before(since),
            None => Ok(()),
        }
    }

    /// The directory holding the day indexes.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests;
