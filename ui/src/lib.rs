//! Didban web UI: server-rendered dashboards (to be built, see issue 6).
