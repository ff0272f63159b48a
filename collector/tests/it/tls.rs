//! The listeners of the whole server (`server::run_until`): TLS on each of the three with a
//! test CA, certificate reload, client certificates (mTLS), the agent shipping over TLS,
//! stalled uploads and idle connections cut by their timeouts without starving others, and
//! the security headers of the UI/API port.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::ingest_support::{gauge_request, now_ns};
use didban_collector::config::Config;
use didban_testkit::certs::{make_certs, make_client_cert};
use didban_testkit::wait::until_async;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn free_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], didban_testkit::free_port()))
}

/// The whole server on free ports; stopped (and awaited) by [`Running::stop`].
struct Running {
    config: Config,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }

    fn url(&self, scheme: &str, addr: SocketAddr, path: &str) -> String {
        let _ = &self.config;
        format!("{scheme}://localhost:{}{path}", addr.port())
    }
}

/// Starts the server with `tweak` applied, and waits until `client` gets `/-/ready` over
/// `scheme`.
async fn start(scheme: &str, client: &reqwest::Client, tweak: impl FnOnce(&mut Config)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        http_addr: free_port(),
        otlp_http_addr: free_port(),
        otlp_grpc_addr: free_port(),
        ..Config::default()
    };
    config.host_metrics.enabled = false;
    config.self_scrape_interval = Duration::ZERO;
    tweak(&mut config);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(didban_collector::server::run_until(config.clone(), stop_rx));
    let ready = format!("{scheme}://localhost:{}/-/ready", config.http_addr.port());
    until_async("the server to be ready", Duration::from_secs(60), || async {
        if task.is_finished() {
            panic!("server stopped during start-up");
        }
        match client.get(&ready).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("status {}", r.status())),
            Err(e) => Err(format!("{e:#}")),
        }
    })
    .await;
    Running {
        config,
        stop,
        task,
        _dir: dir,
    }
}

/// An HTTPS client trusting only the CA in `ca`, optionally presenting `identity`.
fn https_client(ca: &Path, identity: Option<(&Path, &Path)>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20));
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(cert).unwrap();
        pem.extend(std::fs::read(key).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

async fn grpc_channel(
    addr: SocketAddr,
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(cert).unwrap(),
            std::fs::read(key).unwrap(),
        ));
    }
    Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| format!("{e:#}"))?
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

async fn otlp_http_post(client: &reqwest::Client, url: &str, name: &str) -> Result<u16, String> {
    client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(gauge_request(name, &[1.0], now_ns()).encode_to_vec())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("{e:#}"))
}

