//! `[cluster]` and `--role`: which parts of the server this process runs when several
//! processes share a bucket and a metastore (docs/deployment.md, "Roles").

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use didban_base::parse_duration;
use serde::Deserialize;

/// Environment variable holding the shared secret of the internal API when `secret_file`
/// is not set.
pub const SECRET_ENV: &str = "DIDBAN_CLUSTER_SECRET";

/// What one process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Everything, as one process always did (the default).
    #[default]
    All,
    /// Accepts writes into its head and WAL and publishes blocks; answers queriers with
    /// its heads.
    Ingester,
    /// Answers queries over the published blocks and the live ingesters' heads.
    Querier,
    /// Compacts, downsamples, applies retention and collects garbage in the bucket (one
    /// at a time, by the metastore's lease).
    Compactor,
    /// Runs the alert engine over the published blocks and the live ingesters' heads; its
    /// own head holds the rules' output (`ALERTS`, recorded series), which it publishes
    /// and answers queriers for like an ingester.
    Alerting,
}

impl Role {
    /// Parses `all`, `ingester`, `querier` or `compactor`.
    pub fn parse(s: &str) -> anyhow::Result<Role> {
        match s {
            "all" => Ok(Role::All),
            "ingester" => Ok(Role::Ingester),
            "querier" => Ok(Role::Querier),
            "compactor" => Ok(Role::Compactor),
            "alerting" => Ok(Role::Alerting),
            other => bail!("role {other:?} is not one of all, ingester, querier, compactor, alerting"),
        }
    }

    /// The name, as in the config and the members table.
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Ingester => "ingester",
            Role::Querier => "querier",
            Role::Compactor => "compactor",
            Role::Alerting => "alerting",
        }
    }

    /// Whether this role holds a head queriers must ask (ingesters; alerting instances for
    /// their rules' output).
    pub fn serves_heads(self) -> bool {
        matches!(self, Role::Ingester | Role::Alerting)
    }

    /// Whether this role reads through the live ingesters' heads besides the blocks.
    pub fn reads_cluster(self) -> bool {
        matches!(self, Role::Querier | Role::Alerting)
    }

    /// Whether this role runs the alert engine.
    pub fn alerts(self) -> bool {
        matches!(self, Role::All | Role::Alerting)
    }

    /// Whether this role accepts writes (remote_write, OTLP).
    pub fn ingests(self) -> bool {
        matches!(self, Role::All | Role::Ingester)
    }

    /// Whether this role competes for the compactor lease.
    pub fn compacts(self) -> bool {
        matches!(self, Role::All | Role::Compactor)
    }
}

/// `[cluster]` resolved.
#[derive(Clone, PartialEq)]
pub struct ClusterConfig {
    /// This process's role.
    pub role: Role,
    /// The URL other processes reach this one's HTTP listener at (an ingester's, for
    /// queriers): `http://10.0.0.5:9090`.
    pub advertise_url: Option<String>,
    /// The bearer token of the internal API (`/internal/v1/…`), the same in every process.
    pub secret: Option<String>,
    /// How long a member's announcement holds without renewal (default 15s).
    pub member_ttl: Duration,
    /// Longest a querier waits for one ingester's answer (default 10s).
    pub fanout_timeout: Duration,
}

/// Role `all`, no address or secret, 15 s announcements, 10 s per ingester answer.
impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            role: Role::All,
            advertise_url: None,
            secret: None,
            member_ttl: Duration::from_secs(15),
            fanout_timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("role", &self.role)
            .field("advertise_url", &self.advertise_url)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("member_ttl", &self.member_ttl)
            .field("fanout_timeout", &self.fanout_timeout)
            .finish()
    }
}

/// `[cluster]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCluster {
    role: Option<String>,
    advertise_url: Option<String>,
    secret_file: Option<PathBuf>,
    member_ttl: Option<String>,
    fanout_timeout: Option<String>,
}

