//! Explore: a PromQL editor with a graph view (range query, time series with legend) and a
//! table view (instant query at the end of the range), errors that point at the failing
//! position, a query inspector, and metric/label name completion (server-side lists that
//! work without the script, completion inside the editor with it).
//!
//! `GET /explore?q=…&from=…&to=…&view=graph|table&step=…`; every field is optional.

mod locate;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::DateTime;
use didban_base::parse_duration;
use didban_store::model::METRIC_NAME_LABEL;
use didban_store::promql::{Lane, PromqlError, QueryStats, Value};
use leptos::prelude::*;
use serde::Deserialize;

use super::pagefmt::now_ms;
use crate::chart::{self, ChartFrame, ChartKind, ChartOptions, Series};
use crate::query::QueryError;
use crate::shell::{render_page, PageMeta, Section};
use crate::timerange::TimeRange;
use crate::UiContext;
use didban_auth::Viewer;

/// Width and height of the graph, in SVG units (CSS scales it to the page).
const GRAPH_WIDTH: u32 = 1100;
const GRAPH_HEIGHT: u32 = 320;
/// Series drawn at most; the inspector tells when more came back.
const MAX_GRAPH_SERIES: usize = 200;
/// Rows shown at most in the table view.
const MAX_TABLE_ROWS: usize = 2000;
/// Names offered for completion at most.
const MAX_NAMES: usize = 5000;
/// Prometheus' limit on points per series in a range query.
const MAX_POINTS: i64 = 11_000;
/// Relative ranges offered next to the time inputs.
const PRESETS: [(&str, &str); 9] = [
    ("now-5m", "5m"),
    ("now-15m", "15m"),
    ("now-30m", "30m"),
    ("now-1h", "1h"),
    ("now-3h", "3h"),
    ("now-6h", "6h"),
    ("now-12h", "12h"),
    ("now-24h", "24h"),
    ("now-7d", "7d"),
];

pub(super) fn routes() -> Router<UiContext> {
    Router::new().route("/explore", get(explore))
}

/// The page's URL state.
#[derive(Debug, Default, Deserialize)]
struct Params {
    #[serde(default)]
    q: String,
    from: Option<String>,
    to: Option<String>,
    view: Option<String>,
    step: Option<String>,
}

/// Graph or table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Graph,
    Table,
}

/// A parse error with where it is.
#[derive(Debug, Clone)]
struct Located {
    message: String,
    /// The failing line, its 1-based number, and the 0-based column (in characters).
    line: Option<(String, usize, usize)>,
}

/// What the query produced.
enum Outcome {
    /// Nothing asked yet.
    Empty,
    /// A bad parameter or evaluation error: the message.
    Failed(String),
    /// A parse error with its position.
    Parse(Located),
    /// Graph data.
    Graph { series: Vec<Series>, stats: QueryStats },
    /// Table data at `at_ms`.
    Table {
        series: Vec<Series>,
        stats: QueryStats,
        at_ms: i64,
    },
}

fn step_of(text: Option<&str>, range: &TimeRange) -> Result<i64, String> {
    let text = text.map(str::trim).unwrap_or("");
    let step = if text.is_empty() || text == "auto" {
        range.step_ms(GRAPH_WIDTH)
    } else if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() || secs <= 0.0 {
            return Err(format!("invalid step {text:?}: must be a positive duration"));
        }
        (secs * 1000.0).round() as i64
    } else {
        let d = parse_duration(text).map_err(|e| format!("invalid step {text:?}: {e}"))?;
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    };
    if step <= 0 {
        return Err(format!("invalid step {text:?}: must be a positive duration"));
    }
    if range.duration_ms() / step > MAX_POINTS {
        return Err(format!(
            "step {text:?} gives more than {MAX_POINTS} points per series over this range; choose a larger step"
        ));
    }
    Ok(step)
}

