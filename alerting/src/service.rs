//! The alert engine as the server runs it: settings (the `[alerting]` config section), the
//! rule manager and the notifier wired together, reloads (SIGHUP, `POST /-/reload`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use didban_store::promql::Engine;
use serde::Deserialize;
use tokio::sync::watch;

use crate::eval::{EvalContext, LogSource, RuleManager, RuleStorage};
use crate::ha::{HaPair, HaSettings};
use crate::notify::config::{
    opt_duration, ConfigError, GlobalConfig, InhibitRuleConfig, NotifyConfig, ReceiverConfig, RouteConfig,
};
use crate::notify::forward::{AlertmanagerForwarder, FanOut};
use crate::notify::{AlertSink, Notifier};
use crate::rules::{PackSource, RuleError, RuleSources};

/// The `[alerting]` section of the server's TOML config. Every key is documented in
/// `docs/configuration.md` and `docs/alerting.md`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertingSettings {
    /// Run the alert engine (default true).
    pub enabled: Option<bool>,
    /// Directory of rule files (default `<data_dir>/rules`).
    pub rules_dir: Option<PathBuf>,
    /// Load the rule packs from this directory (each `*.yaml` file a pack named by its stem)
    /// instead of the packs built into the binary.
    pub packs_dir: Option<PathBuf>,
    /// Evaluate the rule packs (default true).
    pub packs_enabled: Option<bool>,
    /// Packs not evaluated, by name (`["serverless"]`).
    #[serde(default)]
    pub disabled_packs: Vec<String>,
    /// Pack rules not evaluated, by alert (or recorded metric) name (`["RedisHitRatioLow"]`).
    #[serde(default)]
    pub disabled_rules: Vec<String>,
    /// Threshold overrides (`CeleryQueueBacklog = 500`), exposed as
    /// `didban_threshold{alert="…"}` series that the packs' overridable rules read.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f64>,
    /// Interval of groups that set none (default 1m).
    pub evaluation_interval: Option<String>,
    /// Factor applied to every group's evaluation interval and every rule's `for` and
    /// `keep_firing_for`, built-in packs and rule files alike (default 1). For test and demo
    /// stacks that must show the shipped rules firing in seconds: `0.1` runs a `for: 1m` rule
    /// with `for: 6s`. Range windows (`[5m]`) and notification timings are not scaled.
    pub time_scale: Option<f64>,
    /// URL of this server as users reach it, for links (default `http://<http_addr>`).
    pub external_url: Option<String>,
    /// Labels added to every notified alert and visible to templates.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// Least time between two sends of an unchanged firing alert (default 1m).
    pub resend_delay: Option<String>,
    /// External Alertmanagers (base URLs) that also receive every alert, via their v2 API.
    #[serde(default)]
    pub alertmanager_urls: Vec<String>,
    /// Alertmanager-style YAML with `route`, `receivers`, `inhibit_rules`, `global`;
    /// replaces those keys of this section when set.
    pub config_file: Option<PathBuf>,
    /// SMTP defaults.
    #[serde(default)]
    pub global: GlobalConfig,
    /// Routing tree.
    pub route: Option<RouteConfig>,
    /// Receivers.
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    /// Inhibition rules.
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// `[alerting.ha]`: run as one instance of an HA pair sharing the sender lease, the
    /// notification log and the silences through PostgreSQL (`crate::ha`).
    pub ha: Option<HaSettings>,
    /// The TOML file these settings were read from (set by `didban serve --config`, never
    /// read from the file): a reload re-reads its `[alerting]` receivers, routes and
    /// inhibit rules.
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
}

impl AlertingSettings {
    /// Whether the engine runs.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// Where the rules come from: the packs (built in, `packs_dir`, or none when
    /// `packs_enabled = false`) with their overrides, and `rules_dir` (or `<data_dir>/rules`).
    pub fn rule_sources(&self, data_dir: &Path) -> RuleSources {
        let packs = if !self.packs_enabled.unwrap_or(true) {
            PackSource::Off
        } else if let Some(dir) = &self.packs_dir {
            PackSource::Dir(dir.clone())
        } else {
            PackSource::Builtin
        };
        RuleSources {
            dirs: vec![self.rules_dir.clone().unwrap_or_else(|| data_dir.join("rules"))],
            packs,
            disabled_packs: self.disabled_packs.clone(),
            disabled_rules: self.disabled_rules.clone(),
            thresholds: self.thresholds.clone(),
        }
    }

