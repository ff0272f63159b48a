//! E-mail over STARTTLS and implicit TLS with authentication, against a real SMTP server
//! (aiosmtpd from the test kit, with a certificate made by openssl for this test): delivery works with the
//! test CA trusted, and a wrong password or an untrusted certificate are clear errors.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use didban_alerting::notify::{Alert, AlertSink, Notifier, NotifyConfig, RetryPolicy};
use didban_store::Labels;
use didban_testkit::certs::{make_certs, Certs};
use didban_testkit::smtp::{Options, Smtp, Tls};

/// aiosmtpd in `mode` ("starttls" or "smtps") with the certificates of `certs`, requiring the
/// login didban / s3cret, delivering into `dir/mail-<mode>`.
fn start(dir: &Path, certs: &Certs, mode: &str) -> Smtp {
    let tls = match mode {
        "starttls" => Tls::StartTls(certs),
        _ => Tls::Implicit(certs),
    };
    let options = Options {
        tls,
        login: Some(("didban", "s3cret")),
    };
    Smtp::start_with(&dir.join(format!("mail-{mode}")), options)
}

fn alert() -> Alert {
    Alert {
        labels: Labels::from_pairs([("alertname", "DiskFull"), ("instance", "h1")]),
        annotations: BTreeMap::new(),
        starts_at_ms: 0,
        ends_at_ms: i64::MAX / 2,
        generator_url: "http://didban/graph".into(),
        value: 1.0,
    }
}

/// Sends one alert through an e-mail receiver with these extra settings; the history item.
async fn send(port: u16, extra: &str) -> didban_alerting::notify::log::HistoryItem {
    let yaml = format!(
        "route: {{receiver: m, group_wait: 0s}}\nreceivers:\n  - name: m\n    email_configs:\n      - {{to: ops@example.com, from: didban@example.com, smarthost: '127.0.0.1:{port}', timeout: 5s, {extra}}}\n"
    );
    let cfg: NotifyConfig = serde_yaml::from_str(&yaml).unwrap();
    let n = Notifier::new(&cfg, None, "http://didban")
        .unwrap()
        .with_retry(RetryPolicy {
            attempts: 1,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        });
    n.send(vec![alert()], 1);
    n.tick(1).await;
    n.log.history(1).remove(0)
}

fn delivered(dir: &Path, mode: &str) -> usize {
    std::fs::read_dir(dir.join(format!("mail-{mode}")).join("new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn starttls_and_implicit_tls_with_auth() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs();
    let ca = certs.ca.display().to_string();

    let smtp = start(dir.path(), &certs, "starttls");
    let h = send(
        smtp.port,
        &format!("tls: starttls, tls_ca_file: '{ca}', auth_username: didban, auth_password: s3cret"),
    )
    .await;
    assert!(h.ok, "{:?}", h.error);
    assert_eq!(delivered(dir.path(), "starttls"), 1);
    let h = send(
        smtp.port,
        &format!("tls: starttls, tls_ca_file: '{ca}', auth_username: didban, auth_password: wrong"),
    )
    .await;
    assert!(!h.ok);
    assert!(h.error.as_deref().unwrap().starts_with("SMTP: "), "{:?}", h.error);
    let h = send(
        smtp.port,
        "tls: starttls, auth_username: didban, auth_password: s3cret",
    )
    .await;
    assert!(!h.ok, "an untrusted certificate must be refused");
    let h = send(
        smtp.port,
        "tls: none, auth_username: didban, auth_password: s3cret",
    )
    .await;
    assert!(!h.ok, "the server requires STARTTLS");
    assert_eq!(delivered(dir.path(), "starttls"), 1);

    let smtps = start(dir.path(), &certs, "smtps");
    let h = send(
        smtps.port,
        &format!("tls: tls, tls_ca_file: '{ca}', auth_username: didban, auth_password: s3cret"),
    )
    .await;
    assert!(h.ok, "{:?}", h.error);
    assert_eq!(delivered(dir.path(), "smtps"), 1);
}
