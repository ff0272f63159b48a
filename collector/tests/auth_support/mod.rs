//! Shared by `ui_auth` and `ui_browser`: a `didban serve` child with sign-in on (stderr kept
//! in a file), and the browser steps over plain HTTP (sign in, read the CSRF field, create
//! tokens).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running didban.
pub struct Server {
    pub child: Child,
    pub http: String,
    pub otlp_http: String,
    pub otlp_grpc: String,
    pub stderr: PathBuf,
}

/// Starts `didban serve` on loopback ports with `args` and `envs`; stderr goes to
/// `stderr_file`. Retries on new ports when a port was taken meanwhile.
pub fn start(data_dir: &Path, args: &[&str], envs: &[(&str, &str)], stderr_file: &Path) -> Server {
    for _ in 0..5 {
        let (h, oh, og) = (free_port(), free_port(), free_port());
        let mut s = spawn(data_dir, &[h, oh, og], args, envs, stderr_file);
        let client = Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut exited = false;
        while Instant::now() < deadline {
            if s.child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            if let Ok(r) = client.get(format!("http://{}/-/ready", s.http)).send() {
                if r.status().is_success() {
                    return s;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(exited, "didban did not become ready on {}", s.http);
        let _ = s.child.wait();
        let text = std::fs::read_to_string(stderr_file).unwrap_or_default();
        if !text.contains("Address already in use") {
            panic!("didban exited at start:\n{text}");
        }
    }
    panic!("didban did not start after 5 attempts");
}

/// Spawns without waiting (for starts that are expected to fail).
pub fn spawn(
    data_dir: &Path,
    ports: &[u16; 3],
    args: &[&str],
    envs: &[(&str, &str)],
    stderr_file: &Path,
) -> Server {
    let http = format!("127.0.0.1:{}", ports[0]);
    let otlp_http = format!("127.0.0.1:{}", ports[1]);
    let otlp_grpc = format!("127.0.0.1:{}", ports[2]);
    // Addresses given in `args` replace the loopback defaults.
    let mut listen = Vec::new();
    for (flag, addr) in [
        ("--http-addr", &http),
        ("--otlp-http-addr", &otlp_http),
        ("--otlp-grpc-addr", &otlp_grpc),
    ] {
        if !args.contains(&flag) {
            listen.push(flag.to_string());
            listen.push(addr.clone());
        }
    }
    let child = Command::new(env!("CARGO_BIN_EXE_didban"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(&listen)
        .args(args)
        .env("DIDBAN_LOG", "warn")
        .env_remove("DIDBAN_ADMIN_USER")
        .env_remove("DIDBAN_ADMIN_PASSWORD")
        .env_remove("DIDBAN_AUTH")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr_file).unwrap())
        .spawn()
        .unwrap();
    Server {
        child,
        http,
        otlp_http,
        otlp_grpc,
        stderr: stderr_file.to_path_buf(),
    }
}

impl Server {
    /// `http://<main listener>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// SIGTERM and wait.
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap();
    }

    /// What the server wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
