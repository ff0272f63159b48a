//! Writing a block: series are added in label order, their rows stream into
//! `series.parquet` and their samples into `samples.parquet` (native histogram samples
//! into `histograms.parquet`, created with the first one) a batch at a time, and
//! `finish` writes the footers and `meta.json`, fsyncs everything and publishes the
//! temporary directory (`storage::block_dir`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::{
    ArrayRef, Float64Array, Int64Array, Int8Array, ListArray, StringArray, StructArray, UInt64Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::decimal::{delta_base, SCALED_DELTA};
use super::meta::{BlockMeta, BlockSeries, CompactionMeta, BLOCK_FORMAT_VERSION, DOWNSAMPLED_FORMAT_VERSION};
use super::{aggregates, histograms};
use crate::metrics::decimal;
use crate::model::{HistogramSample, Labels, Sample, METRIC_NAME_LABEL};
use crate::storage::block_dir::TmpBlockDir;
use crate::storage::BlockError;
use crate::window::Window;

/// Rows per row group of `samples.parquet`.
pub(crate) const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows per data page of `samples.parquet`, the unit a query skips or decodes: 32,768
/// rather than 8,192 took the bench's block from 0.759 to 0.687 bytes/sample (page headers,
/// statistics and delta headers are per page, and ZSTD sees more at once), for 4× more rows
/// decoded around a series a query reads (docs/benchmarks.md, "Block size").
const PAGE_ROWS: usize = 32 * 1024;
/// ZSTD level of `samples.parquet`: 6 rather than 3 took the bench's block from 0.773 to
/// 0.759 bytes/sample at the same write time; 9 gave nothing more, 15 and 19 cost time.
const SAMPLES_ZSTD_LEVEL: i32 = 6;
/// Rows buffered before they are handed to the Parquet writer.
const BATCH_ROWS: usize = 64 * 1024;
/// Histogram rows buffered before they are handed to the Parquet writer (each holds its
/// buckets, so fewer than float rows).
const HISTOGRAM_BATCH_ROWS: usize = 4 * 1024;
/// Series buffered before they are handed to the Parquet writer of `series.parquet`.
const SERIES_BATCH_ROWS: usize = 4 * 1024;
/// Rows per row group of `series.parquet`: the Parquet writer keeps a row group's encoded
/// pages in memory until it is complete, so this bounds what it holds.
pub(crate) const SERIES_ROW_GROUP_ROWS: usize = 32 * 1024;

/// The Arrow schema of `samples.parquet` of a raw block: every row has either `value` (a
/// float) or `scaled_delta` (the difference of a decimal value × 10^`value_scale` of its
/// series from the series' previous one, see `decimal`).
pub(crate) fn samples_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt64, false),
        Field::new("timestamp_ms", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
        Field::new(SCALED_DELTA, DataType::Int64, true),
    ]))
}

fn label_struct_fields() -> Fields {
    Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ])
}

fn label_item_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Struct(label_struct_fields()), false))
}

/// The Arrow schema of `series.parquet`; a raw block's (`scaled`) ends with `value_scale`,
/// the decimal scale of the series' scaled rows (null: none of its rows is scaled), and
/// `scaled_base`, what its first `scaled_delta` adds to (null likewise).
pub(crate) fn series_schema(scaled: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("series_id", DataType::UInt64, false),
        Field::new("metric_name", DataType::Utf8, false),
        Field::new("labels", DataType::List(label_item_field()), false),
        Field::new("first_row", DataType::UInt64, false),
        Field::new("row_count", DataType::UInt64, false),
        Field::new("min_time_ms", DataType::Int64, false),
        Field::new("max_time_ms", DataType::Int64, false),
    ];
    if scaled {
        fields.push(Field::new("value_scale", DataType::Int8, true));
        fields.push(Field::new("scaled_base", DataType::Int64, true));
    }
    Arc::new(Schema::new(fields))
}

fn samples_properties() -> Result<WriterProperties, parquet::errors::ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(SAMPLES_ZSTD_LEVEL)?))
        .set_dictionary_enabled(false)
        .set_column_encoding(ColumnPath::from("series_id"), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(ColumnPath::from("timestamp_ms"), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(ColumnPath::from("value"), Encoding::BYTE_STREAM_SPLIT)
        .set_column_encoding(ColumnPath::from(SCALED_DELTA), Encoding::DELTA_BINARY_PACKED)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(PAGE_ROWS)
        .build())
}

