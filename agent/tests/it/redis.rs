//! Redis INFO metrics and Celery queue lengths against a real redis-server, with queues filled
//! by real kombu (priorities and key prefix included) and one message left unacknowledged.

use std::time::Duration;

use crate::common::otlp::free_port;
use crate::common::scripts::spawn_python;
use didban_agent::collectors::redis::RedisCollector;
use didban_agent::collectors::Collector;
use didban_agent::config::RedisConfig;
use didban_agent::model::{MetricKind, Sample};
use didban_testkit::certs::make_certs;
use didban_testkit::redis::Redis;

fn config(url: String, prefix: &str) -> RedisConfig {
    let mut c: RedisConfig = toml::from_str(&format!("url = {url:?}")).unwrap();
    c.celery_queues = vec!["celery".into(), "emails".into(), "empty".into()];
    c.celery_key_prefix = prefix.into();
    c.list_keys = vec!["plain_list".into(), "a_string".into()];
    c.timeout = Duration::from_secs(5);
    c
}

/// The sum of `name` over the samples matching `labels` (e.g. a queue over its priorities).
fn total(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    for s in samples {
        if s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)) {
            sum += s.value;
        }
    }
    sum
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no {name}{labels:?}"))
        .value
}

fn kombu_counts(url: &str, prefix: &str) -> serde_json::Value {
    let (_proc, line) = spawn_python("fill_celery.py", &[url, prefix]);
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("fill_celery.py printed {line:?}: {e}"))
}

