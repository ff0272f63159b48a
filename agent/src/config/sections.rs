//! The collector and receiver sections of the config (`[host]`, `[[scrape]]`, `[[redis]]`,
//! `[[postgres]]`, `[[probe]]`, `[[rabbitmq]]`, `[statsd]`, `[receiver]`, `[[logs]]`, `[[nginx]]`,
//! `[[pgbouncer]]`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::de::{de_bytes_usize, de_duration, de_opt_duration};

/// `[host]`: CPU, memory, filesystems, disks, network, processes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Collect host metrics at all.
    pub enabled: bool,
    /// Overrides `agent.interval`.
    #[serde(deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    /// Root of the proc filesystem.
    pub proc_path: PathBuf,
    /// Filesystem types (regex, whole match) left out of `node_filesystem_*`.
    pub filesystem_exclude_fstypes: String,
    /// Mount points (regex) left out of `node_filesystem_*`.
    pub filesystem_exclude_mountpoints: String,
    /// Block devices (regex, whole match) left out of `node_disk_*`.
    pub disk_exclude_devices: String,
    /// Network interfaces (regex, whole match) left out of `node_network_*`; empty = none.
    pub network_exclude_devices: String,
    /// Process groups reported as `namedprocess_namegroup_*`.
    pub process_groups: Vec<ProcessGroupConfig>,
}

/// Default of `host.filesystem_exclude_fstypes` (node_exporter's list).
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs";
/// Default of `host.filesystem_exclude_mountpoints` (node_exporter's list).
pub const DEFAULT_MOUNTPOINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// Default of `host.disk_exclude_devices`: partitions, loop and RAM devices (node_exporter's).
pub const DEFAULT_DISK_EXCLUDE: &str = "(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+";

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            enabled: true,
            interval: None,
            proc_path: PathBuf::from("/proc"),
            filesystem_exclude_fstypes: DEFAULT_FS_TYPES_EXCLUDE.to_string(),
            filesystem_exclude_mountpoints: DEFAULT_MOUNTPOINTS_EXCLUDE.to_string(),
            disk_exclude_devices: DEFAULT_DISK_EXCLUDE.to_string(),
            network_exclude_devices: String::new(),
            process_groups: Vec::new(),
        }
    }
}

/// `[[host.process_groups]]`: processes whose name or command line matches `pattern`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessGroupConfig {
    /// The `groupname` label.
    pub name: String,
    /// Regex matched against the process name and its full command line.
    pub pattern: String,
}

/// `[[scrape]]`: one Prometheus scrape job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The `job` label.
    pub job: String,
    /// `host:port` of each target; becomes the `instance` label.
    pub targets: Vec<String>,
    /// Path of the metrics page.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// `http` or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// PEM file of extra CAs trusted for https targets.
    #[serde(default)]
    pub tls_ca_file: String,
    /// Overrides `agent.interval`.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    /// Timeout of one scrape.
    #[serde(default = "default_scrape_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Classic histograms (`# TYPE histogram` families) are sent whole and stored as
    /// native histograms with custom buckets (one series) instead of `_bucket`, `_sum` and
    /// `_count` series, as Prometheus' scrape option of the same name does.
    #[serde(default)]
    pub convert_classic_histograms_to_nhcb: bool,
}

