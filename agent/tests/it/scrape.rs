//! Prometheus scrape against a real Python app instrumented with prometheus_client.

use std::time::Duration;

use crate::common::otlp::free_port;
use crate::common::scripts::spawn_python;
use didban_agent::collectors::scrape::ScrapeCollector;
use didban_agent::collectors::Collector;
use didban_agent::config::ScrapeConfig;
use didban_agent::model::{MetricKind, Sample};

fn job(path: &str) -> ScrapeConfig {
    ScrapeConfig {
        job: "django".into(),
        targets: vec![],
        metrics_path: path.into(),
        scheme: "http".into(),
        tls_ca_file: String::new(),
        interval: None,
        timeout: Duration::from_secs(5),
        convert_classic_histograms_to_nhcb: false,
    }
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> &'a Sample {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .unwrap_or_else(|| {
            panic!(
                "no {name}{labels:?} in {:?}",
                samples.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
}

fn has(samples: &[Sample], name: &str) -> bool {
    samples.iter().any(|s| s.name == name)
}

#[tokio::test]
async fn scrapes_prometheus_client_in_openmetrics_and_text_format() {
    let (_app, ready) = spawn_python("prom_app.py", &[]);
    let port = ready.strip_prefix("READY ").unwrap();
    let target = format!("127.0.0.1:{port}");

    // prometheus_client answers our Accept header with OpenMetrics.
    let mut om = ScrapeCollector::new(&job("/metrics"), &target);
    let samples = om.collect().await.unwrap();
    let up = find(&samples, "up", &[("job", "django"), ("instance", &target)]);
    assert_eq!(up.value, 1.0);
    let get = find(
        &samples,
        "app_requests_total",
        &[("method", "get"), ("job", "django"), ("instance", &target)],
    );
    assert_eq!((get.value, get.kind), (3.0, MetricKind::Counter));
    let temp = find(
        &samples,
        "app_temperature_celsius",
        &[("path", "C:\\dir \"x\"\n")],
    );
    assert_eq!((temp.value, temp.kind), (-12.5, MetricKind::Gauge));
    let bucket = find(&samples, "app_latency_seconds_bucket", &[("le", "0.5")]);
    assert_eq!((bucket.value, bucket.kind), (2.0, MetricKind::Counter));
    assert_eq!(
        find(&samples, "app_latency_seconds_bucket", &[("le", "+Inf")]).value,
        4.0
    );
    assert_eq!(find(&samples, "app_latency_seconds_count", &[]).value, 4.0);
    assert!((find(&samples, "app_latency_seconds_sum", &[]).value - 3.95).abs() < 1e-9);
    assert_eq!(find(&samples, "app_size_bytes_sum", &[]).value, 400.0);
    assert_eq!(
        find(&samples, "app_size_bytes_count", &[]).kind,
        MetricKind::Counter
    );
    let stamped = find(&samples, "app_batch_last_success", &[("batch", "nightly")]);
    assert_eq!(stamped.timestamp_ms, 1_700_000_000_500);
    assert!(
        !has(&samples, "app_requests_created"),
        "OpenMetrics _created series are dropped"
    );
    let scraped = find(&samples, "scrape_samples_scraped", &[]).value;
    assert_eq!(
        scraped as usize,
        samples.len() - 4,
        "every sample but the 4 scrape_* / up series"
    );
    assert!(find(&samples, "scrape_duration_seconds", &[]).value > 0.0);

    // The same registry in text format 0.0.4.
    let mut text = ScrapeCollector::new(&job("/text"), &target);
    let samples = text.collect().await.unwrap();
    assert_eq!(find(&samples, "up", &[]).value, 1.0);
    assert_eq!(
        find(&samples, "app_requests_total", &[("method", "post")]).value,
        1.0
    );
    assert_eq!(
        find(&samples, "app_requests_total", &[("method", "post")]).kind,
        MetricKind::Counter
    );
    assert_eq!(
        find(&samples, "app_batch_last_success", &[]).timestamp_ms,
        1_700_000_000_500
    );
    assert_eq!(
        find(&samples, "app_temperature_celsius", &[]).label("path"),
        Some("C:\\dir \"x\"\n")
    );
    assert!(
        has(&samples, "app_requests_created"),
        "0.0.4 keeps _created lines, as Prometheus does"
    );
}

#[tokio::test]
async fn bad_targets_report_up_zero_and_keep_going() {
    let (_app, ready) = spawn_python("prom_app.py", &[]);
    let port = ready.strip_prefix("READY ").unwrap();

    let mut broken = ScrapeCollector::new(&job("/broken"), &format!("127.0.0.1:{port}"));
    let samples = broken.collect().await.unwrap();
    assert_eq!(samples.len(), 4, "only up and scrape_* series: {samples:?}");
    assert_eq!(find(&samples, "up", &[]).value, 0.0);
    assert_eq!(find(&samples, "scrape_samples_scraped", &[]).value, 0.0);

    let mut unreachable = ScrapeCollector::new(&job("/metrics"), &format!("127.0.0.1:{}", free_port()));
    let samples = unreachable.collect().await.unwrap();
    assert_eq!(find(&samples, "up", &[]).value, 0.0);

    let mut not_found = ScrapeCollector::new(&job("/missing"), &format!("127.0.0.1:{port}"));
    let samples = not_found.collect().await.unwrap();
    assert_eq!(find(&samples, "up", &[]).value, 0.0);

    // The target recovers on the next scrape once the path is right.
    let mut good = ScrapeCollector::new(&job("/metrics"), &format!("127.0.0.1:{port}"));
    assert_eq!(find(&good.collect().await.unwrap(), "up", &[]).value, 1.0);
}

#[tokio::test]
async fn classic_histograms_are_kept_whole_when_the_job_converts_them_to_nhcb() {
    let (_app, ready) = spawn_python("prom_app.py", &[]);
    let port = ready.strip_prefix("READY ").unwrap();
    let target = format!("127.0.0.1:{port}");
    for path in ["/metrics", "/text"] {
        let mut config = job(path);
        config.convert_classic_histograms_to_nhcb = true;
        let samples = ScrapeCollector::new(&config, &target).collect().await.unwrap();
        // One sample carries the whole histogram; its _bucket, _sum and _count series are gone.
        let latency = find(
            &samples,
            "app_latency_seconds",
            &[("job", "django"), ("instance", &target)],
        );
        assert_eq!(
            (latency.value, latency.kind),
            (4.0, MetricKind::Counter),
            "{path}"
        );
        let h = latency.histogram.as_deref().unwrap();
        assert_eq!(h.bounds, vec![0.1, 0.5, 1.0], "{path}");
        assert_eq!(h.counts.iter().sum::<u64>(), 4, "{path}");
        assert_eq!(
            h.counts[..2].iter().sum::<u64>(),
            2,
            "{path}: two at or below 0.5"
        );
        assert!((h.sum.unwrap() - 3.95).abs() < 1e-9, "{path}");
        for classic in [
            "app_latency_seconds_bucket",
            "app_latency_seconds_sum",
            "app_latency_seconds_count",
        ] {
            assert!(!has(&samples, classic), "{path}: {classic}");
        }
        // Summaries and the other families are sent as before.
        assert_eq!(find(&samples, "app_size_bytes_sum", &[]).value, 400.0, "{path}");
        assert_eq!(
            find(&samples, "app_requests_total", &[("method", "get")]).value,
            3.0
        );
        assert!(
            samples.iter().filter(|s| s.histogram.is_some()).count() == 1,
            "{path}"
        );
    }
}
