//! The cumulative values behind the span-derived metrics: counters and duration histograms
//! keyed by their full label set, which series a batch touched, and the one exemplar per
//! duration series and batch.
//!
//! A duration histogram is either one native histogram series (the metric name itself, see
//! [`super::exponential`]) or classic `_bucket{le}`, `_sum` and `_count` counters
//! ([`DurationLayout`], `[traces] duration_histogram`). Either way, a series created since
//! the last drain is written with a zero just before its first value (as Prometheus injects
//! a zero at a created timestamp), so `increase()`/`rate()` count its first batch too; the
//! zero of a native histogram carries the "counter reset" hint and every later sample "not a
//! counter reset", since the collector knows its totals only grow until it restarts.

use foldhash::HashMap;

use didban_store::model::CounterResetHint;
use didban_store::traces::Span;
use didban_store::{Exemplar, HistogramSample, Labels, Sample, SeriesExemplar, SeriesSamples};

use super::exponential::Exponential;
use crate::config::traces_logs::{DurationHistogram, TracesConfig};
use crate::selfmon::format_value;

/// Most distinct label sets kept (counters and histograms together); spans that would
/// create more are not counted (and counted in `dropped`).
pub const MAX_SERIES: usize = 50_000;

/// How span durations are recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum DurationLayout {
    /// One native histogram series per label set.
    Native,
    /// Classic `_bucket` (one per upper bound in seconds, plus `+Inf`), `_sum`, `_count`.
    Classic(Vec<f64>),
}

impl DurationLayout {
    /// The layout `[traces]` asks for: native, or classic with `duration_buckets`.
    pub fn of(config: &TracesConfig) -> DurationLayout {
        match config.duration_histogram {
            DurationHistogram::Native => DurationLayout::Native,
            DurationHistogram::Classic => DurationLayout::Classic(config.duration_buckets.clone()),
        }
    }
}

/// One series' cumulative value.
#[derive(Debug, Clone)]
enum Total {
    Count(f64),
    Histogram(Exponential),
}

/// The span a duration series' exemplar points at: the slowest of the batch.
#[derive(Debug, Clone)]
struct Slowest {
    trace_id: String,
    span_id: String,
    seconds: f64,
}

/// Counters and histograms keyed by their full label set (name included).
#[derive(Default)]
pub(crate) struct Totals {
    values: HashMap<Labels, Total>,
    touched: Vec<Labels>,
    /// Series created since the last drain: they get a zero sample just before their first
    /// value.
    created: Vec<Labels>,
    /// Per duration series, the slowest span observed since the last drain.
    slowest: HashMap<Labels, Slowest>,
    /// Observations dropped because [`MAX_SERIES`] was reached.
    pub dropped: u64,
}

fn key(name: &str, labels: &[(&str, &str)]) -> Labels {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(labels.len() + 1);
    pairs.push(("__name__".to_string(), name.to_string()));
    for (k, v) in labels {
        pairs.push((k.to_string(), v.to_string()));
    }
    Labels::from_pairs(pairs)
}

impl Totals {
    /// Adds `delta` to the counter `name{labels}`.
    pub(crate) fn add(&mut self, name: &str, labels: &[(&str, &str)], delta: f64) {
        self.merge_key(key(name, labels), &Total::Count(delta));
    }

    /// Records the duration of span `s` in the histogram `name{labels}` laid out as `layout`,
    /// and remembers the span as the series' exemplar when it is the slowest so far.
    pub(crate) fn observe(&mut self, name: &str, labels: &[(&str, &str)], layout: &DurationLayout, s: &Span) {
        let seconds = s.duration_nano as f64 / 1e9;
        let exemplar_series = match layout {
            DurationLayout::Native => {
                let k = key(name, labels);
                if let Some(Total::Histogram(h)) = self.values.get_mut(&k) {
                    h.observe(seconds);
                    self.touched.push(k.clone());
                } else {
                    let mut h = Exponential::default();
                    h.observe(seconds);
                    self.merge_key(k.clone(), &Total::Histogram(h));
                }
                k
            }
            DurationLayout::Classic(buckets) => self.observe_classic(name, labels, buckets, seconds),
        };
        if !self.values.contains_key(&exemplar_series) {
            return;
        }
        let slower = match self.slowest.get(&exemplar_series) {
            Some(old) => seconds > old.seconds,
            None => true,
        };
        if slower && !s.trace_id.is_empty() {
            self.slowest.insert(
                exemplar_series,
                Slowest {
                    trace_id: s.trace_id.clone(),
                    span_id: s.span_id.clone(),
                    seconds,
                },
            );
        }
    }

