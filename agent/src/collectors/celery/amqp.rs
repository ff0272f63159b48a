//! Celery's events on a RabbitMQ (AMQP 0-9-1) broker, read as `celery events` and
//! celery-exporter read them: the `celeryev` topic exchange (declared as Celery declares
//! it, durable, so declaring it first is harmless), an exclusive auto-delete queue
//! `celeryev.didban-<pid>-<n>` bound with routing key `#` (every `worker.*` and `task.*`
//! event, `task.multi` batches included), consumed with acknowledgements and a prefetch
//! window so neither the agent nor the broker holds more than a bounded backlog: the
//! queue drops its oldest messages past [`MAX_QUEUED`] or when older than [`MESSAGE_TTL`].
//! The message body is the event (JSON), its serializer in the content type.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ConnectionProperties, DefaultConnectionBuilder, ExchangeKind};

use super::event::{decode_body, DecodeError, Event};
use super::feed::{Feed, SessionEnd};
use crate::config::RabbitmqConfig;
use crate::error::CollectError;

/// Messages the broker hands the agent before it acknowledges some.
pub const PREFETCH: u16 = 500;

/// Most messages waiting in the agent's queue; older ones are dropped first.
pub const MAX_QUEUED: i64 = 100_000;

/// Messages older than this are dropped by the broker (the agent is stuck or too slow).
pub const MESSAGE_TTL: Duration = Duration::from_secs(60);

/// Connecting and each declaration give up after this long.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

static QUEUE_SEQ: AtomicU64 = AtomicU64::new(0);

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct AmqpTarget {
    /// `amqp://user:password@host:port/vhost` as configured.
    pub url: String,
    /// The URL without the password, for logs and the collector's name.
    pub redacted: String,
    /// The `instance` label: the broker's `host:port`.
    pub instance: String,
    /// Celery's `event_exchange`.
    pub exchange: String,
    /// PEM of extra CAs trusted for `amqps://`, empty for none.
    pub ca_pem: String,
}

impl AmqpTarget {
    /// The target of `config.amqp_url` (`amqp://` or `amqps://`); fails when the URL does
    /// not parse or the CA file cannot be read.
    pub fn new(config: &RabbitmqConfig) -> Result<AmqpTarget, CollectError> {
        let url = config.amqp_url.as_str();
        let bad = |why: String| CollectError::Target {
            target: redact(url),
            why,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let default_port = match parsed.scheme() {
            "amqp" => 5672,
            "amqps" => 5671,
            other => return Err(bad(format!("scheme {other:?} is not amqp or amqps"))),
        };
        let host = parsed.host_str().unwrap_or("localhost").to_string();
        let port = parsed.port().unwrap_or(default_port);
        // kombu reads an empty vhost (`amqp://h:5672/`) as "/", lapin as "": say "/" plainly.
        let mut connect = parsed;
        if connect.path().is_empty() || connect.path() == "/" {
            connect.set_path("/%2f");
        }
        let connect = connect.to_string();
        connect.parse::<lapin::uri::AMQPUri>().map_err(bad)?;
        let ca_pem = if config.tls_ca_file.is_empty() {
            String::new()
        } else {
            let pem = crate::tls::read_ca(&config.tls_ca_file).map_err(bad)?;
            String::from_utf8_lossy(&pem).into_owned()
        };
        Ok(AmqpTarget {
            url: connect,
            redacted: redact(url),
            instance: format!("{host}:{port}"),
            exchange: config.celery_event_exchange.clone(),
            ca_pem,
        })
    }
}

/// `url` with its password replaced by `***`.
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable URL>".to_string(),
    }
}

/// Connects, declares and binds the event queue, and feeds every event to `feed` until the
/// connection or the consumer ends.
pub async fn session(target: AmqpTarget, feed: Feed) -> SessionEnd {
    let (connection, mut consumer) = match subscribe(&target).await {
        Ok(c) => c,
        Err(e) => return SessionEnd::Failed(e),
    };
    feed.set_subscribed(true);
    let mut end = "the consumer was cancelled".to_string();
    while let Some(delivery) = consumer.next().await {
        let delivery = match delivery {
            Ok(d) => d,
            Err(e) => {
                end = e.to_string();
                break;
            }
        };
        feed.apply(
            events_of(&delivery.properties, &delivery.data),
            delivery.routing_key.as_str(),
        );
        if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
            end = format!("acknowledging: {e}");
            break;
        }
    }
    let _ = connection.close(200, "didban-agent stops listening".into()).await;
    SessionEnd::Closed(end)
}

/// The events of one message: its body read with the serializer and encoding its
/// properties name; a compressed body (kombu's `compression` header) is refused.
pub fn events_of(properties: &BasicProperties, body: &[u8]) -> Result<Vec<Event>, DecodeError> {
    let text = |v: &Option<lapin::types::ShortString>| v.as_ref().map(|s| s.as_str().to_string());
    let compressed = properties
        .headers()
        .as_ref()
        .is_some_and(|h| h.inner().contains_key("compression"));
    if compressed {
        return Err(DecodeError::ContentEncoding("compressed".into()));
    }
    let content_type = text(properties.content_type()).unwrap_or_default();
    let encoding = text(properties.content_encoding()).unwrap_or_default();
    decode_body(&content_type, &encoding, body)
}

