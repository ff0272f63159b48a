//! `GET/POST /login` and `GET/POST /logout`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use didban_auth::guard::{client_ip, cookie, over_tls, BUSY_RETRY_S};
use didban_auth::password::Busy;
use didban_auth::sessions::MAX_LIFETIME_MS;
use didban_auth::{Auth, Need, Role, Viewer, SESSION_COOKIE};
use leptos::prelude::*;
use serde::Deserialize;

use crate::pages::error::require;
use crate::pages::pagefmt::now_ms;
use crate::shell::{render_page, PageMeta, Section};
use crate::viewer::CsrfField;

/// Pause before answering a failed sign-in, to slow guessing.
const FAILURE_DELAY: Duration = Duration::from_millis(400);

/// Sign-in is open to everyone; signing out needs someone signed in (any role), and its
/// POST carries the CSRF token like every change.
pub(super) fn routes() -> Router<Arc<Auth>> {
    let login = Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route_layer(require(Need::Open));
    Router::new()
        .route("/logout", get(logout_page).post(logout_submit))
        .route_layer(require(Need::Role(Role::Viewer)))
        .merge(login)
}

/// `next` when it is a path on this server, else `/`: no open redirect to another site.
pub fn safe_next(next: &str) -> String {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 2048
        && !next.starts_with("/login")
        && !next.starts_with("/logout");
    if local {
        next.to_string()
    } else {
        "/".to_string()
    }
}

#[derive(Debug, Default, Deserialize)]
struct NextParam {
    next: Option<String>,
}

fn login_form(next: String, error: Option<String>, user: String) -> Html<String> {
    render_page(PageMeta::new("Sign in", Section::None), move || {
        view! {
            <section class="auth-box">
                <h1>"Sign in to Didban"</h1>
                {error.map(|e| view! { <p class="auth-error" role="alert">{e}</p> })}
                <form method="post" action="/login" class="auth-form">
                    <input type="hidden" name="next" value=next/>
                    <label for="login-user">"User name"</label>
                    <input id="login-user" name="user" type="text" autocomplete="username"
                        required autofocus value=user/>
                    <label for="login-password">"Password"</label>
                    <input id="login-password" name="password" type="password"
                        autocomplete="current-password" required/>
                    <button type="submit">"Sign in"</button>
                </form>
            </section>
        }
    })
}

async fn login_page(State(auth): State<Arc<Auth>>, viewer: Viewer, Query(q): Query<NextParam>) -> Response {
    let next = safe_next(q.next.as_deref().unwrap_or("/"));
    if !auth.settings().required || viewer.user.is_some() {
        return Redirect::to(&next).into_response();
    }
    login_form(next, None, String::new()).into_response()
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn login_submit(State(auth): State<Arc<Auth>>, req: Request) -> Response {
    if !auth.settings().required {
        return Redirect::to("/").into_response();
    }
    let ip = client_ip(&auth, &req);
    let tls = over_tls(&auth, &req);
    let body = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "sign-in form too large").into_response(),
    };
    let form: LoginForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let next = safe_next(&form.next);
    let now = now_ms();
    // Reserved before verifying, so a burst past the limit costs no Argon2 run.
    let attempt = match auth.limiter().begin(ip, now) {
        Ok(a) => a,
        Err(wait) => {
            let message = format!(
                "Too many failed sign-ins from your address; try again in {} minutes.",
                (wait + 59) / 60
            );
            return too_many(login_form(next, Some(message), form.user), wait);
        }
    };
    let a = auth.clone();
    let (user, password) = (form.user.clone(), form.password);
    let found = tokio::task::spawn_blocking(move || a.users().authenticate(&user, &password))
        .await
        .unwrap_or(Err(Busy));
    let found = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            attempt.fail(now);
            tokio::time::sleep(FAILURE_DELAY).await;
            let mut r =
                login_form(next, Some("Wrong user name or password.".into()), form.user).into_response();
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            return r;
        }
        Err(Busy) => {
            // Not a wrong password: the attempt is released (dropped) without counting.
            drop(attempt);
            let message = "Too many sign-in attempts; try again shortly.".to_string();
            return too_many(login_form(next, Some(message), form.user), BUSY_RETRY_S);
        }
    };
    attempt.succeed();
    let (id, _) = match auth.sessions().create(&found.name, now) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "could not create a session");
            return crate::pages::error::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in failed",
                format!("the session could not be saved: {e}"),
            );
        }
    };
    tracing::info!(user = %found.name, "signed in");
    let secure = if tls { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        MAX_LIFETIME_MS / 1000
    );
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `page` as a 429 with `Retry-After: wait_s`.
fn too_many(page: Html<String>, wait_s: i64) -> Response {
    let mut r = page.into_response();
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_s.max(1)));
    r
}

async fn logout_page(viewer: Viewer) -> Response {
    if viewer.user.is_none() {
        return Redirect::to("/").into_response();
    }
    let name = viewer.user.clone().unwrap_or_default();
    render_page(
        PageMeta::for_viewer("Sign out", Section::None, &viewer),
        move || {
            view! {
                <section class="auth-box">
                    <h1>"Sign out"</h1>
                    <p>"Signed in as " <strong>{name}</strong> "."</p>
                    <form method="post" action="/logout" class="auth-form">
                        {viewer.csrf_field()}
                        <button type="submit">"Sign out"</button>
                    </form>
                </section>
            }
        },
    )
    .into_response()
}

async fn logout_submit(State(auth): State<Arc<Auth>>, req: Request) -> Response {
    if let Some(id) = cookie(req.headers(), SESSION_COOKIE) {
        if let Err(e) = auth.sessions().remove(id, now_ms()) {
            tracing::warn!(error = %e, "could not save sessions after sign-out");
        }
    }
    let mut r = Redirect::to("/login").into_response();
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next("/explore?q=up"), "/explore?q=up");
        assert_eq!(safe_next("//evil.example/x"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("https://evil.example"), "/");
        assert_eq!(safe_next("javascript:alert(1)"), "/");
        assert_eq!(safe_next("/a\nb"), "/");
        assert_eq!(safe_next(""), "/");
        assert_eq!(safe_next("/login?next=/x"), "/");
    }
}
