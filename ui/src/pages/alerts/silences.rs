//! Silences from the UI: the matcher syntax (`name="value"`, `=~`, `!=`, `!~`), the
//! create form (`GET /alerts/silences/new`, `POST /alerts/silences`) and expiry
//! (`POST /alerts/silences/{id}/expire`). Both POSTs need the editor role and the CSRF
//! token, and redirect back to `/alerts` when they succeed (Post/Redirect/Get).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use didban_alerting::notify::silence::{Silence, SilenceError, SilenceMatcher};
use didban_alerting::Alerting;
use didban_base::parse_duration;
use leptos::prelude::*;
use serde::Deserialize;

use crate::pages::error::error_page;
use crate::pages::pagefmt::{self, now_ms};
use crate::shell::{render_page, PageMeta, Section};
use crate::timerange::resolve;
use crate::viewer::CsrfField;
use crate::UiContext;
use didban_auth::{Role, Viewer};

/// Parses matchers written as in Alertmanager: `name="value"` pairs with `=`, `!=`, `=~`
/// or `!~`, separated by commas or new lines, optionally inside `{…}`. Values may be
/// unquoted when they hold no comma or space.
pub fn parse_matchers(text: &str) -> Result<Vec<SilenceMatcher>, String> {
    let mut t = text.trim();
    if let Some(inner) = t.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        t = inner;
    }
    let chars: Vec<char> = t.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_sep = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == ',') {
            *i += 1;
        }
    };
    skip_sep(&mut i);
    while i < chars.len() {
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        if name.is_empty() {
            let rest: String = chars[start..].iter().take(20).collect();
            return Err(format!("expected a label name at {rest:?}"));
        }
        while i < chars.len() && chars[i] == ' ' {
            i += 1;
        }
        let op: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let (is_equal, is_regex, len) = if op == "=~" {
            (true, true, 2)
        } else if op == "!=" {
            (false, false, 2)
        } else if op == "!~" {
            (false, true, 2)
        } else if op.starts_with('=') {
            (true, false, 1)
        } else {
            return Err(format!(
                "matcher {name:?}: expected =, !=, =~ or !~ after the label name"
            ));
        };
        i += len;
        while i < chars.len() && chars[i] == ' ' {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '"' {
            i += 1;
            let mut closed = false;
            while i < chars.len() {
                let c = chars[i];
                i += 1;
                match c {
                    '\\' if i < chars.len() => {
                        value.push(chars[i]);
                        i += 1;
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return Err(format!("matcher {name:?}: the quoted value has no closing quote"));
            }
        } else {
            while i < chars.len() && chars[i] != ',' && !chars[i].is_whitespace() {
                value.push(chars[i]);
                i += 1;
            }
        }
        out.push(SilenceMatcher {
            name,
            value,
            is_regex,
            is_equal,
        });
        let before = i;
        skip_sep(&mut i);
        if i < chars.len() && i == before {
            return Err(format!(
                "unexpected text after matcher: {:?}",
                chars[i..].iter().collect::<String>()
            ));
        }
    }
    if out.is_empty() {
        return Err("at least one matcher is needed, e.g. alertname=\"HighLatency\"".into());
    }
    Ok(out)
}

/// One matcher as `name="value"` (with its operator), quoting as [`parse_matchers`] reads.
pub fn format_matcher(m: &SilenceMatcher) -> String {
    let op = match (m.is_equal, m.is_regex) {
        (true, false) => "=",
        (true, true) => "=~",
        (false, false) => "!=",
        (false, true) => "!~",
    };
    let value = m.value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{}{op}\"{value}\"", m.name)
}

/// `name="value"` for a label (used by the Silence links of alerts).
pub fn equal_matcher(name: &str, value: &str) -> String {
    format_matcher(&SilenceMatcher {
        name: name.to_string(),
        value: value.to_string(),
        is_regex: false,
        is_equal: true,
    })
}

/// The create form's fields.
#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct SilenceForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
    #[serde(default)]
    matchers: String,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    ends: String,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

fn disabled() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Alerting is disabled",
        "The alert engine is not running on this server ([alerting] enabled = false).".into(),
    )
}

fn forbidden(what: &str) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not allowed",
        format!("{what} needs the editor role."),
    )
}

fn bad_csrf() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "The form's security token does not match your session; reload the page and try again.".into(),
    )
}

