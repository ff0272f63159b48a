//! A real webhook receiver for alerting tests: an HTTP server on a free loopback port, on a
//! runtime of its own, that records every delivery (headers and body) and answers with a
//! status the test chooses (200 unless told otherwise). Gone on drop.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

/// One delivery: its headers and its body (JSON, or the raw text as a JSON string when it
/// is not JSON, so a malformed delivery is seen by the test rather than lost).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone, Default)]
struct Shared {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    status: Arc<AtomicU16>,
}

/// A running receiver; `url` is where to send (path `/hook`).
pub struct Webhook {
    pub url: String,
    shared: Shared,
    _runtime: tokio::runtime::Runtime,
}

async fn receive(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, &'static str) {
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    shared
        .deliveries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Delivery { headers, body });
    let code = StatusCode::from_u16(shared.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK);
    (
        code,
        if code.is_success() {
            "ok"
        } else {
            "receiver broken"
        },
    )
}

impl Webhook {
    /// Starts a receiver that answers 200.
    pub fn start() -> Webhook {
        Webhook::answering(200)
    }

    /// Starts a receiver that answers `status` (e.g. 500 for a broken receiver).
    pub fn answering(status: u16) -> Webhook {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("webhook receiver runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding the webhook receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        let shared = Shared::default();
        shared.status.store(status, Ordering::SeqCst);
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(shared.clone());
        runtime.spawn(async move { axum::serve(listener, app).await });
        Webhook {
            url: format!("http://{addr}/hook"),
            shared,
            _runtime: runtime,
        }
    }

    /// Every delivery so far, in order of arrival.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The bodies of every delivery so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.deliveries().into_iter().map(|d| d.body).collect()
    }

    /// How many deliveries arrived so far.
    pub fn count(&self) -> usize {
        self.shared
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
