//! Span-derived metrics, written to the metric store as spans arrive, so RED dashboards
//! and alerts are plain PromQL (names in `docs/otlp-mapping.md`):
//!
//! - `traces_span_metrics_calls_total{service_name, span_name, span_kind, status_code}`
//! - `traces_span_metrics_errors_total{service_name, span_name, span_kind}` (error status)
//! - `traces_span_metrics_duration_seconds_{bucket,sum,count}{service_name, span_name, span_kind, status_code[, le]}`
//!
//! Consumer spans of OpenTelemetry's Celery instrumentation (kind CONSUMER, named
//! `run/<task name>`, status ERROR when the task raised) thus give task outcomes per task:
//! `traces_span_metrics_errors_total{span_kind="SPAN_KIND_CONSUMER", span_name="run/<task>"}`
//! over `traces_span_metrics_calls_total{…}` is the failure ratio, and the duration histogram
//! the runtime (a retry is a call with status UNSET, not an error).
//!
//! Serverless spans add the FaaS metrics of [`super::faas`]. Values are cumulative since
//! the server started (a restart is a counter reset, which `rate()` handles); each batch
//! writes the current value of every series it touched at the arrival time.

use foldhash::HashMap;

use didban_store::traces::{kind_name, status, status_name, Span};
use didban_store::{Labels, Sample, SeriesSamples};
use parking_lot::Mutex;

use super::faas::FaasMeter;
use crate::config::traces_logs::FaasConfig;
use crate::selfmon::format_value;

/// Most distinct label sets kept; spans that would create more are not counted (and
/// counted in `dropped`).
pub const MAX_SERIES: usize = 50_000;

/// Cumulative counters keyed by their full label set.
#[derive(Default)]
pub(crate) struct Counters {
    values: HashMap<Labels, f64>,
    touched: Vec<Labels>,
    /// Series created since the last drain: they get a zero sample just before their first
    /// value, so `increase()`/`rate()` count the first batch too (as Prometheus does with
    /// created-timestamp zero injection).
    created: Vec<Labels>,
    /// Observations dropped because [`MAX_SERIES`] was reached.
    pub dropped: u64,
}

impl Counters {
    /// Adds `delta` to the series `name{labels}`.
    pub(crate) fn add(&mut self, name: &str, labels: &[(&str, &str)], delta: f64) {
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(labels.len() + 1);
        pairs.push(("__name__".to_string(), name.to_string()));
        for (k, v) in labels {
            pairs.push((k.to_string(), v.to_string()));
        }
        self.add_key(Labels::from_pairs(pairs), delta);
    }

    /// Adds `delta` to the series `key` (its full label set, name included).
    fn add_key(&mut self, key: Labels, delta: f64) {
        match self.values.get_mut(&key) {
            Some(v) => *v += delta,
            None => {
                if self.values.len() >= MAX_SERIES {
                    self.dropped += 1;
                    return;
                }
                self.values.insert(key.clone(), delta);
                self.created.push(key.clone());
            }
        }
        self.touched.push(key);
    }

    /// Records `value` in the histogram `name` (`_bucket`, `_sum`, `_count`).
    pub(crate) fn observe(&mut self, name: &str, labels: &[(&str, &str)], buckets: &[f64], value: f64) {
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        let bucket_name = format!("{name}_bucket");
        let mut texts = Vec::with_capacity(buckets.len() + 1);
        for b in buckets {
            texts.push((format_value(*b), value <= *b));
        }
        texts.push(("+Inf".to_string(), true));
        for (le, hit) in &texts {
            with_le.push(("le", le.as_str()));
            self.add(&bucket_name, &with_le, if *hit { 1.0 } else { 0.0 });
            with_le.pop();
        }
        self.add(&format!("{name}_sum"), labels, value);
        self.add(&format!("{name}_count"), labels, 1.0);
    }

    /// Marks the series of `samples` (a drain the metric store refused) as touched again,
    /// and as created when their samples started with the zero, so the next drain writes
    /// them again at its own time: the counts of a refused drain are delayed, not lost.
    pub(crate) fn retouch(&mut self, samples: &[SeriesSamples]) {
        for s in samples {
            if !self.values.contains_key(&s.labels) {
                continue;
            }
            if s.samples.len() > 1 {
                self.created.push(s.labels.clone());
            }
            self.touched.push(s.labels.clone());
        }
    }