/// The line holding byte `pos` of `q`, its number and the column of `pos` in characters.
fn mark(q: &str, pos: usize) -> (String, usize, usize) {
    let start = q[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let end = q[pos..].find('\n').map(|i| pos + i).unwrap_or(q.len());
    let line_no = q[..pos].matches('\n').count() + 1;
    let col = q[start..pos].chars().count();
    // tabs would shift the caret: show them as one space
    (q[start..end].replace('\t', " "), line_no, col)
}

fn located(q: &str, message: String, position: Option<usize>) -> Located {
    let line = locate::locate(q, &message, position).map(|p| mark(q, p));
    Located { message, line }
}

fn failure(q: &str, e: QueryError) -> (StatusCode, Outcome) {
    match e {
        QueryError::Promql(PromqlError::Parse { message, position }) => (
            StatusCode::BAD_REQUEST,
            Outcome::Parse(located(q, message, position)),
        ),
        QueryError::Promql(
            e @ (PromqlError::BadData(_) | PromqlError::Execution(_) | PromqlError::TooDeep { .. }),
        ) => (StatusCode::UNPROCESSABLE_ENTITY, Outcome::Failed(e.to_string())),
        QueryError::Promql(e @ (PromqlError::Timeout | PromqlError::TooManySamples(_))) => {
            (StatusCode::SERVICE_UNAVAILABLE, Outcome::Failed(e.to_string()))
        }
        QueryError::Admit(e) => (StatusCode::SERVICE_UNAVAILABLE, Outcome::Failed(e.to_string())),
        other => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Outcome::Failed(other.to_string()),
        ),
    }
}

/// The instant query with its stats (the shared helper drops them).
async fn instant(ctx: &UiContext, q: &str, at_ms: i64) -> Result<(Vec<Series>, QueryStats), QueryError> {
    let expr = q.to_string();
    let result = ctx
        .bounded_query(Lane::Light, move |db, engine, ctl| {
            engine.instant_query_with(db, &expr, at_ms, ctl)
        })
        .await?;
    let mut series = Vec::new();
    match result.value {
        Value::Vector(v) => {
            for s in v {
                series.push(match s.h {
                    // the table shows a histogram's count and sum
                    Some(h) => Series::of_histograms(s.labels, vec![(s.t_ms, h)]),
                    None => Series::new(s.labels, vec![(s.t_ms, s.v)]),
                });
            }
        }
        Value::Scalar { t_ms, v } => {
            let mut s = Series::new(Default::default(), vec![(t_ms, v)]);
            s.name = "scalar".into();
            series.push(s);
        }
        Value::Matrix(m) => {
            for s in m {
                let points = s.samples.iter().map(|p| (p.timestamp_ms, p.value)).collect();
                let mut out = Series::new(s.labels, points);
                out.histograms = s.histograms.into_iter().map(|h| (h.timestamp_ms, h.h)).collect();
                series.push(out);
            }
        }
        Value::String { .. } => {}
    }
    Ok((series, result.stats))
}

/// How far back from the range's end the completion lists look. Listing names reads the
/// samples of every series in the window (the store has no names-only path), so the window
/// stays short whatever the range.
const NAMES_WINDOW_MS: i64 = 15 * 60 * 1000;

/// Metric names and label names seen in the last [`NAMES_WINDOW_MS`] of the range, for
/// completion.
async fn names(ctx: &UiContext, range: &TimeRange) -> (Vec<String>, Vec<String>) {
    let db = ctx.reader.clone();
    let end = range.end_ms;
    let start = range.start_ms.max(end - NAMES_WINDOW_MS);
    // One pass over the window's series yields both lists (label_values and label_names
    // would each read every series' samples again).
    let found = tokio::task::spawn_blocking(move || db.series(&[], start, end).unwrap_or_default()).await;
    let mut metrics: Vec<String> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for series in found.unwrap_or_default() {
        for l in series.iter() {
            if l.name == METRIC_NAME_LABEL {
                metrics.push(l.value.to_string());
            } else {
                labels.push(l.name.to_string());
            }
        }
    }
    for list in [&mut metrics, &mut labels] {
        list.sort();
        list.dedup();
        list.truncate(MAX_NAMES);
    }
    (metrics, labels)
}

