//! A block written by the engine, read back by pyarrow (an outside reader): the float
//! samples and, in `histograms.parquet`, the native histogram samples. Fails (does
//! not skip) when python3 or pyarrow are missing: install from tests/requirements.txt.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::*;
use didban_store::model::stale_nan;
use didban_store::{Db, Labels, Sample, SeriesSamples};

#[tokio::test]
async fn pyarrow_reads_the_block_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_sample_age = std::time::Duration::from_secs(24 * 3600);
    opts.head_memory_bytes = 1 << 30;
    let db = Db::open(opts).unwrap();

    // 40 series × 4000 samples = 160 000 rows: more than one 128Ki-row row group. Values
    // are quarters (stored scaled, scale 2) but for series 5 (square roots: mostly floats), with a
    // stale marker in series 3 and −0.0 in series 7 (floats in a scaled series).
    let mut batch = Vec::new();
    let mut expected_sum = 0.0;
    let mut expected_bits = 0u64;
    let mut written: BTreeMap<Labels, usize> = BTreeMap::new();
    for s in 0..40 {
        let labels = Labels::from_pairs([
            (
                "__name__",
                if s % 2 == 0 {
                    "node_cpu_seconds_total"
                } else {
                    "up"
                },
            ),
            ("instance", &format!("host-{s:02}")),
            ("mode", "idle"),
        ]);
        let mut samples = Vec::new();
        for i in 0..4000i64 {
            let v = if s == 5 {
                ((s * 1000 + i) as f64 + 0.5).sqrt()
            } else {
                (s * 1000 + i) as f64 * 0.25
            };
            expected_sum += v;
            expected_bits = expected_bits.wrapping_add(v.to_bits());
            samples.push(Sample::new(T0 + i * 1000, v));
        }
        let special = match s {
            3 => Some(stale_nan()),
            7 => Some(-0.0),
            _ => None,
        };
        if let Some(v) = special {
            samples.push(Sample::new(T0 + 4000 * 1000, v));
            expected_bits = expected_bits.wrapping_add(v.to_bits());
        }
        written.insert(labels.clone(), samples.len());
        batch.push(SeriesSamples::floats(labels, samples));
    }
    db.append(batch).await.unwrap();
    db.flush_head().unwrap();
    let blocks = block_dirs(dir.path());
    assert_eq!(blocks.len(), 1);

    if let Ok(keep) = std::env::var("DIDBAN_KEEP_BLOCK") {
        let _ = Command::new("cp").arg("-r").arg(&blocks[0]).arg(keep).status();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/check_block.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&blocks[0])
        .output()
        .expect("python3 must be installed for this test");
    assert!(
        output.status.success(),
        "check_block.py failed (is pyarrow installed? pip install -r tests/requirements.txt):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let total: usize = written.values().sum();
    assert_eq!(report["samples_rows"], total as u64);
    assert_eq!(report["series_rows"], 40);
    assert_eq!(report["row_groups"], 2);
    assert_eq!(report["max_row_group_rows"], 128 * 1024);
    assert_eq!(report["min_timestamp"], T0);
    assert_eq!(report["max_timestamp"], T0 + 4000 * 1000);
    assert_eq!(report["nan_count"], 1);
    assert!((report["value_sum"].as_f64().unwrap() - expected_sum).abs() < 1e-6 * expected_sum);
    // Every value rebuilt as docs/storage.md says, bit for bit.
    assert_eq!(report["value_bits_sum"], expected_bits);
    let scaled = report["scaled_rows"].as_u64().unwrap();
    // The quarters are all scaled, the stale marker and −0.0 never (a square root may
    // happen to be a short decimal).
    assert!(
        (38 * 4000..=total as u64 - 2).contains(&scaled),
        "{scaled} of {total} rows scaled"
    );
    let encodings = &report["encodings"];
    assert!(
        encodings["series_id"].to_string().contains("DELTA_BINARY_PACKED"),
        "{encodings}"
    );
    assert!(
        encodings["timestamp_ms"]
            .to_string()
            .contains("DELTA_BINARY_PACKED"),
        "{encodings}"
    );
    assert!(
        encodings["value"].to_string().contains("BYTE_STREAM_SPLIT"),
        "{encodings}"
    );
    assert!(
        encodings["scaled_delta"]
            .to_string()
            .contains("DELTA_BINARY_PACKED"),
        "{encodings}"
    );
    assert_eq!(report["compression"], serde_json::json!(["ZSTD"]));
    assert_eq!(report["statistics"], true);
    assert_eq!(report["page_index"], true);

    // series.parquet: ids in label order, labels as written, row ranges consistent
    let series = report["series"].as_array().unwrap();
    let mut next_row = 0u64;
    for (i, (labels, n)) in written.iter().enumerate() {
        let row = &series[i];
        assert_eq!(row["series_id"], i as u64);
        assert_eq!(row["metric_name"], labels.metric_name().unwrap());
        for l in labels.iter() {
            assert_eq!(row["labels"][&l.name], l.value);
        }
        assert_eq!(row["labels"].as_object().unwrap().len(), labels.len());
        assert_eq!(row["first_row"], next_row);
        assert_eq!(row["row_count"], *n as u64);
        if labels.get("instance") != Some("host-05") {
            assert_eq!(row["value_scale"], 2, "{labels}");
            // Quarters at scale 2 step by 25 from s × 1000 × 25: the base is one step
            // before the first, so that the first difference is a step too.
            let s: i64 = labels.get("instance").unwrap()[5..].parse().unwrap();
            assert_eq!(row["scaled_base"], s * 25_000 - 25, "{labels}");
        }
        assert_eq!(report["rows_per_series"][i.to_string()], *n as u64);
        next_row += *n as u64;
    }
}

