//! Span blocks: `<data_dir>/traces/blocks/<min>-<max>-<id>/{spans.parquet,meta.json}`.
//!
//! `spans.parquet` holds one row per span, sorted by `(trace_id, start)` so that the spans
//! of a trace sit together; zstd, page statistics, 16Ki-row row groups and bloom filters
//! on `trace_id` (a trace lookup reads only the row groups that may hold it) and on
//! `service` and `name` (a search skips row groups without the service or operation, as it
//! skips those whose start-time or duration statistics fall outside its bounds). Attribute
//! maps, events and links are JSON text columns (DuckDB's `json` functions read them).
//! Block directories live as metric blocks do (`storage::block_dir`: written in a `.tmp-`
//! directory, published as `<min>-<max>-<id>`), with times in nanoseconds. With an object
//! store they are uploaded to `traces/blocks/<name>/` and read through the same
//! [`BlockFiles`] as metric blocks: the cache when it has the file, else range requests —
//! the footer at open, then only the bloom filters, the `trace_id` column chunk and the
//! selected pages of the row groups a lookup keeps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_array::{Int32Array, Int64Array, StringArray};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::PageIndexPolicy;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use parquet::file::statistics::Statistics;

use super::query::TraceQuery;
use super::span::{Span, SpanEvent, SpanLink};
use crate::storage::block_dir;
use crate::storage::object::{BlockFile, BlockFiles};
use crate::storage::parquet::column;
use crate::storage::BlockError;

/// Version of the span block layout in `meta.json`.
pub const SPAN_BLOCK_FORMAT_VERSION: u32 = 1;

/// An operation of a service as listed in `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Operation {
    /// Span name.
    pub name: String,
    /// OTLP span kind number.
    pub kind: i32,
}

/// Services with their operations as listed (sorted) from the sets they were gathered in.
pub(crate) fn operations_by_service(
    sets: BTreeMap<String, std::collections::BTreeSet<(String, i32)>>,
) -> BTreeMap<String, Vec<Operation>> {
    let mut out = BTreeMap::new();
    for (service, ops) in sets {
        let mut list = Vec::new();
        for (name, kind) in ops {
            list.push(Operation { name, kind });
        }
        out.insert(service, list);
    }
    out
}

/// Contents of a span block's `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanBlockMeta {
    /// [`SPAN_BLOCK_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Random id, the last part of the directory name.
    pub id: String,
    /// Oldest and newest span start in the block, nanoseconds since the epoch.
    pub min_start_unix_nano: i64,
    /// Newest span start.
    pub max_start_unix_nano: i64,
    /// Rows of `spans.parquet`.
    pub spans: u64,
    /// Services with their operations.
    pub services: BTreeMap<String, Vec<Operation>>,
    /// 1 for a block cut from the head, one more than the highest source when compacted.
    #[serde(default = "level_one")]
    pub level: u32,
    /// Ids of the blocks merged into this one (empty for a head cut).
    #[serde(default)]
    pub sources: Vec<String>,
    /// With the ingest log: per partition, the highest stream sequence whose spans this
    /// block holds all of (a cut freezes the whole span head); the highest of the sources'
    /// after a merge. What a replacement ingester resumes after.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ingest_positions: BTreeMap<u32, u64>,
}

fn level_one() -> u32 {
    1
}

/// The data file of a span block.
const SPANS_FILE: &str = "spans.parquet";

/// A span block opened for reading.
pub(crate) struct SpanBlock {
    /// The block's files (directory or objects in the bucket), deleted once marked and
    /// dropped.
    pub files: BlockFiles,
    pub meta: SpanBlockMeta,
    pub bytes: u64,
    service_names: Vec<String>,
    metadata: ArrowReaderMetadata,
}

impl SpanBlock {
    /// Opens the block in the local directory `dir`.
    pub(crate) fn open_dir(dir: &Path) -> Result<SpanBlock, BlockError> {
        SpanBlock::open(BlockFiles::local(dir, "span block"))
    }

