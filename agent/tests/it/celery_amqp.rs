//! Celery's event stream on a real RabbitMQ (a private node started by the test) with a real
//! Celery worker on it (`celery worker -E`, agent/tests/celery_app.py): outcomes per task name
//! equal what was sent, the queue wait histogram counts every started task and reads the time
//! a task spent behind a sleeping one, a killed worker reads down within two heartbeats, and
//! the management API reports the Celery queue's depth for the backlog rule.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::celery::{collect_until, run_sample_workload, summary, value, worker, HEARTBEAT};
use crate::common::scripts::spawn_python;
use didban_agent::collectors::rabbitmq::RabbitmqCollector;
use didban_agent::config::{Config, RabbitmqConfig};
use didban_agent::model::Sample;
use didban_agent::runner::build_collectors;
use didban_testkit::process::Proc;
use didban_testkit::python::missing_module;
use didban_testkit::rabbitmq::Rabbitmq;
use didban_testkit::wait::HANG;

/// How long the sleeping task holds the only worker slot.
const NAP_SECONDS: f64 = 2.0;

const WAIT: &str = "celery_task_queue_wait_seconds";

fn config(rabbit: &Rabbitmq) -> RabbitmqConfig {
    toml::from_str(&format!(
        "url = \"http://127.0.0.1:{}\"\namqp_url = \"amqp://guest:guest@127.0.0.1:{}//\"",
        rabbit.management_port, rabbit.amqp_port
    ))
    .unwrap()
}

/// `<WAIT>_<part>` of task `name` in queue `celery`, -1 when absent.
fn wait(s: &[Sample], part: &str, name: &str) -> f64 {
    let labels = [("name", name), ("queue_name", "celery")];
    value(s, &format!("{WAIT}_{part}"), &labels).unwrap_or(-1.0)
}

/// `<WAIT>_<part>` of task `name` over its series with and without `queue_name` (a run whose
/// task-sent reached the agent only after the run ended has none), -1 when absent.
fn wait_total(s: &[Sample], part: &str, name: &str) -> f64 {
    let metric = format!("{WAIT}_{part}");
    let mut last: BTreeMap<Option<String>, f64> = BTreeMap::new();
    for x in s
        .iter()
        .filter(|x| x.name == metric && x.label("name") == Some(name))
    {
        last.insert(x.label("queue_name").map(str::to_string), x.value);
    }
    if last.is_empty() {
        -1.0
    } else {
        last.values().sum()
    }
}

