//! `[ingest_log]`: a replicated NATS JetStream stream in front of the stores
//! (docs/deployment.md, "Ingest log"). Off unless a URL is given.

use std::time::Duration;

use anyhow::{bail, Context};
use didban_base::parse_duration;
use serde::Deserialize;

/// Environment variable naming the NATS server when `url` is not in the file.
pub const URL_ENV: &str = "DIDBAN_INGEST_LOG_URL";

/// `[ingest_log]` resolved; `None` in [`super::Config`] when the log is off.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestLogConfig {
    /// NATS server URL(s), comma-separated: `nats://10.0.0.5:4222,nats://10.0.0.6:4222`.
    pub url: String,
    /// The JetStream stream (created when missing): default `DIDBAN_INGEST`.
    pub stream: String,
    /// Subjects are `<subject_prefix>.<partition>`: default `didban.ingest`.
    pub subject_prefix: String,
    /// How many partitions accepted batches are spread over (default 1). Every process
    /// that publishes must use the same number.
    pub partitions: u32,
    /// The partition this process consumes into its stores, `None` when it only
    /// publishes. Defaults to 0 when there is one partition.
    pub partition: Option<u32>,
    /// Stream replicas, for a NATS cluster (default 1; 3 to survive a server's loss).
    pub replicas: usize,
    /// How long the stream keeps a message: the replay window of a replacement ingester
    /// (default 48h; it must exceed a head's life before its block is published and a
    /// log day's before it is sealed).
    pub max_age: Duration,
    /// Longest wait for JetStream's acknowledgement of a publish before the client gets
    /// 503 (default 10s).
    pub publish_timeout: Duration,
}

/// `[ingest_log]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileIngestLog {
    url: Option<String>,
    stream: Option<String>,
    subject_prefix: Option<String>,
    partitions: Option<u32>,
    partition: Option<u32>,
    replicas: Option<usize>,
    max_age: Option<String>,
    publish_timeout: Option<String>,
}

/// Reads `[ingest_log]` (`env` reads an environment variable); `None` when no URL is set.
pub(super) fn ingest_log(
    file: FileIngestLog,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<IngestLogConfig>> {
    let Some(url) = file.url.or_else(|| env(URL_ENV)) else {
        return Ok(None);
    };
    let partitions = file.partitions.unwrap_or(1);
    if partitions == 0 {
        bail!("ingest_log.partitions must be at least 1");
    }
    let partition = match file.partition {
        Some(p) if p >= partitions => {
            bail!("ingest_log.partition {p} is not below ingest_log.partitions ({partitions})")
        }
        Some(p) => Some(p),
        None if partitions == 1 => Some(0),
        None => None,
    };
    let stream = file.stream.unwrap_or_else(|| "DIDBAN_INGEST".to_string());
    if stream.is_empty() || stream.contains(['.', ' ', '*', '>']) {
        bail!("ingest_log.stream {stream:?} must be a non-empty name without '.', ' ', '*' or '>'");
    }
    let subject_prefix = file.subject_prefix.unwrap_or_else(|| "didban.ingest".to_string());
    if subject_prefix.is_empty() || subject_prefix.contains([' ', '*', '>']) {
        bail!("ingest_log.subject_prefix {subject_prefix:?} must be a non-empty subject without wildcards");
    }
    let replicas = file.replicas.unwrap_or(1);
    if !(1..=5).contains(&replicas) {
        bail!("ingest_log.replicas {replicas} must be between 1 and 5 (JetStream's limit)");
    }
    let duration = |key: &str, value: Option<String>, default: Duration| -> anyhow::Result<Duration> {
        match value {
            Some(v) => parse_duration(&v).with_context(|| format!("ingest_log.{key}")),
            None => Ok(default),
        }
    };
    Ok(Some(IngestLogConfig {
        url,
        stream,
        subject_prefix,
        partitions,
        partition,
        replicas,
        max_age: duration("max_age", file.max_age, Duration::from_secs(48 * 3600))?,
        publish_timeout: duration("publish_timeout", file.publish_timeout, Duration::from_secs(10))?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> anyhow::Result<Option<IngestLogConfig>> {
        let file: FileIngestLog = toml::from_str(toml_text).unwrap();
        ingest_log(file, |_| None)
    }

    #[test]
    fn off_without_a_url_and_partition_zero_by_default() {
        assert_eq!(parse("").unwrap(), None);
        let c = parse("url = \"nats://127.0.0.1:4222\"").unwrap().unwrap();
        assert_eq!((c.partitions, c.partition, c.replicas), (1, Some(0), 1));
        assert_eq!(c.max_age, Duration::from_secs(48 * 3600));
        let env = ingest_log(FileIngestLog::default(), |k| {
            (k == URL_ENV).then(|| "nats://x".to_string())
        });
        assert_eq!(env.unwrap().unwrap().url, "nats://x");
    }

    #[test]
    fn several_partitions_need_an_explicit_one_to_consume() {
        let c = parse("url = \"nats://a\"\npartitions = 3").unwrap().unwrap();
        assert_eq!(c.partition, None);
        let c = parse("url = \"nats://a\"\npartitions = 3\npartition = 2")
            .unwrap()
            .unwrap();
        assert_eq!(c.partition, Some(2));
        let e = parse("url = \"nats://a\"\npartitions = 3\npartition = 3").unwrap_err();
        assert!(e.to_string().contains("partition 3"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse("url = \"nats://a\"\nstream = \"a.b\"").unwrap_err();
        assert!(e.to_string().contains("\"a.b\""), "{e}");
        let e = parse("url = \"nats://a\"\nreplicas = 7").unwrap_err();
        assert!(e.to_string().contains("replicas 7"), "{e}");
        let e = parse("url = \"nats://a\"\npartitions = 0").unwrap_err();
        assert!(e.to_string().contains("partitions"), "{e}");
    }
}
