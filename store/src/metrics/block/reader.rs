//! Reading a block: the block opened for reading (its meta in memory, its series list
//! and postings on demand through the shared [`BlockIndexCache`]), its Parquet files — the
//! series list, selected samples — and sequential cursors for compaction.

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::{Array, Float64Array, Int64Array, ListArray, StringArray, StructArray, UInt64Array};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
    RowSelection, RowSelector,
};
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::statistics::Statistics;

use super::histograms;
use super::index::BlockIndex;
use super::index_cache::{BlockIndexCache, WHOLE_BLOCK};
use super::meta::{BlockMeta, BlockSeries, BLOCK_FORMAT_VERSION};
use crate::model::{Label, LabelMatcher, Labels, Sample, SeriesSamples};
use crate::storage::block_dir::{self, BlockDir};
use crate::storage::parquet::column;
use crate::storage::BlockError;

/// Source of the process-wide block ids that key the index cache.
static NEXT_BLOCK_KEY: AtomicU64 = AtomicU64::new(1);

/// Most metric-name parts a block is split into; a block with more runs of names (label
/// names sorting before `__name__` can interleave them) is only read whole.
const MAX_NAME_PARTS: usize = 4096;

/// A run of a block's series (ids `start..end`) sharing one metric name (`""` for
/// series without `__name__`). Series are sorted by labels, so a metric's series are
/// usually one run.
#[derive(Debug)]
struct NamePart {
    name: String,
    start: u64,
    end: u64,
}

/// A block opened for reading: its meta stays in memory; its series list and postings
/// are read when a query needs them and kept in the shared cache while there is room.
pub(crate) struct Block {
    /// The block's directory (dereferences to its path), deleted once marked and dropped.
    pub dir: BlockDir,
    pub meta: BlockMeta,
    /// This block's key in `cache`.
    key: u64,
    cache: Arc<BlockIndexCache>,
    /// The block's series list by metric name, found at open; `None` when there are more
    /// than [`MAX_NAME_PARTS`] runs. A selector naming its metric reads only its runs.
    parts: Option<Vec<NamePart>>,
    /// Footer and page index of `samples.parquet`, read at open.
    samples_metadata: ArrowReaderMetadata,
    /// Whether the block has `histograms.parquet` (native histogram samples).
    has_histograms: bool,
    /// Bytes of the block's files on disk.
    pub bytes: u64,
}

impl Block {
    /// Opens the block in `dir`: reads `meta.json`, checks `series.parquet` holds as many
    /// rows as the meta says, notes where each metric name's series are in it (one pass,
    /// a batch at a time) and reads the footer of `samples.parquet`. The series list is
    /// read later, through `cache`, when a query first needs it.
    pub(crate) fn open(dir: &Path, cache: &Arc<BlockIndexCache>) -> Result<Block, BlockError> {
        let meta: BlockMeta = block_dir::read_meta(dir)?;
        if meta.format_version != BLOCK_FORMAT_VERSION {
            return Err(BlockError::corrupt(
                dir,
                format!("unknown format version {}", meta.format_version),
            ));
        }
        let series_path = dir.join("series.parquet");
        let rows = load_metadata(&series_path)?.metadata().file_metadata().num_rows();
        if u64::try_from(rows).ok() != Some(meta.series) {
            return Err(BlockError::corrupt(
                &series_path,
                format!("{rows} rows, but meta.json says {} series", meta.series),
            ));
        }
        let parts = name_parts(&series_path)?;
        let samples_metadata = load_metadata(&dir.join("samples.parquet"))?;
        let has_histograms = dir.join(histograms::FILE).exists();
        let bytes = block_dir::dir_bytes(dir)?;
        Ok(Block {
            dir: BlockDir::new(dir, "block"),
            meta,
            key: NEXT_BLOCK_KEY.fetch_add(1, Ordering::Relaxed),
            cache: cache.clone(),
            parts,
            samples_metadata,
            has_histograms,
            bytes,
        })
    }

    /// True when the block holds samples in `[start, end]`.
    pub(crate) fn overlaps(&self, start: i64, end: i64) -> bool {
        self.meta.max_time_ms >= start && self.meta.min_time_ms <= end
    }

    /// The index of the block's whole series list (`part` = `None`) or of one metric-name
    /// part, from the cache or read from `series.parquet`. The caller's `Arc` stays valid
    /// if the cache evicts it meanwhile.
    fn index(&self, part: Option<usize>) -> Result<Arc<BlockIndex>, BlockError> {
        let path = self.dir.join("series.parquet");
        let range = part.and_then(|p| self.parts.as_ref().and_then(|parts| parts.get(p)));
        match range {
            Some(r) => self
                .cache
                .get_or_load((self.key, p_u32(part)), || load_index(&path, r.start, r.end)),
            None => self
                .cache
                .get_or_load((self.key, WHOLE_BLOCK), || load_index(&path, 0, self.meta.series)),
        }
    }

