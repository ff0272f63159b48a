//! Notification configuration in Alertmanager's shape — `global`, `route`, `receivers`,
//! `inhibit_rules` — readable from the `[alerting]` TOML section or an Alertmanager-style
//! YAML file. Integrations other than webhook and e-mail are refused as unknown fields.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use didban_store::{LabelMatcher, MatchOp};
use serde::{Deserialize, Serialize};

use crate::rules::parse_prom_duration;

/// Why the notification configuration is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The YAML/TOML did not parse (unknown field, wrong type, syntax).
    #[error("{0}")]
    Syntax(String),
    /// A value is invalid; the message names it.
    #[error("{0}")]
    Invalid(String),
}

/// A password, token or key: read from config like a string, never printed by `Debug`
/// (so a logged config cannot leak it).
#[derive(Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl Secret {
    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// `global:` defaults shared by receivers.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// Default sender address.
    pub smtp_from: Option<String>,
    /// Default SMTP server, `host:port`.
    pub smtp_smarthost: Option<String>,
    /// Name sent in EHLO.
    pub smtp_hello: Option<String>,
    /// Default SMTP user.
    pub smtp_auth_username: Option<String>,
    /// Default SMTP password.
    pub smtp_auth_password: Option<Secret>,
    /// Default for `require_tls` (true).
    pub smtp_require_tls: Option<bool>,
    /// Accepted for compatibility; Didban's alerts always carry an end time.
    pub resolve_timeout: Option<String>,
}

/// A node of the routing tree.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Receiver for alerts that end here (inherited when unset).
    pub receiver: Option<String>,
    /// Labels to group by; `["..."]` groups by all labels (inherited when unset).
    pub group_by: Option<Vec<String>>,
    /// Keep matching sibling routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    /// Matchers like `severity="critical"`, `team=~"db|ops"`.
    #[serde(default)]
    pub matchers: Vec<String>,
    /// Deprecated Alertmanager equality matchers.
    #[serde(default, rename = "match")]
    pub match_: BTreeMap<String, String>,
    /// Deprecated Alertmanager regex matchers.
    #[serde(default)]
    pub match_re: BTreeMap<String, String>,
    /// Wait before the first notification of a new group (default 30s).
    pub group_wait: Option<String>,
    /// Wait before notifying about changes to a group (default 5m).
    pub group_interval: Option<String>,
    /// Wait before re-sending an unchanged notification (default 4h).
    pub repeat_interval: Option<String>,
    /// Child routes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// A named receiver with its integrations.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Unique name routes refer to.
    pub name: String,
    /// Webhooks.
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    /// E-mail.
    #[serde(default)]
    pub email_configs: Vec<EmailConfig>,
}

/// A webhook receiving the Alertmanager v4 JSON payload.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: String,
    /// Also notify resolutions (default true).
    pub send_resolved: Option<bool>,
    /// Most alerts in one payload; the rest are counted in `truncatedAlerts` (0 = all).
    #[serde(default)]
    pub max_alerts: usize,
    /// Sent as `Authorization: Bearer …`.
    pub bearer_token: Option<Secret>,
    /// Key of the `X-Didban-Signature: sha256=<hex HMAC of the body>` header.
    pub hmac_secret: Option<Secret>,
    /// Request timeout (default 10s).
    pub timeout: Option<String>,
}

/// An e-mail receiver (SMTP through lettre).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Recipients, comma-separated.
    pub to: String,
    /// Sender (default `global.smtp_from`).
    pub from: Option<String>,
    /// SMTP server `host:port` (default `global.smtp_smarthost`).
    pub smarthost: Option<String>,
    /// Name sent in EHLO.
    pub hello: Option<String>,
    /// SMTP user.
    pub auth_username: Option<String>,
    /// SMTP password.
    pub auth_password: Option<Secret>,
    /// Alertmanager's switch: STARTTLS required (default true). Overridden by `tls`.
    pub require_tls: Option<bool>,
    /// `starttls`, `tls` (implicit, port 465) or `none`; derived from the port and
    /// `require_tls` when unset.
    pub tls: Option<String>,
    /// PEM file of a CA to trust besides the system's (a private or self-signed server).
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Accept any server certificate (tests only; never in production).
    #[serde(default)]
    pub tls_insecure_skip_verify: bool,
    /// Also notify resolutions (default false, as Alertmanager).
    pub send_resolved: Option<bool>,
    /// Extra headers; `Subject` overrides the default subject.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Connection and send timeout (default 30s).
    pub timeout: Option<String>,
}

