//! The engine's bounds: nesting depth refused before parsing (the shapes that overflowed the
//! stack), the caller's deadline and cancel flag honoured during evaluation.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use didban_store::promql::{
    nesting_depth, Engine, EngineOptions, MemStorage, PromqlError, QueryControl, DEFAULT_MAX_DEPTH,
};
use didban_store::{Labels, Sample};

/// The shapes the issue found crashing the process, `n` levels deep.
pub fn deep_shapes(n: usize) -> Vec<(&'static str, String)> {
    let mut subq = "up".to_string();
    for _ in 0..n {
        subq = format!("max_over_time(({subq})[5m:1m])");
    }
    vec![
        ("chain", vec!["1"; n].join("+")),
        ("abs", format!("{}up{}", "abs(".repeat(n), ")".repeat(n))),
        ("sum", format!("{}up{}", "sum(".repeat(n), ")".repeat(n))),
        ("subquery", subq),
        ("unclosed", "abs(".repeat(n)),
        ("unary", format!("{}1", "-".repeat(n))),
    ]
}

fn storage(series: usize, points: i64) -> MemStorage {
    let mut s = MemStorage::new();
    for i in 0..series {
        let l = Labels::from_pairs([("__name__", "up"), ("i", &i.to_string())]);
        for t in 0..points {
            s.add(&l, Sample::new(t * 15_000, t as f64));
        }
    }
    s
}

#[test]
fn ten_times_the_depth_limit_is_refused_naming_limit_and_depth() {
    let engine = Engine::new(EngineOptions::default());
    let s = storage(1, 10);
    for (name, q) in deep_shapes(10 * DEFAULT_MAX_DEPTH) {
        for r in [
            engine.instant_query(&s, &q, 60_000),
            engine.range_query(&s, &q, 0, 60_000, 15_000),
        ] {
            match r {
                Err(e @ PromqlError::TooDeep { limit, found }) => {
                    assert_eq!(limit, DEFAULT_MAX_DEPTH, "{name}");
                    assert!(found > limit, "{name}: {found}");
                    assert_eq!(e.error_type(), "bad_data");
                    let msg = e.to_string();
                    assert!(
                        msg.contains(&limit.to_string()) && msg.contains(&found.to_string()),
                        "{msg}"
                    );
                }
                other => panic!("{name}: expected TooDeep, got {other:?}"),
            }
        }
    }
}

/// Queries just under the limit parse and evaluate on an ordinary 2 MiB thread stack (the
/// size of tokio's blocking threads), in this unoptimised build: the limit is safe.
#[test]
fn queries_at_the_depth_limit_evaluate_on_a_small_stack() {
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let engine = Engine::new(EngineOptions::default());
            let s = storage(2, 40);
            for (name, _) in deep_shapes(1) {
                // The deepest version of this shape the limit lets through.
                let mut n = 1;
                while nesting_depth(&shape(name, n + 1)) <= DEFAULT_MAX_DEPTH {
                    n += 1;
                }
                let q = shape(name, n);
                assert!(nesting_depth(&q) <= DEFAULT_MAX_DEPTH);
                let r = engine.range_query(&s, &q, 0, 600_000, 60_000);
                if name == "unclosed" {
                    assert!(matches!(r, Err(PromqlError::Parse { .. })), "{name}: {r:?}");
                } else {
                    assert!(r.is_ok(), "{name} at {n}: {r:?}");
                }
            }
        })
        .unwrap();
    handle.join().unwrap();
}

fn shape(name: &str, n: usize) -> String {
    deep_shapes(n)
        .into_iter()
        .find(|(k, _)| *k == name)
        .map(|(_, q)| q)
        .unwrap()
}

#[test]
fn a_passed_deadline_stops_evaluation_with_a_timeout() {
    let engine = Engine::new(EngineOptions::default());
    let s = storage(50, 200);
    let ctl = QueryControl {
        deadline: Some(Instant::now()),
        cancel: None,
    };
    let r = engine.range_query_with(&s, "sum(rate(up[5m]))", 0, 3_000_000, 15_000, &ctl);
    assert!(matches!(r, Err(PromqlError::Timeout)), "{r:?}");
    assert_eq!(r.unwrap_err().error_type(), "timeout");
    // A later deadline does not get in the way.
    let ctl = QueryControl {
        deadline: Some(Instant::now() + Duration::from_secs(600)),
        cancel: None,
    };
    assert!(engine
        .range_query_with(&s, "sum(rate(up[5m]))", 0, 3_000_000, 15_000, &ctl)
        .is_ok());
}

#[test]
fn a_set_cancel_flag_stops_evaluation() {
    let engine = Engine::new(EngineOptions::default());
    let s = storage(10, 100);
    let ctl = QueryControl {
        deadline: None,
        cancel: Some(Arc::new(AtomicBool::new(true))),
    };
    let r = engine.instant_query_with(&s, "up", 60_000, &ctl);
    assert!(matches!(r, Err(PromqlError::Cancelled)), "{r:?}");
    assert_eq!(r.unwrap_err().error_type(), "canceled");
}

/// A selector over a long range is read in slices and counted after each: a query far over
/// the sample limit fails having loaded little more than the limit, and a query under it
/// sees every sample once, in order, across slice boundaries.
#[test]
fn the_sample_limit_stops_loading_early_and_slices_join_seamlessly() {
    // 3 series, one sample a minute for 3 days: 12,960 samples.
    let mut s = MemStorage::new();
    for i in 0..3 {
        let l = Labels::from_pairs([("__name__", "up"), ("i", &i.to_string())]);
        for t in 0..3 * 1440 {
            s.add(&l, Sample::new(t * 60_000, t as f64));
        }
    }
    let end = 3 * 1440 * 60_000 - 60_000;
    let small = Engine::new(EngineOptions {
        max_samples: 1_000,
        ..EngineOptions::default()
    });
    let e = small
        .instant_query(&s, "count_over_time(up[3d])", end)
        .unwrap_err();
    assert!(matches!(e, PromqlError::TooManySamples(1_000)), "{e:?}");
    let big = Engine::new(EngineOptions::default());
    let r = big.instant_query(&s, "count_over_time(up[3d])", end).unwrap();
    let didban_store::promql::Value::Vector(v) = r.value else {
        panic!("vector expected")
    };
    assert_eq!(v.len(), 3);
    // Every sample once: the window (end - 3d, end] holds all 4,320.
    assert!(v.iter().all(|x| x.v == (3 * 1440) as f64), "{v:?}");
    assert_eq!(r.stats.series_loaded, 3);
    // `or` matchers read each series once per slice.
    let r = big
        .instant_query(&s, "count_over_time(up{i=\"0\" or i=~\"0|1\"}[3d])", end)
        .unwrap();
    let didban_store::promql::Value::Vector(v) = r.value else {
        panic!("vector expected")
    };
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v.iter().all(|x| x.v == (3 * 1440) as f64), "{v:?}");
}
