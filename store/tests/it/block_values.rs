//! Values through blocks bit for bit: decimal series stored as scaled integers, float
//! series, series mixing both with NaN stale markers, ±Inf and −0.0, through a head cut,
//! a compaction and a reopen, whole and by time ranges that start inside a series' rows;
//! and blocks of the formats before (format 1: floats only; format 3: scaled values whole,
//! not as differences) still read and compacted into the current one.
#![allow(clippy::unwrap_used)]

use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float64Array, Int64Array, Int8Array, ListArray, RecordBatch, StringArray, StructArray,
    UInt64Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields, Schema};
use parquet::arrow::ArrowWriter;

use crate::common::*;
use didban_store::block::BLOCK_FORMAT_VERSION;
use didban_store::model::stale_nan;
use didban_store::model::{LabelMatcher, MatchOp};
use didban_store::Queryable;
use didban_store::{Db, Labels, Sample, SeriesSamples};

/// Series covering every kind of value, 60 samples each at 15 s from `start`.
fn mixed_series(start: i64) -> Vec<SeriesSamples> {
    let t = |i: i64| start + i * 15_000;
    let mut out = Vec::new();
    let mut add = |name: &str, values: Vec<f64>| {
        let samples = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| Sample::new(t(i as i64), v))
            .collect();
        out.push(SeriesSamples::floats(labels(name, "values"), samples));
    };
    // A counter of seconds to the hundredth (scale 2), with a reset.
    add(
        "cpu_seconds_total",
        (0..60)
            .map(|i| {
                if i < 40 {
                    123_456.78 + i as f64 * 3.57
                } else {
                    i as f64 * 0.01
                }
            })
            .collect(),
    );
    // Whole bytes (scale 0), some beyond 2^32.
    add(
        "memory_bytes",
        (0..60).map(|i| 8_589_934_592.0 + (i * 4096) as f64).collect(),
    );
    // Nothing decimal: every value stays a float.
    add(
        "ratio",
        (0..60)
            .map(|i| (i as f64 + 1.0).sqrt() * std::f64::consts::PI)
            .collect(),
    );
    // Decimal with special values in between, which stay floats.
    let mut mixed: Vec<f64> = (0..60).map(|i| i as f64 * 0.5 - 10.0).collect();
    mixed[3] = stale_nan();
    mixed[7] = f64::INFINITY;
    mixed[8] = f64::NEG_INFINITY;
    mixed[9] = -0.0;
    mixed[10] = 0.1 + 0.2;
    mixed[11] = f64::NAN;
    mixed[12] = 1e300;
    mixed[13] = -1.25e-7;
    add("mixed", mixed);
    // Only special values.
    add(
        "special",
        (0..60)
            .map(|i| match i % 4 {
                0 => stale_nan(),
                1 => -0.0,
                2 => f64::INFINITY,
                _ => f64::NEG_INFINITY,
            })
            .collect(),
    );
    // Up to nine decimals, and values right at the f64 integer limit.
    add("tiny", (0..60).map(|i| i as f64 * 1e-9 + 0.000_000_001).collect());
    add(
        "huge",
        (0..60)
            .map(|i| 9_007_199_254_740_992.0 - (i * 2) as f64)
            .collect(),
    );
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// Asserts two results hold the same series and points, bit for bit, naming the first
/// difference (whole results are too long to print).
fn assert_bits(got: &[SeriesSamples], want: &[SeriesSamples]) {
    let (got, want) = (by_labels(got), by_labels(want));
    assert_eq!(got.len(), want.len(), "series count");
    for ((gl, gp), (wl, wp)) in got.iter().zip(&want) {
        assert_eq!(gl, wl);
        assert_eq!(gp.len(), wp.len(), "points of {gl}");
        for (g, w) in gp.iter().zip(wp) {
            assert_eq!(g, w, "{gl}: (timestamp, value bits)");
        }
    }
}

