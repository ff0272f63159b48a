//! Creating, editing, saving, deleting and importing dashboards (Editor role). The editor
//! has two forms over the same dashboard: the whole YAML in a textarea, and a form with the
//! title, tags and each panel's title, type, query, unit and layout. A refused save shows the
//! error next to the form and keeps what was typed.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use leptos::prelude::*;

use crate::chart::escape;
use crate::dashboard::store::{self, StoreError};
use crate::dashboard::{grafana, Dashboard, Panel, PanelKind, PanelQuery};
use crate::pages::error::error_page;
use crate::shell::{render_page, PageMeta, Section};
use crate::UiContext;
use didban_auth::{Role, Viewer};

/// What a new dashboard starts as.
const NEW_YAML: &str = "id: my-dashboard
title: My dashboard
tags: []
time:
  from: now-1h
  to: now
variables:
  - name: instance
    type: query
    query: label_values(up, instance)
    include_all: true
panels:
  - title: Targets up
    type: timeseries
    queries:
      - expr: up{instance=~\"$instance\"}
        legend: \"{{job}} {{instance}}\"
    x: 0
    y: 0
    w: 12
    h: 8
";

fn forbidden() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not allowed",
        "Changing dashboards needs the Editor role.".to_string(),
    )
}

fn form_pairs(body: &[u8]) -> Result<Vec<(String, String)>, Box<Response>> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).map_err(|e| {
        Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            format!("bad form: {e}"),
        ))
    })
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// What the editor page shows.
struct Editor {
    heading: String,
    post_url: String,
    yaml: String,
    errors: Vec<String>,
    delete_url: Option<String>,
}

fn editor_page(viewer: &Viewer, status: StatusCode, ed: Editor) -> Response {
    let meta = PageMeta::for_viewer(ed.heading.clone(), Section::Dashboards, viewer);
    let parsed = serde_yaml::from_str::<Dashboard>(&ed.yaml).ok();
    let csrf1 = viewer.csrf.clone();
    let csrf2 = viewer.csrf.clone();
    let csrf3 = viewer.csrf.clone();
    let Html(html) = render_page(meta, move || {
        let hidden = |token: String| {
            view! { <input type="hidden" name=Viewer::CSRF_FIELD value=token/> }
        };
        let errors = (!ed.errors.is_empty()).then(|| {
            let items = ed
                .errors
                .into_iter()
                .map(|e| view! { <li>{e}</li> })
                .collect_view();
            view! { <div class="form-errors" role="alert" id="editor-errors"><ul>{items}</ul></div> }
        });
        let fields_form = parsed.map(|d| {
            let panels = d
                .panels
                .iter()
                .enumerate()
                .map(|(i, p)| panel_fieldset(i, p, false))
                .collect_view();
            let new_panel = panel_fieldset(d.panels.len(), &Panel::new("", PanelKind::Timeseries), true);
            view! {
                <form method="post" action=ed.post_url.clone() class="dash-fields">
                    {hidden(csrf2)}
                    <input type="hidden" name="mode" value="fields"/>
                    <input type="hidden" name="base" value=ed.yaml.clone()/>
                    <h2>"Title, tags and panels"</h2>
                    <label>"Id "<input name="id" value=d.id.clone() required/></label>
                    <label>"Title "<input name="title" value=d.title.clone() required size="40"/></label>
                    <label>"Tags (comma-separated) "<input name="tags" value=d.tags.join(", ") size="30"/></label>
                    {panels}
                    {new_panel}
                    <button type="submit">"Save"</button>
                </form>
            }
        });
        let delete = ed.delete_url.map(|url| {
            view! {
                <form method="post" action=url class="dash-delete">
                    {hidden(csrf3)}
                    <button type="submit" class="danger">"Delete dashboard"</button>
                </form>
            }
        });
        view! {
            <h1>{ed.heading}</h1>
            <p><a href="/dashboards">"All dashboards"</a></p>
            {errors}
            <div class="dash-editor">
                <form method="post" action=ed.post_url.clone() class="dash-yaml">
                    {hidden(csrf1)}
                    <input type="hidden" name="mode" value="yaml"/>
                    <h2>"YAML"</h2>
                    <label for="dash-yaml-text">"The whole dashboard (format in docs/ui.md)"</label>
                    <textarea id="dash-yaml-text" name="yaml" rows="32" cols="80" spellcheck="false" inner_html=escape(&ed.yaml)></textarea>
                    <button type="submit">"Save YAML"</button>
                </form>
                {fields_form}
            </div>
            {delete}
        }
    });
    (status, Html(html)).into_response()
}