    /// The notification configuration: the YAML file when set, else this section's keys.
    pub fn notify_config(&self) -> Result<NotifyConfig, ConfigError> {
        if let Some(path) = &self.config_file {
            return NotifyConfig::load_yaml(path);
        }
        let cfg = NotifyConfig {
            global: self.global.clone(),
            route: self.route.clone(),
            receivers: self.receivers.clone(),
            inhibit_rules: self.inhibit_rules.clone(),
            templates: Vec::new(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks everything that can be checked before start: durations and the notification
    /// configuration (rule files are checked when loaded).
    pub fn validate(&self) -> Result<(), ConfigError> {
        opt_duration(&self.evaluation_interval, "alerting.evaluation_interval")?;
        opt_duration(&self.resend_delay, "alerting.resend_delay")?;
        if let Some(scale) = self.time_scale {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(ConfigError::Invalid(format!(
                    "alerting.time_scale: {scale} must be a number greater than 0"
                )));
            }
        }
        for url in &self.alertmanager_urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "alerting.alertmanager_urls: {url:?} must start with http:// or https://"
                )));
            }
        }
        for (alert, v) in &self.thresholds {
            if !v.is_finite() {
                return Err(ConfigError::Invalid(format!(
                    "alerting.thresholds: {alert} = {v} must be a finite number"
                )));
            }
        }
        for name in self.external_labels.keys() {
            if !didban_store::model::is_valid_label_name(name) {
                return Err(ConfigError::Invalid(format!(
                    "alerting.external_labels: invalid label name {name:?}"
                )));
            }
        }
        if let Some(ha) = &self.ha {
            ha.resolve(|k| std::env::var(k).ok())?;
        }
        self.notify_config().map(|_| ())
    }
}

/// Reads the `[alerting]` settings again (from the server's config file) on reload, so a
/// reload applies changed pack settings; an error keeps the running rules.
pub type SettingsSource = Arc<dyn Fn() -> Result<AlertingSettings, String> + Send + Sync>;

/// The running alert engine: what the HTTP API and the server hold.
pub struct Alerting {
    /// Rules and their evaluation.
    pub manager: Arc<RuleManager>,
    /// Routing and notifications.
    pub notifier: Arc<Notifier>,
    settings: AlertingSettings,
    data_dir: PathBuf,
    settings_source: parking_lot::Mutex<Option<SettingsSource>>,
}

/// Why the engine could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    /// The `[alerting]` settings or the notification config are invalid.
    #[error("alerting config: {0}")]
    Config(#[from] ConfigError),
    /// Rule files are invalid (all problems, one per line).
    #[error("rule files are invalid:\n{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Rules(Vec<RuleError>),
}

impl Alerting {
    /// Builds the engine over `storage` with `engine` (and `logs` for log rules); state
    /// files go to `<data_dir>/alerting`. Rules are loaded by [`Alerting::run`].
    pub fn new(
        settings: &AlertingSettings,
        data_dir: &Path,
        default_external_url: &str,
        storage: Arc<dyn RuleStorage>,
        engine: Arc<Engine>,
        logs: Option<Arc<dyn LogSource>>,
    ) -> Result<Arc<Alerting>, AlertingError> {
        settings.validate()?;
        let external_url = settings
            .external_url
            .clone()
            .unwrap_or_else(|| default_external_url.to_string());
        let notify_cfg = settings.notify_config()?;
        let state_dir = data_dir.join("alerting");
        let mut notifier =
            Notifier::new(&notify_cfg, Some(&state_dir), &external_url)?.with_storage(storage.clone());
        if let Some(ha) = &settings.ha {
            let config = ha.resolve(|k| std::env::var(k).ok())?;
            tracing::info!(cluster = %config.cluster, url = %didban_coord::redact(&config.url), "alerting: one instance of an HA pair");
            let pair = HaPair::start(config).map_err(|e| ConfigError::Invalid(e.to_string()))?;
            notifier = notifier.with_ha(pair);
        }
        let notifier = Arc::new(notifier);
        let interval = opt_duration(&settings.evaluation_interval, "alerting.evaluation_interval")?
            .unwrap_or(Duration::from_secs(60));
        let resend_delay =
            opt_duration(&settings.resend_delay, "alerting.resend_delay")?.unwrap_or(Duration::from_secs(60));
        let mut sink: Arc<dyn AlertSink> = notifier.clone();
        if !settings.alertmanager_urls.is_empty() {
            let fwd = AlertmanagerForwarder::new(settings.alertmanager_urls.clone(), Duration::from_secs(10))
                .map_err(ConfigError::Invalid)?;
            sink = Arc::new(FanOut(vec![sink, Arc::new(fwd)]));
        }
        let ctx = EvalContext {
            storage,
            engine,
            external_labels: settings.external_labels.clone(),
            external_url,
            sink: Some(sink),
            resend_delay,
            logs,
        };
        let manager = RuleManager::with_sources(settings.rule_sources(data_dir), interval, ctx);
        manager.set_time_scale(settings.time_scale.unwrap_or(1.0));
        Ok(Arc::new(Alerting {
            manager,
            notifier,
            settings: settings.clone(),
            data_dir: data_dir.to_path_buf(),
            settings_source: parking_lot::Mutex::new(None),
        }))
    }

