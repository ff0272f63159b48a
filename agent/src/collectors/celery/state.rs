//! What Celery's events add up to, named like celery-exporter: per-task-name counters of
//! each event type, a runtime histogram, a queue wait histogram, and per-worker liveness
//! from heartbeats. Every label is bounded: task names (`max_task_names`, the rest
//! `name="other"`), queues ([`MAX_QUEUES`]), exception types ([`MAX_EXCEPTIONS`]), workers
//! (forgotten `forget_after` after they stop) and the task ids kept to name later events
//! ([`MAX_PENDING_TASKS`]).
//! How the queue wait is measured: [`super::wait`].

use std::collections::{BTreeMap, BTreeSet};

use super::event::{exception_type, Event};
use super::histogram::Histogram;
use super::pending::Pending;
pub use super::pending::MAX_PENDING_TASKS;
use super::wait::WaitTracker;
use crate::model::{MetricKind, Sample};

/// Runtime histogram bounds in seconds (Prometheus' default buckets, as celery-exporter).
pub const RUNTIME_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Queue wait histogram bounds in seconds: 10 ms to an hour (a backlog is minutes).
pub const WAIT_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Most distinct exception types per server; the rest are `exception="other"`.
pub const MAX_EXCEPTIONS: usize = 50;

/// Most distinct queue names per server; the rest are `queue_name="other"`.
pub const MAX_QUEUES: usize = 50;

/// Heartbeat interval assumed when a worker does not say (Celery's default).
pub const DEFAULT_FREQ_SECONDS: f64 = 2.0;

/// A worker is down when it sent nothing for this many heartbeat intervals (Celery's own
/// `HEARTBEAT_EXPIRE_WINDOW` of 200%).
pub const EXPIRE_INTERVALS: f64 = 2.0;

/// The counter each task event type feeds.
const TASK_COUNTERS: &[(&str, &str)] = &[
    ("task-sent", "celery_task_sent_total"),
    ("task-received", "celery_task_received_total"),
    ("task-started", "celery_task_started_total"),
    ("task-succeeded", "celery_task_succeeded_total"),
    ("task-failed", "celery_task_failed_total"),
    ("task-retried", "celery_task_retried_total"),
    ("task-rejected", "celery_task_rejected_total"),
    ("task-revoked", "celery_task_revoked_total"),
];

#[derive(Debug, Clone)]
struct Worker {
    last_seen_ms: i64,
    freq: f64,
    active: f64,
    offline: bool,
}

/// The counts and workers of one broker; fed by [`CeleryState::apply`], read by
/// [`CeleryState::samples`].
#[derive(Debug)]
pub struct CeleryState {
    max_task_names: usize,
    forget_after_ms: i64,
    workers: BTreeMap<String, Worker>,
    pending: Pending,
    waits: WaitTracker,
    names: BTreeSet<String>,
    queues: BTreeSet<String>,
    exceptions: BTreeSet<String>,
    /// (metric, task name, exception) → count.
    counters: BTreeMap<(&'static str, String, Option<String>), u64>,
    runtime: BTreeMap<String, Histogram>,
    /// (task name, queue if known) → seconds between sent/received and started.
    wait: BTreeMap<(String, Option<String>), Histogram>,
    /// Series already sent once; a new one is sent with a zero just before its first value
    /// so `increase()` counts its first events.
    sent: BTreeSet<(String, Vec<(String, String)>)>,
    events: u64,
}

impl CeleryState {
    /// Empty state with the given bounds.
    pub fn new(max_task_names: usize, forget_after_ms: i64) -> CeleryState {
        CeleryState {
            max_task_names,
            forget_after_ms,
            workers: BTreeMap::new(),
            pending: Pending::default(),
            waits: WaitTracker::default(),
            names: BTreeSet::new(),
            queues: BTreeSet::new(),
            exceptions: BTreeSet::new(),
            counters: BTreeMap::new(),
            runtime: BTreeMap::new(),
            wait: BTreeMap::new(),
            sent: BTreeSet::new(),
            events: 0,
        }
    }

