//! Reading a block: the block opened for reading (its meta in memory, its series list
//! and postings on demand through the shared [`BlockIndexCache`]) and the reads a query
//! makes — footers at open, a range of the series list, selected samples.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::{Int64Array, UInt64Array};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;

use super::aggregates;
use super::cursor::{reader_options, SeriesCursor, SAMPLES, SERIES};
use super::decimal::{SeriesValues, ValueColumns, SCALED_DELTA};
use super::histograms;
use super::index::BlockIndex;
use super::index_cache::{BlockIndexCache, WHOLE_BLOCK};
use super::meta::{
    BlockMeta, BlockSeries, BLOCK_FORMAT_VERSION, DOWNSAMPLED_FORMAT_VERSION, FLOAT_BLOCK_FORMAT_VERSION,
    RESOLUTIONS_MS, SCALED_BLOCK_FORMAT_VERSION,
};
use super::rows::plan_rows;
use crate::model::{LabelMatcher, Sample, SeriesSamples};
use crate::storage::block_dir;
use crate::storage::object::{BlockFiles, Remote};
use crate::storage::parquet::column;
use crate::storage::BlockError;
use crate::window::SeriesWindows;

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
    /// The block's files (its directory, or its objects in the bucket), deleted once
    /// marked and dropped.
    pub files: BlockFiles,
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
    /// Bytes of the block's files.
    pub bytes: u64,
}

