//! PostgreSQL stopped → `PostgresDown` for its address; started again → resolved. Both by
//! mail and webhook exactly once.

use std::time::Instant;

use super::stack::{Row, Stack};

pub fn run(stack: &Stack) -> Row {
    let since = stack.delivered().len();
    let instance = format!("127.0.0.1:{}", stack.pg.port);
    let t0 = Instant::now();
    stack.stop_postgres();
    let d = stack.wait_delivery("PostgresDown", "firing", since);
    let fired = d.at - t0;
    assert_eq!(d.labels["instance"], instance.as_str(), "{:?}", d.labels);
    assert_eq!(d.labels["severity"], "critical");
    stack.assert_once("PostgresDown", "firing");
    let t1 = Instant::now();
    stack.restart_postgres();
    let r = stack.wait_delivery("PostgresDown", "resolved", since);
    let resolved = r.at - t1;
    stack.assert_once("PostgresDown", "resolved");
    let unexpected = stack.unexpected_since(since, &["PostgresDown"]);
    assert!(unexpected.is_empty(), "{unexpected:?}");
    Row {
        scenario: "PostgreSQL stopped, then started",
        expected: format!("PostgresDown instance={instance}, resolves"),
        fired: format!("fired {fired:.1?} after the stop; resolved {resolved:.1?} after the start"),
        verdict: "ok",
    }
}
