//! Per-request options of `/api/v1/query` and `/api/v1/query_range` beyond the query and
//! its times, as Prometheus 3 accepts them: `lookback_delta` (this query's lookback instead
//! of `query.lookback_delta`) and `limit` (at most this many series in the answer, with a
//! warning when some were cut), and Thanos' `max_source_resolution` (`0s`/`raw` reads raw
//! data only, `5m` or `1h` caps the downsampled resolution, `auto` or absent: whatever
//! fits, docs/promql.md#downsampled-data). `timeout` is in `prom.rs`, with the admission
//! deadline.

use std::borrow::Cow;
use std::time::Duration;

use didban_store::promql::{Engine, QueryResult, Value};

use super::params::{parse_duration_ms, Params};
use super::response::ApiError;

/// The warning a response carries when `limit` cut its series (Prometheus' words).
pub const TRUNCATED: &str = "results truncated due to limit";

/// `lookback_delta` and `limit` of one query request.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueryOptions {
    /// This query's lookback; `None` keeps the engine's.
    pub lookback: Option<Duration>,
    /// Most series returned; `None` for all.
    pub limit: Option<usize>,
    /// Coarsest downsampled data to read; `None` keeps the engine's (any that fits).
    pub max_source_resolution: Option<Duration>,
}

impl QueryOptions {
    /// Reads both parameters; absent, empty or `0` means "not set".
    pub fn from_params(p: &Params) -> Result<QueryOptions, ApiError> {
        let lookback = match p.get("lookback_delta").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => {
                let ms = parse_duration_ms(v)
                    .map_err(|e| ApiError::bad_data(format!("invalid parameter \"lookback_delta\": {e}")))?;
                match u64::try_from(ms) {
                    Ok(0) => None,
                    Ok(ms) => Some(Duration::from_millis(ms)),
                    Err(_) => {
                        return Err(ApiError::bad_data(format!(
                            "invalid parameter \"lookback_delta\": {v:?} must not be negative"
                        )))
                    }
                }
            }
        };
        let max_source_resolution = match p.get("max_source_resolution").filter(|v| !v.is_empty()) {
            None | Some("auto") => None,
            Some("raw") => Some(Duration::ZERO),
            Some(v) => {
                let ms = parse_duration_ms(v).map_err(|e| {
                    ApiError::bad_data(format!("invalid parameter \"max_source_resolution\": {e}"))
                })?;
                match u64::try_from(ms) {
                    Ok(ms) => Some(Duration::from_millis(ms)),
                    Err(_) => {
                        return Err(ApiError::bad_data(format!(
                            "invalid parameter \"max_source_resolution\": {v:?} must not be negative"
                        )))
                    }
                }
            }
        };
        let limit = match p.get("limit").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => match v.parse::<usize>() {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(_) => {
                    return Err(ApiError::bad_data(format!(
                        "invalid parameter \"limit\": {v:?} must be a non-negative integer"
                    )))
                }
            },
        };
        Ok(QueryOptions {
            lookback,
            limit,
            max_source_resolution,
        })
    }

    /// The engine to evaluate with: `base`, or a copy with this query's lookback and
    /// resolution cap.
    pub fn engine<'a>(&self, base: &'a Engine) -> Cow<'a, Engine> {
        if self.lookback.is_none() && self.max_source_resolution.is_none() {
            return Cow::Borrowed(base);
        }
        let mut opts = base.options().clone();
        if let Some(lookback) = self.lookback {
            opts.lookback_delta = lookback;
        }
        if let Some(r) = self.max_source_resolution {
            opts.max_source_resolution = Some(r);
        }
        Cow::Owned(base.with_options(opts))
    }

    /// Cuts a vector or matrix to `limit` series (scalars and strings are left alone);
    /// returns the warnings to answer with.
    pub fn truncate(&self, result: &mut QueryResult) -> Vec<String> {
        let Some(limit) = self.limit else {
            return Vec::new();
        };
        let cut = match &mut result.value {
            Value::Vector(v) if v.len() > limit => {
                v.truncate(limit);
                true
            }
            Value::Matrix(m) if m.len() > limit => {
                m.truncate(limit);
                true
            }
            _ => false,
        };
        if cut {
            vec![TRUNCATED.to_string()]
        } else {
            Vec::new()
        }
    }
}

/// The first `limit` items of a sorted list, and the truncation warning when some were
/// cut (series, label names and label values).
pub fn take_limit<T>(mut items: Vec<T>, limit: usize) -> (Vec<T>, Vec<String>) {
    if items.len() > limit {
        items.truncate(limit);
        (items, vec![TRUNCATED.to_string()])
    } else {
        (items, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use didban_store::promql::EngineOptions;

    #[test]
    fn parameters_parse_and_zero_means_unset() {
        let p = Params::from_parts(Some("lookback_delta=30s&limit=2"), None).unwrap();
        let o = QueryOptions::from_params(&p).unwrap();
        assert_eq!(o.lookback, Some(Duration::from_secs(30)));
        assert_eq!(o.limit, Some(2));
        let p = Params::from_parts(Some("lookback_delta=0&limit=0"), None).unwrap();
        let o = QueryOptions::from_params(&p).unwrap();
        assert_eq!((o.lookback, o.limit), (None, None));
        for bad in ["lookback_delta=-1s", "lookback_delta=soon", "limit=-1", "limit=x"] {
            let p = Params::from_parts(Some(bad), None).unwrap();
            let e = QueryOptions::from_params(&p).unwrap_err();
            assert_eq!(e.error_type, "bad_data", "{bad}");
        }
    }

    #[test]
    fn max_source_resolution_forces_raw_or_caps_the_resolution() {
        let res = |q: &str| {
            let p = Params::from_parts(Some(q), None).unwrap();
            QueryOptions::from_params(&p).map(|o| o.max_source_resolution)
        };
        assert_eq!(res("max_source_resolution=0s").unwrap(), Some(Duration::ZERO));
        assert_eq!(res("max_source_resolution=raw").unwrap(), Some(Duration::ZERO));
        assert_eq!(
            res("max_source_resolution=5m").unwrap(),
            Some(Duration::from_secs(300))
        );
        assert_eq!(res("max_source_resolution=auto").unwrap(), None);
        assert_eq!(res("x=1").unwrap(), None);
        for bad in ["max_source_resolution=-5m", "max_source_resolution=fine"] {
            let e = res(bad).unwrap_err();
            assert!(
                e.error_type == "bad_data" && e.message.contains("max_source_resolution"),
                "{bad}"
            );
        }
        let base = Engine::new(EngineOptions::default());
        let p = Params::from_parts(Some("max_source_resolution=0s"), None).unwrap();
        let o = QueryOptions::from_params(&p).unwrap();
        assert_eq!(
            o.engine(&base).options().max_source_resolution,
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn take_limit_warns_only_when_it_cuts() {
        assert_eq!(
            take_limit(vec![1, 2, 3], 2),
            (vec![1, 2], vec![TRUNCATED.to_string()])
        );
        assert_eq!(take_limit(vec![1, 2], 2), (vec![1, 2], Vec::<String>::new()));
    }
}