/// Copies the certificate and key of a fresh CA set over `cert`/`key`, as a renewal does.
fn replace_files(from: &didban_testkit::certs::Certs, cert: &Path, key: &Path) {
    // Written next to the target and renamed, so the server never reads half a file.
    for (src, dst) in [(&from.cert, cert), (&from.key, key)] {
        let tmp = dst.with_extension("new");
        std::fs::copy(src, &tmp).unwrap();
        std::fs::rename(&tmp, dst).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_speaks_tls_and_picks_up_a_renewed_certificate() {
    let old = make_certs();
    let new = make_certs();
    let files = tempfile::tempdir().unwrap();
    let cert = files.path().join("server.pem");
    let key = files.path().join("server.key");
    std::fs::copy(&old.cert, &cert).unwrap();
    std::fs::copy(&old.key, &key).unwrap();
    let client = https_client(&old.ca, None);
    let (c, k) = (cert.clone(), key.clone());
    let server = start("https", &client, move |config| {
        config.tls.cert_file = Some(c);
        config.tls.key_file = Some(k);
        config.tls.reload_interval = Duration::from_millis(200);
    })
    .await;
    let cfg = server.config.clone();

    // HTTP port: a page and an API over HTTP/1.1 and TLS.
    let r = client
        .get(server.url("https", cfg.http_addr, "/api/v1/query?query=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // OTLP/HTTP.
    let status = otlp_http_post(
        &client,
        &server.url("https", cfg.otlp_http_addr, "/v1/metrics"),
        "tls.http",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    // OTLP/gRPC: HTTP/2 negotiated by ALPN.
    let channel = grpc_channel(cfg.otlp_grpc_addr, &old.ca, None).await.unwrap();
    MetricsServiceClient::new(channel)
        .export(gauge_request("tls.grpc", &[1.0], now_ns()))
        .await
        .unwrap();
    // Plain HTTP on a TLS port gets nowhere.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/-/ready", cfg.http_addr))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));

    // Renewal: new connections see the new certificate, on every listener.
    replace_files(&new, &cert, &key);
    let renewed = https_client(&new.ca, None);
    until_async("the renewed certificate", Duration::from_secs(30), || async {
        let r = renewed
            .get(server.url("https", cfg.http_addr, "/-/ready"))
            .send()
            .await;
        r.map(|_| ()).map_err(|e| format!("{e:#}"))
    })
    .await;
    assert!(client
        .get(server.url("https", cfg.http_addr, "/-/ready"))
        .send()
        .await
        .is_err());
    let status = otlp_http_post(
        &renewed,
        &server.url("https", cfg.otlp_http_addr, "/v1/metrics"),
        "tls.renewed",
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    grpc_channel(cfg.otlp_grpc_addr, &new.ca, None).await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_listeners_require_a_client_certificate_with_mtls() {
    let certs = make_certs();
    let (client_cert, client_key) = make_client_cert(&certs, "agent-1");
    let other = make_certs();
    let (stranger_cert, stranger_key) = make_client_cert(&other, "stranger");
    let anonymous = https_client(&certs.ca, None);
    let (c, k, ca) = (certs.cert.clone(), certs.key.clone(), certs.ca.clone());
    let server = start("https", &anonymous, move |config| {
        config.tls.cert_file = Some(c);
        config.tls.key_file = Some(k);
        config.tls.client_ca_file = Some(ca);
    })
    .await;
    let cfg = server.config.clone();
    let otlp = server.url("https", cfg.otlp_http_addr, "/v1/metrics");

    // The UI/API port asks no client certificate (browsers have none) by default.
    let r = anonymous
        .get(server.url("https", cfg.http_addr, "/-/healthy"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No certificate, or one from another CA: the handshake is refused.
    let err = otlp_http_post(&anonymous, &otlp, "mtls.none").await.unwrap_err();
    assert!(!err.is_empty());
    let stranger = https_client(&certs.ca, Some((&stranger_cert, &stranger_key)));
    otlp_http_post(&stranger, &otlp, "mtls.stranger")
        .await
        .unwrap_err();
    assert!(grpc_export(cfg.otlp_grpc_addr, &certs.ca, None).await.is_err());
    // A certificate the configured CA signed: accepted on both OTLP listeners.
    let agent = https_client(&certs.ca, Some((&client_cert, &client_key)));
    assert_eq!(otlp_http_post(&agent, &otlp, "mtls.ok").await.unwrap(), 200);
    grpc_export(cfg.otlp_grpc_addr, &certs.ca, Some((&client_cert, &client_key)))
        .await
        .unwrap();
    server.stop().await;
}

async fn grpc_export(addr: SocketAddr, ca: &Path, identity: Option<(&Path, &Path)>) -> Result<(), String> {
    let channel = grpc_channel(addr, ca, identity).await?;
    MetricsServiceClient::new(channel)
        .export(gauge_request("mtls.grpc", &[1.0], now_ns()))
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_ships_to_an_mtls_collector_with_a_private_ca_and_its_certificate() {
    let certs = make_certs();
    let (agent_cert, agent_key) = make_client_cert(&certs, "agent-1");
    let client = https_client(&certs.ca, None);
    let (c, k, ca) = (certs.cert.clone(), certs.key.clone(), certs.ca.clone());
    let server = start("https", &client, move |config| {
        config.tls.cert_file = Some(c);
        config.tls.key_file = Some(k);
        config.tls.client_ca_file = Some(ca);
    })
    .await;
    let cfg = server.config.clone();
    let agent_dir = tempfile::tempdir().unwrap();
    let mut agent = didban_agent::config::Config::default();
    agent.agent.data_dir = agent_dir.path().to_path_buf();
    agent.agent.interval = Duration::from_millis(500);
    agent.export.endpoint = format!("https://localhost:{}", cfg.otlp_grpc_addr.port());
    agent.export.tls_ca_file = certs.ca.display().to_string();
    agent.export.tls_cert_file = agent_cert.display().to_string();
    agent.export.tls_key_file = agent_key.display().to_string();
    agent.export.flush_interval = Duration::from_millis(200);
    let running = didban_agent::runner::Agent::start(&agent).unwrap();
    let query = server.url("https", cfg.http_addr, "/api/v1/query?query=node_load1");
    until_async(
        "node_load1 from the agent over TLS",
        Duration::from_secs(60),
        || async {
            let body: serde_json::Value = client
                .get(&query)
                .send()
                .await
                .map_err(|e| format!("{e:#}"))?
                .json()
                .await
                .map_err(|e| format!("{e:#}"))?;
            let n = body["data"]["result"].as_array().map_or(0, Vec::len);
            if n > 0 {
                Ok(())
            } else {
                Err(body.to_string())
            }
        },
    )
    .await;
    running.shutdown().await;
    server.stop().await;
}

/// Reads from `s` until it closes; returns what came. Fails the test past `within`.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "connection still open after {within:?}; got {:?}",
        String::from_utf8_lossy(&got)
    );
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_are_cut_and_do_not_starve_other_clients() {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let server = start("http", &client, |config| {
        config.listen.max_connections = 8;
        config.listen.request_body_timeout = Duration::from_secs(2);
        config.listen.header_read_timeout = Duration::from_secs(2);
        config.listen.idle_timeout = Duration::from_secs(3);
    })
    .await;
    let cfg = server.config.clone();
    // Twice the connection limit of uploads that announce a body and never finish it.
    let mut stalled = Vec::new();
    for _ in 0..16 {
        let mut s = TcpStream::connect(cfg.otlp_http_addr).await.unwrap();
        s.write_all(
            b"POST /v1/metrics HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\nabc",
        )
        .await
        .unwrap();
        stalled.push(s);
    }
    // A normal request waits for a free slot at most one body timeout, then succeeds.
    let started = std::time::Instant::now();
    let url = format!("http://{}/v1/metrics", cfg.otlp_http_addr);
    assert_eq!(otlp_http_post(&client, &url, "after.stall").await.unwrap(), 200);
    eprintln!(
        "a normal request behind 16 stalled uploads: {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    // Every stalled upload was answered 408 and closed.
    for s in &mut stalled {
        let answer = read_until_closed(s, Duration::from_secs(20)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("listen.request_body_timeout"), "{answer}");
    }
    // Each cut is counted for /metrics.
    let text = client
        .get(format!("http://{}/metrics", cfg.http_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cut = text
        .lines()
        .find(|l| {
            l.starts_with("didban_connections_closed_total{")
                && l.contains(r#"listener="otlp_http_addr""#)
                && l.contains(r#"reason="body_timeout""#)
        })
        .unwrap_or_else(|| panic!("no body_timeout count in:\n{text}"));
    assert!(cut.ends_with(" 16"), "{cut}");
    assert!(text.contains("didban_connections_open{"), "{text}");
    // A connection that never sends a request, and one idle after a request, are closed.
    let silent_since = std::time::Instant::now();
    let mut silent = TcpStream::connect(cfg.http_addr).await.unwrap();
    read_until_closed(&mut silent, Duration::from_secs(20)).await;
    eprintln!("a silent connection closed after {:?}", silent_since.elapsed());
    let mut idle = TcpStream::connect(cfg.http_addr).await.unwrap();
    idle.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut idle, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_on_pages_and_api() {
    let client = reqwest::Client::new();
    let server = start("http", &client, |_| {}).await;
    let cfg = server.config.clone();
    for path in [
        "/",
        "/explore?q=up",
        "/api/v1/query?query=1",
        "/no/such/page",
        "/-/ready",
    ] {
        let r = client
            .get(format!("http://{}{path}", cfg.http_addr))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
    }
    // Versioned static assets keep their long cache life.
    let r = client
        .get(format!("http://{}{}", cfg.http_addr, didban_ui::assets::JS_PATH))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    server.stop().await;
}
