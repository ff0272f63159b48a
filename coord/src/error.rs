//! What can go wrong talking to the coordination database.

/// An error of a connection, a migration or a lease; messages name the server (without
/// its password), the statement's purpose and the database's own message.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// A config section's database settings are wrong; the message names the key.
    #[error("{section}: {message}")]
    Setting {
        /// The section (`storage.postgres`).
        section: String,
        /// What is wrong.
        message: String,
    },
    /// The URL or DSN does not parse.
    #[error("PostgreSQL URL {url:?}: {message}")]
    Url {
        /// The URL without its password.
        url: String,
        /// Why it does not parse.
        message: String,
    },
    /// The TLS configuration could not be built (a bad CA file).
    #[error("TLS for {target}: {message}")]
    Tls {
        /// The server, without password.
        target: String,
        /// What was wrong.
        message: String,
    },
    /// The server did not answer in time.
    #[error("connecting to {target}: timed out after {timeout:?}")]
    ConnectTimeout {
        /// The server, without password.
        target: String,
        /// The connect timeout.
        timeout: std::time::Duration,
    },
    /// The connection was refused or failed.
    #[error("connecting to {target}: {message}")]
    Connect {
        /// The server, without password.
        target: String,
        /// The client's or server's message.
        message: String,
    },
    /// A statement failed.
    #[error("{what}: {message}")]
    Query {
        /// What the statement was for.
        what: String,
        /// The server's message (or the client's, when the connection broke).
        message: String,
    },
    /// The database's schema of `component` is newer than this binary knows.
    #[error("schema of {component}: the database is at version {found}, this binary knows up to {known}; upgrade the binary")]
    SchemaTooNew {
        /// The component (`metastore`, `coord`, …).
        component: String,
        /// Highest version recorded in `didban_schema`.
        found: i32,
        /// Highest version of the binary's steps.
        known: i32,
    },
    /// The steps handed to `migrate` are not in strictly increasing version order.
    #[error(
        "schema of {component}: migration versions must increase from 1, found {version} after {previous}"
    )]
    BadSteps {
        /// The component.
        component: String,
        /// The step out of order.
        version: i32,
        /// The step before it.
        previous: i32,
    },
    /// The lease an action needed is not (or no longer) held by this process.
    #[error("lease {name:?} is not held by {holder:?}")]
    LeaseNotHeld {
        /// The lease.
        name: String,
        /// This process's holder id.
        holder: String,
    },
}

impl CoordError {
    /// The error of statement `what`: the server's message when it sent one.
    pub fn query(what: impl Into<String>, e: tokio_postgres::Error) -> CoordError {
        CoordError::Query {
            what: what.into(),
            message: message(&e),
        }
    }
}

/// The server's message of `e`, or the client's description of it.
pub(crate) fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}
