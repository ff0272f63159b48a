//! Admission of query evaluations: at most N at once per lane, a bounded queue in front, and
//! refusal beyond it, so a burst of heavy queries cannot take every core and every byte, and
//! cannot make a cheap query wait behind all of them.
//!
//! Two lanes with their own permits: `Heavy` (range queries) and `Light` (instant queries,
//! what dashboards' stat panels, alert checks and the explore page's first answer need).
//! Both share the queue bound. A permit is owned, so it can travel into the blocking thread
//! that evaluates and be released exactly when evaluation ends, not when the request does.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Which set of permits a query waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Instant queries: one step each, usually small.
    Light,
    /// Range queries: one evaluation per step, the expensive kind.
    Heavy,
}

/// Why a query was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The queue was full (the limit is named): try again later.
    #[error("too many queries waiting (query.max_queued = {0}); try again later")]
    QueueFull(usize),
    /// The query's deadline passed while it waited for a permit.
    #[error("query timed out while waiting for an evaluation slot")]
    Timeout,
}

/// Counts at one moment, for self-metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimiterStats {
    /// Evaluations holding a permit.
    pub running: usize,
    /// Queries waiting for a permit.
    pub queued: usize,
    /// Queries refused because the queue was full, since start.
    pub rejected: u64,
}

/// Told the counts after every change (queued, admitted, finished, refused).
pub type Observer = Box<dyn Fn(LimiterStats) + Send + Sync>;

/// The admission gate. Share it behind an `Arc`.
pub struct QueryLimiter {
    light: Arc<Semaphore>,
    heavy: Arc<Semaphore>,
    max_queued: usize,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    running: AtomicUsize,
    queued: AtomicUsize,
    rejected: AtomicU64,
    /// Called under `publish` after every change, so the last value told is the latest.
    observer: Option<Observer>,
    publish: Mutex<()>,
}

impl Counts {
    fn stats(&self) -> LimiterStats {
        LimiterStats {
            running: self.running.load(Ordering::SeqCst),
            queued: self.queued.load(Ordering::SeqCst),
            rejected: self.rejected.load(Ordering::SeqCst),
        }
    }

    fn changed(&self) {
        if let Some(f) = &self.observer {
            let _g = self.publish.lock().unwrap_or_else(|e| e.into_inner());
            f(self.stats());
        }
    }
}

/// The right to evaluate one query; dropping it frees the slot.
pub struct Permit {
    _permit: OwnedSemaphorePermit,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permit")
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.counts.running.fetch_sub(1, Ordering::SeqCst);
        self.counts.changed();
    }
}

/// Takes one place in the queue; gives it back on drop (admitted, timed out or abandoned).
struct QueueSlot<'a>(&'a Counts);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::SeqCst);
        self.0.changed();
    }
}

impl QueryLimiter {
    /// At most `max_concurrent` evaluations per lane (at least 1) and `max_queued` waiting
    /// queries in all.
    pub fn new(max_concurrent: usize, max_queued: usize) -> QueryLimiter {
        QueryLimiter::with_observer(max_concurrent, max_queued, None)
    }

    /// [`QueryLimiter::new`] that tells `observer` the counts after every change (to keep
    /// self-metrics current).
    pub fn with_observer(
        max_concurrent: usize,
        max_queued: usize,
        observer: Option<Observer>,
    ) -> QueryLimiter {
        let n = max_concurrent.max(1);
        QueryLimiter {
            light: Arc::new(Semaphore::new(n)),
            heavy: Arc::new(Semaphore::new(n)),
            max_queued,
            counts: Arc::new(Counts {
                observer,
                ..Counts::default()
            }),
        }
    }

    /// Waits for a permit of `lane` until `deadline`. Refuses at once when the lane has no
    /// free permit and the queue is full. Dropping the future leaves the queue.
    pub async fn admit(&self, lane: Lane, deadline: Option<Instant>) -> Result<Permit, AdmitError> {
        let sem = match lane {
            Lane::Light => &self.light,
            Lane::Heavy => &self.heavy,
        };
        if let Ok(p) = sem.clone().try_acquire_owned() {
            return Ok(self.running(p));
        }
        let counts = &self.counts;
        let queued = counts.queued.fetch_add(1, Ordering::SeqCst);
        let _slot = QueueSlot(counts);
        if queued >= self.max_queued {
            counts.rejected.fetch_add(1, Ordering::SeqCst);
            return Err(AdmitError::QueueFull(self.max_queued));
        }
        counts.changed();
        let acquire = sem.clone().acquire_owned();
        let permit = match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), acquire)
                .await
                .map_err(|_| AdmitError::Timeout)?,
            None => acquire.await,
        };
        // The semaphores are never closed.
        let permit = permit.map_err(|_| AdmitError::Timeout)?;
        Ok(self.running(permit))
    }

    fn running(&self, permit: OwnedSemaphorePermit) -> Permit {
        self.counts.running.fetch_add(1, Ordering::SeqCst);
        self.counts.changed();
        Permit {
            _permit: permit,
            counts: self.counts.clone(),
        }
    }

    /// Current counts.
    pub fn stats(&self) -> LimiterStats {
        self.counts.stats()
    }
}

impl std::fmt::Debug for QueryLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryLimiter")
            .field("max_queued", &self.max_queued)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn full_lanes_queue_then_refuse_and_lanes_are_separate() {
        let l = QueryLimiter::new(1, 1);
        let p1 = l.admit(Lane::Heavy, None).await.unwrap();
        // The light lane is not blocked by the heavy one.
        let light = l.admit(Lane::Light, None).await.unwrap();
        drop(light);
        let waiting = {
            let fut = l.admit(Lane::Heavy, Some(Instant::now() + Duration::from_secs(60)));
            tokio::pin!(fut);
            // Poll once so it queues.
            assert!(futures_poll_once(fut.as_mut()).await.is_none());
            assert_eq!(l.stats().queued, 1);
            // The queue is full now.
            assert_eq!(
                l.admit(Lane::Heavy, None).await.unwrap_err(),
                AdmitError::QueueFull(1)
            );
            assert_eq!(l.stats().rejected, 1);
            drop(p1);
            fut.await.unwrap()
        };
        assert_eq!(
            l.stats(),
            LimiterStats {
                running: 1,
                queued: 0,
                rejected: 1
            }
        );
        drop(waiting);
        assert_eq!(l.stats().running, 0);
    }

    #[tokio::test]
    async fn a_deadline_passing_in_the_queue_is_a_timeout() {
        let l = QueryLimiter::new(1, 4);
        let _p = l.admit(Lane::Light, None).await.unwrap();
        let e = l
            .admit(Lane::Light, Some(Instant::now() + Duration::from_millis(10)))
            .await
            .unwrap_err();
        assert_eq!(e, AdmitError::Timeout);
        assert_eq!(l.stats().queued, 0);
    }

    /// Polls a future once: `Some` if it finished.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| match std::pin::Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await
    }
}
