//! The shared stack of the scenario suite: real PostgreSQL (pg_stat_statements preloaded),
//! redis-server, a real Celery worker on it, `didban serve` with the built-in packs at
//! `time_scale = 0.1`, the `didban-agent` binary watching them and tailing an application
//! and an nginx access log, a small HTTP app under steady traffic sending its spans, a real
//! SMTP server and a webhook receiver, both receivers of every alert but `Watchdog`. Plus
//! what scenarios need to drive it and read the outcome.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use didban_testkit::postgres::{pg_bin, Postgres};
use didban_testkit::process::Proc;
use didban_testkit::redis::Redis;
use didban_testkit::smtp::Smtp;
use didban_testkit::wait::until;
use parking_lot::Mutex;
use serde_json::Value;

use super::agent;
use super::cpu::Idle;
use super::traffic::Traffic;
use crate::process::{Didban, BIN};

/// The factor applied to every rule's interval and `for` (`[alerting] time_scale`).
pub const TIME_SCALE: f64 = 0.1;

/// Longest wait for one alert: a debug server and agent on a busy machine.
pub const WITHIN: Duration = Duration::from_secs(120);

/// One alert of one webhook body: (alertname, status, labels, annotations).
#[derive(Clone, Debug)]
pub struct Delivered {
    /// `alertname`.
    pub name: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// All labels.
    pub labels: Value,
    /// All annotations.
    pub annotations: Value,
    /// When it arrived.
    pub at: Instant,
}

type Hooked = Arc<Mutex<Vec<Delivered>>>;

async fn receive(State(h): State<Hooked>, body: String) -> &'static str {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let now = Instant::now();
    let mut got = h.lock();
    for a in body["alerts"].as_array().cloned().unwrap_or_default() {
        got.push(Delivered {
            name: a["labels"]["alertname"].as_str().unwrap_or_default().to_string(),
            status: a["status"].as_str().unwrap_or_default().to_string(),
            labels: a["labels"].clone(),
            annotations: a["annotations"].clone(),
            at: now,
        });
    }
    "ok"
}

/// One line of the printed table.
pub struct Row {
    /// The scenario.
    pub scenario: &'static str,
    /// What should fire (or stay quiet).
    pub expected: String,
    /// What fired, with the time from cause to notification.
    pub fired: String,
    /// `ok` when every assertion held (a failed one panics before the row is made).
    pub verdict: &'static str,
}

/// The running stack; everything is stopped when dropped.
pub struct Stack {
    /// The PostgreSQL cluster.
    pub pg: Postgres,
    /// The Celery broker.
    pub redis: Redis,
    /// The Celery worker (`None` while stopped).
    pub worker: Option<Proc>,
    /// `didban serve`.
    pub server: Didban,
    /// The temp dir holding data, logs and mail.
    pub dir: tempfile::TempDir,
    /// Webhook deliveries, in order.
    pub hook: Hooked,
    /// The HTTP app and its users (normal traffic from the start).
    pub traffic: Traffic,
    /// The host's idle CPU time, sampled since before the server started.
    pub idle: Idle,
    /// When the server was ready: its host history starts here.
    pub server_ready: Instant,
    smtp: Smtp,
    agent: Proc,
    runtime: tokio::runtime::Runtime,
}

/// Alerts about the machine running the suite itself (a shared CI box may really be busy,
/// short of memory, or have a nearly full disk under the temp dir holding the server's data):
/// allowed in every scenario when they are true, and listed in the table with their value.
pub const AMBIENT: &[&str] = &[
    "HostHighCpu",
    "HostMemoryLow",
    "DidbanDiskSpaceLow",
    "HostDiskAlmostFull",
];

/// Name of the Celery worker (`-n`).
pub const WORKER: &str = "scenario@didban";

impl Stack {
    /// Starts everything and waits until the agent's first PostgreSQL, Redis and Celery
    /// figures are stored.
    pub fn start() -> Stack {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let hook: Hooked = Arc::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(hook.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().unwrap();
        let smtp = Smtp::start(&dir.path().join("mail"));
        // A small shared_buffers so a 40 MB table is larger than the cache (cache_collapse).
        let pg = Postgres::start_with_options("-c shared_buffers=8MB");
        pg.psql("postgres", "CREATE EXTENSION pg_stat_statements");
        pg.psql("postgres", "CREATE DATABASE app");
        let redis = Redis::start(None);
        let config = dir.path().join("didban.toml");
        std::fs::write(&config, server_config(smtp.port, &hook_url)).unwrap();
        let config_arg = config.display().to_string();
        let idle = Idle::start();
        let server = Didban::start(BIN, &dir.path().join("data"), &["--config", &config_arg]);
        let server_ready = Instant::now();

        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("app.log"), "").unwrap();
        std::fs::write(logs.join("access.log"), "").unwrap();
        let agent = agent::start(
            dir.path(),
            &agent::Watched {
                data_dir: &dir.path().join("agent"),
                otlp_grpc: &server.otlp_grpc,
                postgres_dsn: &pg.dsn("postgres"),
                redis_port: redis.port,
                logs: &logs,
            },
        );
        let traffic = Traffic::start(&server.otlp_http, dir.path());
        let mut stack = Stack {
            pg,
            redis,
            worker: None,
            server,
            dir,
            hook,
            traffic,
            idle,
            server_ready,
            smtp,
            agent,
            runtime,
        };
        stack.start_worker();
        stack.wait_agent();
        stack.wait_value("pg_up", 1.0);
        stack.wait_value("redis_up", 1.0);
        stack.wait_value(&format!("celery_worker_up{{hostname=\"{WORKER}\"}}"), 1.0);
        stack
    }

