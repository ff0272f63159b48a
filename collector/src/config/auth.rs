//! `[auth]`: when sign-in is required, the anonymous role, sessions and cookies. Documented
//! in `docs/configuration.md`; how it works in `docs/ui.md` ("Sign-in, roles and tokens").

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use didban_auth::{AuthSettings, Role};
use serde::Deserialize;

use didban_base::parse_duration;

/// `enabled`: on, off, or decided by the listen addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Sign-in required.
    On,
    /// No sign-in (refused on a non-loopback address unless `allow_anonymous`).
    Off,
    /// Off when every listener is on loopback, otherwise on.
    Auto,
}

impl AuthMode {
    /// Parses `true`/`on`, `false`/`off`, `auto`.
    pub fn parse(value: &str) -> anyhow::Result<AuthMode> {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "1" | "yes" => Ok(AuthMode::On),
            "false" | "off" | "0" | "no" => Ok(AuthMode::Off),
            "auto" => Ok(AuthMode::Auto),
            other => bail!("auth.enabled: {other:?} is not one of true, false, auto"),
        }
    }
}

/// `[auth]`, with defaults.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub enabled: AuthMode,
    /// Serve anonymously on a non-loopback address even though `enabled = false`.
    pub allow_anonymous: bool,
    /// Role of requests without credentials; `None` = the default (admin when sign-in is
    /// off, none when it is on).
    pub anonymous_role: Option<Option<Role>>,
    pub session_ttl: Duration,
    pub secure_cookies: bool,
    pub trusted_proxies: Vec<IpAddr>,
    pub public_metrics: bool,
    /// First admin from `DIDBAN_ADMIN_USER` / `DIDBAN_ADMIN_PASSWORD` (environment only).
    pub bootstrap_admin: Option<(String, String)>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: AuthMode::Auto,
            allow_anonymous: false,
            anonymous_role: None,
            session_ttl: Duration::from_secs(86_400),
            secure_cookies: false,
            trusted_proxies: Vec::new(),
            public_metrics: false,
            bootstrap_admin: None,
        }
    }
}

/// Parses an anonymous role: `none`, `viewer`, `editor`, `admin`.
pub fn parse_anonymous_role(value: &str) -> anyhow::Result<Option<Role>> {
    if value == "none" {
        return Ok(None);
    }
    match Role::parse(value) {
        Some(r) => Ok(Some(r)),
        None => bail!("auth.anonymous_role: {value:?} is not one of none, viewer, editor, admin"),
    }
}

impl AuthConfig {
    /// What applies to a server listening on `listeners` (`(key, address)` pairs). Refuses
    /// an anonymous server on a non-loopback address unless `allow_anonymous` is set.
    pub fn resolve(&self, listeners: &[(&str, SocketAddr)]) -> anyhow::Result<AuthSettings> {
        let exposed = listeners.iter().find(|(_, a)| !a.ip().is_loopback());
        let required = match self.enabled {
            AuthMode::On => true,
            AuthMode::Auto => exposed.is_some(),
            AuthMode::Off => {
                if let (Some((key, addr)), false) = (exposed, self.allow_anonymous) {
                    bail!(
                        "refusing to start: {key} {addr} is not a loopback address and auth.enabled = false, \
                         so anyone who can reach it could read and change everything. Enable sign-in \
                         (auth.enabled = true or auto, DIDBAN_AUTH=true), or set auth.allow_anonymous = true \
                         (DIDBAN_ALLOW_ANONYMOUS=true) to serve without sign-in on purpose"
                    );
                }
                false
            }
        };
        let anonymous_role = match self.anonymous_role {
            Some(r) => r,
            None if required => None,
            None => Some(Role::Admin),
        };
        Ok(AuthSettings {
            required,
            anonymous_role,
            session_ttl: self.session_ttl,
            secure_cookies: self.secure_cookies,
            trusted_proxies: self.trusted_proxies.clone(),
        })
    }
}

/// `enabled` as written in TOML: a boolean or a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FileAuthEnabled {
    Bool(bool),
    Text(String),
}

/// `[auth]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuth {
    enabled: Option<FileAuthEnabled>,
    allow_anonymous: Option<bool>,
    anonymous_role: Option<String>,
    session_ttl: Option<String>,
    secure_cookies: Option<bool>,
    trusted_proxies: Option<Vec<String>>,
    public_metrics: Option<bool>,
}

