//! Downsampling a block: every series of a raw block (or of a finer downsampled block) is
//! folded into windows of a coarser resolution and written as a new block through the
//! same streaming writer and directory lifecycle as a head cut or a merge. Native
//! histogram samples are copied as they are (not downsampled).

use std::path::{Path, PathBuf};

use super::aggregates::WindowCursor;
use super::cursor::{SampleCursor, SeriesCursor};
use super::histograms::HistogramCursor;
use super::meta::CompactionMeta;
pub use super::meta::RESOLUTIONS_MS;
use super::reader::Block;
use super::writer::BlockWriter;
use crate::model::{HistogramSample, Sample};
use crate::storage::BlockError;
use crate::window::{fold_windows, Window};

/// Writes `source` folded into windows of `resolution_ms` as a new block in `blocks_dir`
/// whose time range is the source's, and returns its directory (`None` when the source
/// holds no series). The source must be raw or of a finer resolution that divides
/// `resolution_ms`. Holds one series' rows at a time besides the writer's batches.
pub(crate) fn downsample(
    blocks_dir: &Path,
    source: &Block,
    resolution_ms: i64,
) -> Result<Option<PathBuf>, BlockError> {
    let source_res = source.meta.resolution_ms;
    if resolution_ms <= 0
        || source_res >= resolution_ms
        || (source_res > 0 && resolution_ms % source_res != 0)
    {
        return Err(BlockError::corrupt(
            &source.files.path(""),
            format!("cannot downsample a block of resolution {source_res} ms to {resolution_ms} ms"),
        ));
    }
    let mut writer = BlockWriter::with_resolution(blocks_dir, resolution_ms)?;
    let mut series = SeriesCursor::open(&source.files)?;
    let mut hists = HistogramCursor::open(&source.files)?;
    let mut raw = if source_res == 0 {
        Some(SampleCursor::open(&source.files)?)
    } else {
        None
    };
    let mut finer = if source_res > 0 {
        Some(WindowCursor::open(&source.files)?)
    } else {
        None
    };
    let mut samples: Vec<Sample> = Vec::new();
    let mut input: Vec<Window> = Vec::new();
    let mut windows: Vec<Window> = Vec::new();
    let mut histograms: Vec<HistogramSample> = Vec::new();
    let mut id = 0u64;
    while let Some(s) = series.next_series()? {
        let rows = usize::try_from(s.row_count).unwrap_or(usize::MAX);
        input.clear();
        if let Some(c) = raw.as_mut() {
            samples.clear();
            c.take(&s, &mut samples)?;
            input.extend(samples.iter().filter_map(Window::of_sample));
        }
        if let Some(c) = finer.as_mut() {
            c.take(rows, &mut input)?;
        }
        windows.clear();
        fold_windows(input.iter().copied(), resolution_ms, &mut windows);
        histograms.clear();
        hists.take(id, &mut histograms)?;
        id += 1;
        writer.add_windows(&s.labels, &windows, &histograms)?;
    }
    writer.cover(source.meta.min_time_ms, source.meta.max_time_ms);
    writer.finish(CompactionMeta {
        level: source.meta.compaction.level,
        sources: vec![source.meta.id.clone()],
        ingest_positions: source.meta.compaction.ingest_positions.clone(),
    })
}
