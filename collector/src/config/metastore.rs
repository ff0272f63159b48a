//! `[storage] metastore` and `[storage.postgres]`: the optional PostgreSQL metastore of
//! the bucket's blocks (and the compactor election). Its URL may hold a password, so it
//! comes from `url_file` or the environment when it does — never from the TOML itself —
//! as the S3 keys do.

use std::path::PathBuf;

use anyhow::{bail, Context};
use didban_base::parse_duration;
use didban_store::{BlockStorage, MetastoreConfig};
use serde::Deserialize;

/// Environment variable holding the metastore URL when neither `url` nor `url_file` is set.
pub const URL_ENV: &str = "DIDBAN_METASTORE_URL";

/// `[storage.postgres]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePostgres {
    url: Option<String>,
    url_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    connect_timeout: Option<String>,
    tenant: Option<String>,
    compactor_lease_ttl: Option<String>,
    gc_grace: Option<String>,
}

/// The metastore `metastore` and `[storage.postgres]` ask for, given the block storage
/// already read; `env` reads an environment variable.
pub(super) fn metastore(
    kind: Option<&str>,
    postgres: Option<FilePostgres>,
    blocks: &BlockStorage,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<MetastoreConfig>> {
    match kind.unwrap_or("none") {
        "none" => {
            if postgres.is_some() {
                bail!("storage.postgres is set but storage.metastore is not \"postgres\"; set metastore = \"postgres\" to use it");
            }
            Ok(None)
        }
        "postgres" => {
            if !matches!(blocks, BlockStorage::S3(_)) {
                bail!("storage.metastore = \"postgres\" needs storage.object_store = \"s3\": the metastore lists blocks shared in a bucket");
            }
            let pg =
                postgres.context("storage.metastore = \"postgres\" needs a [storage.postgres] section")?;
            Ok(Some(config(pg, env)?))
        }
        other => bail!("storage.metastore: {other:?} is neither \"none\" nor \"postgres\""),
    }
}

fn config(pg: FilePostgres, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<MetastoreConfig> {
    let source = didban_coord::UrlSource {
        section: "storage.postgres".into(),
        url: pg.url,
        url_file: pg.url_file,
        env_var: URL_ENV.into(),
    };
    let url = source.resolve(env)?;
    let mut c = MetastoreConfig::new(url);
    if let Some(ca) = pg.ca_file {
        if !ca.is_file() {
            bail!("storage.postgres.ca_file {} is not a readable file", ca.display());
        }
        c.ca_file = Some(ca);
    }
    if let Some(v) = pg.connect_timeout {
        c.connect_timeout = parse_duration(&v).context("storage.postgres.connect_timeout")?;
    }
    if let Some(t) = pg.tenant {
        if t.is_empty() || t.len() > 200 {
            bail!("storage.postgres.tenant {t:?} must be 1 to 200 characters");
        }
        c.tenant = t;
    }
    if let Some(v) = pg.compactor_lease_ttl {
        c.compactor_lease_ttl = parse_duration(&v).context("storage.postgres.compactor_lease_ttl")?;
        if c.compactor_lease_ttl < std::time::Duration::from_secs(1) {
            bail!("storage.postgres.compactor_lease_ttl {v:?} is below the minimum of 1s");
        }
    }
    if let Some(v) = pg.gc_grace {
        c.gc_grace = parse_duration(&v).context("storage.postgres.gc_grace")?;
        if c.gc_grace < std::time::Duration::from_secs(1) {
            bail!("storage.postgres.gc_grace {v:?} is below the minimum of 1s");
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use didban_store::S3Config;

    fn s3() -> BlockStorage {
        BlockStorage::S3(S3Config {
            endpoint: "https://s3.example".into(),
            bucket: "b".into(),
            region: "r".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            allow_http: false,
            cache_bytes: 1 << 20,
        })
    }

    fn parse(
        text: &str,
        blocks: &BlockStorage,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Option<MetastoreConfig>> {
        #[derive(Deserialize)]
        struct Doc {
            metastore: Option<String>,
            postgres: Option<FilePostgres>,
        }
        let doc: Doc = toml::from_str(text)?;
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        metastore(doc.metastore.as_deref(), doc.postgres, blocks, |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn none_is_the_default_and_postgres_takes_its_url_from_the_file_or_environment() {
        assert_eq!(parse("", &s3(), &[]).unwrap(), None);
        let c = parse(
            "metastore = \"postgres\"\n[postgres]\nurl = \"postgres://didban@db:5432/didban?sslmode=require\"\ncompactor_lease_ttl = \"10s\"\ngc_grace = \"5m\"\ntenant = \"team-a\"",
            &s3(),
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.url, "postgres://didban@db:5432/didban?sslmode=require");
        assert_eq!(c.compactor_lease_ttl, std::time::Duration::from_secs(10));
        assert_eq!(c.gc_grace, std::time::Duration::from_secs(300));
        assert_eq!(c.tenant, "team-a");

        let env_url = "postgres://didban:s3cret@db/didban";
        let c = parse(
            "metastore = \"postgres\"\n[postgres]",
            &s3(),
            &[(URL_ENV, env_url)],
        )
        .unwrap()
        .unwrap();
        assert_eq!((c.url.as_str(), c.tenant.as_str()), (env_url, "default"));
        assert_eq!(c.compactor_lease_ttl, std::time::Duration::from_secs(30));
        assert!(!format!("{c:?}").contains("s3cret"), "Debug hides the password");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("url");
        std::fs::write(&file, "host=db user=didban password=s3cret dbname=didban\n").unwrap();
        let text = format!(
            "metastore = \"postgres\"\n[postgres]\nurl_file = {:?}",
            file.display().to_string()
        );
        let c = parse(&text, &s3(), &[]).unwrap().unwrap();
        assert_eq!(c.url, "host=db user=didban password=s3cret dbname=didban");
    }

    #[test]
    fn bad_combinations_and_values_are_refused_naming_the_key() {
        let url = "[postgres]\nurl = \"postgres://db/didban\"";
        let cases = [
            (
                format!("metastore = \"postgres\"\n{url}"),
                BlockStorage::File,
                "object_store = \"s3\"",
            ),
            (url.to_string(), s3(), "storage.metastore is not"),
            ("metastore = \"etcd\"".to_string(), s3(), "\"etcd\""),
            ("metastore = \"postgres\"".to_string(), s3(), "[storage.postgres]"),
            ("metastore = \"postgres\"\n[postgres]".to_string(), s3(), URL_ENV),
            (
                "metastore = \"postgres\"\n[postgres]\nurl = \"postgres://u:pw@db/d\"".to_string(),
                s3(),
                "holds a password",
            ),
            (
                "metastore = \"postgres\"\n[postgres]\nurl = \"postgres://db/d?sslmode=verify-full\""
                    .to_string(),
                s3(),
                "sslmode",
            ),
            (
                "metastore = \"postgres\"\n[postgres]\nurl = \"postgres://db/d\"\nurl_file = \"/x\""
                    .to_string(),
                s3(),
                "not both",
            ),
            (
                format!("metastore = \"postgres\"\n{url}\ncompactor_lease_ttl = \"100ms\""),
                s3(),
                "compactor_lease_ttl",
            ),
            (
                format!("metastore = \"postgres\"\n{url}\ngc_grace = \"soon\""),
                s3(),
                "gc_grace",
            ),
            (
                format!("metastore = \"postgres\"\n{url}\nca_file = \"/nonexistent/ca.pem\""),
                s3(),
                "/nonexistent/ca.pem",
            ),
            (
                format!("metastore = \"postgres\"\n{url}\nport = 5432"),
                s3(),
                "port",
            ),
        ];
        for (text, blocks, needle) in cases {
            let err = format!("{:#}", parse(&text, &blocks, &[]).unwrap_err());
            assert!(err.contains(needle), "{text:?} → {err}");
        }
        let err = format!(
            "{:#}",
            parse(
                "metastore = \"postgres\"\n[postgres]\nurl = \"postgres://u:pw@db/d\"",
                &s3(),
                &[]
            )
            .unwrap_err()
        );
        assert!(!err.contains("pw@"), "the password is not repeated: {err}");
    }
}