    /// The parts the series matching `matchers` can be in: those whose metric name every
    /// `__name__` matcher accepts, or `None` (the whole block) when no matcher on
    /// `__name__` rules out series without a name, or the block has no parts.
    fn parts_for(&self, matchers: &[LabelMatcher]) -> Option<Vec<usize>> {
        let parts = self.parts.as_ref()?;
        let mut on_name: Vec<&LabelMatcher> = Vec::new();
        for m in matchers {
            if m.name == "__name__" {
                on_name.push(m);
            }
        }
        if !on_name.iter().any(|m| !m.matches_empty()) {
            return None;
        }
        let mut out = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            if on_name.iter().all(|m| m.matches(&p.name)) {
                out.push(i);
            }
        }
        Some(out)
    }

    /// Appends the matching series' samples in `[start, end]` to `out`, reading only the
    /// row groups and pages that hold them.
    pub(crate) fn select(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
        out: &mut Vec<SeriesSamples>,
    ) -> Result<(), BlockError> {
        if !self.overlaps(start, end) {
            return Ok(());
        }
        match self.parts_for(matchers) {
            None => {
                let index = self.index(None)?;
                self.select_in(&index, matchers, start, end, out)
            }
            Some(parts) => {
                for p in parts {
                    // Each part's index is let go before the next is read.
                    let index = self.index(Some(p))?;
                    self.select_in(&index, matchers, start, end, out)?;
                }
                Ok(())
            }
        }
    }

    /// [`Block::select`] over the series of one index.
    fn select_in(
        &self,
        index: &BlockIndex,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
        out: &mut Vec<SeriesSamples>,
    ) -> Result<(), BlockError> {
        let mut wanted: Vec<usize> = Vec::new();
        let mut wanted_histograms: Vec<u64> = Vec::new();
        for id in index.postings.select(matchers) {
            let Some(s) = index.series.get(id as usize) else {
                continue;
            };
            if s.max_t >= start && s.min_t <= end {
                if s.row_count > 0 {
                    wanted.push(id as usize);
                }
                if self.has_histograms {
                    wanted_histograms.push(index.base + id);
                }
            }
        }
        if !wanted_histograms.is_empty() {
            wanted_histograms.sort_unstable();
            let path = self.dir.join(histograms::FILE);
            histograms::select(&path, index, &wanted_histograms, start, end, out)?;
        }
        if wanted.is_empty() {
            return Ok(());
        }
        read_samples(
            &self.dir.join("samples.parquet"),
            &self.samples_metadata,
            index,
            &wanted,
            start,
            end,
            out,
        )
    }

    /// Schedules the directory for deletion once the last reader lets go of the block.
    pub(crate) fn mark_deleted(&self) {
        self.dir.mark_deleted();
    }
}

/// A closed block's index has no further use: it leaves the cache with the block.
impl Drop for Block {
    fn drop(&mut self) {
        self.cache.remove_block(self.key);
    }
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish()
    }
}

/// Opens every block in `blocks_dir` (sorted by time), removing leftover `.tmp-`
/// directories; blocks that fail to open are logged and skipped (left on disk for
/// inspection).
pub(crate) fn open_all(blocks_dir: &Path, cache: &Arc<BlockIndexCache>) -> Result<Vec<Block>, BlockError> {
    let mut blocks = block_dir::open_all(blocks_dir, "block", |dir| Block::open(dir, cache))?;
    blocks.sort_by_key(|b| (b.meta.min_time_ms, b.meta.max_time_ms));
    Ok(blocks)
}

fn reader_options() -> ArrowReaderOptions {
    ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional)
}

