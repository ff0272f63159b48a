//! Request origin through the whole server with sign-in off on loopback (the default): a
//! browser on another site or origin cannot write data, bodies must say what they are, and
//! programs (no `Origin`, no `Sec-Fetch-*`) write as before.

use didban_collector::ingest::remote_write::{TimeSeries, WireLabel, WireSample, WriteRequest};
use prost::Message;
use reqwest::StatusCode;

use crate::ingest_support::{gauge_request, now_ns};
use crate::real_server::RealServer;

/// A snappy-compressed remote_write body with one sample of `name` now.
pub fn remote_write_body(name: &str, timestamp_ms: i64) -> Vec<u8> {
    let write = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![WireLabel {
                name: "__name__".into(),
                value: name.into(),
            }],
            samples: vec![WireSample {
                value: 1.0,
                timestamp: timestamp_ms,
            }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&write.encode_to_vec())
        .unwrap()
}

fn now_ms() -> i64 {
    didban_testkit::now_ms()
}

async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().post(url).body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

const RW: [(&str, &str); 2] = [
    ("content-type", "application/x-protobuf"),
    ("content-encoding", "snappy"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_browser_writes_are_refused_and_programs_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = RealServer::start(dir.path(), |_| {}).await;
    let write = format!("{}/api/v1/write", server.http());

    // The case: a no-cors POST from a web page sends no Content-Type (or a form's).
    let (status, text) = post(&write, &[], remote_write_body("page_wrote", now_ms())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
    assert!(text.contains("Content-Type"), "{text}");
    let (status, _) = post(
        &write,
        &[("content-type", "text/plain")],
        remote_write_body("page_wrote", now_ms()),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A browser that says where it comes from is refused whatever it sends.
    let evil = [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ];
    let same_site = [
        ("origin", "http://localhost:3000"),
        ("sec-fetch-site", "same-site"),
    ];
    let other_port = [("origin", "http://127.0.0.1:3000")];
    let null_origin = [("origin", "null")];
    let foreign: [&[(&str, &str)]; 5] = [
        &evil,
        &same_site,
        &other_port,
        &null_origin,
        &[("sec-fetch-site", "cross-site")],
    ];
    for browser in foreign {
        let headers: Vec<(&str, &str)> = RW.iter().chain(browser.iter()).copied().collect();
        let (status, text) = post(&write, &headers, remote_write_body("page_wrote", now_ms())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{browser:?}: {text}");
        assert!(text.contains("cross-site request refused"), "{text}");

        let mut headers = vec![("content-type", "application/x-protobuf")];
        headers.extend_from_slice(browser);
        let otlp = format!("{}/v1/metrics", server.otlp_http());
        let body = gauge_request("page_wrote", &[1.0], now_ns()).encode_to_vec();
        let (status, text) = post(&otlp, &headers, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "OTLP {browser:?}: {text}");
    }

    // Programs, and a page of this very server, write as before.
    let (status, text) = post(&write, &RW, remote_write_body("program_wrote", now_ms())).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let own_page = format!("http://{}", server.config.http_addr);
    let headers = [
        RW[0],
        RW[1],
        ("origin", own_page.as_str()),
        ("sec-fetch-site", "same-origin"),
    ];
    let (status, text) = post(&write, &headers, remote_write_body("program_wrote", now_ms() + 1)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let otlp = format!("{}/v1/metrics", server.otlp_http());
    let body = gauge_request("program_wrote_otlp", &[1.0], now_ns()).encode_to_vec();
    let (status, text) = post(&otlp, &[("content-type", "application/x-protobuf")], body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    // OTLP/HTTP bodies must say what they are, too.
    let body = gauge_request("page_wrote", &[1.0], now_ns()).encode_to_vec();
    let (status, _) = post(&otlp, &[], body.clone()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = post(&otlp, &[("content-type", "text/plain")], body).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Nothing a page sent was stored.
    let query = format!(
        "{}/api/v1/series?match[]=page_wrote&start=0&end=9999999999",
        server.http()
    );
    let series: serde_json::Value = reqwest::get(&query).await.unwrap().json().await.unwrap();
    assert_eq!(series["data"], serde_json::json!([]), "{series}");
    let query = format!(
        "{}/api/v1/series?match[]=program_wrote&start=0&end=9999999999",
        server.http()
    );
    let series: serde_json::Value = reqwest::get(&query).await.unwrap().json().await.unwrap();
    assert_eq!(series["data"].as_array().map(Vec::len), Some(1), "{series}");
    server.stop().await;
}
