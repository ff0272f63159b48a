//! Changes made with a cookie (or basic auth) must come from our own pages: no cross-site
//! `Origin` or `Sec-Fetch-Site`, and a session's changes carry its CSRF token.

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

/// Whether a browser says this request comes from another site: `Sec-Fetch-Site:
/// cross-site`, or an `Origin` whose host is not ours (or `null`).
pub fn cross_site(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let (scheme, origin_host) = match origin.split_once("://") {
        Some(x) => x,
        None => return true,
    };
    let strip = |h: &str| -> String {
        let h = h.to_ascii_lowercase();
        let default = if scheme == "https" { ":443" } else { ":80" };
        h.strip_suffix(default).map(str::to_string).unwrap_or(h)
    };
    strip(origin_host) != strip(host)
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
}
