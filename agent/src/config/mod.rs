//! The agent's TOML configuration. Every key has a default, documented in `docs/agent.md` and
//! `agent/agent.example.toml`; an empty file (or no file) collects host metrics and sends them
//! to `http://localhost:4317` over OTLP gRPC.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

mod de;
mod sections;
use de::{de_bytes, de_bytes_usize, de_duration};
pub use sections::*;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Settings that apply to the whole agent.
    pub agent: AgentSection,
    /// Where and how metrics are shipped.
    pub export: ExportConfig,
    /// The host collector.
    pub host: HostConfig,
    /// Prometheus scrape jobs (`[[scrape]]`).
    pub scrape: Vec<ScrapeConfig>,
    /// Redis instances to watch (`[[redis]]`).
    pub redis: Vec<RedisConfig>,
    /// PostgreSQL servers to watch (`[[postgres]]`).
    pub postgres: Vec<PostgresConfig>,
    /// Health checks (`[[probe]]`).
    pub probe: Vec<ProbeConfig>,
    /// The StatsD listener.
    pub statsd: StatsdConfig,
    /// RabbitMQ management endpoints (`[[rabbitmq]]`).
    pub rabbitmq: Vec<RabbitmqConfig>,
    /// The local OTLP receiver.
    pub receiver: ReceiverConfig,
    /// Log files to tail (`[[logs]]`).
    pub logs: Vec<LogsConfig>,
    /// nginx `stub_status` pages (`[[nginx]]`).
    pub nginx: Vec<NginxConfig>,
    /// PgBouncer admin consoles (`[[pgbouncer]]`).
    pub pgbouncer: Vec<PgbouncerConfig>,
}

/// `[agent]`: identity, data directory and the default collection interval.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSection {
    /// Where the on-disk export buffer lives.
    pub data_dir: PathBuf,
    /// Host name reported as `host.name` / `instance`; empty means the system's host name.
    pub hostname: String,
    /// Default collection interval for every collector that sets none.
    #[serde(deserialize_with = "de_duration")]
    pub interval: Duration,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            data_dir: PathBuf::from("./didban-agent-data"),
            hostname: String::new(),
            interval: Duration::from_secs(10),
        }
    }
}

/// Transport used to ship OTLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OTLP/gRPC (`MetricsService/Export`).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`POST <endpoint>/v1/metrics`).
    Http,
}

