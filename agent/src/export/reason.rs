//! Why an export attempt failed or data was dropped, and what the exporter does about it.
//!
//! The rule (issue 13): the agent keeps everything it could still deliver. Only three things
//! are dropped: a whole request the collector says cannot be decoded (HTTP 400,
//! `INVALID_ARGUMENT`), items the collector rejects one by one in a partial success, and a
//! single item larger than the collector accepts. Everything else — a rotated token, a wrong
//! path, an overloaded or absent collector — stays buffered on disk and is retried.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why an attempt failed or items were dropped; the `reason` label of the self-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// HTTP 401, gRPC `UNAUTHENTICATED`: missing or rotated token.
    Unauthorized,
    /// HTTP 403, gRPC `PERMISSION_DENIED`: the token lacks the ingest scope.
    Forbidden,
    /// HTTP 404, gRPC `NOT_FOUND`/`UNIMPLEMENTED`: wrong endpoint path or port.
    NotFound,
    /// HTTP 408/504, gRPC `DEADLINE_EXCEEDED`, or no answer within `export.timeout`.
    Timeout,
    /// HTTP 429, gRPC `RESOURCE_EXHAUSTED` with a `RetryInfo`: back-pressure.
    Throttled,
    /// HTTP 502/503, gRPC `UNAVAILABLE`/`CANCELLED`/`ABORTED`, or no connection.
    Unavailable,
    /// Other HTTP 5xx, gRPC `INTERNAL`/`UNKNOWN`/`DATA_LOSS`.
    ServerError,
    /// HTTP 413 or a gRPC "message too large": the request is split and retried.
    TooLarge,
    /// HTTP 400, gRPC `INVALID_ARGUMENT`: the whole request cannot be decoded; dropped.
    Invalid,
    /// Items rejected individually in an OTLP partial success; dropped.
    Rejected,
    /// The buffer passed `export.buffer_max_bytes`: its oldest records were dropped.
    BufferFull,
    /// A buffered record the agent itself cannot decode (unknown signal tag, bad protobuf).
    Undecodable,
    /// Any other answer (e.g. HTTP 415, gRPC `FAILED_PRECONDITION`): kept and retried.
    Other,
}

/// What the sender does with a request after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Keep it and try again after a backoff.
    Retry,
    /// Split it in two halves by bytes and send those.
    Split,
    /// Drop it (and count its items).
    Drop,
}

impl Reason {
    /// Every reason, in label order.
    pub const ALL: [Reason; 13] = [
        Reason::Unauthorized,
        Reason::Forbidden,
        Reason::NotFound,
        Reason::Timeout,
        Reason::Throttled,
        Reason::Unavailable,
        Reason::ServerError,
        Reason::TooLarge,
        Reason::Invalid,
        Reason::Rejected,
        Reason::BufferFull,
        Reason::Undecodable,
        Reason::Other,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unauthorized => "unauthorized",
            Reason::Forbidden => "forbidden",
            Reason::NotFound => "not_found",
            Reason::Timeout => "timeout",
            Reason::Throttled => "throttled",
            Reason::Unavailable => "unavailable",
            Reason::ServerError => "server_error",
            Reason::TooLarge => "too_large",
            Reason::Invalid => "invalid",
            Reason::Rejected => "rejected",
            Reason::BufferFull => "buffer_full",
            Reason::Undecodable => "undecodable",
            Reason::Other => "other",
        }
    }

    /// What to do with a request that failed for this reason.
    pub fn fate(self) -> Fate {
        match self {
            Reason::TooLarge => Fate::Split,
            Reason::Invalid | Reason::Rejected | Reason::Undecodable => Fate::Drop,
            _ => Fate::Retry,
        }
    }

    /// Whether a person has to act (token, scope, endpoint): logged as an error, not a warning.
    pub fn needs_an_operator(self) -> bool {
        matches!(
            self,
            Reason::Unauthorized | Reason::Forbidden | Reason::NotFound | Reason::Other
        )
    }

    /// The reason of an HTTP error status (not 2xx).
    pub fn of_http_status(status: u16) -> Reason {
        match status {
            400 => Reason::Invalid,
            401 => Reason::Unauthorized,
            403 => Reason::Forbidden,
            404 => Reason::NotFound,
            408 | 504 => Reason::Timeout,
            413 => Reason::TooLarge,
            429 => Reason::Throttled,
            502 | 503 => Reason::Unavailable,
            500..=599 => Reason::ServerError,
            _ => Reason::Other,
        }
    }

    /// The reason of a gRPC status. `has_retry_info` says whether the server asked for a
    /// delay; `message` is the status message. Didban's collector (like grpc-go servers)
    /// answers a message over its size limit with `RESOURCE_EXHAUSTED` and no `RetryInfo`;
    /// tonic servers answer `OUT_OF_RANGE` "message length too large".
    pub fn of_grpc(code: tonic::Code, has_retry_info: bool, message: &str) -> Reason {
        use tonic::Code;
        let says_too_large = message.contains("too large") || message.contains("larger than");
        match code {
            Code::Unauthenticated => Reason::Unauthorized,
            Code::PermissionDenied => Reason::Forbidden,
            Code::NotFound | Code::Unimplemented => Reason::NotFound,
            Code::DeadlineExceeded => Reason::Timeout,
            Code::ResourceExhausted | Code::OutOfRange if !has_retry_info && says_too_large => {
                Reason::TooLarge
            }
            Code::ResourceExhausted => Reason::Throttled,
            Code::Unavailable | Code::Cancelled | Code::Aborted => Reason::Unavailable,
            Code::Internal | Code::Unknown | Code::DataLoss => Reason::ServerError,
            Code::InvalidArgument => Reason::Invalid,
            _ => Reason::Other,
        }
    }
}

