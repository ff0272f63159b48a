//! The UI's integration tests, one binary: each module was once its own test file (same test
//! names and assertions); `support` builds a `UiContext` over real stores.

mod dashboards;
mod explore;
mod pg_statements;
mod query_bounds;
mod receivers_page;
mod route_auth;
mod signal_pages;
mod support;
