//! Native histograms outside heatmaps (stat and table show count and sum) and exemplar dots
//! over time series (links to the trace, tooltips, bounds).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use didban_store::model::{FloatHistogram, Labels};

use super::*;

const T0: i64 = 1_700_000_000_000;
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn frame() -> ChartFrame {
    ChartFrame {
        width: 600,
        height: 200,
        start_ms: T0,
        end_ms: T0 + 600_000,
    }
}

fn histogram_series() -> Series {
    let h = |count: f64, sum: f64| {
        Arc::new(FloatHistogram {
            count,
            sum,
            ..FloatHistogram::default()
        })
    };
    Series::of_histograms(
        Labels::from_pairs([("__name__", "rpc_seconds"), ("job", "api")]),
        vec![(T0, h(4.0, 1.0)), (T0 + 60_000, h(10.0, 2.5))],
    )
}

fn line() -> Series {
    let points = (0..10).map(|i| (T0 + i * 60_000, 0.1 * i as f64)).collect();
    Series::new(Labels::from_pairs([("__name__", "p95")]), points)
}

#[test]
fn stat_and_table_of_a_native_histogram_show_count_and_sum() {
    let s = histogram_series();
    let opts = ChartOptions::default();
    let svg = render(ChartKind::Stat, std::slice::from_ref(&s), frame(), &opts);
    assert!(svg.contains("count 10, sum 2.5"), "{svg}");
    assert!(svg.contains("sparkline"), "the count over time: {svg}");
    let html = table(&[s], &opts);
    assert!(html.contains("count 10, sum 2.5"), "{html}");
}

#[test]
fn exemplar_dots_link_to_their_trace_with_a_tooltip() {
    let opts = ChartOptions {
        unit: "s".into(),
        exemplars: vec![
            ExemplarDot::new(T0 + 120_000, 0.25, TRACE).unwrap(),
            // outside the time range: not drawn
            ExemplarDot::new(T0 - 1, 0.5, "0af7651916cd43dd8448eb211c80319c").unwrap(),
        ],
        ..ChartOptions::default()
    };
    let svg = render(ChartKind::TimeSeries, &[line()], frame(), &opts);
    assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
    assert!(
        svg.contains(&format!(r#"<a class="exemplar" href="/traces/{TRACE}"><circle"#)),
        "{svg}"
    );
    let title = format!("<title>Trace {TRACE}: {}</title>", opts.format(0.25));
    assert!(svg.contains(&title), "{svg}");
    assert!(!svg.contains("0af7651916cd43dd8448eb211c80319c"));
}

#[test]
fn an_exemplar_above_the_lines_widens_the_axis() {
    let opts = ChartOptions {
        exemplars: vec![ExemplarDot::new(T0 + 60_000, 50.0, TRACE).unwrap()],
        ..ChartOptions::default()
    };
    let svg = render(ChartKind::TimeSeries, &[line()], frame(), &opts);
    let cy: f64 = svg
        .split(r#"cy=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // inside the plot (which starts 8 units from the top), not clamped above it
    assert!(
        (7.9..=200.0).contains(&cy),
        "the axis reaches the exemplar: {svg}"
    );
}

#[test]
fn exemplar_dots_need_a_stored_trace_id_and_a_finite_value() {
    assert!(ExemplarDot::new(T0, 1.0, "../admin").is_none());
    assert!(ExemplarDot::new(T0, 1.0, "").is_none());
    assert!(ExemplarDot::new(T0, 1.0, &"a".repeat(33)).is_none());
    assert!(ExemplarDot::new(T0, 1.0, &"0".repeat(32)).is_none());
    assert!(
        ExemplarDot::new(T0, 1.0, &TRACE.to_uppercase()).is_none(),
        "normalized first"
    );
    assert!(ExemplarDot::new(T0, f64::NAN, TRACE).is_none());
    assert_eq!(ExemplarDot::new(T0, 1.0, TRACE).unwrap().trace_id, TRACE);
}

#[test]
fn exemplars_are_thinned_evenly_to_the_bound() {
    let dots: Vec<ExemplarDot> = (0..1000)
        .rev()
        .map(|i| ExemplarDot::new(T0 + i, 1.0, TRACE).unwrap())
        .collect();
    let kept = thin_exemplars(dots, MAX_EXEMPLAR_DOTS);
    assert_eq!(kept.len(), MAX_EXEMPLAR_DOTS);
    assert_eq!(
        (kept[0].t_ms, kept[199].t_ms),
        (T0, T0 + 999),
        "first and last kept"
    );
    let gaps: Vec<i64> = kept.windows(2).map(|w| w[1].t_ms - w[0].t_ms).collect();
    assert!(gaps.iter().all(|g| (5..=6).contains(g)), "{gaps:?}");
    let few: Vec<ExemplarDot> = (0..3)
        .map(|i| ExemplarDot::new(T0 + i, 1.0, TRACE).unwrap())
        .collect();
    assert_eq!(thin_exemplars(few.clone(), MAX_EXEMPLAR_DOTS), few);
    let opts = ChartOptions {
        exemplars: thin_exemplars(
            (0..1000)
                .map(|i| ExemplarDot::new(T0 + i * 600, 0.3, TRACE).unwrap())
                .collect(),
            MAX_EXEMPLAR_DOTS,
        ),
        ..ChartOptions::default()
    };
    let svg = render(ChartKind::TimeSeries, &[line()], frame(), &opts);
    assert_eq!(svg.matches("<circle").count(), MAX_EXEMPLAR_DOTS);
}
