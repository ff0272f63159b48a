//! Composition: builds the collectors from the config, runs each on its interval in its own
//! task, feeds the exporter, and reports the agent's own health as `didban_agent_*` metrics.
//! `didban serve` embeds the agent through [`Agent::start`] as well.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::collectors::celery::CeleryEventsCollector;
use crate::collectors::host::{system_host_name, HostCollector};
use crate::collectors::nginx::NginxCollector;
use crate::collectors::pgbouncer::PgbouncerCollector;
use crate::collectors::postgres::PostgresCollector;
use crate::collectors::probe::ProbeCollector;
use crate::collectors::rabbitmq::RabbitmqCollector;
use crate::collectors::redis::RedisCollector;
use crate::collectors::scrape::ScrapeCollector;
use crate::collectors::statsd::StatsdCollector;
use crate::collectors::Collector;
use crate::config::Config;
use crate::error::{AgentError, CollectError};
use crate::export::encode::ResourceInfo;
use crate::export::{ExportSnapshot, Exporter, OtlpSink, SampleSink};
use crate::logs::LogTailer;
use crate::model::Sample;
use crate::receiver::LocalReceiver;
use didban_base::now_ms;

#[derive(Debug, Default, Clone)]
struct CollectorStats {
    runs: u64,
    errors: u64,
    last_duration: f64,
    last_ok: bool,
    samples: u64,
}

type StatsMap = Arc<Mutex<BTreeMap<String, CollectorStats>>>;

/// A running agent.
pub struct Agent {
    exporter: Exporter,
    receiver: Option<LocalReceiver>,
    logs: Option<LogTailer>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The host name the agent reports: `agent.hostname` or the system's.
pub fn host_name(config: &Config) -> String {
    if config.agent.hostname.is_empty() {
        system_host_name()
    } else {
        config.agent.hostname.clone()
    }
}

/// A collector and the interval it runs at.
pub type Scheduled = (Box<dyn Collector>, Duration);

/// Builds every configured collector with its interval.
pub fn build_collectors(config: &Config) -> Result<Vec<Scheduled>, AgentError> {
    build_collectors_with(config, None)
}

/// Like [`build_collectors`]; with a sink, collectors that produce log records (PostgreSQL
/// statement texts) ship them there.
pub fn build_collectors_with(config: &Config, logs: Option<OtlpSink>) -> Result<Vec<Scheduled>, AgentError> {
    let default = config.agent.interval;
    let mut out: Vec<Scheduled> = Vec::new();
    if config.host.enabled {
        let host = HostCollector::new(&config.host).map_err(|source| AgentError::Collector {
            name: "host".into(),
            source,
        })?;
        out.push((Box::new(host), config.host.interval.unwrap_or(default)));
    }
    for job in &config.scrape {
        for target in &job.targets {
            out.push((
                Box::new(ScrapeCollector::new(job, target)),
                job.interval.unwrap_or(default),
            ));
        }
    }
    for r in &config.redis {
        let c = RedisCollector::new(r).map_err(|source| AgentError::Collector {
            name: "redis".into(),
            source,
        })?;
        out.push((Box::new(c), r.interval.unwrap_or(default)));
        if r.celery_events {
            let c = CeleryEventsCollector::new(r).map_err(|source| AgentError::Collector {
                name: "celery".into(),
                source,
            })?;
            out.push((Box::new(c), r.interval.unwrap_or(default)));
        }
    }
    for p in &config.postgres {
        let mut c = PostgresCollector::new(p);
        if let Some(sink) = &logs {
            c = c.with_query_log(sink.clone(), &host_name(config));
        }
        out.push((Box::new(c), p.interval.unwrap_or(default)));
    }
    for r in &config.rabbitmq {
        out.push((Box::new(RabbitmqCollector::new(r)), r.interval.unwrap_or(default)));
        if r.celery_events && !r.amqp_url.is_empty() {
            let c = CeleryEventsCollector::amqp(r).map_err(|source| AgentError::Collector {
                name: "celery".into(),
                source,
            })?;
            out.push((Box::new(c), r.interval.unwrap_or(default)));
        }
    }
    for n in &config.nginx {
        out.push((Box::new(NginxCollector::new(n)), n.interval.unwrap_or(default)));
    }
    for b in &config.pgbouncer {
        out.push((
            Box::new(PgbouncerCollector::new(b)),
            b.interval.unwrap_or(default),
        ));
    }
    if config.statsd.enabled {
        let c = StatsdCollector::bind(&config.statsd).map_err(|source| AgentError::Collector {
            name: "statsd".into(),
            source,
        })?;
        out.push((Box::new(c), config.statsd.interval.unwrap_or(default)));
    }
    for p in &config.probe {
        let c = ProbeCollector::new(p).map_err(|source| AgentError::Collector {
            name: "probe".into(),
            source,
        })?;
        out.push((Box::new(c), p.interval.unwrap_or(default)));
    }
    Ok(out)
}

impl Agent {
    /// Starts the exporter and every collector of `config`.
    pub fn start(config: &Config) -> Result<Agent, AgentError> {
        // Fail on a bad collector config before anything starts.
        drop(build_collectors(config)?);
        let host = host_name(config);
        let resource = ResourceInfo {
            service_name: "didban-agent".to_string(),
            host_name: host.clone(),
        };
        let exporter = Exporter::start(&config.export, &config.agent.data_dir.join("buffer"), resource)?;
        let receiver = if config.receiver.enabled {
            Some(LocalReceiver::start(
                &config.receiver,
                exporter.otlp_sink(),
                host.clone(),
            ))
        } else {
            None
        };
        let logs = if config.logs.is_empty() {
            None
        } else {
            Some(LogTailer::start(
                &config.logs,
                &config.agent.data_dir,
                &host,
                exporter.otlp_sink(),
            ))
        };
        let collectors = build_collectors_with(config, Some(exporter.otlp_sink()))?;
        let (stop, stop_rx) = watch::channel(false);
        let stats: StatsMap = Arc::default();
        let mut tasks = Vec::new();
        for (collector, interval) in collectors {
            tracing::info!(collector = %collector.name(), ?interval, "collector started");
            tasks.push(tokio::spawn(run_collector(
                collector,
                interval,
                exporter.sink(),
                stats.clone(),
                stop_rx.clone(),
            )));
        }
        let agent = Agent {
            exporter,
            receiver,
            logs,
            stop,
            tasks,
        };
        Ok(agent.with_self_metrics(stats, config.agent.interval, stop_rx))
    }

