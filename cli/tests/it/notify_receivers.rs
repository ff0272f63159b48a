//! Receivers with the real binary: `didban notify test` delivers one test notification by
//! e-mail (a real SMTP server) and webhook (a real HTTP server in this test) without a
//! running Didban, and exits 1 with the receiver's error when the webhook answers 500;
//! `didban serve` re-reads receivers on SIGHUP, so the next notification goes to the new
//! webhook, and refuses a bad file with the old receivers kept and the failure visible.

use std::process::Command;
use std::time::Duration;

use crate::process::{now_ms, Didban, BIN};
use didban_testkit::didban::Start;
use didban_testkit::smtp::Smtp;
use didban_testkit::wait;
use didban_testkit::webhook::Webhook;
use serde_json::Value;

#[test]
fn notify_test_delivers_once_and_fails_with_the_receivers_error() {
    let good_hook = Webhook::start();
    let bad_hook = Webhook::answering(500);
    let (good, bad) = (good_hook.url.clone(), bad_hook.url.clone());
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let smtp = Smtp::start(&maildir);
    let config = dir.path().join("didban.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[alerting.global]
smtp_from = "didban@example.com"
smtp_smarthost = "127.0.0.1:{port}"
[alerting.route]
receiver = "ops"
[[alerting.receivers]]
name = "ops"
[[alerting.receivers.webhook_configs]]
url = "{good}"
[[alerting.receivers.email_configs]]
to = "oncall@example.com"
tls = "none"
[[alerting.receivers]]
name = "broken"
[[alerting.receivers.webhook_configs]]
url = "{bad}"
"#,
            port = smtp.port
        ),
    )
    .unwrap();
    let run = |receiver: &str| {
        Command::new(BIN)
            .args(["notify", "test", receiver, "--config"])
            .arg(&config)
            .env_remove("DIDBAN_CONFIG")
            .output()
            .unwrap()
    };

    let out = run("ops");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("webhook[0]: ok") && stdout.contains("email[1]: ok"),
        "{stdout}"
    );
    let bodies = good_hook.bodies();
    assert_eq!(bodies.len(), 1, "exactly once");
    assert_eq!(
        bodies[0]["alerts"][0]["labels"]["alertname"],
        "DidbanTestNotification"
    );
    let mails: Vec<_> = std::fs::read_dir(maildir.join("new")).unwrap().collect();
    assert_eq!(mails.len(), 1, "exactly one mail");
    let mail = std::fs::read_to_string(mails[0].as_ref().unwrap().path()).unwrap();
    assert!(mail.contains("DidbanTestNotification"), "{mail}");

    let out = run("broken");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("answered 500") && stderr.contains("receiver broken"),
        "{stderr}"
    );
    assert_eq!(bad_hook.count(), 1, "a test is not retried");

    let out = run("nobody");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"nobody\"") && stderr.contains("ops, broken"),
        "{stderr}"
    );
}

const RULES: &str = r#"
groups:
  - name: always
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels:
          severity: info
"#;

fn config(rules_dir: &std::path::Path, receiver: &str, url: &str) -> String {
    format!(
        r#"
[alerting]
rules_dir = "{}"
[alerting.route]
receiver = "{receiver}"
group_wait = "0s"
group_interval = "1s"
repeat_interval = "2s"
[[alerting.receivers]]
name = "ops"
[[alerting.receivers.webhook_configs]]
url = "{url}"
"#,
        rules_dir.display()
    )
}

fn hup(server: &Didban) {
    let status = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sighup_moves_notifications_to_the_new_webhook_and_keeps_them_on_a_bad_file() {
    let old = Webhook::start();
    let new = Webhook::start();
    let (old_url, new_url) = (old.url.clone(), new.url.clone());
    let dir = tempfile::tempdir().unwrap();
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("always.yaml"), RULES).unwrap();
    let file = dir.path().join("didban.toml");
    std::fs::write(&file, config(&rules_dir, "ops", &old_url)).unwrap();
    let file_arg = file.display().to_string();
    let server = Didban::start_with(
        BIN,
        &dir.path().join("data"),
        Start {
            args: &["--config", &file_arg],
            ..Start::default()
        },
    );
    wait::until("the first notification", Duration::from_secs(20), || {
        if old.count() == 0 {
            return Err("none yet".to_string());
        }
        Ok(())
    });

    std::fs::write(&file, config(&rules_dir, "ops", &new_url)).unwrap();
    hup(&server);
    wait::until(
        "a notification to the new webhook",
        Duration::from_secs(20),
        || {
            if new.count() == 0 {
                return Err(format!("old webhook got {}", old.count()));
            }
            Ok(())
        },
    );
    let old_count = old.count();
    wait::until("two more repeats", Duration::from_secs(20), || {
        let n = new.count();
        if n < 3 {
            return Err(format!("{n} so far"));
        }
        Ok(())
    });
    assert_eq!(old.count(), old_count, "the old webhook gets nothing more");
    let body = new.bodies()[0].clone();
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "AlwaysFiring");

    // A route naming a receiver that does not exist: refused, the new webhook still paged.
    std::fs::write(&file, config(&rules_dir, "gone", &old_url)).unwrap();
    hup(&server);
    let client = reqwest::blocking::Client::new();
    let r: Value = wait::until("the refused reload to show", Duration::from_secs(20), || {
        let r: Value = client
            .get(server.url("/api/v1/receivers"))
            .send()
            .map_err(|e| e.to_string())?
            .json()
            .map_err(|e| e.to_string())?;
        if r["data"]["lastReload"]["successful"] != false {
            return Err(r.to_string());
        }
        Ok(r)
    });
    assert!(
        r["data"]["lastReload"]["error"]
            .as_str()
            .unwrap()
            .contains("\"gone\""),
        "{r}"
    );
    let q = server.query("didban_config_last_reload_successful", now_ms() as f64 / 1000.0);
    assert_eq!(q["data"]["result"][0]["value"][1], "0", "{q}");
    let before = new.count();
    wait::until("notifications to continue", Duration::from_secs(20), || {
        let n = new.count();
        if n < before + 2 {
            return Err(format!("{n} so far"));
        }
        Ok(())
    });
    assert_eq!(old.count(), old_count, "the bad file's URL is not used");
}
