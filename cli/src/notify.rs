//! `didban notify test RECEIVER [--config FILE]`: sends a test notification
//! (`alertname="DidbanTestNotification"`) through the e-mail and webhook integrations of
//! one receiver, straight from the configuration file — no running server needed — and
//! prints each integration's outcome; the exit code is 1 when any fails.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use didban_alerting::notify::test_send::send_test_with_config;
use didban_alerting::notify::NotifyConfig;
use didban_collector::config::Config;

/// `didban notify …`.
#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Send a test notification through every integration of RECEIVER and report each
    /// outcome; exit code 1 when any fails.
    Test(TestArgs),
}

/// Flags of `didban notify test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Receiver name, as in `[[alerting.receivers]]` or the Alertmanager-style YAML.
    #[arg(value_name = "RECEIVER")]
    receiver: String,
    /// The server's TOML config (its `[alerting]` section, or the `config_file` it names),
    /// or an Alertmanager-style YAML file (`.yml`/`.yaml`).
    #[arg(long, env = "DIDBAN_CONFIG", value_name = "FILE")]
    config: PathBuf,
}

/// The notification configuration in `path` and the URL links should point to.
fn load(path: &Path) -> anyhow::Result<(NotifyConfig, String)> {
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"));
    if yaml {
        let cfg = NotifyConfig::load_yaml(path)?;
        return Ok((cfg, "http://127.0.0.1:9480".to_string()));
    }
    let c = Config::load(path)?;
    let cfg = c
        .alerting
        .notify_config()
        .with_context(|| format!("in the [alerting] section of {}", path.display()))?;
    let url = c
        .alerting
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", c.http_addr));
    Ok((cfg, url))
}

/// Runs the command; true when every integration accepted the test.
pub fn run(cmd: NotifyCommand) -> anyhow::Result<bool> {
    let NotifyCommand::Test(args) = cmd;
    let (cfg, url) = load(&args.config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcomes = rt.block_on(send_test_with_config(&cfg, &args.receiver, &url))?;
    println!("Test notification to receiver {:?}:", args.receiver);
    let mut ok = true;
    for o in outcomes {
        match o.error {
            None => println!("  {}: ok", o.integration),
            Some(e) => {
                ok = false;
                println!("  {}: FAILED", o.integration);
                eprintln!("receiver {:?}: {}: {e}", args.receiver, o.integration);
            }
        }
    }
    Ok(ok)
}
