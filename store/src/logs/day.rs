//! One Tantivy index per UTC day under `<data_dir>/logs/<yyyy-mm-dd>/`, with its writer
//! (opened while the day receives records) and a reader reloaded after each commit.
//!
//! Commit payload (Tantivy's `meta.json`, `payload`): `{"wal":N,"first":{"<partition>":S}}`
//! — `wal`: the first WAL segment that may hold records not in the commit; `first`: per
//! ingest-log partition, the lowest stream sequence of a batch with records in this index
//! (so none of its records came from an earlier message). A payload of a bare number (an
//! older version) is `wal` alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::indexer::LogMergePolicy;
use tantivy::schema::Field;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use super::error::LogError;
use super::schema::Fields;

/// A commit of a day's index handed to Tantivy's segment updater and not yet durable.
pub(crate) struct CommitInFlight {
    done: tantivy::FutureResult<tantivy::Opstamp>,
    through: u64,
}

/// A day's index.
pub(crate) struct DayIndex {
    pub day: String,
    pub dir: PathBuf,
    pub index: Index,
    pub reader: IndexReader,
    writer: RwLock<Option<IndexWriter>>,
    /// Documents were added since the last commit.
    dirty: AtomicBool,
    /// WAL segment number stored with the last commit: records of lower segments are in
    /// the index.
    pub committed_through: AtomicU64,
    /// Per ingest-log partition, the lowest stream sequence of a batch with records in
    /// this index (kept in the commit payload): what a replacement on a new disk must
    /// read the stream again from while this index is not in the bucket.
    first: Mutex<BTreeMap<u32, u64>>,
}

/// The commit payload (module documentation).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Payload {
    wal: u64,
    #[serde(default)]
    first: BTreeMap<u32, u64>,
}

impl Payload {
    fn parse(text: Option<&str>) -> Payload {
        let Some(text) = text else {
            return Payload::default();
        };
        match text.parse::<u64>() {
            Ok(wal) => Payload {
                wal,
                first: BTreeMap::new(),
            },
            Err(_) => serde_json::from_str(text).unwrap_or_default(),
        }
    }
}

fn tantivy_err(dir: &Path, source: tantivy::TantivyError) -> LogError {
    LogError::Tantivy {
        path: dir.to_path_buf(),
        source,
    }
}

/// The merge policy for append-only logs: segments are only ever added, never updated,
/// so merge in larger steps (at least 10 segments of a level) up to 5M documents and
/// leave bigger segments alone; fewer, larger merges keep indexing throughput up.
fn merge_policy() -> LogMergePolicy {
    let mut p = LogMergePolicy::default();
    p.set_min_num_segments(10);
    p.set_max_docs_before_merge(5_000_000);
    p.set_level_log_size(0.75);
    p
}

impl DayIndex {
    /// Opens the day's index in `dir`, creating it if needed.
    pub(crate) fn open(dir: &Path, day: &str, fields: &Fields) -> Result<DayIndex, LogError> {
        std::fs::create_dir_all(dir).map_err(|source| LogError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let directory = MmapDirectory::open(dir).map_err(|e| tantivy_err(dir, e.into()))?;
        let index =
            Index::open_or_create(directory, fields.schema.clone()).map_err(|e| tantivy_err(dir, e))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| tantivy_err(dir, e))?;
        let metas = index.load_metas().map_err(|e| tantivy_err(dir, e))?;
        let payload = Payload::parse(metas.payload.as_deref());
        Ok(DayIndex {
            day: day.to_string(),
            dir: dir.to_path_buf(),
            index,
            reader,
            writer: RwLock::new(None),
            dirty: AtomicBool::new(false),
            committed_through: AtomicU64::new(payload.wal),
            first: Mutex::new(payload.first),
        })
    }

    /// Notes that records of a batch whose first message had sequence `seq` in
    /// `partition` were added (keeps the lowest per partition).
    pub(crate) fn note_first(&self, partition: u32, seq: u64) {
        let mut first = self.first.lock();
        let entry = first.entry(partition).or_insert(seq);
        *entry = (*entry).min(seq);
    }

    /// Per partition, the lowest stream sequence of a batch with records here.
    pub(crate) fn first(&self) -> BTreeMap<u32, u64> {
        self.first.lock().clone()
    }

