//! Behaviour of each chart kind, checked on the SVG/HTML they produce.
#![allow(clippy::unwrap_used)]

use super::*;
use didban_store::model::Labels;

const T0: i64 = 1_700_000_000_000;

fn frame() -> ChartFrame {
    ChartFrame {
        width: 600,
        height: 200,
        start_ms: T0,
        end_ms: T0 + 600_000,
    }
}

fn series(name: &str, values: &[f64]) -> Series {
    let labels = Labels::from_pairs([("__name__", "m"), ("job", name)]);
    let points = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (T0 + i as i64 * 60_000, v))
        .collect();
    Series::new(labels, points)
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// Open and close tags balance for the elements charts use.
fn assert_well_formed(svg: &str) {
    for tag in ["svg", "g", "text", "path", "title", "table", "tr", "td", "div"] {
        let open = count(svg, &format!("<{tag} ")) + count(svg, &format!("<{tag}>"));
        let self_closed = svg
            .split(&format!("<{tag} "))
            .skip(1)
            .filter(|rest| rest.split('>').next().is_some_and(|t| t.ends_with('/')))
            .count();
        let close = count(svg, &format!("</{tag}>"));
        assert_eq!(open - self_closed, close, "<{tag}> unbalanced in {svg}");
    }
}

fn path_ds(svg: &str, class_prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in svg.split(&format!(r#"<path class="{class_prefix}"#)).skip(1) {
        let d = part.split(r#" d=""#).nth(1).unwrap().split('"').next().unwrap();
        out.push(d.to_string());
    }
    out
}

#[test]
fn one_path_per_series_and_script_attributes() {
    let s = vec![series("a", &[1.0, 2.0, 3.0]), series("b", &[3.0, 2.0, 1.0])];
    let svg = render(ChartKind::TimeSeries, &s, frame(), &ChartOptions::default());
    assert_well_formed(&svg);
    assert_eq!(count(&svg, r#"<path class="series "#), 2);
    assert!(svg.contains(&format!(r#"data-start-ms="{T0}""#)), "{svg}");
    assert!(svg.contains(&format!(r#"data-end-ms="{}""#, T0 + 600_000)));
    assert!(svg.contains(r#"data-plot=""#));
    // tooltip data: one raw value per path vertex
    let values = svg
        .split(r#"data-values=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(values, "1 2 3");
    let d = &path_ds(&svg, "series ")[0];
    assert_eq!(d.matches(['M', 'L']).count(), 3);
    // the time axis has labels, the value axis too
    assert!(
        svg.contains(r#"class="axis axis-x""#) && svg.contains(">22:14<"),
        "{svg}"
    );
}

#[test]
fn nan_splits_a_path() {
    let s = vec![series("a", &[1.0, 2.0, f64::NAN, 4.0, 5.0])];
    let svg = render(ChartKind::TimeSeries, &s, frame(), &ChartOptions::default());
    let d = &path_ds(&svg, "series ")[0];
    assert_eq!(count(d, "M"), 2, "{d}");
    assert_eq!(count(d, "L"), 2, "{d}");
}

#[test]
fn series_names_are_escaped() {
    let mut s = series("a", &[1.0]);
    s.name = "<script>alert(1)</script>".into();
    for kind in [
        ChartKind::TimeSeries,
        ChartKind::StackedArea,
        ChartKind::Stat,
        ChartKind::Gauge,
        ChartKind::BarGauge,
    ] {
        let svg = render(kind, &[s.clone(), s.clone()], frame(), &ChartOptions::default());
        assert!(!svg.contains("<script>"), "{kind:?}: {svg}");
        assert!(svg.contains("&lt;script&gt;"), "{kind:?}: {svg}");
    }
    let html = legend(&[s.clone()], &ChartOptions::default());
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
    let labels = Labels::from_pairs([("__name__", "m"), ("evil", "<script>x</script>")]);
    let html = table(&[Series::new(labels, vec![(T0, 1.0)])], &ChartOptions::default());
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;x"));
    let opts = ChartOptions {
        unit: "\"><script>".into(),
        chart_id: Some("\"x".into()),
        ..Default::default()
    };
    let svg = render(ChartKind::TimeSeries, &[s], frame(), &opts);
    assert!(!svg.contains("<script>") && !svg.contains(r#"id=""x""#));
}

#[test]
fn stacked_tops_are_cumulative() {
    let s = vec![
        series("a", &[1.0, 2.0]),
        series("b", &[10.0, f64::NAN]),
        series("c", &[100.0, 200.0]),
    ];
    let layers = stack(&s);
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[0], vec![(T0, 0.0, 1.0), (T0 + 60_000, 0.0, 2.0)]);
    assert_eq!(layers[1], vec![(T0, 1.0, 11.0), (T0 + 60_000, 2.0, 2.0)]);
    assert_eq!(layers[2], vec![(T0, 11.0, 111.0), (T0 + 60_000, 2.0, 202.0)]);
    let svg = render(ChartKind::StackedArea, &s, frame(), &ChartOptions::default());
    assert_well_formed(&svg);
    assert_eq!(count(&svg, r#"<path class="area "#), 3);
    assert_eq!(count(&svg, r#"<path class="series "#), 3);
    // the tooltip shows each series' own value, not the stacked sum
    let third = svg
        .split(r#"<path class="series s2" data-series="2" data-values=""#)
        .nth(1)
        .unwrap();
    assert!(third.starts_with("100 200\""), "{svg}");
}

#[test]
fn thresholds_draw_lines_and_bands() {
    let opts = ChartOptions {
        thresholds: vec![
            Threshold {
                value: f64::NEG_INFINITY,
                color: "green".into(),
            },
            Threshold {
                value: 50.0,
                color: "red".into(),
            },
        ],
        threshold_bands: true,
        ..Default::default()
    };
    let svg = render(
        ChartKind::TimeSeries,
        &[series("a", &[0.0, 100.0])],
        frame(),
        &opts,
    );
    assert_eq!(count(&svg, r#"<line class="threshold""#), 1);
    assert!(svg.contains("stroke:var(--th-red)"));
    assert_eq!(count(&svg, r#"class="threshold-band""#), 2);
}

#[test]
fn thresholds_colour_the_stat() {
    let opts = ChartOptions {
        unit: "percent".into(),
        thresholds: vec![
            Threshold {
                value: f64::NEG_INFINITY,
                color: "green".into(),
            },
            Threshold {
                value: 80.0,
                color: "#e02f44".into(),
            },
        ],
        ..Default::default()
    };
    let hot = render(ChartKind::Stat, &[series("a", &[10.0, 95.0])], frame(), &opts);
    assert_well_formed(&hot);
    assert!(hot.contains(r#"style="fill:#e02f44">95%"#), "{hot}");
    assert!(hot.contains(r#"class="sparkline s0""#));
    let ok = render(
        ChartKind::Stat,
        &[series("a", &[95.0, 10.0, f64::NAN])],
        frame(),
        &opts,
    );
    assert!(ok.contains(r#"style="fill:var(--th-green)">10%"#), "{ok}");
    // the gauge and bar gauge take the same colour
    let g = render(ChartKind::Gauge, &[series("a", &[95.0])], frame(), &opts);
    assert_well_formed(&g);
    assert!(g.contains("stroke:#e02f44"), "{g}");
    let b = render(
        ChartKind::BarGauge,
        &[series("a", &[95.0]), series("b", &[5.0])],
        frame(),
        &opts,
    );
    assert_well_formed(&b);
    assert_eq!(count(&b, r#"<rect class="bar-value"#), 2);
    assert!(b.contains(r#"style="fill:#e02f44""#) && b.contains(r#"style="fill:var(--th-green)""#));
}

#[test]
fn gauge_arc_follows_the_value() {
    let opts = ChartOptions {
        unit: "percent".into(),
        ..Default::default()
    };
    let half = render(ChartKind::Gauge, &[series("a", &[50.0])], frame(), &opts);
    let full = render(ChartKind::Gauge, &[series("a", &[100.0])], frame(), &opts);
    let end = |svg: &str| {
        let d = path_ds(svg, "gauge-value")[0].clone();
        let last = d.rsplit(' ').next().unwrap().to_string();
        let (x, _) = last.split_once(',').unwrap();
        x.parse::<f64>().unwrap()
    };
    // half way ends at the top centre, full at the right end of the dial
    assert!((end(&half) - 300.0).abs() < 0.5, "{half}");
    assert!(end(&full) > 300.0 + 50.0, "{full}");
    assert!(half.contains(">50%<"));
}

#[test]
fn heatmap_sorts_le_numerically_and_decumulates() {
    let bucket = |le: &str, values: &[f64]| {
        let labels = Labels::from_pairs([("__name__", "h_bucket"), ("le", le)]);
        let points = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (T0 + i as i64 * 60_000, v))
            .collect();
        Series::new(labels, points)
    };
    let s = vec![
        bucket("+Inf", &[10.0, 10.0]),
        bucket("10", &[9.0, 2.0]),
        bucket("2.5", &[1.0, 2.0]),
        bucket("nope", &[1.0, 1.0]),
    ];
    let order: Vec<f64> = sort_buckets(&s).iter().map(|b| b.0).collect();
    assert_eq!(order, vec![2.5, 10.0, f64::INFINITY]);
    let svg = render(ChartKind::Heatmap, &s, frame(), &ChartOptions::default());
    assert_well_formed(&svg);
    // labels bottom to top: 2.5, 10, +Inf (y decreases as le grows)
    let y_of = |label: &str| -> f64 {
        let at = svg.find(&format!(">{label}</text>")).unwrap();
        let before = &svg[..at];
        let y = before.rsplit(r#"y=""#).next().unwrap();
        y.split('"').next().unwrap().parse().unwrap()
    };
    assert!(y_of("2.5") > y_of("10") && y_of("10") > y_of("+Inf"), "{svg}");
    // step 1 counts: 1, 8, 1; step 2: 2, 0, 8 -> five non-empty cells, the largest darkest
    assert_eq!(count(&svg, "<rect class=\"hm"), 5, "{svg}");
    assert_eq!(count(&svg, "<rect class=\"hm8\""), 2, "{svg}");
}

#[test]
fn table_has_label_columns_and_values() {
    let s = vec![series("api", &[1.0, 2.5]), series("db", &[f64::NAN])];
    let html = table(&s, &ChartOptions::default());
    assert_well_formed(&html);
    assert!(
        html.contains(r#"<th scope="col">__name__</th><th scope="col">job</th>"#),
        "{html}"
    );
    assert!(html.contains("<td>api</td><td class=\"num\">2.5</td>"), "{html}");
    assert_eq!(count(&html, "<tr>"), 3);
    let bytes = ChartOptions {
        unit: "bytes".into(),
        ..Default::default()
    };
    assert!(table(&[series("a", &[2048.0])], &bytes).contains(">2 KiB<"));
}

#[test]
fn legend_lists_stats_in_the_unit() {
    let opts = ChartOptions {
        unit: "bytes".into(),
        chart_id: Some("c1".into()),
        ..Default::default()
    };
    let html = legend(&[series("a", &[1024.0, 3072.0, f64::NAN])], &opts);
    assert_well_formed(&html);
    assert!(html.contains(r#"data-chart="c1""#));
    assert!(html.contains(r#"data-series="0""#));
    // min, max, avg, last
    assert!(
        html.contains(">1 KiB<") && html.contains(">3 KiB<") && html.contains(">2 KiB<"),
        "{html}"
    );
}

#[test]
fn empty_input_says_no_data() {
    for kind in [
        ChartKind::TimeSeries,
        ChartKind::StackedArea,
        ChartKind::Stat,
        ChartKind::Gauge,
        ChartKind::BarGauge,
        ChartKind::Heatmap,
    ] {
        let svg = render(kind, &[], frame(), &ChartOptions::default());
        assert!(svg.contains("No data"), "{kind:?}: {svg}");
        assert_well_formed(&svg);
    }
}

#[test]
fn many_points_are_downsampled_to_the_width() {
    let values: Vec<f64> = (0..20_000).map(|i| if i == 12_345 { 1e6 } else { 1.0 }).collect();
    let mut s = series("a", &values);
    for (i, p) in s.points.iter_mut().enumerate() {
        p.0 = T0 + i as i64 * 30;
    }
    let svg = render(ChartKind::TimeSeries, &[s], frame(), &ChartOptions::default());
    let d = &path_ds(&svg, "series ")[0];
    assert!(count(d, "L") <= 2 * 600, "{}", count(d, "L"));
    assert!(svg.contains(" 1000000 "), "the spike survives");
}

#[test]
fn threshold_colours_are_sanitised() {
    assert_eq!(threshold_color("red"), "var(--th-red)");
    assert_eq!(threshold_color("dark-green"), "var(--th-green)");
    assert_eq!(threshold_color("#abc"), "#abc");
    assert_eq!(threshold_color("rgba(1, 2, 3, 0.5)"), "rgba(1, 2, 3, 0.5)");
    assert_eq!(threshold_color("red;background:url(x)"), "var(--fg)");
    assert_eq!(threshold_color("#zzz"), "var(--fg)");
}

#[test]
fn odd_inputs_draw_without_panicking() {
    let odd = [
        vec![],
        vec![f64::NAN, f64::NAN],
        vec![f64::INFINITY, 1.0, f64::NEG_INFINITY],
        vec![1e300, -1e300],
        vec![-5.0],
        vec![0.0, 0.0, 0.0],
        vec![1e-300, 2e-300],
    ];
    let frames = [
        frame(),
        ChartFrame {
            width: 0,
            height: 0,
            start_ms: T0,
            end_ms: T0,
        },
        ChartFrame {
            width: 3,
            height: 2,
            start_ms: T0 + 1000,
            end_ms: T0,
        },
    ];
    for values in &odd {
        let mut s = series("a", values);
        s.labels = Labels::from_pairs([("__name__", "m"), ("le", "+Inf")]);
        for f in frames {
            for kind in [
                ChartKind::TimeSeries,
                ChartKind::StackedArea,
                ChartKind::Stat,
                ChartKind::Gauge,
                ChartKind::BarGauge,
                ChartKind::Heatmap,
            ] {
                let opts = ChartOptions {
                    min: Some(10.0),
                    max: Some(-10.0),
                    ..Default::default()
                };
                for o in [&ChartOptions::default(), &opts] {
                    let svg = render(kind, &[s.clone(), s.clone()], f, o);
                    assert!(
                        svg.starts_with("<svg") && svg.ends_with("</svg>"),
                        "{kind:?} {values:?}"
                    );
                    assert!(
                        !svg.contains("NaN\"") && !svg.contains("inf\""),
                        "{kind:?} {values:?}: {svg}"
                    );
                }
            }
        }
        let _ = legend(std::slice::from_ref(&s), &ChartOptions::default());
        let _ = table(&[s], &ChartOptions::default());
    }
}
