//! Serverless functions on AWS Lambda: invocations as server spans with the OpenTelemetry
//! FaaS attributes Didban's FaaS metrics read (`faas.name`, `faas.version`,
//! `faas.max_memory` in bytes, `cloud.provider`, `cloud.region`, `host.arch` on the
//! resource; `faas.trigger`, `faas.invocation_id`, `faas.coldstart` on the span), Lambda's
//! REPORT log lines, and the cold-start initialisation time as the OTLP histogram
//! `faas.init_duration` (seconds), the only way Didban receives it.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, AggregationTemporality, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::otlp::{
    kv, kv_b, kv_i, log, ms_to_ns, resource, resource_logs, resource_spans, severity, Output, SpanBuilder,
};
use super::rng::Rng;

/// Upper bounds (seconds) of the init-duration histogram.
const INIT_BOUNDS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];
/// An instance idle longer than this is gone; the next invocation is a cold start.
const IDLE_TIMEOUT_MS: f64 = 10.0 * 60_000.0;

/// One function.
struct Function {
    name: &'static str,
    version: &'static str,
    region: &'static str,
    arch: &'static str,
    memory_mb: i64,
    trigger: &'static str,
    /// Invocations per second at `--rate 1` (0: scheduled).
    rps: f64,
    /// Scheduled every this many ms (0: not scheduled).
    every_ms: f64,
    median_ms: f64,
    sigma: f64,
    init_median_ms: f64,
    error_rate: f64,
    /// Share of warm-period invocations that still start cold (scale-out).
    scale_out: f64,
    error: (&'static str, &'static str),
}

const FUNCTIONS: &[Function] = &[
    Function {
        name: "resize-image",
        version: "14",
        region: "eu-west-1",
        arch: "amd64",
        memory_mb: 1024,
        trigger: "http",
        rps: 0.5,
        every_ms: 0.0,
        median_ms: 340.0,
        sigma: 0.35,
        init_median_ms: 620.0,
        error_rate: 0.007,
        scale_out: 0.06,
        error: ("PIL.UnidentifiedImageError", "cannot identify image file <_io.BytesIO object at 0x7f3a2c1b9e40>"),
    },
    Function {
        name: "send-email",
        version: "7",
        region: "eu-west-1",
        arch: "arm64",
        memory_mb: 256,
        trigger: "pubsub",
        rps: 0.3,
        every_ms: 0.0,
        median_ms: 120.0,
        sigma: 0.35,
        init_median_ms: 210.0,
        error_rate: 0.012,
        scale_out: 0.05,
        error: ("botocore.exceptions.ClientError", "An error occurred (Throttling) when calling the SendEmail operation: Maximum sending rate exceeded."),
    },
    Function {
        name: "nightly-report",
        version: "3",
        region: "us-east-1",
        arch: "amd64",
        memory_mb: 2048,
        trigger: "timer",
        rps: 0.0,
        every_ms: 15.0 * 60_000.0,
        median_ms: 2_400.0,
        sigma: 0.15,
        init_median_ms: 2_900.0,
        error_rate: 0.0,
        scale_out: 0.0,
        error: ("", ""),
    },
];

/// Per function: warm state and the cumulative init histogram.
struct State {
    last_end_ms: f64,
    next_scheduled_ms: f64,
    instance: String,
    init_counts: Vec<u64>,
    init_count: u64,
    init_sum: f64,
}

/// The serverless simulation.
pub struct Serverless {
    states: Vec<State>,
    start_ms: f64,
}

impl Serverless {
    /// Functions not yet warm at `start_ms`.
    pub fn new(start_ms: f64) -> Serverless {
        let mut states = Vec::new();
        for _ in FUNCTIONS {
            states.push(State {
                last_end_ms: f64::NEG_INFINITY,
                next_scheduled_ms: 0.0,
                instance: String::new(),
                init_counts: vec![0; INIT_BOUNDS.len() + 1],
                init_count: 0,
                init_sum: 0.0,
            });
        }
        Serverless { states, start_ms }
    }

