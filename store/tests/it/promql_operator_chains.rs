//! A chain of binary operators whose operands read storage evaluates them on several
//! threads (`promql::binary::chain`). Each query below is evaluated by an engine allowed
//! one thread and by one allowed four: the answers must be the same bit for bit, with the
//! same annotations in the same order, the same error, the same refusal at the samples
//! limit.
#![allow(clippy::unwrap_used)]

use didban_store::promql::{Engine, EngineOptions, MemStorage, PromqlError};
use didban_store::{Labels, Sample};

use crate::common::assert_same;

/// Counters `a_total`, `b_total`, `c_total` and gauges `d`, `e` of 24 series each
/// (`i` 0..24, group `g` of 4), 200 samples at 15 s with a gap and a reset here and there.
fn storage() -> MemStorage {
    let mut s = MemStorage::new();
    for (m, name) in ["a_total", "b_total", "c_total", "d", "e"].iter().enumerate() {
        for i in 0..24u32 {
            let labels = Labels::from_pairs([
                ("__name__", name.to_string()),
                ("g", (i % 4).to_string()),
                ("i", i.to_string()),
            ]);
            let mut v = f64::from(i);
            for k in 0..200i64 {
                if (i + m as u32).is_multiple_of(5) && (50..70).contains(&k) {
                    continue;
                }
                v += 0.1 * (m + 1) as f64 + (k % 9) as f64 * 0.3;
                if i % 7 == 3 && k == 120 {
                    v = 0.5;
                }
                s.add(&labels, Sample::new(k * 15_000, v));
            }
        }
    }
    s
}

fn engine(workers: usize, max_samples: usize) -> Engine {
    Engine::new(EngineOptions {
        workers_per_query: workers,
        max_samples,
        ..EngineOptions::default()
    })
}

fn range(e: &Engine, s: &MemStorage, q: &str) -> Result<didban_store::promql::QueryResult, PromqlError> {
    e.range_query(s, q, 0, 3_000_000, 30_000)
}

#[test]
fn chains_on_several_threads_answer_as_on_one() {
    let s = storage();
    let (one, four) = (engine(1, 50_000_000), engine(4, 50_000_000));
    for q in [
        // The dashboard shape: a sum of per-group rates of several counters.
        "sum by (g) (rate(a_total[1m])) + sum by (g) (rate(b_total[1m])) + sum by (g) (rate(c_total[2m]))",
        // Mixed operators and precedence, scalars between the selectors.
        "a_total * 2 - b_total / 3 + 1 - c_total",
        // Matching clauses per operator; a comparison filtering, one with bool.
        "d > on (i) group_left e + 0 * a_total",
        "sum by (g) (d) > bool sum by (g) (e) + sum by (g) (a_total)",
        // Set operators in a chain.
        "a_total and d or b_total unless e",
        // Only one operand reads storage: evaluated as before.
        "1 + 2 * a_total",
        // A chain inside an operand of another chain.
        "(a_total + b_total) / (d + e) - (c_total - a_total)",
    ] {
        let a = range(&one, &s, q).unwrap();
        let b = range(&four, &s, q).unwrap();
        let (a_series, b_series) = (matrix(a.value), matrix(b.value));
        assert!(!a_series.is_empty(), "{q}");
        assert_same(&a_series, &b_series);
        assert_eq!(a.annotations, b.annotations, "{q}");
        assert_eq!(a.stats.samples_loaded, b.stats.samples_loaded, "{q}");
        assert_eq!(a.stats.series_loaded, b.stats.series_loaded, "{q}");
    }
}

/// Each operand adds an info naming its metric: the threads' notes are put back in the
/// order one thread finds them.
#[test]
fn annotations_of_a_chain_keep_their_order() {
    let s = storage();
    let q = "sum(rate(e[1m])) + sum(rate(d[1m])) * sum(irate(e[1m])) - sum(increase(d[2m]))";
    let a = range(&engine(1, 50_000_000), &s, q).unwrap();
    let b = range(&engine(4, 50_000_000), &s, q).unwrap();
    assert_eq!(a.annotations.infos.len(), 2, "{:?}", a.annotations);
    assert!(a.annotations.infos[0].contains("\"e\""), "{:?}", a.annotations);
    assert!(a.annotations.infos[1].contains("\"d\""), "{:?}", a.annotations);
    assert_eq!(a.annotations, b.annotations);
}

/// The error is the one one thread meets first: an operand's (the second operand's bad
/// regex, not the fourth's bad label name), or an operator's between operands evaluated
/// fine (many-to-many matching), before any later operand's.
#[test]
fn a_failing_chain_fails_as_on_one_thread() {
    let s = storage();
    let (one, four) = (engine(1, 50_000_000), engine(4, 50_000_000));
    for (q, expected) in [
        (
            r#"a_total + label_replace(b_total, "x", "$1", "i", "(") + c_total + label_replace(d, "1x", "$1", "i", "(.*)")"#,
            "regex",
        ),
        (
            r#"a_total + on (g) b_total + label_replace(d, "1x", "$1", "i", "(.*)")"#,
            "many-to-many",
        ),
    ] {
        let a = range(&one, &s, q).unwrap_err().to_string();
        let b = range(&four, &s, q).unwrap_err().to_string();
        assert!(a.contains(expected), "{q}: {a}");
        assert_eq!(a, b, "{q}");
    }
}

/// Each operand alone fits the query's samples limit, the chain does not: refused on
/// several threads as on one, and the samples the threads reserved are given back.
#[test]
fn a_chain_over_the_samples_limit_is_refused_as_on_one_thread() {
    let s = storage();
    let q = "a_total + b_total + c_total + d";
    let single = range(&engine(1, 50_000_000), &s, "a_total").unwrap();
    let per_operand = single.stats.samples_loaded;
    assert!(per_operand > 1000, "{per_operand}");
    let limit = per_operand * 3;
    let one = engine(1, limit);
    let four = engine(4, limit);
    for e in [&one, &four] {
        match range(e, &s, q) {
            Err(PromqlError::TooManySamples(n)) => assert_eq!(n, limit),
            other => panic!(
                "{q}: expected the samples limit, got {:?}",
                other.map(|r| r.stats)
            ),
        }
        assert!(range(e, &s, "a_total + b_total").is_ok());
    }
    let shared = Engine::new(EngineOptions {
        workers_per_query: 4,
        max_samples_total: limit,
        ..EngineOptions::default()
    });
    assert!(range(&shared, &s, q).is_err());
    assert_eq!(
        shared.sample_budget().in_use(),
        0,
        "the forks' samples were given back"
    );
}

fn matrix(value: didban_store::promql::Value) -> Vec<didban_store::SeriesSamples> {
    match value {
        didban_store::promql::Value::Matrix(m) => m,
        other => panic!("expected a matrix, got {other:?}"),
    }
}
