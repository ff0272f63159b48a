//! The dispatcher, with Alertmanager's semantics: alerts are routed into aggregation groups
//! (route × `group_by` values); a new group is flushed after `group_wait`, then every
//! `group_interval`; each flush drops silenced and inhibited alerts, asks the notification
//! log whether this integration needs an update (new firing alerts, newly resolved ones with
//! `send_resolved`, or `repeat_interval` passed), sends with retries and backoff, and logs.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use didban_store::Labels;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use super::alert::{Alert, AlertSink};
use super::config::{ConfigError, NotifyConfig};
use super::inhibit::{inhibited, InhibitRule};
use super::log::{Attempt, HistoryItem, LogEntry, NotificationLog};
use super::metrics::NotifyMetrics;
use super::route::{Route, RouteOpts};
use super::silence::Silences;
use crate::eval::RuleStorage;
use crate::receivers::{Integration, Notification, ReceiverError};

/// Resolved alerts are forgotten by the dispatcher this long after they ended.
const ALERT_GC_MS: i64 = 3_600_000;

/// How often [`Notifier::run`] writes the notifier's figures into the metric store.
const METRICS_EVERY_MS: i64 = 10_000;

/// Retries of a failed notification.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Most attempts per notification (at least 1).
    pub attempts: u32,
    /// Wait after the first failure; doubles each time.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Routing, inhibition and receivers compiled from a [`NotifyConfig`].
struct Compiled {
    route: Option<Route>,
    inhibit: Vec<InhibitRule>,
    receivers: HashMap<String, Vec<Arc<dyn Integration>>>,
}

fn compile(cfg: &NotifyConfig) -> Result<Compiled, ConfigError> {
    cfg.validate()?;
    let route = cfg.route.as_ref().map(Route::build).transpose()?;
    let mut inhibit = Vec::new();
    for r in &cfg.inhibit_rules {
        inhibit.push(InhibitRule::build(r)?);
    }
    let mut receivers: HashMap<String, Vec<Arc<dyn Integration>>> = HashMap::new();
    for r in &cfg.receivers {
        receivers.insert(
            r.name.clone(),
            crate::receivers::build::integrations(r, &cfg.global)?,
        );
    }
    Ok(Compiled {
        route,
        inhibit,
        receivers,
    })
}

/// One aggregation group.
#[derive(Debug, Clone)]
struct AggGroup {
    opts: RouteOpts,
    group_labels: Labels,
    alerts: HashMap<u64, Alert>,
    next_flush_ms: i64,
}

#[derive(Default)]
struct State {
    alerts: HashMap<u64, Alert>,
    groups: BTreeMap<String, AggGroup>,
}

/// A flush to perform outside the lock.
struct Job {
    key: String,
    opts: RouteOpts,
    group_labels: Labels,
    alerts: Vec<Alert>,
}

/// The notification dispatcher. Receives alerts as an [`AlertSink`]; [`Notifier::tick`]
/// flushes the groups that are due.
pub struct Notifier {
    compiled: RwLock<Arc<Compiled>>,
    /// Silences (shared with the API).
    pub silences: Arc<Silences>,
    /// The notification log (shared with the API).
    pub log: Arc<NotificationLog>,
    /// Delivery counters and the last reload's outcome.
    pub metrics: Arc<NotifyMetrics>,
    /// Where [`Notifier::run`] writes [`Notifier::metrics`] (none: not written).
    storage: Option<Arc<dyn RuleStorage>>,
    external_url: String,
    retry: RetryPolicy,
    state: Mutex<State>,
    /// Woken when a new group is created, so a short `group_wait` is honoured without
    /// waiting for the next periodic tick.
    wake: tokio::sync::Notify,
    /// The HA pair this instance is one of (`notify/ha_sync.rs`); `None`: it sends alone.
    pub(super) ha: Option<Arc<crate::ha::HaPair>>,
}

