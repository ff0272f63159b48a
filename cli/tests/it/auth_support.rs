//! Shared by `ui_auth` and `ui_browser`: a `didban serve` child with sign-in on (stderr kept
//! in a file), and the browser steps over plain HTTP (sign in, read the CSRF field, create
//! tokens).

use std::path::Path;

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};

pub use crate::process::{free_port, BIN};
pub use didban_testkit::Didban as Server;
use didban_testkit::Start;

/// Starts `didban serve` with `args` and `envs`, stderr into `stderr_file`, and waits until
/// it is ready.
pub fn start(data_dir: &Path, args: &[&str], envs: &[(&str, &str)], stderr_file: &Path) -> Server {
    Server::start_with(
        BIN,
        data_dir,
        Start {
            args,
            envs,
            stderr: Some(stderr_file),
        },
    )
}

/// Spawns without waiting (for starts that are expected to fail).
pub fn spawn(data_dir: &Path, args: &[&str], envs: &[(&str, &str)], stderr_file: &Path) -> Server {
    Server::spawn(
        BIN,
        data_dir,
        Start {
            args,
            envs,
            stderr: Some(stderr_file),
        },
    )
}

/// A client that never follows redirects (the tests look at them).
pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `didban_session=…` pair of a sign-in answer.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("didban_session=") && !v.starts_with("didban_session=;"))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// Posts the sign-in form; returns the response.
pub fn post_login(server: &Server, user: &str, password: &str, next: &str) -> Response {
    client()
        .post(server.url("/login"))
        .form(&[("user", user), ("password", password), ("next", next)])
        .send()
        .unwrap()
}

/// Signs in and returns the cookie pair.
pub fn login(server: &Server, user: &str, password: &str) -> String {
    let r = post_login(server, user, password, "/");
    assert_eq!(
        r.status(),
        303,
        "sign-in of {user} failed: {}",
        r.text().unwrap_or_default()
    );
    session_cookie(r.headers()).expect("a session cookie")
}

/// GET with the session cookie.
pub fn get(server: &Server, cookie: &str, path: &str) -> Response {
    client()
        .get(server.url(path))
        .header(COOKIE, cookie)
        .send()
        .unwrap()
}

/// POST of a form with the session cookie.
pub fn post_form(server: &Server, cookie: &str, path: &str, form: &[(&str, &str)]) -> Response {
    client()
        .post(server.url(path))
        .header(COOKIE, cookie)
        .form(form)
        .send()
        .unwrap()
}

/// The value of the first `_csrf` hidden field in `html`.
pub fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="_csrf" value=""#).expect("a _csrf field");
    let rest = &html[at + r#"name="_csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The session's CSRF token, read from `/admin/users` or `/logout`.
pub fn csrf(server: &Server, cookie: &str, page: &str) -> String {
    let r = get(server, cookie, page);
    assert_eq!(r.status(), 200, "{page}");
    csrf_of(&r.text().unwrap())
}

/// Creates an API token through `/admin/tokens` as an admin; returns the token.
pub fn create_token(server: &Server, admin_cookie: &str, name: &str, role: &str, ingest: bool) -> String {
    let csrf = csrf(server, admin_cookie, "/admin/tokens");
    let mut form = vec![
        ("_csrf", csrf.as_str()),
        ("action", "create"),
        ("name", name),
        ("role", role),
    ];
    if ingest {
        form.push(("ingest", "on"));
    }
    let r = post_form(server, admin_cookie, "/admin/tokens", &form);
    assert_eq!(r.status(), 200);
    let html = r.text().unwrap();
    let at = html.find("value=\"didban_").expect("the new token on the page");
    let rest = &html[at + "value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// The redirect target of a response.
pub fn location(r: &Response) -> String {
    r.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}
