//! The value columns of a block's `samples.parquet`: `value` (floats) and the scaled
//! integers of decimal values (see [`crate::metrics::decimal`]); every row has exactly one
//! of the two.
//!
//! Format 3 stored a scaled value whole (`scaled_value`). Format 4 stores its difference
//! from the series' previous scaled row (`scaled_delta`); the series' first scaled row adds
//! to `scaled_base` in `series.parquet`. Whole values put every series boundary into
//! Parquet's delta encoding as a jump the size of the values themselves, and with 120
//! samples a series nearly every 128-value block of that encoding holds one and is coded
//! at its width: on the bench's data at 1 M series × 30 min the column took 1.32
//! bytes/sample, as differences 0.60 (`docs/benchmarks.md`). The writer picks the base so
//! that the first difference equals the second ([`delta_base`]): the step from the
//! previous series' last difference is then one, not two.

use arrow_array::{Array, Float64Array, Int64Array, RecordBatch};
use std::ops::Range;
use std::path::Path;

use super::meta::BlockSeries;
use crate::storage::parquet::{column, optional_column};
use crate::storage::BlockError;

use crate::metrics::decimal::{from_scaled, MAX_SCALE};

/// The column of format 3's whole scaled values.
pub(crate) const SCALED_VALUE: &str = "scaled_value";
/// The column of format 4's differences.
pub(crate) const SCALED_DELTA: &str = "scaled_delta";

/// The `scaled_base` of a series whose first two scaled values are `first` and `second`:
/// the first less the difference between them, so that the first `scaled_delta` repeats
/// the second; the first itself when it is the only one. Scaled values are below 2^53 in
/// magnitude, so neither this nor any difference overflows.
pub(crate) fn delta_base(first: Option<i64>, second: Option<i64>) -> i64 {
    match (first, second) {
        (Some(first), Some(second)) => first - (second - first),
        (Some(only), None) => only,
        (None, _) => 0,
    }
}

/// How one series' scaled rows read back: its scale and, in a format 4 block, the value
/// the differences have added up to so far. One per series, carried across batches.
#[derive(Debug, Clone)]
pub(crate) struct SeriesValues {
    scale: Option<u8>,
    running: i64,
}

impl SeriesValues {
    /// The reader of `series`' rows, from its first.
    pub(crate) fn of(series: &BlockSeries) -> SeriesValues {
        SeriesValues {
            scale: series.value_scale,
            running: series.scaled_base,
        }
    }
}

/// How scaled values are stored in a batch.
enum Scaled<'a> {
    /// Format 3: each value whole.
    Whole(&'a Int64Array),
    /// Format 4: each value as the difference from the series' previous one.
    Delta(&'a Int64Array),
}

/// The value columns of a batch of `samples.parquet`: `value` (floats; null in a row stored
/// scaled) and, from format 3 on, the scaled column.
pub(crate) struct ValueColumns<'a> {
    floats: &'a Float64Array,
    scaled: Option<Scaled<'a>>,
}