/// Reads `[cluster]` (`env` reads an environment variable).
pub(super) fn cluster(
    file: FileCluster,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<ClusterConfig> {
    let mut c = ClusterConfig::default();
    if let Some(r) = file.role {
        c.role = Role::parse(&r).context("cluster.role")?;
    }
    c.advertise_url = file.advertise_url;
    c.secret = match file.secret_file {
        Some(path) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cluster.secret_file: reading {}", path.display()))?
                .trim()
                .to_string(),
        ),
        None => env(SECRET_ENV),
    };
    if let Some(v) = file.member_ttl {
        c.member_ttl = parse_duration(&v).context("cluster.member_ttl")?;
    }
    if let Some(v) = file.fanout_timeout {
        c.fanout_timeout = parse_duration(&v).context("cluster.fanout_timeout")?;
    }
    Ok(c)
}

impl ClusterConfig {
    /// Checks the role against the rest of the configuration (after flags were applied):
    /// a split role needs the metastore, an ingester an address and every split role the
    /// shared secret.
    pub fn check(&self, has_metastore: bool) -> anyhow::Result<()> {
        if self.role == Role::All {
            return Ok(());
        }
        let role = self.role.name();
        if !has_metastore {
            bail!("role {role:?} needs storage.metastore = \"postgres\" (and object_store = \"s3\"): processes of split roles share blocks through them");
        }
        match self.secret.as_deref() {
            None => {
                bail!("role {role:?} needs the internal API's secret: cluster.secret_file or {SECRET_ENV}")
            }
            Some(s) if s.len() < 16 => bail!("cluster secret is {} characters; use at least 16", s.len()),
            Some(_) => {}
        }
        if self.role.serves_heads() {
            let Some(url) = &self.advertise_url else {
                bail!("role {role:?} needs cluster.advertise_url: where queriers reach this process");
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("cluster.advertise_url {url:?} must start with http:// or https://");
            }
        }
        if self.member_ttl < Duration::from_secs(1) {
            bail!(
                "cluster.member_ttl {:?} is below the minimum of 1s",
                self.member_ttl
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> anyhow::Result<ClusterConfig> {
        let f: FileCluster = toml::from_str(text)?;
        cluster(f, |k| {
            env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        })
    }

    const SECRET: (&str, &str) = (SECRET_ENV, "0123456789abcdef0123");

    #[test]
    fn all_is_the_default_and_split_roles_need_what_they_use() {
        let c = parse("", &[]).unwrap();
        assert_eq!(c.role, Role::All);
        c.check(false).unwrap();
        let c = parse(
            "role = \"ingester\"\nadvertise_url = \"http://10.0.0.5:9090\"",
            &[SECRET],
        )
        .unwrap();
        assert_eq!(c.role, Role::Ingester);
        assert!(c.role.ingests() && !c.role.compacts());
        c.check(true).unwrap();
        assert!(!format!("{c:?}").contains("0123456789"), "Debug hides the secret");
        let cases = [
            ("role = \"querier\"", &[SECRET][..], false, "storage.metastore"),
            ("role = \"querier\"", &[][..], true, SECRET_ENV),
            ("role = \"ingester\"", &[SECRET][..], true, "advertise_url"),
            ("role = \"alerting\"", &[SECRET][..], true, "advertise_url"),
            (
                "role = \"ingester\"\nadvertise_url = \"10.0.0.5:9090\"",
                &[SECRET][..],
                true,
                "http://",
            ),
            (
                "role = \"compactor\"",
                &[(SECRET_ENV, "short")][..],
                true,
                "at least 16",
            ),
        ];
        for (text, env, metastore, needle) in cases {
            let e = format!("{:#}", parse(text, env).unwrap().check(metastore).unwrap_err());
            assert!(e.contains(needle), "{text} → {e}");
        }
        for (text, needle) in [
            ("role = \"boss\"", "\"boss\""),
            ("member_ttl = \"soon\"", "cluster.member_ttl"),
            ("secret_file = \"/nonexistent/secret\"", "/nonexistent/secret"),
        ] {
            let e = format!("{:#}", parse(text, &[]).unwrap_err());
            assert!(e.contains(needle), "{text} → {e}");
        }
    }
}
