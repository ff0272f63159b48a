//! One panel as HTML: its container (grid position, refresh contract), heading, and body —
//! a chart from range queries, a table from instant queries, log records, or text. Queries of
//! all panels run concurrently; a failing query shows its error inside its panel.
//!
//! The container carries `data-refresh-url` (this panel's fragment URL with the same query
//! string as the page) and `data-refresh-seconds` (0 when auto-refresh is off), which the
//! page script uses to swap in a fresh copy.
//!
//! Series of line and area panels are ordered before drawing (`legend:`, default largest
//! mean first); table HTML is built in `table`. Line and area panels with `exemplars: true`
//! get the exemplars of their queries' series as dots linking to the traces.

use std::fmt::Write as _;
use std::sync::Arc;

use didban_store::logs::LogQuery;

use super::state::Prepared;
use super::table::{self, query_letter, TableRow};
use crate::chart::{self, escape, ChartFrame, ChartKind, ChartOptions, Series, Threshold};
use crate::dashboard::vars::{legend, Scope};
use crate::dashboard::{Panel, PanelKind};
use crate::query::InstantRow;
use crate::UiContext;

/// Assumed width of the dashboard grid in CSS pixels (queries use one step per pixel).
const GRID_WIDTH_PX: u32 = 1560;
/// Height of one grid row in CSS pixels (as Grafana's).
const ROW_HEIGHT_PX: u32 = 30;
/// Most log records a logs panel shows.
const LOG_LIMIT: usize = 50;
/// Most rows a table panel shows.
const TABLE_LIMIT: usize = 500;

/// Renders every panel concurrently; the HTML of all of them in order.
pub(super) async fn render_all(ctx: &UiContext, p: Arc<Prepared>) -> String {
    let mut tasks = Vec::new();
    for i in 0..p.dashboard.panels.len() {
        let (ctx, p) = (ctx.clone(), p.clone());
        tasks.push(tokio::spawn(async move { render_one(&ctx, p, i).await }));
    }
    let mut out = String::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await {
            Ok(html) => out.push_str(&html),
            Err(e) => {
                let _ = write!(
                    out,
                    r#"<section class="panel"><p class="panel-error" role="alert">panel {i} failed: {}</p></section>"#,
                    escape(&e.to_string())
                );
            }
        }
    }
    out
}

/// The pixel size of a panel's drawing area.
fn frame_size(panel: &Panel) -> (u32, u32) {
    let width = (GRID_WIDTH_PX * panel.w / crate::dashboard::GRID_COLUMNS)
        .saturating_sub(24)
        .max(60);
    let height = (ROW_HEIGHT_PX * panel.h).saturating_sub(48).max(40);
    (width, height)
}

/// Renders panel `index` of the prepared dashboard.
pub(super) async fn render_one(ctx: &UiContext, p: Arc<Prepared>, index: usize) -> String {
    let Some(panel) = p.dashboard.panels.get(index) else {
        return String::new();
    };
    let (width, height) = frame_size(panel);
    // One step per pixel, but not finer than the scrape interval (Grafana's default minimum
    // interval): finer steps only repeat the same samples and cost evaluation time.
    let step = p
        .range
        .step_ms(width)
        .max(crate::dashboard::vars::SCRAPE_INTERVAL_MS);
    let mut scope: Scope = p.scope.clone();
    scope.set_builtins(p.range.duration_ms(), step);
    let body = match panel.kind {
        PanelKind::Text => text_body(&panel.text),
        PanelKind::Logs => logs_body(ctx, &p, &scope.interpolate(&panel.query)).await,
        PanelKind::Table => table_body(ctx, &p, panel, &scope).await,
        _ => chart_body(ctx, &p, panel, &scope, (width, height), step, index).await,
    };
    let mut html = String::with_capacity(body.len() + 512);
    let _ = write!(
        html,
        r#"<section class="panel panel-{kind}" id="panel-{index}" style="grid-column: {x} / span {w}; grid-row: {y} / span {h};" data-refresh-url="{url}" data-refresh-seconds="{secs}" aria-labelledby="panel-{index}-title"><header class="panel-head"><h2 id="panel-{index}-title"{tip}>{title}</h2></header><div class="panel-body">{body}</div></section>"#,
        kind = panel.kind.as_str(),
        x = panel.x + 1,
        w = panel.w,
        y = panel.y + 1,
        h = panel.h,
        url = escape(&format!(
            "/dashboards/{}/panels/{index}?{}",
            p.dashboard.id, p.query
        )),
        secs = p.refresh_seconds,
        tip = if panel.description.is_empty() {
            String::new()
        } else {
            format!(r#" title="{}""#, escape(&panel.description))
        },
        title = escape(&scope.interpolate(&panel.title)),
    );
    html
}

/// Text as escaped paragraphs (blank lines) with line breaks.
fn text_body(text: &str) -> String {
    let mut out = String::new();
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let lines: Vec<String> = para.lines().map(escape).collect();
        let _ = write!(out, "<p>{}</p>", lines.join("<br>"));
    }
    out
}