fn by_labels(series: &[SeriesSamples]) -> Vec<(Labels, Vec<(i64, u64)>)> {
    let mut out: Vec<(Labels, Vec<(i64, u64)>)> = series
        .iter()
        .map(|s| {
            let points = s
                .samples
                .iter()
                .map(|p| (p.timestamp_ms, p.value.to_bits()))
                .collect();
            (s.labels.clone(), points)
        })
        .collect();
    out.sort();
    out
}

/// Writes a second block of the series in `first` (written at `T0`), their timestamps in
/// between the first's, and has it merged with the block holding `first`; returns what
/// the merged block must hold.
async fn merge_with_interleaved_block(db: &Db, first: &[SeriesSamples]) -> Vec<SeriesSamples> {
    let second = mixed_series(T0 + 7_500);
    let report = db.append(second.clone()).await.unwrap();
    assert_eq!(report.rejected_total(), 0, "{report:?}");
    db.flush_head().unwrap();
    let mut all = first.to_vec();
    for (a, b) in all.iter_mut().zip(&second) {
        a.samples.extend(b.samples.iter().cloned());
        a.samples.sort_by_key(|p| p.timestamp_ms);
    }
    db.maintain(T0 + 60 * MIN).unwrap();
    assert_eq!(db.stats().compactions, 1);
    all
}

#[tokio::test]
async fn every_kind_of_value_reads_back_bit_exact_from_blocks_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    // The second block's samples fall between the first's: all inside the window.
    let opts = || {
        let mut o = options(dir.path());
        o.out_of_order_window = std::time::Duration::from_secs(3600);
        o
    };
    let db = Db::open(opts()).unwrap();
    let first = mixed_series(T0);
    db.append(first.clone()).await.unwrap();
    db.flush_head().unwrap();
    assert_eq!(db.stats().blocks, 1);
    assert_bits(&everything(&db), &first);

    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(block_dirs(dir.path())[0].join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["format_version"], BLOCK_FORMAT_VERSION);
    assert_ranges(&db, &first);

    let all = merge_with_interleaved_block(&db, &first).await;
    assert_eq!(db.stats().blocks, 1);
    assert_bits(&everything(&db), &all);
    drop(db);
    let db = Db::open(opts()).unwrap();
    assert_bits(&everything(&db), &all);
    assert_ranges(&db, &all);
}

/// Queries for ranges starting inside the series (a format 4 block's values are
/// differences added up from a series' first row, which these ranges leave out) give
/// exactly the samples of `all` in the range.
fn assert_ranges(db: &Db, all: &[SeriesSamples]) {
    let any = LabelMatcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap();
    for (start, end) in [
        (T0 + 100_000, T0 + 400_000),
        (T0 + 15 * MIN, i64::MAX),
        (T0 + 14 * MIN + 1, T0 + 14 * MIN + 1),
    ] {
        let mut want: Vec<SeriesSamples> = Vec::new();
        for s in all {
            let samples: Vec<Sample> = s
                .samples
                .iter()
                .filter(|p| (start..=end).contains(&p.timestamp_ms))
                .copied()
                .collect();
            if !samples.is_empty() {
                want.push(SeriesSamples::floats(s.labels.clone(), samples));
            }
        }
        let got = db.select(std::slice::from_ref(&any), start, end).unwrap();
        assert_bits(&got, &want);
    }
}