impl FileAuth {
    /// Applies the keys present to `c`.
    pub fn apply(self, c: &mut AuthConfig) -> anyhow::Result<()> {
        match self.enabled {
            Some(FileAuthEnabled::Bool(true)) => c.enabled = AuthMode::On,
            Some(FileAuthEnabled::Bool(false)) => c.enabled = AuthMode::Off,
            Some(FileAuthEnabled::Text(t)) => c.enabled = AuthMode::parse(&t)?,
            None => {}
        }
        if let Some(v) = self.allow_anonymous {
            c.allow_anonymous = v;
        }
        if let Some(v) = self.anonymous_role {
            c.anonymous_role = Some(parse_anonymous_role(&v)?);
        }
        if let Some(v) = self.session_ttl {
            c.session_ttl = parse_duration(&v).context("auth.session_ttl")?;
            if c.session_ttl < Duration::from_secs(60) {
                bail!("auth.session_ttl must be at least 1m");
            }
        }
        if let Some(v) = self.secure_cookies {
            c.secure_cookies = v;
        }
        if let Some(list) = self.trusted_proxies {
            c.trusted_proxies = parse_proxies(&list)?;
        }
        if let Some(v) = self.public_metrics {
            c.public_metrics = v;
        }
        Ok(())
    }
}

/// Parses IP addresses of trusted proxies.
pub fn parse_proxies(list: &[String]) -> anyhow::Result<Vec<IpAddr>> {
    list.iter()
        .map(|s| {
            s.trim()
                .parse()
                .with_context(|| format!("auth.trusted_proxies: {s:?} is not an IP address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn addrs(http: &str) -> Vec<(&'static str, SocketAddr)> {
        vec![
            ("http_addr", http.parse().unwrap()),
            ("otlp_grpc_addr", "127.0.0.1:4317".parse().unwrap()),
        ]
    }

    #[test]
    fn auto_follows_the_listeners_and_off_refuses_exposure() {
        let c = AuthConfig::default();
        let s = c.resolve(&addrs("127.0.0.1:9480")).unwrap();
        assert!(!s.required);
        assert_eq!(s.anonymous_role, Some(Role::Admin));
        let s = c.resolve(&addrs("0.0.0.0:9480")).unwrap();
        assert!(s.required);
        assert_eq!(s.anonymous_role, None);

        let off = AuthConfig {
            enabled: AuthMode::Off,
            ..AuthConfig::default()
        };
        let err = off.resolve(&addrs("0.0.0.0:9480")).unwrap_err().to_string();
        assert!(err.contains("http_addr 0.0.0.0:9480"), "{err}");
        assert!(err.contains("auth.allow_anonymous"), "{err}");
        let allowed = AuthConfig {
            allow_anonymous: true,
            anonymous_role: Some(Some(Role::Viewer)),
            ..off
        };
        let s = allowed.resolve(&addrs("0.0.0.0:9480")).unwrap();
        assert!(!s.required);
        assert_eq!(s.anonymous_role, Some(Role::Viewer));
    }

    #[test]
    fn file_keys_parse_and_name_bad_values() {
        let mut c = AuthConfig::default();
        let f: FileAuth = toml::from_str(
            "enabled = true\nanonymous_role = \"viewer\"\nsession_ttl = \"8h\"\ntrusted_proxies = [\"10.0.0.1\"]",
        )
        .unwrap();
        f.apply(&mut c).unwrap();
        assert_eq!(c.enabled, AuthMode::On);
        assert_eq!(c.anonymous_role, Some(Some(Role::Viewer)));
        assert_eq!(c.session_ttl, Duration::from_secs(8 * 3600));
        let f: FileAuth = toml::from_str("enabled = \"auto\"").unwrap();
        f.apply(&mut c).unwrap();
        assert_eq!(c.enabled, AuthMode::Auto);
        let f: FileAuth = toml::from_str("enabled = \"maybe\"").unwrap();
        assert!(f.apply(&mut c).unwrap_err().to_string().contains("\"maybe\""));
        let f: FileAuth = toml::from_str("anonymous_role = \"boss\"").unwrap();
        assert!(f
            .apply(&mut c)
            .unwrap_err()
            .to_string()
            .contains("anonymous_role"));
        let f: FileAuth = toml::from_str("trusted_proxies = [\"proxy\"]").unwrap();
        assert!(format!("{:#}", f.apply(&mut c).unwrap_err()).contains("\"proxy\""));
    }
}
