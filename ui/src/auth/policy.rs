//! What each request needs: the table of paths and methods to the least credential.
//! Anything not listed is a UI page: viewers may read it, changes need an editor (pages
//! check finer rights themselves), and `/admin/…` needs an admin.

use axum::http::Method;

use crate::viewer::Role;

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The main HTTP port: UI, query APIs, remote_write, health.
    Main,
    /// The OTLP/HTTP port: every route is ingest.
    OtlpHttp,
}

/// The least credential a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nobody needs to sign in (health, sign-in page, static assets).
    Open,
    /// A token with the ingest scope.
    Ingest,
    /// At least this role.
    Role(Role),
}

/// How a refused request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A page: redirect to sign-in, HTML error pages.
    Page,
    /// An API: JSON errors with 401/403.
    Api,
}

/// Whether `method` may change something.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The kind of `path` on `listener`.
pub fn kind(listener: Listener, path: &str) -> Kind {
    if listener == Listener::OtlpHttp
        || path.starts_with("/api/")
        || path.starts_with("/-/")
        || path == "/metrics"
        || path.starts_with("/v1/")
    {
        Kind::Api
    } else {
        Kind::Page
    }
}

/// Query endpoints that accept POST for long queries without changing anything.
const READ_POSTS: [&str; 5] = [
    "/api/v1/query",
    "/api/v1/query_range",
    "/api/v1/series",
    "/api/v1/labels",
    "/api/v1/query_exemplars",
];

/// What `method path` on `listener` needs; `public_metrics` opens `/metrics`.
pub fn need(listener: Listener, method: &Method, path: &str, public_metrics: bool) -> Need {
    if listener == Listener::OtlpHttp {
        return Need::Ingest;
    }
    let unsafe_method = is_unsafe(method);
    match path {
        "/-/healthy" | "/-/ready" | "/login" | "/favicon.ico" => return Need::Open,
        "/metrics" if public_metrics => return Need::Open,
        "/api/v1/write" => return Need::Ingest,
        "/logout" => return Need::Role(Role::Viewer),
        _ => {}
    }
    if path.starts_with("/ui/static/") {
        return Need::Open;
    }
    if path.starts_with("/admin/") || path == "/admin" || path.starts_with("/api/v1/admin/") {
        return Need::Role(Role::Admin);
    }
    if path.starts_with("/-/") {
        // /-/reload and anything else under /-/ that is not health.
        return Need::Role(Role::Editor);
    }
    if unsafe_method && !READ_POSTS.contains(&path) {
        return Need::Role(Role::Editor);
    }
    Need::Role(Role::Viewer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_health_ingest_queries_alerting_and_pages() {
        let main = Listener::Main;
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(need(main, &get, "/-/healthy", false), Need::Open);
        assert_eq!(need(main, &get, "/-/ready", false), Need::Open);
        assert_eq!(need(main, &post, "/login", false), Need::Open);
        assert_eq!(need(main, &get, "/ui/static/0.1.0/didban.css", false), Need::Open);
        assert_eq!(need(main, &post, "/api/v1/write", false), Need::Ingest);
        assert_eq!(need(Listener::OtlpHttp, &post, "/v1/traces", false), Need::Ingest);
        assert_eq!(need(main, &get, "/metrics", false), Need::Role(Role::Viewer));
        assert_eq!(need(main, &get, "/metrics", true), Need::Open);
        assert_eq!(
            need(main, &post, "/api/v1/query", false),
            Need::Role(Role::Viewer)
        );
        assert_eq!(
            need(main, &get, "/api/traces/abc", false),
            Need::Role(Role::Viewer)
        );
        assert_eq!(
            need(main, &get, "/api/logs/search", false),
            Need::Role(Role::Viewer)
        );
        assert_eq!(
            need(main, &post, "/api/v2/silences", false),
            Need::Role(Role::Editor)
        );
        assert_eq!(
            need(main, &Method::DELETE, "/api/v2/silence/x", false),
            Need::Role(Role::Editor)
        );
        assert_eq!(need(main, &post, "/-/reload", false), Need::Role(Role::Editor));
        assert_eq!(
            need(main, &post, "/api/v1/admin/tsdb/flush", false),
            Need::Role(Role::Admin)
        );
        assert_eq!(need(main, &get, "/admin/users", false), Need::Role(Role::Admin));
        assert_eq!(need(main, &get, "/dashboards", false), Need::Role(Role::Viewer));
        assert_eq!(
            need(main, &post, "/alerts/silences", false),
            Need::Role(Role::Editor)
        );
        assert_eq!(kind(main, "/alerts"), Kind::Page);
        assert_eq!(kind(main, "/api/v1/query"), Kind::Api);
        assert_eq!(kind(main, "/metrics"), Kind::Api);
    }
}
