//! Parquet reading helpers both block kinds (metric and span) use.

use std::path::Path;

use arrow_array::RecordBatch;

use super::error::BlockError;

/// The column `name` of `batch` as the array type `T`; a missing column or another type is
/// a corrupt file at `path`.
pub(crate) fn column<'a, T: 'static>(
    batch: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a T, BlockError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| BlockError::corrupt(path, format!("column {name:?} missing or of the wrong type")))
}

/// The column `name` of `batch` as `T` when the file has it (a column later formats added);
/// present with another type, a corrupt file at `path`.
pub(crate) fn optional_column<'a, T: 'static>(
    batch: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<Option<&'a T>, BlockError> {
    if batch.column_by_name(name).is_none() {
        return Ok(None);
    }
    column(batch, name, path).map(Some)
}
