//! The accept loop every listener runs: at most `listen.max_connections` connections at once
//! (past it, new ones wait in the kernel's accept queue), TLS handshake within
//! `listen.header_read_timeout`, HTTP/1.1 and HTTP/2 (gRPC) on the same port, request
//! headers within `header_read_timeout`, bodies within `request_body_timeout`, and idle
//! connections closed after `idle_timeout`. On stop: no new connections, open ones finish
//! their requests (graceful shutdown), then the loop returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;
use tracing::{debug, warn};

use std::sync::atomic::{AtomicUsize, Ordering};

use super::activity::{Activity, Tracked, CLOSED, OPEN};
use super::body_timeout::{self, BodyLimit};
use super::tls::ReloadingTls;
use crate::config::listen::ListenConfig;
use crate::selfmon::SelfMetrics;
use crate::shutdown::stopped;

/// TLS for one listener: the reloading configuration and whether client certificates are
/// required.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    /// The certificate source shared by all listeners.
    pub source: Arc<ReloadingTls>,
    /// Whether the handshake requires a client certificate (mTLS).
    pub client_auth: bool,
}

/// A bound listener with what it serves and how.
pub struct Listener {
    /// The bound socket.
    pub tcp: TcpListener,
    /// TLS, or `None` for plain TCP.
    pub tls: Option<ListenerTls>,
    /// Limits and timeouts.
    pub limits: ListenConfig,
    /// Its name in logs and in the `listener` label (`http_addr`, `otlp_http_addr`, …).
    pub name: &'static str,
    /// Where open connections and cuts are counted (`didban_connections_*`).
    pub metrics: Arc<SelfMetrics>,
}

/// Counts what one listener's connections do, for `/metrics`.
struct Counts {
    metrics: Arc<SelfMetrics>,
    listener: &'static str,
    open: AtomicUsize,
}

impl Counts {
    fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.publish();
    }

    fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.publish();
    }

    fn publish(&self) {
        let n = self.open.load(Ordering::Relaxed) as f64;
        self.metrics
            .set(OPEN.0, OPEN.1, &[("listener", self.listener)], n);
    }

    fn cut(&self, reason: &str) {
        let labels = [("listener", self.listener), ("reason", reason)];
        self.metrics.inc(CLOSED.0, CLOSED.1, &labels, 1.0);
    }
}

/// How often a connection checks whether it went idle.
fn idle_check_period(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
}

/// Serves `router` on `listener` until `stop` turns true, then waits for open connections to
/// finish. Errors accepting (such as `EMFILE`) are logged and retried after a pause, never
/// fatal.
pub async fn serve(listener: Listener, router: Router, stop: watch::Receiver<bool>) -> std::io::Result<()> {
    let limits = listener.limits.clone();
    let router = router.layer(axum::middleware::from_fn_with_state(
        Arc::new(BodyLimit {
            limit: limits.request_body_timeout,
            metrics: listener.metrics.clone(),
            listener: listener.name,
        }),
        body_timeout::limit,
    ));
    let counts = Arc::new(Counts {
        metrics: listener.metrics.clone(),
        listener: listener.name,
        open: AtomicUsize::new(0),
    });
    counts.publish();
    let max = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let permits = Arc::new(Semaphore::new(max));
    let stopping = stopped(stop.clone());
    tokio::pin!(stopping);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut stopping => break,
        };
        let (tcp, remote) = tokio::select! {
            r = listener.tcp.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    warn!(listener = listener.name, error = %e, "accept failed; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stopping => break,
        };
        let _ = tcp.set_nodelay(true);
        let conn = Conn {
            router: router.clone(),
            remote,
            limits: limits.clone(),
            stop: stop.clone(),
            counts: counts.clone(),
        };
        let tls = listener.tls.clone();
        counts.opened();
        let counts = counts.clone();
        tokio::spawn(async move {
            conn.run(tcp, tls).await;
            counts.closed();
            drop(permit);
        });
    }
    drop(listener.tcp);
    // Every connection holds a permit until it ends: having them all back means none is open.
    let _ = permits.acquire_many(max as u32).await;
    Ok(())
}

/// One accepted connection and what serving it needs.
struct Conn {
    router: Router,
    remote: SocketAddr,
    limits: ListenConfig,
    stop: watch::Receiver<bool>,
    counts: Arc<Counts>,
}

impl Conn {
    async fn run(self, tcp: TcpStream, tls: Option<ListenerTls>) {
        let activity = Arc::new(Activity::default());
        let io = Tracked::new(tcp, activity.clone());
        let Some(tls) = tls else {
            return self.drive(io, activity).await;
        };
        let acceptor = tls.source.acceptor(tls.client_auth);
        match tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(io)).await {
            Ok(Ok(stream)) => self.drive(stream, activity).await,
            Ok(Err(e)) => {
                self.counts.cut("handshake_failed");
                debug!(remote = %self.remote, error = %e, "TLS handshake failed");
            }
            Err(_) => {
                self.counts.cut("handshake_timeout");
                debug!(remote = %self.remote, "TLS handshake timed out");
            }
        }
    }

    /// Serves HTTP/1.1 or HTTP/2 on `io` until the client closes, the connection idles out,
    /// or the server stops.
    async fn drive<IO>(self, io: IO, activity: Arc<Activity>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            router,
            remote,
            limits,
            stop,
            counts,
        } = self;
        let stopping = stopped(stop);
        tokio::pin!(stopping);
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            let in_flight = requests.begin();
            let call = router.clone().oneshot(req.map(axum::body::Body::new));
            async move {
                let response = call.await;
                drop(in_flight);
                response
            }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        // No HTTP/2 keep-alive pings: their traffic would keep an idle connection looking
        // busy; the idle check below closes quiet connections, alive or dead.
        builder.http2().timer(TokioTimer::new());
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let mut check = tokio::time::interval(idle_check_period(limits.idle_timeout));
        let mut draining = false;
        let mut idle_since_drain = false;
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(remote = %remote, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = &mut stopping, if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = check.tick() => {
                    if !activity.idle(limits.idle_timeout) {
                        continue;
                    }
                    // Idle: a graceful close first (HTTP/2 GOAWAY, so a client does not send
                    // into a closing connection); a peer that stays silent through it is dropped.
                    if idle_since_drain {
                        debug!(remote = %remote, "dropping an idle connection");
                        return;
                    }
                    debug!(remote = %remote, "closing an idle connection");
                    counts.cut("idle");
                    idle_since_drain = true;
                    if !draining {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}