#[tokio::test]
async fn a_real_worker_on_rabbitmq_gives_outcomes_queue_wait_and_liveness() {
    if let Some(why) = missing_module("celery") {
        panic!("{why}");
    }
    let rabbit = Rabbitmq::start();
    let cfg = config(&rabbit);
    let url = cfg.amqp_url.clone();
    let instance = format!("127.0.0.1:{}", rabbit.amqp_port);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("w1.log");

    // Built as the agent builds it from its config file: next to the management API's.
    let text = format!(
        "[host]\nenabled = false\n[[rabbitmq]]\nurl = {:?}\namqp_url = {url:?}\n",
        cfg.url
    );
    let built = build_collectors(&Config::parse(&text).unwrap()).unwrap();
    let names: Vec<String> = built.iter().map(|(c, _)| c.name()).collect();
    let mut events = built
        .into_iter()
        .map(|(c, _)| c)
        .find(|c| c.name().starts_with("celery/"))
        .unwrap_or_else(|| panic!("no celery collector among {names:?}"));
    let events = events.as_mut();
    assert!(!events.name().contains("guest:guest"), "{}", events.name());
    collect_until(events, "the AMQP subscription", HANG, &log, |s| {
        value(s, "celery_events_subscribed", &[]) == Some(1.0)
    })
    .await;

    let mut w1 = worker(&url, "w1@didban", "celery", HEARTBEAT, &log);
    collect_until(events, "w1 up", HANG, &log, |s| {
        value(
            s,
            "celery_worker_up",
            &[("hostname", "w1@didban"), ("instance", &instance)],
        ) == Some(1.0)
    })
    .await;

    run_sample_workload(events, &url, &log).await;
    // Every started run (retries too) waited once, counted at its start or, at the latest,
    // when it ended.
    let s = collect_until(events, "a wait per started run", HANG, &log, |s| {
        wait_total(s, "count", "tests.add") == 5.0
            && wait_total(s, "count", "tests.boom") == 3.0
            && wait_total(s, "count", "tests.flaky") == 4.0
    })
    .await;
    for (task, started) in [("tests.add", 5.0), ("tests.boom", 3.0), ("tests.flaky", 4.0)] {
        let counted = value(&s, "celery_task_started_total", &[("name", task)]);
        assert_eq!(counted, Some(started), "{}", summary(&s));
    }
    // The first runs may start before the agent saw any task-sent (the client publishes it
    // after the task, once the broker confirmed the task): those have no queue_name.
    let add_wait_before = wait(&s, "sum", "tests.add").max(0.0);
    let add_count_before = wait(&s, "count", "tests.add").max(0.0);

    // One add behind a task sleeping NAP_SECONDS on the only worker slot waits about that long.
    let nap = NAP_SECONDS.to_string();
    let (_client, _) = spawn_python("celery_app.py", &[&url, "1", "0", "0", &nap]);
    let s = collect_until(events, "the add behind the nap", HANG, &log, |s| {
        wait_total(s, "count", "tests.add") == 6.0 && wait_total(s, "count", "tests.nap") == 1.0
    })
    .await;
    // Sent 2 s before the worker took it: counted from its task-sent, in its queue.
    assert_eq!(
        wait(&s, "count", "tests.add"),
        add_count_before + 1.0,
        "{}",
        summary(&s)
    );
    let waited = wait(&s, "sum", "tests.add") - add_wait_before;
    eprintln!("the add behind a {NAP_SECONDS} s nap waited {waited:.3} s");
    assert!(
        (NAP_SECONDS - 0.2..NAP_SECONDS + 10.0).contains(&waited),
        "waited {waited} s behind a {NAP_SECONDS} s task"
    );
    let le = |bound: &str| {
        let labels = [("name", "tests.add"), ("queue_name", "celery"), ("le", bound)];
        value(&s, &format!("{WAIT}_bucket"), &labels).unwrap_or(-1.0)
    };
    assert_eq!(le("+Inf"), add_count_before + 1.0);
    assert!(
        le("1") <= add_count_before,
        "the waiting add is not under 1 s: {}",
        le("1")
    );
    assert_eq!(le("30"), add_count_before + 1.0);

    // A killed worker sends no goodbye: it reads down two heartbeat intervals later.
    collect_until(events, "w1 up again after the nap", HANG, &log, |s| {
        value(s, "celery_worker_up", &[("hostname", "w1@didban")]) == Some(1.0)
    })
    .await;
    let killed = Instant::now();
    drop(std::mem::replace(
        &mut w1,
        Proc(Command::new("true").spawn().unwrap()),
    ));
    collect_until(events, "w1 down after kill", HANG, &log, |s| {
        value(s, "celery_worker_up", &[("hostname", "w1@didban")]) == Some(0.0)
    })
    .await;
    let took = killed.elapsed();
    eprintln!("killed worker on RabbitMQ (heartbeat {HEARTBEAT} s) read down after {took:?}");
    assert!(
        took < Duration::from_secs_f64(2.0 * HEARTBEAT + 2.0),
        "killed worker read down after {took:?}"
    );

    // With no worker, sent tasks wait in the `celery` queue: the management API's depth,
    // which the backlog rule reads for RabbitMQ brokers.
    let (_client, _) = spawn_python("celery_app.py", &[&url, "4", "0", "0"]);
    let mut queues = RabbitmqCollector::new(&cfg);
    // At least the 4 sent: a message the killed worker held unacknowledged comes back as
    // ready too (seen once in 10 runs: 5).
    let s = collect_until(&mut queues, "4 ready tasks", HANG, &log, |s| {
        value(s, "rabbitmq_queue_messages_ready", &[("queue", "celery")]).is_some_and(|n| n >= 4.0)
    })
    .await;
    // The agent's own event queue is there too, and the rule leaves it out by its name.
    assert!(
        s.iter().any(|x| x
            .label("queue")
            .is_some_and(|q| q.starts_with("celeryev.didban-"))),
        "{}",
        summary(&s)
    );
}
