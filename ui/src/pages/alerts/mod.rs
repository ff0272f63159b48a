//! `GET /alerts`: alert and recording rules by group (state, health, last evaluation, last
//! error), the pending and firing alerts with a Silence link each, the silences with an
//! Expire button, and the notification history. Silences are created and expired by the
//! handlers in [`silences`].

pub mod receivers;
pub mod silences;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use didban_alerting::eval::AlertState;
use didban_alerting::notify::log::HistoryItem;
use didban_alerting::notify::silence::Silence;
use didban_alerting::rules::Rule;
use didban_alerting::Alerting;
use leptos::prelude::*;
use serde::Deserialize;

use crate::pages::pagefmt::{self, now_ms};
use crate::shell::{render_page, PageMeta, Section};
use crate::viewer::CsrfField;
use crate::UiContext;
use didban_auth::{Role, Viewer};

pub(crate) fn routes() -> Router<UiContext> {
    Router::new()
        .route("/alerts", get(alerts_page))
        .route("/alerts/silences/new", get(silences::new_form))
        .route("/alerts/silences", post(silences::create))
        .route("/alerts/silences/{id}/expire", post(silences::expire))
        .merge(receivers::routes())
}

/// Notices after a redirect from a successful POST.
#[derive(Debug, Default, Deserialize)]
struct Notice {
    silenced: Option<String>,
    expired: Option<String>,
}

/// One rule as the page shows it.
struct RuleView {
    name: String,
    kind: &'static str,
    expr: String,
    state: Option<&'static str>,
    health: &'static str,
    last_eval_ms: Option<i64>,
    eval_secs: f64,
    last_error: Option<String>,
}

struct GroupView {
    name: String,
    file: String,
    /// `pack:<name>`, `file:<path>` or `config:<key>`.
    origin: String,
    interval_secs: f64,
    rules: Vec<RuleView>,
}

/// One pending or firing alert.
struct AlertView {
    rule: String,
    state: &'static str,
    labels: Vec<(String, String)>,
    summary: String,
    value: f64,
    active_at_ms: i64,
}

/// Everything the page shows, read from the engine.
struct Snapshot {
    groups: Vec<GroupView>,
    alerts: Vec<AlertView>,
    reload_errors: Vec<String>,
    silences: Vec<Silence>,
    history: Vec<HistoryItem>,
}

async fn snapshot(a: &Alerting, now: i64) -> Snapshot {
    let mut groups = Vec::new();
    let mut alerts = Vec::new();
    for g in a.manager.groups() {
        let g = g.lock().await;
        let mut rules = Vec::new();
        for r in &g.rules {
            let (kind, expr, state) = match r.rule.as_ref() {
                Rule::Alerting(al) => ("alerting", al.expr.clone(), Some(r.alerts.rule_state().as_str())),
                Rule::Recording(rec) => ("recording", rec.expr.clone(), None),
            };
            rules.push(RuleView {
                name: r.rule.name().to_string(),
                kind,
                expr,
                state,
                health: r.health.as_str(),
                last_eval_ms: r.last_eval_ms,
                eval_secs: r.eval_duration.as_secs_f64(),
                last_error: r.last_error.clone(),
            });
            for al in r.alerts.active.values() {
                if al.state == AlertState::Inactive {
                    continue;
                }
                alerts.push(AlertView {
                    rule: r.rule.name().to_string(),
                    state: al.state.as_str(),
                    labels: al
                        .labels
                        .iter()
                        .map(|l| (l.name.to_string(), l.value.to_string()))
                        .collect(),
                    summary: al.annotations.get("summary").cloned().unwrap_or_default(),
                    value: al.value,
                    active_at_ms: al.active_at_ms,
                });
            }
        }
        groups.push(GroupView {
            name: g.group.name.clone(),
            file: g.group.file.clone(),
            origin: g.group.origin.clone(),
            interval_secs: g.interval.as_secs_f64(),
            rules,
        });
    }
    // Firing first, then by rule and labels.
    alerts.sort_by(|x, y| {
        (x.state != "firing", &x.rule, &x.labels).cmp(&(y.state != "firing", &y.rule, &y.labels))
    });
    let status = a.manager.status();
    Snapshot {
        groups,
        alerts,
        reload_errors: if status.ok { Vec::new() } else { status.errors },
        silences: a.notifier.silences.list(now),
        history: a.notifier.log.history(100),
    }
}

