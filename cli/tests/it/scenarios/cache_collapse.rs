//! A real cache-hit collapse: sequential scans, again and again, of a table larger than a
//! quarter of `shared_buffers` (PostgreSQL then reads it through a small ring buffer, so
//! every block misses) → `PostgresCacheHitRatioLow` for that database, over its traffic floor.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use didban_testkit::postgres::pg_bin;

use super::stack::{Row, Stack};

pub fn run(stack: &Stack) -> Row {
    let since = stack.delivered().len();
    stack.pg.psql("postgres", "CREATE DATABASE shop");
    // About 40 MB: five times shared_buffers (8MB), twenty times its ring-buffer limit.
    stack.pg.psql(
        "shop",
        "CREATE TABLE orders AS SELECT g AS id, repeat('x', 60) AS note FROM generate_series(1, 400000) g",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let script = stack.dir.path().join("scans.sql");
    std::fs::write(&script, "SELECT count(*) FROM orders;\n".repeat(20)).unwrap();
    let port = stack.pg.port.to_string();
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let _ = Command::new(pg_bin().join("psql"))
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port,
                        "-U",
                        "postgres",
                        "-d",
                        "shop",
                        "-q",
                        "-f",
                    ])
                    .arg(&script)
                    .stdout(Stdio::null())
                    .status();
            }
        })
    };
    let t0 = Instant::now();
    let d = stack.wait_delivery("PostgresCacheHitRatioLow", "firing", since);
    let took = d.at - t0;
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();
    assert_eq!(d.labels["datname"], "shop", "{:?}", d.labels);
    stack.assert_once("PostgresCacheHitRatioLow", "firing");
    let unexpected = stack.unexpected_since(since, &["PostgresCacheHitRatioLow"]);
    assert!(unexpected.is_empty(), "{unexpected:?}");
    Row {
        scenario: "cache collapse: repeated scans of a table 5x shared_buffers",
        expected: "PostgresCacheHitRatioLow datname=shop".to_string(),
        fired: format!(
            "\"{}\" ({took:.1?})",
            d.annotations["summary"].as_str().unwrap_or_default()
        ),
        verdict: "ok",
    }
}
