//! Reading a block's Parquet files front to back a batch at a time — the series list
//! (`SeriesCursor`, also a range of it for a query's index) and the samples
//! (`SampleCursor`, for compaction) — and the reader settings every read of a block uses.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_array::{Array, Int64Array, Int8Array, ListArray, StringArray, StructArray, UInt64Array};
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::file::metadata::PageIndexPolicy;

use super::decimal::{SeriesValues, ValueColumns};
use super::meta::BlockSeries;
use crate::metrics::decimal::MAX_SCALE;
use crate::model::{Label, Labels, Sample};
use crate::storage::object::{BlockFile, BlockFiles};
use crate::storage::parquet::{column, optional_column};
use crate::storage::BlockError;

/// The series list of a block.
pub(super) const SERIES: &str = "series.parquet";
/// The samples of a block.
pub(super) const SAMPLES: &str = "samples.parquet";

/// Page indexes are read when the file has them (every block Didban writes does).
pub(super) fn reader_options() -> ArrowReaderOptions {
    ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional)
}

/// A reader of file `name` of the block; `query` says a query reads it (a remote file is
/// then worth caching), as opposed to a one-off pass (open, compaction).
fn open_builder(
    files: &BlockFiles,
    name: &str,
    query: bool,
) -> Result<ParquetRecordBatchReaderBuilder<BlockFile>, BlockError> {
    let file = if query {
        files.open(name)?
    } else {
        files.open_once(name)?
    };
    ParquetRecordBatchReaderBuilder::try_new_with_options(file, reader_options())
        .map_err(|e| BlockError::parquet(&files.path(name), e))
}

/// Reads `series.parquet` front to back one record batch at a time, checking ids are
/// dense and in order: the index loader and compaction read a series list through it
/// without holding more than a batch of it besides what they keep.
pub(crate) struct SeriesCursor {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    buffered: VecDeque<BlockSeries>,
    next_id: u64,
}

impl SeriesCursor {
    /// Opens the block's `series.parquet` for one pass (open, compaction).
    pub(crate) fn open(files: &BlockFiles) -> Result<SeriesCursor, BlockError> {
        let path = files.path(SERIES);
        let reader = open_builder(files, SERIES, false)?
            .with_batch_size(8 * 1024)
            .build()
            .map_err(|e| BlockError::parquet(&path, e))?;
        Ok(SeriesCursor {
            path,
            reader,
            buffered: VecDeque::new(),
            next_id: 0,
        })
    }

    /// Opens the block's `series.parquet` to read only series `start..end` (ids are rows),
    /// for a query's index.
    pub(crate) fn open_range(files: &BlockFiles, start: u64, end: u64) -> Result<SeriesCursor, BlockError> {
        let path = files.path(SERIES);
        let mut selectors = Vec::new();
        if start > 0 {
            selectors.push(RowSelector::skip(start as usize));
        }
        selectors.push(RowSelector::select(end.saturating_sub(start) as usize));
        let reader = open_builder(files, SERIES, true)?
            .with_batch_size(8 * 1024)
            .with_row_selection(RowSelection::from(selectors))
            .build()
            .map_err(|e| BlockError::parquet(&path, e))?;
        Ok(SeriesCursor {
            path,
            reader,
            buffered: VecDeque::new(),
            next_id: start,
        })
    }

    /// The next series without taking it; `None` at the end of the file.
    pub(crate) fn peek(&mut self) -> Result<Option<&BlockSeries>, BlockError> {
        self.fill()?;
        Ok(self.buffered.front())
    }

    /// Takes the next series; `None` at the end of the file.
    pub(crate) fn next_series(&mut self) -> Result<Option<BlockSeries>, BlockError> {
        self.fill()?;
        Ok(self.buffered.pop_front())
    }

    /// Takes the next series when `wanted` accepts it; `None` otherwise and at the end.
    pub(crate) fn next_series_if(
        &mut self,
        wanted: impl FnOnce(&BlockSeries) -> bool,
    ) -> Result<Option<BlockSeries>, BlockError> {
        self.fill()?;
        if self.buffered.front().is_some_and(wanted) {
            return Ok(self.buffered.pop_front());
        }
        Ok(None)
    }

    /// Decodes record batches until a series is buffered or the file ends.
    fn fill(&mut self) -> Result<(), BlockError> {
        while self.buffered.is_empty() {
            let Some(batch) = self.reader.next() else {
                return Ok(());
            };
            let batch = batch.map_err(|source| BlockError::Arrow {
                path: self.path.clone(),
                source,
            })?;
            decode_series(&batch, &self.path, &mut self.next_id, &mut self.buffered)?;
        }
        Ok(())
    }
}