impl<'a> ValueColumns<'a> {
    /// The value columns of `batch`, read from the file at `path` (named in errors).
    pub(crate) fn of(batch: &'a RecordBatch, path: &Path) -> Result<ValueColumns<'a>, BlockError> {
        let floats = column::<Float64Array>(batch, "value", path)?;
        let scaled = match optional_column::<Int64Array>(batch, SCALED_DELTA, path)? {
            Some(deltas) => Some(Scaled::Delta(deltas)),
            None => optional_column::<Int64Array>(batch, SCALED_VALUE, path)?.map(Scaled::Whole),
        };
        Ok(ValueColumns { floats, scaled })
    }

    /// The value of `row` of the series `series` reads; every row of the series must be
    /// read, in order, for its differences to add up. A row with neither column set, or
    /// scaled without a scale, is a corrupt file at `path`.
    pub(crate) fn get(&self, row: usize, series: &mut SeriesValues, path: &Path) -> Result<f64, BlockError> {
        if self.floats.is_valid(row) {
            return Ok(self.floats.value(row));
        }
        let m = match &self.scaled {
            Some(Scaled::Whole(c)) if c.is_valid(row) => c.value(row),
            Some(Scaled::Delta(c)) if c.is_valid(row) => {
                let m = series.running.checked_add(c.value(row)).ok_or_else(|| {
                    BlockError::corrupt(path, format!("scaled_delta of row {row} overflows"))
                })?;
                series.running = m;
                m
            }
            _ => return Err(BlockError::corrupt(path, format!("row {row} has no value"))),
        };
        match series.scale {
            Some(k) => scaled_value(m, k, path),
            None => Err(BlockError::corrupt(
                path,
                format!("scaled value {m} in a series without value_scale"),
            )),
        }
    }

    /// The values of `rows` (all of one series, `series`, in order, continuing from where
    /// it was left) appended to `out`: [`ValueColumns::get`] row by row, with two runs
    /// decoded in one loop each — every row a float, or every row scaled in the same
    /// column — which is what a block's series nearly always are (a query or a
    /// compaction reads every value of every series it selects).
    pub(crate) fn decode(
        &self,
        rows: Range<usize>,
        series: &mut SeriesValues,
        path: &Path,
        out: &mut Vec<f64>,
    ) -> Result<(), BlockError> {
        let floats = null_count(self.floats, &rows);
        if floats == Some(0) {
            out.extend_from_slice(self.floats.values().get(rows.clone()).unwrap_or_default());
            return Ok(());
        }
        let none_float = floats == Some(rows.len());
        out.reserve(rows.len());
        match (&self.scaled, series.scale) {
            (Some(Scaled::Delta(c)), Some(k)) if none_float && null_count(c, &rows) == Some(0) => {
                let mut running = series.running;
                for &d in c.values().get(rows.clone()).unwrap_or_default() {
                    running = running.checked_add(d).ok_or_else(|| {
                        BlockError::corrupt(path, format!("scaled_delta {d} after {running} overflows"))
                    })?;
                    out.push(scaled_value(running, k, path)?);
                }
                series.running = running;
                Ok(())
            }
            (Some(Scaled::Whole(c)), Some(k)) if none_float && null_count(c, &rows) == Some(0) => {
                for &m in c.values().get(rows.clone()).unwrap_or_default() {
                    out.push(scaled_value(m, k, path)?);
                }
                Ok(())
            }
            _ => {
                for row in rows {
                    out.push(self.get(row, series, path)?);
                }
                Ok(())
            }
        }
    }
}

/// The nulls of `array` in `rows`; `None` when `rows` is not inside it.
fn null_count(array: &impl Array, rows: &Range<usize>) -> Option<usize> {
    if rows.end > array.len() || rows.start > rows.end {
        return None;
    }
    Some(match array.nulls() {
        None => 0,
        Some(nulls) => nulls.slice(rows.start, rows.len()).null_count(),
    })
}

/// The value of the scaled integer `m` at scale `k` (at most [`MAX_SCALE`], or the file at
/// `path` is corrupt).
fn scaled_value(m: i64, k: u8, path: &Path) -> Result<f64, BlockError> {
    from_scaled(m, k)
        .ok_or_else(|| BlockError::corrupt(path, format!("value_scale {k} is above {MAX_SCALE}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every run of rows decodes in one call to what `get` gives row by row, whether it
    /// takes one of the one-loop paths (all floats; all scaled, as differences or whole)
    /// or not (floats and scaled values mixed, a row starting inside the batch); a scaled
    /// row without a scale, or a difference that overflows, is an error either way.
    #[test]
    fn a_run_of_rows_decodes_as_row_by_row() {
        let path = Path::new("samples.parquet");
        let floats = Float64Array::from(vec![
            Some(1.5),
            Some(-2.0),
            None,
            None,
            None,
            Some(7.0),
            None,
            None,
        ]);
        let deltas = Int64Array::from(vec![
            None,
            None,
            Some(12),
            Some(-3),
            Some(40),
            None,
            Some(5),
            Some(1),
        ]);
        let whole = Int64Array::from(vec![
            None,
            None,
            Some(125),
            Some(122),
            Some(162),
            None,
            Some(7),
            Some(8),
        ]);
        for (name, scaled) in [
            ("delta", Scaled::Delta(&deltas)),
            ("whole", Scaled::Whole(&whole)),
        ] {
            let columns = ValueColumns {
                floats: &floats,
                scaled: Some(scaled),
            };
            for rows in [0..2, 2..5, 0..8, 3..7, 5..6, 6..8, 4..4] {
                let start = SeriesValues {
                    scale: Some(2),
                    running: 113,
                };
                let (mut one, mut each) = (start.clone(), start.clone());
                let mut got = Vec::new();
                columns.decode(rows.clone(), &mut one, path, &mut got).unwrap();
                let mut want = Vec::new();
                for row in rows.clone() {
                    want.push(columns.get(row, &mut each, path).unwrap());
                }
                assert_eq!(got, want, "{name} rows {rows:?}");
                assert_eq!(one.running, each.running, "{name} rows {rows:?}");
            }
            let mut unscaled = SeriesValues {
                scale: None,
                running: 0,
            };
            let err = columns
                .decode(2..5, &mut unscaled, path, &mut Vec::new())
                .unwrap_err();
            assert!(err.to_string().contains("without value_scale"), "{err}");
        }
        let columns = ValueColumns {
            floats: &floats,
            scaled: Some(Scaled::Delta(&deltas)),
        };
        let mut near_max = SeriesValues {
            scale: Some(0),
            running: i64::MAX - 20,
        };
        let err = columns
            .decode(2..5, &mut near_max, path, &mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");
    }

    /// The first difference repeats the second, and base plus the differences gives every
    /// value back, at the extremes of the scaled range too.
    #[test]
    fn a_base_makes_the_first_difference_repeat_the_second() {
        let big = (1i64 << 53) - 1;
        for values in [
            vec![5, 9, 20],
            vec![-big, big, 0],
            vec![big, -big],
            vec![7],
            vec![],
        ] {
            let base = delta_base(values.first().copied(), values.get(1).copied());
            let mut running = base;
            let mut diffs = Vec::new();
            for m in &values {
                diffs.push(m - running);
                running = *m;
            }
            if values.len() >= 2 {
                assert_eq!(diffs[0], diffs[1], "{values:?}");
            }
            let mut back = base;
            for (d, m) in diffs.iter().zip(&values) {
                back += d;
                assert_eq!(back, *m);
            }
        }
    }
}
