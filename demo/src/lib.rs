//! `didban demo`: a simulated shop (Django web service, checkout service, Celery worker,
//! PostgreSQL, Redis, hosts, serverless functions) that feeds a Didban over the real
//! protocols — OTLP/gRPC for traces, logs and metrics, Prometheus remote_write for scraped
//! metrics — so that every page has data within a minute. By default it starts a server
//! in-process (the same [`didban_collector::server::run_until`] as `didban serve`); with a target it
//! feeds one that already runs. What it generates is described in `docs/demo.md`.
//!
//! - [`catalog`]: the fixed data (SQL statements, routes, clients, hosts);
//! - [`web`], [`worker`], [`trace`], [`django`]: the services' traces, logs and metrics;
//! - [`hosts`], [`backends`]: host, PostgreSQL, Redis and Celery metrics as the agent
//!   sends them;
//! - [`serverless`]: function invocations with cold starts;
//! - [`send`]: delivery with retries; [`otlp`], [`rng`]: helpers;
//! - [`node`]: the one generator of node_exporter-like host metrics, which [`hosts`]
//!   drives for the demo's hosts and [`node::dataset`] for the benchmark's data set (N
//!   hosts with values that are the same for every receiver, used by `didban-bench`).

pub mod backends;
pub mod catalog;
pub mod django;
pub mod hosts;
pub mod node;
pub mod otlp;
pub mod rng;
pub mod send;
pub mod serverless;
pub mod trace;
pub mod web;
pub mod worker;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use didban_base::now_ms;
use tokio::sync::watch;

use didban_collector::config::Config;
use otlp::{kv, log, resource_logs, severity, Output};
use send::{Sender, Stopped};

/// Simulation step: traces and logs are generated and sent this often.
pub const STEP_MS: i64 = 5_000;
/// Metrics are sampled this often (the agent's default interval).
pub const METRIC_EVERY_MS: i64 = 10_000;
/// During the backfill, this many steps go into one round of requests.
const BACKFILL_STEPS_PER_SEND: u32 = 12;

/// Where the demo's data goes.
pub enum Target {
    /// Start a server in this process with this configuration.
    InProcess(Box<Config>),
    /// A Didban that already runs.
    Remote {
        /// Base URL of its HTTP API (`http://host:9480`), for remote_write and readiness.
        http: String,
        /// URL of its OTLP/gRPC receiver (`http://host:4317`).
        otlp_grpc: String,
    },
}

/// What `didban demo` was asked to do.
pub struct DemoOptions {
    /// Where to send.
    pub target: Target,
    /// Stop after this long (None: until Ctrl-C).
    pub duration: Option<Duration>,
    /// History to send at once, in time order, before going live.
    pub backfill: Duration,
    /// Traffic scale factor (1 = about 4 requests a second).
    pub rate: f64,
    /// Seed of the simulation (None: from the clock).
    pub seed: Option<u64>,
}

/// Runs the demo until `stop` turns true or the duration ends; then stops the in-process
/// server (if any) cleanly.
pub async fn run(opts: DemoOptions, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    if !(opts.rate > 0.0 && opts.rate.is_finite()) {
        anyhow::bail!("--rate must be a positive number, got {}", opts.rate);
    }
    // One stop signal for the feed: Ctrl-C or the end of --duration.
    let (feed_stop_tx, feed_stop) = watch::channel(false);
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let mut outer = stop.clone();
    let relay = tokio::spawn(async move {
        let timeout = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = didban_collector::shutdown::stopped(outer.clone()) => {},
            _ = timeout => {},
        }
        let _ = outer.borrow_and_update();
        let _ = feed_stop_tx.send(true);
    });
    let result = match opts.target {
        Target::Remote {
            ref http,
            ref otlp_grpc,
        } => {
            println!("didban demo: feeding the Didban at {http} (OTLP/gRPC {otlp_grpc})");
            feed(&opts, http, otlp_grpc, feed_stop, None).await
        }
        Target::InProcess(ref config) => {
            let config = (**config).clone();
            let http = format!("http://{}", connect_addr(config.http_addr));
            let otlp = format!("http://{}", connect_addr(config.otlp_grpc_addr));
            let info = format!(
                "  OTLP:  gRPC {}, HTTP {}\n  data:  {}",
                config.otlp_grpc_addr,
                config.otlp_http_addr,
                config.data_dir.display()
            );
            let (server_stop_tx, server_stop) = watch::channel(false);
            let mut server = tokio::spawn(didban_collector::server::run_until(config, server_stop));
            let fed = tokio::select! {
                r = feed(&opts, &http, &otlp, feed_stop, Some(info)) => Some(r),
                r = &mut server => {
                    relay.abort();
                    return match r {
                        Ok(Ok(())) => Err(anyhow::anyhow!("the in-process Didban server stopped unexpectedly")),
                        Ok(Err(e)) => Err(e.context("the in-process Didban server failed")),
                        Err(e) => Err(anyhow::anyhow!("the in-process Didban server panicked: {e}")),
                    };
                }
            };
            println!("didban demo: stopping the server…");
            let _ = server_stop_tx.send(true);
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.context("stopping the in-process Didban server")),
                Err(e) => anyhow::bail!("the in-process Didban server panicked: {e}"),
            }
            fed.unwrap_or(Ok(()))
        }
    };
    relay.abort();
    result
}

