//! One agent watching two PostgreSQL clusters and two RabbitMQ nodes, shipping into the real
//! `didban serve`: every target is its own series set (`instance` = the target's address,
//! `agent_host` = the agent), each figure equals what that server reports, `pg_up` says
//! which server is down, and Didban refuses no sample on the way.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::process::{now_ms, Didban, BIN};
use didban_agent::config::Config;
use didban_agent::runner::Agent;
use didban_testkit::postgres::Postgres;
use didban_testkit::rabbitmq::Rabbitmq;
use didban_testkit::wait::until;
use serde_json::Value;

/// A debug server and agent on a busy machine: first samples can take a while.
const WITHIN: Duration = Duration::from_secs(90);

/// `expr` at now as `instance → (value, agent_host)`.
fn by_instance(server: &Didban, expr: &str) -> BTreeMap<String, (f64, String)> {
    let now = now_ms() as f64 / 1000.0;
    let body = server.query(expr, now);
    let mut out = BTreeMap::new();
    let Some(rows) = body["data"]["result"].as_array() else {
        panic!("query {expr}: {body}");
    };
    for row in rows {
        let metric = &row["metric"];
        let instance = metric["instance"].as_str().unwrap_or_default().to_string();
        let agent_host = metric["agent_host"].as_str().unwrap_or_default().to_string();
        let value: f64 = row["value"][1].as_str().unwrap().parse().unwrap();
        out.insert(instance, (value, agent_host));
    }
    out
}

