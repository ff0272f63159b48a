//! The UI in a real browser: starts didban with sign-in on and some metrics, logs and spans,
//! then runs `tests/browser/ui_pages.py` (Playwright over Debian's headless Chromium), which
//! signs in through the form, visits the pages of its table, fails on console errors and
//! saves a screenshot per page under `$CARGO_TARGET_TMPDIR/ui-screenshots/`.
//!
//! Skipped, loudly, only when Chromium or Playwright is missing and `DIDBAN_REQUIRE_BROWSER`
//! is unset (`didban_testkit::browser`); `scripts/test.sh` installs both and sets it, so CI
//! never skips silently.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::auth_support::*;
use didban_testkit::browser;
use reqwest::header::AUTHORIZATION;

const ADMIN: (&str, &str) = ("admin", "browser-pass-1");

/// A few gauges, a native histogram with exemplars, log records and spans over OTLP/HTTP
/// JSON with an ingest token.
fn push_data(server: &Server, token: &str) {
    let post = |path: &str, body: String| {
        let r = client()
            .post(format!("http://{}{path}", server.otlp_http))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{path}: {}", r.text().unwrap_or_default());
    };
    let resource = r#"{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]}"#;
    let now = u128::try_from(didban_testkit::now_nanos()).unwrap();
    for step in 0..5u128 {
        let t = now - (5 - step) * 15_000_000_000;
        let points: Vec<String> = ["eu", "us"]
            .iter()
            .enumerate()
            .map(|(i, region)| {
                format!(
                    r#"{{"timeUnixNano":"{t}","asDouble":{},"attributes":[{{"key":"region","value":{{"stringValue":"{region}"}}}}]}}"#,
                    step as f64 + i as f64 * 10.0
                )
            })
            .collect();
        post(
            "/v1/metrics",
            format!(
                r#"{{"resourceMetrics":[{{"resource":{resource},"scopeMetrics":[{{"metrics":[{{"name":"queue_depth","gauge":{{"dataPoints":[{}]}}}}]}}]}}]}}"#,
                points.join(",")
            ),
        );
    }
    let logs: Vec<String> = ["order placed", "payment failed: card declined", "order shipped"]
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let sev = if text.contains("failed") { 17 } else { 9 };
            format!(
                r#"{{"timeUnixNano":"{}","severityNumber":{sev},"body":{{"stringValue":"{text}"}}}}"#,
                now - i as u128 * 1_000_000_000
            )
        })
        .collect();
    post(
        "/v1/logs",
        format!(
            r#"{{"resourceLogs":[{{"resource":{resource},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
            logs.join(",")
        ),
    );
    // A latency histogram (OTLP exponential: a native histogram) whose last points carry
    // exemplars of the trace below, for the heatmap and the exemplar dots.
    let points: Vec<String> = (0..6u128)
        .map(|k| {
            let t = now - (5 - k) * 15_000_000_000;
            let exemplar = if k >= 4 {
                format!(
                    r#","exemplars":[{{"timeUnixNano":"{}","asDouble":0.2,"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}}]"#,
                    t - 1_000_000
                )
            } else {
                String::new()
            };
            format!(
                r#"{{"startTimeUnixNano":"{}","timeUnixNano":"{t}","count":"{}","sum":{},"scale":0,"positive":{{"offset":-4,"bucketCounts":["{}","{}","{}"]}}{exemplar}}}"#,
                now - 100_000_000_000,
                8 * k,
                1.6 * k as f64,
                2 * k,
                5 * k,
                k
            )
        })
        .collect();
    post(
        "/v1/metrics",
        format!(
            r#"{{"resourceMetrics":[{{"resource":{resource},"scopeMetrics":[{{"metrics":[{{"name":"checkout_latency_seconds","exponentialHistogram":{{"aggregationTemporality":2,"dataPoints":[{}]}}}}]}}]}}]}}"#,
            points.join(",")
        ),
    );
    let trace = "5b8efff798038103d269b633813fc60c";
    let spans = format!(
        r#"[{{"traceId":"{trace}","spanId":"eee19b7ec3c1b174","name":"POST /checkout","kind":2,"startTimeUnixNano":"{s}","endTimeUnixNano":"{e}"}},
            {{"traceId":"{trace}","spanId":"eee19b7ec3c1b175","parentSpanId":"eee19b7ec3c1b174","name":"charge card","kind":3,"startTimeUnixNano":"{s2}","endTimeUnixNano":"{e2}","status":{{"code":2}}}}]"#,
        s = now - 300_000_000,
        e = now,
        s2 = now - 250_000_000,
        e2 = now - 50_000_000,
    );
    post(
        "/v1/traces",
        format!(r#"{{"resourceSpans":[{{"resource":{resource},"scopeSpans":[{{"spans":{spans}}}]}}]}}"#),
    );
    // A serverless function: three invocations, the first one cold.
    let faas_resource = r#"{"attributes":[{"key":"service.name","value":{"stringValue":"resize-image"}},{"key":"faas.name","value":{"stringValue":"resize-image"}},{"key":"faas.max_memory","value":{"intValue":"1073741824"}},{"key":"cloud.provider","value":{"stringValue":"aws"}},{"key":"cloud.region","value":{"stringValue":"eu-west-1"}}]}"#;
    let invocations: Vec<String> = (0..3u128)
        .map(|i| {
            format!(
                r#"{{"traceId":"{:032x}","spanId":"{:016x}","name":"resize-image","kind":2,"startTimeUnixNano":"{}","endTimeUnixNano":"{}","attributes":[{{"key":"faas.coldstart","value":{{"boolValue":{}}}}},{{"key":"faas.trigger","value":{{"stringValue":"http"}}}}]}}"#,
                0xfaa5_0000 + i,
                0xfaa5_0000 + i,
                now - 2_000_000_000 + i * 500_000_000,
                now - 1_900_000_000 + i * 500_000_000,
                i == 0
            )
        })
        .collect();
    post(
        "/v1/traces",
        format!(
            r#"{{"resourceSpans":[{{"resource":{faas_resource},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
            invocations.join(",")
        ),
    );
}