/// The native histogram samples of a block, read with pyarrow from `histograms.parquet`
/// joined to `series.parquet`: every field as written.
#[tokio::test]
async fn pyarrow_reads_the_histograms_as_written() {
    use didban_store::model::{CounterResetHint, HistogramSample, Span, CUSTOM_BUCKETS_SCHEMA};
    use didban_store::FloatHistogram;

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    let exp = |i: i64| FloatHistogram {
        counter_reset_hint: if i == 0 {
            CounterResetHint::CounterReset
        } else {
            CounterResetHint::NotCounterReset
        },
        schema: 3,
        zero_threshold: 1e-4,
        zero_count: 2.0,
        count: 9.0 + i as f64,
        sum: 4.5 * i as f64,
        positive_spans: vec![
            Span {
                offset: -3,
                length: 2,
            },
            Span { offset: 1, length: 1 },
        ],
        positive_buckets: vec![1.0, 2.0, 3.0 + i as f64],
        negative_spans: vec![Span { offset: 2, length: 1 }],
        negative_buckets: vec![1.0],
        ..FloatHistogram::default()
    };
    let custom = FloatHistogram {
        counter_reset_hint: CounterResetHint::Gauge,
        schema: CUSTOM_BUCKETS_SCHEMA,
        count: 2.5,
        sum: -1.0,
        positive_spans: vec![Span { offset: 1, length: 2 }],
        positive_buckets: vec![0.5, 2.0],
        custom_values: std::sync::Arc::from(vec![1.0, 2.5, 10.0]),
        ..FloatHistogram::default()
    };
    let mut written = Vec::new();
    let mut exp_series = Vec::new();
    for i in 0..3 {
        exp_series.push(HistogramSample::new(T0 + i * 15_000, exp(i)));
    }
    exp_series.push(HistogramSample::new(T0 + 45_000, FloatHistogram::stale_marker()));
    written.push((labels("latency_seconds", "api"), exp_series));
    written.push((
        labels("queue_depth", "worker"),
        vec![HistogramSample::new(T0 + 5_000, custom)],
    ));
    let mut batch: Vec<SeriesSamples> = written
        .iter()
        .map(|(l, h)| SeriesSamples {
            labels: l.clone(),
            samples: Vec::new(),
            histograms: h.clone(),
        })
        .collect();
    // A float series in the same block: it has no histogram rows.
    batch.push(series("up", "api", &[(T0, 1.0)]));
    db.append(batch).await.unwrap();
    db.flush_head().unwrap();
    let blocks = block_dirs(dir.path());
    assert_eq!(blocks.len(), 1);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/check_histograms.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&blocks[0])
        .output()
        .expect("python3 must be installed for this test");
    assert!(
        output.status.success(),
        "check_histograms.py failed (is pyarrow installed? pip install -r tests/requirements.txt):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let mut k = 0;
    for (labels, samples) in &written {
        for s in samples {
            let row = &rows[k];
            k += 1;
            let h = &s.h;
            for l in labels.iter() {
                assert_eq!(row["labels"][&l.name], l.value);
            }
            assert_eq!(row["timestamp_ms"], s.timestamp_ms);
            let hint = match h.counter_reset_hint {
                CounterResetHint::Unknown => 0,
                CounterResetHint::CounterReset => 1,
                CounterResetHint::NotCounterReset => 2,
                CounterResetHint::Gauge => 3,
            };
            assert_eq!(row["counter_reset_hint"], hint);
            assert_eq!(row["schema"], h.schema);
            assert_eq!(row["zero_threshold"], h.zero_threshold);
            assert_eq!(row["zero_count"], h.zero_count);
            assert_eq!(row["count"], h.count);
            assert_eq!(row["sum_is_nan"], h.sum.is_nan());
            if !h.sum.is_nan() {
                assert_eq!(row["sum"], h.sum);
            }
            let spans = |spans: &[Span]| -> serde_json::Value {
                spans
                    .iter()
                    .map(|s| serde_json::json!([s.offset, s.length]))
                    .collect()
            };
            assert_eq!(row["positive_spans"], spans(&h.positive_spans));
            assert_eq!(row["negative_spans"], spans(&h.negative_spans));
            assert_eq!(row["positive_buckets"], serde_json::json!(h.positive_buckets));
            assert_eq!(row["negative_buckets"], serde_json::json!(h.negative_buckets));
            assert_eq!(row["custom_values"], serde_json::json!(h.custom_values.to_vec()));
        }
    }
    assert_eq!(
        rows.len(),
        k,
        "one row per histogram sample, none for the float series"
    );
}
