//! The outer layer: who is calling, as far as the credentials tell (bearer token, basic
//! auth, session cookie, or nobody). It refuses nothing; a credential that does not check
//! out is remembered and refused by [`super::Require`] unless the route is open.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;

use super::refuse::{api_error, refuse, Form};
use crate::password::Busy;
use crate::{now_ms, secret, Auth, Role, Viewer, SESSION_COOKIE};

/// Basic-auth successes are remembered this long, so Grafana's requests do not each cost
/// an Argon2 verification.
const BASIC_CACHE_MS: i64 = 5 * 60_000;

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

/// A credential that was sent but does not check out.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failure {
    /// An unknown or revoked bearer token.
    Bearer,
    /// A wrong user name or password in basic auth.
    Basic,
    /// Too many failed (or in-flight) sign-ins from this address; wait this many seconds.
    Limited(i64),
    /// No password verification slot freed up in time: not a wrong password, try again.
    Busy,
}

impl Failure {
    /// The refusal, for routes that are not open.
    pub(crate) fn response(self) -> Response {
        match self {
            Failure::Bearer => refuse(
                Form::Api,
                StatusCode::UNAUTHORIZED,
                "the bearer token is not valid",
            ),
            Failure::Basic => refuse(Form::Api, StatusCode::UNAUTHORIZED, "wrong user name or password"),
            Failure::Limited(wait) => {
                let message = format!("too many failed sign-ins; try again in {wait} s");
                too_many(wait, &message)
            }
            Failure::Busy => too_many(BUSY_RETRY_S, "too many sign-ins in progress; try again shortly"),
        }
    }
}

/// Seconds a caller refused for lack of a verification slot is asked to wait.
pub const BUSY_RETRY_S: i64 = 1;

/// 429 with `Retry-After: wait`.
fn too_many(wait: i64, message: &str) -> Response {
    let mut r = api_error(StatusCode::TOO_MANY_REQUESTS, "unauthorized", message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
    r
}

/// What the credentials of a request came to.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    /// No credential (or sign-in is off).
    Absent,
    /// A valid one.
    Valid(Identity),
    /// One that does not check out.
    Failed(Failure),
}

/// What [`resolve`] leaves in the request for [`super::Require`].
#[derive(Clone)]
pub(crate) struct Caller {
    pub auth: Arc<Auth>,
    pub credential: Credential,
    /// Sent `Authorization: Bearer …` (valid or not): no cookie, so no CSRF check.
    pub by_bearer: bool,
}

/// The outer layer of a listener (`Router::layer(from_fn_with_state(auth, resolve))`): finds
/// out who is calling and inserts the [`Viewer`] handlers extract. Refuses nothing: each
/// route's [`super::Require`] decides.
pub async fn resolve(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    let (credential, by_bearer) = if auth.settings.required {
        // A request is not `Sync`: only its headers are borrowed across the await.
        let ip = client_ip(&auth, &req);
        credential(&auth, req.headers(), ip).await
    } else {
        (Credential::Absent, false)
    };
    let viewer = if !auth.settings.required {
        Viewer {
            user: None,
            role: auth.settings.anonymous_role.unwrap_or(Role::Admin),
            csrf: String::new(),
        }
    } else {
        let identity = match &credential {
            Credential::Valid(i) => Some(i),
            Credential::Absent | Credential::Failed(_) => None,
        };
        let role = match identity {
            Some(i) => i.role,
            None => auth.settings.anonymous_role,
        };
        Viewer {
            user: identity.and_then(|i| i.user.clone()),
            role: role.unwrap_or(Role::Viewer),
            csrf: identity.and_then(|i| i.csrf.clone()).unwrap_or_default(),
        }
    };
    req.extensions_mut().insert(viewer);
    req.extensions_mut().insert(Caller {
        auth,
        credential,
        by_bearer,
    });
    next.run(req).await
}

/// The credential in `headers` of a request from `ip`, and whether it came as a bearer token.
async fn credential(auth: &Arc<Auth>, headers: &HeaderMap, ip: IpAddr) -> (Credential, bool) {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(token) = authorization.as_deref().and_then(bearer) {
        let credential = match auth.token_identity(token) {
            Some(i) => Credential::Valid(i),
            None => Credential::Failed(Failure::Bearer),
        };
        return (credential, true);
    }
    if let Some((user, pass)) = authorization.as_deref().and_then(basic) {
        let credential = match basic_identity(auth, ip, user, pass).await {
            Ok(i) => Credential::Valid(i),
            Err(f) => Credential::Failed(f),
        };
        return (credential, false);
    }
    match session_identity(auth, headers) {
        Some(i) => (Credential::Valid(i), false),
        None => (Credential::Absent, false),
    }
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
/// trusted proxy. Unspecified when unknown (in-process tests). Failed sign-ins are counted
/// per this address.
pub fn client_ip(auth: &Auth, req: &Request) -> IpAddr {
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

/// Whether the request reached us over TLS (as far as we can tell): the session cookie is
/// then marked `Secure`.
pub fn over_tls(auth: &Auth, req: &Request) -> bool {
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
) -> Result<Identity, Failure> {
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
            // Reserved before verifying, so a burst past the limit costs no Argon2 run.
            let attempt = auth.limiter.begin(ip, now).map_err(Failure::Limited)?;
            let a = auth.clone();
            let found = tokio::task::spawn_blocking(move || a.users.authenticate(&user, &pass))
                .await
                .unwrap_or(Err(Busy));
            let found = match found {
                Ok(Some(found)) => found,
                Ok(None) => {
                    attempt.fail(now);
                    return Err(Failure::Basic);
                }
                // Dropping the attempt releases it without counting a failure.
                Err(Busy) => return Err(Failure::Busy),
            };
            attempt.succeed();
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
        return Err(Failure::Basic);
    };
    Ok(Identity {
        user: Some(user.name),
        role: Some(user.role),
        ingest: false,
        csrf: None,
    })
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
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
    fn busy_and_limited_answer_429_with_retry_after() {
        for (failure, wait) in [(Failure::Busy, "1"), (Failure::Limited(30), "30")] {
            let r = failure.response();
            assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{failure:?}");
            let retry = r.headers().get(header::RETRY_AFTER);
            assert_eq!(retry.and_then(|v| v.to_str().ok()), Some(wait), "{failure:?}");
        }
        assert_eq!(Failure::Basic.response().status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        #![allow(clippy::unwrap_used)]
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::AuthSettings {
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
}
