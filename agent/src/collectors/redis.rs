//! Redis: `INFO` metrics named like redis_exporter, lengths of configured lists, and Celery
//! queue lengths counted the way kombu stores them on Redis: the bare queue name holds priority
//! 0 and `name\x06\x16<step>` the other priority steps (all behind kombu's `global_keyprefix`,
//! if set), plus the size of kombu's `unacked` hash.

use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::MultiplexedConnection;

use crate::collectors::Collector;
use crate::config::RedisConfig;
use crate::error::CollectError;
use crate::model::{MetricKind, Sample};
use didban_base::now_ms;

/// kombu's separator between a queue name and its priority step.
pub const KOMBU_PRIORITY_SEP: &str = "\x06\x16";

/// `INFO` field → (redis_exporter name, kind).
const INFO_METRICS: &[(&str, &str, MetricKind)] = &[
    ("used_memory", "redis_memory_used_bytes", MetricKind::Gauge),
    (
        "used_memory_rss",
        "redis_memory_used_rss_bytes",
        MetricKind::Gauge,
    ),
    (
        "used_memory_peak",
        "redis_memory_used_peak_bytes",
        MetricKind::Gauge,
    ),
    ("maxmemory", "redis_memory_max_bytes", MetricKind::Gauge),
    (
        "mem_fragmentation_ratio",
        "redis_mem_fragmentation_ratio",
        MetricKind::Gauge,
    ),
    ("connected_clients", "redis_connected_clients", MetricKind::Gauge),
    ("blocked_clients", "redis_blocked_clients", MetricKind::Gauge),
    (
        "total_commands_processed",
        "redis_commands_processed_total",
        MetricKind::Counter,
    ),
    (
        "total_connections_received",
        "redis_connections_received_total",
        MetricKind::Counter,
    ),
    (
        "rejected_connections",
        "redis_rejected_connections_total",
        MetricKind::Counter,
    ),
    ("keyspace_hits", "redis_keyspace_hits_total", MetricKind::Counter),
    (
        "keyspace_misses",
        "redis_keyspace_misses_total",
        MetricKind::Counter,
    ),
    ("evicted_keys", "redis_evicted_keys_total", MetricKind::Counter),
    ("expired_keys", "redis_expired_keys_total", MetricKind::Counter),
    (
        "total_net_input_bytes",
        "redis_net_input_bytes_total",
        MetricKind::Counter,
    ),
    (
        "total_net_output_bytes",
        "redis_net_output_bytes_total",
        MetricKind::Counter,
    ),
    ("uptime_in_seconds", "redis_uptime_in_seconds", MetricKind::Gauge),
    (
        "rdb_changes_since_last_save",
        "redis_rdb_changes_since_last_save",
        MetricKind::Gauge,
    ),
    (
        "rdb_last_save_time",
        "redis_rdb_last_save_timestamp_seconds",
        MetricKind::Gauge,
    ),
    ("aof_enabled", "redis_aof_enabled", MetricKind::Gauge),
    ("connected_slaves", "redis_connected_slaves", MetricKind::Gauge),
    (
        "master_repl_offset",
        "redis_master_repl_offset",
        MetricKind::Gauge,
    ),
    (
        "master_last_io_seconds_ago",
        "redis_master_last_io_seconds_ago",
        MetricKind::Gauge,
    ),
];

/// Watches one Redis server.
pub struct RedisCollector {
    client: redis::Client,
    target: String,
    db: String,
    config: RedisConfig,
    connection: Option<MultiplexedConnection>,
    reachability: super::Reachability,
    /// `list_keys` entries that already warned (wrong type), so the warning is said once.
    warned_keys: std::collections::HashSet<String>,
}

/// The `db` label (`db0`) of a `redis://host:port/N` URL.
fn db_label(url: &str) -> String {
    let path = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    let db = path.split_once('/').map(|(_, d)| d).unwrap_or("");
    let digits: String = db.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        "db0".to_string()
    } else {
        format!("db{digits}")
    }
}

