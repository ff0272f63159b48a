//! The start page: what Didban holds right now and where to go from here.

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;

use crate::shell::{render_page, PageMeta, Section};
use crate::UiContext;
use didban_auth::Viewer;

pub(super) fn routes() -> Router<UiContext> {
    Router::new().route("/", get(home))
}

async fn home(State(ctx): State<UiContext>, viewer: Viewer) -> Html<String> {
    let series = ctx.db.stats().head_series;
    let spans = ctx.traces.stats().head_spans;
    let log_docs = ctx.logs.stats().committed_records;
    render_page(PageMeta::for_viewer("Home", Section::None, &viewer), move || {
        view! {
            <h1>"Didban"</h1>
            <dl class="summary">
                <dt>"Active series"</dt><dd>{series}</dd>
                <dt>"Spans in the head"</dt><dd>{spans}</dd>
                <dt>"Searchable log records"</dt><dd>{log_docs}</dd>
            </dl>
            <ul class="start">
                <li><a href="/dashboards">"Dashboards"</a>" — host, PostgreSQL, Redis & Celery, HTTP, serverless, Didban itself"</li>
                <li><a href="/explore">"Explore"</a>" — PromQL with graph and table"</li>
                <li><a href="/logs">"Logs"</a>" — search, volume, live tail"</li>
                <li><a href="/traces">"Traces"</a>" — search and waterfall"</li>
                <li><a href="/alerts">"Alerts"</a>" — rules, alerts, silences"</li>
                <li><a href="/cardinality">"Cardinality"</a>" — the metrics and labels with the most series"</li>
            </ul>
        }
    })
}
