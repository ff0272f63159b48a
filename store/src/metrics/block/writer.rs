//! Writing a block: series are added in label order, samples stream into
//! `samples.parquet`, and `finish` writes `series.parquet` and `meta.json`, fsyncs
//! everything and publishes the temporary directory (`storage::block_dir`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, ListArray, StringArray, StructArray, UInt64Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::meta::{BlockMeta, BlockSeries, CompactionMeta, BLOCK_FORMAT_VERSION};
use crate::model::{Labels, Sample, METRIC_NAME_LABEL};
use crate::storage::block_dir::TmpBlockDir;
use crate::storage::BlockError;

/// Rows per row group of `samples.parquet`.
pub(crate) const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows buffered before they are handed to the Parquet writer.
const BATCH_ROWS: usize = 64 * 1024;

/// The Arrow schema of `samples.parquet`.
pub(crate) fn samples_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt64, false),
        Field::new("timestamp_ms", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
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

/// The Arrow schema of `series.parquet`.
pub(crate) fn series_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt64, false),
        Field::new("metric_name", DataType::Utf8, false),
        Field::new("labels", DataType::List(label_item_field()), false),
        Field::new("first_row", DataType::UInt64, false),
        Field::new("row_count", DataType::UInt64, false),
        Field::new("min_time_ms", DataType::Int64, false),
        Field::new("max_time_ms", DataType::Int64, false),
    ]))
}

fn samples_properties() -> Result<WriterProperties, parquet::errors::ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_dictionary_enabled(false)
        .set_column_encoding(ColumnPath::from("series_id"), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(ColumnPath::from("timestamp_ms"), Encoding::DELTA_BINARY_PACKED)
        .set_column_encoding(ColumnPath::from("value"), Encoding::BYTE_STREAM_SPLIT)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(8192)
        .build())
}

fn series_properties() -> Result<WriterProperties, parquet::errors::ParquetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_dictionary_enabled(ColumnPath::from("series_id"), false)
        .set_column_encoding(ColumnPath::from("series_id"), Encoding::DELTA_BINARY_PACKED)
        .build())
}

/// A block being written in a temporary directory; dropped unfinished, it leaves nothing.
pub(crate) struct BlockWriter {
    dir: TmpBlockDir,
    samples_path: PathBuf,
    samples: Option<ArrowWriter<File>>,
    ids: Vec<u64>,
    timestamps: Vec<i64>,
    values: Vec<f64>,
    series: Vec<BlockSeries>,
    rows: u64,
}

impl BlockWriter {
    /// Starts a block in a fresh temporary directory under `blocks_dir`.
    pub(crate) fn new(blocks_dir: &Path) -> Result<BlockWriter, BlockError> {
        let dir = TmpBlockDir::create(blocks_dir)?;
        let samples_path = dir.path().join("samples.parquet");
        let mut writer = BlockWriter {
            dir,
            samples_path: samples_path.clone(),
            samples: None,
            ids: Vec::with_capacity(BATCH_ROWS),
            timestamps: Vec::with_capacity(BATCH_ROWS),
            values: Vec::with_capacity(BATCH_ROWS),
            series: Vec::new(),
            rows: 0,
        };
        let file = File::create(&samples_path).map_err(|e| BlockError::io(&samples_path, e))?;
        let props = samples_properties().map_err(|e| BlockError::parquet(&samples_path, e))?;
        let arrow_writer = ArrowWriter::try_new(file, samples_schema(), Some(props))
            .map_err(|e| BlockError::parquet(&samples_path, e))?;
        writer.samples = Some(arrow_writer);
        Ok(writer)
    }

