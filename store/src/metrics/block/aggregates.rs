//! `samples.parquet` of a downsampled block: one row per series and window holding the
//! window's aggregates ([`Window`]). The first three columns are those of a raw block
//! (`series_id`, `timestamp_ms`, `value` = the window's last value), so a reader that only
//! knows raw blocks sees each window's last sample; the aggregates follow:
//!
//! | column | Arrow type | meaning |
//! |---|---|---|
//! | `count` | uint64 | samples in the window (stale markers left out) |
//! | `sum`, `min`, `max` | float64 | of their values |
//! | `first` | float64 | first value (the window's last value is `value`) |
//! | `counter` | float64 | reset-aware increase from `first` to `value` |

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::index::BlockIndex;
use super::rows::plan_rows;
use crate::storage::object::BlockFiles;
use crate::storage::parquet::column;
use crate::storage::BlockError;
use crate::window::{SeriesWindows, Window};

/// The float columns after `value`, in schema order.
const FLOAT_COLUMNS: [&str; 5] = ["sum", "min", "max", "first", "counter"];

/// The Arrow schema of a downsampled block's `samples.parquet`.
pub(crate) fn schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("series_id", DataType::UInt64, false),
        Field::new("timestamp_ms", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
        Field::new("count", DataType::UInt64, false),
    ];
    for name in FLOAT_COLUMNS {
        fields.push(Field::new(name, DataType::Float64, false));
    }
    Arc::new(Schema::new(fields))
}

/// Writer settings: those of raw samples (row groups of `row_group_rows`), with the
/// aggregates split by byte stream like `value` and the count delta-encoded (it is nearly
/// constant).
pub(crate) fn properties(row_group_rows: usize) -> Result<WriterProperties, parquet::errors::ParquetError> {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_dictionary_enabled(false)
        .set_column_encoding(ColumnPath::from("series_id"), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(ColumnPath::from("timestamp_ms"), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(ColumnPath::from("value"), Encoding::BYTE_STREAM_SPLIT)
        .set_column_encoding(ColumnPath::from("count"), Encoding::DELTA_BINARY_PACKED);
    for name in FLOAT_COLUMNS {
        b = b.set_column_encoding(ColumnPath::from(name), Encoding::BYTE_STREAM_SPLIT);
    }
    Ok(b.set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_data_page_row_count_limit(8192)
        .build())
}

/// The columns of one batch of rows: `ids[i]` is the series of `windows[i]`.
pub(crate) fn columns(ids: Vec<u64>, windows: &[Window]) -> Vec<ArrayRef> {
    let mut out: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(ids)),
        Arc::new(Int64Array::from_iter_values(
            windows.iter().map(|w| w.timestamp_ms),
        )),
        Arc::new(Float64Array::from_iter_values(windows.iter().map(|w| w.last))),
        Arc::new(UInt64Array::from_iter_values(windows.iter().map(|w| w.count))),
    ];
    let getters: [fn(&Window) -> f64; 5] = [|w| w.sum, |w| w.min, |w| w.max, |w| w.first, |w| w.counter];
    for get in getters {
        out.push(Arc::new(Float64Array::from_iter_values(windows.iter().map(get))));
    }
    out
}

/// The windows of row `row` of `batch`.
struct Decoded<'a> {
    ids: &'a UInt64Array,
    ts: &'a Int64Array,
    last: &'a Float64Array,
    count: &'a UInt64Array,
    floats: [&'a Float64Array; 5],
}

