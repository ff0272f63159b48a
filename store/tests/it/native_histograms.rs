//! Native histograms stored end to end in the metric `Db`: appended, read from the head,
//! from a block after a cut and after compaction, replayed from the WAL after a restart
//! without close; the append rules for them; and the promqltest scripts run over a `Db`
//! (head and blocks) as over `MemStorage`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use crate::common::*;
use didban_store::model::{HistogramSample, Span, CUSTOM_BUCKETS_SCHEMA};
use didban_store::promql::promqltest::{run_script_on, ScriptStorage};
use didban_store::promql::{Engine, EngineOptions, Value};
use didban_store::{Db, FloatHistogram, Queryable, RejectReason, Sample, SeriesSamples};

/// An exponential histogram with integer counts that grow with `i`.
fn exp_hist(i: i64) -> FloatHistogram {
    let k = i as f64;
    FloatHistogram {
        schema: 1,
        zero_threshold: 0.001,
        zero_count: 1.0 + k,
        count: 10.0 + 4.0 * k,
        sum: 12.5 + k * 3.25,
        positive_spans: vec![
            Span {
                offset: -1,
                length: 2,
            },
            Span { offset: 2, length: 1 },
        ],
        positive_buckets: vec![2.0 + k, 3.0, 1.0 + k],
        negative_spans: vec![Span { offset: 0, length: 1 }],
        negative_buckets: vec![3.0 + k],
        ..FloatHistogram::default()
    }
}

/// A custom-bucket histogram with fractional counts (a float histogram).
fn custom_hist(i: i64) -> FloatHistogram {
    FloatHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        count: 3.5 + i as f64,
        sum: 1.25,
        positive_spans: vec![Span { offset: 0, length: 3 }],
        positive_buckets: vec![1.5, 1.0, 1.0 + i as f64],
        custom_values: Arc::from(vec![0.1, 0.5]),
        counter_reset_hint: didban_store::model::CounterResetHint::NotCounterReset,
        ..FloatHistogram::default()
    }
}

fn hseries(name: &str, job: &str, points: Vec<(i64, FloatHistogram)>) -> SeriesSamples {
    SeriesSamples {
        labels: labels(name, job),
        samples: Vec::new(),
        histograms: points
            .into_iter()
            .map(|(t, h)| HistogramSample::new(t, h))
            .collect(),
    }
}

/// The load: two histogram series (one exponential ending with a stale marker, one
/// custom-bucket), one float series, samples `first..first + 20` at `T0 + i × 15 s`, so
/// overlapping loads hold identical samples where they overlap.
fn load(first: i64) -> Vec<SeriesSamples> {
    let mut exp = Vec::new();
    let mut custom = Vec::new();
    let mut floats = Vec::new();
    for i in first..first + 20 {
        let t = T0 + i * 15_000;
        exp.push((t, exp_hist(i)));
        custom.push((t, custom_hist(i)));
        floats.push((t, i as f64));
    }
    exp.push((T0 + (first + 20) * 15_000 - 7_500, FloatHistogram::stale_marker()));
    vec![
        hseries("rpc_seconds", "api", exp),
        hseries("rpc_size", "api", custom),
        series("up", "api", &floats),
    ]
}

/// A result as text, one line per sample: floats and histograms by their Debug form, so
/// NaNs compare equal and a difference shows the samples concerned.
fn text(result: &[SeriesSamples]) -> String {
    let mut out = String::new();
    for s in result {
        for p in &s.samples {
            out.push_str(&format!("{} {} {:?}\n", s.labels, p.timestamp_ms, p.value));
        }
        for h in &s.histograms {
            out.push_str(&format!("{} {} {:?}\n", s.labels, h.timestamp_ms, h.h));
        }
    }
    out
}

/// Asserts two results hold the same samples, naming the first difference.
fn assert_same_text(got: &[SeriesSamples], want: &[SeriesSamples]) {
    let (got, want) = (text(got), text(want));
    for (i, (a, b)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(a, b, "line {i} differs");
    }
    assert_eq!(got.lines().count(), want.lines().count());
}

fn histogram_count(result: &[SeriesSamples]) -> usize {
    result.iter().map(|s| s.histograms.len()).sum()
}

