//! Exemplars, the home page's figures and PromQL's heads requests on a querier of a split
//! cluster (real Garage, PostgreSQL and processes). Exemplars live only in the exemplar
//! store of the ingester that received their sample: a querier answers
//! `/api/v1/query_exemplars` with every ingester's, each once (also one two ingesters both
//! received). Its home page counts the series, spans and log records the ingesters hold
//! unpublished plus the published span blocks, and lists an ingester that does not answer
//! instead of failing; the exemplar query fails naming it, as the other cluster reads do.
//! Its charts draw every ingester's exemplars. A query of several selectors (`or`, a
//! subquery, a range read in several slices) asks each ingester once for all its reads.

use crate::cluster_roles::Cluster;
use crate::process::{otlp_gauge_json, Didban};
use didban_testkit::wait::{until, HANG};
use serde_json::Value;

/// Sections after `[cluster]`: no alerting, no span-derived series (so the ingesters'
/// heads hold exactly the series sent), log records searchable soon after they arrive.
const EXTRA: &str =
    "[alerting]\nenabled = false\n[traces]\nspan_metrics = false\n[logs]\ncommit_interval = \"300ms\"\n";

/// A dashboard with one chart of `ex_orders_total` drawing its exemplars.
const EXEMPLAR_DASHBOARD: &str = r#"
id: ex
title: Exemplars
time:
  from: now-1h
panels:
  - title: Orders
    type: timeseries
    exemplars: true
    queries:
      - expr: 'ex_orders_total'
"#;

/// Starts one process of `cluster` with role `role`, without the self-scrape (whose series
/// would make the figures inexact) and with a maintenance round every second (a querier
/// lists newly published blocks in it).
fn start(cluster: &Cluster, name: &str, role: &str) -> Didban {
    cluster.start_with_top(
        name,
        role,
        "self_scrape_interval = \"0\"",
        "maintenance_interval = \"1s\"",
        EXTRA,
    )
}

fn post(server: &Didban, path: &str, body: String) {
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}{path}", server.otlp_http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
}

/// The monotonic sum `ex_orders` of `job` at `time_ms` with one exemplar pointing at
/// trace `n`.
fn send_exemplar(server: &Didban, job: &str, n: u64, time_ms: i64) {
    let ns = i128::from(time_ms) * 1_000_000;
    post(
        server,
        "/v1/metrics",
        format!(
            r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{job}"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":"ex_orders","sum":{{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{{"timeUnixNano":"{ns}","asDouble":{n},"exemplars":[{{"timeUnixNano":"{ns}","asDouble":{n},"traceId":"{n:032x}","spanId":"{n:016x}"}}]}}]}}}}]}}]}}]}}"#
        ),
    );
}

fn send_span(server: &Didban, id: u8, start_ns: i64) {
    post(
        server,
        "/v1/traces",
        format!(
            r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"shop"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"{:032x}","spanId":"{id:016x}","name":"op","kind":2,"startTimeUnixNano":"{start_ns}","endTimeUnixNano":"{}"}}]}}]}}]}}"#,
            u32::from(id) + 1000,
            start_ns + 1_000_000
        ),
    );
}

fn send_logs(server: &Didban, count: usize, t_ns: i64) {
    let mut list = Vec::new();
    for i in 0..count {
        list.push(format!(
            r#"{{"timeUnixNano":"{}","severityNumber":9,"body":{{"stringValue":"record {i}"}}}}"#,
            t_ns + i as i64
        ));
    }
    post(
        server,
        "/v1/logs",
        format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"shop"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}]}}"#,
            list.join(",")
        ),
    );
}

