//! The body of `POST /internal/v1/heads`, a querier's request of an ingester's heads:
//! matchers and a time range as JSON (the answer is the store's series exchange bytes,
//! `didban_store::metrics::exchange`); label matchers as every internal request carries
//! them; and the bearer check every internal route makes.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use didban_store::{LabelMatcher, MatchOp};
use serde::{Deserialize, Serialize};

/// The path of the internal heads API.
pub const HEADS_PATH: &str = "/internal/v1/heads";

/// Media type of the answer.
pub const SERIES_MEDIA_TYPE: &str = "application/x-didban-series";

/// One label matcher on the wire (`op`: `=`, `!=`, `=~`, `!~`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireMatcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: String,
    /// Value or regex.
    pub value: String,
}

/// What a querier asks an ingester for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadsRequest {
    /// Series matching all of these.
    pub matchers: Vec<WireMatcher>,
    /// Samples from this time (ms, inclusive).
    pub start_ms: i64,
    /// Samples up to this time (ms, inclusive).
    pub end_ms: i64,
}

impl HeadsRequest {
    /// The request for `matchers` over `[start_ms, end_ms]`.
    pub fn new(matchers: &[LabelMatcher], start_ms: i64, end_ms: i64) -> HeadsRequest {
        HeadsRequest {
            matchers: to_wire(matchers),
            start_ms,
            end_ms,
        }
    }

    /// The matchers, compiled; the error names the bad one.
    pub fn matchers(&self) -> Result<Vec<LabelMatcher>, String> {
        compile(&self.matchers)
    }
}

/// `matchers` as they travel (every internal request with matchers uses this form).
pub fn to_wire(matchers: &[LabelMatcher]) -> Vec<WireMatcher> {
    let mut wire = Vec::with_capacity(matchers.len());
    for m in matchers {
        let op = match m.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        };
        wire.push(WireMatcher {
            name: m.name.clone(),
            op: op.to_string(),
            value: m.value.clone(),
        });
    }
    wire
}

/// Matchers off the wire, compiled; the error names the bad one.
pub fn compile(wire: &[WireMatcher]) -> Result<Vec<LabelMatcher>, String> {
    let mut out = Vec::with_capacity(wire.len());
    for m in wire {
        let op = match m.op.as_str() {
            "=" => MatchOp::Equal,
            "!=" => MatchOp::NotEqual,
            "=~" => MatchOp::RegexMatch,
            "!~" => MatchOp::RegexNoMatch,
            other => return Err(format!("matcher on {:?}: unknown operator {other:?}", m.name)),
        };
        out.push(
            LabelMatcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| format!("matcher on {:?}: {e}", m.name))?,
        );
    }
    Ok(out)
}

/// `None` when the request carries the cluster secret as bearer token, else the 401 to
/// answer with.
pub(crate) fn refuse_without_secret(headers: &HeaderMap, secret: &str) -> Option<Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let authorized = token.is_some_and(|t| didban_auth::secret::constant_time_eq(t, secret));
    if authorized {
        return None;
    }
    Some(
        (
            StatusCode::UNAUTHORIZED,
            "the internal API needs the cluster secret as bearer token\n",
        )
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn matchers_round_trip_and_bad_ones_are_named() {
        let ms = vec![
            LabelMatcher::new(MatchOp::Equal, "__name__", "up").unwrap(),
            LabelMatcher::new(MatchOp::NotEqual, "job", "x").unwrap(),
            LabelMatcher::new(MatchOp::RegexMatch, "instance", "a.*").unwrap(),
            LabelMatcher::new(MatchOp::RegexNoMatch, "env", "dev|test").unwrap(),
        ];
        let req = HeadsRequest::new(&ms, 1, 2);
        let back: HeadsRequest = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        let again = back.matchers().unwrap();
        for (a, b) in ms.iter().zip(&again) {
            assert_eq!((&a.name, a.op, &a.value), (&b.name, b.op, &b.value));
        }
        let mut bad = req.clone();
        bad.matchers[0].op = "~=".into();
        assert!(bad.matchers().unwrap_err().contains("\"~=\""));
        let mut bad = req;
        bad.matchers[2].value = "(".into();
        assert!(bad.matchers().unwrap_err().contains("instance"));
    }
}