/// Waits until `expr` gives exactly `want` (instance → value), each from `fleet-agent`.
fn wait_for(server: &Didban, expr: &str, want: &[(&str, f64)]) {
    until(&format!("{expr} to be {want:?}"), WITHIN, || {
        let got = by_instance(server, expr);
        let mut expected = BTreeMap::new();
        for (instance, v) in want {
            expected.insert(instance.to_string(), (*v, "fleet-agent".to_string()));
        }
        if got == expected {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    });
}

/// Declares queue `queue` on vhost `/` of `node` and publishes `n` messages to it, through
/// the management API.
fn fill_queue(node: &Rabbitmq, queue: &str, n: usize) {
    let client = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{}/api", node.management_port);
    let r = client
        .put(format!("{base}/queues/%2F/{queue}"))
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({"durable": false}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "declare {queue}: {}", r.status());
    for i in 0..n {
        let r = client
            .post(format!("{base}/exchanges/%2F/amq.default/publish"))
            .basic_auth("guest", Some("guest"))
            .json(&serde_json::json!({
                "properties": {}, "routing_key": queue,
                "payload": format!("m{i}"), "payload_encoding": "string"
            }))
            .send()
            .unwrap();
        let body: Value = r.json().unwrap();
        assert_eq!(body["routed"], true, "publish to {queue}: {body}");
    }
}

/// Sum of `didban_samples_rejected_total` in the server's `/metrics`, with the lines.
fn rejected(server: &Didban) -> (f64, Vec<String>) {
    let text = reqwest::blocking::get(server.url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let mut total = 0.0;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.starts_with("didban_samples_rejected_total") {
            let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            total += v;
            lines.push(line.to_string());
        }
    }
    (total, lines)
}

#[test]
fn two_postgres_and_two_rabbitmq_on_one_agent_stay_apart() {
    let pg_a = Postgres::start_with_options("-c max_connections=50");
    let pg_b = Postgres::start();
    for pg in [&pg_a, &pg_b] {
        pg.psql("postgres", "CREATE DATABASE app");
        pg.psql("app", "CREATE TABLE t (id int)");
    }
    // Same-named databases with different activity: 30 commits on A, 5 on B.
    for i in 0..30 {
        pg_a.psql("app", &format!("INSERT INTO t VALUES ({i})"));
    }
    for i in 0..5 {
        pg_b.psql("app", &format!("INSERT INTO t VALUES ({i})"));
    }
    let mq_a = Rabbitmq::start();
    let mq_b = Rabbitmq::start();
    fill_queue(&mq_a, "orders", 3);
    fill_queue(&mq_b, "orders", 7);

    let dir = tempfile::tempdir().unwrap();
    let server = Didban::start(BIN, &dir.path().join("data"), &["--no-host-metrics"]);
    let agent_dir = dir.path().join("agent");
    let config = Config::parse(&format!(
        r#"
        [agent]
        data_dir = "{}"
        hostname = "fleet-agent"
        interval = "1s"
        [host]
        enabled = false
        [export]
        endpoint = "http://{}"
        flush_interval = "200ms"
        [[postgres]]
        dsn = "{}"
        [[postgres]]
        dsn = "postgres://postgres@127.0.0.1:{}/postgres"
        [[rabbitmq]]
        url = "http://127.0.0.1:{}"
        [[rabbitmq]]
        url = "http://guest:guest@127.0.0.1:{}/"
        "#,
        agent_dir.display(),
        server.otlp_grpc,
        pg_a.dsn("postgres"),
        pg_b.port,
        mq_a.management_port,
        mq_b.management_port,
    ))
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let agent = {
        let _entered = runtime.enter();
        Agent::start(&config).unwrap()
    };

    let (a, b) = (
        format!("127.0.0.1:{}", pg_a.port),
        format!("127.0.0.1:{}", pg_b.port),
    );
    wait_for(
        &server,
        r#"pg_settings_max_connections{job="didban-agent"}"#,
        &[(&a, 50.0), (&b, 100.0)],
    );
    wait_for(&server, "pg_up", &[(&a, 1.0), (&b, 1.0)]);
    // Counters of same-named databases do not mix: each equals its own server's figure.
    let sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = 'app'";
    let expr = r#"pg_stat_database_xact_commit{datname="app"}"#;
    until(
        "stored commits of each app database to equal its server's",
        WITHIN,
        || {
            let a_says: f64 = pg_a.psql("postgres", sql).parse().unwrap();
            let b_says: f64 = pg_b.psql("postgres", sql).parse().unwrap();
            assert!(a_says >= 30.0 && b_says >= 5.0, "{a_says} {b_says}");
            let got = by_instance(&server, expr);
            let want = BTreeMap::from([
                (a.clone(), (a_says, "fleet-agent".to_string())),
                (b.clone(), (b_says, "fleet-agent".to_string())),
            ]);
            if got == want {
                Ok(())
            } else {
                Err(format!("stored {got:?}, servers say {want:?}"))
            }
        },
    );
    let rows = by_instance(&server, r#"pg_stat_database_xact_commit{datname="app"}"#);
    assert_eq!(rows.len(), 2, "{rows:?}");

    let (ma, mb) = (
        format!("127.0.0.1:{}", mq_a.management_port),
        format!("127.0.0.1:{}", mq_b.management_port),
    );
    wait_for(
        &server,
        r#"rabbitmq_queue_messages_ready{queue="orders", vhost="/"}"#,
        &[(&ma, 3.0), (&mb, 7.0)],
    );
    wait_for(&server, "rabbitmq_up", &[(&ma, 1.0), (&mb, 1.0)]);
    for (node, instance) in [(&mq_a, &ma), (&mq_b, &mb)] {
        let expr = format!(r#"rabbitmq_identity_info{{instance="{instance}"}}"#);
        let body = server.query(&expr, now_ms() as f64 / 1000.0);
        let metric = &body["data"]["result"][0]["metric"];
        assert_eq!(metric["rabbitmq_node"], node.node(), "{body}");
    }

    // One server goes away: its pg_up drops to 0, the other stays 1.
    drop(pg_b);
    wait_for(&server, "pg_up", &[(&a, 1.0), (&b, 0.0)]);

    let (total, lines) = rejected(&server);
    assert_eq!(total, 0.0, "Didban refused samples: {lines:?}");
    runtime.block_on(agent.shutdown());
}
