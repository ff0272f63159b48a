//! `GET /cardinality`: what makes the head big — the metric names with the most series, the
//! label names with the most values and bytes, the label pairs on the most series. The same
//! figures as `/api/v1/status/tsdb` ([`didban_store::cardinality`]), as four tables.

use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use didban_store::cardinality::{self, CardinalityStats, Stat};
use didban_store::promql::Lane;
use leptos::prelude::*;
use serde::Deserialize;

use crate::pages::error::error_page;
use crate::pages::pagefmt;
use crate::shell::{render_page, PageMeta, Section};
use crate::UiContext;
use didban_auth::Viewer;

/// Rows per table unless the URL asks for another number.
const DEFAULT_ROWS: usize = 10;
/// Most rows per table a URL may ask for.
const MAX_ROWS: usize = 1000;

pub(crate) fn routes() -> Router<UiContext> {
    Router::new().route("/cardinality", get(cardinality_page))
}

#[derive(Debug, Deserialize)]
struct Params {
    rows: Option<String>,
}

fn rows(p: &Params) -> Result<usize, String> {
    match p.rows.as_deref().filter(|r| !r.is_empty()) {
        None => Ok(DEFAULT_ROWS),
        Some(r) => match r.parse::<usize>() {
            Ok(n) if (1..=MAX_ROWS).contains(&n) => Ok(n),
            _ => Err(format!("rows={r:?}: a number from 1 to {MAX_ROWS}")),
        },
    }
}

/// Walks the head's time range with a slot of the heavy query lane, bounded by the query
/// timeout like every page query.
async fn stats(ctx: &UiContext, limit: usize) -> Result<(didban_store::DbStats, CardinalityStats), String> {
    let deadline = Instant::now().checked_add(ctx.query_timeout);
    let permit = ctx
        .query_limiter
        .admit(Lane::Heavy, deadline)
        .await
        .map_err(|e| e.to_string())?;
    let db = ctx.db.clone();
    tokio::task::spawn_blocking(move || {
        let head = db.stats();
        let result = match (head.head_min_time_ms, head.head_max_time_ms) {
            (Some(min), Some(max)) => cardinality::walk(db.as_ref(), min, max, deadline, limit),
            _ => Ok(CardinalityStats::default()),
        };
        drop(permit);
        result.map(|s| (head, s)).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("cardinality task failed: {e}"))?
}

fn table(title: &'static str, what: &'static str, unit: &'static str, rows: Vec<Stat>) -> impl IntoView {
    let body = rows
        .into_iter()
        .map(|s| {
            view! {
                <tr><th scope="row"><code>{s.name}</code></th><td class="num">{s.value}</td></tr>
            }
        })
        .collect_view();
    view! {
        <h2>{title}</h2>
        <table class="cardinality-table">
            <thead><tr><th scope="col">{what}</th><th scope="col">{unit}</th></tr></thead>
            <tbody>{body}</tbody>
        </table>
    }
}

async fn cardinality_page(State(ctx): State<UiContext>, viewer: Viewer, Query(p): Query<Params>) -> Response {
    let limit = match rows(&p) {
        Ok(n) => n,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Invalid parameter", e),
    };
    let (head, s) = match stats(&ctx, limit).await {
        Ok(r) => r,
        Err(e) => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Cardinality statistics failed",
                e,
            )
        }
    };
    let range = match (head.head_min_time_ms, head.head_max_time_ms) {
        (Some(a), Some(b)) => format!("{} – {}", pagefmt::rfc3339_ms(a), pagefmt::rfc3339_ms(b)),
        _ => "empty".to_string(),
    };
    let meta = PageMeta::for_viewer("Cardinality", Section::None, &viewer);
    let Html(html) = render_page(meta, move || {
        view! {
            <h1>"Cardinality"</h1>
            <dl class="summary">
                <dt>"Series in the head"</dt><dd>{head.head_series}</dd>
                <dt>"Series with samples in its range"</dt><dd>{s.num_series}</dd>
                <dt>"Label pairs"</dt><dd>{s.num_label_pairs}</dd>
                <dt>"Head time range"</dt><dd>{range}</dd>
            </dl>
            <form class="search" method="get" action="/cardinality">
                <label>"Rows "<input type="number" name="rows" min="1" max=MAX_ROWS value=limit/></label>
                <button type="submit">"Apply"</button>
            </form>
            {table("Metric names with the most series", "Metric", "Series", s.series_count_by_metric_name)}
            {table("Label names with the most values", "Label", "Values", s.label_value_count_by_label_name)}
            {table("Label names using the most memory", "Label", "Bytes of values", s.memory_in_bytes_by_label_name)}
            {table("Label pairs on the most series", "Pair", "Series", s.series_count_by_label_value_pair)}
            <p class="hint">"The same figures as "<code>"/api/v1/status/tsdb"</code>": series with a sample between the oldest and newest sample in memory."</p>
        }
    });
    (StatusCode::OK, Html(html)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parameter_is_bounded() {
        assert_eq!(rows(&Params { rows: None }), Ok(DEFAULT_ROWS));
        assert_eq!(
            rows(&Params {
                rows: Some("25".into())
            }),
            Ok(25)
        );
        assert!(rows(&Params {
            rows: Some("0".into())
        })
        .is_err());
        assert!(rows(&Params {
            rows: Some("5000".into())
        })
        .is_err());
    }
}
