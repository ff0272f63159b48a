//! Where metric blocks live: the local data directory (today's layout, the default) or a
//! bucket of an S3-compatible object store, with a bounded local cache of hot files.

/// Where the metric database keeps its blocks.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum BlockStorage {
    /// `<data_dir>/metrics/blocks`, as always.
    #[default]
    File,
    /// A bucket of an S3-compatible store; blocks are staged in the data directory,
    /// uploaded once written and read back through the cache.
    S3(S3Config),
}

/// The bucket and how to reach it.
#[derive(Clone, PartialEq)]
pub struct S3Config {
    /// Base URL of the S3 API, e.g. `https://s3.eu-west-1.amazonaws.com` or
    /// `http://127.0.0.1:3900` for a local Garage.
    pub endpoint: String,
    /// Bucket name; it must exist and the key must be allowed to read, write and delete.
    pub bucket: String,
    /// Region for request signing (Garage's default is `garage`).
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (never printed by `Debug`).
    pub secret_access_key: String,
    /// Allows a plain `http://` endpoint (a store on loopback or a private network).
    pub allow_http: bool,
    /// Bytes of block files kept in the local cache (`<data_dir>/cache/blocks`), least
    /// recently used file dropped first.
    pub cache_bytes: u64,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field("allow_http", &self.allow_http)
            .field("cache_bytes", &self.cache_bytes)
            .finish()
    }
}
