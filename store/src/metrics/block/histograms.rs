//! The native histogram samples of a block: `histograms.parquet`, written beside
//! `samples.parquet` only when the block holds histogram samples (a block without one has
//! no such file, so blocks of float series look as they did before histograms).
//!
//! One row per histogram sample, sorted by `(series_id, timestamp_ms)`; `series_id` is the
//! series' row in `series.parquet`, as for float samples. The histogram's fields are plain
//! columns, its buckets lists, so pyarrow, pandas and DuckDB read them without a decoder:
//!
//! | column | Arrow type |
//! |---|---|
//! | `series_id` | uint64 |
//! | `timestamp_ms` | int64 |
//! | `counter_reset_hint` | uint8: 0 unknown, 1 counter reset, 2 not a counter reset, 3 gauge |
//! | `schema` | int32: −4…8 exponential, −53 custom bounds |
//! | `zero_threshold`, `zero_count`, `count`, `sum` | float64 |
//! | `positive_span_offsets`, `negative_span_offsets` | list<int32> |
//! | `positive_span_lengths`, `negative_span_lengths` | list<uint32> |
//! | `positive_buckets`, `negative_buckets` | list<float64>: absolute count per bucket |
//! | `custom_values` | list<float64>: upper bounds of schema −53 (empty otherwise) |
//!
//! Why a separate file and not nullable columns beside `value`: float rows stay three flat
//! columns with their encodings and their readers untouched, a series that changed type
//! keeps both kinds each in time order, and the nested columns cost nothing where there
//! are no histograms. Counts are stored as floats (the model's form), so integer and float
//! histograms read back exactly.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch, UInt32Array, UInt64Array,
    UInt8Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;

use super::index::BlockIndex;
use crate::metrics::histogram_codec::{hint_from_byte, hint_to_byte};
use crate::model::{FloatHistogram, HistogramSample, SeriesSamples, Span};
use crate::storage::object::{BlockFile, BlockFiles};
use crate::storage::parquet::column;
use crate::storage::BlockError;

/// The file name in a block directory.
pub(crate) const FILE: &str = "histograms.parquet";
/// Rows per row group.
const ROW_GROUP_ROWS: usize = 16 * 1024;
/// Rows read per batch.
const READ_BATCH_ROWS: usize = 4 * 1024;

fn item(t: DataType) -> Arc<Field> {
    Arc::new(Field::new("item", t, false))
}

/// The Arrow schema of `histograms.parquet`.
pub(crate) fn schema() -> SchemaRef {
    let list = |name: &str, t: DataType| Field::new(name, DataType::List(item(t)), false);
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt64, false),
        Field::new("timestamp_ms", DataType::Int64, false),
        Field::new("counter_reset_hint", DataType::UInt8, false),
        Field::new("schema", DataType::Int32, false),
        Field::new("zero_threshold", DataType::Float64, false),
        Field::new("zero_count", DataType::Float64, false),
        Field::new("count", DataType::Float64, false),
        Field::new("sum", DataType::Float64, false),
        list("positive_span_offsets", DataType::Int32),
        list("positive_span_lengths", DataType::UInt32),
        list("positive_buckets", DataType::Float64),
        list("negative_span_offsets", DataType::Int32),
        list("negative_span_lengths", DataType::UInt32),
        list("negative_buckets", DataType::Float64),
        list("custom_values", DataType::Float64),
    ]))
}

/// Writer settings: ZSTD, delta-encoded ids and timestamps, page statistics (row groups
/// are skipped by their `series_id` and `timestamp_ms` ranges).
pub(crate) fn properties() -> Result<WriterProperties, parquet::errors::ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_dictionary_enabled(false)
        .set_column_encoding(ColumnPath::from("series_id"), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(ColumnPath::from("timestamp_ms"), Encoding::DELTA_BINARY_PACKED)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build())
}

/// A list column from per-row lengths and the flattened values.
fn list(t: DataType, lengths: Vec<usize>, values: ArrayRef) -> Result<ArrayRef, arrow_schema::ArrowError> {
    Ok(Arc::new(ListArray::try_new(
        item(t),
        OffsetBuffer::from_lengths(lengths),
        values,
        None,
    )?))
}