/// The per-panel fields; `is_new` makes an empty "add a panel" set.
fn panel_fieldset(i: usize, p: &Panel, is_new: bool) -> impl IntoView {
    let name = move |f: &str| format!("p{i}.{f}");
    let legend = if is_new {
        "Add a panel (leave the title empty to add none)".to_string()
    } else {
        format!("Panel {}: {}", i + 1, p.title)
    };
    let kind = p.kind;
    let types = PanelKind::ALL
        .into_iter()
        .map(|k| view! { <option value=k.as_str() selected={k == kind}>{k.as_str()}</option> })
        .collect_view();
    let (query, legend_text) = match p.kind {
        PanelKind::Text => (p.text.clone(), String::new()),
        PanelKind::Logs => (p.query.clone(), String::new()),
        _ => p
            .queries
            .first()
            .map(|q| (q.expr.clone(), q.legend.clone()))
            .unwrap_or_default(),
    };
    let more = p.queries.len().saturating_sub(1);
    let remove = (!is_new).then(|| {
        view! { <label><input type="checkbox" name=name("remove") value="1"/>" Remove"</label> }
    });
    view! {
        <fieldset class="panel-fields">
            <legend>{legend}</legend>
            <label>"Title "<input name=name("title") value=p.title.clone() size="30"/></label>
            <label>"Type "<select name=name("type")>{types}</select></label>
            <label class="wide">"Query (PromQL; text for text panels, log query for logs panels) "
                <textarea name=name("query") rows="2" cols="70" spellcheck="false" inner_html=escape(&query)></textarea>
            </label>
            {(more > 0).then(|| view! { <p class="muted">{format!("{more} more query(ies): edit them in the YAML.")}</p> })}
            <label>"Legend "<input name=name("legend") value=legend_text size="24"/></label>
            <label>"Unit "<input name=name("unit") value=p.unit.clone() size="10"/></label>
            <label>"x "<input type="number" min="0" max="23" name=name("x") value=p.x.to_string()/></label>
            <label>"y "<input type="number" min="0" name=name("y") value=p.y.to_string()/></label>
            <label>"w "<input type="number" min="1" max="24" name=name("w") value=p.w.to_string()/></label>
            <label>"h "<input type="number" min="1" max="100" name=name("h") value=p.h.to_string()/></label>
            {remove}
        </fieldset>
    }
}

/// Applies the field form over the dashboard parsed from `base`.
fn apply_fields(pairs: &[(String, String)]) -> Result<Dashboard, (String, String)> {
    let base = field(pairs, "base").unwrap_or("");
    let mut d: Dashboard =
        serde_yaml::from_str(base).map_err(|e| (base.to_string(), format!("<editor>: {e}")))?;
    if let Some(id) = field(pairs, "id") {
        d.id = id.trim().to_string();
    }
    if let Some(t) = field(pairs, "title") {
        d.title = t.trim().to_string();
    }
    if let Some(t) = field(pairs, "tags") {
        d.tags = crate::dashboard::vars::split_list(t);
    }
    let count = d.panels.len();
    let mut keep = Vec::new();
    for i in 0..=count {
        let get = |f: &str| field(pairs, &format!("p{i}.{f}"));
        let mut p = match d.panels.get(i) {
            Some(p) => p.clone(),
            None => {
                if get("title").is_none_or(|t| t.trim().is_empty()) {
                    continue;
                }
                let mut p = Panel::new("", PanelKind::Timeseries);
                p.y = d.panels.iter().map(|p| p.y + p.h).max().unwrap_or(0);
                p
            }
        };
        if get("remove") == Some("1") {
            continue;
        }
        let err = |m: String| (d.to_yaml(), format!("<editor>: panels[{i}]: {m}"));
        if let Some(t) = get("title") {
            p.title = t.trim().to_string();
        }
        if let Some(t) = get("type") {
            p.kind = PanelKind::parse(t).ok_or_else(|| err(format!("type: {t:?} is not a panel type")))?;
        }
        if let Some(u) = get("unit") {
            p.unit = u.trim().to_string();
        }
        for (f, slot) in [("x", &mut p.x), ("y", &mut p.y), ("w", &mut p.w), ("h", &mut p.h)] {
            if let Some(v) = get(f).map(str::trim).filter(|v| !v.is_empty()) {
                *slot = v
                    .parse()
                    .map_err(|_| err(format!("{f}: {v:?} is not a whole number")))?;
            }
        }
        if let Some(query) = get("query").map(|q| q.trim().replace("\r\n", "\n")) {
            let legend = get("legend").map(|q| q.trim().to_string()).unwrap_or_default();
            set_query(&mut p, query, legend);
        }
        keep.push(p);
    }
    d.panels = keep;
    d.validate()
        .map_err(|e| (d.to_yaml(), format!("<editor>: {e}")))?;
    Ok(d)
}

