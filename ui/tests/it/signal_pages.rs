//! The logs, traces, services, serverless and alerts pages over real stores in a temporary
//! directory, called through the UI router.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::support::send;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use didban_alerting::eval::RuleStorage;
use didban_alerting::{Alerting, AlertingSettings};
use didban_auth::{Role, Viewer};
use didban_store::logs::{LogOptions, LogRecord, LogStore};
use didban_store::promql::{Engine, EngineOptions};
use didban_store::traces::{Span, SpanEvent, TraceOptions, TraceStore};
use didban_store::{Db, DbOptions, Labels, Sample, SeriesSamples};
use didban_ui::UiContext;
use serde_json::{json, Map, Value};

const XSS: &str = "<img src=x onerror=alert(1)>";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

const RULES: &str = r#"
groups:
  - name: checkout-checks
    interval: 30s
    rules:
      - alert: CheckoutDown
        expr: up{job="checkout"} == 0
        labels:
          severity: page
        annotations:
          summary: "checkout is down"
      - record: job:up:sum
        expr: sum by (job) (up)
"#;

use crate::support::now_ms;

fn map(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn record(ms_ago: i64, severity: &str, service: &str, body: &str, trace: &str) -> LogRecord {
    let t = (now_ms() - ms_ago) * 1_000_000;
    LogRecord {
        timestamp_unix_nano: t,
        observed_unix_nano: t,
        severity_number: 0,
        severity_text: severity.into(),
        service: service.into(),
        body: body.into(),
        attributes: map(json!({"http.status_code": 500, "note": XSS})),
        resource: map(json!({"service.name": service})),
        trace_id: trace.into(),
        span_id: String::new(),
        scope_name: String::new(),
    }
}

fn span(id: u64, parent: u64, service: &str, name: &str, start_ms: i64, dur_ms: i64, error: bool) -> Span {
    Span {
        trace_id: TRACE.into(),
        span_id: format!("{id:016x}"),
        parent_span_id: if parent == 0 {
            String::new()
        } else {
            format!("{parent:016x}")
        },
        trace_state: String::new(),
        name: name.into(),
        kind: 2,
        service: service.into(),
        start_unix_nano: start_ms * 1_000_000,
        duration_nano: dur_ms * 1_000_000,
        status_code: if error { 2 } else { 0 },
        status_message: if error {
            "card declined".into()
        } else {
            String::new()
        },
        attributes: map(json!({"db.statement": XSS})),
        resource: map(json!({"service.name": service})).into(),
        scope_name: "test".into(),
        scope_version: "1".into(),
        events: vec![SpanEvent {
            time_unix_nano: (start_ms + 1) * 1_000_000,
            name: "retry".into(),
            attributes: Map::new(),
        }],
        links: Vec::new(),
    }
}

fn series(pairs: &[(&str, &str)], points: &[(i64, f64)]) -> SeriesSamples {
    SeriesSamples {
        labels: Labels::from_pairs(pairs.iter().copied()),
        samples: points.iter().map(|&(t, v)| Sample::new(t, v)).collect(),
        histograms: Vec::new(),
    }
}

/// Real stores with a few logs, one trace, span and FaaS metrics and a firing alert.
struct Fixture {
    app: Router,
    _dir: tempfile::TempDir,
}

async fn fixture(with_alerting: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let db = Arc::new(Db::open(DbOptions::new(dir.path())).unwrap());
    let engine = Arc::new(Engine::new(EngineOptions::default()));
    let logs = Arc::new(LogStore::open(LogOptions::new(dir.path())).unwrap());
    let traces = Arc::new(TraceStore::open(TraceOptions::new(dir.path())).unwrap());

    logs.append(vec![
        record(5 * 60_000, "ERROR", "checkout", XSS, TRACE),
        record(4 * 60_000, "INFO", "checkout", "hello world", ""),
        record(3 * 60_000, "WARN", "payments", "slow card check", ""),
    ])
    .await
    .unwrap();
    let committer = logs.clone();
    tokio::task::spawn_blocking(move || committer.commit())
        .await
        .unwrap()
        .unwrap();

    let t0 = now - 10 * 60_000;
    traces
        .append(vec![
            span(1, 0, "checkout", "GET /checkout", t0, 100, false),
            span(5, 1, "auth", "verify", t0 + 5, 40, false),
            span(2, 1, "checkout", "SELECT cart", t0 + 10, 30, false),
            span(3, 1, "payments", "charge", t0 + 50, 40, true),
            span(4, 3, "payments", XSS, t0 + 55, 15, false),
        ])
        .await
        .unwrap();

    let server = [
        ("__name__", "traces_span_metrics_calls_total"),
        ("service_name", "checkout"),
        ("span_name", "GET /checkout"),
        ("span_kind", "SPAN_KIND_SERVER"),
        ("status_code", "STATUS_CODE_UNSET"),
    ];
    let points = |a: f64, b: f64| vec![(now - 30 * 60_000, a), (now - 60_000, b)];
    let mut batch = vec![series(&server, &points(0.0, 174.0))];
    for (le, v) in [("0.05", 100.0), ("0.25", 170.0), ("+Inf", 174.0)] {
        let mut l = server.to_vec();
        l[0].1 = "traces_span_metrics_duration_seconds_bucket";
        l.push(("le", le));
        batch.push(series(&l, &points(0.0, v)));
    }
    let faas = |name| [("__name__", name), ("faas_name", "resize-image")];
    batch.push(series(&faas("faas_invocations_total"), &points(0.0, 40.0)));
    batch.push(series(&faas("faas_errors_total"), &points(0.0, 4.0)));
    batch.push(series(&faas("faas_coldstarts_total"), &points(0.0, 2.0)));
    batch.push(series(&faas("faas_estimated_cost_usd_total"), &points(0.0, 0.5)));
    batch.push(series(
        &[("__name__", "up"), ("job", "checkout"), ("instance", XSS)],
        &[(now - 30_000, 0.0)],
    ));
    let report = db.append(batch).await.unwrap();
    assert_eq!(report.accepted, 17, "{report:?}");

    let alerting = if with_alerting {
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/checkout.yaml"), RULES).unwrap();
        let storage: Arc<dyn RuleStorage> = db.clone();
        let a = Alerting::new(
            &AlertingSettings {
                packs_enabled: Some(false),
                ..AlertingSettings::default()
            },
            dir.path(),
            "http://didban.test",
            storage,
            engine.clone(),
            None,
        )
        .unwrap();
        a.manager.reload(false).await.unwrap();
        a.manager.eval_all_at(now).await;
        Some(a)
    } else {
        None
    };

    let app = didban_ui::router(UiContext {
        reader: db.clone(),
        figures: std::sync::Arc::new(didban_ui::signal_reads::LocalFigures {
            db: db.clone(),
            traces: traces.clone(),
            logs: logs.clone(),
        }),
        db,
        engine,
        query_limiter: std::sync::Arc::new(didban_store::promql::QueryLimiter::new(4, 64)),
        query_timeout: std::time::Duration::from_secs(120),
        log_reads: logs.clone(),
        logs,
        trace_reads: traces.clone(),
        traces,
        exemplars: Arc::new(
            didban_store::ExemplarStore::open(didban_store::ExemplarOptions::new(dir.path())).unwrap(),
        ),
        alerting,
        data_dir: dir.path().to_path_buf(),
        dashboard_dirs: Vec::new(),
    });
    Fixture { app, _dir: dir }
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    let (s, b, _) = send(app, Request::get(uri).body(Body::empty()).unwrap()).await;
    (s, b)
}

fn post(uri: &str, body: &str, viewer: Option<Viewer>) -> Request<Body> {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap();
    if let Some(v) = viewer {
        req.extensions_mut().insert(v);
    }
    req
}

fn no_raw_xss(html: &str) {
    assert!(!html.contains("<img src=x"), "unescaped markup in the page");
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let s = text.find(start).unwrap() + start.len();
    let e = text[s..].find(end).unwrap();
    &text[s..s + e]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_page_lists_records_with_severity_and_volume() {
    let f = fixture(false).await;
    let (status, html) = get(&f.app, "/logs").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"class="log sev-error""#), "{html}");
    assert!(html.contains(r#"class="log sev-info""#));
    assert!(html.contains(r#"class="log sev-warn""#));
    assert!(html.contains("hello world"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    no_raw_xss(&html);
    assert!(html.contains(&format!(r#"href="/traces/{TRACE}""#)));
    // stacked bars, one segment per severity present
    assert!(html.contains(r#"<rect class="sev-error""#), "{html}");
    assert!(html.contains(r#"<rect class="sev-warn""#));
    assert!(html.contains("3 records"));
    // top services narrow the query
    assert!(html.contains("q=service%3A%22payments%22"), "{html}");
    // newest first
    assert!(html.find("slow card check").unwrap() < html.find("hello world").unwrap());

    let (status, html) = get(&f.app, "/logs?q=service%3A%22payments%22").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("slow card check") && !html.contains("hello world"));

    let (_, html) = get(&f.app, "/logs?q=severity_text:ERROR").await;
    assert!(html.contains(r#"class="log sev-error""#));
    assert!(!html.contains("hello world"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_page_pages_with_the_cursor_and_reports_bad_queries() {
    let f = fixture(false).await;
    let (_, html) = get(&f.app, "/logs?limit=2").await;
    assert!(html.contains("slow card check") && html.contains("hello world"));
    let older = html
        .split("href=\"")
        .map(|rest| rest.split('"').next().unwrap())
        .find(|href| href.contains("cursor="))
        .unwrap()
        .replace("&amp;", "&");
    assert!(older.contains("cursor="), "{older}");
    let (status, html) = get(&f.app, &older).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("&lt;img src=x"));
    assert!(!html.contains("hello world"));
    assert!(!html.contains("Older →"));

    let (status, html) = get(&f.app, "/logs?q=body%3A%28").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("The search failed"));
    assert!(
        html.contains(r#"name="q" value="body:(""#),
        "the query is kept: {html}"
    );
    let (status, _) = get(&f.app, "/logs?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(&f.app, "/logs?cursor=nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, html) = get(&f.app, "/logs/tail?q=checkout").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"id="log-tail" data-query="checkout""#), "{html}");
    assert!(html.contains("Reload"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_page_draws_the_waterfall_with_the_critical_path() {
    let f = fixture(false).await;
    let (status, html) = get(&f.app, &format!("/traces/{}", TRACE.to_uppercase())).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    no_raw_xss(&html);
    let depths: Vec<&str> = html
        .match_indices("data-depth=\"")
        .map(|(i, _)| &html[i + 12..i + 13])
        .collect();
    assert_eq!(depths, vec!["0", "1", "1", "1", "2"], "depth-first rows");
    let rows: Vec<&str> = html
        .match_indices("class=\"span-row")
        .map(|(i, _)| &html[i..i + 40])
        .collect();
    assert_eq!(rows.len(), 5);
    // root → charge → its child, then back to verify (ended before charge started);
    // SELECT cart ran in parallel with verify and ended earlier: not waited on
    assert!(rows[0].starts_with(r#"class="span-row crit""#), "{rows:?}");
    assert!(rows[1].starts_with(r#"class="span-row crit""#), "{rows:?}");
    assert!(rows[2].starts_with(r#"class="span-row">"#), "{rows:?}");
    assert!(rows[3].starts_with(r#"class="span-row crit err""#), "{rows:?}");
    assert!(rows[4].starts_with(r#"class="span-row crit""#), "{rows:?}");
    assert!(html.contains("crit-seg"));
    assert!(html.contains("card declined"));
    assert!(
        html.contains(&format!("q=trace_id%3A{TRACE}")),
        "link to the trace's logs"
    );

    let (status, _) = get(&f.app, "/traces/not-hex").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, html) = get(&f.app, "/traces/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Trace not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_search_shows_scatter_and_list() {
    let f = fixture(false).await;
    let (status, html) = get(&f.app, "/traces?service=payments&tags=error%3Dtrue").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(r#"<option value="payments" selected"#), "{html}");
    assert!(
        html.contains("data-operations=\"{&quot;auth&quot;:[&quot;verify&quot;]"),
        "{html}"
    );
    assert!(html.contains(r#"class="dot err""#));
    assert!(html.contains(&format!(r#"href="/traces/{TRACE}""#)));
    assert!(html.contains("checkout: GET /checkout"));
    no_raw_xss(&html);
    let (_, html) = get(
        &f.app,
        "/traces?service=payments&tags=error%3Dfalse+http.status_code%3D999",
    )
    .await;
    assert!(html.contains("No traces match"));
    let (status, html) = get(&f.app, "/traces?tags=oops").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("oops"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_serverless_pages_show_rates() {
    let f = fixture(false).await;
    let (status, html) = get(&f.app, "/services").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(">checkout</th>"), "{html}");
    assert!(html.contains(">payments</th>"), "from the trace store");
    let row = between(&html, ">checkout</th>", "</tr>");
    let rate = between(row, r#"<td class="num rate">"#, "</td>");
    assert!(rate.ends_with(" req/s") && rate != "0 req/s", "{rate}");
    assert!(row.contains("ms</td>"), "a p95 latency from the buckets: {row}");
    assert!(html.contains("/dashboards/http-service?var-service=checkout"));
    assert!(html.contains("/traces?service=checkout"));
    // checkout calls payments and auth in the stored trace
    assert!(
        html.contains("<tr><td>checkout</td><td>payments</td><td class=\"num\">1</td></tr>"),
        "{html}"
    );

    let (status, html) = get(&f.app, "/serverless").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(">resize-image</th>"), "{html}");
    assert!(html.contains("10.00%"), "error share 4/40: {html}");
    assert!(html.contains("5.00%"), "cold starts 2/40");
    assert!(html.contains("/dashboards/serverless?var-function=resize-image"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_page_shows_firing_rule_and_silences_round_trip() {
    let f = fixture(true).await;
    let (status, html) = get(&f.app, "/alerts").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("CheckoutDown"));
    assert!(
        html.contains(r#"<span class="state state-firing">firing</span>"#),
        "{html}"
    );
    assert!(html.contains("job:up:sum"));
    // Each rule's origin: this test's rule file.
    assert!(html.contains(r#"<th scope="col">Origin</th>"#), "{html}");
    assert!(html.contains("<code>file:"), "{html}");
    assert!(html.contains("checkout is down"));
    no_raw_xss(&html);
    assert!(
        html.contains("/alerts/silences/new?matcher=alertname%3D%22CheckoutDown%22"),
        "{html}"
    );

    let (status, html) = get(
        &f.app,
        "/alerts/silences/new?matcher=alertname%3D%22CheckoutDown%22",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"value="alertname=&quot;CheckoutDown&quot;""#),
        "{html}"
    );

    let editor = || Viewer {
        user: Some("ana".into()),
        role: Role::Editor,
        csrf: "tok123".into(),
    };
    let form = "matchers=alertname%3D%22CheckoutDown%22&created_by=ana&comment=deploying+%3Cb%3Enow%3C%2Fb%3E&duration=1h";
    // wrong token, then a mere viewer: refused
    let (status, _, _) = send(
        &f.app,
        post("/alerts/silences", &format!("_csrf=bad&{form}"), Some(editor())),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut viewer = editor();
    viewer.role = Role::Viewer;
    let (status, _, _) = send(
        &f.app,
        post("/alerts/silences", &format!("_csrf=tok123&{form}"), Some(viewer)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // invalid: the form comes back with the message and the text kept
    let (status, html, _) = send(
        &f.app,
        post(
            "/alerts/silences",
            "_csrf=tok123&matchers=alertname&created_by=ana&comment=x",
            Some(editor()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("expected ="), "{html}");
    assert!(html.contains(r#"name="matchers" value="alertname""#), "{html}");
    // the kept comment is text inside the textarea, never markup (Leptos does not escape
    // textarea children by itself)
    let (status, html, _) = send(
        &f.app,
        post(
            "/alerts/silences",
            "_csrf=tok123&matchers=alertname&created_by=ana&comment=%3C%2Ftextarea%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            Some(editor()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(html.contains("&lt;/textarea&gt;&lt;script&gt;alert(1)"), "{html}");
    // valid: redirect, then listed
    let (status, _, location) = send(
        &f.app,
        post(
            "/alerts/silences",
            &format!("_csrf=tok123&{form}"),
            Some(editor()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = location.unwrap();
    assert!(location.starts_with("/alerts?silenced="), "{location}");
    let (_, html) = get(&f.app, &location).await;
    assert!(html.contains("deploying &lt;b&gt;now&lt;/b&gt;"), "{html}");
    assert!(html.contains(r#"<span class="state state-active">active</span>"#));
    assert!(html.contains("Expire"));
    let id = location.trim_start_matches("/alerts?silenced=");
    let (status, _, location) = send(
        &f.app,
        post(
            &format!("/alerts/silences/{id}/expire"),
            "_csrf=tok123",
            Some(editor()),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = get(&f.app, &location.unwrap()).await;
    assert!(
        html.contains(r#"<span class="state state-expired">expired</span>"#),
        "{html}"
    );
    let (status, _, _) = send(
        &f.app,
        post("/alerts/silences/nope/expire", "_csrf=tok123", Some(editor())),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_page_says_when_alerting_is_disabled() {
    let f = fixture(false).await;
    let (status, html) = get(&f.app, "/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Alerting is disabled"));
}
