//! Coordination of Didban processes through PostgreSQL, shared by everything that needs
//! more than one process to agree: the metastore of blocks (one compactor at a time) and,
//! later, the HA alerting pair (one sender at a time).
//!
//! - `connect`: a client from a libpq-style URL or DSN — verified TLS (rustls, ring) for
//!   `sslmode=require`, plain otherwise — with a connect timeout and its connection task
//!   spawned.
//! - `migrate`: ordered schema steps per component, recorded in `didban_schema` and
//!   applied in one transaction under an advisory lock, so processes starting together
//!   do not race.
//! - `lease`: named leases (`didban_leases`) taken, renewed and released with single
//!   statements on the database clock, so clock skew between processes does not matter;
//!   and the check a transaction makes to act only while its lease is held (fencing).
//! - `reconnect`: one connection per process, opened again after it broke; unique holder
//!   ids.
//! - `url_source`: where a config section's URL comes from (file, environment, or inline
//!   without a password).
//! - `members`: processes announce themselves by role with a TTL, so others find the live
//!   ones (queriers find ingesters).
//! - `holder`: a background task that keeps taking and renewing one lease and says
//!   whether this process holds it.

mod connect;
mod error;
mod holder;
mod lease;
mod members;
mod migrate;
mod reconnect;
mod url_source;

pub use connect::{check_url, connect, has_password, redact, ConnectOptions};
pub use error::CoordError;
pub use holder::LeaseHolder;
pub use lease::{Lease, LeaseRow};
pub use members::{live_members, Announcer, Member, MemberRow};
pub use migrate::{migrate, Migration};
pub use reconnect::{holder_id, ReconnectingClient};
/// The client type every function here takes, re-exported so users need not name
/// tokio-postgres' version themselves.
pub use tokio_postgres::{Client, GenericClient, Row, Transaction};
pub use url_source::UrlSource;

/// Creates the tables coord itself uses (`didban_leases`, `didban_members`); every user calls it once after
/// connecting, before its own [`migrate`].
pub async fn prepare(client: &mut Client) -> Result<(), CoordError> {
    migrate(client, "coord", lease::MIGRATIONS).await.map(|_| ())
}
