//! Logs: `GET /logs` searches the log store (Tantivy query syntax) over a time range, with
//! the volume histogram by severity and newest-first results paged by the store's cursor;
//! `GET /logs/tail` shows the newest records, and with the page script streams new ones
//! from the live-tail API (`/api/logs/tail`, Server-Sent Events).

pub mod volume;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use didban_store::logs::{Cursor, HistogramBucket, LogPage, LogQuery, LogRecord};
use leptos::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::pages::error::error_page;
use crate::pages::pagefmt::{self, now_ms};
use crate::shell::{render_page, PageMeta, Section};
use crate::signal_reads::{failure_status, ReadFailure};
use crate::timerange::TimeRange;
use crate::UiContext;
use didban_auth::Viewer;

/// Records per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;
/// Most records per page.
const MAX_LIMIT: usize = 1000;
/// Records the tail page shows before streaming.
const TAIL_RECORDS: usize = 50;

pub(crate) fn routes() -> Router<UiContext> {
    Router::new()
        .route("/logs", get(search_page))
        .route("/logs/tail", get(tail_page))
}

/// The search page's URL parameters.
#[derive(Debug, Default, Deserialize)]
struct LogsParams {
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// What a search found.
struct Found {
    page: LogPage,
    buckets: Vec<HistogramBucket>,
    interval_ms: i64,
    /// The most frequent services among the matches, with their counts.
    services: Vec<(String, u64)>,
}

/// A failed search: the status and the message shown above the (kept) form.
struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn bad(message: String) -> Failure {
        Failure {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

fn store_failure(e: impl Into<ReadFailure>) -> Failure {
    let e = e.into();
    Failure {
        status: failure_status(&e),
        message: e.message,
    }
}

async fn run_search(ctx: &UiContext, p: &LogsParams, range: &TimeRange) -> Result<Found, Failure> {
    let limit = match p.limit.as_deref().filter(|s| !s.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(MAX_LIMIT),
            _ => {
                return Err(Failure::bad(format!(
                    "invalid limit {s:?}: expected a number from 1 to {MAX_LIMIT}"
                )))
            }
        },
    };
    let cursor = match p.cursor.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(c) => Some(Cursor::decode(c).map_err(store_failure)?),
    };
    let query = LogQuery {
        query: p.q.clone().unwrap_or_default(),
        trace_id: None,
        start_unix_nano: range.start_ms.saturating_mul(1_000_000),
        end_unix_nano: range.end_ms.saturating_mul(1_000_000),
        limit,
        cursor,
    };
    let interval_ms = volume::interval_for(range.duration_ms());
    let store = ctx.log_reads.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let page = store.search(&query)?;
        let mut whole = query.clone();
        whole.cursor = None;
        let buckets = store.histogram(&whole, interval_ms)?;
        let services = store.top_values(&whole, "service", 8)?;
        Ok::<_, ReadFailure>((page, buckets, services))
    })
    .await;
    match joined {
        Ok(Ok((page, buckets, services))) => Ok(Found {
            page,
            buckets,
            interval_ms,
            services,
        }),
        Ok(Err(e)) => Err(store_failure(e)),
        Err(e) => Err(Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("log search failed: {e}"),
        }),
    }
}

async fn search_page(State(ctx): State<UiContext>, viewer: Viewer, Query(p): Query<LogsParams>) -> Response {
    let q = p.q.clone().unwrap_or_default();
    let (from, to) = (
        p.from.clone().unwrap_or_default(),
        p.to.clone().unwrap_or_default(),
    );
    let result = match TimeRange::parse(p.from.as_deref(), p.to.as_deref(), now_ms()) {
        Ok(range) => run_search(&ctx, &p, &range).await.map(|f| (f, range)),
        Err(e) => Err(Failure::bad(e.to_string())),
    };
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(f) => f.status,
    };
    let limit = p.limit.clone().unwrap_or_default();
    let has_cursor = p.cursor.as_deref().is_some_and(|c| !c.is_empty());
    let meta = PageMeta::for_viewer("Logs", Section::Logs, &viewer);
    let Html(html) = render_page(meta, move || {
        let form = search_form(&q, &from, &to, &limit);
        let body = match result {
            Err(f) => view! {
                <section class="error query-error">
                    <h2>"The search failed"</h2>
                    <p role="alert">{f.message}</p>
                </section>
            }
            .into_any(),
            Ok((found, range)) => results(&q, &range, &limit, found, has_cursor).into_any(),
        };
        view! {
            <h1>"Logs"</h1>
            {form}
            {body}
        }
    });
    (status, Html(html)).into_response()
}

