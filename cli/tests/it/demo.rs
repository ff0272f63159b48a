//! `didban demo` as a user runs it: the real binary feeds a running `didban serve`
//! (`--target-…`) or starts its own server, and the data arrives through every path —
//! agent-shaped metrics over OTLP (PromQL), Django metrics over remote_write, span-derived
//! RED and FaaS metrics, traces in the Jaeger API, log records with trace ids in the log
//! API — and Ctrl-C/SIGTERM stops the demo and its server cleanly.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{free_port, now_ms, Didban, BIN};
use serde_json::Value;

/// The first value of an instant query's vector, if any.
fn scalar(server_http: &str, expr: &str) -> Option<f64> {
    let r: Value = reqwest::blocking::Client::new()
        .get(format!("http://{server_http}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .ok()?
        .json()
        .ok()?;
    r["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn get_json(url: &str) -> Value {
    reqwest::blocking::Client::new()
        .get(url)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// Polls `check` until it returns Some or `secs` pass.
fn eventually<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Depth of the deepest span of a Jaeger trace (a root has depth 1).
fn depth(trace: &Value) -> usize {
    let spans = trace["spans"].as_array().unwrap();
    let parent_of = |id: &str| -> Option<String> {
        for s in spans {
            if s["spanID"] == id {
                for r in s["references"].as_array()? {
                    if r["refType"] == "CHILD_OF" {
                        return r["spanID"].as_str().map(str::to_string);
                    }
                }
            }
        }
        None
    };
    let mut deepest = 0;
    for s in spans {
        let mut d = 1;
        let mut id = s["spanID"].as_str().unwrap().to_string();
        while let Some(p) = parent_of(&id) {
            d += 1;
            id = p;
            if d > 50 {
                break;
            }
        }
        deepest = deepest.max(d);
    }
    deepest
}

#[test]
fn demo_feeds_a_running_server_through_every_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let server = Didban::start(BIN, dir.path(), &["--no-host-metrics"]);
    let out = Command::new(env!("CARGO_BIN_EXE_didban"))
        .args([
            "demo",
            "--target-http",
            &format!("http://{}", server.http),
            "--target-otlp-grpc",
            &format!("http://{}", server.otlp_grpc),
            "--backfill",
            "6m",
            "--duration",
            "35s",
            "--seed",
            "42",
        ])
        .env("DIDBAN_LOG", "warn")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {stdout}");
    assert!(
        stdout.contains("history sent"),
        "the backfill did not finish in time: {stdout}"
    );
    assert!(stdout.contains("stopped after sending"), "{stdout}");
    let h = server.http.as_str();

    // Agent-shaped metrics over OTLP: 5 hosts, web-1 has 4 CPUs × 8 modes.
    assert_eq!(
        scalar(
            h,
            r#"count(node_cpu_seconds_total{job="didban-agent",instance="web-1"})"#
        ),
        Some(32.0)
    );
    assert_eq!(scalar(h, r#"count(count by (instance) (node_load1))"#), Some(5.0));
    let hit = scalar(
        h,
        r#"sum(pg_stat_database_blks_hit{instance="db-1",datname="shop"})"#,
    )
    .unwrap();
    assert!(hit > 0.0, "blks_hit {hit}");
    let slow = scalar(h, r#"max(pg_stat_statements_mean_seconds{instance="db-1"})"#).unwrap();
    assert!(
        slow > 0.5,
        "the sales report should be a slow statement, mean {slow}"
    );
    assert_eq!(scalar(h, r#"count(celery_queue_length)"#), Some(3.0));
    // Probes keep their own job and instance; process groups per host.
    assert_eq!(
        scalar(h, r#"count(probe_success{job="blackbox"} == 1)"#),
        Some(2.0)
    );
    assert_eq!(
        scalar(
            h,
            r#"count(namedprocess_namegroup_num_procs{groupname="gunicorn"})"#
        ),
        Some(2.0)
    );
    // History: samples from the backfill (5 minutes ago) are there.
    let five_min_ago = (now_ms() - 300_000) as f64 / 1000.0;
    let old: Value = reqwest::blocking::Client::new()
        .get(format!("http://{h}/api/v1/query"))
        .query(&[
            ("query", r#"node_load1{instance="db-1"}"#),
            ("time", &format!("{five_min_ago:.3}")),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(old["data"]["result"].as_array().unwrap().len(), 1, "{old}");
    // Remote write: the Django histogram.
    let django = scalar(
        h,
        r#"sum(django_http_requests_latency_seconds_by_view_method_count{job="shop-web"})"#,
    )
    .unwrap();
    assert!(django > 100.0, "django requests {django}");
    // Span-derived RED and FaaS metrics.
    let calls = scalar(
        h,
        r#"sum(traces_span_metrics_calls_total{service_name="shop-web",span_kind="SPAN_KIND_SERVER"})"#,
    )
    .unwrap();
    assert!(calls > 100.0, "shop-web calls {calls}");
    let cold = scalar(h, "sum(faas_coldstarts_total)").unwrap();
    assert!(cold > 0.0, "cold starts {cold}");
    let cost = scalar(h, "sum(faas_estimated_cost_usd_total)").unwrap();
    assert!(cost > 0.0, "cost {cost}");
    assert!(scalar(h, "sum(faas_init_duration_seconds_count)").unwrap() > 0.0);

    // Jaeger API: the services, and a checkout trace crossing two services, 3+ levels deep.
    let services = get_json(&format!("http://{h}/api/services"));
    for s in ["shop-web", "checkout", "shop-worker", "resize-image"] {
        assert!(
            services["data"].as_array().unwrap().iter().any(|v| v == s),
            "{s} missing from {services}"
        );
    }
    let traces = get_json(&format!(
        "http://{h}/api/traces?service=checkout&lookback=1h&limit=20"
    ));
    let traces = traces["data"].as_array().unwrap();
    assert!(!traces.is_empty(), "no checkout traces");
    let deepest = traces.iter().map(depth).max().unwrap();
    assert!(deepest >= 3, "deepest checkout trace has depth {deepest}");
    assert!(traces[0]["processes"].as_object().unwrap().len() >= 2);

    // Log API: an ERROR record inside a trace, and django-axes failed logins.
    let start = (now_ms() / 1000 - 3600).to_string();
    let error = eventually(20, "an ERROR log record with a trace id", || {
        let r = get_json(&format!(
            "http://{h}/api/logs/search?query=severity_text:ERROR&start={start}&limit=50"
        ));
        r["data"]["records"]
            .as_array()?
            .iter()
            .find(|rec| rec["trace_id"].as_str().is_some_and(|t| t.len() == 32))
            .cloned()
    });
    assert!(error["body"].as_str().unwrap().contains("Traceback"), "{error}");
    let axes = get_json(&format!(
        "http://{h}/api/logs/search?query=AXES%20%22login%20failure%22&start={start}&limit=5"
    ));
    assert!(
        !axes["data"]["records"].as_array().unwrap().is_empty(),
        "no django-axes records: {axes}"
    );

    // Every shipped dashboard renders over this data: no panel fails and every panel draws
    // something — except, on Didban's own dashboard, rejected samples (none were) and the
    // agents' own health (this server runs without its in-process agent).
    // The HTTP service dashboard is looked at for the Django service, which has both span
    // metrics and django-prometheus metrics.
    let no_empty: &[&str] = &[];
    for (id, vars, may_be_empty) in [
        ("host", "", no_empty),
        ("postgresql", "", no_empty),
        ("redis-celery", "", no_empty),
        ("http-service", "&var-service=shop-web", no_empty),
        ("serverless", "", no_empty),
        (
            "didban",
            "",
            &["Rejected samples/s by reason", "Agents", "Agent disk buffer"][..],
        ),
    ] {
        let page = reqwest::blocking::get(format!("http://{h}/dashboards/{id}?from=now-10m&to=now{vars}"))
            .unwrap()
            .text()
            .unwrap();
        let panels = page.matches(r#"<section class="panel"#).count();
        let empty: Vec<&str> = page
            .split(r#"<section class="panel"#)
            .skip(1)
            .filter(|p| p.contains("panel-empty"))
            .map(|p| {
                let head = p.split("</h2>").next().unwrap_or(p);
                head.rsplit('>').next().unwrap_or(head)
            })
            .filter(|title| !may_be_empty.contains(title))
            .collect();
        println!(
            "dashboard {id}: {panels} panels, {} without data: {empty:?}",
            empty.len()
        );
        assert!(panels >= 4, "{id}: {panels} panels");
        assert!(!page.contains("panel-error"), "{id}: a panel query failed");
        assert!(empty.is_empty(), "{id}: panels without data: {empty:#?}");
    }
}

#[test]
fn demo_runs_its_own_server_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    for _attempt in 0..5 {
        let (h, g, o) = (free_port(), free_port(), free_port());
        let http = format!("127.0.0.1:{h}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_didban"))
            .args([
                "demo",
                "--data-dir",
                dir.path().join("data").to_str().unwrap(),
                "--http-addr",
                &http,
                "--otlp-grpc-addr",
                &format!("127.0.0.1:{g}"),
                "--otlp-http-addr",
                &format!("127.0.0.1:{o}"),
                "--backfill",
                "2m",
            ])
            .env("DIDBAN_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // A port taken between free_port() and the bind makes the demo exit with an error:
        // try again on new ports.
        let ready = (|| {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    return false;
                }
                let n = scalar(&http, r#"count(node_cpu_seconds_total{instance="db-1"})"#);
                let services = reqwest::blocking::get(format!("http://{http}/api/services"))
                    .ok()
                    .and_then(|r| r.json::<Value>().ok());
                let has_web = services.is_some_and(|s| {
                    s["data"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|v| v == "shop-web"))
                });
                if n == Some(64.0) && has_web {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            panic!("the demo's server never had the demo's data");
        })();
        if !ready {
            continue;
        }
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the demo did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut stdout = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        assert!(status.success(), "exit {status:?}: {stdout}");
        assert!(stdout.contains(&format!("UI:    http://{http}/")), "{stdout}");
        assert!(stdout.contains("stopping the server"), "{stdout}");
        // The server is gone and its data directory is released: a plain server opens it
        // and finds the demo's data.
        assert!(reqwest::blocking::get(format!("http://{http}/-/ready")).is_err());
        let server = Didban::start(BIN, &dir.path().join("data"), &["--no-host-metrics"]);
        let n = scalar(&server.http, r#"count(node_cpu_seconds_total{instance="db-1"})"#);
        assert_eq!(n, Some(64.0));
        return;
    }
    panic!("the demo did not start after 5 attempts");
}

#[test]
fn demo_waits_for_a_server_that_is_not_up_yet_and_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let (h, g, o) = (free_port(), free_port(), free_port());
    let http = format!("127.0.0.1:{h}");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_didban"))
        .args([
            "demo",
            "--target-http",
            &format!("http://{http}"),
            "--target-otlp-grpc",
            &format!("http://127.0.0.1:{g}"),
            "--backfill",
            "1m",
            "--duration",
            "20s",
        ])
        .env("DIDBAN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The server comes up once the demo has found it missing (rather than after a fixed 3 s,
    // which a slowly starting demo could outlast), on the ports the demo was told.
    let stderr = demo.stderr.take().unwrap();
    let (said_unreachable, unreachable) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let line = line.unwrap();
            if line.contains("cannot reach Didban") {
                let _ = said_unreachable.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    unreachable
        .recv_timeout(didban_testkit::wait::HANG)
        .expect("the demo never said it cannot reach Didban");
    let mut server = Command::new(env!("CARGO_BIN_EXE_didban"))
        .args(["serve", "--no-host-metrics", "--data-dir"])
        .arg(dir.path())
        .args([
            "--http-addr",
            &http,
            "--otlp-grpc-addr",
            &format!("127.0.0.1:{g}"),
            "--otlp-http-addr",
            &format!("127.0.0.1:{o}"),
        ])
        .env("DIDBAN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = demo.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = reader.join().unwrap();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stderr.matches("cannot reach Didban").count(), 1, "{stderr}");
    assert!(stdout.contains("history sent"), "{stdout}");
    // A minute of history plus the live part, one sample every 10 s.
    let n = scalar(&http, r#"count_over_time(node_load1{instance="db-1"}[5m])"#).unwrap();
    assert!(n >= 6.0, "{n} samples of node_load1");
    let _ = server.kill();
    let _ = server.wait();
}
