//! Redis: `INFO` metrics named like redis_exporter ([`info`]), lengths of configured lists,
//! and Celery queue lengths per priority counted the way kombu stores them ([`queues`]),
//! every series labelled with the server's `instance` ([`target`]).

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::MultiplexedConnection;

use crate::collectors::Collector;
use crate::config::RedisConfig;
use crate::error::CollectError;
use crate::model::Sample;
use didban_base::now_ms;
use info::info_samples;
use queues::{
    binding_queue, classify, glob_escape, is_work_exchange, lengths_by_priority, queue_key_of, MAX_QUEUES,
};
use target::{label_instance, RedisTarget};

pub mod info;
pub mod queues;
pub mod target;

/// Keys asked for per `SCAN` step.
const SCAN_COUNT: usize = 1000;

/// Watches one Redis server.
pub struct RedisCollector {
    target: RedisTarget,
    db: String,
    config: RedisConfig,
    connection: Option<MultiplexedConnection>,
    reachability: super::Reachability,
    /// `list_keys` entries that already warned (wrong type), so the warning is said once.
    warned_keys: HashSet<String>,
    /// Whether the queue cap was already reported.
    warned_queue_cap: bool,
}

impl RedisCollector {
    /// A collector for `config.url`; fails only if the URL is malformed.
    pub fn new(config: &RedisConfig) -> Result<RedisCollector, CollectError> {
        let target = RedisTarget::new(config)?;
        Ok(RedisCollector {
            db: format!("db{}", target.db),
            target,
            config: config.clone(),
            connection: None,
            reachability: Default::default(),
            warned_keys: HashSet::new(),
            warned_queue_cap: false,
        })
    }

    /// The `instance` label of this server's series.
    pub fn instance(&self) -> &str {
        &self.target.instance
    }

    async fn connection(&mut self) -> Result<MultiplexedConnection, String> {
        if let Some(c) = &self.connection {
            return Ok(c.clone());
        }
        let connect = self.target.client.get_multiplexed_async_connection();
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
        if self.config.celery_discover_queues || !self.config.celery_queues.is_empty() {
            self.celery_queues(&mut con, now, &mut out).await?;
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
                        tracing::warn!(target = %self.target.redacted, key = %key, error = %e, "redis list_keys entry skipped");
                    }
                }
            }
        }
        Ok(out)
    }

    /// `celery_queue_length{queue_name, priority}` of the configured and discovered queues
    /// and `celery_unacked_messages`, reading only keys a `SCAN` found.
    async fn celery_queues(
        &mut self,
        con: &mut MultiplexedConnection,
        now: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), String> {
        let timeout = self.config.timeout;
        let prefix = self.config.celery_key_prefix.clone();
        let sep = self.config.celery_priority_separator.clone();
        let keys = scan(con, &format!("{}*", glob_escape(&prefix)), timeout).await?;
        let found = classify(&keys, &prefix);
        let mut queues: BTreeSet<String> = self.config.celery_queues.iter().cloned().collect();
        if self.config.celery_discover_queues {
            let mut work_exchanges = Vec::new();
            for exchange in &found.binding_exchanges {
                if is_work_exchange(exchange, &self.config.celery_event_exchange) {
                    work_exchanges.push(exchange.clone());
                }
            }
            if !work_exchanges.is_empty() {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for exchange in &work_exchanges {
                    pipe.cmd("SMEMBERS")
                        .arg(format!("{prefix}_kombu.binding.{exchange}"));
                }
                let members: Vec<redis::RedisResult<Vec<String>>> =
                    with_timeout(timeout, pipe.query_async(con)).await?;
                for set in members.into_iter().flatten() {
                    for member in set {
                        if let Some(queue) = binding_queue(&member, &sep) {
                            queues.insert(queue.to_string());
                        }
                    }
                }
            }
        }
        if queues.len() > MAX_QUEUES {
            if !self.warned_queue_cap {
                self.warned_queue_cap = true;
                tracing::warn!(target = %self.target.redacted, queues = queues.len(), cap = MAX_QUEUES, "too many Celery queues; the rest are not reported");
            }
            queues = queues.into_iter().take(MAX_QUEUES).collect();
        }
        // LLEN only the lists that exist.
        let mut existing = Vec::new();
        for key in &found.others {
            if let Some((queue, step)) = queue_key_of(key, &sep, &queues) {
                existing.push((queue.to_string(), step, format!("{prefix}{key}")));
            }
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for (_, _, key) in &existing {
            pipe.cmd("LLEN").arg(key);
        }
        if found.unacked {
            pipe.cmd("HLEN").arg(format!("{prefix}unacked"));
        }
        let mut results: Vec<redis::RedisResult<i64>> = if existing.is_empty() && !found.unacked {
            Vec::new()
        } else {
            with_timeout(timeout, pipe.query_async(con)).await?
        };
        let unacked = if found.unacked {
            results.pop().and_then(|r| r.ok()).unwrap_or(0)
        } else {
            0
        };
        let mut lengths = Vec::with_capacity(existing.len());
        for ((queue, step, _), len) in existing.into_iter().zip(results) {
            // A key of another type (not kombu's) counts as empty.
            lengths.push((queue, step, len.unwrap_or(0)));
        }
        for ((queue, step), len) in lengths_by_priority(&queues, &self.config.celery_priority_steps, &lengths)
        {
            out.push(Sample::gauge(
                "celery_queue_length",
                &[("queue_name", &queue), ("priority", &step.to_string())],
                len as f64,
                now,
            ));
        }
        out.push(Sample::gauge("celery_unacked_messages", &[], unacked as f64, now));
        Ok(())
    }
}

/// Every key matching `pattern`, by `SCAN` (which looks up no key, so it counts no miss).
async fn scan(
    con: &mut MultiplexedConnection,
    pattern: &str,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = with_timeout(
            timeout,
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(con),
        )
        .await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
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
        format!("redis/{}", self.target.redacted)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            let now = now_ms();
            let result = self.collect_all(now).await;
            let up = self.reachability.record("redis", &self.target.redacted, &result);
            let mut out = result.unwrap_or_else(|_| {
                self.connection = None;
                Vec::new()
            });
            out.push(Sample::gauge("redis_up", &[], up, now));
            label_instance(&mut out, &self.target.instance);
            Ok(out)
        })
    }
}
