//! Split roles of the same binary against real engines: a three-node Garage bucket, a
//! private PostgreSQL metastore, two ingesters, a querier and a compactor as real
//! processes. The querier answers with every acknowledged sample whether it is in an
//! ingester's head or already in a published block, counts a series both ingesters
//! received once, refuses writes, and — after `kill -9` of an ingester and its restart
//! over the same data directory — still has everything that ingester acknowledged.

use crate::process::{now_ms, otlp_gauge_json, Didban, BIN};
use didban_testkit::garage::{Garage, REGION};
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::{until, HANG};
use serde_json::Value;

const SECRET: &str = "a-cluster-secret-of-some-length";

struct Cluster {
    garage: Garage,
    pg: Postgres,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Writes the config of one process and starts it.
    fn start(&self, name: &str, role: &str) -> Didban {
        let port = didban_testkit::ports::free_port();
        let http = format!("127.0.0.1:{port}");
        let config = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"
[storage]
object_store = "s3"
metastore = "postgres"
[storage.s3]
endpoint = "{}"
bucket = "{}"
region = "{REGION}"
allow_http = true
[storage.postgres]
url = "{}"
compactor_lease_ttl = "2s"
[cluster]
role = "{role}"
advertise_url = "http://{http}"
member_ttl = "2s"
[alerting]
enabled = false
"#,
                self.garage.endpoint(0),
                self.garage.bucket,
                self.pg.dsn("postgres"),
            ),
        )
        .unwrap();
        let config = config.display().to_string();
        let data = self.dir.path().join(name);
        let args = [
            "--config",
            config.as_str(),
            "--http-addr",
            http.as_str(),
            "--no-host-metrics",
        ];
        Didban::start_with(
            BIN,
            &data,
            didban_testkit::didban::Start {
                args: &args,
                envs: &[
                    ("DIDBAN_S3_ACCESS_KEY_ID", self.garage.access_key_id.as_str()),
                    (
                        "DIDBAN_S3_SECRET_ACCESS_KEY",
                        self.garage.secret_access_key.as_str(),
                    ),
                    ("DIDBAN_CLUSTER_SECRET", SECRET),
                ],
                stderr: None,
            },
        )
    }
}

fn push(server: &Didban, job: &str, t_ms: i64, value: f64) -> reqwest::StatusCode {
    reqwest::blocking::Client::new()
        .post(format!("http://{}/v1/metrics", server.otlp_http))
        .header("content-type", "application/json")
        .body(otlp_gauge_json(job, "orders", t_ms, value))
        .send()
        .unwrap()
        .status()
}

