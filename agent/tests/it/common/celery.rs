//! A real Celery worker for the tests (`celery worker -E`, agent/tests/celery_app.py) on
//! any broker URL kombu takes (Redis or AMQP), and the collection loop the Celery tests wait
//! with.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use didban_agent::collectors::Collector;
use didban_agent::model::Sample;
use didban_testkit::process::Proc;
use didban_testkit::wait::HANG;

use super::scripts::spawn_python;

/// The heartbeat interval of the test workers; at Celery's default of 2 s a killed worker
/// reads down 4 s after its last heartbeat.
pub const HEARTBEAT: f64 = 1.0;

/// A `celery worker -E` named `name` consuming `queue`, killed on drop; its log is kept in
/// `log` for failures.
pub fn worker(url: &str, name: &str, queue: &str, heartbeat: f64, log: &Path) -> Proc {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new("python3")
        .args([
            "-m",
            "celery",
            "-A",
            "celery_app",
            "worker",
            "-E",
            "-P",
            "solo",
            "-c",
            "1",
        ])
        .args(["--without-mingle", "--without-gossip", "--loglevel", "INFO"])
        .args([
            "--heartbeat-interval",
            &heartbeat.to_string(),
            "-n",
            name,
            "-Q",
            queue,
        ])
        .current_dir(tests)
        .env("DIDBAN_TEST_BROKER", url)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("python3 -m celery (pip install -r tests/requirements.txt)");
    Proc(child)
}

/// The value of the last sample named `name` with all of `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .rev()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
}

/// The samples on one line for failure messages (histogram buckets left out).
pub fn summary(samples: &[Sample]) -> String {
    let mut out = String::new();
    for s in samples {
        if s.name.ends_with("_bucket") {
            continue;
        }
        out.push_str(&format!("{}{:?}={} ", s.name, s.labels, s.value));
    }
    out
}

/// Collects until `ok` holds; panics after `within` with what was seen and the worker log.
pub async fn collect_until(
    c: &mut dyn Collector,
    what: &str,
    within: Duration,
    log: &Path,
    ok: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    let deadline = Instant::now() + within;
    loop {
        let s = c.collect().await.unwrap();
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}; last samples: {}\nworker log:\n{}",
            summary(&s),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One expected figure: `(metric, labels, value)`.
type Outcome = (&'static str, &'static [(&'static str, &'static str)], f64);

/// What the sample workload must produce.
const WORKLOAD_OUTCOMES: &[Outcome] = &[
    (
        "celery_task_failed_total",
        &[("name", "tests.boom"), ("exception", "ValueError")],
        3.0,
    ),
    ("celery_task_retried_total", &[("name", "tests.flaky")], 2.0),
    ("celery_task_sent_total", &[("name", "tests.add")], 5.0),
    ("celery_task_sent_total", &[("name", "tests.boom")], 3.0),
    ("celery_task_received_total", &[("name", "tests.add")], 5.0),
    ("celery_task_started_total", &[("name", "tests.boom")], 3.0),
    // Two first tries and two retries of the flaky task reach the worker.
    ("celery_task_received_total", &[("name", "tests.flaky")], 4.0),
    ("celery_task_runtime_count", &[("name", "tests.add")], 5.0),
    (
        "celery_task_runtime_bucket",
        &[("name", "tests.add"), ("le", "+Inf")],
        5.0,
    ),
];

/// Sends the sample workload through broker `url` (5 `tests.add`, 3 failing `tests.boom`,
/// 2 `tests.flaky` that fail once and then succeed), waits until `events` has seen every
/// outcome, asserts each count per task name, and returns the samples.
pub async fn run_sample_workload(events: &mut dyn Collector, url: &str, log: &Path) -> Vec<Sample> {
    let (_client, sent) = spawn_python("celery_app.py", &[url, "5", "3", "2"]);
    assert!(sent.contains("\"add\": 5"), "{sent}");
    let s = collect_until(events, "every outcome", HANG, log, |s| {
        value(s, "celery_task_succeeded_total", &[("name", "tests.flaky")]) == Some(2.0)
            && value(s, "celery_task_succeeded_total", &[("name", "tests.add")]) == Some(5.0)
            && value(s, "celery_task_failed_total", &[("name", "tests.boom")]) == Some(3.0)
    })
    .await;
    for (name, labels, expected) in WORKLOAD_OUTCOMES {
        assert_eq!(
            value(&s, name, labels),
            Some(*expected),
            "{name}{labels:?}: {}",
            summary(&s)
        );
    }
    assert_eq!(
        value(&s, "celery_task_failed_total", &[("name", "tests.add")]),
        None
    );
    s
}
