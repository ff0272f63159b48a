//! Prometheus API response shapes: the `{"status": ..., "data": ...}` envelope, errors with
//! `errorType`, and the JSON forms of vectors, matrices and scalars.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use didban_store::{FloatHistogram, Labels, SeriesSamples};
use serde_json::{json, Map, Value as Json_};

use crate::cluster::reader::IngesterError;

/// An API error with Prometheus' `errorType` and HTTP status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (overload answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A client mistake: 400 `bad_data`.
    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error_type: "bad_data",
            message: message.into(),
            retry_after: None,
        }
    }

    /// A query that parsed but could not be evaluated: 422 `execution`.
    pub fn execution(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error_type: "execution",
            message: message.into(),
            retry_after: None,
        }
    }

    /// A query that ran out of time: 503 `timeout`.
    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error_type: "timeout",
            message: message.into(),
            retry_after: None,
        }
    }

    /// A query refused for its shape (nested too deep): 422 `bad_data`, so clients see it is
    /// the query, not the data, and that retrying will not help.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error_type: "bad_data",
            message: message.into(),
            retry_after: None,
        }
    }

    /// Part of the cluster did not answer (an ingester, named in `message`): 503
    /// `unavailable`, without `Retry-After` (nobody knows when it comes back).
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error_type: "unavailable",
            message: message.into(),
            retry_after: None,
        }
    }

    /// Too many queries at once: 503 `unavailable` with `Retry-After`.
    pub fn overloaded(message: impl Into<String>, retry_after_secs: u64) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error_type: "unavailable",
            message: message.into(),
            retry_after: Some(retry_after_secs),
        }
    }

    /// The client went away before the answer: 499 `canceled` (nobody reads it; for logs).
    pub fn canceled(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(499).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            error_type: "canceled",
            message: message.into(),
            retry_after: None,
        }
    }

    /// Our fault: 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_type: "internal",
            message: message.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "status": "error",
            "errorType": self.error_type,
            "error": self.message,
        });
        let mut r = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        r
    }
}

/// `{"status":"success","data":data}`, with optional warnings.
pub fn success(data: Json_, warnings: &[String]) -> Response {
    success_annotated(data, warnings, &[])
}

/// A success with Prometheus 3's annotations: `warnings` and `infos` arrays, each left out
/// when empty.
pub fn success_annotated(data: Json_, warnings: &[String], infos: &[String]) -> Response {
    let mut body = Map::new();
    body.insert("status".into(), Json_::from("success"));
    body.insert("data".into(), data);
    if !warnings.is_empty() {
        body.insert("warnings".into(), json!(warnings));
    }
    if !infos.is_empty() {
        body.insert("infos".into(), json!(infos));
    }
    Json(Json_::Object(body)).into_response()
}

/// Labels as a JSON object.
pub fn labels_json(labels: &Labels) -> Json_ {
    let mut m = Map::new();
    for l in labels.iter() {
        m.insert(l.name.to_string(), Json_::from(l.value.to_string()));
    }
    Json_::Object(m)
}

/// A sample as Prometheus encodes it: `[<unix seconds>, "<value>"]`.
pub fn point_json(t_ms: i64, v: f64) -> Json_ {
    json!([seconds(t_ms), format_float(v)])
}

/// A series with samples: `{"metric": {...}, "values": [[t, "v"], ...]}`.
pub fn series_json(s: &SeriesSamples) -> Json_ {
    let mut values = Vec::with_capacity(s.samples.len());
    for p in &s.samples {
        values.push(point_json(p.timestamp_ms, p.value));
    }
    if s.histograms.is_empty() {
        return json!({ "metric": labels_json(&s.labels), "values": values });
    }
    let mut histograms = Vec::with_capacity(s.histograms.len());
    for p in &s.histograms {
        histograms.push(histogram_point_json(p.timestamp_ms, &p.h));
    }
    // As Prometheus: a series of only histograms has no `values` key.
    if values.is_empty() {
        return json!({ "metric": labels_json(&s.labels), "histograms": histograms });
    }
    json!({ "metric": labels_json(&s.labels), "values": values, "histograms": histograms })
}

