//! StatsD over UDP: counters, gauges, timers/histograms, sets, sample rates and DogStatsD
//! tags, aggregated between collections (see [`aggregate`] for the naming). The agent's own
//! `didban_agent_statsd_*` counters report packets, parse errors and refused series.

pub mod aggregate;
pub mod parse;

use std::net::UdpSocket as StdUdpSocket;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::collectors::Collector;
use crate::config::StatsdConfig;
use crate::error::CollectError;
use crate::model::Sample;
use aggregate::Aggregator;
use didban_base::now_ms;
use parse::parse_line;

struct State {
    aggregator: Aggregator,
    packets: u64,
    parse_errors: u64,
    last_parse_error: Option<String>,
}

/// Listens on UDP and reports the aggregate on each collection.
pub struct StatsdCollector {
    listen: String,
    socket: Option<StdUdpSocket>,
    state: Arc<Mutex<State>>,
    receiver: Option<JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    match state.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl StatsdCollector {
    /// Binds the UDP socket now, so a taken port is reported at start with its address.
    pub fn bind(config: &StatsdConfig) -> Result<StatsdCollector, CollectError> {
        let socket = StdUdpSocket::bind(&config.listen).map_err(|e| CollectError::Target {
            target: format!("statsd.listen {}", config.listen),
            why: e.to_string(),
        })?;
        socket.set_nonblocking(true).map_err(|e| CollectError::Target {
            target: format!("statsd.listen {}", config.listen),
            why: e.to_string(),
        })?;
        let listen = socket
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| config.listen.clone());
        let state = State {
            aggregator: Aggregator::new(config.max_series, config.percentiles.clone()),
            packets: 0,
            parse_errors: 0,
            last_parse_error: None,
        };
        Ok(StatsdCollector {
            listen,
            socket: Some(socket),
            state: Arc::new(Mutex::new(state)),
            receiver: None,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> &str {
        &self.listen
    }

    fn start_receiver(&mut self) -> Result<(), CollectError> {
        let Some(std_socket) = self.socket.take() else {
            return Ok(());
        };
        let socket = tokio::net::UdpSocket::from_std(std_socket).map_err(|e| CollectError::Target {
            target: self.listen.clone(),
            why: e.to_string(),
        })?;
        let state = self.state.clone();
        self.receiver = Some(tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let n = match socket.recv(&mut buf).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::debug!(error = %e, "statsd receive failed");
                        continue;
                    }
                };
                let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
                let mut s = lock(&state);
                s.packets += 1;
                for line in text.lines() {
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    match parse_line(line) {
                        Ok(parsed) => s.aggregator.add(parsed),
                        Err(e) => {
                            s.parse_errors += 1;
                            if s.last_parse_error.is_none() {
                                tracing::warn!(line = %line, error = %e, "statsd: malformed line ignored (further ones are counted, not logged)");
                                s.last_parse_error = Some(e);
                            }
                        }
                    }
                }
            }
        }));
        Ok(())
    }
}

impl Drop for StatsdCollector {
    fn drop(&mut self) {
        if let Some(task) = self.receiver.take() {
            task.abort();
        }
    }
}

impl Collector for StatsdCollector {
    fn name(&self) -> String {
        format!("statsd/{}", self.listen)
    }

    fn collect(&mut self) -> BoxFuture<'_, Result<Vec<Sample>, CollectError>> {
        Box::pin(async move {
            self.start_receiver()?;
            let now = now_ms();
            let mut s = lock(&self.state);
            let mut out = s.aggregator.flush(now);
            out.push(Sample::counter(
                "didban_agent_statsd_packets_total",
                &[],
                s.packets as f64,
                now,
            ));
            out.push(Sample::counter(
                "didban_agent_statsd_parse_errors_total",
                &[],
                s.parse_errors as f64,
                now,
            ));
            let dropped = s.aggregator.dropped_series as f64;
            out.push(Sample::counter(
                "didban_agent_statsd_dropped_series_total",
                &[],
                dropped,
                now,
            ));
            Ok(out)
        })
    }
}
