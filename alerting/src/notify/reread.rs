//! What a reload reads: the notification configuration as it is on disk now — the
//! `config_file` YAML when one is set, else the `[alerting]` section of the server's TOML
//! file — so receivers, routes and inhibit rules change without a restart.

use crate::notify::config::{ConfigError, NotifyConfig};
use crate::service::AlertingSettings;

/// The notification configuration `current` points at, read again. Without a TOML file
/// (settings built in code) the settings' own keys are used.
pub fn notify_config(current: &AlertingSettings) -> Result<NotifyConfig, ConfigError> {
    let Some(path) = &current.source_file else {
        return current.notify_config();
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Syntax(format!("cannot read {}: {e}", path.display())))?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| ConfigError::Syntax(format!("{}: {e}", path.display())))?;
    let section = table
        .remove("alerting")
        .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
    let mut fresh: AlertingSettings = section
        .try_into()
        .map_err(|e| ConfigError::Syntax(format!("{}: [alerting]: {e}", path.display())))?;
    fresh.source_file = Some(path.clone());
    fresh.notify_config()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings_of(path: &std::path::Path) -> AlertingSettings {
        AlertingSettings {
            source_file: Some(path.to_path_buf()),
            ..AlertingSettings::default()
        }
    }

    #[test]
    fn rereads_the_toml_section_and_names_the_bad_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("didban.toml");
        std::fs::write(
            &path,
            "data_dir = \"x\"\n[alerting.route]\nreceiver = \"b\"\n[[alerting.receivers]]\nname = \"b\"\n[[alerting.receivers.webhook_configs]]\nurl = \"http://127.0.0.1:9/new\"\n",
        )
        .unwrap();
        let cfg = notify_config(&settings_of(&path)).unwrap();
        assert_eq!(cfg.receivers[0].webhook_configs[0].url, "http://127.0.0.1:9/new");

        std::fs::write(&path, "[alerting.route]\nreceiver = \"gone\"\n").unwrap();
        let e = notify_config(&settings_of(&path)).unwrap_err();
        assert!(e.to_string().contains("\"gone\""), "{e}");

        std::fs::write(&path, "[alerting\n").unwrap();
        let e = notify_config(&settings_of(&path)).unwrap_err();
        assert!(e.to_string().contains("didban.toml"), "{e}");
    }
}