/// `count_over_time(orders[1h])` per job, as the querier answers at `t_ms`.
fn counts(querier: &Didban, t_ms: i64) -> Result<Vec<(String, f64)>, String> {
    let r: Value = reqwest::blocking::Client::new()
        .get(querier.url("/api/v1/query"))
        .query(&[
            ("query", "count_over_time(orders[1h])".to_string()),
            ("time", format!("{}", t_ms as f64 / 1000.0)),
        ])
        .send()
        .map_err(|e| e.to_string())?
        .json()
        .map_err(|e| e.to_string())?;
    if r["status"] != "success" {
        return Err(r.to_string());
    }
    let mut out = Vec::new();
    for s in r["data"]["result"].as_array().cloned().unwrap_or_default() {
        let job = s["metric"]["job"].as_str().unwrap_or("").to_string();
        let v: f64 = s["value"][1]
            .as_str()
            .unwrap_or("NaN")
            .parse()
            .unwrap_or(f64::NAN);
        out.push((job, v));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn expect(querier: &Didban, t_ms: i64, want: &[(&str, f64)]) {
    let want: Vec<(String, f64)> = want.iter().map(|(j, v)| (j.to_string(), *v)).collect();
    until("the querier's answer", HANG, || {
        let got = counts(querier, t_ms)?;
        (got == want)
            .then_some(())
            .ok_or(format!("{got:?}, want {want:?}"))
    });
}

#[test]
fn ingesters_querier_and_compactor_share_a_bucket_and_lose_nothing() {
    let cluster = Cluster {
        garage: Garage::start(),
        pg: Postgres::start(),
        dir: tempfile::tempdir().unwrap(),
    };
    let mut a = cluster.start("ingester-a", "ingester");
    let b = cluster.start("ingester-b", "ingester");
    let querier = cluster.start("querier", "querier");
    let compactor = cluster.start("compactor", "compactor");

    let t0 = now_ms() - 60_000;
    assert_eq!(push(&a, "only-a", t0, 1.0), 200);
    assert_eq!(push(&b, "only-b", t0, 2.0), 200);
    // One series both ingesters received (two replicas of one write): counted once.
    assert_eq!(push(&a, "both", t0, 3.0), 200);
    assert_eq!(push(&b, "both", t0, 3.0), 200);
    let t_query = t0 + 1_000;
    expect(
        &querier,
        t_query,
        &[("both", 1.0), ("only-a", 1.0), ("only-b", 1.0)],
    );

    // a writes its head as a block (uploaded, row in the metastore): the querier now
    // finds those samples in the bucket instead of a's head, still once each.
    let flushed = reqwest::blocking::Client::new()
        .post(a.url("/api/v1/admin/tsdb/flush"))
        .send()
        .unwrap();
    assert!(flushed.status().is_success(), "{}", flushed.status());
    let blocks = cluster.pg.psql(
        "postgres",
        "SELECT count(*) FROM didban_blocks WHERE deleted_at IS NULL",
    );
    assert_eq!(blocks, "1");
    // At once, not eventually: the querier asks the heads first and then refreshes its
    // block list, so a block published before the query is seen by it.
    let want: Vec<(String, f64)> = vec![
        ("both".into(), 1.0),
        ("only-a".into(), 1.0),
        ("only-b".into(), 1.0),
    ];
    assert_eq!(counts(&querier, t_query).unwrap(), want);

    // The internal API answers only with the cluster secret.
    let body = r#"{"matchers":[{"name":"__name__","op":"=","value":"orders"}],"start_ms":0,"end_ms":1}"#;
    for auth in [None, Some("Bearer not-the-secret")] {
        let mut r = reqwest::blocking::Client::new()
            .post(b.url("/internal/v1/heads"))
            .body(body);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        assert_eq!(r.send().unwrap().status(), reqwest::StatusCode::UNAUTHORIZED);
    }

    // The querier refuses writes, naming its role.
    let refused = push(&querier, "x", t0, 1.0);
    assert_eq!(refused, reqwest::StatusCode::MISDIRECTED_REQUEST);

    // a acknowledges one more sample, then is killed: once its announcement expired
    // (before that, queries fail naming a rather than answer without it) the querier
    // answers without a's head; after a's restart (WAL replay) the sample is back.
    let t1 = t0 + 15_000;
    assert_eq!(push(&a, "only-a", t1, 4.0), 200);
    let t_later = t1 + 1_000;
    expect(
        &querier,
        t_later,
        &[("both", 1.0), ("only-a", 2.0), ("only-b", 1.0)],
    );
    a.kill9();
    expect(
        &querier,
        t_later,
        &[("both", 1.0), ("only-a", 1.0), ("only-b", 1.0)],
    );
    let a_data = a.data_dir.clone();
    drop(a);
    let _a = {
        let restarted = cluster.start("ingester-a", "ingester");
        assert_eq!(restarted.data_dir, a_data);
        restarted
    };
    expect(
        &querier,
        t_later,
        &[("both", 1.0), ("only-a", 2.0), ("only-b", 1.0)],
    );

    // Only the compactor competes for the compactor lease.
    let holder = until("a compactor", HANG, || {
        let h = cluster.pg.psql(
            "postgres",
            "SELECT holder FROM didban_leases WHERE name = 'compactor'",
        );
        (!h.is_empty()).then_some(h.clone()).ok_or(h)
    });
    let pid: u32 = holder.split(':').nth(1).unwrap().parse().unwrap();
    assert_eq!(pid, compactor.child.id(), "{holder}");
    drop(b);
}