    /// The touched series with their current values at `t_ms` (series created since the
    /// last drain also with a zero at `t_ms - 1`); clears the touched list.
    pub(crate) fn drain(&mut self, t_ms: i64) -> Vec<SeriesSamples> {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort();
        touched.dedup();
        let mut created = std::mem::take(&mut self.created);
        created.sort();
        let mut out = Vec::with_capacity(touched.len());
        for labels in touched {
            if let Some(v) = self.values.get(&labels) {
                let mut samples = Vec::with_capacity(2);
                if created.binary_search(&labels).is_ok() {
                    samples.push(Sample {
                        timestamp_ms: t_ms - 1,
                        value: 0.0,
                    });
                }
                samples.push(Sample {
                    timestamp_ms: t_ms,
                    value: *v,
                });
                out.push(SeriesSamples::floats(labels, samples));
            }
        }
        out
    }
}

/// The counts of one batch of spans, not yet in the totals.
pub struct Tally(Counters);

struct State {
    counters: Counters,
    last_ms: i64,
}

/// Turns spans into metric samples; one per server.
pub struct SpanMetrics {
    state: Mutex<State>,
    buckets: Vec<f64>,
    faas: FaasMeter,
}

impl SpanMetrics {
    /// A meter with the histogram `buckets` (seconds) and the FaaS price table.
    pub fn new(buckets: Vec<f64>, faas: FaasConfig) -> SpanMetrics {
        SpanMetrics {
            state: Mutex::new(State {
                counters: Counters::default(),
                last_ms: 0,
            }),
            buckets,
            faas: FaasMeter::new(faas),
        }
    }

    /// Counts a batch of stored spans; returns the samples to append (at `now_ms`, or just
    /// after the previous batch's time so two batches never share a timestamp).
    pub fn observe(&self, spans: &[Span], now_ms: i64) -> Vec<SeriesSamples> {
        let tally = self.tally(spans);
        self.record(tally, now_ms)
    }

    /// Counts a batch of spans apart from the totals, so the spans can be handed to the
    /// trace store and the counts added ([`SpanMetrics::record`]) only once it stored them.
    pub fn tally(&self, spans: &[Span]) -> Tally {
        let mut counters = Counters::default();
        for s in spans {
            let seconds = s.duration_nano as f64 / 1e9;
            let kind = format!("SPAN_KIND_{}", kind_name(s.kind).to_ascii_uppercase());
            let code = status_name(s.status_code);
            let labels = [
                ("service_name", s.service.as_str()),
                ("span_name", s.name.as_str()),
                ("span_kind", kind.as_str()),
                ("status_code", code),
            ];
            counters.add("traces_span_metrics_calls_total", &labels, 1.0);
            if s.status_code == status::ERROR {
                counters.add("traces_span_metrics_errors_total", &labels[..3], 1.0);
            }
            counters.observe(
                "traces_span_metrics_duration_seconds",
                &labels,
                &self.buckets,
                seconds,
            );
            self.faas.observe(s, &self.buckets, &mut counters);
        }
        Tally(counters)
    }

    /// Adds a batch's counts to the totals; returns the samples to append (as
    /// [`SpanMetrics::observe`]).
    pub fn record(&self, tally: Tally, now_ms: i64) -> Vec<SeriesSamples> {
        let Tally(counts) = tally;
        let mut state = self.state.lock();
        state.counters.dropped += counts.dropped;
        let mut keys = counts.touched;
        keys.sort();
        keys.dedup();
        for key in keys {
            if let Some(delta) = counts.values.get(&key) {
                state.counters.add_key(key, *delta);
            }
        }
        let t = now_ms.max(state.last_ms + 1);
        state.last_ms = t;
        state.counters.drain(t)
    }

    /// Takes back samples from [`SpanMetrics::observe`] that the metric store refused
    /// (a WAL fault): their series are written again, with their then current values, by
    /// the next batch.
    pub fn retry_later(&self, samples: &[SeriesSamples]) {
        self.state.lock().counters.retouch(samples);
    }