/// `GET /alerts/silences/new?matcher=…`: the form, prefilled with the matchers given.
pub(super) async fn new_form(
    State(ctx): State<UiContext>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Response {
    if ctx.alerting.is_none() {
        return disabled();
    }
    let pairs: Vec<(String, String)> = raw
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let matchers: Vec<String> = pairs
        .into_iter()
        .filter(|(k, _)| k == "matcher")
        .map(|(_, v)| v)
        .collect();
    let form = SilenceForm {
        matchers: matchers.join(", "),
        created_by: viewer.user.clone().unwrap_or_default(),
        duration: "2h".into(),
        ..SilenceForm::default()
    };
    form_page(&viewer, form, None, StatusCode::OK)
}

fn form_page(viewer: &Viewer, form: SilenceForm, error: Option<String>, status: StatusCode) -> Response {
    let meta = PageMeta::for_viewer("New silence", Section::Alerts, viewer);
    let can = viewer.can(Role::Editor);
    let viewer = viewer.clone();
    let Html(html) = render_page(meta, move || {
        let error = error.map(|e| view! { <p class="error form-error" role="alert">{e}</p> });
        let readonly = (!can).then(
            || view! { <p class="hint">"You can look, but creating a silence needs the editor role."</p> },
        );
        view! {
            <h1>"New silence"</h1>
            {readonly}
            {error}
            <form class="silence-form" method="post" action="/alerts/silences">
                {viewer.csrf_field()}
                <label>"Matchers"
                    <input type="text" name="matchers" value=form.matchers required size="70"
                        aria-describedby="matchers-hint" placeholder="alertname=\"HighLatency\", service=\"checkout\""/>
                </label>
                <p id="matchers-hint" class="hint">"Comma-separated "<code>"name=\"value\""</code>", "
                    <code>"name!=\"value\""</code>", "<code>"name=~\"regex\""</code>" or "<code>"name!~\"regex\""</code>"; all must match."</p>
                <label>"Author "<input type="text" name="created_by" value=form.created_by required/></label>
                <label>"Comment "<textarea name="comment" rows="3" cols="60" required inner_html=crate::chart::escape(&form.comment)></textarea></label>
                <label>"Duration "<input type="text" name="duration" value=form.duration size="8" placeholder="2h"
                    aria-describedby="ends-hint"/></label>
                <label>"or end time "<input type="text" name="ends" value=form.ends size="24" placeholder="2024-05-01T18:00:00Z"
                    aria-describedby="ends-hint"/></label>
                <p id="ends-hint" class="hint">"Duration like "<code>"30m"</code>", "<code>"2h"</code>", "<code>"1d"</code>
                    "; an end time (RFC 3339, epoch milliseconds or "<code>"now+4h"</code>") wins when given."</p>
                <button type="submit" disabled={!can}>"Create silence"</button>
                " "<a href="/alerts">"Cancel"</a>
            </form>
        }
    });
    (status, Html(html)).into_response()
}

/// The silence a valid form describes, starting `now`.
pub(super) fn silence_from_form(form: &SilenceForm, now: i64) -> Result<Silence, String> {
    let matchers = parse_matchers(&form.matchers)?;
    if form.created_by.trim().is_empty() {
        return Err("the author is missing".into());
    }
    if form.comment.trim().is_empty() {
        return Err("the comment is missing: say why the alerts are silenced".into());
    }
    let ends = if !form.ends.trim().is_empty() {
        resolve(&form.ends, now).map_err(|e| format!("end time: {e}"))?
    } else {
        let text = if form.duration.trim().is_empty() {
            "2h"
        } else {
            form.duration.trim()
        };
        let d = parse_duration(text).map_err(|e| e.to_string())?;
        now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    if ends <= now {
        return Err(format!(
            "the silence would end at {}, which is not in the future",
            pagefmt::time_ms(ends)
        ));
    }
    Ok(Silence {
        id: String::new(),
        matchers,
        starts_at_ms: now,
        ends_at_ms: ends,
        updated_at_ms: now,
        created_by: form.created_by.trim().to_string(),
        comment: form.comment.trim().to_string(),
    })
}

/// `POST /alerts/silences`.
pub(super) async fn create(
    State(ctx): State<UiContext>,
    viewer: Viewer,
    Form(form): Form<SilenceForm>,
) -> Response {
    let Some(alerting) = ctx.alerting.clone() else {
        return disabled();
    };
    if !viewer.can(Role::Editor) {
        return forbidden("Creating a silence");
    }
    if !pagefmt::csrf_ok(&viewer, &form.csrf) {
        return bad_csrf();
    }
    let now = now_ms();
    let silence = match silence_from_form(&form, now) {
        Ok(s) => s,
        Err(e) => return form_page(&viewer, form, Some(e), StatusCode::BAD_REQUEST),
    };
    match upsert(&alerting, silence, now) {
        Ok(id) => Redirect::to(&pagefmt::link("/alerts", &[("silenced", &id)])).into_response(),
        Err(SilenceError::Invalid(m)) => form_page(&viewer, form, Some(m), StatusCode::BAD_REQUEST),
        Err(e) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Saving the silence failed",
            e.to_string(),
        ),
    }
}

fn upsert(a: &Alerting, s: Silence, now: i64) -> Result<String, SilenceError> {
    a.notifier.silences.upsert(s, now)
}

/// `POST /alerts/silences/{id}/expire`.
pub(super) async fn expire(
    State(ctx): State<UiContext>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(alerting) = ctx.alerting.clone() else {
        return disabled();
    };
    if !viewer.can(Role::Editor) {
        return forbidden("Expiring a silence");
    }
    if !pagefmt::csrf_ok(&viewer, &form.csrf) {
        return bad_csrf();
    }
    match alerting.notifier.silences.expire(&id, now_ms()) {
        Ok(()) => Redirect::to(&pagefmt::link("/alerts", &[("expired", &id)])).into_response(),
        Err(SilenceError::NotFound(_)) => error_page(
            StatusCode::NOT_FOUND,
            "Silence not found",
            format!("There is no silence {id:?}."),
        ),
        Err(SilenceError::Invalid(m)) => error_page(StatusCode::BAD_REQUEST, "Cannot expire the silence", m),
        Err(e) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Expiring the silence failed",
            e.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: &str, is_equal: bool, is_regex: bool) -> SilenceMatcher {
        SilenceMatcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    #[test]
    fn matchers_parse_every_operator() {
        let got =
            parse_matchers(r#"{alertname="Down", job=~"api|web",env!="dev"  x!~"t.*" bare=ok}"#).unwrap();
        assert_eq!(
            got,
            vec![
                m("alertname", "Down", true, false),
                m("job", "api|web", true, true),
                m("env", "dev", false, false),
                m("x", "t.*", false, true),
                m("bare", "ok", true, false),
            ]
        );
        let got = parse_matchers("a = \"say \\\"hi\\\", ok\"\nb=\"\"").unwrap();
        assert_eq!(
            got,
            vec![m("a", "say \"hi\", ok", true, false), m("b", "", true, false)]
        );
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        assert!(parse_matchers("").unwrap_err().contains("at least one"));
        assert!(parse_matchers("alertname").unwrap_err().contains("expected ="));
        assert!(parse_matchers("a=\"open").unwrap_err().contains("closing quote"));
        assert!(parse_matchers("=\"x\"").unwrap_err().contains("label name"));
        assert!(parse_matchers("a=\"x\"b=\"y\"")
            .unwrap_err()
            .contains("unexpected text"));
    }

    #[test]
    fn formatted_matchers_parse_back() {
        let all = vec![m("a", "q\"uo\\te", true, false), m("b", "x|y", false, true)];
        let text: Vec<String> = all.iter().map(format_matcher).collect();
        assert_eq!(parse_matchers(&text.join(", ")).unwrap(), all);
        assert_eq!(equal_matcher("alertname", "Down"), r#"alertname="Down""#);
    }

    #[test]
    fn form_becomes_a_silence_or_a_message() {
        let now = 1_700_000_000_000;
        let mut f = SilenceForm {
            matchers: r#"alertname="Down""#.into(),
            created_by: "ana".into(),
            comment: "deploy".into(),
            duration: "30m".into(),
            ..SilenceForm::default()
        };
        let s = silence_from_form(&f, now).unwrap();
        assert_eq!(s.ends_at_ms - s.starts_at_ms, 30 * 60_000);
        f.ends = "now+1h".into();
        assert_eq!(silence_from_form(&f, now).unwrap().ends_at_ms, now + 3_600_000);
        f.ends = "now-1h".into();
        assert!(silence_from_form(&f, now)
            .unwrap_err()
            .contains("not in the future"));
        f.ends.clear();
        f.comment = " ".into();
        assert!(silence_from_form(&f, now).unwrap_err().contains("comment"));
        f.comment = "x".into();
        f.duration = "soon".into();
        assert!(silence_from_form(&f, now).unwrap_err().contains("soon"));
    }
}
