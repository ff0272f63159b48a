//! Sign-in, roles, CSRF and API tokens against a real `didban serve` with auth on.

use std::time::{Duration, Instant};

use crate::auth_support::*;
use reqwest::header::{AUTHORIZATION, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};

const ADMIN: (&str, &str) = ("admin", "admin-pass-1");

const PAGES: [&str; 9] = [
    "/",
    "/dashboards",
    "/explore",
    "/logs",
    "/traces",
    "/services",
    "/serverless",
    "/alerts",
    "/admin/users",
];

fn otlp_gauge(metric: &str) -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"t"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":"{metric}","gauge":{{"dataPoints":[{{"timeUnixNano":"{ns}","asDouble":1}}]}}}}]}}]}}]}}"#
    )
}

fn grpc_export_without_token(addr: &str) -> tonic::Code {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = MetricsServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        match c.export(ExportMetricsServiceRequest::default()).await {
            Ok(_) => tonic::Code::Ok,
            Err(s) => s.code(),
        }
    })
}

#[test]
fn sign_in_roles_csrf_tokens_and_sessions_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("didban.toml");
    std::fs::write(&config, "[host_metrics]\ninterval = \"1s\"\n").unwrap();
    let config = config.to_str().unwrap().to_string();
    let envs = [("DIDBAN_ADMIN_USER", ADMIN.0), ("DIDBAN_ADMIN_PASSWORD", ADMIN.1)];
    let mut server = start(
        &data,
        &["--auth", "true", "--config", &config],
        &envs,
        &dir.path().join("stderr1.txt"),
    );

    // Anonymous: pages go to sign-in with a local `next`, APIs get 401, health stays open.
    for page in PAGES {
        let r = client().get(server.url(page)).send().unwrap();
        assert_eq!(r.status(), 303, "{page}");
        let to = location(&r);
        let next = serde_urlencoded::to_string([("next", page)]).unwrap();
        assert_eq!(to, format!("/login?{next}"), "{page}");
    }
    let r = client().get(server.url("/api/v1/query?query=1")).send().unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get(WWW_AUTHENTICATE).is_some());
    assert!(r.text().unwrap().contains("\"errorType\":\"unauthorized\""));
    let r = client()
        .get(server.url("/-/healthy"))
        .header(AUTHORIZATION, "Bearer didban_stale")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "health answers whatever the credentials");
    for open in ["/-/healthy", "/-/ready", "/login"] {
        assert_eq!(
            client().get(server.url(open)).send().unwrap().status(),
            200,
            "{open}"
        );
    }
    let login_page = client()
        .get(server.url("/login?next=/explore"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(login_page.contains(r#"<label for="login-user">"#), "{login_page}");
    assert!(login_page.contains(r#"value="/explore""#));

    // Wrong password or unknown user: the same message, no cookie.
    for (user, pass) in [(ADMIN.0, "wrong-password"), ("nobody", ADMIN.1)] {
        let r = post_login(&server, user, pass, "/");
        assert_eq!(r.status(), 401);
        assert!(session_cookie(r.headers()).is_none());
        let html = r.text().unwrap();
        assert!(html.contains("Wrong user name or password."), "{html}");
    }
    // An open redirect is refused.
    let r = post_login(&server, ADMIN.0, ADMIN.1, "//evil.example/");
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/");
    let set_cookie = r.headers().get(SET_COOKIE).unwrap().to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let r = post_login(&server, ADMIN.0, ADMIN.1, "/explore?query=up");
    assert_eq!(location(&r), "/explore?query=up");
    let admin = session_cookie(r.headers()).unwrap();

    // Signed in as admin: every page passes the guard (pages of other areas may 404 here).
    for page in PAGES {
        let status = get(&server, &admin, page).status();
        assert!(
            status != 401 && status != 403 && status != 303,
            "{page}: {status}"
        );
    }
    let home = get(&server, &admin, "/").text().unwrap();
    assert!(home.contains("dl class=\"summary\""), "{home}");
    assert!(home.contains(">admin<"), "the user is shown in the frame");

    // CSRF: missing or wrong token → 403; the right one creates the user.
    let token = csrf(&server, &admin, "/admin/users");
    let create = |csrf: Option<&str>, name: &str, role: &str| {
        let mut form = vec![
            ("action", "create"),
            ("name", name),
            ("password", "viewer-pass-1"),
            ("role", role),
        ];
        if let Some(c) = csrf {
            form.push(("_csrf", c));
        }
        post_form(&server, &admin, "/admin/users", &form)
    };
    assert_eq!(create(None, "vera", "viewer").status(), 403);
    assert_eq!(create(Some("0000"), "vera", "viewer").status(), 403);
    let r = create(Some(&token), "vera", "viewer");
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("User vera created"));
    // The header works as well as the field.
    let r = client()
        .post(server.url("/admin/users"))
        .header(COOKIE, &admin)
        .header("X-CSRF-Token", &token)
        .form(&[
            ("action", "create"),
            ("name", "ed"),
            ("password", "editor-pass-1"),
            ("role", "editor"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // A cross-site form is refused even with the right token.
    let r = client()
        .post(server.url("/admin/users"))
        .header(COOKIE, &admin)
        .header("Origin", "http://evil.example")
        .form(&[("_csrf", token.as_str()), ("action", "delete"), ("name", "ed")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);

    // A name with markup is shown escaped.
    let r = create(Some(&token), "<script>alert(1)</script>", "viewer");
    assert_eq!(r.status(), 200);
    let html = get(&server, &admin, "/admin/users").text().unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(!html.contains("<script>alert(1)</script>"));

    // A viewer reads pages but may not change anything or administer.
    let vera = login(&server, "vera", "viewer-pass-1");
    assert_eq!(get(&server, &vera, "/").status(), 200);
    assert_eq!(get(&server, &vera, "/admin/users").status(), 403);
    let vera_csrf = csrf(&server, &vera, "/logout");
    let r = post_form(
        &server,
        &vera,
        "/dashboards/new",
        &[("_csrf", &vera_csrf), ("title", "x")],
    );
    assert_eq!(r.status(), 403, "viewer POST to an editor form");
    let r = post_form(
        &server,
        &vera,
        "/admin/users",
        &[("_csrf", &vera_csrf), ("action", "delete"), ("name", "ed")],
    );
    assert_eq!(r.status(), 403);

    // API tokens: viewer reads, ingest needs the ingest scope.
    let viewer_token = create_token(&server, &admin, "grafana", "viewer", false);
    let ingest_token = create_token(&server, &admin, "collector", "viewer", true);
    let bearer = |t: &str| format!("Bearer {t}");
    let r = client()
        .get(server.url("/api/v1/query?query=1"))
        .header(AUTHORIZATION, bearer(&viewer_token))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(server.url("/api/v1/query?query=1"))
        .header(AUTHORIZATION, "Bearer didban_not_a_token")
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(server.url("/api/v2/silences"))
        .header(AUTHORIZATION, bearer(&viewer_token))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "silences need editor");
    let r = client()
        .get(server.url("/api/v1/query?query=1"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "basic auth for API clients");
    let r = client()
        .get(server.url("/api/v1/query?query=1"))
        .basic_auth(ADMIN.0, Some("nope"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let write = |t: Option<&str>| {
        let mut rq = client().post(server.url("/api/v1/write")).body(vec![1u8, 2, 3]);
        if let Some(t) = t {
            rq = rq.header(AUTHORIZATION, bearer(t));
        }
        rq.send().unwrap().status()
    };
    assert_eq!(write(None), 401);
    assert_eq!(write(Some(&viewer_token)), 403);
    let status = write(Some(&ingest_token));
    assert!(status != 401 && status != 403, "{status}");
    let otlp = |t: Option<&str>| {
        let mut rq = client()
            .post(format!("http://{}/v1/metrics", server.otlp_http))
            .header("content-type", "application/json")
            .body(otlp_gauge("auth_test_gauge"));
        if let Some(t) = t {
            rq = rq.header(AUTHORIZATION, bearer(t));
        }
        rq.send().unwrap().status()
    };
    assert_eq!(otlp(None), 401);
    assert_eq!(otlp(Some(&ingest_token)), 200);
    assert_eq!(
        grpc_export_without_token(&server.otlp_grpc),
        tonic::Code::Unauthenticated
    );

    // The in-process host collector still delivers over gRPC with its internal token.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: serde_json::Value = client()
            .get(server.url("/api/v1/query"))
            .query(&[("query", "count({job=\"didban-agent\"})")])
            .header(AUTHORIZATION, bearer(&viewer_token))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if !v["data"]["result"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no host metrics arrived: {v}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // Sessions survive a restart; the env admin is not re-created, nothing is printed.
    server.terminate();
    let mut server = start(&data, &["--auth", "true"], &[], &dir.path().join("stderr2.txt"));
    assert_eq!(
        get(&server, &admin, "/admin/users").status(),
        200,
        "admin session after restart"
    );
    assert_eq!(get(&server, &vera, "/").status(), 200);
    assert!(!server.stderr_text().contains("password:"));

    // Sign-out ends the session.
    let admin_csrf = csrf(&server, &admin, "/logout");
    assert_eq!(
        post_form(&server, &admin, "/logout", &[]).status(),
        403,
        "sign-out needs the token"
    );
    let r = post_form(&server, &admin, "/logout", &[("_csrf", &admin_csrf)]);
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");
    assert_eq!(get(&server, &admin, "/").status(), 303);
    server.terminate();
}

#[test]
fn a_generated_first_admin_password_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--auth", "true", "--no-host-metrics"];
    let mut server = start(&data, &args, &[], &dir.path().join("stderr1.txt"));
    let text = server.stderr_text();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("password:"))
        .unwrap_or_else(|| panic!("no password printed:\n{text}"));
    let password = line.trim().trim_start_matches("password:").trim().to_string();
    assert!(password.len() >= 16, "{password}");
    // Under systemd each stderr line is a journal entry: no blank ones, and
    // `grep -A2 'first admin'` shows the user and the password.
    assert!(
        !text.lines().any(|l| l.trim().is_empty()),
        "a blank line:\n{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.iter().position(|l| l.contains("first admin account"));
    let shown = first.map(|i| lines[i + 1..(i + 3).min(lines.len())].join("\n"));
    assert_eq!(shown, Some(format!("  user:     admin\n  password: {password}")));
    let users = std::fs::read_to_string(data.join("auth/users.json")).unwrap();
    assert!(!users.contains(&password), "only the hash is stored");
    assert!(users.contains("$argon2id$"));
    login(&server, "admin", &password);
    server.terminate();

    let args = ["--auth", "true", "--no-host-metrics", "--secure-cookies"];
    let mut server = start(&data, &args, &[], &dir.path().join("stderr2.txt"));
    assert!(
        !server.stderr_text().contains("password:"),
        "printed only at the first start"
    );
    let r = post_login(&server, "admin", &password, "/");
    assert_eq!(r.status(), 303);
    let set_cookie = r.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    server.terminate();
}

#[test]
fn a_non_loopback_bind_without_auth_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let http = format!("0.0.0.0:{port}");
    let stderr = dir.path().join("stderr.txt");
    let mut s = spawn(
        &dir.path().join("data"),
        &["--auth", "false", "--http-addr", &http],
        &[],
        &stderr,
    );
    // As long as a start may take (a debug build on a loaded machine): exiting later than
    // that is a hang, not a refusal.
    let deadline = Instant::now() + didban_testkit::wait::HANG;
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "didban started on {http} without auth");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let text = std::fs::read_to_string(&stderr).unwrap();
    assert!(text.contains(&format!("http_addr 0.0.0.0:{port}")), "{text}");
    assert!(text.contains("auth.allow_anonymous"), "{text}");
}

#[test]
fn on_loopback_auto_mode_is_anonymous_admin_but_refuses_cross_site_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(
        &dir.path().join("data"),
        &["--no-host-metrics"],
        &[],
        &dir.path().join("stderr.txt"),
    );
    assert!(!server.stderr_text().contains("password:"), "no account is made");
    let r = client().get(server.url("/admin/users")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("Sign-in is off"));
    assert_eq!(
        client()
            .get(server.url("/api/v1/query?query=1"))
            .send()
            .unwrap()
            .status(),
        200
    );
    let form = [
        ("action", "create"),
        ("name", "later"),
        ("password", "later-pass-1"),
        ("role", "viewer"),
    ];
    let r = client()
        .post(server.url("/admin/users"))
        .header("Origin", "http://evil.example")
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "a web page may not drive a local didban");
    let r = client()
        .post(server.url("/admin/users"))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .post(server.url("/admin/users"))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("User later created"));
    // Ingest is open to programs, but no web page on another origin may write data
    // (issue 13).
    let r = client()
        .post(format!("http://{}/v1/metrics", server.otlp_http))
        .header("content-type", "application/json")
        .header("Origin", "http://app.example")
        .body(otlp_gauge("anon_gauge"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .post(format!("http://{}/v1/metrics", server.otlp_http))
        .header("content-type", "application/json")
        .body(otlp_gauge("anon_gauge"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    server.terminate();
}
