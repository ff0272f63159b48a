//! E-mail through a real SMTP server (Python's aiosmtpd, from tests/requirements.txt)
//! started by the test: the delivered MIME message is parsed (Python's `email` package)
//! and its subject, recipients and both bodies checked. Unreachable servers and a refused
//! STARTTLS give clear errors.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use didban_alerting::notify::{Alert, AlertSink, Notifier, NotifyConfig, RetryPolicy};
use didban_store::Labels;
use didban_testkit::free_port;
use didban_testkit::smtp::Smtp;
use serde_json::Value;

/// Parses a delivered message with Python's `email` package.
fn parse_mime(path: &Path) -> Value {
    let script = r#"
import email, json, sys
from email import policy
msg = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)
out = {"subject": msg["subject"], "from": msg["from"], "to": msg["to"],
       "content_type": msg.get_content_type(), "parts": {}}
for part in msg.walk():
    if part.get_content_maintype() == "text":
        out["parts"][part.get_content_type()] = part.get_content()
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn alert(instance: &str, value: f64, ends: i64) -> Alert {
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), format!("Postgres on {instance} is down"));
    Alert {
        labels: Labels::from_pairs([
            ("alertname", "PostgresDown"),
            ("instance", instance),
            ("severity", "critical"),
        ]),
        annotations,
        starts_at_ms: 1_764_115_200_000,
        ends_at_ms: ends,
        generator_url: "http://didban:9480/graph?g0.expr=pg_up%20%3D%3D%200&g0.tab=1".into(),
        value,
    }
}

fn notifier(yaml: &str) -> Notifier {
    let cfg: NotifyConfig = serde_yaml::from_str(yaml).unwrap();
    Notifier::new(&cfg, None, "http://didban:9480")
        .unwrap()
        .with_retry(RetryPolicy {
            attempts: 2,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(50),
        })
}

fn messages(maildir: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(maildir.join("new")) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn alert_mail_reaches_a_real_smtp_server() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let smtp = Smtp::start(&maildir);
    let n = notifier(&format!(
        r#"
global:
  smtp_from: "Didban <didban@example.com>"
  smtp_smarthost: 127.0.0.1:{}
route: {{receiver: oncall, group_by: [alertname], group_wait: 0s}}
receivers:
  - name: oncall
    email_configs:
      - to: "ops@example.com, dba@example.com"
        tls: none
        hello: didban.test
        send_resolved: true
"#,
        smtp.port
    ));
    let t = 1_764_115_260_000;
    n.send(
        vec![
            alert("db1:5432", 0.0, t + 3_600_000),
            alert("db2:5432", 0.0, t - 1),
        ],
        t,
    );
    n.tick(t).await;
    let h = n.log.history(1);
    assert!(h[0].ok, "{:?}", h[0].error);
    let files = messages(&maildir);
    assert_eq!(files.len(), 1);
    let m = parse_mime(&files[0]);
    assert_eq!(m["subject"], "[FIRING:1] PostgresDown (critical)");
    assert_eq!(m["from"], "Didban <didban@example.com>");
    assert_eq!(m["to"], "ops@example.com, dba@example.com");
    assert_eq!(m["content_type"], "multipart/alternative");
    let text = m["parts"]["text/plain"].as_str().unwrap();
    assert!(text.contains("1 firing:"), "{text}");
    assert!(text.contains("1 resolved:"), "{text}");
    assert!(text.contains("[FIRING] PostgresDown"), "{text}");
    assert!(text.contains("instance = db1:5432"), "{text}");
    assert!(text.contains("summary = Postgres on db2:5432 is down"), "{text}");
    assert!(text.contains("Value: 0"), "{text}");
    assert!(text.contains("Started: 2025-11-26T00:00:00Z"), "{text}");
    assert!(
        text.contains("Source: http://didban:9480/graph?g0.expr=pg_up"),
        "{text}"
    );
    assert!(text.contains("All alerts: http://didban:9480/alerts"), "{text}");
    let html = m["parts"]["text/html"].as_str().unwrap();
    assert!(
        html.contains("<h2>[FIRING:1] PostgresDown (critical)</h2>"),
        "{html}"
    );
    assert!(html.contains("<code>db1:5432</code>"), "{html}");
    assert!(html.contains("<dd>Postgres on db1:5432 is down</dd>"), "{html}");
    assert!(
        html.contains("href=\"http://didban:9480/graph?g0.expr=pg_up%20%3D%3D%200&amp;g0.tab=1\""),
        "{html}"
    );
    assert!(html.contains("RESOLVED"), "{html}");
}

#[tokio::test]
async fn unreachable_server_and_refused_starttls_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&dir.path().join("mail"));
    let closed = free_port();
    let n = notifier(&format!(
        r#"
global: {{smtp_from: didban@example.com}}
route:
  receiver: down
  group_wait: 0s
  routes: [{{matchers: ['instance="tls"'], receiver: starttls}}]
receivers:
  - name: down
    email_configs: [{{to: a@example.com, smarthost: "127.0.0.1:{closed}", tls: none, timeout: 2s}}]
  - name: starttls
    email_configs: [{{to: a@example.com, smarthost: "127.0.0.1:{}", timeout: 5s}}]
"#,
        smtp.port
    ));
    n.send(
        vec![alert("db1", 1.0, i64::MAX / 2), alert("tls", 1.0, i64::MAX / 2)],
        1,
    );
    n.tick(1).await;
    let h = n.log.history(10);
    assert_eq!(h.len(), 2);
    for item in &h {
        assert!(!item.ok);
        assert_eq!(item.attempts, 2, "transport errors are retried");
        assert!(
            item.error.as_deref().unwrap().starts_with("SMTP: "),
            "{:?}",
            item.error
        );
    }
    assert!(messages(&dir.path().join("mail")).is_empty());
}
