//! Celery's event stream and queues on a real redis-server with real Celery workers
//! (`celery worker -E`, agent/tests/celery_app.py): task outcomes counted per task name
//! equal what was sent, a killed worker reads down within two heartbeat intervals, a worker
//! that says goodbye reads down at once, and queues are found from kombu's bindings.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::celery::{collect_until, run_sample_workload, summary, value, worker, HEARTBEAT};
use crate::common::scripts::spawn_python;
use didban_agent::collectors::celery::CeleryEventsCollector;
use didban_agent::collectors::redis::RedisCollector;
use didban_agent::config::RedisConfig;
use didban_testkit::process::Proc;
use didban_testkit::python::missing_module;
use didban_testkit::redis::Redis;
use didban_testkit::wait::HANG;

fn config(url: &str) -> RedisConfig {
    toml::from_str(&format!("url = {url:?}")).unwrap()
}

#[tokio::test]
async fn a_real_worker_s_events_give_outcomes_liveness_and_queues() {
    if let Some(why) = missing_module("celery") {
        panic!("{why}");
    }
    let redis = Redis::start(None);
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let dir = tempfile::tempdir().unwrap();
    let log1 = dir.path().join("w1.log");
    let instance = format!("127.0.0.1:{}", redis.port);

    let mut events = CeleryEventsCollector::new(&config(&url)).unwrap();
    collect_until(&mut events, "the subscription", HANG, &log1, |s| {
        value(s, "celery_events_subscribed", &[]) == Some(1.0)
    })
    .await;

    let mut w1 = worker(&url, "w1@didban", "celery", HEARTBEAT, &log1);
    let s = collect_until(&mut events, "w1 up", HANG, &log1, |s| {
        value(s, "celery_worker_up", &[("hostname", "w1@didban")]) == Some(1.0)
    })
    .await;
    assert_eq!(
        value(
            &s,
            "celery_worker_up",
            &[("hostname", "w1@didban"), ("instance", &instance)]
        ),
        Some(1.0),
        "every series carries the broker's address as instance"
    );

    // Each flaky task fails once (task-retried, then re-sent and received again) and succeeds.
    run_sample_workload(&mut events, &url, &log1).await;

    // A killed worker sends no goodbye: it reads down two heartbeat intervals later.
    let killed = Instant::now();
    drop(std::mem::replace(
        &mut w1,
        Proc(Command::new("true").spawn().unwrap()),
    ));
    collect_until(&mut events, "w1 down after kill", HANG, &log1, |s| {
        value(s, "celery_worker_up", &[("hostname", "w1@didban")]) == Some(0.0)
    })
    .await;
    let took = killed.elapsed();
    eprintln!("killed worker (heartbeat {HEARTBEAT} s) read down after {took:?}");
    assert!(
        took < Duration::from_secs_f64(2.0 * HEARTBEAT + 2.0),
        "killed worker read down after {took:?}"
    );

    // A worker stopped with SIGTERM says goodbye (worker-offline): down long before its
    // 60 s heartbeat expiry.
    let log2 = dir.path().join("w2.log");
    let w2 = worker(&url, "w2@didban", "other", 30.0, &log2);
    collect_until(&mut events, "w2 up", HANG, &log2, |s| {
        value(s, "celery_worker_up", &[("hostname", "w2@didban")]) == Some(1.0)
    })
    .await;
    let stopped = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &w2.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    collect_until(&mut events, "w2 down after SIGTERM", HANG, &log2, |s| {
        value(s, "celery_worker_up", &[("hostname", "w2@didban")]) == Some(0.0)
    })
    .await;
    eprintln!("SIGTERMed worker read down after {:?}", stopped.elapsed());
    assert!(
        stopped.elapsed() < Duration::from_secs(30),
        "{:?}",
        stopped.elapsed()
    );
    drop(w2);

    // With no worker, sent tasks wait in the queues the workers bound: found from kombu's
    // bindings, nothing configured.
    let (_client, _) = spawn_python("celery_app.py", &[&url, "4", "0", "0"]);
    let mut cfg = config(&url);
    cfg.celery_queues = Vec::new();
    let mut queues = RedisCollector::new(&cfg).unwrap();
    let s = collect_until(&mut queues, "4 waiting tasks", HANG, &log1, |s| {
        value(
            s,
            "celery_queue_length",
            &[("queue_name", "celery"), ("priority", "0")],
        ) == Some(4.0)
    })
    .await;
    assert_eq!(
        value(
            &s,
            "celery_queue_length",
            &[("queue_name", "other"), ("priority", "9")]
        ),
        Some(0.0)
    );
    assert!(
        !s.iter().any(|x| x
            .label("queue_name")
            .is_some_and(|q| q.contains("pidbox") || q.starts_with("celeryev"))),
        "{}",
        summary(&s)
    );
}
