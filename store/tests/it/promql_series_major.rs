//! Range functions hold their result series by series, and simple aggregations of it are
//! computed row by row (`promql::series_vec`, `aggregate::by_series`). A binary operator
//! reads steps, so `f and f` is `f` in the per-step form; each query below is compared
//! with that twin: values bit for bit, series, steps and — for `topk` over an aggregation,
//! where ties are broken by input order — the order within a step.
#![allow(clippy::unwrap_used)]

use didban_store::promql::{Engine, EngineOptions, MemStorage, Value};
use didban_store::{Labels, Sample, SeriesSamples};

use crate::common::assert_same;

const MINUTE: i64 = 60_000;

/// Counters and gauges of 12 series in 3 groups (`g`), with gaps, late starts, early ends
/// and a counter reset; groups `b` and `c` hold equal data, so aggregations over them tie.
fn storage() -> MemStorage {
    let mut s = MemStorage::new();
    for i in 0..12u32 {
        let g = ["a", "b", "c"][(i % 3) as usize];
        let twin = if g == "c" { i - 1 } else { i };
        let labels = Labels::from_pairs([
            ("__name__", "x_total".to_string()),
            ("g", g.to_string()),
            ("i", (i / 3).to_string()),
        ]);
        let first = i64::from((twin + 1) % 4) * 7;
        let last = 120 - i64::from(twin % 5) * 9;
        let mut v = 0.0;
        for k in first..last {
            if k % 11 == 5 && twin % 2 == 0 {
                continue; // a gap
            }
            v += f64::from(twin + 1) * 1.5 + (k % 7) as f64;
            if k == 60 && twin == 4 {
                v = 3.0; // a counter reset
            }
            s.add(&labels, Sample::new(k * 30_000, v));
        }
    }
    s
}

fn engine() -> Engine {
    Engine::new(EngineOptions {
        enable_experimental_functions: true,
        ..EngineOptions::default()
    })
}

/// `f` evaluated through the per-step form.
fn stepped(f: &str) -> String {
    format!("({f} and {f})")
}

fn matrix(value: Value) -> Vec<SeriesSamples> {
    match value {
        Value::Matrix(m) => m,
        other => panic!("expected a matrix, got {other:?}"),
    }
}