/// A provisioned dashboard over the latency histogram: a native heatmap and a p95 chart
/// with exemplar dots (the browser clicks one and expects the trace).
const NATIVE_DASHBOARD: &str = r#"
id: native
title: Native histograms
panels:
  - title: Checkout latency
    type: heatmap
    unit: s
    queries:
      - expr: 'sum(rate(checkout_latency_seconds[1m]))'
  - title: Checkout p95
    type: timeseries
    unit: s
    exemplars: true
    x: 12
    queries:
      - expr: 'histogram_quantile(0.95, sum(rate(checkout_latency_seconds[1m])))'
        legend: p95
"#;

/// A rule that fires at once, so the alerts page has a firing alert to silence.
const RULES: &str = r#"groups:
  - name: browser
    interval: 1s
    rules:
      - alert: BrowserTestAlert
        expr: vector(1) > 0
        labels:
          severity: page
        annotations:
          summary: "always firing, for the browser test"
"#;

fn screenshot_dir() -> PathBuf {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    base.join("ui-screenshots")
}

#[test]
fn ui_pages_render_in_headless_chromium() {
    if !browser::available("ui_browser") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("didban.toml");
    std::fs::write(
        &config,
        format!(
            "[host_metrics]\ninterval = \"1s\"\n[logs]\ncommit_interval = \"200ms\"\n[alerting]\nrules_dir = {:?}\npacks_enabled = false\n[ui]\ndashboards_dir = {:?}\n",
            dir.path().join("rules"),
            dir.path().join("dashboards")
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("dashboards")).unwrap();
    std::fs::write(dir.path().join("dashboards/native.yaml"), NATIVE_DASHBOARD).unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/browser.yml"), RULES).unwrap();
    let server = start(
        &dir.path().join("data"),
        &["--auth", "true", "--config", config.to_str().unwrap()],
        &[("DIDBAN_ADMIN_USER", ADMIN.0), ("DIDBAN_ADMIN_PASSWORD", ADMIN.1)],
        &dir.path().join("stderr.txt"),
    );
    let admin = login(&server, ADMIN.0, ADMIN.1);
    let ingest = create_token(&server, &admin, "browser test", "viewer", true);
    push_data(&server, &ingest);
    // Wait until the data is queryable, so pages that show it have something to draw.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: serde_json::Value = client()
            .get(server.url("/api/v1/query"))
            .query(&[("query", "count(queue_depth)")])
            .header(AUTHORIZATION, format!("Bearer {ingest}"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        if v["data"]["result"][0]["value"][1] == "2" {
            break;
        }
        assert!(Instant::now() < deadline, "pushed metrics not queryable: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let out = screenshot_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/ui_pages.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(["--base-url", &server.url("")])
        .args(["--user", ADMIN.0, "--password", ADMIN.1])
        .args(["--otlp-http", &format!("http://{}", server.otlp_http)])
        .args(["--ingest-token", &ingest])
        .arg("--out")
        .arg(&out)
        .arg("--chromium")
        .arg(browser::chromium())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "browser checks failed (screenshots in {}):\n{stderr}",
        out.display()
    );
    assert!(out.join("home.png").exists());
    assert!(out.join("admin-users.png").exists());
}