    /// Classic buckets, sum and count; returns the `_bucket` series that counted the value
    /// first (the smallest `le` not below it), where its exemplar goes, as for OTLP.
    fn observe_classic(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        buckets: &[f64],
        value: f64,
    ) -> Labels {
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        let bucket_name = format!("{name}_bucket");
        let mut texts = Vec::with_capacity(buckets.len() + 1);
        for b in buckets {
            texts.push((format_value(*b), value <= *b));
        }
        texts.push(("+Inf".to_string(), true));
        let mut first_hit = None;
        for (le, hit) in &texts {
            with_le.push(("le", le.as_str()));
            let k = key(&bucket_name, &with_le);
            if *hit && first_hit.is_none() {
                first_hit = Some(k.clone());
            }
            self.merge_key(k, &Total::Count(if *hit { 1.0 } else { 0.0 }));
            with_le.pop();
        }
        self.add(&format!("{name}_sum"), labels, value);
        self.add(&format!("{name}_count"), labels, 1.0);
        first_hit.unwrap_or_default()
    }

    /// Adds `delta` (a count or a batch's histogram) to the series `key`, creating it while
    /// there are fewer than [`MAX_SERIES`].
    fn merge_key(&mut self, key: Labels, delta: &Total) {
        match self.values.get_mut(&key) {
            Some(Total::Count(v)) => {
                if let Total::Count(d) = delta {
                    *v += d;
                }
            }
            Some(Total::Histogram(h)) => {
                if let Total::Histogram(d) = delta {
                    h.merge(d);
                }
            }
            None => {
                if self.values.len() >= MAX_SERIES {
                    self.dropped += 1;
                    return;
                }
                self.values.insert(key.clone(), delta.clone());
                self.created.push(key.clone());
            }
        }
        self.touched.push(key);
    }

    /// Adds the counts of a batch (`tally`) to these totals, with its exemplar candidates.
    pub(crate) fn absorb(&mut self, tally: Totals) {
        self.dropped += tally.dropped;
        let mut keys = tally.touched;
        keys.sort();
        keys.dedup();
        for k in keys {
            if let Some(delta) = tally.values.get(&k) {
                self.merge_key(k, delta);
            }
        }
        for (series, s) in tally.slowest {
            if !self.values.contains_key(&series) {
                continue;
            }
            let slower = self
                .slowest
                .get(&series)
                .is_none_or(|old| s.seconds > old.seconds);
            if slower {
                self.slowest.insert(series, s);
            }
        }
    }

