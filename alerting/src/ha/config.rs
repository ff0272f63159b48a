//! `[alerting.ha]`: the PostgreSQL database two alerting instances share, so that one of
//! them sends each notification. Its URL follows the rule of every database URL in the
//! config (inline only without a password; else `url_file` or the environment).

use std::path::PathBuf;
use std::time::Duration;

use didban_coord::{ConnectOptions, UrlSource};
use serde::Deserialize;

use crate::notify::config::{opt_duration, ConfigError};

/// Environment variable holding the URL when neither `url` nor `url_file` is set.
pub const URL_ENV: &str = "DIDBAN_ALERTING_HA_URL";

/// `[alerting.ha]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HaSettings {
    /// libpq-style URL without a password.
    pub url: Option<String>,
    /// A file holding the URL (may hold a password).
    pub url_file: Option<PathBuf>,
    /// PEM CA certificates trusted besides the system's (with `sslmode=require`).
    pub ca_file: Option<PathBuf>,
    /// Longest a connection attempt may take (default 5s).
    pub connect_timeout: Option<String>,
    /// Name of the pair: instances with the same name share one sender lease, one
    /// notification log and one set of silences (default `default`).
    pub cluster: Option<String>,
    /// How long the sender lease holds without renewal: the other instance takes over
    /// at most this long after the sender stops (default 15s, at least 1s).
    pub lease_ttl: Option<String>,
    /// How often silences are exchanged with the database besides right after a change
    /// (default 5s).
    pub sync_interval: Option<String>,
}

/// `[alerting.ha]` resolved: where the database is and how the pair behaves.
#[derive(Clone, PartialEq)]
pub struct HaConfig {
    /// The URL (may hold a password: `Debug` redacts it).
    pub url: String,
    /// TLS CA and connect timeout.
    pub ca_file: Option<PathBuf>,
    /// Longest a connection attempt may take.
    pub connect_timeout: Duration,
    /// The pair's name.
    pub cluster: String,
    /// The sender lease's TTL.
    pub lease_ttl: Duration,
    /// Silences exchanged at least this often.
    pub sync_interval: Duration,
}

impl HaConfig {
    /// The options every connection of the pair uses.
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            ca_file: self.ca_file.clone(),
            timeout: self.connect_timeout,
        }
    }

    /// The name of the sender lease in `didban_leases`.
    pub fn lease_name(&self) -> String {
        format!("alerting-sender/{}", self.cluster)
    }
}

impl std::fmt::Debug for HaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaConfig")
            .field("url", &didban_coord::redact(&self.url))
            .field("ca_file", &self.ca_file)
            .field("connect_timeout", &self.connect_timeout)
            .field("cluster", &self.cluster)
            .field("lease_ttl", &self.lease_ttl)
            .field("sync_interval", &self.sync_interval)
            .finish()
    }
}

impl HaSettings {
    /// Checks and resolves the section (`env` reads an environment variable); errors
    /// name the key.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<HaConfig, ConfigError> {
        let source = UrlSource {
            section: "alerting.ha".into(),
            url: self.url.clone(),
            url_file: self.url_file.clone(),
            env_var: URL_ENV.into(),
        };
        let url = source
            .resolve(env)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(ca) = &self.ca_file {
            if !ca.is_file() {
                return Err(ConfigError::Invalid(format!(
                    "alerting.ha.ca_file {} is not a readable file",
                    ca.display()
                )));
            }
        }
        let cluster = self.cluster.clone().unwrap_or_else(|| "default".to_string());
        if cluster.is_empty() || cluster.len() > 200 {
            return Err(ConfigError::Invalid(format!(
                "alerting.ha.cluster {cluster:?} must be 1 to 200 characters"
            )));
        }
        let at_least_1s = |value: &Option<String>, key: &str, default: u64| {
            let d = opt_duration(value, key)?.unwrap_or(Duration::from_secs(default));
            if d < Duration::from_secs(1) {
                return Err(ConfigError::Invalid(format!(
                    "{key} {d:?} is below the minimum of 1s"
                )));
            }
            Ok(d)
        };
        Ok(HaConfig {
            url,
            ca_file: self.ca_file.clone(),
            connect_timeout: opt_duration(&self.connect_timeout, "alerting.ha.connect_timeout")?
                .unwrap_or(Duration::from_secs(5)),
            cluster,
            lease_ttl: at_least_1s(&self.lease_ttl, "alerting.ha.lease_ttl", 15)?,
            sync_interval: at_least_1s(&self.sync_interval, "alerting.ha.sync_interval", 5)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<HaConfig, ConfigError> {
        let s: HaSettings = toml::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        s.resolve(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_and_overrides() {
        let c = parse("url = \"postgres://db/didban\"", &[]).unwrap();
        assert_eq!(c.cluster, "default");
        assert_eq!(c.lease_ttl, Duration::from_secs(15));
        assert_eq!(c.sync_interval, Duration::from_secs(5));
        assert_eq!(c.lease_name(), "alerting-sender/default");
        let c = parse(
            "cluster = \"eu\"\nlease_ttl = \"4s\"\nsync_interval = \"2s\"",
            &[(URL_ENV, "postgres://u:secret@db/d")],
        )
        .unwrap();
        assert_eq!((c.cluster.as_str(), c.lease_ttl), ("eu", Duration::from_secs(4)));
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let cases = [
            ("", URL_ENV),
            ("url = \"postgres://u:pw@db/d\"", "holds a password"),
            (
                "url = \"postgres://db/d\"\nlease_ttl = \"10ms\"",
                "alerting.ha.lease_ttl",
            ),
            (
                "url = \"postgres://db/d\"\nsync_interval = \"soon\"",
                "alerting.ha.sync_interval",
            ),
            ("url = \"postgres://db/d\"\ncluster = \"\"", "alerting.ha.cluster"),
            (
                "url = \"postgres://db/d\"\nca_file = \"/nonexistent/ca.pem\"",
                "/nonexistent/ca.pem",
            ),
            ("url = \"postgres://db/d\"\nport = 1", "port"),
        ];
        for (text, needle) in cases {
            let e = parse(text, &[]).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?} → {e}");
            assert!(!e.contains("pw@"), "{e}");
        }
    }
}