#[tokio::test]
async fn celery_queues_filled_by_kombu_are_counted_like_kombu() {
    let redis = Redis::start(Some("s3cret"));
    let url = format!("redis://:s3cret@127.0.0.1:{}/0", redis.port);

    for prefix in ["", "myapp:"] {
        let kombu = kombu_counts(&url, prefix);
        // The priority lists really exist, so the test covers kombu's priority layout.
        let keys: Vec<String> = kombu["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        assert!(keys.contains(&format!("{prefix}celery\u{6}\u{16}9")), "{keys:?}");
        assert!(keys.contains(&format!("{prefix}celery\u{6}\u{16}3")), "{keys:?}");
        assert_eq!(kombu["celery"], 11);
        assert_eq!(kombu["emails"], 3);
        assert_eq!(kombu["unacked"], 1);

        let mut collector = RedisCollector::new(&config(url.clone(), prefix)).unwrap();
        let samples = collector.collect().await.unwrap();
        assert_eq!(value(&samples, "redis_up", &[]), 1.0);
        assert_eq!(
            total(&samples, "celery_queue_length", &[("queue_name", "celery")]),
            11.0
        );
        assert_eq!(
            total(&samples, "celery_queue_length", &[("queue_name", "emails")]),
            3.0
        );
        assert_eq!(
            total(&samples, "celery_queue_length", &[("queue_name", "empty")]),
            0.0
        );
        // Each priority list as its own series, equal to its LLEN; absent steps read 0.
        for (key, len) in kombu["lengths"].as_object().unwrap() {
            let Some(name) = key.strip_prefix(prefix) else {
                continue;
            };
            let (queue, step) = name.split_once("\u{6}\u{16}").unwrap_or((name, "0"));
            assert_eq!(
                value(
                    &samples,
                    "celery_queue_length",
                    &[("queue_name", queue), ("priority", step)]
                ),
                len.as_f64().unwrap(),
                "{key:?}"
            );
        }
        assert_eq!(
            value(
                &samples,
                "celery_queue_length",
                &[("queue_name", "empty"), ("priority", "9")]
            ),
            0.0
        );
        assert_eq!(value(&samples, "celery_unacked_messages", &[]), 1.0);
        assert_eq!(
            value(
                &samples,
                "redis_key_size",
                &[("db", "db0"), ("key", "plain_list")]
            ),
            0.0
        );
    }
}

#[tokio::test]
async fn info_metrics_use_redis_exporter_names() {
    let redis = Redis::start(None);
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for i in 0..5 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query_async(&mut con)
            .await
            .unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg("ttl")
        .arg(1)
        .arg("EX")
        .arg(100)
        .query_async(&mut con)
        .await
        .unwrap();
    let _: Option<String> = redis::cmd("GET").arg("k1").query_async(&mut con).await.unwrap();
    let _: Option<String> = redis::cmd("GET")
        .arg("missing")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("plain_list")
        .arg("a")
        .arg("b")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("a_string")
        .arg("x")
        .query_async(&mut con)
        .await
        .unwrap();

    let mut collector = RedisCollector::new(&config(url, "")).unwrap();
    let samples = collector.collect().await.unwrap();
    assert_eq!(value(&samples, "redis_db_keys", &[("db", "db0")]), 8.0);
    assert_eq!(value(&samples, "redis_up", &[]), 1.0);
    // A configured "list" that is a string costs only its own metric.
    assert!(!samples.iter().any(|s| s.label("key") == Some("a_string")));
    assert_eq!(value(&samples, "redis_db_keys_expiring", &[("db", "db0")]), 1.0);
    assert!(value(&samples, "redis_keyspace_hits_total", &[]) >= 1.0);
    assert!(value(&samples, "redis_keyspace_misses_total", &[]) >= 1.0);
    assert!(value(&samples, "redis_commands_processed_total", &[]) >= 8.0);
    assert!(value(&samples, "redis_memory_used_bytes", &[]) > 0.0);
    assert!(value(&samples, "redis_connected_clients", &[]) >= 1.0);
    assert_eq!(value(&samples, "redis_key_size", &[("key", "plain_list")]), 2.0);
    for name in [
        "redis_memory_max_bytes",
        "redis_blocked_clients",
        "redis_evicted_keys_total",
        "redis_expired_keys_total",
        "redis_mem_fragmentation_ratio",
        "redis_uptime_in_seconds",
    ] {
        value(&samples, name, &[]);
    }
    let hits = samples
        .iter()
        .find(|s| s.name == "redis_keyspace_hits_total")
        .unwrap();
    assert_eq!(hits.kind, MetricKind::Counter);
    assert_eq!(
        samples
            .iter()
            .find(|s| s.name == "redis_instance_info")
            .unwrap()
            .label("role"),
        Some("master")
    );
}

#[tokio::test]
async fn wrong_password_and_unreachable_server_give_redis_up_zero() {
    let redis = Redis::start(Some("right"));
    let mut wrong =
        RedisCollector::new(&config(format!("redis://:wrong@127.0.0.1:{}/0", redis.port), "")).unwrap();
    let samples = wrong.collect().await.unwrap();
    assert_eq!(value(&samples, "redis_up", &[]), 0.0);
    let mut gone = RedisCollector::new(&config(format!("redis://127.0.0.1:{}/0", free_port()), "")).unwrap();
    assert_eq!(value(&gone.collect().await.unwrap(), "redis_up", &[]), 0.0);
    assert!(RedisCollector::new(&config("not a url".into(), "")).is_err());
}

#[tokio::test]
async fn rediss_with_a_private_ca() {
    let certs = make_certs();
    let redis = Redis::start_tls(&certs);
    let url = format!("rediss://127.0.0.1:{}/0", redis.port);
    let mut cfg = config(url.clone(), "");
    cfg.tls_ca_file = certs.ca.to_str().unwrap().to_string();
    let mut trusted = RedisCollector::new(&cfg).unwrap();
    let samples = trusted.collect().await.unwrap();
    assert_eq!(value(&samples, "redis_up", &[]), 1.0);
    assert_eq!(
        value(
            &samples,
            "celery_queue_length",
            &[("queue_name", "celery"), ("priority", "0")]
        ),
        0.0
    );
    // Without the CA the server is not trusted.
    let mut untrusted = RedisCollector::new(&config(url, "")).unwrap();
    assert_eq!(value(&untrusted.collect().await.unwrap(), "redis_up", &[]), 0.0);
}

/// `keyspace_misses` and `keyspace_hits` as the server reports them.
async fn keyspace_stats(con: &mut redis::aio::MultiplexedConnection) -> (u64, u64) {
    let info: String = redis::cmd("INFO").arg("stats").query_async(con).await.unwrap();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(&format!("{name}:"))
                    .map(|v| v.parse::<u64>().unwrap())
            })
            .unwrap()
    };
    (field("keyspace_misses"), field("keyspace_hits"))
}

