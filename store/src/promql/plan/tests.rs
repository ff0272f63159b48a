#![allow(clippy::unwrap_used)]
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::*;
use crate::model::{LabelMatcher, Labels, Sample, SeriesSamples};
use crate::promql::{Engine, EngineOptions, MemStorage, Value};
use crate::query::{Queryable, ReadError};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// `a`, `b` (job x), `c` (job y) and x's `target_info`, one sample a minute for 14 h.
fn data() -> MemStorage {
    let mut m = MemStorage::new();
    let series = [
        Labels::from_pairs([("__name__", "a"), ("job", "x")]),
        Labels::from_pairs([("__name__", "b"), ("job", "x")]),
        Labels::from_pairs([("__name__", "c"), ("job", "y")]),
        Labels::from_pairs([("__name__", "target_info"), ("job", "x"), ("env", "prod")]),
    ];
    for (k, labels) in series.iter().enumerate() {
        for i in 0..14 * 60 {
            m.add(labels, Sample::new(i * MINUTE, (i as f64) * (k as f64 + 1.0)));
        }
    }
    m
}

/// A storage that notes the reads it is told of and every read it answers, and prepares
/// nothing (so the evaluation reads it directly).
struct Recorder {
    data: MemStorage,
    planned: Mutex<Vec<PlannedRead>>,
    made: Mutex<Vec<PlannedRead>>,
}

impl Queryable for Recorder {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        self.made.lock().push(PlannedRead {
            matchers: matchers.to_vec(),
            start_ms,
            end_ms,
        });
        self.data.select(matchers, start_ms, end_ms)
    }

    fn prepare(
        &self,
        plan: &dyn Fn() -> Vec<PlannedRead>,
    ) -> Result<Option<Box<dyn Queryable + '_>>, ReadError> {
        self.planned.lock().extend(plan());
        Ok(None)
    }
}

fn engine() -> Engine {
    Engine::new(EngineOptions {
        enable_experimental_functions: true,
        ..EngineOptions::default()
    })
}

fn recorder() -> Recorder {
    Recorder {
        data: data(),
        planned: Mutex::new(Vec::new()),
        made: Mutex::new(Vec::new()),
    }
}

/// The planned reads as `matchers [start, end]` lines.
fn lines(reads: &[PlannedRead]) -> Vec<String> {
    let mut out = Vec::new();
    for r in reads {
        let m: Vec<String> = r.matchers.iter().map(|m| m.to_string()).collect();
        out.push(format!("{} [{}, {}]", m.join(","), r.start_ms, r.end_ms));
    }
    out
}

fn planned_instant(expr: &str, t: i64) -> Vec<String> {
    let r = recorder();
    engine().instant_query(&r, expr, t).unwrap();
    let planned = r.planned.lock();
    lines(&planned)
}