impl<'a> Decoded<'a> {
    fn of(batch: &'a RecordBatch, path: &std::path::Path) -> Result<Decoded<'a>, BlockError> {
        Ok(Decoded {
            ids: column::<UInt64Array>(batch, "series_id", path)?,
            ts: column::<Int64Array>(batch, "timestamp_ms", path)?,
            last: column::<Float64Array>(batch, "value", path)?,
            count: column::<UInt64Array>(batch, "count", path)?,
            floats: [
                column::<Float64Array>(batch, "sum", path)?,
                column::<Float64Array>(batch, "min", path)?,
                column::<Float64Array>(batch, "max", path)?,
                column::<Float64Array>(batch, "first", path)?,
                column::<Float64Array>(batch, "counter", path)?,
            ],
        })
    }

    fn window(&self, row: usize) -> Window {
        let [sum, min, max, first, counter] = self.floats;
        Window {
            timestamp_ms: self.ts.value(row),
            count: self.count.value(row),
            sum: sum.value(row),
            min: min.value(row),
            max: max.value(row),
            first: first.value(row),
            last: self.last.value(row),
            counter: counter.value(row),
        }
    }
}

/// Reads the windows in `[start, end]` of the series `wanted` (positions in
/// `index.series`), reading only the row groups and pages that hold them, and appends them
/// to `out` (one entry per series, histograms empty).
pub(crate) fn read_windows(
    files: &BlockFiles,
    metadata: &ArrowReaderMetadata,
    index: &BlockIndex,
    wanted: &[usize],
    start: i64,
    end: i64,
    out: &mut Vec<SeriesWindows>,
) -> Result<(), BlockError> {
    let path = &files.path(super::cursor::SAMPLES);
    let Some(plan) = plan_rows(files, metadata, index, wanted, Some((start, end)))? else {
        return Ok(());
    };
    let mut current: Option<u64> = None;
    for batch in plan.batches(path)? {
        let batch = batch?;
        let d = Decoded::of(&batch, path)?;
        for row in 0..batch.num_rows() {
            let t = d.ts.value(row);
            if t < start || t > end {
                continue;
            }
            let id = d.ids.value(row);
            if current != Some(id) {
                let labels = index.labels_of(id, path, "window")?;
                out.push(SeriesWindows {
                    labels,
                    windows: Vec::new(),
                    samples: Vec::new(),
                    histograms: Vec::new(),
                });
                current = Some(id);
            }
            if let Some(last) = out.last_mut() {
                last.windows.push(d.window(row));
            }
        }
    }
    Ok(())
}

/// Reads a downsampled block's `samples.parquet` front to back, handing out the windows of
/// one series at a time (for downsampling it further).
pub(crate) struct WindowCursor {
    path: std::path::PathBuf,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    buffered: Vec<Window>,
    pos: usize,
}

impl WindowCursor {
    /// Opens the block's `samples.parquet` for one pass.
    pub(crate) fn open(files: &BlockFiles) -> Result<WindowCursor, BlockError> {
        let name = super::cursor::SAMPLES;
        let path = files.path(name);
        let file = files.open_once(name)?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new_with_options(
            file,
            super::cursor::reader_options(),
        )
        .and_then(|b| b.with_batch_size(64 * 1024).build())
        .map_err(|e| BlockError::parquet(&path, e))?;
        Ok(WindowCursor {
            path,
            reader,
            buffered: Vec::new(),
            pos: 0,
        })
    }

    /// Appends the next `n` windows to `out`.
    pub(crate) fn take(&mut self, mut n: usize, out: &mut Vec<Window>) -> Result<(), BlockError> {
        while n > 0 {
            if self.pos == self.buffered.len() {
                let Some(batch) = self.reader.next() else {
                    return Err(BlockError::corrupt(
                        &self.path,
                        "fewer window rows than series.parquet lists",
                    ));
                };
                let batch = batch.map_err(|source| BlockError::Arrow {
                    path: self.path.clone(),
                    source,
                })?;
                let d = Decoded::of(&batch, &self.path)?;
                self.buffered.clear();
                for row in 0..batch.num_rows() {
                    self.buffered.push(d.window(row));
                }
                self.pos = 0;
            }
            let k = (self.buffered.len() - self.pos).min(n);
            out.extend_from_slice(&self.buffered[self.pos..self.pos + k]);
            self.pos += k;
            n -= k;
        }
        Ok(())
    }
}
