//! The dispatcher's side of the HA pair (`crate::ha`): it sends only while this instance
//! may send, takes in the shared log before each flush, shares each delivery's log entry
//! right after it, exchanges silences after every local change and every
//! `sync_interval`, and flushes every group at once when it becomes the sender.

use std::sync::Arc;

use didban_store::{Labels, Sample, SeriesSamples};
use tokio::sync::watch;

use super::dispatch::Notifier;
use super::log::LogEntry;
use crate::ha::HaPair;

impl Notifier {
    /// The same dispatcher as one instance of an HA pair.
    pub fn with_ha(mut self, ha: Arc<HaPair>) -> Notifier {
        self.ha = Some(ha);
        self
    }

    /// The HA pair this instance belongs to, if any.
    pub fn ha(&self) -> Option<&Arc<HaPair>> {
        self.ha.as_ref()
    }

    /// Whether deliveries may go out now: always without a pair; in a pair, while this
    /// instance is the sender (or the pair is degraded).
    pub(super) fn may_send(&self) -> bool {
        self.ha.as_ref().is_none_or(|ha| ha.may_send())
    }

    /// Merges the pair's shared log into the local one, so a new sender does not repeat
    /// what the old one delivered. A database error leaves the local log as it is.
    pub(super) async fn take_in_shared_log(&self) {
        let Some(ha) = &self.ha else {
            return;
        };
        match ha.load_log().await {
            Ok(entries) => self.log.merge(entries),
            Err(e) => {
                tracing::warn!(error = %e, "alerting.ha: cannot read the shared notification log; using the local one")
            }
        }
    }

    /// Shares the log entry of a delivery just recorded locally.
    pub(super) async fn share_entry(&self, key: &str, entry: &LogEntry) {
        let Some(ha) = &self.ha else {
            return;
        };
        if let Err(e) = ha.put_log(key, entry).await {
            tracing::warn!(error = %e, key, "alerting.ha: cannot share a notification; the other instance may repeat it if it takes over");
        }
    }

    /// Writes local silence changes to the database and takes in the other instance's.
    pub async fn exchange_silences(&self) {
        let Some(ha) = &self.ha else {
            return;
        };
        match ha.exchange_silences(&self.silences.all()).await {
            Ok(shared) => self.silences.merge(shared),
            Err(e) => tracing::warn!(error = %e, "alerting.ha: cannot exchange silences; retrying"),
        }
    }

    /// `didban_alerting_ha_sender` and `didban_alerting_ha_degraded` (1 or 0, by cluster).
    pub(super) fn ha_series(&self, ts: i64) -> Vec<SeriesSamples> {
        let Some(ha) = &self.ha else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, on) in [
            ("didban_alerting_ha_sender", ha.is_sender()),
            ("didban_alerting_ha_degraded", ha.is_degraded()),
        ] {
            out.push(SeriesSamples {
                labels: Labels::from_pairs([("__name__", name), ("cluster", ha.config().cluster.as_str())]),
                samples: vec![Sample::new(ts, if on { 1.0 } else { 0.0 })],
                histograms: Vec::new(),
            });
        }
        out
    }

    /// Keeps the pair's shared state moving until `stop`: silences after each local change
    /// and every `sync_interval`; on becoming the sender, every group flushed at once. At
    /// stop the lease is released so the other instance takes over without waiting.
    pub(super) async fn run_ha(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let Some(ha) = self.ha.clone() else {
            return;
        };
        let mut sender = ha.sender_changes();
        let mut forgotten_ms = i64::MIN;
        self.exchange_silences().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(ha.config().sync_interval) => {
                    self.exchange_silences().await;
                    let now = crate::now_ms();
                    if ha.is_sender() && now.saturating_sub(forgotten_ms) >= 3_600_000 {
                        forgotten_ms = now;
                        if let Err(e) = ha.forget(now).await {
                            tracing::warn!(error = %e, "alerting.ha: cannot delete old shared rows");
                        }
                    }
                }
                _ = self.silences.changed() => self.exchange_silences().await,
                r = sender.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let became_sender = *sender.borrow_and_update();
                    if became_sender {
                        tracing::info!(cluster = %ha.config().cluster, "alerting.ha: this instance sends the notifications now");
                        self.exchange_silences().await;
                        self.flush_all_now(crate::now_ms());
                    } else {
                        tracing::info!(cluster = %ha.config().cluster, "alerting.ha: this instance no longer sends");
                    }
                }
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        ha.release().await;
                        return;
                    }
                }
            }
        }
    }
}