fn series_properties() -> Result<WriterProperties, parquet::errors::ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_dictionary_enabled(ColumnPath::from("series_id"), false)
        .set_column_encoding(ColumnPath::from("series_id"), Encoding::DELTA_BINARY_PACKED)
        // Ascending by a series' row count: as differences 0.01 bytes a series where a
        // dictionary fell back to plain values, 3.4 (1 M series, `docs/benchmarks.md`).
        .set_column_dictionary_enabled(ColumnPath::from("first_row"), false)
        .set_column_encoding(ColumnPath::from("first_row"), Encoding::DELTA_BINARY_PACKED)
        .set_max_row_group_row_count(Some(SERIES_ROW_GROUP_ROWS))
        .build())
}

/// One Parquet file of a block being written: its path and the writer until finished.
struct ParquetOut {
    path: PathBuf,
    writer: Option<ArrowWriter<File>>,
}

impl ParquetOut {
    fn create(path: PathBuf, schema: SchemaRef, props: WriterProperties) -> Result<ParquetOut, BlockError> {
        let file = File::create(&path).map_err(|e| BlockError::io(&path, e))?;
        let writer =
            ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| BlockError::parquet(&path, e))?;
        Ok(ParquetOut {
            path,
            writer: Some(writer),
        })
    }

    fn arrow_err(&self, source: arrow_schema::ArrowError) -> BlockError {
        BlockError::Arrow {
            path: self.path.clone(),
            source,
        }
    }

    /// Hands one record batch to the Parquet writer, which encodes it into the row group
    /// in progress (flushed to the file when it reaches its row count).
    fn write(&mut self, columns: Vec<ArrayRef>, schema: SchemaRef) -> Result<(), BlockError> {
        let batch = RecordBatch::try_new(schema, columns).map_err(|e| self.arrow_err(e))?;
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| BlockError::corrupt(&self.path, "Parquet writer already closed"))?;
        writer
            .write(&batch)
            .map_err(|e| BlockError::parquet(&self.path, e))
    }

    /// Writes the footer and fsyncs the file.
    fn finish(&mut self) -> Result<(), BlockError> {
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| BlockError::corrupt(&self.path, "Parquet writer already closed"))?;
        writer.finish().map_err(|e| BlockError::parquet(&self.path, e))?;
        writer
            .inner()
            .sync_all()
            .map_err(|e| BlockError::io(&self.path, e))
    }
}

/// A block being written in a temporary directory; dropped unfinished, it leaves nothing.
///
/// Both files are streamed: samples leave in batches of [`BATCH_ROWS`] rows and series in
/// batches of [`SERIES_BATCH_ROWS`], and each Parquet writer holds one row group at most, so
/// the writer's memory does not grow with the series and samples of the block; what
/// `meta.json` needs (counts, time range) and the last labels (for the order check) are
/// all it keeps of what was written.
pub(crate) struct BlockWriter {
    dir: TmpBlockDir,
    samples: ParquetOut,
    ids: Vec<u64>,
    timestamps: Vec<i64>,
    /// A row's float value, or `None` when it is stored scaled (in `scaled`).
    values: Vec<Option<f64>>,
    scaled: Vec<Option<i64>>,
    /// Window width of a downsampled block (0: raw samples, `ids`/`timestamps`/`values`
    /// buffer the rows); a downsampled block buffers its rows in `windows` instead.
    resolution_ms: i64,
    windows: Vec<Window>,
    /// `histograms.parquet`, once a histogram sample came.
    histograms_out: Option<ParquetOut>,
    /// Histogram rows not handed to the Parquet writer yet.
    histogram_rows: Vec<(u64, HistogramSample)>,
    num_histograms: u64,
    series_out: ParquetOut,
    /// Series added since the last series batch was written.
    pending: Vec<BlockSeries>,
    /// Labels of the last series added.
    last_labels: Option<Labels>,
    num_series: u64,
    rows: u64,
    min_t: i64,
    max_t: i64,
}

impl BlockWriter {
    /// Starts a block in a fresh temporary directory under `blocks_dir`.
    pub(crate) fn new(blocks_dir: &Path) -> Result<BlockWriter, BlockError> {
        BlockWriter::with_resolution(blocks_dir, 0)
    }