/// An inhibition rule: firing alerts matching `source_matchers` mute alerts matching
/// `target_matchers` that have the same values for the `equal` labels.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    /// Matchers of the muting alerts.
    #[serde(default)]
    pub source_matchers: Vec<String>,
    /// Matchers of the muted alerts.
    #[serde(default)]
    pub target_matchers: Vec<String>,
    /// Deprecated equality form of `source_matchers`.
    #[serde(default)]
    pub source_match: BTreeMap<String, String>,
    /// Deprecated regex form of `source_matchers`.
    #[serde(default)]
    pub source_match_re: BTreeMap<String, String>,
    /// Deprecated equality form of `target_matchers`.
    #[serde(default)]
    pub target_match: BTreeMap<String, String>,
    /// Deprecated regex form of `target_matchers`.
    #[serde(default)]
    pub target_match_re: BTreeMap<String, String>,
    /// Labels that must be equal in source and target.
    #[serde(default)]
    pub equal: Vec<String>,
}

/// The whole notification configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Shared defaults.
    #[serde(default)]
    pub global: GlobalConfig,
    /// The routing tree; without one, nothing is notified.
    pub route: Option<RouteConfig>,
    /// Receivers.
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    /// Inhibition rules.
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// Accepted for compatibility and ignored: Didban's message bodies are built in.
    #[serde(default)]
    pub templates: Vec<String>,
}

impl NotifyConfig {
    /// Reads an Alertmanager-style YAML file.
    pub fn load_yaml(path: &Path) -> Result<NotifyConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Syntax(format!("cannot read {}: {e}", path.display())))?;
        let cfg: NotifyConfig = serde_yaml::from_str(&text)
            .map_err(|e| ConfigError::Syntax(format!("{}: {e}", path.display())))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks names, matchers and durations; every receiver a route names must exist.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = Vec::new();
        for r in &self.receivers {
            if r.name.is_empty() {
                return Err(ConfigError::Invalid("receiver with an empty name".into()));
            }
            if names.contains(&r.name) {
                return Err(ConfigError::Invalid(format!(
                    "receiver {:?} is defined twice",
                    r.name
                )));
            }
            names.push(r.name.clone());
            for w in &r.webhook_configs {
                if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                    return Err(ConfigError::Invalid(format!(
                        "receiver {:?}: webhook url {:?} must start with http:// or https://",
                        r.name, w.url
                    )));
                }
                opt_duration(&w.timeout, "webhook timeout")?;
            }
            for e in &r.email_configs {
                if e.to.trim().is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "receiver {:?}: email `to` is empty",
                        r.name
                    )));
                }
                if e.smarthost.is_none() && self.global.smtp_smarthost.is_none() {
                    return Err(ConfigError::Invalid(format!(
                        "receiver {:?}: no smarthost and no global.smtp_smarthost",
                        r.name
                    )));
                }
                if e.from.is_none() && self.global.smtp_from.is_none() {
                    return Err(ConfigError::Invalid(format!(
                        "receiver {:?}: no from and no global.smtp_from",
                        r.name
                    )));
                }
                if let Some(t) = &e.tls {
                    if !matches!(t.as_str(), "starttls" | "tls" | "none") {
                        return Err(ConfigError::Invalid(format!(
                            "receiver {:?}: tls {t:?} is not one of starttls, tls, none",
                            r.name
                        )));
                    }
                }
                opt_duration(&e.timeout, "email timeout")?;
            }
        }
        if let Some(route) = &self.route {
            if route.receiver.is_none() {
                return Err(ConfigError::Invalid("the root route must name a receiver".into()));
            }
            check_route(route, &names)?;
        }
        for rule in &self.inhibit_rules {
            route_matchers(&rule.source_matchers, &rule.source_match, &rule.source_match_re)?;
            route_matchers(&rule.target_matchers, &rule.target_match, &rule.target_match_re)?;
        }
        Ok(())
    }
}

fn check_route(route: &RouteConfig, receivers: &[String]) -> Result<(), ConfigError> {
    if let Some(r) = &route.receiver {
        if !receivers.contains(r) {
            return Err(ConfigError::Invalid(format!(
                "route names undefined receiver {r:?}"
            )));
        }
    }
    route_matchers(&route.matchers, &route.match_, &route.match_re)?;
    opt_duration(&route.group_wait, "group_wait")?;
    opt_duration(&route.group_interval, "group_interval")?;
    opt_duration(&route.repeat_interval, "repeat_interval")?;
    for child in &route.routes {
        check_route(child, receivers)?;
    }
    Ok(())
}

