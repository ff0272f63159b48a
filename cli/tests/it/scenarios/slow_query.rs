//! A slow statement (`pg_sleep`) → `PostgresSlowQueries` (mean > 0.5 s for 5 scaled minutes)
//! and `PostgresNewSlowQuery`, both naming the statement's text from the catalogue
//! (`pg_stat_statements_query_info`), not only its `queryid`.

use std::time::Instant;

use super::stack::{Row, Stack};

pub fn run(stack: &Stack) -> Row {
    let since = stack.delivered().len();
    let t0 = Instant::now();
    stack.pg.psql("app", "SELECT pg_sleep(0.8)");
    // The agent must have seen the statement once before the next calls, or their rate
    // would have no first sample to start from.
    stack.wait_value(
        r#"count(pg_stat_statements_query_info{datname="app", query=~".*pg_sleep.*"})"#,
        1.0,
    );
    for _ in 0..3 {
        stack.pg.psql("app", "SELECT pg_sleep(0.8)");
    }
    let new = stack.wait_delivery("PostgresNewSlowQuery", "firing", since);
    let slow = stack.wait_delivery("PostgresSlowQueries", "firing", since);
    for d in [&new, &slow] {
        assert_eq!(d.labels["datname"], "app", "{:?}", d.labels);
        let summary = d.annotations["summary"].as_str().unwrap_or_default();
        assert!(
            summary.contains("SELECT pg_sleep($1)"),
            "names the statement: {summary}"
        );
    }
    stack.assert_once("PostgresNewSlowQuery", "firing");
    stack.assert_once("PostgresSlowQueries", "firing");
    let unexpected = stack.unexpected_since(since, &["PostgresSlowQueries", "PostgresNewSlowQuery"]);
    assert!(unexpected.is_empty(), "{unexpected:?}");
    Row {
        scenario: "slow statement: 4 x pg_sleep(0.8)",
        expected: "PostgresSlowQueries + PostgresNewSlowQuery naming the text".to_string(),
        fired: format!(
            "\"{}\" ({:.1?}); PostgresNewSlowQuery ({:.1?})",
            slow.annotations["summary"].as_str().unwrap_or_default(),
            slow.at - t0,
            new.at - t0
        ),
        verdict: "ok",
    }
}
