//! Serves the UI over temporary stores with made-up data, plus `/gallery` with every chart
//! kind, on a free loopback port for `seconds` (default 300), to look at the charts and the
//! Explore page in a browser:
//!
//! ```text
//! cargo run -p didban-ui --example chart_gallery -- 120
//! ```
//!
//! `/script-check` exercises the script in a real browser (tooltip, legend toggle,
//! auto-refresh, drag-to-zoom) and writes `PASS`/`FAIL` lines into the page:
//!
//! ```text
//! chromium --headless --virtual-time-budget=8000 --dump-dom http://127.0.0.1:PORT/script-check
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use didban_store::logs::{LogOptions, LogStore};
use didban_store::promql::{Engine, EngineOptions};
use didban_store::traces::{TraceOptions, TraceStore};
use didban_store::{Db, DbOptions, Labels, Sample, SeriesSamples};
use didban_ui::chart::{self, ChartFrame, ChartKind, ChartOptions, Series, Threshold};
use didban_ui::shell::{render_page, PageMeta, Section};
use didban_ui::UiContext;
use leptos::prelude::*;

use didban_base::now_ms;

fn wave(i: i64, phase: f64, scale: f64) -> f64 {
    ((i as f64 / 20.0 + phase).sin() + 1.2) * scale
}

