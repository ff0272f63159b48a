#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use didban_testkit::rng::SeededRng;

use super::*;

fn exp(schema: i32, zt: f64, zc: f64, pos: &[(i32, f64)], neg: &[(i32, f64)]) -> FloatHistogram {
    let mut h = FloatHistogram {
        schema,
        zero_threshold: zt,
        zero_count: zc,
        ..FloatHistogram::default()
    };
    h.set_positive(pos);
    h.set_negative(neg);
    h.count = zc + pos.iter().map(|p| p.1).sum::<f64>() + neg.iter().map(|p| p.1).sum::<f64>();
    h
}

fn nonempty(p: Vec<(i32, f64)>) -> Vec<(i32, f64)> {
    p.into_iter().filter(|x| x.1 != 0.0).collect()
}

#[test]
fn exponential_bounds_follow_the_schema_formula() {
    assert_eq!(bucket_bound(0, 0), 1.0);
    assert_eq!(bucket_bound(1, 0), 2.0);
    assert_eq!(bucket_bound(-1, 0), 0.5);
    assert_eq!(bucket_bound(8, 3), 2.0);
    assert!((bucket_bound(1, 3) - 2f64.powf(0.125)).abs() < 1e-15);
    assert_eq!(bucket_bound(1, -1), 4.0);
    assert_eq!(bucket_bound(1, -4), 65536.0);
    assert_eq!(bucket_bound(1024, 0), f64::MAX);
    let h = exp(0, 0.001, 2.0, &[(0, 1.0), (1, 3.0)], &[(1, 4.0)]);
    let b = h.buckets();
    let bounds: Vec<(f64, f64, f64, u8)> = b
        .iter()
        .map(|b| (b.lower, b.upper, b.count, b.boundary_rule()))
        .collect();
    assert_eq!(
        bounds,
        vec![
            (-2.0, -1.0, 4.0, 1),
            (-0.001, 0.001, 2.0, 3),
            (0.5, 1.0, 1.0, 0),
            (1.0, 2.0, 3.0, 0)
        ]
    );
}

#[test]
fn custom_bounds_reach_from_minus_to_plus_infinity() {
    let mut h = FloatHistogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        custom_values: Arc::from(vec![1.0, 5.0]),
        ..FloatHistogram::default()
    };
    h.set_positive(&[(0, 1.0), (1, 2.0), (2, 3.0)]);
    h.validate().unwrap();
    let b: Vec<(f64, f64)> = h.buckets().iter().map(|b| (b.lower, b.upper)).collect();
    assert_eq!(
        b,
        vec![(f64::NEG_INFINITY, 1.0), (1.0, 5.0), (5.0, f64::INFINITY)]
    );
    h.set_positive(&[(3, 1.0)]);
    assert_eq!(h.validate(), Err(HistogramError::CustomIndexOutOfRange(3, 2)));
}

#[test]
fn validation_names_the_bad_part() {
    let mut h = exp(9, 0.0, 0.0, &[], &[]);
    assert_eq!(h.validate(), Err(HistogramError::BadSchema(9)));
    h.schema = 0;
    h.positive_buckets.push(1.0);
    assert_eq!(
        h.validate(),
        Err(HistogramError::SpanMismatch {
            side: "positive",
            spans: 0,
            buckets: 1
        })
    );
    let mut c = exp(CUSTOM_BUCKETS_SCHEMA, 0.0, 0.0, &[], &[]);
    c.custom_values = Arc::from(vec![2.0, 1.0]);
    assert_eq!(c.validate(), Err(HistogramError::BadCustomBounds(vec![2.0, 1.0])));
}

