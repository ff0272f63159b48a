//! Sample acceptance rules, limits and backpressure through the public API.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::*;
use didban_store::{Db, LabelMatcher, Labels, MatchOp, Queryable, RejectReason, SeriesSamples};

#[tokio::test]
async fn ordering_rules_and_only_accepted_samples_reach_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.out_of_order_window = Duration::from_secs(60);
    opts.max_sample_age = Duration::from_secs(3600);
    {
        let db = Db::open(opts.clone()).unwrap();
        db.append(vec![series("up", "a", &[(T0, 1.0), (T0 + 10 * MIN, 2.0)])])
            .await
            .unwrap();
        let report = db
            .append(vec![series(
                "up",
                "a",
                &[
                    (T0 + 10 * MIN - 30_000, 3.0), // out of order, within the window
                    (T0 + 5 * MIN, 4.0),           // out of order, beyond the window
                    (T0 + 10 * MIN, 2.0),          // duplicate
                    (T0 + 10 * MIN, 9.0),          // duplicate timestamp
                ],
            )])
            .await
            .unwrap();
        assert_eq!(report.accepted, 1);
        assert_eq!(
            report.rejected,
            vec![
                (RejectReason::OutOfOrder, 1),
                (RejectReason::Duplicate, 1),
                (RejectReason::DuplicateTimestamp, 1)
            ]
        );
        assert!(report.first_error.unwrap().starts_with(r#"up{job="a"}"#));

        // another series pushes the newest time forward; an hour-old sample is too old
        db.append(vec![series("up", "b", &[(T0 + 2 * 60 * MIN, 1.0)])])
            .await
            .unwrap();
        let report = db
            .append(vec![series("up", "c", &[(T0 + 50 * MIN, 1.0)])])
            .await
            .unwrap();
        assert_eq!(report.rejected, vec![(RejectReason::TooOld, 1)]);
        assert!(report.first_error.unwrap().contains(r#"up{job="c"}"#));
        db.close().await.unwrap();
    }
    let db = Db::open(opts).unwrap();
    let a = db
        .select(&[LabelMatcher::equal("job", "a")], i64::MIN, i64::MAX)
        .unwrap();
    let got: Vec<(i64, f64)> = a[0].samples.iter().map(|s| (s.timestamp_ms, s.value)).collect();
    assert_eq!(
        got,
        vec![(T0, 1.0), (T0 + 10 * MIN - 30_000, 3.0), (T0 + 10 * MIN, 2.0)]
    );
    assert!(db
        .select(&[LabelMatcher::equal("job", "c")], i64::MIN, i64::MAX)
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn invalid_labels_and_limits_are_reported_per_series() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.limits.max_series = 3;
    opts.limits.max_series_per_metric = 2;
    opts.limits.max_label_value_bytes = 10;
    let db = Db::open(opts).unwrap();
    let bad = SeriesSamples {
        labels: Labels::from_pairs([("__name__", "up"), ("bad-name", "x")]),
        samples: vec![didban_store::Sample::new(T0, 1.0)],
        histograms: Vec::new(),
    };
    let report = db
        .append(vec![
            bad,
            series("up", "a", &[(T0, 1.0)]),
            series("up", "b", &[(T0, 1.0)]),
            series("up", "c", &[(T0, 1.0), (T0 + 1, 1.0)]),
            series("down", "this-value-is-too-long", &[(T0, 1.0)]),
            series("down", "a", &[(T0, 1.0)]),
            series("other", "a", &[(T0, 1.0)]),
        ])
        .await
        .unwrap();
    assert_eq!(report.accepted, 3);
    assert_eq!(
        report.rejected,
        vec![
            (RejectReason::InvalidLabels, 1),
            (RejectReason::LabelValueTooLong, 1),
            (RejectReason::SeriesLimit, 1),
            (RejectReason::SeriesPerMetricLimit, 2),
        ]
    );
    assert!(report.first_error.unwrap().contains("bad-name"));
    // existing series are still accepted at the limit
    let report = db
        .append(vec![series("up", "a", &[(T0 + 1, 2.0)])])
        .await
        .unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(db.stats().head_series, 3);
}

#[tokio::test]
async fn matchers_select_via_postings_including_empty_matches() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(options(dir.path())).unwrap();
    let with_env = SeriesSamples {
        labels: Labels::from_pairs([("__name__", "up"), ("job", "a"), ("env", "prod")]),
        samples: vec![didban_store::Sample::new(T0, 1.0)],
        histograms: Vec::new(),
    };
    db.append(vec![
        with_env,
        series("up", "b", &[(T0, 2.0)]),
        series("cpu", "a", &[(T0, 3.0)]),
    ])
    .await
    .unwrap();
    let names = |r: Vec<SeriesSamples>| -> Vec<String> { r.iter().map(|s| s.labels.to_string()).collect() };
    let got = db.select(&[LabelMatcher::equal("env", "")], 0, i64::MAX).unwrap();
    assert_eq!(names(got), vec![r#"cpu{job="a"}"#, r#"up{job="b"}"#]);
    let re = LabelMatcher::new(MatchOp::RegexMatch, "job", "a|b").unwrap();
    let ne = LabelMatcher::new(MatchOp::NotEqual, "__name__", "cpu").unwrap();
    assert_eq!(db.select(&[re, ne], 0, i64::MAX).unwrap().len(), 2);
    assert!(db
        .select(&[LabelMatcher::equal("job", "a")], 0, T0 - 1)
        .unwrap()
        .is_empty());
    assert_eq!(db.label_values("job", &[], 0, i64::MAX).unwrap(), vec!["a", "b"]);
}
