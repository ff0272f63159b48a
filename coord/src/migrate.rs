//! Ordered schema steps per component, recorded in `didban_schema (component, version,
//! name, applied_at)`. All steps a database lacks are applied in one transaction that
//! first takes a transaction-scoped advisory lock, so two processes starting together
//! apply each step once: the second waits, then finds the steps recorded.

use tokio_postgres::Client;

use crate::error::CoordError;

/// The advisory lock key every migration takes (`"didban_schema"` in ASCII, truncated).
const LOCK_KEY: i64 = 0x6469_6462_616e_5f73;

/// One schema step of a component: applied once, in version order.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1 for the first step, one more for each next one.
    pub version: i32,
    /// A short description, recorded beside the version.
    pub name: &'static str,
    /// The statements (several may be separated by `;`).
    pub sql: &'static str,
}

/// Brings `component`'s schema up to the last of `steps` (strictly increasing versions
/// from 1) and returns the version the database is at. A database already past the last
/// step is refused ([`CoordError::SchemaTooNew`]): this binary would not know its tables.
pub async fn migrate(client: &mut Client, component: &str, steps: &[Migration]) -> Result<i32, CoordError> {
    let mut previous = 0;
    for step in steps {
        if step.version != previous + 1 {
            return Err(CoordError::BadSteps {
                component: component.to_string(),
                version: step.version,
                previous,
            });
        }
        previous = step.version;
    }
    let known = previous;
    let what = |s: &str| format!("schema of {component}: {s}");
    let tx = client
        .transaction()
        .await
        .map_err(|e| CoordError::query(what("begin"), e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(|e| CoordError::query(what("advisory lock"), e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS didban_schema (
            component text NOT NULL,
            version integer NOT NULL,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (component, version))",
    )
    .await
    .map_err(|e| CoordError::query(what("create didban_schema"), e))?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM didban_schema WHERE component = $1",
            &[&component],
        )
        .await
        .map_err(|e| CoordError::query(what("read version"), e))?;
    let found: i32 = row.get(0);
    if found > known {
        return Err(CoordError::SchemaTooNew {
            component: component.to_string(),
            found,
            known,
        });
    }
    for step in steps.iter().filter(|s| s.version > found) {
        let step_what = what(&format!("step {} ({})", step.version, step.name));
        tx.batch_execute(step.sql)
            .await
            .map_err(|e| CoordError::query(step_what.clone(), e))?;
        tx.execute(
            "INSERT INTO didban_schema (component, version, name) VALUES ($1, $2, $3)",
            &[&component, &step.version, &step.name],
        )
        .await
        .map_err(|e| CoordError::query(step_what, e))?;
        tracing::info!(
            component,
            version = step.version,
            name = step.name,
            "schema step applied"
        );
    }
    tx.commit()
        .await
        .map_err(|e| CoordError::query(what("commit"), e))?;
    Ok(known)
}
