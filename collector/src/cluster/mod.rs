//! Processes of split roles working together (`[cluster]`, `--role`): ingesters announce
//! themselves in the metastore's database and answer queriers with their heads; queriers
//! read the published blocks and every live ingester's heads and merge them.
//!
//! - `wire`: the internal request and its path.
//! - `heads`: the ingester's handler.
//! - `reader`: the querier's [`reader::ClusterReader`], a `Queryable` over blocks and
//!   heads.

pub mod heads;
pub mod reader;
pub mod wire;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use didban_auth::{Need, Require};

use crate::config::cluster::Role;

/// Answers every write path (remote_write, OTLP/HTTP) of a process whose role does not
/// ingest with 421 Misdirected Request naming the role, so a misrouted client learns where
/// to send instead of having its data land in a head nobody reads.
pub fn refuse_writes(role: Role) -> Router {
    let message = format!(
        "this process runs as {}; send writes to an ingester (or a process with role \"all\")\n",
        role.name()
    );
    let refuse = move || {
        let message = message.clone();
        async move { (StatusCode::MISDIRECTED_REQUEST, message) }
    };
    Router::new()
        .route("/api/v1/write", post(refuse.clone()))
        .route("/v1/metrics", post(refuse.clone()))
        .route("/v1/traces", post(refuse.clone()))
        .route("/v1/logs", post(refuse))
        .route_layer(Require::api(Need::Open))
}
