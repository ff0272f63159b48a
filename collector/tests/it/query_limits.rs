//! The query API's bounds over real sockets: nesting depth refused (the shapes that once
//! overflowed the stack and aborted the process), the `timeout` parameter honoured during
//! evaluation, evaluation stopped when the client goes away, and admission (lanes, a bounded
//! queue, 503 with `Retry-After`).

use std::time::{Duration, Instant};

use didban_collector::config::Config;
use didban_collector::state::AppState;
use didban_store::{Labels, Sample, SeriesSamples};
use didban_testkit::wait::until;
use serde_json::Value;
use tokio::sync::watch;

/// The query API and the UI on one real socket over fresh stores.
pub struct Api {
    pub base: String,
    pub state: AppState,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves the query API and the UI over fresh stores with `tweak` applied.
pub async fn start(tweak: impl FnOnce(&mut Config)) -> Api {
    let (state, dir) = crate::ingest_support::open_state(tweak).await;
    let (stop, stop_rx) = watch::channel(false);
    let ui = didban_ui::router(state.ui_context(None));
    let router = didban_collector::api::router(state.clone(), stop_rx.clone()).merge(ui);
    let base = crate::ingest_support::serve_router(router, stop_rx).await;
    Api {
        base,
        state,
        stop,
        _dir: dir,
    }
}

/// `series` series named `load` with one sample every 15 s over the last hour.
async fn fill(api: &Api, series: usize) -> i64 {
    let now = didban_testkit::now_ms();
    let mut batch = Vec::new();
    for i in 0..series {
        let mut samples = Vec::new();
        for k in 0..240i64 {
            samples.push(Sample::new(
                now - 3_600_000 + k * 15_000,
                ((i as i64 * 7 + k) % 100) as f64,
            ));
        }
        batch.push(SeriesSamples {
            labels: Labels::from_pairs([("__name__", "load"), ("i", &i.to_string())]),
            samples,
            histograms: Vec::new(),
        });
    }
    let report = api.state.stores.metrics.append(batch).await.unwrap();
    assert_eq!(report.accepted as usize, series * 240, "{report:?}");
    now
}

/// A range query over the last hour at 1 s steps that sorts a 1 h window per series per
/// step: seconds of work in a test build.
fn heavy(now: i64) -> Vec<(&'static str, String)> {
    vec![
        ("query", "sum(quantile_over_time(0.5, load[1h]))".to_string()),
        ("start", ((now - 3_600_000) / 1000).to_string()),
        ("end", (now / 1000).to_string()),
        ("step", "1".to_string()),
    ]
}

/// POSTs a form to `path`: status, `Retry-After` and the JSON body.
async fn post(base: &str, path: &str, form: &[(&str, String)]) -> (u16, Option<String>, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, r.json().await.unwrap())
}

/// Polls `ready` on a blocking thread (the server keeps running on the runtime).
async fn wait_for(what: &'static str, ready: impl FnMut() -> Result<(), String> + Send + 'static) {
    tokio::task::spawn_blocking(move || until(what, Duration::from_secs(60), ready))
        .await
        .unwrap();
}

fn gauge(state: &AppState, name: &str, labels: &[(&str, &str)]) -> f64 {
    state.metrics.get(name, labels).unwrap_or(0.0)
}