    /// Waits for the agent's first export (`pg_up`); panics with its log if it exits.
    fn wait_agent(&mut self) {
        let (agent, server, dir) = (&mut self.agent, &self.server, self.dir.path());
        until("the agent's first PostgreSQL figures", WITHIN, || {
            if agent.exited() {
                panic!("didban-agent exited:\n{}", agent::log(dir));
            }
            let now = crate::process::now_ms() as f64 / 1000.0;
            let body = server.query("pg_up", now);
            match body["data"]["result"].as_array() {
                Some(rows) if !rows.is_empty() => Ok(()),
                _ => Err(body.to_string()),
            }
        });
    }

    /// Starts the Celery worker (`celery -A celery_app worker -E`, the agent tests' app).
    pub fn start_worker(&mut self) {
        let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("worker.log"))
            .unwrap();
        let child = Command::new("python3")
            .args(["-m", "celery", "-A", "celery_app", "worker", "-E", "-P", "solo"])
            .args(["--without-mingle", "--without-gossip", "--loglevel", "INFO"])
            .args(["-n", WORKER])
            .current_dir(tests)
            .env("DIDBAN_TEST_BROKER", self.broker())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("python3 -m celery (pip install -r tests/requirements.txt)");
        self.worker = Some(Proc(child));
    }

    /// The broker URL.
    pub fn broker(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.redis.port)
    }

    /// Sends tasks through the test app: `add`, `boom` (always fails), `flaky` counts.
    pub fn send_tasks(&self, add: usize, boom: usize, flaky: usize) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/celery_app.py");
        let out = Command::new("python3")
            .arg(script)
            .args([
                self.broker(),
                add.to_string(),
                boom.to_string(),
                flaky.to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "celery_app.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_ctl stop -m fast` (the cluster stays on disk for [`Stack::restart_postgres`]).
    pub fn stop_postgres(&self) {
        self.pg_ctl(&["-m", "fast", "stop"]);
    }

    /// Starts the stopped cluster again with its original options (`pg_ctl restart` reads
    /// them from `postmaster.opts`).
    pub fn restart_postgres(&self) {
        self.pg_ctl(&[
            "-l",
            &self.pg.dir.path().join("log").display().to_string(),
            "restart",
        ]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin().join("pg_ctl"))
            .args(["-w", "-D"])
            .arg(self.pg.dir.path().join("data"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Appends `text` to the tailed log `name` (`app.log` or `access.log`).
    pub fn append_log(&self, name: &str, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("logs").join(name))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Waits until instant query `expr` has a sample equal to `want`.
    pub fn wait_value(&self, expr: &str, want: f64) {
        until(&format!("{expr} == {want}"), WITHIN, || {
            let now = crate::process::now_ms() as f64 / 1000.0;
            let body = self.server.query(expr, now);
            for row in body["data"]["result"].as_array().cloned().unwrap_or_default() {
                let v: f64 = row["value"][1]
                    .as_str()
                    .unwrap_or("NaN")
                    .parse()
                    .unwrap_or(f64::NAN);
                if v == want {
                    return Ok(());
                }
            }
            Err(body.to_string())
        });
    }

    /// The alerts of `/api/v1/alerts` in state `state` (`firing`, `pending`).
    pub fn alerts(&self, state: &str) -> Vec<Value> {
        let body: Value = reqwest::blocking::get(self.server.url("/api/v1/alerts"))
            .unwrap()
            .json()
            .unwrap();
        let mut out = Vec::new();
        for a in body["data"]["alerts"].as_array().cloned().unwrap_or_default() {
            if a["state"] == state {
                out.push(a);
            }
        }
        out
    }

    /// Names of the alerts firing now, ambient ones ([`AMBIENT`]) left out.
    pub fn firing_names(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for a in self.alerts("firing") {
            if AMBIENT.contains(&a["labels"]["alertname"].as_str().unwrap_or_default()) {
                continue;
            }
            out.insert(a["labels"]["alertname"].as_str().unwrap_or_default().to_string());
        }
        out
    }

    /// Webhook deliveries so far.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.hook.lock().clone()
    }

    /// Waits for a webhook delivery of `name` in `status` after `since` deliveries; returns it.
    pub fn wait_delivery(&self, name: &str, status: &str, since: usize) -> Delivered {
        until(&format!("a {status} {name} on the webhook"), WITHIN, || {
            for d in self.delivered().into_iter().skip(since) {
                if d.name == name && d.status == status {
                    return Ok(d);
                }
            }
            Err(format!(
                "firing now: {:?}; pending: {:?}",
                self.firing_names(),
                names(&self.alerts("pending"))
            ))
        })
    }

    /// Subjects of the mails received so far (unfolded).
    pub fn mail_subjects(&self) -> Vec<String> {
        let mut out = Vec::new();
        let dir = self.dir.path().join("mail").join("new");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return out;
        };
        for e in entries {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap_or_default();
            out.push(subject_of(&text));
        }
        out
    }

    /// How many mails say `[FIRING:…] <name>` (`firing`) or `[RESOLVED] <name>`.
    pub fn mails(&self, name: &str, status: &str) -> usize {
        let mut n = 0;
        for s in self.mail_subjects() {
            let head = if status == "firing" {
                "[FIRING:"
            } else {
                "[RESOLVED]"
            };
            let Some(rest) = s.strip_prefix(head) else {
                continue;
            };
            let rest = rest.split_once(' ').map(|(_, r)| r).unwrap_or("");
            if rest == name || rest.starts_with(&format!("{name} ")) {
                n += 1;
            }
        }
        n
    }

    /// Waits until `name` has arrived by mail in `status`, then checks it arrived exactly
    /// once by mail and by webhook.
    pub fn assert_once(&self, name: &str, status: &str) {
        until(&format!("a {status} mail for {name}"), WITHIN, || {
            if self.mails(name, status) >= 1 {
                Ok(())
            } else {
                Err(format!("{:?}", self.mail_subjects()))
            }
        });
        assert_eq!(
            self.mails(name, status),
            1,
            "{status} {name} by mail exactly once: {:?}",
            self.mail_subjects()
        );
        let mut hooks = 0;
        for d in self.delivered() {
            if d.name == name && d.status == status {
                hooks += 1;
            }
        }
        assert_eq!(hooks, 1, "{status} {name} by webhook exactly once");
    }

    /// The ambient alerts ([`AMBIENT`]) firing now, with their values.
    pub fn ambient_firing(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in self.alerts("firing") {
            let name = a["labels"]["alertname"].as_str().unwrap_or_default();
            if AMBIENT.contains(&name) {
                let value: f64 = a["value"].as_str().unwrap_or("NaN").parse().unwrap_or(f64::NAN);
                out.push(format!("{name} ({value:.3})"));
            }
        }
        out
    }

    /// Webhook firing deliveries from index `since` on whose name is neither `allowed` nor
    /// ambient.
    pub fn unexpected_since(&self, since: usize, allowed: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for d in self.delivered().into_iter().skip(since) {
            let name = d.name.as_str();
            if d.status == "firing" && !allowed.contains(&name) && !AMBIENT.contains(&name) {
                out.push(format!("{} {}", d.name, d.labels));
            }
        }
        out
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // The agent (a `Proc`) and the servers are killed by their own guards; the SMTP
        // server and the webhook's runtime live until here.
        let _ = (&self.smtp, &self.agent, &self.runtime);
    }
}

/// `alertname`s of `alerts`.
pub fn names(alerts: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for a in alerts {
        out.push(a["labels"]["alertname"].as_str().unwrap_or_default().to_string());
    }
    out
}

/// The `Subject:` header of a mail, unfolded.
fn subject_of(mail: &str) -> String {
    let mut subject: Option<String> = None;
    for line in mail.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(s) = subject.as_mut() {
            if line.starts_with([' ', '\t']) {
                s.push(' ');
                s.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some(rest) = line.strip_prefix("Subject:") {
            subject = Some(rest.trim().to_string());
        }
    }
    subject.unwrap_or_default()
}

/// `didban serve`'s config: built-in packs at [`TIME_SCALE`], fast log commits, host
/// collection every second like the agent's (collection cadences are not scaled), every
/// alert but `Watchdog` (routed to a receiver with nothing configured) to the webhook and
/// by mail, one group per alert name, resolved notifications on.
fn server_config(smtp_port: u16, hook_url: &str) -> String {
    format!(
        r#"
[logs]
commit_interval = "200ms"
[host_metrics]
interval = "1s"
[alerting]
time_scale = {TIME_SCALE}
[alerting.global]
smtp_from = "didban@example.com"
smtp_smarthost = "127.0.0.1:{smtp_port}"
[alerting.route]
receiver = "oncall"
group_by = ["alertname"]
group_wait = "0s"
group_interval = "1s"
repeat_interval = "4h"
[[alerting.route.routes]]
receiver = "deadmansswitch"
matchers = ["alertname = Watchdog"]
[[alerting.receivers]]
name = "oncall"
[[alerting.receivers.webhook_configs]]
url = "{hook_url}"
send_resolved = true
[[alerting.receivers.email_configs]]
to = "oncall@example.com"
tls = "none"
send_resolved = true
[[alerting.receivers]]
name = "deadmansswitch"
"#
    )
}