fn default_metrics_path() -> String {
    "/metrics".to_string()
}
fn default_scheme() -> String {
    "http".to_string()
}
fn default_scrape_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[[redis]]`: a Redis server, its keyspace and Celery queues.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port/db`, or `rediss://…` for TLS.
    pub url: String,
    /// PEM file of a CA trusted for `rediss://` (besides the system's).
    #[serde(default)]
    pub tls_ca_file: String,
    /// Overrides `agent.interval`.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    /// Celery queue names reported as `celery_queue_length{queue_name, priority}` besides
    /// the queues discovered from kombu's bindings.
    #[serde(default)]
    pub celery_queues: Vec<String>,
    /// Discover the queues from kombu's binding sets (`_kombu.binding.<exchange>`).
    #[serde(default = "default_celery_on")]
    pub celery_discover_queues: bool,
    /// kombu's `global_keyprefix` transport option, if the app sets one.
    #[serde(default)]
    pub celery_key_prefix: String,
    /// kombu's `priority_steps` (0 is the bare queue name); each is reported, 0 if empty.
    #[serde(default = "default_priority_steps")]
    pub celery_priority_steps: Vec<u32>,
    /// kombu's `sep` between a queue name and its priority step.
    #[serde(default = "default_priority_separator")]
    pub celery_priority_separator: String,
    /// Subscribe to Celery's event stream on this server (workers started with `-E`).
    #[serde(default = "default_celery_on")]
    pub celery_events: bool,
    /// Celery's `event_exchange` setting.
    #[serde(default = "default_event_exchange")]
    pub celery_event_exchange: String,
    /// kombu's `fanout_prefix`: `{db}` is replaced by the database number; empty when the
    /// app sets `fanout_prefix = False`.
    #[serde(default = "default_fanout_prefix")]
    pub celery_fanout_prefix: String,
    /// Most task names with their own series; the rest are counted as `name="other"`.
    #[serde(default = "default_max_task_names")]
    pub celery_max_task_names: usize,
    /// How long a worker that stopped (said goodbye or went silent) is still reported as
    /// `celery_worker_up 0` before its series are dropped.
    #[serde(default = "default_worker_forget_after", deserialize_with = "de_duration")]
    pub celery_worker_forget_after: Duration,
    /// Plain list keys reported as `redis_key_size{db,key}`.
    #[serde(default)]
    pub list_keys: Vec<String>,
    /// Timeout of connecting and of each command.
    #[serde(default = "default_scrape_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
}

fn default_priority_steps() -> Vec<u32> {
    vec![0, 3, 6, 9]
}

fn default_celery_on() -> bool {
    true
}

fn default_priority_separator() -> String {
    "\x06\x16".to_string()
}

fn default_event_exchange() -> String {
    "celeryev".to_string()
}

fn default_fanout_prefix() -> String {
    "/{db}.".to_string()
}

fn default_max_task_names() -> usize {
    100
}

fn default_worker_forget_after() -> Duration {
    Duration::from_secs(600)
}

/// `[[postgres]]`: a PostgreSQL server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// libpq-style connection string (`host=… port=… user=… password=… dbname=…`) or URL;
    /// `sslmode=require` means TLS with the server certificate verified.
    pub dsn: String,
    /// PEM file of extra CAs trusted for `sslmode=require`.
    #[serde(default)]
    pub tls_ca_file: String,
    /// Overrides `agent.interval`.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    /// How many statements of `pg_stat_statements` are reported by total time, and again by
    /// mean time (at most twice this many in all).
    #[serde(default = "default_top_n")]
    pub slow_queries_top_n: usize,
    /// Timeout of connecting and of each query.
    #[serde(default = "default_scrape_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
}

fn default_top_n() -> usize {
    20
}

/// `[[probe]]`: an HTTP or TCP health check, reported as blackbox_exporter reports it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// `http://host:port/path` or `tcp://host:port`; becomes the `instance` label.
    pub target: String,
    /// The `job` label of the probe's series.
    #[serde(default = "default_probe_job")]
    pub job: String,
    /// HTTP status codes that count as success; empty = any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// Regex the HTTP body must match; empty = no check.
    #[serde(default)]
    pub body_match: String,
    /// PEM file of extra CAs trusted for https targets.
    #[serde(default)]
    pub tls_ca_file: String,
    /// Overrides `agent.interval`.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    /// Timeout of one probe.
    #[serde(default = "default_probe_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
}

/// Where a file seen for the first time (no checkpoint) is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    /// Read the whole file.
    Beginning,
    /// Only lines written from now on (files that appear after the agent started are still
    /// read from their beginning).
    End,
}