    /// Events applied so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Applies one event received at `now_ms` (the agent's clock, not the sender's).
    pub fn apply(&mut self, e: &Event, now_ms: i64) {
        self.events += 1;
        if let Some(kind) = e.kind.strip_prefix("worker-") {
            self.worker_event(kind, e, now_ms);
            return;
        }
        if !e.kind.starts_with("task-") {
            return;
        }
        // Task events of a worker also show it is alive (task-sent comes from the client).
        let from_worker = matches!(
            e.kind.as_str(),
            "task-received" | "task-started" | "task-succeeded" | "task-failed" | "task-retried"
        );
        if from_worker {
            if let Some(w) = self.workers.get_mut(&e.hostname) {
                if !w.offline {
                    w.last_seen_ms = w.last_seen_ms.max(now_ms);
                }
            }
        }
        let uuid = e.uuid.clone().unwrap_or_default();
        self.note_wait(&uuid, e);
        let name = self.task_name(&uuid, e);
        let Some((_, metric)) = TASK_COUNTERS.iter().find(|(kind, _)| *kind == e.kind) else {
            return;
        };
        let exception = if e.kind == "task-failed" {
            Some(self.exception_label(e.exception.as_deref().unwrap_or("")))
        } else {
            None
        };
        *self
            .counters
            .entry((metric, name.clone(), exception))
            .or_insert(0) += 1;
        if e.kind == "task-succeeded" {
            if let Some(runtime) = e.runtime.filter(|r| r.is_finite() && *r >= 0.0) {
                self.runtime
                    .entry(name)
                    .or_insert_with(|| Histogram::new(RUNTIME_BUCKETS))
                    .observe(runtime);
            }
        }
    }

    /// Counts a wait that `e` ends (see [`super::wait`]) under its bounded labels.
    fn note_wait(&mut self, uuid: &str, e: &Event) {
        let Some(w) = self.waits.on_event(&mut self.pending, uuid, e) else {
            return;
        };
        let name = self.bounded_name(w.name);
        let queue = w.queue.map(|q| self.queue_label(q));
        self.wait
            .entry((name, queue))
            .or_insert_with(|| Histogram::new(WAIT_BUCKETS))
            .observe(w.seconds);
    }

    fn queue_label(&mut self, queue: String) -> String {
        if self.queues.contains(&queue) {
            return queue;
        }
        if self.queues.len() < MAX_QUEUES {
            self.queues.insert(queue.clone());
            return queue;
        }
        "other".to_string()
    }

    fn worker_event(&mut self, kind: &str, e: &Event, now_ms: i64) {
        if e.hostname.is_empty() {
            return;
        }
        let freq = e
            .freq
            .filter(|f| f.is_finite() && *f > 0.0)
            .unwrap_or(DEFAULT_FREQ_SECONDS);
        let w = self.workers.entry(e.hostname.clone()).or_insert(Worker {
            last_seen_ms: now_ms,
            freq,
            active: 0.0,
            offline: false,
        });
        w.freq = freq;
        w.last_seen_ms = now_ms;
        match kind {
            "offline" => {
                w.offline = true;
                w.active = 0.0;
            }
            "online" => {
                w.offline = false;
                w.active = 0.0;
            }
            _ => {
                w.offline = false;
                if let Some(active) = e.active {
                    w.active = active;
                }
            }
        }
    }

    /// The bounded `name` label of a task event: its own name, or the one its
    /// `task-received`/`task-sent` gave, else `unknown`; names past the cap are `other`.
    fn task_name(&mut self, uuid: &str, e: &Event) -> String {
        let name = match &e.name {
            Some(n) => {
                if !uuid.is_empty() {
                    self.pending.entry(uuid, n);
                }
                n.clone()
            }
            None => match self.pending.get(uuid) {
                Some(t) => t.name.clone(),
                None => "unknown".to_string(),
            },
        };
        // Ended tasks are forgotten at once (a retry is received again under its id).
        if matches!(
            e.kind.as_str(),
            "task-succeeded" | "task-failed" | "task-rejected" | "task-revoked"
        ) {
            self.pending.remove(uuid);
        }
        self.bounded_name(name)
    }

    /// `name`, or `other` once `max_task_names` others have series.
    fn bounded_name(&mut self, name: String) -> String {
        if self.names.contains(&name) {
            return name;
        }
        if self.names.len() < self.max_task_names {
            self.names.insert(name.clone());
            return name;
        }
        "other".to_string()
    }

    fn exception_label(&mut self, text: &str) -> String {
        let t = exception_type(text);
        if self.exceptions.contains(&t) {
            return t;
        }
        if self.exceptions.len() < MAX_EXCEPTIONS {
            self.exceptions.insert(t.clone());
            return t;
        }
        "other".to_string()
    }

