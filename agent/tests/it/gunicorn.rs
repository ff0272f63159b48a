//! Real gunicorn (`--statsd-host` pointed at the agent's StatsD receiver) serving a tiny
//! WSGI app: the names gunicorn's StatsD lines get in Didban (documented in docs/agent.md,
//! used by dashboards/gunicorn.yaml) and their values after known requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::scripts::script;
use didban_agent::collectors::statsd::StatsdCollector;
use didban_agent::collectors::Collector;
use didban_agent::config::StatsdConfig;
use didban_agent::model::{MetricKind, Sample};
use didban_testkit::process::Proc;
use didban_testkit::reserve;
use didban_testkit::wait::{until, HANG};

/// Status code of `GET path` on a fresh HTTP/1.0 connection; `None` when nothing answers.
fn get(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_whitespace().nth(1)?.parse().ok()
}

fn value(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.iter()
        .find(|x| x.name == name && labels.iter().all(|(k, v)| x.label(k) == Some(*v)))
        .map(|x| x.value)
}

#[tokio::test]
async fn gunicorn_statsd_lines_become_gunicorn_series() {
    let config = StatsdConfig {
        enabled: true,
        listen: "127.0.0.1:0".into(),
        ..StatsdConfig::default()
    };
    let mut statsd = StatsdCollector::bind(&config).unwrap();
    let statsd_addr = statsd.local_addr().to_string();
    statsd.collect().await.unwrap(); // starts the receiver

    let app_dir = script("gunicorn_app.py").parent().unwrap().to_path_buf();
    let port = reserve().release();
    let _gunicorn = Proc(
        Command::new("python3")
            .args(["-m", "gunicorn", "--workers", "2", "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--statsd-host")
            .arg(&statsd_addr)
            .args(["--dogstatsd-tags", "app:shop", "--chdir"])
            .arg(&app_dir)
            .arg("gunicorn_app:app")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with gunicorn must be installed (tests/requirements.txt)"),
    );
    until("gunicorn to answer", HANG, || match get(port, "/ready") {
        Some(200) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let mut codes = Vec::new();
    for path in ["/", "/orders", "/missing", "/missing", "/boom"] {
        codes.push(get(port, path).unwrap());
    }
    assert_eq!(codes, [200, 200, 404, 404, 500]);

    // Six requests in all (the readiness one too); UDP arrives when the receiver task runs.
    // Quantiles cover the timings of one flush only, so they are looked for in every
    // collection: the timings may arrive in an earlier one than the last counter.
    let deadline = Instant::now() + HANG;
    let mut p99_seen = false;
    let samples = loop {
        let s = statsd.collect().await.unwrap();
        p99_seen |= value(&s, "gunicorn_request_duration_seconds", &[("quantile", "0.99")]).is_some();
        let requests = value(&s, "gunicorn_requests_total", &[]).unwrap_or(0.0);
        let workers = value(&s, "gunicorn_workers", &[]).unwrap_or(0.0);
        let exceptions = value(&s, "gunicorn_log_exception_total", &[]).unwrap_or(0.0);
        if requests >= 6.0 && workers == 2.0 && exceptions >= 1.0 && p99_seen {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "gunicorn's lines did not arrive: requests {requests}, workers {workers}, exceptions {exceptions}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let shop = [("app", "shop")];
    assert_eq!(value(&samples, "gunicorn_requests_total", &shop), Some(6.0));
    assert_eq!(
        value(&samples, "gunicorn_request_status_200_total", &shop),
        Some(3.0)
    );
    assert_eq!(
        value(&samples, "gunicorn_request_status_404_total", &shop),
        Some(2.0)
    );
    assert_eq!(
        value(&samples, "gunicorn_request_status_500_total", &shop),
        Some(1.0)
    );
    assert_eq!(value(&samples, "gunicorn_log_exception_total", &shop), Some(1.0));
    // gunicorn times requests in milliseconds; the receiver reports seconds.
    assert_eq!(
        value(&samples, "gunicorn_request_duration_seconds_count", &shop),
        Some(6.0)
    );
    let sum = value(&samples, "gunicorn_request_duration_seconds_sum", &shop).unwrap();
    assert!(sum > 0.0 && sum < 6.0 * HANG.as_secs_f64(), "{sum}");
    assert!(p99_seen, "a flush with timings reports their 0.99 quantile");
    let kind = |name: &str| samples.iter().find(|s| s.name == name).map(|s| s.kind);
    assert_eq!(kind("gunicorn_requests_total"), Some(MetricKind::Counter));
    assert_eq!(kind("gunicorn_workers"), Some(MetricKind::Gauge));
}
