//! The series-by-series vector (`SeriesVec`): its step form and its matrix.

use super::*;
use crate::model::FloatHistogram;

fn labels(name: &str) -> Arc<Labels> {
    Arc::new(Labels::from_pairs([("job", name)]))
}

fn hist(count: f64) -> Arc<FloatHistogram> {
    Arc::new(FloatHistogram {
        count,
        ..FloatHistogram::default()
    })
}

#[test]
fn steps_list_series_in_order_and_floats_and_histograms_by_step() {
    let mut a = StepSeries::new(labels("a"));
    a.push_float(0, 1.0);
    a.push_histogram(1, hist(5.0));
    a.push_float(2, 3.0);
    let mut b = StepSeries::new(labels("b"));
    b.push_float(1, 10.0);
    b.push_float(2, 20.0);
    let sv = SeriesVec {
        series: vec![a, b],
        steps: 4,
        collided: false,
    };
    assert_eq!(sv.points(), 5);
    assert!(sv.has_histograms());
    let steps = sv.into_steps().unwrap();
    assert_eq!(steps.len(), 4);
    let at = |i: usize| -> Vec<(String, f64, Option<f64>)> {
        steps[i]
            .iter()
            .map(|e| (e.labels.to_string(), e.v, e.h.as_ref().map(|h| h.count)))
            .collect()
    };
    assert_eq!(at(0), vec![(r#"{job="a"}"#.to_string(), 1.0, None)]);
    assert_eq!(
        at(1),
        vec![
            (r#"{job="a"}"#.to_string(), 0.0, Some(5.0)),
            (r#"{job="b"}"#.to_string(), 10.0, None)
        ]
    );
    assert_eq!(
        at(2),
        vec![
            (r#"{job="a"}"#.to_string(), 3.0, None),
            (r#"{job="b"}"#.to_string(), 20.0, None)
        ]
    );
    assert!(at(3).is_empty());
}

#[test]
fn a_shared_label_set_is_refused_only_where_two_series_meet() {
    let shared = labels("x");
    let mut a = StepSeries::new(shared.clone());
    a.push_float(0, 1.0);
    let mut b = StepSeries::new(shared.clone());
    b.push_float(1, 2.0);
    let apart = SeriesVec {
        series: vec![a, b],
        steps: 2,
        collided: true,
    };
    assert_eq!(apart.into_steps().unwrap().len(), 2);

    let mut a = StepSeries::new(shared.clone());
    a.push_float(1, 1.0);
    let mut b = StepSeries::new(shared);
    b.push_float(1, 2.0);
    let clash = SeriesVec {
        series: vec![a, b],
        steps: 2,
        collided: true,
    };
    let err = clash.into_steps().unwrap_err().to_string();
    assert!(err.contains("same labelset"), "{err}");
}

#[test]
fn the_matrix_has_the_grid_times_sorted_by_labels_without_empty_series() {
    let grid = Grid {
        start: 1_000,
        end: 4_000,
        step: 1_000,
    };
    let mut z = StepSeries::new(labels("z"));
    z.push_float(0, 1.0);
    z.push_float(3, 4.0);
    let empty = StepSeries::new(labels("e"));
    let mut a = StepSeries::new(labels("a"));
    a.push_histogram(2, hist(7.0));
    let sv = SeriesVec {
        series: vec![z, empty, a],
        steps: 4,
        collided: false,
    };
    let m = sv.into_matrix(&grid);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].labels.get("job"), Some("a"));
    assert_eq!(m[0].histograms[0].timestamp_ms, 3_000);
    assert_eq!(m[1].labels.get("job"), Some("z"));
    let times: Vec<i64> = m[1].samples.iter().map(|s| s.timestamp_ms).collect();
    assert_eq!(times, vec![1_000, 4_000]);
}
