//! Request-level failures of the receivers and how each protocol reports them.

use axum::http::StatusCode;
use didban_store::AppendError;
use prost::Message;

use super::body::BodyError;

/// Seconds a client is told to wait (`Retry-After`) when the server is overloaded or the
/// WAL is failing.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// `google.rpc.Status`: the body of OTLP/HTTP error replies, and the gRPC status details.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What went wrong.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Typed details, such as a `RetryInfo`.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoAny {
    /// The type of `value`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`: how long a client should wait before retrying.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    /// The delay.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoDuration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds on top.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The type URL of [`RetryInfo`] in an `Any`.
pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// Why a whole ingest request failed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The payload could not be decoded or broke a rule; retrying will not help.
    #[error("{0}")]
    BadRequest(String),
    /// Reading or decompressing the body failed.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The `Content-Type` (or remote_write `Content-Encoding`) is not one we speak.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Over capacity; retry after a while.
    #[error("{0}")]
    Overloaded(String),
    /// The WAL failed or the database is closing; retry after a while.
    #[error("{0}")]
    Unavailable(String),
}

impl From<AppendError> for IngestError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Overloaded { .. } | AppendError::Backlog { .. } => {
                IngestError::Overloaded(e.to_string())
            }
            other => IngestError::Unavailable(other.to_string()),
        }
    }
}

impl IngestError {
    /// The HTTP status for this failure (OTLP/HTTP and remote_write agree on these).
    pub fn http_status(&self) -> StatusCode {
        match self {
            IngestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IngestError::Body(BodyError::TooLarge { .. })
            | IngestError::Body(BodyError::DecompressedTooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Body(BodyError::UnsupportedEncoding(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::Body(_) => StatusCode::BAD_REQUEST,
            IngestError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::Overloaded(_) => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// True when the client should retry later (and gets a `Retry-After`).
    pub fn retryable(&self) -> bool {
        matches!(self, IngestError::Overloaded(_) | IngestError::Unavailable(_))
    }

    /// The gRPC code for this failure.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            IngestError::Overloaded(_) => tonic::Code::ResourceExhausted,
            IngestError::Unavailable(_) => tonic::Code::Unavailable,
            IngestError::Body(BodyError::TooLarge { .. })
            | IngestError::Body(BodyError::DecompressedTooLarge { .. }) => tonic::Code::ResourceExhausted,
            _ => tonic::Code::InvalidArgument,
        }
    }

    /// The gRPC status for this failure. Retryable failures carry a `RetryInfo` detail:
    /// OTLP clients retry `RESOURCE_EXHAUSTED` only when it is present.
    pub fn grpc_status(&self) -> tonic::Status {
        let code = self.grpc_code();
        let message = self.to_string();
        if !self.retryable() {
            return tonic::Status::new(code, message);
        }
        let retry = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: RETRY_AFTER_SECONDS as i64,
                nanos: 0,
            }),
        };
        let details = RpcStatus {
            code: code as i32,
            message: message.clone(),
            details: vec![ProtoAny {
                type_url: RETRY_INFO_TYPE.to_string(),
                value: retry.encode_to_vec(),
            }],
        };
        tonic::Status::with_details(code, message, details.encode_to_vec().into())
    }

    /// The `google.rpc.Code` matching [`IngestError::http_status`], for OTLP/HTTP error bodies.
    pub fn rpc_code(&self) -> i32 {
        self.grpc_code() as i32
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::response::IntoResponse;

    #[test]
    fn capacity_and_wal_failures_are_retryable_with_a_delay() {
        let overloaded = IngestError::from(AppendError::Overloaded { used: 2, limit: 1 });
        assert_eq!(overloaded.http_status(), StatusCode::TOO_MANY_REQUESTS);
        let status = overloaded.grpc_status();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("memory limit"));
        let details = RpcStatus::decode(status.details()).unwrap();
        assert_eq!(details.details[0].type_url, RETRY_INFO_TYPE);
        let retry = RetryInfo::decode(details.details[0].value.as_slice()).unwrap();
        assert_eq!(retry.retry_delay.unwrap().seconds, RETRY_AFTER_SECONDS as i64);
        let mut reply = super::super::http::plain_error(&overloaded).into_response();
        assert_eq!(reply.headers_mut()["retry-after"], "5");

        let backlog = IngestError::from(AppendError::Backlog {
            used: 300,
            limit: 256,
        });
        assert_eq!(backlog.http_status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(backlog.grpc_status().code(), tonic::Code::ResourceExhausted);
        assert!(backlog.to_string().contains("log ingest backlog"), "{backlog}");

        let wal = IngestError::from(AppendError::Wal(std::io::Error::other("disk full")));
        assert_eq!(wal.http_status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(wal.grpc_status().code(), tonic::Code::Unavailable);
        assert_eq!(wal.to_string(), "write-ahead log failed: disk full");
        let reply = super::super::http::plain_error(&wal).into_response();
        assert_eq!(reply.headers()["retry-after"], "5");

        let closed = IngestError::from(AppendError::Closed);
        assert_eq!(closed.http_status(), StatusCode::SERVICE_UNAVAILABLE);

        let bad = IngestError::BadRequest("invalid protobuf: x".into());
        assert_eq!(bad.grpc_status().code(), tonic::Code::InvalidArgument);
        assert!(bad.grpc_status().details().is_empty());
        assert!(super::super::http::plain_error(&bad)
            .headers()
            .get("retry-after")
            .is_none());
    }
}
