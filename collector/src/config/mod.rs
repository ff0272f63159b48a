//! Server configuration: one TOML file, overridden by command-line flags and environment
//! variables. Every key and its default is documented in `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use didban_store::logs::LogOptions;
use didban_store::promql::PromqlCompat;
use didban_store::traces::TraceOptions;
use didban_store::{BlockStorage, DbOptions, ExemplarOptions, FsyncMode, MetastoreConfig, SeriesLimits};
use serde::Deserialize;

pub mod auth;
pub mod cluster;
pub mod downsample;
pub mod ingest_log;
pub mod listen;
pub mod metastore;
pub mod object_store;
pub mod otlp;
pub mod traces_logs;

use crate::memory_limit::{self, Available, Budgets};
use auth::{AuthConfig, FileAuth};
use didban_base::{parse_bytes, parse_duration};
use listen::{FileListen, FileTls, ListenConfig, TlsConfig};
use otlp::{FileOtlp, OtlpConfig};
use traces_logs::{FaasConfig, FileFaas, FileLogs, FileTraces, LogsConfig, TracesConfig};

/// The whole server configuration, with every default filled in.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    pub otlp_grpc_addr: SocketAddr,
    pub otlp_http_addr: SocketAddr,
    pub storage: StorageConfig,
    pub limits: IngestLimits,
    /// How OTLP metrics are translated (`[otlp]`).
    pub otlp: OtlpConfig,
    pub query: QueryConfig,
    /// How often Didban's own metrics are written into its own database (0 = never).
    pub self_scrape_interval: Duration,
    /// `[traces]`: span store and span-derived metrics.
    pub traces: TracesConfig,
    /// `[logs]`: log indexes.
    pub logs: LogsConfig,
    /// `[faas]`: serverless price table.
    pub faas: FaasConfig,
    /// The host collector run inside the server, so a fresh install shows its own machine.
    pub host_metrics: HostMetricsConfig,
    /// The alert engine (`[alerting]`), documented in `docs/alerting.md`.
    pub alerting: didban_alerting::AlertingSettings,
    /// `[auth]`: sign-in, roles, sessions (see `config_auth`).
    pub auth: AuthConfig,
    /// `[ui]`: the web UI.
    pub ui: UiConfig,
    /// `[listen]`: connection limits and timeouts of every listener.
    pub listen: ListenConfig,
    /// `[tls]`: certificate files for the listeners.
    pub tls: TlsConfig,
    /// `[cluster]` and `--role`: which parts this process runs.
    pub cluster: cluster::ClusterConfig,
    /// `[ingest_log]`: the NATS JetStream stream in front of the stores; `None` when off.
    pub ingest_log: Option<ingest_log::IngestLogConfig>,
    /// The TOML file this was read from ([`Config::load`]), re-read by reloads of the
    /// alert engine (SIGHUP, `POST /-/reload`) for its `[alerting]` rule settings.
    pub source: Option<PathBuf>,
}

/// `[ui]`: the web UI.
#[derive(Debug, Clone, Default)]
pub struct UiConfig {
    /// Directory of provisioned dashboard YAML files (read-only in the UI, re-read on every
    /// list and view); `None` for none.
    pub dashboards_dir: Option<PathBuf>,
}

/// `[host_metrics]`: the agent's host collector, run in-process and shipped over OTLP to
/// this server's own gRPC receiver through the agent's disk buffer.
#[derive(Debug, Clone)]
pub struct HostMetricsConfig {
    pub enabled: bool,
    pub interval: Duration,
}

