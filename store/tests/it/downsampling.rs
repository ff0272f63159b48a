//! Downsampling: 30 days of synthetic counters and gauges (resets, a gap, a series that
//! starts mid-window, a stale marker) written through the head, cut, compacted and
//! downsampled with low ages; range queries at a 1 h step over the 30 days answer from
//! downsampled blocks only, within stated tolerances of the same queries forced to raw
//! data; retention per resolution deletes raw data first.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use crate::common::*;
use didban_store::model::stale_nan;
use didban_store::promql::{Engine, EngineOptions, QueryResult, Value};
use didban_store::{Db, FsyncMode, Labels, Sample, SeriesSamples};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const DAYS: i64 = 30;
const INTERVAL: i64 = 30_000;

/// A deterministic value in `0..m` for a time and a series.
fn noise(t: i64, salt: u64, m: u64) -> u64 {
    let mut x = (t as u64) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x % m
}

/// Every series over the 30 days.
fn synthetic() -> Vec<SeriesSamples> {
    let mut out = Vec::new();
    for j in 0..4i64 {
        let job = format!("c{j}");
        let mut v = 0.0;
        let mut points = Vec::new();
        let start = if j == 3 { 9 * DAY + 7 * MIN } else { 0 };
        let mut t = start;
        while t < DAYS * DAY {
            let gap = j == 2 && (12 * DAY + 10 * HOUR..12 * DAY + 13 * HOUR).contains(&t);
            // Resets once a week, at a different time for each series.
            if t % (7 * DAY) == (2 + j) * DAY + 3 * HOUR + 30_000 * j {
                v = 0.0;
            }
            v += 5.0 + noise(t, j as u64, 11) as f64;
            if !gap {
                points.push(Sample::new(T0 + t, v));
            }
            t += INTERVAL;
        }
        out.push(SeriesSamples::floats(labels("requests_total", &job), points));
    }
    for j in 0..4i64 {
        let job = format!("g{j}");
        let mut points = Vec::new();
        let mut t = 0;
        while t < DAYS * DAY {
            let phase = 2.0 * std::f64::consts::PI * (t as f64 / DAY as f64) + j as f64;
            let v = 20.0 + 10.0 * phase.sin() + noise(t, 100 + j as u64, 100) as f64 / 1000.0;
            let stale = j == 1 && t == 20 * DAY;
            let absent = j == 1 && t > 20 * DAY && t < 20 * DAY + 30 * MIN;
            if stale {
                points.push(Sample::new(T0 + t, stale_nan()));
            } else if !absent {
                points.push(Sample::new(T0 + t, v));
            }
            t += INTERVAL;
        }
        out.push(SeriesSamples::floats(labels("temperature", &job), points));
    }
    out
}

fn db_options(dir: &std::path::Path, raw_retention: Duration) -> didban_store::DbOptions {
    let mut o = options(dir);
    o.fsync = FsyncMode::Off;
    o.block_duration = Duration::from_secs(86_400);
    o.max_sample_age = Duration::from_secs(6 * 3600);
    o.max_future = Duration::ZERO;
    o.downsample_5m_after = Duration::from_secs(86_400);
    o.downsample_1h_after = Duration::from_secs(2 * 86_400);
    o.retention_time = raw_retention;
    o
}

/// Writes the 30 days an hour at a time, running maintenance once a simulated day, then
/// writes the head out and runs maintenance 3 days after the data ends.
async fn fill(db: &Db, all: &[SeriesSamples]) {
    for h in 0..DAYS * 24 {
        let (from, to) = (T0 + h * HOUR, T0 + (h + 1) * HOUR);
        let mut batch = Vec::new();
        for s in all {
            let points: Vec<Sample> = s
                .samples
                .iter()
                .filter(|p| p.timestamp_ms >= from && p.timestamp_ms < to)
                .copied()
                .collect();
            if !points.is_empty() {
                batch.push(SeriesSamples::floats(s.labels.clone(), points));
            }
        }
        let report = db.append(batch).await.unwrap();
        assert!(report.first_error.is_none(), "{:?}", report.first_error);
        if h % 24 == 23 {
            db.maintain(to).unwrap();
        }
    }
    db.flush_head().unwrap();
    // A round writes a few downsampled blocks at most: run rounds until none is due.
    let mut rounds = 0;
    loop {
        let before = db.stats().blocks_downsampled;
        db.maintain(T0 + (DAYS + 3) * DAY).unwrap();
        rounds += 1;
        let written = db.stats().blocks_downsampled - before;
        assert!(written <= 4, "{written} downsampled blocks in one round");
        if written == 0 {
            break;
        }
        assert!(rounds < 20, "downsampling never finishes");
    }
}

fn points(r: &QueryResult) -> HashMap<(Labels, i64), f64> {
    let Value::Matrix(series) = &r.value else {
        panic!("not a matrix: {:?}", r.value);
    };
    let mut out = HashMap::new();
    for s in series {
        for p in &s.samples {
            out.insert((s.labels.clone(), p.timestamp_ms), p.value);
        }
    }
    out
}

