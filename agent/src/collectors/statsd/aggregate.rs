//! StatsD aggregation between flushes. Counters and timer/histogram counts and sums are
//! cumulative since the agent started (Prometheus counters); gauges keep their last value;
//! quantiles and set sizes describe the last flush interval. The number of series is capped.

use std::collections::{BTreeMap, HashSet};

use super::parse::{sanitize, StatKind, StatLine};
use crate::model::{MetricKind, Sample};

/// Most observations kept per timer/histogram and flush for quantiles (count and sum stay exact).
pub const MAX_OBSERVATIONS: usize = 10_000;

type Key = (String, Vec<(String, String)>);

#[derive(Debug, Default)]
struct Distribution {
    count: f64,
    sum: f64,
    window: Vec<f64>,
}

/// Aggregated state of everything received.
#[derive(Debug)]
pub struct Aggregator {
    max_series: usize,
    quantiles: Vec<f64>,
    counters: BTreeMap<Key, f64>,
    gauges: BTreeMap<Key, f64>,
    distributions: BTreeMap<Key, Distribution>,
    sets: BTreeMap<Key, HashSet<String>>,
    /// Series refused because `max_series` was reached.
    pub dropped_series: u64,
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new(max_series: usize, quantiles: Vec<f64>) -> Aggregator {
        Aggregator {
            max_series,
            quantiles,
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            distributions: BTreeMap::new(),
            sets: BTreeMap::new(),
            dropped_series: 0,
        }
    }

    fn series(&self) -> usize {
        self.counters.len() + self.gauges.len() + self.distributions.len() + self.sets.len()
    }

    fn admit<V>(map: &BTreeMap<Key, V>, key: &Key, room: bool) -> bool {
        room || map.contains_key(key)
    }

    /// Adds one line.
    pub fn add(&mut self, line: StatLine) {
        let mut name = sanitize(&line.name, true);
        let mut labels = Vec::with_capacity(line.tags.len());
        for (k, v) in line.tags {
            if !v.is_empty() {
                labels.push((sanitize(&k, false), v));
            }
        }
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        if line.kind == StatKind::Counter {
            name.push_str("_total");
        } else if line.kind == StatKind::Timer {
            name.push_str("_seconds");
        }
        let key = (name, labels);
        let room = self.series() < self.max_series;
        let admitted = match line.kind {
            StatKind::Counter => Self::admit(&self.counters, &key, room),
            StatKind::Gauge => Self::admit(&self.gauges, &key, room),
            StatKind::Timer | StatKind::Histogram => Self::admit(&self.distributions, &key, room),
            StatKind::Set => Self::admit(&self.sets, &key, room),
        };
        if !admitted {
            self.dropped_series += 1;
            return;
        }
        match line.kind {
            StatKind::Counter => *self.counters.entry(key).or_default() += line.value / line.rate,
            StatKind::Gauge => {
                let g = self.gauges.entry(key).or_default();
                if line.relative {
                    *g += line.value;
                } else {
                    *g = line.value;
                }
            }
            StatKind::Timer | StatKind::Histogram => {
                let value = if line.kind == StatKind::Timer {
                    line.value / 1000.0
                } else {
                    line.value
                };
                let d = self.distributions.entry(key).or_default();
                d.count += 1.0 / line.rate;
                d.sum += value / line.rate;
                if d.window.len() < MAX_OBSERVATIONS {
                    d.window.push(value);
                }
            }
            StatKind::Set => {
                self.sets.entry(key).or_default().insert(line.set_member);
            }
        }
    }

    /// Samples for this flush; clears the per-interval state (quantile windows, sets).
    pub fn flush(&mut self, now: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        let sample = |name: &str, labels: &[(String, String)], kind, value| Sample {
            name: name.to_string(),
            labels: labels.to_vec(),
            kind,
            value,
            timestamp_ms: now,
            histogram: None,
        };
        for ((name, labels), v) in &self.counters {
            out.push(sample(name, labels, MetricKind::Counter, *v));
        }
        for ((name, labels), v) in &self.gauges {
            out.push(sample(name, labels, MetricKind::Gauge, *v));
        }
        for ((name, labels), d) in self.distributions.iter_mut() {
            out.push(sample(
                &format!("{name}_count"),
                labels,
                MetricKind::Counter,
                d.count,
            ));
            out.push(sample(&format!("{name}_sum"), labels, MetricKind::Counter, d.sum));
            if d.window.is_empty() {
                continue;
            }
            d.window.sort_by(|a, b| a.total_cmp(b));
            for q in &self.quantiles {
                let rank = (q * d.window.len() as f64).ceil() as usize;
                let index = rank.clamp(1, d.window.len()) - 1;
                let Some(v) = d.window.get(index) else { continue };
                let mut l = labels.clone();
                l.push(("quantile".to_string(), q.to_string()));
                out.push(sample(name, &l, MetricKind::Gauge, *v));
            }
            d.window.clear();
        }
        for ((name, labels), members) in self.sets.iter_mut() {
            out.push(sample(name, labels, MetricKind::Gauge, members.len() as f64));
            members.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::parse::parse_line;
    use super::*;

    fn get(s: &[Sample], name: &str, q: Option<&str>) -> f64 {
        s.iter()
            .find(|x| x.name == name && x.label("quantile") == q)
            .unwrap()
            .value
    }

    #[test]
    fn aggregates_and_caps() {
        let mut a = Aggregator::new(4, vec![0.5, 0.99]);
        for l in [
            "hits:1|c",
            "hits:2|c|@0.5",
            "temp:10|g",
            "temp:+5|g",
            "t:100|ms",
            "t:300|ms",
            "t:200|ms",
        ] {
            a.add(parse_line(l).unwrap());
        }
        a.add(parse_line("u:a|s").unwrap());
        a.add(parse_line("u:a|s").unwrap()); // same series, admitted at the cap
        a.add(parse_line("extra:1|g").unwrap()); // a 5th series: dropped
        let s = a.flush(1);
        assert_eq!(get(&s, "hits_total", None), 5.0);
        assert_eq!(get(&s, "temp", None), 15.0);
        assert_eq!(get(&s, "t_seconds_count", None), 3.0);
        assert!((get(&s, "t_seconds_sum", None) - 0.6).abs() < 1e-9);
        assert_eq!(get(&s, "t_seconds", Some("0.5")), 0.2);
        assert_eq!(get(&s, "t_seconds", Some("0.99")), 0.3);
        assert_eq!(get(&s, "u", None), 1.0);
        assert_eq!(a.dropped_series, 1);
        a.add(parse_line("hits:1|c").unwrap());
        let s = a.flush(2);
        assert_eq!(get(&s, "hits_total", None), 6.0, "counters are cumulative");
        assert_eq!(get(&s, "u", None), 0.0, "sets count per interval");
        assert!(
            !s.iter().any(|x| x.label("quantile").is_some()),
            "no quantiles without observations"
        );
    }
}
