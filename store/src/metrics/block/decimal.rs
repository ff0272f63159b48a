//! The value columns of a block's `samples.parquet`: `value` (floats) and, from format 3 on,
//! `scaled_value` (decimal values as scaled integers, see [`crate::metrics::decimal`]); every
//! row has exactly one of the two.

use arrow_array::{Array, Float64Array, Int64Array, RecordBatch};
use std::path::Path;

use crate::storage::parquet::column;
use crate::storage::BlockError;

use crate::metrics::decimal::{from_scaled, MAX_SCALE};

/// The value columns of a batch of `samples.parquet`: `value` (floats; null in a row stored
/// scaled) and, from format 3 on, `scaled_value`.
pub(crate) struct ValueColumns<'a> {
    floats: &'a Float64Array,
    scaled: Option<&'a Int64Array>,
}

impl<'a> ValueColumns<'a> {
    /// The value columns of `batch`, read from the file at `path` (named in errors).
    pub(crate) fn of(batch: &'a RecordBatch, path: &Path) -> Result<ValueColumns<'a>, BlockError> {
        let floats = column::<Float64Array>(batch, "value", path)?;
        let scaled = match batch.column_by_name("scaled_value") {
            None => None,
            Some(_) => Some(column::<Int64Array>(batch, "scaled_value", path)?),
        };
        Ok(ValueColumns { floats, scaled })
    }

    /// The value of `row`, of a series with scale `scale`; a row with neither column set,
    /// or scaled without a scale, is a corrupt file at `path`.
    pub(crate) fn get(&self, row: usize, scale: Option<u8>, path: &Path) -> Result<f64, BlockError> {
        if self.floats.is_valid(row) {
            return Ok(self.floats.value(row));
        }
        let scaled = self.scaled.filter(|s| s.is_valid(row)).map(|s| s.value(row));
        match (scaled, scale) {
            (Some(m), Some(k)) => from_scaled(m, k)
                .ok_or_else(|| BlockError::corrupt(path, format!("value_scale {k} is above {MAX_SCALE}"))),
            (Some(m), None) => Err(BlockError::corrupt(
                path,
                format!("scaled value {m} in a series without value_scale"),
            )),
            (None, _) => Err(BlockError::corrupt(path, format!("row {row} has no value"))),
        }
    }
}
