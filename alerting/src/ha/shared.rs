//! The pair's shared state in PostgreSQL: the notification log's dedup entries and the
//! silences, one row each per cluster. Rows only ever move forward: an entry or a silence
//! is replaced only by a newer one (`at_ms`, `updated_at_ms`), so two instances writing
//! the same row in any order end with the newest.

use didban_coord::{CoordError, GenericClient, Migration};

use crate::notify::log::LogEntry;
use crate::notify::silence::Silence;

/// The alerting component's schema steps (applied by `didban_coord::migrate`).
pub(super) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "notification log and silences",
    sql: "CREATE TABLE didban_nflog (
            cluster text NOT NULL,
            key text NOT NULL,
            firing bigint[] NOT NULL,
            resolved bigint[] NOT NULL,
            at_ms bigint NOT NULL,
            PRIMARY KEY (cluster, key));
          CREATE TABLE didban_silences (
            cluster text NOT NULL,
            id text NOT NULL,
            updated_at_ms bigint NOT NULL,
            ends_at_ms bigint NOT NULL,
            body text NOT NULL,
            PRIMARY KEY (cluster, id))",
}];

/// Fingerprints are u64; PostgreSQL has no unsigned type, so they are stored bit for bit
/// as bigint.
fn to_db(fps: &[u64]) -> Vec<i64> {
    let mut out = Vec::with_capacity(fps.len());
    for fp in fps {
        out.push(i64::from_ne_bytes(fp.to_ne_bytes()));
    }
    out
}

fn from_db(fps: &[i64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(fps.len());
    for fp in fps {
        out.push(u64::from_ne_bytes(fp.to_ne_bytes()));
    }
    out
}

/// Records `entry` for `key` unless the database already has a newer one.
pub(super) async fn put_log(
    client: &impl GenericClient,
    cluster: &str,
    key: &str,
    entry: &LogEntry,
) -> Result<(), CoordError> {
    client
        .execute(
            "INSERT INTO didban_nflog (cluster, key, firing, resolved, at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (cluster, key) DO UPDATE \
             SET firing = EXCLUDED.firing, resolved = EXCLUDED.resolved, at_ms = EXCLUDED.at_ms \
             WHERE didban_nflog.at_ms <= EXCLUDED.at_ms",
            &[
                &cluster,
                &key,
                &to_db(&entry.firing),
                &to_db(&entry.resolved),
                &entry.at_ms,
            ],
        )
        .await
        .map_err(|e| CoordError::query("record a notification", e))?;
    Ok(())
}

/// Every dedup entry of the cluster.
pub(super) async fn load_log(
    client: &impl GenericClient,
    cluster: &str,
) -> Result<Vec<(String, LogEntry)>, CoordError> {
    let rows = client
        .query(
            "SELECT key, firing, resolved, at_ms FROM didban_nflog WHERE cluster = $1",
            &[&cluster],
        )
        .await
        .map_err(|e| CoordError::query("read the notification log", e))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let firing: Vec<i64> = row.get(1);
        let resolved: Vec<i64> = row.get(2);
        out.push((
            row.get(0),
            LogEntry {
                firing: from_db(&firing),
                resolved: from_db(&resolved),
                at_ms: row.get(3),
            },
        ));
    }
    Ok(out)
}

/// Writes each of `silences` unless the database has the same or a newer version.
pub(super) async fn put_silences(
    client: &impl GenericClient,
    cluster: &str,
    silences: &[Silence],
) -> Result<(), CoordError> {
    for s in silences {
        let body = serde_json::to_string(s).map_err(|e| CoordError::Query {
            what: format!("encode silence {}", s.id),
            message: e.to_string(),
        })?;
        client
            .execute(
                "INSERT INTO didban_silences (cluster, id, updated_at_ms, ends_at_ms, body) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (cluster, id) DO UPDATE \
                 SET updated_at_ms = EXCLUDED.updated_at_ms, ends_at_ms = EXCLUDED.ends_at_ms, body = EXCLUDED.body \
                 WHERE didban_silences.updated_at_ms < EXCLUDED.updated_at_ms",
                &[&cluster, &s.id, &s.updated_at_ms, &s.ends_at_ms, &body],
            )
            .await
            .map_err(|e| CoordError::query(format!("share silence {}", s.id), e))?;
    }
    Ok(())
}

/// Every silence of the cluster (rows that do not decode are skipped with a warning).
pub(super) async fn load_silences(
    client: &impl GenericClient,
    cluster: &str,
) -> Result<Vec<Silence>, CoordError> {
    let rows = client
        .query(
            "SELECT id, body FROM didban_silences WHERE cluster = $1",
            &[&cluster],
        )
        .await
        .map_err(|e| CoordError::query("read silences", e))?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let body: String = row.get(1);
        match serde_json::from_str::<Silence>(&body) {
            Ok(s) => out.push(s),
            Err(e) => {
                let id: String = row.get(0);
                tracing::warn!(silence = %id, error = %e, "skipping a shared silence that does not decode");
            }
        }
    }
    Ok(out)
}

/// Deletes dedup entries written before `log_before_ms` and silences that ended before
/// `silences_before_ms` (what each instance forgets locally too).
pub(super) async fn forget(
    client: &impl GenericClient,
    cluster: &str,
    log_before_ms: i64,
    silences_before_ms: i64,
) -> Result<(), CoordError> {
    client
        .execute(
            "DELETE FROM didban_nflog WHERE cluster = $1 AND at_ms < $2",
            &[&cluster, &log_before_ms],
        )
        .await
        .map_err(|e| CoordError::query("forget old notifications", e))?;
    client
        .execute(
            "DELETE FROM didban_silences WHERE cluster = $1 AND ends_at_ms < $2",
            &[&cluster, &silences_before_ms],
        )
        .await
        .map_err(|e| CoordError::query("forget old silences", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_survive_the_signed_column_bit_for_bit() {
        let fps = [0, 1, u64::MAX, 1 << 63, 0x0123_4567_89ab_cdef];
        assert_eq!(from_db(&to_db(&fps)), fps);
        assert_eq!(to_db(&[u64::MAX]), vec![-1]);
    }
}
