//! This machine's own metrics, collected in-process by the agent's host collector so a fresh
//! `didban serve` shows its host at once. They travel the same way as a remote agent's: OTLP
//! to this server's gRPC receiver, through the agent's bounded disk buffer under
//! `<data_dir>/agent`, so nothing is special-cased and a busy server loses nothing.

use std::net::SocketAddr;

use didban_agent::config::Config as AgentConfig;
use didban_agent::runner::Agent;
use tracing::{info, warn};

use crate::config::Config;

/// Starts the host collector when enabled; `grpc` is the bound OTLP/gRPC address and
/// `token` the in-memory ingest token it sends when sign-in is required.
pub fn start(config: &Config, grpc: SocketAddr, token: Option<String>) -> Option<Agent> {
    if !config.host_metrics.enabled {
        return None;
    }
    let mut agent = AgentConfig::default();
    agent.agent.data_dir = config.data_dir.join("agent");
    agent.agent.interval = config.host_metrics.interval;
    // A wildcard bind is reached over loopback.
    let host = if grpc.ip().is_unspecified() {
        if grpc.is_ipv4() {
            "127.0.0.1".to_string()
        } else {
            "[::1]".to_string()
        }
    } else if grpc.is_ipv6() {
        format!("[{}]", grpc.ip())
    } else {
        grpc.ip().to_string()
    };
    agent.export.endpoint = format!("http://{host}:{}", grpc.port());
    if let Some(t) = token {
        agent.export.bearer_token = t;
    }
    agent.export.flush_interval = config.host_metrics.interval.min(agent.export.flush_interval);
    match Agent::start(&agent) {
        Ok(a) => {
            info!(interval = ?config.host_metrics.interval, "collecting this host's metrics (job=\"didban-agent\")");
            Some(a)
        }
        Err(e) => {
            warn!(error = %e, "host metrics disabled: the host collector could not start");
            None
        }
    }
}