fn search_form(q: &str, from: &str, to: &str, limit: &str) -> impl IntoView {
    let keep = [("q", q), ("limit", limit)];
    view! {
        <form class="search logs-search" method="get" action="/logs" role="search">
            <label class="grow">"Query "
                <input type="search" name="q" value=q.to_string() size="60"
                    aria-describedby="log-query-hint" placeholder="*"/>
            </label>
            {pagefmt::range_fields(from, to, "/logs", &keep)}
            <input type="hidden" name="limit" value=limit.to_string()/>
            <button type="submit">"Search"</button>
            <a class="tail-link" href=pagefmt::link("/logs/tail", &[("q", q)])>"Live tail"</a>
            <p id="log-query-hint" class="hint">
                "Tantivy syntax: words search the body ("<code>"timeout"</code>", "<code>"\"connection reset\""</code>"); "
                "fields: "<code>"service:checkout"</code>", "<code>"severity_text:ERROR"</code>", "
                <code>"severity_number:>=17"</code>", "<code>"attributes.http.status_code:500"</code>", "
                <code>"trace_id:4bf92f3577b34da6a3ce929d0e0e4736"</code>"; combine with "<code>"AND"</code>", "
                <code>"OR"</code>", "<code>"NOT"</code>" (terms are ANDed by default)."
            </p>
        </form>
    }
}

fn results(q: &str, range: &TimeRange, limit: &str, found: Found, has_cursor: bool) -> impl IntoView {
    let total: u64 = found.buckets.iter().map(|b| b.count).sum();
    let facets = (found.services.len() > 1).then(|| {
        let items = found
            .services
            .iter()
            .map(|(name, n)| {
                let term = format!("service:\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""));
                let narrowed = if q.trim().is_empty() || q.trim() == "*" { term } else { format!("({q}) AND {term}") };
                let href = pagefmt::link(
                    "/logs",
                    &[("q", &narrowed), ("from", &range.from), ("to", &range.to), ("limit", limit)],
                );
                view! { <li><a href=href>{name.clone()}</a>" "<span class="muted">{*n}</span></li> }
            })
            .collect_view();
        view! { <p class="facets-label">"Top services (click to narrow):"</p><ul class="legend facets">{items}</ul> }
    });
    let q_link = q.to_string();
    let limit_link = limit.to_string();
    let svg = volume::histogram_svg(&found.buckets, found.interval_ms, &move |s, e| {
        pagefmt::link(
            "/logs",
            &[
                ("q", &q_link),
                ("from", &s.to_string()),
                ("to", &e.to_string()),
                ("limit", &limit_link),
            ],
        )
    });
    let legend = volume::CLASSES
        .iter()
        .map(|(class, label)| {
            view! { <li><span class=format!("swatch sev-{class}") aria-hidden="true"></span>{*label}</li> }
        })
        .collect_view();
    let older = found.page.next_cursor.clone().map(|c| {
        let href = pagefmt::link(
            "/logs",
            &[
                ("q", q),
                ("from", &range.from),
                ("to", &range.to),
                ("limit", limit),
                ("cursor", &c),
            ],
        );
        view! { <a class="older" href=href rel="next">"Older →"</a> }
    });
    let newest = has_cursor.then(|| {
        let href = pagefmt::link(
            "/logs",
            &[
                ("q", q),
                ("from", &range.from),
                ("to", &range.to),
                ("limit", limit),
            ],
        );
        view! { <a class="newest" href=href>"← Newest"</a> }
    });
    let shown = found.page.records.len();
    let empty = found
        .page
        .records
        .is_empty()
        .then(|| view! { <p class="empty">"No log records match in this range."</p> });
    let list = record_list(found.page.records, "log-results");
    view! {
        <section class="log-volume-panel" aria-labelledby="volume-h">
            <h2 id="volume-h">"Volume "<small>{format!("{total} records, {} per bar", pagefmt::duration_ns(found.interval_ms * 1_000_000))}</small></h2>
            <div class="log-volume-chart" inner_html=svg></div>
            <ul class="legend">{legend}</ul>
            {facets}
        </section>
        <section aria-labelledby="results-h">
            <h2 id="results-h">"Records "<small>{format!("{shown} shown, newest first")}</small></h2>
            {empty}
            {list}
            <nav class="pager" aria-label="Pages">{newest}{older}</nav>
        </section>
    }
}

/// Records as a list, each with its severity class, time, service, body, a link to its
/// trace and expandable attributes and resource.
fn record_list(records: Vec<LogRecord>, id: &'static str) -> impl IntoView {
    let items = records.into_iter().map(record_item).collect_view();
    view! { <ol class="log-list" id=id>{items}</ol> }
}

fn record_item(r: LogRecord) -> impl IntoView {
    let class = volume::severity_class(&r.severity_text, r.severity_number);
    let ms = r.timestamp_unix_nano.div_euclid(1_000_000);
    let severity = if r.severity_text.is_empty() {
        didban_store::logs::severity_name(r.severity_number).to_string()
    } else {
        r.severity_text.clone()
    };
    let trace = (!r.trace_id.is_empty()).then(|| {
        let href = format!("/traces/{}", r.trace_id);
        view! { <a class="trace-link" href=href>"trace"</a> }
    });
    let has_more = !r.attributes.is_empty()
        || !r.resource.is_empty()
        || !r.span_id.is_empty()
        || !r.scope_name.is_empty();
    let details = has_more.then(|| {
        let ids = (!r.span_id.is_empty()).then(|| view! { <dt>"span_id"</dt><dd>{r.span_id.clone()}</dd> });
        let scope =
            (!r.scope_name.is_empty()).then(|| view! { <dt>"scope"</dt><dd>{r.scope_name.clone()}</dd> });
        view! {
            <details class="log-attrs">
                <summary>"Attributes and resource"</summary>
                <dl class="kv">{ids}{scope}</dl>
                <h3>"Attributes"</h3>{kv_list(&r.attributes)}
                <h3>"Resource"</h3>{kv_list(&r.resource)}
            </details>
        }
    });
    view! {
        <li class=format!("log sev-{class}")>
            <time datetime=pagefmt::rfc3339_ms(ms)>{pagefmt::time_ns(r.timestamp_unix_nano)}</time>
            <span class="sev">{severity}</span>
            <span class="svc">{r.service.clone()}</span>
            <span class="body">{r.body.clone()}</span>
            {trace}
            {details}
        </li>
    }
}

/// A JSON map as a definition list (values as their JSON text unless strings).
pub(crate) fn kv_list(map: &Map<String, Value>) -> impl IntoView {
    if map.is_empty() {
        return view! { <p class="muted">"none"</p> }.into_any();
    }
    let rows = map
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            view! { <dt>{k.clone()}</dt><dd>{text}</dd> }
        })
        .collect_view();
    view! { <dl class="kv">{rows}</dl> }.into_any()
}

