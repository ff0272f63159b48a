//! `GET /traces`: the search form (service and operation from the store's catalogue, tags,
//! duration bounds, time range), the hits as a duration-over-time scatter and a list.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use didban_store::traces::{status, Operation, Span, TraceQuery};
use leptos::prelude::*;
use serde::Deserialize;

use crate::chart::escape;
use crate::pages::pagefmt::{self, now_ms};
use crate::shell::{render_page, PageMeta, Section};
use crate::signal_reads::failure_status;
use crate::timerange::TimeRange;
use crate::UiContext;
use didban_auth::Viewer;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 1500;

/// The page's URL parameters (Jaeger's names).
#[derive(Debug, Default, Deserialize)]
pub(super) struct SearchParams {
    service: Option<String>,
    operation: Option<String>,
    tags: Option<String>,
    #[serde(rename = "minDuration")]
    min_duration: Option<String>,
    #[serde(rename = "maxDuration")]
    max_duration: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

/// Tags as typed in Jaeger's search box: `key=value` pairs separated by spaces, values
/// optionally double-quoted (logfmt: `http.method=GET error=true msg="a b \" c"`).
pub fn parse_tags(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err(format!(
                "tag {key:?} is not key=value (example: http.status_code=500 error=true)"
            ));
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return Err(format!("tag {key:?}: the quoted value has no closing quote"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

/// What the list and the scatter show of one trace.
#[derive(Debug, Clone)]
pub(super) struct TraceSummary {
    pub id: String,
    pub root_service: String,
    pub root_name: String,
    pub spans: usize,
    pub errors: usize,
    pub start: i64,
    pub duration: i64,
}

pub(super) fn summarize(spans: &[Span]) -> Option<TraceSummary> {
    let first = spans.first()?;
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let root = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty() || !ids.contains(s.parent_span_id.as_str()))
        .min_by_key(|s| s.start_unix_nano)
        .unwrap_or(first);
    let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_unix_nano()).max().unwrap_or(start);
    Some(TraceSummary {
        id: first.trace_id.clone(),
        root_service: root.service.clone(),
        root_name: root.name.clone(),
        spans: spans.len(),
        errors: spans.iter().filter(|s| s.status_code == status::ERROR).count(),
        start,
        duration: end - start,
    })
}

fn build_query(p: &SearchParams, range: &TimeRange) -> Result<TraceQuery, String> {
    let text = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let dur = |v: &Option<String>, name: &str| -> Result<Option<i64>, String> {
        match text(v) {
            None => Ok(None),
            Some(s) => didban_base::parse_go_duration_nanos(&s)
                .map(Some)
                .map_err(|e| format!("{name}: {e}")),
        }
    };
    let limit = match text(&p.limit) {
        None => DEFAULT_LIMIT,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n.min(MAX_LIMIT),
            _ => {
                return Err(format!(
                    "invalid limit {s:?}: expected a number from 1 to {MAX_LIMIT}"
                ))
            }
        },
    };
    Ok(TraceQuery {
        service: text(&p.service),
        operation: text(&p.operation),
        tags: parse_tags(p.tags.as_deref().unwrap_or_default())?,
        min_duration_nano: dur(&p.min_duration, "min duration")?,
        max_duration_nano: dur(&p.max_duration, "max duration")?,
        start_unix_nano: range.start_ms.saturating_mul(1_000_000),
        end_unix_nano: range.end_ms.saturating_mul(1_000_000),
        limit,
    })
}

pub(super) async fn search_page(
    State(ctx): State<UiContext>,
    viewer: Viewer,
    Query(p): Query<SearchParams>,
) -> Response {
    let reads = ctx.trace_reads.clone();
    // The form's choices; a failure shows in the result below (the search fails too).
    let catalogue = tokio::task::spawn_blocking(move || reads.services())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let result: Result<(Vec<TraceSummary>, TimeRange), (StatusCode, String)> = async {
        let range = TimeRange::parse(p.from.as_deref(), p.to.as_deref(), now_ms())
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        let q = build_query(&p, &range).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        let store = ctx.trace_reads.clone();
        let found = tokio::task::spawn_blocking(move || store.find_traces(&q))
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| (failure_status(&e), e.message))?;
        Ok((found.iter().filter_map(|t| summarize(t)).collect(), range))
    }
    .await;
    let status = result.as_ref().err().map(|e| e.0).unwrap_or(StatusCode::OK);
    let meta = PageMeta::for_viewer("Traces", Section::Traces, &viewer);
    let Html(html) = render_page(meta, move || {
        let form = search_form(&p, &catalogue);
        let body = match result {
            Err((_, message)) => view! {
                <section class="error query-error"><h2>"The search failed"</h2><p role="alert">{message}</p></section>
            }
            .into_any(),
            Ok((found, range)) => results(found, &range).into_any(),
        };
        view! { <h1>"Traces"</h1>{form}{body} }
    });
    (status, Html(html)).into_response()
}

