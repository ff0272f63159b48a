//! A client from a libpq-style URL (`postgres://user:pw@host:5432/db?sslmode=require`) or
//! key/value DSN (`host=… dbname=…`): verified TLS when the URL says `sslmode=require`,
//! plain otherwise; the connect attempt is bounded and the connection's task spawned on the
//! current runtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

use crate::error::{message, CoordError};

/// How to connect besides the URL.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// PEM file of CA certificates trusted besides the system's, for servers with a
    /// private CA (libpq's `sslrootcert`, which tokio-postgres does not parse). Only with
    /// `sslmode=require`.
    pub ca_file: Option<PathBuf>,
    /// Longest a connection attempt (TCP, TLS and authentication) may take.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            ca_file: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// `url` without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    let mut out = Vec::new();
    for part in url.split_whitespace() {
        if part.starts_with("password=") {
            out.push("password=***".to_string());
        } else if let (Some((scheme, rest)), Some(at)) = (part.split_once("://"), part.rfind('@')) {
            match rest.split_once('@').map(|(user, _)| user.split_once(':')) {
                Some(Some((user, _))) => out.push(format!("{scheme}://{user}:***{}", &part[at..])),
                _ => out.push(part.to_string()),
            }
        } else {
            out.push(part.to_string());
        }
    }
    out.join(" ")
}

/// Connects to `url`: TLS verified against the system's CAs (and `options.ca_file`) when
/// it says `sslmode=require`, plain otherwise. The connection runs on a task of the
/// current tokio runtime until the client is dropped.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Client, CoordError> {
    let target = redact(url);
    let config: tokio_postgres::Config = url.parse().map_err(|e| CoordError::Url {
        url: target.clone(),
        message: message(&e),
    })?;
    let timed_out = || CoordError::ConnectTimeout {
        target: target.clone(),
        timeout: options.timeout,
    };
    let failed = |e: tokio_postgres::Error| CoordError::Connect {
        target: target.clone(),
        message: message(&e),
    };
    if config.get_ssl_mode() == SslMode::Require {
        let tls = rustls_client(options).map_err(|message| CoordError::Tls {
            target: target.clone(),
            message,
        })?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
        let (client, connection) = tokio::time::timeout(options.timeout, config.connect(tls))
            .await
            .map_err(|_| timed_out())?
            .map_err(failed)?;
        drive(connection);
        return Ok(client);
    }
    if let Some(ca) = &options.ca_file {
        return Err(CoordError::Tls {
            target,
            message: format!(
                "a CA file ({}) is set but the URL does not ask for sslmode=require",
                ca.display()
            ),
        });
    }
    let (client, connection) = tokio::time::timeout(options.timeout, config.connect(NoTls))
        .await
        .map_err(|_| timed_out())?
        .map_err(failed)?;
    drive(connection);
    Ok(client)
}

/// Runs a connection's I/O task until the server or the client closes it.
fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "coordination database connection closed");
        }
    });
}

/// A rustls client (ring provider, as everywhere in Didban) trusting the system's CAs and
/// those of `options.ca_file`.
fn rustls_client(options: &ConnectOptions) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(path) = &options.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("CA file {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("CA file {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("CA file {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("CA file {}: no certificate in it", path.display()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Checks that `url` parses as a libpq-style URL or DSN tokio-postgres accepts, without
/// connecting (for configuration checks at load).
pub fn check_url(url: &str) -> Result<(), CoordError> {
    url.parse::<tokio_postgres::Config>()
        .map(|_| ())
        .map_err(|e| CoordError::Url {
            url: redact(url),
            message: message(&e),
        })
}

/// Whether `url` carries a password (`user:password@` or `password=`).
pub fn has_password(url: &str) -> bool {
    url.parse::<tokio_postgres::Config>()
        .is_ok_and(|c| c.get_password().is_some())
}