fn options(panel: &Panel, index: usize) -> ChartOptions {
    ChartOptions {
        chart_id: Some(format!("panel-{index}-chart")),
        label: panel.title.clone(),
        unit: panel.unit.clone(),
        decimals: panel.decimals,
        min: panel.min,
        max: panel.max,
        thresholds: panel
            .thresholds
            .iter()
            .map(|t| Threshold {
                value: t.value.unwrap_or(f64::NEG_INFINITY),
                color: t.color.clone(),
            })
            .collect(),
        colors: panel
            .colors
            .iter()
            .map(|(name, color)| (name.clone(), color.clone()))
            .collect(),
        ..ChartOptions::default()
    }
}

fn chart_kind(kind: PanelKind) -> ChartKind {
    match kind {
        PanelKind::Stacked => ChartKind::StackedArea,
        PanelKind::Stat => ChartKind::Stat,
        PanelKind::Gauge => ChartKind::Gauge,
        PanelKind::Bargauge => ChartKind::BarGauge,
        PanelKind::Heatmap => ChartKind::Heatmap,
        _ => ChartKind::TimeSeries,
    }
}

fn query_error(i: usize, e: &dyn std::fmt::Display) -> String {
    format!(
        r#"<p class="panel-error" role="alert">Query {}: {}</p>"#,
        query_letter(i),
        escape(&e.to_string())
    )
}

/// The results of `n` tasks, each returning its index, in index order. A task that died
/// (panicked) is an error at its place: it could not say its index, so it takes the first
/// place with no result.
async fn in_order<T: 'static>(
    mut tasks: tokio::task::JoinSet<(usize, T)>,
    n: usize,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut slots: Vec<Option<Result<T, tokio::task::JoinError>>> = (0..n).map(|_| None).collect();
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, r)) => {
                if let Some(slot) = slots.get_mut(i) {
                    *slot = Some(Ok(r));
                }
            }
            Err(e) => failed.push(e),
        }
    }
    let mut out = Vec::with_capacity(n);
    for slot in slots {
        match slot {
            Some(r) => out.push(r),
            None => match failed.pop() {
                Some(e) => out.push(Err(e)),
                None => break,
            },
        }
    }
    out
}

async fn chart_body(
    ctx: &UiContext,
    p: &Prepared,
    panel: &Panel,
    scope: &Scope,
    (width, height): (u32, u32),
    step: i64,
    index: usize,
) -> String {
    let (start, end) = (p.range.start_ms, p.range.end_ms);
    // A JoinSet aborts its tasks when dropped: if the page's request goes away, the queries'
    // futures drop and cancel their evaluations.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, q) in panel.queries.iter().enumerate() {
        let expr = scope.interpolate(&q.expr);
        let ctx = ctx.clone();
        tasks.spawn(async move { (i, ctx.range_query(&expr, start, end, step).await) });
    }
    let results = in_order(tasks, panel.queries.len()).await;
    let mut errors = String::new();
    let mut series: Vec<Series> = Vec::new();
    for (i, (t, q)) in results.into_iter().zip(&panel.queries).enumerate() {
        match t {
            Ok(Ok(result)) => {
                for mut s in result.series {
                    if !q.legend.is_empty() {
                        s.name = legend(&scope.interpolate(&q.legend), &s.labels);
                    }
                    series.push(s);
                }
            }
            Ok(Err(e)) => errors.push_str(&query_error(i, &e)),
            Err(e) => errors.push_str(&query_error(i, &e)),
        }
    }
    if panel.queries.is_empty() {
        return r#"<p class="panel-empty">No queries.</p>"#.to_string();
    }
    if series.is_empty() {
        return format!(r#"{errors}<p class="panel-empty">No data</p>"#);
    }
    let frame = ChartFrame {
        width,
        height,
        start_ms: start,
        end_ms: end,
    };
    let kind = chart_kind(panel.kind);
    // Lines and areas: largest first (or as the panel says), so the legend, the draw order
    // and the colours agree and what matters is at the top of the legend. Other kinds keep
    // the query order unless the panel has a `legend` order.
    if matches!(panel.kind, PanelKind::Timeseries | PanelKind::Stacked) {
        chart::sort_series(&mut series, panel.legend.unwrap_or_default());
    } else if let Some(how) = panel.legend {
        chart::sort_series(&mut series, how);
    }
    let mut opts = options(panel, index);
    if panel.exemplars && matches!(kind, ChartKind::TimeSeries | ChartKind::StackedArea) {
        let exprs: Vec<String> = panel.queries.iter().map(|q| scope.interpolate(&q.expr)).collect();
        match ctx.exemplar_dots(&exprs, start, end).await {
            Ok(dots) => opts.exemplars = dots,
            Err(e) => {
                let _ = write!(
                    errors,
                    r#"<p class="panel-error" role="alert">Exemplars: {}</p>"#,
                    escape(&e.to_string())
                );
            }
        }
    }
    let svg = chart::render(kind, &series, frame, &opts);
    // Lines and areas get a legend with min/max/avg/last that toggles series; a stat, gauge,
    // bar gauge or heatmap names its values itself.
    let legend = match kind {
        ChartKind::TimeSeries | ChartKind::StackedArea if series.len() > 1 || !series[0].name.is_empty() => {
            chart::legend(&series, &opts)
        }
        _ => String::new(),
    };
    format!("{errors}{svg}{legend}")
}