#[test]
fn integer_histograms_convert_deltas_to_absolute_counts() {
    let h = Histogram {
        schema: 1,
        zero_threshold_bits: 0.5f64.to_bits(),
        zero_count: 2,
        count: 12,
        sum_bits: 20.5f64.to_bits(),
        positive_spans: vec![
            Span {
                offset: -1,
                length: 2,
            },
            Span { offset: 1, length: 1 },
        ],
        positive_deltas: vec![3, 1, -2],
        negative_spans: vec![Span { offset: 0, length: 1 }],
        negative_deltas: vec![1],
        ..Histogram::default()
    };
    let f = h.to_float();
    f.validate().unwrap();
    assert_eq!(f.positive_pairs(), vec![(-1, 3.0), (0, 4.0), (2, 2.0)]);
    assert_eq!(f.negative_pairs(), vec![(0, 1.0)]);
    assert_eq!(
        (f.count, f.sum, f.zero_count, f.zero_threshold),
        (12.0, 20.5, 2.0, 0.5)
    );
}

#[test]
fn adding_reduces_to_the_coarser_schema() {
    // Schema 1 buckets 1 and 2 are (1, √2] and (√2, 2]: both inside schema 0 bucket 1.
    let mut a = exp(1, 0.0, 0.0, &[(1, 1.0), (2, 2.0), (3, 4.0)], &[]);
    let b = exp(0, 0.0, 0.0, &[(1, 10.0)], &[(0, 1.0)]);
    assert!(!a.add(&b).unwrap());
    assert_eq!(a.schema, 0);
    assert_eq!(a.positive_pairs(), vec![(1, 13.0), (2, 4.0)]);
    assert_eq!(a.negative_pairs(), vec![(0, 1.0)]);
    assert_eq!(a.count, 18.0);
}

#[test]
fn adding_widens_the_zero_bucket_to_a_bucket_boundary() {
    // b's threshold 1.5 cuts a's populated bucket (1, 2]: the threshold grows to 2.
    let mut a = exp(0, 0.0, 1.0, &[(0, 2.0), (1, 3.0), (2, 4.0)], &[(1, 5.0)]);
    let b = exp(0, 1.5, 1.0, &[(2, 1.0)], &[]);
    a.add(&b).unwrap();
    assert_eq!(a.zero_threshold, 2.0);
    assert_eq!(a.zero_count, 1.0 + 2.0 + 3.0 + 5.0 + 1.0);
    assert_eq!(a.positive_pairs(), vec![(2, 5.0)]);
    assert!(a.negative_pairs().is_empty());
}

#[test]
fn custom_and_exponential_do_not_mix() {
    let mut a = exp(0, 0.0, 0.0, &[(0, 1.0)], &[]);
    let mut c = exp(CUSTOM_BUCKETS_SCHEMA, 0.0, 0.0, &[(0, 1.0)], &[]);
    c.custom_values = Arc::from(vec![1.0]);
    assert_eq!(a.add(&c), Err(HistogramOpError::MixedExponentialCustom));
    let mut d = c.clone();
    d.custom_values = Arc::from(vec![2.0]);
    assert_eq!(
        c.clone().add(&d),
        Err(HistogramOpError::IncompatibleCustomBuckets)
    );
    assert!(c.clone().add(&c).is_ok());
}

#[test]
fn hints_combine_and_collisions_are_reported() {
    let mut a = exp(0, 0.0, 0.0, &[(0, 1.0)], &[]);
    a.counter_reset_hint = CounterResetHint::CounterReset;
    let mut b = a.clone();
    b.counter_reset_hint = CounterResetHint::NotCounterReset;
    assert!(a.clone().add(&b).unwrap());
    let mut g = b.clone();
    g.counter_reset_hint = CounterResetHint::Gauge;
    let mut s = a.clone();
    assert!(!s.add(&g).unwrap());
    assert_eq!(s.counter_reset_hint, CounterResetHint::Gauge);
}

#[test]
fn scaling_and_compaction() {
    let mut a = exp(
        0,
        0.1,
        1.0,
        &[(0, 2.0), (1, 0.0), (2, 0.0), (3, 4.0), (9, 0.0)],
        &[],
    );
    a.sum = 3.0;
    a.mul(2.0);
    assert_eq!((a.count, a.sum, a.zero_count), (14.0, 6.0, 2.0));
    a.div(4.0);
    assert_eq!(
        a.positive_pairs(),
        vec![(0, 1.0), (1, 0.0), (2, 0.0), (3, 2.0), (9, 0.0)]
    );
    a.compact(0);
    assert_eq!(
        a.positive_spans,
        vec![Span { offset: 0, length: 1 }, Span { offset: 2, length: 1 }]
    );
    let mut b = exp(0, 0.0, 0.0, &[(0, 1.0), (3, 2.0)], &[]);
    b.compact(2);
    assert_eq!(b.positive_spans, vec![Span { offset: 0, length: 4 }]);
}

