//! Request-level failures of the receivers and how each protocol reports them.

use axum::http::StatusCode;
use didban_store::AppendError;

use super::body::BodyError;

/// Seconds a client is told to wait (`Retry-After`) when the server is overloaded or the
/// WAL is failing.
pub const RETRY_AFTER_SECONDS: u64 = 5;

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
            AppendError::Overloaded { .. } => IngestError::Overloaded(e.to_string()),
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

    /// The gRPC status for this failure.
    pub fn grpc_status(&self) -> tonic::Status {
        let message = self.to_string();
        match self {
            IngestError::Overloaded(_) => tonic::Status::resource_exhausted(message),
            IngestError::Unavailable(_) => tonic::Status::unavailable(message),
            IngestError::Body(BodyError::TooLarge { .. })
            | IngestError::Body(BodyError::DecompressedTooLarge { .. }) => {
                tonic::Status::resource_exhausted(message)
            }
            _ => tonic::Status::invalid_argument(message),
        }
    }

    /// The `google.rpc.Code` matching [`IngestError::http_status`], for OTLP/HTTP error bodies.
    pub fn rpc_code(&self) -> i32 {
        self.grpc_status().code() as i32
    }
}