    fn with_self_metrics(
        mut self,
        stats: StatsMap,
        interval: Duration,
        stop: watch::Receiver<bool>,
    ) -> Agent {
        let sink = self.exporter.sink();
        let snapshot = self.exporter.snapshot_fn();
        self.tasks.push(tokio::spawn(run_self_metrics(
            stats, sink, snapshot, interval, stop,
        )));
        self
    }

    /// Where the local OTLP receivers listen (gRPC, HTTP), if they run.
    pub fn receiver_addrs(&self) -> (Option<std::net::SocketAddr>, Option<std::net::SocketAddr>) {
        match &self.receiver {
            Some(r) => (r.grpc_addr, r.http_addr),
            None => (None, None),
        }
    }

    /// Buffer state and export counters.
    pub fn export_snapshot(&self) -> ExportSnapshot {
        self.exporter.snapshot()
    }

    /// Stops the collectors, flushes what they produced to the disk buffer and stops the
    /// exporter; unsent data is sent by the next start.
    pub async fn shutdown(self) {
        if let Some(r) = self.receiver {
            r.shutdown().await;
        }
        if let Some(l) = self.logs {
            l.shutdown().await;
        }
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        tracing::debug!("collectors stopped");
        self.exporter.shutdown().await;
        tracing::debug!("exporter stopped");
    }
}

async fn run_collector(
    mut collector: Box<dyn Collector>,
    interval: Duration,
    sink: SampleSink,
    stats: StatsMap,
    mut stop: watch::Receiver<bool>,
) {
    let name = collector.name();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let started = Instant::now();
        // A collection may not outlive its interval; the next tick starts a fresh one.
        let result = match tokio::time::timeout(interval, collector.collect()).await {
            Ok(r) => r,
            Err(_) => Err(CollectError::Timeout(interval)),
        };
        let elapsed = started.elapsed().as_secs_f64();
        let (ok, samples) = match result {
            Ok(samples) => {
                if last_error.take().is_some() {
                    tracing::info!(collector = %name, "collector recovered");
                }
                (true, samples)
            }
            Err(e) => {
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(collector = %name, error = %text, "collection failed; retrying next interval");
                }
                last_error = Some(text);
                (false, Vec::new())
            }
        };
        {
            let mut map = match stats.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            let entry = map.entry(name.clone()).or_default();
            entry.runs += 1;
            entry.last_duration = elapsed;
            entry.last_ok = ok;
            entry.samples = samples.len() as u64;
            if !ok {
                entry.errors += 1;
            }
        }
        if !samples.is_empty() && !sink.send(samples).await {
            return;
        }
    }
}

async fn run_self_metrics(
    stats: StatsMap,
    sink: SampleSink,
    snapshot: impl Fn() -> ExportSnapshot + Send + 'static,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // First report after one interval, when every collector has run once.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let now = now_ms();
        let mut out = Vec::new();
        let map = match stats.lock() {
            Ok(m) => m.clone(),
            Err(p) => p.into_inner().clone(),
        };
        for (name, s) in &map {
            let l = [("collector", name.as_str())];
            out.push(Sample::gauge(
                "didban_agent_collector_up",
                &l,
                if s.last_ok { 1.0 } else { 0.0 },
                now,
            ));
            out.push(Sample::gauge(
                "didban_agent_collector_duration_seconds",
                &l,
                s.last_duration,
                now,
            ));
            out.push(Sample::gauge(
                "didban_agent_collector_samples",
                &l,
                s.samples as f64,
                now,
            ));
            out.push(Sample::counter(
                "didban_agent_collector_runs_total",
                &l,
                s.runs as f64,
                now,
            ));
            out.push(Sample::counter(
                "didban_agent_collector_errors_total",
                &l,
                s.errors as f64,
                now,
            ));
        }
        out.extend(crate::export::self_metrics::samples(&snapshot(), now));
        if let Some(rss) = own_rss_bytes() {
            out.push(Sample::gauge("didban_agent_resident_memory_bytes", &[], rss, now));
        }
        if !sink.send(out).await {
            return;
        }
    }
}

fn own_rss_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as f64)
}
