//! Writing span blocks: spans arrive in `(trace_id, start, span_id)` order, are buffered
//! per column and flushed to `spans.parquet` in batches; `finish` writes `meta.json`,
//! fsyncs, and publishes the temporary directory (`storage::block_dir`, as metric blocks do).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::{ArrayRef, Int32Array, Int64Array, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::Serialize;

use super::block::{Operation, SpanBlockMeta, SPAN_BLOCK_FORMAT_VERSION};
use super::span::Span;
use crate::storage::block_dir::TmpBlockDir;
use crate::storage::BlockError;

/// Rows per row group of `spans.parquet`.
const ROW_GROUP_ROWS: usize = 16 * 1024;
/// Rows buffered before they are handed to the Parquet writer.
const BATCH_ROWS: usize = 8 * 1024;

fn schema() -> SchemaRef {
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        utf8("trace_id"),
        utf8("span_id"),
        utf8("parent_span_id"),
        utf8("trace_state"),
        utf8("name"),
        Field::new("kind", DataType::Int32, false),
        utf8("service"),
        Field::new("start_time_unix_nano", DataType::Int64, false),
        Field::new("duration_nano", DataType::Int64, false),
        Field::new("status_code", DataType::Int32, false),
        utf8("status_message"),
        utf8("attributes"),
        utf8("resource"),
        utf8("scope_name"),
        utf8("scope_version"),
        utf8("events"),
        utf8("links"),
    ]))
}

fn properties(rows: usize) -> Result<WriterProperties, parquet::errors::ParquetError> {
    let trace_id = ColumnPath::from("trace_id");
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_column_bloom_filter_enabled(trace_id.clone(), true)
        .set_column_bloom_filter_fpp(trace_id.clone(), 0.01)
        .set_column_bloom_filter_max_ndv(trace_id, rows.clamp(1, ROW_GROUP_ROWS) as u64);
    // Services and operations repeat a lot: small filters that let a search by service or
    // operation skip the row groups without them.
    for name in ["service", "name"] {
        let column = ColumnPath::from(name);
        builder = builder
            .set_column_bloom_filter_enabled(column.clone(), true)
            .set_column_bloom_filter_fpp(column.clone(), 0.01)
            .set_column_bloom_filter_max_ndv(column, 4096);
    }
    Ok(builder.build())
}

fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}

/// Column buffers of the rows not yet written.
#[derive(Default)]
struct Columns {
    text: [Vec<String>; 13],
    kind: Vec<i32>,
    start: Vec<i64>,
    duration: Vec<i64>,
    code: Vec<i32>,
}

impl Columns {
    fn push(&mut self, s: &Span) {
        let values = [
            s.trace_id.clone(),
            s.span_id.clone(),
            s.parent_span_id.clone(),
            s.trace_state.clone(),
            s.name.clone(),
            s.service.clone(),
            s.status_message.clone(),
            json_text(&s.attributes),
            json_text(&s.resource),
            s.scope_name.clone(),
            s.scope_version.clone(),
            json_text(&s.events),
            json_text(&s.links),
        ];
        for (column, value) in self.text.iter_mut().zip(values) {
            column.push(value);
        }
        self.kind.push(s.kind);
        self.start.push(s.start_unix_nano);
        self.duration.push(s.duration_nano);
        self.code.push(s.status_code);
    }

    fn len(&self) -> usize {
        self.kind.len()
    }

    fn take_batch(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let mut text: Vec<ArrayRef> = Vec::with_capacity(13);
        for column in self.text.iter_mut() {
            text.push(Arc::new(StringArray::from(std::mem::take(column))));
        }
        let t = |i: usize| text.get(i).cloned();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(17);
        for i in 0..5 {
            columns.extend(t(i));
        }
        columns.push(Arc::new(Int32Array::from(std::mem::take(&mut self.kind))));
        columns.extend(t(5));
        columns.push(Arc::new(Int64Array::from(std::mem::take(&mut self.start))));
        columns.push(Arc::new(Int64Array::from(std::mem::take(&mut self.duration))));
        columns.push(Arc::new(Int32Array::from(std::mem::take(&mut self.code))));
        for i in 6..13 {
            columns.extend(t(i));
        }
        RecordBatch::try_new(schema(), columns)
    }
}

/// A span block being written in a temporary directory; dropped unfinished, it leaves
/// nothing behind.
pub(crate) struct SpanBlockWriter {
    dir: TmpBlockDir,
    path: PathBuf,
    writer: Option<ArrowWriter<File>>,
    columns: Columns,
    services: BTreeMap<String, BTreeSet<Operation>>,
    min_start: i64,
    max_start: i64,
    rows: u64,
    level: u32,
    sources: Vec<String>,
    /// Goes to `meta.json` (`SpanBlockMeta::ingest_positions`).
    ingest_positions: BTreeMap<u32, u64>,
}