#[derive(Debug, Default, Deserialize)]
struct TailParams {
    q: Option<String>,
}

async fn tail_page(State(ctx): State<UiContext>, viewer: Viewer, Query(p): Query<TailParams>) -> Response {
    let q = p.q.unwrap_or_default();
    let query = LogQuery {
        query: q.clone(),
        trace_id: None,
        start_unix_nano: 0,
        end_unix_nano: i64::MAX,
        limit: TAIL_RECORDS,
        cursor: None,
    };
    let store = ctx.log_reads.clone();
    let found = tokio::task::spawn_blocking(move || store.search(&query)).await;
    let (status, records) = match found {
        Ok(Ok(page)) => (StatusCode::OK, Ok(page.records)),
        Ok(Err(e)) => {
            let f = store_failure(e);
            (f.status, Err(f.message))
        }
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Live tail failed",
                e.to_string(),
            )
        }
    };
    let meta = PageMeta::for_viewer("Live tail", Section::Logs, &viewer);
    let Html(html) = render_page(meta, move || {
        let reload = pagefmt::link("/logs/tail", &[("q", &q)]);
        let search = pagefmt::link("/logs", &[("q", &q)]);
        let body = match records {
            Err(message) => view! {
                <section class="error query-error"><h2>"The query failed"</h2><p role="alert">{message}</p></section>
            }
            .into_any(),
            Ok(records) => view! {
                <p class="tail-status" id="log-tail-status" aria-live="polite">
                    {format!("The {} newest records. ", records.len())}
                    <a href=reload.clone()>"Reload"</a>" to see newer ones (with JavaScript they stream in)."
                </p>
                <div id="log-tail" data-query=q.clone()>{record_list(records, "log-tail-list")}</div>
            }
            .into_any(),
        };
        view! {
            <h1>"Live tail"</h1>
            <form class="search" method="get" action="/logs/tail" role="search">
                <label class="grow">"Query "<input type="search" name="q" value=q.clone() size="60" placeholder="*"/></label>
                <button type="submit">"Tail"</button>
                <a href=search>"Search instead"</a>
            </form>
            {body}
        }
    });
    (status, Html(html)).into_response()
}