/// An address to connect to: a wildcard listen address becomes loopback.
fn connect_addr(a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        let ip = if a.is_ipv4() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        };
        SocketAddr::new(ip, a.port())
    } else {
        a
    }
}

/// The whole simulated world.
pub struct World {
    rng: rng::Rng,
    web: web::Web,
    backends: backends::Backends,
    faas: serverless::Serverless,
    rate: f64,
    query_texts_sent: bool,
}

impl World {
    /// A world whose counters start at `start_ms` and whose scheduled incidents are
    /// placed around `live_start_ms`.
    pub fn new(seed: u64, start_ms: i64, live_start_ms: i64, rate: f64) -> World {
        let mut rng = rng::Rng::new(seed);
        let backends = backends::Backends::new(&mut rng, start_ms as f64);
        World {
            rng,
            web: web::Web::new(live_start_ms as f64),
            backends,
            faas: serverless::Serverless::new(start_ms as f64),
            rate,
            query_texts_sent: false,
        }
    }

    /// Everything that happened in `[t0, t1)` (ms); metrics when `t1` is on the metric
    /// interval.
    pub fn step(&mut self, t0: i64, t1: i64) -> Output {
        let mut out = Output::default();
        let (a, b) = (t0 as f64, t1 as f64);
        self.web.tick(&mut self.rng, a, b, self.rate, &mut out);
        self.faas.tick(&mut self.rng, a, b, self.rate, &mut out);
        if t1.rem_euclid(METRIC_EVERY_MS) == 0 {
            self.web.scrape(&mut self.rng, t1, &mut out);
            let queues = self.web.queue_lengths(&mut self.rng, b);
            let load = web::wave(b);
            self.backends
                .collect(&mut self.rng, b, &self.web.activity, load, queues, &mut out.agent);
            self.faas.init_histograms(b, &mut out);
            if !self.query_texts_sent {
                self.query_texts_sent = true;
                out.logs.push(query_texts(b));
            }
        }
        out
    }
}

/// The statements' texts as the agent ships them once per run: log records of
/// `service.name=postgresql` keyed by `db.query.id`.
fn query_texts(t_ms: f64) -> opentelemetry_proto::tonic::logs::v1::ResourceLogs {
    let mut records = Vec::new();
    for (i, q) in catalog::QUERIES.iter().enumerate() {
        records.push(log(
            t_ms,
            severity::INFO,
            q.text,
            &[],
            &[],
            vec![
                kv("event.name", "pg_stat_statements.query"),
                kv("db.query.id", &catalog::query_id(i)),
                kv("db.namespace", "shop"),
                kv("db.user", "shop"),
            ],
        ));
    }
    resource_logs(
        vec![
            kv("service.name", "postgresql"),
            kv("host.name", catalog::DB_HOST),
        ],
        "didban-agent",
        records,
    )
}