async fn alerts_page(State(ctx): State<UiContext>, viewer: Viewer, Query(notice): Query<Notice>) -> Response {
    let meta = PageMeta::for_viewer("Alerts", Section::Alerts, &viewer);
    let Some(alerting) = ctx.alerting.clone() else {
        let Html(html) = render_page(meta, || {
            view! {
                <h1>"Alerts"</h1>
                <p class="notice">"Alerting is disabled on this server. Enable it with "<code>"[alerting] enabled = true"</code>
                    " (see the configuration docs) to evaluate rules and send notifications."</p>
            }
        });
        return (StatusCode::OK, Html(html)).into_response();
    };
    let now = now_ms();
    let snap = snapshot(&alerting, now).await;
    let Html(html) = render_page(meta, move || {
        let notice = notice
            .silenced
            .map(|id| format!("Silence {id} created."))
            .or(notice.expired.map(|id| format!("Silence {id} expired.")))
            .map(|text| view! { <p class="notice" role="status">{text}</p> });
        let reload = (!snap.reload_errors.is_empty()).then(|| {
            let items = snap.reload_errors.iter().map(|e| view! { <li>{e.clone()}</li> }).collect_view();
            view! { <section class="error"><h2>"Rule files are invalid (the previous rules keep running)"</h2><ul>{items}</ul></section> }
        });
        let firing = snap.alerts.iter().filter(|a| a.state == "firing").count();
        let pending = snap.alerts.len() - firing;
        view! {
            <h1>"Alerts"</h1>
            {notice}
            {reload}
            <nav class="toc" aria-label="On this page">
                <a href="#active">{format!("Alerts ({firing} firing, {pending} pending)")}</a>
                <a href="#rules">"Rules"</a>
                <a href="#silences">{format!("Silences ({})", snap.silences.len())}</a>
                <a href="#notifications">"Notifications"</a>
                <a href="/alerts/receivers">"Receivers"</a>
                <a href="/alerts/silences/new">"New silence"</a>
            </nav>
            {alerts_section(&snap.alerts)}
            {rules_section(&snap.groups)}
            {silences_section(&snap.silences, &viewer, now)}
            {receivers::history_section(&snap.history)}
        }
    });
    (StatusCode::OK, Html(html)).into_response()
}

fn labels_view(labels: &[(String, String)]) -> impl IntoView {
    let items = labels
        .iter()
        .map(|(k, v)| view! { <li class="label"><span class="k">{k.clone()}</span>"="<span class="v">{v.clone()}</span></li> })
        .collect_view();
    view! { <ul class="labels">{items}</ul> }
}

