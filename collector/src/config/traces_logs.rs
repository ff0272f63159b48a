//! Config keys of traces, logs and serverless cost (`[traces]`, `[logs]`, `[faas]`),
//! documented in `docs/configuration.md`.

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use didban_base::{parse_bytes, parse_duration};

/// `[traces]`.
#[derive(Debug, Clone)]
pub struct TracesConfig {
    /// The span head is cut into a Parquet block once its oldest span is this old.
    pub block_duration: Duration,
    /// Span blocks older than this are deleted (0 = keep).
    pub retention_time: Duration,
    /// Past this many bytes of span blocks the oldest are deleted (0 = no limit).
    pub retention_bytes: u64,
    /// Memory of the span head before ingest answers 429.
    pub head_memory_bytes: u64,
    /// Whether spans produce RED and FaaS metrics in the metric store.
    pub span_metrics: bool,
    /// How the span-metric duration histograms are recorded.
    pub duration_histogram: DurationHistogram,
    /// Upper bounds (seconds) of the span-metric duration histograms when classic.
    pub duration_buckets: Vec<f64>,
}

/// `[traces] duration_histogram`: the form of the span-derived duration histograms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurationHistogram {
    /// One native (exponential) histogram series per label set: quantiles within 4.4 %.
    #[default]
    Native,
    /// Classic `_bucket{le}`/`_sum`/`_count` series with the bounds of `duration_buckets`,
    /// for consumers that only read classic histograms.
    Classic,
}

impl DurationHistogram {
    /// The config value: `native` or `classic`.
    pub fn as_str(self) -> &'static str {
        match self {
            DurationHistogram::Native => "native",
            DurationHistogram::Classic => "classic",
        }
    }
}

/// `[logs]`.
#[derive(Debug, Clone)]
pub struct LogsConfig {
    /// How often the log indexes are committed (a record is searchable after at most this).
    pub commit_interval: Duration,
    /// Day indexes older than this many days are deleted (0 = keep).
    pub retention_days: u32,
    /// Past this many bytes of indexes the oldest days are deleted (0 = no limit).
    pub retention_bytes: u64,
    /// Indexing memory budget per day index being written.
    pub writer_memory_bytes: usize,
    /// Most bytes of log batches accepted but not yet indexed and durable; past it, log
    /// requests get 429 with `Retry-After`.
    pub max_pending_bytes: u64,
    /// With an object store, a day index is sealed and uploaded once its day ended this
    /// long ago.
    pub seal_after: Duration,
}

/// One row of the serverless price table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaasPrice {
    /// `cloud.provider` value (`aws`, `gcp`, `azure`, …).
    pub provider: String,
    /// `host.arch` family: `x86_64` or `arm64`.
    pub arch: String,
    /// Price of one million requests, in dollars.
    pub per_million_requests: f64,
    /// Price of one GB-second (1 GiB of memory for one second), in dollars.
    pub per_gb_second: f64,
}

/// `[faas]`.
#[derive(Debug, Clone)]
pub struct FaasConfig {
    /// The price table; the first row matching provider and architecture applies.
    pub prices: Vec<FaasPrice>,
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig {
            block_duration: Duration::from_secs(3600),
            retention_time: Duration::from_secs(7 * 86400),
            retention_bytes: 0,
            head_memory_bytes: 512 * 1024 * 1024,
            span_metrics: true,
            duration_histogram: DurationHistogram::Native,
            duration_buckets: vec![
                0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ],
        }
    }
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            commit_interval: Duration::from_secs(5),
            retention_days: 7,
            retention_bytes: 0,
            writer_memory_bytes: 64 * 1024 * 1024,
            max_pending_bytes: 256 * 1024 * 1024,
            seal_after: Duration::from_secs(2 * 3600),
        }
    }
}

