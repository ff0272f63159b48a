//! `[storage] object_store` and `[storage.s3]`: where metric blocks live — the data
//! directory (`"file"`, the default) or a bucket of an S3-compatible store. The access key
//! comes from files or the environment, never from the TOML itself, so the config file
//! can be world-readable and kept in version control.

use std::path::PathBuf;

use anyhow::{bail, Context};
use didban_base::parse_bytes;
use didban_store::{BlockStorage, S3Config};
use serde::Deserialize;

/// Environment variable holding the access key id when `access_key_id_file` is not set.
pub const ACCESS_KEY_ENV: &str = "DIDBAN_S3_ACCESS_KEY_ID";
/// Environment variable holding the secret when `secret_access_key_file` is not set.
pub const SECRET_KEY_ENV: &str = "DIDBAN_S3_SECRET_ACCESS_KEY";

/// Default `storage.s3.cache_size`: enough for the hot blocks of a day of the bench's load.
const DEFAULT_CACHE: &str = "2GiB";

/// `[storage.s3]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileS3 {
    endpoint: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
    access_key_id_file: Option<PathBuf>,
    secret_access_key_file: Option<PathBuf>,
    allow_http: Option<bool>,
    cache_size: Option<String>,
}

/// The block storage `object_store` and `[storage.s3]` ask for; `env` reads an
/// environment variable (the process's, or a test's map).
pub(super) fn block_storage(
    kind: Option<&str>,
    s3: Option<FileS3>,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<BlockStorage> {
    match kind.unwrap_or("file") {
        "file" => {
            if s3.is_some() {
                bail!("storage.s3 is set but storage.object_store is \"file\"; set object_store = \"s3\" to use it");
            }
            Ok(BlockStorage::File)
        }
        "s3" => {
            let s3 = s3.context("storage.object_store = \"s3\" needs a [storage.s3] section")?;
            Ok(BlockStorage::S3(s3_config(s3, env)?))
        }
        other => bail!("storage.object_store: {other:?} is neither \"file\" nor \"s3\""),
    }
}

fn s3_config(s3: FileS3, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<S3Config> {
    let endpoint = s3.endpoint.context("storage.s3.endpoint is required")?;
    let allow_http = s3.allow_http.unwrap_or(false);
    if let Some(rest) = endpoint.strip_prefix("http://") {
        if !allow_http {
            bail!("storage.s3.endpoint {endpoint:?} is plain HTTP; set storage.s3.allow_http = true to allow it");
        }
        if rest.is_empty() {
            bail!("storage.s3.endpoint {endpoint:?} has no host");
        }
    } else if !endpoint.starts_with("https://") {
        bail!("storage.s3.endpoint {endpoint:?} must start with https:// (or http:// with allow_http)");
    }
    let bucket = s3.bucket.context("storage.s3.bucket is required")?;
    if bucket.is_empty() || bucket.contains('/') {
        bail!("storage.s3.bucket {bucket:?} is not a bucket name");
    }
    let access_key_id = secret(s3.access_key_id_file, ACCESS_KEY_ENV, "access_key_id_file", &env)?;
    let secret_access_key = secret(
        s3.secret_access_key_file,
        SECRET_KEY_ENV,
        "secret_access_key_file",
        &env,
    )?;
    let cache = s3.cache_size.unwrap_or_else(|| DEFAULT_CACHE.to_string());
    let cache_bytes = parse_bytes(&cache).context("storage.s3.cache_size")?;
    Ok(S3Config {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        bucket,
        region: s3.region.unwrap_or_else(|| "us-east-1".to_string()),
        access_key_id,
        secret_access_key,
        allow_http,
        cache_bytes,
    })
}

/// A credential from `file` (trimmed) when set, else from the environment variable `var`.
fn secret(
    file: Option<PathBuf>,
    var: &str,
    key: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    let value = match file {
        Some(path) => std::fs::read_to_string(&path)
            .with_context(|| format!("storage.s3.{key}: reading {}", path.display()))?
            .trim()
            .to_string(),
        None => {
            env(var).with_context(|| format!("storage.s3: set {key} or the environment variable {var}"))?
        }
    };
    if value.is_empty() {
        bail!("storage.s3: the {key} / {var} credential is empty");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> anyhow::Result<BlockStorage> {
        #[derive(Deserialize)]
        struct Doc {
            object_store: Option<String>,
            s3: Option<FileS3>,
        }
        let doc: Doc = toml::from_str(text)?;
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        block_storage(doc.object_store.as_deref(), doc.s3, |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    const KEYS: &[(&str, &str)] = &[(ACCESS_KEY_ENV, "GK1"), (SECRET_KEY_ENV, "s3cr3t")];

    #[test]
    fn file_is_the_default_and_s3_takes_its_keys_from_the_environment_or_files() {
        assert_eq!(parse("", &[]).unwrap(), BlockStorage::File);
        let s3 = parse(
            "object_store = \"s3\"\n[s3]\nendpoint = \"http://127.0.0.1:3900/\"\nbucket = \"b\"\nregion = \"garage\"\nallow_http = true\ncache_size = \"64MiB\"",
            KEYS,
        )
        .unwrap();
        let BlockStorage::S3(c) = s3 else {
            panic!("expected S3")
        };
        assert_eq!(c.endpoint, "http://127.0.0.1:3900");
        assert_eq!(
            (c.access_key_id.as_str(), c.secret_access_key.as_str()),
            ("GK1", "s3cr3t")
        );
        assert_eq!(c.cache_bytes, 64 << 20);
        assert!(!format!("{c:?}").contains("s3cr3t"), "Debug hides the secret");

        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, "from-file\n").unwrap();
        let text = format!(
            "object_store = \"s3\"\n[s3]\nendpoint = \"https://s3.example\"\nbucket = \"b\"\nsecret_access_key_file = {:?}",
            secret_file.display().to_string()
        );
        let BlockStorage::S3(c) = parse(&text, KEYS).unwrap() else {
            panic!("expected S3")
        };
        assert_eq!(c.secret_access_key, "from-file");
        assert_eq!(c.region, "us-east-1");
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let cases = [
            ("object_store = \"gcs\"", "\"gcs\""),
            ("object_store = \"s3\"", "[storage.s3]"),
            ("[s3]\nbucket = \"b\"", "object_store"),
            ("object_store = \"s3\"\n[s3]\nendpoint = \"http://h\"\nbucket = \"b\"", "allow_http"),
            ("object_store = \"s3\"\n[s3]\nendpoint = \"ftp://h\"\nbucket = \"b\"", "ftp://h"),
            ("object_store = \"s3\"\n[s3]\nendpoint = \"https://h\"", "storage.s3.bucket"),
            ("object_store = \"s3\"\n[s3]\nendpoint = \"https://h\"\nbucket = \"a/b\"", "\"a/b\""),
            ("object_store = \"s3\"\n[s3]\nendpoint = \"https://h\"\nbucket = \"b\"\ncache_size = \"lots\"", "cache_size"),
        ];
        for (text, needle) in cases {
            let err = format!("{:#}", parse(text, KEYS).unwrap_err());
            assert!(err.contains(needle), "{text:?} → {err}");
        }
        let err = format!(
            "{:#}",
            parse(
                "object_store = \"s3\"\n[s3]\nendpoint = \"https://h\"\nbucket = \"b\"",
                &[]
            )
            .unwrap_err()
        );
        assert!(err.contains(ACCESS_KEY_ENV), "{err}");
    }
}