    /// Opens the block of `files`: `meta.json` and the Parquet footer (from the end of the
    /// file by range requests for a block in the bucket, without caching the file).
    pub(crate) fn open(files: BlockFiles) -> Result<SpanBlock, BlockError> {
        let meta: SpanBlockMeta = files.read_meta()?;
        if meta.format_version != SPAN_BLOCK_FORMAT_VERSION {
            return Err(BlockError::corrupt(
                &files.path(block_dir::META_FILE),
                format!("unknown span block format version {}", meta.format_version),
            ));
        }
        let path = files.path(SPANS_FILE);
        let file = files.open_once(SPANS_FILE)?;
        // The page index gives the reader every page's location: pages are then read by
        // exact ranges (a block in the bucket), not found by reading ahead from each
        // page header. Optional: blocks written without one still open.
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let metadata =
            ArrowReaderMetadata::load(&file, options).map_err(|e| BlockError::parquet(&path, e))?;
        let bytes = files.bytes()?;
        let service_names = meta.services.keys().cloned().collect();
        Ok(SpanBlock {
            files,
            meta,
            bytes,
            service_names,
            metadata,
        })
    }

    /// Service names in the block.
    pub(crate) fn service_names(&self) -> &[String] {
        &self.service_names
    }

    /// Where `spans.parquet` is, for messages.
    fn spans_path(&self) -> PathBuf {
        self.files.path(SPANS_FILE)
    }

