//! The bodies of a querier's requests of an ingester's heads as JSON: `POST
//! /internal/v1/heads`, matchers and a time range (the answer is the store's series
//! exchange bytes, `didban_store::metrics::exchange`), and `POST /internal/v1/heads/batch`,
//! every read of one query (the answer is one such series set per read, in order); label
//! matchers as every internal request carries them; and the bearer check every internal
//! route makes.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use didban_store::{LabelMatcher, MatchOp, PlannedRead};
use serde::{Deserialize, Serialize};

/// The path of the internal heads API.
pub const HEADS_PATH: &str = "/internal/v1/heads";

/// The path of the internal heads API for all reads of one query at once.
pub const HEADS_BATCH_PATH: &str = "/internal/v1/heads/batch";

/// Media type of the answer of [`HEADS_PATH`].
pub const SERIES_MEDIA_TYPE: &str = "application/x-didban-series";

/// Media type of the answer of [`HEADS_BATCH_PATH`]: one series set per read
/// (`exchange::encode_series_sets`).
pub const SERIES_SETS_MEDIA_TYPE: &str = "application/x-didban-series-sets";

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

    /// The read asked for, checked: at least one matcher, each valid, and start <= end;
    /// the error names what is wrong.
    pub fn read(&self) -> Result<PlannedRead, String> {
        let matchers = self.matchers()?;
        if matchers.is_empty() || self.end_ms < self.start_ms {
            return Err(format!(
                "needs a matcher and start <= end ({} > {})",
                self.start_ms, self.end_ms
            ));
        }
        Ok(PlannedRead {
            matchers,
            start_ms: self.start_ms,
            end_ms: self.end_ms,
        })
    }
}

/// What a querier asks an ingester for on behalf of one query: every read the query is
/// going to make, answered in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadsBatchRequest {
    /// The reads.
    pub reads: Vec<HeadsRequest>,
}

impl HeadsBatchRequest {
    /// The request for `reads`.
    pub fn new(reads: &[PlannedRead]) -> HeadsBatchRequest {
        let mut wire = Vec::with_capacity(reads.len());
        for r in reads {
            wire.push(HeadsRequest::new(&r.matchers, r.start_ms, r.end_ms));
        }
        HeadsBatchRequest { reads: wire }
    }

    /// The reads asked for, each checked as [`HeadsRequest::read`]; the error names the
    /// first bad one by its position.
    pub fn reads(&self) -> Result<Vec<PlannedRead>, String> {
        if self.reads.is_empty() {
            return Err("needs at least one read".to_string());
        }
        let mut out = Vec::with_capacity(self.reads.len());
        for (i, r) in self.reads.iter().enumerate() {
            out.push(r.read().map_err(|e| format!("read {i}: {e}"))?);
        }
        Ok(out)
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

    #[test]
    fn a_batch_carries_every_read_in_order_and_names_a_bad_one() {
        let reads = vec![
            PlannedRead {
                matchers: vec![LabelMatcher::equal("__name__", "up")],
                start_ms: 1,
                end_ms: 2,
            },
            PlannedRead {
                matchers: vec![LabelMatcher::new(MatchOp::RegexMatch, "job", "a|b").unwrap()],
                start_ms: -5,
                end_ms: 7,
            },
        ];
        let json = serde_json::to_string(&HeadsBatchRequest::new(&reads)).unwrap();
        let back: HeadsBatchRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back.reads().unwrap(), reads);

        let mut backwards = back.clone();
        backwards.reads[1].end_ms = -6;
        assert_eq!(
            backwards.reads().unwrap_err(),
            "read 1: needs a matcher and start <= end (-5 > -6)"
        );
        let mut unmatched = back;
        unmatched.reads[0].matchers.clear();
        assert!(unmatched
            .reads()
            .unwrap_err()
            .starts_with("read 0: needs a matcher"));
        let none = HeadsBatchRequest { reads: Vec::new() };
        assert_eq!(none.reads().unwrap_err(), "needs at least one read");
    }
}