    /// Marks the series of `samples` (a drain the metric store refused) as touched again,
    /// and as created when their samples started with the zero, so the next drain writes
    /// them again at its own time: the counts of a refused drain are delayed, not lost.
    pub(crate) fn retouch(&mut self, samples: &[SeriesSamples]) {
        for s in samples {
            if !self.values.contains_key(&s.labels) {
                continue;
            }
            if s.samples.len() > 1 || s.histograms.len() > 1 {
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
            let new = created.binary_search(&labels).is_ok();
            match self.values.get(&labels) {
                Some(Total::Count(v)) => {
                    let mut samples = Vec::with_capacity(2);
                    if new {
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
                Some(Total::Histogram(h)) => {
                    let mut histograms = Vec::with_capacity(2);
                    if new {
                        histograms.push(HistogramSample::new(t_ms - 1, h.zero_like()));
                    }
                    let hint = CounterResetHint::NotCounterReset;
                    histograms.push(HistogramSample::new(t_ms, h.to_float(hint)));
                    out.push(SeriesSamples {
                        labels,
                        samples: Vec::new(),
                        histograms,
                    });
                }
                None => {}
            }
        }
        out
    }

    /// One exemplar per duration series observed since the last call: the slowest span's
    /// `trace_id` and `span_id`, its duration in seconds, at `t_ms` (the time of the drain
    /// that wrote the series, so a series' exemplars are in time order).
    pub(crate) fn take_exemplars(&mut self, t_ms: i64) -> Vec<SeriesExemplar> {
        let mut out = Vec::with_capacity(self.slowest.len());
        for (series, s) in self.slowest.drain() {
            let mut pairs = vec![("trace_id".to_string(), s.trace_id)];
            if !s.span_id.is_empty() {
                pairs.push(("span_id".to_string(), s.span_id));
            }
            out.push(SeriesExemplar {
                series,
                exemplar: Exemplar {
                    labels: Labels::from_pairs(pairs),
                    value: s.seconds,
                    timestamp_ms: t_ms,
                },
            });
        }
        out.sort_by(|a, b| a.series.cmp(&b.series));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn samples_of(out: &[SeriesSamples], name: &str) -> Vec<(i64, f64)> {
        let s = out
            .iter()
            .find(|s| s.labels.get("__name__") == Some(name))
            .unwrap_or_else(|| panic!("no {name}"));
        s.samples.iter().map(|p| (p.timestamp_ms, p.value)).collect()
    }

    fn span(trace: &str, ms: i64) -> Span {
        Span {
            trace_id: trace.repeat(32),
            span_id: "2".repeat(16),
            parent_span_id: String::new(),
            trace_state: String::new(),
            name: "GET /".into(),
            kind: didban_store::traces::kind::SERVER,
            service: "shop".into(),
            start_unix_nano: 1,
            duration_nano: ms * 1_000_000,
            status_code: 0,
            status_message: String::new(),
            attributes: Default::default(),
            resource: Default::default(),
            scope_name: String::new(),
            scope_version: String::new(),
            events: Vec::new(),
            links: Vec::new(),
        }
    }

    #[test]
    fn a_refused_drain_is_written_again_by_the_next_one() {
        let mut c = Totals::default();
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
        let mut c = Totals::default();
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

    #[test]
    fn a_native_duration_series_starts_at_a_reset_zero_and_then_only_grows() {
        let mut totals = Totals::default();
        let labels = [("service_name", "shop")];
        let mut tally = Totals::default();
        tally.observe("d_seconds", &labels, &DurationLayout::Native, &span("a", 100));
        tally.observe("d_seconds", &labels, &DurationLayout::Native, &span("b", 300));
        totals.absorb(tally);
        let first = totals.drain(1_000);
        assert_eq!(first.len(), 1);
        let h = &first[0].histograms;
        assert!(first[0].samples.is_empty());
        assert_eq!(first[0].labels.get("le"), None);
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].timestamp_ms, h[0].h.count), (999, 0.0));
        assert_eq!(h[0].h.counter_reset_hint, CounterResetHint::CounterReset);
        assert_eq!((h[1].timestamp_ms, h[1].h.count), (1_000, 2.0));
        assert_eq!(h[1].h.counter_reset_hint, CounterResetHint::NotCounterReset);
        // The batch's exemplar is its slowest span, at the drain's time.
        let ex = totals.take_exemplars(1_000);
        assert_eq!(ex.len(), 1);
        assert_eq!(ex[0].series, first[0].labels);
        assert_eq!(
            ex[0].exemplar.labels.get("trace_id"),
            Some("b".repeat(32).as_str())
        );
        assert_eq!((ex[0].exemplar.value, ex[0].exemplar.timestamp_ms), (0.3, 1_000));
        assert!(totals.take_exemplars(1_001).is_empty());

        // A refused drain is written again with its zero; then the total keeps growing.
        totals.retouch(&first);
        let mut tally = Totals::default();
        tally.observe("d_seconds", &labels, &DurationLayout::Native, &span("c", 5));
        totals.absorb(tally);
        let again = totals.drain(2_000);
        let h = &again[0].histograms;
        assert_eq!(h.len(), 2);
        assert_eq!(
            (h[0].timestamp_ms, h[1].timestamp_ms, h[1].h.count),
            (1_999, 2_000, 3.0)
        );
        assert!(!h[1].h.detect_reset(&first[0].histograms[1].h));
    }

    #[test]
    fn classic_exemplars_go_to_the_bucket_that_counted_the_span() {
        let mut t = Totals::default();
        let layout = DurationLayout::Classic(vec![0.1, 1.0]);
        t.observe("d_seconds", &[("service_name", "shop")], &layout, &span("a", 250));
        let ex = t.take_exemplars(5);
        assert_eq!(ex.len(), 1);
        assert_eq!(ex[0].series.get("le"), Some("1"));
        assert_eq!(ex[0].series.get("__name__"), Some("d_seconds_bucket"));
        let out = t.drain(5);
        let names: Vec<_> = out
            .iter()
            .map(|s| s.labels.get("__name__").unwrap_or(""))
            .collect();
        assert_eq!(out.len(), 5, "{names:?}");
    }

    #[test]
    fn histograms_and_counters_share_the_series_limit() {
        let mut t = Totals::default();
        for i in 0..MAX_SERIES {
            t.add("calls_total", &[("i", &i.to_string())], 1.0);
        }
        t.observe("d_seconds", &[("i", "0")], &DurationLayout::Native, &span("a", 1));
        assert_eq!(t.dropped, 1);
        assert!(t.take_exemplars(1).is_empty());
    }
}