#[tokio::test]
async fn polling_adds_no_keyspace_misses() {
    let redis = Redis::start(None);
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    // Queues with some priority lists present and most absent, kombu's bindings and unacked.
    let kombu = kombu_counts(&url, "");
    assert_eq!(kombu["celery"], 11);
    let mut cfg = config(url.clone(), "");
    cfg.list_keys = Vec::new();
    cfg.celery_queues.push("never_used".into());
    let mut collector = RedisCollector::new(&cfg).unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let (misses_before, _) = keyspace_stats(&mut con).await;
    let mut samples = Vec::new();
    for _ in 0..5 {
        samples = collector.collect().await.unwrap();
    }
    let (misses_after, _) = keyspace_stats(&mut con).await;
    assert_eq!(
        misses_after, misses_before,
        "the agent's polling caused keyspace misses"
    );
    // It still reported the absent keys, as zeros, and the present ones.
    assert_eq!(
        value(
            &samples,
            "celery_queue_length",
            &[("queue_name", "never_used"), ("priority", "6")]
        ),
        0.0
    );
    assert_eq!(
        total(&samples, "celery_queue_length", &[("queue_name", "celery")]),
        11.0
    );
    assert_eq!(value(&samples, "celery_unacked_messages", &[]), 1.0);
}

#[tokio::test]
async fn two_servers_on_one_agent_are_told_apart_by_instance() {
    let a = Redis::start(None);
    let b = Redis::start(None);
    let mut expected = Vec::new();
    for (server, keys) in [(&a, 3), (&b, 7)] {
        let url = format!("redis://127.0.0.1:{}/0", server.port);
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        for i in 0..keys {
            let _: () = redis::cmd("SET")
                .arg(format!("k{i}"))
                .arg(i)
                .query_async(&mut con)
                .await
                .unwrap();
        }
        expected.push((format!("127.0.0.1:{}", server.port), keys, con));
    }
    let text = format!(
        "[[redis]]\nurl = \"redis://127.0.0.1:{}/0\"\n[[redis]]\nurl = \"redis://127.0.0.1:{}/0\"\n",
        a.port, b.port
    );
    let config = didban_agent::config::Config::parse(&text).unwrap();
    let mut all = Vec::new();
    for (mut collector, _) in didban_agent::runner::build_collectors(&config).unwrap() {
        all.extend(collector.collect().await.unwrap());
    }
    // No two samples of one collection share a series.
    let mut seen = std::collections::BTreeSet::new();
    for s in &all {
        let mut labels = s.labels.clone();
        labels.sort();
        assert!(
            seen.insert((s.name.clone(), labels, s.timestamp_ms)),
            "duplicate sample {} {:?}",
            s.name,
            s.labels
        );
        if s.name.starts_with("redis_") || s.name.starts_with("celery_") {
            assert!(s.label("instance").is_some(), "{} has no instance", s.name);
        }
    }
    // Each server's figures are its own, as its INFO reports them.
    for (instance, keys, con) in &mut expected {
        let at = [("instance", instance.as_str())];
        assert_eq!(value(&all, "redis_up", &at), 1.0);
        assert_eq!(
            value(
                &all,
                "redis_db_keys",
                &[("instance", instance.as_str()), ("db", "db0")]
            ),
            *keys as f64
        );
        let info: String = redis::cmd("INFO").arg("server").query_async(con).await.unwrap();
        let port = instance.rsplit(':').next().unwrap();
        assert!(info.contains(&format!("tcp_port:{port}")), "{info}");
        let (_, hits) = keyspace_stats(con).await;
        assert_eq!(value(&all, "redis_keyspace_hits_total", &at), hits as f64);
    }
}