impl Notifier {
    /// A dispatcher for `cfg`; silences and the log live in `dir` (`None`: memory only).
    pub fn new(cfg: &NotifyConfig, dir: Option<&Path>, external_url: &str) -> Result<Notifier, ConfigError> {
        let compiled = compile(cfg)?;
        let metrics = Arc::new(NotifyMetrics::new(crate::now_ms()));
        declare(&metrics, &compiled);
        Ok(Notifier {
            compiled: RwLock::new(Arc::new(compiled)),
            silences: Arc::new(Silences::open(dir)),
            log: Arc::new(NotificationLog::open(dir)),
            metrics,
            storage: None,
            external_url: external_url.to_string(),
            retry: RetryPolicy::default(),
            state: Mutex::new(State::default()),
            wake: tokio::sync::Notify::new(),
            ha: None,
        })
    }

    /// The same dispatcher with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Notifier {
        self.retry = retry;
        self
    }

    /// The same dispatcher writing its figures ([`Notifier::metrics`]) into `storage`.
    pub fn with_storage(mut self, storage: Arc<dyn RuleStorage>) -> Notifier {
        self.storage = Some(storage);
        self
    }

    /// Replaces routing, inhibition and receivers; on error the current ones stay. Alerts
    /// and the notification log are kept: the alerts are routed again through the new tree
    /// (a group that still exists keeps its schedule, a new one waits its `group_wait`), and
    /// the log still knows what each receiver was told, so nothing is paged twice.
    pub fn reload(&self, cfg: &NotifyConfig) -> Result<(), ConfigError> {
        let c = Arc::new(compile(cfg)?);
        declare(&self.metrics, &c);
        *self.compiled.write() = c.clone();
        let now_ms = crate::now_ms();
        let mut st = self.state.lock();
        let old = std::mem::take(&mut st.groups);
        let Some(route) = &c.route else {
            return Ok(());
        };
        let mut alerts: HashMap<u64, Alert> = HashMap::new();
        for g in old.values() {
            for (fp, a) in &g.alerts {
                alerts.insert(*fp, a.clone());
            }
        }
        for (fp, a) in alerts {
            for r in route.find(&a.labels) {
                let group_labels = r.group_labels(&a.labels);
                let key = format!("{}:{}", r.key, group_labels);
                let next_flush_ms = match old.get(&key) {
                    Some(g) => g.next_flush_ms,
                    None => now_ms + ms(r.opts.group_wait),
                };
                let g = st.groups.entry(key).or_insert_with(|| AggGroup {
                    opts: r.opts.clone(),
                    group_labels,
                    alerts: HashMap::new(),
                    next_flush_ms,
                });
                g.alerts.insert(fp, a.clone());
            }
        }
        drop(st);
        self.wake.notify_one();
        Ok(())
    }

    /// The URL links in notifications point to.
    pub(super) fn external_url(&self) -> &str {
        &self.external_url
    }

    /// The integrations of `receiver` in the running configuration, `None` when there is
    /// no such receiver.
    pub(super) fn integrations(&self, receiver: &str) -> Option<Vec<Arc<dyn Integration>>> {
        self.compiled.read().receivers.get(receiver).cloned()
    }

    /// The configured receivers' names and their integrations' names (`webhook[0]`, …),
    /// sorted by receiver.
    pub fn receivers(&self) -> Vec<(String, Vec<String>)> {
        let c = self.compiled.read().clone();
        let mut out = Vec::new();
        for (name, list) in &c.receivers {
            let mut names = Vec::new();
            for (i, integ) in list.iter().enumerate() {
                names.push(format!("{}[{i}]", integ.kind()));
            }
            out.push((name.clone(), names));
        }
        out.sort();
        out
    }

    /// Writes [`Notifier::metrics`] into the storage given to [`Notifier::with_storage`].
    pub async fn write_metrics(&self, now_ms: i64) {
        let Some(storage) = &self.storage else {
            return;
        };
        let mut series = self.metrics.series(now_ms);
        series.extend(self.ha_series(now_ms));
        if let Err(e) = storage.append(series).await {
            tracing::warn!(error = %e, "cannot write the notifier's metrics");
        }
    }

    /// Number of aggregation groups (for tests and self-monitoring).
    pub fn group_count(&self) -> usize {
        self.state.lock().groups.len()
    }

    /// Flushes every group due at `now_ms` and waits for the sends.
    pub async fn tick(&self, now_ms: i64) {
        let compiled = self.compiled.read().clone();
        let (jobs, firing) = {
            let mut st = self.state.lock();
            st.alerts.retain(|_, a| now_ms - a.ends_at_ms < ALERT_GC_MS);
            let mut firing: Vec<Labels> = Vec::new();
            for a in st.alerts.values() {
                if !a.resolved_at(now_ms) {
                    firing.push(a.labels.clone());
                }
            }
            let mut jobs = Vec::new();
            for (key, g) in st.groups.iter_mut() {
                if g.next_flush_ms > now_ms {
                    continue;
                }
                g.next_flush_ms = now_ms + ms(g.opts.group_interval);
                let mut alerts: Vec<Alert> = g.alerts.values().cloned().collect();
                alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
                jobs.push(Job {
                    key: key.clone(),
                    opts: g.opts.clone(),
                    group_labels: g.group_labels.clone(),
                    alerts,
                });
            }
            (jobs, firing)
        };
        if jobs.is_empty() {
            return;
        }
        if !self.may_send() {
            // The other instance of the HA pair sends; the groups keep their schedule and
            // their alerts, ready for a takeover.
            return;
        }
        self.take_in_shared_log().await;
        let mut futures = Vec::new();
        for job in &jobs {
            futures.push(self.flush(&compiled, job, &firing, now_ms));
        }
        let results = futures::future::join_all(futures).await;
        let mut st = self.state.lock();
        for (job, ok) in jobs.iter().zip(results) {
            let Some(g) = st.groups.get_mut(&job.key) else {
                continue;
            };
            if ok {
                // Resolved alerts that were notified, and have not changed since, leave.
                for a in &job.alerts {
                    let unchanged = g.alerts.get(&a.fingerprint()).is_some_and(|cur| {
                        cur.ends_at_ms == a.ends_at_ms && cur.starts_at_ms == a.starts_at_ms
                    });
                    if a.resolved_at(now_ms) && unchanged {
                        g.alerts.remove(&a.fingerprint());
                    }
                }
            }
            // Whatever stays resolved for long (failing receiver, muted) is dropped too.
            g.alerts.retain(|_, a| now_ms - a.ends_at_ms < ALERT_GC_MS);
            if g.alerts.is_empty() {
                st.groups.remove(&job.key);
            }
        }
    }

    /// Runs one group's flush for every integration of its receiver; true when all
    /// integrations succeeded (or had nothing to do).
    async fn flush(&self, c: &Compiled, job: &Job, firing: &[Labels], now_ms: i64) -> bool {
        let firing_refs: Vec<&Labels> = firing.iter().collect();
        let mut unmuted = Vec::new();
        for a in &job.alerts {
            let muted = !a.resolved_at(now_ms)
                && (!self.silences.muting(&a.labels, now_ms).is_empty()
                    || inhibited(&c.inhibit, &a.labels, &firing_refs));
            if !muted {
                unmuted.push(a.clone());
            }
        }
        let Some(integrations) = c.receivers.get(&job.opts.receiver) else {
            tracing::warn!(receiver = %job.opts.receiver, "route names an unknown receiver");
            return true;
        };
        let mut all_ok = true;
        for (i, integ) in integrations.iter().enumerate() {
            let name = format!("{}[{i}]", integ.kind());
            let log_key = format!("{}/{name}:{}", job.opts.receiver, job.key);
            let mut firing_fps = Vec::new();
            let mut resolved_fps = Vec::new();
            for a in &unmuted {
                if a.resolved_at(now_ms) {
                    resolved_fps.push(a.fingerprint());
                } else {
                    firing_fps.push(a.fingerprint());
                }
            }
            let prev = self.log.get(&log_key);
            if !needs_update(
                prev.as_ref(),
                &firing_fps,
                &resolved_fps,
                integ.send_resolved(),
                job.opts.repeat_interval,
                now_ms,
            ) {
                continue;
            }
            if !self.may_send() {
                // The lease went to the other instance during this flush.
                all_ok = false;
                continue;
            }
            let mut to_send = Vec::new();
            for a in &unmuted {
                if !a.resolved_at(now_ms) || integ.send_resolved() {
                    to_send.push(a.clone());
                }
            }
            let entry = LogEntry {
                firing: firing_fps.clone(),
                resolved: resolved_fps.clone(),
                at_ms: now_ms,
            };
            if to_send.is_empty() {
                // Nothing the receiver wants; remember the state so it is not retried.
                self.log.record(
                    &log_key,
                    Some(entry.clone()),
                    self.item(job, &name, 0, 0, Vec::new(), now_ms),
                );
                self.share_entry(&log_key, &entry).await;
                continue;
            }
            let n = Notification {
                receiver: job.opts.receiver.clone(),
                group_key: job.key.clone(),
                group_labels: job.group_labels.clone(),
                alerts: to_send,
                now_ms,
                external_url: self.external_url.clone(),
            };
            let tries = self.send_with_retry(integ.as_ref(), &n).await;
            let (f, r) = (n.firing().len(), n.resolved().len());
            let mut item = self.item(job, &name, f, r, tries, now_ms);
            item.alertnames = alertnames(&n.alerts);
            if item.ok {
                tracing::info!(receiver = %job.opts.receiver, integration = %name, group = %job.key, firing = f, resolved = r, attempts = item.attempts, "notified");
                self.log.record(&log_key, Some(entry.clone()), item);
                self.share_entry(&log_key, &entry).await;
            } else {
                let error = item.error.clone().unwrap_or_default();
                tracing::error!(receiver = %job.opts.receiver, integration = %name, group = %job.key, attempts = item.attempts, error = %error, "notification failed");
                all_ok = false;
                self.log.record(&log_key, None, item);
            }
        }
        all_ok
    }

    fn item(
        &self,
        job: &Job,
        integration: &str,
        firing: usize,
        resolved: usize,
        tries: Vec<Attempt>,
        now_ms: i64,
    ) -> HistoryItem {
        let last_error = tries.last().and_then(|t| t.error.clone());
        HistoryItem {
            at_ms: now_ms,
            receiver: job.opts.receiver.clone(),
            integration: integration.to_string(),
            group_key: job.key.clone(),
            status: if firing > 0 { "firing" } else { "resolved" }.to_string(),
            firing,
            resolved,
            attempts: u32::try_from(tries.len()).unwrap_or(u32::MAX),
            ok: last_error.is_none(),
            error: last_error,
            alertnames: Vec::new(),
            tries,
            test: false,
        }
    }

    /// Sends with retries and backoff; every attempt is counted in [`Notifier::metrics`]
    /// and returned (the last one is the outcome).
    pub(super) async fn send_with_retry(&self, integ: &dyn Integration, n: &Notification) -> Vec<Attempt> {
        let mut backoff = self.retry.first_backoff;
        let mut tries = Vec::new();
        loop {
            let result = integ.notify(n).await;
            self.metrics.attempt(&n.receiver, integ.kind(), result.is_ok());
            let attempt = tries.len() + 1;
            let retry = match &result {
                Ok(()) => false,
                Err(e) => e.retryable() && attempt < self.retry.attempts.max(1) as usize,
            };
            tries.push(Attempt {
                at_ms: crate::now_ms(),
                error: result.as_ref().err().map(ReceiverError::to_string),
            });
            if !retry {
                return tries;
            }
            if let Err(e) = &result {
                tracing::warn!(attempt, error = %e, "notification failed; retrying");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry.max_backoff);
        }
    }

    /// The earliest time a group is due (ms), if any.
    fn next_due_ms(&self) -> Option<i64> {
        self.state.lock().groups.values().map(|g| g.next_flush_ms).min()
    }

    /// Flushes due groups until `stop` turns true: at the earliest due time, checked at
    /// least every `every` and whenever a new group appears.
    pub async fn run(self: Arc<Self>, every: Duration, mut stop: watch::Receiver<bool>) {
        let ha = tokio::spawn(self.clone().run_ha(stop.clone()));
        let mut metrics_written_ms = i64::MIN;
        loop {
            let now = crate::now_ms();
            if now.saturating_sub(metrics_written_ms) >= METRICS_EVERY_MS {
                self.write_metrics(now).await;
                metrics_written_ms = now;
            }
            let max_wait = ms(every);
            let wait = match self.next_due_ms() {
                Some(due) => (due - now).clamp(0, max_wait),
                None => max_wait,
            };
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))) => {
                    self.tick(crate::now_ms()).await;
                }
                _ = self.wake.notified() => {}
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        let _ = ha.await;
                        return;
                    }
                }
            }
        }
    }

    /// Makes every group due at `now_ms` and wakes the loop (a new HA sender flushes at
    /// once; the shared log keeps it from repeating what was delivered).
    pub(super) fn flush_all_now(&self, now_ms: i64) {
        let mut st = self.state.lock();
        for g in st.groups.values_mut() {
            g.next_flush_ms = g.next_flush_ms.min(now_ms);
        }
        drop(st);
        self.wake.notify_one();
    }
}