/// `[[logs]]`: files to tail and ship as OTLP log records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// Glob patterns of files (`/var/log/nginx/*.log`).
    pub paths: Vec<String>,
    /// Glob patterns left out (`*.gz`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `service.name` of the records.
    pub service: String,
    /// Regex: a line matching it starts a new record and other lines continue the previous
    /// one (stack traces); empty = one line, one record.
    #[serde(default)]
    pub multiline_start: String,
    /// Parse each record as a JSON object: fields become attributes, `message`/`msg` the body,
    /// `level`/`severity` the severity, `time`/`timestamp` (RFC 3339) the timestamp. The same
    /// as `format = "json"`; kept for old configs.
    #[serde(default)]
    pub json: bool,
    /// How records are parsed (docs/agent.md, "Log parsing").
    #[serde(default)]
    pub format: LogFormat,
    /// nginx `log_format` string for `format = "nginx"`
    /// (`$remote_addr - $remote_user [$time_local] "$request" $status ...`).
    #[serde(default)]
    pub log_format: String,
    /// strftime pattern (chrono) of the timestamp at the start of each line, tried before the
    /// built-in formats; empty = only the built-in ones.
    #[serde(default)]
    pub timestamp_format: String,
    /// Keep Python tracebacks and Java `at ...` frames with the line they follow when no
    /// `multiline_start` is set.
    #[serde(default = "default_true")]
    pub multiline_auto: bool,
    /// Most lines in one multiline record; the next line starts a new record.
    #[serde(default = "default_multiline_max_lines")]
    pub multiline_max_lines: usize,
    /// Files without a checkpoint at the agent's first start: `"beginning"` or `"end"`.
    #[serde(default = "default_start_at")]
    pub start_at: StartAt,
    /// How often files are checked for new lines, new files and rotation.
    #[serde(default = "default_poll", deserialize_with = "de_duration")]
    pub poll_interval: Duration,
}

impl Default for LogsConfig {
    /// No paths (a config must name some) and the defaults of every other key.
    fn default() -> LogsConfig {
        LogsConfig {
            paths: Vec::new(),
            exclude: Vec::new(),
            service: String::new(),
            multiline_start: String::new(),
            json: false,
            format: LogFormat::Auto,
            log_format: String::new(),
            timestamp_format: String::new(),
            multiline_auto: true,
            multiline_max_lines: default_multiline_max_lines(),
            start_at: default_start_at(),
            poll_interval: default_poll(),
        }
    }
}

/// `format` of a `[[logs]]` section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// JSON objects as `json`, nginx/apache `combined`/`common` lines as access logs, other
    /// lines as plain text (severity, timestamp and trace ids taken from the text).
    #[default]
    Auto,
    /// Plain text only.
    Text,
    /// JSON objects (JSON access-log fields become HTTP attributes); other lines as text.
    Json,
    /// nginx/apache `combined` or `common`; other lines as text.
    NginxCombined,
    /// The `log_format` string; other lines as text.
    Nginx,
}

fn default_true() -> bool {
    true
}
fn default_multiline_max_lines() -> usize {
    500
}
fn default_start_at() -> StartAt {
    StartAt::End
}
fn default_poll() -> Duration {
    Duration::from_secs(1)
}

/// `[receiver]`: the local OTLP receiver for services on this host.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Run it at all (off by default: with the default export endpoint it would take the
    /// collector's own port on a single-host install).
    pub enabled: bool,
    /// OTLP/gRPC address; empty = no gRPC receiver.
    pub grpc_listen: String,
    /// OTLP/HTTP address; empty = no HTTP receiver.
    pub http_listen: String,
    /// Largest request body (after gunzip) over HTTP; 413 past it.
    #[serde(deserialize_with = "de_bytes_usize")]
    pub max_request_bytes: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            enabled: false,
            grpc_listen: "127.0.0.1:4317".to_string(),
            http_listen: "127.0.0.1:4318".to_string(),
            max_request_bytes: 16 * 1024 * 1024,
        }
    }
}

