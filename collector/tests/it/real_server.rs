//! The whole server (`server::run_until`, sign-in in its default mode: off on loopback) on
//! free ports over a data directory the test owns, so that it can be stopped and started
//! again on the same data.

use std::net::SocketAddr;
use std::path::Path;

use didban_collector::config::Config;
use didban_testkit::wait::{until_async, HANG};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running server; [`RealServer::stop`] shuts it down cleanly.
pub struct RealServer {
    pub config: Config,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

fn free_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], didban_testkit::free_port()))
}

impl RealServer {
    /// Starts a server on `data_dir` with `tweak` applied (no in-process host collector)
    /// and waits until `/-/ready` answers.
    pub async fn start(data_dir: &Path, tweak: impl FnOnce(&mut Config)) -> RealServer {
        let mut config = Config {
            data_dir: data_dir.to_path_buf(),
            http_addr: free_port(),
            otlp_http_addr: free_port(),
            otlp_grpc_addr: free_port(),
            ..Config::default()
        };
        config.host_metrics.enabled = false;
        tweak(&mut config);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(didban_collector::server::run_until(config.clone(), stop_rx));
        let server = RealServer { config, stop, task };
        let ready = format!("{}/-/ready", server.http());
        let client = reqwest::Client::new();
        until_async("the server to be ready", HANG, || {
            let request = client.get(&ready).send();
            async {
                match request.await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await;
        server
    }

    /// Base URL of the main HTTP port (remote_write, queries).
    pub fn http(&self) -> String {
        format!("http://{}", self.config.http_addr)
    }

    /// Base URL of the OTLP/HTTP port.
    pub fn otlp_http(&self) -> String {
        format!("http://{}", self.config.otlp_http_addr)
    }

    /// Address of the OTLP/gRPC port as a URL.
    pub fn grpc(&self) -> String {
        format!("http://{}", self.config.otlp_grpc_addr)
    }

    /// Stops the server and waits until it has closed its stores.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap().unwrap();
    }
}