/// Appends the series of one `series.parquet` batch to `out`; `next_id` is the id the
/// first row must have.
fn decode_series(
    batch: &RecordBatch,
    path: &Path,
    next_id: &mut u64,
    out: &mut VecDeque<BlockSeries>,
) -> Result<(), BlockError> {
    let ids = column::<UInt64Array>(batch, "series_id", path)?;
    let labels = column::<ListArray>(batch, "labels", path)?;
    let first_rows = column::<UInt64Array>(batch, "first_row", path)?;
    let row_counts = column::<UInt64Array>(batch, "row_count", path)?;
    let min_ts = column::<Int64Array>(batch, "min_time_ms", path)?;
    let max_ts = column::<Int64Array>(batch, "max_time_ms", path)?;
    // Only in raw blocks of format 3 on.
    let scales = optional_column::<Int8Array>(batch, "value_scale", path)?;
    // Only in raw blocks of format 4 on.
    let bases = optional_column::<Int64Array>(batch, "scaled_base", path)?;
    let pairs = labels
        .values()
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(|| BlockError::corrupt(path, "labels are not a list of structs"))?;
    let names = pairs
        .column_by_name("name")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| BlockError::corrupt(path, "labels lack a string name field"))?;
    let values = pairs
        .column_by_name("value")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| BlockError::corrupt(path, "labels lack a string value field"))?;
    let offsets = labels.value_offsets();
    for row in 0..batch.num_rows() {
        if ids.value(row) != *next_id {
            return Err(BlockError::corrupt(
                path,
                format!("series id {} out of sequence", ids.value(row)),
            ));
        }
        *next_id += 1;
        let from = offsets[row] as usize;
        let to = offsets[row + 1] as usize;
        let mut list = Vec::with_capacity(to.saturating_sub(from));
        for i in from..to {
            list.push(Label::new(names.value(i), values.value(i)));
        }
        let labels = Labels::new(list).map_err(|e| BlockError::corrupt(path, e.to_string()))?;
        let value_scale = match scales.filter(|s| s.is_valid(row)).map(|s| s.value(row)) {
            None => None,
            Some(k) => match u8::try_from(k) {
                Ok(k) if k <= MAX_SCALE => Some(k),
                _ => {
                    return Err(BlockError::corrupt(
                        path,
                        format!(
                            "value_scale {k} of series {} is not in 0..={MAX_SCALE}",
                            *next_id - 1
                        ),
                    ))
                }
            },
        };
        out.push_back(BlockSeries {
            labels,
            first_row: first_rows.value(row),
            row_count: row_counts.value(row),
            min_t: min_ts.value(row),
            max_t: max_ts.value(row),
            value_scale,
            scaled_base: bases.filter(|b| b.is_valid(row)).map_or(0, |b| b.value(row)),
        });
    }
    Ok(())
}

/// Reads `samples.parquet` front to back, handing out the rows of one series at a time.
pub(crate) struct SampleCursor {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    /// The batch being handed out, and the position of its next row.
    batch: Option<RecordBatch>,
    pos: usize,
    /// The values of the rows being taken (kept for its allocation).
    values: Vec<f64>,
}

impl SampleCursor {
    /// Opens the block's `samples.parquet` for one pass (compaction).
    pub(crate) fn open(files: &BlockFiles) -> Result<SampleCursor, BlockError> {
        let path = files.path(SAMPLES);
        let reader = open_builder(files, SAMPLES, false)?
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| BlockError::parquet(&path, e))?;
        Ok(SampleCursor {
            path,
            reader,
            batch: None,
            pos: 0,
            values: Vec::new(),
        })
    }

    /// Appends the next rows, those of `series` (the next series of the block), to `out`.
    pub(crate) fn take(&mut self, series: &BlockSeries, out: &mut Vec<Sample>) -> Result<(), BlockError> {
        let mut n = usize::try_from(series.row_count).unwrap_or(usize::MAX);
        let mut values = SeriesValues::of(series);
        while n > 0 {
            let rows = self.batch.as_ref().map_or(0, RecordBatch::num_rows);
            if self.pos == rows {
                let Some(batch) = self.reader.next() else {
                    return Err(BlockError::corrupt(
                        &self.path,
                        "fewer sample rows than series.parquet lists",
                    ));
                };
                let batch = batch.map_err(|source| BlockError::Arrow {
                    path: self.path.clone(),
                    source,
                })?;
                self.batch = Some(batch);
                self.pos = 0;
                continue;
            }
            let Some(batch) = self.batch.as_ref() else {
                continue;
            };
            let ts = column::<Int64Array>(batch, "timestamp_ms", &self.path)?;
            let vals = ValueColumns::of(batch, &self.path)?;
            let k = (rows - self.pos).min(n);
            self.values.clear();
            vals.decode(self.pos..self.pos + k, &mut values, &self.path, &mut self.values)?;
            let times = ts.values().get(self.pos..self.pos + k).unwrap_or_default();
            out.reserve(k);
            for (&t, &value) in times.iter().zip(&self.values) {
                out.push(Sample::new(t, value));
            }
            self.pos += k;
            n -= k;
        }
        Ok(())
    }
}