    /// Makes every reload read the settings again through `source` and apply their rule
    /// settings (`rules_dir`, `packs_dir`, `packs_enabled`, `disabled_packs`,
    /// `disabled_rules`, `thresholds`).
    pub fn set_settings_source(&self, source: SettingsSource) {
        *self.settings_source.lock() = Some(source);
    }

    /// Reloads rule files (with the pack settings read again when a settings source is set)
    /// and the notification config (receivers, routes, inhibit rules: from `config_file`,
    /// else from the `[alerting]` section of the server's TOML file). Either part that is
    /// bad is left as it was; the errors are returned and the outcome is kept in
    /// `didban_config_last_reload_successful`.
    pub async fn reload(&self) -> Result<usize, AlertingError> {
        let source = self.settings_source.lock().clone();
        let mut fresh_settings = None;
        if let Some(source) = source {
            match source() {
                Ok(fresh) => {
                    self.manager.set_sources(fresh.rule_sources(&self.data_dir));
                    self.manager.set_time_scale(fresh.time_scale.unwrap_or(1.0));
                    fresh_settings = Some(fresh);
                }
                Err(e) => {
                    tracing::error!(error = %e, "config is invalid; keeping the previous rules");
                    let now = crate::now_ms();
                    self.notifier.metrics.reloaded(Err(e.clone()), now);
                    self.notifier.write_metrics(now).await;
                    return Err(AlertingError::Config(ConfigError::Invalid(e)));
                }
            }
        }
        let rules = self.manager.reload(true).await;
        // The server's settings source already read the file again; without one (settings
        // built in code, or a library user) the notification part is read again on its own.
        let notify_config = match &fresh_settings {
            Some(fresh) => fresh.notify_config(),
            None => crate::notify::reread::notify_config(&self.settings),
        };
        let notify = notify_config.and_then(|cfg| self.notifier.reload(&cfg));
        let result = match notify {
            Err(e) => {
                tracing::error!(error = %e, "notification config is invalid; keeping the previous one");
                Err(e.into())
            }
            Ok(()) => rules.map_err(AlertingError::Rules),
        };
        let now = crate::now_ms();
        self.notifier
            .metrics
            .reloaded(result.as_ref().map(|_| ()).map_err(ToString::to_string), now);
        self.notifier.write_metrics(now).await;
        result
    }

    /// Runs the rule loops and the notifier, reloads on SIGHUP, until `stop` turns true.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let manager = tokio::spawn(self.manager.clone().run(stop.clone()));
        let notifier = tokio::spawn(self.notifier.clone().run(Duration::from_secs(1), stop.clone()));
        let mut stop = stop;
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<()>();
            tokio::select! {
                _ = hangup => {
                    tracing::info!("SIGHUP: reloading rules and notification config");
                    if let Err(e) = self.reload().await {
                        tracing::error!(error = %e, "reload failed; previous configuration kept");
                    }
                }
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
        }
        let _ = manager.await;
        let _ = notifier.await;
    }
}
