//! Native histogram heatmaps: rows from exponential schemas (merged to the bound, on a log
//! axis), custom bounds (NHCB), the zero bucket, shading of gauges and of counters.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use didban_store::model::{CounterResetHint, FloatHistogram, Labels, CUSTOM_BUCKETS_SCHEMA};

use super::super::options::{ChartFrame, ChartOptions};
use super::super::series::Series;
use super::{native, render, MAX_NATIVE_ROWS};

const T0: i64 = 1_700_000_000_000;
const STEP: i64 = 60_000;

fn frame() -> ChartFrame {
    ChartFrame {
        width: 600,
        height: 300,
        start_ms: T0 - STEP,
        end_ms: T0 + 10 * STEP,
    }
}

/// An exponential histogram of `schema` with these positive buckets.
fn exp(schema: i32, buckets: &[(i32, f64)], hint: CounterResetHint) -> Arc<FloatHistogram> {
    let mut h = FloatHistogram {
        schema,
        counter_reset_hint: hint,
        ..FloatHistogram::default()
    };
    h.set_positive(buckets);
    h.count = buckets.iter().map(|b| b.1).sum();
    h.sum = h.count;
    Arc::new(h)
}

/// A custom-bucket histogram with `bounds` and one count per bucket (the last is +Inf).
fn nhcb(bounds: &[f64], counts: &[f64]) -> Arc<FloatHistogram> {
    let mut h = FloatHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        counter_reset_hint: CounterResetHint::Gauge,
        custom_values: Arc::from(bounds.to_vec()),
        ..FloatHistogram::default()
    };
    let pairs: Vec<(i32, f64)> = counts.iter().enumerate().map(|(i, c)| (i as i32, *c)).collect();
    h.set_positive(&pairs);
    h.count = counts.iter().sum();
    h.validate().unwrap();
    Arc::new(h)
}

fn series(samples: Vec<Arc<FloatHistogram>>) -> Series {
    let labels = Labels::from_pairs([("__name__", "http_server_duration_seconds")]);
    let points = samples
        .into_iter()
        .enumerate()
        .map(|(i, h)| (T0 + i as i64 * STEP, h))
        .collect();
    Series::of_histograms(labels, points)
}

fn opts() -> ChartOptions {
    ChartOptions::default()
}