async fn subscribe(target: &AmqpTarget) -> Result<(lapin::Connection, lapin::Consumer), String> {
    let step = |what: &'static str| move |e: lapin::Error| format!("{what}: {e}");
    let tls = OwnedTLSConfig {
        identity: None,
        cert_chain: (!target.ca_pem.is_empty()).then(|| target.ca_pem.clone()),
    };
    let properties =
        ConnectionProperties::default().with_connection_name("didban-agent celery events".into());
    let builder = DefaultConnectionBuilder::new()
        .map_err(step("starting the AMQP client"))?
        .with_uri_str(target.url.clone())
        .with_properties(properties)
        .with_tls_config(tls);
    let connection = timed("connecting", builder.connect())
        .await?
        .map_err(step("connecting"))?;
    let channel = timed("opening a channel", connection.create_channel())
        .await?
        .map_err(step("opening a channel"))?;
    // As Celery declares it: a durable topic exchange.
    let exchange_options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let declare_exchange = channel.exchange_declare(
        target.exchange.as_str().into(),
        ExchangeKind::Topic,
        exchange_options,
        FieldTable::default(),
    );
    timed("declaring the exchange", declare_exchange)
        .await?
        .map_err(|e| format!("declaring exchange {:?}: {e}", target.exchange))?;
    let queue = format!(
        "celeryev.didban-{}-{}",
        std::process::id(),
        QUEUE_SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let mut arguments = FieldTable::default();
    let ttl_ms = i64::try_from(MESSAGE_TTL.as_millis()).unwrap_or(i64::MAX);
    arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl_ms));
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(MAX_QUEUED));
    let queue_options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let declare_queue = channel.queue_declare(queue.as_str().into(), queue_options, arguments);
    timed("declaring the queue", declare_queue)
        .await?
        .map_err(|e| format!("declaring queue {queue:?}: {e}"))?;
    let bind = channel.queue_bind(
        queue.as_str().into(),
        target.exchange.as_str().into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    );
    timed("binding the queue", bind)
        .await?
        .map_err(|e| format!("binding {queue:?} to {:?}: {e}", target.exchange))?;
    timed(
        "setting the prefetch",
        channel.basic_qos(PREFETCH, BasicQosOptions::default()),
    )
    .await?
    .map_err(step("basic.qos"))?;
    let consume_options = BasicConsumeOptions {
        exclusive: true,
        ..BasicConsumeOptions::default()
    };
    let consume = channel.basic_consume(
        queue.as_str().into(),
        "didban-agent".into(),
        consume_options,
        FieldTable::default(),
    );
    let consumer = timed("consuming", consume)
        .await?
        .map_err(|e| format!("consuming {queue:?}: {e}"))?;
    Ok((connection, consumer))
}

/// `f` bounded by [`STEP_TIMEOUT`].
async fn timed<T>(what: &str, f: impl std::future::Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .map_err(|_| format!("{what}: timed out after {STEP_TIMEOUT:?}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn target(url: &str) -> Result<AmqpTarget, CollectError> {
        let config: RabbitmqConfig = toml::from_str(&format!("amqp_url = {url:?}")).unwrap();
        AmqpTarget::new(&config)
    }

    #[test]
    fn urls_give_instance_and_hide_the_password() {
        let t = target("amqp://u:secret@mq.example:5673/%2f").unwrap();
        assert_eq!(t.instance, "mq.example:5673");
        assert!(!t.redacted.contains("secret"), "{}", t.redacted);
        assert!(t.url.ends_with("/%2f"), "{}", t.url);
        let t = target("amqps://mq.example/vh").unwrap();
        assert_eq!(t.instance, "mq.example:5671");
        assert!(t.url.ends_with("/vh"), "{}", t.url);
        // Celery's usual spelling of the default vhost.
        let t = target("amqp://guest@h:5672//").unwrap();
        let vhost = t.url.parse::<lapin::uri::AMQPUri>().unwrap().vhost;
        assert_eq!(vhost, "/");
        let e = target("redis://u:secret@h/0").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("not amqp") && !text.contains("secret"), "{text}");
    }

    #[test]
    fn message_properties_choose_the_decoder() {
        let json = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("utf-8".into());
        let events = events_of(&json, br#"{"type": "worker-online", "hostname": "w@h"}"#).unwrap();
        assert_eq!(events[0].kind, "worker-online");
        let pickle = BasicProperties::default().with_content_type("application/x-python-serialize".into());
        assert!(matches!(
            events_of(&pickle, b"x"),
            Err(DecodeError::ContentType(_))
        ));
        let mut headers = FieldTable::default();
        headers.insert(
            "compression".into(),
            AMQPValue::LongString("application/x-gzip".into()),
        );
        let zipped = json.with_headers(headers);
        assert!(matches!(
            events_of(&zipped, b"x"),
            Err(DecodeError::ContentEncoding(_))
        ));
    }
}
