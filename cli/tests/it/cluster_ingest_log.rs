//! Split roles behind the NATS JetStream ingest log: a three-node Garage bucket, a private
//! PostgreSQL metastore, a private nats-server, three ingesters each storing one of three
//! partitions, two queriers and a compactor, as real processes. Writers send to any
//! ingester (each spreads series over the partitions); one ingester is killed with
//! SIGKILL mid-stream while the others keep acknowledging — its partition waits in the
//! stream — and restarted over its data directory. Then either querier counts every
//! acknowledged sample exactly once. Last, an ingester's disk is lost: killed, its data
//! directory deleted, a replacement started for its partition; it resumes after what its
//! published metric and span blocks and sealed log days hold, so every acknowledged
//! sample, span and log record is there again, none twice — log records of days sealed
//! and uploaded, of a day sealed again for late records (from a message whose other
//! records went to today's day, never sealed) and of today's day alike.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cluster_roles::{counts, Cluster};
use crate::crash_writers::trace_json;
use crate::process::{now_ms, otlp_gauge_json, Didban};
use didban_testkit::garage::Garage;
use didban_testkit::nats::Nats;
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::{until, HANG};
use serde_json::Value;

/// Series written; each writer thread owns one (`job="w<i>"`).
const WRITERS: usize = 6;

/// The config tail of the ingester storing `partition` (span heads cut every second, so
/// span blocks get published during the test).
fn ingest_log(nats: &Nats, partition: u32) -> String {
    format!(
        "[alerting]\nenabled = false\n[traces]\nblock_duration = \"1s\"\n[ingest_log]\nurl = \"{}\"\npartitions = 3\npartition = {partition}\n",
        nats.url()
    )
}

/// The config tail of a process without alert engine.
const NO_ALERTING: &str = "[alerting]\nenabled = false\n";

/// Maintenance (head cuts, uploads, block list refreshes) every 300 ms.
const FAST_MAINTENANCE: &str = "maintenance_interval = \"300ms\"";

/// Services of the disk-loss step's log records (spread over the partitions by name).
const LOG_SERVICES: [&str; 6] = ["billing", "search", "orders", "auth", "cart", "mailer"];

const DAY_NS: i64 = 86_400_000_000_000;

/// The partition the ingest log sends `service`'s records to (its hash, as the receivers
/// compute it, over three partitions).
fn log_partition(service: &str) -> u64 {
    xxhash_rust::xxh64::xxh64(service.as_bytes(), 0) % 3
}

