//! `GET /alerts/receivers`: the configured receivers with their integrations and delivery
//! counts, a "Send test notification" button per receiver (`POST /alerts/receivers/test`,
//! editors), whether the last configuration reload was refused and why, and the
//! notification history with every attempt's error.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use didban_alerting::notify::log::HistoryItem;
use didban_alerting::notify::metrics::ReloadStatus;
use didban_alerting::notify::test_send::TestOutcome;
use didban_alerting::Alerting;
use didban_auth::{Role, Viewer};
use leptos::prelude::*;
use serde::Deserialize;

use crate::pages::error::error_page;
use crate::pages::pagefmt;
use crate::shell::{render_page, PageMeta, Section};
use crate::viewer::CsrfField;
use crate::UiContext;

/// Notifications listed on the page.
const HISTORY_ROWS: usize = 200;

/// The page's routes.
pub(super) fn routes() -> Router<UiContext> {
    Router::new()
        .route("/alerts/receivers", get(page))
        .route("/alerts/receivers/test", post(test))
}

/// One receiver as the page shows it.
struct ReceiverView {
    name: String,
    /// `(integration, attempts, failed)`.
    integrations: Vec<(String, u64, u64)>,
}

/// The body of the test form.
#[derive(Debug, Default, Deserialize)]
struct TestForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    receiver: String,
}

/// The outcome of a test the page shows on top.
enum Tested {
    Sent(String, Vec<TestOutcome>),
    Refused(String),
}

fn receivers(a: &Alerting) -> Vec<ReceiverView> {
    let mut out = Vec::new();
    for (name, integrations) in a.notifier.receivers() {
        let mut list = Vec::new();
        for integration in integrations {
            let kind = integration.split('[').next().unwrap_or("");
            let c = a.notifier.metrics.counts(&name, kind);
            list.push((integration, c.total, c.failed));
        }
        out.push(ReceiverView {
            name,
            integrations: list,
        });
    }
    out
}

async fn page(State(ctx): State<UiContext>, viewer: Viewer) -> Response {
    render(&ctx, &viewer, None, StatusCode::OK)
}

async fn test(State(ctx): State<UiContext>, viewer: Viewer, Form(form): Form<TestForm>) -> Response {
    let Some(alerting) = ctx.alerting.clone() else {
        return render(&ctx, &viewer, None, StatusCode::NOT_FOUND);
    };
    if !viewer.can(Role::Editor) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Sending a test notification needs the editor role.".into(),
        );
    }
    if !pagefmt::csrf_ok(&viewer, &form.csrf) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The form's security token does not match your session; reload the page and try again.".into(),
        );
    }
    let (tested, status) = match alerting.notifier.send_test(&form.receiver).await {
        Ok(outcomes) => (Tested::Sent(form.receiver.clone(), outcomes), StatusCode::OK),
        Err(e) => (Tested::Refused(e.to_string()), StatusCode::BAD_REQUEST),
    };
    render(&ctx, &viewer, Some(tested), status)
}

fn render(ctx: &UiContext, viewer: &Viewer, tested: Option<Tested>, status: StatusCode) -> Response {
    let meta = PageMeta::for_viewer("Receivers", Section::Alerts, viewer);
    let Some(alerting) = ctx.alerting.clone() else {
        let Html(html) = render_page(meta, || {
            view! {
                <h1>"Receivers"</h1>
                <p class="notice">"Alerting is disabled on this server ("<code>"[alerting] enabled = false"</code>")."</p>
            }
        });
        return (status, Html(html)).into_response();
    };
    let list = receivers(&alerting);
    let reload = alerting.notifier.metrics.reload_status();
    let history = alerting.notifier.log.history(HISTORY_ROWS);
    let viewer = viewer.clone();
    let Html(html) = render_page(meta, move || {
        view! {
            <h1>"Receivers"</h1>
            <p><a href="/alerts">"← Alerts"</a>" · "<a href="#notifications">"Notification history"</a></p>
            {tested.map(tested_view)}
            {reload_view(&reload)}
            {receivers_section(&list, &viewer)}
            {history_section(&history)}
        }
    });
    (status, Html(html)).into_response()
}

