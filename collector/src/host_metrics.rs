//! This machine's own metrics, collected in-process by the agent's host collector so a fresh
//! `didban serve` shows its host at once. They travel the same way as a remote agent's: OTLP
//! to this server's gRPC receiver, through the agent's bounded disk buffer under
//! `<data_dir>/agent`, so nothing is special-cased and a busy server loses nothing.
//!
//! **One owner per host.** A `didban-agent` on the same machine writes the same `node_*`
//! series (`job="didban-agent"`, `instance=<host name>`); two writers would interleave. The
//! agent owns the host: the built-in collector marks its resource with
//! `didban.host_collector="in-process"` (a `target_info` label) and, every interval, asks the
//! store whether an unmarked `target_info{job="didban-agent", instance=<host>}` arrived within
//! the last [`silence_window`]. If so it stops ("steps aside"); when that agent has been
//! silent for the window it starts again. An agent that reports the host but does not collect
//! its metrics (`[host] enabled = false`) is noticed because `node_load1` goes stale after the
//! step aside: the built-in collector then runs beside it until that agent goes away.

use std::net::SocketAddr;
use std::time::Duration;

use didban_agent::config::Config as AgentConfig;
use didban_agent::runner::{host_name, Agent};
use didban_base::now_ms;
use didban_store::promql::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Config;
use crate::state::AppState;

/// Resource attribute (and, mapped, `target_info` label) marking the built-in collector.
pub const MARKER_KEY: &str = "didban.host_collector";
/// Value of [`MARKER_KEY`].
pub const MARKER_VALUE: &str = "in-process";

/// The running built-in host collector and the task that decides who owns the host.
pub struct HostMetrics {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What the owner check saw in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// An agent other than this server's reported this host within the window.
    pub other_agent: bool,
    /// `node_load1` of this host got a sample after the built-in collector stepped aside.
    pub host_fresh_since_aside: bool,
}

/// Who writes this host's `node_*` series right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The built-in collector, no other agent seen.
    Builtin,
    /// Stepped aside at `since_ms` for another agent on this host.
    Agent {
        /// When the built-in collector stopped.
        since_ms: i64,
    },
    /// Another agent reports this host but does not collect its metrics: the built-in
    /// collector runs beside it.
    Beside,
}

/// The next owner given what was seen at `now_ms`; `grace_ms` is how long after a step aside
/// the other agent has to deliver host metrics before the built-in collector resumes.
pub fn next_owner(current: Owner, seen: Seen, now_ms: i64, grace_ms: i64) -> Owner {
    match current {
        Owner::Builtin if seen.other_agent => Owner::Agent { since_ms: now_ms },
        Owner::Builtin => Owner::Builtin,
        Owner::Agent { .. } if !seen.other_agent => Owner::Builtin,
        Owner::Agent { since_ms } => {
            if seen.host_fresh_since_aside || now_ms - since_ms < grace_ms {
                current
            } else {
                Owner::Beside
            }
        }
        Owner::Beside if seen.other_agent => Owner::Beside,
        Owner::Beside => Owner::Builtin,
    }
}

/// How long another agent must be silent before the built-in collector takes the host back:
/// five intervals, at least a minute (an agent's default interval is 10 s).
pub fn silence_window(interval: Duration) -> Duration {
    (interval * 5).max(Duration::from_secs(60))
}

/// Starts the host collector when enabled; `grpc` is the bound OTLP/gRPC address and
/// `token` the in-memory ingest token it sends when sign-in is required. `state` is read to
/// see whether an agent on this host already reports its metrics.
pub fn start(
    config: &Config,
    grpc: SocketAddr,
    token: Option<String>,
    state: AppState,
) -> Option<HostMetrics> {
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
    agent
        .export
        .resource_attributes
        .insert(MARKER_KEY.to_string(), MARKER_VALUE.to_string());
    let running = match Agent::start(&agent) {
        Ok(a) => {
            info!(interval = ?config.host_metrics.interval, "collecting this host's metrics (job=\"didban-agent\")");
            a
        }
        Err(e) => {
            warn!(error = %e, "host metrics disabled: the host collector could not start");
            return None;
        }
    };
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(supervise(agent, running, state, stop_rx));
    Some(HostMetrics { stop, task })
}

