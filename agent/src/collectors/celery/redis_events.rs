//! Celery's events on a Redis broker: kombu publishes the `celeryev` fanout exchange on
//! pub/sub channels `<global_keyprefix><fanout_prefix><exchange>/<routing key>`
//! (`fanout_prefix` is `/{db}.` by default; without kombu's `fanout_patterns` the
//! `/<routing key>` part is absent), so a session subscribes to both `<…><exchange>` and
//! `<…><exchange>/*`.

use std::time::Duration;

use futures::StreamExt;

use super::event::decode;
use super::feed::{Feed, SessionEnd};
use crate::collectors::redis::queues::glob_escape;
use crate::collectors::redis::target::RedisTarget;
use crate::config::RedisConfig;

/// The pub/sub channel patterns carrying Celery's events for `config`.
pub fn event_patterns(config: &RedisConfig, db: i64) -> Vec<String> {
    let fanout = config.celery_fanout_prefix.replace("{db}", &db.to_string());
    let base = glob_escape(&format!(
        "{}{}{}",
        config.celery_key_prefix, fanout, config.celery_event_exchange
    ));
    vec![base.clone(), format!("{base}/*")]
}

/// Subscribes to `patterns` and feeds every message to `feed` until the connection ends.
pub async fn session(target: RedisTarget, patterns: Vec<String>, feed: Feed) -> SessionEnd {
    let pubsub = match subscribe(&target, &patterns).await {
        Ok(p) => p,
        Err(e) => return SessionEnd::Failed(e),
    };
    feed.set_subscribed(true);
    let mut messages = pubsub.into_on_message();
    while let Some(msg) = messages.next().await {
        feed.apply(decode(msg.get_payload_bytes()), msg.get_channel_name());
    }
    SessionEnd::Closed("the connection ended".into())
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