async fn table_body(ctx: &UiContext, p: &Prepared, panel: &Panel, scope: &Scope) -> String {
    let t = p.range.end_ms;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, q) in panel.queries.iter().enumerate() {
        let expr = scope.interpolate(&q.expr);
        let ctx = ctx.clone();
        tasks.spawn(async move { (i, ctx.instant_query(&expr, t).await) });
    }
    let results = in_order(tasks, panel.queries.len()).await;
    let mut errors = String::new();
    let mut rows: Vec<(usize, InstantRow)> = Vec::new();
    for (i, task) in results.into_iter().enumerate() {
        match task {
            Ok(Ok(r)) => rows.extend(r.into_iter().map(|row| (i, row))),
            Ok(Err(e)) => errors.push_str(&query_error(i, &e)),
            Err(e) => errors.push_str(&query_error(i, &e)),
        }
    }
    if rows.is_empty() {
        return format!(r#"{errors}<p class="panel-empty">No data</p>"#);
    }
    rows.sort_by(|a, b| b.1.sort_key().total_cmp(&a.1.sort_key()));
    let truncated = rows.len() > TABLE_LIMIT;
    rows.truncate(TABLE_LIMIT);
    let with_legend = panel.queries.iter().any(|q| !q.legend.is_empty());
    let mut table_rows = Vec::with_capacity(rows.len());
    for (qi, r) in rows {
        let name = with_legend.then(|| {
            let fmt = panel.queries.get(qi).map(|q| q.legend.as_str()).unwrap_or("");
            if fmt.is_empty() {
                r.labels.to_string()
            } else {
                legend(&scope.interpolate(fmt), &r.labels)
            }
        });
        table_rows.push(TableRow {
            query: qi,
            name,
            labels: r.labels,
            value: r.value,
            histogram: r.histogram,
        });
    }
    let cols = table::columns(&table_rows, &panel.columns, panel.queries.len() > 1);
    let format = |v: f64| crate::units::format(v, &panel.unit, panel.decimals);
    let mut html = format!("{errors}{}", table::render(&table_rows, &cols, &format));
    if truncated {
        let _ = write!(html, r#"<p class="muted">First {TABLE_LIMIT} rows.</p>"#);
    }
    html
}

async fn logs_body(ctx: &UiContext, p: &Prepared, query: &str) -> String {
    let q = LogQuery {
        query: query.to_string(),
        trace_id: None,
        start_unix_nano: p.range.start_ms.saturating_mul(1_000_000),
        end_unix_nano: p.range.end_ms.saturating_mul(1_000_000),
        limit: LOG_LIMIT,
        cursor: None,
    };
    let logs = ctx.log_reads.clone();
    let result = tokio::task::spawn_blocking(move || logs.search(&q)).await;
    let page = match result {
        Ok(Ok(page)) => page,
        Ok(Err(e)) => return query_error(0, &e),
        Err(e) => return query_error(0, &e),
    };
    if page.records.is_empty() {
        return r#"<p class="panel-empty">No log records</p>"#.to_string();
    }
    let mut html = String::from(r#"<ol class="panel-logs">"#);
    for r in &page.records {
        let ts = chrono::DateTime::from_timestamp_nanos(r.timestamp_unix_nano)
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string();
        let _ = write!(
            html,
            r#"<li><time>{}</time> <span class="sev sev-{}">{}</span> <span class="svc">{}</span> <span class="body">{}</span></li>"#,
            escape(&ts),
            escape(&r.severity_text.to_lowercase()),
            escape(&r.severity_text),
            escape(&r.service),
            escape(&r.body)
        );
    }
    html.push_str("</ol>");
    let href = format!(
        "/logs?{}",
        serde_urlencoded::to_string([("q", query), ("from", &p.range.from), ("to", &p.range.to)])
            .unwrap_or_default()
    );
    let _ = write!(html, r#"<p><a href="{}">Open in Logs</a></p>"#, escape(&href));
    html
}