/// `[[rabbitmq]]`: queue depth from a RabbitMQ management API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RabbitmqConfig {
    /// Management API base URL.
    #[serde(default = "default_rabbitmq_url")]
    pub url: String,
    /// Management user (needs the `monitoring` tag).
    #[serde(default = "default_guest")]
    pub username: String,
    /// Its password.
    #[serde(default = "default_guest")]
    pub password: String,
    /// Only this vhost; empty = all.
    #[serde(default)]
    pub vhost: String,
    /// Only these queues; empty = all.
    #[serde(default)]
    pub queues: Vec<String>,
    /// PEM file of extra CAs trusted for an https management API.
    #[serde(default)]
    pub tls_ca_file: String,
    /// Most queues reported, to bound cardinality.
    #[serde(default = "default_max_queues")]
    pub max_queues: usize,
    /// Overrides `agent.interval`.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    /// Timeout of one API call.
    #[serde(default = "default_scrape_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// The broker's AMQP URL (`amqp://user:password@host:5672/vhost`, `amqps://` for TLS,
    /// Celery's `broker_url`): Celery's event stream is read there. Empty: not read.
    #[serde(default)]
    pub amqp_url: String,
    /// Read Celery's event stream on `amqp_url` (workers started with `-E`).
    #[serde(default = "default_celery_on")]
    pub celery_events: bool,
    /// Celery's `event_exchange` setting.
    #[serde(default = "default_event_exchange")]
    pub celery_event_exchange: String,
    /// Most task names with their own series; the rest are counted as `name="other"`.
    #[serde(default = "default_max_task_names")]
    pub celery_max_task_names: usize,
    /// How long a stopped worker is still reported as `celery_worker_up 0`.
    #[serde(default = "default_worker_forget_after", deserialize_with = "de_duration")]
    pub celery_worker_forget_after: Duration,
}

fn default_rabbitmq_url() -> String {
    "http://localhost:15672".to_string()
}
fn default_guest() -> String {
    "guest".to_string()
}
fn default_max_queues() -> usize {
    500
}

/// `[statsd]`: a StatsD/DogStatsD UDP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsdConfig {
    /// Listen at all.
    pub enabled: bool,
    /// UDP address.
    pub listen: String,
    /// Flush (collection) interval; overrides `agent.interval`.
    #[serde(deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    /// Quantiles reported for timers and histograms.
    pub percentiles: Vec<f64>,
    /// Most series kept; lines for new series beyond it are dropped and counted.
    pub max_series: usize,
}

impl Default for StatsdConfig {
    fn default() -> Self {
        StatsdConfig {
            enabled: false,
            listen: "127.0.0.1:8125".to_string(),
            interval: None,
            percentiles: vec![0.5, 0.9, 0.99],
            max_series: 10_000,
        }
    }
}

fn default_probe_job() -> String {
    "blackbox".to_string()
}
fn default_probe_timeout() -> Duration {
    Duration::from_secs(5)
}

/// `[[nginx]]`: an nginx `stub_status` page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxConfig {
    /// URL of the `stub_status` location; its `host:port` becomes the `instance` label.
    pub url: String,
    /// PEM file of extra CAs trusted for an https URL.
    #[serde(default)]
    pub tls_ca_file: String,
    /// Overrides `agent.interval`.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    /// Timeout of one request.
    #[serde(default = "default_probe_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
}

/// `[[pgbouncer]]`: a PgBouncer admin console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgbouncerConfig {
    /// DSN of the admin console (database `pgbouncer`, a user in `admin_users` or
    /// `stats_users`), URL or `key=value` form; its `host:port` becomes the `instance` label.
    pub dsn: String,
    /// Overrides `agent.interval`.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub interval: Option<Duration>,
    /// Timeout of connecting and of each command.
    #[serde(default = "default_probe_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
}