/// Storage keys (`[storage]`).
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub fsync: FsyncMode,
    pub fsync_interval: Duration,
    pub wal_segment_bytes: u64,
    pub block_duration: Duration,
    pub out_of_order_window: Duration,
    pub max_sample_age: Duration,
    pub retention_time: Duration,
    pub retention_bytes: u64,
    /// Ages after which blocks get 5-minute and 1-hour downsampled copies, and how long
    /// those are kept (`storage.downsample_5m_after` etc., see `downsample.rs`).
    pub downsample: downsample::DownsampleConfig,
    pub head_memory_bytes: u64,
    /// Bytes of block series lists and postings kept in memory across queries
    /// (`storage.block_index_cache_size`, default 5% of `memory_limit`).
    pub block_index_cache_bytes: u64,
    pub maintenance_interval: Duration,
    /// Exemplars kept in memory over all series (`storage.max_exemplars`, default 100 000
    /// as Prometheus' `--storage.exemplars.max-exemplars`; 0 turns exemplar storage off).
    pub max_exemplars: usize,
    /// Memory the whole server may use (`storage.memory_limit`, default 60% of
    /// `available_memory`); the stores' budgets not set on their own are shares of it.
    pub memory_limit_bytes: u64,
    /// What the process can have (cgroup limit or RAM), read at start.
    pub available_memory: Available,
    /// Where metric blocks live (`storage.object_store` and `[storage.s3]`).
    pub blocks: BlockStorage,
    /// The PostgreSQL metastore of the bucket's blocks (`storage.metastore` and
    /// `[storage.postgres]`), `None` by default.
    pub metastore: Option<MetastoreConfig>,
}

/// Ingest limits (`[limits]`).
#[derive(Debug, Clone)]
pub struct IngestLimits {
    /// Largest request body accepted, after decompression.
    pub max_body_bytes: usize,
    /// How far ahead of the server clock a sample, span or log record may be dated
    /// (`limits.max_future`; 0 = no limit); later ones are refused one by one.
    pub max_future: Duration,
    pub series: SeriesLimits,
}

/// Query engine keys (`[query]`).
#[derive(Debug, Clone)]
pub struct QueryConfig {
    pub lookback_delta: Duration,
    /// Longest a query may take, queueing included; a request's `timeout` can only shorten it.
    pub timeout: Duration,
    pub max_samples: usize,
    /// Samples all running queries may hold together (`query.max_samples_total`; 0 = no
    /// limit); by default the memory limit's share for queries, see [`Budgets`].
    pub max_samples_total: usize,
    /// Deepest nesting of a query (brackets, calls, operators); deeper ones are refused.
    pub max_depth: usize,
    /// Evaluations at once per lane (range queries; instant queries).
    pub max_concurrent: usize,
    /// Queries waiting for an evaluation slot before new ones are refused with 503.
    pub max_queued: usize,
    /// PromQL semantics: Prometheus 3 (`v3`, default) or 2.x (`v2`).
    pub promql_compat: PromqlCompat,
    /// Allows Prometheus' experimental functions (`limitk`, `info`, `mad_over_time`, …).
    pub enable_experimental_functions: bool,
    /// Threads one query's range functions may split their series over, and its operator
    /// chains their operands (`query.workers_per_query`; default the cores, at most 8).
    pub workers_per_query: usize,
}

/// Default `query.max_concurrent`: the number of cores, at least 2.
pub fn default_max_concurrent() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