    /// The samples at `now_ms`; forgets workers stopped longer than `forget_after`. With
    /// `workers_known` false (the subscription is down) worker series are left out, since
    /// missing heartbeats then say nothing about the workers.
    pub fn samples(&mut self, now_ms: i64, workers_known: bool) -> Vec<Sample> {
        let mut out = Vec::new();
        let forget = self.forget_after_ms;
        self.workers.retain(|_, w| now_ms - w.last_seen_ms <= forget);
        if workers_known {
            for (host, w) in &self.workers {
                let expires_ms = (w.freq * EXPIRE_INTERVALS * 1000.0) as i64;
                let up = !w.offline && now_ms - w.last_seen_ms <= expires_ms;
                let labels = [("hostname", host.as_str())];
                out.push(Sample::gauge(
                    "celery_worker_up",
                    &labels,
                    f64::from(u8::from(up)),
                    now_ms,
                ));
                let active = if up { w.active } else { 0.0 };
                out.push(Sample::gauge(
                    "celery_worker_tasks_active",
                    &labels,
                    active,
                    now_ms,
                ));
            }
        }
        let mut counters = Vec::new();
        for ((metric, name, exception), n) in &self.counters {
            let mut labels = vec![("name", name.as_str())];
            if let Some(e) = exception {
                labels.push(("exception", e.as_str()));
            }
            counters.push(Sample::counter(metric, &labels, *n as f64, now_ms));
        }
        for (name, h) in &self.runtime {
            h.push_samples("celery_task_runtime", &[("name", name)], now_ms, &mut counters);
        }
        for ((name, queue), h) in &self.wait {
            let mut labels = vec![("name", name.as_str())];
            if let Some(q) = queue {
                labels.push(("queue_name", q.as_str()));
            }
            h.push_samples("celery_task_queue_wait_seconds", &labels, now_ms, &mut counters);
        }
        counters.push(Sample::counter(
            "celery_events_received_total",
            &[],
            self.events as f64,
            now_ms,
        ));
        for s in counters {
            let key = (s.name.clone(), s.labels.clone());
            if !self.sent.contains(&key) {
                let mut zero = s.clone();
                zero.value = 0.0;
                zero.timestamp_ms = now_ms - 1;
                zero.kind = MetricKind::Counter;
                out.push(zero);
                self.sent.insert(key);
            }
            out.push(s);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev(kind: &str, host: &str, uuid: &str, name: Option<&str>) -> Event {
        Event {
            kind: kind.into(),
            hostname: host.into(),
            uuid: Some(uuid.into()),
            name: name.map(str::to_string),
            ..Event::default()
        }
    }

    fn value(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        s.iter()
            .rev()
            .find(|x| x.name == name && labels.iter().all(|(k, v)| x.label(k) == Some(*v)))
            .map(|x| x.value)
    }

    #[test]
    fn outcomes_are_counted_per_task_name() {
        let mut st = CeleryState::new(2, 600_000);
        st.apply(&ev("task-received", "w", "1", Some("add")), 0);
        let mut ok = ev("task-succeeded", "w", "1", None);
        ok.runtime = Some(0.3);
        st.apply(&ok, 0);
        st.apply(&ev("task-received", "w", "2", Some("boom")), 0);
        let mut failed = ev("task-failed", "w", "2", None);
        failed.exception = Some("ValueError('no')".into());
        st.apply(&failed, 0);
        st.apply(&ev("task-received", "w", "3", Some("third")), 0);
        st.apply(&ev("task-succeeded", "w", "never-seen", None), 0);
        let s = st.samples(10, true);
        assert_eq!(
            value(&s, "celery_task_succeeded_total", &[("name", "add")]),
            Some(1.0)
        );
        assert_eq!(
            value(
                &s,
                "celery_task_failed_total",
                &[("name", "boom"), ("exception", "ValueError")]
            ),
            Some(1.0)
        );
        // The cap of two names: the third is "other", an unknown id "unknown" → also other.
        assert_eq!(
            value(&s, "celery_task_received_total", &[("name", "other")]),
            Some(1.0)
        );
        assert_eq!(
            value(&s, "celery_task_succeeded_total", &[("name", "other")]),
            Some(1.0)
        );
        assert_eq!(
            value(
                &s,
                "celery_task_runtime_bucket",
                &[("name", "add"), ("le", "0.25")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &s,
                "celery_task_runtime_bucket",
                &[("name", "add"), ("le", "0.5")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&s, "celery_task_runtime_count", &[("name", "add")]),
            Some(1.0)
        );
        // A new series starts with a zero one millisecond earlier; the next time it does not.
        let first = s
            .iter()
            .find(|x| x.name == "celery_task_succeeded_total")
            .unwrap();
        assert_eq!((first.value, first.timestamp_ms), (0.0, 9));
        let again = st.samples(20, true);
        assert_eq!(
            again
                .iter()
                .filter(|x| x.name == "celery_task_succeeded_total")
                .count(),
            2
        );
    }

    fn timed(kind: &str, uuid: &str, name: Option<&str>, ts: f64) -> Event {
        let mut e = ev(kind, "celery@w", uuid, name);
        e.timestamp = Some(ts);
        e
    }

    #[test]
    fn queue_wait_runs_from_sent_when_seen_else_from_received() {
        let mut st = CeleryState::new(10, 60_000);
        // Sent at 100 to "mail", received at 130 (prefetched), started at 160: 60 s.
        let mut sent = timed("task-sent", "a", Some("send"), 100.0);
        sent.queue = Some("mail".into());
        st.apply(&sent, 0);
        st.apply(&timed("task-received", "a", Some("send"), 130.0), 0);
        st.apply(&timed("task-started", "a", None, 160.0), 0);
        // No task-sent: received at 10, started at 12.5: 2.5 s, no queue label (counted when
        // the run ends, as its task-sent might still come).
        st.apply(&timed("task-received", "b", Some("send"), 10.0), 0);
        st.apply(&timed("task-started", "b", None, 12.5), 0);
        st.apply(&timed("task-succeeded", "b", None, 13.0), 0);
        // Scheduled (eta): not a wait.
        let mut later = timed("task-received", "c", Some("send"), 10.0);
        later.scheduled = true;
        st.apply(&later, 0);
        st.apply(&timed("task-started", "c", None, 70.0), 0);
        // A second task-started of the same run counts nothing more.
        st.apply(&timed("task-started", "a", None, 170.0), 0);
        let s = st.samples(1, true);
        let wait = "celery_task_queue_wait_seconds";
        assert_eq!(
            value(
                &s,
                &format!("{wait}_count"),
                &[("name", "send"), ("queue_name", "mail")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &s,
                &format!("{wait}_sum"),
                &[("name", "send"), ("queue_name", "mail")]
            ),
            Some(60.0)
        );
        let unlabelled: Vec<&Sample> = s
            .iter()
            .filter(|x| x.name == format!("{wait}_sum") && x.label("queue_name").is_none())
            .collect();
        assert_eq!(unlabelled.last().map(|x| x.value), Some(2.5));
        assert_eq!(
            value(
                &s,
                &format!("{wait}_bucket"),
                &[("queue_name", "mail"), ("le", "30")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &s,
                &format!("{wait}_bucket"),
                &[("queue_name", "mail"), ("le", "60")]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn a_retry_waits_anew_and_clock_skew_reads_zero() {
        let mut st = CeleryState::new(10, 60_000);
        st.apply(&timed("task-sent", "r", Some("flaky"), 50.0), 0);
        st.apply(&timed("task-started", "r", None, 49.0), 0);
        st.apply(&ev("task-retried", "celery@w", "r", None), 0);
        st.apply(&timed("task-sent", "r", Some("flaky"), 60.0), 0);
        st.apply(&timed("task-received", "r", Some("flaky"), 60.5), 0);
        st.apply(&timed("task-started", "r", None, 61.0), 0);
        let s = st.samples(1, true);
        let count = "celery_task_queue_wait_seconds_count";
        assert_eq!(value(&s, count, &[("name", "flaky")]), Some(2.0));
        assert_eq!(
            value(&s, "celery_task_queue_wait_seconds_sum", &[("name", "flaky")]),
            Some(1.0)
        );
    }

    #[test]
    fn a_worker_is_down_after_two_missed_heartbeats_or_at_once_when_it_says_goodbye() {
        let mut st = CeleryState::new(10, 60_000);
        let mut hb = ev("worker-heartbeat", "celery@a", "", None);
        hb.freq = Some(2.0);
        hb.active = Some(2.0);
        st.apply(&hb, 0);
        let mut b = hb.clone();
        b.hostname = "celery@b".into();
        st.apply(&b, 0);
        let s = st.samples(4_000, true);
        assert_eq!(
            value(&s, "celery_worker_up", &[("hostname", "celery@a")]),
            Some(1.0)
        );
        assert_eq!(
            value(&s, "celery_worker_tasks_active", &[("hostname", "celery@a")]),
            Some(2.0)
        );
        st.apply(&ev("worker-offline", "celery@b", "", None), 4_500);
        let s = st.samples(4_500, true);
        assert_eq!(
            value(&s, "celery_worker_up", &[("hostname", "celery@a")]),
            Some(0.0)
        );
        assert_eq!(
            value(&s, "celery_worker_up", &[("hostname", "celery@b")]),
            Some(0.0)
        );
        assert!(st
            .samples(4_500, false)
            .iter()
            .all(|x| x.name != "celery_worker_up"));
        // Forgotten after forget_after.
        assert!(st
            .samples(70_000, true)
            .iter()
            .all(|x| x.name != "celery_worker_up"));
    }
}