/// Parses an optional duration, naming the key on failure.
pub(crate) fn opt_duration(v: &Option<String>, key: &str) -> Result<Option<Duration>, ConfigError> {
    match v {
        None => Ok(None),
        Some(s) => parse_prom_duration(s)
            .map(Some)
            .map_err(|e| ConfigError::Invalid(format!("{key}: {e}"))),
    }
}

/// All matchers of a route or inhibit rule: `matchers` strings plus the deprecated maps.
pub(crate) fn route_matchers(
    matchers: &[String],
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
) -> Result<Vec<LabelMatcher>, ConfigError> {
    let mut out = Vec::new();
    for m in matchers {
        out.push(parse_matcher(m)?);
    }
    for (k, v) in eq {
        out.push(LabelMatcher::equal(k.clone(), v.clone()));
    }
    for (k, v) in re {
        out.push(
            LabelMatcher::new(MatchOp::RegexMatch, k.clone(), v.clone())
                .map_err(|e| ConfigError::Invalid(format!("match_re {k}: {e}")))?,
        );
    }
    Ok(out)
}

/// Parses one Alertmanager matcher: `name="value"`, `name!=value`, `name=~"re"`,
/// `name!~"re"` (quotes optional).
pub fn parse_matcher(s: &str) -> Result<LabelMatcher, ConfigError> {
    let t = s.trim().trim_start_matches('{').trim_end_matches('}').trim();
    let bad = || ConfigError::Invalid(format!("bad matcher {s:?}: want name=\"value\", !=, =~ or !~"));
    let pos = t.find(['=', '!']).ok_or_else(bad)?;
    let name = t.get(..pos).unwrap_or("").trim();
    let rest = t.get(pos..).unwrap_or("");
    let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
        (MatchOp::RegexMatch, v)
    } else if let Some(v) = rest.strip_prefix("!~") {
        (MatchOp::RegexNoMatch, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        (MatchOp::NotEqual, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (MatchOp::Equal, v)
    } else {
        return Err(bad());
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad());
    }
    let value = value.trim();
    let value = if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        serde_json::from_str::<String>(value).map_err(|_| bad())?
    } else {
        value.to_string()
    };
    LabelMatcher::new(op, name, value).map_err(|e| ConfigError::Invalid(format!("bad matcher {s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secrets_never_print() {
        let cfg: NotifyConfig = serde_yaml::from_str(
            "global: {smtp_auth_password: hunter2}\nreceivers:\n  - name: a\n    webhook_configs: [{url: 'http://x', hmac_secret: k3y, bearer_token: t0k}]\n",
        )
        .unwrap();
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("k3y") && !shown.contains("t0k"),
            "{shown}"
        );
        assert_eq!(
            cfg.receivers[0].webhook_configs[0]
                .hmac_secret
                .as_ref()
                .unwrap()
                .expose(),
            "k3y"
        );
    }

    #[test]
    fn matchers_parse_like_alertmanager() {
        let m = parse_matcher("severity=\"critical\"").unwrap();
        assert_eq!(m.to_string(), "severity=\"critical\"");
        assert!(parse_matcher("team=~db|cache").unwrap().matches("cache"));
        assert!(parse_matcher("env!=dev").unwrap().matches("prod"));
        assert!(!parse_matcher("x!~\"a.*\"").unwrap().matches("abc"));
        assert!(parse_matcher("no operator").is_err());
        assert!(parse_matcher("bad-name=\"x\"").is_err());
        assert!(parse_matcher("x=~\"(\"")
            .unwrap_err()
            .to_string()
            .contains("bad matcher"));
    }

    #[test]
    fn validation_names_the_problem() {
        let bad = |yaml: &str| {
            serde_yaml::from_str::<NotifyConfig>(yaml)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string()
        };
        assert!(bad("route: {receiver: nobody}").contains("undefined receiver \"nobody\""));
        assert!(bad("route: {}\nreceivers: [{name: a}]").contains("root route must name a receiver"));
        assert!(bad("receivers: [{name: a}, {name: a}]").contains("defined twice"));
        assert!(bad("receivers: [{name: a, webhook_configs: [{url: 'ftp://x'}]}]").contains("ftp://x"));
        assert!(bad("receivers: [{name: a, email_configs: [{to: x@y}]}]").contains("no smarthost"));
        assert!(bad("route: {receiver: a, group_wait: soon}\nreceivers: [{name: a}]").contains("group_wait"));
        let e =
            serde_yaml::from_str::<NotifyConfig>("receivers: [{name: a, slack_configs: []}]").unwrap_err();
        assert!(e.to_string().contains("unknown field `slack_configs`"), "{e}");
    }
}