/// A native histogram point in Prometheus' JSON shape: `[ts, {"count": "…", "sum": "…",
/// "buckets": [[boundary_rule, "lower", "upper", "count"], …]}]`, buckets in ascending
/// order, empty ones left out (and `buckets` itself when none is left). Boundary rules: 0 =
/// (lower, upper], 1 = [lower, upper), 3 = [lower, upper] (the zero bucket).
pub fn histogram_point_json(t_ms: i64, h: &FloatHistogram) -> Json_ {
    let mut buckets = Vec::new();
    for b in h.buckets() {
        if b.count == 0.0 {
            continue;
        }
        buckets.push(json!([
            b.boundary_rule(),
            format_float(b.lower),
            format_float(b.upper),
            format_float(b.count)
        ]));
    }
    let mut body = json!({"count": format_float(h.count), "sum": format_float(h.sum)});
    if !buckets.is_empty() {
        if let Some(obj) = body.as_object_mut() {
            obj.insert("buckets".to_string(), Json_::Array(buckets));
        }
    }
    json!([seconds(t_ms), body])
}

/// Milliseconds as fractional Unix seconds.
pub fn seconds(t_ms: i64) -> Json_ {
    if t_ms % 1000 == 0 {
        Json_::from(t_ms / 1000)
    } else {
        serde_json::Number::from_f64(t_ms as f64 / 1000.0)
            .map(Json_::Number)
            .unwrap_or(Json_::Null)
    }
}

/// A float formatted the way Prometheus formats sample values.
pub fn format_float(v: f64) -> String {
    crate::selfmon::format_value(v)
}

/// A cluster read an ingester failed: 400 when it refused the request as invalid (the
/// request's fault), else 503 naming it.
impl From<IngesterError> for ApiError {
    fn from(e: IngesterError) -> Self {
        if e.rejected {
            ApiError::bad_data(e.message)
        } else {
            ApiError::unavailable(e.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_look_like_prometheus() {
        assert_eq!(
            point_json(1_435_781_451_781, 1.0).to_string(),
            r#"[1435781451.781,"1"]"#
        );
        assert_eq!(point_json(1_000, f64::INFINITY).to_string(), r#"[1,"+Inf"]"#);
        assert_eq!(point_json(1_500, 0.25).to_string(), r#"[1.5,"0.25"]"#);
        assert_eq!(format_float(f64::NAN), "NaN");
    }

    #[test]
    fn histograms_look_like_prometheus() {
        let mut h = FloatHistogram {
            schema: 0,
            zero_threshold: 0.001,
            zero_count: 2.0,
            count: 9.0,
            sum: 12.5,
            ..FloatHistogram::default()
        };
        h.set_positive(&[(0, 3.0), (1, 0.0), (2, 4.0)]);
        h.set_negative(&[(1, 0.5)]);
        assert_eq!(
            histogram_point_json(1_500, &h).to_string(),
            r#"[1.5,{"buckets":[[1,"-2","-1","0.5"],[3,"-0.001","0.001","2"],[0,"0.5","1","3"],[0,"2","4","4"]],"count":"9","sum":"12.5"}]"#
        );
        let empty = FloatHistogram::default();
        assert_eq!(
            histogram_point_json(2_000, &empty).to_string(),
            r#"[2,{"count":"0","sum":"0"}]"#
        );
        let series = SeriesSamples {
            labels: Labels::from_pairs([("__name__", "h")]),
            samples: Vec::new(),
            histograms: vec![didban_store::HistogramSample::new(1_000, empty)],
        };
        assert_eq!(
            series_json(&series).to_string(),
            r#"{"histograms":[[1,{"count":"0","sum":"0"}]],"metric":{"__name__":"h"}}"#
        );
    }
}
