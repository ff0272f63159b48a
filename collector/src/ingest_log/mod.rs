//! The replicated ingest log (`[ingest_log]`, issue 16): a NATS JetStream stream in front
//! of the stores, so an accepted batch survives the loss of the process that stores it.
//!
//! - A receiver (remote_write, OTLP) maps a request as always, then, instead of appending
//!   to its own stores, publishes the batch ([`IngestLog::publish`]) and answers the client
//!   only after JetStream acknowledged every part (stored on `replicas` servers).
//! - An ingester consumes its partition (`consumer`) with a durable consumer, appends each
//!   batch to its stores with the message's stream sequence written in the same WAL record
//!   (`didban_store::LogPosition`), and acknowledges the stream after the append is durable.
//!   A redelivered message at or below the highest sequence its WAL holds is skipped, so a
//!   killed ingester restarted over its data directory loses nothing and stores nothing
//!   twice.
//!
//! - `message`: the bytes of one message (a batch of one signal).
//! - `partition`: which partition each item goes to.
//! - `consumer`: the ingester's loop.
//! - `marks`: what the stores already hold of a partition (where the loop resumes and skips).

pub mod consumer;
mod marks;
pub mod message;
pub mod partition;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use tokio::sync::OnceCell;

use crate::config::ingest_log::IngestLogConfig;
use crate::ingest::error::IngestError;
use message::Batch;

/// How long JetStream remembers a message id to drop a republished duplicate (a client
/// retrying a request whose acknowledgement it never got, within this window).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A connection to the ingest stream; cheap to share behind an `Arc`.
pub struct IngestLog {
    config: IngestLogConfig,
    client: async_nats::Client,
    context: jetstream::Context,
    /// Set once the stream is known to exist (created or found); retried until then.
    stream_ready: OnceCell<()>,
}

impl IngestLog {
    /// Connects to `config.url`. The connection is made in the background and kept up by
    /// the client (reconnecting with backoff), so a NATS server that is down at start
    /// costs 503s, not a failed start.
    pub async fn connect(config: IngestLogConfig) -> anyhow::Result<IngestLog> {
        let client = async_nats::ConnectOptions::new()
            .name("didban")
            .retry_on_initial_connect()
            .connect(config.url.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("ingest_log.url {:?}: {e}", config.url))?;
        let context = jetstream::new(client.clone());
        Ok(IngestLog {
            config,
            client,
            context,
            stream_ready: OnceCell::new(),
        })
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &IngestLogConfig {
        &self.config
    }

    /// The subject of `partition`.
    pub fn subject(&self, partition: u32) -> String {
        format!("{}.{partition}", self.config.subject_prefix)
    }

    /// The JetStream context (for the consumer).
    pub(crate) fn context(&self) -> &jetstream::Context {
        &self.context
    }

    /// Makes sure the stream exists (creating it with the configured replicas and age),
    /// once per process; a failure is retried by the next caller.
    pub async fn ensure_stream(&self) -> Result<(), String> {
        self.stream_ready
            .get_or_try_init(|| async {
                let config = stream::Config {
                    name: self.config.stream.clone(),
                    subjects: vec![format!("{}.*", self.config.subject_prefix)],
                    num_replicas: self.config.replicas,
                    max_age: self.config.max_age,
                    storage: stream::StorageType::File,
                    retention: stream::RetentionPolicy::Limits,
                    duplicate_window: DUPLICATE_WINDOW,
                    ..Default::default()
                };
                self.context
                    .get_or_create_stream(config)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("ingest log stream {:?}: {e}", self.config.stream))
            })
            .await
            .map(|_| ())
    }

    /// Publishes `batch`, split over the partitions, and returns once JetStream has
    /// acknowledged every part; the error (503 to the client) names what failed. Parts
    /// acknowledged before another failed stay in the stream: a client's retry publishes
    /// the same bytes under the same message id, which JetStream drops as a duplicate.
    pub async fn publish(&self, batch: Batch) -> Result<(), IngestError> {
        if batch.is_empty() {
            return Ok(());
        }
        let timeout = self.config.publish_timeout;
        match tokio::time::timeout(timeout, self.ensure_stream()).await {
            Ok(result) => result.map_err(IngestError::Unavailable)?,
            Err(_) => {
                return Err(IngestError::Unavailable(format!(
                    "ingest log: JetStream did not answer within {timeout:?}"
                )))
            }
        }
        let limit = self.message_limit();
        let mut pending = Vec::new();
        for (partition, part) in partition::split(batch, self.config.partitions) {
            let subject = self.subject(partition);
            for bytes in message::encode_within(part, limit).map_err(IngestError::BadRequest)? {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", message_id(partition, &bytes).as_str());
                let ack = self
                    .context
                    .publish_with_headers(subject.clone(), headers, bytes.into())
                    .await
                    .map_err(|e| {
                        IngestError::Unavailable(format!("ingest log: publishing to {subject}: {e}"))
                    })?;
                pending.push((subject.clone(), ack));
            }
        }
        for (subject, ack) in pending {
            match tokio::time::timeout(timeout, ack).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(IngestError::Unavailable(format!(
                        "ingest log: JetStream did not store the batch for {subject}: {e}"
                    )))
                }
                Err(_) => {
                    return Err(IngestError::Unavailable(format!(
                        "ingest log: no acknowledgement for {subject} within {timeout:?}"
                    )))
                }
            }
        }
        Ok(())
    }
}

impl IngestLog {
    /// The largest message body to publish: the server's `max_payload` (1 MiB unless
    /// configured otherwise) less room for the headers.
    fn message_limit(&self) -> usize {
        let max_payload = match self.client.server_info().max_payload {
            0 => 1024 * 1024,
            n => n,
        };
        max_payload.saturating_sub(HEADER_ROOM).max(HEADER_ROOM)
    }

    /// Most bytes one fetch asks for: 8 MiB, or two of the largest messages when the
    /// server allows bigger ones (a fetch whose first message is larger than its limit
    /// would fail every time).
    pub(crate) fn fetch_bytes(&self) -> usize {
        (8 * 1024 * 1024).max(2 * (self.message_limit() + HEADER_ROOM))
    }
}

/// Bytes kept free in each message for its headers (the message id).
const HEADER_ROOM: usize = 4096;

/// The message id JetStream deduplicates by: the partition and two 64-bit hashes of the
/// bytes, so the same part of the same request always gets the same id.
fn message_id(partition: u32, bytes: &[u8]) -> String {
    let a = xxhash_rust::xxh64::xxh64(bytes, 0);
    let b = xxhash_rust::xxh64::xxh64(bytes, 0x9e37_79b9_7f4a_7c15);
    format!("{partition}-{}-{a:016x}{b:016x}", bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_follow_the_bytes_and_the_partition() {
        assert_eq!(message_id(1, b"abc"), message_id(1, b"abc"));
        assert_ne!(message_id(1, b"abc"), message_id(2, b"abc"));
        assert_ne!(message_id(1, b"abc"), message_id(1, b"abd"));
    }
}