/// `[export]`: the OTLP exporter, its batching, retries and on-disk buffer.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Collector URL. For `http` the path `/v1/metrics` is appended unless already there.
    pub endpoint: String,
    /// `grpc` or `http`.
    pub protocol: Protocol,
    /// Sent as `authorization: Bearer <token>` when not empty.
    pub bearer_token: String,
    /// PEM file of extra CAs trusted for an `https://` endpoint (besides the system's).
    pub tls_ca_file: String,
    /// Client certificate (PEM) presented to a collector that requires one (mTLS); set
    /// together with `tls_key_file`.
    pub tls_cert_file: String,
    /// Private key (PEM) of `tls_cert_file`.
    pub tls_key_file: String,
    /// Compress request bodies with gzip.
    pub gzip: bool,
    /// Timeout of one export request.
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// A batch is written to the buffer once it holds this many samples...
    pub batch_max_samples: usize,
    /// ...and no buffered request (metrics, logs, forwarded traces) is larger than this many
    /// bytes: bigger ones are cut in two by bytes until they fit (a single bigger item is
    /// kept whole). Below the collector's `limits.max_request_body` (20 MiB by default) and
    /// the 4 MiB that gRPC servers accept by default.
    #[serde(deserialize_with = "de_bytes_usize")]
    pub batch_max_bytes: usize,
    /// ...or when it is this old.
    #[serde(deserialize_with = "de_duration")]
    pub flush_interval: Duration,
    /// First wait after a retryable failure; doubles up to `retry_max_backoff`.
    #[serde(deserialize_with = "de_duration")]
    pub retry_initial_backoff: Duration,
    /// Longest wait between retries of the agent's own backoff.
    #[serde(deserialize_with = "de_duration")]
    pub retry_max_backoff: Duration,
    /// Longest wait a server's `Retry-After` can impose (a longer one is cut to this).
    #[serde(deserialize_with = "de_duration")]
    pub retry_after_max: Duration,
    /// Upper bound of the on-disk buffer; past it the oldest segment is dropped and counted.
    #[serde(deserialize_with = "de_bytes")]
    pub buffer_max_bytes: u64,
    /// Size at which a buffer segment file is closed and a new one started.
    #[serde(deserialize_with = "de_bytes")]
    pub buffer_segment_bytes: u64,
    /// Extra OTLP resource attributes on everything sent (`deployment.environment = "prod"`);
    /// they land in `target_info`. `didban serve`'s built-in host collector marks itself with
    /// `didban.host_collector = "in-process"` here.
    pub resource_attributes: std::collections::BTreeMap<String, String>,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            endpoint: "http://localhost:4317".to_string(),
            protocol: Protocol::Grpc,
            bearer_token: String::new(),
            tls_ca_file: String::new(),
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            gzip: false,
            timeout: Duration::from_secs(10),
            batch_max_samples: 5000,
            batch_max_bytes: 2 * 1024 * 1024,
            flush_interval: Duration::from_secs(5),
            retry_initial_backoff: Duration::from_secs(1),
            retry_max_backoff: Duration::from_secs(60),
            retry_after_max: Duration::from_secs(300),
            buffer_max_bytes: 256 * 1024 * 1024,
            buffer_segment_bytes: 8 * 1024 * 1024,
            resource_attributes: std::collections::BTreeMap::new(),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        Config::parse(&text)
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, why: &str| ConfigError::Invalid {
            key: key.to_string(),
            why: why.to_string(),
        };
        if self.export.batch_max_samples == 0 {
            return Err(invalid("export.batch_max_samples", "must be at least 1"));
        }
        if self.export.batch_max_bytes < 1024
            || self.export.batch_max_bytes > crate::export::buffer::MAX_RECORD_BYTES
        {
            return Err(invalid(
                "export.batch_max_bytes",
                "must be between 1KiB and 64MiB",
            ));
        }
        for (key, value) in [
            ("export.retry_initial_backoff", self.export.retry_initial_backoff),
            ("export.retry_max_backoff", self.export.retry_max_backoff),
            ("export.retry_after_max", self.export.retry_after_max),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be more than 0"));
            }
        }
        if self.export.buffer_segment_bytes < 4096 {
            return Err(invalid("export.buffer_segment_bytes", "must be at least 4096"));
        }
        if self.export.buffer_max_bytes < 2 * self.export.buffer_segment_bytes {
            return Err(invalid(
                "export.buffer_max_bytes",
                "must be at least twice buffer_segment_bytes",
            ));
        }
        if self.export.tls_cert_file.is_empty() != self.export.tls_key_file.is_empty() {
            return Err(invalid(
                "export.tls_cert_file",
                "tls_cert_file and tls_key_file go together",
            ));
        }
        if !self.export.endpoint.starts_with("http://") && !self.export.endpoint.starts_with("https://") {
            return Err(invalid("export.endpoint", "must start with http:// or https://"));
        }
        if self.agent.interval.is_zero() {
            return Err(invalid("agent.interval", "must be more than 0"));
        }
        for s in &self.scrape {
            if s.scheme != "http" && s.scheme != "https" {
                return Err(invalid("scrape.scheme", "must be \"http\" or \"https\""));
            }
            if s.job.is_empty() {
                return Err(invalid("scrape.job", "must not be empty"));
            }
        }
        for regex in [
            (
                "host.filesystem_exclude_fstypes",
                &self.host.filesystem_exclude_fstypes,
            ),
            (
                "host.filesystem_exclude_mountpoints",
                &self.host.filesystem_exclude_mountpoints,
            ),
            ("host.disk_exclude_devices", &self.host.disk_exclude_devices),
            ("host.network_exclude_devices", &self.host.network_exclude_devices),
        ] {
            if let Err(e) = regex::Regex::new(regex.1) {
                return Err(invalid(regex.0, &e.to_string()));
            }
        }
        if self.receiver.enabled {
            let target = self
                .export
                .endpoint
                .trim_start_matches("http://")
                .trim_end_matches('/');
            let target = target.replace("localhost", "127.0.0.1");
            for listen in [&self.receiver.grpc_listen, &self.receiver.http_listen] {
                let listen = listen
                    .replace("localhost", "127.0.0.1")
                    .replace("0.0.0.0", "127.0.0.1");
                if !listen.is_empty() && target.starts_with(&listen) {
                    return Err(invalid(
                        "receiver",
                        "listens on the export endpoint: the agent would send to itself; point export.endpoint at the collector or change the receiver address",
                    ));
                }
            }
        }
        for l in &self.logs {
            if l.paths.is_empty() {
                return Err(invalid("logs.paths", "must list at least one glob"));
            }
            for p in l.paths.iter().chain(l.exclude.iter()) {
                if let Err(e) = glob::Pattern::new(p) {
                    return Err(invalid("logs.paths", &format!("{p:?}: {e}")));
                }
            }
            if let Err(e) = regex::Regex::new(&l.multiline_start) {
                return Err(invalid("logs.multiline_start", &e.to_string()));
            }
            if l.format == LogFormat::Nginx {
                if let Err(e) = crate::logs::parse::nginx_format::NginxFormat::compile(&l.log_format) {
                    return Err(invalid("logs.log_format", &e.to_string()));
                }
            }
            if let Err(e) = chrono::format::StrftimeItems::new(&l.timestamp_format).parse() {
                return Err(invalid(
                    "logs.timestamp_format",
                    &format!("{:?}: {e}", l.timestamp_format),
                ));
            }
            if l.multiline_max_lines == 0 {
                return Err(invalid("logs.multiline_max_lines", "must be at least 1"));
            }
            if l.poll_interval.is_zero() {
                return Err(invalid("logs.poll_interval", "must be more than 0"));
            }
        }
        for r in &self.rabbitmq {
            if !r.url.starts_with("http://") && !r.url.starts_with("https://") {
                return Err(invalid("rabbitmq.url", "must start with http:// or https://"));
            }
            let amqp = &r.amqp_url;
            if !amqp.is_empty() && !amqp.starts_with("amqp://") && !amqp.starts_with("amqps://") {
                // The scheme only: the rest may hold a password.
                let scheme = amqp.split_once("://").map_or("(none)", |(s, _)| s);
                return Err(invalid(
                    "rabbitmq.amqp_url",
                    &format!("scheme {scheme:?} is not amqp:// or amqps:// (Celery events on Redis come from [[redis]])"),
                ));
            }
        }
        for q in &self.statsd.percentiles {
            if !(*q > 0.0 && *q <= 1.0) {
                return Err(invalid("statsd.percentiles", "each must be in (0, 1]"));
            }
        }
        for p in &self.probe {
            let schemes = ["http://", "https://", "tcp://"];
            if !schemes.iter().any(|s| p.target.starts_with(s)) {
                return Err(invalid(
                    "probe.target",
                    "must start with http://, https:// or tcp://",
                ));
            }
            if let Err(e) = regex::Regex::new(&p.body_match) {
                return Err(invalid("probe.body_match", &e.to_string()));
            }
        }
        for n in &self.nginx {
            if !n.url.starts_with("http://") && !n.url.starts_with("https://") {
                return Err(invalid(
                    "nginx.url",
                    &format!("{:?} must start with http:// or https://", n.url),
                ));
            }
        }
        for b in &self.pgbouncer {
            if let Err(e) = b.dsn.parse::<tokio_postgres::Config>() {
                return Err(invalid("pgbouncer.dsn", &format!("{e}")));
            }
        }
        for g in &self.host.process_groups {
            if let Err(e) = regex::Regex::new(&g.pattern) {
                return Err(invalid("host.process_groups.pattern", &e.to_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_config_means_host_metrics_to_localhost_grpc() {
        let c = Config::parse("").unwrap();
        assert!(c.host.enabled);
        assert_eq!(c.export.endpoint, "http://localhost:4317");
        assert_eq!(c.export.protocol, Protocol::Grpc);
        assert!(c.scrape.is_empty() && c.redis.is_empty() && c.postgres.is_empty());
        assert_eq!(c.agent.interval, Duration::from_secs(10));
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../agent.example.toml");
        let c = Config::parse(text).unwrap();
        assert_eq!(c.export.buffer_max_bytes, 256 * 1024 * 1024);
        assert_eq!(c.export.batch_max_bytes, 2 * 1024 * 1024);
        assert_eq!(c.export.retry_after_max, Duration::from_secs(300));
    }

    #[test]
    fn full_config() {
        let c = Config::parse(
            r#"
            [agent]
            interval = "15s"
            [export]
            protocol = "http"
            endpoint = "http://collector:4318"
            buffer_max_bytes = "64MiB"
            buffer_segment_bytes = "1MiB"
            [[host.process_groups]]
            name = "gunicorn"
            pattern = "gunicorn"
            [[scrape]]
            job = "django"
            targets = ["localhost:8000"]
            [[redis]]
            url = "redis://localhost:6379/0"
            celery_queues = ["celery"]
            [[postgres]]
            dsn = "host=localhost user=postgres"
            "#,
        )
        .unwrap();
        assert_eq!(c.export.protocol, Protocol::Http);
        assert_eq!(c.scrape[0].metrics_path, "/metrics");
        assert_eq!(c.redis[0].celery_priority_steps, vec![0, 3, 6, 9]);
        assert_eq!(c.postgres[0].slow_queries_top_n, 20);
        assert_eq!(c.host.process_groups[0].name, "gunicorn");
    }

    #[test]
    fn a_rabbitmq_amqp_url_must_be_amqp_and_is_never_echoed() {
        let c = Config::parse("[[rabbitmq]]\namqp_url = \"amqps://u:p@mq:5671/shop\"").unwrap();
        assert_eq!(c.rabbitmq[0].celery_event_exchange, "celeryev");
        assert!(c.rabbitmq[0].celery_events);
        let e = Config::parse("[[rabbitmq]]\namqp_url = \"redis://u:hunter2@mq/0\"").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("rabbitmq.amqp_url") && text.contains("\"redis\""),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::parse("[export]\nendpoint = \"localhost:4317\"").unwrap_err();
        assert!(e.to_string().contains("export.endpoint"), "{e}");
        assert!(Config::parse("[export]\nendpoint = \"https://c:4317\"").is_ok());
        let e = Config::parse("[export]\ntls_cert_file = \"/agent.pem\"").unwrap_err();
        assert!(e.to_string().contains("tls_key_file"), "{e}");
        let e = Config::parse("[receiver]\nenabled = true").unwrap_err();
        assert!(e.to_string().contains("send to itself"), "{e}");
        let e = Config::parse("[export]\nretry_after_max = \"0s\"").unwrap_err();
        assert!(e.to_string().contains("export.retry_after_max"), "{e}");
        let e = Config::parse("[export]\nbatch_max_bytes = \"100B\"").unwrap_err();
        assert!(e.to_string().contains("export.batch_max_bytes"), "{e}");
        let e = Config::parse("[agent]\nintervall = \"1s\"").unwrap_err();
        assert!(e.to_string().contains("intervall"), "{e}");
        let e = Config::parse("[agent]\ninterval = \"1x\"").unwrap_err();
        assert!(e.to_string().contains("unknown unit"), "{e}");
    }

    #[test]
    fn nginx_and_pgbouncer_sections() {
        let c = Config::parse(
            r#"
            [[nginx]]
            url = "http://127.0.0.1:8080/stub_status"
            [[pgbouncer]]
            dsn = "postgres://stats@127.0.0.1:6432/pgbouncer"
            interval = "30s"
            "#,
        )
        .unwrap();
        assert_eq!(c.nginx[0].timeout, Duration::from_secs(5));
        assert_eq!(c.pgbouncer[0].interval, Some(Duration::from_secs(30)));
        let e = Config::parse("[[nginx]]\nurl = \"127.0.0.1:8080/stub_status\"").unwrap_err();
        assert!(e.to_string().contains("nginx.url"), "{e}");
        let e = Config::parse("[[pgbouncer]]\ndsn = \"postgres://h:notaport/pgbouncer\"").unwrap_err();
        assert!(e.to_string().contains("pgbouncer.dsn"), "{e}");
    }
}