fn tested_view(t: Tested) -> AnyView {
    match t {
        Tested::Refused(e) => {
            view! { <p class="error" role="alert">{format!("No test sent: {e}")}</p> }.into_any()
        }
        Tested::Sent(receiver, outcomes) => {
            let all_ok = outcomes.iter().all(|o| o.ok);
            let items = outcomes
                .into_iter()
                .map(|o| {
                    let (class, text) = match o.error {
                        None => ("ok", "delivered".to_string()),
                        Some(e) => ("err", format!("failed: {e}")),
                    };
                    view! { <li class=class><code>{o.integration}</code>": "{text}</li> }
                })
                .collect_view();
            let class = if all_ok { "notice" } else { "error" };
            view! {
                <section class=class role="status" id="test-result">
                    <p>{format!("Test notification (alertname=\"DidbanTestNotification\") sent to {receiver}:")}</p>
                    <ul>{items}</ul>
                </section>
            }
            .into_any()
        }
    }
}

fn reload_view(r: &ReloadStatus) -> AnyView {
    if r.ok {
        return view! {
            <p class="muted">{format!("Configuration loaded {} UTC; reload with SIGHUP or POST /-/reload.", pagefmt::time_ms(r.last_success_ms))}</p>
        }
        .into_any();
    }
    view! {
        <section class="error" id="reload-error">
            <h2>"The last reload was refused (the previous receivers keep running)"</h2>
            <p>{format!("At {} UTC: {}", pagefmt::time_ms(r.last_attempt_ms), r.error.clone().unwrap_or_default())}</p>
        </section>
    }
    .into_any()
}

fn receivers_section(list: &[ReceiverView], viewer: &Viewer) -> impl IntoView {
    let can = viewer.can(Role::Editor);
    let empty = list.is_empty().then(|| {
        view! { <p class="empty">"No receivers are configured ("<code>"[[alerting.receivers]]"</code>" or "<code>"config_file"</code>")."</p> }
    });
    let has = empty.is_none();
    let rows = list
        .iter()
        .map(|r| {
            let integrations = r
                .integrations
                .iter()
                .map(|(name, total, failed)| {
                    view! { <li><code>{name.clone()}</code>{format!(" — {total} attempts, {failed} failed")}</li> }
                })
                .collect_view();
            view! {
                <tr data-receiver=r.name.clone()>
                    <th scope="row">{r.name.clone()}</th>
                    <td><ul class="integrations">{integrations}</ul></td>
                    <td>
                        <form method="post" action="/alerts/receivers/test" class="inline">
                            {viewer.csrf_field()}
                            <input type="hidden" name="receiver" value=r.name.clone()/>
                            <button type="submit" disabled={!can}>"Send test notification"</button>
                        </form>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section id="receivers" aria-labelledby="receivers-h">
            <h2 id="receivers-h">"Receivers"</h2>
            {empty}
            {has.then(|| view! {
            <table class="receivers-table">
                <thead><tr><th scope="col">"Receiver"</th><th scope="col">"Integrations (attempts since start)"</th>
                    <th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            })}
        </section>
    }
}

/// The notification history table (newest first): each delivery with its alerts, outcome and
/// every attempt, so retries stay visible after a later success. Shown on the Alerts and
/// Receivers pages.
pub(super) fn history_section(items: &[HistoryItem]) -> impl IntoView {
    let empty = items
        .is_empty()
        .then(|| view! { <p class="empty">"No notifications sent yet."</p> });
    let has = empty.is_none();
    let rows = items
        .iter()
        .map(|h| {
            let outcome = if h.ok {
                "delivered".to_string()
            } else {
                format!("failed: {}", h.error.clone().unwrap_or_default())
            };
            let class = if h.ok { "ok" } else { "err" };
            let mut names = h.alertnames.join(", ");
            if h.test {
                names.push_str(" (test)");
            }
            let tries = h
                .tries
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let text = match &t.error {
                        None => "ok".to_string(),
                        Some(e) => e.clone(),
                    };
                    view! { <li>{format!("#{} {} — {text}", i + 1, pagefmt::time_ms(t.at_ms))}</li> }
                })
                .collect_view();
            view! {
                <tr class=format!("notification {class}")>
                    <td>{pagefmt::time_ms(h.at_ms)}</td>
                    <td>{format!("{} ({})", h.receiver, h.integration)}</td>
                    <td>{names}<br/><small><code>{h.group_key.clone()}</code></small></td>
                    <td>{h.status.clone()}</td>
                    <td class=class>{outcome}</td>
                    <td><ol class="tries">{tries}</ol></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section id="notifications" aria-labelledby="notifications-h">
            <h2 id="notifications-h">"Notification history"</h2>
            {empty}
            {has.then(|| view! {
            <table class="history-table">
                <thead><tr><th scope="col">"Time (UTC)"</th><th scope="col">"Receiver"</th><th scope="col">"Alerts"</th>
                    <th scope="col">"Status"</th><th scope="col">"Outcome"</th><th scope="col">"Attempts"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            })}
        </section>
    }
}
