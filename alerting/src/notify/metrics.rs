//! The notifier's own figures, under Alertmanager's and Prometheus' names with Didban's
//! prefix: `didban_notifications_total{receiver,integration}` and
//! `didban_notifications_failed_total{receiver,integration}` (every delivery attempt, so
//! retries count), and `didban_config_last_reload_successful` /
//! `didban_config_last_reload_success_timestamp_seconds` for the alerting configuration.
//! They are written into the metric store like the rule groups' figures, so the
//! `didban-notifications` rules can alert on them.

use std::collections::BTreeMap;

use didban_store::{Labels, Sample, SeriesSamples};
use parking_lot::Mutex;

/// The outcome of the last reload of rules, receivers, routes and inhibit rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadStatus {
    /// False when the last reload was refused (the previous configuration kept running).
    pub ok: bool,
    /// When the configuration now running was loaded (ms).
    pub last_success_ms: i64,
    /// When the last reload was tried (ms).
    pub last_attempt_ms: i64,
    /// Why the last reload was refused.
    pub error: Option<String>,
}

/// Counts per `(receiver, integration kind)`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Counts {
    /// Delivery attempts.
    pub total: u64,
    /// Failed delivery attempts.
    pub failed: u64,
}

#[derive(Debug)]
struct Inner {
    counts: BTreeMap<(String, String), Counts>,
    reload: ReloadStatus,
}

/// The figures, shared by the dispatcher, the reload and the writer.
#[derive(Debug)]
pub struct NotifyMetrics {
    inner: Mutex<Inner>,
}

impl NotifyMetrics {
    /// Counters at zero; the configuration loaded at `now_ms`.
    pub fn new(now_ms: i64) -> NotifyMetrics {
        NotifyMetrics {
            inner: Mutex::new(Inner {
                counts: BTreeMap::new(),
                reload: ReloadStatus {
                    ok: true,
                    last_success_ms: now_ms,
                    last_attempt_ms: now_ms,
                    error: None,
                },
            }),
        }
    }

    /// Makes `receiver`'s `integration` counters exist at 0 (so `rate()` sees the first
    /// failure, as Alertmanager does for configured integrations).
    pub fn declare(&self, receiver: &str, integration: &str) {
        self.inner
            .lock()
            .counts
            .entry((receiver.to_string(), integration.to_string()))
            .or_default();
    }

    /// Counts one delivery attempt.
    pub fn attempt(&self, receiver: &str, integration: &str, ok: bool) {
        let mut inner = self.inner.lock();
        let c = inner
            .counts
            .entry((receiver.to_string(), integration.to_string()))
            .or_default();
        c.total += 1;
        if !ok {
            c.failed += 1;
        }
    }

    /// The counts of `receiver`'s `integration` kind.
    pub fn counts(&self, receiver: &str, integration: &str) -> Counts {
        self.inner
            .lock()
            .counts
            .get(&(receiver.to_string(), integration.to_string()))
            .copied()
            .unwrap_or_default()
    }

    /// Records a reload's outcome at `now_ms`.
    pub fn reloaded(&self, result: Result<(), String>, now_ms: i64) {
        let mut inner = self.inner.lock();
        inner.reload.last_attempt_ms = now_ms;
        match result {
            Ok(()) => {
                inner.reload.ok = true;
                inner.reload.last_success_ms = now_ms;
                inner.reload.error = None;
            }
            Err(e) => {
                inner.reload.ok = false;
                inner.reload.error = Some(e);
            }
        }
    }

    /// The last reload's outcome.
    pub fn reload_status(&self) -> ReloadStatus {
        self.inner.lock().reload.clone()
    }

    /// Every figure as a sample at `ts` (ms), for the metric store.
    pub fn series(&self, ts: i64) -> Vec<SeriesSamples> {
        let inner = self.inner.lock();
        let mut out = Vec::new();
        for ((receiver, integration), c) in &inner.counts {
            let figures = [
                ("didban_notifications_total", c.total),
                ("didban_notifications_failed_total", c.failed),
            ];
            for (name, v) in figures {
                out.push(SeriesSamples {
                    labels: Labels::from_pairs([
                        ("__name__", name),
                        ("integration", integration.as_str()),
                        ("receiver", receiver.as_str()),
                    ]),
                    samples: vec![Sample::new(ts, v as f64)],
                    histograms: Vec::new(),
                });
            }
        }
        let ok = if inner.reload.ok { 1.0 } else { 0.0 };
        out.push(SeriesSamples {
            labels: Labels::from_pairs([("__name__", "didban_config_last_reload_successful")]),
            samples: vec![Sample::new(ts, ok)],
            histograms: Vec::new(),
        });
        out.push(SeriesSamples {
            labels: Labels::from_pairs([("__name__", "didban_config_last_reload_success_timestamp_seconds")]),
            samples: vec![Sample::new(ts, inner.reload.last_success_ms as f64 / 1000.0)],
            histograms: Vec::new(),
        });
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn attempts_and_reloads_become_series() {
        let m = NotifyMetrics::new(1_000);
        m.declare("ops", "email");
        m.attempt("ops", "webhook", false);
        m.attempt("ops", "webhook", true);
        assert_eq!(m.counts("ops", "webhook"), Counts { total: 2, failed: 1 });
        m.reloaded(Err("route names undefined receiver \"x\"".into()), 5_000);
        let st = m.reload_status();
        assert!(!st.ok);
        assert_eq!(st.last_success_ms, 1_000);
        let series = m.series(6_000);
        let find = |name: &str, receiver: Option<(&str, &str)>| {
            for s in &series {
                if s.labels.get("__name__") != Some(name) {
                    continue;
                }
                if let Some((r, i)) = receiver {
                    if s.labels.get("receiver") != Some(r) || s.labels.get("integration") != Some(i) {
                        continue;
                    }
                }
                return Some(s.samples[0].value);
            }
            None
        };
        assert_eq!(
            find("didban_notifications_total", Some(("ops", "email"))),
            Some(0.0)
        );
        assert_eq!(
            find("didban_notifications_failed_total", Some(("ops", "webhook"))),
            Some(1.0)
        );
        assert_eq!(find("didban_config_last_reload_successful", None), Some(0.0));
        assert_eq!(
            find("didban_config_last_reload_success_timestamp_seconds", None),
            Some(1.0)
        );
    }
}
