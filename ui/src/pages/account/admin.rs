//! `/admin/users` and `/admin/tokens`: admins create users, change roles, reset passwords,
//! delete users, and create and revoke API tokens. Every change is a POST form with the
//! CSRF field; the result is shown on the page that comes back.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use didban_auth::{Auth, AuthError, Need, Role, Viewer};
use leptos::prelude::*;

use crate::pages::error::require;
use crate::pages::pagefmt::now_ms;
use crate::shell::{render_page, PageMeta, Section};
use crate::viewer::CsrfField;

/// Everything here needs an admin, reading included.
pub(super) fn routes() -> Router<Arc<Auth>> {
    Router::new()
        .route("/admin/users", get(users_page).post(users_submit))
        .route("/admin/tokens", get(tokens_page).post(tokens_submit))
        .route_layer(require(Need::Role(Role::Admin)))
}

/// What a POST did, shown above the tables.
enum Outcome {
    None,
    Done(String),
    Failed(String),
    /// A new token, shown once.
    Token(String, String),
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn role_select(id: String, current: Role) -> impl IntoView {
    let options = Role::ALL
        .into_iter()
        .map(|r| view! { <option value=r.as_str() selected=r == current>{r.as_str()}</option> })
        .collect_view();
    view! { <select id=id name="role">{options}</select> }
}

fn outcome_view(outcome: Outcome) -> impl IntoView {
    match outcome {
        Outcome::None => None,
        Outcome::Done(m) => Some(view! { <p class="auth-ok" role="status">{m}</p> }.into_any()),
        Outcome::Failed(m) => Some(view! { <p class="auth-error" role="alert">{m}</p> }.into_any()),
        Outcome::Token(name, token) => Some(
            view! {
                <div class="auth-token" role="status">
                    <p>"Token " <strong>{name}</strong> " created. Copy it now: it is not shown again."</p>
                    <label for="new-token">"Token"</label>
                    <input id="new-token" type="text" readonly value=token class="token-value"/>
                </div>
            }
            .into_any(),
        ),
    }
}

fn off_note(auth: &Auth) -> impl IntoView {
    (!auth.settings().required).then(|| {
        view! {
            <p class="auth-note">
                "Sign-in is off on this server (see " <code>"[auth] enabled"</code>
                "); these accounts and tokens apply once it is on."
            </p>
        }
    })
}

fn render_users(auth: &Auth, viewer: Viewer, outcome: Outcome, status: StatusCode) -> Response {
    let users = auth.users().list();
    let note = off_note(auth);
    let page = render_page(PageMeta::for_viewer("Users", Section::None, &viewer), move || {
        let rows = users
            .into_iter()
            .enumerate()
            .map(|(i, u)| {
                let (n1, n2, n3) = (u.name.clone(), u.name.clone(), u.name.clone());
                let (c1, c2, c3) = (viewer.csrf_field(), viewer.csrf_field(), viewer.csrf_field());
                let role_id = format!("role-{i}");
                let pw_id = format!("password-{i}");
                view! {
                    <tr>
                        <td class="user-name">{u.name.clone()}</td>
                        <td>
                            <form method="post" action="/admin/users" class="inline">
                                {c1}
                                <input type="hidden" name="action" value="role"/>
                                <input type="hidden" name="name" value=n1/>
                                <label class="sr-only" for=role_id.clone()>"Role"</label>
                                {role_select(role_id, u.role)}
                                <button type="submit">"Change role"</button>
                            </form>
                        </td>
                        <td>
                            <form method="post" action="/admin/users" class="inline">
                                {c2}
                                <input type="hidden" name="action" value="password"/>
                                <input type="hidden" name="name" value=n2/>
                                <label class="sr-only" for=pw_id.clone()>"New password"</label>
                                <input id=pw_id type="password" name="password" autocomplete="new-password"
                                    minlength="8" required placeholder="new password"/>
                                <button type="submit">"Reset password"</button>
                            </form>
                        </td>
                        <td>{when(u.created_ms)}</td>
                        <td>
                            <form method="post" action="/admin/users" class="inline">
                                {c3}
                                <input type="hidden" name="action" value="delete"/>
                                <input type="hidden" name="name" value=n3/>
                                <button type="submit" class="danger">"Delete"</button>
                            </form>
                        </td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <section class="admin">
                <h1>"Users"</h1>
                <p><a href="/admin/tokens">"API tokens"</a></p>
                {note}
                {outcome_view(outcome)}
                <table class="users">
                    <thead><tr><th>"Name"</th><th>"Role"</th><th>"Password"</th><th>"Created"</th><th></th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
                <h2>"New user"</h2>
                <form method="post" action="/admin/users" class="auth-form">
                    {viewer.csrf_field()}
                    <input type="hidden" name="action" value="create"/>
                    <label for="new-name">"User name"</label>
                    <input id="new-name" name="name" type="text" required maxlength="64" autocomplete="off"/>
                    <label for="new-password">"Password (at least 8 characters)"</label>
                    <input id="new-password" name="password" type="password" required minlength="8"
                        autocomplete="new-password"/>
                    <label for="new-role">"Role"</label>
                    {role_select("new-role".into(), Role::Viewer)}
                    <button type="submit">"Create user"</button>
                </form>
            </section>
        }
    });
    (status, page).into_response()
}

async fn users_page(State(auth): State<Arc<Auth>>, viewer: Viewer) -> Response {
    if !viewer.can(Role::Admin) {
        return forbidden();
    }
    render_users(&auth, viewer, Outcome::None, StatusCode::OK)
}

fn forbidden() -> Response {
    crate::pages::error::error_page(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "this page needs the admin role".into(),
    )
}

fn field<'a>(form: &'a HashMap<String, String>, key: &str) -> &'a str {
    form.get(key).map(String::as_str).unwrap_or("")
}

async fn users_submit(
    State(auth): State<Arc<Auth>>,
    viewer: Viewer,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !viewer.can(Role::Admin) {
        return forbidden();
    }
    let name = field(&form, "name").to_string();
    let action = field(&form, "action").to_string();
    let a = auth.clone();
    let role = Role::parse(field(&form, "role"));
    let password = field(&form, "password").to_string();
    let act = action.clone();
    let n = name.clone();
    // Hashing takes tens of milliseconds: off the async threads.
    let result = tokio::task::spawn_blocking(move || -> Result<String, AuthError> {
        let now = now_ms();
        match act.as_str() {
            "create" => {
                let role = role.ok_or_else(|| AuthError::Invalid("choose a role".into()))?;
                a.users().create(&n, role, &password, now)?;
                Ok(format!("User {n} created with the {} role.", role.as_str()))
            }
            "role" => {
                let role = role.ok_or_else(|| AuthError::Invalid("choose a role".into()))?;
                a.users().set_role(&n, role)?;
                Ok(format!("{n} is now {}.", role.as_str()))
            }
            "password" => {
                a.users().set_password(&n, &password)?;
                a.sessions().remove_user(&n, now)?;
                a.forget_basic(&n);
                Ok(format!("Password of {n} reset; their sessions were ended."))
            }
            "delete" => {
                a.users().delete(&n)?;
                a.sessions().remove_user(&n, now)?;
                a.forget_basic(&n);
                Ok(format!("User {n} deleted."))
            }
            other => Err(AuthError::Invalid(format!("unknown action {other:?}"))),
        }
    })
    .await;
    match result {
        Ok(Ok(message)) => {
            tracing::info!(admin = ?viewer.user, action = %action, user = %name, "user changed");
            render_users(&auth, viewer, Outcome::Done(message), StatusCode::OK)
        }
        Ok(Err(e)) => render_users(
            &auth,
            viewer,
            Outcome::Failed(e.to_string()),
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => render_users(
            &auth,
            viewer,
            Outcome::Failed(e.to_string()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}

fn render_tokens(auth: &Auth, viewer: Viewer, outcome: Outcome, status: StatusCode) -> Response {
    let tokens = auth.tokens().list();
    let note = off_note(auth);
    let page = render_page(
        PageMeta::for_viewer("API tokens", Section::None, &viewer),
        move || {
            let rows = tokens
                .into_iter()
                .map(|t| {
                    let csrf = viewer.csrf_field();
                    view! {
                        <tr>
                            <td>{t.name.clone()}</td>
                            <td>{t.role.as_str()}</td>
                            <td>{if t.ingest { "yes" } else { "no" }}</td>
                            <td>{t.created_by.clone()}</td>
                            <td>{when(t.created_ms)}</td>
                            <td>
                                <form method="post" action="/admin/tokens" class="inline">
                                    {csrf}
                                    <input type="hidden" name="action" value="revoke"/>
                                    <input type="hidden" name="id" value=t.id.clone()/>
                                    <button type="submit" class="danger">"Revoke"</button>
                                </form>
                            </td>
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <section class="admin">
                    <h1>"API tokens"</h1>
                    <p><a href="/admin/users">"Users"</a></p>
                    {note}
                    {outcome_view(outcome)}
                    <p>"Clients send a token as " <code>"Authorization: Bearer <token>"</code>
                       ". Ingest (remote_write, OTLP) needs the ingest scope; query APIs need viewer; "
                       "silences and rule reloads need editor."</p>
                    <table class="tokens">
                        <thead><tr><th>"Name"</th><th>"Role"</th><th>"Ingest"</th><th>"Created by"</th><th>"Created"</th><th></th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                    <h2>"New token"</h2>
                    <form method="post" action="/admin/tokens" class="auth-form">
                        {viewer.csrf_field()}
                        <input type="hidden" name="action" value="create"/>
                        <label for="token-name">"Name"</label>
                        <input id="token-name" name="name" type="text" required maxlength="100" placeholder="grafana"/>
                        <label for="token-role">"Role"</label>
                        {role_select("token-role".into(), Role::Viewer)}
                        <label class="check"><input type="checkbox" name="ingest" value="on"/>" May write data (ingest)"</label>
                        <button type="submit">"Create token"</button>
                    </form>
                </section>
            }
        },
    );
    let mut r = (status, page).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

async fn tokens_page(State(auth): State<Arc<Auth>>, viewer: Viewer) -> Response {
    if !viewer.can(Role::Admin) {
        return forbidden();
    }
    render_tokens(&auth, viewer, Outcome::None, StatusCode::OK)
}

async fn tokens_submit(
    State(auth): State<Arc<Auth>>,
    viewer: Viewer,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !viewer.can(Role::Admin) {
        return forbidden();
    }
    let by = viewer.user.clone().unwrap_or_else(|| "anonymous".into());
    let result = match field(&form, "action") {
        "create" => match Role::parse(field(&form, "role")) {
            Some(role) => {
                let ingest = field(&form, "ingest") == "on";
                auth.tokens()
                    .create(field(&form, "name"), role, ingest, &by, now_ms())
                    .map(|(token, rec)| Outcome::Token(rec.name, token))
            }
            None => Err(AuthError::Invalid("choose a role".into())),
        },
        "revoke" => auth
            .tokens()
            .revoke(field(&form, "id"))
            .map(|()| Outcome::Done("Token revoked.".into())),
        other => Err(AuthError::Invalid(format!("unknown action {other:?}"))),
    };
    match result {
        Ok(outcome) => {
            tracing::info!(admin = %by, action = %field(&form, "action"), "API tokens changed");
            render_tokens(&auth, viewer, outcome, StatusCode::OK)
        }
        Err(e) => render_tokens(
            &auth,
            viewer,
            Outcome::Failed(e.to_string()),
            StatusCode::BAD_REQUEST,
        ),
    }
}
