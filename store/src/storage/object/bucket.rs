//! The bucket blocks are uploaded to, behind a blocking interface: the block readers and
//! writers are synchronous (they run on the maintenance thread and on query threads), so
//! every request is a future run on this bucket's own small tokio runtime and waited for
//! through a channel — which works from any thread, inside a runtime or not.

use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use parking_lot::{Condvar, Mutex};
use tokio::io::AsyncWriteExt;

use super::config::S3Config;
use crate::storage::error::BlockError;

/// Size of one part of a multipart upload, and the size past which one is used.
const PART_BYTES: usize = 8 * 1024 * 1024;

/// An object in the bucket: its key, size and when it was written.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub key: String,
    pub size: u64,
    /// Last modification by the store's clock, in Unix milliseconds.
    pub modified_ms: i64,
}

/// A connection to one bucket of an S3-compatible store.
pub(crate) struct Bucket {
    store: Arc<dyn ObjectStore>,
    /// `s3://<bucket>`, the prefix of the object names in error messages.
    url: String,
    /// Runs the requests; shut down in the background on drop (a runtime dropped inside
    /// another runtime's task would panic otherwise).
    runtime: Option<tokio::runtime::Runtime>,
    /// Background jobs (deletions, cache fills) not finished yet; the drop waits for them.
    pending: Arc<Pending>,
}

/// A count of running background jobs that can be waited for from any thread.
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    done: Condvar,
}

/// Counts one background job while it lives (also when the runtime cancels it).
struct PendingGuard(Arc<Pending>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let mut count = self.0.count.lock();
        *count = count.saturating_sub(1);
        self.0.done.notify_all();
    }
}

/// Longest a dropped bucket waits for its background jobs (a deletion not done by then is
/// redone: retention or compaction finds the block again at the next start).
const DRAIN: Duration = Duration::from_secs(10);

impl Bucket {
    /// Connects to the bucket `config` names. No request is made yet: a wrong endpoint or
    /// key shows at the first listing (at open).
    pub(crate) fn connect(config: &S3Config) -> Result<Bucket, BlockError> {
        // TLS endpoints: rustls with the ring provider, as everywhere in Didban.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = format!("s3://{}", config.bucket);
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
            ..RetryConfig::default()
        };
        let options = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(60));
        let store = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_allow_http(config.allow_http)
            .with_virtual_hosted_style_request(false)
            .with_retry(retry)
            .with_client_options(options)
            .build()
            .map_err(|source| BlockError::Remote {
                url: url.clone(),
                source,
            })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("didban-objstore")
            .enable_all()
            .build()
            .map_err(|e| BlockError::io(Path::new(&url), e))?;
        Ok(Bucket {
            store: Arc::new(store),
            url,
            runtime: Some(runtime),
            pending: Arc::new(Pending::default()),
        })
    }

    /// `s3://<bucket>/<key>`, for messages.
    pub(crate) fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    /// The error of a request on `key`.
    fn err(&self, key: &str, source: object_store::Error) -> BlockError {
        BlockError::Remote {
            url: self.url(key),
            source,
        }
    }

    /// Runs `fut` on the bucket's runtime and waits for its result.
    fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Option<T> {
        let runtime = self.runtime.as_ref()?;
        let (tx, rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().ok()
    }

    /// Starts `fut` on the bucket's runtime without waiting for it; dropping the bucket
    /// waits (a while) for it to finish.
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        if let Some(runtime) = self.runtime.as_ref() {
            *self.pending.count.lock() += 1;
            let guard = PendingGuard(self.pending.clone());
            runtime.spawn(async move {
                fut.await;
                drop(guard);
            });
        }
    }

    /// The runtime stopped under a request: only at shutdown.
    fn stopped(&self, key: &str) -> BlockError {
        BlockError::io(
            Path::new(&self.url(key)),
            std::io::Error::other("object store client stopped"),
        )
    }

    /// Uploads the local file `path` as `key`, in parts past [`PART_BYTES`], streaming it
    /// so a large block is never whole in memory.
    pub(crate) fn upload_file(&self, path: &Path, key: &str) -> Result<(), BlockError> {
        let store = self.store.clone();
        let (path_owned, location) = (path.to_path_buf(), ObjectPath::from(key));
        let result = self.run(async move {
            let mut file = tokio::fs::File::open(&path_owned).await?;
            let mut writer = BufWriter::with_capacity(store, location, PART_BYTES);
            if let Err(e) = tokio::io::copy(&mut file, &mut writer).await {
                let _ = writer.abort().await;
                return Err(e);
            }
            writer.shutdown().await
        });
        match result {
            None => Err(self.stopped(key)),
            Some(r) => r.map_err(|e| BlockError::io(Path::new(&self.url(key)), e)),
        }
    }

    /// The whole object `key`.
    pub(crate) fn get(&self, key: &str) -> Result<Bytes, BlockError> {
        let store = self.store.clone();
        let location = ObjectPath::from(key);
        let result = self.run(async move {
            match store.get(&location).await {
                Ok(r) => r.bytes().await,
                Err(e) => Err(e),
            }
        });
        match result {
            None => Err(self.stopped(key)),
            Some(r) => r.map_err(|e| self.err(key, e)),
        }
    }

    /// Bytes `range` of object `key` (one range request).
    pub(crate) fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, BlockError> {
        let store = self.store.clone();
        let location = ObjectPath::from(key);
        match self.run(async move { store.get_range(&location, range).await }) {
            None => Err(self.stopped(key)),
            Some(r) => r.map_err(|e| self.err(key, e)),
        }
    }

    /// Every object whose key starts with `prefix/`.
    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<Object>, BlockError> {
        let store = self.store.clone();
        let location = ObjectPath::from(prefix);
        let result = self.run(async move {
            let mut out = Vec::new();
            let mut stream = store.list(Some(&location));
            while let Some(item) = stream.next().await {
                let meta = item?;
                out.push(Object {
                    key: meta.location.to_string(),
                    size: meta.size,
                    modified_ms: meta.last_modified.timestamp_millis(),
                });
            }
            Ok::<_, object_store::Error>(out)
        });
        match result {
            None => Err(self.stopped(prefix)),
            Some(r) => r.map_err(|e| self.err(prefix, e)),
        }
    }

    /// Deletes object `key`; one already gone counts as deleted.
    pub(crate) fn delete(&self, key: &str) -> Result<(), BlockError> {
        let store = self.store.clone();
        let location = ObjectPath::from(key);
        match self.run(async move { store.delete(&location).await }) {
            None => Err(self.stopped(key)),
            Some(Ok(()) | Err(object_store::Error::NotFound { .. })) => Ok(()),
            Some(Err(e)) => Err(self.err(key, e)),
        }
    }

    /// The client, for requests a caller runs itself in [`Bucket::spawn`].
    pub(crate) fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + DRAIN;
        let mut count = self.pending.count.lock();
        while *count > 0 {
            if self.pending.done.wait_until(&mut count, deadline).timed_out() {
                tracing::warn!(jobs = *count, "object store jobs unfinished at shutdown");
                break;
            }
        }
        drop(count);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
