//! `kill -9` during appends loses nothing that was acknowledged.
//!
//! The test re-runs its own binary as a child that appends in a loop and prints each
//! acknowledged timestamp; the parent kills it with SIGKILL mid-stream, reopens the data
//! directory and checks every acknowledged sample is there.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::*;
use didban_store::{Db, LabelMatcher, Queryable};

const CHILD_ENV: &str = "DIDBAN_CRASH_CHILD_DIR";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_appends_until_killed() {
    // Only does something when started by the parent test below.
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut opts = options(std::path::Path::new(&dir));
    opts.wal_segment_bytes = 4096;
    let db = Db::open(opts).unwrap();
    for i in 0..1_000_000i64 {
        let t = T0 + i;
        db.append(vec![
            series("crash", "a", &[(t, i as f64)]),
            series("crash", "b", &[(t, 1.0)]),
        ])
        .await
        .unwrap();
        println!("ack {t}");
    }
}

#[test]
fn sigkill_loses_no_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::crash_child_appends_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut last_ack = None;
    let mut acks = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(t) = line.strip_prefix("ack ") {
            last_ack = Some(t.parse::<i64>().unwrap());
            acks += 1;
            if acks == 2000 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    child.wait().unwrap();
    let last_ack = last_ack.expect("child acknowledged nothing");

    let db = Db::open(options(dir.path())).unwrap();
    for job in ["a", "b"] {
        let got = db
            .select(&[LabelMatcher::equal("job", job)], T0, i64::MAX)
            .unwrap();
        let samples = &got[0].samples;
        assert!(
            samples.len() >= acks,
            "{job}: {} samples, {acks} acknowledged",
            samples.len()
        );
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(
                s.timestamp_ms,
                T0 + i as i64,
                "{job}: gap in the replayed samples"
            );
        }
        assert!(samples.last().unwrap().timestamp_ms >= last_ack);
    }
}
