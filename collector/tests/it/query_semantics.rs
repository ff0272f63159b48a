//! The query API under the `[query]` keys that choose PromQL semantics, over a real socket:
//! annotations in `warnings`/`infos`, left-open windows (v3, default) against closed ones
//! (`promql_compat = "v2"`), and experimental functions refused until enabled.

use didban_collector::config::Config;
use didban_store::promql::PromqlCompat;
use didban_store::{Labels, Sample, SeriesSamples};
use serde_json::Value;
use tokio::sync::watch;

/// The query API over fresh stores holding `gauge` = 1, 2, … every minute from `t0`.
struct Api {
    base: String,
    /// Time of the first sample, seconds (a whole minute, 20 minutes ago).
    t0: i64,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

const MINUTE_MS: i64 = 60_000;

async fn start(tweak: impl FnOnce(&mut Config)) -> Api {
    let (state, dir) = crate::ingest_support::open_state(tweak).await;
    let t0_ms = (didban_testkit::now_ms() / MINUTE_MS - 20) * MINUTE_MS;
    let mut samples = Vec::new();
    for k in 0..10i64 {
        samples.push(Sample::new(t0_ms + k * MINUTE_MS, (k + 1) as f64));
    }
    let report = state
        .stores
        .metrics
        .append(vec![SeriesSamples {
            labels: Labels::from_pairs([("__name__", "gauge")]),
            samples,
            histograms: Vec::new(),
        }])
        .await
        .unwrap();
    assert_eq!(report.accepted, 10, "{report:?}");
    let (stop, stop_rx) = watch::channel(false);
    let router = didban_collector::api::router(state, stop_rx.clone());
    let base = crate::ingest_support::serve_router(router, stop_rx).await;
    Api {
        base,
        t0: t0_ms / 1000,
        stop,
        _dir: dir,
    }
}

/// `GET /api/v1/query` at `t0 + offset_s`: the status code and the JSON body.
async fn query(api: &Api, q: &str, offset_s: i64) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/query", api.base))
        .query(&[("query", q), ("time", &(api.t0 + offset_s).to_string())])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn single_value(body: &Value) -> String {
    let result = &body["data"]["result"];
    assert_eq!(result.as_array().map(Vec::len), Some(1), "{body}");
    result[0]["value"][1].as_str().unwrap().to_string()
}

#[tokio::test]
async fn annotations_windows_and_gating_follow_the_config() {
    let v3 = start(|_| {}).await;
    // rate over a name without a counter suffix: an info, no warning.
    let (status, body) = query(&v3, "rate(gauge[5m])", 300).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["infos"],
        serde_json::json!([
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"gauge\""
        ]),
        "{body}"
    );
    assert!(body.get("warnings").is_none(), "{body}");
    // A quantile out of range: a warning.
    let (_, body) = query(&v3, "quantile(2, gauge)", 300).await;
    assert_eq!(
        body["warnings"][0], "PromQL warning: quantile value should be between 0 and 1, got 2",
        "{body}"
    );
    // (t0, t0 + 300s] holds 5 samples under Prometheus 3 semantics.
    let (_, body) = query(&v3, "count_over_time(gauge[5m])", 300).await;
    assert_eq!(single_value(&body), "5");
    // Experimental aggregations are refused with Prometheus' text until enabled.
    let (status, body) = query(&v3, "limitk(1, gauge)", 300).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errorType"], "bad_data", "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("limitk() is experimental and must be enabled with --enable-feature=promql-experimental-functions"),
        "{body}"
    );
    drop(v3);

    let v2 = start(|c| {
        c.query.promql_compat = PromqlCompat::V2;
        c.query.enable_experimental_functions = true;
    })
    .await;
    // [t0, t0 + 300s] holds 6 under Prometheus 2.x semantics.
    let (_, body) = query(&v2, "count_over_time(gauge[5m])", 300).await;
    assert_eq!(single_value(&body), "6");
    let (status, body) = query(&v2, "limitk(1, gauge)", 300).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(single_value(&body), "6");
}

#[test]
fn config_file_keys_choose_the_semantics() {
    let c =
        Config::from_toml("[query]\npromql_compat = \"v2\"\nenable_experimental_functions = true\n").unwrap();
    assert_eq!(c.query.promql_compat, PromqlCompat::V2);
    assert!(c.query.enable_experimental_functions);
    let d = Config::from_toml("").unwrap();
    assert_eq!(d.query.promql_compat, PromqlCompat::V3);
    assert!(!d.query.enable_experimental_functions);
    let err = Config::from_toml("[query]\npromql_compat = \"v4\"\n").unwrap_err();
    assert!(format!("{err:#}").contains("\"v4\""), "{err:#}");
}
