//! The HA alerting pair: two (or more) instances evaluate the same rules and route the same
//! alerts, and one of them — the holder of the lease `alerting-sender/<cluster>` in
//! PostgreSQL — sends the notifications. The notification log's dedup entries and the
//! silences are shared through the same database, so the instance that takes over when the
//! sender stops knows what was sent and what is silenced: it sends what the old sender had
//! not, and nothing it had.
//!
//! - `config`: `[alerting.ha]`.
//! - `shared`: the tables and their statements.
//!
//! Promises and their limits (docs/alerting.md, "HA pair"):
//! - One sender at a time while the database answers: an instance sends only while it
//!   holds the lease (checked before every delivery), and the lease is held until the TTL
//!   after its last renewal, by the database's clock.
//! - Takeover within the lease TTL plus one renewal period of the sender stopping; the new
//!   sender flushes every group at once, deduplicated by the shared log.
//! - A sender killed between a delivery and its log write leaves the delivery unrecorded,
//!   and the next sender repeats it: at least once, not exactly once, in that window (as in
//!   Alertmanager).
//! - When the database does not answer for longer than the TTL every instance sends on its
//!   own (with its local log): duplicates rather than silence, the choice Alertmanager's
//!   gossip makes too. `didban_alerting_ha_degraded` says so.

pub mod config;
mod shared;

pub use config::{HaConfig, HaSettings};

use std::sync::Arc;

use didban_coord::{CoordError, Lease, LeaseHolder, ReconnectingClient};
use tokio::sync::watch;

use crate::notify::log::LogEntry;
use crate::notify::silence::Silence;

/// One instance's membership in the pair: its lease holder and the shared tables.
pub struct HaPair {
    config: HaConfig,
    db: ReconnectingClient,
    /// `None` once released at shutdown.
    holder: parking_lot::Mutex<Option<LeaseHolder>>,
    sender_changes: watch::Receiver<bool>,
    /// Whether this process has applied the schema (once per process).
    schema_ready: tokio::sync::OnceCell<()>,
}

impl HaPair {
    /// Starts competing for the sender lease on the current tokio runtime. Does not wait
    /// for the database: an alerting instance starts (and, alone, sends) while PostgreSQL
    /// is down, and joins the pair when it answers. Fails only outside a runtime.
    pub fn start(config: HaConfig) -> Result<Arc<HaPair>, CoordError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| CoordError::Query {
            what: "alerting.ha".to_string(),
            message: format!("needs a tokio runtime: {e}"),
        })?;
        let db = ReconnectingClient::new(config.url.clone(), config.connect_options());
        let lease = Lease::new(config.lease_name(), didban_coord::holder_id(), config.lease_ttl);
        let holder = LeaseHolder::start(config.url.clone(), config.connect_options(), lease, &runtime);
        let sender_changes = holder.watch();
        let pair = Arc::new(HaPair {
            config,
            db,
            holder: parking_lot::Mutex::new(Some(holder)),
            sender_changes,
            schema_ready: tokio::sync::OnceCell::new(),
        });
        // The lease table must exist before the holder can take the lease.
        let first = pair.clone();
        runtime.spawn(async move {
            let mut wait = std::time::Duration::from_millis(100);
            while let Err(e) = first.schema().await {
                tracing::warn!(error = %e, "alerting.ha: the database is not ready; sending alone until it is");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(first.config.lease_ttl);
            }
        });
        Ok(pair)
    }

    /// The settings.
    pub fn config(&self) -> &HaConfig {
        &self.config
    }

    /// Applies coord's and the alerting component's schema once.
    async fn schema(&self) -> Result<(), CoordError> {
        self.schema_ready
            .get_or_try_init(|| async {
                let mut client = self.db.get().await?;
                didban_coord::prepare(&mut client).await?;
                didban_coord::migrate(&mut client, "alerting", shared::MIGRATIONS).await?;
                Ok::<(), CoordError>(())
            })
            .await
            .map(|_| ())
    }

    /// Whether this instance holds the sender lease now.
    pub fn is_sender(&self) -> bool {
        self.holder.lock().as_ref().is_some_and(|h| h.is_held())
    }

    /// Whether the database has not answered for longer than the lease TTL, so nobody
    /// can be sure who sends and this instance sends on its own.
    pub fn is_degraded(&self) -> bool {
        self.holder
            .lock()
            .as_ref()
            .is_some_and(|h| h.database_silent_for() > self.config.lease_ttl)
    }

    /// Whether this instance may deliver a notification now: it is the sender, or the
    /// pair is degraded (see the module comment).
    pub fn may_send(&self) -> bool {
        self.is_sender() || self.is_degraded()
    }

    /// Sees `true` when this instance becomes the sender, `false` when it stops being it.
    pub fn sender_changes(&self) -> watch::Receiver<bool> {
        self.sender_changes.clone()
    }

    /// Gives the sender lease up (at shutdown), so the other instance takes over at its
    /// next renewal instead of after the TTL; this instance sends nothing afterwards.
    pub async fn release(&self) {
        let holder = self.holder.lock().take();
        if let Some(h) = holder {
            h.release().await;
        }
    }

    /// The shared dedup entries (to merge into the local log before a flush).
    pub async fn load_log(&self) -> Result<Vec<(String, LogEntry)>, CoordError> {
        self.schema().await?;
        let client = self.db.get().await?;
        shared::load_log(&*client, &self.config.cluster).await
    }

    /// Shares the dedup entry of a delivery just made.
    pub async fn put_log(&self, key: &str, entry: &LogEntry) -> Result<(), CoordError> {
        self.schema().await?;
        let client = self.db.get().await?;
        shared::put_log(&*client, &self.config.cluster, key, entry).await
    }

    /// Writes `local` silences the database has no newer version of, then returns every
    /// shared silence (to merge into the local set).
    pub async fn exchange_silences(&self, local: &[Silence]) -> Result<Vec<Silence>, CoordError> {
        self.schema().await?;
        let client = self.db.get().await?;
        shared::put_silences(&*client, &self.config.cluster, local).await?;
        shared::load_silences(&*client, &self.config.cluster).await
    }

    /// Deletes shared rows the instances have forgotten locally (entries older than the
    /// log's retention, silences expired longer than theirs).
    pub async fn forget(&self, now_ms: i64) -> Result<(), CoordError> {
        self.schema().await?;
        let client = self.db.get().await?;
        shared::forget(
            &*client,
            &self.config.cluster,
            now_ms - crate::notify::log::LOG_RETENTION_MS,
            now_ms - crate::notify::silence::SILENCE_RETENTION_MS,
        )
        .await
    }
}