/// One side's spans and buckets being gathered into columns.
#[derive(Default)]
struct SideColumns {
    span_lengths_per_row: Vec<usize>,
    offsets: Vec<i32>,
    lengths: Vec<u32>,
    bucket_lengths_per_row: Vec<usize>,
    buckets: Vec<f64>,
}

impl SideColumns {
    fn push(&mut self, spans: &[Span], buckets: &[f64]) {
        self.span_lengths_per_row.push(spans.len());
        for s in spans {
            self.offsets.push(s.offset);
            self.lengths.push(s.length);
        }
        self.bucket_lengths_per_row.push(buckets.len());
        self.buckets.extend_from_slice(buckets);
    }

    fn columns(self, out: &mut Vec<ArrayRef>) -> Result<(), arrow_schema::ArrowError> {
        out.push(list(
            DataType::Int32,
            self.span_lengths_per_row.clone(),
            Arc::new(Int32Array::from(self.offsets)),
        )?);
        out.push(list(
            DataType::UInt32,
            self.span_lengths_per_row,
            Arc::new(UInt32Array::from(self.lengths)),
        )?);
        out.push(list(
            DataType::Float64,
            self.bucket_lengths_per_row,
            Arc::new(Float64Array::from(self.buckets)),
        )?);
        Ok(())
    }
}

/// The columns of `histograms.parquet` for `rows` (series id, sample), in schema order.
pub(crate) fn columns(rows: &[(u64, HistogramSample)]) -> Result<Vec<ArrayRef>, arrow_schema::ArrowError> {
    let mut ids = Vec::with_capacity(rows.len());
    let mut ts = Vec::with_capacity(rows.len());
    let mut hints = Vec::with_capacity(rows.len());
    let mut schemas = Vec::with_capacity(rows.len());
    let mut zero_thresholds = Vec::with_capacity(rows.len());
    let mut zero_counts = Vec::with_capacity(rows.len());
    let mut counts = Vec::with_capacity(rows.len());
    let mut sums = Vec::with_capacity(rows.len());
    let mut positive = SideColumns::default();
    let mut negative = SideColumns::default();
    let mut custom_lengths = Vec::with_capacity(rows.len());
    let mut custom = Vec::new();
    for (id, s) in rows {
        let h = &s.h;
        ids.push(*id);
        ts.push(s.timestamp_ms);
        hints.push(hint_to_byte(h.counter_reset_hint));
        schemas.push(h.schema);
        zero_thresholds.push(h.zero_threshold);
        zero_counts.push(h.zero_count);
        counts.push(h.count);
        sums.push(h.sum);
        positive.push(&h.positive_spans, &h.positive_buckets);
        negative.push(&h.negative_spans, &h.negative_buckets);
        custom_lengths.push(h.custom_values.len());
        custom.extend_from_slice(&h.custom_values);
    }
    let mut out: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(ids)),
        Arc::new(Int64Array::from(ts)),
        Arc::new(UInt8Array::from(hints)),
        Arc::new(Int32Array::from(schemas)),
        Arc::new(Float64Array::from(zero_thresholds)),
        Arc::new(Float64Array::from(zero_counts)),
        Arc::new(Float64Array::from(counts)),
        Arc::new(Float64Array::from(sums)),
    ];
    positive.columns(&mut out)?;
    negative.columns(&mut out)?;
    out.push(list(
        DataType::Float64,
        custom_lengths,
        Arc::new(Float64Array::from(custom)),
    )?);
    Ok(out)
}

/// The values of row `row` of a list column whose items are `T`.
fn list_values<'a, T: Array + 'static>(
    list: &'a ListArray,
    row: usize,
    path: &Path,
) -> Result<(&'a T, usize, usize), BlockError> {
    let offsets = list.value_offsets();
    let (Some(&a), Some(&b)) = (offsets.get(row), offsets.get(row + 1)) else {
        return Err(BlockError::corrupt(path, format!("list offsets miss row {row}")));
    };
    let values = list
        .values()
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| BlockError::corrupt(path, "list items of the wrong type"))?;
    let (a, b) = (a.max(0) as usize, b.max(0) as usize);
    if b < a || b > values.len() {
        return Err(BlockError::corrupt(
            path,
            format!("list offsets {a}..{b} out of range"),
        ));
    }
    Ok((values, a, b))
}