async fn gallery() -> Html<String> {
    let end = now_ms();
    let start = end - 3_600_000;
    let frame = ChartFrame {
        width: 560,
        height: 220,
        start_ms: start,
        end_ms: end,
    };
    let series = |name: &str, phase: f64, scale: f64| {
        let points = (0..240)
            .map(|i| {
                let v = if (100..110).contains(&i) && phase == 0.0 {
                    f64::NAN
                } else {
                    wave(i, phase, scale)
                };
                (start + i * 15_000, v)
            })
            .collect();
        Series::new(
            Labels::from_pairs([("__name__", "demo"), ("instance", name)]),
            points,
        )
    };
    let s = vec![
        series("a", 0.0, 1e6),
        series("b", 1.0, 2e6),
        series("c", 2.0, 5e5),
    ];
    let thresholds = vec![
        Threshold {
            value: f64::NEG_INFINITY,
            color: "green".into(),
        },
        Threshold {
            value: 60.0,
            color: "orange".into(),
        },
        Threshold {
            value: 85.0,
            color: "red".into(),
        },
    ];
    let bytes = ChartOptions {
        unit: "bytes".into(),
        chart_id: Some("g1".into()),
        ..Default::default()
    };
    let pct = ChartOptions {
        unit: "percent".into(),
        thresholds: thresholds.clone(),
        threshold_bands: true,
        ..Default::default()
    };
    let pct_series: Vec<Series> = (0..3)
        .map(|k| {
            let mut x = series(["cpu0", "cpu1", "cpu2"][k], k as f64, 30.0);
            for p in &mut x.points {
                p.1 = p.1.min(100.0);
            }
            x
        })
        .collect();
    let buckets: Vec<Series> = ["0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
        .iter()
        .enumerate()
        .map(|(k, le)| {
            let points = (0..240)
                .map(|i| {
                    (
                        start + i * 15_000,
                        (k as f64 + 1.0) * 10.0 + wave(i, k as f64, 5.0) * k as f64,
                    )
                })
                .collect();
            Series::new(
                Labels::from_pairs([("__name__", "lat_bucket"), ("le", *le)]),
                points,
            )
        })
        .collect();
    let mut html = String::new();
    let mut add = |title: &str, body: String| {
        html.push_str(&format!(
            "<section class=\"demo\"><h2>{}</h2>{body}</section>",
            chart::escape(title)
        ));
    };
    add(
        "Time series (bytes, gap in a)",
        format!(
            "<div>{}{}</div>",
            chart::render(ChartKind::TimeSeries, &s, frame, &bytes),
            chart::legend(&s, &bytes)
        ),
    );
    add(
        "Stacked area",
        chart::render(
            ChartKind::StackedArea,
            &s,
            frame,
            &ChartOptions {
                unit: "reqps".into(),
                ..Default::default()
            },
        ),
    );
    add(
        "Thresholds (percent, bands)",
        chart::render(ChartKind::TimeSeries, &pct_series, frame, &pct),
    );
    add("Stat", chart::render(ChartKind::Stat, &pct_series, frame, &pct));
    add("Gauge", chart::render(ChartKind::Gauge, &pct_series, frame, &pct));
    add(
        "Bar gauge",
        chart::render(ChartKind::BarGauge, &pct_series, frame, &pct),
    );
    add(
        "Heatmap",
        chart::render(
            ChartKind::Heatmap,
            &buckets,
            frame,
            &ChartOptions {
                unit: "s".into(),
                ..Default::default()
            },
        ),
    );
    add("Table", chart::table(&s, &bytes));
    let page = render_page(PageMeta::new("Chart gallery", Section::None), move || {
        view! { <h1>"Chart gallery"</h1><div class="gallery" inner_html=html></div> }
    });
    Html(page.0.replace(
        "</head>",
        "<style>.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px}</style></head>",
    ))
}

/// A chart, its legend and a refreshing element, plus a script that drives them.
async fn script_check() -> Html<String> {
    let end = now_ms();
    let start = end - 600_000;
    let frame = ChartFrame {
        width: 600,
        height: 200,
        start_ms: start,
        end_ms: end,
    };
    let s: Vec<Series> = ["a", "b"]
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let points = (0..=60)
                .map(|i| (start + i * 10_000, (k as f64 + 1.0) * 1024.0 * 1024.0))
                .collect();
            Series::new(Labels::from_pairs([("__name__", "m"), ("name", *name)]), points)
        })
        .collect();
    let opts = ChartOptions {
        unit: "bytes".into(),
        chart_id: Some("c1".into()),
        ..Default::default()
    };
    let charts = format!(
        r#"<div>{}{}</div><div id="r" data-refresh-url="/script-check/fragment" data-refresh-seconds="1">old</div><form><textarea id="q" data-complete-metrics="m" data-complete-labels="l"></textarea><datalist id="m"><option value="http_requests_total"></option><option value="http_request_duration_seconds"></option></datalist><datalist id="l"><option value="job"></option><option value="instance"></option></datalist></form><pre id="result"></pre>"#,
        chart::render(ChartKind::TimeSeries, &s, frame, &opts),
        chart::legend(&s, &opts)
    );
    let page = render_page(PageMeta::new("Script check", Section::None), move || {
        view! { <div inner_html=charts></div> }
    });
    Html(page.0.replace(
        "</body>",
        concat!("<script>", include_str!("script_check.js"), "</script></body>"),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir()?;
    let db = Db::open(DbOptions::new(dir.path()))?;
    let end = now_ms();
    let start = end - 3_600_000;
    let mut batch = Vec::new();
    for (job, scale) in [("api", 5.0), ("worker", 2.0), ("db", 1.0)] {
        let mut total = 0.0;
        let samples = (0..240)
            .map(|i| {
                total += wave(i, scale, scale);
                Sample::new(start + i * 15_000, total)
            })
            .collect();
        batch.push(SeriesSamples {
            labels: Labels::from_pairs([("__name__", "http_requests_total"), ("job", job)]),
            samples,
            histograms: Vec::new(),
        });
    }
    db.append(batch).await?;
    let db = Arc::new(db);
    let logs = Arc::new(LogStore::open(LogOptions::new(dir.path()))?);
    let traces = Arc::new(TraceStore::open(TraceOptions::new(dir.path()))?);
    let ctx = UiContext {
        reader: db.clone(),
        figures: std::sync::Arc::new(didban_ui::signal_reads::LocalFigures {
            db: db.clone(),
            traces: traces.clone(),
            logs: logs.clone(),
        }),
        db,
        engine: Arc::new(Engine::new(EngineOptions::default())),
        query_limiter: Arc::new(didban_store::promql::QueryLimiter::new(4, 64)),
        query_timeout: std::time::Duration::from_secs(120),
        log_reads: logs.clone(),
        logs,
        trace_reads: traces.clone(),
        traces,
        exemplars: Arc::new(didban_store::ExemplarStore::open(
            didban_store::ExemplarOptions::new(dir.path()),
        )?),
        alerting: None,
        data_dir: dir.path().to_path_buf(),
        dashboard_dirs: Vec::new(),
    };
    let app = didban_ui::router(ctx).merge(
        Router::new()
            .route("/gallery", get(gallery))
            .route("/script-check", get(script_check))
            .route("/script-check/fragment", get(|| async { "new <b>fragment</b>" })),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("http://{}/gallery", listener.local_addr()?);
    let serve = axum::serve(listener, app);
    let _ = tokio::time::timeout(Duration::from_secs(seconds), serve).await;
    Ok(())
}
