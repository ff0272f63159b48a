//! Exemplar dots: an exemplar (a sample's pointer to a trace) as a chart draws it, and the
//! bound on how many one chart draws ([`MAX_EXEMPLAR_DOTS`], more thinned evenly over
//! time). The time series chart draws each as an SVG circle at its time and value, wrapped
//! in a link to its trace's page (`/traces/<trace_id>`), with a `<title>` tooltip naming
//! the trace and the value.

use didban_store::traces::is_valid_hex_id;

/// Most exemplar dots one chart draws.
pub const MAX_EXEMPLAR_DOTS: usize = 200;

/// One exemplar to draw: when, the observed value, and the trace it opens.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarDot {
    /// Milliseconds since the epoch.
    pub t_ms: i64,
    /// The observed value (in the chart's unit).
    pub value: f64,
    /// The trace id: 32 lower-case hex digits, safe in a URL path.
    pub trace_id: String,
}

impl ExemplarDot {
    /// A dot for an exemplar of trace `trace_id`; `None` unless the id is a stored trace id
    /// (32 lower-case hex digits, not all zero: see `normalize_trace_id` of the trace page)
    /// and the value is finite, so that every dot has a trace page to open, a URL that needs
    /// no escaping, and a place on the chart.
    pub fn new(t_ms: i64, value: f64, trace_id: &str) -> Option<ExemplarDot> {
        (is_valid_hex_id(trace_id, 32) && value.is_finite()).then(|| ExemplarDot {
            t_ms,
            value,
            trace_id: trace_id.to_string(),
        })
    }
}

/// `dots` in time order, at most `max` of them: when there are more, every k-th in time
/// order (evenly spread, the first and the last kept).
pub fn thin_exemplars(mut dots: Vec<ExemplarDot>, max: usize) -> Vec<ExemplarDot> {
    dots.sort_by(|a, b| a.t_ms.cmp(&b.t_ms).then(a.trace_id.cmp(&b.trace_id)));
    let n = dots.len();
    if n <= max {
        return dots;
    }
    if max <= 1 {
        dots.truncate(max);
        return dots;
    }
    let mut out = Vec::with_capacity(max);
    for i in 0..max {
        // spread max picks over 0..=n-1
        let at = i * (n - 1) / (max - 1);
        out.push(dots[at].clone());
    }
    out
}
