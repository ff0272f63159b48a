//! Celery's event stream on a Redis broker (what celery-exporter and Flower read): a
//! background task subscribes to the pub/sub channels kombu publishes the `celeryev`
//! fanout exchange on, and each collection turns what arrived into samples ([`state`]).
//!
//! The channel is `<global_keyprefix><fanout_prefix><exchange>/<routing key>`
//! (`fanout_prefix` is `/{db}.` by default; without kombu's `fanout_patterns` the
//! `/<routing key>` part is absent), so the listener subscribes to both
//! `<…><exchange>` and `<…><exchange>/*`. Workers publish events only when started with
//! `-E` (`worker_send_task_events`); `task-sent` needs `task_send_sent_event` on the client.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::collectors::redis::queues::glob_escape;
use crate::collectors::redis::target::{label_instance, RedisTarget};
use crate::collectors::Collector;
use crate::config::RedisConfig;
use crate::error::CollectError;
use crate::model::Sample;
use didban_base::now_ms;
use event::decode;
use state::CeleryState;

pub mod event;
pub mod state;

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct Shared {
    state: CeleryState,
    subscribed: bool,
}

/// Listens to one broker's Celery events; the listener starts at the first collection and
/// stops when the collector is dropped.
pub struct CeleryEventsCollector {
    target: RedisTarget,
    patterns: Vec<String>,
    shared: Arc<Mutex<Shared>>,
    listener: Option<JoinHandle<()>>,
}

/// The pub/sub channel patterns carrying Celery's events for `config`.
pub fn event_patterns(config: &RedisConfig, db: i64) -> Vec<String> {
    let fanout = config.celery_fanout_prefix.replace("{db}", &db.to_string());
    let base = glob_escape(&format!(
        "{}{}{}",
        config.celery_key_prefix, fanout, config.celery_event_exchange
    ));
    vec![base.clone(), format!("{base}/*")]
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    match shared.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl CeleryEventsCollector {
    /// A listener for the broker of `config.url`; fails only if the URL is malformed.
    pub fn new(config: &RedisConfig) -> Result<CeleryEventsCollector, CollectError> {
        let target = RedisTarget::new(config)?;
        let patterns = event_patterns(config, target.db);
        let forget_ms = i64::try_from(config.celery_worker_forget_after.as_millis()).unwrap_or(i64::MAX);
        Ok(CeleryEventsCollector {
            target,
            patterns,
            shared: Arc::new(Mutex::new(Shared {
                state: CeleryState::new(config.celery_max_task_names, forget_ms),
                subscribed: false,
            })),
            listener: None,
        })
    }

    /// Whether the listener is subscribed right now.
    pub fn subscribed(&self) -> bool {
        lock(&self.shared).subscribed
    }

    /// Starts the listener if it is not running (it needs the runtime of the collections).
    pub fn start(&mut self) {
        if self.listener.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        self.listener = Some(tokio::spawn(listen(
            self.target.clone(),
            self.patterns.clone(),
            self.shared.clone(),
        )));
    }
}

impl Drop for CeleryEventsCollector {
    fn drop(&mut self) {
        if let Some(h) = self.listener.take() {
            h.abort();
        }
    }
}

/// Subscribes, applies events as they come, and resubscribes after a failure with a
/// growing pause (1 s up to [`MAX_BACKOFF`]).
async fn listen(target: RedisTarget, patterns: Vec<String>, shared: Arc<Mutex<Shared>>) {
    let mut backoff = Duration::from_secs(1);
    let mut last_error = String::new();
    let mut warned_decode = false;
    loop {
        match subscribe(&target, &patterns).await {
            Ok(pubsub) => {
                if !last_error.is_empty() {
                    tracing::info!(target = %target.redacted, "celery event subscription restored");
                    last_error.clear();
                }
                backoff = Duration::from_secs(1);
                lock(&shared).subscribed = true;
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    match decode(msg.get_payload_bytes()) {
                        Ok(events) => {
                            let now = now_ms();
                            let mut g = lock(&shared);
                            for e in &events {
                                g.state.apply(e, now);
                            }
                        }
                        Err(e) => {
                            if !warned_decode {
                                warned_decode = true;
                                tracing::warn!(target = %target.redacted, channel = %msg.get_channel_name(), error = %e, "celery event not understood (only the JSON serializer is); said once");
                            }
                        }
                    }
                }
                lock(&shared).subscribed = false;
                let why = "subscription closed".to_string();
                if why != last_error {
                    tracing::warn!(target = %target.redacted, "celery event subscription closed; resubscribing");
                }
                last_error = why;
            }
            Err(e) => {
                lock(&shared).subscribed = false;
                if e != last_error {
                    tracing::warn!(target = %target.redacted, error = %e, "celery event subscription failed; retrying");
                }
                last_error = e;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribe(target: &RedisTarget, patterns: &[String]) -> Result<redis::aio::PubSub, String> {
    let timeout = Duration::from_secs(10);
    let connect = target.client.get_async_pubsub();
    let mut pubsub = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(format!("connecting: {e}")),
        Err(_) => return Err(format!("connecting: timed out after {timeout:?}")),
    };
    for p in patterns {
        pubsub
            .psubscribe(p)
            .await
            .map_err(|e| format!("PSUBSCRIBE {p:?}: {e}"))?;
    }
    Ok(pubsub)
}

impl Collector for CeleryEventsCollector {
    fn name(&self) -> String {
        format!("celery/{}", self.target.redacted)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            self.start();
            let now = now_ms();
            let mut out = {
                let mut g = lock(&self.shared);
                let subscribed = g.subscribed;
                let mut out = g.state.samples(now, subscribed);
                out.push(Sample::gauge(
                    "celery_events_subscribed",
                    &[],
                    f64::from(u8::from(subscribed)),
                    now,
                ));
                out
            };
            label_instance(&mut out, &self.target.instance);
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn patterns_follow_kombu_channel_naming() {
        let mut c: RedisConfig = toml::from_str("url = \"redis://h/2\"").unwrap();
        assert_eq!(event_patterns(&c, 2), vec!["/2.celeryev", "/2.celeryev/*"]);
        c.celery_key_prefix = "app:".into();
        c.celery_fanout_prefix = String::new();
        assert_eq!(event_patterns(&c, 0), vec!["app:celeryev", "app:celeryev/*"]);
    }
}