impl Default for FaasConfig {
    fn default() -> Self {
        let aws = |arch: &str, gb_s: f64| FaasPrice {
            provider: "aws".into(),
            arch: arch.into(),
            per_million_requests: 0.20,
            per_gb_second: gb_s,
        };
        FaasConfig {
            prices: vec![aws("x86_64", 0.0000166667), aws("arm64", 0.0000133334)],
        }
    }
}

impl FaasConfig {
    /// The price for a provider and architecture; unknown architectures use `x86_64`.
    pub fn price(&self, provider: &str, arch: &str) -> Option<&FaasPrice> {
        let exact = self
            .prices
            .iter()
            .find(|p| p.provider == provider && p.arch == arch);
        exact.or_else(|| {
            self.prices
                .iter()
                .find(|p| p.provider == provider && p.arch == "x86_64")
        })
    }
}

/// `[traces]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileTraces {
    block_duration: Option<String>,
    retention_time: Option<String>,
    retention_size: Option<String>,
    head_memory_limit: Option<String>,
    span_metrics: Option<bool>,
    duration_histogram: Option<DurationHistogram>,
    duration_buckets: Option<Vec<f64>>,
}

/// `[logs]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileLogs {
    commit_interval: Option<String>,
    retention_days: Option<u32>,
    retention_size: Option<String>,
    writer_memory: Option<String>,
    max_pending: Option<String>,
    seal_after: Option<String>,
}

/// `[faas]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileFaas {
    prices: Option<Vec<FaasPrice>>,
}

fn duration(target: &mut Duration, v: Option<String>, key: &str) -> anyhow::Result<()> {
    if let Some(v) = v {
        *target = parse_duration(&v).with_context(|| key.to_string())?;
    }
    Ok(())
}

fn bytes(target: &mut u64, v: Option<String>, key: &str) -> anyhow::Result<()> {
    if let Some(v) = v {
        *target = parse_bytes(&v).with_context(|| key.to_string())?;
    }
    Ok(())
}

impl FileTraces {
    pub(crate) fn apply(self, c: &mut TracesConfig) -> anyhow::Result<()> {
        duration(
            &mut c.block_duration,
            self.block_duration,
            "traces.block_duration",
        )?;
        duration(
            &mut c.retention_time,
            self.retention_time,
            "traces.retention_time",
        )?;
        bytes(
            &mut c.retention_bytes,
            self.retention_size,
            "traces.retention_size",
        )?;
        bytes(
            &mut c.head_memory_bytes,
            self.head_memory_limit,
            "traces.head_memory_limit",
        )?;
        if let Some(v) = self.span_metrics {
            c.span_metrics = v;
        }
        if let Some(v) = self.duration_histogram {
            c.duration_histogram = v;
        }
        if let Some(mut b) = self.duration_buckets {
            b.retain(|x| x.is_finite() && *x > 0.0);
            b.sort_by(f64::total_cmp);
            b.dedup();
            if b.is_empty() {
                anyhow::bail!("traces.duration_buckets needs at least one positive bound");
            }
            c.duration_buckets = b;
        }
        Ok(())
    }
}

impl FileLogs {
    pub(crate) fn apply(self, c: &mut LogsConfig) -> anyhow::Result<()> {
        duration(
            &mut c.commit_interval,
            self.commit_interval,
            "logs.commit_interval",
        )?;
        if c.commit_interval < Duration::from_millis(100) {
            anyhow::bail!(
                "logs.commit_interval {:?} is below the minimum of 100ms",
                c.commit_interval
            );
        }
        if let Some(v) = self.retention_days {
            c.retention_days = v;
        }
        bytes(&mut c.retention_bytes, self.retention_size, "logs.retention_size")?;
        let mut mem = c.writer_memory_bytes as u64;
        bytes(&mut mem, self.writer_memory, "logs.writer_memory")?;
        if mem < 16 * 1024 * 1024 {
            anyhow::bail!("logs.writer_memory {mem} is below tantivy's minimum of 16MiB");
        }
        c.writer_memory_bytes = usize::try_from(mem).unwrap_or(usize::MAX);
        bytes(&mut c.max_pending_bytes, self.max_pending, "logs.max_pending")?;
        if c.max_pending_bytes == 0 {
            anyhow::bail!("logs.max_pending must be above 0");
        }
        duration(&mut c.seal_after, self.seal_after, "logs.seal_after")?;
        Ok(())
    }
}

