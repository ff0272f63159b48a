//! Celery tasks failing well above 5% of their runs (the agent reads the worker's event
//! stream) → `CeleryTaskFailureRatioHigh` for that task only.

use std::time::Instant;

use super::stack::{Row, Stack};

pub fn run(stack: &Stack) -> Row {
    let since = stack.delivered().len();
    // A first batch so each task's counters exist before the burst (an increase needs a
    // sample before it).
    stack.send_tasks(20, 2, 0);
    stack.wait_value(r#"celery_task_failed_total{name="tests.boom"}"#, 2.0);
    stack.wait_value(r#"celery_task_succeeded_total{name="tests.add"}"#, 20.0);
    let t0 = Instant::now();
    stack.send_tasks(20, 25, 0);
    let d = stack.wait_delivery("CeleryTaskFailureRatioHigh", "firing", since);
    let took = d.at - t0;
    assert_eq!(d.labels["name"], "tests.boom", "{:?}", d.labels);
    stack.assert_once("CeleryTaskFailureRatioHigh", "firing");
    let unexpected = stack.unexpected_since(since, &["CeleryTaskFailureRatioHigh"]);
    assert!(unexpected.is_empty(), "tests.add must stay quiet: {unexpected:?}");
    Row {
        scenario: "task failures: 27 of 27 tests.boom fail, 40 tests.add succeed",
        expected: "CeleryTaskFailureRatioHigh name=tests.boom".to_string(),
        fired: format!(
            "name={} \"{}\" ({took:.1?})",
            d.labels["name"].as_str().unwrap_or_default(),
            d.annotations["summary"].as_str().unwrap_or_default()
        ),
        verdict: "ok",
    }
}
