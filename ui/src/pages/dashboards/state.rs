//! A dashboard page's view state: what its URL asks for ([`ViewParams`]) and what is resolved
//! from it once for every panel of one render ([`Prepared`]: time range, refresh, variables).

use std::collections::BTreeMap;

use crate::dashboard::vars::{self, ResolvedVar, Scope};
use crate::dashboard::Dashboard;
use crate::pages::pagefmt::now_ms;
use crate::timerange::TimeRange;
use crate::UiContext;

/// Decodes a query string into its pairs (repeated keys kept).
pub(super) fn pairs(query: Option<&str>) -> Result<Vec<(String, String)>, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
        .map_err(|e| format!("bad query string: {e}"))
}

/// The view state of a dashboard page, as in its URL.
#[derive(Debug, Clone, Default)]
pub(crate) struct ViewParams {
    /// `from`, as given.
    from: Option<String>,
    /// `to`, as given.
    to: Option<String>,
    /// `refresh`, as given.
    refresh: Option<String>,
    /// `var-<name>` values by variable name.
    vars: BTreeMap<String, Vec<String>>,
}

impl ViewParams {
    /// Reads the view state from a query string.
    pub(super) fn parse(query: Option<&str>) -> Result<ViewParams, String> {
        let mut p = ViewParams::default();
        for (k, v) in pairs(query)? {
            match k.as_str() {
                "from" => p.from = Some(v),
                "to" => p.to = Some(v),
                "refresh" => p.refresh = Some(v),
                _ => {
                    if let Some(name) = k.strip_prefix("var-") {
                        p.vars.entry(name.to_string()).or_default().push(v);
                    }
                }
            }
        }
        Ok(p)
    }
}

/// Everything a panel needs that is shared by all panels of one render.
pub(crate) struct Prepared {
    /// The dashboard shown.
    pub(super) dashboard: Dashboard,
    /// The time range shown.
    pub(super) range: TimeRange,
    /// Variable values and built-ins, for interpolating queries.
    pub(super) scope: Scope,
    /// The variables with their options and selected values.
    pub(super) vars: Vec<ResolvedVar>,
    /// Auto-refresh period in seconds (0 = off).
    pub(super) refresh_seconds: i64,
    /// The refresh text as in the URL (`off`, `30s`).
    pub(super) refresh: String,
    /// The canonical query string of this view (time, refresh, variables).
    pub(super) query: String,
}

/// Resolves time range, refresh and variables for `dash` from the URL.
pub(super) async fn prepare(
    ctx: &UiContext,
    dash: Dashboard,
    params: &ViewParams,
) -> Result<Prepared, String> {
    let range = TimeRange::parse(
        Some(params.from.as_deref().unwrap_or(&dash.time.from)),
        Some(params.to.as_deref().unwrap_or(&dash.time.to)),
        now_ms(),
    )
    .map_err(|e| e.to_string())?;
    let refresh = params
        .refresh
        .clone()
        .or_else(|| dash.refresh.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "off".to_string());
    let refresh_seconds = if refresh == "off" {
        0
    } else {
        let ms = vars::duration_ms(&refresh).ok_or_else(|| format!("invalid refresh {refresh:?}"))?;
        (ms / 1000).max(1)
    };
    let mut scope = Scope::with_builtins(range.duration_ms(), range.step_ms(1000));
    let resolved = vars::resolve(
        ctx,
        &dash.variables,
        &params.vars,
        (range.start_ms, range.end_ms),
        &mut scope,
    )
    .await;
    let mut q: Vec<(String, String)> = vec![
        ("from".into(), range.from.clone()),
        ("to".into(), range.to.clone()),
    ];
    if params.refresh.is_some() {
        q.push(("refresh".into(), refresh.clone()));
    }
    for v in &resolved {
        if v.def.kind == crate::dashboard::VariableKind::Constant {
            continue;
        }
        for s in &v.selected {
            q.push((format!("var-{}", v.def.name), s.clone()));
        }
    }
    let query = serde_urlencoded::to_string(&q).unwrap_or_default();
    Ok(Prepared {
        dashboard: dash,
        range,
        scope,
        vars: resolved,
        refresh_seconds,
        refresh,
        query,
    })
}
