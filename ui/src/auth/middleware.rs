//! The guard in front of every route: finds out who is calling (bearer token, basic auth,
//! session cookie, or nobody), checks what the route needs ([`super::policy`]), refuses
//! cross-site and CSRF-less changes, and inserts the [`Viewer`] the pages read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use base64::Engine;

use super::policy::{self, Kind, Listener, Need};
use super::{now_ms, secret, Auth, SESSION_COOKIE};
use crate::viewer::{Role, Viewer};

/// Largest urlencoded form body buffered to find its `_csrf` field.
const MAX_FORM_BYTES: usize = 1024 * 1024;
/// Basic-auth successes are remembered this long, so Grafana's requests do not each cost
/// an Argon2 verification.
const BASIC_CACHE_MS: i64 = 5 * 60_000;
/// Header that carries the CSRF token for requests that are not urlencoded forms.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who is calling, as far as credentials tell.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub user: Option<String>,
    /// `None` for the internal ingest-only token.
    pub role: Option<Role>,
    pub ingest: bool,
    /// The session's CSRF token (cookie sessions only).
    pub csrf: Option<String>,
}

/// Guard of the main HTTP listener (UI, query APIs, remote_write).
pub async fn guard_main(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    guard(auth, Listener::Main, req, next).await
}

/// Guard of the OTLP/HTTP listener (everything there is ingest).
pub async fn guard_otlp(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    guard(auth, Listener::OtlpHttp, req, next).await
}

/// The token of an `Authorization: Bearer …` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// User and password of an `Authorization: Basic …` value.
fn basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == name {
                    return Some(v);
                }
            }
        }
    }
    None
}

fn peer(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client address: the peer, or the last `X-Forwarded-For` hop when the peer is a
/// trusted proxy. Unspecified when unknown (in-process tests).
pub(crate) fn client_ip(auth: &Auth, req: &Request) -> IpAddr {
    let Some(p) = peer(req) else {
        return IpAddr::from([0, 0, 0, 0]);
    };
    if auth.settings.trusted_proxies.contains(&p) {
        let forwarded = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    p
}

/// Whether the request reached us over TLS (as far as we can tell).
pub(crate) fn over_tls(auth: &Auth, req: &Request) -> bool {
    if auth.settings.secure_cookies {
        return true;
    }
    let trusted = peer(req).is_some_and(|p| auth.settings.trusted_proxies.contains(&p));
    trusted
        && req
            .headers()
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// Whether a browser says this request comes from another site: `Sec-Fetch-Site:
/// cross-site`, or an `Origin` whose host is not ours (or `null`).
pub(crate) fn cross_site(headers: &HeaderMap) -> bool {
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

fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({"status": "error", "errorType": error_type, "error": message});
    let mut r = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"didban\""),
        );
    }
    r
}

/// A refusal of a page or API request.
pub(crate) fn refuse(kind: Kind, status: StatusCode, message: &str) -> Response {
    match kind {
        Kind::Api => {
            let t = if status == StatusCode::UNAUTHORIZED {
                "unauthorized"
            } else {
                "forbidden"
            };
            api_error(status, t, message)
        }
        Kind::Page => {
            let title = status.canonical_reason().unwrap_or("Refused");
            crate::pages::error_page(status, title, message.to_string())
        }
    }
}

/// `/login?next=<path and query>`.
fn to_login(req: &Request) -> Response {
    let next = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    Redirect::to(&format!("/login?{query}")).into_response()
}

