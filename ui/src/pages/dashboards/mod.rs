//! Dashboard pages: the list (`/dashboards?q=&tag=`), the view
//! (`/dashboards/{id}?from=&to=&refresh=&var-x=…`), one panel as an HTML fragment
//! (`/dashboards/{id}/panels/{index}?…`, what auto-refresh swaps in), and the editor, save,
//! delete and Grafana import (in `edit`).

mod edit;
mod panel;
mod state;
mod table;

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::*;

use crate::dashboard::store::{self, Source};
use crate::dashboard::vars::{self, ResolvedVar};
use crate::pages::error::error_page;
use crate::shell::{render_page, PageMeta, Section};
use crate::timerange;
use crate::UiContext;
use didban_auth::{Role, Viewer};
use state::{pairs, prepare, Prepared, ViewParams};

pub(super) fn routes() -> Router<UiContext> {
    Router::new()
        .route("/dashboards", get(list))
        .route("/dashboards/new", get(edit::new_form).post(edit::save_new))
        .route("/dashboards/import", get(edit::import_form).post(edit::import))
        .route("/dashboards/{id}", get(view).post(edit::save))
        .route("/dashboards/{id}/edit", get(edit::edit_form))
        .route("/dashboards/{id}/delete", post(edit::delete))
        .route("/dashboards/{id}/panels/{index}", get(fragment))
}

/// Relative ranges offered by the picker.
const PRESETS: [(&str, &str); 10] = [
    ("now-5m", "Last 5 minutes"),
    ("now-15m", "Last 15 minutes"),
    ("now-30m", "Last 30 minutes"),
    ("now-1h", "Last 1 hour"),
    ("now-3h", "Last 3 hours"),
    ("now-6h", "Last 6 hours"),
    ("now-12h", "Last 12 hours"),
    ("now-24h", "Last 24 hours"),
    ("now-7d", "Last 7 days"),
    ("now-30d", "Last 30 days"),
];

/// Refresh periods offered ("" = off).
const REFRESH: [(&str, &str); 5] = [
    ("off", "Off"),
    ("10s", "10s"),
    ("30s", "30s"),
    ("1m", "1m"),
    ("5m", "5m"),
];

