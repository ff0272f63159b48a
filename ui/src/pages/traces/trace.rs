//! `GET /traces/{trace_id}`: one trace as a waterfall on a time ruler, service colours,
//! errors marked, the critical path highlighted, and every span's details on demand.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use didban_store::traces::{is_valid_hex_id, kind_name, status, status_name, Span};
use leptos::prelude::*;

use super::waterfall::{critical_path, rows, Segment};
use crate::pages::error::error_page;
use crate::pages::logs::kv_list;
use crate::pages::pagefmt;
use crate::shell::{render_page, PageMeta, Section};
use crate::signal_reads::failure_status;
use crate::UiContext;
use didban_auth::Viewer;

/// A trace id as typed: hex, any case, up to 32 digits (shorter ones are zero-padded on the
/// left, as Jaeger does). `None` when it is not one.
pub fn normalize_trace_id(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() || t.len() > 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = format!("{t:0>32}");
    is_valid_hex_id(&id, 32).then_some(id)
}

pub(super) async fn trace_page(
    State(ctx): State<UiContext>,
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Response {
    let Some(id) = normalize_trace_id(&raw) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid trace id",
            format!("{raw:?} is not a trace id: expected up to 32 hexadecimal digits, not all zero"),
        );
    };
    let store = ctx.trace_reads.clone();
    let lookup = id.clone();
    let spans = match tokio::task::spawn_blocking(move || store.trace(&lookup)).await {
        Ok(Ok(spans)) => spans,
        Ok(Err(e)) => return error_page(failure_status(&e), "Trace lookup failed", e.to_string()),
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Trace lookup failed",
                e.to_string(),
            )
        }
    };
    if spans.is_empty() {
        return error_page(
            StatusCode::NOT_FOUND,
            "Trace not found",
            format!("No spans of trace {id} are stored (it may be older than the retention)."),
        );
    }
    let meta = PageMeta::for_viewer(format!("Trace {}", &id[..8]), Section::Traces, &viewer);
    let Html(html) = render_page(meta, move || trace_view(id, spans));
    (StatusCode::OK, Html(html)).into_response()
}

