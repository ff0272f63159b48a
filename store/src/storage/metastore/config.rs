//! How to reach the PostgreSQL metastore and how its compactor election behaves.

use std::path::PathBuf;
use std::time::Duration;

/// The metastore of blocks in PostgreSQL (only with blocks in a bucket).
#[derive(Clone, PartialEq)]
pub struct MetastoreConfig {
    /// libpq-style URL or DSN; `sslmode=require` gives verified TLS. May hold a password,
    /// so `Debug` prints it redacted.
    pub url: String,
    /// PEM CA certificates trusted besides the system's for the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// Longest a connection attempt may take.
    pub connect_timeout: Duration,
    /// The tenant whose blocks this process writes and reads (`default`).
    pub tenant: String,
    /// How long the `compactor` lease holds without renewal: a compactor that stops is
    /// replaced after at most this long.
    pub compactor_lease_ttl: Duration,
    /// How long after a block was retired its objects stay (queries of other processes
    /// may still read them), and how old objects without a metastore row must be before
    /// they are taken for an abandoned upload and deleted.
    pub gc_grace: Duration,
    /// Whether this process competes for the compactor lease (`false` for ingesters and
    /// queriers when the roles are split: only compactors compact).
    pub compactor: bool,
}

impl MetastoreConfig {
    /// Defaults for `url`: tenant `default`, 5 s connect timeout, 30 s lease, 15 min grace.
    pub fn new(url: impl Into<String>) -> MetastoreConfig {
        MetastoreConfig {
            url: url.into(),
            ca_file: None,
            connect_timeout: Duration::from_secs(5),
            tenant: "default".to_string(),
            compactor_lease_ttl: Duration::from_secs(30),
            gc_grace: Duration::from_secs(15 * 60),
            compactor: true,
        }
    }
}

impl std::fmt::Debug for MetastoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetastoreConfig")
            .field("url", &didban_coord::redact(&self.url))
            .field("ca_file", &self.ca_file)
            .field("connect_timeout", &self.connect_timeout)
            .field("tenant", &self.tenant)
            .field("compactor_lease_ttl", &self.compactor_lease_ttl)
            .field("gc_grace", &self.gc_grace)
            .field("compactor", &self.compactor)
            .finish()
    }
}