async fn list(State(ctx): State<UiContext>, viewer: Viewer, RawQuery(q): RawQuery) -> Response {
    let params = match pairs(q.as_deref()) {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Bad request", e),
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let (text, tag) = (get("q"), get("tag"));
    let cat = store::load(&ctx);
    let mut tags: Vec<String> = cat
        .entries
        .iter()
        .flat_map(|e| e.dashboard.tags.clone())
        .collect();
    tags.sort();
    tags.dedup();
    let needle = text.to_lowercase();
    let rows: Vec<(String, String, String, Vec<String>, &'static str)> = cat
        .entries
        .iter()
        .filter(|e| tag.is_empty() || e.dashboard.tags.contains(&tag))
        .filter(|e| {
            let d = &e.dashboard;
            needle.is_empty()
                || d.title.to_lowercase().contains(&needle)
                || d.id.contains(&needle)
                || d.description.to_lowercase().contains(&needle)
                || d.tags.iter().any(|t| t.to_lowercase().contains(&needle))
        })
        .map(|e| {
            let d = &e.dashboard;
            (
                d.id.clone(),
                d.title.clone(),
                d.description.clone(),
                d.tags.clone(),
                e.source.label(),
            )
        })
        .collect();
    let errors = cat.errors.clone();
    let editor = viewer.can(Role::Editor);
    let meta = PageMeta::for_viewer("Dashboards", Section::Dashboards, &viewer);
    render_page(meta, move || {
        let tag_options = tags
            .into_iter()
            .map(|t| {
                let sel = t == tag;
                view! { <option value=t.clone() selected=sel>{t.clone()}</option> }
            })
            .collect_view();
        let count = rows.len();
        let body_rows = rows
            .into_iter()
            .map(|(id, title, desc, tags, source)| {
                let tag_links = tags
                    .into_iter()
                    .map(|t| {
                        let href = format!("/dashboards?{}", serde_urlencoded::to_string([("tag", &t)]).unwrap_or_default());
                        view! { <a class="tag" href=href>{t}</a>" " }
                    })
                    .collect_view();
                view! {
                    <tr>
                        <td><a href=format!("/dashboards/{id}")>{title}</a><div class="muted">{desc}</div></td>
                        <td>{tag_links}</td>
                        <td>{source}</td>
                    </tr>
                }
            })
            .collect_view();
        let error_list = (!errors.is_empty()).then(|| {
            let items = errors.into_iter().map(|e| view! { <li>{e}</li> }).collect_view();
            view! {
                <section class="dash-load-errors" role="alert">
                    <h2>"Dashboards that failed to load"</h2>
                    <ul>{items}</ul>
                </section>
            }
        });
        let actions = editor.then(|| {
            view! {
                <p class="dash-actions">
                    <a class="button" href="/dashboards/new">"New dashboard"</a>" "
                    <a class="button" href="/dashboards/import">"Import from Grafana"</a>
                </p>
            }
        });
        view! {
            <h1>"Dashboards"</h1>
            {actions}
            <form class="dash-filter" method="get" action="/dashboards" role="search">
                <label>"Search "<input type="search" name="q" value=text/></label>
                <label>"Tag "
                    <select name="tag">
                        <option value="">"Any"</option>
                        {tag_options}
                    </select>
                </label>
                <button type="submit">"Filter"</button>
            </form>
            {error_list}
            <p class="muted">{format!("{count} dashboard(s)")}</p>
            <table class="dash-list">
                <thead><tr><th scope="col">"Title"</th><th scope="col">"Tags"</th><th scope="col">"Source"</th></tr></thead>
                <tbody>{body_rows}</tbody>
            </table>
        }
    })
    .into_response()
}

/// Loads the dashboard and resolves its view state, or the error page to answer.
async fn load_view(
    ctx: &UiContext,
    id: &str,
    query: Option<&str>,
) -> Result<(Prepared, Source), Box<Response>> {
    let cat = store::load(ctx);
    let Some(entry) = cat.get(id) else {
        return Err(Box::new(error_page(
            StatusCode::NOT_FOUND,
            "Dashboard not found",
            format!("There is no dashboard with id {id:?}."),
        )));
    };
    let params = ViewParams::parse(query)
        .map_err(|e| Box::new(error_page(StatusCode::BAD_REQUEST, "Bad request", e)))?;
    let prepared = prepare(ctx, entry.dashboard.clone(), &params)
        .await
        .map_err(|e| Box::new(error_page(StatusCode::BAD_REQUEST, "Bad request", e)))?;
    Ok((prepared, entry.source.clone()))
}

async fn view(
    State(ctx): State<UiContext>,
    Path(id): Path<String>,
    viewer: Viewer,
    RawQuery(q): RawQuery,
) -> Response {
    let (prepared, source) = match load_view(&ctx, &id, q.as_deref()).await {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let prepared = Arc::new(prepared);
    let panels_html = panel::render_all(&ctx, prepared.clone()).await;
    let meta = PageMeta::for_viewer(prepared.dashboard.title.clone(), Section::Dashboards, &viewer);
    let editor = viewer.can(Role::Editor);
    let p = prepared;
    render_page(meta, move || {
        let d = &p.dashboard;
        let action = format!("/dashboards/{}", d.id);
        let edit_link = editor.then(|| {
            let label = if source.editable() { "Edit" } else { "Save as copy" };
            view! { <a class="button" href=format!("/dashboards/{}/edit", d.id)>{label}</a> }
        });
        let var_controls = p.vars.iter().map(var_control).collect_view();
        let preset_options = PRESETS
            .iter()
            .map(|(v, l)| view! { <option value=*v>{*l}</option> })
            .collect_view();
        let preset_links = PRESETS
            .iter()
            .map(|(v, l)| {
                let mut q: Vec<(String, String)> = serde_urlencoded::from_str(&p.query).unwrap_or_default();
                q.retain(|(k, _)| k != "from" && k != "to");
                q.insert(0, ("from".into(), v.to_string()));
                q.insert(1, ("to".into(), "now".into()));
                let href = format!("{action}?{}", serde_urlencoded::to_string(&q).unwrap_or_default());
                let current = (p.range.from == *v && p.range.to == "now").then_some("true");
                view! { <a href=href aria-current=current>{l.trim_start_matches("Last ")}</a>" " }
            })
            .collect_view();
        let mut refresh_choices: Vec<(String, String)> =
            REFRESH.iter().map(|(v, l)| (v.to_string(), l.to_string())).collect();
        if !refresh_choices.iter().any(|(v, _)| *v == p.refresh) {
            refresh_choices.push((p.refresh.clone(), p.refresh.clone()));
        }
        let refresh_options = refresh_choices
            .into_iter()
            .map(|(v, l)| {
                let sel = p.refresh == v;
                view! { <option value=v selected=sel>{l}</option> }
            })
            .collect_view();
        view! {
            <div class="dash-head">
                <h1>{d.title.clone()}</h1>
                <span class="muted">{source.label()}</span>
                {edit_link}
            </div>
            {(!d.description.is_empty()).then(|| view! { <p class="dash-desc">{d.description.clone()}</p> })}
            <form class="dash-controls" method="get" action=action.clone()>
                {var_controls}
                <label>"From "<input name="from" value=timerange::display(&p.range.from) list="dash-presets" size="20"
                    title="now-1h, YYYY-MM-DD HH:MM:SS (UTC), epoch milliseconds or RFC 3339"/></label>
                <label>"To "<input name="to" value=timerange::display(&p.range.to) size="20"
                    title="now, YYYY-MM-DD HH:MM:SS (UTC), epoch milliseconds or RFC 3339"/></label>
                <span class="muted">"UTC"</span>
                <datalist id="dash-presets">{preset_options}</datalist>
                <label>"Refresh "<select name="refresh">{refresh_options}</select></label>
                <button type="submit">"Apply"</button>
            </form>
            <nav class="dash-presets" aria-label="Time range">{preset_links}</nav>
            <div class="dash-grid" inner_html=panels_html.clone()></div>
        }
    })
    .into_response()
}

/// A labelled `<select>` for one variable (multiple for multi-value), with its error.
fn var_control(v: &ResolvedVar) -> impl IntoView {
    let hidden = v.def.kind == crate::dashboard::VariableKind::Constant;
    let label = v.def.label.clone().unwrap_or_else(|| v.def.name.clone());
    let name = format!("var-{}", v.def.name);
    let mut options: Vec<(String, String)> = Vec::new();
    if v.def.include_all {
        options.push((vars::ALL.to_string(), "All".to_string()));
    }
    for o in &v.options {
        options.push((o.clone(), o.clone()));
    }
    for s in &v.selected {
        if !options.iter().any(|(val, _)| val == s) {
            options.push((s.clone(), s.clone()));
        }
    }
    let selected = v.selected.clone();
    let opts = options
        .into_iter()
        .map(|(val, text)| {
            let sel = selected.contains(&val);
            view! { <option value=val selected=sel>{text}</option> }
        })
        .collect_view();
    let error = v
        .error
        .clone()
        .map(|e| view! { <span class="var-error" role="alert">{e}</span> });
    let multiple = v.def.multi;
    let size = if multiple { Some("3") } else { None };
    (!hidden).then(|| {
        view! {
            <label class="var">{label}" "
                <select name=name multiple=multiple size=size>{opts}</select>
                {error}
            </label>
        }
    })
}

async fn fragment(
    State(ctx): State<UiContext>,
    Path((id, index)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let (prepared, _) = match load_view(&ctx, &id, q.as_deref()).await {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let Some(i) = index
        .parse::<usize>()
        .ok()
        .filter(|i| *i < prepared.dashboard.panels.len())
    else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Panel not found",
            format!("Dashboard {id:?} has no panel {index:?}."),
        );
    };
    let html = panel::render_one(&ctx, Arc::new(prepared), i).await;
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}