impl FileFaas {
    pub(crate) fn apply(self, c: &mut FaasConfig) -> anyhow::Result<()> {
        if let Some(prices) = self.prices {
            for p in &prices {
                if !(p.per_million_requests >= 0.0 && p.per_gb_second >= 0.0) {
                    anyhow::bail!(
                        "faas.prices: prices for {}/{} must be non-negative numbers",
                        p.provider,
                        p.arch
                    );
                }
            }
            // User rows come first so they override the defaults.
            let mut all = prices;
            all.extend(std::mem::take(&mut c.prices));
            c.prices = all;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::config::Config;

    #[test]
    fn traces_logs_and_faas_keys_parse_and_are_checked() {
        let c = Config::from_toml(
            r#"
            [traces]
            retention_time = "3d"
            head_memory_limit = "64MiB"
            duration_buckets = [1.0, 0.5, -1.0]
            [logs]
            commit_interval = "1s"
            retention_days = 30
            retention_size = "10GiB"
            seal_after = "30m"
            [[faas.prices]]
            provider = "aws"
            arch = "arm64"
            per_million_requests = 0.1
            per_gb_second = 0.00001
            "#,
        )
        .unwrap();
        assert_eq!(c.traces.retention_time.as_secs(), 3 * 86400);
        assert_eq!(c.traces.head_memory_bytes, 64 << 20);
        assert_eq!(c.traces.duration_buckets, vec![0.5, 1.0]);
        assert_eq!(c.traces.duration_histogram, super::DurationHistogram::Native);
        let classic = Config::from_toml("[traces]\nduration_histogram = \"classic\"").unwrap();
        assert_eq!(classic.traces.duration_histogram.as_str(), "classic");
        let err = Config::from_toml("[traces]\nduration_histogram = \"sparse\"").unwrap_err();
        assert!(format!("{err:#}").contains("sparse"), "{err:#}");
        assert_eq!(c.logs.commit_interval.as_millis(), 1000);
        assert_eq!((c.logs.retention_days, c.logs.retention_bytes), (30, 10 << 30));
        assert_eq!(c.logs.seal_after.as_secs(), 30 * 60);
        assert_eq!(c.log_options().seal_after.as_secs(), 30 * 60);
        let err = Config::from_toml("[logs]\nseal_after = \"soon\"").unwrap_err();
        assert!(format!("{err:#}").contains("logs.seal_after"), "{err:#}");
        assert_eq!(c.faas.price("aws", "arm64").unwrap().per_million_requests, 0.1);
        assert_eq!(c.faas.price("aws", "riscv").unwrap().per_gb_second, 0.0000166667);
        assert!(c.faas.price("gcp", "x86_64").is_none());

        let err = Config::from_toml("[logs]\ncommit_interval = \"10ms\"").unwrap_err();
        assert!(format!("{err:#}").contains("logs.commit_interval"), "{err:#}");
        let err = Config::from_toml("[logs]\nwriter_memory = \"1MiB\"").unwrap_err();
        assert!(format!("{err:#}").contains("logs.writer_memory"), "{err:#}");
        let err = Config::from_toml("[traces]\nretention = \"1d\"").unwrap_err();
        assert!(format!("{err:#}").contains("retention"), "{err:#}");
        let err = Config::from_toml(
            "[[faas.prices]]\nprovider = \"aws\"\narch = \"x86_64\"\nper_million_requests = -1.0\nper_gb_second = 0.0",
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("non-negative"), "{err:#}");
    }
}