#[test]
fn exponential_buckets_are_rows_bottom_to_top_shaded_by_count() {
    let g = CounterResetHint::Gauge;
    let s = series(vec![
        exp(0, &[(1, 1.0), (2, 8.0), (3, 1.0)], g),
        exp(0, &[(1, 2.0), (3, 8.0)], g),
    ]);
    let grid = native::grid(std::slice::from_ref(&s), &opts()).unwrap();
    // schema 0: bucket i is (2^(i-1), 2^i]
    assert_eq!(grid.labels, ["2", "4", "8"]);
    assert_eq!(grid.times, [T0, T0 + STEP]);
    assert_eq!(grid.counts, [vec![1.0, 2.0], vec![8.0, 0.0], vec![1.0, 8.0]]);
    let svg = render(&[s], frame(), &opts());
    assert_eq!(svg.matches("<rect class=\"hm").count(), 5, "{svg}");
    assert_eq!(svg.matches("<rect class=\"hm8\"").count(), 2, "{svg}");
    assert!(
        svg.contains("Heatmap of 3 native histogram rows (schema 0)"),
        "{svg}"
    );
    // the 2 row is below the 8 row
    let y_of = |label: &str| -> f64 {
        let at = svg.find(&format!(">{label}</text>")).unwrap();
        let y = svg[..at].rsplit(r#"y=""#).next().unwrap();
        y.split('"').next().unwrap().parse().unwrap()
    };
    assert!(y_of("2") > y_of("4") && y_of("4") > y_of("8"), "{svg}");
}

#[test]
fn many_buckets_merge_into_at_most_the_row_bound_on_a_log_axis() {
    let buckets: Vec<(i32, f64)> = (-100..=100).map(|i| (i, 1.0)).collect();
    let s = series(vec![exp(3, &buckets, CounterResetHint::Gauge)]);
    let grid = native::grid(&[s], &opts()).unwrap();
    // 201 buckets of schema 3 merged 8 at a time: 26 rows (5 and 4 buckets at the ends)
    assert_eq!(grid.labels.len(), 26);
    assert!(grid.labels.len() <= MAX_NATIVE_ROWS);
    assert!(grid.rows_text.contains("8 buckets per row"), "{}", grid.rows_text);
    let col: Vec<f64> = grid.counts.iter().map(|r| r[0]).collect();
    assert_eq!(col.iter().sum::<f64>(), 201.0, "no observation lost");
    assert_eq!((col[0], col[25]), (5.0, 4.0));
    assert!(col[1..25].iter().all(|c| *c == 8.0), "{col:?}");
    // each row is one merged bucket: upper bounds 2^-12 … 2^13, doubling row by row
    let o = ChartOptions {
        decimals: Some(6),
        ..ChartOptions::default()
    };
    let grid = native::grid(&[series(vec![exp(3, &buckets, CounterResetHint::Gauge)])], &o).unwrap();
    assert_eq!(grid.labels[12], o.format(1.0));
    assert_eq!(grid.labels[13], o.format(2.0));
}

#[test]
fn mixed_schemas_are_reindexed_to_the_coarsest() {
    let g = CounterResetHint::Gauge;
    // schema 1 buckets 1 and 2 are (1, 1.41] and (1.41, 2]: both inside schema 0 bucket 1
    let a = series(vec![exp(1, &[(1, 1.0), (2, 2.0)], g)]);
    let b = series(vec![exp(0, &[(1, 4.0), (2, 1.0)], g)]);
    let grid = native::grid(&[a, b], &opts()).unwrap();
    assert_eq!(grid.labels, ["2", "4"]);
    assert_eq!(grid.counts, [vec![7.0], vec![1.0]]);
}

#[test]
fn counters_shade_their_increase_and_restart_after_a_reset() {
    let u = CounterResetHint::Unknown;
    let s = series(vec![
        exp(0, &[(1, 1.0)], u),
        exp(0, &[(1, 3.0)], u),
        exp(0, &[(1, 3.0), (2, 4.0)], u),
        exp(0, &[(1, 1.0)], u), // reset: the count went down
    ]);
    let grid = native::grid(&[s], &opts()).unwrap();
    assert_eq!(grid.labels, ["2", "4"]);
    // the first sample has nothing before it: no increase known
    assert_eq!(grid.counts, [vec![0.0, 2.0, 0.0, 1.0], vec![0.0, 0.0, 4.0, 0.0]]);
}

#[test]
fn zero_bucket_gets_its_own_row_below() {
    let mut h = (*exp(0, &[(1, 2.0)], CounterResetHint::Gauge)).clone();
    h.zero_threshold = 0.001;
    h.zero_count = 3.0;
    let grid = native::grid(&[series(vec![Arc::new(h)])], &opts()).unwrap();
    assert_eq!(grid.labels.len(), 2);
    assert_eq!(grid.labels[0], opts().format(0.001));
    assert_eq!(grid.counts, [vec![3.0], vec![2.0]]);
}

#[test]
fn custom_bounds_are_the_rows_of_an_nhcb_heatmap() {
    let s = series(vec![
        nhcb(&[0.1, 0.5, 1.0], &[1.0, 2.0, 0.0, 4.0]),
        nhcb(&[0.5, 2.0], &[3.0, 1.0, 1.0]),
    ]);
    let grid = native::grid(std::slice::from_ref(&s), &opts()).unwrap();
    // the union of the bounds, +Inf last
    assert_eq!(grid.labels, ["0.1", "0.5", "1", "2", "+Inf"]);
    assert_eq!(
        grid.counts,
        [
            vec![1.0, 0.0],
            vec![2.0, 3.0],
            vec![0.0, 0.0],
            vec![0.0, 1.0],
            vec![4.0, 1.0]
        ]
    );
    let svg = render(&[s], frame(), &opts());
    assert!(svg.contains("Heatmap of 5 custom buckets"), "{svg}");
    assert_eq!(svg.matches("<rect class=\"hm").count(), 6, "{svg}");
}

#[test]
fn many_custom_bounds_merge_evenly_to_the_bound() {
    let bounds: Vec<f64> = (1..=99).map(f64::from).collect();
    let counts = vec![1.0; 100];
    let grid = native::grid(&[series(vec![nhcb(&bounds, &counts)])], &opts()).unwrap();
    // 100 rows (99 bounds and +Inf), 3 per row
    assert_eq!(grid.labels.len(), 34);
    assert_eq!(grid.labels[0], "3");
    assert_eq!(grid.labels[33], "+Inf");
    let total: f64 = grid.counts.iter().map(|r| r[0]).sum();
    assert_eq!(total, 100.0);
}

#[test]
fn empty_and_stale_histograms_say_no_data() {
    let s = series(vec![Arc::new(FloatHistogram::stale_marker())]);
    assert!(native::grid(std::slice::from_ref(&s), &opts()).is_none());
    let svg = render(&[s], frame(), &opts());
    assert!(svg.contains("No data"), "{svg}");
    let empty = series(vec![exp(0, &[], CounterResetHint::Gauge)]);
    assert!(render(&[empty], frame(), &opts()).contains("No data"));
}