    /// Adds one series. Series must come in ascending label order, samples sorted by
    /// timestamp without duplicates; a series without samples is skipped.
    pub(crate) fn add_series(&mut self, labels: &Labels, samples: &[Sample]) -> Result<(), BlockError> {
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            return Ok(());
        };
        debug_assert!(
            samples.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms),
            "samples of {labels} not sorted by timestamp without duplicates"
        );
        if let Some(prev) = self.series.last() {
            if prev.labels >= *labels {
                return Err(BlockError::corrupt(
                    self.dir.path(),
                    format!("series {labels} added out of order after {}", prev.labels),
                ));
            }
        }
        let series_id = self.series.len() as u64;
        self.series.push(BlockSeries {
            labels: labels.clone(),
            first_row: self.rows,
            row_count: samples.len() as u64,
            min_t: first.timestamp_ms,
            max_t: last.timestamp_ms,
        });
        for s in samples {
            self.ids.push(series_id);
            self.timestamps.push(s.timestamp_ms);
            self.values.push(s.value);
            if self.ids.len() >= BATCH_ROWS {
                self.flush_batch()?;
            }
        }
        self.rows += samples.len() as u64;
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), BlockError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(std::mem::take(&mut self.ids))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.timestamps))),
            Arc::new(Float64Array::from(std::mem::take(&mut self.values))),
        ];
        let path = &self.samples_path;
        let batch = RecordBatch::try_new(samples_schema(), columns).map_err(|source| BlockError::Arrow {
            path: path.clone(),
            source,
        })?;
        let writer = self
            .samples
            .as_mut()
            .ok_or_else(|| BlockError::corrupt(path, "samples writer already closed"))?;
        writer.write(&batch).map_err(|e| BlockError::parquet(path, e))?;
        Ok(())
    }

    /// Completes the block: writes the remaining files, fsyncs them and the directory,
    /// and renames it to `<mint>-<maxt>-<id>`. Returns `None` (and removes the temporary
    /// directory) when no series was added; on an error the temporary directory goes too.
    pub(crate) fn finish(mut self, compaction: CompactionMeta) -> Result<Option<PathBuf>, BlockError> {
        if self.series.is_empty() {
            return Ok(None);
        }
        self.flush_batch()?;
        let mut samples = self
            .samples
            .take()
            .ok_or_else(|| BlockError::corrupt(&self.samples_path, "samples writer already closed"))?;
        samples
            .finish()
            .map_err(|e| BlockError::parquet(&self.samples_path, e))?;
        samples
            .inner()
            .sync_all()
            .map_err(|e| BlockError::io(&self.samples_path, e))?;

        let series_path = self.dir.path().join("series.parquet");
        write_series(&series_path, &self.series)?;

        let mut min_t = i64::MAX;
        let mut max_t = i64::MIN;
        for s in &self.series {
            min_t = min_t.min(s.min_t);
            max_t = max_t.max(s.max_t);
        }
        let meta = BlockMeta {
            format_version: BLOCK_FORMAT_VERSION,
            id: self.dir.id().to_string(),
            min_time_ms: min_t,
            max_time_ms: max_t,
            series: self.series.len() as u64,
            samples: self.rows,
            compaction,
        };
        self.dir.write_meta(&meta)?;
        Ok(Some(self.dir.publish(min_t, max_t)?))
    }
}

/// Writes `series.parquet`: one row per series in id order.
fn write_series(path: &Path, series: &[BlockSeries]) -> Result<(), BlockError> {
    let mut ids = Vec::with_capacity(series.len());
    let mut names = Vec::with_capacity(series.len());
    let mut label_counts = Vec::with_capacity(series.len());
    let mut label_names: Vec<&str> = Vec::new();
    let mut label_values: Vec<&str> = Vec::new();
    let mut first_rows = Vec::with_capacity(series.len());
    let mut row_counts = Vec::with_capacity(series.len());
    let mut min_ts = Vec::with_capacity(series.len());
    let mut max_ts = Vec::with_capacity(series.len());
    for (i, s) in series.iter().enumerate() {
        ids.push(i as u64);
        names.push(s.labels.get(METRIC_NAME_LABEL).unwrap_or_default());
        label_counts.push(s.labels.len());
        for l in s.labels.iter() {
            label_names.push(l.name.as_str());
            label_values.push(l.value.as_str());
        }
        first_rows.push(s.first_row);
        row_counts.push(s.row_count);
        min_ts.push(s.min_t);
        max_ts.push(s.max_t);
    }
    let arrow_err = |source| BlockError::Arrow {
        path: path.to_path_buf(),
        source,
    };
    let pairs = StructArray::try_new(
        label_struct_fields(),
        vec![
            Arc::new(StringArray::from(label_names)) as ArrayRef,
            Arc::new(StringArray::from(label_values)) as ArrayRef,
        ],
        None,
    )
    .map_err(arrow_err)?;
    let labels = ListArray::try_new(
        label_item_field(),
        OffsetBuffer::from_lengths(label_counts),
        Arc::new(pairs),
        None,
    )
    .map_err(arrow_err)?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(ids)),
        Arc::new(StringArray::from(names)),
        Arc::new(labels),
        Arc::new(UInt64Array::from(first_rows)),
        Arc::new(UInt64Array::from(row_counts)),
        Arc::new(Int64Array::from(min_ts)),
        Arc::new(Int64Array::from(max_ts)),
    ];
    let batch = RecordBatch::try_new(series_schema(), columns).map_err(arrow_err)?;
    let file = File::create(path).map_err(|e| BlockError::io(path, e))?;
    let props = series_properties().map_err(|e| BlockError::parquet(path, e))?;
    let mut writer =
        ArrowWriter::try_new(file, series_schema(), Some(props)).map_err(|e| BlockError::parquet(path, e))?;
    writer.write(&batch).map_err(|e| BlockError::parquet(path, e))?;
    writer.finish().map_err(|e| BlockError::parquet(path, e))?;
    writer.inner().sync_all().map_err(|e| BlockError::io(path, e))
}