#[tokio::test]
async fn histograms_survive_head_restart_cut_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    let report = db.append(load(0)).await.unwrap();
    assert_eq!(report.accepted, 21 + 20 + 20);
    assert_eq!(report.rejected_total(), 0);
    let from_head = everything(&db);
    assert_eq!(from_head.len(), 3);
    assert_eq!(histogram_count(&from_head), 41);
    assert_eq!(count(&from_head), 20);
    let exp = &from_head[0];
    assert_eq!(exp.labels, labels("rpc_seconds", "api"));
    assert_eq!(*exp.histograms[7].h, exp_hist(7));
    assert!(exp.histograms[20].h.is_stale());
    assert_eq!(*from_head[1].histograms[19].h, custom_hist(19));

    // Restart without close: the WAL brings everything back.
    drop(db);
    let db = Db::open(options(dir.path())).unwrap();
    assert_same_text(&everything(&db), &from_head);

    // Cut: from the block.
    db.flush_head().unwrap();
    assert_eq!(db.stats().blocks, 1);
    assert_eq!(db.stats().head_samples, 0);
    let blocks = block_dirs(dir.path());
    assert!(blocks[0].join("histograms.parquet").exists());
    assert_same_text(&everything(&db), &from_head);

    // A backfill overlapping the block (some identical samples, some new), cut, then
    // compacted with it: the merge deduplicates histograms as floats.
    let mut backfill = load(10);
    backfill.truncate(2);
    let report = db.append(backfill).await.unwrap();
    // The head does not see the block: the overlap is stored again (and deduplicated
    // when read and when merged), with the 10 new samples and a stale marker per series.
    assert_eq!(report.accepted, 21 + 20);
    let expected = everything(&db);
    assert_eq!(histogram_count(&expected), 41 + 10 + 1 + 10);
    // The histograms appended after the cut refer to series the checkpoint that starts
    // the new WAL segment defines: a restart without close brings them back.
    drop(db);
    let db = Db::open(options(dir.path())).unwrap();
    assert_eq!(db.stats().head_samples, 21 + 20);
    assert_same_text(&everything(&db), &expected);
    db.flush_head().unwrap();
    assert_eq!(db.stats().blocks, 2);
    assert_same_text(&everything(&db), &expected);
    db.maintain(T0 + 40 * MIN).unwrap();
    let stats = db.stats();
    assert_eq!(stats.compactions, 1, "{stats:?} {:?}", block_dirs(dir.path()));
    assert_eq!(stats.blocks, 1);
    assert_same_text(&everything(&db), &expected);
    let dirs = block_dirs(dir.path());
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["histogram_samples"], histogram_count(&expected) as u64);

    // PromQL over the Db reads them from the block.
    let engine = Engine::new(EngineOptions::default());
    let t = T0 + 5 * 15_000;
    let v = engine
        .instant_query(&db, "histogram_count(rpc_seconds)", t)
        .unwrap();
    match v.value {
        Value::Vector(samples) => {
            assert_eq!(samples.len(), 1);
            assert_eq!(samples[0].v, exp_hist(5).count);
        }
        other => panic!("expected a vector, got {other:?}"),
    }
    drop(db);
    let db = Db::open(options(dir.path())).unwrap();
    assert_same_text(&everything(&db), &expected);
}

#[tokio::test]
async fn histogram_appends_follow_the_float_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    let h = |t: i64, i: i64| hseries("rpc_seconds", "api", vec![(t, exp_hist(i))]);
    db.append(vec![h(T0, 1), h(T0 + 60_000, 2)]).await.unwrap();

    let same = db.append(vec![h(T0, 1)]).await.unwrap();
    assert_eq!(same.rejected, vec![(RejectReason::Duplicate, 1)]);
    let different = db.append(vec![h(T0, 3)]).await.unwrap();
    assert_eq!(different.rejected, vec![(RejectReason::DuplicateTimestamp, 1)]);
    // A float at a histogram's timestamp conflicts too.
    let float = db
        .append(vec![series("rpc_seconds", "api", &[(T0 + 60_000, 1.0)])])
        .await
        .unwrap();
    assert_eq!(float.rejected, vec![(RejectReason::DuplicateTimestamp, 1)]);
    // Out of order within the window is accepted, beyond it refused.
    let ooo = db.append(vec![h(T0 + 30_000, 4)]).await.unwrap();
    assert_eq!(ooo.accepted, 1);
    let too_late = db.append(vec![h(T0 - 11 * MIN, 5)]).await.unwrap();
    assert_eq!(too_late.rejected, vec![(RejectReason::OutOfOrder, 1)]);
    // A malformed histogram (three buckets, spans for two) is refused, naming the series.
    let mut bad = exp_hist(1);
    bad.positive_spans = vec![Span { offset: 0, length: 2 }];
    let invalid = db
        .append(vec![hseries("rpc_seconds", "api", vec![(T0 + 120_000, bad)])])
        .await
        .unwrap();
    assert_eq!(invalid.rejected, vec![(RejectReason::InvalidHistogram, 1)]);
    let message = invalid.first_error.unwrap();
    assert!(
        message.contains("rpc_seconds") && message.contains("spans"),
        "{message}"
    );
    // The series switches type: later float samples are kept beside the histograms.
    let switched = db
        .append(vec![series("rpc_seconds", "api", &[(T0 + 180_000, 7.0)])])
        .await
        .unwrap();
    assert_eq!(switched.accepted, 1);
    let all = everything(&db);
    let ts: Vec<i64> = all[0].histograms.iter().map(|s| s.timestamp_ms).collect();
    assert_eq!(ts, vec![T0, T0 + 30_000, T0 + 60_000]);
    assert_eq!(all[0].samples, vec![Sample::new(T0 + 180_000, 7.0)]);
}