/// `/explore` with these parameters (used for the preset and view links).
fn link(q: &str, from: &str, to: &str, view: View, step: &str) -> String {
    let view = if view == View::Table { "table" } else { "graph" };
    let mut pairs = vec![("q", q), ("from", from), ("to", to), ("view", view)];
    if !step.is_empty() {
        pairs.push(("step", step));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("/explore?{query}")
}

fn iso(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

async fn explore(State(ctx): State<UiContext>, viewer: Viewer, RawQuery(raw): RawQuery) -> Response {
    let params: Params = match serde_urlencoded::from_str(raw.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => {
            return super::error::error_page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                format!("invalid query string: {e}"),
            )
        }
    };
    let q = params.q.trim().to_string();
    let step_text = params.step.clone().unwrap_or_default();
    let mut status = StatusCode::OK;
    let view = match params.view.as_deref().unwrap_or("graph") {
        "graph" | "" => Ok(View::Graph),
        "table" => Ok(View::Table),
        other => Err(format!("invalid view {other:?}: expected graph or table")),
    };
    let now = now_ms();
    let range = TimeRange::parse(params.from.as_deref(), params.to.as_deref(), now);
    let (from_text, to_text) = match &range {
        Ok(r) => (r.from.clone(), r.to.clone()),
        Err(_) => (
            params.from.clone().unwrap_or_else(|| "now-1h".into()),
            params.to.clone().unwrap_or_else(|| "now".into()),
        ),
    };
    let view_value = view.as_ref().copied().unwrap_or(View::Graph);
    let mut step_ms = None;
    let outcome = match (&range, &view) {
        (Err(e), _) => {
            status = StatusCode::BAD_REQUEST;
            Outcome::Failed(e.to_string())
        }
        (_, Err(e)) => {
            status = StatusCode::BAD_REQUEST;
            Outcome::Failed(e.clone())
        }
        (Ok(_), Ok(_)) if q.is_empty() => Outcome::Empty,
        (Ok(r), Ok(View::Table)) => match instant(&ctx, &q, r.end_ms).await {
            Ok((series, stats)) => Outcome::Table {
                series,
                stats,
                at_ms: r.end_ms,
            },
            Err(e) => {
                let (s, o) = failure(&q, e);
                status = s;
                o
            }
        },
        (Ok(r), Ok(View::Graph)) => match step_of(params.step.as_deref(), r) {
            Err(e) => {
                status = StatusCode::BAD_REQUEST;
                Outcome::Failed(e)
            }
            Ok(step) => {
                step_ms = Some(step);
                match ctx.range_query(&q, r.start_ms, r.end_ms, step).await {
                    Ok(res) => Outcome::Graph {
                        series: res.series,
                        stats: res.stats,
                    },
                    Err(e) => {
                        let (s, o) = failure(&q, e);
                        status = s;
                        o
                    }
                }
            }
        },
    };
    let fallback = TimeRange::parse(None, None, now).ok();
    let names_range = range.as_ref().ok().or(fallback.as_ref());
    let (metrics, labels) = match names_range {
        Some(r) => names(&ctx, r).await,
        None => (Vec::new(), Vec::new()),
    };
    let (start_ms, end_ms) = names_range
        .map(|r| (r.start_ms, r.end_ms))
        .unwrap_or((now - 3_600_000, now));

    let range_text = range
        .as_ref()
        .ok()
        .map(|r| format!("{} – {}", iso(r.start_ms), iso(r.end_ms)));
    let results = results_view(&q, outcome, start_ms, end_ms, step_ms);
    let preset_links = PRESETS
        .iter()
        .map(|(from, label)| {
            let href = link(&q, from, "now", view_value, &step_text);
            let current = if *from == from_text && to_text == "now" {
                Some("true")
            } else {
                None
            };
            view! { <li><a href=href aria-current=current>{format!("Last {label}")}</a></li> }
        })
        .collect_view();
    let graph_href = link(&q, &from_text, &to_text, View::Graph, &step_text);
    let table_href = link(&q, &from_text, &to_text, View::Table, &step_text);
    let metric_options = metrics
        .iter()
        .map(|m| view! { <option value=m.clone()></option> })
        .collect_view();
    let label_options = labels
        .iter()
        .map(|m| view! { <option value=m.clone()></option> })
        .collect_view();
    let metric_count = metrics.len();
    let is_graph = view_value == View::Graph;
    let preset_options = PRESETS
        .iter()
        .map(|(v, _)| view! { <option value=*v></option> })
        .collect_view();
    let body = move || {
        view! {
            <h1>"Explore"</h1>
            <form class="explore-form" method="get" action="/explore">
                <label for="explore-q">"PromQL query"</label>
                <textarea id="explore-q" name="q" rows="3" spellcheck="false" autocomplete="off"
                    autocapitalize="off" data-complete-metrics="explore-metrics"
                    data-complete-labels="explore-labels"
                    aria-describedby="explore-q-help" inner_html=chart::escape(&q)></textarea>
                <p id="explore-q-help" class="hint">
                    "Ctrl+Enter runs the query. Metric and label names complete as you type (with JavaScript); the list of metrics below works without it."
                </p>
                <div class="explore-controls">
                    <label>"From "<input type="text" name="from" value=from_text.clone() list="explore-ranges" size="16"/></label>
                    <label>"To "<input type="text" name="to" value=to_text.clone() list="explore-ranges" size="16"/></label>
                    <label>"Step "<input type="text" name="step" value=step_text.clone() placeholder="auto" size="8"/></label>
                    <fieldset class="explore-view">
                        <legend>"View"</legend>
                        <label><input type="radio" name="view" value="graph" checked=is_graph/>" Graph"</label>
                        <label><input type="radio" name="view" value="table" checked=!is_graph/>" Table"</label>
                    </fieldset>
                    <button type="submit">"Run query"</button>
                </div>
                <p class="hint explore-range">{range_text}</p>
                <datalist id="explore-ranges">{preset_options}</datalist>
                <datalist id="explore-metrics">{metric_options}</datalist>
                <datalist id="explore-labels">{label_options}</datalist>
            </form>
            <nav class="explore-presets" aria-label="Time range">
                <ul>{preset_links}</ul>
            </nav>
            <nav class="explore-views" aria-label="View">
                <a href=graph_href aria-current=is_graph.then_some("page")>"Graph"</a>
                " · "
                <a href=table_href aria-current=(!is_graph).then_some("page")>"Table"</a>
            </nav>
            <div class="explore-results" inner_html=results></div>
            <MetricList metrics=metrics from=from_text.clone() to=to_text.clone() count=metric_count/>
        }
    };
    let Html(html) = render_page(PageMeta::for_viewer("Explore", Section::Explore, &viewer), body);
    (status, Html(html)).into_response()
}

/// The metric names as links that start a query (works without the script).
#[component]
fn MetricList(metrics: Vec<String>, from: String, to: String, count: usize) -> impl IntoView {
    let items = metrics
        .into_iter()
        .map(|m| {
            let href = link(&m, &from, &to, View::Graph, "");
            view! { <li><a href=href>{m}</a></li> }
        })
        .collect_view();
    view! {
        <details class="explore-metrics">
            <summary>{format!("Metrics seen in the last 15 minutes of the range ({count})")}</summary>
            <ul>{items}</ul>
        </details>
    }
}

/// The results area as an HTML fragment (chart, legend and table are strings already).
fn results_view(q: &str, outcome: Outcome, start_ms: i64, end_ms: i64, step_ms: Option<i64>) -> String {
    use crate::chart::escape;
    match outcome {
        Outcome::Empty => {
            r#"<p class="hint">Type a PromQL expression, e.g. <code>rate(http_requests_total[5m])</code>, and run it.</p>"#.into()
        }
        Outcome::Failed(message) => format!(
            r#"<div class="query-error" role="alert"><p><strong>Error:</strong> {}</p></div>"#,
            escape(&message)
        ),
        Outcome::Parse(loc) => {
            let mut html = format!(
                r#"<div class="query-error" role="alert"><p><strong>Parse error:</strong> {}</p>"#,
                escape(&loc.message)
            );
            if let Some((line, line_no, col)) = loc.line {
                html.push_str(&format!(
                    r#"<p class="error-position">at line {line_no}, column {}</p><pre class="query-marked" aria-hidden="true"><code>{}
{}<span class="caret">^</span></code></pre>"#,
                    col + 1,
                    escape(&line),
                    " ".repeat(col)
                ));
            } else {
                html.push_str(&format!(
                    r#"<pre class="query-marked"><code>{}</code></pre>"#,
                    escape(q)
                ));
            }
            html.push_str("</div>");
            html
        }
        Outcome::Graph { series, stats } => {
            let total = series.len();
            let shown = &series[..total.min(MAX_GRAPH_SERIES)];
            let frame = ChartFrame {
                width: GRAPH_WIDTH,
                height: GRAPH_HEIGHT,
                start_ms,
                end_ms,
            };
            let opts = ChartOptions {
                chart_id: Some("explore-chart".into()),
                label: format!("Graph of {q}"),
                ..Default::default()
            };
            let mut html = String::new();
            if total > shown.len() {
                html.push_str(&format!(
                    r#"<p class="notice">Showing the first {} of {total} series.</p>"#,
                    shown.len()
                ));
            }
            html.push_str(r#"<div class="chart-box">"#);
            // native histograms alone are drawn as a heatmap (lines have no value to show)
            let kind = if shown.iter().all(|s| s.points.is_empty()) && shown.iter().any(|s| !s.histograms.is_empty()) {
                ChartKind::Heatmap
            } else {
                ChartKind::TimeSeries
            };
            html.push_str(&chart::render(kind, shown, frame, &opts));
            html.push_str(&chart::legend(shown, &opts));
            html.push_str("</div>");
            html.push_str(&inspector(&stats, total, start_ms, end_ms, step_ms, None));
            html
        }
        Outcome::Table { series, stats, at_ms } => {
            let total = series.len();
            let shown = &series[..total.min(MAX_TABLE_ROWS)];
            let mut html = format!(r#"<p class="hint">Evaluated at {}.</p>"#, escape(&iso(at_ms)));
            if total > shown.len() {
                html.push_str(&format!(
                    r#"<p class="notice">Showing the first {} of {total} rows.</p>"#,
                    shown.len()
                ));
            }
            html.push_str(&chart::table(shown, &ChartOptions::default()));
            html.push_str(&inspector(&stats, total, start_ms, end_ms, None, Some(at_ms)));
            html
        }
    }
}

/// The query inspector: what the query cost and how it was asked.
fn inspector(
    stats: &QueryStats,
    series: usize,
    start_ms: i64,
    end_ms: i64,
    step_ms: Option<i64>,
    at_ms: Option<i64>,
) -> String {
    use crate::chart::escape;
    let mut rows = vec![
        ("Result series", series.to_string()),
        ("Samples loaded", stats.samples_loaded.to_string()),
        ("Series loaded", stats.series_loaded.to_string()),
        (
            "Evaluation time",
            format!("{:.2} ms", stats.duration.as_secs_f64() * 1000.0),
        ),
    ];
    if let Some(step) = step_ms {
        rows.push((
            "Step",
            format!("{} ({step} ms)", crate::units::format(step as f64, "ms", None)),
        ));
        rows.push((
            "Points per series",
            ((end_ms - start_ms) / step.max(1) + 1).to_string(),
        ));
        rows.push(("Range", format!("{} – {}", iso(start_ms), iso(end_ms))));
    }
    if let Some(at) = at_ms {
        rows.push(("Evaluated at", iso(at)));
    }
    let mut html = String::from(r#"<details class="inspector" open><summary>Query inspector</summary><dl>"#);
    for (k, v) in rows {
        html.push_str(&format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v)));
    }
    html.push_str("</dl></details>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_finds_line_and_column() {
        assert_eq!(mark("up +", 4), ("up +".to_string(), 1, 4));
        assert_eq!(mark("sum(\n  é bar)", 10), ("  é bar)".to_string(), 2, 4));
    }

    #[test]
    fn steps() {
        let r = TimeRange::parse(Some("now-1h"), None, 1_700_000_000_000).unwrap();
        assert_eq!(step_of(None, &r), Ok(3000));
        assert_eq!(step_of(Some("15s"), &r), Ok(15_000));
        assert_eq!(step_of(Some("0.5"), &r), Ok(500));
        assert!(step_of(Some("0"), &r).is_err());
        assert!(step_of(Some("-1"), &r).is_err());
        assert!(step_of(Some("10ms"), &r).unwrap_err().contains("11000"));
        assert!(step_of(Some("soon"), &r).unwrap_err().contains("soon"));
    }
}