/// One counter per [`Reason`], shared between tasks.
#[derive(Debug, Default)]
pub struct ReasonCounters([AtomicU64; Reason::ALL.len()]);

impl ReasonCounters {
    /// Adds `n` to the counter of `reason`.
    pub fn add(&self, reason: Reason, n: u64) {
        if let Some(c) = self.0.get(reason as usize) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The current values.
    pub fn snapshot(&self) -> ReasonCounts {
        let mut out = [0u64; Reason::ALL.len()];
        for (slot, c) in out.iter_mut().zip(self.0.iter()) {
            *slot = c.load(Ordering::Relaxed);
        }
        ReasonCounts(out)
    }
}

/// A snapshot of [`ReasonCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasonCounts([u64; Reason::ALL.len()]);

impl ReasonCounts {
    /// The count of `reason`.
    pub fn get(&self, reason: Reason) -> u64 {
        self.0.get(reason as usize).copied().unwrap_or(0)
    }

    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(reason, count)` for every reason with a count above zero.
    pub fn nonzero(&self) -> Vec<(Reason, u64)> {
        let mut out = Vec::new();
        for r in Reason::ALL {
            let n = self.get(r);
            if n > 0 {
                out.push((r, n));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_undecodable_and_rejected_data_is_dropped() {
        for status in [401, 403, 404, 408, 429, 500, 502, 503, 504, 415] {
            assert_eq!(Reason::of_http_status(status).fate(), Fate::Retry, "{status}");
        }
        assert_eq!(Reason::of_http_status(413).fate(), Fate::Split);
        assert_eq!(Reason::of_http_status(400).fate(), Fate::Drop);
        assert_eq!(Reason::Rejected.fate(), Fate::Drop);
    }

    #[test]
    fn grpc_size_refusals_split_and_back_pressure_retries() {
        use tonic::Code;
        let tonic_msg = "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes";
        assert_eq!(
            Reason::of_grpc(Code::ResourceExhausted, false, tonic_msg),
            Reason::TooLarge
        );
        assert_eq!(
            Reason::of_grpc(Code::OutOfRange, false, tonic_msg),
            Reason::TooLarge
        );
        assert_eq!(
            Reason::of_grpc(
                Code::ResourceExhausted,
                false,
                "grpc: received message larger than max (9 vs. 4)"
            ),
            Reason::TooLarge
        );
        assert_eq!(
            Reason::of_grpc(Code::ResourceExhausted, true, "head full"),
            Reason::Throttled
        );
        assert_eq!(
            Reason::of_grpc(Code::ResourceExhausted, false, "quota"),
            Reason::Throttled
        );
        assert_eq!(
            Reason::of_grpc(Code::Unauthenticated, false, ""),
            Reason::Unauthorized
        );
        assert_eq!(Reason::of_grpc(Code::InvalidArgument, false, ""), Reason::Invalid);
        assert_eq!(Reason::of_grpc(Code::Internal, false, "").fate(), Fate::Retry);
    }

    #[test]
    fn counters_by_reason() {
        let c = ReasonCounters::default();
        c.add(Reason::Unauthorized, 2);
        c.add(Reason::Other, 1);
        let s = c.snapshot();
        assert_eq!(s.get(Reason::Unauthorized), 2);
        assert_eq!(s.total(), 3);
        assert_eq!(s.nonzero(), vec![(Reason::Unauthorized, 2), (Reason::Other, 1)]);
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "ALL is in declaration order");
        }
    }
}