    /// Starts a downsampled block of windows `resolution_ms` wide (0: a raw block), whose
    /// `samples.parquet` has the aggregate columns of `aggregates`.
    pub(crate) fn with_resolution(blocks_dir: &Path, resolution_ms: i64) -> Result<BlockWriter, BlockError> {
        let dir = TmpBlockDir::create(blocks_dir)?;
        let samples_path = dir.path().join("samples.parquet");
        let samples = if resolution_ms > 0 {
            let props =
                aggregates::properties(ROW_GROUP_ROWS).map_err(|e| BlockError::parquet(&samples_path, e))?;
            ParquetOut::create(samples_path, aggregates::schema(), props)?
        } else {
            let props = samples_properties().map_err(|e| BlockError::parquet(&samples_path, e))?;
            ParquetOut::create(samples_path, samples_schema(), props)?
        };
        let series_path = dir.path().join("series.parquet");
        let props = series_properties().map_err(|e| BlockError::parquet(&series_path, e))?;
        let series_out = ParquetOut::create(series_path, series_schema(resolution_ms == 0), props)?;
        Ok(BlockWriter {
            dir,
            samples,
            ids: Vec::with_capacity(BATCH_ROWS),
            timestamps: Vec::with_capacity(BATCH_ROWS),
            values: Vec::with_capacity(BATCH_ROWS),
            scaled: Vec::with_capacity(BATCH_ROWS),
            resolution_ms,
            windows: Vec::new(),
            histograms_out: None,
            histogram_rows: Vec::new(),
            num_histograms: 0,
            series_out,
            pending: Vec::with_capacity(SERIES_BATCH_ROWS),
            last_labels: None,
            num_series: 0,
            rows: 0,
            min_t: i64::MAX,
            max_t: i64::MIN,
        })
    }

