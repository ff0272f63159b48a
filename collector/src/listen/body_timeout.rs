//! The request-body deadline: a body must arrive whole within `listen.request_body_timeout`
//! of its headers. A stalled upload is answered 408 and its connection closed, so bodies that
//! never finish cannot pile up until descriptors or memory run out.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::activity::CLOSED;
use crate::selfmon::SelfMetrics;

/// The deadline of one listener and where its cuts are counted.
#[derive(Debug, Clone)]
pub struct BodyLimit {
    /// `listen.request_body_timeout`.
    pub limit: Duration,
    /// Counts `didban_connections_closed_total{reason="body_timeout"}`.
    pub metrics: Arc<SelfMetrics>,
    /// The listener's name, the counter's `listener` label.
    pub listener: &'static str,
}

/// The error a body yields once its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0:?} (listen.request_body_timeout)")]
pub struct BodyTimeout(pub Duration);

/// A request body that fails with [`BodyTimeout`] once `deadline` passes before its end.
pub struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    fired: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.fired.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(BodyTimeout(this.limit).into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.fired.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err(BodyTimeout(this.limit).into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: gives the request body its deadline; when it passed, the answer is 408 with
/// `Connection: close` whatever the handler made of the failed read (for gRPC: status
/// `DEADLINE_EXCEEDED`, which OTLP clients retry).
pub async fn limit(State(cfg): State<Arc<BodyLimit>>, req: Request, next: Next) -> Response {
    let limit = cfg.limit;
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let fired = Arc::new(AtomicBool::new(false));
    let body_fired = fired.clone();
    let req = req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            sleep: Box::pin(tokio::time::sleep(limit)),
            limit,
            fired: body_fired,
        })
    });
    let response = next.run(req).await;
    if !fired.load(Ordering::Relaxed) {
        return response;
    }
    cfg.metrics.inc(
        CLOSED.0,
        CLOSED.1,
        &[("listener", cfg.listener), ("reason", "body_timeout")],
        1.0,
    );
    if grpc {
        return grpc_deadline_exceeded(limit);
    }
    let mut response = (StatusCode::REQUEST_TIMEOUT, BodyTimeout(limit).to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A trailers-only gRPC answer: `DEADLINE_EXCEEDED` with the reason.
fn grpc_deadline_exceeded(limit: Duration) -> Response {
    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from_static("4"));
    if let Ok(message) = HeaderValue::from_str(&BodyTimeout(limit).to_string()) {
        h.insert("grpc-message", message);
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::routing::post;
    use axum::Router;
    use futures::StreamExt;
    use tower::ServiceExt;

    /// A body that sends two bytes and then never another nor its end.
    fn stalled() -> Body {
        let first = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"ab")) });
        Body::from_stream(first.chain(futures::stream::pending()))
    }

    async fn send(content_type: &str, body: Body) -> Response {
        let app = Router::new()
            .route(
                "/",
                post(|body: Bytes| async move { format!("{} bytes", body.len()) }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(BodyLimit {
                    limit: Duration::from_millis(100),
                    metrics: Arc::new(SelfMetrics::new()),
                    listener: "test",
                }),
                limit,
            ));
        let req = Request::post("/")
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .unwrap();
        app.oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn a_stalled_body_gets_408_and_close_or_grpc_deadline_exceeded() {
        let r = send("application/x-protobuf", stalled()).await;
        assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(r.headers()[header::CONNECTION], "close");
        let r = send("application/grpc", stalled()).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["grpc-status"], "4");
        assert!(r.headers()["grpc-message"]
            .to_str()
            .unwrap()
            .contains("listen.request_body_timeout"));
        // A body that arrives in time is untouched.
        let r = send("application/x-protobuf", Body::from("hello")).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
}