/// Writes `columns` as a Parquet file with the writer's default settings.
fn write_parquet(path: &Path, schema: Arc<Schema>, columns: Vec<ArrayRef>) {
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// `v` × 10^`k` as an integer, when dividing it back gives `v` bit for bit.
fn scaled_at(v: f64, k: u8) -> Option<i64> {
    let p = 10f64.powi(i32::from(k));
    let x = (v * p).round();
    if !x.is_finite() || x.abs() >= 9.0e15 {
        return None;
    }
    // From the integer, as a reader divides it (so −0.0 does not pass as 0).
    let m = x as i64;
    ((m as f64 / p).to_bits() == v.to_bits()).then_some(m)
}

/// The scale at which most of `samples` are integers (the smallest of equals), if any.
fn scale_of(samples: &[Sample]) -> Option<u8> {
    let mut best: Option<(usize, u8)> = None;
    for k in 0..=9u8 {
        let fit = samples.iter().filter(|s| scaled_at(s.value, k).is_some()).count();
        if fit > 0 && best.is_none_or(|(b, _)| fit > b) {
            best = Some((fit, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Writes `series` as a block in the layout of an older format, as a release of that time
/// wrote it: format 1 (every value in a non-null float column, no `value_scale`) or
/// format 3 (decimal values whole in `scaled_value` at the series' `value_scale`, the rest
/// in a nullable `value`).
fn write_old_block(blocks_dir: &Path, series: &[SeriesSamples], format: u32) {
    assert!(format == 1 || format == 3);
    let min_t = series
        .iter()
        .filter_map(|s| s.samples.first())
        .map(|s| s.timestamp_ms)
        .min()
        .unwrap();
    let max_t = series
        .iter()
        .filter_map(|s| s.samples.last())
        .map(|s| s.timestamp_ms)
        .max()
        .unwrap();
    let dir = blocks_dir.join(format!("{min_t}-{max_t}-00000000000000f{format}"));
    fs::create_dir_all(&dir).unwrap();

    let (mut ids, mut ts, mut vals, mut scaled) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut scales = Vec::new();
    let (mut first_rows, mut row_counts, mut mins, mut maxs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut names, mut counts, mut label_names, mut label_values) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, s) in series.iter().enumerate() {
        first_rows.push(ids.len() as u64);
        row_counts.push(s.samples.len() as u64);
        mins.push(s.samples[0].timestamp_ms);
        maxs.push(s.samples[s.samples.len() - 1].timestamp_ms);
        let scale = if format == 3 { scale_of(&s.samples) } else { None };
        scales.push(scale.map(|k| k as i8));
        for p in &s.samples {
            ids.push(id as u64);
            ts.push(p.timestamp_ms);
            let m = scale.and_then(|k| scaled_at(p.value, k));
            vals.push(if m.is_some() { None } else { Some(p.value) });
            scaled.push(m);
        }
        names.push(s.labels.metric_name().unwrap().to_string());
        counts.push(s.labels.len());
        for l in s.labels.iter() {
            label_names.push(l.name.to_string());
            label_values.push(l.value.to_string());
        }
    }
    let mut samples_fields = vec![
        Field::new("series_id", DataType::UInt64, false),
        Field::new("timestamp_ms", DataType::Int64, false),
        Field::new("value", DataType::Float64, format == 3),
    ];
    let mut samples: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(ids.clone())),
        Arc::new(Int64Array::from(ts)),
        Arc::new(Float64Array::from(vals)),
    ];
    if format == 3 {
        samples_fields.push(Field::new("scaled_value", DataType::Int64, true));
        samples.push(Arc::new(Int64Array::from(scaled)));
    }
    let samples_schema = Arc::new(Schema::new(samples_fields));
    write_parquet(&dir.join("samples.parquet"), samples_schema, samples);

    let pair = Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ]);
    let item = Arc::new(Field::new("item", DataType::Struct(pair.clone()), false));
    let mut series_fields = vec![
        Field::new("series_id", DataType::UInt64, false),
        Field::new("metric_name", DataType::Utf8, false),
        Field::new("labels", DataType::List(item.clone()), false),
        Field::new("first_row", DataType::UInt64, false),
        Field::new("row_count", DataType::UInt64, false),
        Field::new("min_time_ms", DataType::Int64, false),
        Field::new("max_time_ms", DataType::Int64, false),
    ];
    if format == 3 {
        series_fields.push(Field::new("value_scale", DataType::Int8, true));
    }
    let series_schema = Arc::new(Schema::new(series_fields));
    let pairs = StructArray::try_new(
        pair,
        vec![
            Arc::new(StringArray::from(label_names)) as ArrayRef,
            Arc::new(StringArray::from(label_values)),
        ],
        None,
    )
    .unwrap();
    let list = ListArray::try_new(item, OffsetBuffer::from_lengths(counts), Arc::new(pairs), None).unwrap();
    let mut rows: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(0..series.len() as u64)),
        Arc::new(StringArray::from(names)),
        Arc::new(list),
        Arc::new(UInt64Array::from(first_rows)),
        Arc::new(UInt64Array::from(row_counts)),
        Arc::new(Int64Array::from(mins)),
        Arc::new(Int64Array::from(maxs)),
    ];
    if format == 3 {
        rows.push(Arc::new(Int8Array::from(scales)));
    }
    write_parquet(&dir.join("series.parquet"), series_schema, rows);

    let meta = serde_json::json!({
        "format_version": format,
        "id": format!("00000000000000f{format}"),
        "min_time_ms": min_t,
        "max_time_ms": max_t,
        "series": series.len(),
        "samples": ids.len(),
        "compaction": {"level": 1, "sources": []},
    });
    fs::write(dir.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
}

