//! Split roles behind the NATS JetStream ingest log: a three-node Garage bucket, a private
//! PostgreSQL metastore, a private nats-server, three ingesters each storing one of three
//! partitions, two queriers and a compactor, as real processes. Writers send to any
//! ingester (each spreads series over the partitions); one ingester is killed with
//! SIGKILL mid-stream while the others keep acknowledging — its partition waits in the
//! stream — and restarted over its data directory. Then either querier counts every
//! acknowledged sample exactly once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cluster_roles::{counts, Cluster};
use crate::process::{now_ms, otlp_gauge_json, Didban};
use didban_testkit::garage::Garage;
use didban_testkit::nats::Nats;
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::{until, HANG};

/// Series written; each writer thread owns one (`job="w<i>"`).
const WRITERS: usize = 6;

/// The config tail of the ingester storing `partition`.
fn ingest_log(nats: &Nats, partition: u32) -> String {
    format!(
        "[alerting]\nenabled = false\n[ingest_log]\nurl = \"{}\"\npartitions = 3\npartition = {partition}\n",
        nats.url()
    )
}

#[test]
fn ingesters_behind_jetstream_lose_nothing_and_count_nothing_twice_across_kill_9() {
    let cluster = Cluster {
        garage: Garage::start(),
        pg: Postgres::start(),
        dir: tempfile::tempdir().unwrap(),
    };
    let nats = Nats::start();
    let start_ingester =
        |p: u32| cluster.start_with(&format!("ingester-{p}"), "ingester", &ingest_log(&nats, p));
    let ingesters: Vec<Arc<Mutex<Didban>>> =
        (0..3).map(|p| Arc::new(Mutex::new(start_ingester(p)))).collect();
    let queriers = [
        cluster.start("querier-1", "querier"),
        cluster.start("querier-2", "querier"),
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
}