    /// Adds one series with its float and native histogram samples. Series must come in
    /// ascending label order, each kind sorted by timestamp without duplicates; a series
    /// without samples is skipped. Its time range in `series.parquet` covers both kinds.
    pub(crate) fn add_series(
        &mut self,
        labels: &Labels,
        samples: &[Sample],
        histograms: &[HistogramSample],
    ) -> Result<(), BlockError> {
        debug_assert!(
            self.resolution_ms == 0,
            "raw samples added to a downsampled block"
        );
        debug_assert!(
            samples.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms),
            "samples of {labels} not sorted by timestamp without duplicates"
        );
        let floats = (
            samples.first().map(|s| s.timestamp_ms),
            samples.last().map(|s| s.timestamp_ms),
        );
        let scale = decimal::series_scale(samples.iter().map(|s| s.value));
        let scaled_at = |v: f64| scale.and_then(|k| decimal::to_scaled(v, k));
        // The base needs the first two scaled values only.
        let mut scaled_rows = samples.iter().filter_map(|s| scaled_at(s.value));
        let base = delta_base(scaled_rows.next(), scaled_rows.next());
        let Some(series_id) = self.begin_series(labels, floats, samples.len(), (scale, base), histograms)?
        else {
            return Ok(());
        };
        let mut previous = base;
        for s in samples {
            self.ids.push(series_id);
            self.timestamps.push(s.timestamp_ms);
            match scaled_at(s.value) {
                Some(m) => {
                    self.values.push(None);
                    self.scaled.push(Some(m - previous));
                    previous = m;
                }
                None => {
                    self.values.push(Some(s.value));
                    self.scaled.push(None);
                }
            }
            if self.ids.len() >= BATCH_ROWS {
                self.flush_samples()?;
            }
        }
        self.add_histograms(series_id, histograms)
    }

    /// Adds one series of a downsampled block: its windows (sorted by timestamp, one per
    /// window) and its native histogram samples, which stay raw. Same order rules as
    /// [`BlockWriter::add_series`].
    pub(crate) fn add_windows(
        &mut self,
        labels: &Labels,
        windows: &[Window],
        histograms: &[HistogramSample],
    ) -> Result<(), BlockError> {
        debug_assert!(self.resolution_ms > 0, "windows added to a raw block");
        debug_assert!(
            windows.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms),
            "windows of {labels} not sorted by timestamp without duplicates"
        );
        let floats = (
            windows.first().map(|w| w.timestamp_ms),
            windows.last().map(|w| w.timestamp_ms),
        );
        let Some(series_id) = self.begin_series(labels, floats, windows.len(), (None, 0), histograms)? else {
            return Ok(());
        };
        for w in windows {
            self.ids.push(series_id);
            self.windows.push(*w);
            if self.ids.len() >= BATCH_ROWS {
                self.flush_samples()?;
            }
        }
        self.add_histograms(series_id, histograms)
    }

    /// Checks the order and registers a series whose float rows span `floats` (first and
    /// last timestamp) and number `rows`, scaled at `value_scale` from `scaled_base`;
    /// returns its id, or `None` for a series with no data, which is skipped.
    fn begin_series(
        &mut self,
        labels: &Labels,
        floats: (Option<i64>, Option<i64>),
        rows: usize,
        (value_scale, scaled_base): (Option<u8>, i64),
        histograms: &[HistogramSample],
    ) -> Result<Option<u64>, BlockError> {
        let mut range: Option<(i64, i64)> = None;
        let ends = [
            floats.0,
            floats.1,
            histograms.first().map(|s| s.timestamp_ms),
            histograms.last().map(|s| s.timestamp_ms),
        ];
        for t in ends.into_iter().flatten() {
            range = Some(range.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        }
        let Some((first_t, last_t)) = range else {
            return Ok(None);
        };
        debug_assert!(
            histograms
                .windows(2)
                .all(|w| w[0].timestamp_ms < w[1].timestamp_ms),
            "histograms of {labels} not sorted by timestamp without duplicates"
        );
        if let Some(prev) = &self.last_labels {
            if *prev >= *labels {
                return Err(BlockError::corrupt(
                    self.dir.path(),
                    format!("series {labels} added out of order after {prev}"),
                ));
            }
        }
        let series_id = self.num_series;
        self.num_series += 1;
        self.last_labels = Some(labels.clone());
        self.min_t = self.min_t.min(first_t);
        self.max_t = self.max_t.max(last_t);
        self.pending.push(BlockSeries {
            labels: labels.clone(),
            first_row: self.rows,
            row_count: rows as u64,
            min_t: first_t,
            max_t: last_t,
            value_scale,
            scaled_base,
        });
        self.rows += rows as u64;
        if self.pending.len() >= SERIES_BATCH_ROWS {
            self.flush_series()?;
        }
        Ok(Some(series_id))
    }

    /// Buffers the native histogram samples of series `series_id`.
    fn add_histograms(&mut self, series_id: u64, histograms: &[HistogramSample]) -> Result<(), BlockError> {
        for s in histograms {
            self.histogram_rows.push((series_id, s.clone()));
            if self.histogram_rows.len() >= HISTOGRAM_BATCH_ROWS {
                self.flush_histograms()?;
            }
        }
        self.num_histograms += histograms.len() as u64;
        Ok(())
    }

    /// Widens the block's time range to `[min_t, max_t]`: a downsampled block states the
    /// range of the data it summarises, which its windows' timestamps lie inside.
    pub(crate) fn cover(&mut self, min_t: i64, max_t: i64) {
        self.min_t = self.min_t.min(min_t);
        self.max_t = self.max_t.max(max_t);
    }

    /// Hands the buffered histogram rows to the writer of `histograms.parquet`, creating
    /// the file with the first ones.
    fn flush_histograms(&mut self) -> Result<(), BlockError> {
        if self.histogram_rows.is_empty() {
            return Ok(());
        }
        if self.histograms_out.is_none() {
            let path = self.dir.path().join(histograms::FILE);
            let props = histograms::properties().map_err(|e| BlockError::parquet(&path, e))?;
            self.histograms_out = Some(ParquetOut::create(path, histograms::schema(), props)?);
        }
        let Some(out) = self.histograms_out.as_mut() else {
            return Ok(());
        };
        let columns = histograms::columns(&self.histogram_rows).map_err(|e| out.arrow_err(e))?;
        self.histogram_rows.clear();
        out.write(columns, histograms::schema())
    }

    fn flush_samples(&mut self) -> Result<(), BlockError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        if self.resolution_ms > 0 {
            let ids = std::mem::take(&mut self.ids);
            let columns = aggregates::columns(ids, &self.windows);
            self.windows.clear();
            return self.samples.write(columns, aggregates::schema());
        }
        // The vectors are refilled to the same size: keep their capacity.
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(self.ids.drain(..))),
            Arc::new(Int64Array::from_iter_values(self.timestamps.drain(..))),
            Arc::new(Float64Array::from_iter(self.values.drain(..))),
            Arc::new(Int64Array::from_iter(self.scaled.drain(..))),
        ];
        self.samples.write(columns, samples_schema())
    }

    /// Writes the pending series as one record batch of `series.parquet`.
    fn flush_series(&mut self) -> Result<(), BlockError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let first_id = self.num_series - self.pending.len() as u64;
        let scaled = self.resolution_ms == 0;
        let columns =
            series_columns(first_id, &self.pending, scaled).map_err(|e| self.series_out.arrow_err(e))?;
        self.pending.clear();
        self.series_out.write(columns, series_schema(scaled))
    }

    /// Completes the block: writes the remaining rows and both footers, fsyncs everything
    /// and the directory, and renames it to `<mint>-<maxt>-<id>`. Returns `None` (and
    /// removes the temporary directory) when no series was added; on an error the temporary
    /// directory goes too.
    pub(crate) fn finish(mut self, compaction: CompactionMeta) -> Result<Option<PathBuf>, BlockError> {
        if self.num_series == 0 {
            return Ok(None);
        }
        self.flush_samples()?;
        self.samples.finish()?;
        self.flush_histograms()?;
        if let Some(out) = self.histograms_out.as_mut() {
            out.finish()?;
        }
        self.flush_series()?;
        self.series_out.finish()?;
        let meta = BlockMeta {
            format_version: if self.resolution_ms > 0 {
                DOWNSAMPLED_FORMAT_VERSION
            } else {
                BLOCK_FORMAT_VERSION
            },
            id: self.dir.id().to_string(),
            min_time_ms: self.min_t,
            max_time_ms: self.max_t,
            series: self.num_series,
            samples: self.rows,
            histogram_samples: self.num_histograms,
            compaction,
            resolution_ms: self.resolution_ms,
        };
        self.dir.write_meta(&meta)?;
        Ok(Some(self.dir.publish(self.min_t, self.max_t)?))
    }
}