/// The URL without a password, for logs and the collector name.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// The Redis keys holding a Celery queue, one per kombu priority step.
pub fn celery_queue_keys(prefix: &str, queue: &str, steps: &[u32]) -> Vec<String> {
    let mut keys = Vec::with_capacity(steps.len().max(1));
    for step in steps {
        if *step == 0 {
            keys.push(format!("{prefix}{queue}"));
        } else {
            keys.push(format!("{prefix}{queue}{KOMBU_PRIORITY_SEP}{step}"));
        }
    }
    if !steps.contains(&0) {
        keys.push(format!("{prefix}{queue}"));
    }
    keys
}

/// Parses `INFO` output into samples.
pub fn info_samples(info: &str, now: i64) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut role = String::new();
    let mut version = String::new();
    for line in info.lines() {
        let Some((key, value)) = line.trim().split_once(':') else {
            continue;
        };
        match key {
            "role" => role = value.to_string(),
            "redis_version" => version = value.to_string(),
            "rdb_last_bgsave_status" => {
                out.push(Sample::gauge(
                    "redis_rdb_last_bgsave_status",
                    &[],
                    f64::from(u8::from(value == "ok")),
                    now,
                ));
            }
            "master_link_status" => {
                out.push(Sample::gauge(
                    "redis_master_link_up",
                    &[],
                    f64::from(u8::from(value == "up")),
                    now,
                ));
            }
            _ => {}
        }
        if let Some(db) = key
            .strip_prefix("db")
            .filter(|d| d.chars().all(|c| c.is_ascii_digit()))
        {
            // db0:keys=1,expires=0,avg_ttl=0
            let db = format!("db{db}");
            for part in value.split(',') {
                let Some((k, v)) = part.split_once('=') else {
                    continue;
                };
                let Ok(v) = v.parse::<f64>() else { continue };
                match k {
                    "keys" => out.push(Sample::gauge("redis_db_keys", &[("db", &db)], v, now)),
                    "expires" => out.push(Sample::gauge("redis_db_keys_expiring", &[("db", &db)], v, now)),
                    "avg_ttl" => out.push(Sample::gauge(
                        "redis_db_avg_ttl_seconds",
                        &[("db", &db)],
                        v / 1000.0,
                        now,
                    )),
                    _ => {}
                }
            }
            continue;
        }
        for (field, name, kind) in INFO_METRICS {
            if key == *field {
                if let Ok(v) = value.parse::<f64>() {
                    out.push(Sample::new(name, &[], *kind, v, now));
                }
            }
        }
    }
    if !role.is_empty() {
        out.push(Sample::gauge(
            "redis_instance_info",
            &[("role", &role), ("redis_version", &version)],
            1.0,
            now,
        ));
    }
    out
}

