//! The metastore: the list of blocks per tenant and signal in PostgreSQL, so processes
//! sharing a bucket see each other's blocks without listing it, and one of them — the
//! holder of the `compactor` lease — compacts, applies retention and collects garbage.
//!
//! - `config`: [`MetastoreConfig`].
//! - `schema`: the `didban_blocks` table and a block's row.
//! - `gc`: the compactor's garbage collection of objects in the bucket.
//! - `refresh`: the blocks a store drops when the rows say they were retired.
//!
//! Transactions: a block is published by one INSERT after its data files and `meta.json`
//! are in the bucket; a compaction inserts the merged block and marks its sources
//! deleted in one transaction, and retention marks blocks deleted — both only after
//! checking, in the same transaction, that this process holds the lease (fencing a
//! compactor that stalled past its TTL). Retired blocks' objects are deleted by the
//! compactor's garbage collection once the grace period has passed, so queries of other
//! processes that still read them finish first.
//!
//! The block readers are synchronous, so like the bucket client the metastore runs its
//! requests on a small runtime of its own (which also runs the lease holder) and waits
//! for each.

mod config;
pub(crate) mod gc;
pub(crate) mod refresh;
mod schema;

pub use config::MetastoreConfig;
pub(crate) use schema::BlockRow;

use std::future::Future;
use std::sync::Arc;

use didban_coord::{Client, ConnectOptions, CoordError, Lease, LeaseHolder, ReconnectingClient};
use parking_lot::Mutex;

use crate::storage::error::BlockError;

/// The lease the compactor of metric blocks holds.
pub const COMPACTOR_LEASE: &str = "compactor";

/// The compactor lease of `signal`'s blocks: `compactor` for metrics, `compactor-<signal>`
/// for the others. Each signal's store holds its own metastore and competes for its own
/// lease, so each signal always has a compactor (one shared lease would leave the signals
/// whose holder lost the race in the winning process without one).
pub(crate) fn compactor_lease(signal: &str) -> String {
    if signal == "metrics" {
        COMPACTOR_LEASE.to_string()
    } else {
        format!("{COMPACTOR_LEASE}-{signal}")
    }
}

/// The metastore of one signal's blocks (`metrics`, `traces` or `logs`).
pub(crate) struct Metastore {
    shared: Arc<Shared>,
    holder: Mutex<Option<LeaseHolder>>,
    /// Runs the statements and the lease holder; shut down in the background on drop.
    runtime: Option<tokio::runtime::Runtime>,
}

/// What the statements need, moved into each request's future.
struct Shared {
    tenant: String,
    signal: &'static str,
    lease: Lease,
    /// The connection, opened again by the next statement after it broke.
    db: ReconnectingClient,
}

impl Shared {
    /// The connection (see [`ReconnectingClient::get`]).
    async fn client(&self) -> Result<tokio::sync::MappedMutexGuard<'_, Client>, CoordError> {
        self.db.get().await
    }
}

impl Metastore {
    /// Connects, brings the schema up to date and starts competing for the compactor
    /// lease. Fails when PostgreSQL cannot be reached: the block list comes from it.
    pub(crate) fn open(config: &MetastoreConfig, signal: &'static str) -> Result<Metastore, BlockError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("didban-metastore")
            .enable_all()
            .build()
            .map_err(|e| BlockError::io(std::path::Path::new("metastore runtime"), e))?;
        let holder_id = didban_coord::holder_id();
        let options = ConnectOptions {
            ca_file: config.ca_file.clone(),
            timeout: config.connect_timeout,
        };
        let shared = Arc::new(Shared {
            tenant: config.tenant.clone(),
            signal,
            lease: Lease::new(compactor_lease(signal), holder_id, config.compactor_lease_ttl),
            db: ReconnectingClient::new(config.url.clone(), options.clone()),
        });
        let mut metastore = Metastore {
            shared: shared.clone(),
            holder: Mutex::new(None),
            runtime: Some(runtime),
        };
        metastore.run(async move {
            let mut client = shared.client().await?;
            didban_coord::prepare(&mut client).await?;
            didban_coord::migrate(&mut client, "metastore", schema::MIGRATIONS).await?;
            Ok(())
        })?;
        if let Some(runtime) = metastore.runtime.as_ref().filter(|_| config.compactor) {
            let holder = LeaseHolder::start(
                config.url.clone(),
                options,
                metastore.shared.lease.clone(),
                runtime.handle(),
            );
            metastore.holder = Mutex::new(Some(holder));
        }
        Ok(metastore)
    }