/// The lists of one side (positive or negative) of a batch.
struct SideLists<'a> {
    offsets: &'a ListArray,
    lengths: &'a ListArray,
    buckets: &'a ListArray,
}

impl<'a> SideLists<'a> {
    fn of(batch: &'a RecordBatch, side: &str, path: &Path) -> Result<SideLists<'a>, BlockError> {
        Ok(SideLists {
            offsets: column::<ListArray>(batch, &format!("{side}_span_offsets"), path)?,
            lengths: column::<ListArray>(batch, &format!("{side}_span_lengths"), path)?,
            buckets: column::<ListArray>(batch, &format!("{side}_buckets"), path)?,
        })
    }

    fn row(&self, row: usize, path: &Path) -> Result<(Vec<Span>, Vec<f64>), BlockError> {
        let (offs, a, b) = list_values::<Int32Array>(self.offsets, row, path)?;
        let (lens, c, d) = list_values::<UInt32Array>(self.lengths, row, path)?;
        if b - a != d - c {
            return Err(BlockError::corrupt(
                path,
                format!("span offsets and lengths differ in row {row}"),
            ));
        }
        let mut spans = Vec::with_capacity(b - a);
        for (i, j) in (a..b).zip(c..d) {
            spans.push(Span {
                offset: offs.value(i),
                length: lens.value(j),
            });
        }
        let (vals, a, b) = list_values::<Float64Array>(self.buckets, row, path)?;
        Ok((spans, vals.values()[a..b].to_vec()))
    }
}

/// Decodes the rows of `batch` for which `keep(series_id, timestamp)` holds, in order.
fn decode_batch(
    batch: &RecordBatch,
    path: &Path,
    mut keep: impl FnMut(u64, i64) -> bool,
    out: &mut Vec<(u64, HistogramSample)>,
) -> Result<(), BlockError> {
    let ids = column::<UInt64Array>(batch, "series_id", path)?;
    let ts = column::<Int64Array>(batch, "timestamp_ms", path)?;
    let hints = column::<UInt8Array>(batch, "counter_reset_hint", path)?;
    let schemas = column::<Int32Array>(batch, "schema", path)?;
    let zero_thresholds = column::<Float64Array>(batch, "zero_threshold", path)?;
    let zero_counts = column::<Float64Array>(batch, "zero_count", path)?;
    let counts = column::<Float64Array>(batch, "count", path)?;
    let sums = column::<Float64Array>(batch, "sum", path)?;
    let positive = SideLists::of(batch, "positive", path)?;
    let negative = SideLists::of(batch, "negative", path)?;
    let custom = column::<ListArray>(batch, "custom_values", path)?;
    for row in 0..batch.num_rows() {
        let (id, t) = (ids.value(row), ts.value(row));
        if !keep(id, t) {
            continue;
        }
        let (positive_spans, positive_buckets) = positive.row(row, path)?;
        let (negative_spans, negative_buckets) = negative.row(row, path)?;
        let (cv, a, b) = list_values::<Float64Array>(custom, row, path)?;
        let h = FloatHistogram {
            counter_reset_hint: hint_from_byte(hints.value(row)),
            schema: schemas.value(row),
            zero_threshold: zero_thresholds.value(row),
            zero_count: zero_counts.value(row),
            count: counts.value(row),
            sum: sums.value(row),
            positive_spans,
            negative_spans,
            positive_buckets,
            negative_buckets,
            custom_values: Arc::from(&cv.values()[a..b]),
        };
        out.push((id, HistogramSample::new(t, h)));
    }
    Ok(())
}

fn open_reader(files: &BlockFiles) -> Result<ParquetRecordBatchReaderBuilder<BlockFile>, BlockError> {
    let file = files.open(FILE)?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| BlockError::parquet(&files.path(FILE), e))
}

fn range_of(stats: Option<&Statistics>) -> Option<(i64, i64)> {
    match stats {
        Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
            (Some(a), Some(b)) => Some((*a, *b)),
            _ => None,
        },
        _ => None,
    }
}

