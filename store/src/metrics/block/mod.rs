//! Immutable Parquet blocks under `<data_dir>/metrics/blocks/<mint>-<maxt>-<id>/`.
//!
//! A block holds `series.parquet` (one row per series, sorted by labels, with the range of
//! its rows in `samples.parquet`), `samples.parquet` (rows sorted by series id then
//! timestamp) and `meta.json`. Blocks are written into a `.tmp-` directory and renamed into
//! place, so a block directory either is complete or does not exist.

pub(crate) mod compact;
pub(crate) mod reader;
pub(crate) mod writer;

pub(crate) use writer::BlockWriter;

/// The shared block error, under the path it had when it lived here.
pub use crate::storage::BlockError;

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::metrics::postings::Postings;
use crate::model::{LabelMatcher, Labels, SeriesSamples};

/// Version of the block layout written into `meta.json`.
pub const BLOCK_FORMAT_VERSION: u32 = 1;

/// Prefix of directories that are not (yet or any more) blocks; removed at open.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// Contents of `meta.json`: what an outside reader needs to pick blocks by time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// [`BLOCK_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Random id, also the last part of the directory name.
    pub id: String,
    /// Oldest and newest sample timestamp in the block (inclusive).
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    /// Rows of `series.parquet` and `samples.parquet`.
    pub series: u64,
    pub samples: u64,
    /// Level and source blocks.
    pub compaction: CompactionMeta,
}

/// Where a block came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactionMeta {
    /// 1 for a block cut from the head, one more than the highest source when compacted.
    pub level: u32,
    /// Ids of the blocks merged into this one (empty for a head cut).
    pub sources: Vec<String>,
}

/// One series of a block, as listed in `series.parquet`.
#[derive(Debug, Clone)]
pub(crate) struct BlockSeries {
    pub labels: Labels,
    pub first_row: u64,
    pub row_count: u64,
    pub min_t: i64,
    pub max_t: i64,
}

/// A block opened for reading: its meta and series list stay in memory.
pub(crate) struct Block {
    pub dir: PathBuf,
    pub meta: BlockMeta,
    pub series: Vec<BlockSeries>,
    postings: Postings,
    /// Footer and page index of `samples.parquet`, read at open.
    samples_metadata: parquet::arrow::arrow_reader::ArrowReaderMetadata,
    /// Bytes of the block's files on disk.
    pub bytes: u64,
    delete_on_drop: AtomicBool,
}

/// Reads and parses a block directory's `meta.json` (metric and span blocks alike).
pub(crate) fn read_meta<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<T, BlockError> {
    let meta_path = dir.join("meta.json");
    let text = fs::read(&meta_path).map_err(|e| BlockError::io(&meta_path, e))?;
    serde_json::from_slice(&text).map_err(|source| BlockError::Meta {
        path: meta_path,
        source,
    })
}

impl Block {
    /// Opens the block in `dir`, reading `meta.json` and `series.parquet`.
    pub(crate) fn open(dir: &Path) -> Result<Block, BlockError> {
        let meta: BlockMeta = read_meta(dir)?;
        if meta.format_version != BLOCK_FORMAT_VERSION {
            return Err(BlockError::corrupt(
                dir,
                format!("unknown format version {}", meta.format_version),
            ));
        }
        let series = reader::read_series(&dir.join("series.parquet"))?;
        let mut postings = Postings::default();
        for (i, s) in series.iter().enumerate() {
            postings.add(i as u64, &s.labels);
        }
        let samples_metadata = reader::load_metadata(&dir.join("samples.parquet"))?;
        let mut bytes = 0;
        for entry in fs::read_dir(dir).map_err(|e| BlockError::io(dir, e))? {
            let entry = entry.map_err(|e| BlockError::io(dir, e))?;
            bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            series,
            postings,
            samples_metadata,
            bytes,
            delete_on_drop: AtomicBool::new(false),
        })
    }

    /// True when the block holds samples in `[start, end]`.
    pub(crate) fn overlaps(&self, start: i64, end: i64) -> bool {
        self.meta.max_time_ms >= start && self.meta.min_time_ms <= end
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
        let mut wanted: Vec<usize> = Vec::new();
        for id in self.postings.select(matchers) {
            let Some(s) = self.series.get(id as usize) else {
                continue;
            };
            if s.max_t >= start && s.min_t <= end && s.row_count > 0 {
                wanted.push(id as usize);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        reader::read_samples(
            &self.dir.join("samples.parquet"),
            &self.samples_metadata,
            &self.series,
            &wanted,
            start,
            end,
            out,
        )
    }

    /// Schedules the directory for deletion once the last reader lets go of the block.
    pub(crate) fn mark_deleted(&self) {
        self.delete_on_drop.store(true, Ordering::SeqCst);
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

impl Drop for Block {
    /// Deletes a block marked deleted: first renamed to a `.tmp-` name (so a crash never
    /// leaves a half-deleted block that looks valid), then removed.
    fn drop(&mut self) {
        if !self.delete_on_drop.load(Ordering::SeqCst) {
            return;
        }
        let Some(parent) = self.dir.parent() else {
            return;
        };
        let Some(name) = self.dir.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let doomed = parent.join(format!("{TMP_PREFIX}del-{name}"));
        let result = fs::rename(&self.dir, &doomed).and_then(|_| fs::remove_dir_all(&doomed));
        if let Err(e) = result {
            tracing::warn!(block = %self.dir.display(), error = %e, "could not delete block");
        }
    }
}

/// A fresh random block id (16 hex digits): process-random hasher keys mixed with the
/// time, the pid and a counter, so ids never collide across writers.
pub(crate) fn new_block_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// Opens every block in `blocks_dir`, removing leftover `.tmp-` directories; blocks that
/// fail to open are logged and skipped (left on disk for inspection).
pub(crate) fn open_all(blocks_dir: &Path) -> Result<Vec<Block>, BlockError> {
    let mut blocks = Vec::new();
    for entry in fs::read_dir(blocks_dir).map_err(|e| BlockError::io(blocks_dir, e))? {
        let entry = entry.map_err(|e| BlockError::io(blocks_dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if !path.is_dir() {
            continue;
        }
        if name.starts_with(TMP_PREFIX) {
            fs::remove_dir_all(&path).map_err(|e| BlockError::io(&path, e))?;
            continue;
        }
        match Block::open(&path) {
            Ok(block) => blocks.push(block),
            Err(e) => {
                tracing::error!(block = %path.display(), error = %e, "skipping unreadable block")
            }
        }
    }
    blocks.sort_by_key(|b| (b.meta.min_time_ms, b.meta.max_time_ms));
    Ok(blocks)
}