#[test]
fn counter_resets_are_detected_by_the_rules() {
    let prev = exp(1, 0.0, 1.0, &[(1, 2.0), (2, 2.0)], &[]);
    let mut cur = exp(1, 0.0, 1.0, &[(1, 3.0), (2, 2.0)], &[]);
    assert!(!cur.detect_reset(&prev));
    cur.set_positive(&[(1, 1.0), (2, 5.0)]);
    cur.count = 7.0;
    assert!(cur.detect_reset(&prev), "a bucket went down");
    cur.counter_reset_hint = CounterResetHint::NotCounterReset;
    assert!(!cur.detect_reset(&prev), "the hint is believed");
    // A coarser schema is compared after merging the previous buckets.
    let coarse = exp(0, 0.0, 1.0, &[(1, 4.0)], &[]);
    assert!(!coarse.detect_reset(&prev));
    // A finer schema is a reset.
    let fine = exp(2, 0.0, 1.0, &[(2, 4.0)], &[]);
    assert!(fine.detect_reset(&prev));
    // A narrower zero bucket, or a count that went down.
    let wide = exp(1, 0.5, 1.0, &[(1, 2.0), (2, 2.0)], &[]);
    assert!(prev.detect_reset(&wide));
    let mut fewer = prev.clone();
    fewer.count -= 1.0;
    assert!(fewer.detect_reset(&prev));
    // A zero threshold cutting a populated bucket of the previous sample.
    let mut cut = exp(1, 1.2, 1.0, &[(2, 2.0)], &[]);
    cut.count = 10.0;
    assert!(cut.detect_reset(&prev));
}

/// A random valid histogram for the property tests.
fn random_histogram(rng: &mut SeededRng) -> FloatHistogram {
    let schema = i32::try_from(rng.below(6)).unwrap() - 1;
    let side = |rng: &mut SeededRng| {
        let mut idx = i32::try_from(rng.below(20)).unwrap() - 10;
        let mut pairs = Vec::new();
        for _ in 0..rng.below(8) {
            pairs.push((idx, rng.below(10) as f64));
            idx += 1 + i32::try_from(rng.below(3)).unwrap();
        }
        pairs
    };
    let pos = side(rng);
    let neg = side(rng);
    let zt = [0.0, 0.001, 0.3][usize::try_from(rng.below(3)).unwrap()];
    let mut h = exp(schema, 0.0, rng.below(5) as f64, &pos, &neg);
    // Real histograms have no buckets inside the zero bucket.
    h.widen_zero_bucket(zt);
    h.sum = rng.below(100) as f64;
    h
}

fn bucket_total(h: &FloatHistogram) -> f64 {
    h.zero_count + h.positive_buckets.iter().sum::<f64>() + h.negative_buckets.iter().sum::<f64>()
}

#[test]
fn property_add_keeps_totals_and_sub_undoes_add() {
    let mut rng = SeededRng::new(0x9e37_79b9_7f4a_7c15);
    for _ in 0..500 {
        let a = random_histogram(&mut rng);
        let b = random_histogram(&mut rng);
        let mut s = a.clone();
        s.add(&b).unwrap();
        s.validate().unwrap();
        assert_eq!(s.count, a.count + b.count);
        assert_eq!(bucket_total(&s), bucket_total(&a) + bucket_total(&b));
        assert_eq!(s.schema, a.schema.min(b.schema));
        assert!(s.zero_threshold >= a.zero_threshold.max(b.zero_threshold));
        // (a + b) - b is a, seen at the sum's schema and zero bucket.
        let mut back = s.clone();
        back.sub(&b).unwrap();
        let mut want = a.clone();
        want.reduce_resolution(s.schema);
        want.widen_zero_bucket(s.zero_threshold);
        assert_eq!(back.zero_count, want.zero_count);
        assert_eq!(nonempty(back.positive_pairs()), nonempty(want.positive_pairs()));
        assert_eq!(nonempty(back.negative_pairs()), nonempty(want.negative_pairs()));
    }
}

