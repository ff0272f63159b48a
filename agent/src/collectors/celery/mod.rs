//! Celery's event stream on the broker (what celery-exporter and Flower read): a background
//! listener subscribes on a Redis broker ([`redis_events`]) or a RabbitMQ one ([`amqp`]),
//! both feeding the same decoding ([`event`]) and state ([`state`]), and each collection
//! turns what arrived into samples. Workers publish events only when started with `-E`
//! (`worker_send_task_events`); `task-sent` needs `task_send_sent_event` on the client.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::collectors::redis::target::{label_instance, RedisTarget};
use crate::collectors::Collector;
use crate::config::{RabbitmqConfig, RedisConfig};
use crate::error::CollectError;
use crate::model::Sample;
use amqp::AmqpTarget;
use didban_base::now_ms;
use feed::Feed;

pub mod amqp;
pub mod event;
pub mod feed;
pub mod histogram;
pub mod pending;
pub mod redis_events;
pub mod state;
pub mod wait;

pub use redis_events::event_patterns;

/// The broker a listener reads.
#[derive(Clone)]
enum Broker {
    Redis {
        target: RedisTarget,
        patterns: Vec<String>,
    },
    Amqp(AmqpTarget),
}

/// Listens to one broker's Celery events; the listener starts at the first collection and
/// stops when the collector is dropped.
pub struct CeleryEventsCollector {
    broker: Broker,
    /// The broker without credentials.
    redacted: String,
    /// `instance` of every sample: the broker's `host:port`.
    instance: String,
    feed: Feed,
    listener: Option<JoinHandle<()>>,
}

impl CeleryEventsCollector {
    /// A listener for the Redis broker of `config.url`; fails only if the URL is malformed.
    pub fn new(config: &RedisConfig) -> Result<CeleryEventsCollector, CollectError> {
        let target = RedisTarget::new(config)?;
        let patterns = event_patterns(config, target.db);
        let (redacted, instance) = (target.redacted.clone(), target.instance.clone());
        Ok(CeleryEventsCollector::listening(
            redacted,
            instance,
            Broker::Redis { target, patterns },
            config.celery_max_task_names,
            config.celery_worker_forget_after,
        ))
    }

    /// A listener for the RabbitMQ broker of `config.amqp_url`; fails only if the URL is
    /// malformed or its CA file unreadable.
    pub fn amqp(config: &RabbitmqConfig) -> Result<CeleryEventsCollector, CollectError> {
        let target = AmqpTarget::new(config)?;
        let (redacted, instance) = (target.redacted.clone(), target.instance.clone());
        Ok(CeleryEventsCollector::listening(
            redacted,
            instance,
            Broker::Amqp(target),
            config.celery_max_task_names,
            config.celery_worker_forget_after,
        ))
    }

    /// The collector for one broker, its event state empty and no listener started yet.
    fn listening(
        redacted: String,
        instance: String,
        broker: Broker,
        max_task_names: usize,
        forget_after: Duration,
    ) -> CeleryEventsCollector {
        let feed = Feed::new(&redacted, max_task_names, forget_after);
        CeleryEventsCollector {
            redacted,
            instance,
            broker,
            feed,
            listener: None,
        }
    }

    /// Whether the listener is subscribed right now.
    pub fn subscribed(&self) -> bool {
        self.feed.subscribed()
    }

    /// Starts the listener if it is not running (it needs the runtime of the collections).
    pub fn start(&mut self) {
        if self.listener.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let feed = self.feed.clone();
        let task = match self.broker.clone() {
            Broker::Redis { target, patterns } => tokio::spawn(feed::run(feed, move |f| {
                redis_events::session(target.clone(), patterns.clone(), f)
            })),
            Broker::Amqp(target) => tokio::spawn(feed::run(feed, move |f| amqp::session(target.clone(), f))),
        };
        self.listener = Some(task);
    }
}

impl Drop for CeleryEventsCollector {
    fn drop(&mut self) {
        if let Some(h) = self.listener.take() {
            h.abort();
        }
    }
}

impl Collector for CeleryEventsCollector {
    fn name(&self) -> String {
        format!("celery/{}", self.redacted)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            self.start();
            let mut out = self.feed.samples(now_ms());
            label_instance(&mut out, &self.instance);
            Ok(out)
        })
    }
}