impl RedisCollector {
    /// A collector for `config.url`; fails only if the URL is malformed.
    pub fn new(config: &RedisConfig) -> Result<RedisCollector, CollectError> {
        let target = redact(&config.url);
        let bad = |why: String| CollectError::Target {
            target: target.clone(),
            why,
        };
        let client = if config.tls_ca_file.is_empty() {
            redis::Client::open(config.url.as_str()).map_err(|e| bad(e.to_string()))?
        } else {
            let root_cert = crate::tls::read_ca(&config.tls_ca_file).map_err(bad)?;
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            };
            redis::Client::build_with_tls(config.url.as_str(), certs).map_err(|e| bad(e.to_string()))?
        };
        Ok(RedisCollector {
            client,
            db: db_label(&config.url),
            target,
            config: config.clone(),
            connection: None,
            reachability: Default::default(),
            warned_keys: std::collections::HashSet::new(),
        })
    }

    async fn connection(&mut self) -> Result<MultiplexedConnection, String> {
        if let Some(c) = &self.connection {
            return Ok(c.clone());
        }
        let connect = self.client.get_multiplexed_async_connection();
        let c = match tokio::time::timeout(self.config.timeout, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(format!("connecting: {e}")),
            Err(_) => return Err(format!("connecting: timed out after {:?}", self.config.timeout)),
        };
        self.connection = Some(c.clone());
        Ok(c)
    }

    async fn collect_all(&mut self, now: i64) -> Result<Vec<Sample>, String> {
        let mut con = self.connection().await?;
        let timeout = self.config.timeout;
        let info: String = with_timeout(timeout, redis::cmd("INFO").arg("ALL").query_async(&mut con)).await?;
        let mut out = info_samples(&info, now);
        // One pipeline for the Celery keys (kombu makes them lists, so LLEN cannot fail on type).
        let mut pipe = redis::pipe();
        let mut queue_keys = Vec::new();
        for queue in &self.config.celery_queues {
            let keys = celery_queue_keys(
                &self.config.celery_key_prefix,
                queue,
                &self.config.celery_priority_steps,
            );
            for k in &keys {
                pipe.cmd("LLEN").arg(k);
            }
            queue_keys.push((queue.clone(), keys.len()));
        }
        if !queue_keys.is_empty() {
            pipe.cmd("HLEN")
                .arg(format!("{}unacked", self.config.celery_key_prefix));
            let lengths: Vec<i64> = with_timeout(timeout, pipe.query_async(&mut con)).await?;
            let mut lengths = lengths.into_iter();
            for (queue, n) in queue_keys {
                let mut total = 0i64;
                for _ in 0..n {
                    total += lengths.next().unwrap_or(0);
                }
                out.push(Sample::gauge(
                    "celery_queue_length",
                    &[("queue_name", &queue)],
                    total as f64,
                    now,
                ));
            }
            let unacked = lengths.next().unwrap_or(0);
            out.push(Sample::gauge("celery_unacked_messages", &[], unacked as f64, now));
        }
        // Configured lists one by one: a key of another type costs only its own metric.
        for key in self.config.list_keys.clone() {
            let len: Result<i64, String> =
                with_timeout(timeout, redis::cmd("LLEN").arg(&key).query_async(&mut con)).await;
            match len {
                Ok(n) => out.push(Sample::gauge(
                    "redis_key_size",
                    &[("db", &self.db), ("key", &key)],
                    n as f64,
                    now,
                )),
                Err(e) => {
                    if self.warned_keys.insert(key.clone()) {
                        tracing::warn!(target = %self.target, key = %key, error = %e, "redis list_keys entry skipped");
                    }
                }
            }
        }
        Ok(out)
    }
}

async fn with_timeout<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("timed out after {timeout:?}")),
    }
}

impl Collector for RedisCollector {
    fn name(&self) -> String {
        format!("redis/{}", self.target)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            let now = now_ms();
            let result = self.collect_all(now).await;
            let up = self.reachability.record("redis", &self.target, &result);
            let mut out = result.unwrap_or_else(|_| {
                self.connection = None;
                Vec::new()
            });
            out.push(Sample::gauge("redis_up", &[], up, now));
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_and_labels() {
        assert_eq!(
            celery_queue_keys("", "celery", &[0, 3, 6, 9]),
            vec!["celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169"]
        );
        assert_eq!(
            celery_queue_keys("app:", "q", &[5]),
            vec!["app:q\x06\x165", "app:q"]
        );
        assert_eq!(db_label("redis://h:1/3"), "db3");
        assert_eq!(db_label("redis://h:1"), "db0");
        assert_eq!(redact("redis://:pw@h:1/0"), "redis://h:1/0");
    }

    #[test]
    fn info_parsing() {
        let s = info_samples(
            "# Server\r\nredis_version:7.0.15\r\nrole:master\r\nused_memory:1000\r\nkeyspace_hits:5\r\n\
             rdb_last_bgsave_status:ok\r\ndb0:keys=3,expires=1,avg_ttl=2000\r\nbogus\r\n",
            1,
        );
        let get = |n: &str| s.iter().find(|x| x.name == n).unwrap();
        assert_eq!(get("redis_memory_used_bytes").value, 1000.0);
        assert_eq!(get("redis_keyspace_hits_total").kind, MetricKind::Counter);
        assert_eq!(get("redis_db_keys").label("db"), Some("db0"));
        assert_eq!(get("redis_db_keys_expiring").value, 1.0);
        assert_eq!(get("redis_db_avg_ttl_seconds").value, 2.0);
        assert_eq!(get("redis_rdb_last_bgsave_status").value, 1.0);
        assert_eq!(get("redis_instance_info").label("role"), Some("master"));
    }
}