/// The issue's shapes, `n` deep: `1+1+…`, `abs(…)`, `sum(…)`, nested subqueries.
fn issue_shapes(n: usize) -> Vec<String> {
    let mut subq = "up".to_string();
    for _ in 0..n {
        subq = format!("max_over_time(({subq})[5m:1m])");
    }
    vec![
        vec!["1"; n].join("+"),
        format!("{}up{}", "abs(".repeat(n), ")".repeat(n)),
        format!("{}up{}", "sum(".repeat(n), ")".repeat(n)),
        subq,
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_ten_times_too_deep_get_422_and_the_server_keeps_answering() {
    let api = start(|_| {}).await;
    let limit = api.state.config.query.max_depth;
    let now = (didban_testkit::now_ms() / 1000).to_string();
    for q in issue_shapes(10 * limit) {
        for (path, mut form) in [
            ("/api/v1/query", vec![("time", now.clone())]),
            (
                "/api/v1/query_range",
                vec![
                    ("start", now.clone()),
                    ("end", now.clone()),
                    ("step", "15".into()),
                ],
            ),
            ("/api/v1/query_exemplars", vec![]),
        ] {
            form.push(("query", q.clone()));
            let (status, _, body) = post(&api.base, path, &form).await;
            assert_eq!(status, 422, "{path} {}: {body}", &q[..40]);
            assert_eq!(body["errorType"], "bad_data", "{body}");
            let msg = body["error"].as_str().unwrap();
            assert!(msg.contains(&format!("limit of {limit}")), "{msg}");
        }
        // GET too, and the explore page shows the error instead of dying (URLs past 64 KiB
        // are beyond the HTTP client: the form body above carried those).
        if q.len() > 20_000 {
            continue;
        }
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/query", api.base))
            .query(&[("query", &q)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422);
        let url = format!("{}/explore", api.base);
        let r = reqwest::Client::new()
            .get(url)
            .query(&[("q", &q)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422);
        let html = r.text().await.unwrap();
        assert!(
            html.contains(&format!("limit of {limit}")),
            "{}",
            &html[..html.len().min(2000)]
        );
    }
    let (status, _, body) = post(&api.base, "/api/v1/query", &[("query", "1+1".into())]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"][1], "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heavy_query_with_a_short_timeout_answers_with_the_timeout_error() {
    let api = start(|_| {}).await;
    let now = fill(&api, 200).await;
    for timeout in ["200ms", "0.2"] {
        let mut form = heavy(now);
        form.push(("timeout", timeout.to_string()));
        let (status, _, body) = post(&api.base, "/api/v1/query_range", &form).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["errorType"], "timeout", "{body}");
    }
    let mut form = heavy(now);
    form.push(("timeout", "fast".to_string()));
    let (status, _, body) = post(&api.base, "/api/v1/query_range", &form).await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (400, Some("bad_data")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_going_away_stops_its_evaluation_and_is_counted() {
    let api = start(|_| {}).await;
    let now = fill(&api, 200).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let sent = client
        .post(format!("{}/api/v1/query_range", api.base))
        .form(&heavy(now))
        .send()
        .await;
    assert!(
        sent.is_err_and(|e| e.is_timeout()),
        "the heavy query answered within 500ms"
    );
    let state = api.state.clone();
    wait_for(
        "the cancelled query counted and its evaluation stopped",
        move || {
            let cancelled = gauge(&state, "didban_queries_cancelled_total", &[("type", "range")]);
            let running = gauge(&state, "didban_queries_running", &[]);
            if cancelled == 1.0 && running == 0.0 {
                Ok(())
            } else {
                Err(format!("cancelled {cancelled}, running {running}"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_503_with_retry_after_and_instant_queries_have_their_own_lane() {
    let api = start(|c| {
        c.query.max_concurrent = 1;
        c.query.max_queued = 1;
    })
    .await;
    let now = fill(&api, 200).await;
    let spawn_heavy = || {
        let base = api.base.clone();
        let form = heavy(now);
        tokio::spawn(async move { post(&base, "/api/v1/query_range", &form).await })
    };
    let running = spawn_heavy();
    let state = api.state.clone();
    wait_for("one heavy query running", move || {
        match gauge(&state, "didban_queries_running", &[]) {
            1.0 => Ok(()),
            n => Err(format!("running {n}")),
        }
    })
    .await;
    let queued = spawn_heavy();
    let state = api.state.clone();
    wait_for("one heavy query queued", move || {
        match gauge(&state, "didban_queries_queued", &[]) {
            1.0 => Ok(()),
            n => Err(format!("queued {n}")),
        }
    })
    .await;
    let (status, retry, body) = post(&api.base, "/api/v1/query_range", &heavy(now)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(
        body["error"].as_str().unwrap().contains("query.max_queued = 1"),
        "{body}"
    );
    assert_eq!(gauge(&api.state, "didban_queries_rejected_total", &[]), 1.0);
    // An instant query does not wait behind the heavy lane.
    let (status, _, body) = post(&api.base, "/api/v1/query", &[("query", "count(load)".into())]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"][0]["value"][1], "200");
    // Both heavy clients give up: the queued one leaves the queue, the running one stops.
    running.abort();
    queued.abort();
    let state = api.state.clone();
    wait_for("no query running or queued", move || {
        let s = api_counts(&state);
        if s == (0.0, 0.0) {
            Ok(())
        } else {
            Err(format!("running/queued {s:?}"))
        }
    })
    .await;
}

fn api_counts(state: &AppState) -> (f64, f64) {
    (
        gauge(state, "didban_queries_running", &[]),
        gauge(state, "didban_queries_queued", &[]),
    )
}

/// The figure of docs/reliability.md: p50/p99 of a simple instant query while 8 heavy range
/// queries run, with the default limits and with `max_concurrent = 64` (all 8 at once, as
/// before the limiter). `cargo test -p didban-collector --test it simple_query_latency --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: prints figures"]
async fn simple_query_latency_under_eight_heavy_range_queries() {
    for max_concurrent in [Config::default().query.max_concurrent, 64] {
        simple_query_latency(max_concurrent).await;
    }
}

async fn simple_query_latency(max_concurrent: usize) {
    let api = start(|c| c.query.max_concurrent = max_concurrent).await;
    let now = fill(&api, 200).await;
    let mut heavies = Vec::new();
    for _ in 0..8 {
        let base = api.base.clone();
        let form = heavy(now);
        heavies.push(tokio::spawn(async move {
            post(&base, "/api/v1/query_range", &form).await
        }));
    }
    let state = api.state.clone();
    wait_for("heavy queries admitted", move || {
        let (running, queued) = api_counts(&state);
        if running + queued >= 8.0 {
            Ok(())
        } else {
            Err(format!("running {running} queued {queued}"))
        }
    })
    .await;
    let mut took = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        let (status, _, body) = post(&api.base, "/api/v1/query", &[("query", "load{i=\"7\"}".into())]).await;
        took.push(t.elapsed());
        assert_eq!(status, 200, "{body}");
    }
    took.sort();
    let (running, queued) = api_counts(&api.state);
    println!(
        "max_concurrent {max_concurrent}: simple instant query while 8 heavy range queries run ({running} running, {queued} queued): p50 {:?}, p99 {:?}, max {:?}",
        took[49], took[98], took[99]
    );
    for h in heavies {
        h.abort();
    }
}

#[tokio::test]
async fn a_query_past_the_shared_samples_budget_gets_503_and_smaller_ones_still_answer() {
    // 50 series × 240 samples = 12,000 samples: a query over all of them is past the budget.
    let api = start(|c| c.query.max_samples_total = 10_000).await;
    let now = fill(&api, 50).await;
    let range = |query: &str| {
        vec![
            ("query", query.to_string()),
            ("start", ((now - 3_600_000) / 1000).to_string()),
            ("end", (now / 1000).to_string()),
            ("step", "60".to_string()),
        ]
    };
    for extra in [None, Some(("lookback_delta", "10m".to_string()))] {
        let mut form = range("sum(avg_over_time(load[1h]))");
        form.extend(extra);
        let (status, retry, body) = post(&api.base, "/api/v1/query_range", &form).await;
        assert_eq!((status, retry.as_deref()), (503, Some("1")), "{body}");
        assert_eq!(body["errorType"], "unavailable", "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("10000 samples") && error.contains("query.max_samples_total"),
            "{error}"
        );
    }
    // Every failed query gave its samples back: a query within the budget answers.
    let (status, _, body) = post(&api.base, "/api/v1/query_range", &range("load{i=\"7\"}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(api.state.engine.sample_budget().in_use(), 0);
}