    /// Runs `fut` on the metastore's runtime and waits for it.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, CoordError>> + Send + 'static,
    ) -> Result<T, BlockError> {
        let stopped = || {
            BlockError::Metastore(CoordError::Query {
                what: "request".to_string(),
                message: "client stopped".to_string(),
            })
        };
        let runtime = self.runtime.as_ref().ok_or_else(stopped)?;
        let (tx, rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| stopped())?.map_err(BlockError::Metastore)
    }

    /// Whether this process holds the compactor lease now.
    pub(crate) fn is_compactor(&self) -> bool {
        self.holder.lock().as_ref().is_some_and(|h| h.is_held())
    }

    /// The live (not retired) blocks.
    pub(crate) fn list(&self) -> Result<Vec<BlockRow>, BlockError> {
        let shared = self.shared.clone();
        self.run(async move {
            let client = shared.client().await?;
            let sql = format!(
                "SELECT {} FROM didban_blocks WHERE tenant = $1 AND signal = $2 AND deleted_at IS NULL \
                 ORDER BY min_time_ms, max_time_ms",
                schema::COLUMNS
            );
            let rows = client
                .query(&sql, &[&shared.tenant, &shared.signal])
                .await
                .map_err(|e| CoordError::query("list blocks", e))?;
            Ok(rows.iter().map(BlockRow::from_row).collect())
        })
    }

    /// Records block `row`, whose files are all in the bucket, as published.
    pub(crate) fn publish(&self, row: BlockRow) -> Result<(), BlockError> {
        let shared = self.shared.clone();
        self.run(async move {
            let client = shared.client().await?;
            insert(&*client, &shared, &row).await
        })
    }

    /// Retires `removed` and, when given, publishes `added` in its place — in one
    /// transaction that first checks this process holds the compactor lease. Fails (and
    /// changes nothing) when the lease is not held or one of `removed` is no longer live.
    pub(crate) fn replace(&self, added: Option<BlockRow>, removed: Vec<String>) -> Result<(), BlockError> {
        let shared = self.shared.clone();
        self.run(async move {
            let mut client = shared.client().await?;
            let what = |s: &str| s.to_string();
            let tx = client
                .transaction()
                .await
                .map_err(|e| CoordError::query(what("begin"), e))?;
            shared.lease.check_held(&tx).await?;
            if let Some(row) = &added {
                insert(&tx, &shared, row).await?;
            }
            let n = tx
                .execute(
                    "UPDATE didban_blocks SET deleted_at = now() \
                     WHERE tenant = $1 AND signal = $2 AND name = ANY($3) AND deleted_at IS NULL",
                    &[&shared.tenant, &shared.signal, &removed],
                )
                .await
                .map_err(|e| CoordError::query(what("retire blocks"), e))?;
            if n != removed.len() as u64 {
                return Err(CoordError::Query {
                    what: what("retire blocks"),
                    message: format!(
                        "{} of the {} blocks {removed:?} are no longer live; nothing changed",
                        removed.len() as u64 - n,
                        removed.len()
                    ),
                });
            }
            tx.commit()
                .await
                .map_err(|e| CoordError::query(what("commit"), e))
        })
    }

    /// Names of every block of the signal with a row, live or retired, of any tenant
    /// (tenants may share a bucket), and of this tenant's blocks retired longer than
    /// `grace` ago (by the database's clock).
    pub(crate) fn rows_for_gc(
        &self,
        grace: std::time::Duration,
    ) -> Result<(Vec<String>, Vec<String>), BlockError> {
        let shared = self.shared.clone();
        self.run(async move {
            let client = shared.client().await?;
            let rows = client
                .query(
                    "SELECT name, tenant = $1 AND deleted_at < now() - make_interval(secs => $3) \
                     FROM didban_blocks WHERE signal = $2",
                    &[&shared.tenant, &shared.signal, &grace.as_secs_f64()],
                )
                .await
                .map_err(|e| CoordError::query("rows for garbage collection", e))?;
            let mut all = Vec::new();
            let mut expired = Vec::new();
            for row in rows {
                let name: String = row.get(0);
                if row.get::<_, Option<bool>>(1) == Some(true) {
                    expired.push(name.clone());
                }
                all.push(name);
            }
            Ok((all, expired))
        })
    }

    /// Deletes the rows of retired blocks `names` whose objects are gone (under the
    /// lease, so only the compactor forgets).
    pub(crate) fn forget(&self, names: Vec<String>) -> Result<(), BlockError> {
        let shared = self.shared.clone();
        self.run(async move {
            let mut client = shared.client().await?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| CoordError::query("begin", e))?;
            shared.lease.check_held(&tx).await?;
            tx.execute(
                "DELETE FROM didban_blocks WHERE tenant = $1 AND signal = $2 AND name = ANY($3) \
                 AND deleted_at IS NOT NULL",
                &[&shared.tenant, &shared.signal, &names],
            )
            .await
            .map_err(|e| CoordError::query("forget retired blocks", e))?;
            tx.commit().await.map_err(|e| CoordError::query("commit", e))
        })
    }

    /// Gives the compactor lease up (at shutdown), so another process takes it at once.
    pub(crate) async fn release(&self) {
        let holder = self.holder.lock().take();
        let (Some(holder), Some(runtime)) = (holder, self.runtime.as_ref()) else {
            return;
        };
        let _ = runtime.spawn(holder.release()).await;
    }
}

/// Inserts `row` for `shared`'s tenant and signal.
async fn insert(
    client: &impl didban_coord::GenericClient,
    shared: &Shared,
    row: &BlockRow,
) -> Result<(), CoordError> {
    let mut names: Vec<&str> = Vec::new();
    let mut sizes: Vec<i64> = Vec::new();
    for (name, size) in &row.files {
        names.push(name);
        sizes.push(i64::try_from(*size).unwrap_or(i64::MAX));
    }
    client
        .execute(
            "INSERT INTO didban_blocks (tenant, signal, name, min_time_ms, max_time_ms, level, series, \
             samples, histogram_samples, bytes, file_names, file_sizes, published_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &shared.tenant,
                &shared.signal,
                &row.name,
                &row.min_time_ms,
                &row.max_time_ms,
                &row.level,
                &row.series,
                &row.samples,
                &row.histogram_samples,
                &row.bytes,
                &names,
                &sizes,
                &shared.lease.holder(),
            ],
        )
        .await
        .map_err(|e| CoordError::query(format!("publish block {}", row.name), e))?;
    Ok(())
}

impl Drop for Metastore {
    /// Stops the lease holder without releasing (the lease expires after its TTL) and
    /// the runtime in the background.
    fn drop(&mut self) {
        drop(self.holder.lock().take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests;
