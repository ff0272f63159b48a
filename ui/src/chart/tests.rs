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

fn with_label(name: &str, value: &str, values: &[f64]) -> Series {
    let labels = Labels::from_pairs([("__name__", "m"), (name, value)]);
    let points = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (T0 + i as i64 * 60_000, v))
        .collect();
    let mut s = Series::new(labels, points);
    s.name = value.to_string();
    s
}

fn names(series: &[Series]) -> Vec<&str> {
    series.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn legend_sorts_largest_first_by_default_and_as_asked() {
    // CPU by mode: the busy modes first, whatever order the query returned.
    let mut cpu = vec![
        with_label("mode", "iowait", &[0.1, 0.1]),
        with_label("mode", "irq", &[0.0, 0.0]),
        with_label("mode", "user", &[3.0, 1.0]),
        with_label("mode", "gone", &[f64::NAN, f64::NAN]),
        with_label("mode", "system", &[1.0, 2.8]),
    ];
    // means: user 2.0, system 1.9, iowait 0.1, irq 0
    sort_series(&mut cpu, LegendSort::default());
    assert_eq!(names(&cpu), ["user", "system", "iowait", "irq", "gone"]);
    let by_last = LegendSort {
        sort: SortOrder::Desc,
        by: SortBy::Last,
    };
    sort_series(&mut cpu, by_last);
    assert_eq!(names(&cpu), ["system", "user", "iowait", "irq", "gone"]);
    let by_max = LegendSort {
        sort: SortOrder::Desc,
        by: SortBy::Max,
    };
    sort_series(&mut cpu, by_max);
    assert_eq!(names(&cpu), ["user", "system", "iowait", "irq", "gone"]);
    let asc = LegendSort {
        sort: SortOrder::Asc,
        by: SortBy::Mean,
    };
    sort_series(&mut cpu, asc);
    assert_eq!(
        names(&cpu),
        ["irq", "iowait", "system", "user", "gone"],
        "NaN last either way"
    );
    let by_name = LegendSort {
        sort: SortOrder::Asc,
        by: SortBy::Name,
    };
    sort_series(&mut cpu, by_name);
    assert_eq!(names(&cpu), ["gone", "iowait", "irq", "system", "user"]);
    let none = LegendSort {
        sort: SortOrder::None,
        by: SortBy::Mean,
    };
    sort_series(&mut cpu, none);
    assert_eq!(names(&cpu), ["gone", "iowait", "irq", "system", "user"]);
    // Ties keep their order (a refresh does not shuffle them).
    let mut ties = vec![with_label("k", "b", &[1.0]), with_label("k", "a", &[1.0])];
    sort_series(&mut ties, LegendSort::default());
    assert_eq!(names(&ties), ["b", "a"]);
}

#[test]
fn sorted_series_are_drawn_and_listed_in_the_same_order() {
    let mut s = vec![
        with_label("mode", "small", &[1.0, 1.0]),
        with_label("mode", "big", &[9.0, 9.0]),
    ];
    sort_series(&mut s, LegendSort::default());
    let svg = render(ChartKind::TimeSeries, &s, frame(), &ChartOptions::default());
    let html = legend(&s, &ChartOptions::default());
    // series 0 is the big one in the drawing, the legend and the colour.
    assert!(svg.find("<title>big</title>").unwrap() < svg.find("<title>small</title>").unwrap());
    assert!(svg.contains(r#"class="series s0" data-series="0""#));
    assert!(html.find("big").unwrap() < html.find("small").unwrap());
    assert!(
        html.contains(r#"<span class="swatch s0" aria-hidden="true"></span>big"#),
        "{html}"
    );
}

#[test]
fn status_colours_follow_the_meaning() {
    for (text, class) in [
        ("200", Some("st-2xx")),
        ("204", Some("st-2xx")),
        ("2xx", Some("st-2xx")),
        ("2XX", Some("st-2xx")),
        ("301", Some("st-3xx")),
        ("404", Some("st-4xx")),
        ("4xx", Some("st-4xx")),
        ("503", Some("st-5xx")),
        ("5xx", Some("st-5xx")),
        ("100", None),
        ("OK", None),
        ("20", None),
        ("2000", None),
        ("5x1", None),
    ] {
        assert_eq!(status_class_of(text), class, "{text}");
    }
    for label in STATUS_LABELS {
        let s = with_label(label, "500", &[1.0]);
        assert_eq!(color_class(&s, 3, &ChartOptions::default()), "st-5xx", "{label}");
    }
    // Other labels keep the palette by position.
    assert_eq!(
        color_class(&with_label("method", "500", &[1.0]), 3, &ChartOptions::default()),
        "s3"
    );
    assert_eq!(
        color_class(&with_label("code", "abc", &[1.0]), 12, &ChartOptions::default()),
        "s2"
    );
    // Lines, legend swatches and bars carry the class, so 2xx is green and 5xx red everywhere.
    let traffic = vec![
        with_label("code", "200", &[50.0]),
        with_label("code", "404", &[5.0]),
        with_label("code", "500", &[1.0]),
    ];
    let svg = render(ChartKind::TimeSeries, &traffic, frame(), &ChartOptions::default());
    assert!(svg.contains(r#"class="series st-2xx" data-series="0""#), "{svg}");
    assert!(svg.contains(r#"class="series st-4xx" data-series="1""#));
    assert!(svg.contains(r#"class="series st-5xx" data-series="2""#));
    let stacked = render(
        ChartKind::StackedArea,
        &traffic,
        frame(),
        &ChartOptions::default(),
    );
    assert!(stacked.contains(r#"class="area st-2xx""#));
    let html = legend(&traffic, &ChartOptions::default());
    assert!(html.contains(r#"swatch st-5xx"#));
    let bars = render(ChartKind::BarGauge, &traffic, frame(), &ChartOptions::default());
    assert!(bars.contains("st-4xx"), "{bars}");
    // The stylesheet maps the classes to the theme's green, blue, amber and red.
    let css = include_str!("../../assets/charts.css");
    for (class, var) in [
        ("st-2xx", "--th-green"),
        ("st-3xx", "--th-blue"),
        ("st-4xx", "--th-orange"),
        ("st-5xx", "--th-red"),
    ] {
        assert!(
            css.contains(&format!("svg.chart .{class} {{ stroke: var({var})"))
                && css.contains(&format!(".swatch.{class} {{ background: var({var})")),
            "{class}"
        );
    }
}

#[test]
fn panel_colours_override_status_and_palette() {
    let opts = ChartOptions {
        colors: vec![("500".into(), "purple".into()), ("user".into(), "nope".into())],
        ..ChartOptions::default()
    };
    assert_eq!(
        color_class(&with_label("code", "500", &[1.0]), 0, &opts),
        "c-purple"
    );
    assert_eq!(
        color_class(&with_label("code", "404", &[1.0]), 1, &opts),
        "st-4xx"
    );
    // An unknown colour name is ignored (validation refuses it in dashboards).
    assert_eq!(color_class(&with_label("mode", "user", &[1.0]), 2, &opts), "s2");
    let svg = render(
        ChartKind::TimeSeries,
        &[with_label("code", "500", &[1.0])],
        frame(),
        &opts,
    );
    assert!(svg.contains(r#"class="series c-purple""#), "{svg}");
    let css = include_str!("../../assets/charts.css");
    for c in SERIES_COLORS {
        assert!(
            css.contains(&format!("svg.chart .c-{c} {{ stroke: var(--th-{c})")),
            "{c}"
        );
        assert!(
            css.contains(&format!(".swatch.c-{c} {{ background: var(--th-{c})")),
            "{c}"
        );
    }
}