/// Backfills, then feeds live until stopped. `banner` (in-process mode) is printed with
/// the UI address once the server is ready.
async fn feed(
    opts: &DemoOptions,
    http: &str,
    otlp: &str,
    stop: watch::Receiver<bool>,
    banner: Option<String>,
) -> anyhow::Result<()> {
    let mut sender = Sender::new(http, otlp, stop)?;
    let patience = if banner.is_some() {
        Duration::from_secs(5)
    } else {
        Duration::ZERO
    };
    if sender.wait_ready(patience).await.is_err() {
        println!("didban demo: stopped before Didban answered; nothing was sent");
        return Ok(());
    }
    println!("didban demo: Didban is ready");
    println!("  UI:    {http}/");
    if let Some(b) = banner {
        println!("{b}");
    }
    let live_start = now_ms();
    // The store refuses samples older than its newest minus `max_sample_age` (6h by
    // default); keep two minutes clear of that edge, since the clock moves during the send.
    let backfill_ms = i64::try_from(opts.backfill.as_millis())
        .unwrap_or(i64::MAX / 4)
        .min(6 * 3_600_000 - 120_000);
    let mut start = align(live_start - backfill_ms);
    if let Some(newest) = sender.newest_demo_sample(start, live_start).await {
        if newest >= start {
            start = align(newest) + METRIC_EVERY_MS;
            println!(
                "didban demo: earlier demo data found up to {}; continuing after it",
                rfc3339(newest)
            );
        }
    }
    let seed = opts.seed.unwrap_or(live_start as u64);
    let mut world = World::new(seed, start, live_start, opts.rate);
    sender.counters_start_ms = start;
    let mut t = start;
    let began = Instant::now();
    if t + STEP_MS <= now_ms() {
        println!(
            "didban demo: sending {} of history…",
            human(Duration::from_millis(u64::try_from(now_ms() - t).unwrap_or(0)))
        );
    }
    let mut batch = Output::default();
    let mut unsent_steps = 0u32;
    let result: Result<(), Stopped> = async {
        while t + STEP_MS <= now_ms() {
            batch.append(world.step(t, t + STEP_MS));
            t += STEP_MS;
            unsent_steps += 1;
            if unsent_steps == BACKFILL_STEPS_PER_SEND {
                unsent_steps = 0;
                sender.send(std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            sender.send(std::mem::take(&mut batch)).await?;
        }
        let tt = sender.totals;
        println!(
            "didban demo: history sent in {:.1} s ({} spans, {} log records, {} samples); now live, new data every {} s. Stop with Ctrl-C.",
            began.elapsed().as_secs_f64(),
            tt.spans,
            tt.logs,
            tt.samples,
            STEP_MS / 1000
        );
        loop {
            let wait = t + STEP_MS - now_ms();
            if wait > 0 {
                sender
                    .sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
                    .await?;
            }
            let out = world.step(t, t + STEP_MS);
            t += STEP_MS;
            sender.send(out).await?;
        }
    }
    .await;
    let _ = result;
    let tt = sender.totals;
    println!(
        "didban demo: stopped after sending {} spans, {} log records and {} samples in {} requests",
        tt.spans, tt.logs, tt.samples, tt.requests
    );
    Ok(())
}

/// Rounds down to the metric interval.
fn align(ms: i64) -> i64 {
    ms - ms.rem_euclid(METRIC_EVERY_MS)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_of_simulation_has_every_kind_of_data() {
        let start = 1_800_000_000_000;
        let mut w = World::new(5, start, start + 3_600_000, 1.0);
        let mut all = Output::default();
        let mut t = start;
        while t < start + 3_600_000 {
            all.append(w.step(t, t + STEP_MS));
            t += STEP_MS;
        }
        // About 4 requests a second, several spans each.
        assert!(all.span_count() > 40_000, "{} spans", all.span_count());
        assert!(all.log_count() > 10_000, "{} log records", all.log_count());
        let names: std::collections::BTreeSet<&str> = all.agent.iter().map(|s| s.name.as_str()).collect();
        for want in [
            "node_cpu_seconds_total",
            "pg_stat_database_blks_hit",
            "redis_keyspace_hits_total",
            "celery_queue_length",
            "pg_stat_statements_query_info",
        ] {
            assert!(names.contains(want), "{want} missing");
        }
        // The statement catalogue names every statement, text at most 240 characters.
        let texts: std::collections::BTreeSet<&str> = all
            .agent
            .iter()
            .filter(|s| s.name == "pg_stat_statements_query_info")
            .filter_map(|s| s.label("query"))
            .collect();
        assert_eq!(texts.len(), catalog::QUERIES.len());
        assert!(texts.iter().all(|q| q.chars().count() <= 240));
        let mut errors = 0;
        let mut servers = 0;
        for rs in &all.spans {
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    if s.kind == 2 {
                        servers += 1;
                        if s.status.as_ref().is_some_and(|st| st.code == 2) {
                            errors += 1;
                        }
                    }
                }
            }
        }
        let share = f64::from(errors) / f64::from(servers);
        assert!((0.003..0.03).contains(&share), "error share {share}");
    }

    #[test]
    fn the_sales_report_is_the_slow_statement() {
        let mut rng = rng::Rng::new(1);
        let mut act = trace::Activity::new();
        let mut t = trace::Trace::new(&mut rng, 0.0);
        let ms = t.db(
            &mut rng,
            &mut act,
            trace::Svc::Worker,
            &[1; 8],
            catalog::q::SALES_REPORT,
            0.0,
        );
        assert!(ms > trace::SLOW_QUERY_MS, "{ms}");
        assert_eq!(t.logs.len(), 1, "a slow statement logs a WARN record");
        assert_eq!(align(12_345), 10_000);
    }
}