    /// Invocations starting in `[t0, t1)`.
    pub fn tick(&mut self, rng: &mut Rng, t0: f64, t1: f64, rate: f64, out: &mut Output) {
        for (f, st) in FUNCTIONS.iter().zip(self.states.iter_mut()) {
            let mut starts = Vec::new();
            if f.every_ms > 0.0 {
                if st.next_scheduled_ms == 0.0 {
                    st.next_scheduled_ms = (t0 / f.every_ms).ceil() * f.every_ms;
                }
                while st.next_scheduled_ms < t1 {
                    starts.push(st.next_scheduled_ms + rng.range(20.0, 400.0));
                    st.next_scheduled_ms += f.every_ms;
                }
            } else {
                let n = rng.poisson(f.rps * rate * super::web::wave(t0) * (t1 - t0) / 1000.0);
                for _ in 0..n {
                    starts.push(rng.range(t0, t1));
                }
                starts.sort_by(f64::total_cmp);
            }
            let mut spans = Vec::new();
            let mut logs = Vec::new();
            for start in starts {
                let cold = start - st.last_end_ms > IDLE_TIMEOUT_MS || rng.chance(f.scale_out);
                if cold || st.instance.is_empty() {
                    st.instance = format!("{}/[{}]{:016x}", date(start), f.version, rng.next_u64());
                }
                let init_ms = if cold {
                    rng.lognormal(f.init_median_ms, 0.25)
                } else {
                    0.0
                };
                if cold {
                    let secs = init_ms / 1000.0;
                    for (i, b) in INIT_BOUNDS.iter().enumerate() {
                        if secs <= *b {
                            st.init_counts[i] += 1;
                        }
                    }
                    st.init_counts[INIT_BOUNDS.len()] += 1;
                    st.init_count += 1;
                    st.init_sum += secs;
                }
                let failed = rng.chance(f.error_rate);
                let ms = rng.lognormal(f.median_ms, f.sigma) * if failed { 0.4 } else { 1.0 };
                let trace_id = rng.id(16);
                let id = rng.id(8);
                let invocation = uuid_text(rng);
                let begin = start + init_ms;
                let mut attrs = vec![
                    kv("faas.trigger", f.trigger),
                    kv("faas.invocation_id", &invocation),
                    kv_b("faas.coldstart", cold),
                    kv(
                        "cloud.resource_id",
                        &format!("arn:aws:lambda:{}:123456789012:function:{}", f.region, f.name),
                    ),
                ];
                match f.trigger {
                    "http" => {
                        attrs.push(kv("http.request.method", "POST"));
                        attrs.push(kv("http.route", "/images/resize"));
                        attrs.push(kv("url.path", "/images/resize"));
                        attrs.push(kv_i("http.response.status_code", if failed { 500 } else { 200 }));
                        attrs.push(kv(
                            "image.key",
                            &format!("products/{:08x}.jpg", rng.next_u64() as u32),
                        ));
                    }
                    "pubsub" => attrs.push(kv("messaging.destination.name", "order-emails")),
                    _ => attrs.push(kv("faas.cron", "cron(0/15 * * * ? *)")),
                }
                // One downstream AWS call inside the invocation.
                let (service, method) = match f.trigger {
                    "http" => ("S3", "PutObject"),
                    "pubsub" => ("SES", "SendEmail"),
                    _ => ("S3", "PutObject"),
                };
                let child_ms = ms * rng.range(0.2, 0.4);
                let child = SpanBuilder::new(
                    &trace_id,
                    rng.id(8),
                    &id,
                    &format!("{service}.{method}"),
                    SpanKind::Client,
                    begin + ms * 0.5,
                    child_ms,
                )
                .attrs(vec![
                    kv("rpc.system", "aws-api"),
                    kv("rpc.service", service),
                    kv("rpc.method", method),
                    kv("cloud.region", f.region),
                ]);
                spans.push(child.build());
                // As the AWS Lambda instrumentation does: SERVER for API Gateway (HTTP) events,
                // CONSUMER for queue and scheduled events.
                let kind = if f.trigger == "http" {
                    SpanKind::Server
                } else {
                    SpanKind::Consumer
                };
                let mut span =
                    SpanBuilder::new(&trace_id, id.clone(), &[], f.name, kind, begin, ms).attrs(attrs);
                if failed {
                    let (exc, message) = f.error;
                    let tb = format!("Traceback (most recent call last):\n  File \"/var/task/handler.py\", line 31, in handler\n    result = process(event)\n{exc}: {message}");
                    span = span.exception(exc, message, &tb);
                    logs.push(log(
                        begin + ms,
                        severity::ERROR,
                        &format!("[ERROR] {exc}: {message}\n{tb}"),
                        &trace_id,
                        &id,
                        vec![kv("faas.invocation_id", &invocation)],
                    ));
                }
                spans.push(span.build());
                let billed = ms.ceil();
                let mut report = format!(
                    "REPORT RequestId: {invocation}\tDuration: {ms:.2} ms\tBilled Duration: {billed:.0} ms\tMemory Size: {} MB\tMax Memory Used: {:.0} MB",
                    f.memory_mb,
                    f.memory_mb as f64 * rng.range(0.18, 0.55)
                );
                if cold {
                    report.push_str(&format!("\tInit Duration: {init_ms:.2} ms"));
                }
                logs.push(log(
                    begin + ms + 1.0,
                    severity::INFO,
                    &report,
                    &trace_id,
                    &id,
                    vec![kv("faas.invocation_id", &invocation)],
                ));
                st.last_end_ms = begin + ms;
                let res = function_resource(f, &st.instance);
                out.spans.push(resource_spans(
                    res.clone(),
                    "opentelemetry.instrumentation.aws_lambda",
                    std::mem::take(&mut spans),
                ));
                out.logs.push(resource_logs(
                    res,
                    "opentelemetry.instrumentation.aws_lambda",
                    std::mem::take(&mut logs),
                ));
            }
        }
    }