fn alerts_section(alerts: &[AlertView]) -> impl IntoView {
    let empty = alerts
        .is_empty()
        .then(|| view! { <p class="empty">"No alert is pending or firing."</p> });
    let has = empty.is_none();
    let rows = alerts
        .iter()
        .map(|a| {
            let matchers: Vec<(&str, String)> = a
                .labels
                .iter()
                .filter(|(k, _)| k != "__name__")
                .map(|(k, v)| ("matcher", silences::equal_matcher(k, v)))
                .collect();
            let pairs: Vec<(&str, &str)> = matchers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let silence = pagefmt::link("/alerts/silences/new", &pairs);
            view! {
                <tr class=format!("alert state-{}", a.state)>
                    <td><span class=format!("state state-{}", a.state)>{a.state}</span></td>
                    <th scope="row">{a.rule.clone()}<br/><small>{a.summary.clone()}</small></th>
                    <td>{labels_view(&a.labels)}</td>
                    <td class="num">{pagefmt::number(a.value)}</td>
                    <td><time datetime=pagefmt::rfc3339_ms(a.active_at_ms)>{pagefmt::time_ms(a.active_at_ms)}</time></td>
                    <td><a class="button" href=silence>"Silence"</a></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section id="active" aria-labelledby="active-h">
            <h2 id="active-h">"Firing and pending alerts"</h2>
            {empty}
            {has.then(|| view! {
            <table class="alerts-table">
                <thead><tr><th scope="col">"State"</th><th scope="col">"Alert"</th><th scope="col">"Labels"</th>
                    <th scope="col">"Value"</th><th scope="col">"Active since (UTC)"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            })}
        </section>
    }
}

fn rules_section(groups: &[GroupView]) -> impl IntoView {
    let empty = groups
        .is_empty()
        .then(|| view! { <p class="empty">"No rule files are loaded."</p> });
    let list = groups
        .iter()
        .map(|g| {
            let rows = g
                .rules
                .iter()
                .map(|r| {
                    let origin = g.origin.clone();
                    let state = r.state.unwrap_or("—");
                    let last = r.last_eval_ms.map(pagefmt::time_ms).unwrap_or_else(|| "never".into());
                    let err = r.last_error.clone().map(|e| view! { <p class="error">{e}</p> });
                    view! {
                        <tr class=format!("rule health-{}", r.health)>
                            <th scope="row">{r.name.clone()}<br/><code class="expr">{r.expr.clone()}</code>{err}</th>
                            <td>{r.kind}</td>
                            <td class="origin"><code>{origin}</code></td>
                            <td><span class=format!("state state-{state}")>{state}</span></td>
                            <td><span class=format!("health health-{}", r.health)>{r.health}</span></td>
                            <td>{last}</td>
                            <td class="num">{pagefmt::duration_secs(r.eval_secs)}</td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <h3>{g.name.clone()}" "<small class="muted">{format!("{} · every {}", g.file, pagefmt::duration_secs(g.interval_secs))}</small></h3>
                <table class="rules-table">
                    <thead><tr><th scope="col">"Rule"</th><th scope="col">"Type"</th><th scope="col">"Origin"</th><th scope="col">"State"</th>
                        <th scope="col">"Health"</th><th scope="col">"Last evaluation (UTC)"</th><th scope="col">"Took"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            }
        })
        .collect_view();
    view! {
        <section id="rules" aria-labelledby="rules-h">
            <h2 id="rules-h">"Rules"</h2>
            {empty}
            {list}
        </section>
    }
}

fn silences_section(list: &[Silence], viewer: &Viewer, now: i64) -> impl IntoView {
    let can = viewer.can(Role::Editor);
    let empty = list
        .is_empty()
        .then(|| view! { <p class="empty">"No silences."</p> });
    let has = empty.is_none();
    let rows = list
        .iter()
        .map(|s| {
            let state = s.state(now);
            let matchers = s
                .matchers
                .iter()
                .map(|m| view! { <li><code>{silences::format_matcher(m)}</code></li> })
                .collect_view();
            let expire = (can && state != "expired").then(|| {
                view! {
                    <form method="post" action=format!("/alerts/silences/{}/expire", s.id) class="inline">
                        {viewer.csrf_field()}
                        <button type="submit">"Expire"</button>
                    </form>
                }
            });
            view! {
                <tr class=format!("silence state-{state}") data-silence-id=s.id.clone()>
                    <td><span class=format!("state state-{state}")>{state}</span></td>
                    <td><ul class="matchers">{matchers}</ul></td>
                    <td>{s.created_by.clone()}</td>
                    <td>{s.comment.clone()}</td>
                    <td>{pagefmt::time_ms(s.starts_at_ms)}</td>
                    <td>{pagefmt::time_ms(s.ends_at_ms)}</td>
                    <td>{expire}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section id="silences" aria-labelledby="silences-h">
            <h2 id="silences-h">"Silences"</h2>
            <p><a href="/alerts/silences/new">"New silence"</a></p>
            {empty}
            {has.then(|| view! {
            <table class="silences-table">
                <thead><tr><th scope="col">"State"</th><th scope="col">"Matchers"</th><th scope="col">"Author"</th>
                    <th scope="col">"Comment"</th><th scope="col">"Starts (UTC)"</th><th scope="col">"Ends (UTC)"</th>
                    <th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            })}
        </section>
    }
}
