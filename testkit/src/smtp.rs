//! A real SMTP server per test: Python's aiosmtpd (from tests/requirements.txt) on a
//! reserved loopback port, delivering every message into a Maildir, optionally requiring
//! STARTTLS or speaking implicit TLS, optionally requiring a login. Ready once it sends its
//! `220` greeting; killed on drop.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::certs::Certs;
use crate::ports::free_port;
use crate::python::{Python, Source};

/// How many ports to try when another process takes the reserved one in between.
const ATTEMPTS: usize = 3;

/// The server: aiosmtpd's `Controller` starts the server in a thread and only returns once
/// it has connected to itself and read the greeting (through TLS for implicit TLS); then
/// "ready" is printed, and the server runs until stdin closes (the test dropped it).
const SERVER: &str = r#"
import sys, ssl
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

port, maildir, mode, cert, key, user, password = sys.argv[1:8]
kw = dict(hostname="127.0.0.1", port=int(port))
if user:
    def auth(server, session, envelope, mechanism, data):
        ok = (isinstance(data, LoginPassword) and data.login == user.encode()
              and data.password == password.encode())
        return AuthResult(success=ok, handled=False)
    kw.update(authenticator=auth, auth_required=True)
if mode != "plain":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
if mode == "starttls":
    kw.update(tls_context=ctx, require_starttls=True)
elif mode == "tls":
    kw.update(ssl_context=ctx, auth_require_tls=False)
c = Controller(Mailbox(maildir), **kw)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

/// How the server speaks TLS.
#[derive(Clone, Copy)]
pub enum Tls<'a> {
    /// Plain SMTP; STARTTLS is not offered.
    None,
    /// STARTTLS offered and required before anything else, with this certificate.
    StartTls(&'a Certs),
    /// TLS from the first byte (SMTPS), with this certificate.
    Implicit(&'a Certs),
}

/// How to start the server.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// TLS mode.
    pub tls: Tls<'a>,
    /// `(user, password)` every client must log in with, when given.
    pub login: Option<(&'a str, &'a str)>,
}

/// A running aiosmtpd; killed when dropped.
pub struct Smtp {
    /// The port on 127.0.0.1.
    pub port: u16,
    _server: Python,
}

impl Smtp {
    /// Plain SMTP without login, delivering into the Maildir `maildir` (created on demand;
    /// messages land in `maildir/new`).
    pub fn start(maildir: &Path) -> Smtp {
        Smtp::start_with(
            maildir,
            Options {
                tls: Tls::None,
                login: None,
            },
        )
    }

    /// A server with the given TLS mode and login.
    pub fn start_with(maildir: &Path, options: Options) -> Smtp {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            match Smtp::try_start(maildir, options) {
                Ok(smtp) => return smtp,
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "aiosmtpd did not start in {ATTEMPTS} attempts (pip install -r tests/requirements.txt?):\n{}",
            failures.join("\n---\n")
        );
    }

    fn try_start(maildir: &Path, options: Options) -> Result<Smtp, String> {
        let (mode, certs) = match options.tls {
            Tls::None => ("plain", None),
            Tls::StartTls(c) => ("starttls", Some(c)),
            Tls::Implicit(c) => ("tls", Some(c)),
        };
        let path = |p: Option<&PathBuf>| p.map(|p| p.display().to_string()).unwrap_or_default();
        let (cert, key) = (path(certs.map(|c| &c.cert)), path(certs.map(|c| &c.key)));
        let (user, password) = options.login.unwrap_or(("", ""));
        // The port is bound by the Python process; a port taken in between makes it exit
        // without "ready", and the caller tries another.
        let port = free_port();
        let maildir = maildir.display().to_string();
        let (server, line) = Python::try_start(
            Source::Code(SERVER),
            &[&port.to_string(), &maildir, mode, &cert, &key, user, password],
        )?;
        if line != "ready" {
            return Err(format!(
                "aiosmtpd printed {line:?}, not \"ready\"; stderr:\n{}",
                server.stderr_text()
            ));
        }
        if mode != "tls" {
            let greeting = greeting(port).map_err(|e| format!("no SMTP greeting on port {port}: {e}"))?;
            if !greeting.starts_with("220") {
                return Err(format!("port {port} greeted with {greeting:?}, not 220"));
            }
        }
        Ok(Smtp {
            port,
            _server: server,
        })
    }
}

/// The first line the server on `port` sends.
fn greeting(port: u16) -> std::io::Result<String> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line.trim().to_string())
}
