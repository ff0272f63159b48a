//! Who is running: processes announce themselves in `didban_members (cluster, role, id,
//! address, expires_at)` and renew the row on a period, so others find the live members of
//! a role (queriers find the ingesters to ask for their heads) without a registry of their
//! own. A member that stops renewing (killed, partitioned) drops out of the list when its
//! TTL runs out, by the database's clock; one that stops cleanly deletes its row.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::GenericClient;

use crate::connect::ConnectOptions;
use crate::error::CoordError;
use crate::migrate::Migration;
use crate::reconnect::ReconnectingClient;

/// The members table, coord's schema step 2 (see `lease::MIGRATIONS`).
pub(crate) const MEMBERS_MIGRATION: Migration = Migration {
    version: 2,
    name: "members",
    sql: "CREATE TABLE didban_members (
            cluster text NOT NULL,
            role text NOT NULL,
            id text NOT NULL,
            address text NOT NULL,
            expires_at timestamptz NOT NULL,
            started_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (cluster, role, id))",
};

/// One process's entry in the members table.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The group of processes that work together (the metastore's tenant).
    pub cluster: String,
    /// What the process does (`ingester`, …).
    pub role: String,
    /// Unique per process ([`crate::holder_id`]).
    pub id: String,
    /// Where the others reach it (`http://10.0.0.5:9090`).
    pub address: String,
    /// How long an announcement holds without renewal.
    pub ttl: Duration,
}

/// A live member as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemberRow {
    /// Its id.
    pub id: String,
    /// Its address.
    pub address: String,
}

impl Member {
    /// Announces (or renews) this member for `ttl` from now.
    pub async fn announce(&self, client: &impl GenericClient) -> Result<(), CoordError> {
        client
            .execute(
                "INSERT INTO didban_members (cluster, role, id, address, expires_at)
                 VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
                 ON CONFLICT (cluster, role, id) DO UPDATE
                   SET address = EXCLUDED.address, expires_at = EXCLUDED.expires_at",
                &[
                    &self.cluster,
                    &self.role,
                    &self.id,
                    &self.address,
                    &self.ttl.as_secs_f64(),
                ],
            )
            .await
            .map_err(|e| CoordError::query(format!("announce {} {}", self.role, self.id), e))?;
        Ok(())
    }

    /// Removes this member's row (a clean stop).
    pub async fn leave(&self, client: &impl GenericClient) -> Result<(), CoordError> {
        client
            .execute(
                "DELETE FROM didban_members WHERE cluster = $1 AND role = $2 AND id = $3",
                &[&self.cluster, &self.role, &self.id],
            )
            .await
            .map_err(|e| CoordError::query(format!("leave as {} {}", self.role, self.id), e))?;
        Ok(())
    }
}

/// Deletes rows that expired more than a day ago (crashed members that never came back),
/// so the table does not grow with restarts; each [`Announcer`] does it once at start.
pub async fn forget_expired_members(client: &impl GenericClient) -> Result<(), CoordError> {
    client
        .execute(
            "DELETE FROM didban_members WHERE expires_at < now() - interval '1 day'",
            &[],
        )
        .await
        .map_err(|e| CoordError::query("forget expired members", e))?;
    Ok(())
}

/// The live members of `role` in `cluster`, by id; rows past their TTL are left out.
pub async fn live_members(
    client: &impl GenericClient,
    cluster: &str,
    role: &str,
) -> Result<Vec<MemberRow>, CoordError> {
    let what = format!("list the live {role} members");
    let rows = client
        .query(
            "SELECT id, address FROM didban_members
             WHERE cluster = $1 AND role = $2 AND expires_at > now() ORDER BY id",
            &[&cluster, &role],
        )
        .await
        .map_err(|e| CoordError::query(what, e))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(MemberRow {
            id: r.get(0),
            address: r.get(1),
        });
    }
    Ok(out)
}

/// Keeps a member announced in the background, every third of its TTL; dropping it stops
/// renewing (the row expires, as after a crash), [`Announcer::leave`] deletes the row.
pub struct Announcer {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Announcer {
    /// Starts announcing `member` on `runtime` through a connection to `url`.
    pub fn start(
        url: String,
        options: ConnectOptions,
        member: Member,
        runtime: &tokio::runtime::Handle,
    ) -> Announcer {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = runtime.spawn(async move {
            let db = ReconnectingClient::new(url, options);
            let period = (member.ttl / 3).max(Duration::from_millis(50));
            let mut forgotten = false;
            loop {
                let announced = async {
                    let client = db.get().await?;
                    if !forgotten {
                        forget_expired_members(&*client).await?;
                        forgotten = true;
                    }
                    member.announce(&*client).await
                };
                if let Err(e) = tokio::time::timeout(period, announced)
                    .await
                    .unwrap_or_else(|_| {
                        Err(CoordError::Query {
                            what: "announce".into(),
                            message: format!("no answer within {period:?}"),
                        })
                    })
                {
                    tracing::warn!(role = %member.role, error = %e, "cannot announce this process; others may not find it");
                }
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = &mut stopped => {
                        if let Ok(client) = db.get().await {
                            if let Err(e) = member.leave(&*client).await {
                                tracing::warn!(error = %e, "member row not deleted; it expires after its TTL");
                            }
                        }
                        return;
                    }
                }
            }
        });
        Announcer {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops announcing and deletes the row.
    pub async fn leave(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
