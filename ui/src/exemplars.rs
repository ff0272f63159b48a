//! Exemplars for charts: the stored exemplars of the series a chart's queries select, in the
//! chart's time range, as dots that open their trace. The selection is the one
//! `/api/v1/query_exemplars` makes ([`Engine::selectors`]: every vector selector of the
//! query, not its evaluation), so a chart of
//! `histogram_quantile(0.95, sum(rate(x[5m])))` shows the exemplars of `x`. Only exemplars
//! with a trace id (`trace_id`, or Grafana's `traceID`) become dots, at most
//! [`MAX_EXEMPLAR_DOTS`] per chart.
//!
//! [`Engine::selectors`]: didban_store::promql::Engine::selectors

use crate::chart::{thin_exemplars, ExemplarDot, MAX_EXEMPLAR_DOTS};
use crate::pages::normalize_trace_id;
use crate::query::QueryError;
use crate::UiContext;

/// Exemplar labels that carry the trace id, in the order they are looked at.
pub const TRACE_ID_LABELS: [&str; 2] = ["trace_id", "traceID"];

impl UiContext {
    /// The dots of the exemplars of `exprs`' selectors in `[start_ms, end_ms]`, thinned
    /// evenly over time to [`MAX_EXEMPLAR_DOTS`]. A query that does not parse is an error
    /// naming it; queries without selectors add nothing.
    pub async fn exemplar_dots(
        &self,
        exprs: &[String],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<ExemplarDot>, QueryError> {
        let mut sets = Vec::new();
        for expr in exprs {
            sets.extend(self.engine.selectors(expr)?);
        }
        if sets.is_empty() {
            return Ok(Vec::new());
        }
        let store = self.exemplars.clone();
        let found = tokio::task::spawn_blocking(move || store.select(&sets, start_ms, end_ms))
            .await
            .map_err(|e| QueryError::Task(e.to_string()))?
            .map_err(|e| QueryError::Read(e.message))?;
        let mut dots = Vec::new();
        for series in found {
            for e in series.exemplars {
                // ids as the trace page reads them (any case, leading zeros optional)
                let id = TRACE_ID_LABELS
                    .iter()
                    .find_map(|name| e.labels.get(name))
                    .and_then(normalize_trace_id);
                if let Some(dot) = id.and_then(|id| ExemplarDot::new(e.timestamp_ms, e.value, &id)) {
                    dots.push(dot);
                }
            }
        }
        Ok(thin_exemplars(dots, MAX_EXEMPLAR_DOTS))
    }
}