#[tokio::test]
async fn a_histogram_append_the_wal_refuses_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    db.append(vec![hseries("rpc_seconds", "api", vec![(T0, exp_hist(0))])])
        .await
        .unwrap();
    let before = everything(&db);
    db.inject_wal_fault(didban_store::WalFaultOp::Write, u32::MAX);
    let refused = db
        .append(vec![
            hseries("rpc_seconds", "api", vec![(T0 + 15_000, exp_hist(1))]),
            hseries("rpc_size", "new", vec![(T0, custom_hist(0))]),
        ])
        .await;
    assert!(refused.is_err());
    db.inject_wal_fault(didban_store::WalFaultOp::Write, 0);
    assert_same_text(&everything(&db), &before);
    assert_eq!(db.stats().head_series, 1, "the refused new series is gone");
    // The retry is stored (not a duplicate of the refused samples).
    let retry = db
        .append(vec![hseries(
            "rpc_seconds",
            "api",
            vec![(T0 + 15_000, exp_hist(1))],
        )])
        .await
        .unwrap();
    assert_eq!(retry.accepted, 1);
}

/// A promqltest storage backed by a real `Db`: each `load` appends (and, with `cut`,
/// writes the head as a block so the evals read Parquet), `clear` opens a fresh database.
struct DbStorage {
    runtime: tokio::runtime::Runtime,
    dirs: Vec<tempfile::TempDir>,
    db: Option<Db>,
    cut: bool,
}

impl DbStorage {
    fn new(cut: bool) -> DbStorage {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut s = DbStorage {
            runtime,
            dirs: Vec::new(),
            db: None,
            cut,
        };
        s.clear();
        s
    }
}

impl ScriptStorage for DbStorage {
    fn load(&mut self, series: Vec<SeriesSamples>) -> Result<(), String> {
        let db = self.db.as_ref().ok_or("no database")?;
        let report = self
            .runtime
            .block_on(db.append(series))
            .map_err(|e| e.to_string())?;
        if let Some(e) = report.first_error {
            return Err(format!("load refused samples: {e}"));
        }
        if self.cut {
            db.flush_head().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn clear(&mut self) {
        // Script times start at 0: no age or future limits, any order within a day.
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path());
        o.max_sample_age = std::time::Duration::ZERO;
        o.out_of_order_window = std::time::Duration::from_secs(1 << 40);
        self.db = Some(Db::open(o).unwrap());
        self.dirs.push(dir);
    }

    fn queryable(&self) -> &dyn Queryable {
        match &self.db {
            Some(db) => db,
            None => unreachable!("clear opens a database before any eval"),
        }
    }
}

/// Runs the script `file` over a fresh `Db` (reading its blocks when `cut`); returns the
/// failures as `file:line: message`.
fn run_on_db(file: &str, cut: bool) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/promql")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let opts = EngineOptions {
        enable_experimental_functions: true,
        ..EngineOptions::default()
    };
    let mut storage = DbStorage::new(cut);
    let report = run_script_on(&text, opts, &mut storage);
    println!(
        "{file} on a Db (cut: {cut}): {}/{} evals passed",
        report.passed, report.evals
    );
    report
        .failures
        .iter()
        .map(|f| format!("{}:{}: {}", path.display(), f.line, f.message))
        .collect()
}

/// Every promqltest script (native histograms among them) over a `Db`'s head, and over
/// its blocks (each `load` written as a block): the store answers as `MemStorage` does.
#[test]
fn every_promql_script_over_the_db_head_and_blocks() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/promql");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|p| p.ends_with(".test"))
        .collect();
    files.sort();
    assert!(files.contains(&"native_histograms.test".to_string()));
    let mut failures = Vec::new();
    for f in &files {
        for cut in [false, true] {
            failures.extend(run_on_db(f, cut));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