fn trace_view(id: String, spans: Vec<Span>) -> impl IntoView {
    let order = rows(&spans);
    let path = critical_path(&spans);
    let t0 = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let t1 = spans.iter().map(|s| s.end_unix_nano()).max().unwrap_or(t0);
    let total = (t1 - t0).max(1);
    let colours = service_colours(order.iter().map(|r| spans[r.index].service.as_str()));
    let root = order.first().map(|r| &spans[r.index]);
    let title = root
        .map(|s| format!("{}: {}", s.service, s.name))
        .unwrap_or_default();
    let errors = spans.iter().filter(|s| s.status_code == status::ERROR).count();
    let err_class = if errors > 0 { "err" } else { "" };
    let mut services: Vec<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let logs_href = pagefmt::link(
        "/logs",
        &[
            ("q", &format!("trace_id:{id}")),
            ("from", &(t0.div_euclid(1_000_000) - 300_000).to_string()),
            ("to", &(t1.div_euclid(1_000_000) + 300_000).to_string()),
        ],
    );
    let pct = move |t: i64| ((t - t0) as f64 / total as f64 * 100.0).clamp(0.0, 100.0);
    let ruler = (0..=4)
        .map(|k| {
            let left = f64::from(k) * 25.0;
            let label = pagefmt::duration_ns(total * i64::from(k) / 4);
            view! { <span class="tick" style=format!("left:{left}%")>{label}</span> }
        })
        .collect_view();
    let legend = services
        .iter()
        .map(|s| {
            let k = colours.get(*s).copied().unwrap_or(0);
            view! { <li><span class=format!("swatch svc-{k}") aria-hidden="true"></span>{s.to_string()}</li> }
        })
        .collect_view();
    let list = order
        .iter()
        .map(|r| {
            let s = &spans[r.index];
            let segs: Vec<Segment> = path.iter().copied().filter(|g| g.span == r.index).collect();
            let colour = colours.get(&s.service).copied().unwrap_or(0);
            span_row(s, r.depth, colour, &segs, t0, &pct)
        })
        .collect_view();
    let on_path: usize = {
        let mut v: Vec<usize> = path.iter().map(|g| g.span).collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    view! {
        <h1>"Trace "<code class="trace-id">{id.clone()}</code></h1>
        <p class="trace-title">{title}</p>
        <dl class="summary trace-summary">
            <dt>"Started"</dt><dd>{pagefmt::time_ns(t0)}</dd>
            <dt>"Duration"</dt><dd>{pagefmt::duration_ns(t1 - t0)}</dd>
            <dt>"Spans"</dt><dd>{spans.len()}</dd>
            <dt>"Services"</dt><dd>{services.len()}</dd>
            <dt>"Errors"</dt><dd class=err_class>{errors}</dd>
            <dt>"Critical path"</dt><dd>{format!("{on_path} spans")}</dd>
        </dl>
        <p class="trace-links">
            <a href=logs_href>"Logs of this trace"</a>" · "
            <a href=format!("/api/traces/{id}")>"JSON"</a>
        </p>
        <ul class="legend">{legend}<li><span class="swatch crit-swatch" aria-hidden="true"></span>"Critical path"</li></ul>
        <div class="waterfall" role="list" aria-label="Spans">
            <div class="wf-head" aria-hidden="true">
                <span class="label">"Service: operation"</span>
                <span class="ruler">{ruler}</span>
            </div>
            {list}
        </div>
    }
}

fn span_row(
    s: &Span,
    depth: usize,
    colour: usize,
    segs: &[Segment],
    t0: i64,
    pct: &dyn Fn(i64) -> f64,
) -> impl IntoView {
    let is_err = s.status_code == status::ERROR;
    let crit = !segs.is_empty();
    let mut class = String::from("span-row");
    if crit {
        class.push_str(" crit");
    }
    if is_err {
        class.push_str(" err");
    }
    let left = pct(s.start_unix_nano);
    let width = (pct(s.end_unix_nano()) - left).max(0.15);
    let bar_style = format!("left:{left:.3}%;width:{width:.3}%");
    let seg_views = segs
        .iter()
        .map(|g| {
            let l = pct(g.start);
            let w = (pct(g.end) - l).max(0.1);
            view! { <span class="crit-seg" style=format!("left:{l:.3}%;width:{w:.3}%")></span> }
        })
        .collect_view();
    let offset = pagefmt::duration_ns(s.start_unix_nano - t0);
    let dur = pagefmt::duration_ns(s.duration_nano);
    let err_badge = is_err.then(|| view! { <span class="err-badge" title="Error status">"error"</span> });
    let crit_note = crit.then(|| view! { <span class="visually-hidden">" (on the critical path)"</span> });
    view! {
        <div class=class role="listitem" data-depth=depth.to_string() data-span-id=s.span_id.clone()>
            <details>
                <summary>
                    <span class="label" style=format!("--depth:{depth}")>
                        <span class=format!("swatch svc-{colour}") aria-hidden="true"></span>
                        <span class="svc">{s.service.clone()}</span>" "
                        <span class="op">{s.name.clone()}</span>
                        {err_badge}{crit_note}
                    </span>
                    <span class="timeline">
                        <span class=format!("bar svc-{colour}") style=bar_style></span>
                        {seg_views}
                        <span class="dur">{dur}</span>
                    </span>
                </summary>
                {span_details(s, offset)}
            </details>
        </div>
    }
}

fn span_details(s: &Span, offset: String) -> impl IntoView {
    let events = if s.events.is_empty() {
        view! { <p class="muted">"none"</p> }.into_any()
    } else {
        let items = s
            .events
            .iter()
            .map(|e| {
                let at = format!("+{}", pagefmt::duration_ns(e.time_unix_nano - s.start_unix_nano));
                view! {
                    <li>
                        <time>{pagefmt::time_ns(e.time_unix_nano)}</time>" "<span class="muted">{at}</span>" "
                        <strong>{e.name.clone()}</strong>
                        {(!e.attributes.is_empty()).then(|| kv_list(&e.attributes))}
                    </li>
                }
            })
            .collect_view();
        view! { <ol class="events">{items}</ol> }.into_any()
    };
    let links = if s.links.is_empty() {
        view! { <p class="muted">"none"</p> }.into_any()
    } else {
        let items = s
            .links
            .iter()
            .map(|l| {
                view! {
                    <li>
                        <a href=format!("/traces/{}", l.trace_id)>{l.trace_id.clone()}</a>" span "
                        <code>{l.span_id.clone()}</code>
                        {kv_list(&l.attributes)}
                    </li>
                }
            })
            .collect_view();
        view! { <ul class="links">{items}</ul> }.into_any()
    };
    let parent = if s.parent_span_id.is_empty() {
        "—".to_string()
    } else {
        s.parent_span_id.clone()
    };
    view! {
        <div class="span-detail">
            <dl class="kv">
                <dt>"Span id"</dt><dd><code>{s.span_id.clone()}</code></dd>
                <dt>"Parent"</dt><dd><code>{parent}</code></dd>
                <dt>"Kind"</dt><dd>{kind_name(s.kind)}</dd>
                <dt>"Status"</dt><dd>{status_name(s.status_code)}" "{s.status_message.clone()}</dd>
                <dt>"Start"</dt><dd>{pagefmt::time_ns(s.start_unix_nano)}" (+"{offset}")"</dd>
                <dt>"Duration"</dt><dd>{pagefmt::duration_ns(s.duration_nano)}</dd>
                <dt>"Scope"</dt><dd>{format!("{} {}", s.scope_name, s.scope_version)}</dd>
                <dt>"Trace state"</dt><dd>{s.trace_state.clone()}</dd>
            </dl>
            <h3>"Attributes"</h3>{kv_list(&s.attributes)}
            <h3>"Resource"</h3>{kv_list(&s.resource)}
            <h3>"Events"</h3>{events}
            <h3>"Links"</h3>{links}
        </div>
    }
}

/// The series colours services get, in order; red (`s1`) is left out because it marks errors.
const SERVICE_PALETTE: [usize; 9] = [0, 2, 3, 4, 5, 6, 7, 9, 8];

/// Colour class index of each service, in order of first appearance, cycling over the series
/// colours other than red.
fn service_colours<'a>(names: impl IntoIterator<Item = &'a str>) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    for name in names {
        let next = SERVICE_PALETTE[out.len() % SERVICE_PALETTE.len()];
        out.entry(name.to_string()).or_insert(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_normalized_or_refused() {
        assert_eq!(
            normalize_trace_id("0AF7651916CD43DD8448EB211C80319C").as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        assert_eq!(
            normalize_trace_id("abc").as_deref(),
            Some("00000000000000000000000000000abc")
        );
        assert_eq!(normalize_trace_id("xyz"), None);
        assert_eq!(normalize_trace_id("0"), None);
        assert_eq!(normalize_trace_id(&"a".repeat(33)), None);
    }
}
