//! The Prometheus API's status, query-text and target endpoints, and the `limit` and
//! `lookback_delta` parameters, over a real socket against series appended to real stores;
//! plus the UI's cardinality page over the same figures.

use std::process::Command;

use didban_collector::metadata::MetricMetadata;
use didban_store::{Labels, Sample, SeriesSamples};
use serde_json::{json, Value};

use crate::query_limits::{start, Api};

/// One series to append: its label pairs and its `(time ms, value)` points.
type Points<'a> = (&'a [(&'a str, &'a str)], &'a [(i64, f64)]);

async fn append(api: &Api, series: &[Points<'_>]) {
    let mut batch = Vec::new();
    for (labels, points) in series {
        batch.push(SeriesSamples {
            labels: Labels::from_pairs(labels.iter().copied()),
            samples: points.iter().map(|(t, v)| Sample::new(*t, *v)).collect(),
            histograms: Vec::new(),
        });
    }
    let report = api.state.stores.metrics.append(batch).await.unwrap();
    assert_eq!(report.rejected_total(), 0, "{report:?}");
}

async fn get(api: &Api, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", api.base))
        .query(params)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post(api: &Api, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", api.base))
        .form(params)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn git_head() -> Option<String> {
    let out = Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::test]
async fn buildinfo_runtimeinfo_and_flags_describe_this_server() {
    let api = start(|c| c.query.lookback_delta = std::time::Duration::from_secs(120)).await;

    let (code, r) = get(&api, "/api/v1/status/buildinfo", &[]).await;
    assert_eq!(code, 200, "{r}");
    let info = &r["data"];
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let expected = std::env::var("DIDBAN_REVISION")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(git_head);
    if let Some(rev) = expected {
        assert_eq!(info["revision"], rev.as_str(), "{r}");
    }
    assert!(info["rustVersion"].as_str().unwrap().starts_with("rustc "), "{r}");
    assert!(info.get("goVersion").is_none(), "{r}");

    let (code, r) = get(&api, "/api/v1/status/runtimeinfo", &[]).await;
    assert_eq!(code, 200, "{r}");
    let rt = &r["data"];
    let start = chrono::DateTime::parse_from_rfc3339(rt["startTime"].as_str().unwrap()).unwrap();
    let server = chrono::DateTime::parse_from_rfc3339(rt["serverTime"].as_str().unwrap()).unwrap();
    assert!(start <= server, "{r}");
    assert_eq!(rt["storageRetention"], "15d");
    assert_eq!(rt["corruptionCount"], 0);
    assert!(rt["GOMAXPROCS"].as_u64().unwrap() >= 1, "{r}");
    assert!(rt["goroutineCount"].as_u64().unwrap() >= 1, "{r}");
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(rt["CWD"], cwd.display().to_string().as_str());

    let (code, r) = get(&api, "/api/v1/status/flags", &[]).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["data"]["query.lookback_delta"], "2m");
    assert_eq!(r["data"]["storage.fsync"], "batch");
    assert_eq!(
        r["data"]["data_dir"],
        api.state.config.data_dir.display().to_string().as_str()
    );
}

#[tokio::test]
async fn tsdb_status_counts_the_head_and_the_cardinality_page_shows_it() {
    let api = start(|_| {}).await;
    let now = didban_testkit::now_ms();
    let p = [(now - 60_000, 1.0), (now, 2.0)];
    append(
        &api,
        &[
            (
                &[("__name__", "http_requests_total"), ("pod", "a"), ("code", "200")],
                &p,
            ),
            (
                &[("__name__", "http_requests_total"), ("pod", "b"), ("code", "200")],
                &p,
            ),
            (
                &[("__name__", "http_requests_total"), ("pod", "c"), ("code", "500")],
                &p,
            ),
            (&[("__name__", "up"), ("pod", "a")], &p[..1]),
        ],
    )
    .await;

    let (code, r) = get(&api, "/api/v1/status/tsdb", &[]).await;
    assert_eq!(code, 200, "{r}");
    let d = &r["data"];
    assert_eq!(d["headStats"]["numSeries"], 4);
    assert_eq!(d["headStats"]["numSeriesWithSamples"], 4);
    // __name__: 2 values, pod: 3, code: 2.
    assert_eq!(d["headStats"]["numLabelPairs"], 7);
    assert_eq!(d["headStats"]["minTime"], now - 60_000);
    assert_eq!(d["headStats"]["maxTime"], now);
    assert_eq!(
        d["seriesCountByMetricName"],
        json!([{"name": "http_requests_total", "value": 3}, {"name": "up", "value": 1}])
    );
    assert_eq!(
        d["labelValueCountByLabelName"],
        json!([
            {"name": "pod", "value": 3},
            {"name": "__name__", "value": 2},
            {"name": "code", "value": 2},
        ])
    );
    assert_eq!(
        d["seriesCountByLabelValuePair"][0],
        json!({"name": "__name__=http_requests_total", "value": 3})
    );
    // 19 bytes × 3 series + 2 bytes × 1.
    assert_eq!(
        d["memoryInBytesByLabelName"][0],
        json!({"name": "__name__", "value": 59})
    );

    let (_, r) = get(&api, "/api/v1/status/tsdb", &[("limit", "1")]).await;
    assert_eq!(r["data"]["seriesCountByMetricName"].as_array().unwrap().len(), 1);
    assert_eq!(
        r["data"]["seriesCountByLabelValuePair"].as_array().unwrap().len(),
        1
    );
    for bad in ["0", "-3", "many"] {
        let (code, r) = get(&api, "/api/v1/status/tsdb", &[("limit", bad)]).await;
        assert_eq!(
            (code, r["errorType"].as_str()),
            (400, Some("bad_data")),
            "{bad}: {r}"
        );
    }

    let page = reqwest::get(format!("{}/cardinality?rows=2", api.base))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<code>http_requests_total</code>"), "{html}");
    assert!(
        html.contains("<code>__name__=http_requests_total</code>"),
        "{html}"
    );
    // Two rows in each of the four tables.
    assert_eq!(html.matches("scope=\"row\"").count(), 8, "{html}");
    let bad = reqwest::get(format!("{}/cardinality?rows=0", api.base))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn format_query_and_parse_query_answer_like_prometheus() {
    let api = start(|_| {}).await;
    let (code, r) = get(
        &api,
        "/api/v1/format_query",
        &[("query", "sum(rate(x[5m]))by(job)")],
    )
    .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["data"], "sum by (job) (rate(x[5m]))");
    let long = "sum by (job) (rate(http_requests_total{job=\"api-server\",code=~\"5..\"}[5m])) / sum by (job) (rate(http_requests_total{job=\"api-server\"}[5m]))";
    let (_, r) = post(&api, "/api/v1/format_query", &[("query", long)]).await;
    // Past 100 characters, the operands go on lines of their own around the operator.
    assert_eq!(
        r["data"],
        "  sum by (job) (rate(http_requests_total{code=~\"5..\",job=\"api-server\"}[5m]))\n/\n  sum by (job) (rate(http_requests_total{job=\"api-server\"}[5m]))"
    );
    let (code, r) = get(&api, "/api/v1/format_query", &[("query", "sum(x")]).await;
    assert_eq!((code, r["errorType"].as_str()), (400, Some("bad_data")), "{r}");

    let (code, r) = post(
        &api,
        "/api/v1/parse_query",
        &[("query", r#"up{job="a"} offset 5m"#)],
    )
    .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        r["data"],
        json!({
            "type": "vectorSelector",
            "name": "up",
            "offset": 300_000,
            "matchers": [
                {"type": "=", "name": "job", "value": "a"},
                {"type": "=", "name": "__name__", "value": "up"},
            ],
            "timestamp": null,
            "startOrEnd": null,
        })
    );
    let (code, _) = get(&api, "/api/v1/parse_query", &[]).await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn targets_come_from_the_up_series_scrapers_write() {
    let api = start(|_| {}).await;
    let now = didban_testkit::now_ms();
    let (node, pg, gone) = (
        [("__name__", "up"), ("job", "node"), ("instance", "h1:9100")],
        [("__name__", "up"), ("job", "postgres"), ("instance", "db:9187")],
        [("__name__", "up"), ("job", "old"), ("instance", "x:1")],
    );
    append(
        &api,
        &[
            (&node, &[(now - 30_000, 1.0), (now - 15_000, 1.0)]),
            (
                &[
                    ("__name__", "scrape_duration_seconds"),
                    ("job", "node"),
                    ("instance", "h1:9100"),
                ],
                &[(now - 15_000, 0.25)],
            ),
            (&pg, &[(now - 10_000, 0.0)]),
            // Last scraped 20 minutes ago: beyond the 5m lookback, not a target any more.
            (&gone, &[(now - 1_200_000, 1.0)]),
            (
                &[
                    ("__name__", "node_load1"),
                    ("job", "node"),
                    ("instance", "h1:9100"),
                ],
                &[(now - 15_000, 0.5)],
            ),
            (
                &[
                    ("__name__", "node_cpu_seconds_total"),
                    ("job", "node"),
                    ("instance", "h1:9100"),
                ],
                &[(now - 15_000, 9.0)],
            ),
        ],
    )
    .await;
    api.state.metadata.record(
        "node_load1",
        MetricMetadata {
            kind: "gauge".into(),
            help: "1m load average.".into(),
            unit: String::new(),
        },
    );

    let (code, r) = get(&api, "/api/v1/targets", &[]).await;
    assert_eq!(code, 200, "{r}");
    let active = r["data"]["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 2, "{r}");
    let n = &active[0];
    assert_eq!(n["scrapePool"], "node");
    assert_eq!(n["labels"], json!({"job": "node", "instance": "h1:9100"}));
    assert_eq!(n["health"], "up");
    assert_eq!(n["lastError"], "");
    assert_eq!(n["scrapeInterval"], "15s");
    assert_eq!(n["lastScrapeDuration"], 0.25);
    let last = chrono::DateTime::parse_from_rfc3339(n["lastScrape"].as_str().unwrap()).unwrap();
    assert_eq!(last.timestamp_millis(), now - 15_000);
    let p = &active[1];
    assert_eq!(
        (p["scrapePool"].as_str(), p["health"].as_str()),
        (Some("postgres"), Some("down"))
    );
    assert!(!p["lastError"].as_str().unwrap().is_empty(), "{r}");
    assert_eq!(r["data"]["droppedTargets"], json!([]));

    let (_, r) = get(&api, "/api/v1/targets", &[("scrapePool", "postgres")]).await;
    assert_eq!(r["data"]["activeTargets"].as_array().unwrap().len(), 1, "{r}");
    let (_, r) = get(&api, "/api/v1/targets", &[("state", "dropped")]).await;
    assert_eq!(r["data"]["activeTargets"], json!([]));
    let (code, _) = get(&api, "/api/v1/targets", &[("state", "sleeping")]).await;
    assert_eq!(code, 400);

    let (code, r) = get(
        &api,
        "/api/v1/targets/metadata",
        &[("match_target", r#"{job="node"}"#)],
    )
    .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        r["data"],
        json!([
            {"target": {"instance": "h1:9100", "job": "node"}, "metric": "node_cpu_seconds_total",
             "type": "unknown", "help": "", "unit": ""},
            {"target": {"instance": "h1:9100", "job": "node"}, "metric": "node_load1",
             "type": "gauge", "help": "1m load average.", "unit": ""},
        ])
    );
    let (_, r) = get(
        &api,
        "/api/v1/targets/metadata",
        &[("metric", "node_load1"), ("limit", "1")],
    )
    .await;
    assert_eq!(r["data"].as_array().unwrap().len(), 1, "{r}");
    let (_, r) = get(
        &api,
        "/api/v1/targets/metadata",
        &[("match_target", r#"{job="postgres"}"#)],
    )
    .await;
    assert_eq!(r["data"], json!([]));
}

#[tokio::test]
async fn limit_and_lookback_delta_shape_query_answers() {
    let api = start(|_| {}).await;
    let t0 = didban_testkit::now_ms() / 1000 * 1000 - 120_000;
    let p = [(t0, 1.0)];
    append(
        &api,
        &[
            (&[("__name__", "c"), ("i", "0")], &p),
            (&[("__name__", "c"), ("i", "1")], &p),
            (&[("__name__", "c"), ("i", "2")], &p),
        ],
    )
    .await;
    let at = |ms: i64| (ms as f64 / 1000.0).to_string();
    let truncated = json!(["results truncated due to limit"]);

    // limit on an instant query: the first series by labels, with a warning.
    let (code, r) = get(
        &api,
        "/api/v1/query",
        &[("query", "c"), ("time", &at(t0)), ("limit", "2")],
    )
    .await;
    assert_eq!(code, 200, "{r}");
    let result = r["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    assert_eq!(result[1]["metric"]["i"], "1");
    assert_eq!(r["warnings"], truncated);
    let (_, r) = get(
        &api,
        "/api/v1/query",
        &[("query", "c"), ("time", &at(t0)), ("limit", "3")],
    )
    .await;
    assert!(r.get("warnings").is_none(), "{r}");
    let (_, r) = get(
        &api,
        "/api/v1/query",
        &[("query", "count(c)"), ("time", &at(t0)), ("limit", "1")],
    )
    .await;
    assert!(r.get("warnings").is_none(), "{r}");
    let (code, _) = get(&api, "/api/v1/query", &[("query", "c"), ("limit", "-1")]).await;
    assert_eq!(code, 400);

    // limit on a range query.
    let (_, r) = post(
        &api,
        "/api/v1/query_range",
        &[
            ("query", "c"),
            ("start", &at(t0)),
            ("end", &at(t0 + 60_000)),
            ("step", "15"),
            ("limit", "1"),
        ],
    )
    .await;
    assert_eq!(r["data"]["result"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["warnings"], truncated);

    // lookback_delta: 60 s after the sample, a 30 s lookback finds nothing, the default does.
    let later = at(t0 + 60_000);
    let (_, r) = get(&api, "/api/v1/query", &[("query", "c"), ("time", &later)]).await;
    assert_eq!(r["data"]["result"].as_array().unwrap().len(), 3, "{r}");
    let (_, r) = get(
        &api,
        "/api/v1/query",
        &[("query", "c"), ("time", &later), ("lookback_delta", "30s")],
    )
    .await;
    assert_eq!(r["data"]["result"], json!([]), "{r}");
    let (_, r) = post(
        &api,
        "/api/v1/query_range",
        &[
            ("query", "c"),
            ("start", &at(t0)),
            ("end", &later),
            ("step", "30"),
            ("lookback_delta", "45s"),
        ],
    )
    .await;
    // Points at t0 and t0+30s; t0+60s is beyond 45 s.
    assert_eq!(
        r["data"]["result"][0]["values"].as_array().unwrap().len(),
        2,
        "{r}"
    );
    let (code, _) = get(
        &api,
        "/api/v1/query",
        &[("query", "c"), ("lookback_delta", "soon")],
    )
    .await;
    assert_eq!(code, 400);

    // limit on series, label names and label values warns when it cuts.
    let (_, r) = get(&api, "/api/v1/series", &[("match[]", "c"), ("limit", "2")]).await;
    assert_eq!(
        (r["data"].as_array().unwrap().len(), &r["warnings"]),
        (2, &truncated)
    );
    let (_, r) = get(&api, "/api/v1/labels", &[("match[]", "c"), ("limit", "1")]).await;
    assert_eq!((&r["data"], &r["warnings"]), (&json!(["__name__"]), &truncated));
    let (_, r) = get(&api, "/api/v1/label/i/values", &[("limit", "2")]).await;
    assert_eq!((&r["data"], &r["warnings"]), (&json!(["0", "1"]), &truncated));
    let (_, r) = get(&api, "/api/v1/label/i/values", &[("limit", "3")]).await;
    assert!(r.get("warnings").is_none(), "{r}");
}
