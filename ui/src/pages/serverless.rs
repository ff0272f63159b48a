//! `GET /serverless`: every function seen in the FaaS metrics Didban derives from spans
//! (`faas_*`, see `docs/otlp-mapping.md`) with invocations, error and cold-start
//! percentages, p95 duration and the estimated cost over the time range.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;

use super::services::{by_label, window, RangeParams};
use crate::pages::error::error_page;
use crate::pages::pagefmt::{self, now_ms};
use crate::shell::{render_page, PageMeta, Section};
use crate::timerange::TimeRange;
use crate::UiContext;
use didban_auth::Viewer;

pub(crate) fn routes() -> Router<UiContext> {
    Router::new().route("/serverless", get(serverless_page))
}

/// The page's queries for a window, all by `faas_name`: invocations, errors, cold starts
/// (increases over the window), p95 duration in seconds, estimated cost in USD.
pub fn function_queries(window: &str) -> [String; 5] {
    let inc = |m: &str| format!("sum by (faas_name) (increase({m}[{window}]))");
    [
        inc("faas_invocations_total"),
        inc("faas_errors_total"),
        inc("faas_coldstarts_total"),
        // Native histograms (the default), or classic buckets (`duration_histogram = "classic"`,
        // or pushed over OTLP as explicit-bucket histograms).
        format!("histogram_quantile(0.95, sum by (faas_name) (rate(faas_invoke_duration_seconds[{window}]))) or histogram_quantile(0.95, sum by (faas_name, le) (rate(faas_invoke_duration_seconds_bucket[{window}])))"),
        inc("faas_estimated_cost_usd_total"),
    ]
}

fn percent(part: Option<f64>, total: f64) -> String {
    match part {
        Some(p) if total > 0.0 => format!("{}%", pagefmt::number(p / total * 100.0)),
        _ if total > 0.0 => "0%".into(),
        _ => "–".into(),
    }
}

/// Dollars with enough decimals to show fractions of a cent.
fn usd(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v >= 1.0 {
        format!("${v:.2}")
    } else {
        format!("${v:.6}")
    }
}

async fn serverless_page(
    State(ctx): State<UiContext>,
    viewer: Viewer,
    Query(p): Query<RangeParams>,
) -> Response {
    let range = match TimeRange::parse(p.from.as_deref(), p.to.as_deref(), now_ms()) {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Invalid time range", e.to_string()),
    };
    let mut results: Vec<BTreeMap<String, f64>> = Vec::new();
    for q in function_queries(&window(&range)) {
        match ctx.instant_query(&q, range.end_ms).await {
            Ok(rows) => results.push(by_label(&rows, "faas_name")),
            Err(e) => {
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Function metrics failed",
                    format!("{q}: {e}"),
                )
            }
        }
    }
    let names: Vec<String> = results[0].keys().cloned().collect();
    let meta = PageMeta::for_viewer("Serverless", Section::Serverless, &viewer);
    let (from, to) = (range.from.clone(), range.to.clone());
    let Html(html) = render_page(meta, move || {
        let empty = names.is_empty().then(|| {
            view! { <p class="empty">"No function invocations in this range. Spans with the OpenTelemetry FaaS attributes ("
                <code>"faas.name"</code>", "<code>"faas.trigger"</code>", "<code>"faas.coldstart"</code>") are counted here."</p> }
        });
        let body = names
            .iter()
            .map(|name| {
                let total = results[0].get(name).copied().unwrap_or(0.0);
                let errors = results[1].get(name).copied();
                let err_class = if errors.is_some_and(|e| total > 0.0 && e / total >= 0.05) {
                    "num err"
                } else {
                    "num"
                };
                let p95 = results[3]
                    .get(name)
                    .copied()
                    .filter(|v| v.is_finite())
                    .map(pagefmt::duration_secs)
                    .unwrap_or_else(|| "–".into());
                let cost = results[4]
                    .get(name)
                    .copied()
                    .map(usd)
                    .unwrap_or_else(|| "–".into());
                let dash = pagefmt::link(
                    "/dashboards/serverless",
                    &[("var-function", name), ("from", &from), ("to", &to)],
                );
                let traces = pagefmt::link(
                    "/traces",
                    &[
                        ("tags", &format!("faas.name={name}")),
                        ("from", &from),
                        ("to", &to),
                    ],
                );
                view! {
                    <tr>
                        <th scope="row">{name.clone()}</th>
                        <td class="num">{format!("{total:.0}")}</td>
                        <td class=err_class>{percent(errors, total)}</td>
                        <td class="num">{p95}</td>
                        <td class="num">{percent(results[2].get(name).copied(), total)}</td>
                        <td class="num">{cost}</td>
                        <td><a href=dash>"Dashboard"</a>" · "<a href=traces>"Traces"</a></td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <h1>"Serverless"</h1>
            <form class="search" method="get" action="/serverless">
                {pagefmt::range_fields(&from, &to, "/serverless", &[])}
                <button type="submit">"Apply"</button>
            </form>
            {empty}
            <table class="functions-table">
                <thead><tr><th scope="col">"Function"</th><th scope="col">"Invocations"</th><th scope="col">"Errors"</th>
                    <th scope="col">"p95 duration"</th><th scope="col">"Cold starts"</th><th scope="col">"Estimated cost"</th>
                    <th scope="col">"Open"</th></tr></thead>
                <tbody>{body}</tbody>
            </table>
            <p class="hint">"Cost is estimated from the "<code>"[faas]"</code>" price table: request price plus GB-seconds of configured memory ("
                <code>"faas_estimated_cost_usd_total"</code>")."</p>
        }
    });
    (StatusCode::OK, Html(html)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_queries_name_the_faas_metrics() {
        let q = function_queries("600s");
        assert_eq!(
            q[0],
            "sum by (faas_name) (increase(faas_invocations_total[600s]))"
        );
        assert!(q[3].starts_with(
            "histogram_quantile(0.95, sum by (faas_name) (rate(faas_invoke_duration_seconds[600s])))"
        ));
        assert!(q[3].contains("faas_invoke_duration_seconds_bucket[600s]"));
        assert!(q[4].contains("faas_estimated_cost_usd_total"));
        assert_eq!(percent(Some(1.0), 4.0), "25.00%");
        assert_eq!(percent(None, 4.0), "0%");
        assert_eq!(usd(0.0000125), "$0.000013");
    }
}
