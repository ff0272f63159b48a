//! Named leases in `didban_leases (name, holder, expires_at, acquired_at)`: a process
//! holds lease `name` while its row names it as holder and `expires_at` is in the future
//! — by the database's clock, since every statement computes times with `now()`, so the
//! processes' own clocks never need to agree. Taking, renewing and releasing are each one
//! statement; a holder that stops renewing (killed, partitioned) loses the lease when its
//! TTL runs out and another takes it.
//!
//! A holder cannot know it still holds the lease at the moment its action lands (it may
//! have stalled past the TTL), so an action that must happen only under the lease runs in
//! a transaction that first calls [`Lease::check_held`]: the row is locked `FOR SHARE`,
//! so no other process can take the lease before that transaction ends.

use std::time::{Duration, SystemTime};

use tokio_postgres::GenericClient;

use crate::error::CoordError;
use crate::migrate::Migration;

/// coord's own schema steps (the members table's step is in `members`).
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "leases",
        sql: "CREATE TABLE didban_leases (
            name text PRIMARY KEY,
            holder text NOT NULL,
            expires_at timestamptz NOT NULL,
            acquired_at timestamptz NOT NULL DEFAULT now())",
    },
    crate::members::MEMBERS_MIGRATION,
];

/// One process's claim on a named lease.
#[derive(Debug, Clone)]
pub struct Lease {
    name: String,
    holder: String,
    ttl: Duration,
}

/// The row of a lease as the database has it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRow {
    /// Who holds (or last held) it.
    pub holder: String,
    /// When it expires, by the database's clock.
    pub expires_at: SystemTime,
    /// Whether `expires_at` is still in the future (by the database's clock).
    pub live: bool,
}

impl Lease {
    /// Lease `name` claimed by `holder` (unique per process: host, pid and a random
    /// part), held for `ttl` past each take or renewal.
    pub fn new(name: impl Into<String>, holder: impl Into<String>, ttl: Duration) -> Lease {
        Lease {
            name: name.into(),
            holder: holder.into(),
            ttl,
        }
    }

    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This process's holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// How long a take or renewal holds.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn what(&self, action: &str) -> String {
        format!("lease {:?}: {action} as {:?}", self.name, self.holder)
    }

    /// Takes the lease when it is free, expired, or already ours (then it is extended);
    /// `true` when this holder has it for `ttl` from now.
    pub async fn try_acquire(&self, client: &impl GenericClient) -> Result<bool, CoordError> {
        let rows = client
            .query(
                "INSERT INTO didban_leases AS l (name, holder, expires_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3))
                 ON CONFLICT (name) DO UPDATE
                   SET holder = EXCLUDED.holder,
                       expires_at = EXCLUDED.expires_at,
                       acquired_at = CASE WHEN l.holder = EXCLUDED.holder
                                          THEN l.acquired_at ELSE now() END
                   WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
                 RETURNING 1",
                &[&self.name, &self.holder, &self.ttl.as_secs_f64()],
            )
            .await
            .map_err(|e| CoordError::query(self.what("take"), e))?;
        Ok(!rows.is_empty())
    }

    /// Extends the lease by `ttl` from now if this holder still has it unexpired; `false`
    /// when it was lost (expired, taken over or released).
    pub async fn renew(&self, client: &impl GenericClient) -> Result<bool, CoordError> {
        let n = client
            .execute(
                "UPDATE didban_leases SET expires_at = now() + make_interval(secs => $3)
                 WHERE name = $1 AND holder = $2 AND expires_at > now()",
                &[&self.name, &self.holder, &self.ttl.as_secs_f64()],
            )
            .await
            .map_err(|e| CoordError::query(self.what("renew"), e))?;
        Ok(n == 1)
    }

    /// Gives the lease up so another can take it at once; `true` when this holder had it.
    pub async fn release(&self, client: &impl GenericClient) -> Result<bool, CoordError> {
        let n = client
            .execute(
                "DELETE FROM didban_leases WHERE name = $1 AND holder = $2",
                &[&self.name, &self.holder],
            )
            .await
            .map_err(|e| CoordError::query(self.what("release"), e))?;
        Ok(n == 1)
    }

    /// In a transaction: fails with [`CoordError::LeaseNotHeld`] unless this holder has
    /// the lease unexpired, and locks its row so nobody takes it before the transaction
    /// ends (the fence of an action that must happen only under the lease).
    pub async fn check_held(&self, tx: &impl GenericClient) -> Result<(), CoordError> {
        let rows = tx
            .query(
                "SELECT 1 FROM didban_leases
                 WHERE name = $1 AND holder = $2 AND expires_at > clock_timestamp()
                 FOR SHARE",
                &[&self.name, &self.holder],
            )
            .await
            .map_err(|e| CoordError::query(self.what("check"), e))?;
        if rows.is_empty() {
            return Err(CoordError::LeaseNotHeld {
                name: self.name.clone(),
                holder: self.holder.clone(),
            });
        }
        Ok(())
    }

    /// The row of lease `name`, if there is one.
    pub async fn read(client: &impl GenericClient, name: &str) -> Result<Option<LeaseRow>, CoordError> {
        let row = client
            .query_opt(
                "SELECT holder, extract(epoch FROM expires_at)::float8, expires_at > now()
                 FROM didban_leases WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(|e| CoordError::query(format!("lease {name:?}: read"), e))?;
        Ok(row.map(|r| {
            let secs: f64 = r.get(1);
            LeaseRow {
                holder: r.get(0),
                expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)),
                live: r.get(2),
            }
        }))
    }
}