/// An OTLP/HTTP JSON logs body: for each service, records `diskloss <service> r<n>` of
/// `numbers`, at the time `at(n)` gives.
fn disk_loss_logs(numbers: std::ops::Range<u64>, at: impl Fn(u64) -> i64) -> String {
    let resources: Vec<String> = LOG_SERVICES
        .iter()
        .map(|service| {
            let records: Vec<String> = numbers
                .clone()
                .map(|n| {
                    format!(
                        r#"{{"timeUnixNano":"{}","severityNumber":9,"body":{{"stringValue":"diskloss {service} r{n}"}}}}"#,
                        at(n)
                    )
                })
                .collect();
            format!(
                r#"{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{service}"}}}}]}},"scopeLogs":[{{"logRecords":[{}]}}]}}"#,
                records.join(",")
            )
        })
        .collect();
    format!(r#"{{"resourceLogs":[{}]}}"#, resources.join(","))
}

/// Every `diskloss` record body a querier finds over the last five days, sorted.
fn disk_loss_bodies(q: &Didban) -> Result<Vec<String>, String> {
    let client = reqwest::blocking::Client::new();
    let end = now_ms() / 1000 + 3600;
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut params = vec![
            ("query", "diskloss".to_string()),
            ("start", (end - 5 * 86_400).to_string()),
            ("end", end.to_string()),
            ("limit", "500".to_string()),
        ];
        if !cursor.is_empty() {
            params.push(("cursor", cursor.clone()));
        }
        let reply = client
            .get(q.url("/api/logs/search"))
            .query(&params)
            .send()
            .map_err(|e| e.to_string())?;
        if !reply.status().is_success() {
            return Err(format!("search: {}", reply.status()));
        }
        let body: Value = reply.json().map_err(|e| e.to_string())?;
        for r in body["data"]["records"].as_array().cloned().unwrap_or_default() {
            out.push(r["body"].as_str().unwrap_or_default().to_string());
        }
        match body["data"]["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    out.sort();
    Ok(out)
}

/// Rows of sealed log days in the metastore.
fn sealed_log_days(cluster: &Cluster) -> u32 {
    cluster
        .pg
        .psql(
            "postgres",
            "SELECT count(*) FROM didban_blocks WHERE signal = 'logs' AND deleted_at IS NULL",
        )
        .parse()
        .unwrap_or(0)
}

#[test]
fn ingesters_behind_jetstream_lose_nothing_and_count_nothing_twice_across_kill_9() {
    let cluster = Cluster {
        garage: Garage::start(),
        pg: Postgres::start(),
        dir: tempfile::tempdir().unwrap(),
    };
    let nats = Nats::start();
    let start_ingester = |p: u32| {
        cluster.start_configured(
            &format!("ingester-{p}"),
            "ingester",
            FAST_MAINTENANCE,
            &ingest_log(&nats, p),
        )
    };
    let ingesters: Vec<Arc<Mutex<Didban>>> =
        (0..3).map(|p| Arc::new(Mutex::new(start_ingester(p)))).collect();
    let queriers = [
        cluster.start_configured("querier-1", "querier", FAST_MAINTENANCE, NO_ALERTING),
        cluster.start_configured("querier-2", "querier", FAST_MAINTENANCE, NO_ALERTING),
    ];
    let _compactor = cluster.start("compactor", "compactor");

    // Writer i sends samples one second apart (in the past, so none is "future") to
    // ingester i % 3 and remembers the acknowledged ones.
    let t0 = now_ms() - 600_000;
    let acked: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(vec![0; WRITERS]));
    let mut threads = Vec::new();
    for w in 0..WRITERS {
        let (acked, target) = (acked.clone(), ingesters[w % 3].clone());
        threads.push(std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut n = 0usize;
            while n < 400 {
                let url = format!("http://{}/v1/metrics", target.lock().unwrap().otlp_http);
                let body = otlp_gauge_json(&format!("w{w}"), "orders", t0 + n as i64 * 1000, n as f64);
                let ok = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if ok {
                    acked.lock().unwrap()[w] += 1;
                    n += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }));
    }
    // Mid-stream: ingester 1 dies; writes go on (its own writers' requests fail and are
    // retried once it is back; the others' samples for its partition wait in the stream).
    until("writes under way", HANG, || {
        let total: usize = acked.lock().unwrap().iter().sum();
        (total > 300).then_some(()).ok_or(format!("{total} acknowledged"))
    });
    {
        let mut victim = ingesters[1].lock().unwrap();
        victim.kill9();
        std::thread::sleep(Duration::from_millis(500));
        *victim = start_ingester(1);
    }
    for t in threads {
        t.join().unwrap();
    }
    let want: Vec<(String, f64)> = {
        let acked = acked.lock().unwrap();
        (0..WRITERS).map(|w| (format!("w{w}"), acked[w] as f64)).collect()
    };
    assert!(
        want.iter().all(|(_, n)| *n == 400.0),
        "every writer finished: {want:?}"
    );
    let t_query = t0 + 400_000;
    for q in &queriers {
        until("every acknowledged sample counted once", HANG, || {
            let got = counts(q, t_query)?;
            (got == want)
                .then_some(())
                .ok_or(format!("{got:?}, want {want:?}"))
        });
    }

    // The disk of ingester 2 is lost. Before that it publishes: sealed log days (three
    // and two days ago, sealed at once), span blocks (cut every second) and a metric
    // block (flushed); then more samples, spans and log records arrive that only its
    // head, WAL and today's log day hold when it dies.
    let client = reqwest::blocking::Client::new();
    let partitions_with_logs = {
        let mut used: Vec<u64> = LOG_SERVICES.iter().map(|s| log_partition(s)).collect();
        used.sort();
        used.dedup();
        assert!(
            used.contains(&2),
            "some services' records go to partition 2: {used:?}"
        );
        used.len() as u32
    };
    let now_ns = didban_testkit::now_nanos();
    let old_days = |n: u64| now_ns - (3 - (n % 2) as i64) * DAY_NS;
    let post_logs = |target: usize, body: String| {
        let target = ingesters[target].lock().unwrap().otlp_http.clone();
        let reply = client
            .post(format!("http://{target}/v1/logs"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert!(reply.status().is_success(), "logs: {}", reply.status());
    };
    post_logs(0, disk_loss_logs(0..20, old_days));
    until("old log days sealed and uploaded", HANG, || {
        let n = sealed_log_days(&cluster);
        (n >= 2 * partitions_with_logs)
            .then_some(())
            .ok_or(format!("{n} sealed days"))
    });
    let mut next_trace = 0u64;
    let mut send_traces = |count: u64| {
        for _ in 0..count {
            let n = next_trace;
            next_trace += 1;
            let target = ingesters[(n % 3) as usize].lock().unwrap().otlp_http.clone();
            let reply = client
                .post(format!("http://{target}/v1/traces"))
                .header("content-type", "application/json")
                .body(trace_json("lost-disk", n, didban_testkit::now_nanos()))
                .send()
                .unwrap();
            assert!(reply.status().is_success(), "trace {n}: {}", reply.status());
        }
        next_trace
    };
    send_traces(30);
    until("span blocks published", HANG, || {
        let n = cluster.pg.psql(
            "postgres",
            "SELECT count(*) FROM didban_blocks WHERE signal = 'traces'",
        );
        (n.parse::<u32>().unwrap_or(0) >= 3).then_some(()).ok_or(n)
    });
    let flushed = client
        .post(ingesters[2].lock().unwrap().url("/api/v1/admin/tsdb/flush"))
        .send()
        .unwrap();
    assert!(flushed.status().is_success(), "{}", flushed.status());
    for w in 0..WRITERS {
        let target = ingesters[w % 3].lock().unwrap().otlp_http.clone();
        for n in 400..450 {
            let reply = client
                .post(format!("http://{target}/v1/metrics"))
                .header("content-type", "application/json")
                .body(otlp_gauge_json(
                    &format!("w{w}"),
                    "orders",
                    t0 + n * 1000,
                    n as f64,
                ))
                .send()
                .unwrap();
            assert!(reply.status().is_success(), "{}", reply.status());
        }
    }
    // One request, so one message per partition, with records of today (never sealed)
    // and late records of two days ago (that day sealed again at once).
    let sealed_before = sealed_log_days(&cluster);
    post_logs(
        1,
        disk_loss_logs(20..40, |n| match n % 4 {
            0 => now_ns - 2 * DAY_NS,
            _ => now_ns - 60_000_000_000,
        }),
    );
    until("the late records' day sealed again", HANG, || {
        let n = sealed_log_days(&cluster);
        (n >= sealed_before + partitions_with_logs)
            .then_some(())
            .ok_or(format!("{n} sealed days"))
    });
    let traces = send_traces(30);
    {
        let mut lost = ingesters[2].lock().unwrap();
        lost.kill9();
        std::fs::remove_dir_all(cluster.dir.path().join("ingester-2")).unwrap();
        *lost = start_ingester(2);
    }
    let want: Vec<(String, f64)> = (0..WRITERS).map(|w| (format!("w{w}"), 450.0)).collect();
    for q in &queriers {
        until(
            "every acknowledged sample counted once after the disk loss",
            HANG,
            || {
                let got = counts(q, t0 + 450_000)?;
                (got == want)
                    .then_some(())
                    .ok_or(format!("{got:?}, want {want:?}"))
            },
        );
    }
    let mut want_logs: Vec<String> = LOG_SERVICES
        .iter()
        .flat_map(|s| (0..40).map(move |n| format!("diskloss {s} r{n}")))
        .collect();
    want_logs.sort();
    for q in &queriers {
        until(
            "every acknowledged log record found once after the disk loss",
            HANG,
            || {
                let got = disk_loss_bodies(q)?;
                let mut seen = got.clone();
                seen.dedup();
                assert_eq!(seen.len(), got.len(), "a log record stored twice");
                (got == want_logs).then_some(()).ok_or(format!(
                    "{} of {} records",
                    got.len(),
                    want_logs.len()
                ))
            },
        );
    }
    // The replacement stored exactly what no sealed day in the bucket held: today's
    // records of partition 2 (15 of each service's 20 in the second request), not the
    // late ones of a day it found sealed, not those of the first request.
    let todays = 15 * LOG_SERVICES.iter().filter(|s| log_partition(s) == 2).count() as u64;
    until("the replacement stored today's records", HANG, || {
        let n = logs_consumed(&ingesters[2].lock().unwrap());
        (n >= todays).then_some(()).ok_or(format!("{n} of {todays}"))
    });
    assert_eq!(
        logs_consumed(&ingesters[2].lock().unwrap()),
        todays,
        "records a sealed day holds stored again"
    );
    for n in 0..traces {
        until(
            "every acknowledged span found once after the disk loss",
            HANG,
            || {
                let reply: Value = client
                    .get(queriers[0].url(&format!("/api/traces/{:032x}", n + 1)))
                    .send()
                    .map_err(|e| e.to_string())?
                    .json()
                    .unwrap_or(Value::Null);
                let spans = reply["data"][0]["spans"].as_array().map_or(0, |s| s.len());
                match spans {
                    2 => Ok(()),
                    more if more > 2 => panic!("trace {n}: {more} spans, 2 written"),
                    fewer => Err(format!("trace {n}: {fewer} spans")),
                }
            },
        );
    }
}

/// Log records `server` stored from the ingest log (`didban_ingest_log_consumed_total`).
fn logs_consumed(server: &Didban) -> u64 {
    let text = reqwest::blocking::get(server.url("/metrics"))
        .and_then(|r| r.text())
        .unwrap_or_default();
    let mut total = 0;
    for line in text.lines() {
        if line.starts_with("didban_ingest_log_consumed_total{") && line.contains("kind=\"logs\"") {
            total += line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as u64;
        }
    }
    total
}

/// Sends `count` log records numbered from `first` to `server`.
fn send_logs(server: &Didban, first: u64, count: u64) {
    let client = reqwest::blocking::Client::new();
    for n in first..first + count {
        let reply = client
            .post(format!("http://{}/v1/logs", server.otlp_http))
            .header("content-type", "application/json")
            .body(crate::crash_writers::log_json(
                "turns",
                n,
                didban_testkit::now_nanos(),
            ))
            .send()
            .unwrap();
        assert!(reply.status().is_success(), "record {n}: {}", reply.status());
    }
}

#[test]
fn two_ingesters_set_up_for_one_partition_take_turns_by_its_lease() {
    let cluster = Cluster {
        garage: Garage::start(),
        pg: Postgres::start(),
        dir: tempfile::tempdir().unwrap(),
    };
    let nats = Nats::start();
    let tail = format!(
        "[alerting]\nenabled = false\n[ingest_log]\nurl = \"{}\"\npartitions = 1\npartition = 0\n",
        nats.url()
    );
    let mut a = cluster.start_with("ingester-a", "ingester", &tail);
    let b = cluster.start_with("ingester-b", "ingester", &tail);
    send_logs(&a, 0, 50);
    send_logs(&b, 50, 50);
    until("every record stored", HANG, || {
        let n = logs_consumed(&a) + logs_consumed(&b);
        (n >= 100).then_some(()).ok_or(format!("{n} stored"))
    });
    // One holds the partition's lease and stored all; the other waited.
    let leases = cluster.pg.psql(
        "postgres",
        "SELECT count(*) FROM didban_leases WHERE name LIKE 'ingest-partition/%' AND expires_at > now()",
    );
    assert_eq!(leases, "1", "the partition's lease is held");
    let (by_a, by_b) = (logs_consumed(&a), logs_consumed(&b));
    assert!(
        (by_a, by_b) == (100, 0) || (by_a, by_b) == (0, 100),
        "a stored {by_a}, b stored {by_b}: exactly one may consume the partition"
    );
    // The holder dies; the other takes the lease once it expires and goes on.
    let survivor = if by_a == 100 {
        a.kill9();
        &b
    } else {
        let mut b = b;
        b.kill9();
        drop(b);
        &a
    };
    send_logs(survivor, 100, 50);
    until("the survivor stores what follows", HANG, || {
        let n = logs_consumed(survivor);
        (n >= 50).then_some(()).ok_or(format!("{n} stored"))
    });
}
