//! Split roles of the same binary against real engines: a three-node Garage bucket, a
//! private PostgreSQL metastore, three ingesters, two queriers, a compactor and an HA
//! alerting pair as real processes. Either querier answers with every acknowledged sample
//! whether it is in an ingester's head or already in a published block, counts a series
//! two ingesters received once, refuses writes, and — after `kill -9` of an ingester and
//! its restart over the same data directory — still has everything that ingester
//! acknowledged. The alerting pair evaluates over the cluster and notifies once.

use crate::process::{now_ms, otlp_gauge_json, Didban, BIN};
use didban_testkit::garage::{Garage, REGION};
use didban_testkit::postgres::Postgres;
use didban_testkit::wait::{until, HANG};
use didban_testkit::webhook::Webhook;
use serde_json::Value;

/// The internal API's bearer token in every process of these tests.
pub(crate) const SECRET: &str = "a-cluster-secret-of-some-length";

/// The engines the processes of a test share, and the directory of their configs and
/// data directories.
pub(crate) struct Cluster {
    pub(crate) garage: Garage,
    pub(crate) pg: Postgres,
    pub(crate) dir: tempfile::TempDir,
}

impl Cluster {
    /// Garage, PostgreSQL and a temporary directory, started.
    pub(crate) fn new() -> Cluster {
        Cluster {
            garage: Garage::start(),
            pg: Postgres::start(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes the config of one process and starts it.
    pub(crate) fn start(&self, name: &str, role: &str) -> Didban {
        self.start_with(name, role, "[alerting]\nenabled = false\n")
    }

    /// [`Cluster::start`] with `alerting` as the config's alerting part (and whatever
    /// other sections follow it).
    pub(crate) fn start_with(&self, name: &str, role: &str, alerting: &str) -> Didban {
        self.start_configured(name, role, "", alerting)
    }

    /// Announces an ingester `ghost` in the members table with nothing listening at its
    /// address (a free port): a live ingester that does not answer.
    pub(crate) fn announce_silent_ingester(&self) {
        let port = didban_testkit::ports::free_port();
        self.pg.psql(
            "postgres",
            &format!(
                "INSERT INTO didban_members (cluster, role, id, address, expires_at) \
                 SELECT cluster, 'ingester', 'ghost', 'http://127.0.0.1:{port}', now() + interval '1 hour' \
                 FROM didban_members LIMIT 1"
            ),
        );
    }

    /// Takes the ingester of [`Cluster::announce_silent_ingester`] out of the members table.
    pub(crate) fn forget_silent_ingester(&self) {
        self.pg
            .psql("postgres", "DELETE FROM didban_members WHERE id = 'ghost'");
    }

    /// [`Cluster::start_with`] with `storage` as more keys of `[storage]`.
    pub(crate) fn start_configured(&self, name: &str, role: &str, storage: &str, alerting: &str) -> Didban {
        self.start_with_top(name, role, "", storage, alerting)
    }

    /// [`Cluster::start_configured`] with `top` (top-level settings, before any section)
    /// at the head of the config file.
    pub(crate) fn start_with_top(
        &self,
        name: &str,
        role: &str,
        top: &str,
        storage: &str,
        alerting: &str,
    ) -> Didban {
        let port = didban_testkit::ports::free_port();
        let http = format!("127.0.0.1:{port}");
        let config = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"
{top}
[storage]
object_store = "s3"
metastore = "postgres"
{storage}
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
{alerting}
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
pub(crate) fn counts(querier: &Didban, t_ms: i64) -> Result<Vec<(String, f64)>, String> {
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

const RULES: &str = r#"
groups:
  - name: orders
    interval: 1s
    rules:
      - alert: OrdersHigh
        expr: orders{job="only-b"} > 1
"#;

#[test]
fn ingesters_queriers_compactor_and_an_alerting_pair_share_a_bucket_and_lose_nothing() {
    let cluster = Cluster::new();
    let hook = Webhook::start();
    let rules_dir = cluster.dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("orders.yaml"), RULES).unwrap();
    let mut a = cluster.start("ingester-a", "ingester");
    let b = cluster.start("ingester-b", "ingester");
    let c = cluster.start("ingester-c", "ingester");
    let queriers = [
        cluster.start("querier-1", "querier"),
        cluster.start("querier-2", "querier"),
    ];
    let compactor = cluster.start("compactor", "compactor");
    let alerting = crate::alerting_ha::ha_alerting_toml(
        &rules_dir,
        &cluster.pg.dsn("postgres"),
        "roles",
        "\"alertname\"",
        &hook.url,
    );
    let _pair = [
        cluster.start_with("alerting-1", "alerting", &alerting),
        cluster.start_with("alerting-2", "alerting", &alerting),
    ];

    let t0 = now_ms() - 60_000;
    assert_eq!(push(&a, "only-a", t0, 1.0), 200);
    assert_eq!(push(&b, "only-b", t0, 2.0), 200);
    assert_eq!(push(&c, "only-c", t0, 5.0), 200);
    // One series two ingesters received (two replicas of one write): counted once.
    assert_eq!(push(&a, "both", t0, 3.0), 200);
    assert_eq!(push(&b, "both", t0, 3.0), 200);
    let t_query = t0 + 1_000;
    let all_once = [("both", 1.0), ("only-a", 1.0), ("only-b", 1.0), ("only-c", 1.0)];
    for q in &queriers {
        expect(q, t_query, &all_once);
    }

    // a writes its head as a block (uploaded, row in the metastore): the queriers now
    // find those samples in the bucket instead of a's head, still once each.
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
    // At once, not eventually: a querier asks the heads first and then refreshes its
    // block list, so a block published before the query is seen by it.
    let want: Vec<(String, f64)> = all_once.iter().map(|(j, v)| (j.to_string(), *v)).collect();
    for q in &queriers {
        assert_eq!(counts(q, t_query).unwrap(), want);
    }

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

    // Queriers refuse writes, naming their role.
    assert_eq!(
        push(&queriers[0], "x", t0, 1.0),
        reqwest::StatusCode::MISDIRECTED_REQUEST
    );

    // The alerting pair evaluates over the cluster (the sample is in b's head), sends one
    // notification between them, and its ALERTS series (in the sender's own head) is
    // visible to the queriers.
    until("the notification", HANG, || {
        (hook.count() >= 1).then_some(()).ok_or("none yet".to_string())
    });
    until("ALERTS on the querier", HANG, || {
        let r: Value = reqwest::blocking::Client::new()
            .get(queriers[1].url("/api/v1/query"))
            .query(&[("query", "ALERTS{alertname=\"OrdersHigh\", alertstate=\"firing\"}")])
            .send()
            .map_err(|e| e.to_string())?
            .json()
            .map_err(|e| e.to_string())?;
        let n = r["data"]["result"].as_array().map_or(0, Vec::len);
        (n >= 1).then_some(()).ok_or(r.to_string())
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(hook.count(), 1, "the pair notifies once");

    // a acknowledges one more sample, then is killed: once its announcement expired
    // (before that, queries fail naming a rather than answer without it) the queriers
    // answer without a's head; after a's restart (WAL replay) the sample is back.
    let t1 = t0 + 15_000;
    assert_eq!(push(&a, "only-a", t1, 4.0), 200);
    let t_later = t1 + 1_000;
    let with_t1 = [("both", 1.0), ("only-a", 2.0), ("only-b", 1.0), ("only-c", 1.0)];
    for q in &queriers {
        expect(q, t_later, &with_t1);
    }
    a.kill9();
    for q in &queriers {
        expect(q, t_later, &all_once);
    }
    drop(a);
    // The same name: the same data directory, whose WAL holds the acknowledged sample.
    let _restarted = cluster.start("ingester-a", "ingester");
    for q in &queriers {
        expect(q, t_later, &with_t1);
    }

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
}
