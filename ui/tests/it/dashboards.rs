//! Dashboard pages through the real router over real stores in a temp dir: list, view with
//! data, panel fragments, save/edit/delete, import, id collisions, roles and escaping.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use crate::support::send;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use didban_auth::{Role, Viewer};
use didban_store::logs::{LogOptions, LogRecord, LogStore};
use didban_store::promql::{Engine, EngineOptions};
use didban_store::traces::{TraceOptions, TraceStore};
use didban_store::{Db, DbOptions, Labels, Sample, SeriesSamples};
use didban_ui::UiContext;

struct Env {
    _dir: tempfile::TempDir,
    ctx: UiContext,
    now: i64,
}

use crate::support::now_ms;

/// A UiContext over fresh stores, with `up` and a request counter for two instances over
/// the last hour at 15 s, and one error log record.
async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(DbOptions::new(dir.path())).unwrap();
    let logs = LogStore::open(LogOptions::new(dir.path())).unwrap();
    let traces = TraceStore::open(TraceOptions::new(dir.path())).unwrap();
    let now = now_ms();
    let mut batch = Vec::new();
    for (instance, base) in [("h1", 1.0), ("h2", 5.0)] {
        let mut up = Vec::new();
        let mut reqs = Vec::new();
        for i in 0..=240 {
            let t = now - 3_600_000 + i * 15_000;
            up.push(Sample::new(t, 1.0));
            reqs.push(Sample::new(t, base * i as f64 * 15.0));
        }
        batch.push(SeriesSamples {
            labels: Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", instance)]),
            samples: up,
            histograms: Vec::new(),
        });
        batch.push(SeriesSamples {
            labels: Labels::from_pairs([
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("instance", instance),
            ]),
            samples: reqs,
            histograms: Vec::new(),
        });
    }
    let report = db.append(batch).await.unwrap();
    assert_eq!(report.rejected_total(), 0);
    let record = LogRecord {
        timestamp_unix_nano: (now - 60_000) * 1_000_000,
        observed_unix_nano: (now - 60_000) * 1_000_000,
        severity_number: 17,
        severity_text: "ERROR".into(),
        service: "checkout".into(),
        body: "payment <b>declined</b> for order 42".into(),
        attributes: Default::default(),
        resource: Default::default(),
        trace_id: String::new(),
        span_id: String::new(),
        scope_name: String::new(),
    };
    logs.append(vec![record]).await.unwrap();
    let logs = Arc::new(logs);
    let traces = Arc::new(traces);
    let l = logs.clone();
    tokio::task::spawn_blocking(move || l.commit())
        .await
        .unwrap()
        .unwrap();
    let db = Arc::new(db);
    let ctx = UiContext {
        reader: db.clone(),
        figures: std::sync::Arc::new(didban_ui::signal_reads::LocalFigures {
            db: db.clone(),
            traces: traces.clone(),
            logs: logs.clone(),
        }),
        db,
        engine: Arc::new(Engine::new(EngineOptions::default())),
        query_limiter: Arc::new(didban_store::promql::QueryLimiter::new(4, 64)),
        query_timeout: std::time::Duration::from_secs(120),
        log_reads: logs.clone(),
        logs,
        trace_reads: traces.clone(),
        traces,
        exemplars: Arc::new(
            didban_store::ExemplarStore::open(didban_store::ExemplarOptions::new(dir.path())).unwrap(),
        ),
        alerting: None,
        data_dir: dir.path().to_path_buf(),
        dashboard_dirs: Vec::new(),
    };
    Env { _dir: dir, ctx, now }
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    let (s, b, _) = send(app, Request::get(uri).body(Body::empty()).unwrap()).await;
    (s, b)
}

fn post_form(uri: &str, pairs: &[(&str, &str)]) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(serde_urlencoded::to_string(pairs).unwrap()))
        .unwrap()
}

