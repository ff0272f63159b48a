//! Which rows of `samples.parquet` a query reads: the row groups whose timestamps may fall in
//! its range (where skipping one cannot break a series' chain of differences) and, inside
//! them, only the wanted series' rows (so the page index lets the
//! reader skip the other pages). Shared by raw samples (`reader`) and downsampled windows
//! (`aggregates`).

use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::file::statistics::Statistics;

use super::cursor::SAMPLES;
use super::index::BlockIndex;
use crate::storage::object::{BlockFile, BlockFiles};
use crate::storage::BlockError;

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

/// What to read of `samples.parquet` for some series and a time range: the row groups
/// whose timestamps may fall in the range and, inside them, only the series' rows.
pub(crate) struct RowPlan {
    builder: ParquetRecordBatchReaderBuilder<BlockFile>,
    row_groups: Vec<usize>,
    selection: RowSelection,
}

impl RowPlan {
    /// The planned rows of the file at `path` (named in errors) as record batches.
    pub(crate) fn batches(
        self,
        path: &Path,
    ) -> Result<impl Iterator<Item = Result<RecordBatch, BlockError>> + use<'_>, BlockError> {
        let reader = self
            .builder
            .with_row_groups(self.row_groups)
            .with_row_selection(self.selection)
            .build()
            .map_err(|e| BlockError::parquet(path, e))?;
        Ok(reader.map(move |batch| {
            batch.map_err(|source| BlockError::Arrow {
                path: path.to_path_buf(),
                source,
            })
        }))
    }
}

/// The [`RowPlan`] for the series `wanted` (ascending positions in `index.series`), in
/// the row groups whose timestamps may fall in `time_range` (`[start, end]`; every row
/// group holding their rows when `None`); `None` when no row group is left.
pub(crate) fn plan_rows(
    files: &BlockFiles,
    metadata: &ArrowReaderMetadata,
    index: &BlockIndex,
    wanted: &[usize],
    time_range: Option<(i64, i64)>,
) -> Result<Option<RowPlan>, BlockError> {
    let file = files.open(SAMPLES)?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata.clone());
    let series = &index.series;
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
        let time_ok = match (time_range, ts_range) {
            (Some((start, end)), Some((lo, hi))) => hi >= start && lo <= end,
            _ => true,
        };
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
        return Ok(None);
    }
    Ok(Some(RowPlan {
        builder,
        row_groups,
        selection: RowSelection::from(selectors),
    }))
}