/// Reads the histogram samples in `[start, end]` of the series whose ids are in `ids`
/// (ascending) from the block's file, as `(series_id, sample)` in file order. Row groups
/// whose id or timestamp statistics miss are skipped.
fn read(
    files: &BlockFiles,
    ids: &[u64],
    start: i64,
    end: i64,
) -> Result<Vec<(u64, HistogramSample)>, BlockError> {
    let path = &files.path(FILE);
    let mut out = Vec::new();
    let (Some(&lo_id), Some(&hi_id)) = (ids.first(), ids.last()) else {
        return Ok(out);
    };
    let builder = open_reader(files)?;
    let mut groups = Vec::new();
    for (i, rg) in builder.metadata().row_groups().iter().enumerate() {
        // Ids are stored as INT64 (the u64's bits); block ids stay far below 2^63.
        let id_ok = range_of(rg.columns().first().and_then(|c| c.statistics()))
            .is_none_or(|(a, b)| b as u64 >= lo_id && a as u64 <= hi_id);
        let time_ok = range_of(rg.columns().get(1).and_then(|c| c.statistics()))
            .is_none_or(|(a, b)| b >= start && a <= end);
        if id_ok && time_ok {
            groups.push(i);
        }
    }
    if groups.is_empty() {
        return Ok(out);
    }
    let reader = builder
        .with_row_groups(groups)
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(|e| BlockError::parquet(path, e))?;
    for batch in reader {
        let batch = batch.map_err(|source| BlockError::Arrow {
            path: path.to_path_buf(),
            source,
        })?;
        let keep = |id: u64, t: i64| t >= start && t <= end && ids.binary_search(&id).is_ok();
        decode_batch(&batch, path, keep, &mut out)?;
    }
    Ok(out)
}

/// Appends the histogram samples in `[start, end]` of the block series `ids` (ascending
/// block ids, all in `index`) to `out`, one entry per series, labelled from `index`.
pub(crate) fn select(
    files: &BlockFiles,
    index: &BlockIndex,
    ids: &[u64],
    start: i64,
    end: i64,
    out: &mut Vec<SeriesSamples>,
) -> Result<(), BlockError> {
    let path = &files.path(FILE);
    let mut current: Option<u64> = None;
    for (id, sample) in read(files, ids, start, end)? {
        if current != Some(id) {
            let labels = index.labels_of(id, path, "histogram")?;
            out.push(SeriesSamples {
                labels,
                samples: Vec::new(),
                histograms: Vec::new(),
            });
            current = Some(id);
        }
        if let Some(last) = out.last_mut() {
            last.histograms.push(sample);
        }
    }
    Ok(())
}

/// Reads `histograms.parquet` front to back for compaction, handing out one series'
/// rows at a time; a block without the file hands out nothing.
pub(crate) struct HistogramCursor {
    path: PathBuf,
    reader: Option<ParquetRecordBatchReader>,
    buffered: VecDeque<(u64, HistogramSample)>,
}

impl HistogramCursor {
    /// Opens the block's file, if it has one.
    pub(crate) fn open(files: &BlockFiles) -> Result<HistogramCursor, BlockError> {
        let path = files.path(FILE);
        let reader = if files.has(FILE) {
            Some(
                open_reader(files)?
                    .with_batch_size(READ_BATCH_ROWS)
                    .build()
                    .map_err(|e| BlockError::parquet(&path, e))?,
            )
        } else {
            None
        };
        Ok(HistogramCursor {
            path,
            reader,
            buffered: VecDeque::new(),
        })
    }

    /// Appends the rows of series `id` to `out`; rows of smaller ids (none, in a valid
    /// block) are skipped.
    pub(crate) fn take(&mut self, id: u64, out: &mut Vec<HistogramSample>) -> Result<(), BlockError> {
        loop {
            if self.buffered.is_empty() {
                let Some(reader) = self.reader.as_mut() else {
                    return Ok(());
                };
                let Some(batch) = reader.next() else {
                    self.reader = None;
                    return Ok(());
                };
                let batch = batch.map_err(|source| BlockError::Arrow {
                    path: self.path.clone(),
                    source,
                })?;
                let mut rows = Vec::with_capacity(batch.num_rows());
                decode_batch(&batch, &self.path, |_, _| true, &mut rows)?;
                self.buffered.extend(rows);
                continue;
            }
            match self.buffered.front() {
                Some((row_id, _)) if *row_id < id => {
                    self.buffered.pop_front();
                }
                Some((row_id, _)) if *row_id == id => {
                    if let Some((_, s)) = self.buffered.pop_front() {
                        out.push(s);
                    }
                }
                _ => return Ok(()),
            }
        }
    }
}