/// The columns of `series.parquet` for `series`, whose first one has id `first_id`, with
/// `value_scale` when `scaled` (a raw block).
pub(crate) fn series_columns(
    first_id: u64,
    series: &[BlockSeries],
    scaled: bool,
) -> Result<Vec<ArrayRef>, arrow_schema::ArrowError> {
    let mut ids = Vec::with_capacity(series.len());
    let mut names = Vec::with_capacity(series.len());
    let mut label_counts = Vec::with_capacity(series.len());
    let mut label_names: Vec<&str> = Vec::new();
    let mut label_values: Vec<&str> = Vec::new();
    let mut first_rows = Vec::with_capacity(series.len());
    let mut row_counts = Vec::with_capacity(series.len());
    let mut min_ts = Vec::with_capacity(series.len());
    let mut max_ts = Vec::with_capacity(series.len());
    for (id, s) in (first_id..).zip(series) {
        ids.push(id);
        names.push(s.labels.get(METRIC_NAME_LABEL).unwrap_or_default());
        label_counts.push(s.labels.len());
        for l in s.labels.iter() {
            label_names.push(l.name);
            label_values.push(l.value);
        }
        first_rows.push(s.first_row);
        row_counts.push(s.row_count);
        min_ts.push(s.min_t);
        max_ts.push(s.max_t);
    }
    let pairs = StructArray::try_new(
        label_struct_fields(),
        vec![
            Arc::new(StringArray::from(label_names)) as ArrayRef,
            Arc::new(StringArray::from(label_values)) as ArrayRef,
        ],
        None,
    )?;
    let labels = ListArray::try_new(
        label_item_field(),
        OffsetBuffer::from_lengths(label_counts),
        Arc::new(pairs),
        None,
    )?;
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(ids)),
        Arc::new(StringArray::from(names)),
        Arc::new(labels),
        Arc::new(UInt64Array::from(first_rows)),
        Arc::new(UInt64Array::from(row_counts)),
        Arc::new(Int64Array::from(min_ts)),
        Arc::new(Int64Array::from(max_ts)),
    ];
    if scaled {
        // Scales are at most `decimal::MAX_SCALE`, so they fit an i8.
        let scales = series
            .iter()
            .map(|s| s.value_scale.and_then(|k| i8::try_from(k).ok()));
        columns.push(Arc::new(Int8Array::from_iter(scales)));
        let bases = series.iter().map(|s| s.value_scale.map(|_| s.scaled_base));
        columns.push(Arc::new(Int64Array::from_iter(bases)));
    }
    Ok(columns)
}