#[tokio::test]
async fn blocks_of_older_formats_are_read_and_compacted_into_the_current_format() {
    for format in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let old = mixed_series(T0);
        let blocks = dir.path().join("metrics/blocks");
        fs::create_dir_all(&blocks).unwrap();
        write_old_block(&blocks, &old, format);
        if format == 3 {
            // The test wrote what format 3 did: values scaled in the decimal series
            // (counter, bytes, mixed, nine decimals; not the float-only ones).
            let scaled = old
                .iter()
                .map(|s| scale_of(&s.samples))
                .filter(Option::is_some)
                .count();
            assert_eq!(scaled, 4, "series scaled");
        }

        let db = Db::open(options(dir.path())).unwrap();
        assert_eq!(db.stats().blocks, 1, "the format {format} block is opened");
        assert_bits(&everything(&db), &old);
        assert_ranges(&db, &old);

        // A current block overlapping it: the merge reads the old format and writes the
        // current one.
        let all = merge_with_interleaved_block(&db, &old).await;
        let dirs = block_dirs(dir.path());
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        let meta: serde_json::Value =
            serde_json::from_slice(&fs::read(dirs[0].join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["format_version"], BLOCK_FORMAT_VERSION);
        assert_bits(&everything(&db), &all);
        assert_ranges(&db, &all);
    }
}

/// A series whose rows start in a row group that a query's range misses: its values are
/// differences added up from its first row, so that row group is read all the same. (Series
/// `a` fills the first 128Ki-row row group but for the first 72 rows of `b`, all before
/// the range asked for.)
#[tokio::test]
async fn a_series_is_read_from_its_first_row_when_its_first_row_group_misses_the_range() {
    const A_ROWS: i64 = 131_000;
    const STEP: i64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.block_duration = std::time::Duration::from_secs(2 * 3600);
    opts.max_sample_age = std::time::Duration::from_secs(24 * 3600);
    opts.head_memory_bytes = 1 << 30;
    let db = Db::open(opts).unwrap();
    let a: Vec<Sample> = (0..A_ROWS)
        .map(|i| Sample::new(T0 + i * STEP, i as f64))
        .collect();
    let b_start = T0 + A_ROWS * STEP;
    let b: Vec<Sample> = (0..200)
        .map(|i| Sample::new(b_start + i * STEP, 1_000.5 + 2.25 * i as f64))
        .collect();
    let series = vec![
        SeriesSamples::floats(labels("a", "rows"), a),
        SeriesSamples::floats(labels("b", "rows"), b.clone()),
    ];
    let report = db.append(series).await.unwrap();
    assert_eq!(report.rejected_total(), 0, "{report:?}");
    db.flush_head().unwrap();
    assert_eq!(block_dirs(dir.path()).len(), 1);

    let start = b_start + 100 * STEP;
    let b_only = LabelMatcher::new(MatchOp::Equal, "__name__", "b").unwrap();
    let got = db.select(std::slice::from_ref(&b_only), start, i64::MAX).unwrap();
    let want = vec![SeriesSamples::floats(labels("b", "rows"), b[100..].to_vec())];
    assert_bits(&got, &want);
}
