//! Changes must come from our own pages or from programs, never from a browser on another
//! site: no foreign `Origin` or `Sec-Fetch-Site`, and a session's changes carry its CSRF
//! token. The origin check covers ingest too, so that no web page can write data into an
//! install whose sign-in is off (a loopback default).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::refuse::{refuse, Form};
use crate::{secret, Viewer};

/// Largest urlencoded form body buffered to find its `_csrf` field.
const MAX_FORM_BYTES: usize = 1024 * 1024;
/// Header that carries the CSRF token for requests that are not urlencoded forms.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Whether a browser says this request comes from another site or origin (see
/// [`foreign_origin`]).
pub fn cross_site(headers: &HeaderMap) -> bool {
    foreign_origin(headers).is_some()
}

/// Why a browser's request counts as coming from elsewhere, or `None` for our own pages
/// and for programs (which send neither `Origin` nor `Sec-Fetch-Site`):
///
/// - `Sec-Fetch-Site: cross-site`, or `same-site`: another origin of the same site, such as
///   a development server on another port of `localhost`, is still not our page;
/// - an `Origin` whose host (and port) is not the `Host` the request was sent to, or the
///   opaque `null` of sandboxed frames and some redirects.
pub fn foreign_origin(headers: &HeaderMap) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.as_bytes();
        if site == b"cross-site" || site == b"same-site" {
            let site = String::from_utf8_lossy(site);
            return Some(format!(
                "cross-site request refused: the browser sent it from another site or origin (Sec-Fetch-Site: {site})"
            ));
        }
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if host.is_some_and(|host| same_host(&origin, host)) {
        return None;
    }
    Some(format!(
        "cross-site request refused: Origin {origin:?} is not this server ({})",
        host.unwrap_or("no Host header")
    ))
}

/// Whether `origin` (`scheme://host[:port]`) names `host` (`host[:port]`), default ports
/// ignored.
fn same_host(origin: &str, host: &str) -> bool {
    let Some((scheme, origin_host)) = origin.split_once("://") else {
        return false;
    };
    let strip = |h: &str| -> String {
        let h = h.to_ascii_lowercase();
        let default = if scheme == "https" { ":443" } else { ":80" };
        h.strip_suffix(default).map(str::to_string).unwrap_or(h)
    };
    strip(origin_host) == strip(host)
}

/// Checks the CSRF token from the `X-CSRF-Token` header or the `_csrf` field of an
/// urlencoded body (buffered and put back for the handler). Returns the request and whether
/// the token matched; a form too large to check is refused the way `form` answers.
pub(crate) async fn check_csrf(
    req: Request,
    expected: &str,
    form: Form,
) -> Result<(Request, bool), Response> {
    if let Some(v) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        let ok = secret::constant_time_eq(v, expected);
        return Ok((req, ok));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((req, false));
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let message = format!("a form may send at most {MAX_FORM_BYTES} bytes");
            return Err(refuse(form, StatusCode::PAYLOAD_TOO_LARGE, &message));
        }
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let ok = fields
        .iter()
        .any(|(k, v)| k == Viewer::CSRF_FIELD && secret::constant_time_eq(v, expected));
    Ok((Request::from_parts(parts, Body::from(bytes)), ok))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn detects_cross_site_requests() {
        assert!(!cross_site(&headers(&[("host", "a.example:9480")])));
        assert!(!cross_site(&headers(&[
            ("host", "a.example:9480"),
            ("origin", "http://a.example:9480"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!cross_site(&headers(&[
            ("host", "a.example"),
            ("origin", "https://a.example:443")
        ])));
        assert!(cross_site(&headers(&[
            ("host", "a.example:9480"),
            ("origin", "http://evil.example")
        ])));
        assert!(cross_site(&headers(&[
            ("host", "a.example:9480"),
            ("origin", "null")
        ])));
        assert!(cross_site(&headers(&[
            ("host", "a.example:9480"),
            ("sec-fetch-site", "cross-site")
        ])));
    }

    #[test]
    fn another_origin_of_the_same_site_is_foreign_and_named() {
        // A page on another port of localhost is same-site, but not ours.
        let why = foreign_origin(&headers(&[
            ("host", "127.0.0.1:9480"),
            ("sec-fetch-site", "same-site"),
        ]))
        .unwrap();
        assert!(why.contains("Sec-Fetch-Site: same-site"), "{why}");
        let why = foreign_origin(&headers(&[
            ("host", "127.0.0.1:9480"),
            ("origin", "http://127.0.0.1:3000"),
        ]))
        .unwrap();
        assert!(why.contains(r#""http://127.0.0.1:3000""#), "{why}");
        assert!(why.contains("127.0.0.1:9480"), "{why}");
        let why = foreign_origin(&headers(&[("origin", "http://a.example")])).unwrap();
        assert!(why.contains("no Host header"), "{why}");
        // A user typing the URL, and programs, are not refused.
        assert_eq!(
            foreign_origin(&headers(&[("host", "a.example"), ("sec-fetch-site", "none")])),
            None
        );
        assert_eq!(foreign_origin(&headers(&[("host", "a.example")])), None);
    }
}
