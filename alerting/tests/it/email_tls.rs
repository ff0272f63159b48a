//! E-mail over STARTTLS and implicit TLS with authentication, against a real SMTP server
//! (aiosmtpd with a certificate made by openssl for this test): delivery works with the
//! test CA trusted, and a wrong password or an untrusted certificate are clear errors.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{free_port, Smtp};
use didban_alerting::notify::{Alert, AlertSink, Notifier, NotifyConfig, RetryPolicy};
use didban_store::Labels;

const SERVER: &str = r#"
import sys, ssl
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

port, maildir, cert, key, mode = sys.argv[1:6]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)

def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"didban" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)

common = dict(hostname="127.0.0.1", port=int(port), authenticator=auth, auth_required=True)
if mode == "starttls":
    c = Controller(Mailbox(maildir), tls_context=ctx, require_starttls=True, **common)
else:
    c = Controller(Mailbox(maildir), ssl_context=ctx, auth_require_tls=False, **common)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

fn openssl(args: &[&str], dir: &Path) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl {args:?} failed");
}

/// A test CA and a server certificate for 127.0.0.1 signed by it: `(ca, cert, key)`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=Didban test CA",
        ]
        .into_iter()
        .chain(["-keyout", "ca.key", "-out", "ca.pem"])
        .collect::<Vec<_>>(),
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
        dir,
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            "cert.pem",
            "-extfile",
            "leaf.ext",
        ],
        dir,
    );
    (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"))
}

fn start(dir: &Path, cert: &Path, key: &Path, mode: &str) -> Smtp {
    let port = free_port();
    let mut child = Command::new("python3")
        .args(["-c", SERVER, &port.to_string()])
        .arg(dir.join(format!("mail-{mode}")))
        .arg(cert)
        .arg(key)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
    Smtp { child, port }
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
    let (ca, cert, key) = certificates(dir.path());
    let ca = ca.display().to_string();

    let smtp = start(dir.path(), &cert, &key, "starttls");
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

    let smtps = start(dir.path(), &cert, &key, "smtps");
    let h = send(
        smtps.port,
        &format!("tls: tls, tls_ca_file: '{ca}', auth_username: didban, auth_password: s3cret"),
    )
    .await;
    assert!(h.ok, "{:?}", h.error);
    assert_eq!(delivered(dir.path(), "smtps"), 1);
}
