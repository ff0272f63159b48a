//! One writer of a host's `node_*` series: `didban serve`'s built-in host collector steps
//! aside when a `didban-agent` on the same host reports it, and takes the host back once
//! that agent has been silent for the window (60 s at a 1 s interval).

use std::time::{Duration, Instant};

use crate::process::{now_ms, Didban, BIN};
use didban_agent::config::Config;
use didban_agent::runner::Agent;
use didban_testkit::wait::until;

/// The step aside waits for the agent's first batch; the resume for the silence window.
const WITHIN: Duration = Duration::from_secs(150);

/// Seconds since the newest sample of `selector` (lookback 5 min), if it has one.
fn age(server: &Didban, selector: &str) -> Option<f64> {
    let now = now_ms() as f64 / 1000.0;
    let body = server.query(&format!("time() - timestamp({selector})"), now);
    body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
}

#[test]
fn the_builtin_host_collector_steps_aside_for_an_agent_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("didban.toml");
    std::fs::write(&config, "[host_metrics]\ninterval = \"1s\"\n").unwrap();
    let server = Didban::start(
        BIN,
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let builtin = r#"target_info{job="didban-agent", didban_host_collector="in-process"}"#;
    let host = until("the built-in collector's target_info", WITHIN, || {
        let body = server.query(builtin, now_ms() as f64 / 1000.0);
        match body["data"]["result"][0]["metric"]["instance"].as_str() {
            Some(h) => Ok(h.to_string()),
            None => Err(body.to_string()),
        }
    });

    // An agent on the same host (same host name), collecting the host like the server does.
    let agent_config = Config::parse(&format!(
        r#"
        [agent]
        data_dir = "{}"
        hostname = "{host}"
        interval = "1s"
        [export]
        endpoint = "http://{}"
        flush_interval = "200ms"
        "#,
        dir.path().join("agent").display(),
        server.otlp_grpc,
    ))
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let agent = {
        let _entered = runtime.enter();
        Agent::start(&agent_config).unwrap()
    };
    let from_agent =
        format!(r#"target_info{{job="didban-agent", instance="{host}", didban_host_collector=""}}"#);
    let load = format!(r#"node_load1{{job="didban-agent", instance="{host}"}}"#);
    until("the built-in collector to step aside", WITHIN, || {
        let (builtin_age, agent_age, load_age) = (
            age(&server, builtin),
            age(&server, &from_agent),
            age(&server, &load),
        );
        let state = format!("built-in {builtin_age:?}s, agent {agent_age:?}s, node_load1 {load_age:?}s old");
        match (builtin_age, agent_age, load_age) {
            (Some(b), Some(a), Some(l)) if b > 5.0 && a < 3.0 && l < 3.0 => Ok(()),
            _ => Err(state),
        }
    });
    // From now on one writer: at 1 s, at most one node_load1 sample per second (the
    // built-in collector's last one is more than 5 s old).
    let count = server.query(&format!("count_over_time({load}[4s])"), now_ms() as f64 / 1000.0);
    let n: f64 = count["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n <= 5.0, "two writers of node_load1: {count}");

    // The agent goes away: after the silence window the built-in collector resumes.
    runtime.block_on(agent.shutdown());
    let gone = Instant::now();
    until("the built-in collector to resume", WITHIN, || {
        match age(&server, builtin) {
            Some(b) if b < 3.0 => Ok(()),
            other => Err(format!("built-in target_info {other:?}s old")),
        }
    });
    // Not before the agent has been silent for the window (its last batch left at shutdown).
    assert!(
        gone.elapsed() >= Duration::from_secs(55),
        "resumed after {:?}",
        gone.elapsed()
    );
}
