//! The real OpenTelemetry Python SDK exporting to Didban over OTLP/HTTP (cumulative) and
//! OTLP/gRPC (delta). Needs `python3` with `tests/requirements.txt` installed; fails (does
//! not skip) without them.

use std::path::PathBuf;

use crate::ingest_support::{series, start, values};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opentelemetry_python_sdk_exports_over_http_and_grpc() {
    let server = start(|_| {}).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python/otlp_metrics_client.py");
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(format!("{}/v1/metrics", server.otlp_http))
        .arg(server.grpc.to_string())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "the Python client failed ({}); is `pip install -r tests/requirements.txt` done?\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let state = &server.state;
    for instance in ["py-http", "py-grpc"] {
        let who = [("job", "shop/checkout"), ("instance", instance)];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all = who.to_vec();
            all.extend_from_slice(extra);
            all
        };
        let scoped = with(&[
            ("route", "/a"),
            ("otel_scope_name", "didban.test"),
            ("otel_scope_version", "0.1.0"),
        ]);
        assert_eq!(values(state, "requests_total", &scoped), vec![7.0], "{instance}");
        assert_eq!(values(state, "queue_depth", &who), vec![7.0], "{instance}");
        assert_eq!(
            values(state, "temperature_celsius", &who),
            vec![42.5],
            "{instance}"
        );
        let bucket = "request_duration_seconds_bucket";
        assert_eq!(
            values(state, bucket, &with(&[("le", "0")])),
            vec![0.0],
            "{instance}"
        );
        assert_eq!(
            values(state, bucket, &with(&[("le", "5")])),
            vec![3.0],
            "{instance}"
        );
        assert_eq!(
            values(state, bucket, &with(&[("le", "+Inf")])),
            vec![3.0],
            "{instance}"
        );
        assert_eq!(values(state, "request_duration_seconds_count", &who), vec![3.0]);
        assert_eq!(values(state, "request_duration_seconds_sum", &who), vec![2.5]);
        let info = values(
            state,
            "target_info",
            &with(&[
                ("deployment_environment", "test"),
                ("telemetry_sdk_language", "python"),
            ]),
        );
        assert_eq!(info, vec![1.0], "{instance}");
    }
    // The same data through PromQL over the Prometheus HTTP API, as Grafana would ask.
    let api = |expr: &str| {
        let url = format!("{}/api/v1/query", server.http);
        let expr = expr.to_string();
        async move {
            let r: serde_json::Value = reqwest::Client::new()
                .get(url)
                .query(&[("query", expr.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(r["status"], "success", "{expr}: {r}");
            r["data"]["result"].clone()
        }
    };
    let total = api("sum(requests_total{job=\"shop/checkout\"})").await;
    assert_eq!(total[0]["value"][1], "14", "{total}");
    let by_instance = api("sum by (instance) (request_duration_seconds_count)").await;
    assert_eq!(by_instance.as_array().unwrap().len(), 2, "{by_instance}");
    let median =
        api("histogram_quantile(0.5, sum by (le) (request_duration_seconds_bucket{instance=\"py-http\"}))")
            .await;
    let median: f64 = median[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(median > 0.0 && median <= 5.0, "median {median}");
    let meta: serde_json::Value =
        reqwest::get(format!("{}/api/v1/metadata?metric=requests_total", server.http))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(meta["data"]["requests_total"][0]["type"], "counter", "{meta}");
    assert_eq!(
        meta["data"]["requests_total"][0]["help"], "Requests served.",
        "{meta}"
    );

    // No unsanitised or unsuffixed names slipped through.
    assert!(series(state, "requests").is_empty());
    assert!(series(state, "request.duration_bucket").is_empty());
}