/// `(status, body)` of the exemplars of `ex_orders_total` over the last hour.
fn exemplars(server: &Didban) -> (u16, Value) {
    let now = didban_testkit::now_ms() / 1000;
    let r = reqwest::blocking::Client::new()
        .get(server.url("/api/v1/query_exemplars"))
        .query(&[
            ("query", "ex_orders_total".to_string()),
            ("start", (now - 3600).to_string()),
            ("end", (now + 60).to_string()),
        ])
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

/// Each series' job with its exemplars' trace ids (as numbers) and times, in answer order.
fn by_job(answer: &Value) -> Vec<(String, Vec<u64>, Vec<f64>)> {
    let mut out = Vec::new();
    for s in answer["data"].as_array().cloned().unwrap_or_default() {
        let job = s["seriesLabels"]["job"].as_str().unwrap_or_default().to_string();
        let mut traces = Vec::new();
        let mut times = Vec::new();
        for e in s["exemplars"].as_array().cloned().unwrap_or_default() {
            let id = e["labels"]["trace_id"].as_str().unwrap_or_default();
            traces.push(u64::from_str_radix(id, 16).unwrap());
            times.push(e["timestamp"].as_f64().unwrap());
        }
        out.push((job, traces, times));
    }
    out
}

/// The home page of `server`, answered with 200.
fn home(server: &Didban) -> String {
    let r = reqwest::blocking::get(server.url("/")).unwrap();
    assert_eq!(r.status(), 200);
    r.text().unwrap()
}

/// The text of the figure `name` on a home page (markup inside it dropped).
fn figure(page: &str, name: &str) -> String {
    let marker = format!("data-figure=\"{name}\"");
    let Some(at) = page.find(&marker) else {
        return String::new();
    };
    let rest = &page[at + marker.len()..];
    let inner = rest.split_once('>').map_or("", |(_, r)| r);
    let inner = inner.split("</dd>").next().unwrap_or_default();
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.trim().to_string()
}

fn count(page: &str, name: &str) -> u64 {
    figure(page, name).parse().unwrap_or(u64::MAX)
}

/// Heads requests `server` answered with success: `(for a whole query, for one read)`.
fn heads_requests(server: &Didban) -> (f64, f64) {
    let answered = |path: &str| {
        server.self_metric(&format!(
            r#"didban_internal_requests_total{{code="200",path="{path}"}}"#
        ))
    };
    (
        answered("/internal/v1/heads/batch"),
        answered("/internal/v1/heads"),
    )
}

/// `(time ms, value)` of each point of a series.
type Points = Vec<(i64, f64)>;

/// `(job, metric name, points)` of each series of a query's answer (an instant vector's
/// one point at its time), sorted.
fn points(answer: &Value) -> Vec<(String, String, Points)> {
    assert_eq!(answer["status"], "success", "{answer}");
    let mut out = Vec::new();
    for s in answer["data"]["result"].as_array().cloned().unwrap_or_default() {
        let label = |name: &str| s["metric"][name].as_str().unwrap_or_default().to_string();
        let mut values = s["values"].as_array().cloned().unwrap_or_default();
        if !s["value"].is_null() {
            values.push(s["value"].clone());
        }
        let mut pts = Vec::new();
        for v in values {
            let t = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
            pts.push((t, v[1].as_str().unwrap().parse::<f64>().unwrap()));
        }
        out.push((label("job"), label("__name__"), pts));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    out
}

/// `query` on querier `q` (`GET /api/v1/query`, or `/query_range` with `range`: start, end
/// and step in seconds), checking that it cost each of `ingesters` one heads request (for
/// the whole query) and no request per read.
fn query_once(q: &Didban, ingesters: &[&Didban], query: &str, params: &[(&str, String)]) -> Value {
    let before: Vec<(f64, f64)> = ingesters.iter().map(|i| heads_requests(i)).collect();
    let path = if params.iter().any(|(k, _)| *k == "step") {
        "/api/v1/query_range"
    } else {
        "/api/v1/query"
    };
    let mut all = vec![("query", query.to_string())];
    all.extend(params.iter().cloned());
    let answer: Value = reqwest::blocking::Client::new()
        .get(q.url(path))
        .query(&all)
        .send()
        .unwrap()
        .json()
        .unwrap();
    for (i, (batched, single)) in ingesters.iter().zip(before) {
        assert_eq!(
            heads_requests(i),
            (batched + 1.0, single),
            "{query}: one heads request to {}, none per read",
            i.http
        );
    }
    answer
}

/// Three series on two ingesters, some of a's in a block it published: a query of several
/// selectors asks each ingester once for the heads of all of them, and answers exactly.
fn one_heads_request_per_ingester_and_query(a: &Didban, b: &Didban, q: &Didban) {
    let gauge = |server: &Didban, job: &str, name: &str, t: i64, v: f64| {
        post(server, "/v1/metrics", otlp_gauge_json(job, name, t, v));
    };
    // One sample a minute for ten minutes: bq_a = i and bq_b = 10 i of job x on a (the
    // first five in a block a publishes), bq_c = 100 + i of job y on b; b also holds a
    // replica of bq_a's last sample.
    let minute = 60_000;
    let t0 = (didban_testkit::now_ms() / minute - 20) * minute;
    for i in 0..10 {
        if i == 5 {
            let flushed = reqwest::blocking::Client::new()
                .post(a.url("/api/v1/admin/tsdb/flush"))
                .send()
                .unwrap();
            assert!(flushed.status().is_success(), "{}", flushed.status());
        }
        let t = t0 + i * minute;
        gauge(a, "x", "bq_a", t, i as f64);
        gauge(a, "x", "bq_b", t, 10.0 * i as f64);
        gauge(b, "y", "bq_c", t, 100.0 + i as f64);
    }
    gauge(b, "x", "bq_a", t0 + 9 * minute, 9.0);
    let t_query = t0 + 9 * minute + 30_000;
    let at = |t: i64| format!("{}", t / 1000);
    let ingesters = [a, b];

    let sum_or = "bq_a + bq_b or bq_c";
    let answer = query_once(q, &ingesters, sum_or, &[("time", at(t_query))]);
    assert_eq!(
        points(&answer),
        vec![
            ("x".to_string(), String::new(), vec![(t_query, 99.0)]),
            ("y".to_string(), "bq_c".to_string(), vec![(t_query, 109.0)]),
        ]
    );

    // Ten samples of bq_a in the last 30 m (block, head and replica merged, each once)
    // plus twice the highest a subquery's steps see.
    let answer = query_once(
        q,
        &ingesters,
        "count_over_time(bq_a[30m]) + max_over_time((bq_a * 2)[30m:1m])",
        &[("time", at(t_query))],
    );
    assert_eq!(
        points(&answer),
        vec![("x".to_string(), String::new(), vec![(t_query, 28.0)])]
    );

    // 13 h read in three slices of 6 h per selector: a step 30 s after each sample sees it.
    let answer = query_once(
        q,
        &ingesters,
        sum_or,
        &[
            ("start", at(t_query - 13 * 3_600_000)),
            ("end", at(t_query)),
            ("step", "60".to_string()),
        ],
    );
    let steps =
        |f: fn(f64) -> f64| -> Points { (0..10).map(|j| (t0 + j * minute + 30_000, f(j as f64))).collect() };
    assert_eq!(
        points(&answer),
        vec![
            ("x".to_string(), String::new(), steps(|j| 11.0 * j)),
            ("y".to_string(), "bq_c".to_string(), steps(|j| 100.0 + j)),
        ]
    );
}

#[test]
fn a_querier_merges_every_ingesters_exemplars_figures_and_heads_asking_each_once_per_query() {
    let cluster = Cluster::new();
    let a = start(&cluster, "ingester-a", "ingester");
    let b = start(&cluster, "ingester-b", "ingester");
    // The querier has a dashboard whose chart draws the exemplars of `ex_orders_total`.
    let dashboards = cluster.dir.path().join("dashboards");
    std::fs::create_dir_all(&dashboards).unwrap();
    std::fs::write(dashboards.join("ex.yaml"), EXEMPLAR_DASHBOARD).unwrap();
    let q = cluster.start_with_top(
        "querier",
        "querier",
        "self_scrape_interval = \"0\"",
        "maintenance_interval = \"1s\"",
        &format!(
            "{EXTRA}[ui]\ndashboards_dir = {:?}\n",
            dashboards.display().to_string()
        ),
    );

    // Exemplars on a (front: traces 1..=3), on b (back: 11, 12), and one series with the
    // same exemplar on both (shared: 21, as two replicas hold it).
    let t0 = didban_testkit::now_ms() - 60_000;
    for (i, n) in [1, 2, 3].into_iter().enumerate() {
        send_exemplar(&a, "front", n, t0 + 1000 * i as i64);
    }
    send_exemplar(&b, "back", 11, t0 + 500);
    send_exemplar(&b, "back", 12, t0 + 1500);
    send_exemplar(&a, "shared", 21, t0 + 2500);
    send_exemplar(&b, "shared", 21, t0 + 2500);

    let want = vec![
        ("back".to_string(), vec![11, 12]),
        ("front".to_string(), vec![1, 2, 3]),
        ("shared".to_string(), vec![21]),
    ];
    let got = until("every ingester's exemplars on the querier", HANG, || {
        let (status, answer) = exemplars(&q);
        let got = by_job(&answer);
        let n: usize = got.iter().map(|g| g.1.len()).sum();
        (status == 200 && n >= 6)
            .then_some(got)
            .ok_or(format!("{status}: {answer}"))
    });
    let jobs: Vec<(String, Vec<u64>)> = got.iter().map(|(j, t, _)| (j.clone(), t.clone())).collect();
    assert_eq!(jobs, want, "series sorted by labels, each exemplar once");
    for (job, _, times) in &got {
        assert!(
            times.windows(2).all(|w| w[0] < w[1]),
            "{job}: oldest first: {times:?}"
        );
    }
    // Each ingester still answers only its own.
    assert_eq!(by_job(&exemplars(&b).1).len(), 2);
    // The querier's chart draws every ingester's exemplars as links to their traces.
    let chart = reqwest::blocking::get(q.url("/dashboards/ex/panels/0"))
        .unwrap()
        .text()
        .unwrap();
    for n in [1u64, 2, 3, 11, 12, 21] {
        assert!(
            chart.contains(&format!(r#"<a class="exemplar" href="/traces/{n:032x}">"#)),
            "trace {n} drawn: {chart}"
        );
    }

    // Spans and log records on both ingesters, nothing published yet.
    let now_ns = didban_base::now_nanos() - 30_000_000_000;
    send_span(&a, 1, now_ns);
    send_span(&a, 2, now_ns);
    send_span(&b, 3, now_ns);
    send_logs(&a, 3, now_ns);
    send_logs(&b, 2, now_ns);
    // The querier's series figure is the ingesters' heads summed (the shared series
    // twice): read it from the ingesters' own pages, stable once their records are in.
    let page = until("the log records counted on the querier", HANG, || {
        let page = home(&q);
        (count(&page, "log-records") == 5)
            .then_some(page.clone())
            .ok_or(page)
    });
    let series = count(&home(&a), "series") + count(&home(&b), "series");
    assert!(
        series >= 4,
        "front and shared on a, back and shared on b: {series}"
    );
    assert_eq!(count(&page, "series"), series, "{page}");
    assert_eq!(count(&page, "spans"), 3, "{page}");
    assert_eq!(figure(&page, "ingesters"), "2 of 2", "{page}");

    // a publishes its spans: they are counted from the bucket now, still once.
    let flushed = reqwest::blocking::Client::new()
        .post(a.url("/api/v1/admin/traces/flush"))
        .send()
        .unwrap();
    assert!(flushed.status().is_success(), "{}", flushed.status());
    assert_eq!(count(&home(&a), "spans"), 2, "a's block counts on a too");
    until("the published spans counted on the querier", HANG, || {
        let page = home(&q);
        (count(&page, "spans") == 3).then_some(()).ok_or(page)
    });

    // The internal routes answer only with the cluster secret.
    for path in ["/internal/v1/exemplars", "/internal/v1/figures"] {
        let r = reqwest::blocking::Client::new()
            .post(b.url(path))
            .body("{}")
            .send()
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED, "{path}");
    }

    // A live ingester that does not answer: the exemplar query fails naming it (an answer
    // without its exemplars would look complete); the home page still answers, lists it
    // and counts the others.
    cluster.announce_silent_ingester();
    until("a 503 naming the silent ingester", HANG, || {
        let (status, body) = exemplars(&q);
        let text = body.to_string();
        (status == 503 && text.contains("ingester ghost at http://127.0.0.1"))
            .then_some(())
            .ok_or(format!("{status}: {text}"))
    });
    // A PromQL query likewise: 503 `unavailable` naming it (the query is not at fault,
    // so not a 500).
    let r = reqwest::blocking::Client::new()
        .get(q.url("/api/v1/query"))
        .query(&[("query", "ex_orders_total")])
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let answer: Value = r.json().unwrap();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["errorType"], "unavailable", "{answer}");
    let message = answer["error"].as_str().unwrap_or_default();
    assert!(message.contains("ingester ghost at http://127.0.0.1"), "{answer}");
    let page = home(&q);
    assert_eq!(figure(&page, "ingesters"), "2 of 3", "{page}");
    assert!(page.contains("ingester ghost at http://127.0.0.1"), "{page}");
    assert_eq!(count(&page, "spans"), 3, "{page}");
    assert_eq!(count(&page, "log-records"), 5, "{page}");
    cluster.forget_silent_ingester();
    until("the querier without the ghost", HANG, || {
        let (status, body) = exemplars(&q);
        (status == 200).then_some(()).ok_or(format!("{status}: {body}"))
    });

    one_heads_request_per_ingester_and_query(&a, &b, &q);
}