async fn guard(auth: Arc<Auth>, listener: Listener, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let need = policy::need(listener, &method, &path, auth.settings.public_metrics);
    let kind = policy::kind(listener, &path);
    let unsafe_method = policy::is_unsafe(&method);

    if !auth.settings.required {
        return anonymous(auth, need, kind, req, next).await;
    }

    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut by_bearer = false;
    let identity = match authorization.as_deref() {
        Some(value) if bearer(value).is_some() => {
            by_bearer = true;
            let token = bearer(value).unwrap_or_default();
            match auth.token_identity(token) {
                Some(i) => Some(i),
                // Health checks and the sign-in page answer whatever the credentials.
                None if need == Need::Open => None,
                None => {
                    return refuse(
                        Kind::Api,
                        StatusCode::UNAUTHORIZED,
                        "the bearer token is not valid",
                    )
                }
            }
        }
        Some(value) if basic(value).is_some() => {
            let (user, pass) = basic(value).unwrap_or_default();
            let ip = client_ip(&auth, &req);
            match basic_identity(&auth, ip, user, pass).await {
                Ok(i) => Some(i),
                Err(_) if need == Need::Open => None,
                Err(r) => return r,
            }
        }
        _ => session_identity(&auth, req.headers()),
    };

    let role = match &identity {
        Some(i) => i.role,
        None => auth.settings.anonymous_role,
    };
    match need {
        Need::Open => {}
        Need::Ingest => {
            if !identity.as_ref().is_some_and(|i| i.ingest) {
                let message = if identity.is_some() {
                    "this credential may not write data; ingest needs an API token with the ingest scope"
                } else {
                    "ingest needs an API token with the ingest scope (Authorization: Bearer …)"
                };
                let status = if identity.is_some() {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::UNAUTHORIZED
                };
                return refuse(Kind::Api, status, message);
            }
        }
        Need::Role(r) => {
            if role.is_none_or(|have| have < r) {
                if identity.is_none() {
                    return match kind {
                        Kind::Page => to_login(&req),
                        Kind::Api => refuse(
                            kind,
                            StatusCode::UNAUTHORIZED,
                            "sign in or send an API token (Authorization: Bearer …)",
                        ),
                    };
                }
                let message = format!("this needs the {} role", r.as_str());
                return refuse(kind, StatusCode::FORBIDDEN, &message);
            }
        }
    }

    let mut req = req;
    if unsafe_method && need != Need::Ingest && !by_bearer {
        if cross_site(req.headers()) {
            return refuse(kind, StatusCode::FORBIDDEN, "cross-site request refused");
        }
        // Open routes (the sign-in form) need no token: a stale sign-in form submitted
        // after signing in elsewhere must not fail; the cross-site check above still holds.
        let expected = identity.as_ref().and_then(|i| i.csrf.clone());
        if let Some(expected) = expected.filter(|_| need != Need::Open) {
            let (checked, ok) = match check_csrf(req, &expected).await {
                Ok(x) => x,
                Err(r) => return r,
            };
            if !ok {
                return refuse(
                    kind,
                    StatusCode::FORBIDDEN,
                    "the form's security token is missing or out of date; reload the page and try again",
                );
            }
            req = checked;
        }
    }

    let viewer = Viewer {
        user: identity.as_ref().and_then(|i| i.user.clone()),
        role: role.unwrap_or(Role::Viewer),
        csrf: identity.and_then(|i| i.csrf).unwrap_or_default(),
    };
    req.extensions_mut().insert(viewer);
    next.run(req).await
}

/// Sign-in is off: everyone has the anonymous role, ingest is open; browsers may still not
/// change anything from another site.
async fn anonymous(auth: Arc<Auth>, need: Need, kind: Kind, mut req: Request, next: Next) -> Response {
    if need == Need::Ingest {
        return next.run(req).await;
    }
    let role = auth.settings.anonymous_role.unwrap_or(Role::Admin);
    if policy::is_unsafe(req.method()) && cross_site(req.headers()) {
        return refuse(kind, StatusCode::FORBIDDEN, "cross-site request refused");
    }
    if let Need::Role(r) = need {
        if role < r {
            let message = format!("this needs the {} role", r.as_str());
            return refuse(kind, StatusCode::FORBIDDEN, &message);
        }
    }
    req.extensions_mut().insert(Viewer {
        user: None,
        role,
        csrf: String::new(),
    });
    next.run(req).await
}