#[test]
fn aggregations_of_range_functions_match_the_per_step_form_bit_for_bit() {
    let (e, s) = (engine(), storage());
    let functions = [
        "rate(x_total[2m])",
        "increase(x_total[3m])",
        "irate(x_total[2m])",
        "avg_over_time(x_total[2m])",
        "max_over_time(x_total[90s])",
        "count_over_time(x_total[2m])",
        "last_over_time(x_total[1m])",
    ];
    let operators = ["sum", "avg", "count", "min", "max", "group", "stddev", "stdvar"];
    let modifiers = ["", " by (g)", " without (i)", " by (i, g)"];
    let mut checked = 0;
    for f in functions {
        eprintln!("checking {f}");
        assert_same(
            &matrix(e.range_query(&s, f, 0, 3_600_000, 45_000).unwrap().value),
            &matrix(
                e.range_query(&s, &stepped(f), 0, 3_600_000, 45_000)
                    .unwrap()
                    .value,
            ),
        );
        for op in operators {
            for m in modifiers {
                let fused = format!("{op}{m} ({f})");
                let stepped = format!("{op}{m} {}", stepped(f));
                let a = matrix(e.range_query(&s, &fused, 0, 3_600_000, 45_000).unwrap().value);
                let b = matrix(e.range_query(&s, &stepped, 0, 3_600_000, 45_000).unwrap().value);
                assert!(!a.is_empty(), "{fused}");
                eprintln!("checking {fused}");
                assert_same(&a, &b);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 7 * 8 * 4);
}

#[test]
fn ties_among_aggregated_groups_break_in_the_per_step_order() {
    let (e, s) = (engine(), storage());
    for t in [3 * MINUTE, 5 * MINUTE, 8 * MINUTE, 20 * MINUTE, 55 * MINUTE] {
        for (outer, inner) in [
            ("topk(1, sum by (g)", "rate(x_total[2m])"),
            ("bottomk(2, max by (g)", "rate(x_total[2m])"),
            ("limitk(1, count by (g)", "rate(x_total[2m])"),
        ] {
            let q = format!("{outer} ({inner}))");
            let a = e.instant_query(&s, &q, t).unwrap().value;
            let b = e
                .instant_query(&s, &format!("{outer} {})", stepped(inner)), t)
                .unwrap()
                .value;
            let (Value::Vector(a), Value::Vector(b)) = (a, b) else {
                panic!("{q}: expected vectors");
            };
            assert!(!a.is_empty(), "{q}");
            let order = |v: &[didban_store::promql::InstantSample]| -> Vec<(String, u64)> {
                v.iter().map(|x| (x.labels.to_string(), x.v.to_bits())).collect()
            };
            assert_eq!(order(&a), order(&b), "{q} at {t}");
        }
    }
}

#[test]
fn a_groups_place_in_a_step_follows_its_first_series_present_there() {
    // Series in label order: 0 {g="1",i="late"} from 30 min, 1 {g="2",i="both"} always,
    // 2 {g="3",i="late"} before 30 min. Before 30 min group "both" is met first (series
    // 1, before series 2), after it group "late" (series 0): `limitk(1, …)` keeps the
    // group met first.
    let mut s = MemStorage::new();
    for (g, i, from, to) in [
        ("1", "late", 60, 120),
        ("2", "both", 0, 120),
        ("3", "late", 0, 60),
    ] {
        let labels = Labels::from_pairs([("__name__", "y_total"), ("g", g), ("i", i)]);
        for k in from..to {
            s.add(&labels, Sample::new(k * 30_000, k as f64));
        }
    }
    let e = engine();
    // A range query: a group's index comes from its first series over the whole range.
    let kept = |q: &str| -> Vec<(String, Vec<i64>)> {
        let mut out = Vec::new();
        for series in matrix(e.range_query(&s, q, 0, 3_600_000, 5 * MINUTE).unwrap().value) {
            let times = series.samples.iter().map(|p| p.timestamp_ms / MINUTE).collect();
            out.push((series.labels.to_string(), times));
        }
        out
    };
    let inner = "rate(y_total[2m])";
    let expected = vec![
        (r#"{i="both"}"#.to_string(), vec![5, 10, 15, 20, 25, 30]),
        (r#"{i="late"}"#.to_string(), vec![35, 40, 45, 50, 55, 60]),
    ];
    assert_eq!(kept(&format!("limitk(1, count by (i) ({inner}))")), expected);
    assert_eq!(
        kept(&format!("limitk(1, count by (i) {})", stepped(inner))),
        expected
    );
}

#[test]
fn series_sharing_labels_after_a_function_are_refused_only_where_they_meet() {
    let mut s = MemStorage::new();
    let at = |name: &str| Labels::from_pairs([("__name__", name), ("job", "j")]);
    // Apart in time: `rate` drops the names, the two never share a step.
    for k in 0..10 {
        s.add(&at("early_total"), Sample::new(k * 30_000, k as f64));
        s.add(&at("late_total"), Sample::new(3_600_000 + k * 30_000, k as f64));
    }
    let e = engine();
    let q = r#"sum(rate({__name__=~"early_total|late_total"}[1m]))"#;
    let apart = matrix(e.range_query(&s, q, 0, 4_000_000, 60_000).unwrap().value);
    assert_eq!(apart.len(), 1);
    let plain = r#"rate({__name__=~"early_total|late_total"}[1m])"#;
    let merged = matrix(e.range_query(&s, plain, 0, 4_000_000, 60_000).unwrap().value);
    assert_eq!(merged.len(), 1, "one label set after the names are dropped");
    assert_eq!(merged[0].samples.len(), apart[0].samples.len());

    // Overlapping: both are at the same steps.
    for k in 0..10 {
        s.add(&at("late_total"), Sample::new(k * 30_000 + 1, k as f64));
    }
    for q in [q, plain] {
        let err = e
            .range_query(&s, q, 0, 4_000_000, 60_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("same labelset"), "{q}: {err}");
    }
}

#[test]
fn range_functions_on_several_threads_answer_as_on_one() {
    // 300 series × 400 samples: above the size at which a range function splits its
    // series over threads. Every fifth series has a counter reset, every seventh a gap.
    let mut s = MemStorage::new();
    for i in 0..300u32 {
        let labels = Labels::from_pairs([
            ("__name__", "z_total".to_string()),
            ("g", (i % 7).to_string()),
            ("i", i.to_string()),
        ]);
        let mut v = 0.0;
        for k in 0..400i64 {
            if i % 7 == 0 && (100..130).contains(&k) {
                continue;
            }
            v += f64::from(i % 13) + (k % 5) as f64 * 0.25;
            if i % 5 == 0 && k == 200 {
                v = 1.0;
            }
            s.add(&labels, Sample::new(k * 15_000, v));
        }
    }
    let queries = [
        "rate(z_total[1m])",
        "sum by (g) (increase(z_total[2m]))",
        "quantile_over_time(0.9, z_total[5m])",
        "quantile_over_time(2, z_total[5m])",
        "max_over_time(z_total[90s])",
        "avg_over_time(z_total[4m])",
        "sum_over_time(z_total[45s])",
        "deriv(z_total[3m])",
        // Keeps the first series of each step: the order the threads' runs are put back in.
        "limitk(5, rate(z_total[1m]))",
    ];
    assert_one_and_four_threads_agree(&s, &queries, 30_000);
    let one = threads(1);
    let warned = one
        .range_query(&s, "quantile_over_time(2, z_total[5m])", 0, 6_000_000, 30_000)
        .unwrap();
    assert_eq!(warned.annotations.warnings.len(), 1, "{:?}", warned.annotations);
}

#[test]
fn aggregations_on_several_threads_answer_as_on_one() {
    // 600 series × 400 samples, queried at 15 s over 100 min: 240k points to aggregate,
    // above the size at which the groups' rows are split over threads.
    let mut s = MemStorage::new();
    for i in 0..600u32 {
        let labels = Labels::from_pairs([
            ("__name__", "w_total".to_string()),
            ("g", (i % 7).to_string()),
            ("h", (i % 3).to_string()),
            ("i", i.to_string()),
        ]);
        let mut v = f64::from(i) * 0.37;
        for k in 0..400i64 {
            // Series starting late and ending early change which series comes first in a
            // step, and so the order of the groups there.
            if (i % 11 == 0 && k < 150) || (i % 13 == 0 && k > 330) {
                continue;
            }
            v += f64::from(i % 17) * 0.1 + (k % 9) as f64 * 0.3;
            s.add(&labels, Sample::new(k * 15_000, v));
        }
    }
    let queries = [
        "sum by (g) (rate(w_total[1m]))",
        "avg by (g, h) (rate(w_total[2m]))",
        "stddev by (h) (increase(w_total[1m]))",
        "min by (g) (rate(w_total[1m]))",
        "max without (i) (rate(w_total[1m]))",
        "count by (g) (rate(w_total[1m]))",
        "sum(rate(w_total[1m]))",
    ];
    assert_one_and_four_threads_agree(&s, &queries, 15_000);
}

/// An engine allowed `workers` threads per query.
fn threads(workers: usize) -> Engine {
    Engine::new(EngineOptions {
        workers_per_query: workers,
        enable_experimental_functions: true,
        ..EngineOptions::default()
    })
}

/// Each query over the first 100 minutes at `step_ms` answers the same on one thread as on
/// four: series, values bit for bit, annotations.
fn assert_one_and_four_threads_agree(s: &MemStorage, queries: &[&str], step_ms: i64) {
    let (one, four) = (threads(1), threads(4));
    for q in queries {
        let a = one.range_query(s, q, 0, 6_000_000, step_ms).unwrap();
        let b = four.range_query(s, q, 0, 6_000_000, step_ms).unwrap();
        let (a_series, b_series) = (matrix(a.value), matrix(b.value));
        assert!(!a_series.is_empty(), "{q}");
        eprintln!("checking {q}");
        assert_same(&a_series, &b_series);
        assert_eq!(a.annotations.warnings, b.annotations.warnings, "{q}");
        assert_eq!(a.annotations.infos, b.annotations.infos, "{q}");
    }
}

/// `sum_over_time` and `avg_over_time` of a range query sum four windows side by side
/// (`functions::compensated`); an instant query sums its one window alone. Every step of the
/// range answers as the instant query at that time does, bit for bit: values whose
/// compensation matters, gaps (windows of different lengths), a late start and an early
/// end (groups of fewer than four), and a series whose mean overflows.
#[test]
fn sums_over_time_side_by_side_answer_as_one_window_at_a_time() {
    let mut s = storage();
    let big = Labels::from_pairs([("__name__", "x_total"), ("g", "huge")]);
    let cancelling = Labels::from_pairs([("__name__", "x_total"), ("g", "cancelling")]);
    for k in 0..40i64 {
        let v = if k % 3 == 0 { f64::MAX / 2.0 } else { k as f64 };
        s.add(&big, Sample::new(k * 30_000, v));
        let v = [1e16 + k as f64, 0.1 * k as f64, -1e16, 3.3][(k % 4) as usize];
        s.add(&cancelling, Sample::new(k * 30_000, v));
    }
    let e = engine();
    for f in ["sum_over_time(x_total[2m])", "avg_over_time(x_total[150s])"] {
        let range = matrix(e.range_query(&s, f, 0, 3_600_000, 45_000).unwrap().value);
        assert!(range.len() > 10, "{f}");
        let mut compared = 0;
        for series in &range {
            for p in &series.samples {
                let at = e.instant_query(&s, f, p.timestamp_ms).unwrap().value;
                let Value::Vector(v) = at else {
                    panic!("{f} at {}: not a vector", p.timestamp_ms)
                };
                let one = v.iter().find(|x| x.labels == series.labels).unwrap();
                assert_eq!(
                    one.v.to_bits(),
                    p.value.to_bits(),
                    "{f} of {} at {}",
                    series.labels,
                    p.timestamp_ms
                );
                compared += 1;
            }
        }
        assert!(compared > 500, "{f}: {compared} points");
    }
}

/// A binary operator between two operands held series by series matches once per series
/// (`binary::by_series`); each query is compared with its per-step twin (every operand
/// as `(x and x)`): values bit for bit, or the same error where a step holds two matches.
#[test]
fn binary_operators_between_series_match_the_per_step_form() {
    let (e, s) = (engine(), storage());
    let run = |q: &str| -> Result<Vec<SeriesSamples>, String> {
        e.range_query(&s, q, 0, 3_600_000, 45_000)
            .map(|r| matrix(r.value))
            .map_err(|err| err.to_string())
    };
    let a = "sum by (g) (rate(x_total[2m]))";
    let b = "max by (g) (increase(x_total[3m]))";
    let c = "rate(x_total[2m])";
    let d = "count by (g, i) (irate(x_total[2m]))";
    // (left operand, operator with its modifiers, right operand, a non-empty answer?)
    let mut queries: Vec<(&str, &str, &str, bool)> = Vec::new();
    for op in [
        "+", "-", "*", "/", "%", "^", "atan2", "<", "!=", "<=", "> bool", "== bool",
    ] {
        queries.push((a, op, b, true));
    }
    // A per-second rate summed over four series stays below a 3-minute increase.
    for op in [">", "==", ">="] {
        queries.push((a, op, b, false));
    }
    queries.push((c, "+", d, true));
    queries.push((c, "< on (i, g)", d, true));
    queries.push((c, "* ignoring (i) group_left ()", a, true));
    queries.push((c, "> bool ignoring (i) group_left ()", b, true));
    queries.push((a, "/ on (g) group_right ()", c, true));
    queries.push((c, "-", a, false)); // no signature in common
    for (l, op, r, nonempty) in queries {
        let q = format!("{l} {op} {r}");
        let twin = format!("{} {op} {}", stepped(l), stepped(r));
        eprintln!("checking {q}");
        match (run(&q), run(&twin)) {
            (Ok(x), Ok(y)) => {
                assert_eq!(!x.is_empty(), nonempty, "{q}");
                assert_same(&x, &y);
            }
            (x, y) => panic!("{q}: {:?} vs {:?}", x.map(|m| m.len()), y.map(|m| m.len())),
        }
    }
    // Two series of a side share a signature: an error at the steps where both are, in
    // either form.
    let mut failed = 0;
    for (l, op, r) in [
        (c, "+ on (g)", a),
        (a, "+ on (g)", c),
        // `i` taken from a side without it: every pair of a group gets one label set.
        (c, "> bool ignoring (i) group_left (i)", b),
    ] {
        let q = format!("{l} {op} {r}");
        let twin = format!("{} {op} {}", stepped(l), stepped(r));
        let (x, y) = (run(&q).unwrap_err(), run(&twin).unwrap_err());
        assert_eq!(x, y, "{q}");
        assert!(x.contains("match"), "{q}: {x}");
        failed += 1;
    }
    assert_eq!(failed, 3);
}

/// A range reaching well past the data on both sides (a 6 h dashboard over 1 h of it):
/// the rows of per-step cells cover only the steps with data, and the answers are the
/// per-step form's.
#[test]
fn a_range_wider_than_the_data_matches_the_per_step_form() {
    let (e, s) = (engine(), storage());
    let (start, end) = (-2 * 3_600_000, 4 * 3_600_000);
    let run = |q: &str| matrix(e.range_query(&s, q, start, end, 60_000).unwrap().value);
    for q in [
        "sum by (g) (rate(x_total[2m]))",
        "avg without (i) (increase(x_total[3m]))",
        "count (irate(x_total[2m]))",
        "stddev by (i) (rate(x_total[2m]))",
    ] {
        // `op (inner)` → `op ((inner) and (inner))`
        let (op, inner) = q.split_at(q.rfind(" (").unwrap());
        let inner = &inner[2..inner.len() - 1];
        let a = run(q);
        let b = run(&format!("{op} {}", stepped(inner)));
        assert!(!a.is_empty(), "{q}");
        assert_same(&a, &b);
    }
    let (l, r) = (
        "sum by (g) (rate(x_total[2m]))",
        "max by (g) (increase(x_total[3m]))",
    );
    let a = run(&format!("{l} / {r}"));
    let b = run(&format!("{} / {}", stepped(l), stepped(r)));
    assert!(!a.is_empty());
    assert_same(&a, &b);
}
