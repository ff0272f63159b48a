//! A background task that keeps one lease: it tries to take it while another holds it,
//! renews it while this process holds it, and reconnects after errors. The process
//! asks [`LeaseHolder::is_held`] before acting — true only until the local deadline of
//! the last successful take or renewal (its send time plus the TTL, which the database's
//! expiry is never before), so a holder cut off from the database stops believing it
//! holds the lease no later than the database lets someone else take it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::connect::{connect, ConnectOptions};
use crate::lease::Lease;

/// Keeps a lease in the background; dropping it stops the task without releasing the
/// lease (as a crash would: it expires after its TTL), [`LeaseHolder::release`] gives it
/// up at once.
pub struct LeaseHolder {
    lease: Lease,
    /// Until when the lease is ours by the last take or renewal; `None` when not held.
    until: Arc<Mutex<Option<Instant>>>,
    /// When the database last answered a take or renewal (either way); the start time
    /// until it first does.
    answered: Arc<Mutex<Instant>>,
    changes: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl LeaseHolder {
    /// Starts keeping `lease` on `runtime`, connecting to `url` with `options`; tries at
    /// once, then every third of the TTL.
    pub fn start(
        url: String,
        options: ConnectOptions,
        lease: Lease,
        runtime: &tokio::runtime::Handle,
    ) -> LeaseHolder {
        let until = Arc::new(Mutex::new(None));
        let answered = Arc::new(Mutex::new(Instant::now()));
        let (tx, changes) = watch::channel(false);
        let (stop, stopped) = oneshot::channel();
        let kept = Kept {
            lease: lease.clone(),
            until: until.clone(),
            answered: answered.clone(),
            changes: tx,
        };
        let task = runtime.spawn(keep(url, options, kept, stopped));
        LeaseHolder {
            lease,
            until,
            answered,
            changes,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Whether this process holds the lease now (the deadline of the last take or renewal
    /// has not passed).
    pub fn is_held(&self) -> bool {
        self.until.lock().is_some_and(|t| Instant::now() < t)
    }

    /// How long the database has not answered this holder (since its last answer to a
    /// take or renewal, whatever the answer; since the start when it never did). Past the
    /// TTL nobody can be sure who holds the lease: a user that must not fall silent when
    /// the database is down (alert notifications) acts on its own then.
    pub fn database_silent_for(&self) -> std::time::Duration {
        self.answered.lock().elapsed()
    }

    /// A receiver that sees `true` when the lease is taken and `false` when it is lost
    /// (renewal refused, or the deadline passed without a renewal).
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.changes.clone()
    }

    /// The lease kept.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Stops keeping the lease and releases it in the database (if the connection
    /// works), so another process can take it without waiting for the TTL.
    pub async fn release(mut self) {
        *self.until.lock() = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LeaseHolder {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What the holder's loop updates.
struct Kept {
    lease: Lease,
    until: Arc<Mutex<Option<Instant>>>,
    answered: Arc<Mutex<Instant>>,
    changes: watch::Sender<bool>,
}

/// The holder's loop (see the module comment).
async fn keep(url: String, options: ConnectOptions, kept: Kept, mut stopped: oneshot::Receiver<()>) {
    let Kept {
        lease,
        until,
        answered,
        changes,
    } = kept;
    let period = (lease.ttl() / 3).max(Duration::from_millis(50));
    let mut client = None;
    loop {
        let sent = Instant::now();
        let attempt = tokio::time::timeout(period, async {
            if client
                .as_ref()
                .is_none_or(|c: &tokio_postgres::Client| c.is_closed())
            {
                client = Some(connect(&url, &options).await?);
            }
            let Some(c) = client.as_ref() else {
                return Ok(false);
            };
            if until.lock().is_some() {
                lease.renew(c).await
            } else {
                lease.try_acquire(c).await
            }
        })
        .await;
        if matches!(attempt, Ok(Ok(_))) {
            *answered.lock() = Instant::now();
        }
        match attempt {
            Ok(Ok(true)) => {
                if until.lock().is_none() {
                    tracing::info!(lease = lease.name(), holder = lease.holder(), "lease taken");
                }
                *until.lock() = Some(sent + lease.ttl());
            }
            Ok(Ok(false)) => {
                if until.lock().is_some() {
                    tracing::warn!(lease = lease.name(), holder = lease.holder(), "lease lost");
                }
                *until.lock() = None;
            }
            Ok(Err(e)) => {
                tracing::warn!(lease = lease.name(), error = %e, "lease: the database did not answer");
                client = None;
            }
            Err(_) => {
                tracing::warn!(
                    lease = lease.name(),
                    "lease: the database took longer than {period:?}"
                );
                client = None;
            }
        }
        if until.lock().is_some_and(|t| Instant::now() >= t) {
            tracing::warn!(lease = lease.name(), "lease expired without a renewal");
            *until.lock() = None;
        }
        changes.send_if_modified(|held| {
            let now_held = until.lock().is_some();
            let changed = *held != now_held;
            *held = now_held;
            changed
        });
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = &mut stopped => {
                *until.lock() = None;
                let _ = changes.send(false);
                if let Some(c) = client.as_ref() {
                    if let Err(e) = lease.release(c).await {
                        tracing::warn!(lease = lease.name(), error = %e, "lease not released; it expires after its TTL");
                    }
                }
                return;
            }
        }
    }
}