fn search_form(
    p: &SearchParams,
    catalogue: &std::collections::BTreeMap<String, Vec<Operation>>,
) -> impl IntoView {
    let get = |v: &Option<String>| v.clone().unwrap_or_default();
    // Operations per service for the page script, which refills the operation list when the
    // service changes (without it the list follows the service after a search).
    let mut by_service: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
    for (s, list) in catalogue {
        let mut names: Vec<&str> = list.iter().map(|o| o.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        by_service.insert(s.as_str(), names);
    }
    let operations_json = serde_json::to_string(&by_service).unwrap_or_default();
    let service = get(&p.service);
    let operation = get(&p.operation);
    let services = catalogue
        .keys()
        .map(|s| view! { <option value=s.clone() selected={*s == service}>{s.clone()}</option> })
        .collect_view();
    let mut ops: Vec<String> = Vec::new();
    match catalogue.get(&service) {
        Some(list) => ops.extend(list.iter().map(|o| o.name.clone())),
        None if service.is_empty() => {
            for list in catalogue.values() {
                ops.extend(list.iter().map(|o| o.name.clone()));
            }
        }
        None => {}
    }
    ops.sort();
    ops.dedup();
    let ops = ops
        .into_iter()
        .map(|o| {
            let sel = o == operation;
            let label = o.clone();
            view! { <option value=o selected=sel>{label}</option> }
        })
        .collect_view();
    let (from, to) = (get(&p.from), get(&p.to));
    let keep_s = service.clone();
    let keep_o = operation.clone();
    let keep_t = get(&p.tags);
    let keep = [
        ("service", keep_s.as_str()),
        ("operation", keep_o.as_str()),
        ("tags", keep_t.as_str()),
    ];
    view! {
        <form class="search traces-search" method="get" action="/traces" role="search"
            data-operations=operations_json>
            <label>"Service "<select name="service"><option value="">"All services"</option>{services}</select></label>
            <label>"Operation "<select name="operation"><option value="">"All operations"</option>{ops}</select></label>
            <label class="grow">"Tags "<input type="text" name="tags" value=get(&p.tags) size="40"
                placeholder="http.status_code=500 error=true" aria-describedby="tags-hint"/></label>
            <label>"Min duration "<input type="text" name="minDuration" value=get(&p.min_duration) size="7" placeholder="100ms"/></label>
            <label>"Max duration "<input type="text" name="maxDuration" value=get(&p.max_duration) size="7" placeholder="2s"/></label>
            <label>"Limit "<input type="number" name="limit" value=get(&p.limit) min="1" max="1500" placeholder="20"/></label>
            {pagefmt::range_fields(&from, &to, "/traces", &keep)}
            <button type="submit">"Find traces"</button>
            <p id="tags-hint" class="hint">"Tags: "<code>"key=value"</code>" pairs separated by spaces, quote values with spaces ("
                <code>"msg=\"not found\""</code>"); matched against span attributes, then resource attributes; "
                <code>"error=true"</code>" finds error spans. The operation list follows the chosen service (at once with JavaScript, else after searching)."</p>
        </form>
    }
}

fn results(found: Vec<TraceSummary>, range: &TimeRange) -> impl IntoView {
    let svg = scatter_svg(&found, range.start_ms, range.end_ms);
    let empty = found
        .is_empty()
        .then(|| view! { <p class="empty">"No traces match in this range."</p> });
    let has = empty.is_none();
    let rows = found
        .iter()
        .map(|t| {
            let href = format!("/traces/{}", t.id);
            let err_class = if t.errors > 0 { "err" } else { "" };
            view! {
                <tr>
                    <td><a href=href>{format!("{}: {}", t.root_service, t.root_name)}</a>
                        <br/><code class="muted">{t.id[..t.id.len().min(16)].to_string()}</code></td>
                    <td class="num">{t.spans}</td>
                    <td class=format!("num {err_class}")>{t.errors}</td>
                    <td class="num">{pagefmt::duration_ns(t.duration)}</td>
                    <td>{pagefmt::time_ns(t.start)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section aria-labelledby="scatter-h">
            <h2 id="scatter-h">"Duration over time "<small>{format!("{} traces", found.len())}</small></h2>
            <div class="trace-scatter" inner_html=svg></div>
        </section>
        <section aria-labelledby="list-h">
            <h2 id="list-h">"Traces"</h2>
            {empty}
            {has.then(|| view! {
            <table class="traces-table">
                <thead><tr><th scope="col">"Root service: operation"</th><th scope="col">"Spans"</th>
                    <th scope="col">"Errors"</th><th scope="col">"Duration"</th><th scope="col">"Start (UTC)"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            })}
        </section>
    }
}

/// One dot per trace at (start, duration), linking to the trace; error traces in red.
pub(super) fn scatter_svg(found: &[TraceSummary], start_ms: i64, end_ms: i64) -> String {
    const W: f64 = 1000.0;
    const H: f64 = 180.0;
    const PAD: f64 = 8.0;
    let max = found.iter().map(|t| t.duration).max().unwrap_or(1).max(1) as f64;
    let span = (end_ms - start_ms).max(1) as f64;
    let mut svg = format!(
        r#"<svg class="scatter" viewBox="0 0 {W} {H}" role="img" aria-label="Trace durations over time, longest {}">"#,
        escape(&pagefmt::duration_ns(max as i64))
    );
    svg.push_str(&format!(
        r#"<text class="axis" x="4" y="14">{}</text>"#,
        escape(&pagefmt::duration_ns(max as i64))
    ));
    for (anchor, x, t) in [("start", PAD, start_ms), ("end", W - PAD, end_ms)] {
        svg.push_str(&format!(
            r#"<text class="axis" x="{x}" y="{}" text-anchor="{anchor}">{}</text>"#,
            H - 4.0,
            escape(&pagefmt::time_ms(t))
        ));
    }
    for t in found {
        let x = PAD + ((t.start / 1_000_000 - start_ms) as f64 / span).clamp(0.0, 1.0) * (W - 2.0 * PAD);
        let y = H - PAD - (t.duration as f64 / max) * (H - 2.0 * PAD);
        let r = 3.0 + (t.spans as f64).ln().max(0.0);
        let class = if t.errors > 0 { "dot err" } else { "dot" };
        let tip = format!(
            "{}: {} — {}, {} spans, {} errors",
            t.root_service,
            t.root_name,
            pagefmt::duration_ns(t.duration),
            t.spans,
            t.errors
        );
        svg.push_str(&format!(
            r#"<a href="/traces/{}"><circle class="{class}" cx="{x:.1}" cy="{y:.1}" r="{r:.1}"><title>{}</title></circle></a>"#,
            escape(&t.id),
            escape(&tip)
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_like_jaeger_and_logfmt() {
        assert_eq!(
            parse_tags(r#"http.status_code=500  error=true msg="not found" q="a \"b\"""#).unwrap(),
            vec![
                ("http.status_code".to_string(), "500".to_string()),
                ("error".to_string(), "true".to_string()),
                ("msg".to_string(), "not found".to_string()),
                ("q".to_string(), "a \"b\"".to_string()),
            ]
        );
        assert!(parse_tags("").unwrap().is_empty());
        assert_eq!(parse_tags("k=").unwrap(), vec![("k".to_string(), String::new())]);
        assert!(parse_tags("justaword").unwrap_err().contains("justaword"));
        assert!(parse_tags("=v").is_err());
        assert!(parse_tags(r#"k="open"#).unwrap_err().contains("closing quote"));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            didban_base::parse_go_duration_nanos("100ms").unwrap(),
            100_000_000
        );
        assert_eq!(
            didban_base::parse_go_duration_nanos("1.5s").unwrap(),
            1_500_000_000
        );
        assert_eq!(didban_base::parse_go_duration_nanos("250us").unwrap(), 250_000);
        assert!(didban_base::parse_go_duration_nanos("100").is_err());
        assert!(didban_base::parse_go_duration_nanos("fast").is_err());
    }

    #[test]
    fn scatter_marks_errors_and_escapes_names() {
        let t = |id: &str, errors| TraceSummary {
            id: id.into(),
            root_service: "<img src=x onerror=alert(1)>".into(),
            root_name: "GET".into(),
            spans: 3,
            errors,
            start: 1_500 * 1_000_000,
            duration: 5_000_000,
        };
        let svg = scatter_svg(&[t("aa", 0), t("bb", 2)], 1000, 2000);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches(r#"class="dot err""#).count(), 1);
        assert!(svg.contains(r#"href="/traces/bb""#));
        assert!(!svg.contains("<img"));
        assert!(svg.contains("&lt;img"));
    }
}