impl Block {
    /// Opens the block in `files`: reads `meta.json`, checks `series.parquet` holds as many
    /// rows as the meta says, notes where each metric name's series are in it (one pass,
    /// a batch at a time) and reads the footer of `samples.parquet`. The series list is
    /// read later, through `cache`, when a query first needs it.
    pub(crate) fn open(files: BlockFiles, cache: &Arc<BlockIndexCache>) -> Result<Block, BlockError> {
        let meta: BlockMeta = files.read_meta()?;
        let expected: &[u32] = if meta.resolution_ms > 0 {
            &[DOWNSAMPLED_FORMAT_VERSION]
        } else {
            &[
                BLOCK_FORMAT_VERSION,
                SCALED_BLOCK_FORMAT_VERSION,
                FLOAT_BLOCK_FORMAT_VERSION,
            ]
        };
        if !expected.contains(&meta.format_version) {
            return Err(BlockError::corrupt(
                &files.path(""),
                format!(
                    "unknown format version {} for resolution_ms {} (expected one of {expected:?})",
                    meta.format_version, meta.resolution_ms
                ),
            ));
        }
        if meta.resolution_ms != 0 && !RESOLUTIONS_MS.contains(&meta.resolution_ms) {
            return Err(BlockError::corrupt(
                &files.path(""),
                format!(
                    "resolution_ms {} is neither 300000 nor 3600000",
                    meta.resolution_ms
                ),
            ));
        }
        let series_path = files.path(SERIES);
        let rows = load_metadata(&files, SERIES)?
            .metadata()
            .file_metadata()
            .num_rows();
        if u64::try_from(rows).ok() != Some(meta.series) {
            return Err(BlockError::corrupt(
                &series_path,
                format!("{rows} rows, but meta.json says {} series", meta.series),
            ));
        }
        let parts = name_parts(&files)?;
        let samples_metadata = load_metadata(&files, SAMPLES)?;
        let has_histograms = files.has(histograms::FILE);
        let bytes = files.bytes()?;
        Ok(Block {
            files,
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
        let files = &self.files;
        let range = part.and_then(|p| self.parts.as_ref().and_then(|parts| parts.get(p)));
        match range {
            Some(r) => self
                .cache
                .get_or_load((self.key, p_u32(part)), || load_index(files, r.start, r.end)),
            None => self
                .cache
                .get_or_load((self.key, WHOLE_BLOCK), || load_index(files, 0, self.meta.series)),
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

    /// The series of `index` matching `matchers` with data in `[start, end]`: the ids of
    /// those with float rows, and the global ids of all of them when the block holds
    /// native histograms (their own file says which have any).
    fn wanted_series(
        &self,
        index: &BlockIndex,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
    ) -> (Vec<usize>, Vec<u64>) {
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
        (wanted, wanted_histograms)
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
        let (wanted, mut wanted_histograms) = self.wanted_series(index, matchers, start, end);
        if !wanted_histograms.is_empty() {
            wanted_histograms.sort_unstable();
            histograms::select(&self.files, index, &wanted_histograms, start, end, out)?;
        }
        if wanted.is_empty() {
            return Ok(());
        }
        read_samples(
            &self.files,
            &self.samples_metadata,
            index,
            &wanted,
            start,
            end,
            out,
        )
    }

    /// The windows in `[start, end]` of the series matching `matchers` in this
    /// downsampled block, with their native histogram samples (kept raw), appended to `out`.
    pub(crate) fn select_windows(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
        out: &mut Vec<SeriesWindows>,
    ) -> Result<(), BlockError> {
        if !self.overlaps(start, end) {
            return Ok(());
        }
        let parts = match self.parts_for(matchers) {
            None => vec![None],
            Some(parts) => parts.into_iter().map(Some).collect(),
        };
        for p in parts {
            let index = self.index(p)?;
            let (wanted, mut wanted_histograms) = self.wanted_series(&index, matchers, start, end);
            if !wanted.is_empty() {
                aggregates::read_windows(
                    &self.files,
                    &self.samples_metadata,
                    &index,
                    &wanted,
                    start,
                    end,
                    out,
                )?;
            }
            if !wanted_histograms.is_empty() {
                wanted_histograms.sort_unstable();
                let mut hists: Vec<SeriesSamples> = Vec::new();
                histograms::select(&self.files, &index, &wanted_histograms, start, end, &mut hists)?;
                for h in hists {
                    out.push(SeriesWindows {
                        labels: h.labels,
                        windows: Vec::new(),
                        samples: Vec::new(),
                        histograms: h.histograms,
                    });
                }
            }
        }
        Ok(())
    }

    /// Schedules the directory for deletion once the last reader lets go of the block.
    pub(crate) fn mark_deleted(&self) {
        self.files.mark_deleted();
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
            .field("files", &self.files)
            .field("meta", &self.meta)
            .finish()
    }
}

/// Opens every block in `blocks_dir` (sorted by time), removing leftover `.tmp-`
/// directories; blocks that fail to open are logged and skipped (left on disk for
/// inspection).
pub(crate) fn open_all(blocks_dir: &Path, cache: &Arc<BlockIndexCache>) -> Result<Vec<Block>, BlockError> {
    let mut blocks = block_dir::open_all(blocks_dir, "block", |dir| {
        Block::open(BlockFiles::local(dir, "block"), cache)
    })?;
    blocks.sort_by_key(|b| (b.meta.min_time_ms, b.meta.max_time_ms));
    Ok(blocks)
}

/// Blocks opened at once from the bucket: opening one is a handful of small sequential
/// requests (meta.json, footers, the series list), so a start-up over many blocks is bound
/// by request latency, not bandwidth.
const REMOTE_OPENERS: usize = 8;

/// Opens every block `remote` lists (sorted by time), up to [`REMOTE_OPENERS`] at a time;
/// blocks that fail to open are logged and skipped (left in the bucket for inspection).
pub(crate) fn open_remote(
    remote: &Arc<Remote>,
    cache: &Arc<BlockIndexCache>,
) -> Result<Vec<Block>, BlockError> {
    Ok(open_listed(BlockFiles::list_remote(remote)?, cache))
}

/// Opens the remote blocks `files` (from a listing or the metastore), sorted by time, up
/// to [`REMOTE_OPENERS`] at a time; blocks that fail to open are logged and skipped.
pub(crate) fn open_listed(files: Vec<BlockFiles>, cache: &Arc<BlockIndexCache>) -> Vec<Block> {
    let queue = parking_lot::Mutex::new(files);
    let opened = parking_lot::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..REMOTE_OPENERS {
            scope.spawn(|| loop {
                let Some(files) = queue.lock().pop() else {
                    return;
                };
                let name = files.describe();
                match Block::open(files, cache) {
                    Ok(b) => opened.lock().push(b),
                    Err(e) => tracing::error!(block = %name, error = %e, "skipping unreadable block"),
                }
            });
        }
    });
    let mut blocks = opened.into_inner();
    blocks.sort_by_key(|b| (b.meta.min_time_ms, b.meta.max_time_ms));
    blocks
}

/// Reads the footer and page index of a Parquet file of a block once, so queries can
/// reuse them.
pub(crate) fn load_metadata(files: &BlockFiles, name: &str) -> Result<ArrowReaderMetadata, BlockError> {
    let file = files.open_once(name)?;
    ArrowReaderMetadata::load(&file, reader_options()).map_err(|e| BlockError::parquet(&files.path(name), e))
}

/// The cache's part number of part `p`.
fn p_u32(part: Option<usize>) -> u32 {
    part.and_then(|p| u32::try_from(p).ok()).unwrap_or(WHOLE_BLOCK)
}

/// Reads series `start..end` of the block's `series.parquet` into a [`BlockIndex`] with
/// its postings.
pub(crate) fn load_index(files: &BlockFiles, start: u64, end: u64) -> Result<BlockIndex, BlockError> {
    let expected = end.saturating_sub(start);
    let mut cursor = SeriesCursor::open_range(files, start, end)?;
    // The count comes from the block's own meta; capped so a damaged meta.json cannot ask
    // for an absurd allocation up front.
    let mut series: Vec<BlockSeries> = Vec::with_capacity(expected.min(1 << 22) as usize);
    while let Some(s) = cursor.next_series()? {
        series.push(s);
    }
    if series.len() as u64 != expected {
        return Err(BlockError::corrupt(
            &files.path(SERIES),
            format!("{} series where {expected} were expected", series.len()),
        ));
    }
    series.shrink_to_fit();
    Ok(BlockIndex::from_series(start, series))
}

/// The runs of equal metric name in `series.parquet`, read a batch at a time; `None` past
/// [`MAX_NAME_PARTS`] runs.
fn name_parts(files: &BlockFiles) -> Result<Option<Vec<NamePart>>, BlockError> {
    let mut cursor = SeriesCursor::open(files)?;
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

/// The series whose rows [`read_samples`] is going through.
struct SeriesBeingRead {
    /// Its block series id.
    id: u64,
    /// How its values read back (the differences added up so far).
    values: SeriesValues,
    /// Whether its entry in the output was started (by its first row in range).
    started: bool,
}

/// Reads the samples in `[start, end]` of the series `wanted` (ascending positions in
/// `index.series`, whose first entry is block series `index.base`) and appends them to
/// `out`. Inside the row groups read, a row selection covering only the wanted series'
/// rows lets the reader skip pages through the page index. Every row of a wanted series is
/// read, in range or not: in a format 4 block its values are differences that add up from
/// its first row, which is also why row groups are skipped by their timestamp statistics
/// only in older blocks (one that missed the range could hold a series' first rows).
pub(crate) fn read_samples(
    files: &BlockFiles,
    metadata: &ArrowReaderMetadata,
    index: &BlockIndex,
    wanted: &[usize],
    start: i64,
    end: i64,
    out: &mut Vec<SeriesSamples>,
) -> Result<(), BlockError> {
    let path = &files.path(SAMPLES);
    let chained = metadata.schema().field_with_name(SCALED_DELTA).is_ok();
    let time_range = (!chained).then_some((start, end));
    let Some(plan) = plan_rows(files, metadata, index, wanted, time_range)? else {
        return Ok(());
    };
    let mut current: Option<SeriesBeingRead> = None;
    let mut values: Vec<f64> = Vec::new();
    for batch in plan.batches(path)? {
        let batch = batch?;
        let ids = column::<UInt64Array>(&batch, "series_id", path)?;
        let ts = column::<Int64Array>(&batch, "timestamp_ms", path)?;
        let vals = ValueColumns::of(&batch, path)?;
        let rows = batch.num_rows();
        let mut row = 0;
        while row < rows {
            // The run of rows of one series in this batch.
            let id = ids.value(row);
            let mut run_end = row + 1;
            while run_end < rows && ids.value(run_end) == id {
                run_end += 1;
            }
            let series = match &mut current {
                Some(s) if s.id == id => s,
                _ => current.insert(SeriesBeingRead {
                    id,
                    values: SeriesValues::of(index.series_of(id, path, "sample")?),
                    started: false,
                }),
            };
            values.clear();
            vals.decode(row..run_end, &mut series.values, path, &mut values)?;
            let times = ts.values().get(row..run_end).unwrap_or_default();
            row = run_end;
            let in_range = |t: i64| start <= t && t <= end;
            let Some(first) = times.iter().position(|&t| in_range(t)) else {
                continue;
            };
            if !series.started {
                out.push(SeriesSamples {
                    labels: index.labels_of(id, path, "sample")?,
                    samples: Vec::new(),
                    histograms: Vec::new(),
                });
                series.started = true;
            }
            let Some(samples) = out.last_mut().map(|s| &mut s.samples) else {
                continue;
            };
            samples.reserve(times.len() - first);
            for (&t, &value) in times.iter().zip(&values).skip(first) {
                if in_range(t) {
                    samples.push(Sample::new(t, value));
                }
            }
        }
    }
    Ok(())
}
