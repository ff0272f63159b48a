//! The local OTLP receiver: services on the host send traces, metrics and logs to the agent
//! (OTLP/gRPC and OTLP/HTTP on loopback); the agent adds `host.name` to each resource that
//! lacks it and writes the request to the same disk buffer as its own metrics, answering the
//! sender only once the request is fsynced. So application telemetry survives a collector
//! outage too. A port already taken (say by `didban serve` on the same host) is reported once
//! and the agent runs on without that receiver.

mod forward;
mod grpc;
pub mod grpc_decode;
mod http;

use std::net::SocketAddr;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ReceiverConfig;
use crate::export::OtlpSink;
use forward::Forward;

/// The running receivers.
pub struct LocalReceiver {
    /// Where the gRPC receiver listens, if it could bind.
    pub grpc_addr: Option<SocketAddr>,
    /// Where the HTTP receiver listens, if it could bind.
    pub http_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn bind(what: &str, address: &str) -> Option<tokio::net::TcpListener> {
    let listener = match std::net::TcpListener::bind(address) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(
                receiver = what,
                address,
                error = %e,
                "local OTLP receiver not started (port taken? e.g. by didban serve on this host); the agent runs on without it"
            );
            return None;
        }
    };
    if let Err(e) = listener.set_nonblocking(true) {
        tracing::warn!(receiver = what, address, error = %e, "local OTLP receiver not started");
        return None;
    }
    match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(receiver = what, address, error = %e, "local OTLP receiver not started");
            None
        }
    }
}

impl LocalReceiver {
    /// Starts the configured receivers; must run inside a tokio runtime. Never fails: a
    /// receiver that cannot bind is skipped with a warning.
    pub fn start(config: &ReceiverConfig, sink: OtlpSink, host_name: String) -> LocalReceiver {
        let forward = Forward { sink, host_name };
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut grpc_addr = None;
        let mut http_addr = None;
        if !config.grpc_listen.is_empty() {
            if let Some(listener) = bind("grpc", &config.grpc_listen) {
                grpc_addr = listener.local_addr().ok();
                tracing::info!(address = ?grpc_addr, "local OTLP/gRPC receiver listening");
                tasks.push(tokio::spawn(grpc::serve(
                    listener,
                    forward.clone(),
                    stop_rx.clone(),
                )));
            }
        }
        if !config.http_listen.is_empty() {
            if let Some(listener) = bind("http", &config.http_listen) {
                http_addr = listener.local_addr().ok();
                tracing::info!(address = ?http_addr, "local OTLP/HTTP receiver listening");
                tasks.push(tokio::spawn(http::serve(
                    listener,
                    forward,
                    config.max_request_bytes,
                    stop_rx,
                )));
            }
        }
        LocalReceiver {
            grpc_addr,
            http_addr,
            stop,
            tasks,
        }
    }

    /// Stops accepting; in-flight requests finish first.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