/// Puts the single-query field into the panel: text for text panels, the log query for logs
/// panels, else the first PromQL query (an empty field removes it).
fn set_query(p: &mut Panel, query: String, legend: String) {
    match p.kind {
        PanelKind::Text => {
            p.text = query;
            p.queries.clear();
        }
        PanelKind::Logs => {
            p.query = query;
            p.queries.clear();
        }
        _ => {
            if query.is_empty() {
                if !p.queries.is_empty() {
                    p.queries.remove(0);
                }
            } else if let Some(q) = p.queries.first_mut() {
                q.expr = query;
                q.legend = legend;
            } else {
                p.queries.push(PanelQuery { expr: query, legend });
            }
        }
    }
}

/// The dashboard a save form carries: `Ok`, or the text to show again and the error.
fn submitted(pairs: &[(String, String)]) -> Result<Dashboard, (String, String)> {
    if field(pairs, "mode") == Some("fields") {
        return apply_fields(pairs);
    }
    let yaml = field(pairs, "yaml").unwrap_or("").replace("\r\n", "\n");
    Dashboard::from_yaml("<editor>", &yaml).map_err(|e| (yaml.clone(), e.to_string()))
}

pub(super) async fn new_form(viewer: Viewer) -> Response {
    if !viewer.can(Role::Editor) {
        return forbidden();
    }
    let ed = Editor {
        heading: "New dashboard".into(),
        post_url: "/dashboards/new".into(),
        yaml: NEW_YAML.to_string(),
        errors: Vec::new(),
        delete_url: None,
    };
    editor_page(&viewer, StatusCode::OK, ed)
}

pub(super) async fn edit_form(
    State(ctx): State<UiContext>,
    Path(id): Path<String>,
    viewer: Viewer,
) -> Response {
    if !viewer.can(Role::Editor) {
        return forbidden();
    }
    let cat = store::load(&ctx);
    let Some(entry) = cat.get(&id) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Dashboard not found",
            format!("There is no dashboard with id {id:?}."),
        );
    };
    let mut d = entry.dashboard.clone();
    let editable = entry.source.editable();
    let heading = if editable {
        format!("Edit {}", d.title)
    } else {
        d.id = format!("{}-copy", d.id);
        d.title = format!("{} (copy)", d.title);
        format!("Save a copy of {}", entry.dashboard.title)
    };
    let ed = Editor {
        heading,
        post_url: format!("/dashboards/{id}"),
        yaml: d.to_yaml(),
        errors: Vec::new(),
        delete_url: editable.then(|| format!("/dashboards/{id}/delete")),
    };
    editor_page(&viewer, StatusCode::OK, ed)
}

async fn save_common(ctx: UiContext, viewer: Viewer, original: Option<String>, body: Bytes) -> Response {
    if !viewer.can(Role::Editor) {
        return forbidden();
    }
    let pairs = match form_pairs(&body) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let cat = store::load(&ctx);
    let orig_entry = original.as_deref().and_then(|id| cat.get(id));
    if original.is_some() && orig_entry.is_none() {
        return error_page(
            StatusCode::NOT_FOUND,
            "Dashboard not found",
            format!(
                "There is no dashboard with id {:?}.",
                original.unwrap_or_default()
            ),
        );
    }
    let editable = orig_entry.is_some_and(|e| e.source.editable());
    let post_url = match &original {
        Some(id) => format!("/dashboards/{id}"),
        None => "/dashboards/new".to_string(),
    };
    let delete_url = original
        .as_ref()
        .filter(|_| editable)
        .map(|id| format!("/dashboards/{id}/delete"));
    let heading = match orig_entry {
        Some(e) if editable => format!("Edit {}", e.dashboard.title),
        Some(e) => format!("Save a copy of {}", e.dashboard.title),
        None => "New dashboard".to_string(),
    };
    let dash = match submitted(&pairs) {
        Ok(d) => d,
        Err((yaml, error)) => {
            let ed = Editor {
                heading,
                post_url,
                yaml,
                errors: vec![error],
                delete_url,
            };
            return editor_page(&viewer, StatusCode::UNPROCESSABLE_ENTITY, ed);
        }
    };
    let previous = original.as_deref().filter(|_| editable);
    let result = {
        let ctx = ctx.clone();
        let dash = dash.clone();
        let previous = previous.map(str::to_string);
        tokio::task::spawn_blocking(move || store::save(&ctx, &dash, previous.as_deref())).await
    };
    match result {
        Ok(Ok(())) => see_other(&format!("/dashboards/{}", dash.id)),
        Ok(Err(e)) => {
            let status = match e {
                StoreError::ReadOnly { .. } | StoreError::Exists(_) => StatusCode::CONFLICT,
                StoreError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let ed = Editor {
                heading,
                post_url,
                yaml: dash.to_yaml(),
                errors: vec![e.to_string()],
                delete_url,
            };
            editor_page(&viewer, status, ed)
        }
        Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, "Save failed", e.to_string()),
    }
}

