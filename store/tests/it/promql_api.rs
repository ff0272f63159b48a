//! The public API of the PromQL engine: result shapes, error classes, limits.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use didban_store::promql::{parse_matchers, Engine, EngineOptions, MemStorage, PromqlError, Value};
use didban_store::{Labels, MatchOp, Sample};

fn storage() -> MemStorage {
    let mut s = MemStorage::new();
    for (job, step) in [("b", 2.0), ("a", 1.0)] {
        let l = Labels::from_pairs([("__name__", "up"), ("job", job)]);
        for i in 0..10 {
            s.add(&l, Sample::new(i * 60_000, step * i as f64));
        }
    }
    s
}

fn engine() -> Engine {
    Engine::new(EngineOptions::default())
}

#[test]
fn instant_vectors_are_sorted_by_labels_and_stamped_with_the_eval_time() {
    let r = engine().instant_query(&storage(), "up", 90_000).unwrap();
    let Value::Vector(v) = r.value else {
        panic!("expected vector")
    };
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].labels.get("job"), Some("a"));
    assert_eq!(v[0].t_ms, 90_000);
    assert_eq!(v[0].v, 1.0);
    assert_eq!(r.stats.series_loaded, 2);
    assert!(r.stats.samples_loaded >= 4);
}

#[test]
fn scalars_strings_and_matrices_keep_their_type() {
    let e = engine();
    let s = storage();
    assert_eq!(
        e.instant_query(&s, "1 + 1", 5).unwrap().value,
        Value::Scalar { t_ms: 5, v: 2.0 }
    );
    assert_eq!(
        e.instant_query(&s, "\"x\"", 5).unwrap().value,
        Value::String {
            t_ms: 5,
            v: "x".into()
        }
    );
    let Value::Matrix(m) = e.instant_query(&s, "up[2m]", 120_000).unwrap().value else {
        panic!("expected matrix")
    };
    assert_eq!(m.len(), 2);
    // Left-open (Prometheus 3): the sample at 0 is on the window's start, so not in it.
    assert_eq!(m[0].samples.len(), 2);
    assert_eq!(m[0].samples[0].timestamp_ms, 60_000);
}

#[test]
fn range_queries_return_sorted_series_per_step() {
    let r = engine()
        .range_query(&storage(), "up * 2", 0, 120_000, 60_000)
        .unwrap();
    let Value::Matrix(m) = r.value else {
        panic!("expected matrix")
    };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].labels, Labels::from_pairs([("job", "a")]));
    let values: Vec<f64> = m[1].samples.iter().map(|s| s.value).collect();
    assert_eq!(values, [0.0, 4.0, 8.0]);
}

#[test]
fn errors_carry_prometheus_error_types() {
    let e = engine();
    let s = storage();
    let err = e.instant_query(&s, "sum(", 0).unwrap_err();
    assert!(matches!(err, PromqlError::Parse { .. }), "{err:?}");
    assert_eq!(err.error_type(), "bad_data");
    let err = e.range_query(&s, "up", 0, 10, 0).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    let err = e.range_query(&s, "up", 10, 0, 1).unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
    let err = e.instant_query(&s, "up + on() up", 60_000).unwrap_err();
    assert_eq!(err.error_type(), "execution");
    assert!(err.to_string().contains("many-to-many"), "{err}");
}

#[test]
fn the_sample_limit_and_the_timeout_stop_queries() {
    let s = storage();
    let small = Engine::new(EngineOptions {
        max_samples: 3,
        ..EngineOptions::default()
    });
    let err = small.range_query(&s, "up", 0, 540_000, 60_000).unwrap_err();
    assert!(matches!(err, PromqlError::TooManySamples(3)), "{err:?}");
    assert_eq!(err.error_type(), "execution");
    let hasty = Engine::new(EngineOptions {
        timeout: Duration::ZERO,
        ..EngineOptions::default()
    });
    std::thread::sleep(Duration::from_millis(2));
    let err = hasty.instant_query(&s, "up", 0).unwrap_err();
    assert!(matches!(err, PromqlError::Timeout), "{err:?}");
    assert_eq!(err.error_type(), "timeout");
}

#[test]
fn series_selectors_parse_into_matchers() {
    let m = parse_matchers(r#"up{job=~"a|b", env!="dev"}"#).unwrap();
    assert_eq!(m.len(), 3);
    assert!(m
        .iter()
        .any(|m| m.name == "__name__" && m.value == "up" && m.op == MatchOp::Equal));
    assert!(m.iter().any(|m| m.name == "job" && m.op == MatchOp::RegexMatch));
    assert!(m.iter().any(|m| m.name == "env" && m.op == MatchOp::NotEqual));
    assert!(parse_matchers("sum(up)").is_err());
    assert!(parse_matchers("up offset 5m").is_err());
    let err = parse_matchers("up{").unwrap_err();
    assert_eq!(err.error_type(), "bad_data");
}

#[test]
fn extreme_inputs_fail_cleanly_instead_of_panicking() {
    let s = storage();
    let e = Engine::new(EngineOptions {
        timeout: Duration::MAX,
        ..EngineOptions::default()
    });
    for q in [
        "up[100000y]",
        "rate(up[100000y])",
        "up offset 100000y",
        "up offset -100000y",
        "max_over_time(up[100000y:1ms])",
        "count_over_time(up[1y:1ms])",
        "topk(1e300, up)",
        "histogram_quantile(0.5, up)",
        "label_replace(up, \"x\", \"$99\", \"job\", \"(.*)\")",
    ] {
        let _ = e.instant_query(&s, q, 0);
        let _ = e.instant_query(&s, q, i64::MAX);
        let _ = e.instant_query(&s, q, i64::MIN);
    }
    let err = e.instant_query(&s, "count_over_time(up[1y:1ms])", 0).unwrap_err();
    assert!(matches!(err, PromqlError::TooManySamples(_)), "{err:?}");
    assert!(e.range_query(&s, "up", i64::MIN, i64::MAX, 1).is_err());
    assert!(e.range_query(&s, "up", 0, 60_000, i64::MAX).is_ok());
}

/// Not a test of speed (figures are printed, never asserted): 1k series × 6h at 15s.
/// Run with `cargo test -p didban-store --release --test it promql_api:: -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_range_queries_over_1k_series() {
    let mut s = MemStorage::new();
    let hours6 = 6 * 3600 * 1000;
    for i in 0..1000 {
        let l = Labels::from_pairs([
            ("__name__", "http_requests_total".to_string()),
            ("instance", format!("i{i}")),
            ("job", format!("j{}", i % 10)),
        ]);
        let mut t = 0;
        let mut v = 0.0;
        while t <= hours6 {
            s.add(&l, Sample::new(t, v));
            v += (i % 7) as f64;
            t += 15_000;
        }
    }
    let e = engine();
    for q in [
        "http_requests_total",
        "rate(http_requests_total[5m])",
        "sum by (job) (rate(http_requests_total[5m]))",
        "http_requests_total / on(instance) group_left http_requests_total",
        "histogram_quantile(0.9, sum by (le) (label_replace(rate(http_requests_total[5m]), \"le\", \"$1\", \"job\", \"j(.*)\")))",
        "max_over_time(rate(http_requests_total[1m])[10m:1m])",
    ] {
        let started = Instant::now();
        let r = e.range_query(&s, q, 3_600_000, hours6, 15_000).unwrap();
        let Value::Matrix(m) = r.value else { panic!() };
        println!(
            "{q}: {:?} ({} series out, {} samples loaded)",
            started.elapsed(),
            m.len(),
            r.stats.samples_loaded
        );
    }
}