#[test]
fn planned_reads_are_the_ranges_each_selector_reads() {
    let t = 10 * HOUR;
    let back = t - 5 * MINUTE;
    // Lookback, offset, `or` groups, a binary operation's both sides.
    assert_eq!(
        planned_instant(r#"a + b offset 1m or c{job="y" or job="z"}"#, t),
        vec![
            format!(r#"__name__="a" [{back}, {t}]"#),
            format!(r#"__name__="b" [{}, {}]"#, back - MINUTE, t - MINUTE),
            format!(r#"__name__="c",job="y" [{back}, {t}]"#),
            format!(r#"__name__="c",job="z" [{back}, {t}]"#),
        ]
    );
    // A range (left-open under Prometheus 3), `@`, and one read for ranges that overlap.
    assert_eq!(
        planned_instant("rate(a[10m]) / a offset 2m + a @ 100", t),
        vec![
            format!(r#"__name__="a" [{}, 100000]"#, 100_000 - 5 * MINUTE),
            format!(r#"__name__="a" [{}, {t}]"#, t - 10 * MINUTE + 1),
        ]
    );
    // Ranges apart stay apart.
    assert_eq!(
        planned_instant("a - a offset 1h", t),
        vec![
            format!(r#"__name__="a" [{}, {}]"#, back - HOUR, t - HOUR),
            format!(r#"__name__="a" [{back}, {t}]"#),
        ]
    );
    // A subquery's expression over its grid: steps every minute from the first one in
    // the window, each looking back 5 minutes; a nested subquery inside that.
    assert_eq!(
        planned_instant("max_over_time(a[10m:1m])", t),
        vec![format!(r#"__name__="a" [{}, {t}]"#, t - 9 * MINUTE - 5 * MINUTE)]
    );
    assert_eq!(
        planned_instant("max_over_time(max_over_time(a[2m:1m])[10m:5m])", t),
        vec![format!(
            r#"__name__="a" [{}, {t}]"#,
            t - 5 * MINUTE - 2 * MINUTE + MINUTE - 5 * MINUTE
        )]
    );
    // `info` reads its info series (`target_info` unless named otherwise).
    assert_eq!(
        planned_instant(r#"info(a, {env="prod"})"#, t),
        vec![
            format!(r#"__name__="a" [{back}, {t}]"#),
            format!(r#"env="prod",__name__="target_info" [{back}, {t}]"#),
        ]
    );
    // No selector, nothing to prepare.
    assert!(planned_instant("1 + 2", t).is_empty());
}

#[test]
fn every_read_the_evaluation_makes_lies_inside_a_planned_one() {
    let end = 14 * HOUR - MINUTE;
    let instant = [
        "a + b or c",
        "sum by (job) (rate(a[5m])) / on(job) sum by (job) (b offset 1m)",
        "max_over_time((a * 2)[30m:1m])",
        "max_over_time(rate(a[5m])[1h:5m] @ end())",
        "sum_over_time(a[10m:] offset 3m)",
        r#"{__name__=~"a|b" or job="y"}"#,
        "timestamp(a) - a @ start()",
        r#"info(a, {env=~"p.*"})"#,
        "absent_over_time(nothing[5m]) or a",
        "topk(scalar(count(b)), a)",
        "a[5m]",
    ];
    // Range queries: slices of 6 h (13 h: three), a step of 10 m (downsampled reads
    // look one window further back), subqueries and ranges over them.
    let ranges = [
        ("a + b or c", HOUR, end, MINUTE),
        ("a + b or c", HOUR, end, 10 * MINUTE),
        ("avg_over_time(a[1h]) + rate(b[20m])", HOUR, end, 10 * MINUTE),
        ("max_over_time(deriv(a[10m])[1h:2m])", HOUR, end, 15 * MINUTE),
        ("-a @ 3600 + c offset 1h", 2 * HOUR, end, 7 * MINUTE),
    ];
    let mut sliced = false;
    for q in instant {
        let r = recorder();
        engine().instant_query(&r, q, end).unwrap();
        sliced |= reads_were_planned(q, &r);
    }
    for (q, start, end, step) in ranges {
        let r = recorder();
        engine().range_query(&r, q, start, end, step).unwrap();
        sliced |= reads_were_planned(&format!("{q} over [{start}, {end}] step {step}"), &r);
    }
    assert!(sliced, "some reads were made in slices of a planned one");
}

/// Checks that query `name` read something and only inside the reads it planned; true
/// when it made more reads than it planned (in slices).
fn reads_were_planned(name: &str, r: &Recorder) -> bool {
    let planned = r.planned.lock();
    let made = r.made.lock();
    assert!(!made.is_empty(), "{name}: reads something");
    for read in made.iter() {
        assert!(
            planned
                .iter()
                .any(|p| p.covers(&read.matchers, read.start_ms, read.end_ms)),
            "{name}: {:?} planned in {:?}",
            lines(std::slice::from_ref(read)),
            lines(&planned)
        );
    }
    made.len() > planned.len()
}

/// A storage that prepares a view of itself, and counts what it and the view answer.
struct Viewed {
    data: MemStorage,
    direct: AtomicUsize,
    through_view: AtomicUsize,
}

impl Queryable for Viewed {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        self.direct.fetch_add(1, Ordering::Relaxed);
        self.data.select(matchers, start_ms, end_ms)
    }

    fn prepare(
        &self,
        _: &dyn Fn() -> Vec<PlannedRead>,
    ) -> Result<Option<Box<dyn Queryable + '_>>, ReadError> {
        Ok(Some(Box::new(View(self))))
    }
}

struct View<'a>(&'a Viewed);

impl Queryable for View<'_> {
    fn select(
        &self,
        matchers: &[LabelMatcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesSamples>, ReadError> {
        self.0.through_view.fetch_add(1, Ordering::Relaxed);
        self.0.data.select(matchers, start_ms, end_ms)
    }
}

#[test]
fn the_evaluation_reads_through_the_view_the_storage_prepared() {
    let storage = Viewed {
        data: data(),
        direct: AtomicUsize::new(0),
        through_view: AtomicUsize::new(0),
    };
    let q = "a + b or c";
    let got = engine()
        .range_query(&storage, q, HOUR, 13 * HOUR, MINUTE)
        .unwrap();
    let direct = recorder();
    let want = engine().range_query(&direct, q, HOUR, 13 * HOUR, MINUTE).unwrap();
    let (Value::Matrix(got), Value::Matrix(want)) = (got.value, want.value) else {
        panic!("range queries answer matrices");
    };
    assert_eq!(got, want);
    assert_eq!(storage.direct.load(Ordering::Relaxed), 0);
    // Three selectors, each in 6 h slices.
    let reads = direct.made.lock().len();
    assert!(reads > 3, "{reads}");
    assert_eq!(storage.through_view.load(Ordering::Relaxed), reads);
}

#[test]
fn reads_of_one_matcher_group_are_joined_where_they_overlap_or_touch() {
    let read = |name: &str, start_ms, end_ms| PlannedRead {
        matchers: vec![LabelMatcher::equal("__name__", name)],
        start_ms,
        end_ms,
    };
    let joined = join_overlapping(vec![
        read("a", 10, 20),
        read("b", 0, 5),
        read("a", 21, 30),
        read("a", 0, 8),
        read("a", 15, 25),
        read("b", 7, 9),
    ]);
    assert_eq!(
        joined,
        vec![
            read("a", 0, 8),
            read("a", 10, 30),
            read("b", 0, 5),
            read("b", 7, 9)
        ]
    );
}