pub(super) async fn save_new(State(ctx): State<UiContext>, viewer: Viewer, body: Bytes) -> Response {
    save_common(ctx, viewer, None, body).await
}

pub(super) async fn save(
    State(ctx): State<UiContext>,
    Path(id): Path<String>,
    viewer: Viewer,
    body: Bytes,
) -> Response {
    save_common(ctx, viewer, Some(id), body).await
}

pub(super) async fn delete(State(ctx): State<UiContext>, Path(id): Path<String>, viewer: Viewer) -> Response {
    if !viewer.can(Role::Editor) {
        return forbidden();
    }
    match store::delete(&ctx, &id) {
        Ok(()) => see_other("/dashboards"),
        Err(e @ StoreError::NotFound(_)) => {
            error_page(StatusCode::NOT_FOUND, "Dashboard not found", e.to_string())
        }
        Err(e @ StoreError::ReadOnly { .. }) => {
            error_page(StatusCode::CONFLICT, "Cannot delete", e.to_string())
        }
        Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, "Delete failed", e.to_string()),
    }
}

fn import_page(viewer: &Viewer, status: StatusCode, json: String, error: Option<String>) -> Response {
    let meta = PageMeta::for_viewer("Import from Grafana", Section::Dashboards, viewer);
    let csrf = viewer.csrf.clone();
    let Html(html) = render_page(meta, move || {
        let error = error.map(|e| view! { <div class="form-errors" role="alert"><p>{e}</p></div> });
        view! {
            <h1>"Import a Grafana dashboard"</h1>
            <p>"Paste the dashboard JSON (Share → Export, or the JSON model; schemaVersion 16 or later). Prometheus queries, panels, layout, units, thresholds and variables are converted; what cannot be is listed in a text panel."</p>
            {error}
            <form method="post" action="/dashboards/import" class="dash-import">
                <input type="hidden" name=Viewer::CSRF_FIELD value=csrf/>
                <label for="grafana-json">"Dashboard JSON"</label>
                <textarea id="grafana-json" name="json" rows="24" cols="80" spellcheck="false" inner_html=escape(&json)></textarea>
                <button type="submit">"Import"</button>
            </form>
        }
    });
    (status, Html(html)).into_response()
}

pub(super) async fn import_form(viewer: Viewer) -> Response {
    if !viewer.can(Role::Editor) {
        return forbidden();
    }
    import_page(&viewer, StatusCode::OK, String::new(), None)
}

pub(super) async fn import(State(ctx): State<UiContext>, viewer: Viewer, body: Bytes) -> Response {
    if !viewer.can(Role::Editor) {
        return forbidden();
    }
    let pairs = match form_pairs(&body) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    let json = field(&pairs, "json").unwrap_or("").to_string();
    let dash = match grafana::import(&json) {
        Ok(d) => d,
        Err(e) => {
            return import_page(
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                json,
                Some(e.to_string()),
            )
        }
    };
    match store::save(&ctx, &dash, None) {
        Ok(()) => see_other(&format!("/dashboards/{}", dash.id)),
        Err(e) => {
            // Converted but not saved (usually the id is taken): continue in the editor.
            let ed = Editor {
                heading: "New dashboard (imported)".into(),
                post_url: "/dashboards/new".into(),
                yaml: dash.to_yaml(),
                errors: vec![e.to_string()],
                delete_url: None,
            };
            editor_page(&viewer, StatusCode::CONFLICT, ed)
        }
    }
}
