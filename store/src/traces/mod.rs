//! The trace store: spans go to their own WAL (`<data_dir>/wal/traces`), a span head in
//! memory, and Parquet span blocks (`<data_dir>/traces/blocks`, or uploaded from there to
//! `traces/blocks/` in a bucket with an object store), with the same durability rules as
//! metrics: an append returns once its record is durable per the fsync mode, and a WAL
//! segment is deleted only after its spans are in a durable block (uploaded, and recorded
//! in the metastore when there is one). A batch becomes visible only once its WAL record
//! is acknowledged; a refused batch leaves nothing behind.
//!
//! - `maintain`: head cuts, block writes, compaction and retention.
//! - `published`: the bucket and metastore side of span blocks.

mod ack;
mod block;
mod compact;
mod dependencies;
mod head;
mod maintain;
mod published;
mod query;
mod span;
mod unpublished;
mod writer;

pub use block::{Operation, SpanBlockMeta, SPAN_BLOCK_FORMAT_VERSION};
pub use dependencies::{dependencies_of, CallEdge, Dependency};
pub use query::{value_text, TraceQuery};
pub use span::{decode_spans, encode_spans};
pub use span::{is_valid_hex_id, kind, kind_name, status, status_name, Span, SpanEvent, SpanLink};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::storage::wal::{read_log, Wal, WalConfig};
use crate::storage::{
    AppendError, BlockError, BlockStorage, FsyncMode, MetastoreConfig, ObjectCacheStats, OpenError,
};
use block::SpanBlock;
use head::{note_trace, SpanHead};
use published::Bucketed;

/// Options of the trace store; defaults in `docs/configuration.md`.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// Root of the data directory (`wal/traces`, `traces/blocks` below it).
    pub data_dir: PathBuf,
    /// When appends are acknowledged relative to the WAL fsync.
    pub fsync: FsyncMode,
    /// Period of the background fsync in [`FsyncMode::Interval`].
    pub fsync_interval: Duration,
    /// Size at which a WAL segment is closed.
    pub wal_segment_bytes: u64,
    /// The head is cut into a block once its oldest span started this long ago.
    pub block_duration: Duration,
    /// Blocks whose newest span is older than this are deleted (0 = keep forever).
    pub retention_time: Duration,
    /// When span blocks take more bytes than this, the oldest go (0 = no limit).
    pub retention_bytes: u64,
    /// Memory the span head (live plus heads being written) may use before appends are
    /// refused with [`AppendError::Overloaded`]; a cut is forced at 80%.
    pub head_memory_bytes: u64,
    /// Where span blocks live: the data directory (default) or a bucket, under
    /// `traces/blocks/` (the same `[storage] object_store` as metric blocks).
    pub block_storage: BlockStorage,
    /// The PostgreSQL metastore listing the bucket's span blocks (signal `traces`) and
    /// electing their compactor; needs blocks in a bucket.
    pub metastore: Option<MetastoreConfig>,
}

impl TraceOptions {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> TraceOptions {
        TraceOptions {
            data_dir: data_dir.into(),
            fsync: FsyncMode::Batch,
            fsync_interval: Duration::from_secs(1),
            wal_segment_bytes: 64 * 1024 * 1024,
            block_duration: Duration::from_secs(3600),
            retention_time: Duration::from_secs(7 * 24 * 3600),
            retention_bytes: 0,
            head_memory_bytes: 512 * 1024 * 1024,
            block_storage: BlockStorage::File,
            metastore: None,
        }
    }
}

/// Figures for self-monitoring.
#[derive(Debug, Clone, Default)]
pub struct TraceStats {
    /// Spans in memory (live and frozen heads).
    pub head_spans: u64,
    /// Approximate bytes of those spans.
    pub head_bytes: u64,
    /// Span blocks on disk, their bytes and spans.
    pub blocks: u64,
    /// Bytes of the span blocks.
    pub block_bytes: u64,
    /// Spans in blocks.
    pub block_spans: u64,
    /// WAL records replayed at open.
    pub wal_replayed_records: u64,
    /// Segments whose torn tail was cut at open.
    pub wal_torn_tail_repairs: u64,
    /// Blocks deleted by retention since open.
    pub retention_deleted_blocks: u64,
    /// Compactions (each merges the blocks of one window) since open.
    pub compactions: u64,
    /// The local cache of block files, with an object store.
    pub object_cache: Option<ObjectCacheStats>,
    /// Blocks the metastore compactor's garbage collection deleted from the bucket.
    pub gc_deleted_blocks: u64,
}

struct Frozen {
    head: SpanHead,
    keep_from: u64,
    /// The ingest-log positions of everything in `head` (the rotation's).
    positions: crate::AppliedPositions,
}