const USER_YAML: &str = r#"
id: xss
title: "Ops <script>alert(1)</script>"
tags: [team]
variables:
  - name: instance
    type: query
    query: label_values(up{job="api"}, instance)
    multi: true
    include_all: true
panels:
  - title: Request rate
    type: timeseries
    unit: reqps
    queries:
      - expr: 'sum by (instance) (rate(http_requests_total{instance=~"$instance"}[$__rate_interval]))'
        legend: '<script>{{instance}}</script>'
    w: 12
    h: 8
  - title: Broken
    type: stat
    queries:
      - expr: 'sum(rate(up[5m]'
    x: 12
    w: 12
    h: 8
  - title: Targets
    type: table
    queries:
      - expr: 'up{instance=~"$instance"}'
    y: 8
    w: 12
    h: 6
  - title: Errors
    type: logs
    query: 'service:checkout'
    x: 12
    y: 8
    w: 12
    h: 6
  - title: Notes
    type: text
    text: "first line\nsecond <i>line</i>\n\nnext paragraph"
    y: 14
    w: 24
    h: 3
"#;

#[tokio::test]
async fn list_view_fragment_save_edit_delete() {
    let env = env().await;
    let app = didban_ui::router(env.ctx.clone());

    // the list shows the shipped dashboards; search and tag filter narrow it
    let (s, body) = get(&app, "/dashboards").await;
    assert_eq!(s, StatusCode::OK);
    for title in [
        "Host overview",
        "PostgreSQL",
        "Redis &amp; Celery",
        "HTTP service",
        "Serverless functions",
        "Didban self-monitoring",
    ] {
        assert!(body.contains(title), "{title} missing");
    }
    let (_, body) = get(&app, "/dashboards?q=postgres").await;
    assert!(body.contains("PostgreSQL") && !body.contains("Host overview"));
    let (_, body) = get(&app, "/dashboards?tag=faas").await;
    assert!(body.contains("Serverless functions") && !body.contains("PostgreSQL</a>"));

    // save a user dashboard from the YAML editor
    let (s, _, loc) = send(
        &app,
        post_form(
            "/dashboards/new",
            &[("_csrf", ""), ("mode", "yaml"), ("yaml", USER_YAML)],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(loc.as_deref(), Some("/dashboards/xss"));
    let file = env.ctx.data_dir.join("dashboards/xss.yaml");
    let saved = didban_ui::dashboard::Dashboard::from_yaml("saved", &std::fs::read_to_string(&file).unwrap())
        .unwrap();
    assert_eq!(
        saved,
        didban_ui::dashboard::Dashboard::from_yaml("typed", USER_YAML).unwrap()
    );
    let (_, body) = get(&app, "/dashboards?tag=team").await;
    assert!(
        body.contains(r#"href="/dashboards/xss""#),
        "saved dashboard not listed"
    );
    assert!(!body.contains("<script>alert"), "title not escaped in the list");

    // view: data paths, legend from the format, escaped, errors inside their panel
    let (s, page) = get(&app, "/dashboards/xss?from=now-1h&to=now&refresh=30s").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        !page.contains("<script>alert") && !page.contains("<script>h1"),
        "unescaped text in the page"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        page.contains("&lt;script&gt;h1&lt;/script&gt;"),
        "legend missing or unescaped"
    );
    assert!(page.contains(r#"d="M"#), "no data path in the chart");
    assert!(
        page.contains(r#"class="panel-error""#) && page.contains("Query A:"),
        "query error not shown in its panel"
    );
    assert!(
        page.contains(r#"<option value="h1" selected"#)
            || page.contains(r#"<option value="$__all" selected"#)
    );
    assert!(page.contains(r#"data-refresh-seconds="30""#));
    assert!(page.contains(r#"data-refresh-url="/dashboards/xss/panels/0?from=now-1h&amp;to=now&amp;refresh=30s&amp;var-instance=%24__all""#), "{}", &page[page.find("data-refresh-url").unwrap()..][..200]);
    assert!(page.contains("grid-column: 13 / span 12"));
    // table, logs and text panels
    assert!(page.contains("<td>h2</td>"), "table rows missing");
    assert!(
        page.contains("payment &lt;b&gt;declined&lt;/b&gt;"),
        "log record missing or unescaped"
    );
    assert!(page.contains("<p>first line<br>second &lt;i&gt;line&lt;/i&gt;</p><p>next paragraph</p>"));

    // the editor shows the YAML as text inside its textarea (Leptos leaves textarea
    // children raw, so the page escapes them itself)
    let (s, edit) = get(&app, "/dashboards/xss/edit").await;
    assert_eq!(s, StatusCode::OK);
    assert!(!edit.contains("<script>alert"), "unescaped YAML in the editor");
    assert!(edit.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // one variable value: only that instance's series
    let (_, page) = get(&app, "/dashboards/xss?var-instance=h2").await;
    assert!(page.contains("&lt;script&gt;h2") && !page.contains("&lt;script&gt;h1"));

    // the fragment is the panel alone
    let (s, frag) = get(&app, "/dashboards/xss/panels/0?var-instance=h1").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        frag.starts_with(r#"<section class="panel panel-timeseries" id="panel-0""#),
        "{frag}"
    );
    assert!(frag.contains(r#"d="M"#) && !frag.contains("<html"));
    let (s, _) = get(&app, "/dashboards/xss/panels/9").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // shipped dashboards render without data (panels say so)
    let (s, page) = get(&app, "/dashboards/host").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("No data") && page.contains("Save as copy"));

    // a user dashboard may not take a shipped id
    let taken = USER_YAML.replace("id: xss", "id: host");
    let (s, body, _) = send(
        &app,
        post_form("/dashboards/new", &[("mode", "yaml"), ("yaml", &taken)]),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        body.contains("shipped") && body.contains("id: host"),
        "error or kept text missing"
    );

    // invalid YAML keeps the text and names the field
    let bad = USER_YAML.replace("type: table", "type: tabel");
    let (s, body, _) = send(
        &app,
        post_form("/dashboards/xss", &[("mode", "yaml"), ("yaml", &bad)]),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("tabel") && body.contains(r#"role="alert""#));

    // the field form changes a panel and adds one
    let (s, edit) = get(&app, "/dashboards/xss/edit").await;
    assert_eq!(s, StatusCode::OK);
    assert!(edit.contains(r#"name="p0.title""#) && edit.contains(r#"name="_csrf""#));
    assert!(
        edit.contains(r#"<option value="table" selected"#),
        "panel type not preselected"
    );
    let base = std::fs::read_to_string(&file).unwrap();
    let form = [
        ("mode", "fields"),
        ("base", base.as_str()),
        ("id", "xss"),
        ("title", "Ops board"),
        ("tags", "team, api"),
        ("p1.remove", "1"),
        ("p0.title", "Rate"),
        ("p0.type", "timeseries"),
        ("p0.query", "sum(rate(http_requests_total[5m]))"),
        ("p0.legend", "total"),
        ("p5.title", "Up count"),
        ("p5.type", "stat"),
        ("p5.query", "count(up)"),
        ("p5.w", "6"),
    ];
    let (s, _, loc) = send(&app, post_form("/dashboards/xss", &form)).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "field form refused");
    assert_eq!(loc.as_deref(), Some("/dashboards/xss"));
    let d = didban_ui::dashboard::Dashboard::from_yaml("saved", &std::fs::read_to_string(&file).unwrap())
        .unwrap();
    assert_eq!(d.title, "Ops board");
    assert_eq!(d.tags, ["team", "api"]);
    let titles: Vec<&str> = d.panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["Rate", "Targets", "Errors", "Notes", "Up count"]);
    assert_eq!(d.panels[0].queries[0].expr, "sum(rate(http_requests_total[5m]))");
    assert_eq!(d.panels[4].w, 6);

    // a viewer may not save or delete
    let mut req = post_form("/dashboards/xss/delete", &[]);
    req.extensions_mut().insert(Viewer {
        user: Some("v".into()),
        role: Role::Viewer,
        csrf: "t".into(),
    });
    let (s, _, _) = send(&app, req).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(file.exists());

    // delete
    let (s, _, loc) = send(&app, post_form("/dashboards/xss/delete", &[])).await;
    assert_eq!((s, loc.as_deref()), (StatusCode::SEE_OTHER, Some("/dashboards")));
    assert!(!file.exists());
    let (s, _) = get(&app, "/dashboards/xss").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = send(&app, post_form("/dashboards/host/delete", &[])).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let _ = env.now;
}

#[tokio::test]
async fn grafana_import_saves_and_bad_input_is_a_4xx() {
    let env = env().await;
    let app = didban_ui::router(env.ctx.clone());
    let json = r#"{"title": "Imported API", "schemaVersion": 30, "panels": [
        {"type": "graph", "title": "Up", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 8},
         "targets": [{"expr": "up", "legendFormat": "{{instance}}"}]}]}"#;
    let (s, _, loc) = send(&app, post_form("/dashboards/import", &[("json", json)])).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(loc.as_deref(), Some("/dashboards/imported-api"));
    let (s, page) = get(&app, "/dashboards/imported-api").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains(r#"d="M"#) && page.contains("<title>h1</title>"),
        "imported panel has no data"
    );
    // importing again: the id is taken, the editor opens with the converted YAML
    let (s, body, _) = send(&app, post_form("/dashboards/import", &[("json", json)])).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(body.contains("already exists") && body.contains("id: imported-api"));
    let (s, body, _) = send(&app, post_form("/dashboards/import", &[("json", "{nope")])).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("not JSON") && body.contains("{nope"));

    // bad view state is a 400 page, unknown dashboards a 404
    let (s, body) = get(&app, "/dashboards/imported-api?from=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("yesterday"));
    let (s, _) = get(&app, "/dashboards/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn provisioned_dashboards_are_read_only_and_reloaded() {
    let mut env = env().await;
    let prov = tempfile::tempdir().unwrap();
    env.ctx.dashboard_dirs = vec![prov.path().to_path_buf()];
    let app = didban_ui::router(env.ctx.clone());
    let (_, body) = get(&app, "/dashboards").await;
    assert!(!body.contains("Provisioned board"));
    std::fs::write(
        prov.path().join("prov.yaml"),
        "id: prov\ntitle: Provisioned board\npanels:\n  - title: Up\n    type: stat\n    queries:\n      - expr: count(up)\n",
    )
    .unwrap();
    let (_, body) = get(&app, "/dashboards").await;
    assert!(body.contains("Provisioned board") && body.contains("provisioned"));
    let (s, page) = get(&app, "/dashboards/prov").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Save as copy"));
    let (s, edit) = get(&app, "/dashboards/prov/edit").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        edit.contains("id: prov-copy"),
        "copy form should propose a new id"
    );
    let yaml = "id: prov\ntitle: Mine\n";
    let (s, body, _) = send(
        &app,
        post_form("/dashboards/prov", &[("mode", "yaml"), ("yaml", yaml)]),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(body.contains("provisioned"));
    let yaml = "id: prov-copy\ntitle: Mine\n";
    let (s, _, loc) = send(
        &app,
        post_form("/dashboards/prov", &[("mode", "yaml"), ("yaml", yaml)]),
    )
    .await;
    assert_eq!(
        (s, loc.as_deref()),
        (StatusCode::SEE_OTHER, Some("/dashboards/prov-copy"))
    );
    assert!(
        prov.path().join("prov.yaml").exists(),
        "the provisioned file must stay"
    );
}
