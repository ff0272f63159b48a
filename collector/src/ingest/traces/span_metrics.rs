//! Span-derived metrics, written to the metric store as spans arrive, so RED dashboards
//! and alerts are plain PromQL (names in `docs/otlp-mapping.md`):
//!
//! - `traces_span_metrics_calls_total{service_name, span_name, span_kind, status_code}`
//! - `traces_span_metrics_errors_total{service_name, span_name, span_kind}` (error status)
//! - `traces_span_metrics_duration_seconds{service_name, span_name, span_kind, status_code}`:
//!   a native histogram (the default), or with `[traces] duration_histogram = "classic"`
//!   `…_seconds_{bucket,sum,count}` with `le` on the buckets; each batch adds one exemplar
//!   per duration series, its slowest span ([`super::totals`])
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

use didban_store::traces::{kind_name, status, status_name, Span};
use didban_store::{SeriesExemplar, SeriesSamples};
use parking_lot::Mutex;

use super::faas::FaasMeter;
use super::totals::Totals;
use crate::config::traces_logs::FaasConfig;

pub use super::totals::{DurationLayout, MAX_SERIES};

/// What a batch of spans adds to the metric store: the samples of the series it touched and
/// the exemplars of its duration series (to append after the samples).
#[derive(Debug, Default)]
pub struct Recorded {
    /// Current values of the touched series.
    pub samples: Vec<SeriesSamples>,
    /// One exemplar per touched duration series: its slowest span of the batch.
    pub exemplars: Vec<SeriesExemplar>,
}

/// The counts of one batch of spans, not yet in the totals.
pub struct Tally(Totals);

struct State {
    totals: Totals,
    last_ms: i64,
}

/// Turns spans into metric samples; one per server.
pub struct SpanMetrics {
    state: Mutex<State>,
    layout: DurationLayout,
    faas: FaasMeter,
}

impl SpanMetrics {
    /// A meter recording durations as `layout` says, with the FaaS price table.
    pub fn new(layout: DurationLayout, faas: FaasConfig) -> SpanMetrics {
        SpanMetrics {
            state: Mutex::new(State {
                totals: Totals::default(),
                last_ms: 0,
            }),
            layout,
            faas: FaasMeter::new(faas),
        }
    }

    /// Counts a batch of stored spans; returns the samples and exemplars to append (at
    /// `now_ms`, or just after the previous batch's time so two batches never share a
    /// timestamp).
    pub fn observe(&self, spans: &[Span], now_ms: i64) -> Recorded {
        let tally = self.tally(spans);
        self.record(tally, now_ms)
    }

    /// Counts a batch of spans apart from the totals, so the spans can be handed to the
    /// trace store and the counts added ([`SpanMetrics::record`]) only once it stored them.
    pub fn tally(&self, spans: &[Span]) -> Tally {
        let mut counters = Totals::default();
        for s in spans {
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
            counters.observe("traces_span_metrics_duration_seconds", &labels, &self.layout, s);
            self.faas.observe(s, &self.layout, &mut counters);
        }
        Tally(counters)
    }

    /// Adds a batch's counts to the totals; returns the samples and exemplars to append (as
    /// [`SpanMetrics::observe`]).
    pub fn record(&self, tally: Tally, now_ms: i64) -> Recorded {
        let Tally(counts) = tally;
        let mut state = self.state.lock();
        state.totals.absorb(counts);
        let t = now_ms.max(state.last_ms + 1);
        state.last_ms = t;
        Recorded {
            samples: state.totals.drain(t),
            exemplars: state.totals.take_exemplars(t),
        }
    }

    /// Takes back samples from [`SpanMetrics::observe`] that the metric store refused
    /// (a WAL fault): their series are written again, with their then current values, by
    /// the next batch.
    pub fn retry_later(&self, samples: &[SeriesSamples]) {
        self.state.lock().totals.retouch(samples);
    }

    /// Observations dropped because the series limit was reached.
    pub fn dropped(&self) -> u64 {
        self.state.lock().totals.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let classic = DurationLayout::Classic(vec![0.1, 1.0]);
        let m = SpanMetrics::new(classic, FaasConfig::default());
        let spans = vec![
            celery_span("app.add", status::UNSET, 50),
            celery_span("app.add", status::UNSET, 500),
            celery_span("app.boom", status::ERROR, 20),
            celery_span("app.boom", status::UNSET, 20),
        ];
        let out = m.observe(&spans, 1_000).samples;
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

        // Natively, the task's runtime is one histogram series without `le`.
        let m = SpanMetrics::new(DurationLayout::Native, FaasConfig::default());
        let out = m.observe(&spans, 1_000);
        let add = out
            .samples
            .iter()
            .find(|s| {
                s.labels.get("__name__") == Some("traces_span_metrics_duration_seconds")
                    && s.labels.get("span_name") == Some("run/app.add")
            })
            .and_then(|s| s.histograms.last())
            .map(|h| (h.h.count, (h.h.sum * 1e6).round() / 1e6));
        assert_eq!(add, Some((2.0, 0.55)));
        assert!(!out
            .samples
            .iter()
            .any(|s| s.labels.get("__name__") == Some("traces_span_metrics_duration_seconds_bucket")));
        // One exemplar per duration series (three status/task pairs here).
        assert_eq!(out.exemplars.len(), 3);
    }
}
