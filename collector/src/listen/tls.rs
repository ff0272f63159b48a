//! TLS for the listeners: a rustls server configuration (ring, TLS 1.2 and 1.3, ALPN `h2` and
//! `http/1.1` so gRPC works) built from the PEM files of `[tls]`, rebuilt when a file changes
//! (polled every `tls.reload_interval`, or at once on SIGHUP). A new file that does not load
//! leaves the previous configuration serving and is logged; new connections pick up a good
//! one, open ones keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::config::listen::TlsConfig;

/// Why a TLS configuration could not be built; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// A file is not the PEM expected.
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    /// rustls refused the certificate, key or CA.
    #[error("{what}: {reason}")]
    Rustls { what: String, reason: String },
}

/// The three files a configuration is built from.
#[derive(Debug, Clone)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

/// Modification time and length of each file, to notice a change.
type Stamp = Vec<Option<(SystemTime, u64)>>;

impl Files {
    fn stamp(&self) -> Stamp {
        let mut paths = vec![&self.cert, &self.key];
        paths.extend(self.client_ca.iter());
        paths
            .into_iter()
            .map(|p| {
                let m = std::fs::metadata(p).ok()?;
                Some((m.modified().ok()?, m.len()))
            })
            .collect()
    }
}

/// The current server configurations (with and without client certificates), swapped as a
/// whole when the files change.
pub struct ReloadingTls {
    files: Files,
    plain: RwLock<Arc<ServerConfig>>,
    client_auth: RwLock<Option<Arc<ServerConfig>>>,
    stamp: Mutex<Stamp>,
}

impl std::fmt::Debug for ReloadingTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingTls")
            .field("files", &self.files)
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        certs.push(cert.map_err(|e| pem_error(path, e))?);
    }
    if certs.is_empty() {
        return Err(pem_error(path, "no CERTIFICATE block in it"));
    }
    Ok(certs)
}

fn rustls_error(what: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Rustls {
        what: what.display().to_string(),
        reason: e.to_string(),
    }
}

/// Builds one server configuration; with `client_ca`, a handshake without a client
/// certificate signed by one of its CAs is refused.
fn build(files: &Files, client_ca: Option<&Path>) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = certificates(&files.cert)?;
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| pem_error(&files.key, e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| rustls_error(&files.cert, e))?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert).map_err(|e| rustls_error(ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| rustls_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| rustls_error(&files.key, e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl ReloadingTls {
    /// Loads the files of `config`; `None` when TLS is off. Errors name the bad file.
    pub fn load(config: &TlsConfig) -> Result<Option<Arc<ReloadingTls>>, TlsError> {
        let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) else {
            return Ok(None);
        };
        let files = Files {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: config.client_ca_file.clone(),
        };
        let stamp = files.stamp();
        let plain = build(&files, None)?;
        let client_auth = match &files.client_ca {
            Some(ca) => Some(Arc::new(build(&files, Some(ca))?)),
            None => None,
        };
        Ok(Some(Arc::new(ReloadingTls {
            files,
            plain: RwLock::new(Arc::new(plain)),
            client_auth: RwLock::new(client_auth),
            stamp: Mutex::new(stamp),
        })))
    }

    /// An acceptor with the current configuration; `client_auth` asks for the one that
    /// requires client certificates (the plain one when no client CA is configured).
    pub fn acceptor(&self, client_auth: bool) -> TlsAcceptor {
        if client_auth {
            if let Some(c) = self.client_auth.read().clone() {
                return TlsAcceptor::from(c);
            }
        }
        TlsAcceptor::from(self.plain.read().clone())
    }

    /// Rebuilds the configurations when a file changed (or always, with `force`). Returns
    /// whether a new configuration is now in use; on error the old one stays.
    pub fn reload(&self, force: bool) -> Result<bool, TlsError> {
        let stamp = self.files.stamp();
        {
            let mut last = self.stamp.lock();
            if !force && *last == stamp {
                return Ok(false);
            }
            // Remembered also on failure, so a bad file is reported once, not every poll.
            *last = stamp;
        }
        let plain = build(&self.files, None)?;
        let client_auth = match &self.files.client_ca {
            Some(ca) => Some(Arc::new(build(&self.files, Some(ca))?)),
            None => None,
        };
        *self.plain.write() = Arc::new(plain);
        *self.client_auth.write() = client_auth;
        Ok(true)
    }

    /// Polls the files every `interval` and on SIGHUP until `stop`, logging each reload and
    /// each file that did not load.
    pub async fn watch(self: Arc<Self>, interval: Duration, stop: watch::Receiver<bool>) {
        let stopping = crate::shutdown::stopped(stop);
        tokio::pin!(stopping);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let force = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
                _ = &mut stopping => return,
            };
            match self.reload(force) {
                Ok(true) => info!(cert = %self.files.cert.display(), "TLS certificate reloaded"),
                Ok(false) => {}
                Err(e) => {
                    warn!(error = %e, "TLS files changed but do not load; still serving the previous certificate")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bad_new_file_keeps_the_old_configuration() {
        let certs = didban_testkit::certs::make_certs();
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::copy(&certs.cert, &cert).unwrap();
        std::fs::copy(&certs.key, &key).unwrap();
        let config = TlsConfig {
            cert_file: Some(cert.clone()),
            key_file: Some(key.clone()),
            ..TlsConfig::default()
        };
        let tls = ReloadingTls::load(&config).unwrap().unwrap();
        let before = tls.plain.read().clone();
        assert_eq!(before.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert!(!tls.reload(false).unwrap(), "nothing changed");

        std::fs::write(&cert, "garbage").unwrap();
        let err = tls.reload(false).unwrap_err();
        assert!(err.to_string().contains("c.pem"), "{err}");
        assert!(Arc::ptr_eq(&before, &tls.plain.read()), "old configuration kept");
        assert!(!tls.reload(false).unwrap(), "a bad file is reported once");

        std::fs::copy(&certs.cert, &cert).unwrap();
        assert!(tls.reload(true).unwrap());
        assert!(!Arc::ptr_eq(&before, &tls.plain.read()));

        let err = ReloadingTls::load(&TlsConfig {
            client_ca_file: Some(dir.path().join("missing.pem")),
            ..config
        })
        .unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }
}