    /// A reader of `spans.parquet` for a query (a remote file not cached is read by
    /// ranges and fetched into the cache for the next query).
    fn builder(&self) -> Result<ParquetRecordBatchReaderBuilder<BlockFile>, BlockError> {
        Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.files.open(SPANS_FILE)?,
            self.metadata.clone(),
        ))
    }

    /// Appends the spans of `trace_id` to `out`. Row groups are skipped by their
    /// `trace_id` min/max statistics and bloom filter; in the others the `trace_id` column
    /// is read first and then only the matching rows (adjacent, as rows are sorted by
    /// trace id) in full.
    pub(crate) fn trace(&self, trace_id: &str, out: &mut Vec<Span>) -> Result<(), BlockError> {
        let path = self.spans_path();
        let builder = self.builder()?;
        let metadata = builder.metadata().clone();
        let mut groups = Vec::new();
        for rg in 0..metadata.num_row_groups() {
            let column = metadata.row_group(rg).column(0);
            if let Some(stats) = column.statistics() {
                if let (Some(min), Some(max)) = (stats.min_bytes_opt(), stats.max_bytes_opt()) {
                    if trace_id.as_bytes() < min || trace_id.as_bytes() > max {
                        continue;
                    }
                }
            }
            match builder.get_row_group_column_bloom_filter(rg, 0) {
                Ok(Some(filter)) if !filter.check(trace_id) => continue,
                Ok(_) => groups.push(rg),
                Err(e) => return Err(BlockError::parquet(&path, e)),
            }
        }
        for rg in groups {
            let ids = self.builder()?;
            let mask = ProjectionMask::columns(ids.parquet_schema(), ["trace_id"]);
            let reader = ids
                .with_row_groups(vec![rg])
                .with_projection(mask)
                .build()
                .map_err(|e| BlockError::parquet(&path, e))?;
            let mut runs: Vec<RowSelector> = Vec::new();
            let mut any = false;
            for batch in reader {
                let batch = batch.map_err(|source| BlockError::Arrow {
                    path: path.clone(),
                    source,
                })?;
                let column = column::<StringArray>(&batch, "trace_id", &path)?;
                for i in 0..batch.num_rows() {
                    let hit = column.value(i) == trace_id;
                    any |= hit;
                    push_run(&mut runs, hit);
                }
            }
            if !any {
                continue;
            }
            let reader = self
                .builder()?
                .with_row_groups(vec![rg])
                .with_row_selection(RowSelection::from(runs))
                .build()
                .map_err(|e| BlockError::parquet(&path, e))?;
            read_batches(&path, reader, &mut |s| s.trace_id == trace_id, out)?;
        }
        Ok(())
    }

    /// Row groups that may hold a span matching `q`: those whose start-time and duration
    /// statistics overlap the query's bounds and whose `service`/`name` bloom filters (when
    /// the block has them) may contain the service and operation asked for.
    pub(crate) fn candidate_row_groups(&self, q: &TraceQuery) -> Result<Vec<usize>, BlockError> {
        let path = self.spans_path();
        let builder = self.builder()?;
        let metadata = builder.metadata().clone();
        let schema = metadata.file_metadata().schema_descr();
        let index_of = |name: &str| schema.columns().iter().position(|c| c.name() == name);
        let (start_col, duration_col) = (index_of("start_time_unix_nano"), index_of("duration_nano"));
        let (service_col, name_col) = (index_of("service"), index_of("name"));
        let mut out = Vec::new();
        for rg in 0..metadata.num_row_groups() {
            let group = metadata.row_group(rg);
            let int_range = |col: Option<usize>| match col.and_then(|c| group.column(c).statistics()) {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(min), Some(max)) => Some((*min, *max)),
                    _ => None,
                },
                _ => None,
            };
            if let Some((min, max)) = int_range(start_col) {
                if max < q.start_unix_nano || min > q.end_unix_nano {
                    continue;
                }
            }
            if let Some((min, max)) = int_range(duration_col) {
                if q.min_duration_nano.is_some_and(|want| max < want)
                    || q.max_duration_nano.is_some_and(|want| min > want)
                {
                    continue;
                }
            }
            let mut possible = true;
            for (col, want) in [(service_col, &q.service), (name_col, &q.operation)] {
                let (Some(col), Some(want)) = (col, want) else {
                    continue;
                };
                match builder.get_row_group_column_bloom_filter(rg, col) {
                    Ok(Some(filter)) if !filter.check(want.as_str()) => possible = false,
                    Ok(_) => {}
                    Err(e) => return Err(BlockError::parquet(&path, e)),
                }
            }
            if possible {
                out.push(rg);
            }
        }
        Ok(out)
    }

    /// Calls `visit` with every span of the row groups `groups` (all when `None`), reading
    /// only the columns a search needs: ids (with the parent), name, kind, service, start,
    /// duration, status code, and the attribute maps when `with_attributes` (other fields of
    /// the spans passed are empty).
    pub(crate) fn scan_for_search(
        &self,
        with_attributes: bool,
        groups: Option<Vec<usize>>,
        visit: &mut dyn FnMut(&Span) -> bool,
    ) -> Result<(), BlockError> {
        let path = self.spans_path();
        let mut builder = self.builder()?;
        if let Some(groups) = groups {
            if groups.is_empty() {
                return Ok(());
            }
            builder = builder.with_row_groups(groups);
        }
        let mut names = vec![
            "trace_id",
            "span_id",
            "parent_span_id",
            "name",
            "kind",
            "service",
            "start_time_unix_nano",
            "duration_nano",
            "status_code",
        ];
        if with_attributes {
            names.push("attributes");
            names.push("resource");
        }
        let mask = ProjectionMask::columns(builder.parquet_schema(), names);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| BlockError::parquet(&path, e))?;
        let mut none = Vec::new();
        read_batches(&path, reader, visit, &mut none)
    }

    /// Reads the block's spans in file order (sorted by trace id, start, span id), one
    /// batch at a time.
    pub(crate) fn cursor(&self) -> Result<SpanCursor, BlockError> {
        let path = self.spans_path();
        // A compaction's read: the whole file once, not worth a place in the cache. Without
        // the page index the reader goes through each column chunk sequentially (1 MiB
        // range requests for a block in the bucket) instead of one request per page.
        let plain = self
            .metadata
            .metadata()
            .as_ref()
            .clone()
            .into_builder()
            .set_page_index(None)
            .build();
        let metadata = ArrowReaderMetadata::try_new(std::sync::Arc::new(plain), ArrowReaderOptions::new())
            .map_err(|e| BlockError::parquet(&path, e))?;
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(self.files.open_once(SPANS_FILE)?, metadata)
                .with_batch_size(1024)
                .build()
                .map_err(|e| BlockError::parquet(&path, e))?;
        Ok(SpanCursor {
            path,
            reader,
            buffered: std::collections::VecDeque::new(),
        })
    }

    /// Schedules the block's deletion (directory, or objects and cached copies) once the
    /// last reader lets go of it.
    pub(crate) fn mark_deleted(&self) {
        self.files.mark_deleted();
    }
}

fn read_batches(
    path: &Path,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    keep: &mut dyn FnMut(&Span) -> bool,
    out: &mut Vec<Span>,
) -> Result<(), BlockError> {
    for batch in reader {
        let batch = batch.map_err(|source| BlockError::Arrow {
            path: path.to_path_buf(),
            source,
        })?;
        read_batch(path, &batch, keep, out)?;
    }
    Ok(())
}