impl Default for Config {
    fn default() -> Self {
        let db = DbOptions::new("./didban-data");
        let available = memory_limit::detect();
        let memory_limit_bytes = memory_limit::default_limit(available.bytes);
        let mut c = Config {
            data_dir: PathBuf::from("./didban-data"),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 9480)),
            otlp_grpc_addr: SocketAddr::from(([127, 0, 0, 1], 4317)),
            otlp_http_addr: SocketAddr::from(([127, 0, 0, 1], 4318)),
            storage: StorageConfig {
                fsync: db.fsync,
                fsync_interval: db.fsync_interval,
                wal_segment_bytes: db.wal_segment_bytes,
                block_duration: db.block_duration,
                out_of_order_window: db.out_of_order_window,
                max_sample_age: db.max_sample_age,
                retention_time: db.retention_time,
                retention_bytes: db.retention_bytes,
                downsample: downsample::DownsampleConfig::from_db(&db),
                head_memory_bytes: db.head_memory_bytes,
                block_index_cache_bytes: db.block_index_cache_bytes,
                maintenance_interval: Duration::from_secs(30),
                max_exemplars: didban_store::metrics::exemplars::DEFAULT_MAX_EXEMPLARS,
                memory_limit_bytes,
                available_memory: available,
                blocks: BlockStorage::File,
                metastore: None,
            },
            limits: IngestLimits {
                max_body_bytes: 20 * 1024 * 1024,
                max_future: db.max_future,
                series: db.limits,
            },
            otlp: OtlpConfig::default(),
            query: QueryConfig {
                lookback_delta: Duration::from_secs(300),
                timeout: Duration::from_secs(120),
                max_samples: 50_000_000,
                max_samples_total: 0,
                max_depth: didban_store::promql::DEFAULT_MAX_DEPTH,
                max_concurrent: default_max_concurrent(),
                max_queued: 64,
                promql_compat: PromqlCompat::V3,
                enable_experimental_functions: false,
                workers_per_query: didban_store::promql::EngineOptions::default().workers_per_query,
            },
            self_scrape_interval: Duration::from_secs(15),
            traces: TracesConfig::default(),
            logs: LogsConfig::default(),
            faas: FaasConfig::default(),
            host_metrics: HostMetricsConfig {
                enabled: true,
                interval: Duration::from_secs(15),
            },
            alerting: didban_alerting::AlertingSettings::default(),
            cluster: cluster::ClusterConfig::default(),
            ingest_log: None,
            auth: AuthConfig::default(),
            ui: UiConfig::default(),
            listen: ListenConfig::default(),
            tls: TlsConfig::default(),
            source: None,
        };
        c.apply_memory_budgets();
        c
    }
}

impl Config {
    /// Sets the store budgets to their shares of `storage.memory_limit_bytes`
    /// ([`Budgets`]); keys set on their own are applied after this.
    fn apply_memory_budgets(&mut self) {
        let b = Budgets::of(self.storage.memory_limit_bytes);
        self.storage.head_memory_bytes = b.metrics_head;
        self.storage.block_index_cache_bytes = b.block_index_cache;
        self.traces.head_memory_bytes = b.traces_head;
        self.logs.max_pending_bytes = b.logs_pending;
        self.logs.writer_memory_bytes = usize::try_from(b.logs_writer).unwrap_or(64 << 20);
        self.query.max_samples_total = usize::try_from(b.query_samples).unwrap_or(usize::MAX);
    }

    /// The database options this configuration implies.
    pub fn db_options(&self) -> DbOptions {
        let mut o = DbOptions::new(&self.data_dir);
        o.fsync = self.storage.fsync;
        o.fsync_interval = self.storage.fsync_interval;
        o.wal_segment_bytes = self.storage.wal_segment_bytes;
        o.block_duration = self.storage.block_duration;
        o.out_of_order_window = self.storage.out_of_order_window;
        o.max_sample_age = self.storage.max_sample_age;
        o.retention_time = self.storage.retention_time;
        o.retention_bytes = self.storage.retention_bytes;
        self.storage.downsample.apply_to(&mut o);
        o.head_memory_bytes = self.storage.head_memory_bytes;
        o.block_index_cache_bytes = self.storage.block_index_cache_bytes;
        o.limits = self.limits.series.clone();
        o.max_future = self.limits.max_future;
        o.block_storage = self.storage.blocks.clone();
        o.metastore = self.storage.metastore.clone().map(|mut m| {
            m.compactor = self.cluster.role.compacts();
            m
        });
        o
    }

    /// Options of the exemplar store under `data_dir`, from `[storage]`.
    pub fn exemplar_options(&self) -> ExemplarOptions {
        let mut o = ExemplarOptions::new(&self.data_dir);
        o.max_exemplars = self.storage.max_exemplars;
        o.fsync = self.storage.fsync;
        o.fsync_interval = self.storage.fsync_interval;
        o.wal_segment_bytes = self.storage.wal_segment_bytes;
        o
    }

    /// Options of the trace store under `data_dir`, from `[storage]` and `[traces]`.
    pub fn trace_options(&self) -> TraceOptions {
        let mut o = TraceOptions::new(&self.data_dir);
        o.fsync = self.storage.fsync;
        o.fsync_interval = self.storage.fsync_interval;
        o.wal_segment_bytes = self.storage.wal_segment_bytes;
        o.block_duration = self.traces.block_duration;
        o.retention_time = self.traces.retention_time;
        o.retention_bytes = self.traces.retention_bytes;
        o.head_memory_bytes = self.traces.head_memory_bytes;
        o.block_storage = self.storage.blocks.clone();
        o.metastore = self.storage.metastore.clone();
        o
    }