    /// Adds documents, opening the writer first if needed.
    pub(crate) fn add(&self, docs: Vec<TantivyDocument>, memory: usize) -> Result<(), LogError> {
        {
            let guard = self.writer.read();
            if let Some(w) = guard.as_ref() {
                for doc in docs {
                    w.add_document(doc).map_err(|e| tantivy_err(&self.dir, e))?;
                }
                self.dirty.store(true, Ordering::SeqCst);
                return Ok(());
            }
        }
        let mut guard = self.writer.write();
        if guard.is_none() {
            let w: IndexWriter = self
                .index
                .writer_with_num_threads(1, memory)
                .map_err(|e| tantivy_err(&self.dir, e))?;
            w.set_merge_policy(Box::new(merge_policy()));
            *guard = Some(w);
        }
        if let Some(w) = guard.as_ref() {
            for doc in docs {
                w.add_document(doc).map_err(|e| tantivy_err(&self.dir, e))?;
            }
        }
        self.dirty.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Takes back documents added since the last commit (by their `seq` values, in
    /// `field`), so the next commit never makes them searchable: for a batch the WAL
    /// refused. Without a writer there is nothing uncommitted to take back.
    pub(crate) fn delete_seqs(&self, field: Field, seqs: &[u64]) {
        if let Some(w) = self.writer.read().as_ref() {
            for seq in seqs {
                w.delete_term(Term::from_field_u64(field, *seq));
            }
        }
    }

    /// Starts committing what was added, recording `through` (the first WAL segment that
    /// may hold records not in this commit) as the commit payload. Documents added after
    /// this returns belong to the next commit: Tantivy's segment updater runs the commit
    /// on its one thread before any segment begun later, so the caller may let appends go
    /// on and wait with [`CommitInFlight::finish`]. A day with nothing new closes its
    /// writer instead and returns `None`.
    pub(crate) fn begin_commit(&self, through: u64) -> Result<Option<CommitInFlight>, LogError> {
        let mut guard = self.writer.write();
        if !self.dirty.swap(false, Ordering::SeqCst) {
            // Idle since the last commit: release the writer's memory and threads.
            if let Some(w) = guard.take() {
                w.wait_merging_threads().map_err(|e| tantivy_err(&self.dir, e))?;
            }
            return Ok(None);
        }
        let Some(w) = guard.as_mut() else {
            return Ok(None);
        };
        let mut prepared = w.prepare_commit().map_err(|e| tantivy_err(&self.dir, e))?;
        let payload = Payload {
            wal: through,
            first: self.first(),
        };
        let text = serde_json::to_string(&payload).unwrap_or_else(|_| through.to_string());
        prepared.set_payload(&text);
        Ok(Some(CommitInFlight {
            done: prepared.commit_future(),
            through,
        }))
    }

    /// Waits for a commit begun by [`DayIndex::begin_commit`], then records it and reloads
    /// the reader so searches see it.
    pub(crate) fn finish_commit(&self, commit: CommitInFlight) -> Result<(), LogError> {
        commit.done.wait().map_err(|e| tantivy_err(&self.dir, e))?;
        self.committed_through.store(commit.through, Ordering::SeqCst);
        self.reader.reload().map_err(|e| tantivy_err(&self.dir, e))?;
        Ok(())
    }

    /// Stops the writer, dropping uncommitted documents (the WAL still holds them).
    pub(crate) fn close(&self) {
        if let Some(w) = self.writer.write().take() {
            if let Err(e) = w.wait_merging_threads() {
                tracing::warn!(day = %self.day, error = %e, "log index writer did not stop cleanly");
            }
        }
    }

    /// Merges every segment of the index into one and drops the files it no longer
    /// needs, then reloads the reader: for a day sealed against further writes (no other
    /// writer is open on it), so the copy uploaded and the one queries open are one
    /// segment.
    pub(crate) fn merge_all(&self, memory: usize) -> Result<(), LogError> {
        let err = |e| tantivy_err(&self.dir, e);
        let ids = self.index.searchable_segment_ids().map_err(err)?;
        let mut w: IndexWriter = self.index.writer_with_num_threads(1, memory).map_err(err)?;
        if ids.len() > 1 {
            w.merge(&ids).wait().map_err(err)?;
        }
        w.garbage_collect_files().wait().map_err(err)?;
        w.wait_merging_threads().map_err(err)?;
        self.reader.reload().map_err(err)
    }

    /// Documents searchable in the index.
    pub(crate) fn docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Bytes of the index files.
    pub(crate) fn bytes(&self) -> u64 {
        let mut total = 0;
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        total
    }
}