    /// Observations dropped because the series limit was reached.
    pub fn dropped(&self) -> u64 {
        self.state.lock().counters.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples_of(out: &[SeriesSamples], name: &str) -> Vec<(i64, f64)> {
        let s = out
            .iter()
            .find(|s| s.labels.get("__name__") == Some(name))
            .unwrap_or_else(|| panic!("no {name}"));
        s.samples.iter().map(|p| (p.timestamp_ms, p.value)).collect()
    }

    fn celery_span(task: &str, status_code: i32, ms: i64) -> Span {
        let mut attributes = serde_json::Map::new();
        attributes.insert("celery.task_name".into(), task.into());
        attributes.insert(
            "celery.state".into(),
            if status_code == status::ERROR {
                "FAILURE"
            } else {
                "SUCCESS"
            }
            .into(),
        );
        attributes.insert("messaging.destination.name".into(), "celery".into());
        Span {
            trace_id: "1".repeat(32),
            span_id: "2".repeat(16),
            parent_span_id: String::new(),
            trace_state: String::new(),
            name: format!("run/{task}"),
            kind: didban_store::traces::kind::CONSUMER,
            service: "worker".into(),
            start_unix_nano: 1,
            duration_nano: ms * 1_000_000,
            status_code,
            status_message: String::new(),
            attributes,
            resource: Default::default(),
            scope_name: "opentelemetry.instrumentation.celery".into(),
            scope_version: String::new(),
            events: Vec::new(),
            links: Vec::new(),
        }
    }

    #[test]
    fn failed_celery_tasks_count_as_errors_per_task_name() {
        let m = SpanMetrics::new(vec![0.1, 1.0], FaasConfig::default());
        let spans = vec![
            celery_span("app.add", status::UNSET, 50),
            celery_span("app.add", status::UNSET, 500),
            celery_span("app.boom", status::ERROR, 20),
            celery_span("app.boom", status::UNSET, 20),
        ];
        let out = m.observe(&spans, 1_000);
        let last = |name: &str, labels: &[(&str, &str)]| {
            out.iter()
                .find(|s| {
                    s.labels.get("__name__") == Some(name)
                        && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
                })
                .and_then(|s| s.samples.last())
                .map(|p| p.value)
        };
        let consumer = ("span_kind", "SPAN_KIND_CONSUMER");
        assert_eq!(
            last(
                "traces_span_metrics_errors_total",
                &[("span_name", "run/app.boom"), consumer]
            ),
            Some(1.0)
        );
        assert_eq!(
            last(
                "traces_span_metrics_errors_total",
                &[("span_name", "run/app.add")]
            ),
            None
        );
        assert_eq!(
            last(
                "traces_span_metrics_calls_total",
                &[
                    ("span_name", "run/app.add"),
                    consumer,
                    ("status_code", "STATUS_CODE_UNSET")
                ]
            ),
            Some(2.0)
        );
        assert_eq!(
            last(
                "traces_span_metrics_duration_seconds_bucket",
                &[
                    ("span_name", "run/app.add"),
                    ("status_code", "STATUS_CODE_UNSET"),
                    ("le", "0.1")
                ]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn a_refused_drain_is_written_again_by_the_next_one() {
        let mut c = Counters::default();
        c.add("calls_total", &[("service_name", "a")], 3.0);
        let refused = c.drain(1_000);
        c.retouch(&refused);
        c.add("calls_total", &[("service_name", "b")], 1.0);
        let next = c.drain(2_000);
        assert_eq!(next.len(), 2);
        // The new series keeps its zero start, so its first batch still counts.
        assert_eq!(
            samples_of(&next[..1], "calls_total"),
            vec![(1_999, 0.0), (2_000, 3.0)]
        );
        c.retouch(&next);
        c.add("calls_total", &[("service_name", "a")], 1.0);
        let third = c.drain(3_000);
        let a = third
            .iter()
            .find(|s| s.labels.get("service_name") == Some("a"))
            .map(|s| s.samples.clone());
        assert_eq!(
            a.map(|v| v.iter().map(|p| (p.timestamp_ms, p.value)).collect::<Vec<_>>()),
            Some(vec![(2_999, 0.0), (3_000, 4.0)])
        );
    }

    #[test]
    fn a_new_counter_starts_with_a_zero_so_its_first_batch_counts() {
        let mut c = Counters::default();
        c.add("calls_total", &[("service_name", "a")], 3.0);
        let first = c.drain(1_000);
        assert_eq!(samples_of(&first, "calls_total"), vec![(999, 0.0), (1_000, 3.0)]);
        // Later batches of the same series carry only their current value.
        c.add("calls_total", &[("service_name", "a")], 2.0);
        c.add("calls_total", &[("service_name", "b")], 1.0);
        let second = c.drain(2_000);
        assert_eq!(second.len(), 2);
        let a = second
            .iter()
            .find(|s| s.labels.get("service_name") == Some("a"))
            .unwrap();
        assert_eq!(a.samples.len(), 1);
        assert_eq!((a.samples[0].timestamp_ms, a.samples[0].value), (2_000, 5.0));
        let b = second
            .iter()
            .find(|s| s.labels.get("service_name") == Some("b"))
            .unwrap();
        assert_eq!(b.samples.len(), 2, "b is new in this batch");
    }
}
