//! Exemplars end to end over real sockets: remote write 1.0, remote write 2.0 and OTLP
//! exemplars stored and answered by `/api/v1/query_exemplars`; remote write 2.0
//! negotiation, written-count headers, metadata, bad symbol references and mangled bodies.

use crate::ingest_support::{kv, now_ns, start, values};
use didban_collector::ingest::remote_write::histogram::{BucketSpan2, Histogram2};
use didban_collector::ingest::remote_write::v2::{
    Exemplar2, Metadata2, Request, Sample2, TimeSeries as Series2,
};
use didban_collector::ingest::remote_write::{TimeSeries, WireExemplar, WireLabel, WireSample, WriteRequest};
use didban_testkit::now_ms;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric, number_data_point, Exemplar,
    ExponentialHistogram, ExponentialHistogramDataPoint, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use reqwest::StatusCode;
use serde_json::{json, Value};

const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
const TRACE_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_B: &str = "0af7651916cd43dd8448eb211c80319c";

fn wire(pairs: &[(&str, &str)]) -> Vec<WireLabel> {
    pairs
        .iter()
        .map(|(n, v)| WireLabel {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

async fn post(
    base: &str,
    content_type: &str,
    plain: &[u8],
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let body = snap::raw::Encoder::new().compress_vec(plain).unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("content-type", content_type)
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

/// `GET /api/v1/query_exemplars`: status and body.
async fn query(base: &str, params: &[(&str, String)]) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{base}/api/v1/query_exemplars"))
        .query(params)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn exemplars_of(base: &str, q: &str) -> Value {
    let (status, body) = query(base, &[("query", q.to_string())]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

fn secs(t_ms: i64) -> String {
    format!("{}.{:03}", t_ms.div_euclid(1000), t_ms.rem_euclid(1000))
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    h.get(name).map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn remote_write_1_exemplars_are_answered_by_query_exemplars() {
    let server = start(|_| {}).await;
    let t = now_ms() / 1000 * 1000;
    let bucket = [("__name__", "rpc_seconds_bucket"), ("job", "api"), ("le", "0.5")];
    let request = WriteRequest {
        timeseries: vec![
            TimeSeries {
                labels: wire(&bucket),
                samples: vec![
                    WireSample {
                        value: 3.0,
                        timestamp: t - 1000,
                    },
                    WireSample {
                        value: 4.0,
                        timestamp: t,
                    },
                ],
                exemplars: vec![
                    WireExemplar {
                        labels: wire(&[("trace_id", TRACE_A)]),
                        value: 0.25,
                        timestamp: t - 1000,
                    },
                    WireExemplar {
                        labels: wire(&[("trace_id", TRACE_B), ("span_id", "00f067aa0ba902b7")]),
                        value: 0.5,
                        timestamp: t,
                    },
                ],
                histograms: vec![],
            },
            TimeSeries {
                labels: wire(&[("__name__", "other"), ("job", "x")]),
                samples: vec![WireSample {
                    value: 1.0,
                    timestamp: t,
                }],
                exemplars: vec![WireExemplar {
                    labels: wire(&[("trace_id", TRACE_A)]),
                    value: 1.0,
                    timestamp: t,
                }],
                histograms: vec![],
            },
        ],
        metadata: vec![],
    };
    let (status, headers, text) =
        post(&server.http, "application/x-protobuf", &request.encode_to_vec()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    // The written-count headers belong to 2.0 only.
    assert_eq!(
        header(&headers, "x-prometheus-remote-write-samples-written"),
        None
    );

    // The selectors of the query, not its result, choose the series.
    let data = exemplars_of(
        &server.http,
        "histogram_quantile(0.9, sum by (le) (rate(rpc_seconds_bucket[5m])))",
    )
    .await;
    let expected = json!([{
        "seriesLabels": {"__name__": "rpc_seconds_bucket", "job": "api", "le": "0.5"},
        "exemplars": [
            {"labels": {"trace_id": TRACE_A}, "value": "0.25", "timestamp": (t - 1000) / 1000},
            {"labels": {"span_id": "00f067aa0ba902b7", "trace_id": TRACE_B}, "value": "0.5", "timestamp": t / 1000},
        ],
    }]);
    assert_eq!(data, expected);

    // Time range, inclusive at both ends; two selectors give two series, sorted.
    let (status, body) = query(
        &server.http,
        &[
            ("query", "rpc_seconds_bucket + on() group_left other".to_string()),
            ("start", secs(t)),
            ("end", secs(t)),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{body}");
    assert_eq!(data[0]["seriesLabels"]["__name__"], "other");
    assert_eq!(data[1]["exemplars"].as_array().unwrap().len(), 1);
    assert_eq!(data[1]["exemplars"][0]["labels"]["trace_id"], TRACE_B);

    // Re-sending is a no-op (duplicates), an older exemplar is refused, neither fails the
    // write; nothing changes.
    let (status, _, text) = post(&server.http, "application/x-protobuf", &request.encode_to_vec()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(exemplars_of(&server.http, "rpc_seconds_bucket").await, expected);

    // Bad requests name what is wrong; no selector, no exemplars.
    let (status, body) = query(
        &server.http,
        &[
            ("query", "other".into()),
            ("start", secs(t)),
            ("end", secs(t - 1000)),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errorType"], "bad_data");
    assert_eq!(body["error"], "end timestamp must not be before start timestamp");
    let (status, body) = query(&server.http, &[("query", "other{".into())]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().starts_with("invalid query"),
        "{body}"
    );
    let (status, body) = query(
        &server.http,
        &[("query", "other".into()), ("start", "yesterday".into())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("\"start\""), "{body}");
    assert_eq!(exemplars_of(&server.http, "1 + 1").await, json!([]));
    assert_eq!(exemplars_of(&server.http, "absent_metric").await, json!([]));
}

/// A remote write 2.0 request builder: every string interned in the symbols table.
struct Symbols(Vec<String>);

impl Symbols {
    fn new() -> Symbols {
        Symbols(vec![String::new()])
    }

    fn r(&mut self, s: &str) -> u32 {
        match self.0.iter().position(|x| x == s) {
            Some(i) => i as u32,
            None => {
                self.0.push(s.to_string());
                (self.0.len() - 1) as u32
            }
        }
    }

    fn refs(&mut self, pairs: &[(&str, &str)]) -> Vec<u32> {
        let mut out = Vec::new();
        for (n, v) in pairs {
            out.push(self.r(n));
            out.push(self.r(v));
        }
        out
    }
}

fn sample(value: f64, timestamp: i64) -> Sample2 {
    Sample2 {
        value,
        timestamp,
        start_timestamp: 0,
    }
}

#[tokio::test]
async fn remote_write_2_stores_samples_exemplars_and_metadata_and_reports_written_counts() {
    let server = start(|_| {}).await;
    let t = now_ms() / 1000 * 1000;
    let mut sym = Symbols::new();
    let counter = Series2 {
        labels_refs: sym.refs(&[
            ("__name__", "http_requests_total"),
            ("code", "200"),
            ("job", "api"),
        ]),
        samples: vec![sample(5.0, t)],
        // No timestamp: the series' sample time is used.
        exemplars: vec![Exemplar2 {
            labels_refs: sym.refs(&[("trace_id", TRACE_A)]),
            value: 1.0,
            timestamp: 0,
        }],
        metadata: Some(Metadata2 {
            r#type: 1,
            help_ref: sym.r("Requests served."),
            unit_ref: 0,
        }),
        created_timestamp: t - 60_000,
        ..Series2::default()
    };
    let gauge = Series2 {
        labels_refs: sym.refs(&[("__name__", "room_temp"), ("room", "a")]),
        samples: vec![sample(20.5, t - 1000), sample(21.0, t)],
        ..Series2::default()
    };
    let request = Request {
        symbols: sym.0.clone(),
        timeseries: vec![counter, gauge],
    };
    let (status, headers, text) = post(&server.http, V2, &request.encode_to_vec()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(
        header(&headers, "x-prometheus-remote-write-samples-written").as_deref(),
        Some("3")
    );
    assert_eq!(
        header(&headers, "x-prometheus-remote-write-histograms-written").as_deref(),
        Some("0")
    );
    assert_eq!(
        header(&headers, "x-prometheus-remote-write-exemplars-written").as_deref(),
        Some("1")
    );
    assert_eq!(
        values(&server.state, "room_temp", &[("room", "a")]),
        vec![20.5, 21.0]
    );
    assert_eq!(
        values(&server.state, "http_requests_total", &[("code", "200")]),
        vec![5.0]
    );
    let data = exemplars_of(&server.http, "rate(http_requests_total[1m])").await;
    assert_eq!(
        data[0]["exemplars"],
        json!([{"labels": {"trace_id": TRACE_A}, "value": "1", "timestamp": t / 1000}])
    );
    let meta: Value = reqwest::get(format!(
        "{}/api/v1/metadata?metric=http_requests_total",
        server.http
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        meta["data"]["http_requests_total"][0]["type"], "counter",
        "{meta}"
    );
    assert_eq!(
        meta["data"]["http_requests_total"][0]["help"], "Requests served.",
        "{meta}"
    );

    // An invalid native histogram is refused naming the field, the valid one and the floats
    // beside it stored; the headers say exactly what was kept, on the 400 too.
    let mut sym = Symbols::new();
    let histogram = Series2 {
        labels_refs: sym.refs(&[("__name__", "rpc_duration_seconds"), ("job", "api")]),
        histograms: vec![
            Histogram2 {
                count_int: Some(1),
                zero_count_int: Some(1),
                schema: 3,
                timestamp: t,
                ..Histogram2::default()
            },
            Histogram2 {
                count_int: Some(2),
                schema: 3,
                positive_spans: vec![BucketSpan2 { offset: 0, length: 2 }],
                positive_deltas: vec![2],
                timestamp: t + 1,
                ..Histogram2::default()
            },
        ],
        ..Series2::default()
    };
    let float = Series2 {
        labels_refs: sym.refs(&[("__name__", "room_temp"), ("room", "b")]),
        samples: vec![sample(18.0, t)],
        ..Series2::default()
    };
    let request = Request {
        symbols: sym.0.clone(),
        timeseries: vec![histogram, float],
    };
    let (status, headers, text) = post(&server.http, V2, &request.encode_to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        text.trim(),
        "1 samples refused; first: invalid native histogram timeseries[0].histograms[1].\
         positive_spans: positive spans describe 2 buckets but 1 bucket counts were given \
         (series rpc_duration_seconds{job=\"api\"})"
    );
    assert_eq!(
        header(&headers, "x-prometheus-remote-write-samples-written").as_deref(),
        Some("1")
    );
    assert_eq!(
        header(&headers, "x-prometheus-remote-write-histograms-written").as_deref(),
        Some("1")
    );
    assert_eq!(
        header(&headers, "x-prometheus-remote-write-exemplars-written").as_deref(),
        Some("0")
    );
    assert_eq!(values(&server.state, "room_temp", &[("room", "b")]), vec![18.0]);
}

#[tokio::test]
async fn remote_write_2_bad_references_refuse_the_request_and_name_the_reference() {
    let server = start(|_| {}).await;
    let t = now_ms();
    let mut sym = Symbols::new();
    let good = Series2 {
        labels_refs: sym.refs(&[("__name__", "kept_out")]),
        samples: vec![sample(1.0, t)],
        ..Series2::default()
    };
    let mut bad = good.clone();
    bad.labels_refs = vec![1, 99];
    let request = Request {
        symbols: sym.0.clone(),
        timeseries: vec![good.clone(), bad],
    };
    let (status, headers, text) = post(&server.http, V2, &request.encode_to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        text.trim(),
        "timeseries[1].labels_refs[1] = 99 is out of range: the request has 3 symbols"
    );
    // Nothing was written: not even the valid series before the bad one.
    assert_eq!(
        header(&headers, "x-prometheus-remote-write-samples-written"),
        None
    );
    assert!(crate::ingest_support::series(&server.state, "kept_out").is_empty());

    let mut odd = good.clone();
    odd.labels_refs.push(1);
    let request = Request {
        symbols: sym.0.clone(),
        timeseries: vec![odd],
    };
    let (status, _, text) = post(&server.http, V2, &request.encode_to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("timeseries[0].labels_refs has 3 entries"), "{text}");

    let request = Request {
        symbols: vec!["__name__".into(), "kept_out".into()],
        timeseries: vec![Series2 {
            labels_refs: vec![0, 1],
            samples: vec![sample(1.0, t)],
            ..Series2::default()
        }],
    };
    let (status, _, text) = post(&server.http, V2, &request.encode_to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        text.trim(),
        "symbols[0] must be the empty string, is \"__name__\""
    );

    // An unknown message is a 415 naming the two spoken; the good request then works.
    let request = Request {
        symbols: sym.0.clone(),
        timeseries: vec![good],
    };
    let v3 = "application/x-protobuf;proto=io.prometheus.write.v3.Request";
    let (status, _, text) = post(&server.http, v3, &request.encode_to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        text.contains("proto=prometheus.WriteRequest (remote write 1.0, the default)"),
        "{text}"
    );
    let (status, _, text) = post(&server.http, V2, &request.encode_to_vec()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(values(&server.state, "kept_out", &[]), vec![1.0]);
}

/// xorshift64: a fixed sequence, so every run sends the same mangled bodies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[tokio::test]
async fn mangled_remote_write_2_bodies_get_a_4xx_or_are_stored_never_a_crash() {
    let server = start(|_| {}).await;
    let t = now_ms();
    let mut sym = Symbols::new();
    let mut series = Vec::new();
    for i in 0..4 {
        series.push(Series2 {
            labels_refs: sym.refs(&[("__name__", "mangled"), ("i", &i.to_string())]),
            samples: vec![sample(i as f64, t)],
            exemplars: vec![Exemplar2 {
                labels_refs: sym.refs(&[("trace_id", TRACE_A)]),
                value: 1.0,
                timestamp: t,
            }],
            metadata: Some(Metadata2 {
                r#type: 2,
                help_ref: sym.r("help"),
                unit_ref: 0,
            }),
            ..Series2::default()
        });
    }
    let good = Request {
        symbols: sym.0.clone(),
        timeseries: series,
    }
    .encode_to_vec();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..300 {
        let mut body = good.clone();
        match rng.below(3) {
            0 => {
                for _ in 0..=rng.below(4) {
                    let at = rng.below(body.len());
                    body[at] = rng.next() as u8;
                }
            }
            1 => body.truncate(rng.below(body.len())),
            _ => {
                let at = rng.below(body.len());
                body.insert(at, rng.next() as u8);
            }
        }
        let (status, _, text) = post(&server.http, V2, &body).await;
        assert!(
            status == StatusCode::NO_CONTENT || status == StatusCode::BAD_REQUEST,
            "{status}: {text}"
        );
        *statuses.entry(status.as_u16()).or_insert(0u32) += 1;
    }
    // Both outcomes occurred: the mangling reached the decoder and the checks after it.
    assert!(statuses.get(&400).copied().unwrap_or(0) > 0, "{statuses:?}");
    let (status, headers, text) = post(&server.http, V2, &good).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(
        header(&headers, "x-prometheus-remote-write-samples-written").as_deref(),
        Some("4")
    );
}

fn otlp_exemplar(value: f64, trace: u8, time_ns: u64) -> Exemplar {
    Exemplar {
        filtered_attributes: vec![kv("user.name", "alice")],
        time_unix_nano: time_ns,
        span_id: vec![trace; 8],
        trace_id: vec![trace; 16],
        value: Some(exemplar::Value::AsDouble(value)),
    }
}

#[tokio::test]
async fn otlp_exemplars_land_on_their_series_and_on_the_bucket_that_counted_them() {
    let server = start(|_| {}).await;
    let t_ns = now_ns() / 1_000_000_000 * 1_000_000_000;
    let t = (t_ns / 1_000_000) as i64;
    let metrics = vec![
        Metric {
            name: "requests".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: t_ns,
                    value: Some(number_data_point::Value::AsInt(7)),
                    exemplars: vec![Exemplar {
                        value: Some(exemplar::Value::AsInt(1)),
                        // No time: the point's.
                        time_unix_nano: 0,
                        ..otlp_exemplar(0.0, 0x11, 0)
                    }],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "latency".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: t_ns,
                    count: 4,
                    sum: Some(4.0),
                    bucket_counts: vec![1, 1, 1, 1],
                    explicit_bounds: vec![0.1, 0.5, 1.0],
                    exemplars: vec![
                        otlp_exemplar(0.05, 0x22, t_ns - 3_000_000),
                        otlp_exemplar(0.7, 0x33, t_ns - 2_000_000),
                        otlp_exemplar(3.0, 0x44, t_ns - 1_000_000),
                    ],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
        Metric {
            name: "exp_latency".into(),
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    time_unix_nano: t_ns,
                    count: 2,
                    sum: Some(5.0),
                    scale: 0,
                    // Buckets (1, 2] and (2, 4].
                    positive: Some(Buckets {
                        offset: 0,
                        bucket_counts: vec![1, 1],
                    }),
                    exemplars: vec![otlp_exemplar(3.0, 0x55, t_ns)],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        },
    ];
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "shop")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/metrics", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let labels = |b: u8| {
        json!({
            "span_id": format!("{b:02x}").repeat(8),
            "trace_id": format!("{b:02x}").repeat(16),
            "user_name": "alice",
        })
    };
    let data = exemplars_of(&server.http, "requests_total").await;
    assert_eq!(
        data,
        json!([{
            "seriesLabels": {"__name__": "requests_total", "job": "shop"},
            "exemplars": [{"labels": labels(0x11), "value": "1", "timestamp": t / 1000}],
        }])
    );
    let data = exemplars_of(&server.http, "latency_bucket").await;
    let mut got = Vec::new();
    for s in data.as_array().unwrap() {
        for e in s["exemplars"].as_array().unwrap() {
            got.push((
                s["seriesLabels"]["le"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
                e["timestamp"].clone(),
            ));
            assert_eq!(e["labels"]["user_name"], "alice");
        }
    }
    got.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(
        got,
        vec![
            (
                "+Inf".to_string(),
                "3".to_string(),
                json!((t - 1) as f64 / 1000.0)
            ),
            (
                "0.1".to_string(),
                "0.05".to_string(),
                json!((t - 3) as f64 / 1000.0)
            ),
            ("1".to_string(), "0.7".to_string(), json!((t - 2) as f64 / 1000.0)),
        ]
    );
    // An exponential histogram is a native histogram: one series, which has the exemplar.
    let data = exemplars_of(&server.http, "exp_latency").await;
    assert_eq!(data.as_array().unwrap().len(), 1, "{data}");
    assert_eq!(
        data[0]["seriesLabels"],
        json!({"__name__": "exp_latency", "job": "shop"})
    );
    assert_eq!(data[0]["exemplars"][0]["labels"], labels(0x55));
    assert_eq!(data[0]["exemplars"][0]["value"], "3");
}
