//! `GET /services`: every service (those with spans in the trace store and those in the
//! span-derived metrics) with its request rate, error percentage and p95 latency over the
//! time range, from `traces_span_metrics_*` (server and consumer spans, the requests a
//! service answers).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use serde::Deserialize;

use crate::pages::error::error_page;
use crate::pages::pagefmt::{self, now_ms};
use crate::query::InstantRow;
use crate::shell::{render_page, PageMeta, Section};
use crate::signal_reads::failure_status;
use crate::timerange::TimeRange;
use crate::UiContext;
use didban_auth::Viewer;

pub(crate) fn routes() -> Router<UiContext> {
    Router::new().route("/services", get(services_page))
}

/// The page's URL parameters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RangeParams {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The span kinds that count as requests a service answers.
const REQUEST_KINDS: &str = r#"span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER""#;

/// The PromQL range selector window for a time range: its length in whole seconds.
pub(crate) fn window(range: &TimeRange) -> String {
    format!("{}s", (range.duration_ms() / 1000).max(1))
}

/// The three queries of the page for a window: rate, error rate, p95 seconds, by service.
pub fn service_queries(window: &str) -> [String; 3] {
    [
        format!("sum by (service_name) (rate(traces_span_metrics_calls_total{{{REQUEST_KINDS}}}[{window}]))"),
        format!("sum by (service_name) (rate(traces_span_metrics_errors_total{{{REQUEST_KINDS}}}[{window}]))"),
        // Native histograms (the default), or classic buckets (`duration_histogram = "classic"`).
        format!(
            "histogram_quantile(0.95, sum by (service_name) (rate(traces_span_metrics_duration_seconds{{{REQUEST_KINDS}}}[{window}]))) or histogram_quantile(0.95, sum by (service_name, le) (rate(traces_span_metrics_duration_seconds_bucket{{{REQUEST_KINDS}}}[{window}])))"
        ),
    ]
}

/// `label → value` of instant rows keyed by one label.
pub(crate) fn by_label(rows: &[InstantRow], label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for r in rows {
        if let Some(v) = r.labels.get(label) {
            out.insert(v.to_string(), r.value);
        }
    }
    out
}

/// One service's row.
#[derive(Debug, Clone, Default)]
struct ServiceRow {
    name: String,
    operations: usize,
    rate: Option<f64>,
    errors: Option<f64>,
    p95: Option<f64>,
}

