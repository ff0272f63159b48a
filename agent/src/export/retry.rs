//! When to retry an export and how long to wait: exponential backoff with jitter, overridden
//! by the server's `Retry-After` (HTTP header, gRPC `retry-after` metadata or a
//! `google.rpc.RetryInfo` status detail).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::export::reason::Reason;

/// Outcome of a failed export attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct SendFailure {
    /// Why it failed, which decides whether the request is retried, split or dropped.
    pub reason: Reason,
    /// How long the server asked us to wait, if it said.
    pub retry_after: Option<Duration>,
    /// Human-readable reason for the log.
    pub message: String,
}

/// Exponential backoff: `initial`, doubling, capped at `max`, with ±20 % jitter; a server's
/// `Retry-After` replaces it, capped at `retry_after_max` (a server asking for a day of
/// silence does not stall the agent for a day).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    retry_after_max: Duration,
    current: Duration,
}

impl Backoff {
    /// A backoff starting at `initial` and never waiting more than `max` on its own, nor more
    /// than `retry_after_max` when the server names the wait.
    pub fn new(initial: Duration, max: Duration, retry_after_max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            retry_after_max,
            current: initial,
        }
    }

    /// Forgets past failures (after a success).
    pub fn reset(&mut self) {
        self.current = self.initial;
    }

    /// The wait before the next attempt. A server-given `retry_after` wins when present.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        if let Some(wait) = retry_after {
            return wait.min(self.retry_after_max);
        }
        jitter(base)
    }
}

fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    // Factor in [0.8, 1.2).
    let factor = 0.8 + f64::from(nanos % 1000) / 2500.0;
    d.mul_f64(factor)
}

/// Parses an HTTP `Retry-After` value: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs));
        }
    }
    let date = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let now = chrono::Utc::now();
    let delta = date.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// `google.rpc.Status` as carried in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<RpcAny>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RpcAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// The server's requested delay in a gRPC status: `retry-after` metadata or `RetryInfo`.
pub fn grpc_retry_after(status: &tonic::Status) -> Option<Duration> {
    if let Some(v) = status.metadata().get("retry-after") {
        if let Some(d) = v.to_str().ok().and_then(parse_retry_after) {
            return Some(d);
        }
    }
    let details: RpcStatus = prost::Message::decode(status.details()).ok()?;
    for any in details.details {
        if any.type_url.ends_with("google.rpc.RetryInfo") {
            let info: RetryInfo = prost::Message::decode(any.value.as_slice()).ok()?;
            let d = info.retry_delay?;
            let secs = u64::try_from(d.seconds).ok()?;
            let nanos = u32::try_from(d.nanos).unwrap_or(0);
            return Some(Duration::new(secs, nanos));
        }
    }
    None
}

/// Encodes a `RetryInfo` status detail; used by tests that play an overloaded collector.
pub fn encode_retry_info_details(code: tonic::Code, delay: Duration) -> Vec<u8> {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    };
    let status = RpcStatus {
        code: code as i32,
        message: String::new(),
        details: vec![RpcAny {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".to_string(),
            value: prost::Message::encode_to_vec(&info),
        }],
    };
    prost::Message::encode_to_vec(&status)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(4),
            Duration::from_secs(60),
        );
        let d: Vec<f64> = (0..5).map(|_| b.next_delay(None).as_secs_f64()).collect();
        assert!((0.8..1.2).contains(&d[0]));
        assert!((1.6..2.4).contains(&d[1]));
        assert!((3.2..4.8).contains(&d[2]));
        assert!((3.2..4.8).contains(&d[4]));
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(86_400))),
            Duration::from_secs(60),
            "Retry-After is capped at retry_after_max"
        );
        b.reset();
        assert!(b.next_delay(None) < Duration::from_millis(1200));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn grpc_retry_info_round_trip() {
        let details = encode_retry_info_details(tonic::Code::Unavailable, Duration::from_millis(1500));
        let status = tonic::Status::with_details(tonic::Code::Unavailable, "busy", details.into());
        assert_eq!(grpc_retry_after(&status), Some(Duration::from_millis(1500)));
        let mut plain = tonic::Status::unavailable("x");
        plain.metadata_mut().insert("retry-after", "3".parse().unwrap());
        assert_eq!(grpc_retry_after(&plain), Some(Duration::from_secs(3)));
    }
}
