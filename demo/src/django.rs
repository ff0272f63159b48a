//! The `prometheus_client` metrics of the Django service (django-prometheus names), as a
//! Prometheus server scraping `shop-web` would remote_write them: `job="shop-web"`,
//! `instance="web-N:8000"`, plus `up` and `scrape_duration_seconds`.

use std::collections::BTreeMap;

use didban_collector::ingest::remote_write::{TimeSeries, WireLabel, WireSample};

use super::rng::Rng;

/// django-prometheus' latency buckets (seconds).
pub const BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 25.0, 50.0, 75.0,
];

/// The job label.
pub const JOB: &str = "shop-web";

/// Cumulative counters and histograms per label set.
#[derive(Default)]
pub struct DjangoMetrics {
    series: BTreeMap<Vec<(String, String)>, f64>,
    cpu_seconds: [f64; 2],
}

fn labels(name: &str, pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(pairs.len() + 1);
    out.push(("__name__".to_string(), name.to_string()));
    for (k, v) in pairs {
        out.push((k.to_string(), v.to_string()));
    }
    out.sort();
    out
}

/// `web-1:8000` for instance 0.
pub fn instance(i: u8) -> String {
    format!("web-{}:8000", i + 1)
}

/// `le` as Prometheus prints it.
fn le_text(b: f64) -> String {
    let s = format!("{b}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

impl DjangoMetrics {
    fn add(&mut self, name: &str, pairs: &[(&str, &str)], delta: f64) {
        *self.series.entry(labels(name, pairs)).or_insert(0.0) += delta;
    }

    /// Counts one request answered by instance `inst`.
    pub fn observe(&mut self, inst: u8, view: &str, method: &str, status: u16, seconds: f64) {
        let instance = instance(inst);
        let i = instance.as_str();
        let status = status.to_string();
        let base = [("job", JOB), ("instance", i)];
        self.add(
            "django_http_requests_total_by_method_total",
            &[base[0], base[1], ("method", method)],
            1.0,
        );
        self.add(
            "django_http_responses_total_by_status_total",
            &[base[0], base[1], ("status", status.as_str())],
            1.0,
        );
        self.add(
            "django_http_responses_total_by_status_view_method_total",
            &[
                base[0],
                base[1],
                ("status", status.as_str()),
                ("view", view),
                ("method", method),
            ],
            1.0,
        );
        let hist = [base[0], base[1], ("view", view), ("method", method)];
        for b in BUCKETS {
            let le = le_text(*b);
            let mut with_le = hist.to_vec();
            with_le.push(("le", le.as_str()));
            self.add(
                "django_http_requests_latency_seconds_by_view_method_bucket",
                &with_le,
                if seconds <= *b { 1.0 } else { 0.0 },
            );
        }
        let mut with_inf = hist.to_vec();
        with_inf.push(("le", "+Inf"));
        self.add(
            "django_http_requests_latency_seconds_by_view_method_bucket",
            &with_inf,
            1.0,
        );
        self.add(
            "django_http_requests_latency_seconds_by_view_method_sum",
            &hist,
            seconds,
        );
        self.add(
            "django_http_requests_latency_seconds_by_view_method_count",
            &hist,
            1.0,
        );
        self.cpu_seconds[usize::from(inst.min(1))] += seconds * 0.6;
    }

    /// Counts database statements and cache lookups of instance `inst`.
    pub fn backend_calls(&mut self, inst: u8, queries: f64, cache_hits: f64, cache_misses: f64) {
        let instance = instance(inst);
        let base = [("job", JOB), ("instance", instance.as_str())];
        self.add(
            "django_db_execute_total",
            &[base[0], base[1], ("alias", "default"), ("vendor", "postgresql")],
            queries,
        );
        let cache = [base[0], base[1], ("backend", "django_redis.cache.RedisCache")];
        self.add("django_cache_get_total", &cache, cache_hits + cache_misses);
        self.add("django_cache_get_hits_total", &cache, cache_hits);
        self.add("django_cache_get_misses_total", &cache, cache_misses);
    }

    /// Every series at `t_ms`, as one scrape of both instances.
    pub fn scrape(&mut self, rng: &mut Rng, t_ms: i64) -> Vec<TimeSeries> {
        let mut out = Vec::with_capacity(self.series.len() + 8);
        for (labels, value) in &self.series {
            out.push(series(labels, *value, t_ms));
        }
        for inst in 0..2u8 {
            let instance = instance(inst);
            let base = [("job", JOB), ("instance", instance.as_str())];
            let idle_cpu = 0.02 * 10.0;
            self.cpu_seconds[usize::from(inst)] += idle_cpu;
            let gauges = [
                ("up", 1.0),
                ("scrape_duration_seconds", rng.lognormal(0.012, 0.3)),
                (
                    "process_resident_memory_bytes",
                    rng.range(310.0, 330.0) * 1024.0 * 1024.0,
                ),
                ("process_open_fds", rng.range(38.0, 46.0).round()),
                ("process_cpu_seconds_total", self.cpu_seconds[usize::from(inst)]),
            ];
            for (name, v) in gauges {
                out.push(series(&labels(name, &base), v, t_ms));
            }
        }
        out
    }
}

fn series(labels: &[(String, String)], value: f64, t_ms: i64) -> TimeSeries {
    let mut wire = Vec::with_capacity(labels.len());
    for (k, v) in labels {
        wire.push(WireLabel {
            name: k.clone(),
            value: v.clone(),
        });
    }
    TimeSeries {
        labels: wire,
        samples: vec![WireSample {
            value,
            timestamp: t_ms,
        }],
        exemplars: Vec::new(),
        histograms: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_in_the_count() {
        let mut m = DjangoMetrics::default();
        m.observe(0, "product_list", "GET", 200, 0.04);
        m.observe(0, "product_list", "GET", 500, 0.3);
        let mut rng = Rng::new(1);
        let out = m.scrape(&mut rng, 1000);
        let value = |name: &str, le: Option<&str>| -> f64 {
            for ts in &out {
                let has = |k: &str, v: &str| ts.labels.iter().any(|l| l.name == k && l.value == v);
                if has("__name__", name) && le.is_none_or(|le| has("le", le)) {
                    return ts.samples[0].value;
                }
            }
            f64::NAN
        };
        let bucket = "django_http_requests_latency_seconds_by_view_method_bucket";
        assert_eq!(value(bucket, Some("0.05")), 1.0);
        assert_eq!(value(bucket, Some("0.5")), 2.0);
        assert_eq!(value(bucket, Some("+Inf")), 2.0);
        assert_eq!(
            value("django_http_requests_latency_seconds_by_view_method_count", None),
            2.0
        );
        assert_eq!(le_text(1.0), "1.0");
        assert_eq!(le_text(0.025), "0.025");
    }
}