async fn services_page(
    State(ctx): State<UiContext>,
    viewer: Viewer,
    Query(p): Query<RangeParams>,
) -> Response {
    let range = match TimeRange::parse(p.from.as_deref(), p.to.as_deref(), now_ms()) {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Invalid time range", e.to_string()),
    };
    let [q_rate, q_err, q_p95] = service_queries(&window(&range));
    let mut results = Vec::new();
    for q in [&q_rate, &q_err, &q_p95] {
        match ctx.instant_query(q, range.end_ms).await {
            Ok(rows) => results.push(by_label(&rows, "service_name")),
            Err(e) => {
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Service metrics failed",
                    format!("{q}: {e}"),
                )
            }
        }
    }
    let mut rows: BTreeMap<String, ServiceRow> = BTreeMap::new();
    let reads = ctx.trace_reads.clone();
    let services = match tokio::task::spawn_blocking(move || reads.services()).await {
        Ok(Ok(services)) => services,
        Ok(Err(e)) => return error_page(failure_status(&e), "Services failed", e.message),
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Services failed",
                e.to_string(),
            )
        }
    };
    for (name, ops) in services {
        rows.insert(
            name.clone(),
            ServiceRow {
                name,
                operations: ops.len(),
                ..ServiceRow::default()
            },
        );
    }
    for (name, v) in &results[0] {
        let row = rows.entry(name.clone()).or_insert_with(|| ServiceRow {
            name: name.clone(),
            ..ServiceRow::default()
        });
        row.rate = Some(*v);
        row.errors = Some(results[1].get(name).copied().unwrap_or(0.0));
        row.p95 = results[2].get(name).copied().filter(|v| v.is_finite());
    }
    let store = ctx.trace_reads.clone();
    let (start_ns, end_ns) = (
        range.start_ms.saturating_mul(1_000_000),
        range.end_ms.saturating_mul(1_000_000),
    );
    let calls = match tokio::task::spawn_blocking(move || store.dependencies(start_ns, end_ns)).await {
        Ok(Ok(list)) => list,
        Ok(Err(e)) => return error_page(failure_status(&e), "Service dependencies failed", e.to_string()),
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Service dependencies failed",
                e.to_string(),
            )
        }
    };
    let meta = PageMeta::for_viewer("Services", Section::Services, &viewer);
    let (from, to) = (range.from.clone(), range.to.clone());
    let Html(html) = render_page(meta, move || {
        let empty = rows.is_empty().then(|| {
            view! { <p class="empty">"No services yet: send spans over OTLP and they appear here."</p> }
        });
        let body = rows
            .into_values()
            .map(|r| {
                let traces = pagefmt::link("/traces", &[("service", &r.name), ("from", &from), ("to", &to)]);
                let dash = pagefmt::link(
                    "/dashboards/http-service",
                    &[("var-service", &r.name), ("from", &from), ("to", &to)],
                );
                let rate = r
                    .rate
                    .map(|v| format!("{} req/s", pagefmt::number(v)))
                    .unwrap_or_else(|| "–".into());
                let err_pct = match (r.rate, r.errors) {
                    (Some(total), Some(e)) if total > 0.0 => Some(e / total * 100.0),
                    _ => None,
                };
                let err_class = if err_pct.is_some_and(|p| p >= 5.0) {
                    "num err"
                } else {
                    "num"
                };
                let err_text = err_pct
                    .map(|p| format!("{}%", pagefmt::number(p)))
                    .unwrap_or_else(|| "–".into());
                let p95 = r.p95.map(pagefmt::duration_secs).unwrap_or_else(|| "–".into());
                view! {
                    <tr>
                        <th scope="row">{r.name.clone()}</th>
                        <td class="num rate">{rate}</td>
                        <td class=err_class>{err_text}</td>
                        <td class="num">{p95}</td>
                        <td class="num">{r.operations}</td>
                        <td><a href=traces>"Traces"</a>" · "<a href=dash>"Dashboard"</a></td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h1>"Services"</h1>
            <form class="search" method="get" action="/services">
                {pagefmt::range_fields(&from, &to, "/services", &[])}
                <button type="submit">"Apply"</button>
            </form>
            <p class="hint">"Requests are server and consumer spans, from the span-derived metrics "
                <code>"traces_span_metrics_*"</code>" over the whole range."</p>
            {empty}
            <table class="services-table">
                <thead><tr><th scope="col">"Service"</th><th scope="col">"Rate"</th><th scope="col">"Errors"</th>
                    <th scope="col">"p95 latency"</th><th scope="col">"Operations"</th><th scope="col">"Open"</th></tr></thead>
                <tbody>{body}</tbody>
            </table>
            {dependencies_view(calls)}
        }
    });
    (StatusCode::OK, Html(html)).into_response()
}

/// Calls between services in the range (parent service → child service, from spans whose
/// parent belongs to another service).
fn dependencies_view(calls: Vec<didban_store::traces::Dependency>) -> impl IntoView {
    (!calls.is_empty()).then(|| {
        let rows = calls
            .into_iter()
            .map(|d| {
                view! {
                    <tr><td>{d.parent}</td><td>{d.child}</td><td class="num">{d.call_count}</td></tr>
                }
            })
            .collect_view();
        view! {
            <section aria-labelledby="deps-h">
                <h2 id="deps-h">"Calls between services"</h2>
                <table class="deps-table">
                    <thead><tr><th scope="col">"Caller"</th><th scope="col">"Callee"</th><th scope="col">"Calls"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_use_the_span_metric_names_and_window() {
        let [rate, err, p95] = service_queries("3600s");
        assert!(rate.contains("rate(traces_span_metrics_calls_total{"));
        assert!(rate.contains("[3600s]"));
        assert!(err.contains("traces_span_metrics_errors_total"));
        assert!(p95.starts_with(
            "histogram_quantile(0.95, sum by (service_name) (rate(traces_span_metrics_duration_seconds{"
        ));
        assert!(p95.contains(" or histogram_quantile(0.95, sum by (service_name, le)"));
        assert!(p95.contains("traces_span_metrics_duration_seconds_bucket"));
    }
}