impl HostMetrics {
    /// Stops the owner checks and the collector; what it could not send stays in its buffer.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A PromQL string literal of `s`.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Runs the owner check every interval, stopping and starting the collector as it decides.
async fn supervise(config: AgentConfig, first: Agent, state: AppState, mut stop: watch::Receiver<bool>) {
    let interval = config.agent.interval;
    let window = silence_window(interval);
    let grace_ms = i64::try_from((interval * 5).max(Duration::from_secs(15)).as_millis()).unwrap_or(i64::MAX);
    let host = host_name(&config);
    let mut running = Some(first);
    let mut owner = Owner::Builtin;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        let now = now_ms();
        let since = match owner {
            Owner::Agent { since_ms } => since_ms,
            _ => now,
        };
        let seen = match look(&state, &host, window, since, now).await {
            Ok(seen) => seen,
            Err(e) => {
                warn!(error = %e, "host collector: could not check for an agent on this host");
                continue;
            }
        };
        let next = next_owner(owner, seen, now, grace_ms);
        if next == owner {
            continue;
        }
        match next {
            Owner::Agent { .. } => {
                warn!(host = %host, "a didban-agent reports this host: the built-in host collector steps aside (the agent owns node_* of this host)");
                if let Some(a) = running.take() {
                    a.shutdown().await;
                }
            }
            Owner::Builtin | Owner::Beside => {
                if next == Owner::Beside {
                    warn!(host = %host, "the didban-agent on this host sends no host metrics ([host] enabled = false?): the built-in host collector runs beside it");
                } else {
                    info!(host = %host, ?window, "no other agent reported this host within the window: the built-in host collector resumes");
                }
                if running.is_none() {
                    match Agent::start(&config) {
                        Ok(a) => running = Some(a),
                        Err(e) => warn!(error = %e, "host collector could not restart"),
                    }
                }
            }
        }
        owner = next;
    }
    if let Some(a) = running {
        a.shutdown().await;
    }
}

/// Asks the store whether another agent reported `host` within `window` and whether
/// `node_load1` of `host` got a sample after `since_ms`.
async fn look(
    state: &AppState,
    host: &str,
    window: Duration,
    since_ms: i64,
    now: i64,
) -> Result<Seen, String> {
    let host = quoted(host);
    let window_s = window.as_secs().max(1);
    let other = format!(
        "count(last_over_time(target_info{{job=\"didban-agent\", instance={host}, {key}!={value}}}[{window_s}s]))",
        key = MARKER_KEY.replace('.', "_"),
        value = quoted(MARKER_VALUE),
    );
    let fresh = format!("timestamp(node_load1{{job=\"didban-agent\", instance={host}}})");
    let (engine, db) = (state.engine.clone(), state.stores.metrics.clone());
    tokio::task::spawn_blocking(move || {
        let first = |expr: &str| -> Result<Option<f64>, String> {
            let result = engine
                .instant_query(&*db, expr, now)
                .map_err(|e| format!("{expr}: {e}"))?;
            match result.value {
                Value::Vector(v) => Ok(v.first().map(|s| s.v)),
                Value::Scalar { v, .. } => Ok(Some(v)),
                _ => Ok(None),
            }
        };
        let other_agent = first(&other)?.is_some_and(|n| n > 0.0);
        let last = first(&fresh)?.unwrap_or(0.0);
        Ok(Seen {
            other_agent,
            host_fresh_since_aside: last * 1000.0 > since_ms as f64,
        })
    })
    .await
    .map_err(|e| format!("owner check task: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEN: Seen = Seen {
        other_agent: true,
        host_fresh_since_aside: true,
    };
    const ALONE: Seen = Seen {
        other_agent: false,
        host_fresh_since_aside: false,
    };
    const SILENT_HOST: Seen = Seen {
        other_agent: true,
        host_fresh_since_aside: false,
    };

    #[test]
    fn steps_aside_for_an_agent_and_resumes_when_it_is_gone() {
        let aside = next_owner(Owner::Builtin, SEEN, 1_000, 15_000);
        assert_eq!(aside, Owner::Agent { since_ms: 1_000 });
        assert_eq!(next_owner(aside, SEEN, 60_000, 15_000), aside);
        assert_eq!(next_owner(aside, ALONE, 90_000, 15_000), Owner::Builtin);
        assert_eq!(next_owner(Owner::Builtin, ALONE, 1, 15_000), Owner::Builtin);
    }

    #[test]
    fn runs_beside_an_agent_that_sends_no_host_metrics() {
        let aside = Owner::Agent { since_ms: 1_000 };
        // Within the grace period the agent may still be about to deliver.
        assert_eq!(next_owner(aside, SILENT_HOST, 10_000, 15_000), aside);
        assert_eq!(next_owner(aside, SILENT_HOST, 16_001, 15_000), Owner::Beside);
        assert_eq!(
            next_owner(Owner::Beside, SILENT_HOST, 20_000, 15_000),
            Owner::Beside
        );
        assert_eq!(next_owner(Owner::Beside, ALONE, 30_000, 15_000), Owner::Builtin);
    }

    #[test]
    fn window_and_quoting() {
        assert_eq!(silence_window(Duration::from_secs(15)), Duration::from_secs(75));
        assert_eq!(silence_window(Duration::from_secs(1)), Duration::from_secs(60));
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