fn open_builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, BlockError> {
    let file = File::open(path).map_err(|e| BlockError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new_with_options(file, reader_options())
        .map_err(|e| BlockError::parquet(path, e))
}

/// Reads the footer and page index of a Parquet file once, so queries can reuse them.
pub(crate) fn load_metadata(path: &Path) -> Result<ArrowReaderMetadata, BlockError> {
    let file = File::open(path).map_err(|e| BlockError::io(path, e))?;
    ArrowReaderMetadata::load(&file, reader_options()).map_err(|e| BlockError::parquet(path, e))
}

/// The cache's part number of part `p`.
fn p_u32(part: Option<usize>) -> u32 {
    part.and_then(|p| u32::try_from(p).ok()).unwrap_or(WHOLE_BLOCK)
}

/// Reads series `start..end` of `series.parquet` at `path` into a [`BlockIndex`] with its
/// postings.
pub(crate) fn load_index(path: &Path, start: u64, end: u64) -> Result<BlockIndex, BlockError> {
    let expected = end.saturating_sub(start);
    let mut cursor = SeriesCursor::open_range(path, start, end)?;
    // The count comes from the block's own meta; capped so a damaged meta.json cannot ask
    // for an absurd allocation up front.
    let mut series: Vec<BlockSeries> = Vec::with_capacity(expected.min(1 << 22) as usize);
    while let Some(s) = cursor.next_series()? {
        series.push(s);
    }
    if series.len() as u64 != expected {
        return Err(BlockError::corrupt(
            path,
            format!("{} series where {expected} were expected", series.len()),
        ));
    }
    series.shrink_to_fit();
    Ok(BlockIndex::from_series(start, series))
}

/// The runs of equal metric name in `series.parquet`, read a batch at a time; `None` past
/// [`MAX_NAME_PARTS`] runs.
fn name_parts(path: &Path) -> Result<Option<Vec<NamePart>>, BlockError> {
    let mut cursor = SeriesCursor::open(path)?;
    let mut parts: Vec<NamePart> = Vec::new();
    let mut id = 0u64;
    while let Some(s) = cursor.next_series()? {
        let name = s.labels.get("__name__").unwrap_or("");
        match parts.last_mut() {
            Some(last) if last.name == name => last.end = id + 1,
            _ => {
                if parts.len() == MAX_NAME_PARTS {
                    return Ok(None);
                }
                parts.push(NamePart {
                    name: name.to_string(),
                    start: id,
                    end: id + 1,
                });
            }
        }
        id += 1;
    }
    parts.shrink_to_fit();
    Ok(Some(parts))
}

/// Reads `series.parquet` front to back one record batch at a time, checking ids are
/// dense and in order: the index loader and compaction read a series list through it
/// without holding more than a batch of it besides what they keep.
pub(crate) struct SeriesCursor {
    path: std::path::PathBuf,
    reader: ParquetRecordBatchReader,
    buffered: VecDeque<BlockSeries>,
    next_id: u64,
}

impl SeriesCursor {
    /// Opens `series.parquet` at `path`.
    pub(crate) fn open(path: &Path) -> Result<SeriesCursor, BlockError> {
        let reader = open_builder(path)?
            .with_batch_size(8 * 1024)
            .build()
            .map_err(|e| BlockError::parquet(path, e))?;
        Ok(SeriesCursor {
            path: path.to_path_buf(),
            reader,
            buffered: VecDeque::new(),
            next_id: 0,
        })
    }

    /// Opens `series.parquet` at `path` to read only series `start..end` (ids are rows).
    pub(crate) fn open_range(path: &Path, start: u64, end: u64) -> Result<SeriesCursor, BlockError> {
        let mut selectors = Vec::new();
        if start > 0 {
            selectors.push(RowSelector::skip(start as usize));
        }
        selectors.push(RowSelector::select(end.saturating_sub(start) as usize));
        let reader = open_builder(path)?
            .with_batch_size(8 * 1024)
            .with_row_selection(RowSelection::from(selectors))
            .build()
            .map_err(|e| BlockError::parquet(path, e))?;
        Ok(SeriesCursor {
            path: path.to_path_buf(),
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
        out.push_back(BlockSeries {
            labels,
            first_row: first_rows.value(row),
            row_count: row_counts.value(row),
            min_t: min_ts.value(row),
            max_t: max_ts.value(row),
        });
    }
    Ok(())
}

/// Min and max of an Int64 column chunk, when the writer recorded them.
fn i64_range(stats: Option<&Statistics>) -> Option<(i64, i64)> {
    match stats {
        Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
            (Some(a), Some(b)) => Some((*a, *b)),
            _ => None,
        },
        _ => None,
    }
}

/// Reads the samples in `[start, end]` of the series `wanted` (ascending positions in
/// `index.series`, whose first entry is block series `index.base`) and appends them to
/// `out`. Row groups whose timestamp statistics miss the
/// range are skipped; inside the rest, a row selection covering only the wanted series'
/// rows lets the reader skip pages through the page index.
pub(crate) fn read_samples(
    path: &Path,
    metadata: &ArrowReaderMetadata,
    index: &BlockIndex,
    wanted: &[usize],
    start: i64,
    end: i64,
    out: &mut Vec<SeriesSamples>,
) -> Result<(), BlockError> {
    let file = File::open(path).map_err(|e| BlockError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata.clone());
    let (base, series) = (index.base, &index.series);
    let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(wanted.len());
    for &i in wanted {
        if let Some(s) = series.get(i) {
            ranges.push((s.first_row, s.first_row.saturating_add(s.row_count)));
        }
    }
    let mut row_groups = Vec::new();
    let mut selectors: Vec<RowSelector> = Vec::new();
    let mut rg_start = 0u64;
    let mut next_range = 0usize;
    for (rg_index, rg) in builder.metadata().row_groups().iter().enumerate() {
        let rg_rows = rg.num_rows().max(0) as u64;
        let rg_end = rg_start.saturating_add(rg_rows);
        let ts_range = i64_range(rg.columns().get(1).and_then(|c| c.statistics()));
        let time_ok = ts_range.is_none_or(|(lo, hi)| hi >= start && lo <= end);
        while next_range < ranges.len() && ranges[next_range].1 <= rg_start {
            next_range += 1;
        }
        let mut local: Vec<RowSelector> = Vec::new();
        let mut pos = rg_start;
        let mut any = false;
        let mut k = next_range;
        while time_ok && k < ranges.len() && ranges[k].0 < rg_end {
            let from = ranges[k].0.max(rg_start);
            let to = ranges[k].1.min(rg_end);
            if from > pos {
                local.push(RowSelector::skip((from - pos) as usize));
            }
            if to > from {
                local.push(RowSelector::select((to - from) as usize));
                any = true;
            }
            pos = to;
            k += 1;
        }
        if any {
            if rg_end > pos {
                local.push(RowSelector::skip((rg_end - pos) as usize));
            }
            row_groups.push(rg_index);
            selectors.extend(local);
        }
        rg_start = rg_end;
    }
    if row_groups.is_empty() {
        return Ok(());
    }
    let reader = builder
        .with_row_groups(row_groups)
        .with_row_selection(RowSelection::from(selectors))
        .build()
        .map_err(|e| BlockError::parquet(path, e))?;
    let mut current: Option<u64> = None;
    for batch in reader {
        let batch = batch.map_err(|source| BlockError::Arrow {
            path: path.to_path_buf(),
            source,
        })?;
        let ids = column::<UInt64Array>(&batch, "series_id", path)?;
        let ts = column::<Int64Array>(&batch, "timestamp_ms", path)?;
        let vals = column::<Float64Array>(&batch, "value", path)?;
        for row in 0..batch.num_rows() {
            let t = ts.value(row);
            if t < start || t > end {
                continue;
            }
            let id = ids.value(row);
            if current != Some(id) {
                let labels = id
                    .checked_sub(base)
                    .and_then(|i| series.get(i as usize))
                    .ok_or_else(|| BlockError::corrupt(path, format!("sample for unknown series id {id}")))?
                    .labels
                    .clone();
                out.push(SeriesSamples {
                    labels,
                    samples: Vec::new(),
                    histograms: Vec::new(),
                });
                current = Some(id);
            }
            if let Some(last) = out.last_mut() {
                last.samples.push(Sample::new(t, vals.value(row)));
            }
        }
    }
    Ok(())
}

/// Reads `samples.parquet` front to back, handing out the rows of one series at a time.
pub(crate) struct SampleCursor {
    path: std::path::PathBuf,
    reader: ParquetRecordBatchReader,
    timestamps: Vec<i64>,
    values: Vec<f64>,
    pos: usize,
}

impl SampleCursor {
    pub(crate) fn open(path: &Path) -> Result<SampleCursor, BlockError> {
        let reader = open_builder(path)?
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| BlockError::parquet(path, e))?;
        Ok(SampleCursor {
            path: path.to_path_buf(),
            reader,
            timestamps: Vec::new(),
            values: Vec::new(),
            pos: 0,
        })
    }

    /// Appends the next `n` rows to `out`.
    pub(crate) fn take(&mut self, mut n: usize, out: &mut Vec<Sample>) -> Result<(), BlockError> {
        while n > 0 {
            if self.pos == self.timestamps.len() {
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
                let ts = column::<Int64Array>(&batch, "timestamp_ms", &self.path)?;
                let vals = column::<Float64Array>(&batch, "value", &self.path)?;
                self.timestamps = ts.values().to_vec();
                self.values = vals.values().to_vec();
                self.pos = 0;
            }
            let available = self.timestamps.len() - self.pos;
            let k = available.min(n);
            for i in self.pos..self.pos + k {
                out.push(Sample::new(self.timestamps[i], self.values[i]));
            }
            self.pos += k;
            n -= k;
        }
        Ok(())
    }
}