    /// Options of the log store under `data_dir`, from `[storage]` and `[logs]`.
    pub fn log_options(&self) -> LogOptions {
        let mut o = LogOptions::new(&self.data_dir);
        o.fsync = self.storage.fsync;
        o.fsync_interval = self.storage.fsync_interval;
        o.wal_segment_bytes = self.storage.wal_segment_bytes;
        o.retention_days = self.logs.retention_days;
        o.retention_bytes = self.logs.retention_bytes;
        o.writer_memory_bytes = self.logs.writer_memory_bytes;
        o.max_pending_bytes = self.logs.max_pending_bytes;
        o.block_storage = self.storage.blocks.clone();
        o.metastore = self.storage.metastore.clone();
        o.seal_after = self.logs.seal_after;
        o
    }

    /// Reads a TOML file over the defaults. Unknown keys are an error so typos surface.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let mut c = Config::from_toml(&text).with_context(|| format!("in config file {}", path.display()))?;
        c.source = Some(path.to_path_buf());
        Ok(c)
    }

    /// Parses TOML text over the defaults.
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        let file: FileConfig = toml::from_str(text)?;
        let mut c = Config::default();
        if let Some(v) = file.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = file.http_addr {
            c.http_addr = parse_addr("http_addr", &v)?;
        }
        if let Some(v) = file.otlp_grpc_addr {
            c.otlp_grpc_addr = parse_addr("otlp_grpc_addr", &v)?;
        }
        if let Some(v) = file.otlp_http_addr {
            c.otlp_http_addr = parse_addr("otlp_http_addr", &v)?;
        }
        if let Some(v) = file.self_scrape_interval {
            c.self_scrape_interval = parse_duration(&v).context("self_scrape_interval")?;
        }
        if let Some(v) = file.host_metrics.enabled {
            c.host_metrics.enabled = v;
        }
        set_duration(
            &mut c.host_metrics.interval,
            file.host_metrics.interval,
            "host_metrics.interval",
        )?;
        let s = file.storage;
        if let Some(v) = s.memory_limit {
            c.storage.memory_limit_bytes = memory_limit::parse_limit(&v, c.storage.available_memory.bytes)
                .context("storage.memory_limit")?;
            c.apply_memory_budgets();
        }
        let st = &mut c.storage;
        if let Some(v) = s.fsync {
            st.fsync = v;
        }
        set_duration(&mut st.fsync_interval, s.fsync_interval, "storage.fsync_interval")?;
        set_bytes(
            &mut st.wal_segment_bytes,
            s.wal_segment_size,
            "storage.wal_segment_size",
        )?;
        set_duration(&mut st.block_duration, s.block_duration, "storage.block_duration")?;
        set_duration(
            &mut st.out_of_order_window,
            s.out_of_order_window,
            "storage.out_of_order_window",
        )?;
        set_duration(&mut st.max_sample_age, s.max_sample_age, "storage.max_sample_age")?;
        set_duration(&mut st.retention_time, s.retention_time, "storage.retention_time")?;
        let explicit = (s.downsample_5m_after.is_some(), s.downsample_1h_after.is_some());
        let d = &mut st.downsample;
        set_duration(
            &mut d.after_5m,
            s.downsample_5m_after,
            "storage.downsample_5m_after",
        )?;
        set_duration(
            &mut d.after_1h,
            s.downsample_1h_after,
            "storage.downsample_1h_after",
        )?;
        set_duration(
            &mut d.retention_5m,
            s.retention_time_5m,
            "storage.retention_time_5m",
        )?;
        set_duration(
            &mut d.retention_1h,
            s.retention_time_1h,
            "storage.retention_time_1h",
        )?;
        d.explicit = explicit;
        d.check(st.retention_time)?;
        set_bytes(
            &mut st.retention_bytes,
            s.retention_size,
            "storage.retention_size",
        )?;
        set_bytes(
            &mut st.head_memory_bytes,
            s.head_memory_limit,
            "storage.head_memory_limit",
        )?;
        set_bytes(
            &mut st.block_index_cache_bytes,
            s.block_index_cache_size,
            "storage.block_index_cache_size",
        )?;
        set_duration(
            &mut st.maintenance_interval,
            s.maintenance_interval,
            "storage.maintenance_interval",
        )?;
        set_plain(&mut st.max_exemplars, s.max_exemplars);
        st.blocks = object_store::block_storage(s.object_store.as_deref(), s.s3, |k| std::env::var(k).ok())?;
        st.metastore = metastore::metastore(s.metastore.as_deref(), s.postgres, &st.blocks, |k| {
            std::env::var(k).ok()
        })?;
        let l = file.limits;
        if let Some(v) = l.max_request_body {
            c.limits.max_body_bytes = parse_bytes(&v).context("limits.max_request_body")? as usize;
        }
        set_duration(&mut c.limits.max_future, l.max_future, "limits.max_future")?;
        let sl = &mut c.limits.series;
        set_plain(&mut sl.max_labels_per_series, l.max_labels_per_series);
        set_plain(&mut sl.max_label_name_bytes, l.max_label_name_length);
        set_plain(&mut sl.max_label_value_bytes, l.max_label_value_length);
        set_plain(&mut sl.max_series, l.max_series);
        set_plain(&mut sl.max_series_per_metric, l.max_series_per_metric);
        file.otlp.apply(&mut c.otlp);
        let q = file.query;
        set_duration(
            &mut c.query.lookback_delta,
            q.lookback_delta,
            "query.lookback_delta",
        )?;
        set_duration(&mut c.query.timeout, q.timeout, "query.timeout")?;
        set_plain(&mut c.query.max_samples, q.max_samples);
        set_plain(&mut c.query.max_samples_total, q.max_samples_total);
        set_plain(&mut c.query.max_depth, q.max_depth);
        set_plain(&mut c.query.max_concurrent, q.max_concurrent);
        set_plain(&mut c.query.max_queued, q.max_queued);
        if let Some(v) = q.promql_compat {
            c.query.promql_compat = v
                .parse::<PromqlCompat>()
                .with_context(|| format!("query.promql_compat = {v:?}"))?;
        }
        set_plain(
            &mut c.query.enable_experimental_functions,
            q.enable_experimental_functions,
        );
        set_plain(&mut c.query.workers_per_query, q.workers_per_query);
        if c.query.max_depth == 0 || c.query.max_concurrent == 0 || c.query.workers_per_query == 0 {
            anyhow::bail!(
                "query.max_depth ({}), query.max_concurrent ({}) and query.workers_per_query ({}) must be at least 1",
                c.query.max_depth,
                c.query.max_concurrent,
                c.query.workers_per_query
            );
        }
        file.traces.apply(&mut c.traces)?;
        file.logs.apply(&mut c.logs)?;
        file.faas.apply(&mut c.faas)?;
        file.auth.apply(&mut c.auth)?;
        file.listen.apply(&mut c.listen)?;
        file.tls.apply(&mut c.tls)?;
        c.alerting = file.alerting;
        c.cluster = cluster::cluster(file.cluster, |k| std::env::var(k).ok())?;
        c.ingest_log = ingest_log::ingest_log(file.ingest_log, |k| std::env::var(k).ok())?;
        c.ui.dashboards_dir = file.ui.dashboards_dir.filter(|d| !d.as_os_str().is_empty());
        c.alerting.validate().context("alerting")?;
        if c.limits.max_body_bytes == 0 {
            bail!("limits.max_request_body must be greater than 0");
        }
        Ok(c)
    }
}