/// How a downsampled answer compares with the raw one.
struct Comparison {
    raw_points: usize,
    matched: usize,
    max_rel_err: f64,
    /// Where the largest error is: series, step (days since T0), downsampled and raw value.
    worst: String,
}

/// True for a step whose range (`range_ms`, plus one 1 h window) reaches a series' start,
/// the gap of `c2` or the stale marker of `g1`: there raw and downsampled answers differ by
/// design (`rate` extrapolates to a gap's edge by the spacing of the points it sees).
fn near_an_edge(labels: &Labels, t: i64, range_ms: i64) -> bool {
    let edges: &[i64] = match labels.get("job") {
        Some("c2") => &[12 * DAY + 10 * HOUR, 12 * DAY + 13 * HOUR],
        Some("c3") => &[9 * DAY + 7 * MIN],
        Some("g1") => &[20 * DAY],
        _ => &[],
    };
    edges
        .iter()
        .any(|&e| t >= T0 + e && t <= T0 + e + range_ms + HOUR)
}

/// Compares the points both answers have (steps near an edge left out, see
/// [`near_an_edge`]); relative error against the raw value.
fn compare(ds: &QueryResult, raw: &QueryResult, range_ms: i64) -> Comparison {
    let (d, r) = (points(ds), points(raw));
    let mut c = Comparison {
        raw_points: r.keys().filter(|k| !near_an_edge(&k.0, k.1, range_ms)).count(),
        matched: 0,
        max_rel_err: 0.0,
        worst: String::new(),
    };
    for (key, rv) in &r {
        if near_an_edge(&key.0, key.1, range_ms) {
            continue;
        }
        let Some(dv) = d.get(key) else {
            continue;
        };
        c.matched += 1;
        let err = (dv - rv).abs() / rv.abs().max(1e-9);
        if err > c.max_rel_err {
            c.max_rel_err = err;
            let day = (key.1 - T0) as f64 / DAY as f64;
            c.worst = format!("{} at day {day:.3}: {dv} vs {rv}", key.0);
        }
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_days_at_one_hour_step_read_downsampled_blocks_only() {
    let dir = tempfile::tempdir().unwrap();
    let all = synthetic();
    let db = Db::open(db_options(dir.path(), Duration::ZERO)).unwrap();
    fill(&db, &all).await;
    let stats = db.stats();
    assert!(stats.blocks_5m > 0 && stats.blocks_1h > 0, "{stats:?}");
    assert_eq!(stats.head_samples, 0);

    // Every downsampled block states its resolution and its source's time range in
    // meta.json, and pyarrow reads it: its windows count exactly the raw samples (stale
    // markers left out) of that range.
    let mut checked = [0usize; 2];
    for block in block_dirs(dir.path()) {
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(block.join("meta.json")).unwrap()).unwrap();
        let resolution = meta["resolution_ms"].as_i64().unwrap_or(0);
        if resolution == 0 {
            continue;
        }
        assert_eq!(meta["compaction"]["sources"].as_array().unwrap().len(), 1);
        let (lo, hi) = (
            meta["min_time_ms"].as_i64().unwrap(),
            meta["max_time_ms"].as_i64().unwrap(),
        );
        let mut raw_samples = 0u64;
        for s in &all {
            let live = s
                .samples
                .iter()
                .filter(|p| !didban_store::model::is_stale_nan(p.value));
            raw_samples += live
                .filter(|p| p.timestamp_ms >= lo && p.timestamp_ms <= hi)
                .count() as u64;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/check_downsampled.py");
        let output = std::process::Command::new("python3")
            .arg(script)
            .arg(&block)
            .output()
            .expect("python3 must be installed for this test");
        assert!(
            output.status.success(),
            "check_downsampled.py failed (is pyarrow installed? pip install -r tests/requirements.txt):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["resolution_ms"], resolution);
        assert_eq!(report["count_sum"], raw_samples, "{}", block.display());
        assert!(report["series_rows"].as_u64().unwrap() >= 7);
        checked[usize::from(resolution == 3_600_000)] += 1;
    }
    assert!(checked[0] > 0 && checked[1] > 0, "{checked:?}");

    let auto = Engine::new(EngineOptions::default());
    let raw_only = Engine::new(EngineOptions {
        max_source_resolution: Some(Duration::ZERO),
        ..EngineOptions::default()
    });
    let (start, end) = (T0 + DAY, T0 + DAYS * DAY);
    // (query, its range, resolution it may read, largest relative error allowed)
    let cases = [
        ("rate(requests_total[1h])", HOUR, 300_000, 0.05),
        ("rate(requests_total[2h])", 2 * HOUR, 300_000, 0.05),
        ("rate(requests_total[4h])", 4 * HOUR, 3_600_000, 0.05),
        ("increase(requests_total[6h])", 6 * HOUR, 3_600_000, 0.05),
        ("avg_over_time(temperature[1h])", HOUR, 3_600_000, 0.01),
        ("max_over_time(temperature[1h])", HOUR, 3_600_000, 0.01),
        ("min_over_time(temperature[1h])", HOUR, 3_600_000, 0.01),
        ("count_over_time(temperature[1h])", HOUR, 3_600_000, 0.01),
        ("sum_over_time(temperature[1h])", HOUR, 3_600_000, 0.02),
    ];
    for (q, range_ms, resolution, tolerance) in cases {
        let ds = auto.range_query(&db, q, start, end, HOUR).unwrap();
        let raw = raw_only.range_query(&db, q, start, end, HOUR).unwrap();
        let c = compare(&ds, &raw, range_ms);
        eprintln!(
            "{q}: samples read {} downsampled vs {} raw; {} of {} points matched; max relative error {:.4} ({})",
            ds.stats.samples_loaded, raw.stats.samples_loaded, c.matched, c.raw_points, c.max_rel_err, c.worst
        );
        assert_eq!(ds.stats.blocks_raw, 0, "{q} read raw blocks");
        assert!(ds.stats.blocks_downsampled > 0, "{q}");
        assert_eq!(ds.stats.resolution_ms, resolution, "{q}");
        assert!(
            raw.stats.blocks_raw > 0 && raw.stats.blocks_downsampled == 0,
            "{q}"
        );
        assert!(ds.stats.samples_loaded * 8 < raw.stats.samples_loaded, "{q}");
        assert!(c.raw_points > 2_000, "{q}");
        // Points may be missing where a window straddles a series' start or a gap.
        assert!(
            c.matched * 1000 >= c.raw_points * 998,
            "{q}: {} of {}",
            c.matched,
            c.raw_points
        );
        assert!(c.max_rel_err <= tolerance, "{q}: error {}", c.max_rel_err);
    }

    // irate on 1 h windows is the rate over the last window (the last two raw samples are
    // not kept): within the bounds of the per-scrape increments (5 to 15 per 30 s).
    let ds = auto
        .range_query(&db, "irate(requests_total[4h])", start, end, HOUR)
        .unwrap();
    assert_eq!(ds.stats.resolution_ms, 3_600_000);
    let irates = points(&ds);
    assert!(irates.len() > 2_000);
    for ((labels, t), v) in &irates {
        if !near_an_edge(labels, *t, 4 * HOUR) {
            assert!((5.0 / 30.0..=15.0 / 30.0).contains(v), "{labels} {t}: {v}");
        }
    }

    // A plain selector at a 1 h step reads each window's last value.
    let ds = auto.range_query(&db, "temperature", start, end, HOUR).unwrap();
    let raw = raw_only
        .range_query(&db, "temperature", start, end, HOUR)
        .unwrap();
    assert_eq!(ds.stats.blocks_raw, 0);
    let c = compare(&ds, &raw, 10 * MIN);
    assert!(
        c.matched * 1000 >= c.raw_points * 998 && c.max_rel_err < 0.01,
        "{}",
        c.max_rel_err
    );

    // A 1 m step needs raw data (one window per step at least).
    let fine = auto
        .range_query(&db, "max_over_time(temperature[1h])", end - 2 * HOUR, end, 60_000)
        .unwrap();
    assert!(fine.stats.blocks_raw > 0 && fine.stats.blocks_downsampled == 0);
    db.close().await.unwrap();

    // Raw data kept 10 days (from 3 days after the data ends): the first 23 days only
    // exist downsampled, and the same queries still answer there.
    let db = Db::open(db_options(dir.path(), Duration::from_secs(10 * 86_400))).unwrap();
    let before = auto
        .range_query(&db, "max_over_time(temperature[1h])", start, T0 + 10 * DAY, HOUR)
        .unwrap();
    db.maintain(T0 + (DAYS + 3) * DAY).unwrap();
    assert!(db.stats().retention_deleted_blocks > 0);
    let raw = raw_only
        .range_query(&db, "max_over_time(temperature[1h])", start, T0 + 10 * DAY, HOUR)
        .unwrap();
    assert!(points(&raw).is_empty(), "raw data of the first days is gone");
    let after = auto
        .range_query(&db, "max_over_time(temperature[1h])", start, T0 + 10 * DAY, HOUR)
        .unwrap();
    assert_eq!(points(&after), points(&before));
    let blocks_5m = db.stats().blocks_5m;
    db.close().await.unwrap();

    // A downsampled block whose meta.json does not hold together (a raw format version,
    // an unknown resolution) is refused at open and skipped, not read as raw samples.
    let mut spoiled = 0;
    for block in block_dirs(dir.path()) {
        let path = block.join("meta.json");
        let mut meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if meta["resolution_ms"] != 300_000 || spoiled == 2 {
            continue;
        }
        if spoiled == 0 {
            meta["format_version"] = 1.into();
        } else {
            meta["format_version"] = 2.into();
            meta["resolution_ms"] = 60_000.into();
        }
        std::fs::write(&path, serde_json::to_vec(&meta).unwrap()).unwrap();
        spoiled += 1;
    }
    assert_eq!(spoiled, 2);
    let db = Db::open(db_options(dir.path(), Duration::ZERO)).unwrap();
    assert_eq!(db.stats().blocks_5m, blocks_5m - 2);
    db.close().await.unwrap();
}