impl SpanBlockWriter {
    /// Sets the ingest-log positions the block holds everything up to.
    pub(crate) fn set_ingest_positions(&mut self, positions: &crate::AppliedPositions) {
        self.ingest_positions = positions.as_map().clone();
    }

    /// Starts a block of about `expected_rows` spans (sizes the bloom filters); `level`
    /// and `sources` go to `meta.json`.
    pub(crate) fn new(
        blocks_dir: &Path,
        expected_rows: usize,
        level: u32,
        sources: Vec<String>,
    ) -> Result<SpanBlockWriter, BlockError> {
        let dir = TmpBlockDir::create(blocks_dir)?;
        let path = dir.path().join("spans.parquet");
        let mut w = SpanBlockWriter {
            dir,
            path: path.clone(),
            writer: None,
            columns: Columns::default(),
            services: BTreeMap::new(),
            min_start: i64::MAX,
            max_start: i64::MIN,
            rows: 0,
            level,
            sources,
            ingest_positions: BTreeMap::new(),
        };
        let file = File::create(&path).map_err(|e| BlockError::io(&path, e))?;
        let props = properties(expected_rows).map_err(|e| BlockError::parquet(&path, e))?;
        let writer =
            ArrowWriter::try_new(file, schema(), Some(props)).map_err(|e| BlockError::parquet(&path, e))?;
        w.writer = Some(writer);
        Ok(w)
    }

    /// Adds a span; spans must come sorted by `(trace_id, start, span_id)`.
    pub(crate) fn push(&mut self, s: &Span) -> Result<(), BlockError> {
        self.min_start = self.min_start.min(s.start_unix_nano);
        self.max_start = self.max_start.max(s.start_unix_nano);
        if !self.services.contains_key(&s.service) {
            self.services.insert(s.service.clone(), BTreeSet::new());
        }
        if let Some(ops) = self.services.get_mut(&s.service) {
            if !ops.iter().any(|o| o.name == s.name && o.kind == s.kind) {
                ops.insert(Operation {
                    name: s.name.clone(),
                    kind: s.kind,
                });
            }
        }
        self.columns.push(s);
        self.rows += 1;
        if self.columns.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BlockError> {
        if self.columns.len() == 0 {
            return Ok(());
        }
        let batch = self.columns.take_batch().map_err(|source| BlockError::Arrow {
            path: self.path.clone(),
            source,
        })?;
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| BlockError::corrupt(&self.path, "span writer already closed"))?;
        writer
            .write(&batch)
            .map_err(|e| BlockError::parquet(&self.path, e))
    }

    /// Completes the block and renames it to `<min>-<max>-<id>`; `None` (and nothing
    /// left on disk) when no span was added.
    pub(crate) fn finish(mut self) -> Result<Option<PathBuf>, BlockError> {
        if self.rows == 0 {
            return Ok(None);
        }
        self.flush()?;
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| BlockError::corrupt(&self.path, "span writer already closed"))?;
        writer.finish().map_err(|e| BlockError::parquet(&self.path, e))?;
        writer
            .inner()
            .sync_all()
            .map_err(|e| BlockError::io(&self.path, e))?;
        let mut services = BTreeMap::new();
        for (k, v) in std::mem::take(&mut self.services) {
            services.insert(k, v.into_iter().collect());
        }
        let meta = SpanBlockMeta {
            format_version: SPAN_BLOCK_FORMAT_VERSION,
            id: self.dir.id().to_string(),
            min_start_unix_nano: self.min_start,
            max_start_unix_nano: self.max_start,
            spans: self.rows,
            services,
            level: self.level,
            sources: std::mem::take(&mut self.sources),
            ingest_positions: std::mem::take(&mut self.ingest_positions),
        };
        self.dir.write_meta(&meta)?;
        Ok(Some(self.dir.publish(self.min_start, self.max_start)?))
    }
}

/// The sort order of a block: trace id, start, span id.
pub(crate) fn span_order(a: &Span, b: &Span) -> std::cmp::Ordering {
    (a.trace_id.as_str(), a.start_unix_nano, a.span_id.as_str()).cmp(&(
        b.trace_id.as_str(),
        b.start_unix_nano,
        b.span_id.as_str(),
    ))
}

/// Writes `spans` (any order) as a new level-1 block; `None` when there are none.
pub(crate) fn write_block(
    blocks_dir: &Path,
    spans: &[Span],
    positions: &crate::AppliedPositions,
) -> Result<Option<PathBuf>, BlockError> {
    if spans.is_empty() {
        return Ok(None);
    }
    let mut order: Vec<&Span> = spans.iter().collect();
    order.sort_by(|a, b| span_order(a, b));
    let mut writer = SpanBlockWriter::new(blocks_dir, spans.len(), 1, Vec::new())?;
    writer.set_ingest_positions(positions);
    for s in order {
        writer.push(s)?;
    }
    writer.finish()
}
