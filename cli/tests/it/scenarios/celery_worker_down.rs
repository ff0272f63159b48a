//! The Celery worker killed (no goodbye: it stops heartbeating) → `CeleryWorkerDown` for
//! that worker; started again → resolved. Both by mail and webhook exactly once.

use std::time::Instant;

use super::stack::{Row, Stack, WORKER};

pub fn run(stack: &mut Stack) -> Row {
    let since = stack.delivered().len();
    let t0 = Instant::now();
    drop(stack.worker.take());
    let d = stack.wait_delivery("CeleryWorkerDown", "firing", since);
    let fired = d.at - t0;
    assert_eq!(d.labels["hostname"], WORKER, "{:?}", d.labels);
    assert_eq!(d.labels["severity"], "critical");
    stack.assert_once("CeleryWorkerDown", "firing");
    let t1 = Instant::now();
    stack.start_worker();
    let r = stack.wait_delivery("CeleryWorkerDown", "resolved", since);
    let resolved = r.at - t1;
    stack.assert_once("CeleryWorkerDown", "resolved");
    let unexpected = stack.unexpected_since(since, &["CeleryWorkerDown"]);
    assert!(unexpected.is_empty(), "{unexpected:?}");
    Row {
        scenario: "Celery worker killed, then started",
        expected: format!("CeleryWorkerDown hostname={WORKER}, resolves"),
        fired: format!("fired {fired:.1?} after the kill; resolved {resolved:.1?} after the start"),
        verdict: "ok",
    }
}
