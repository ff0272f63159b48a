//! The nginx `stub_status` collector against a real nginx: figures equal what the page
//! itself says, the request counter advances by exactly the requests made plus the
//! collector's own scrape, and an unreachable or wrong page gives `nginx_up` 0.

use std::time::Duration;

use didban_agent::collectors::nginx::{parse_stub_status, NginxCollector};
use didban_agent::collectors::Collector;
use didban_agent::config::NginxConfig;
use didban_agent::model::{MetricKind, Sample};
use didban_testkit::free_port;
use didban_testkit::nginx::Nginx;

fn config(url: String) -> NginxConfig {
    NginxConfig {
        url,
        tls_ca_file: String::new(),
        interval: None,
        timeout: Duration::from_secs(5),
    }
}

fn find<'a>(samples: &'a [Sample], name: &str) -> &'a Sample {
    samples
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} in {samples:?}"))
}

fn value(samples: &[Sample], name: &str) -> f64 {
    find(samples, name).value
}

#[tokio::test]
async fn figures_match_stub_status_and_count_every_request() {
    let nginx = Nginx::start();
    let mut collector = NginxCollector::new(&config(nginx.status_url()));
    let before = collector.collect().await.unwrap();
    assert_eq!(value(&before, "nginx_up"), 1.0);
    let instance = format!("127.0.0.1:{}", nginx.port);
    for s in &before {
        assert_eq!(s.label("instance"), Some(instance.as_str()), "{s:?}");
    }

    // Five requests on five connections: 200, 200, 404, 403, 500.
    let mut codes = Vec::new();
    for path in ["/", "/a/page", "/missing", "/denied", "/broken"] {
        codes.push(nginx.get(path).unwrap().0);
    }
    assert_eq!(codes, [200, 200, 404, 403, 500]);

    let after = collector.collect().await.unwrap();
    // nginx counts a request when it starts reading it, so the page that the collector's
    // second scrape reads already includes that scrape: five requests + one scrape.
    assert_eq!(
        value(&after, "nginx_http_requests_total") - value(&before, "nginx_http_requests_total"),
        6.0
    );
    // The test's five HTTP/1.0 connections were closed by nginx before it answered the
    // scrape; the collector's keep-alive connection is the one being written to.
    assert_eq!(value(&after, "nginx_connections_writing"), 1.0);
    assert_eq!(value(&after, "nginx_connections_reading"), 0.0);
    assert_eq!(value(&after, "nginx_connections_waiting"), 0.0);
    assert_eq!(value(&after, "nginx_connections_active"), 1.0);
    let accepted = value(&after, "nginx_connections_accepted") - value(&before, "nginx_connections_accepted");
    assert!(
        (5.0..=6.0).contains(&accepted),
        "5 test connections (+1 if the scrape opened a new one): {accepted}"
    );
    assert_eq!(
        value(&after, "nginx_connections_accepted"),
        value(&after, "nginx_connections_handled")
    );
    assert_eq!(
        find(&after, "nginx_http_requests_total").kind,
        MetricKind::Counter
    );
    assert_eq!(find(&after, "nginx_connections_active").kind, MetricKind::Gauge);

    // What the page says right after: its own request is one more than the collector saw.
    let (_, page) = nginx.get("/stub_status").unwrap();
    let direct = parse_stub_status(&page).unwrap();
    assert_eq!(direct.requests, value(&after, "nginx_http_requests_total") + 1.0);
    assert_eq!(direct.handled, direct.accepted);

    // The access log has every request counted, in `combined` format, the last page's too:
    // nginx writes the line before it closes the connection.
    let log = std::fs::read_to_string(nginx.access_log()).unwrap();
    assert_eq!(log.lines().count() as f64, direct.requests, "{log}");
    assert!(log.contains("\"GET /broken HTTP/1.0\" 500"), "{log}");
}

#[tokio::test]
async fn unreachable_or_wrong_page_gives_up_zero() {
    let mut gone = NginxCollector::new(&config(format!("http://127.0.0.1:{}/stub_status", free_port())));
    let samples = gone.collect().await.unwrap();
    assert_eq!(value(&samples, "nginx_up"), 0.0);
    assert_eq!(
        samples.len(),
        1,
        "only nginx_up when nothing answers: {samples:?}"
    );

    let nginx = Nginx::start();
    for path in ["/", "/missing"] {
        let mut wrong = NginxCollector::new(&config(format!("http://127.0.0.1:{}{path}", nginx.port)));
        assert_eq!(value(&wrong.collect().await.unwrap(), "nginx_up"), 0.0, "{path}");
    }
}