/// The trace store.
pub struct TraceStore {
    options: TraceOptions,
    blocks_dir: PathBuf,
    wal: Wal,
    head: RwLock<SpanHead>,
    frozen: RwLock<Vec<Arc<Frozen>>>,
    blocks: RwLock<Vec<Arc<SpanBlock>>>,
    /// The bucket (and metastore) blocks are published to, with an object store.
    bucket: Option<Bucketed>,
    gc_deleted: AtomicU64,
    maintain_lock: Mutex<()>,
    closed: AtomicBool,
    replayed: u64,
    torn: u64,
    retention_deleted: AtomicU64,
    compactions: AtomicU64,
    /// Numbers the batches waiting for their WAL answer.
    next_ticket: AtomicU64,
    /// Batches the WAL refused that left the head (to compare with the WAL's count).
    refused: AtomicU64,
    /// The highest ingest-log position per partition the WAL replay found.
    replayed_positions: crate::AppliedPositions,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl TraceStore {
    /// Opens (creating if needed) the store: opens the blocks, replays the WAL into the
    /// head and starts the WAL writer on a fresh segment. With a bucket, blocks a crash
    /// left written but not uploaded are uploaded first, and the blocks are those the
    /// bucket — or, with a metastore, its rows — list.
    pub fn open(options: TraceOptions) -> Result<TraceStore, OpenError> {
        let wal_dir = options.data_dir.join("wal").join("traces");
        let blocks_dir = options.data_dir.join("traces").join("blocks");
        for dir in [&wal_dir, &blocks_dir] {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let (bucket, blocks) = match &options.block_storage {
            BlockStorage::File if options.metastore.is_some() => {
                return Err(OpenError::Io {
                    path: blocks_dir,
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a metastore needs span blocks in a bucket (object_store = \"s3\")",
                    ),
                });
            }
            BlockStorage::File => (None, block::open_all(&blocks_dir)?),
            BlockStorage::S3(config) => {
                let (bucket, blocks) =
                    Bucketed::open(config, options.metastore.as_ref(), &options.data_dir, &blocks_dir)?;
                (Some(bucket), blocks)
            }
        };
        let log = read_log(&wal_dir).map_err(|source| OpenError::Wal {
            path: wal_dir.clone(),
            source,
        })?;
        let mut head = SpanHead::default();
        let mut replayed = 0;
        for (n, payloads) in log.segments {
            for payload in payloads {
                match span::decode_record(&payload) {
                    Ok(spans) => {
                        head.extend(spans);
                        replayed += 1;
                    }
                    Err(e) => {
                        tracing::error!(segment = n, error = %e, "skipping undecodable trace WAL record")
                    }
                }
            }
        }
        let config = WalConfig::new(options.fsync, options.fsync_interval, options.wal_segment_bytes);
        let wal =
            Wal::start(&wal_dir, log.last_segment + 1, config, log.positions.clone()).map_err(|source| {
                OpenError::Wal {
                    path: wal_dir.clone(),
                    source,
                }
            })?;
        Ok(TraceStore {
            options,
            blocks_dir,
            wal,
            head: RwLock::new(head),
            frozen: RwLock::new(Vec::new()),
            blocks: RwLock::new(blocks.into_iter().map(Arc::new).collect()),
            bucket,
            gc_deleted: AtomicU64::new(0),
            maintain_lock: Mutex::new(()),
            closed: AtomicBool::new(false),
            replayed,
            torn: log.torn_repairs,
            retention_deleted: AtomicU64::new(0),
            replayed_positions: log.positions.clone(),
            compactions: AtomicU64::new(0),
            next_ticket: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &TraceOptions {
        &self.options
    }

    fn memory_used(&self) -> u64 {
        let mut used = self.head.read().bytes();
        for f in self.frozen.read().iter() {
            used += f.head.bytes();
        }
        used
    }

    /// Fails with [`AppendError::Overloaded`] (or `Closed`) when an append would be refused
    /// before anything is stored, so callers can check before doing work of their own.
    pub fn check_capacity(&self) -> Result<(), AppendError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AppendError::Closed);
        }
        let used = self.memory_used();
        let limit = self.options.head_memory_bytes;
        if used > limit {
            return Err(AppendError::Overloaded { used, limit });
        }
        Ok(())
    }

    /// Stores a batch of spans as one WAL record; returns once it is durable per the fsync
    /// mode. Refused whole with [`AppendError::Overloaded`] when the head is full. The
    /// spans become visible only once the record is acknowledged; when the WAL refuses it
    /// ([`AppendError::Wal`]) they are dropped, so a retry stores exactly one copy.
    pub async fn append(&self, spans: Vec<Span>) -> Result<usize, AppendError> {
        self.append_at(spans, None).await
    }

    /// [`TraceStore::append`] of a batch taken from the ingest log at `position`, written
    /// in the same WAL record (see [`TraceStore::replayed_positions`]).
    pub async fn append_at(
        &self,
        spans: Vec<Span>,
        position: Option<crate::LogPosition>,
    ) -> Result<usize, AppendError> {
        self.check_capacity()?;
        if spans.is_empty() {
            return Ok(0);
        }
        let n = spans.len();
        let record = crate::storage::wal::position::wrap(position, span::encode_record(&spans));
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let ack = {
            let mut head = self.head.write();
            self.settle_orphans(&mut head);
            let ack = self.wal.submit(record).map_err(|_| AppendError::Closed)?;
            head.add_pending(ticket, spans);
            ack
        };
        ack::await_ack(&self.head, &self.refused, ticket, ack)
            .await
            .map(|()| n)
    }

    /// The highest ingest-log position per partition whose batch the WAL held at open: a
    /// consumer of the log starts past these.
    pub fn replayed_positions(&self) -> &crate::AppliedPositions {
        &self.replayed_positions
    }

    /// The highest ingest-log position per partition that the listed span blocks hold
    /// everything up to (`SpanBlockMeta::ingest_positions`): where a consumer with an
    /// empty data directory resumes.
    pub fn published_positions(&self) -> crate::AppliedPositions {
        let mut out = crate::AppliedPositions::default();
        for b in self.blocks.read().iter() {
            out.merge_map(&b.meta.ingest_positions);
        }
        out
    }

    /// Applies the answers of abandoned appends that have arrived; call with the head
    /// write-locked.
    fn settle_orphans(&self, head: &mut SpanHead) {
        let settled = head.settle_orphans();
        self.refused.fetch_add(settled.refused, Ordering::Relaxed);
    }

    /// Makes the next `times` WAL I/O steps of kind `op` fail as a full disk (or, for
    /// segment creation, a lack of file descriptors) would: for tests of fault handling.
    #[doc(hidden)]
    pub fn inject_wal_fault(&self, op: crate::WalFaultOp, times: u32) {
        self.wal.inject_fault(op, times);
    }

    /// How this store's WAL is doing: the fault that makes it refuse appends right now
    /// (see [`crate::Db::wal_fault`]) and its failure counts.
    pub fn wal_health(&self) -> crate::WalHealth {
        self.wal.health()
    }

    /// Flushes and fsyncs the WAL and stops its writer.
    pub async fn close(&self) -> io::Result<()> {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(b) = &self.bucket {
            // Another process takes over compaction at once instead of after the TTL.
            b.release().await;
        }
        self.wal.close().await
    }

    /// Every span of a trace (head and blocks), sorted by start; duplicates (a span both in
    /// a block and in a not yet truncated WAL) appear once. Reads files: call it from a
    /// blocking thread.
    pub fn trace(&self, trace_id: &str) -> Result<Vec<Span>, BlockError> {
        let mut spans = Vec::new();
        self.head.read().trace(trace_id, &mut spans);
        for f in self.frozen.read().iter() {
            f.head.trace(trace_id, &mut spans);
        }
        let blocks: Vec<Arc<SpanBlock>> = self.blocks.read().clone();
        for b in &blocks {
            b.trace(trace_id, &mut spans)?;
        }
        let mut seen = HashSet::new();
        spans.retain(|s| seen.insert(s.span_id.clone()));
        spans.sort_by(|a, b| (a.start_unix_nano, &a.span_id).cmp(&(b.start_unix_nano, &b.span_id)));
        Ok(spans)
    }

    /// Services with their operations, over the head and every block.
    pub fn services(&self) -> BTreeMap<String, Vec<Operation>> {
        let mut map = self.unpublished_operation_sets();
        for b in self.blocks.read().iter() {
            for (service, ops) in &b.meta.services {
                let set = map.entry(service.clone()).or_default();
                for op in ops {
                    set.insert((op.name.clone(), op.kind));
                }
            }
        }
        block::operations_by_service(map)
    }

    /// Traces with a span matching `q`, newest first (by their newest matching span), at
    /// most `q.limit`, each with all its spans. Reads files: call from a blocking thread.
    pub fn find_traces(&self, q: &TraceQuery) -> Result<Vec<Vec<Span>>, BlockError> {
        let mut found = self.unpublished_matches(q);
        self.block_matches(q, &mut found)?;
        let mut out = Vec::new();
        for id in newest_traces(found, q.limit) {
            let spans = self.trace(&id)?;
            if !spans.is_empty() {
                out.push(spans);
            }
        }
        Ok(out)
    }

    /// Adds to `found` the traces with a span in a block matching `q`, with the start of
    /// their newest matching span (kept when `found` already has a newer one). Blocks
    /// that cannot change the newest `q.limit` of `found` are skipped, so `found` may
    /// seed the search with matches from elsewhere (an ingester's heads). Reads files.
    pub fn block_matches(&self, q: &TraceQuery, found: &mut HashMap<String, i64>) -> Result<(), BlockError> {
        let mut blocks: Vec<Arc<SpanBlock>> = self.blocks.read().clone();
        // Newest blocks first: once `limit` traces are found that are all newer than
        // anything an older block holds, the older blocks cannot change the answer.
        blocks.sort_by_key(|b| std::cmp::Reverse(b.meta.max_start_unix_nano));
        let limit = q.limit.max(1);
        for b in &blocks {
            if found.len() >= limit && limit_th_newest(found, limit) > b.meta.max_start_unix_nano {
                break;
            }
            if !q.may_match_block(
                b.meta.min_start_unix_nano,
                b.meta.max_start_unix_nano,
                b.service_names(),
            ) {
                continue;
            }
            let groups = b.candidate_row_groups(q)?;
            b.scan_for_search(!q.tags.is_empty(), Some(groups), &mut |s| {
                if q.matches(s) {
                    note_trace(found, &s.trace_id, s.start_unix_nano);
                }
                false
            })?;
        }
        Ok(())
    }

    /// Calls between services: for every span started in `[start, end]` (nanoseconds)
    /// whose parent is a span of another service, one call `parent service → child
    /// service`. Sorted by parent, then child. Reads files: call from a blocking thread.
    pub fn dependencies(&self, start: i64, end: i64) -> Result<Vec<Dependency>, BlockError> {
        let mut edges = self.unpublished_edges(start, end);
        edges.extend(self.block_edges(start, end)?);
        Ok(dependencies_of(edges))
    }

    /// The call edges of the spans in blocks started in `[start, end]` (nanoseconds).
    /// Reads files: call from a blocking thread.
    pub fn block_edges(&self, start: i64, end: i64) -> Result<Vec<CallEdge>, BlockError> {
        let mut out = Vec::new();
        let blocks: Vec<Arc<SpanBlock>> = self.blocks.read().clone();
        for b in &blocks {
            if b.meta.max_start_unix_nano < start || b.meta.min_start_unix_nano > end {
                continue;
            }
            b.scan_for_search(false, None, &mut |s: &Span| {
                if s.start_unix_nano >= start && s.start_unix_nano <= end {
                    out.push(CallEdge {
                        trace_id: s.trace_id.clone(),
                        span_id: s.span_id.clone(),
                        parent_span_id: s.parent_span_id.clone(),
                        service: s.service.clone(),
                    });
                }
                false
            })?;
        }
        Ok(out)
    }

    /// Figures for self-monitoring.
    pub fn stats(&self) -> TraceStats {
        let mut s = TraceStats {
            wal_replayed_records: self.replayed,
            wal_torn_tail_repairs: self.torn,
            retention_deleted_blocks: self.retention_deleted.load(Ordering::Relaxed),
            compactions: self.compactions.load(Ordering::Relaxed),
            object_cache: self.bucket.as_ref().map(|b| b.cache_stats()),
            gc_deleted_blocks: self.gc_deleted.load(Ordering::Relaxed),
            ..TraceStats::default()
        };
        {
            let head = self.head.read();
            s.head_spans = head.len() as u64;
            s.head_bytes = head.bytes();
        }
        for f in self.frozen.read().iter() {
            s.head_spans += f.head.len() as u64;
            s.head_bytes += f.head.bytes();
        }
        for b in self.blocks.read().iter() {
            s.blocks += 1;
            s.block_bytes += b.bytes;
            s.block_spans += b.meta.spans;
        }
        s
    }
}

#[cfg(test)]
mod tests;

/// The ids of the newest `limit` (at least one) of `found` (trace id → the start of its
/// newest matching span), newest first.
pub fn newest_traces(found: HashMap<String, i64>, limit: usize) -> Vec<String> {
    let mut ids: Vec<(i64, String)> = found.into_iter().map(|(id, t)| (t, id)).collect();
    ids.sort_by(|a, b| b.cmp(a));
    ids.truncate(limit.max(1));
    ids.into_iter().map(|(_, id)| id).collect()
}

/// The `limit`-th newest time among the traces found so far (`found.len() >= limit`).
fn limit_th_newest(found: &HashMap<String, i64>, limit: usize) -> i64 {
    let mut times: Vec<i64> = found.values().copied().collect();
    if limit == 0 || times.len() < limit {
        return i64::MIN;
    }
    // Only the limit-th position matters: a selection, not a full sort.
    let (_, nth, _) = times.select_nth_unstable_by(limit - 1, |a, b| b.cmp(a));
    *nth
}