    /// The cumulative `faas.init_duration` histogram of each function at `t_ms`.
    pub fn init_histograms(&self, t_ms: f64, out: &mut Output) {
        for (f, st) in FUNCTIONS.iter().zip(self.states.iter()) {
            let mut buckets = Vec::with_capacity(st.init_counts.len());
            let mut below = 0;
            for c in &st.init_counts {
                // init_counts are cumulative per bound; OTLP wants counts per bucket.
                buckets.push(c - below.min(*c));
                below = *c;
            }
            let point = HistogramDataPoint {
                start_time_unix_nano: ms_to_ns(self.start_ms),
                time_unix_nano: ms_to_ns(t_ms),
                count: st.init_count,
                sum: Some(st.init_sum),
                bucket_counts: buckets,
                explicit_bounds: INIT_BOUNDS.to_vec(),
                ..Default::default()
            };
            out.metrics.push(ResourceMetrics {
                resource: resource(vec![
                    kv("service.name", f.name),
                    kv("faas.name", f.name),
                    kv("cloud.provider", "aws"),
                    kv("cloud.region", f.region),
                ]),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "faas.init_duration".to_string(),
                        unit: "s".to_string(),
                        description: "Cold-start initialisation time".to_string(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![point],
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
    }
}

fn function_resource(f: &Function, instance: &str) -> Vec<KeyValue> {
    vec![
        kv("service.name", f.name),
        kv("service.version", f.version),
        kv("faas.name", f.name),
        kv("faas.version", f.version),
        kv("faas.instance", instance),
        kv_i("faas.max_memory", f.memory_mb * 1024 * 1024),
        kv("cloud.provider", "aws"),
        kv("cloud.platform", "aws_lambda"),
        kv("cloud.region", f.region),
        kv("cloud.account.id", "123456789012"),
        kv("host.arch", f.arch),
        kv("telemetry.sdk.language", "python"),
        kv("process.runtime.version", "3.12.7"),
    ]
}

/// `YYYY/MM/DD` of a time in ms (Lambda log stream names start with it).
fn date(ms: f64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms as i64) {
        Some(d) => d.format("%Y/%m/%d").to_string(),
        None => "1970/01/01".to_string(),
    }
}

fn uuid_text(rng: &mut Rng) -> String {
    let b = rng.id(16);
    let mut hex = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            hex.push('-');
        }
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    #[test]
    fn first_invocations_are_cold_and_later_ones_mostly_warm() {
        let mut rng = Rng::new(11);
        let start = 1_800_000_000_000.0;
        let mut sim = Serverless::new(start);
        let mut out = Output::default();
        for i in 0..360 {
            let t0 = start + f64::from(i) * 10_000.0;
            sim.tick(&mut rng, t0, t0 + 10_000.0, 1.0, &mut out);
        }
        let (mut cold, mut total) = (0, 0);
        for rs in &out.spans {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    for a in &span.attributes {
                        if a.key == "faas.coldstart" {
                            total += 1;
                            if matches!(
                                a.value.as_ref().and_then(|v| v.value.as_ref()),
                                Some(Value::BoolValue(true))
                            ) {
                                cold += 1;
                            }
                        }
                    }
                }
            }
        }
        let share = f64::from(cold) / f64::from(total);
        assert!(total > 1000, "{total} invocations");
        assert!((0.03..0.12).contains(&share), "cold share {share}");
        let mut m = Output::default();
        sim.init_histograms(start + 3_600_000.0, &mut m);
        assert_eq!(m.metrics.len(), 3);
    }
}