/// Converts the rows of one batch to spans, keeping those `keep` accepts.
pub(crate) fn read_batch(
    path: &Path,
    batch: &RecordBatch,
    keep: &mut dyn FnMut(&Span) -> bool,
    out: &mut Vec<Span>,
) -> Result<(), BlockError> {
    {
        let text = |name: &str| column::<StringArray>(batch, name, path);
        let ints = |name: &str| column::<Int32Array>(batch, name, path);
        let longs = |name: &str| column::<Int64Array>(batch, name, path);
        // Columns a projection may leave out.
        let optional = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        };
        let (trace_id, span_id, name) = (text("trace_id")?, text("span_id")?, text("name")?);
        let (kind, service, start, duration, code) = (
            ints("kind")?,
            text("service")?,
            longs("start_time_unix_nano")?,
            longs("duration_nano")?,
            ints("status_code")?,
        );
        let (parent, state, message) = (
            optional("parent_span_id"),
            optional("trace_state"),
            optional("status_message"),
        );
        let (attributes, resource) = (optional("attributes"), optional("resource"));
        let (scope_name, scope_version, events, links) = (
            optional("scope_name"),
            optional("scope_version"),
            optional("events"),
            optional("links"),
        );
        for i in 0..batch.num_rows() {
            let span = Span {
                trace_id: trace_id.value(i).to_string(),
                span_id: span_id.value(i).to_string(),
                parent_span_id: value_or(parent, i, "").to_string(),
                trace_state: value_or(state, i, "").to_string(),
                name: name.value(i).to_string(),
                kind: kind.value(i),
                service: service.value(i).to_string(),
                start_unix_nano: start.value(i),
                duration_nano: duration.value(i),
                status_code: code.value(i),
                status_message: value_or(message, i, "").to_string(),
                attributes: parse_map(value_or(attributes, i, "{}")),
                resource: std::sync::Arc::new(parse_map(value_or(resource, i, "{}"))),
                scope_name: value_or(scope_name, i, "").to_string(),
                scope_version: value_or(scope_version, i, "").to_string(),
                events: serde_json::from_str::<Vec<SpanEvent>>(value_or(events, i, "[]")).unwrap_or_default(),
                links: serde_json::from_str::<Vec<SpanLink>>(value_or(links, i, "[]")).unwrap_or_default(),
            };
            if keep(&span) {
                out.push(span);
            }
        }
    }
    Ok(())
}

/// A block's spans in file order.
pub(crate) struct SpanCursor {
    path: PathBuf,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    buffered: std::collections::VecDeque<Span>,
}

impl SpanCursor {
    /// The next span without taking it.
    pub(crate) fn peek(&mut self) -> Result<Option<&Span>, BlockError> {
        if self.buffered.is_empty() {
            if let Some(batch) = self.reader.next() {
                let batch = batch.map_err(|source| BlockError::Arrow {
                    path: self.path.clone(),
                    source,
                })?;
                let mut spans = Vec::with_capacity(batch.num_rows());
                read_batch(&self.path, &batch, &mut |_| true, &mut spans)?;
                self.buffered.extend(spans);
            }
        }
        Ok(self.buffered.front())
    }

    /// Takes the next span.
    pub(crate) fn take(&mut self) -> Option<Span> {
        self.buffered.pop_front()
    }
}

/// Extends the run-length row selection by one row.
fn push_run(runs: &mut Vec<RowSelector>, select: bool) {
    if let Some(last) = runs.last_mut() {
        if last.skip != select {
            last.row_count += 1;
            return;
        }
    }
    runs.push(if select {
        RowSelector::select(1)
    } else {
        RowSelector::skip(1)
    });
}

/// Row `i` of an optional column, or `default` when the column was not read.
fn value_or<'a>(column: Option<&'a StringArray>, i: usize, default: &'a str) -> &'a str {
    match column {
        Some(c) => c.value(i),
        None => default,
    }
}

fn parse_map(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Opens every span block in `blocks_dir`, removing leftover temporary directories;
/// unreadable blocks are logged and left on disk.
pub(crate) fn open_all(blocks_dir: &Path) -> Result<Vec<SpanBlock>, BlockError> {
    let mut blocks = block_dir::open_all(blocks_dir, "span block", SpanBlock::open_dir)?;
    blocks.sort_by_key(|b| (b.meta.min_start_unix_nano, b.meta.max_start_unix_nano));
    Ok(blocks)
}
