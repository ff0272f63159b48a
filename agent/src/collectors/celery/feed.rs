//! Where a broker listener puts what it reads, whatever the broker: decoded events go into
//! the shared [`CeleryState`], with whether the listener is subscribed right now; and the
//! reconnect loop every listener runs in ([`run`]).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::event::{DecodeError, Event};
use super::state::CeleryState;
use crate::model::Sample;
use didban_base::now_ms;

/// Longest pause between reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct Shared {
    state: CeleryState,
    subscribed: bool,
    warned_decode: bool,
}

/// The state of one broker's events, shared by its listener task and its collector.
#[derive(Clone)]
pub struct Feed {
    shared: Arc<Mutex<Shared>>,
    /// The broker without credentials, for logs.
    target: String,
}

impl Feed {
    /// An empty feed for `target` (named in logs) with the state's bounds.
    pub fn new(target: &str, max_task_names: usize, forget_after: Duration) -> Feed {
        let forget_ms = i64::try_from(forget_after.as_millis()).unwrap_or(i64::MAX);
        Feed {
            shared: Arc::new(Mutex::new(Shared {
                state: CeleryState::new(max_task_names, forget_ms),
                subscribed: false,
                warned_decode: false,
            })),
            target: target.to_string(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        match self.shared.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The broker named in logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the listener is subscribed right now.
    pub fn subscribed(&self) -> bool {
        self.lock().subscribed
    }

    /// Marks the subscription up or down (logged when it comes up).
    pub fn set_subscribed(&self, up: bool) {
        let was = std::mem::replace(&mut self.lock().subscribed, up);
        if up && !was {
            tracing::info!(target = %self.target, "celery event subscription up");
        }
    }

    /// Applies the events of one message, or warns once that a message was not understood
    /// (`source` names where it came from: a channel or routing key).
    pub fn apply(&self, decoded: Result<Vec<Event>, DecodeError>, source: &str) {
        let now = now_ms();
        let mut g = self.lock();
        match decoded {
            Ok(events) => {
                for e in &events {
                    g.state.apply(e, now);
                }
            }
            Err(e) => {
                if !g.warned_decode {
                    g.warned_decode = true;
                    tracing::warn!(target = %self.target, source, error = %e, "celery event not understood (only the JSON serializer is); said once");
                }
            }
        }
    }

    /// The samples at `now_ms`, `celery_events_subscribed` included.
    pub fn samples(&self, now_ms: i64) -> Vec<Sample> {
        let mut g = self.lock();
        let subscribed = g.subscribed;
        let mut out = g.state.samples(now_ms, subscribed);
        out.push(Sample::gauge(
            "celery_events_subscribed",
            &[],
            f64::from(u8::from(subscribed)),
            now_ms,
        ));
        out
    }
}

/// How one session with the broker ended.
pub enum SessionEnd {
    /// It never got subscribed (connecting or declaring failed): why.
    Failed(String),
    /// It was subscribed, then the stream ended: why.
    Closed(String),
}

/// Runs `session` again and again: after a failure with a growing pause (1 s up to
/// [`MAX_BACKOFF`]), after a subscription that worked and closed with 1 s. Each distinct
/// error is logged once until the subscription is restored.
pub async fn run<F, Fut>(feed: Feed, mut session: F)
where
    F: FnMut(Feed) -> Fut,
    Fut: Future<Output = SessionEnd>,
{
    let mut backoff = Duration::from_secs(1);
    let mut last_error = String::new();
    loop {
        let end = session(feed.clone()).await;
        feed.set_subscribed(false);
        let why = match end {
            SessionEnd::Failed(why) => why,
            SessionEnd::Closed(why) => {
                backoff = Duration::from_secs(1);
                format!("subscription closed: {why}")
            }
        };
        if why != last_error {
            tracing::warn!(target = %feed.target, error = %why, "celery event subscription down; retrying");
        }
        last_error = why;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
