//! The start page: what Didban holds right now and where to go from here. The figures
//! are [`crate::UiContext::figures`]': on a querier the totals over every live ingester and
//! the bucket, an ingester that did not answer listed rather than failing the page.

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;

use crate::shell::{render_page, PageMeta, Section};
use crate::signal_reads::Figures;
use crate::UiContext;
use didban_auth::Viewer;

pub(super) fn routes() -> Router<UiContext> {
    Router::new().route("/", get(home))
}

async fn home(State(ctx): State<UiContext>, viewer: Viewer) -> Html<String> {
    let reads = ctx.figures.clone();
    // A figure that cannot be read (the task failed) shows as unknown, not as a failed page.
    let figures = tokio::task::spawn_blocking(move || reads.figures()).await.ok();
    let shown = |f: fn(&Figures) -> u64| figures.as_ref().map_or("?".to_string(), |x| f(x).to_string());
    let series = shown(|f| f.active_series);
    let spans = shown(|f| f.spans);
    let mut log_docs = shown(|f| f.log_records);
    let sealed = figures.as_ref().map_or(0, |f| f.sealed_log_days);
    if sealed > 0 {
        log_docs.push_str(&format!(" (and {sealed} sealed day indexes in the bucket)"));
    }
    let asked = figures.and_then(|f| f.ingesters);
    let ingesters = asked.as_ref().map(|a| {
        let total = a.answered + a.silent.len() as u64;
        view! { <dt>"Ingesters answering"</dt><dd data-figure="ingesters">{format!("{} of {total}", a.answered)}</dd> }
    });
    let silent = asked.map(|a| a.silent).unwrap_or_default();
    let warning = (!silent.is_empty()).then(|| {
        let items: Vec<_> = silent.into_iter().map(|s| view! { <li>{s}</li> }).collect();
        view! {
            <div class="notice" role="status">
                <p>"Not counted: these ingesters did not answer in time."</p>
                <ul>{items}</ul>
            </div>
        }
    });
    render_page(PageMeta::for_viewer("Home", Section::None, &viewer), move || {
        view! {
            <h1>"Didban"</h1>
            <dl class="summary">
                <dt>"Active series"</dt><dd data-figure="series">{series}</dd>
                <dt>"Spans stored"</dt><dd data-figure="spans">{spans}</dd>
                <dt>"Searchable log records"</dt><dd data-figure="log-records">{log_docs}</dd>
                {ingesters}
            </dl>
            {warning}
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