fn set_plain<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}

fn set_duration(target: &mut Duration, value: Option<String>, key: &str) -> anyhow::Result<()> {
    if let Some(v) = value {
        *target = parse_duration(&v).with_context(|| key.to_string())?;
    }
    Ok(())
}

fn set_bytes(target: &mut u64, value: Option<String>, key: &str) -> anyhow::Result<()> {
    if let Some(v) = value {
        *target = parse_bytes(&v).with_context(|| key.to_string())?;
    }
    Ok(())
}

/// Parses `host:port`, naming the key on failure.
pub fn parse_addr(key: &str, value: &str) -> anyhow::Result<SocketAddr> {
    value
        .parse()
        .with_context(|| format!("{key}: {value:?} is not an address like 127.0.0.1:4317"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    http_addr: Option<String>,
    otlp_grpc_addr: Option<String>,
    otlp_http_addr: Option<String>,
    self_scrape_interval: Option<String>,
    #[serde(default)]
    storage: FileStorage,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    otlp: FileOtlp,
    #[serde(default)]
    query: FileQuery,
    #[serde(default)]
    traces: FileTraces,
    #[serde(default)]
    logs: FileLogs,
    #[serde(default)]
    faas: FileFaas,
    #[serde(default)]
    host_metrics: FileHostMetrics,
    #[serde(default)]
    alerting: didban_alerting::AlertingSettings,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    ui: FileUi,
    #[serde(default)]
    listen: FileListen,
    #[serde(default)]
    tls: FileTls,
    #[serde(default)]
    cluster: cluster::FileCluster,
    #[serde(default)]
    ingest_log: ingest_log::FileIngestLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUi {
    dashboards_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHostMetrics {
    enabled: Option<bool>,
    interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStorage {
    fsync: Option<FsyncMode>,
    fsync_interval: Option<String>,
    wal_segment_size: Option<String>,
    block_duration: Option<String>,
    out_of_order_window: Option<String>,
    max_sample_age: Option<String>,
    retention_time: Option<String>,
    retention_size: Option<String>,
    downsample_5m_after: Option<String>,
    downsample_1h_after: Option<String>,
    retention_time_5m: Option<String>,
    retention_time_1h: Option<String>,
    head_memory_limit: Option<String>,
    block_index_cache_size: Option<String>,
    maintenance_interval: Option<String>,
    max_exemplars: Option<usize>,
    memory_limit: Option<String>,
    object_store: Option<String>,
    s3: Option<object_store::FileS3>,
    metastore: Option<String>,
    postgres: Option<metastore::FilePostgres>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_request_body: Option<String>,
    max_future: Option<String>,
    max_labels_per_series: Option<usize>,
    max_label_name_length: Option<usize>,
    max_label_value_length: Option<usize>,
    max_series: Option<usize>,
    max_series_per_metric: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileQuery {
    lookback_delta: Option<String>,
    timeout: Option<String>,
    max_samples: Option<usize>,
    max_samples_total: Option<usize>,
    max_depth: Option<usize>,
    max_concurrent: Option<usize>,
    max_queued: Option<usize>,
    promql_compat: Option<String>,
    enable_experimental_functions: Option<bool>,
    workers_per_query: Option<usize>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let c = Config::from_toml(
            r#"
            data_dir = "/tmp/x"
            http_addr = "0.0.0.0:1234"
            [storage]
            fsync = "interval"
            retention_time = "30d"
            head_memory_limit = "512MiB"
            [limits]
            max_request_body = "1MiB"
            max_series = 10
            max_future = "1h"
            "#,
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.http_addr.port(), 1234);
        assert_eq!(c.storage.fsync, FsyncMode::Interval);
        assert_eq!(c.storage.retention_time, Duration::from_secs(30 * 86400));
        assert_eq!(c.storage.head_memory_bytes, 512 * 1024 * 1024);
        assert_eq!(c.limits.max_body_bytes, 1024 * 1024);
        assert_eq!(c.limits.series.max_series, 10);
        assert_eq!(c.limits.max_future, Duration::from_secs(3600));
        assert_eq!(Config::default().limits.max_future, Duration::from_secs(600));
        assert_eq!(c.otlp_grpc_addr.port(), 4317);

        let q = Config::from_toml("[query]\nworkers_per_query = 3").unwrap();
        assert_eq!(q.query.workers_per_query, 3);
        assert!(Config::default().query.workers_per_query >= 1);
        let err = Config::from_toml("[query]\nworkers_per_query = 0").unwrap_err();
        assert!(
            format!("{err:#}").contains("query.workers_per_query (0)"),
            "{err:#}"
        );

        let err = Config::from_toml("[storage]\nfsycn = \"off\"").unwrap_err();
        assert!(format!("{err:#}").contains("fsycn"), "{err:#}");
        let err = Config::from_toml("[storage]\nretention_time = \"ten days\"").unwrap_err();
        assert!(format!("{err:#}").contains("storage.retention_time"), "{err:#}");
    }

    #[test]
    fn memory_limit_derives_the_store_budgets() {
        let d = Config::default();
        assert!(d.storage.memory_limit_bytes > 0);
        assert_eq!(
            d.storage.memory_limit_bytes,
            memory_limit::default_limit(d.storage.available_memory.bytes)
        );
        assert_eq!(
            d.storage.head_memory_bytes,
            Budgets::of(d.storage.memory_limit_bytes).metrics_head
        );
        let c = Config::from_toml("[storage]\nmemory_limit = \"1GiB\"").unwrap();
        assert_eq!(c.storage.memory_limit_bytes, 1 << 30);
        assert_eq!(c.storage.head_memory_bytes, (1u64 << 30) / 4);
        assert_eq!(c.traces.head_memory_bytes, (1u64 << 30) / 10);
        assert_eq!(c.storage.block_index_cache_bytes, (1u64 << 30) / 20);
        assert_eq!(c.db_options().block_index_cache_bytes, (1u64 << 30) / 20);
        // A budget set on its own wins over its share.
        let c = Config::from_toml(
            "[storage]\nmemory_limit = \"1GiB\"\nhead_memory_limit = \"100MiB\"\nblock_index_cache_size = \"8MiB\"\n[traces]\nhead_memory_limit = \"64MiB\"",
        )
        .unwrap();
        assert_eq!(c.storage.head_memory_bytes, 100 << 20);
        assert_eq!(c.storage.block_index_cache_bytes, 8 << 20);
        assert_eq!(c.traces.head_memory_bytes, 64 << 20);
        let c = Config::from_toml("[storage]\nmemory_limit = \"50%\"").unwrap();
        assert_eq!(c.storage.memory_limit_bytes, d.storage.available_memory.bytes / 2);
        let err = Config::from_toml("[storage]\nmemory_limit = \"lots\"").unwrap_err();
        assert!(format!("{err:#}").contains("storage.memory_limit"), "{err:#}");
    }

    #[test]
    fn alerting_section_with_routing() {
        let c = Config::from_toml(
            r#"
            [alerting]
            rules_dir = "/etc/didban/rules"
            evaluation_interval = "30s"
            external_url = "https://didban.example.com"
            external_labels = { cluster = "eu" }
            [alerting.route]
            receiver = "ops"
            group_by = ["alertname"]
            [[alerting.receivers]]
            name = "ops"
            [[alerting.receivers.webhook_configs]]
            url = "http://127.0.0.1:9999/hook"
            "#,
        )
        .unwrap();
        assert_eq!(c.alerting.rules_dir, Some(PathBuf::from("/etc/didban/rules")));
        assert_eq!(
            c.alerting.receivers[0].webhook_configs[0].url,
            "http://127.0.0.1:9999/hook"
        );
        let err = Config::from_toml("[alerting.route]\nreceiver = \"nobody\"").unwrap_err();
        assert!(
            format!("{err:#}").contains("undefined receiver \"nobody\""),
            "{err:#}"
        );
        let err = Config::from_toml("[alerting]\nrule_dir = \"x\"").unwrap_err();
        assert!(format!("{err:#}").contains("rule_dir"), "{err:#}");
    }

    #[test]
    fn ui_dashboards_dir() {
        assert_eq!(Config::default().ui.dashboards_dir, None);
        let c = Config::from_toml("[ui]\ndashboards_dir = \"/etc/didban/dashboards\"").unwrap();
        assert_eq!(c.ui.dashboards_dir, Some(PathBuf::from("/etc/didban/dashboards")));
        let err = Config::from_toml("[ui]\ndashboard_dir = \"x\"").unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `dashboard_dir`"),
            "{err:#}"
        );
    }
}