/// Counters at 0 for every configured receiver's integrations.
fn declare(metrics: &NotifyMetrics, c: &Compiled) {
    for (name, list) in &c.receivers {
        for integ in list {
            metrics.declare(name, integ.kind());
        }
    }
}

/// The `alertname`s of `alerts`, sorted, without repeats.
pub(super) fn alertnames(alerts: &[Alert]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for a in alerts {
        let name = a.labels.get("alertname").unwrap_or("").to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.sort();
    names
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Alertmanager's dedup decision for one integration and group.
pub fn needs_update(
    prev: Option<&LogEntry>,
    firing: &[u64],
    resolved: &[u64],
    send_resolved: bool,
    repeat: Duration,
    now_ms: i64,
) -> bool {
    let Some(prev) = prev else {
        return !firing.is_empty();
    };
    if !firing.iter().all(|f| prev.firing.contains(f)) {
        return true;
    }
    if firing.is_empty() {
        // Everything resolved: tell the receiver if it was told something fires.
        return !prev.firing.is_empty();
    }
    if send_resolved && !resolved.iter().all(|r| prev.resolved.contains(r)) {
        return true;
    }
    prev.at_ms + ms(repeat) <= now_ms
}

impl AlertSink for Notifier {
    fn send(&self, alerts: Vec<Alert>, now_ms: i64) {
        let compiled = self.compiled.read().clone();
        let Some(route) = &compiled.route else {
            return;
        };
        let mut st = self.state.lock();
        let groups_before = st.groups.len();
        for mut a in alerts {
            let fp = a.fingerprint();
            if let Some(old) = st.alerts.get(&fp) {
                if !old.resolved_at(now_ms) && old.starts_at_ms < a.starts_at_ms {
                    a.starts_at_ms = old.starts_at_ms;
                }
            }
            st.alerts.insert(fp, a.clone());
            for r in route.find(&a.labels) {
                let group_labels = r.group_labels(&a.labels);
                let key = format!("{}:{}", r.key, group_labels);
                let g = st.groups.entry(key).or_insert_with(|| AggGroup {
                    opts: r.opts.clone(),
                    group_labels,
                    alerts: HashMap::new(),
                    next_flush_ms: now_ms + ms(r.opts.group_wait),
                });
                g.alerts.insert(fp, a.clone());
            }
        }
        if st.groups.len() != groups_before {
            self.wake.notify_one();
        }
    }
}
