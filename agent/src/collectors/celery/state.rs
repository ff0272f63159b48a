//! What Celery's events add up to, named like celery-exporter: per-task-name counters of
//! each event type, a runtime histogram, and per-worker liveness from heartbeats. Every
//! label is bounded: task names (`max_task_names`, the rest `name="other"`), exception
//! types ([`MAX_EXCEPTIONS`]), workers (forgotten `forget_after` after they stop) and the
//! task ids kept to name later events ([`MAX_PENDING_TASKS`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::event::{exception_type, Event};
use crate::model::{MetricKind, Sample};

/// Runtime histogram bounds in seconds (Prometheus' default buckets, as celery-exporter).
pub const RUNTIME_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Most distinct exception types per server; the rest are `exception="other"`.
pub const MAX_EXCEPTIONS: usize = 50;

/// Most task ids remembered between `task-received` (which names the task) and the event
/// that ends it; the oldest are forgotten first (their end counts as `name="unknown"`).
pub const MAX_PENDING_TASKS: usize = 20_000;

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

#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The counts and workers of one broker; fed by [`CeleryState::apply`], read by
/// [`CeleryState::samples`].
#[derive(Debug)]
pub struct CeleryState {
    max_task_names: usize,
    forget_after_ms: i64,
    workers: BTreeMap<String, Worker>,
    /// Task id → (name, insertion number).
    pending: HashMap<String, (String, u64)>,
    /// Ids in insertion order; entries whose number no longer matches are dead and skipped.
    pending_order: VecDeque<(String, u64)>,
    pending_seq: u64,
    names: BTreeSet<String>,
    exceptions: BTreeSet<String>,
    /// (metric, task name, exception) → count.
    counters: BTreeMap<(&'static str, String, Option<String>), u64>,
    runtime: BTreeMap<String, Histogram>,
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
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
            pending_seq: 0,
            names: BTreeSet::new(),
            exceptions: BTreeSet::new(),
            counters: BTreeMap::new(),
            runtime: BTreeMap::new(),
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
        let name = self.task_name(e);
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
                let h = self.runtime.entry(name).or_default();
                if h.buckets.is_empty() {
                    h.buckets = vec![0; RUNTIME_BUCKETS.len()];
                }
                for (i, bound) in RUNTIME_BUCKETS.iter().enumerate() {
                    if runtime <= *bound {
                        h.buckets[i] += 1;
                    }
                }
                h.sum += runtime;
                h.count += 1;
            }
        }
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
    fn task_name(&mut self, e: &Event) -> String {
        let uuid = e.uuid.clone().unwrap_or_default();
        let name = match &e.name {
            Some(n) => {
                if !uuid.is_empty() && !self.pending.contains_key(&uuid) {
                    self.remember(&uuid, n);
                }
                n.clone()
            }
            None => match self.pending.get(&uuid) {
                Some((n, _)) => n.clone(),
                None => "unknown".to_string(),
            },
        };
        // Ended tasks are forgotten at once (a retry is received again under its id); their
        // entry in the order queue is skipped later.
        if matches!(
            e.kind.as_str(),
            "task-succeeded" | "task-failed" | "task-rejected" | "task-revoked"
        ) {
            self.pending.remove(&uuid);
        }
        if self.names.contains(&name) {
            return name;
        }
        if self.names.len() < self.max_task_names {
            self.names.insert(name.clone());
            return name;
        }
        "other".to_string()
    }

    /// Remembers the name of task `uuid`, forgetting the oldest beyond
    /// [`MAX_PENDING_TASKS`]; dead order entries are dropped in O(1) amortised time.
    fn remember(&mut self, uuid: &str, name: &str) {
        self.pending_seq += 1;
        let seq = self.pending_seq;
        self.pending.insert(uuid.to_string(), (name.to_string(), seq));
        self.pending_order.push_back((uuid.to_string(), seq));
        while self.pending.len() > MAX_PENDING_TASKS {
            let Some((old, old_seq)) = self.pending_order.pop_front() else {
                break;
            };
            if self.pending.get(&old).map(|p| p.1) == Some(old_seq) {
                self.pending.remove(&old);
            }
        }
        if self.pending_order.len() > 4 * MAX_PENDING_TASKS {
            let pending = &self.pending;
            self.pending_order
                .retain(|(u, s)| pending.get(u).map(|p| p.1) == Some(*s));
        }
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
            for (i, bound) in RUNTIME_BUCKETS.iter().enumerate() {
                let le = bound.to_string();
                counters.push(Sample::counter(
                    "celery_task_runtime_bucket",
                    &[("name", name), ("le", &le)],
                    h.buckets[i] as f64,
                    now_ms,
                ));
            }
            counters.push(Sample::counter(
                "celery_task_runtime_bucket",
                &[("name", name), ("le", "+Inf")],
                h.count as f64,
                now_ms,
            ));
            counters.push(Sample::counter(
                "celery_task_runtime_sum",
                &[("name", name)],
                h.sum,
                now_ms,
            ));
            counters.push(Sample::counter(
                "celery_task_runtime_count",
                &[("name", name)],
                h.count as f64,
                now_ms,
            ));
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

    #[test]
    fn remembered_task_ids_stay_bounded() {
        let mut st = CeleryState::new(10, 60_000);
        for i in 0..(5 * MAX_PENDING_TASKS) {
            let id = i.to_string();
            st.apply(&ev("task-received", "w", &id, Some("t")), 0);
            if i % 2 == 0 {
                st.apply(&ev("task-succeeded", "w", &id, None), 0);
            }
        }
        assert!(st.pending.len() <= MAX_PENDING_TASKS);
        assert!(st.pending_order.len() <= 4 * MAX_PENDING_TASKS + 1);
        // The newest running task is still named.
        let last = (5 * MAX_PENDING_TASKS - 1).to_string();
        st.apply(&ev("task-failed", "w", &last, None), 0);
        let s = st.samples(1, true);
        assert_eq!(value(&s, "celery_task_failed_total", &[("name", "t")]), Some(1.0));
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