#[test]
fn property_growing_counters_are_no_reset_and_shrinking_ones_are() {
    let mut rng = SeededRng::new(42);
    for _ in 0..500 {
        let a = random_histogram(&mut rng);
        assert!(!a.detect_reset(&a));
        let mut grown = a.clone();
        grown.add(&random_histogram(&mut rng)).unwrap();
        // Growing a counter never looks like a reset unless the zero bucket had to widen
        // or the schema got coarser (both allowed); the sum is always a continuation.
        assert!(!grown.detect_reset(&a), "{grown:?} after {a:?}");
        if a.count > 0.0 && bucket_total(&a) > a.zero_count {
            let mut shrunk = a.clone();
            shrunk.mul(0.5);
            assert!(shrunk.detect_reset(&a));
        }
    }
}

#[test]
fn property_buckets_are_ordered_and_reduction_keeps_counts() {
    let mut rng = SeededRng::new(7);
    for _ in 0..500 {
        let h = random_histogram(&mut rng);
        let b = h.buckets();
        for pair in b.windows(2) {
            assert!(pair[0].upper <= pair[1].lower + 1e-12, "{pair:?}");
            assert!(pair[0].lower < pair[0].upper || pair[0].side == BucketSide::Zero);
        }
        let mut r = h.clone();
        r.reduce_resolution(-4);
        assert_eq!(bucket_total(&r), bucket_total(&h));
        r.validate().unwrap();
    }
}

/// `a` and `b` brought to one schema and one zero threshold, as `add` brings them.
fn same_layout(rng: &mut SeededRng) -> (FloatHistogram, FloatHistogram) {
    let mut a = random_histogram(rng);
    let mut b = random_histogram(rng);
    let schema = a.schema.min(b.schema);
    a.reduce_resolution(schema);
    b.reduce_resolution(schema);
    let mut probe = a.clone();
    probe.add(&b).unwrap();
    a.widen_zero_bucket(probe.zero_threshold);
    b.widen_zero_bucket(probe.zero_threshold);
    (a, b)
}

#[test]
fn property_same_layout_add_and_reset_match_the_bucket_by_bucket_definition() {
    let mut rng = SeededRng::new(15);
    for _ in 0..500 {
        let (a, b) = same_layout(&mut rng);
        assert_eq!((a.schema, a.zero_threshold), (b.schema, b.zero_threshold));
        let mut sum = a.clone();
        sum.add(&b).unwrap();
        sum.validate().unwrap();
        let mut want = std::collections::BTreeMap::new();
        for (i, c) in a.positive_pairs().into_iter().chain(b.positive_pairs()) {
            *want.entry(i).or_insert(0.0) += c;
        }
        let want: Vec<(i32, f64)> = want.into_iter().collect();
        assert_eq!(nonempty(sum.positive_pairs()), nonempty(want));
        assert_eq!(sum.zero_count, a.zero_count + b.zero_count);
        // A reset exactly when some bucket (or the zero bucket, or the count) went down.
        let down = |prev: &FloatHistogram, cur: &FloatHistogram| {
            let now: std::collections::BTreeMap<i32, f64> = cur.positive_pairs().into_iter().collect();
            let now_neg: std::collections::BTreeMap<i32, f64> = cur.negative_pairs().into_iter().collect();
            cur.count < prev.count
                || cur.zero_count < prev.zero_count
                || prev
                    .positive_pairs()
                    .iter()
                    .any(|&(i, c)| c > *now.get(&i).unwrap_or(&0.0))
                || prev
                    .negative_pairs()
                    .iter()
                    .any(|&(i, c)| c > *now_neg.get(&i).unwrap_or(&0.0))
        };
        assert_eq!(b.detect_reset(&a), down(&a, &b), "{b:?} after {a:?}");
        assert_eq!(a.detect_reset(&b), down(&b, &a), "{a:?} after {b:?}");
    }
}