fn session_identity(auth: &Auth, headers: &HeaderMap) -> Option<Identity> {
    let id = cookie(headers, SESSION_COOKIE)?;
    let session = auth.sessions.touch(id, now_ms())?;
    let user = auth.users.get(&session.user)?;
    Some(Identity {
        user: Some(user.name),
        role: Some(user.role),
        ingest: false,
        csrf: Some(session.csrf),
    })
}

async fn basic_identity(
    auth: &Arc<Auth>,
    ip: IpAddr,
    user: String,
    pass: String,
) -> Result<Identity, Response> {
    let now = now_ms();
    let key = secret::digest(&format!("{user}\0{pass}"));
    let cached = {
        let cache = auth.basic_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(&key)
            .filter(|(_, until)| *until > now)
            .map(|(u, _)| u.clone())
    };
    let name = match cached {
        Some(u) => u,
        None => {
            if let Some(wait) = auth.limiter.blocked(ip, now) {
                let message = format!("too many failed sign-ins; try again in {wait} s");
                return Err(api_error(StatusCode::TOO_MANY_REQUESTS, "unauthorized", &message));
            }
            let a = auth.clone();
            let found = tokio::task::spawn_blocking(move || a.users.authenticate(&user, &pass))
                .await
                .ok()
                .flatten();
            let Some(found) = found else {
                auth.limiter.fail(ip, now);
                return Err(refuse(
                    Kind::Api,
                    StatusCode::UNAUTHORIZED,
                    "wrong user name or password",
                ));
            };
            let mut cache = auth.basic_cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() > 1000 {
                cache.retain(|_, (_, until)| *until > now);
            }
            cache.insert(key, (found.name.clone(), now + BASIC_CACHE_MS));
            found.name
        }
    };
    // The role is read at each request, so a change applies at once.
    let Some(user) = auth.users.get(&name) else {
        return Err(refuse(
            Kind::Api,
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        ));
    };
    Ok(Identity {
        user: Some(user.name),
        role: Some(user.role),
        ingest: false,
        csrf: None,
    })
}

/// Checks the CSRF token from the `X-CSRF-Token` header or the `_csrf` field of an
/// urlencoded body (buffered and put back for the handler). Returns the request and whether
/// the token matched.
async fn check_csrf(req: Request, expected: &str) -> Result<(Request, bool), Response> {
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
            return Err(crate::pages::error_page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                format!("a form may send at most {MAX_FORM_BYTES} bytes"),
            ))
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
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn parses_credentials_and_cookies() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        // "grafana:pa:ss"
        assert_eq!(
            basic("Basic Z3JhZmFuYTpwYTpzcw=="),
            Some(("grafana".into(), "pa:ss".into()))
        );
        assert_eq!(basic("Basic !!!"), None);
        let h = headers(&[("cookie", "theme=dark; didban_session=abc123"), ("cookie", "x=y")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc123"));
        assert_eq!(cookie(&h, "x"), Some("y"));
        assert_eq!(cookie(&h, "nope"), None);
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        #![allow(clippy::unwrap_used)]
        let dir = tempfile::tempdir().unwrap();
        let settings = super::super::AuthSettings {
            trusted_proxies: vec![[10, 0, 0, 2].into()],
            ..Default::default()
        };
        let auth = Auth::open(dir.path(), settings).unwrap();
        let request = |peer: [u8; 4]| {
            let mut r = Request::builder()
                .header("x-forwarded-for", "203.0.113.9, 198.51.100.7")
                .header("x-forwarded-proto", "https")
                .body(Body::empty())
                .unwrap();
            r.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from((peer, 5000))));
            r
        };
        let via_proxy = request([10, 0, 0, 2]);
        assert_eq!(client_ip(&auth, &via_proxy), IpAddr::from([198, 51, 100, 7]));
        assert!(over_tls(&auth, &via_proxy));
        let direct = request([192, 0, 2, 1]);
        assert_eq!(client_ip(&auth, &direct), IpAddr::from([192, 0, 2, 1]));
        assert!(!over_tls(&auth, &direct), "a client cannot claim TLS itself");
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
